"""Loader throughput: decoded and augmented images per second with 0, 1 and 2 DataLoader workers.

    python tools/bench_data.py                       # 512 generated Market-size JPEGs (128x64)
    python tools/bench_data.py --dataset market1501 --data-root datasets --images 2000
    python tools/bench_data.py --json runs/bench_data.json

"decode" is read_image (OpenCV, BGR uint8) + resize to 256x128 + uint8 tensor;
"augmented" is read_image + the train transform: reid.data.transforms' own when
it is there (build_train_transform(), else TrainTransform(Preprocess())), otherwise
the same recipe written out below (resize, flip, zero-pad 10 + random crop,
normalise, random erasing p=0.5). The column `transform` says which ran. Workers
persist across passes: `images/s` is the best of --repeats passes after a first
one (steady state), `first pass` includes worker start-up. The ratio is against
0 workers of the same mode in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from reid.data.datasets import build_dataset, resolve_data_root
from reid.data.image_io import read_image

HEIGHT, WIDTH = 256, 128
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def decode_resize(image: np.ndarray) -> torch.Tensor:
    """BGR uint8 (H, W, 3) -> uint8 (3, 256, 128) tensor, RGB."""
    image = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)))


class InlineTrainTransform:
    """Resize, flip p=0.5, zero-pad 10 + random crop, normalise, random erasing p=0.5
    (area 0.02-0.4, aspect 0.3-3.3, ImageNet-mean fill): the usual re-ID train recipe."""

    def __init__(self, pad: int = 10, erasing: float = 0.5) -> None:
        self.pad, self.erasing = pad, erasing

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        image = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
        if torch.rand(()) < 0.5:
            image = image[:, ::-1]
        padded = cv2.copyMakeBorder(np.ascontiguousarray(image), *(self.pad,) * 4, cv2.BORDER_CONSTANT, value=0)
        y, x = (int(torch.randint(0, 2 * self.pad + 1, ())) for _ in range(2))
        image = padded[y : y + HEIGHT, x : x + WIDTH]
        tensor = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1))).float().div_(255)
        tensor = tensor.sub_(MEAN).div_(STD)
        if torch.rand(()) < self.erasing:
            for _ in range(100):
                area = HEIGHT * WIDTH * float(torch.empty(()).uniform_(0.02, 0.4))
                aspect = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3))))
                h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                if h < HEIGHT and w < WIDTH:
                    top, left = int(torch.randint(0, HEIGHT - h + 1, ())), int(torch.randint(0, WIDTH - w + 1, ()))
                    tensor[:, top : top + h, left : left + w] = 0.0  # the mean after normalising
                    break
        return tensor


def train_transform() -> tuple[object, str]:
    """The project's train transform if reid.data.transforms provides one, else the inline recipe."""
    try:
        from reid.data.transforms import build_train_transform

        return build_train_transform(), "reid.data.transforms.build_train_transform()"
    except (ImportError, TypeError):
        pass
    try:
        from reid.data.transforms import Preprocess, TrainTransform

        return TrainTransform(Preprocess(height=HEIGHT, width=WIDTH)), "reid.data.transforms.TrainTransform"
    except (ImportError, TypeError):
        return InlineTrainTransform(), "inline (see module docstring)"


class Images(Dataset):
    def __init__(self, paths: list[str], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(read_image(self.paths[index]))


def make_images(folder: Path, n: int, seed: int) -> list[str]:
    """n Market-size (128x64) JPEGs of smooth random content (about Market's file size)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, size=(16, 8, 3), dtype=np.uint8)
        image = cv2.resize(small, (64, 128), interpolation=cv2.INTER_CUBIC)
        image = cv2.add(image, rng.integers(0, 24, size=image.shape, dtype=np.uint8))
        path = folder / f"{i:04d}_c{i % 6 + 1}s1_{i:06d}_00.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(str(path))
    return paths


def measure(paths: list[str], transform, workers: int, batch: int, repeats: int, seed: int) -> tuple[float, float]:
    """(first pass, best later pass) images/second. Workers persist across passes, so the
    first pass includes their start-up and the later ones are the steady state."""
    torch.manual_seed(seed)
    loader = DataLoader(
        Images(paths, transform), batch_size=batch, shuffle=False, num_workers=workers, persistent_workers=workers > 0
    )
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        n = sum(len(b) for b in loader)
        rates.append(n / (time.perf_counter() - start))
    return rates[0], max(rates[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="benchmark name to read images from (default: generated JPEGs)")
    parser.add_argument("--data-root", default=None, help="data root (default $REID_DATA_ROOT or datasets/)")
    parser.add_argument("--images", type=int, default=512, help="images per pass")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads per process (1: fair)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    augment, augment_name = train_transform()
    with tempfile.TemporaryDirectory() as tmp:
        if args.dataset:
            ds = build_dataset(args.dataset, resolve_data_root(args.data_root))
            paths, source = [r.path for r in ds.train[: args.images]], f"{args.dataset} train"
        else:
            paths, source = make_images(Path(tmp), args.images, args.seed), "generated 128x64 JPEGs"
        rows = []
        for mode, transform in (("decode", decode_resize), ("augmented", augment)):
            base = None
            for workers in args.workers:
                first, rate = measure(paths, transform, workers, args.batch, args.repeats, args.seed)
                base = base or rate
                rows.append(
                    {
                        "mode": mode,
                        "workers": workers,
                        "images_per_s": rate,
                        "vs_0_workers": rate / base,
                        "first_pass_images_per_s": first,
                    }
                )

    print(
        f"{len(paths)} images ({source}), batch {args.batch}, best of {args.repeats} after a first pass, "
        f"{args.threads} thread(s) per process; augmented = {augment_name}"
    )
    print(f"{'mode':<10} {'workers':>7} {'images/s':>9} {'vs 0 workers':>13} {'first pass':>11}")
    for row in rows:
        print(
            f"{row['mode']:<10} {row['workers']:>7} {row['images_per_s']:>9.0f} {row['vs_0_workers']:>12.2f}x "
            f"{row['first_pass_images_per_s']:>11.0f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "images": len(paths),
                    "source": source,
                    "batch": args.batch,
                    "repeats": args.repeats,
                    "threads": args.threads,
                    "augmented_transform": augment_name,
                    "size": [HEIGHT, WIDTH],
                    "machine": platform.platform(),
                    "cpus": os.cpu_count(),
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
