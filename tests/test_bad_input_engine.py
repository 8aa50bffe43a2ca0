"""Engine-side bad input and nothing lost: pickle payloads refused at every entry point that loads a
checkpoint, a non-finite loss that keeps the last good checkpoint and resumes from it, and the
temp files a killed run leaves in checkpoints/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reid.io.run_folder import load_checkpoint, remove_stray_temps

from .conftest import tiny_config_overrides

REPO = Path(__file__).resolve().parents[1]
MARKER = "reid-pickle-payload-ran"


def _touch_marker(path: str) -> None:
    Path(path).write_text("code ran")


class Payload:
    """Unpickling this would call `_touch_marker`: weights_only=True must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch_marker, (self.marker,))


def _evil_checkpoint(path: Path, marker: Path, template: Path | None = None) -> Path:
    """A checkpoint with the real layout (from `template`) whose model entry is a pickle payload."""
    state = load_checkpoint(template) if template else {"config": {}}
    state["model"] = Payload(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _cli(*args: str, code: str = "", cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    program = code + "\nfrom reid.cli import main; main()"
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)  # fmt: skip


def _assert_one_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- 9: weights_only=True at every entry point ------------------------------------------------------


def test_reid_test_model_refuses_a_pickle_payload(tmp_path):
    marker = tmp_path / MARKER
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    _assert_one_line(_cli("test", "-m", str(evil)), str(evil), "not a readable reid checkpoint")
    assert not marker.exists()


def test_reid_train_resume_refuses_a_pickle_payload(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    marker = tmp_path / MARKER
    _evil_checkpoint(run_dir / "checkpoints" / "last.pt", marker, template=tiny_run[0] / "checkpoints" / "last.pt")
    _assert_one_line(_cli("train", "--resume", str(run_dir), "--quiet"), "last.pt", "not a readable reid checkpoint")
    assert not marker.exists()


def test_model_pretrained_file_refuses_a_pickle_payload(tiny_root, tmp_path):
    marker = tmp_path / MARKER
    evil = tmp_path / "weights.pth"
    torch.save({"conv1.weight": Payload(marker)}, evil)
    overrides = tiny_config_overrides(tiny_root, tmp_path) + [f"model.pretrained={evil}"]
    result = _cli("train", "-c", "configs/demo.yaml", "--quiet", "--output", str(tmp_path / "run"), *overrides)
    _assert_one_line(result, "model.pretrained", str(evil), "not a readable state dict")
    assert not marker.exists()


def test_reid_test_ensemble_refuses_a_pickle_payload(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    marker = tmp_path / MARKER
    _evil_checkpoint(run_dir / "checkpoints" / "evil.pt", marker, template=run_dir / "checkpoints" / "last.pt")
    result = _cli("test", "-m", str(run_dir), "--ensemble", "last.pt,evil.pt", "--ranked-lists", "0")
    _assert_one_line(result, "evil.pt", "not a readable reid checkpoint")
    assert not marker.exists()


def test_feature_extractor_refuses_a_pickle_payload(tmp_path):
    from reid import FeatureExtractor
    from reid.errors import ReidError

    marker = tmp_path / MARKER
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(ReidError, match="not a readable reid checkpoint") as info:
        FeatureExtractor(evil, device="cpu")
    assert "\n" not in str(info.value) and str(evil) in str(info.value)
    assert not marker.exists()


# -- 2: a non-finite loss keeps the last good checkpoint, and --resume continues ------------------

NAN_AT_CALL = """
import torch
import reid.engine.setup as trainer_module
_build, _calls = trainer_module.build_loss, [0]
def build_loss(*args, **kwargs):
    criterion = _build(*args, **kwargs)
    forward = criterion.forward
    def poisoned(features, logits, labels):
        _calls[0] += 1
        loss, parts = forward(features, logits, labels)
        return (loss * float("nan"), parts) if _calls[0] == {k} else (loss, parts)
    criterion.forward = poisoned
    return criterion
trainer_module.build_loss = build_loss
"""


@pytest.mark.slow
def test_nan_loss_keeps_the_last_checkpoint_and_resume_continues(tiny_root, tmp_path):
    run_dir = tmp_path / "run"
    overrides = tiny_config_overrides(tiny_root, tmp_path) + ["train.eval_before=false", "train.plots=false"]
    # 5 steps an epoch: the 7th loss (epoch 2, step 2) is NaN
    result = _cli("train", "-c", "configs/demo.yaml", "--quiet", "--output", str(run_dir), *overrides,
                  code=NAN_AT_CALL.format(k=7))  # fmt: skip
    line = _assert_one_line(result, "step 7: loss is nan", "epoch 1 step 0", f"reid train --resume {run_dir}",
                            "optim.lr", "train.grad_clip")  # fmt: skip
    assert "nothing was saved from this step" in line
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 0, 5)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    resumed = _cli("train", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 10


def test_nan_before_any_checkpoint_says_to_start_again(tiny_root, tmp_path):
    from reid.config import load_config
    from reid.engine.trainer import Trainer
    from reid.errors import ReidError

    config = load_config(REPO / "configs" / "demo.yaml",
                         tiny_config_overrides(tiny_root, tmp_path) + ["train.eval_before=false"])  # fmt: skip
    trainer = Trainer.from_config(config, tmp_path / "run", progress=False)
    forward = trainer.criterion.forward
    trainer.criterion.forward = lambda f, lg, lb: (lambda out: (out[0] * float("inf"), out[1]))(forward(f, lg, lb))
    with pytest.raises(ReidError, match=r"^step 1: loss is (nan|inf); .*No checkpoint was written yet"):
        trainer.fit()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


# -- 7b: stray temp files of a killed run ------------------------------------------------------------


def test_stray_checkpoint_temp_files_are_removed_on_the_next_start(tiny_run, tmp_path):
    from reid.config import load_config
    from reid.engine.trainer import Trainer

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    ckpt = run_dir / "checkpoints"
    strays = [ckpt / ".last.pt.k3j9x2_a.tmp", ckpt / ".best.pt.0q1w2e3r.tmp"]
    for stray in strays:
        stray.write_bytes(b"half a checkpoint")
    keep = [ckpt / "notes.tmp", ckpt / ".hidden", ckpt / "last.pt"]
    (ckpt / "notes.tmp").write_text("not ours")
    (ckpt / ".hidden").write_text("not ours")
    config = load_config(run_dir / "config.yaml")
    Trainer.from_config(config, run_dir, progress=False, resume=True)
    assert not any(s.exists() for s in strays) and all(k.exists() for k in keep)
    assert ".last.pt.k3j9x2_a.tmp" in (run_dir / "train.log").read_text()


def test_remove_stray_temps_matches_only_atomic_checkpoint_temps(tmp_path):
    from reid.io.atomic import atomic_path

    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "last.pt") as tmp:
            Path(tmp).write_bytes(b"x")
            name = Path(tmp).name
            raise KeyboardInterrupt  # the helper cleans up itself; a SIGKILL would not: simulate it
    (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".config.yaml.abc.tmp").write_text("x")
    assert remove_stray_temps(tmp_path) == [tmp_path / name]
    assert (tmp_path / ".config.yaml.abc.tmp").exists()
