"""CUB-200-2011, Cars196, SOP and In-Shop loaders on miniature copies of their releases."""

import pytest
from click.testing import CliRunner

from reid.cli.data_check import check
from reid.data.check import PUBLISHED
from reid.data.datasets import build_dataset
from reid.data.samplers import PKBatchSampler
from reid.errors import DataError
from tests.mini_datasets import make_cars, make_cub, make_inshop, make_sop

MAKERS = {"cub200": make_cub, "cars196": make_cars, "sop": make_sop, "inshop": make_inshop}


@pytest.mark.parametrize("name", list(MAKERS))
def test_counts_cameras_and_relabelled_train(tmp_path, name):
    expected = MAKERS[name](tmp_path)
    ds = build_dataset(name, tmp_path)
    for split, (ids, images) in expected.splits.items():
        records = ds.split(split)
        assert (len({r.pid for r in records}), len(records)) == (ids, images), split
    assert {r.camid for r in ds.train + ds.query + ds.gallery} == {0}
    assert sorted({r.pid for r in ds.train}) == list(range(expected.splits["train"][0]))
    assert ds.meta["cameras"] is False and not ds.warnings
    assert ds.gallery is ds.query if name != "inshop" else ds.gallery is not ds.query
    # the P x K sampler needs no cameras
    batches = PKBatchSampler([r.pid for r in ds.train], p=2, k=2, seed=0).batches()
    assert batches and all(len(b) == 4 for b in batches)


def test_class_splits_follow_the_protocol(tmp_path):
    make_cub(tmp_path)
    make_cars(tmp_path)
    cub, cars = build_dataset("cub200", tmp_path), build_dataset("cars196", tmp_path)
    assert {r.pid for r in cub.query} == {101, 150, 200}
    assert {r.pid for r in cars.query} == {99, 196}
    assert all(r.path.endswith(".jpg") and "/images/" in r.path for r in cub.train)


def test_published_counts():
    assert PUBLISHED["cub200"].train == (100, 5864) and PUBLISHED["cub200"].query == (100, 5924)
    assert PUBLISHED["cars196"].train == (98, 8054) and PUBLISHED["cars196"].gallery == (98, 8131)
    assert PUBLISHED["sop"].train == (11318, 59551) and PUBLISHED["sop"].query == (11316, 60502)
    assert PUBLISHED["inshop"].query == (3985, 14218) and PUBLISHED["inshop"].gallery == (3985, 12612)
    assert PUBLISHED["inshop"].train == (3997, 25882)


def test_bad_list_lines_are_warned_with_file_and_line_or_errors_when_strict(tmp_path):
    expected = make_sop(tmp_path)
    listing = expected.folder / "Ebay_train.txt"
    listing.write_text(listing.read_text() + "99 notanumber 1 bicycle_final/x.JPG\n")
    ds = build_dataset("sop", tmp_path)
    assert ds.counts["unmatched"] == 1
    assert len(ds.warnings) == 1 and str(listing) in ds.warnings[0] and "line 9" in ds.warnings[0]
    with pytest.raises(DataError, match=r"Ebay_train.txt: 1 file\(s\) not named like .*line 9"):
        build_dataset("sop", tmp_path, strict=True)


def test_cub_label_without_image_and_bad_class(tmp_path):
    expected = make_cub(tmp_path)
    labels = expected.folder / "image_class_labels.txt"
    labels.write_text(labels.read_text() + "500 7\n12 300\n")
    ds = build_dataset("cub200", tmp_path)
    assert ds.counts["unmatched"] == 2
    assert any("line 12" in w and "not in images.txt" in w for w in ds.warnings)
    assert any("line 13" in w and "not named like" in w for w in ds.warnings)


def test_cars_bad_annotation_and_missing_image(tmp_path):
    make_cars(tmp_path, extra=[("car_ims/999999.jpg", 250)])
    ds = build_dataset("cars196", tmp_path)
    assert ds.counts["unmatched"] == 1 and "annotation 10" in ds.warnings[0]
    make_cars(tmp_path / "b", extra=[("car_ims/999999.jpg", 5)])
    with pytest.raises(DataError, match=r"999999.jpg: image file not found.*--skip-bad"):
        build_dataset("cars196", tmp_path / "b")
    skipped = build_dataset("cars196", tmp_path / "b", skip_bad=True)
    assert skipped.counts["bad_images"] == 1


def test_cars_mat_without_annotations_is_one_line(tmp_path):
    import scipy.io

    (tmp_path / "cars196").mkdir()
    scipy.io.savemat(tmp_path / "cars196" / "cars_annos.mat", {"something": [1, 2]})
    with pytest.raises(DataError, match="cars_annos.mat: no 'annotations' struct"):
        build_dataset("cars196", tmp_path)


def test_inshop_images_under_img_folder_and_list_at_top(tmp_path):
    expected = make_inshop(tmp_path, folder="inshop")
    (expected.folder / "Img").mkdir()
    (expected.folder / "img").rename(expected.folder / "Img" / "img")
    (expected.folder / "Eval" / "list_eval_partition.txt").rename(expected.folder / "list_eval_partition.txt")
    ds = build_dataset("inshop", tmp_path)
    assert len(ds.query) == expected.splits["query"][1] and "/Img/img/" in ds.query[0].path


def test_missing_list_file_and_missing_release_are_named(tmp_path):
    expected = make_cub(tmp_path)
    (expected.folder / "image_class_labels.txt").unlink()
    with pytest.raises(DataError, match="image_class_labels.txt: list file not found"):
        build_dataset("cub200", tmp_path)
    (expected.folder / "images.txt").unlink()
    with pytest.raises(DataError, match="CUB-200-2011 not found under"):
        build_dataset("cub200", tmp_path)


@pytest.mark.parametrize("name", list(MAKERS))
def test_data_check_cli_on_each_miniature(tmp_path, name):
    MAKERS[name](tmp_path)
    result = CliRunner().invoke(check, [name, "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "difference(s) from the published counts" in result.output
    assert "no cameras in this data set" in result.output
