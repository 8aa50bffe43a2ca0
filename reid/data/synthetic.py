"""A synthetic person re-ID benchmark in Market-1501's exact layout and naming.

Each identity is a person-like figure (head, torso, arms, legs, shoes, optional bag)
whose identity lies in clothing colours, patterns and body proportions. Each camera has
its own background, illumination, colour cast, scale, viewpoint mix, blur and occlusion
rate, so matching across cameras is hard but learnable. Deterministic for a seed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from reid.errors import ReidError
from reid.io.atomic import write_image

PATTERNS = ("solid", "hstripes", "vstripes", "checks", "logo")


@dataclass
class Identity:
    """What stays fixed for a person across cameras."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    shirt2: np.ndarray
    pattern: str
    pants: np.ndarray
    shoes: np.ndarray
    short_sleeves: bool
    shorts: bool
    bag: np.ndarray | None
    height: float  # fraction of the image height the figure fills
    width: float  # body width relative to height
    leg_ratio: float  # legs' share of the body


@dataclass
class Camera:
    """What a camera does to every image it takes."""

    background: np.ndarray
    texture: int  # seed of the camera's background texture
    gain: float
    cast: np.ndarray  # per-channel multipliers (BGR)
    scale: float
    blur: float
    occlusion: float  # probability of an occluder
    side_view: float  # probability of a side view


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated or muted clothing colour (BGR float 0..255)."""
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(50, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def make_identity(rng: np.random.Generator) -> Identity:
    skin_tone = rng.uniform(0.35, 1.0)
    return Identity(
        skin=np.array([140, 170, 225], np.float32) * skin_tone,
        hair=np.array(rng.choice([[20, 20, 20], [30, 60, 100], [120, 170, 200], [80, 80, 80]]), np.float32),
        shirt=_colour(rng),
        shirt2=_colour(rng),
        pattern=str(rng.choice(PATTERNS)),
        pants=_colour(rng) * rng.uniform(0.3, 1.0),
        shoes=_colour(rng) * rng.uniform(0.2, 0.8),
        short_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.3),
        bag=_colour(rng) if rng.random() < 0.4 else None,
        height=rng.uniform(0.82, 0.95),
        width=rng.uniform(0.26, 0.38),
        leg_ratio=rng.uniform(0.42, 0.52),
    )


def make_camera(rng: np.random.Generator) -> Camera:
    return Camera(
        background=rng.uniform(40, 220, size=3).astype(np.float32),
        texture=int(rng.integers(0, 2**31 - 1)),
        gain=rng.uniform(0.7, 1.3),
        cast=rng.uniform(0.85, 1.15, size=3).astype(np.float32),
        scale=rng.uniform(0.8, 1.0),
        blur=rng.uniform(0.0, 1.6),
        occlusion=rng.uniform(0.05, 0.35),
        side_view=rng.uniform(0.1, 0.5),
    )


def _background(cam: Camera, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    tex = np.random.default_rng(cam.texture)
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = cam.background
    for _ in range(6):  # the camera's fixed scenery: floor, walls, shop fronts
        x0, y0 = tex.integers(0, w), tex.integers(0, h)
        x1, y1 = x0 + tex.integers(w // 4, w), y0 + tex.integers(h // 8, h // 2)
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), tex.uniform(30, 230, 3).tolist(), -1)
    shift = int(rng.integers(-w // 4, w // 4 + 1))  # the crop moves over the scene
    canvas = np.roll(canvas, shift, axis=1)
    return canvas + rng.normal(0, 6, canvas.shape).astype(np.float32)


def _torso_pattern(img: np.ndarray, box: tuple[int, int, int, int], person: Identity, rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = box
    colour, second = person.shirt.tolist(), person.shirt2.tolist()
    cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
    step = max(3, (y1 - y0) // 6)
    if person.pattern == "hstripes":
        for y in range(y0, y1, 2 * step):
            cv2.rectangle(img, (x0, y), (x1, min(y + step - 1, y1)), second, -1)
    elif person.pattern == "vstripes":
        for x in range(x0, x1, 2 * step):
            cv2.rectangle(img, (x, y0), (min(x + step - 1, x1), y1), second, -1)
    elif person.pattern == "checks":
        for y in range(y0, y1, step):
            for x in range(x0 + ((y - y0) // step % 2) * step, x1, 2 * step):
                cv2.rectangle(img, (x, y), (min(x + step - 1, x1), min(y + step - 1, y1)), second, -1)
    elif person.pattern == "logo":
        cx, cy = (x0 + x1) // 2, y0 + (y1 - y0) // 3
        cv2.circle(img, (cx, cy), max(2, (x1 - x0) // 5), second, -1)


def render_person(person: Identity, cam: Camera, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Draw one image (BGR uint8, `size` = (height, width)) of `person` seen by `cam`."""
    out_h, out_w = size
    h, w = 256, 128  # draw at a fixed resolution, then resize
    img = _background(cam, h, w, rng)
    side = rng.random() < cam.side_view
    scale = cam.scale * rng.uniform(0.92, 1.05)
    body_h = person.height * h * scale
    body_w = person.width * body_h * (0.6 if side else 1.0)
    cx = w / 2 + rng.normal(0, w * 0.04)
    top = (h - body_h) / 2 + rng.normal(0, h * 0.02)
    head_r = body_h * 0.07
    head_c = (int(cx), int(top + head_r))
    neck = top + 2 * head_r
    hip = top + body_h * (1 - person.leg_ratio)
    feet = top + body_h
    tx0, tx1 = int(cx - body_w / 2), int(cx + body_w / 2)
    # legs
    swing = rng.uniform(-0.12, 0.12) * body_w
    leg_w = max(2, int(body_w * 0.22))
    knee = hip + (feet - hip) * 0.5
    for sign in (-1, 1):
        lx = int(cx + sign * body_w * 0.22)
        fx = int(lx + sign * swing)
        cv2.line(img, (lx, int(hip)), (fx, int(feet)), person.pants.tolist(), leg_w)
        if person.shorts:
            cv2.line(img, (int((lx + fx) / 2), int(knee)), (fx, int(feet)), person.skin.tolist(), max(2, leg_w - 2))
        cv2.ellipse(img, (fx, int(feet)), (leg_w, max(2, leg_w // 2)), 0, 0, 360, person.shoes.tolist(), -1)
    # torso and arms
    _torso_pattern(img, (tx0, int(neck), tx1, int(hip)), person, rng)
    arm_w = max(2, int(body_w * 0.16))
    arms = (1,) if side else (-1, 1)
    for sign in arms:
        sx = tx1 if sign > 0 else tx0
        hx = int(sx + sign * rng.uniform(0.0, 0.15) * body_w)
        hand_y = int(hip + (feet - hip) * 0.12)
        elbow_y = int(neck + (hand_y - neck) * 0.5)
        cv2.line(img, (sx, int(neck + arm_w)), (hx, elbow_y), person.shirt.tolist(), arm_w)
        lower = person.skin if person.short_sleeves else person.shirt
        cv2.line(img, (hx, elbow_y), (hx, hand_y), lower.tolist(), arm_w)
    if person.bag is not None:
        bx = tx1 - int(body_w * 0.1) if not side else int(cx - body_w * 0.6)
        by = int(neck + (hip - neck) * 0.35)
        cv2.rectangle(img, (bx, by), (bx + int(body_w * 0.45), by + int(body_w * 0.5)), person.bag.tolist(), -1)
    cv2.circle(img, head_c, int(head_r), person.skin.tolist(), -1)
    cv2.ellipse(img, head_c, (int(head_r), int(head_r)), 0, 180, 360, person.hair.tolist(), -1)
    # occluder: a car, a pole or another passer-by in front of the person
    if rng.random() < cam.occlusion:
        frac = rng.uniform(0.15, 0.35)
        if rng.random() < 0.5:
            y0 = int(h * (1 - frac))
            cv2.rectangle(img, (0, y0), (w, h), rng.uniform(20, 230, 3).tolist(), -1)
        else:
            x0 = int(rng.choice([0, w * (1 - frac)]))
            cv2.rectangle(img, (x0, 0), (x0 + int(w * frac), h), rng.uniform(20, 230, 3).tolist(), -1)
    # camera response: colour cast, illumination, blur, noise
    light = cam.gain * rng.uniform(0.85, 1.15)
    img = img * cam.cast * light
    if side and rng.random() < 0.5:
        img = img[:, ::-1]
    img = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (out_w, out_h), interpolation=cv2.INTER_AREA)
    sigma = cam.blur * rng.uniform(0.5, 1.2) * out_h / 128
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _junk(cam: Camera, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A false detection: background with a sliver of someone (Market's junk, pid -1)."""
    person = make_identity(rng)
    img = render_person(person, cam, size, rng)
    h, w = size
    y0 = int(rng.integers(0, h // 2))
    crop = img[y0 : y0 + h // 3]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass
class SynthSpec:
    identities: int = 200  # in all, split half for training, half for testing
    images_per_identity: int = 12
    cameras: int = 6
    cameras_per_identity: tuple[int, int] = (2, 4)
    height: int = 128
    width: int = 64
    distractors: int = 100
    junk: int = 50
    seed: int = 0


def _name(pid: int, cam: int, frame: int, box: int) -> str:
    pid_str = "-1" if pid == -1 else f"{pid:04d}"
    return f"{pid_str}_c{cam}s1_{frame:06d}_{box:02d}.jpg"


def generate(out: str | Path, spec: SynthSpec, overwrite: bool = False, progress: bool = True) -> dict:
    """Write the dataset to `out` (Market-1501 layout) and return its counts.

    The folder is built next to `out` (a folder of this process's own) and renamed into place, so
    an interrupted run never leaves a half-written dataset that looks complete, and processes that
    generate the same data at once cannot write into each other's folder.
    """
    out = Path(out)
    if spec.identities < 4 or spec.cameras < 2 or spec.images_per_identity < 4:
        raise ReidError("synthetic data needs at least 4 identities, 2 cameras and 4 images per identity")
    lo, hi = spec.cameras_per_identity
    if not 2 <= lo <= hi or spec.cameras < lo:
        raise ReidError(f"cameras per identity {lo}..{hi} does not fit {spec.cameras} cameras (need 2 <= lo <= hi)")
    if out.exists() and not overwrite:
        raise ReidError(f"{out}: already exists (use --overwrite to replace it)")
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    folders = {k: tmp / k for k in ("bounding_box_train", "query", "bounding_box_test")}
    for folder in folders.values():
        folder.mkdir(parents=True)

    rng = np.random.default_rng(spec.seed)
    cams = [make_camera(rng) for _ in range(spec.cameras)]
    pids = rng.permutation(np.arange(1, max(1502, 2 * spec.identities + 1)))[: spec.identities]
    num_train = (spec.identities + 1) // 2
    train_pids, test_pids = sorted(pids[:num_train].tolist()), sorted(pids[num_train:].tolist())
    frame = 0
    size = (spec.height, spec.width)
    counts = {"train": 0, "query": 0, "gallery": 0, "distractors": 0, "junk": 0}

    def write(folder: Path, pid: int, cam_index: int, image: np.ndarray) -> None:
        nonlocal frame
        frame += int(rng.integers(1, 50))
        write_image(folder / _name(pid, cam_index + 1, frame, 1), image, [cv2.IMWRITE_JPEG_QUALITY, 92])

    total = spec.identities + spec.distractors + spec.junk
    bar = tqdm(total=total, desc="synth", unit="id", disable=not progress)
    for is_train, group in ((True, train_pids), (False, test_pids)):
        for pid in group:
            person = make_identity(rng)
            n_cams = int(rng.integers(lo, min(hi, spec.cameras) + 1))
            person_cams = rng.choice(spec.cameras, size=n_cams, replace=False)
            # every camera of the identity gets at least 2 images, so each query keeps a match
            per_cam = np.full(n_cams, 2)
            extra = max(0, spec.images_per_identity - 2 * n_cams)
            per_cam += np.bincount(rng.integers(0, n_cams, extra), minlength=n_cams)
            for cam_index, count in zip(person_cams, per_cam):
                for j in range(count):
                    image = render_person(person, cams[cam_index], size, rng)
                    if is_train:
                        write(folders["bounding_box_train"], pid, cam_index, image)
                        counts["train"] += 1
                    elif j == 0:
                        write(folders["query"], pid, cam_index, image)
                        counts["query"] += 1
                    else:
                        write(folders["bounding_box_test"], pid, cam_index, image)
                        counts["gallery"] += 1
            bar.update()
    for _ in range(spec.distractors):
        cam_index = int(rng.integers(0, spec.cameras))
        write(folders["bounding_box_test"], 0, cam_index, render_person(make_identity(rng), cams[cam_index], size, rng))
        counts["distractors"] += 1
        bar.update()
    for _ in range(spec.junk):
        cam_index = int(rng.integers(0, spec.cameras))
        write(folders["bounding_box_test"], -1, cam_index, _junk(cams[cam_index], size, rng))
        counts["junk"] += 1
        bar.update()
    bar.close()
    counts.update(train_ids=len(train_pids), test_ids=len(test_pids))
    if out.exists() and not overwrite:  # another process finished the same data first: keep its folder
        shutil.rmtree(tmp)
        return counts
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return counts
