import re
from collections import defaultdict
from pathlib import Path

import cv2
import pytest

from reid.data.datasets import build_dataset
from reid.data.synthetic import SynthSpec, generate
from reid.errors import ReidError

from .conftest import TINY

NAME = re.compile(r"^(-1|\d{4})_c(\d)s1_(\d{6})_(\d{2})\.jpg$")


def _parse(folder: Path):
    out = []
    for path in sorted(folder.iterdir()):
        match = NAME.match(path.name)
        assert match, f"name not in Market-1501 format: {path.name}"
        out.append((int(match.group(1)), int(match.group(2)), path))
    return out


def test_layout_and_names_follow_market1501(tiny_root):
    root = tiny_root / "synthetic-market"
    assert sorted(p.name for p in root.iterdir()) == ["bounding_box_test", "bounding_box_train", "query"]
    for folder in root.iterdir():
        for _, cam, path in _parse(folder):
            assert 1 <= cam <= TINY.cameras
            image = cv2.imread(str(path))
            assert image.shape == (TINY.height, TINY.width, 3)


def test_train_and_test_identities_are_disjoint_with_distractors_and_junk(tiny_root):
    root = tiny_root / "synthetic-market"
    train = {pid for pid, _, _ in _parse(root / "bounding_box_train")}
    gallery = [pid for pid, _, _ in _parse(root / "bounding_box_test")]
    query = {pid for pid, _, _ in _parse(root / "query")}
    assert len(train) == 6 and len(query) == 6
    assert not train & (set(gallery) | query)
    assert gallery.count(0) == TINY.distractors and gallery.count(-1) == TINY.junk
    assert 0 not in query and -1 not in query


def test_every_query_has_a_match_in_another_camera(tiny_root):
    root = tiny_root / "synthetic-market"
    cams = defaultdict(set)
    for pid, cam, _ in _parse(root / "bounding_box_test"):
        cams[pid].add(cam)
    for pid, cam, _ in _parse(root / "query"):
        assert cams[pid] - {cam}, f"query pid {pid} camera {cam} has no cross-camera match"


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    spec = SynthSpec(identities=4, images_per_identity=4, cameras=2, height=48, width=24, distractors=1, junk=1, seed=3)
    generate(tmp_path / "a", spec, progress=False)
    generate(tmp_path / "b", spec, progress=False)
    spec.seed = 4
    generate(tmp_path / "c", spec, progress=False)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg"))
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    files_c = sorted(p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*.jpg"))
    assert files_c != files_a


def test_market_loader_reads_it_like_the_benchmark(tiny_root):
    data = build_dataset("synthetic", tiny_root)
    assert sorted({r.pid for r in data.train}) == list(range(6))  # relabelled
    assert {r.camid for r in data.train + data.query + data.gallery} <= set(range(TINY.cameras))
    assert all(r.pid != -1 for r in data.gallery)  # junk dropped
    assert sum(r.pid == 0 for r in data.gallery) == TINY.distractors  # distractors kept


def test_refuses_to_overwrite_and_rejects_impossible_specs(tmp_path, tiny_root):
    with pytest.raises(ReidError, match="already exists"):
        generate(tiny_root / "synthetic-market", TINY, progress=False)
    with pytest.raises(ReidError, match="at least 4 identities"):
        generate(tmp_path / "x", SynthSpec(identities=2), progress=False)


def _generate_in_child(out: str, spec: SynthSpec) -> None:
    try:
        generate(out, spec, progress=False)
    except ReidError:  # started after the other process had renamed its folder into place
        pass


def test_two_processes_generating_the_same_data_leave_one_complete_copy(tmp_path):
    """Each process builds in a folder of its own; the loser of the race keeps the winner's copy."""
    import multiprocessing

    spec = SynthSpec(identities=6, images_per_identity=4, cameras=2, height=48, width=24, seed=5)
    out = tmp_path / "data"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_generate_in_child, args=(str(out), spec)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    generate(tmp_path / "reference", spec, progress=False)
    files = sorted(p.relative_to(out) for p in out.rglob("*.jpg"))
    assert files == sorted(p.relative_to(tmp_path / "reference") for p in (tmp_path / "reference").rglob("*.jpg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "reference"]  # no .partial folder left
