"""The Optuna study behind `reid tune`: one normal run folder per trial, scored on validation identities.

Why it is built this way:
- the study lives in an SQLite file inside the tune folder (or any database URL), so a killed tune
  resumes where it stopped and several processes, or machines with a shared database, add trials
  to the same study;
- a trial is a plain `Trainer` run (config.yaml, train.log, checkpoints/) trained on the training
  identities minus `data.val_identities`, which give the score; query/gallery are never looked at
  for the choice (the test metrics each run computes at the end are only recorded);
- trials report the validation metric every `eval_every` epochs, and the median pruner stops the
  ones that fall behind the trials before them at the same epoch.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reid.config import Config, load_config
from reid.engine.trainer import Trainer
from reid.errors import ConfigError

from .space import SearchSpace

DONE_STATES = ("COMPLETE", "PRUNED")
_WORKER_KEY = "worker "  # study attribute "worker HOST PID": a process that may create trials


@dataclass
class TuneResult:
    out_dir: Path
    study_name: str
    storage: str
    finished: int  # complete + pruned trials in the study
    best_value: float | None
    best_params: dict[str, Any]


def _optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency; a broken install says so
        raise ConfigError("reid tune needs optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class _TrialTrainer(Trainer):
    """A Trainer that reports each validation result to its trial and stops when the pruner says so."""

    trial: Any = None  # set after Trainer.from_config builds it
    metric: str = "mAP"

    def _end_epoch(self, epoch: int, record: dict) -> None:
        super()._end_epoch(epoch, record)
        if record.get("val") and self.trial is not None:
            self.trial.report(float(record["val"][self.metric]), epoch + 1)
            if self.trial.should_prune():
                raise _optuna().TrialPruned(f"pruned after epoch {epoch + 1}")


def trial_config(config_path: str | None, overrides: list[str], space: SearchSpace, values: dict) -> Config:
    """The config of one trial: file, command-line overrides, the space's fixed overrides, the drawn values."""
    drawn = [f"{key}={value}" for key, value in values.items()]
    config = load_config(config_path, [*overrides, *space.overrides, *drawn, f"train.eval_every={space.eval_every}"])
    if config.data.val_identities <= 0:
        raise ConfigError("reid tune scores trials on held-out training identities: set data.val_identities > 0")
    config.train.eval_before = False
    config.train.snapshot_epochs = []
    return config


def open_study(out_dir: Path, storage: str | None, study_name: str, seed: int):
    """Create or load the study (a resumed or shared tune loads the existing one)."""
    optuna = _optuna()
    url = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if url.startswith("sqlite"):
        rdb = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    else:  # a server database shared by machines: heartbeats let a dead machine's trials be failed
        rdb = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=300)
    return optuna.create_study(
        study_name=study_name,
        storage=rdb,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    ), url


def fail_orphans(study: Any, local: bool) -> int:
    """Mark as failed the RUNNING trials of this machine whose process is gone (a killed tune).

    A trial records its host and pid first thing, but optuna creates it RUNNING a moment before
    (while the sampler draws): a process killed in that window leaves a trial without them. In a
    local (SQLite) study such a trial is an orphan once no worker registered on this machine is
    alive; a shared server database leaves it to optuna's heartbeats.
    """
    optuna = _optuna()
    host, failed = socket.gethostname(), 0
    workers_alive = any(_alive(pid) for pid in _registered_workers(study, host))
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = frozen.user_attrs
        if "host" not in attrs:
            if not local or workers_alive:
                continue
        elif attrs["host"] != host or _alive(int(attrs.get("pid", -1))):
            continue
        study._storage.set_trial_state_values(frozen._trial_id, optuna.trial.TrialState.FAIL)
        failed += 1
    return failed


def _register_worker(study: Any) -> None:
    """Record this process in the study (host and pid), before it creates any trial."""
    study.set_user_attr(f"{_WORKER_KEY}{socket.gethostname()} {os.getpid()}", True)


def _registered_workers(study: Any, host: str) -> list[int]:
    prefix = f"{_WORKER_KEY}{host} "
    return [int(key[len(prefix) :]) for key in study.user_attrs if key.startswith(prefix)]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished_trials(study: Any) -> int:
    optuna = _optuna()
    states = tuple(getattr(optuna.trial.TrialState, name) for name in DONE_STATES)
    return len(study.get_trials(deepcopy=False, states=states))


def _objective(study: Any, trial: Any, args: dict) -> float:
    space: SearchSpace = args["space"]
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    values = {param.key: param.suggest(trial) for param in space.params}
    config = trial_config(args["config_path"], args["overrides"], space, values)
    run_dir = Path(args["out_dir"]) / "trials" / f"trial_{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    config.train.run_name = run_dir.name
    trainer = _TrialTrainer.from_config(config, run_dir=run_dir, progress=False)
    trainer.trial, trainer.metric = trial, space.metric
    history = trainer.fit()
    trial.set_user_attr("test", history.get("final"))  # recorded, never used to choose
    return float(history["final_val"][space.metric])


def _worker(args: dict, total: int, worker: int) -> None:
    """One process adding trials until the study holds `total` finished ones."""
    import torch

    torch.set_num_threads(args["threads"])
    study, _ = open_study(Path(args["out_dir"]), args["storage"], args["study_name"], args["seed"])
    _register_worker(study)
    # a fresh seed per process and per resume: the same seed would redraw the trials already in the study
    existing = len(study.get_trials(deepcopy=False))
    study.sampler = _optuna().samplers.TPESampler(seed=args["seed"] + 7919 * worker + existing, n_startup_trials=4)

    def stop_when_done(study: Any, _trial: Any) -> None:
        if finished_trials(study) >= total:
            study.stop()

    while finished_trials(study) < total:
        study.optimize(
            lambda trial: _objective(study, trial, args), n_trials=1, callbacks=[stop_when_done], gc_after_trial=True
        )


def run_tune(
    config_path: str | None,
    space: SearchSpace,
    out_dir: str | Path,
    trials: int,
    workers: int = 1,
    overrides: list[str] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
) -> TuneResult:
    """Run (or resume) a study until it holds `trials` finished trials; returns the best so far.

    `workers` processes share the study through its database; each trains with
    cpu_count // workers threads. A resumed tune first fails the trials a killed process left
    RUNNING on this machine, then carries on numbering after them.
    """
    if trials < 1 or workers < 1:
        raise ConfigError(f"--trials and --workers must be >= 1, got {trials} and {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = study_name or out_dir.resolve().name
    study, url = open_study(out_dir, storage, name, seed)
    fail_orphans(study, url.startswith("sqlite"))
    trial_config(config_path, list(overrides or []), space, {})  # a bad base config fails before any trial
    threads = max(1, (os.cpu_count() or 1) // workers)
    args = {
        "config_path": config_path,
        "overrides": list(overrides or []),
        "space": space,
        "out_dir": str(out_dir),
        "storage": url,
        "study_name": name,
        "seed": seed,
        "threads": int(os.environ.get("OMP_NUM_THREADS", threads)),
    }
    if workers == 1:
        _worker(args, trials, 0)
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(args, trials, k)) for k in range(workers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise ConfigError(f"reid tune: {len(bad)} worker process(es) failed (exit codes {bad}); see the trial logs")
    study, _ = open_study(out_dir, storage, name, seed)
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(done, key=lambda t: t.value) if done else None
    return TuneResult(
        out_dir=out_dir,
        study_name=name,
        storage=url,
        finished=finished_trials(study),
        best_value=None if best is None else float(best.value),
        best_params={} if best is None else dict(best.params),
    )
