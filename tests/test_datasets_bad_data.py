"""Bad data gives one clear line (or a counted warning) at load time, with the file named."""

from __future__ import annotations

import shutil

import pytest

from reid.data.datasets import build_dataset
from reid.errors import DataError

from .mini_datasets import make_market, make_msmt, write_image


@pytest.fixture
def market(tmp_path):
    return make_market(tmp_path).folder


def test_missing_split_folder_is_named(tmp_path, market):
    shutil.rmtree(market / "query")
    with pytest.raises(
        DataError,
        match=r"Market-1501-v15\.09\.15/query: query folder not found "
        r"\(expected the Market-1501 layout\)",
    ):
        build_dataset("market1501", tmp_path)


def test_empty_split_folder_is_named(tmp_path, market):
    for f in (market / "bounding_box_test").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"bounding_box_test: no images named like <pid>_c<camera from 1>\*"):
        build_dataset("market1501", tmp_path)


def test_unmatched_names_are_warned_and_counted(tmp_path, market):
    write_image(market / "bounding_box_train" / "IMG_0001.jpg", seed=1)
    write_image(market / "query" / "person_c1.jpg", seed=2)
    ds = build_dataset("market1501", tmp_path)
    assert ds.counts["unmatched"] == 2
    assert len(ds.warnings) == 2
    assert "bounding_box_train: skipped 1 file(s) not named like <pid>_c<camera from 1>*" in ds.warnings[0]
    assert ds.warnings[0].endswith(": IMG_0001.jpg")
    assert ds.warnings[1].endswith(": person_c1.jpg")


def test_unmatched_names_are_an_error_when_strict(tmp_path, market):
    write_image(market / "bounding_box_train" / "IMG_0001.jpg", seed=1)
    with pytest.raises(
        DataError,
        match=r"bounding_box_train: 1 file\(s\) not named like .* first IMG_0001\.jpg "
        r"\(strict mode; without it they are skipped with a warning\)",
    ):
        build_dataset("market1501", tmp_path, strict=True)


def test_strict_still_accepts_thumbs_db(tmp_path, market):
    assert build_dataset("market1501", tmp_path, strict=True).warnings == []


def test_zero_byte_image_is_named_even_without_verify(tmp_path, market):
    bad = market / "bounding_box_train" / "0002_c1s1_000999_00.jpg"
    bad.write_bytes(b"")
    with pytest.raises(
        DataError,
        match=r"0002_c1s1_000999_00\.jpg: image file is empty \(0 bytes\); "
        r"fix or remove it, or use --skip-bad",
    ):
        build_dataset("market1501", tmp_path)


def test_corrupt_image_found_only_with_verify(tmp_path, market):
    bad = market / "bounding_box_test" / "0003_c1s1_000999_00.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    assert build_dataset("market1501", tmp_path).counts.get("bad_images", 0) == 0
    with pytest.raises(DataError, match=r"0003_c1s1_000999_00\.jpg: truncated JPEG"):
        build_dataset("market1501", tmp_path, verify_images=True)


def test_truncated_image_skipped_and_counted_with_skip_bad(tmp_path, market):
    good = next((market / "query").glob("0003_*.jpg"))
    data = good.read_bytes()
    cut = market / "bounding_box_test" / "0005_c2s1_000999_00.jpg"
    cut.write_bytes(data[: len(data) // 2])
    (market / "bounding_box_test" / "0005_c2s1_000998_00.jpg").write_bytes(b"")
    before = len(build_dataset("market1501", tmp_path, skip_bad=True).gallery)
    ds = build_dataset("market1501", tmp_path, skip_bad=True, verify_images=True)
    assert ds.counts["bad_images"] == 2
    assert len(ds.gallery) == before - 1  # the empty one was already skipped without verify
    assert all("0005_c2s1_000999_00" not in r.path for r in ds.gallery)
    assert any("skipped 2 unusable image(s)" in w for w in ds.warnings)


def test_query_identity_missing_from_gallery_is_warned_and_counted(tmp_path, market):
    for f in (market / "bounding_box_test").glob("0011_*.jpg"):
        f.unlink()
    ds = build_dataset("market1501", tmp_path)
    assert ds.counts["query_ids_without_gallery"] == 1
    assert "1 query identities have no gallery image, so their queries cannot be evaluated: pid 11" in ds.warnings


def test_query_with_same_camera_matches_only_is_counted(tmp_path, market):
    # pid 11 is in query on camera 6 and in the gallery on camera 1: rename the gallery image to camera 6
    (g,) = (market / "bounding_box_test").glob("0011_*.jpg")
    g.rename(g.with_name(g.name.replace("_c1", "_c6")))
    ds = build_dataset("market1501", tmp_path)
    assert ds.counts["queries_without_cross_camera_match"] == 1


def test_msmt_list_naming_a_missing_file(tmp_path):
    expected = make_msmt(tmp_path)
    listed = (expected.folder / "list_query.txt").read_text().splitlines()[0].split()[0]
    (expected.folder / "test" / listed).unlink()
    with pytest.raises(DataError, match=r"image file not found; fix or remove it, or use --skip-bad"):
        build_dataset("msmt17", tmp_path)
    assert build_dataset("msmt17", tmp_path, skip_bad=True).counts["bad_images"] == 1


def test_msmt_malformed_list_line(tmp_path):
    expected = make_msmt(tmp_path)
    with (expected.folder / "list_gallery.txt").open("a") as f:
        f.write("garbage line here\n")
    ds = build_dataset("msmt17", tmp_path)
    assert ds.counts["unmatched"] == 1
    assert "list_gallery.txt: skipped 1 file(s) not named like" in ds.warnings[0]
    assert "line 5 'garbage line here'" in ds.warnings[0]
    with pytest.raises(DataError, match=r"list_gallery\.txt: 1 file\(s\) not named like .* first line 5"):
        build_dataset("msmt17", tmp_path, strict=True)


def test_msmt_missing_list_file(tmp_path):
    expected = make_msmt(tmp_path)
    (expected.folder / "list_query.txt").unlink()
    with pytest.raises(DataError, match=r"list_query\.txt: MSMT17 list file not found"):
        build_dataset("msmt17", expected.folder)


def test_msmt_missing_image_folders(tmp_path):
    expected = make_msmt(tmp_path)
    shutil.rmtree(expected.folder / "test")
    with pytest.raises(DataError, match=r"MSMT17 image folders not found \(expected train/ and test/ for V1"):
        build_dataset("msmt17", tmp_path)
