"""`reid extract`: features of a folder, a benchmark split (HDF5) or a MOT sequence (DeepSORT .npy)."""

from __future__ import annotations

from pathlib import Path

import click

from reid.data.datasets.base import Record
from reid.data.datasets.market1501 import parse_name
from reid.test_time import FEATURE_FIELDS, click_options

from .common import bad_image_options, device_option, fail, pick_device

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def folder_records(folder: Path) -> list[Record]:
    """Every image under `folder`; pid/camid parsed from Market-style names, else -1."""
    records = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parsed = parse_name(path.name)
        pid, cam = (parsed[0], parsed[1] - 1) if parsed else (-1, -1)
        records.append(Record(str(path), pid, cam))
    return records


def usable_records(records: list[Record], skip_bad: bool, verify: bool) -> list[Record]:
    """Drop (and count) unusable images with `skip_bad`, else name the first one; `verify` decodes them all."""
    from reid.data.datasets.integrity import find_bad_images
    from reid.errors import DataError

    bad = find_bad_images([r.path for r in records], verify)
    if not bad:
        return records
    first, why = next(iter(bad.items()))
    if not skip_bad:
        raise DataError(f"{first}: {why}; fix or remove it, or use --skip-bad to skip bad images")
    message = f"warning: skipped {len(bad)} unusable image(s), e.g. {first}: {why}"
    click.echo(message.encode("utf-8", "backslashreplace").decode("utf-8"), err=True)
    kept = [r for r in records if r.path not in bad]
    if not kept:
        raise DataError("no usable images left after --skip-bad")
    return kept


def fingerprint(weights: str, pre: dict, options: dict, half: bool, paths: list[str]) -> str:
    """What makes a feature file's rows what they are; equal fingerprints may resume each other."""
    from reid.io.fingerprint import stable_hash

    head = {"weights": weights, "pre": pre, "options": options, "half": half}
    return stable_hash([head, *(path + "\0" for path in paths)])


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--images", type=click.Path(file_okay=False), help="A folder of images (searched recursively).")
@click.option("--dataset", help="A benchmark name (with --split).")
@click.option("--split", type=click.Choice(["train", "query", "gallery"]), default="query", show_default=True)
@click.option("--data-root", help="Data root (default: the training config's data.root).")
@click.option("--mot", "mot", type=click.Path(file_okay=False), help="A MOTChallenge sequence folder -> DeepSORT .npy.")
@click.option("--detections", type=click.Path(dir_okay=False), help="With --mot: detections (default SEQ/det/det.txt).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .h5 (or .npy with --mot).")
@click_options(FEATURE_FIELDS)  # the feature switches of the test-time schema
@click.option("--batch-size", default=64, show_default=True)
@click.option("--chunk", default=2048, show_default=True, help="Rows written (and resumable) at a time.")
@click.option("--half", is_flag=True, help="fp16 on CUDA; bfloat16 autocast on the CPU (self-checked, else float32).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "onnxruntime", "openvino"]),
    default="auto",
    show_default=True,
    help="Who runs the network. auto: on the CPU in float32, onnxruntime, else openvino, else torch "
    "(the fastest faithful one installed); torch on CUDA or with --half (docs/extraction.md).",
)
@click.option("--int8", is_flag=True, help="onnxruntime dynamic int8 quantisation: faster, not faithful to 1e-3.")
@bad_image_options
@device_option
def extract(
    checkpoint,
    images,
    dataset,
    split,
    data_root,
    mot,
    detections,
    out,
    batch_size,
    chunk,
    half,
    quiet,
    device,
    skip_bad,
    verify_images,
    backend,
    int8,
    **tta,
) -> None:
    """L2-normalised features of images into an HDF5 file, or of MOT detections into a DeepSORT file.

    HDF5 files are written in chunks to OUT.partial and renamed when complete; a run that
    is stopped leaves only the .partial file, and running the same command again resumes
    it (another model, option or image list starts afresh).
    """
    from reid.inference.extractor import FeatureExtractor
    from reid.models.loading import load_model, weights_fingerprint
    from reid.test_time import DEFAULTS, merge_cli

    if sum(bool(x) for x in (images, dataset, mot)) != 1:
        raise fail("give exactly one of --images DIR, --dataset NAME or --mot SEQUENCE_DIR")
    if detections and not mot:
        raise fail("--detections goes with --mot")
    if batch_size < 1 or chunk < 1:
        raise fail("--batch-size and --chunk must be positive")
    dev = pick_device(device)
    options = merge_cli(DEFAULTS, tta)
    model, pre, config, state = load_model(checkpoint, "cpu")
    quantize = "int8" if int8 else None
    try:
        extractor = FeatureExtractor.from_model(
            model, pre, dev, batch_size=batch_size, half=half, options=options, backend=backend, quantize=quantize
        )
    except ValueError as exc:
        raise fail(f"--backend {backend}: {exc}") from None
    if mot:
        return _extract_mot(extractor, mot, detections, out, quiet)
    if images:
        if not Path(images).is_dir():
            raise fail(f"--images {images}: folder not found")
        records = folder_records(Path(images))
        if not records:
            raise fail(f"--images {images}: no .jpg/.png/.bmp images found")
        records = usable_records(records, skip_bad, verify_images)
    else:
        from reid.data.datasets import build_dataset

        records = build_dataset(
            dataset, data_root or config.data.root, skip_bad=skip_bad, verify_images=verify_images
        ).split(split)
    attrs = {
        "model": str(checkpoint),
        "backbone": config.model.backbone,
        "config_hash": config.hash(),
        "config": config.to_dict(),
        "weights": weights_fingerprint(state),
        "tta": options.describe(),
        "test_time_options": options.feature_dict(),
        "normalized": True,
        "preprocess": pre.to_dict(),
        "half": extractor.half,
        "backend": extractor.backend,
        "quantize": extractor.quantize or "none",
    }
    _extract_h5(extractor, records, attrs, out, chunk, quiet)


def _extract_h5(extractor, records: list[Record], attrs: dict, out: str, chunk: int, quiet: bool) -> None:
    from tqdm import tqdm

    from reid.io.features import PartialFeatureWriter

    paths = [r.path for r in records]
    key = fingerprint(attrs["weights"], attrs["preprocess"], attrs["test_time_options"], attrs["half"], paths)
    pids, camids = [r.pid for r in records], [r.camid for r in records]
    with PartialFeatureWriter(out, pids, camids, paths, extractor.feature_dim, attrs, key) as writer:
        if writer.resumed_from:
            click.echo(f"resuming {writer.partial} at {writer.resumed_from} of {len(paths)} images")
        with tqdm(total=len(paths), initial=writer.rows_done, desc=Path(out).name, unit="img", disable=quiet) as bar:
            while writer.rows_done < len(paths):
                batch = paths[writer.rows_done : writer.rows_done + chunk]
                writer.write(extractor(batch))
                bar.update(len(batch))
        writer.finish()
    click.echo(f"wrote {len(paths)} x {extractor.feature_dim} features to {out}")


def _extract_mot(extractor, mot: str, detections: str | None, out: str, quiet: bool) -> None:
    from reid.io.mot import deepsort_detections, save_npy_atomic

    if not out.endswith(".npy"):
        raise fail(f"--out {out}: a DeepSORT detection file ends in .npy")
    array = deepsort_detections(extractor, mot, detections, progress=not quiet)
    save_npy_atomic(array, out)
    frames = len(set(array[:, 0].astype(int).tolist()))
    click.echo(f"wrote {array.shape[0]} detections x {array.shape[1]} columns ({frames} frames) to {out}")
