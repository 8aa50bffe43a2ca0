"""Shared fixtures: a tiny seeded synthetic dataset in Market-1501's layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid.data.synthetic import SynthSpec, generate

TINY = SynthSpec(identities=12, images_per_identity=6, cameras=3, height=64, width=32, distractors=5, junk=3, seed=1)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root holding `synthetic-market` (6 train ids, 6 test ids, 3 cameras, 64x32)."""
    root = tmp_path_factory.mktemp("data")
    generate(root / "synthetic-market", TINY, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_root, tmp_path_factory) -> tuple[Path, str]:
    """One tiny 2-epoch run through `reid train`, shared by the CLI tests: (run folder, output)."""
    from click.testing import CliRunner

    from reid.cli import cli

    out = tmp_path_factory.mktemp("runs")
    run_dir = out / "tiny"
    args = ["train", "-c", "configs/demo.yaml", "--quiet", "--output", str(run_dir)]
    result = CliRunner().invoke(cli, args + tiny_config_overrides(tiny_root, out))
    assert result.exit_code == 0, result.output
    return run_dir, result.output


def tiny_config_overrides(root: Path, out: Path) -> list[str]:
    """Overrides that make a training run take a couple of seconds on the CPU."""
    return [
        f"data.root={root}",
        "data.height=64",
        "data.width=32",
        "data.identities_per_batch=3",
        "data.instances_per_identity=2",
        "data.workers=0",
        "model.backbone=timm:resnet10t",
        "train.epochs=2",
        "train.snapshot_epochs=[]",
        "train.device=cpu",
        f"train.output_dir={out}",
        "train.batch_size_test=64",
        "optim.warmup_epochs=0",
    ]
