"""`reid test` with the Group Loss++ strategies, temporal ensembles and --ablation, end to end."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reid.cli import cli
from reid.data.datasets import build_dataset
from reid.inference.features import extract_features
from reid.inference.pipeline import evaluate_model, rank_metrics, score_features
from reid.io.run_folder import load_checkpoint, save_checkpoint
from reid.models.loading import load_model
from reid.test_time import TestConfig


@pytest.fixture(scope="module")
def run_with_snapshots(tiny_run, tmp_path_factory):
    """A copy of the shared tiny run plus two snapshots: last.pt with seeded noise on every float tensor."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    shutil.copytree(tiny_run[0], run_dir)
    folder = run_dir / "checkpoints"
    state = load_checkpoint(folder / "last.pt")
    g = torch.Generator().manual_seed(0)
    for epoch in (1, 2):
        noisy = {
            k: v + 0.1 * v.abs().mean() * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in state["model"].items()
        }
        save_checkpoint({**state, "model": noisy, "epoch": epoch}, folder / f"epoch_{epoch:03d}.pt")
    return run_dir


def invoke(*args):
    return CliRunner().invoke(cli, ["test", *map(str, args), "--device", "cpu", "--ranked-lists", "0"])


def saved_metrics(folder):
    return json.loads((folder / "test_metrics.json").read_text())


def same_metrics(saved: dict, expected: dict):
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert saved[key] == pytest.approx(expected[key], abs=1e-6), key


def test_every_switch_reaches_the_features(run_with_snapshots, tiny_root, tmp_path):
    args = ["--flip", "--scales", "1.0,1.1", "--pool-lambda", 0.5, "--leaky-slope", 0.2, "--beta", 0.003]
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path, *args)
    assert result.exit_code == 0, result.output
    saved = saved_metrics(tmp_path)
    options = TestConfig(flip=True, scales=(1.0, 1.1), pool_lambda=0.5, leaky_slope=0.2, beta=0.003)
    assert saved["options"] == json.loads(json.dumps(options.feature_dict()))
    model, pre, _, _ = load_model(run_with_snapshots)
    data = build_dataset("synthetic", tiny_root)
    expected = evaluate_model(model, data.query, data.gallery, pre, "cpu", settings=options, progress=False)
    same_metrics(saved, expected.as_dict())
    assert "strategies: flip+scales=1,1.1+pool_lambda=0.5+leaky=0.2+beta=0.003" in result.output


def test_config_test_section_gives_the_defaults_and_options_override_it(run_with_snapshots, tiny_root, tmp_path):
    state = load_checkpoint(run_with_snapshots / "checkpoints" / "last.pt")
    state["config"]["test"].update(flip=True, pool_lambda=0.7, scales=[1.0, 0.9])
    save_checkpoint(state, tmp_path / "configured.pt")
    result = invoke("-m", tmp_path / "configured.pt", "--data-root", tiny_root, "--pool-lambda", 0.2)
    assert result.exit_code == 0, result.output
    options = saved_metrics(tmp_path)["options"]
    assert options["flip"] is True and options["scales"] == [1.0, 0.9] and options["pool_lambda"] == 0.2


def manual_average(paths):
    """Mean of the snapshots' float tensors by an explicit float64 sum."""
    states = [load_checkpoint(p)["model"] for p in paths]
    out = {}
    for key, value in states[-1].items():
        if value.is_floating_point():
            total = torch.zeros(value.shape, dtype=torch.float64)
            for state in states:
                total += state[key].double()
            out[key] = (total / len(states)).float()
        else:
            out[key] = value
    return out


def test_weight_ensemble_equals_the_manually_averaged_model(run_with_snapshots, tiny_root, tmp_path):
    names = "epoch_001.pt,epoch_002.pt,last.pt"
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path, "--ensemble", names)
    assert result.exit_code == 0, result.output
    saved = saved_metrics(tmp_path)
    assert saved["ensemble"]["mode"] == "weights" and len(saved["ensemble"]["snapshots"]) == 3
    folder = run_with_snapshots / "checkpoints"
    model, pre, _, _ = load_model(folder / "last.pt")
    model.load_state_dict(manual_average([folder / n for n in names.split(",")]))
    data = build_dataset("synthetic", tiny_root)
    same_metrics(saved, evaluate_model(model, data.query, data.gallery, pre, "cpu", progress=False).as_dict())


@pytest.mark.parametrize("mode", ["features", "concat"])
def test_feature_ensembles_equal_a_manual_combination(run_with_snapshots, tiny_root, tmp_path, mode):
    names, flip = ["epoch_001.pt", "last.pt"], mode == "concat"  # flip once: the options reach every snapshot
    args = ["--ensemble", ",".join(names), "--ensemble-mode", mode] + (["--flip"] if flip else [])
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path, *args)
    assert result.exit_code == 0, result.output
    data = build_dataset("synthetic", tiny_root)
    qs, gs = [], []
    for name in names:
        model, pre, _, _ = load_model(run_with_snapshots / "checkpoints" / name)
        qs.append(extract_features(model, data.query, pre, options=TestConfig(flip=flip), progress=False))
        gs.append(extract_features(model, data.gallery, pre, options=TestConfig(flip=flip), progress=False))
    if mode == "features":
        q, g = qs[0] + qs[1], gs[0] + gs[1]
        q, g = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
    else:
        q, g = np.hstack(qs) / np.sqrt(2), np.hstack(gs) / np.sqrt(2)
    expected, _, _ = score_features(q, g, data.query, data.gallery)
    same_metrics(saved_metrics(tmp_path), expected.as_dict())


def test_ablation_writes_a_row_per_strategy_and_reuses_the_test_numbers(run_with_snapshots, tiny_root, tmp_path):
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path, "--ablation")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads((tmp_path / "ablation.json").read_text())["rows"]}
    for name in ("baseline", "flip", "pool mix lambda=0.5", "ensemble (weights)", "ensemble (concat)"):
        assert name in rows and name in result.output
    assert "all + ensemble (weights)" in rows and "all, single model" in rows
    assert all(row["seconds"] >= row["extract_s"] > 0 for row in rows.values())
    plain = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path / "plain")
    same_metrics(rows["baseline"], saved_metrics(tmp_path / "plain"))
    flip = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path / "flip", "--flip")
    assert plain.exit_code == flip.exit_code == 0
    same_metrics(rows["flip"], saved_metrics(tmp_path / "flip"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scales", "1.0,big"], "--scales '1.0,big': expected comma-separated numbers"),
        (["--pool-lambda", "1.5"], "test.pool_lambda: expected 0.0..1.0, got 1.5"),
        (["--leaky-slope", "2"], "test.leaky_slope: expected 0.0..1.0"),
        (["--ensemble", "last.pt"], "--ensemble: give at least two checkpoints"),
        (["--ensemble", "last.pt,epoch_077.pt"], "epoch_077.pt not found"),
        (["--k1", "0"], "test.k1: expected >= 1, got 0"),
    ],
)
def test_bad_test_options_are_one_line_errors(run_with_snapshots, tiny_root, args, message):
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, *args)
    assert result.exit_code != 0
    text = str(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else ""
    assert message in text + result.output


def test_ensemble_snapshots_are_checked_before_the_data_set_is_read(run_with_snapshots, tmp_path):
    result = invoke("-m", run_with_snapshots, "--data-root", tmp_path / "no-data", "--ensemble", "last.pt,epoch_077.pt")
    assert result.exit_code != 0
    text = str(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else ""
    assert "epoch_077.pt not found" in text + result.output and "no-data" not in text + result.output


def reference_post(q, g, qe, rerank):
    """QE then re-ranking by direct calls of the library functions."""
    from reid.evaluation.distance import cosine_distance
    from reid.inference.query_expansion import alpha_query_expansion, database_side_augmentation
    from reid.inference.rerank import k_reciprocal

    if qe == "alpha":
        q, g = alpha_query_expansion(q, g, 3, 2.0)
    elif qe == "dba":
        g = database_side_augmentation(g, 3, 2.0)
    return k_reciprocal(q, g, k1=5, k2=2, lambda_value=0.4) if rerank else cosine_distance(q, g)


@pytest.mark.parametrize("qe, rerank", [("alpha", True), ("dba", False)])
def test_query_expansion_then_rerank_match_the_library_calls(run_with_snapshots, tiny_root, tmp_path, qe, rerank):
    args = ["--qe", qe, "--qe-k", 3, "--qe-alpha", 2, "--k1", 5, "--k2", 2, "--lambda", 0.4]
    args += ["--rerank"] if rerank else []
    result = invoke("-m", run_with_snapshots, "--data-root", tiny_root, "--out", tmp_path, *args)
    assert result.exit_code == 0, result.output
    saved = saved_metrics(tmp_path)
    assert saved["post"]["qe"] == qe and saved["post"]["rerank"] is rerank and saved["post"]["k1"] == 5
    model, pre, _, _ = load_model(run_with_snapshots)
    data = build_dataset("synthetic", tiny_root)
    q = extract_features(model, data.query, pre, progress=False)
    g = extract_features(model, data.gallery, pre, progress=False)
    same_metrics(saved, rank_metrics(reference_post(q, g, qe, rerank), data.query, data.gallery).as_dict())


def test_reports_cmc_curve_and_seeded_ranked_lists(run_with_snapshots, tiny_root, tmp_path):
    args = ["test", "-m", run_with_snapshots, "--data-root", tiny_root, "--device", "cpu", "--out", tmp_path]
    result = CliRunner().invoke(cli, [*map(str, args), "--ranked-lists", "3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cmc.png").stat().st_size > 0
    first = sorted(p.name for p in (tmp_path / "ranked_lists").glob("*.png"))
    assert len(first) == 3
    again = CliRunner().invoke(
        cli, [*map(str, args), "--out", str(tmp_path / "b"), "--ranked-lists", "3", "--seed", "1"]
    )
    assert again.exit_code == 0 and sorted(p.name for p in (tmp_path / "b" / "ranked_lists").glob("*.png")) == first
    assert len(saved_metrics(tmp_path)["cmc"]) > 1


def test_rerank_command_applies_query_expansion_from_feature_files(run_with_snapshots, tiny_root, tmp_path):
    for split in ("query", "gallery"):
        args = ["extract", "-m", run_with_snapshots, "--dataset", "synthetic", "--split", split]
        args += ["--data-root", tiny_root, "--out", tmp_path / f"{split}.h5", "--device", "cpu"]
        assert CliRunner().invoke(cli, list(map(str, args))).exit_code == 0
    args = ["rerank", "--query", tmp_path / "query.h5", "--gallery", tmp_path / "gallery.h5", "--out", tmp_path / "rr"]
    args += ["--qe", "alpha", "--qe-k", 3, "--qe-alpha", 2, "--k1", 5, "--k2", 2, "--lambda", 0.4]
    result = CliRunner().invoke(cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "rr" / "metrics.json").read_text())
    assert list(rows) == ["original", "qe=alpha(k=3,a=2)+rerank(k1=5,k2=2,l=0.4)"]
    data = build_dataset("synthetic", tiny_root)
    model, pre, _, _ = load_model(run_with_snapshots)
    q = extract_features(model, data.query, pre, progress=False)
    g = extract_features(model, data.gallery, pre, progress=False)
    expected = rank_metrics(reference_post(q, g, "alpha", True), data.query, data.gallery).as_dict()
    same_metrics(rows["qe=alpha(k=3,a=2)+rerank(k1=5,k2=2,l=0.4)"], expected)
