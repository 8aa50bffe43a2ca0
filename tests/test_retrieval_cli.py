"""`reid train` + `reid test` on a miniature CUB-200-2011: no cameras, validation carved from the
training classes, best.pt chosen on Recall@1, test under the all-vs-all protocol."""

import json

import pytest
from click.testing import CliRunner

from reid.cli import cli
from tests.conftest import tiny_config_overrides
from tests.mini_datasets import make_cub

CLASSES = {**{c: 4 for c in range(1, 9)}, **{c: 4 for c in range(101, 107)}}


@pytest.fixture(scope="module")
def cub_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cubdata")
    make_cub(root, classes=CLASSES, size=(32, 32))
    out = tmp_path_factory.mktemp("cubruns")
    run_dir = out / "cub"
    overrides = tiny_config_overrides(root, out) + [
        "data.dataset=cub200",
        "data.height=32",
        "data.val_identities=2",
        "train.eval_every=1",
        "train.eval_before=false",
        "optim.reload_best_at=[2]",
    ]
    args = ["train", "-c", "configs/demo.yaml", "--quiet", "--output", str(run_dir)]
    result = CliRunner().invoke(cli, args + overrides)
    assert result.exit_code == 0, result.output
    return root, run_dir, result.output


def test_train_selects_on_recall_and_reports_retrieval_metrics(cub_run):
    _, run_dir, output = cub_run
    assert "recall@1" in output and "map@r" in output
    history = json.loads((run_dir / "metrics.json").read_text())
    final = history["final"]
    assert set(final) >= {"recall@1", "recall@2", "recall@4", "recall@8", "map@r", "nmi"}
    assert final["num_valid"] == 24 and final["nmi"] is not None  # 6 test classes x 4 images, NMI at the end
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(line["val"]["num_valid"] == 8 for line in lines)  # 2 held-out classes x 4 images


def test_test_command_uses_the_retrieval_protocol(cub_run, tmp_path):
    root, run_dir, _ = cub_run
    args = ["test", "-m", str(run_dir), "--device", "cpu", "--out", str(tmp_path), "--flip", "--rerank"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "protocol all-vs-all on cub200: 24 queries, 0 skipped" in result.output
    assert "rerank(k1=50,k2=20,l=0.94)" in result.output and "flip" in result.output
    record = json.loads((tmp_path / "test_metrics.json").read_text())
    assert record["protocol"] == "all-vs-all" and 0 <= record["recall@1"] <= record["recall@8"] <= 1
    assert record["post"]["k1"] == 50 and 0 < record["nmi"] <= 1
    ablation = CliRunner().invoke(cli, ["test", "-m", str(run_dir), "--device", "cpu", "--ablation"])
    assert ablation.exit_code != 0 and "only the re-ID protocol" in ablation.output
