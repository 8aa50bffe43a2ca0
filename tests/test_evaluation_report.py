"""Tables, atomic JSON, CMC plots and ranked-list images."""

import json

import cv2
import numpy as np
import pytest

from reid.data.datasets.base import Record
from reid.evaluation.report import (
    MATCH_BGR,
    NON_MATCH_BGR,
    QUERY_BGR,
    TEXT_HEIGHT,
    format_table,
    plot_cmc,
    save_ranked_lists,
    write_json,
)


def test_format_table_aligns_columns():
    rows = [{"name": "ours", "mAP": 0.85, "n": 3}, {"name": "baseline-long", "mAP": 0.5, "n": 12, "x": None}]
    text = format_table(rows, ["name", "mAP", "n", "x"]).splitlines()
    assert text[0].split() == ["name", "mAP", "n", "x"]
    assert text[2].split() == ["ours", "0.8500", "3", "-"]
    assert text[3].split() == ["baseline-long", "0.5000", "12", "-"]
    assert len({len(line.rstrip()) for line in text[1:2] + text[3:]}) == 1  # full-width rows line up
    assert text[2].index("0.8500") == text[3].index("0.5000")  # numbers right-aligned


def test_write_json_is_atomic_and_converts_numpy(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    write_json({"a": np.float32(0.5), "cmc": np.array([0.1, 0.2]), "n": np.int64(3)}, path)
    assert json.loads(path.read_text()) == {"a": 0.5, "cmc": [0.1, 0.2], "n": 3}
    with pytest.raises(TypeError):
        write_json({"bad": object()}, path)
    assert json.loads(path.read_text())["n"] == 3  # old content intact
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_plot_cmc_writes_png(tmp_path):
    path = tmp_path / "cmc.png"
    plot_cmc({"ours": np.linspace(0.8, 1.0, 50), "baseline": np.linspace(0.6, 0.95, 50)}, path)
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 300


def _solid(path, bgr):
    cv2.imwrite(str(path), np.full((40, 20, 3), bgr, np.uint8))
    return str(path)


def test_ranked_list_layout_and_border_colours(tmp_path):
    colours = [(255, 0, 0), (0, 255, 255), (255, 0, 255), (50, 50, 50)]
    gallery = [
        Record(_solid(tmp_path / "g0.png", colours[0]), 7, 1),  # match, other camera
        Record(_solid(tmp_path / "g1.png", colours[1]), 8, 0),  # non-match
        Record(_solid(tmp_path / "g2.png", colours[2]), 7, 0),  # same pid and camera: not shown
        Record(_solid(tmp_path / "g3.png", colours[3]), 0, 1),  # distractor: non-match
    ]
    query = [Record(_solid(tmp_path / "q.png", (200, 200, 200)), 7, 0)]
    distmat = np.array([[0.3, 0.1, 0.0, 0.5]])
    paths = save_ranked_lists(distmat, query, gallery, tmp_path / "ranked", query_indices=[0], topk=10)
    assert len(paths) == 1
    img = cv2.imread(paths[0])
    w, h, b, gap = 128, 256, 4, 12
    cell_w = w + 2 * b
    shown = 3  # g1, g0, g3
    assert img.shape == (h + 2 * b + TEXT_HEIGHT, (1 + shown) * cell_w + (shown + 1) * gap, 3)
    lefts = [0] + [cell_w + 2 * gap + k * (cell_w + gap) for k in range(shown)]
    expect_border = [QUERY_BGR, NON_MATCH_BGR, MATCH_BGR, NON_MATCH_BGR]
    expect_inside = [(200, 200, 200), colours[1], colours[0], colours[3]]
    for left, border, inside in zip(lefts, expect_border, expect_inside):
        assert tuple(img[1, left + cell_w // 2]) == border
        assert tuple(img[b + h // 2, left + 1]) == border
        assert tuple(img[b + h // 2, left + cell_w // 2]) == inside
    text_band = img[h + 2 * b :, :cell_w]
    assert (text_band < 128).any()  # the file name is written below


def test_ranked_lists_sampled_queries_and_topk(tmp_path):
    gallery = [Record(_solid(tmp_path / f"g{i}.png", (i * 20, 0, 0)), i % 3, 1) for i in range(6)]
    queries = [Record(_solid(tmp_path / f"q{i}.png", (0, 0, 0)), i % 3, 0) for i in range(5)]
    distmat = np.random.default_rng(0).random((5, 6))
    paths = save_ranked_lists(distmat, queries, gallery, tmp_path / "out", num_queries=3, topk=2, seed=1)
    again = save_ranked_lists(distmat, queries, gallery, tmp_path / "out2", num_queries=3, topk=2, seed=1)
    assert len(paths) == 3 and [p.split("/")[-1] for p in paths] == [p.split("/")[-1] for p in again]
    img = cv2.imread(paths[0])
    assert img.shape[1] == 3 * 136 + 3 * 12
    with pytest.raises(ValueError, match="distmat"):
        save_ranked_lists(distmat[:2], queries, gallery, tmp_path / "bad")
