"""Reports: plain-text tables, atomic JSON, CMC plots and ranked-list images."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from reid.data.datasets.base import Record
from reid.data.image_io import read_image
from reid.io.atomic import atomic_path, save_figure, write_image

from .distance import to_numpy
from .tables import format_table

MATCH_BGR = (0, 200, 0)
NON_MATCH_BGR = (0, 0, 230)
QUERY_BGR = (128, 128, 128)

__all__ = ["format_table", "plot_cmc", "save_ranked_lists", "write_json"]


def write_json(obj, path: str | os.PathLike) -> None:
    """Write `obj` as indented JSON atomically (temp file in the same folder, then os.replace).

    NumPy scalars and arrays are converted to plain numbers and lists.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=_json_default)
        f.write("\n")


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def plot_cmc(cmc_curves: dict[str, np.ndarray], path: str | os.PathLike, title: str = "CMC") -> None:
    """Save CMC curves (name -> hit rate at rank 1..N, in [0, 1]) as a PNG: rank from 1 on x, percent on y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    try:
        for name, cmc in cmc_curves.items():
            cmc = np.asarray(cmc, dtype=np.float64)
            ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, marker="." if len(cmc) <= 50 else None,
                    label=f"{name} (R1 {100 * cmc[0]:.1f}%)")  # fmt: skip
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_xlim(left=1)
        ax.set_ylim(top=101)  # a curve at 100% stays visible
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.set_title(title)
        ax.legend(loc="lower right")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


def save_ranked_lists(
    distmat,
    query_records: Sequence[Record],
    gallery_records: Sequence[Record],
    out_dir: str | os.PathLike,
    query_indices: Sequence[int] | None = None,
    num_queries: int = 20,
    topk: int = 10,
    seed: int = 0,
    cell_size: tuple[int, int] = (128, 256),
    border: int = 4,
) -> list[str]:
    """Write one PNG per query: the query image, then its top-k gallery images.

    The ranking drops gallery images with the query's pid and camera and junk (pid -1),
    as the evaluation does; ties keep gallery order. Each gallery image gets a green
    border when its pid is the query's, red otherwise; the query's border is grey.
    Each file name is written below its image. Images are read with OpenCV (BGR) and
    resized to cell_size (width, height). Queries: `query_indices`, or `num_queries`
    drawn with `seed`. Returns the written paths, in query order.
    """
    distmat = to_numpy(distmat)
    if distmat.shape != (len(query_records), len(gallery_records)):
        raise ValueError(f"distmat is {distmat.shape} but there are {len(query_records)} queries "
                         f"and {len(gallery_records)} gallery records")  # fmt: skip
    if query_indices is None:
        rng = np.random.default_rng(seed)
        n = min(num_queries, len(query_records))
        query_indices = np.sort(rng.choice(len(query_records), size=n, replace=False))
    g_pids = np.array([r.pid for r in gallery_records])
    g_cams = np.array([r.camid for r in gallery_records])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for qi in query_indices:
        q = query_records[int(qi)]
        order = np.argsort(distmat[qi], kind="stable")
        keep = (g_pids[order] != -1) & ~((g_pids[order] == q.pid) & (g_cams[order] == q.camid))
        top = order[keep][:topk]
        cells = [_cell(q.path, QUERY_BGR, cell_size, border)]
        cells += [
            _cell(gallery_records[g].path, MATCH_BGR if g_pids[g] == q.pid else NON_MATCH_BGR, cell_size, border)
            for g in top
        ]
        gap = np.full((cells[0].shape[0], 3 * border, 3), 255, np.uint8)
        strip = [cells[0], gap, gap] + [x for c in cells[1:] for x in (c, gap)]
        path = out / f"{int(qi):05d}_{printable(Path(q.path).stem)}.png"
        write_image(path, np.concatenate(strip[:-1] if len(cells) > 1 else strip, axis=1))
        written.append(str(path))
    return written


TEXT_HEIGHT = 18


def printable(name: str) -> str:
    """`name` in ASCII: other characters (and undecodable bytes of non-UTF-8 file names) escaped."""
    return name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")


def _cell(image_path: str, colour: tuple[int, int, int], size: tuple[int, int], border: int) -> np.ndarray:
    """One image resized to `size`, framed with `colour`, with its file name below on white."""
    w, h = size
    img = cv2.resize(read_image(image_path), (w, h), interpolation=cv2.INTER_AREA)
    framed = cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=colour)
    text = np.full((TEXT_HEIGHT, framed.shape[1], 3), 255, np.uint8)
    name = printable(Path(image_path).name)  # OpenCV's Hershey fonts draw ASCII only (and crash on surrogates)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    while len(name) > 4 and cv2.getTextSize(name, font, scale, 1)[0][0] > framed.shape[1] - 2:
        name = ".." + name[3:]  # keep the end of long names (pid, camera, frame)
    cv2.putText(text, name, (1, TEXT_HEIGHT - 5), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([framed, text], axis=0)
