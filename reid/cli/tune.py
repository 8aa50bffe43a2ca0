"""`reid tune -c CONFIG --space SPACE.yaml --trials N [--workers K] [key=value ...]`."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Base YAML run config.")
@click.option("--space", "space_path", required=True, type=click.Path(dir_okay=False), help="Search space YAML.")
@click.option("--trials", type=click.IntRange(min=1), required=True, help="Finished trials the study should hold.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes sharing it.")
@click.option("--out", type=click.Path(file_okay=False), help="Tune folder (default: runs/tune-<space name>).")
@click.option("--storage", help="Database URL shared by machines (default: sqlite file in the tune folder).")
@click.option("--study-name", help="Study name inside the database (default: the tune folder's name).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the TPE sampler.")
@click.argument("overrides", nargs=-1)
def tune(
    config_path: str | None,
    space_path: str,
    trials: int,
    workers: int,
    out: str | None,
    storage: str | None,
    study_name: str | None,
    seed: int,
    overrides: tuple[str, ...],
) -> None:
    """Search hyperparameters with Optuna; every trial is a normal run folder under OUT/trials/.

    Trials train on the training identities minus data.val_identities and are scored (and pruned,
    on intermediate values) on those held-out identities, never on query/gallery. The study is
    stored in OUT/study.db: run the same command again to resume a killed tune, or start more
    processes on it. Writes OUT/best.yaml, OUT/trials.md, OUT/trials.csv and OUT/plots/.
    """
    from reid.tuning import load_space, run_tune
    from reid.tuning.report import write_report
    from reid.tuning.study import open_study

    space = load_space(space_path, config_path, list(overrides))
    out_dir = Path(out or Path("runs") / f"tune-{Path(space_path).stem}")
    start = time.perf_counter()
    result = run_tune(config_path, space, out_dir, trials, workers, list(overrides), storage, study_name, seed)
    study, _ = open_study(out_dir, storage, result.study_name, seed)
    written = write_report(study, out_dir, config_path, list(overrides), space)
    click.echo((out_dir / "trials.md").read_text() if (out_dir / "trials.md").is_file() else "no trials")
    click.echo(f"{result.finished} finished trials in the study ({written['trials']} in all), this call "
               f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    if result.best_value is not None:
        click.echo(f"best: trial {written['best_trial']}, validation {space.metric} {result.best_value:.4f}, "
                   f"{result.best_params}")  # fmt: skip
        click.echo(f"best config: {out_dir / 'best.yaml'}")
