"""Generate a small MOTChallenge-style sequence: synthetic people walking across a scene.

    python tools/make_mot_sequence.py datasets/mot/SYNTH-01 --frames 60 --people 6

Writes seqinfo.ini, img1/000001.jpg..., gt/gt.txt (true boxes and ids) and det/det.txt
(the true boxes jittered, with a few dropped, a few false positives, frame 2 without any
detection; ids and 3-D columns -1 as in public detections). Boxes of people entering or
leaving the scene reach outside the frame, as real detections do. Deterministic for a seed.

People are drawn by reid.data.synthetic.render_person; each sprite is cut out of its
render by rendering it twice with the same random stream over two different scene
backgrounds: the pixels that agree are the person.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.data.synthetic import make_camera, make_identity, render_person  # noqa: E402


def _sprite(person, cam_a, cam_b, size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A person image (h, w, 3) and its mask (h, w) bool, from two renders that differ only in background."""
    a = render_person(person, cam_a, size, np.random.default_rng(seed)).astype(np.int16)
    b = render_person(person, cam_b, size, np.random.default_rng(seed)).astype(np.int16)
    mask = (np.abs(a - b).max(axis=2) < 12).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:  # keep the figure, drop stray coincidences between the two backgrounds
        mask = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return a.astype(np.uint8), mask.astype(bool)


def _scene(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    scene = np.empty((height, width, 3), np.float32)
    scene[:] = rng.uniform(120, 200, 3)
    horizon = int(height * 0.45)
    for _ in range(8):  # buildings and shop fronts above the horizon
        x0, w = int(rng.integers(0, width)), int(rng.integers(width // 10, width // 3))
        y0 = int(rng.integers(0, horizon // 2))
        cv2.rectangle(scene, (x0, y0), (x0 + w, horizon), rng.uniform(40, 220, 3).tolist(), -1)
    scene[horizon:] = rng.uniform(60, 120, 3)  # pavement
    return np.clip(scene + rng.normal(0, 5, scene.shape), 0, 255).astype(np.uint8)


def make_sequence(
    out: str | Path,
    frames: int = 30,
    width: int = 480,
    height: int = 270,
    people: int = 5,
    false_positives: float = 0.3,
    seed: int = 0,
    name: str = "SYNTH-01",
) -> Path:
    """Write the sequence folder `out`; return it."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for sub in ("img1", "det", "gt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    scene = _scene(width, height, rng)
    cam = replace(make_camera(rng), blur=0.0, occlusion=0.0, scale=1.0, gain=1.0, cast=np.ones(3, np.float32))
    cam_a = replace(cam, background=np.zeros(3, np.float32), texture=1)
    cam_b = replace(cam, background=np.full(3, 255.0, np.float32), texture=2)
    walkers = []
    for pid in range(1, people + 1):
        h = int(height * rng.uniform(0.35, 0.6))
        speed = rng.uniform(2.0, 6.0) * width / 480 * rng.choice([-1, 1])
        walkers.append(
            {
                "id": pid,
                "person": make_identity(rng),
                "size": (h, h // 2),
                "x": rng.uniform(-0.2, 1.0) * width,
                "feet": height * rng.uniform(0.6, 0.98),
                "vx": speed,
            }
        )
    gt_lines, det_lines = [], []
    for frame in range(1, frames + 1):
        image = scene.copy()
        for walker in sorted(walkers, key=lambda w: w["feet"]):  # far people first
            h, w = walker["size"]
            sprite, mask = _sprite(walker["person"], cam_a, cam_b, (h, w), seed * 100003 + walker["id"] * 1009 + frame)
            x0 = int(round(walker["x"] + walker["vx"] * frame))
            y0 = int(round(walker["feet"])) - h
            fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if fx1 <= fx0 or fy1 <= fy0:
                continue  # off screen
            sub = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            image[fy0:fy1, fx0:fx1][sub] = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0][sub]
            ys, xs = np.nonzero(mask)
            bx, by = x0 + xs.min(), y0 + ys.min()
            bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
            gt_lines.append(f"{frame},{walker['id']},{bx},{by},{bw},{bh},1,1,1")
            if frame != 2 and rng.random() < 0.9:
                jx, jy, jw, jh = rng.normal(0, 0.05, 4) * [bw, bh, bw, bh]
                conf = rng.uniform(0.5, 1.0)
                box = f"{bx + jx:.2f},{by + jy:.2f},{bw + jw:.2f},{bh + jh:.2f}"
                det_lines.append(f"{frame},-1,{box},{conf:.3f},-1,-1,-1")
        if frame != 2:
            for _ in range(rng.poisson(false_positives)):
                bh = rng.uniform(0.2, 0.5) * height
                bx, by = rng.uniform(0, width - bh / 2), rng.uniform(0, height - bh)
                box = f"{bx:.2f},{by:.2f},{bh / 2:.2f},{bh:.2f}"
                det_lines.append(f"{frame},-1,{box},{rng.uniform(0.1, 0.5):.3f},-1,-1,-1")
        cv2.imwrite(str(out / "img1" / f"{frame:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (out / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    (out / "det" / "det.txt").write_text("\n".join(det_lines) + "\n")
    (out / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=25\nseqLength={frames}\n"
        f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="sequence folder to write")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--false-positives", type=float, default=0.3, help="mean false detections per frame")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = make_sequence(args.out, args.frames, args.width, args.height, args.people, args.false_positives, args.seed)
    dets = sum(1 for _ in open(out / "det" / "det.txt"))
    print(f"wrote {out}: {args.frames} frames {args.width}x{args.height}, {args.people} people, {dets} detections")


if __name__ == "__main__":
    main()
