"""The training loop: P x K batches, losses from the config, run folder, checkpoints."""

from __future__ import annotations

import json
import logging
import random
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reid.config import Config, save_config
from reid.data.datasets import build_dataset
from reid.data.loaders import train_loader
from reid.data.transforms import Preprocess, TrainTransform
from reid.errors import ConfigError, ReidError
from reid.losses import build_loss
from reid.models import build_model

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate_model
from .schedule import build_optimizer, build_scheduler
from .validation import carve_validation


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {name} but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps(np.random.get_state()[1].tolist()),
        "python": json.dumps(random.getstate()[1]),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys = np.array(json.loads(state["numpy"]), dtype=np.uint32)
    np.random.set_state(("MT19937", keys, 624, 0, 0.0))
    random.setstate((3, tuple(json.loads(state["python"])), None))


class Trainer:
    """Train one run. The run folder holds config.yaml, train.log, metrics.jsonl,
    metrics.json and checkpoints/{last,best}.pt."""

    def __init__(
        self, config: Config, run_dir: str | Path | None = None, progress: bool = True, resume: bool = False
    ) -> None:
        self.config, self.progress = config, progress
        self.device = resolve_device(config.train.device)
        if run_dir is None:
            name = config.train.run_name or f"{config.data.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
            run_dir = Path(config.train.output_dir) / name
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        if not resume and ((self.run_dir / "metrics.jsonl").exists() or (self.ckpt_dir / "last.pt").exists()):
            raise ReidError(f"{self.run_dir}: already holds a run; use --resume {self.run_dir} or another --output")
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, self.run_dir / "config.yaml")
        self.log = self._logger()

        seed_everything(config.train.seed)
        data = config.data
        dataset = build_dataset(data.dataset, data.root)
        for warning in dataset.warnings:
            self.log.warning("%s", warning)
            tqdm.write(f"warning: {warning}")
        train, self.val_query, self.val_gallery = carve_validation(
            dataset.train, data.val_identities, config.train.seed
        )
        self.test_query, self.test_gallery = dataset.query, dataset.gallery
        self.num_classes = len({r.pid for r in train})
        self.pre = Preprocess(height=data.height, width=data.width)
        transform = TrainTransform(self.pre, flip=data.flip, pad=data.pad, erasing=data.random_erasing)
        self.loader = train_loader(
            train, transform, data.identities_per_batch, data.instances_per_identity, config.train.seed, data.workers
        )
        self.model = build_model(config.model, self.num_classes).to(self.device)
        self.criterion = build_loss(config.loss, self.num_classes).to(self.device)
        params = list(self.model.parameters()) + list(self.criterion.parameters())
        self.optimizer = build_optimizer(params, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.train.epochs)
        self.amp = config.train.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.start_epoch, self.best_score, self.history = 0, -1.0, {}
        if resume and (self.ckpt_dir / "last.pt").is_file():
            self.resume()
        self.log.info(
            "dataset %s: %d train images of %d identities, %d val ids, %d query, %d gallery; device %s",
            data.dataset, len(train), self.num_classes, data.val_identities,
            len(self.test_query), len(self.test_gallery), self.device,
        )  # fmt: skip

    def _logger(self) -> logging.Logger:
        logger = logging.getLogger(f"reid.train.{id(self)}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        return logger

    # -- checkpoints -------------------------------------------------------------------------
    def state(self, epoch: int, metrics: dict) -> dict:
        return {
            "model": self.model.state_dict(),
            "criterion": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "metrics": metrics,
            "history": self.history,
            "best_score": self.best_score,
            "config": self.config.to_dict(),
            "num_classes": self.num_classes,
            "preprocess": self.pre.to_dict(),
            "rng": _rng_state(),
        }

    def resume(self) -> None:
        """Continue from checkpoints/last.pt of this run folder."""
        state = load_checkpoint(self.ckpt_dir / "last.pt")
        if state["config"] != self.config.to_dict():
            raise ReidError(f"{self.run_dir}: the config differs from the one the run started with")
        self.model.load_state_dict(state["model"])
        self.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.history, self.best_score = state["epoch"], state["history"], state["best_score"]
        _set_rng_state(state["rng"])
        self.log.info("resumed at epoch %d", self.start_epoch)

    # -- loop --------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        self.loader.batch_sampler.set_epoch(epoch)
        autocast = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else nullcontext()
        totals: dict[str, float] = {}
        steps, images, start = 0, 0, time.perf_counter()
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.config.train.epochs}", disable=not self.progress)
        for batch, labels, _, _ in bar:
            batch, labels = batch.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            with autocast:
                out = self.model(batch)
            loss, parts = self.criterion(out["features"].float(), out["logits"].float(), labels)
            if not torch.isfinite(loss):
                raise ReidError(f"epoch {epoch + 1}: loss is {float(loss.detach())}; lower optim.lr or check the data")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            steps, images = steps + 1, images + len(labels)
            for name, value in {"loss": float(loss.detach()), **parts}.items():
                totals[name] = totals.get(name, 0.0) + value
            speed = images / (time.perf_counter() - start)
            bar.set_postfix(
                loss=f"{float(loss.detach()):.3f}",
                lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                img_s=f"{speed:.0f}",
            )
        record = {name: value / max(steps, 1) for name, value in totals.items()}
        record.update(lr=self.optimizer.param_groups[0]["lr"], images_per_s=images / (time.perf_counter() - start))
        self.scheduler.step()
        return record

    def evaluate(self, split: str = "test") -> dict:
        query, gallery = (self.val_query, self.val_gallery) if split == "val" else (self.test_query, self.test_gallery)
        result = evaluate_model(
            self.model, query, gallery, self.pre, self.device,
            batch_size=self.config.train.batch_size_test, workers=0, progress=self.progress,
        )  # fmt: skip
        self.model.train()
        return result.as_dict()

    def fit(self) -> dict:
        """Train to the last epoch; return {"untrained": ..., "final": ...} test metrics."""
        cfg = self.config.train
        if cfg.eval_before and self.start_epoch == 0 and "untrained" not in self.history:
            self.history["untrained"] = self.evaluate("test")
            self.log.info("untrained: %s", json.dumps(self.history["untrained"]))
        metrics = {}
        for epoch in range(self.start_epoch, cfg.epochs):
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            last = epoch + 1 == cfg.epochs
            if (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0) or last:
                split = "val" if self.val_query else "test"
                metrics = self.evaluate(split)
                record[split] = metrics
                if metrics["mAP"] > self.best_score:
                    self.best_score = metrics["mAP"]
                    save_checkpoint(self.state(epoch + 1, metrics), self.ckpt_dir / "best.pt")
            self.log.info(json.dumps(record))
            with open(self.run_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")
            save_checkpoint(self.state(epoch + 1, metrics), self.ckpt_dir / "last.pt")
        if self.val_query:
            self.history["final_val"] = metrics
            self.history["final"] = self.evaluate("test")
        else:
            self.history["final"] = metrics
        (self.run_dir / "metrics.json").write_text(json.dumps(self.history, indent=2))
        return self.history
