"""RunFolder: the layout of a run, resolving a run folder or a checkpoint file, atomic checkpoints."""

import pytest
import torch

from reid.errors import ReidError
from reid.io.run_folder import RunFolder, load_checkpoint, save_checkpoint


def test_layout_names_every_file_of_a_run(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.config == tmp_path / "run" / "config.yaml"
    assert run.checkpoint("best") == tmp_path / "run" / "checkpoints" / "best.pt"
    assert run.checkpoint(7) == tmp_path / "run" / "checkpoints" / "epoch_007.pt"
    assert (run.metrics_log.name, run.summary.name, run.plots.name, run.log.name) == (
        "metrics.jsonl", "metrics.json", "plots", "train.log",
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown checkpoint"):
        run.checkpoint("worst")
    assert not run.root.exists() and not run.holds_run()


def test_resolve_prefers_best_then_last_and_accepts_a_file(tmp_path):
    run = RunFolder(tmp_path).create()
    with pytest.raises(ReidError, match="checkpoint not found"):
        RunFolder.resolve(tmp_path)
    state = {"model": {"w": torch.ones(2)}, "config": {}}
    save_checkpoint(state, run.checkpoint("last"))
    assert RunFolder.resolve(tmp_path) == (run, run.checkpoint("last")) and run.holds_run()
    save_checkpoint(state, run.checkpoint("best"))
    assert RunFolder.resolve(tmp_path)[1] == run.checkpoint("best")
    assert RunFolder.resolve(run.checkpoint("last")) == (run, run.checkpoint("last"))
    assert torch.equal(load_checkpoint(tmp_path)["model"]["w"], torch.ones(2))
    with pytest.raises(ReidError, match="checkpoint not found"):
        RunFolder.resolve(tmp_path / "nothing.pt")


def test_snapshots_are_in_epoch_order_with_last_at_the_end(tmp_path):
    run = RunFolder(tmp_path).create()
    for name in (10, 5, "last"):
        save_checkpoint({"model": {}, "config": {}}, run.checkpoint(name))
    assert run.snapshots() == [run.checkpoint(5), run.checkpoint(10), run.checkpoint("last")]
    assert run.find_snapshot("epoch_005.pt") == run.checkpoint(5)
    assert RunFolder.of(run.checkpoint(5)) == run


def test_a_file_that_is_no_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ReidError, match="not a readable reid checkpoint"):
        load_checkpoint(bad)
