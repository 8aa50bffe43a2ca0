"""Generate a MOTChallenge-style sequence: synthetic people walking across a scene.

    python tools/make_mot_sequence.py datasets/mot/SYNTH-01 --frames 60 --people 6
    python tools/make_mot_sequence.py datasets/mot/CROSS-01 --frames 150 --people 4 --crossings 3 \
        --reentries 1 --min-visibility 0.4 --miss-rate 0.1 --no-empty-frame

Writes seqinfo.ini, img1/000001.jpg..., gt/gt.txt and det/det.txt. gt rows are
`frame, id, x, y, w, h, 1, 1, visibility` (class 1 = pedestrian, visibility = the share
of the person's pixels that are in the frame and not hidden by a nearer person, as in
MOT17). Detections are the true boxes jittered, minus a random share (--miss-rate) and
minus people less visible than --min-visibility, plus false positives; frame 2 has no
detection unless --no-empty-frame; ids and 3-D columns are -1 as in public detections.
Boxes of people entering or leaving the scene reach outside the frame, as real ones do.

Scenes where appearance matters: --crossings N adds N pairs of people at nearly the same
depth walking towards each other and crossing mid-sequence (the nearer one hides the
other); --reentries N adds people who walk out of the frame, stay out for 8-20 frames
and come back. Deterministic for a seed.

Scenes where constant-velocity motion guesses wrong: --turns N adds N pairs at nearly the same
depth who walk towards each other, meet (the nearer hides the other) and both turn back at
the meeting frame, so a Kalman filter predicts each one's continuation where the other one
walks; --returns N adds people who walk out of the frame early (between 10% and 25% of the
sequence) and stay out for --return-gap LO HI frames (40-90: longer than a motion-only
tracker's max_age usually bridges; that is the time their box is out, the figure in it is out a
few frames longer) before coming back. Without these options the output is
unchanged for the same arguments (they draw random numbers after everything else).

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
from reid.io.atomic import atomic_path  # noqa: E402


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


def _walkers(
    rng,
    frames: int,
    width: int,
    height: int,
    people: int,
    crossings: int,
    reentries: int,
    turns: int = 0,
    returns: int = 0,
    return_gap: tuple[float, float] = (40, 90),
) -> list[dict]:
    """Start position, size and velocity of every person; `bounce` people turn back outside the frame,
    `turn` people turn back at that frame."""
    scale = width / 480
    walkers = []

    def add(feet: float, x: float, vx: float, bounce: float = 0.0, turn: int = 0) -> None:
        h = int(height * 0.55 * feet / height)  # nearer (lower feet) is taller
        walkers.append(
            {
                "id": len(walkers) + 1,
                "person": make_identity(rng),
                "size": (h, h // 2),
                "x": x,
                "feet": feet,
                "vx": vx,
                "bounce": bounce,
                "turn": turn,
            }
        )

    for _ in range(people):
        speed = rng.uniform(2.0, 6.0) * scale * rng.choice([-1, 1])
        add(height * rng.uniform(0.6, 0.98), rng.uniform(-0.2, 1.0) * width, speed)
    for _ in range(crossings):  # two people at nearly the same depth meet at (x_c, t_c)
        feet = height * rng.uniform(0.65, 0.95)
        x_c, t_c = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * frames
        for sign in (1, -1):
            speed = sign * rng.uniform(2.5, 5.0) * scale
            foot = feet + sign * rng.uniform(0.01, 0.04) * height
            h = int(0.55 * foot)
            add(foot, x_c - h / 4 - speed * t_c, speed)
    for _ in range(reentries):
        speed = rng.uniform(3.0, 6.0) * scale * rng.choice([-1, 1])
        add(height * rng.uniform(0.6, 0.98), rng.uniform(0.2, 0.8) * width, speed, rng.uniform(4, 10) * abs(speed))
    for _ in range(turns):  # two people at nearly the same depth meet at (x_c, t_c) and both turn back there
        feet = height * rng.uniform(0.65, 0.95)
        x_c, t_c = rng.uniform(0.3, 0.7) * width, int(rng.uniform(0.3, 0.7) * frames)
        for sign in (1, -1):
            speed = sign * rng.uniform(2.5, 5.0) * scale
            foot = feet + sign * rng.uniform(0.01, 0.04) * height
            h = int(0.55 * foot)
            add(foot, x_c - h / 4 - speed * t_c, speed, turn=t_c)
    for _ in range(returns):  # out of the frame at t_out, back after a gap of `return_gap` frames
        speed = rng.uniform(3.0, 6.0) * scale * rng.choice([-1, 1])
        feet = height * rng.uniform(0.6, 0.98)
        t_out, gap = rng.uniform(0.1, 0.25) * frames, rng.uniform(*return_gap)
        w = int(0.55 * feet) // 2
        x = (width if speed > 0 else -w) - speed * t_out  # its box leaves the frame at frame t_out
        add(feet, x, speed, gap / 2 * abs(speed))  # out and back: `bounce` pixels each way
    return walkers


def _advance(walker: dict, width: int, frame: int = 0) -> None:
    """Move one frame; a re-entering walker turns back `bounce` pixels beyond the frame edge, a turning
    one after its `turn` frame."""
    walker["x"] += walker["vx"]
    if walker["turn"] and frame == walker["turn"]:
        walker["vx"] = -walker["vx"]
    if walker["bounce"]:
        w = walker["size"][1]
        if (walker["vx"] > 0 and walker["x"] > width + walker["bounce"]) or (
            walker["vx"] < 0 and walker["x"] + w < -walker["bounce"]
        ):
            walker["vx"] = -walker["vx"]


def make_sequence(
    out: str | Path,
    frames: int = 30,
    width: int = 480,
    height: int = 270,
    people: int = 5,
    false_positives: float = 0.3,
    seed: int = 0,
    name: str = "SYNTH-01",
    *,
    crossings: int = 0,
    reentries: int = 0,
    miss_rate: float = 0.1,
    min_visibility: float = 0.0,
    jitter: float = 0.05,
    empty_frame: bool = True,
    turns: int = 0,
    returns: int = 0,
    return_gap: tuple[float, float] = (40, 90),
) -> Path:
    """Write the sequence folder `out` (see the module docstring); return it."""
    out = Path(out)
    if not 0 < return_gap[0] <= return_gap[1]:
        raise ValueError(f"return_gap: need 0 < LO <= HI frames, got {return_gap[0]} {return_gap[1]}")
    rng = np.random.default_rng(seed)
    for sub in ("img1", "det", "gt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    scene = _scene(width, height, rng)
    cam = replace(make_camera(rng), blur=0.0, occlusion=0.0, scale=1.0, gain=1.0, cast=np.ones(3, np.float32))
    cam_a = replace(cam, background=np.zeros(3, np.float32), texture=1)
    cam_b = replace(cam, background=np.full(3, 255.0, np.float32), texture=2)
    walkers = _walkers(rng, frames, width, height, people, crossings, reentries, turns, returns, return_gap)
    gt_lines, det_lines = [], []
    for frame in range(1, frames + 1):
        for walker in walkers:
            _advance(walker, width, frame)
        image = scene.copy()
        owner = np.zeros((height, width), np.int32)  # which person each pixel shows (0: background)
        drawn = []
        for walker in sorted(walkers, key=lambda w: w["feet"]):  # far people first
            h, w = walker["size"]
            sprite, mask = _sprite(walker["person"], cam_a, cam_b, (h, w), seed * 100003 + walker["id"] * 1009 + frame)
            x0, y0 = int(round(walker["x"])), int(round(walker["feet"])) - h
            fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if fx1 <= fx0 or fy1 <= fy0:
                continue  # off screen
            sub = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            image[fy0:fy1, fx0:fx1][sub] = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0][sub]
            owner[fy0:fy1, fx0:fx1][sub] = walker["id"]
            ys, xs = np.nonzero(mask)
            box = (x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            drawn.append((walker["id"], box, int(mask.sum())))
        for pid, (bx, by, bw, bh), area in sorted(drawn):
            visibility = float((owner == pid).sum()) / max(area, 1)
            if visibility <= 0:
                continue
            gt_lines.append(f"{frame},{pid},{bx},{by},{bw},{bh},1,1,{visibility:.3f}")
            if (frame == 2 and empty_frame) or visibility < min_visibility or rng.random() < miss_rate:
                continue
            jx, jy, jw, jh = rng.normal(0, jitter, 4) * [bw, bh, bw, bh]
            det = f"{bx + jx:.2f},{by + jy:.2f},{bw + jw:.2f},{bh + jh:.2f}"
            det_lines.append(f"{frame},-1,{det},{rng.uniform(0.5, 1.0):.3f},-1,-1,-1")
        if not (frame == 2 and empty_frame):
            for _ in range(rng.poisson(false_positives)):
                bh = rng.uniform(0.2, 0.5) * height
                bx, by = rng.uniform(0, width - bh / 2), rng.uniform(0, height - bh)
                det_lines.append(
                    f"{frame},-1,{bx:.2f},{by:.2f},{bh / 2:.2f},{bh:.2f},{rng.uniform(0.1, 0.5):.3f},-1,-1,-1"
                )
        cv2.imwrite(str(out / "img1" / f"{frame:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    for path, lines in ((out / "gt" / "gt.txt", gt_lines), (out / "det" / "det.txt", det_lines)):
        with atomic_path(path) as tmp:
            Path(tmp).write_text("\n".join(lines) + "\n")
    with atomic_path(out / "seqinfo.ini") as tmp:
        Path(tmp).write_text(
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
    parser.add_argument("--people", type=int, default=5, help="people walking at random depths and speeds")
    parser.add_argument("--crossings", type=int, default=0, help="pairs of people who cross at the same depth")
    parser.add_argument("--reentries", type=int, default=0, help="people who leave the frame and come back")
    parser.add_argument("--turns", type=int, default=0, help="pairs who meet at the same depth and both turn back")
    parser.add_argument("--returns", type=int, default=0, help="people who leave early and come back after a long gap")
    parser.add_argument(
        "--return-gap", type=float, nargs=2, default=(40, 90), metavar=("LO", "HI"), help="frames out (--returns)"
    )
    parser.add_argument("--false-positives", type=float, default=0.3, help="mean false detections per frame")
    parser.add_argument("--miss-rate", type=float, default=0.1, help="share of visible people not detected")
    parser.add_argument("--min-visibility", type=float, default=0.0, help="people less visible are not detected")
    parser.add_argument("--jitter", type=float, default=0.05, help="box noise, a share of the box size")
    parser.add_argument("--no-empty-frame", action="store_true", help="detect people in frame 2 too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="sequence name (default: the folder name)")
    args = parser.parse_args()
    if not 0 < args.return_gap[0] <= args.return_gap[1]:
        parser.error(f"--return-gap: need 0 < LO <= HI frames, got {args.return_gap[0]} {args.return_gap[1]}")
    out = make_sequence(
        args.out,
        args.frames,
        args.width,
        args.height,
        args.people,
        args.false_positives,
        args.seed,
        args.name or Path(args.out).name,
        crossings=args.crossings,
        reentries=args.reentries,
        miss_rate=args.miss_rate,
        min_visibility=args.min_visibility,
        jitter=args.jitter,
        empty_frame=not args.no_empty_frame,
        turns=args.turns,
        returns=args.returns,
        return_gap=tuple(args.return_gap),
    )
    dets = sum(1 for _ in open(out / "det" / "det.txt"))
    ids = len({line.split(",")[1] for line in open(out / "gt" / "gt.txt")})
    print(f"wrote {out}: {args.frames} frames {args.width}x{args.height}, {ids} people, {dets} detections")


if __name__ == "__main__":
    main()
