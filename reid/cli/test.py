"""`reid test -m CHECKPOINT`: evaluate a trained model on a benchmark's query/gallery."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import device_option, format_metrics_table, pick_device


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--dataset", help="Benchmark name (default: the one the model was trained on).")
@click.option("--data-root", help="Data root (default: the training config's data.root).")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Flip test-time augmentation.")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for metrics.json (default: the run folder).")
@device_option
def test(
    checkpoint: str,
    dataset: str | None,
    data_root: str | None,
    flip: bool,
    batch_size: int,
    out: str | None,
    device: str,
) -> None:
    """Evaluate CMC rank-1/5/10, mAP and mINP under the Market/Duke protocol."""
    from reid.data.datasets import build_dataset
    from reid.engine.evaluate import evaluate_model
    from reid.inference.features import TestTimeOptions
    from reid.models.loading import load_model

    dev = pick_device(device)
    model, pre, config, _ = load_model(checkpoint, dev)
    data = build_dataset(dataset or config.data.dataset, data_root or config.data.root)
    result = evaluate_model(
        model, data.query, data.gallery, pre, dev, batch_size=batch_size, options=TestTimeOptions(flip=flip)
    )
    metrics = result.as_dict()
    click.echo(format_metrics_table({Path(checkpoint).name: metrics}))
    click.echo(f"{metrics['num_valid']} valid queries, {metrics['num_skipped']} skipped (no true match)")
    folder = Path(out) if out else (Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_metrics.json").write_text(json.dumps({"dataset": data.name, "flip": flip, **metrics}, indent=2))
    click.echo(f"metrics written to {folder / 'test_metrics.json'}")
