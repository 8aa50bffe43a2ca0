"""Run logging: the text log, metrics.jsonl (one JSON record per epoch) and TensorBoard when installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from reid.io.atomic import write_text


def run_logger(run_dir: Path | None, name: str) -> logging.Logger:
    """A logger writing to run_dir/train.log, or discarding everything when run_dir is None
    (processes other than rank 0)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if run_dir is None:
        logger.addHandler(logging.NullHandler())
    else:
        handler = logging.FileHandler(run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def read_metrics(path: Path, last_epoch: int | None = None) -> list[dict[str, Any]]:
    """The records of metrics.jsonl, skipping a torn last line (a kill mid-write) and,
    given `last_epoch`, anything after that epoch."""
    records = []
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and (last_epoch is None or record.get("epoch", 0) <= last_epoch):
            records.append(record)
    return records


def truncate_metrics(path: Path, last_epoch: int) -> list[dict[str, Any]]:
    """Rewrite metrics.jsonl to hold only epochs <= last_epoch (the ones a checkpoint covers)."""
    records = read_metrics(path, last_epoch)
    if path.is_file():
        write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return records


class TensorBoard:
    """Scalars to run_dir/tb through torch.utils.tensorboard, or nothing when it is missing."""

    def __init__(self, log_dir: Path | None) -> None:
        self.writer = None
        self.missing = False
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional dependency
            self.missing = True
            return
        self.writer = SummaryWriter(str(log_dir))

    def scalars(self, values: dict[str, Any], step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, dict):
                self.scalars(value, step, f"{prefix}{key}/")
            elif isinstance(value, (int, float)) and key != "epoch":
                self.writer.add_scalar(f"{prefix}{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
