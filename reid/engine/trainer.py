"""The training loop: P x K batches, losses from the config, run folder, checkpoints, exact resume,
mixed precision, EMA, DistributedDataParallel (torchrun), evaluation, snapshots, logs and plots."""

from __future__ import annotations

import json
import os
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from reid.config import Config, save_config
from reid.data.datasets import build_dataset
from reid.data.datasets.integrity import verify_splits
from reid.data.loaders import train_loader
from reid.data.transforms import Preprocess, TrainTransform
from reid.errors import ConfigError, ReidError
from reid.io.atomic import append_line, write_text
from reid.losses import CrossEntropyLabelSmooth, build_loss
from reid.models import build_model

from .checkpoint import load_checkpoint, remove_stray_temps, save_checkpoint
from .distributed import (
    all_gather_with_grad,
    all_reduce_mean,
    barrier,
    broadcast_module,
    broadcast_object,
    cleanup_distributed,
    gather_objects,
    init_distributed,
)  # fmt: skip
from .ema import ModelEMA
from .evaluate import evaluate_model
from .logging_utils import TensorBoard, read_metrics, run_logger, truncate_metrics
from .options import check_options, resolve_device
from .plots import plot_curves
from .precision import amp_dtype, autocast, checked_cpu_bf16, grads_finite
from .rng import rng_state, seed_everything, set_rng_state
from .schedule import build_optimizer, build_scheduler
from .validation import carve_validation

__all__ = ["Trainer", "resolve_device", "seed_everything"]


class Trainer:
    """Train one run. The run folder (written by rank 0 only) holds config.yaml, train.log,
    metrics.jsonl, metrics.json, plots/{loss,metrics}.png, tb/ (with tensorboard) and
    checkpoints/{last,best,epoch_XXX,ema}.pt.

    Under torchrun (WORLD_SIZE > 1) each process trains a DistributedDataParallel replica on
    its own P x K share of every global batch.
    """

    def __init__(
        self, config: Config, run_dir: str | Path | None = None, progress: bool = True, resume: bool = False
    ) -> None:
        self.config = config
        cfg, data = config.train, config.data
        wanted = resolve_device(cfg.device)
        self.dist = init_distributed(cfg.dist_backend, use_cuda=wanted.type == "cuda")
        self._owns_group = self.dist.enabled
        self.is_main = self.dist.is_main
        self.device = (
            torch.device("cuda", self.dist.local_rank) if self.dist.enabled and wanted.type == "cuda" else wanted
        )
        self.progress = progress and self.is_main
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        if self.is_main and run_dir is None:
            name = cfg.run_name or f"{data.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
            run_dir = Path(cfg.output_dir) / name
        self.run_dir = Path(broadcast_object(str(run_dir) if run_dir is not None else None, self.dist))
        self.ckpt_dir = self.run_dir / "checkpoints"
        problem = None
        if (
            self.is_main
            and not resume
            and ((self.run_dir / "metrics.jsonl").exists() or (self.ckpt_dir / "last.pt").exists())
        ):
            problem = f"{self.run_dir}: already holds a run; use --resume {self.run_dir} or another --output"
        problem = broadcast_object(problem, self.dist)
        if problem:
            raise ReidError(problem)
        if self.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, self.run_dir / "config.yaml")
        self.log = run_logger(self.run_dir if self.is_main else None, f"reid.train.{id(self)}")
        self.tb = TensorBoard(self.run_dir / "tb" if self.is_main and cfg.tensorboard else None)
        if self.tb.missing:
            self.log.info("tensorboard is not installed: no tb/ logs (metrics.jsonl and plots/ still written)")
        for stray in remove_stray_temps(self.ckpt_dir) if self.is_main else []:
            self.log.info("removed %s (a temp file left by a killed run)", stray.name)

        seed_everything(cfg.seed)
        dataset = build_dataset(data.dataset, data.root, skip_bad=data.skip_bad, verify_images=data.verify_images)
        if not data.verify_images:  # a cheap check up front: the evaluation after the last epoch must not fail
            verify_splits(dataset, skip_bad=data.skip_bad)
        for warning in dataset.warnings if self.is_main else []:
            self.log.warning("%s", warning)
            tqdm.write(f"warning: {warning}")
        train, self.val_query, self.val_gallery = carve_validation(dataset.train, data.val_identities, cfg.seed)
        check_options(config, bool(self.val_query))
        self.test_query, self.test_gallery = dataset.query, dataset.gallery
        self.num_classes = len({r.pid for r in train})
        self.pre = Preprocess(height=data.height, width=data.width)
        transform = TrainTransform(self.pre, flip=data.flip, pad=data.pad, erasing=data.random_erasing)
        try:
            self.loader = train_loader(
                train, transform, data.identities_per_batch, data.instances_per_identity, cfg.seed, data.workers,
                rank=self.dist.rank, world_size=self.dist.world_size, pin_memory=self.device.type == "cuda",
                skip_bad=data.skip_bad,
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"data.identities_per_batch: {exc}") from None
        self.sampler = self.loader.batch_sampler.sampler

        self.amp_dtype, fallback = checked_cpu_bf16(amp_dtype(cfg.amp, self.device), self.device)
        if fallback:
            self._warn(fallback)
        self.last_saved: tuple[int, int] | None = None  # (epoch, step) of the last.pt this run holds
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        self.model = build_model(config.model, self.num_classes).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = build_loss(config.loss, self.num_classes).to(self.device)
        self.params = [p for p in list(self.model.parameters()) + list(self.criterion.parameters()) if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, cfg.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        # the authors' classifier warm-up: its own optimizer over the classifier, plain (smoothed) CE
        self.warmup_optimizer = build_optimizer(self.model.classifier.parameters(), config.optim)
        self.warmup_loss = CrossEntropyLabelSmooth(_label_smoothing(config.loss))
        self.in_warmup = False
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.net, self.loss_fn = self.model, self.criterion
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
            if any(p.requires_grad for p in self.criterion.parameters()):
                self.loss_fn = DistributedDataParallel(self.criterion, device_ids=ids)
        seed_everything(cfg.seed + self.dist.rank)  # training randomness (anchors) differs per process

        self.start_epoch, self.start_step, self.epoch_totals = 0, 0, {}
        self.best_score, self.best_epoch, self.global_step = -1.0, 0, 0
        self.history: dict = {}
        self.records: list[dict] = []
        self.last_metrics: dict = {}
        if resume and (self.ckpt_dir / "last.pt").is_file():
            self.resume()
        self.log.info(
            "dataset %s: %d train images of %d identities, %d val ids, %d query, %d gallery; device %s, "
            "%d process(es), amp %s",
            data.dataset, len(train), self.num_classes, data.val_identities,
            len(self.test_query), len(self.test_gallery), self.device, self.dist.world_size, self.amp_dtype,
        )  # fmt: skip

    # -- checkpoints -------------------------------------------------------------------------
    def state(self, epoch: int, step: int = 0, totals: dict | None = None) -> dict:
        """Everything needed to continue: `epoch` epochs done plus `step` steps of the next one.
        Collective under DDP (gathers every process's RNG state): call it on all ranks."""
        rngs = gather_objects(rng_state(), self.dist)
        state = {
            "model": self.model.state_dict(),
            "criterion": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "warmup_optimizer": self.warmup_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "step": step,
            "epoch_totals": dict(totals or {}),
            "global_step": self.global_step,
            "sampler": self.sampler.state_dict(),
            "metrics": self.last_metrics,
            "history": self.history,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "config": self.config.to_dict(),
            "num_classes": self.num_classes,
            "preprocess": self.pre.to_dict(),
            "world_size": self.dist.world_size,
            "rng": rngs[0],
            "rng_per_rank": rngs,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def _warn(self, message: str) -> None:
        """A one-line warning in train.log and on the terminal (rank 0)."""
        if self.is_main:
            self.log.warning("%s", message)
            tqdm.write(f"warning: {message}")

    def _save(self, state: dict, name: str) -> None:
        if self.is_main:
            if not _finite_weights(state["model"]):
                raise ReidError(f"step {self.global_step}: the model weights are not finite; {name} was not "
                                f"overwritten. {self._advice()}")  # fmt: skip
            save_checkpoint(state, self.ckpt_dir / name)
        if name == "last.pt":
            self.last_saved = (state["epoch"], state.get("step", 0))

    def _advice(self) -> str:
        """What to try after a non-finite loss: resume the last good checkpoint or change the settings."""
        saved = self.last_saved or ((self.start_epoch, self.start_step) if self.start_epoch or self.start_step
                                    else None)  # fmt: skip
        fixes = "a lower optim.lr, train.grad_clip=1.0" + (", train.amp=none" if self.amp_dtype else "")
        if saved is None:
            return f"No checkpoint was written yet: start again with {fixes}"
        return (
            f"The last good checkpoint ({self.ckpt_dir / 'last.pt'}, epoch {saved[0]} step {saved[1]}) is "
            f"intact: continue it with `reid train --resume {self.run_dir}`, or start a new run with {fixes}"
        )

    def snapshot(self, epoch: int) -> dict:
        """The model-only layout of last.pt (model, config, num_classes, preprocess, epoch, ...)."""
        state = {
            "model": self.model.state_dict(), "epoch": epoch, "metrics": self.last_metrics,
            "config": self.config.to_dict(), "num_classes": self.num_classes, "preprocess": self.pre.to_dict(),
        }  # fmt: skip
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def resume(self) -> None:
        """Continue from checkpoints/last.pt of this run folder (end of an epoch or mid-epoch)."""
        state = load_checkpoint(self.ckpt_dir / "last.pt")
        if state["config"] != self.config.to_dict():
            raise ReidError(f"{self.run_dir}: the config differs from the one the run started with")
        self.model.load_state_dict(state["model"])
        self.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "warmup_optimizer" in state:
            self.warmup_optimizer.load_state_dict(state["warmup_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.start_epoch, self.start_step = int(state["epoch"]), int(state.get("step", 0))
        self.epoch_totals = dict(state.get("epoch_totals", {}))
        self.global_step = int(state.get("global_step", 0))
        self.history, self.last_metrics = state["history"], state.get("metrics", {})
        self.best_score, self.best_epoch = state["best_score"], int(state.get("best_epoch", 0))
        self.sampler.load_state_dict(state["sampler"])
        rngs = state.get("rng_per_rank", [state["rng"]])
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            self.log.warning("resumed with %d processes, saved with %d: RNG states reseeded", self.dist.world_size,
                             len(rngs))  # fmt: skip
            seed_everything(self.config.train.seed + 7919 * self.start_epoch + self.dist.rank)
        if self.is_main:
            self.records = truncate_metrics(self.run_dir / "metrics.jsonl", self.start_epoch)
        self.log.info("resumed at epoch %d step %d", self.start_epoch, self.start_step)

    def reload_best(self, epoch: int) -> None:
        """The authors' schedule: continue from the best weights so far (the lr drop is in the schedule)."""
        path = self.ckpt_dir / "best.pt"
        found = broadcast_object(path.is_file() if self.is_main else None, self.dist)
        if not found:
            self.log.warning("epoch %d: no best.pt yet, only the learning rate drops", epoch + 1)
            return
        if self.is_main:
            best = load_checkpoint(path)
            self.model.load_state_dict(best["model"])
            self.criterion.load_state_dict(best["criterion"])
            self.log.info("epoch %d: reloaded best.pt (epoch %d, mAP %.4f)", epoch + 1, best["epoch"],
                          best["best_score"])  # fmt: skip
        broadcast_module(self.model, self.dist)
        broadcast_module(self.criterion, self.dist)

    # -- loop --------------------------------------------------------------------------------
    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[str, float]]:
        """One optimizer step on a local batch (B, 3, H, W); returns the loss averaged over processes."""
        cfg = self.config.train
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        if self.in_warmup:
            return self.classifier_warmup_step(images, labels)
        cpu_bf16 = self.amp_dtype == torch.bfloat16 and self.device.type == "cpu"
        buffers = [b.clone() for b in self.model.buffers()] if cpu_bf16 else []  # BN statistics, to undo a NaN pass
        loss, parts, values, finite = self._loss_and_grads(images, labels)
        if not finite and cpu_bf16:
            self._drop_cpu_bf16("a non-finite loss or gradient")  # the AMX fault slipped past the self-check
            for buffer, saved in zip(self.model.buffers(), buffers):
                buffer.copy_(saved)
            loss, parts, values, finite = self._loss_and_grads(images, labels)
        if not finite:
            what = f"loss is {values[0].item()}" if not torch.isfinite(values).all() else "gradients are not finite"
            raise ReidError(f"step {self.global_step + 1}: {what}; nothing was saved from this step. {self._advice()}")
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.global_step += 1
        return float(values[0]), dict(zip(parts, values[1:].tolist()))

    def _loss_and_grads(self, images: torch.Tensor, labels: torch.Tensor) -> tuple:
        """Forward, loss and (when the loss is finite) backward: (loss, parts, values over processes, finite).

        `finite` also covers the gradients unless the fp16 grad scaler is on (it skips such steps itself).
        """
        with autocast(self.device, self.amp_dtype):
            out = self.net(images)
        features, logits, scale = out["features"].float(), out["logits"].float(), 1.0
        if self.config.train.gather_embeddings and self.dist.enabled:
            features = all_gather_with_grad(features, self.dist)
            logits = all_gather_with_grad(logits, self.dist)
            labels = all_gather_with_grad(labels, self.dist)
            scale = float(self.dist.world_size)  # DDP averages: undo it so the step follows the global loss
        loss, parts = self.loss_fn(features, logits, labels)
        values = all_reduce_mean(torch.tensor([float(loss.detach()), *parts.values()], dtype=torch.float64), self.dist)
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(values).all():
            return loss, parts, values, False
        self.scaler.scale(loss * scale if scale != 1.0 else loss).backward()
        return loss, parts, values, self.scaler.is_enabled() or grads_finite(self.params)

    def _drop_cpu_bf16(self, what: str) -> None:
        """Recompute this step and train the rest of the run in float32, with a one-line warning."""
        from reid.models.cpu_bf16 import SAFE_ISA_HINT, cpu_isa

        self.amp_dtype = None
        self._warn(f"step {self.global_step + 1}: CPU bfloat16 gave {what} ({cpu_isa()}); recomputed in float32 "
                   f"and training on in float32. A known oneDNN fault on AMX CPUs: {SAFE_ISA_HINT}")  # fmt: skip

    def classifier_warmup_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[str, float]]:
        """A step of the authors' warm-up: the frozen backbone and neck (eval mode, so BatchNorm
        statistics stay put) embed the batch, and only the classifier learns, with plain CE."""
        for _ in range(2):  # a second pass only to redo a CPU bf16 step in float32
            self.model.eval()
            with torch.no_grad(), autocast(self.device, self.amp_dtype):
                embedding = self.model(images)
            self.model.train()
            loss = self.warmup_loss(self.model.classifier(embedding.float()), labels)
            value = float(all_reduce_mean(loss.detach().double(), self.dist))
            if np.isfinite(value) or self.amp_dtype != torch.bfloat16 or self.device.type != "cpu":
                break
            self._drop_cpu_bf16("a non-finite warm-up loss")
        if not np.isfinite(value):
            raise ReidError(f"step {self.global_step + 1}: warm-up loss is {value}; nothing was saved from this "
                            f"step. {self._advice()}")  # fmt: skip
        self.warmup_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for param in self.model.classifier.parameters():  # the DDP wrapper is bypassed: average by hand
            param.grad = all_reduce_mean(param.grad, self.dist)
        self.warmup_optimizer.step()
        self.global_step += 1
        return value, {"warmup_ce": value}

    def train_epoch(self, epoch: int, start_step: int = 0, totals: dict | None = None) -> dict:
        """Train `epoch` (0-based) from batch `start_step`; returns its record (means over all its steps)."""
        cfg = self.config.train
        self.in_warmup = epoch < cfg.classifier_warmup_epochs
        self.net.train()
        batches = self.loader.batch_sampler
        batches.set_epoch(epoch)
        batches.set_start(start_step)
        self.loader.generator.manual_seed(int(np.random.SeedSequence([cfg.seed, epoch]).generate_state(1)[0]))
        num_steps = len(self.sampler.batches())
        totals, step, images, wait = dict(totals or {}), start_step, 0, 0.0
        bar = tqdm(total=num_steps, initial=start_step, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not self.progress)  # fmt: skip
        start = time.perf_counter()
        iterator = iter(self.loader)
        while True:
            tick = time.perf_counter()
            try:
                batch, labels, _, _ = next(iterator)
            except StopIteration:
                break
            wait += time.perf_counter() - tick
            loss, parts = self.train_step(batch, labels)
            step, images = step + 1, images + len(labels) * self.dist.world_size
            for name, value in {"loss": loss, **parts}.items():
                totals[name] = totals.get(name, 0.0) + value
            lr = self.optimizer.param_groups[0]["lr"]
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", img_s=f"{images / (time.perf_counter() - start):.0f}")
            if self.is_main and self.global_step % 10 == 0:
                self.tb.scalars({"step/loss": loss, "step/lr": lr}, self.global_step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < num_steps:
                self._save(self.state(epoch, step, totals), "last.pt")
        bar.close()
        elapsed = max(time.perf_counter() - start, 1e-9)
        record = {name: value / max(step, 1) for name, value in totals.items()}
        record.update(lr=self.optimizer.param_groups[0]["lr"], images_per_s=images / elapsed, data_wait=wait / elapsed)
        with warnings.catch_warnings():  # in warm-up epochs the main optimizer legitimately takes no step
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            self.scheduler.step()
        return record

    def evaluate(self, split: str = "test", model: torch.nn.Module | None = None) -> dict | None:
        """Rank-1/5/10, mAP, mINP on the val or test split, computed by rank 0 and shared with all."""
        result = None
        if self.is_main:
            query, gallery = (
                (self.val_query, self.val_gallery) if split == "val" else (self.test_query, self.test_gallery)
            )
            result = evaluate_model(
                model or self.model, query, gallery, self.pre, self.device,
                batch_size=self.config.train.batch_size_test, workers=0, progress=self.progress,
            ).as_dict()  # fmt: skip
        self.net.train()
        return broadcast_object(result, self.dist)

    def _end_epoch(self, epoch: int, record: dict) -> None:
        cfg = self.config.train
        done, last = epoch + 1, epoch + 1 == cfg.epochs
        evaluated = bool(cfg.eval_every and done % cfg.eval_every == 0) or last
        if evaluated:
            split = "val" if self.val_query else "test"
            self.last_metrics = record[split] = self.evaluate(split)
            if self.ema is not None:
                record[f"{split}_ema"] = self.evaluate(split, self.ema.module)
            if split == "val" and self.last_metrics["mAP"] > self.best_score:  # never selected on query/gallery
                self.best_score, self.best_epoch = self.last_metrics["mAP"], done
                self._save(self.state(done), "best.pt")
        if done in cfg.snapshot_epochs:
            self._save(self.snapshot(done), f"epoch_{done:03d}.pt")
        if self.is_main:
            self.log.info(json.dumps(record))
            append_line(self.run_dir / "metrics.jsonl", json.dumps(record))
            self.records.append(record)
            self.tb.scalars(record, done, "epoch/")
        self._save(self.state(done), "last.pt")
        if self.is_main and cfg.plots and evaluated:
            plot_curves(self.records, self.run_dir / "plots")

    def fit(self) -> dict:
        """Train to the last epoch; return {"untrained": ..., "final": ..., ...} test metrics (on every rank)."""
        cfg = self.config.train
        try:
            fresh = self.start_epoch == 0 and self.start_step == 0
            if cfg.eval_before and fresh and "untrained" not in self.history:
                self.history["untrained"] = self.evaluate("test")
                self.log.info("untrained: %s", json.dumps(self.history["untrained"]))
            for epoch in range(self.start_epoch, cfg.epochs):
                resumed = epoch == self.start_epoch
                start_step, totals = (self.start_step, self.epoch_totals) if resumed else (0, {})
                if start_step == 0 and epoch + 1 in self.config.optim.reload_best_at:
                    self.reload_best(epoch)
                record = {"epoch": epoch + 1, **self.train_epoch(epoch, start_step, totals)}
                self._end_epoch(epoch, record)
            self.history["best_epoch"] = self.best_epoch
            if self.val_query:
                self.history["final_val"] = self.last_metrics
                self.history["final"] = self.evaluate("test")
            else:
                self.history["final"] = self.last_metrics
            if self.ema is not None:
                self.history["final_ema"] = self.evaluate("test", self.ema.module)
                if self.is_main:
                    save_checkpoint(
                        {**self.snapshot(cfg.epochs), "model": self.ema.state_dict()}, self.ckpt_dir / "ema.pt"
                    )
            if self.is_main:
                write_text(self.run_dir / "metrics.json", json.dumps(self.history, indent=2))
                if cfg.plots:
                    plot_curves(read_metrics(self.run_dir / "metrics.jsonl"), self.run_dir / "plots")
            barrier(self.dist)
            return self.history
        finally:
            self.tb.close()
            if self._owns_group:
                cleanup_distributed()


def _finite_weights(model_state: dict) -> bool:
    """True when every floating-point tensor of a state dict is finite."""
    tensors = [t for t in model_state.values() if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return not tensors or bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors)))


def _label_smoothing(loss_spec: dict) -> float:
    """The smoothing the configured losses use (the warm-up CE follows it), 0.1 by default."""
    for name, key in (("group", "label_smoothing"), ("ce", "epsilon")):
        if key in (loss_spec.get(name) or {}):
            return float(loss_spec[name][key])
    return 0.1
