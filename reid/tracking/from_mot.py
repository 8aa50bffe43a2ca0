"""Re-ID training data from tracking ground truth: MOTChallenge sequences -> a Market-1501-layout folder.

Rules (also written to the output's from_mot.json):

- a ground-truth box is kept when its mark (column 7) is not 0, its class (column 8) is 1
  (pedestrian) or absent, its visibility (column 9) is at least `min_visibility`, its height
  at least `min_height` pixels, and at least `min_inside` of its area lies inside the frame;
  of each track, one kept box in `every` frames is cropped (the box clipped to the frame);
- identity: each (sequence, track id) is one person, numbered 1, 2, ... in order of
  sequence then track id (the same person in two sequences is two identities);
- camera: a sequence is one camera; its frames are cut into `time_chunks` equal spans
  and each span is a camera of its own, c1, c2, ... in order of sequence then span, so a
  single sequence still gives the cross-camera query/gallery pairs the Market protocol
  scores (a gallery image of the query's own identity and camera does not count);
- split: identities are shuffled with `seed`; the first `test_share` of them are test
  identities, the rest train (bounding_box_train, every crop). Of a test identity, in
  each camera where it has at least two crops, the middle crop (in time) is a query;
  every other crop goes to the gallery (bounding_box_test); a test identity seen in one
  camera only gets no query (its crops stay in the gallery as distractors).

File names follow Market-1501: `{pid:04d}_c{camera}s1_{frame:06d}_00.jpg`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from reid.data.datasets.market1501 import SPLIT_FOLDERS as FOLDERS
from reid.data.image_io import read_image
from reid.errors import DataError
from reid.io.atomic import atomic_path
from reid.io.mot import read_seqinfo

from .io import read_mot_rows


@dataclass(frozen=True)
class FromMotRules:
    min_visibility: float = 0.5
    min_height: int = 50
    min_inside: float = 0.8
    every: int = 5
    time_chunks: int = 2
    test_share: float = 0.5
    seed: int = 0


def _kept_boxes(gt: np.ndarray, width: int, height: int, rules: FromMotRules) -> np.ndarray:
    """Rows of `gt` (N, 10) that pass the mark/class/visibility/size/inside rules."""
    x0, y0 = np.clip(gt[:, 2], 0, width), np.clip(gt[:, 3], 0, height)
    x1, y1 = np.clip(gt[:, 2] + gt[:, 4], 0, width), np.clip(gt[:, 3] + gt[:, 5], 0, height)
    inside = (x1 - x0) * (y1 - y0) / np.maximum(gt[:, 4] * gt[:, 5], 1e-9)
    keep = (gt[:, 6] != 0) & ((gt[:, 7] == 1) | (gt[:, 7] == -1)) & (gt[:, 8] >= rules.min_visibility)
    return gt[keep & (gt[:, 5] >= rules.min_height) & (inside >= rules.min_inside)]


def _sampled(rows: np.ndarray, every: int) -> np.ndarray:
    """One row in `every` of each track (rows sorted by track then frame)."""
    order = np.lexsort((rows[:, 0], rows[:, 1]))
    rows = rows[order]
    keep = np.zeros(len(rows), bool)
    for tid in np.unique(rows[:, 1]):
        idx = np.flatnonzero(rows[:, 1] == tid)
        keep[idx[::every]] = True
    return rows[keep]


def plan_crops(seq_dirs: list[str | Path], rules: FromMotRules) -> list[dict]:
    """Every crop to write: sequence, frame, box, pid, camera and split (see the module docstring)."""

    crops, identities = [], {}
    for s, seq in enumerate(seq_dirs):
        seq = Path(seq)
        info = read_seqinfo(seq)
        gt_path = seq / "gt" / "gt.txt"
        if not gt_path.is_file():
            raise DataError(f"{seq}: no ground truth gt/gt.txt (reid data from-mot crops ground-truth boxes)")
        rows = _sampled(
            _kept_boxes(read_mot_rows(gt_path, "ground truth"), info.width, info.height, rules), rules.every
        )
        span = max(1, -(-info.length // rules.time_chunks))
        for row in rows:
            pid = identities.setdefault((s, int(row[1])), len(identities) + 1)
            camera = s * rules.time_chunks + min(int(row[0] - 1) // span, rules.time_chunks - 1) + 1
            crops.append(
                {
                    "seq": s,
                    "path": info.frame_path(int(row[0])),
                    "frame": int(row[0]),
                    "box": row[2:6],
                    "pid": pid,
                    "camera": camera,
                }
            )
    if not crops:
        raise DataError("no ground-truth box passes the visibility/size rules: lower --min-visibility or --min-height")
    pids = np.array(sorted(identities.values()))
    np.random.default_rng(rules.seed).shuffle(pids)
    test = set(pids[: int(round(rules.test_share * len(pids)))].tolist())
    for crop in crops:
        crop["split"] = "gallery" if crop["pid"] in test else "train"
    by_pid_cam: dict[tuple[int, int], list[dict]] = {}
    for crop in crops:
        if crop["split"] == "gallery":
            by_pid_cam.setdefault((crop["pid"], crop["camera"]), []).append(crop)
    for (pid, _), group in by_pid_cam.items():
        cams = {c for p, c in by_pid_cam if p == pid}
        if len(cams) >= 2 and len(group) >= 2:
            group.sort(key=lambda c: c["frame"])
            group[len(group) // 2]["split"] = "query"
    return crops


def crops_from_mot(
    seq_dirs: list[str | Path],
    out: str | Path,
    rules: FromMotRules = FromMotRules(),
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write the Market-1501-layout folder `out`; return counts per split (images and identities)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DataError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    crops = plan_crops(seq_dirs, rules)
    for folder in FOLDERS.values():
        (out / folder).mkdir(parents=True, exist_ok=True)
    crops.sort(key=lambda c: (c["seq"], c["frame"]))
    image, loaded = None, None
    for crop in tqdm(crops, desc="crops", unit="img", disable=not progress, leave=False):
        if loaded != (crop["seq"], crop["frame"]):
            if not Path(crop["path"]).is_file():
                raise DataError(f"frame {crop['frame']} of {seq_dirs[crop['seq']]} has no image {crop['path']}")
            image, loaded = read_image(crop["path"]), (crop["seq"], crop["frame"])
        x, y, w, h = crop["box"]
        x0, y0 = int(max(np.floor(x), 0)), int(max(np.floor(y), 0))
        x1, y1 = int(min(np.ceil(x + w), image.shape[1])), int(min(np.ceil(y + h), image.shape[0]))
        ok, data = cv2.imencode(".jpg", image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        name = f"{crop['pid']:04d}_c{crop['camera']}s1_{crop['frame']:06d}_00.jpg"
        with atomic_path(out / FOLDERS[crop["split"]] / name) as tmp:
            Path(tmp).write_bytes(data.tobytes())
    counts = {}
    for split in FOLDERS:
        chosen = [c for c in crops if c["split"] == split]
        counts[split] = len(chosen)
        counts[f"{split}_ids"] = len({c["pid"] for c in chosen})
    record = {
        "sequences": [str(s) for s in seq_dirs],
        "rules": asdict(rules),
        "counts": counts,
        "rules_text": __doc__.split("Rules (also written to the output's from_mot.json):")[1].strip(),
    }
    with atomic_path(out / "from_mot.json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return counts
