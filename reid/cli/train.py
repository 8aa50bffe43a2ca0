"""`reid train -c CONFIG [key=value ...]`."""

from __future__ import annotations

import click

from reid.config import load_config
from reid.io.run_folder import RunFolder

from .common import bad_image_options, format_metrics_table


@click.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), help="YAML run config (configs/*.yaml)."
)
@click.option("--output", type=click.Path(file_okay=False), help="Run folder (default: train.output_dir/<name>).")
@click.option(
    "--resume", type=click.Path(file_okay=False), help="Continue the run in this folder from its last checkpoint."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@bad_image_options
@click.argument("overrides", nargs=-1)
def train(
    config_path: str | None,
    output: str | None,
    resume: str | None,
    quiet: bool,
    skip_bad: bool,
    verify_images: bool,
    overrides: tuple[str, ...],
) -> None:
    """Train a model. OVERRIDES are dotted keys, e.g. train.epochs=5 optim.lr=1e-4 loss.group.temperature=40.

    The run folder receives config.yaml, train.log, metrics.jsonl, metrics.json, plots/ and
    checkpoints/ (last.pt, best.pt with a validation split, epoch_XXX.pt snapshots).
    `--resume RUN_DIR` continues a stopped or killed run exactly where its last.pt left it.
    Several processes: torchrun --nproc_per_node N -m reid train -c CONFIG.
    --skip-bad / --verify-images are data.skip_bad=true / data.verify_images=true.
    """
    from reid.engine.trainer import Trainer

    if resume:
        config_path = config_path or str(RunFolder(resume).config)
        output = resume
    flags = [f"data.{k}=true" for k, on in (("skip_bad", skip_bad), ("verify_images", verify_images)) if on]
    config = load_config(config_path, [*overrides, *flags])
    trainer = Trainer.from_config(config, run_dir=output, progress=not quiet, resume=bool(resume))
    history = trainer.fit()
    if not trainer.is_main:
        return
    rows = {}
    if "untrained" in history:
        rows["untrained"] = history["untrained"]
    rows[f"trained ({config.train.epochs} ep)"] = history["final"]
    click.echo(f"\n{config.data.dataset} query/gallery, {config.model.backbone}:")
    protocol = trainer.evaluator.protocol if trainer.evaluator is not None else None
    if protocol is not None and protocol.retrieval:  # Recall@K, MAP@R, NMI
        click.echo(format_metrics_table(rows, [f"recall@{k}" for k in protocol.ks] + ["map@r", "nmi"]))
    else:
        click.echo(format_metrics_table(rows))
    click.echo(f"\nrun folder: {trainer.run_dir}")
