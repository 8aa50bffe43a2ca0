"""Benchmark loaders on miniature copies of each release's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reid.data.datasets import FOLDERS, build_dataset, resolve_data_root
from reid.data.datasets.market1501 import parse_name
from reid.data.datasets.msmt17 import camera_of
from reid.errors import DataError

from .mini_datasets import Expected, make_cuhk03np, make_duke, make_market, make_msmt


def counts(records) -> tuple[int, int]:
    return len({r.pid for r in records}), len(records)


def assert_matches(dataset, expected: Expected) -> None:
    for split in ("train", "query", "gallery"):
        assert counts(dataset.split(split)) == expected.splits[split], split
    assert dataset.num_cameras == expected.cameras


def test_market_counts_drop_junk_keep_distractors_and_ignore_thumbs_db(tmp_path):
    expected = make_market(tmp_path)
    ds = build_dataset("market1501", tmp_path)
    assert_matches(ds, expected)
    assert ds.counts["junk"] == 2
    assert 0 in {r.pid for r in ds.gallery}
    assert all(r.pid != -1 for r in ds.gallery + ds.query + ds.train)
    assert ds.warnings == []  # Thumbs.db, readme.txt and gt_bbox/ are not worth a warning
    assert Path(ds.root).name == "Market-1501-v15.09.15"


def test_train_pids_relabelled_in_sorted_order_test_pids_kept(tmp_path):
    make_market(tmp_path)
    ds = build_dataset("market1501", tmp_path)
    # train pids 2, 7, 9 -> 0, 1, 2, each image keeping its identity
    original = {Path(r.path).name: int(Path(r.path).name[:4]) for r in ds.train}
    mapping = {2: 0, 7: 1, 9: 2}
    assert all(r.pid == mapping[original[Path(r.path).name]] for r in ds.train)
    assert {r.pid for r in ds.query} == {3, 5, 11}
    assert all(int(Path(r.path).name[:4]) == r.pid for r in ds.query + ds.gallery)


def test_camids_are_zero_based(tmp_path):
    make_market(tmp_path)
    ds = build_dataset("market1501", tmp_path)
    for r in ds.train + ds.query + ds.gallery:
        assert r.camid == int(Path(r.path).name.split("_c")[1][0]) - 1
    assert min(r.camid for r in ds.gallery) == 0


def test_parse_name_reads_each_release_scheme():
    assert parse_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_name("-1_c3s2_012345_00.jpg") == (-1, 3)
    assert parse_name("0001_c2_f0046182.jpg") == (1, 2)
    assert parse_name("0001_c1_1.png") == (1, 1)
    assert parse_name("Thumbs.db") is None
    assert parse_name("0001_c0_1.png") is None  # cameras are numbered from 1


@pytest.mark.parametrize(
    "folder", ["Market-1501", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"]
)
def test_market_folder_found_with_or_without_version_suffix_and_nested(tmp_path, folder):
    expected = make_market(tmp_path, folder)
    assert_matches(build_dataset("market1501", tmp_path), expected)


def test_dataset_folder_itself_can_be_the_root(tmp_path):
    expected = make_market(tmp_path)
    assert_matches(build_dataset("market1501", expected.folder), expected)


def test_duke_layout_with_gallery_only_distractor_ids(tmp_path):
    expected = make_duke(tmp_path)
    ds = build_dataset("dukemtmc", tmp_path)
    assert_matches(ds, expected)
    assert {r.pid for r in ds.gallery} - {r.pid for r in ds.query} == {8, 12}
    assert ds.warnings == []  # licence files at the top are not in split folders


def test_duke_torchreid_nested_folder(tmp_path):
    expected = make_duke(tmp_path / "dukemtmc-reid")
    assert_matches(build_dataset("dukemtmc", tmp_path), expected)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_both_versions_read_the_lists(tmp_path, version):
    expected = make_msmt(tmp_path, version)
    ds = build_dataset("msmt17", tmp_path)
    assert_matches(ds, expected)
    assert ds.meta["version"] == version
    # the unlisted image in the train folder is not loaded
    assert not any("0099_" in r.path for r in ds.train)
    assert all(Path(r.path).is_file() for r in ds.train + ds.query + ds.gallery)


def test_msmt17_with_val_adds_list_val_to_train(tmp_path):
    expected = make_msmt(tmp_path)
    ds = build_dataset("msmt17", tmp_path, with_val=True)
    assert counts(ds.train) == expected.extra["train_with_val"]
    assert sorted({r.pid for r in ds.train}) == list(range(counts(ds.train)[0]))


def test_msmt17_camera_is_third_field():
    assert camera_of("0000_000_01_0303morning_0015_0.jpg") == 1
    assert camera_of("0114/0114_019_10_0303noon_0284_2_ex.jpg") == 10
    assert camera_of("0000_c1s1_000451_03.jpg") is None


def test_msmt17_both_versions_present_is_ambiguous(tmp_path):
    make_msmt(tmp_path, "V1")
    make_msmt(tmp_path, "V2")
    with pytest.raises(DataError, match=r"several MSMT17 folders \(MSMT17_V1, MSMT17_V2\)"):
        build_dataset("msmt17", tmp_path)
    assert build_dataset("msmt17", tmp_path / "MSMT17_V2").meta["version"] == "V2"


@pytest.mark.parametrize("variant", ["detected", "labeled"])
def test_cuhk03np_variants_are_separate_datasets(tmp_path, variant):
    expected = make_cuhk03np(tmp_path)[variant]
    ds = build_dataset(f"cuhk03-np-{variant}", tmp_path)
    assert_matches(ds, expected)
    assert all(r.path.endswith(".png") and f"/{variant}/" in r.path for r in ds.train)
    assert_matches(build_dataset(f"cuhk03-np-{variant}", tmp_path / "cuhk03-np" / variant), expected)


def test_synthetic_name_loads_synthetic_market_folder(tmp_path):
    expected = make_market(tmp_path, FOLDERS["synthetic"])
    ds = build_dataset("synthetic", tmp_path)
    assert ds.name == "synthetic"
    assert_matches(ds, expected)


def test_unknown_dataset_name_lists_choices(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'market'.*market1501, dukemtmc, msmt17"):
        build_dataset("market", tmp_path)


def test_missing_benchmark_names_expected_folder(tmp_path):
    make_market(tmp_path)
    with pytest.raises(DataError, match=r"DukeMTMC-reID not found under .*expected a folder named like DukeMTMC-reID"):
        build_dataset("dukemtmc", tmp_path)


def test_missing_data_root_says_how_to_set_it(tmp_path):
    with pytest.raises(DataError, match=r"data root .*nope not found: pass --data-root DIR or set REID_DATA_ROOT"):
        build_dataset("market1501", tmp_path / "nope")


def test_resolve_data_root_prefers_explicit_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("REID_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root(str(tmp_path / "cli")) == tmp_path / "cli"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("REID_DATA_ROOT")
    assert resolve_data_root(None) == Path("datasets")


def test_loading_is_deterministic(tmp_path):
    make_market(tmp_path)
    first = build_dataset("market1501", tmp_path)
    shutil.copytree(tmp_path / "Market-1501-v15.09.15", tmp_path / "copy" / "Market-1501")
    second = build_dataset("market1501", tmp_path / "copy")

    def strip(records):
        return [(Path(r.path).name, r.pid, r.camid) for r in records]

    assert strip(first.train) == strip(second.train) == sorted(strip(first.train))


def test_custom_tree_at_the_root_is_not_mistaken_for_market(tmp_path):
    from .mini_datasets import make_custom_tree

    make_custom_tree(tmp_path)
    expected = make_market(tmp_path)
    assert_matches(build_dataset("market1501", tmp_path), expected)
