"""`reid extract`: features of a folder, a benchmark split (HDF5) or a MOT sequence (DeepSORT .npy)."""

from __future__ import annotations

from pathlib import Path

import click

from reid.test_time import FEATURE_FIELDS, click_options

from .common import bad_image_options, device_option, fail, pick_device


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
    from reid.inference import extraction
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
        if not out.endswith(".npy"):
            raise fail(f"--out {out}: a DeepSORT detection file ends in .npy")
        array = extraction.extract_mot_to_npy(extractor, mot, detections, out, progress=not quiet)
        frames = len(set(array[:, 0].astype(int).tolist()))
        click.echo(f"wrote {array.shape[0]} detections x {array.shape[1]} columns ({frames} frames) to {out}")
        return
    if images:
        if not Path(images).is_dir():
            raise fail(f"--images {images}: folder not found")
        records = extraction.folder_records(Path(images))
        if not records:
            raise fail(f"--images {images}: no .jpg/.png/.bmp images found")
        records = extraction.usable_records(records, skip_bad, verify_images, warn=_warn)
    else:
        from reid.data.datasets import build_dataset

        records = build_dataset(
            dataset, data_root or config.data.root, skip_bad=skip_bad, verify_images=verify_images
        ).split(split)
    weights = weights_fingerprint(state)
    attrs = extraction.feature_attrs(checkpoint, config, weights, options, pre, extractor.half, extractor.backend)
    attrs["quantize"] = extractor.quantize or "none"
    rows = extraction.extract_to_h5(extractor, records, attrs, out, chunk, progress=not quiet, log=click.echo)
    click.echo(f"wrote {rows} x {extractor.feature_dim} features to {out}")


def _warn(message: str) -> None:
    """One line on stderr; undecodable bytes of non-UTF-8 file names shown escaped."""
    click.echo(message.encode("utf-8", "backslashreplace").decode("utf-8"), err=True)
