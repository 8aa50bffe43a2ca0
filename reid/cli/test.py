"""`reid test -m CHECKPOINT`: evaluate a trained model with the Group Loss++ inference strategies."""

from __future__ import annotations

from pathlib import Path

import click

from .common import bad_image_options, device_option, fail, format_metrics_table, pick_device


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise fail(f"{option} {text!r}: expected comma-separated numbers, e.g. 1.0,1.1") from None
    if not values:
        raise fail(f"{option}: give at least one value")
    return values


def _pick(cli_value, config_value):
    return config_value if cli_value is None else cli_value


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--dataset", help="Benchmark name (default: the one the model was trained on).")
@click.option("--data-root", help="Data root (default: the training config's data.root).")
@click.option("--flip/--no-flip", default=None, help="Average with the horizontal mirror.  [config: test.flip]")
@click.option("--scales", help="Input scales to average, e.g. 1.0,1.1.  [config: test.scales]")
@click.option("--pool-lambda", type=float, help="Test-time pooling lambda*max + (1-lambda)*avg, in [0, 1].")
@click.option("--leaky-slope", type=float, help="Leaky slope of the last block's final activation, in [0, 1].")
@click.option("--beta", type=float, help="Embedding mixing e = f/|f| + beta*f (authors: 0.0005-0.004).")
@click.option("--qe", type=click.Choice(["none", "alpha", "dba"]), help="Query expansion, before re-ranking.")
@click.option("--qe-k", type=int, help="Neighbours used by query expansion, itself included (default 10).")
@click.option("--qe-alpha", type=float, help="Similarity exponent of query expansion (default 3).")
@click.option("--rerank/--no-rerank", default=None, help="k-reciprocal re-ranking (Zhong et al. 2017).")
@click.option("--k1", type=int, help="Re-ranking k1 (default 20).")
@click.option("--k2", type=int, help="Re-ranking k2 (default 6).")
@click.option("--lambda", "lambda_value", type=float, help="Re-ranking weight of the original distance (0.3).")
@click.option("--ensemble", help="Snapshots of the run to combine, e.g. epoch_010.pt,epoch_015.pt,last.pt.")
@click.option("--ensemble-mode", type=click.Choice(["weights", "features", "concat"]), help="How to combine them.")
@click.option("--ablation", is_flag=True, help="Table: baseline, each strategy alone, all together (JSON too).")
@click.option("--ranked-lists", type=int, help="Ranked-list images of this many random queries (default 8).")
@click.option("--seed", default=0, show_default=True, help="Seed for choosing the ranked-list queries.")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: the run folder).")
@bad_image_options
@device_option
def test(
    checkpoint: str,
    dataset,
    data_root,
    batch_size: int,
    out,
    device: str,
    ablation: bool,
    seed: int,
    skip_bad: bool,
    verify_images: bool,
    **opts,
):
    """Evaluate CMC rank-1/5/10, mAP and mINP under the Market/Duke protocol."""
    from reid.data.datasets import build_dataset
    from reid.engine.evaluate import FeatureBank, score_features
    from reid.errors import ReidError
    from reid.models.loading import load_model

    dev = pick_device(device)
    model, pre, config, _ = load_model(checkpoint, dev)
    options, post, ensemble, mode, ranked = _settings(config.test, opts)
    data = build_dataset(
        dataset or config.data.dataset, data_root or config.data.root, skip_bad=skip_bad, verify_images=verify_images
    )
    folder = Path(out) if out else (Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent)
    folder.mkdir(parents=True, exist_ok=True)
    bank = FeatureBank(data.query, data.gallery, pre, dev, batch_size=batch_size)
    model_sets = {"single": [(_checkpoint_key(checkpoint), model)]}
    snapshots = _snapshot_paths(checkpoint, ensemble, ablation)
    if snapshots:
        model_sets.update(_ensemble_sets(snapshots, pre, dev))
    if ablation:
        return _run_ablation(bank, model_sets, options, post, mode, data, folder, checkpoint)
    models = model_sets[mode if ensemble else "single"]
    try:
        q, g, extract_s = bank.features(models, options, "concat" if mode == "concat" else "features")
        result, distmat, post_s = score_features(q, g, data.query, data.gallery, options.metric, post)
    except ModuleNotFoundError as exc:
        raise ReidError(f"--qe/--rerank: {exc.name} is not available in this installation") from None
    metrics = result.as_dict()
    label = Path(checkpoint).name + (f" ensemble({mode}, {len(models)})" if ensemble else "")
    click.echo(format_metrics_table({label: metrics}))
    click.echo(f"{metrics['num_valid']} valid queries, {metrics['num_skipped']} skipped (no true match)")
    click.echo(f"strategies: {options.describe()}; post: {post.describe()}; {extract_s + post_s:.1f}s")
    record = {
        "dataset": data.name,
        "checkpoint": str(checkpoint),
        **metrics,
        "cmc": [float(v) for v in result.cmc],
        "options": options.to_dict(),
        "post": post.to_dict(),
        "ensemble": {"snapshots": [str(p) for p in snapshots], "mode": mode} if ensemble else None,
        "extract_s": extract_s,
        "post_s": post_s,
    }
    _write_reports(folder, record, result, distmat, data, ranked, seed)


def _settings(cfg, opts: dict):
    """TestTimeOptions, PostProcess, ensemble names, ensemble mode, ranked-list count from CLI + config."""
    from reid.engine.evaluate import PostProcess
    from reid.inference.ensemble import ENSEMBLE_MODES
    from reid.inference.features import TestTimeOptions

    scales = parse_floats(opts["scales"], "--scales") if opts["scales"] else tuple(cfg.scales)
    options = TestTimeOptions(
        flip=bool(_pick(opts["flip"], cfg.flip)),
        scales=scales,
        pool_lambda=_pick(opts["pool_lambda"], cfg.pool_lambda),
        leaky_slope=_pick(opts["leaky_slope"], cfg.leaky_slope),
        beta=float(_pick(opts["beta"], cfg.beta)),
    )
    post = PostProcess(
        qe=_pick(opts["qe"], cfg.qe),
        qe_k=_pick(opts["qe_k"], cfg.qe_k),
        qe_alpha=_pick(opts["qe_alpha"], cfg.qe_alpha),
        rerank=bool(_pick(opts["rerank"], cfg.rerank)),
        k1=_pick(opts["k1"], cfg.k1),
        k2=_pick(opts["k2"], cfg.k2),
        lambda_value=_pick(opts["lambda_value"], cfg.lambda_value),
    )
    ensemble = opts["ensemble"].split(",") if opts["ensemble"] else list(cfg.ensemble)
    mode = _pick(opts["ensemble_mode"], cfg.ensemble_mode)
    if mode not in ENSEMBLE_MODES:
        raise fail(f"test.ensemble_mode: unknown {mode!r} ({', '.join(ENSEMBLE_MODES)})")
    ranked = _pick(opts["ranked_lists"], cfg.ranked_lists)
    if ranked < 0:
        raise fail("--ranked-lists must be >= 0")
    return options, post, ensemble, mode, ranked


def _checkpoint_key(checkpoint: str) -> str:
    path = Path(checkpoint)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt", path / "last.pt"):
            if candidate.is_file():
                return str(candidate.resolve())
    return str(path.resolve())


def _snapshot_paths(checkpoint: str, ensemble: list[str], ablation: bool) -> list[Path]:
    from reid.inference.ensemble import discover_snapshots, resolve_snapshots

    if ensemble:
        return resolve_snapshots(checkpoint, ensemble)
    found = discover_snapshots(checkpoint) if ablation else []
    return found if len(found) >= 2 else []


def _ensemble_sets(paths: list[Path], pre, device) -> dict:
    """Model lists per ensemble mode: one weight-averaged model, or every snapshot's model."""
    from reid.errors import ReidError
    from reid.inference.ensemble import load_snapshots, model_from_state, weight_averaged_model

    states, snap_pre = load_snapshots(paths, device)
    if snap_pre.to_dict() != pre.to_dict():
        raise ReidError(f"--ensemble: {paths[0]} uses a different preprocessing than the -m model")
    each = [(str(p.resolve()), model_from_state(s, device=device)) for p, s in zip(paths, states)]
    averaged = [("weights:" + ",".join(str(p.resolve()) for p in paths), weight_averaged_model(states, device))]
    return {"weights": averaged, "features": each, "concat": each}


def _run_ablation(bank, model_sets, options, post, mode, data, folder: Path, checkpoint: str) -> None:
    from reid.inference.ablation import ablation_settings, format_ablation_table, run_ablation, write_ablation

    modes = [m for m in ("weights", "features", "concat") if m in model_sets]
    settings = ablation_settings(options, post, modes, mode)
    rows = run_ablation(bank, model_sets, settings, data.query, data.gallery, log=lambda s: click.echo(s, err=True))
    click.echo(format_ablation_table(rows))
    extra = {"dataset": data.name, "checkpoint": str(checkpoint)}
    if len(model_sets) > 1:
        extra["snapshots"] = [name for name, _ in model_sets["features"]]
    write_ablation(folder / "ablation.json", rows, extra)
    click.echo(f"ablation written to {folder / 'ablation.json'}")


def _write_reports(folder: Path, record: dict, result, distmat, data, ranked: int, seed: int) -> None:
    """metrics JSON (atomic), the CMC curve (cmc.png) and `ranked` ranked-list images of random queries."""
    from reid.evaluation.report import plot_cmc, save_ranked_lists, write_json

    write_json(record, folder / "test_metrics.json")
    name = Path(record["checkpoint"]).name
    plot_cmc({name: result.cmc}, folder / "cmc.png", title=f"CMC, {record['dataset']}")
    click.echo(f"metrics written to {folder / 'test_metrics.json'}, CMC curve to {folder / 'cmc.png'}")
    if ranked:
        paths = save_ranked_lists(
            distmat, data.query, data.gallery, folder / "ranked_lists", num_queries=ranked, seed=seed
        )
        click.echo(f"{len(paths)} ranked lists written to {folder / 'ranked_lists'}")
