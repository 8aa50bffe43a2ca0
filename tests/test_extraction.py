"""reid.inference.extraction used as a library (what `reid extract` calls): records, bad images, file writing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.errors import DataError
from reid.inference.extraction import extract_to_h5, feature_attrs, fingerprint, folder_records, usable_records
from reid.inference.extractor import FeatureExtractor
from reid.io.features import read_features
from reid.models.loading import load_model, weights_fingerprint
from reid.test_time import DEFAULTS

from .test_extractor import make_checkpoint, random_images


@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    images = random_images(3, seed=5)
    cv2.imwrite(str(root / "0007_c2s1_000001_00.jpg"), images[0])
    cv2.imwrite(str(root / "sub" / "street.png"), images[1])
    cv2.imwrite(str(root / "-1_c1s1_000002_00.jpg"), images[2])  # Market junk: pid -1
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_records_parse_market_names_and_search_subfolders(folder):
    records = {Path(r.path).name: (r.pid, r.camid) for r in folder_records(folder)}
    assert records == {"0007_c2s1_000001_00.jpg": (7, 1), "street.png": (-1, -1), "-1_c1s1_000002_00.jpg": (-1, 0)}


def test_usable_records_name_the_bad_image_or_skip_it_with_one_warning(folder):
    (folder / "empty.jpg").write_bytes(b"")
    records = folder_records(folder)
    with pytest.raises(DataError, match=r"empty\.jpg: .*use --skip-bad"):
        usable_records(records, skip_bad=False, verify=False)
    warnings: list[str] = []
    kept = usable_records(records, skip_bad=True, verify=False, warn=warnings.append)
    assert len(kept) == len(records) - 1 and all(not r.path.endswith("empty.jpg") for r in kept)
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped 1 unusable image(s), e.g. ")
    assert usable_records(kept, skip_bad=False, verify=True, warn=warnings.append) == kept and len(warnings) == 1
    with pytest.warns(UserWarning, match=r"^skipped 1 unusable image\(s\), e\.g\. .*empty\.jpg"):
        usable_records(records, skip_bad=True, verify=False)  # a library caller without `warn`


def test_fingerprint_changes_with_model_options_precision_and_image_list():
    base = ("w1", {"height": 8}, {"flip": False}, False, ["a.jpg", "b.jpg"])
    key = fingerprint(*base)
    assert fingerprint(*base) == key
    for i, other in enumerate(["w2", {"height": 9}, {"flip": True}, True, ["a.jpg"]]):
        assert fingerprint(*base[:i], other, *base[i + 1 :]) != key
    assert fingerprint(*base[:4], ["ab", "c"]) != fingerprint(*base[:4], ["a", "bc"])  # paths are delimited


def test_extract_to_h5_writes_the_extractors_features_and_attributes(folder, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "model.pt")
    model, pre, config, state = load_model(checkpoint, "cpu")
    extractor = FeatureExtractor.from_model(model, pre, "cpu", batch_size=2, options=DEFAULTS)
    records = folder_records(folder)
    attrs = feature_attrs(str(checkpoint), config, weights_fingerprint(state), DEFAULTS, pre, extractor.half, "torch")
    logged: list[str] = []
    rows = extract_to_h5(extractor, records, attrs, tmp_path / "f.h5", chunk=2, progress=False, log=logged.append)
    fs = read_features(tmp_path / "f.h5")
    assert rows == len(records) == len(fs) and logged == []  # nothing to resume
    np.testing.assert_allclose(fs.features, extractor([r.path for r in records]), atol=1e-6)
    assert fs.pids.tolist() == [r.pid for r in records] and fs.attrs["backend"] == "torch"
    assert fs.attrs["config_hash"] == config.hash() and fs.attrs["weights"] == weights_fingerprint(state)
