"""Exact resume: a run killed part-way (SIGKILL) and resumed ends with the same weights as an
uninterrupted run with the same seed; likewise for a crash inside an epoch (mid-epoch checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reid.config import load_config
from reid.engine.trainer import Trainer
from reid.io.run_folder import load_checkpoint

from .conftest import tiny_config_overrides

REPO = Path(__file__).resolve().parents[1]
EXTRA = [
    "train.epochs=5",
    "train.checkpoint_every=2",
    "train.deterministic=true",
    "train.ema_decay=0.9",
    "train.eval_before=false",
    "train.plots=false",
    "optim.warmup_epochs=1",
]


def _command(run_dir: Path, overrides: list[str], resume: bool = False) -> list[str]:
    head = ["--resume", str(run_dir)] if resume else ["-c", "configs/demo.yaml", "--output", str(run_dir)]
    args = ["train", *head, "--quiet", *([] if resume else overrides)]
    return [sys.executable, "-c", "from reid.cli import main; main()", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _epochs(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return lines


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _deterministic(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("images_per_s", "data_wait")}


def _assert_same_final_state(a: Path, b: Path, epochs: int = 5) -> None:
    sa, sb = load_checkpoint(a / "checkpoints" / "last.pt"), load_checkpoint(b / "checkpoints" / "last.pt")
    assert sa["epoch"] == sb["epoch"] == epochs and sa["step"] == sb["step"] == 0
    for key in ("model", "ema"):
        assert sa[key].keys() == sb[key].keys()
        for name in sa[key]:
            assert torch.equal(sa[key][name], sb[key][name]), f"{key}.{name} differs after resume"
    assert [_deterministic(r) for r in _epochs(a)] == [_deterministic(r) for r in _epochs(b)]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tiny_root, tmp_path):
    overrides = tiny_config_overrides(tiny_root, tmp_path) + EXTRA
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = subprocess.Popen(_command(whole, overrides), cwd=REPO, env=_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    victim = subprocess.Popen(_command(killed, overrides), cwd=REPO, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    last, deadline = killed / "checkpoints" / "last.pt", time.monotonic() + 120
    seen, changes = None, 0
    while victim.poll() is None and time.monotonic() < deadline:
        inode = _inode(last)
        if seen is None and _epochs(killed):  # epoch 1 is logged; its last.pt follows, then step 2 of epoch 2
            seen = inode
        elif seen is not None and inode != seen:
            seen, changes = inode, changes + 1
            if changes == 2:
                break
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    state = load_checkpoint(last)
    assert (state["epoch"], state["step"]) < (5, 0) and len(_epochs(killed)) < 5

    resumed = subprocess.run(_command(killed, overrides, resume=True), cwd=REPO, env=_env(), capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert reference.wait(timeout=120) == 0, reference.stderr.read().decode()[-2000:]
    _assert_same_final_state(whole, killed)


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_crash_inside_an_epoch_resumes_from_the_mid_epoch_checkpoint(tiny_root, tmp_path, monkeypatch):
    """A crash after step 8 (step 3 of epoch 2; 5-step epochs) resumes from step 2 of that epoch, not its start."""
    overrides = tiny_config_overrides(tiny_root, tmp_path) + EXTRA + ["data.workers=1", "train.epochs=3"]
    config = load_config(REPO / "configs" / "demo.yaml", overrides)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy shared machine: no OpenMP spinning
    try:
        Trainer.from_config(config, tmp_path / "whole", progress=False).fit()
        original = Trainer.train_step

        def crashing(self, images, labels):
            if self.global_step == 8:
                raise _Crash
            return original(self, images, labels)

        monkeypatch.setattr(Trainer, "train_step", crashing)
        with pytest.raises(_Crash):
            Trainer.from_config(config, tmp_path / "crashed", progress=False).fit()
        monkeypatch.setattr(Trainer, "train_step", original)
        state = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "last.pt")
        assert (state["epoch"], state["step"], state["global_step"]) == (1, 2, 7)
        trainer = Trainer.from_config(config, tmp_path / "crashed", progress=False, resume=True)
        assert (trainer.start_epoch, trainer.start_step) == (1, 2)
        trainer.fit()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    _assert_same_final_state(tmp_path / "whole", tmp_path / "crashed", epochs=3)
