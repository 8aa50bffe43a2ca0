"""`reid track`: detections -> batched re-ID features -> DeepSORT -> MOTChallenge tracks (+ metrics, video)."""

from __future__ import annotations

import itertools
from pathlib import Path

import click

from .common import device_option, fail, pick_device


@click.command()
@click.option(
    "-m", "--model", "checkpoint", type=click.Path(), help="Checkpoint file or run folder (--appearance model)."
)
@click.option(
    "--mot", type=click.Path(file_okay=False), help="A MOTChallenge sequence folder (img1/, det/, seqinfo.ini)."
)
@click.option("--video", type=click.Path(dir_okay=False), help="A video file (anything OpenCV reads).")
@click.option(
    "--detections", type=click.Path(dir_okay=False), help="MOT det file (default with --mot: SEQ/det/det.txt)."
)
@click.option("--detector", type=click.Choice(["hog"]), help="With --video: detect people with OpenCV's HOG detector.")
@click.option(
    "--save-detections", type=click.Path(dir_okay=False), help="Write the detector's boxes as a MOT det file."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Tracks, MOTChallenge result format.")
@click.option("--render", type=click.Path(dir_okay=False), help="Also write a video with boxes and track ids (.mp4).")
@click.option("--metrics-json", type=click.Path(dir_okay=False), help="Metrics file (default OUT.metrics.json).")
@click.option(
    "--gt", type=click.Path(dir_okay=False), help="Ground truth (default with --mot: SEQ/gt/gt.txt if present)."
)
@click.option(
    "--appearance",
    type=click.Choice(["model", "none", "motion", "sort", "random"]),
    default="model",
    show_default=True,
    help="none: DeepSORT without its appearance cascade (IoU stage only); motion: Mahalanobis cascade without "
    "features; sort: IoU over all Kalman-predicted tracks (SORT); random: random features.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "onnxruntime"]),
    default="auto",
    show_default=True,
    help="Who runs the network: auto = onnxruntime on the CPU when installed (no fixed per-call cost), else torch.",
)
@click.option("--max-cosine-distance", default=0.3, show_default=True, help="Appearance gate of DeepSORT.")
@click.option("--max-age", default=30, show_default=True, help="Frames a lost track is kept.")
@click.option("--n-init", default=3, show_default=True, help="Detections before a track is confirmed.")
@click.option("--max-iou-distance", default=0.7, show_default=True, help="IoU stage gate (1 - IoU).")
@click.option(
    "--iou-all-tracks",
    is_flag=True,
    help="With features: after the appearance cascade, IoU over every unmatched track (SORT's stage), "
    "not only tracks missed for one frame.",
)
@click.option("--min-confidence", default=0.0, show_default=True, help="Drop detections scored below this.")
@click.option("--max-frames", type=int, help="Stop after this many frames.")
@click.option("--hog-upscale", default=1.5, show_default=True, help="HOG: upscale frames (finds people under 128 px).")
@click.option("--batch-size", default=64, show_default=True, help="Crops per forward pass (>= detections per frame).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@device_option
def track(
    checkpoint,
    mot,
    video,
    detections,
    detector,
    save_detections,
    out,
    render,
    metrics_json,
    gt,
    appearance,
    max_cosine_distance,
    max_age,
    n_init,
    max_iou_distance,
    iou_all_tracks,
    min_confidence,
    max_frames,
    hog_upscale,
    batch_size,
    quiet,
    device,
    backend,
) -> None:
    """Track people with DeepSORT fed by this project's features; write tracks in MOTChallenge format.

    With ground truth (--gt, or SEQ/gt/gt.txt with --mot) it prints HOTA, IDF1, MOTA and ID
    switches (TrackEval) and writes them to JSON.
    """
    from reid.tracking.runner import TrackerOptions, make_embedder, make_tracker, mot_frames, write_results

    if bool(mot) == bool(video):
        raise fail("give exactly one of --mot SEQUENCE_DIR or --video FILE")
    if mot and detector:
        raise fail("--detector goes with --video (a MOT sequence has det/det.txt; --detections replaces it)")
    if video and bool(detections) == bool(detector):
        raise fail("with --video give exactly one of --detections FILE or --detector hog")
    if save_detections and not detector:
        raise fail("--save-detections goes with --detector")
    if appearance == "model" and not checkpoint:
        raise fail("--appearance model needs -m CHECKPOINT (or use --appearance none / motion / sort, no model)")
    if batch_size < 1 or max_age < 1 or n_init < 1 or (max_frames is not None and max_frames < 1):
        raise fail("--batch-size, --max-age, --n-init and --max-frames must be positive")
    if not 0.0 < max_iou_distance <= 1.0:
        raise fail(f"--max-iou-distance must be in (0, 1], got {max_iou_distance}")
    if render and not render.lower().endswith((".mp4", ".avi")):
        raise fail(f"--render {render}: give an .mp4 (or .avi) file name")
    extractor = None
    if appearance == "model":
        from reid.tracking.adapter import resolve_backend, tracking_extractor

        dev = pick_device(device)
        if backend == "onnxruntime" and not str(dev).startswith("cpu"):
            raise fail(f"--backend onnxruntime runs on the CPU: use --device cpu (got --device {dev})")
        try:
            resolved = resolve_backend(backend, str(dev))
            extractor = tracking_extractor(checkpoint, device=str(dev), batch_size=batch_size, backend=resolved)
        except ValueError as err:  # e.g. onnxruntime not installed
            raise fail(f"--backend {backend}: {err}") from None
    options = TrackerOptions(
        max_age=max_age,
        n_init=n_init,
        max_cosine_distance=max_cosine_distance,
        max_iou_distance=max_iou_distance,
        min_confidence=min_confidence,
        iou_all_tracks=iou_all_tracks,
    )
    saved: list = []
    if mot:
        info, frames = mot_frames(mot, detections)
        total, fps, size, name = info.length, info.frame_rate or 25.0, (info.width, info.height), info.name
        gt = gt or (str(Path(mot) / "gt" / "gt.txt") if (Path(mot) / "gt" / "gt.txt").is_file() else None)
        if max_frames:
            frames = itertools.islice(frames, max_frames)  # frames come in order 1, 2, ...
            total = min(total, max_frames)
    else:
        from reid.tracking.video import HogDetector, video_frames

        hog = HogDetector(upscale=hog_upscale) if detector == "hog" else None
        frames, meta = video_frames(video, detections, hog, max_frames)
        total, fps, size, name = meta["frames"] or None, meta["fps"], (meta["width"], meta["height"]), Path(video).name
        if save_detections:
            from reid.tracking.report import recording

            frames = recording(frames, saved)
    renderer = None
    if render:
        from reid.tracking.video import Renderer

        renderer = Renderer(render, fps, *size)
    try:
        result = _run(
            frames,
            make_embedder(appearance, extractor),
            make_tracker(options, appearance),
            options,
            total,
            quiet,
            renderer,
            name,
        )
    except BaseException:
        if renderer is not None:
            renderer.close(keep=False)
        raise
    if renderer is not None:
        renderer.close()
    write_results(result.rows, out)
    if save_detections:
        from reid.tracking.report import write_detection_file

        click.echo(f"wrote {write_detection_file(saved, save_detections)} detections to {save_detections}")
    click.echo(f"{name}: {result.summary()}" + (f" [{extractor.backend}]" if extractor is not None else ""))
    click.echo(
        f"wrote {len(result.rows)} boxes of {result.num_tracks} tracks to {out}"
        + (f" and the video {render}" if render else "")
    )
    if gt:
        from reid.tracking.metrics import format_metrics
        from reid.tracking.report import score_tracks, write_metrics

        record = score_tracks(gt, result, total, appearance)
        click.echo(f"metrics (TrackEval): {format_metrics(record['metrics'])}")
        path = metrics_json or f"{out}.metrics.json"
        write_metrics(record, path)
        click.echo(f"wrote {path}")


def _run(frames, embedder, tracker, options, total, quiet, renderer, name):
    from reid.tracking.runner import track as run_tracker

    return run_tracker(
        frames, embedder, tracker, options, total=total, progress=not quiet, on_frame=renderer, desc=name
    )
