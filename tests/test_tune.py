"""reid tune: search-space validation, and a killed tune that resumes its study where it stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reid.errors import ConfigError
from reid.tuning import load_space
from reid.tuning.study import trial_config

from .conftest import tiny_config_overrides

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"loss.group.temprature": {"type": "float", "low": 1, "high": 2}},
            r"params\.loss\.group\.temprature: .*unknown",
        ),
        ({"optim.lrr": {"type": "float", "low": 1, "high": 2}}, r"params\.optim\.lrr: unknown config key"),
        ({"optim.lr": {"type": "float", "low": 2, "high": 1}}, r"params\.optim\.lr: expected numbers low < high"),
        ({"optim.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, r"a log range needs low > 0"),
        ({"optim.lr": {"type": "normal"}}, r"params\.optim\.lr\.type: expected one of float, int, categorical"),
        ({"model.pooling": {"type": "categorical", "choices": []}}, r"params\.model\.pooling\.choices"),
    ],
)
def test_bad_search_spaces_name_the_key(tmp_path, params, message):
    space = write(tmp_path / "space.yaml", {"params": params})
    with pytest.raises(ConfigError, match=message):
        load_space(space, ROOT / "configs/demo.yaml")


def test_shipped_group_loss_space_is_valid_and_trials_need_validation_identities(tmp_path):
    space = load_space(ROOT / "configs/tune_group_loss.yaml", ROOT / "configs/demo.yaml")
    assert {p.key for p in space.params} >= {"loss.group.temperature", "loss.group.similarity", "optim.lr"}
    with pytest.raises(ConfigError, match="data.val_identities > 0"):
        trial_config(str(ROOT / "configs/demo.yaml"), [], space, {})
    config = trial_config(str(ROOT / "configs/demo.yaml"), ["data.val_identities=5"], space, {"optim.lr": 0.002})
    assert config.optim.lr == 0.002 and config.train.eval_every == 1 and config.data.val_identities == 5


def _states(db: Path) -> list[tuple[int, str]]:
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


@pytest.mark.slow  # a real SIGKILL mid-study and a resume: ~27 s
def test_killed_tune_resumes_and_numbers_continue(tiny_root, tmp_path):
    space = write(
        tmp_path / "space.yaml",
        {"overrides": ["train.epochs=1"], "params": {"optim.lr": {"type": "float", "low": 5e-4, "high": 2e-3}}},
    )
    out = tmp_path / "tune"
    overrides = [*tiny_config_overrides(tiny_root, tmp_path), "data.val_identities=2", "train.plots=false"]
    command = [
        sys.executable,
        "-c",
        "from reid.cli import main; main()",
        "tune",
        "-c",
        str(ROOT / "configs/demo.yaml"),
        "--space",
        str(space),
    ]
    command += ["--out", str(out), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*command, "--trials", "5"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300
    while not any(state == "COMPLETE" for _, state in _states(out / "study.db")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no trial finished in 300 s"
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # mid-way: the next trial may be RUNNING in the database
    proc.wait()
    before = _states(out / "study.db")
    assert before[0] == (0, "COMPLETE")

    done = subprocess.run([*command, "--trials", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = _states(out / "study.db")
    assert after[: len(before)][0] == (0, "COMPLETE")
    finished = [n for n, state in after if state in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2 and finished[0] == 0 and finished[1] >= 1  # the count went on from the first trial
    assert all(state != "RUNNING" for _, state in after)  # a trial the kill interrupted is marked failed
    assert "2 finished trials in the study" in done.stdout
    with sqlite3.connect(out / "study.db") as con:  # the resumed process drew a new value, not trial 0's again
        values = [v for (v,) in con.execute("SELECT param_value FROM trial_params ORDER BY trial_id")]
    assert len(set(values)) == len(values)
    assert (out / "best.yaml").is_file() and (out / "trials.md").is_file() and (out / "plots/history.png").is_file()
    assert (out / "trials" / "trial_0000" / "config.yaml").is_file()


def test_a_trial_killed_before_it_recorded_its_process_is_failed_once_no_worker_of_this_host_lives(tmp_path):
    # optuna creates a trial RUNNING before the objective records host and pid; a kill in between
    # must not leave it RUNNING for ever (the resumed tune would count it as unfinished work)
    import socket

    from reid.tuning.study import _register_worker, fail_orphans, open_study

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_worker = f"worker {socket.gethostname()} {int(gone.stdout)}"

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    study, url = open_study(tmp_path / "a", None, "a", 0)
    assert url.startswith("sqlite")
    study.set_user_attr(dead_worker, True)
    bare = study.ask()  # RUNNING, no host / pid: its process was killed inside ask
    assert fail_orphans(study, local=False) == 0  # a shared server database: left to optuna's heartbeats
    assert fail_orphans(study, local=True) == 1
    assert study.get_trials(deepcopy=False)[bare.number].state.name == "FAIL"

    study, _ = open_study(tmp_path / "b", None, "b", 0)
    study.set_user_attr(dead_worker, True)
    _register_worker(study)  # this live process works on the study too: the bare trial may be its own
    bare = study.ask()
    assert fail_orphans(study, local=True) == 0
    assert study.get_trials(deepcopy=False)[bare.number].state.name == "RUNNING"
