"""`reid data from-mot`: ground-truth boxes of MOT sequences -> a Market-1501-layout re-ID dataset."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from reid.cli import cli
from reid.data.datasets import build_dataset
from reid.data.datasets.market1501 import parse_name
from reid.tracking.from_mot import FromMotRules, plan_crops


def _sequence(root: Path, name: str, tracks: dict[int, dict], frames: int = 20) -> Path:
    """A 200x100 sequence; tracks: id -> {frames, box (x, y, w, h), vis, mark, cls}."""
    seq = root / name
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    rng = np.random.default_rng(0)
    for f in range(1, frames + 1):
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), rng.integers(0, 255, (100, 200, 3), dtype=np.uint8))
    lines = []
    for tid, t in tracks.items():
        for f in t.get("frames", range(1, frames + 1)):
            x, y, w, h = t.get("box", (10, 10, 30, 60))
            lines.append(f"{f},{tid},{x},{y},{w},{h},{t.get('mark', 1)},{t.get('cls', 1)},{t.get('vis', 1.0)}")
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=25\nseqLength={frames}\nimWidth=200\nimHeight=100\nimExt=.jpg\n"
    )
    return seq


TRACKS = {
    1: {},
    2: {"vis": 0.3},  # too hidden
    3: {"box": (10, 10, 20, 40)},  # too small
    4: {"frames": range(1, 9)},  # first half only: one camera
    5: {"box": (180, 10, 30, 60)},  # a third outside the frame
    6: {"mark": 0},  # ignored
    7: {"cls": 7},  # static person
    8: {"box": (100, 20, 30, 70)},
}


def test_rules_by_hand(tmp_path):
    a = _sequence(tmp_path, "A", TRACKS)
    b = _sequence(tmp_path, "B", {1: {}, 2: {"frames": range(11, 21)}})
    crops = plan_crops([a, b], FromMotRules(every=5, time_chunks=2, test_share=0.5, seed=0))
    # kept: A/1, A/4, A/8, B/1, B/2 -> pids 1..5 in order of sequence then track id
    per_pid = {}
    for c in crops:
        per_pid.setdefault(c["pid"], []).append(c)
    assert sorted(per_pid) == [1, 2, 3, 4, 5]
    assert [c["frame"] for c in per_pid[1]] == [1, 6, 11, 16]  # every 5th frame of the track
    assert [c["frame"] for c in per_pid[2]] == [1, 6]  # A/4 lives in frames 1..8
    assert {c["camera"] for c in per_pid[1]} == {1, 2} and {c["camera"] for c in per_pid[4]} == {3, 4}
    assert {c["camera"] for c in per_pid[5]} == {4}  # B/2 only in B's second half
    test_ids = {c["pid"] for c in crops if c["split"] != "train"}
    train_ids = {c["pid"] for c in crops if c["split"] == "train"}
    assert len(test_ids) == 2 and not test_ids & train_ids  # round(0.5 * 5) test identities
    for q in (c for c in crops if c["split"] == "query"):
        others = [c for c in per_pid[q["pid"]] if c["split"] == "gallery" and c["camera"] != q["camera"]]
        assert others  # every query has a gallery match in another camera


def test_cli_writes_a_dataset_that_data_check_reads(tmp_path):
    seqs = [_sequence(tmp_path, name, TRACKS) for name in ("A", "B")]
    out = tmp_path / "crops"
    args = ["data", "from-mot", *map(str, seqs), "--out", str(out), "--every", "2", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = [p.name for p in out.rglob("*.jpg")]
    assert names and all(parse_name(n) for n in names)
    assert all(cv2.imread(str(p)).shape[:2] in {(60, 30), (70, 30)} for p in out.rglob("*.jpg"))
    record = json.loads((out / "from_mot.json").read_text())
    assert record["rules"]["every"] == 2 and "middle crop" in record["rules_text"]
    dataset = build_dataset("from-mot", out)
    assert len(dataset.split("train")) + len(dataset.split("query")) + len(dataset.split("gallery")) == len(names)
    check = CliRunner().invoke(cli, ["data", "check", "from-mot", "--data-root", str(out)])
    assert check.exit_code == 0 and "dataset from-mot" in check.output, check.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "exists and is not empty (pass --overwrite" in str(again.exception)


def test_cli_errors_are_one_line(tmp_path):
    seq = _sequence(tmp_path, "A", {1: {}})
    (seq / "gt" / "gt.txt").write_text("1,1,10,10,30,60,1,1,1\n2,1,10,x,30,60,1,1,1\n")
    result = CliRunner().invoke(cli, ["data", "from-mot", str(seq), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "gt.txt line 2: 'x' is not a number" in str(result.exception or result.output)
    (seq / "gt" / "gt.txt").unlink()
    result = CliRunner().invoke(cli, ["data", "from-mot", str(seq), "--out", str(tmp_path / "o")])
    assert "no ground truth gt/gt.txt" in str(result.exception or result.output)
    result = CliRunner().invoke(cli, ["data", "from-mot", str(seq), "--out", str(tmp_path / "o"), "--every", "0"])
    assert result.exit_code != 0 and "--every and --time-chunks must be positive" in result.output


@pytest.mark.parametrize("visibility", [0.0, 0.9])
def test_visibility_threshold(tmp_path, visibility):
    seq = _sequence(tmp_path, "A", {1: {"vis": 0.5}, 2: {"box": (100, 20, 30, 70)}})
    crops = plan_crops([seq], FromMotRules(min_visibility=visibility, test_share=0.0))
    assert {c["pid"] for c in crops} == ({1, 2} if visibility == 0.0 else {1})
