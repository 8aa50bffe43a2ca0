"""`reid extract`: features of a folder of images or a benchmark split into an HDF5 file."""

from __future__ import annotations

import re
from pathlib import Path

import click

from reid.data.datasets.base import Record

from .common import device_option, fail, pick_device

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def folder_records(folder: Path) -> list[Record]:
    """Every image under `folder`; pid/camid parsed from Market-style names, else -1."""
    records = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        match = _MARKET_NAME.match(path.name)
        pid, cam = (int(match.group(1)), int(match.group(2)) - 1) if match else (-1, -1)
        records.append(Record(str(path), pid, cam))
    return records


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--images", type=click.Path(file_okay=False), help="A folder of images (searched recursively).")
@click.option("--dataset", help="A benchmark name (with --split).")
@click.option("--split", type=click.Choice(["train", "query", "gallery"]), default="query", show_default=True)
@click.option("--data-root", help="Data root (default: the training config's data.root).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .h5 file.")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Flip test-time augmentation.")
@click.option("--batch-size", default=128, show_default=True)
@device_option
def extract(checkpoint, images, dataset, split, data_root, out, flip, batch_size, device) -> None:
    """Write L2-normalised features, pids, camids and paths to an HDF5 file (atomically)."""
    from reid.data.datasets import build_dataset
    from reid.inference.features import TestTimeOptions, extract_features
    from reid.io.features import FeatureSet, write_features
    from reid.models.loading import load_model

    if bool(images) == bool(dataset):
        raise fail("give exactly one of --images DIR or --dataset NAME")
    dev = pick_device(device)
    model, pre, config, state = load_model(checkpoint, dev)
    if images:
        if not Path(images).is_dir():
            raise fail(f"--images {images}: folder not found")
        records = folder_records(Path(images))
        if not records:
            raise fail(f"--images {images}: no .jpg/.png/.bmp images found")
    else:
        records = build_dataset(dataset, data_root or config.data.root).split(split)
    features = extract_features(
        model, records, pre, dev, batch_size=batch_size, options=TestTimeOptions(flip=flip), desc=Path(out).name
    )
    attrs = {
        "model": str(checkpoint),
        "backbone": config.model.backbone,
        "config_hash": config.hash(),
        "config": config.to_dict(),
        "tta": "flip" if flip else "none",
        "normalized": True,
        "preprocess": pre.to_dict(),
    }
    fs = FeatureSet(features, [r.pid for r in records], [r.camid for r in records], [r.path for r in records], attrs)
    write_features(out, fs)
    click.echo(f"wrote {len(records)} x {features.shape[1]} features to {out}")
