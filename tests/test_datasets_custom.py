"""Custom data: the <split>/<pid>/..._c<cam>... tree and the path,pid,camid,split CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reid.data.datasets import build_dataset
from reid.data.datasets.custom import camera_in_name
from reid.errors import DataError

from .mini_datasets import CUSTOM, make_custom_csv, make_custom_tree, write_image


def counts(records) -> tuple[int, int]:
    return len({r.pid for r in records}), len(records)


def test_tree_loads_pids_from_folders_and_cameras_from_names(tmp_path):
    expected = make_custom_tree(tmp_path)
    ds = build_dataset("custom", tmp_path)
    for split in ("train", "query", "gallery"):
        assert counts(ds.split(split)) == expected.splits[split]
    assert ds.counts["junk"] == 1
    assert {r.pid for r in ds.query} == {30, 40}  # original pids kept
    assert {r.pid for r in ds.train} == {0, 1}  # 10, 20 relabelled
    by_name = {Path(r.path).name: r for r in ds.gallery}
    assert by_name["door3_c3_0003.jpg"].pid == 0 and by_name["door3_c3_0003.jpg"].camid == 2
    assert any(r.path.endswith(".png") for r in ds.train)


def test_tree_without_train_is_evaluation_only(tmp_path):
    make_custom_tree(tmp_path)
    shutil.rmtree(tmp_path / "train")
    ds = build_dataset("custom", tmp_path)
    assert ds.train == [] and len(ds.query) == 2
    assert any("no train folder; the dataset can be evaluated but not trained on" in w for w in ds.warnings)


def test_tree_missing_gallery_is_an_error(tmp_path):
    make_custom_tree(tmp_path)
    shutil.rmtree(tmp_path / "gallery")
    with pytest.raises(DataError, match=r"gallery: gallery folder not found \(custom tree needs query/ and gallery/\)"):
        build_dataset("custom", tmp_path)


def test_tree_odd_entries_are_warned_and_strict_fails(tmp_path):
    make_custom_tree(tmp_path)
    write_image(tmp_path / "query" / "alice" / "x_c1_1.jpg", seed=1)  # pid folder not an integer
    write_image(tmp_path / "query" / "30" / "nocamera.jpg", seed=2)  # no _c<cam>
    ds = build_dataset("custom", tmp_path)
    assert ds.counts["unmatched"] == 2
    assert ds.warnings[0].endswith(
        "query: skipped 2 file(s) not named like <split>/<pid>/<anything>_c<camera from 1>"
        "*.jpg as in query/17/gate_c2_0001.jpg: 30/nocamera.jpg, alice/"
    )
    with pytest.raises(DataError, match=r"query: 2 file\(s\) not named like .* first 30/nocamera\.jpg"):
        build_dataset("custom", tmp_path, strict=True)


def test_camera_in_name():
    assert camera_in_name("door_c3_0001.jpg") == 3
    assert camera_in_name("c12_frame7.png") == 12
    assert camera_in_name("0002_c1s1_000451_03.jpg") == 1
    assert camera_in_name("cam_1.jpg") is None
    assert camera_in_name("x_c0_1.jpg") is None


def test_csv_loads_with_relative_paths_and_zero_based_camids(tmp_path):
    expected = make_custom_csv(tmp_path)
    ds = build_dataset("custom", tmp_path)  # the folder holds exactly one CSV
    for split in ("train", "query", "gallery"):
        assert counts(ds.split(split)) == expected.splits[split]
    query_cams = [cam - 1 for _, cam in CUSTOM["query"]]
    assert [r.camid for r in ds.query] == query_cams
    assert all(Path(r.path).is_file() for r in ds.query)
    assert build_dataset("custom:labels.csv", tmp_path).query == ds.query
    assert build_dataset("custom", tmp_path / "labels.csv").query == ds.query


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("images/q.jpg,7,0,val", r"labels\.csv line 13: split 'val' is not train, query or gallery"),
        ("images/q.jpg,seven,0,query", r"labels\.csv line 13: pid 'seven' is not an integer in -1\.\.2147483647"),
        (
            "images/q.jpg,7,-1,query",
            r"labels\.csv line 13: camid '-1' is not an integer in 0\.\.2147483647 \(camid is 0-based\)",
        ),
        (",7,0,query", r"labels\.csv line 13: empty path"),
    ],
)
def test_csv_bad_row_names_its_line(tmp_path, row, message):
    make_custom_csv(tmp_path)
    with (tmp_path / "labels.csv").open("a") as f:
        f.write(row + "\n")
    with pytest.raises(DataError, match=message):
        build_dataset("custom", tmp_path)


def test_csv_missing_column(tmp_path):
    (tmp_path / "l.csv").write_text("path,pid,split\na.jpg,1,query\n")
    with pytest.raises(DataError, match=r"l\.csv: missing column\(s\) camid; need a header path,pid,camid,split"):
        build_dataset("custom", tmp_path / "l.csv")


def test_csv_row_naming_a_missing_image(tmp_path):
    make_custom_csv(tmp_path)
    with (tmp_path / "labels.csv").open("a") as f:
        f.write("images/nothere.jpg,30,1,gallery\n")
    with pytest.raises(DataError, match=r"nothere\.jpg: image file not found"):
        build_dataset("custom", tmp_path)
    assert build_dataset("custom", tmp_path, skip_bad=True).counts["bad_images"] == 1


def test_folder_with_neither_tree_nor_csv(tmp_path):
    with pytest.raises(DataError, match=r"found neither query/ and gallery/ folders nor a CSV file"):
        build_dataset("custom", tmp_path)


def test_readme_csv_example_loads(tmp_path):
    readme = Path(__file__).resolve().parents[1] / "datasets" / "README.md"
    block = readme.read_text().split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "labels.csv").write_text(block)
    for i, line in enumerate(block.splitlines()[1:]):
        write_image(tmp_path / line.split(",")[0], seed=i)
    ds = build_dataset("custom", tmp_path / "labels.csv")
    assert (counts(ds.train), counts(ds.query), counts(ds.gallery)) == ((2, 3), (1, 1), (2, 3))
    assert ds.num_cameras == 3 and ds.warnings == []
