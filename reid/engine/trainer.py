"""The training loop over objects: a model, a loss, a loader of batches and an optimizer.

    trainer = Trainer(model, loss, loader, optimizer, epochs=12, evaluator=Evaluator(query, gallery, pre))
    history = trainer.fit()

Small collaborators do the rest: Evaluator (evaluation, reid.engine.evaluator), RunLog (train.log,
metrics.jsonl, plots, TensorBoard; reid.engine.logging_utils), checkpointing (exact resume, snapshots,
reload-best; reid.engine.checkpointing), ModelEMA, ClassifierWarmup and DistInfo (DDP under torchrun).
`Trainer.from_config(config)` builds all of them from a run config, as `reid train` does
(reid.engine.setup).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from reid.config import TrainConfig
from reid.errors import ReidError
from reid.io.run_folder import RunFolder

from . import checkpointing
from .distributed import DistInfo, all_gather_with_grad, all_reduce_mean, barrier, broadcast_object, cleanup_distributed
from .ema import ModelEMA
from .evaluator import Evaluator
from .logging_utils import RunLog
from .options import resolve_device
from .precision import amp_dtype, autocast, checked_cpu_bf16, grads_finite
from .rng import seed_everything
from .warmup import ClassifierWarmup

__all__ = ["Trainer", "resolve_device", "seed_everything"]


class Trainer:
    """Train `model` with `loss` on `train_loader` batches (images, labels, ...) using `optimizer`.

    loss(features, logits, labels) returns (scalar, {part name: value}) like reid.losses.build_loss.
    options: the training knobs (reid.config.TrainConfig; keyword arguments override its fields,
    e.g. epochs=12). run_dir: where checkpoints, logs and plots go (None: nothing is written).
    evaluator: evaluates after every `eval_every` epochs and at the end (None: no evaluation).
    The loader may be any DataLoader; a reid P x K loader (reid.data.loaders.train_loader) also
    gives per-epoch reshuffling and mid-epoch resume. Under torchrun give `dist` (DistInfo) and
    the model is wrapped in DistributedDataParallel.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        train_loader: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        evaluator: Evaluator | None = None,
        run_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        options: TrainConfig | None = None,
        reload_best_at: tuple[int, ...] | list[int] = (),
        warmup: ClassifierWarmup | None = None,
        dist: DistInfo | None = None,
        meta: dict | None = None,
        progress: bool = True,
        **overrides: Any,
    ) -> None:
        self.options = dataclasses.replace(options or TrainConfig(), **overrides)
        cfg = self.options
        self.dist = dist or DistInfo()
        self.is_main = self.dist.is_main
        self.device = torch.device(device) if device is not None else resolve_device(cfg.device)
        self.progress = progress and self.is_main
        self.run = RunFolder(run_dir) if run_dir is not None else None
        self.run_dir = self.run.root if self.run is not None else None
        self.ckpt_dir = self.run.checkpoints if self.run is not None else None
        self.run_log = RunLog(self.run if self.is_main else None, f"reid.train.{id(self)}", cfg.tensorboard, cfg.plots)
        self.log = self.run_log.log
        self.meta = dict(meta or {"config": {}})
        self.evaluator, self.warmup = evaluator, warmup
        self.reload_best_at = list(reload_best_at)
        self.loader = train_loader
        batches = getattr(train_loader, "batch_sampler", None)
        self.sampler = getattr(batches, "sampler", None) if hasattr(batches, "set_start") else None

        for stray in self.run.remove_stray_temps() if self.run is not None and self.is_main else []:
            self.log.info("removed %s (a temp file left by a killed run)", stray.name)
        self.amp_dtype, fallback = checked_cpu_bf16(amp_dtype(cfg.amp, self.device), self.device)
        if fallback:
            self._warn(fallback)
        self.last_saved: tuple[int, int] | None = None  # (epoch, step) of the last.pt this run holds
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        self.model, self.criterion, self.optimizer = model, loss, optimizer
        self.scheduler = scheduler or torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
        self.params = [p for p in list(model.parameters()) + list(loss.parameters()) if p.requires_grad]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.in_warmup = False
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.net, self.loss_fn = self.model, self.criterion
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # a metric-only loss (ranked_list, triplet) leaves the classifier unused: DDP must be told
            unused = not getattr(self.criterion, "uses_logits", True)
            self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=unused)
            if any(p.requires_grad for p in self.criterion.parameters()):
                self.loss_fn = DistributedDataParallel(self.criterion, device_ids=ids)
        self._owns_group = False  # set by from_config when it started the process group

        self.start_epoch, self.start_step, self.epoch_totals = 0, 0, {}
        self.best_score, self.best_epoch, self.global_step = -1.0, 0, 0
        self.history: dict = {}
        self.last_metrics: dict = {}

    @classmethod
    def from_config(cls, config, run_dir: str | Path | None = None, progress: bool = True, resume: bool = False):
        """Everything from a run config (data set, loader, model, loss, optimizer, DDP, run folder), as `reid train`."""
        from .setup import trainer_from_config

        return trainer_from_config(cls, config, run_dir, progress, resume)

    @property
    def records(self) -> list[dict]:
        return self.run_log.records

    # -- checkpoints (reid.engine.checkpointing) ----------------------------------------------
    def state(self, epoch: int, step: int = 0, totals: dict | None = None) -> dict:
        return checkpointing.training_state(self, epoch, step, totals)

    def snapshot(self, epoch: int) -> dict:
        return checkpointing.model_snapshot(self, epoch)

    def resume(self) -> None:
        checkpointing.resume(self)

    def reload_best(self, epoch: int) -> None:
        checkpointing.reload_best(self, epoch)

    def _save(self, state: dict, name: str | int) -> None:
        checkpointing.save(self, state, name)

    def _warn(self, message: str) -> None:
        """A one-line warning in train.log and on the terminal (rank 0)."""
        if self.is_main:
            self.log.warning("%s", message)
            tqdm.write(f"warning: {message}")

    def _advice(self) -> str:
        """What to try after a non-finite loss: resume the last good checkpoint or change the settings."""
        saved = self.last_saved or ((self.start_epoch, self.start_step) if self.start_epoch or self.start_step
                                    else None)  # fmt: skip
        fixes = "a lower optim.lr, train.grad_clip=1.0" + (", train.amp=none" if self.amp_dtype else "")
        if saved is None or self.run is None:
            return f"No checkpoint was written yet: start again with {fixes}"
        return (
            f"The last good checkpoint ({self.run.checkpoint('last')}, epoch {saved[0]} step {saved[1]}) is "
            f"intact: continue it with `reid train --resume {self.run.root}`, or start a new run with {fixes}"
        )

    # -- loop --------------------------------------------------------------------------------
    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[str, float]]:
        """One optimizer step on a local batch (B, 3, H, W); returns the loss averaged over processes.

        A non-finite CPU bf16 step is recomputed in float32 (and the run goes on in float32); any other
        non-finite loss or gradient stops the run before anything of this step is saved.
        """
        cfg = self.options
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
        # the BNNeck output only goes to a loss that asks for it (a Group Loss with w_features: bnneck)
        wants_neck = any(getattr(m, "w_features", "pooled") == "bnneck" for m in self.criterion.modules())
        neck = out["neck"].float() if wants_neck and "neck" in out else None
        if self.options.gather_embeddings and self.dist.enabled:
            features = all_gather_with_grad(features, self.dist)
            logits = all_gather_with_grad(logits, self.dist)
            labels = all_gather_with_grad(labels, self.dist)
            neck = all_gather_with_grad(neck, self.dist) if neck is not None else None
            scale = float(self.dist.world_size)  # DDP averages: undo it so the step follows the global loss
        loss, parts = self.loss_fn(features, logits, labels, **({"neck": neck} if neck is not None else {}))
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
        """A step of the classifier warm-up (reid.engine.warmup); a non-finite CPU bf16 pass is redone in float32."""
        for _ in range(2):  # a second pass only to redo a CPU bf16 step in float32
            loss, value = self.warmup.loss(self.model, images, labels, self.dist, self.amp_dtype)
            if np.isfinite(value) or self.amp_dtype != torch.bfloat16 or self.device.type != "cpu":
                break
            self._drop_cpu_bf16("a non-finite warm-up loss")
        if not np.isfinite(value):
            raise ReidError(f"step {self.global_step + 1}: warm-up loss is {value}; nothing was saved from this "
                            f"step. {self._advice()}")  # fmt: skip
        self.warmup.apply(self.model, loss, self.dist)
        self.global_step += 1
        return value, {"warmup_ce": value}

    def _start_epoch(self, epoch: int, start_step: int) -> int:
        """Reshuffle and position the loader for `epoch`; returns the epoch's number of steps."""
        batches = self.loader.batch_sampler if self.sampler is not None else None
        if batches is None:
            if start_step:
                raise ReidError("mid-epoch resume needs a reid P x K loader (reid.data.loaders.train_loader)")
            return len(self.loader)
        batches.set_epoch(epoch)
        batches.set_start(start_step)
        self.loader.generator.manual_seed(int(np.random.SeedSequence([self.options.seed, epoch]).generate_state(1)[0]))
        return len(self.sampler.batches())

    def train_epoch(self, epoch: int, start_step: int = 0, totals: dict | None = None) -> dict:
        """Train `epoch` (0-based) from batch `start_step`; returns its record (means over all its steps)."""
        cfg = self.options
        self.in_warmup = self.warmup is not None and self.warmup.active(epoch)
        for term in self.criterion.modules():  # the Group Loss++ phases switch options by epoch
            if hasattr(term, "set_epoch"):
                term.set_epoch(epoch)
        self.net.train()
        num_steps = self._start_epoch(epoch, start_step)
        totals, step, images, wait = dict(totals or {}), start_step, 0, 0.0
        bar = tqdm(total=num_steps, initial=start_step, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not self.progress)  # fmt: skip
        start = time.perf_counter()
        iterator = iter(self.loader)
        while True:
            tick = time.perf_counter()
            try:
                batch, labels, *_ = next(iterator)
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
            if self.is_main:
                self.run_log.step({"step/loss": loss, "step/lr": lr}, self.global_step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < num_steps:
                self._save(self.state(epoch, step, totals), "last")
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
        if self.is_main and self.evaluator is not None:
            result = self.evaluator(model or self.model, split, self.device, self.progress)
        self.net.train()
        return broadcast_object(result, self.dist)

    def _end_epoch(self, epoch: int, record: dict) -> None:
        cfg = self.options
        done, last = epoch + 1, epoch + 1 == cfg.epochs
        evaluated = self.evaluator is not None and (bool(cfg.eval_every and done % cfg.eval_every == 0) or last)
        if evaluated:
            split = "val" if self.evaluator.has_val else "test"
            self.last_metrics = record[split] = self.evaluate(split)
            if self.ema is not None:
                record[f"{split}_ema"] = self.evaluate(split, self.ema.module)
            score = self.last_metrics[self.evaluator.select_key]  # mAP; Recall@1 on retrieval sets
            if split == "val" and score > self.best_score:  # never selected on query/gallery
                self.best_score, self.best_epoch = score, done
                self._save(self.state(done), "best")
        if done in cfg.snapshot_epochs:
            self._save(self.snapshot(done), done)
        if self.is_main:
            self.run_log.epoch(record, evaluated)
        self._save(self.state(done), "last")
        if self.is_main and evaluated:
            self.run_log.curves()

    def fit(self) -> dict:
        """Train to the last epoch; return {"untrained": ..., "final": ..., ...} test metrics (on every rank)."""
        cfg = self.options
        try:
            fresh = self.start_epoch == 0 and self.start_step == 0
            if cfg.eval_before and fresh and "untrained" not in self.history and self.evaluator is not None:
                self.history["untrained"] = self.evaluate("test")
                self.log.info("untrained: %s", json.dumps(self.history["untrained"]))
            for epoch in range(self.start_epoch, cfg.epochs):
                resumed = epoch == self.start_epoch
                start_step, totals = (self.start_step, self.epoch_totals) if resumed else (0, {})
                if start_step == 0 and epoch + 1 in self.reload_best_at:
                    self.reload_best(epoch)
                record = {"epoch": epoch + 1, **self.train_epoch(epoch, start_step, totals)}
                self._end_epoch(epoch, record)
            self.history["best_epoch"] = self.best_epoch
            if self.evaluator is not None and self.evaluator.has_val:
                self.history["final_val"] = self.last_metrics
                self.history["final"] = self.evaluate("test")
            else:
                self.history["final"] = self.last_metrics
            if self.ema is not None:
                self.history["final_ema"] = self.evaluate("test", self.ema.module)
                self._save({**self.snapshot(cfg.epochs), "model": self.ema.state_dict()}, "ema")
            if self.is_main:
                self.run_log.finish(self.history)
            barrier(self.dist)
            return self.history
        finally:
            self.run_log.close()
            if self._owns_group:
                cleanup_distributed()
