"""The HDF5 feature store and `reid extract`: layout, attributes, resume after a kill, clean restart."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from reid.cli import cli
from reid.inference.extractor import FeatureExtractor
from reid.io.features import PartialFeatureWriter, read_features

from .test_extractor import make_checkpoint, random_images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    for i, image in enumerate(random_images(10, seed=11)):
        cv2.imwrite(str(root / f"{i % 3:04d}_c{i % 2 + 1}s1_{i:06d}_00.png"), image)
    return root


def _extract(checkpoint, folder, out, *extra):
    args = ["extract", "-m", str(checkpoint), "--images", str(folder), "--out", str(out), "--device", "cpu"]
    return CliRunner().invoke(cli, args + ["--quiet", "--batch-size", "3", "--chunk", "4", *extra])


def test_partial_writer_resumes_only_with_the_same_fingerprint(tmp_path):
    out, feats = tmp_path / "f.h5", np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    args = ([1, 2, 3, 4, 5], [0] * 5, [f"{i}.jpg" for i in range(5)], 3, {"tta": "none"})
    with PartialFeatureWriter(out, *args, fingerprint="a") as writer:
        writer.write(feats[:2])
    assert not out.exists() and out.with_name("f.h5.partial").exists()
    with PartialFeatureWriter(out, *args, fingerprint="a") as writer:
        assert writer.resumed_from == 2
        writer.write(feats[2:])
        writer.finish()
    fs = read_features(out)
    np.testing.assert_array_equal(fs.features, feats)
    assert fs.pids.tolist() == [1, 2, 3, 4, 5] and fs.attrs["tta"] == "none" and "rows_done" not in fs.attrs
    with PartialFeatureWriter(out, *args, fingerprint="a") as writer:
        writer.write(feats[:1])
    with PartialFeatureWriter(out, *args, fingerprint="b") as writer:  # another model: starts again
        assert writer.resumed_from == 0
        with pytest.raises(ValueError, match="finish"):
            writer.finish()
    out.with_name("f.h5.partial").write_bytes(b"\x89HDF garbage")  # cut off mid-write
    with PartialFeatureWriter(out, *args, fingerprint="a") as writer:
        assert writer.resumed_from == 0


def test_extract_folder_writes_the_layout_and_attributes(checkpoint, folder, tmp_path):
    out = tmp_path / "feats.h5"
    result = _extract(checkpoint, folder, out, "--flip")
    assert result.exit_code == 0, result.output
    fs = read_features(out)
    extractor = FeatureExtractor(checkpoint, device="cpu")
    assert fs.features.shape == (10, extractor.feature_dim)
    with h5py.File(out) as h5:
        assert set(h5) == {"features", "pids", "camids", "paths"}
        for key in ("model", "config_hash", "tta", "weights", "preprocess", "fingerprint"):
            assert key in h5.attrs
        assert h5.attrs["tta"] == "flip"
    names = [Path(p).name for p in fs.paths]  # pid and camera parsed from Market-style names
    assert fs.pids.tolist() == [int(n[:4]) for n in names] and fs.camids.tolist() == [int(n[6]) - 1 for n in names]
    from reid.inference.features import TestTimeOptions

    flip = FeatureExtractor(checkpoint, device="cpu", options=TestTimeOptions(flip=True))
    np.testing.assert_allclose(fs.features, flip(fs.paths), atol=1e-5)


def test_a_killed_extract_resumes_where_it_stopped(checkpoint, folder, tmp_path, monkeypatch):
    out = tmp_path / "feats.h5"
    calls = []
    original = FeatureExtractor.__call__

    def dying(self, images, color="bgr"):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second chunk
        return original(self, images, color)

    monkeypatch.setattr(FeatureExtractor, "__call__", dying)
    result = _extract(checkpoint, folder, out)
    assert result.exit_code != 0
    assert not out.exists()
    with h5py.File(out.with_name("feats.h5.partial")) as h5:
        assert h5.attrs["rows_done"] == 4
    calls.clear()
    monkeypatch.setattr(
        FeatureExtractor,
        "__call__",
        lambda self, images, color="bgr": calls.append(len(images)) or original(self, images, color),
    )
    result = _extract(checkpoint, folder, out)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and calls == [4, 2]  # only the 6 missing images
    resumed = read_features(out)
    clean = tmp_path / "clean.h5"
    assert _extract(checkpoint, folder, clean).exit_code == 0
    np.testing.assert_allclose(resumed.features, read_features(clean).features, atol=1e-6)
    assert not out.with_name("feats.h5.partial").exists()


def test_a_partial_file_from_other_options_is_restarted(checkpoint, folder, tmp_path, monkeypatch):
    out = tmp_path / "feats.h5"
    original = FeatureExtractor.__call__
    calls = []

    def dying(self, images, color="bgr"):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, images, color)

    monkeypatch.setattr(FeatureExtractor, "__call__", dying)
    _extract(checkpoint, folder, out)
    monkeypatch.setattr(FeatureExtractor, "__call__", original)
    result = _extract(checkpoint, folder, out, "--flip")
    assert result.exit_code == 0 and "resuming" not in result.output
    assert read_features(out).attrs["tta"] == "flip"


def test_extract_needs_exactly_one_source(checkpoint, tmp_path):
    result = CliRunner().invoke(cli, ["extract", "-m", str(checkpoint), "--out", str(tmp_path / "x.h5")])
    assert "exactly one of --images DIR, --dataset NAME or --mot SEQUENCE_DIR" in result.output
