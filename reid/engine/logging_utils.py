"""Run logging: the text log, metrics.jsonl (one JSON record per epoch) and TensorBoard when installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from reid.io.atomic import append_line, write_text
from reid.io.run_folder import RunFolder

from .plots import plot_curves


def run_logger(log_file: Path | None, name: str) -> logging.Logger:
    """A logger writing to `log_file` (the run folder's train.log), or discarding everything when it is None
    (processes other than rank 0)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if log_file is None:
        logger.addHandler(logging.NullHandler())
    else:
        handler = logging.FileHandler(log_file)
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


class RunLog:
    """What a run records besides checkpoints: train.log, metrics.jsonl, tb/, plots/ and metrics.json.

    Without a run folder (library use, or processes other than rank 0) every call is a no-op
    apart from keeping the epoch records in memory.
    """

    def __init__(self, run: RunFolder | None, name: str, tensorboard: bool = True, plots: bool = True) -> None:
        self.run, self.plots = run, plots and run is not None
        self.log = run_logger(run.log if run is not None else None, name)
        self.tb = TensorBoard(run.tensorboard if run is not None and tensorboard else None)
        if self.tb.missing:
            self.log.info("tensorboard is not installed: no tb/ logs (metrics.jsonl and plots/ still written)")
        self.records: list[dict[str, Any]] = []

    def resume(self, last_epoch: int) -> None:
        """Forget the records after `last_epoch` (the ones the resumed checkpoint does not cover)."""
        if self.run is not None:
            self.records = truncate_metrics(self.run.metrics_log, last_epoch)

    def step(self, values: dict[str, float], step: int) -> None:
        if self.run is not None and step % 10 == 0:
            self.tb.scalars(values, step)

    def epoch(self, record: dict[str, Any], evaluated: bool) -> None:
        """Append an epoch's record (metrics.jsonl, the log, TensorBoard); redraw the plots after evaluations."""
        if self.run is None:
            self.records.append(record)
            return
        self.log.info(json.dumps(record))
        append_line(self.run.metrics_log, json.dumps(record))
        self.records.append(record)
        self.tb.scalars(record, record["epoch"], "epoch/")

    def curves(self) -> None:
        if self.plots:
            plot_curves(self.records, self.run.plots)

    def finish(self, history: dict[str, Any]) -> None:
        """metrics.json and the final plots."""
        if self.run is None:
            return
        write_text(self.run.summary, json.dumps(history, indent=2))
        if self.plots:
            plot_curves(read_metrics(self.run.metrics_log), self.run.plots)

    def close(self) -> None:
        self.tb.close()
