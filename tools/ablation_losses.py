"""Loss ablation on the synthetic benchmark: same model, data and budget, several seeds.

    python tools/ablation_losses.py                                   # every recipe x 3 seeds, table + JSON
    python tools/ablation_losses.py --seeds 0 1 --epochs 4 --json runs/ablation_losses.json
    python tools/ablation_losses.py --recipes ce group-authors --pretrained weights/lite0.pth \\
        --set model.backbone=timm:tf_efficientnet_lite0 --out runs/ablation-imagenet

Trains each loss recipe at the same budget (epochs, P x K, optimiser, schedule; from random
initialisation, or from --pretrained weights) on generated data (created under --data-root if
missing). `--val-identities` training identities are held out: the validation columns are what
recipes are compared and chosen on; the test (query/gallery) columns are reported, never used to
choose. Prints mean and standard deviation over seeds of rank-1 / mAP / mINP and the time each run
took. Finished run folders under --out are reused (their time is read back), so an interrupted
ablation resumes, and several processes can share --out with different --recipes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from reid.config import load_config
from reid.data.synthetic import SynthSpec, generate
from reid.engine.trainer import Trainer
from reid.io.atomic import write_text

# recipe name -> (loss spec, extra config overrides)
RECIPES: dict[str, tuple[dict, list[str]]] = {
    "ce": ({"ce": {"epsilon": 0.1}}, []),
    "ce+triplet": ({"ce": {"epsilon": 0.1}, "triplet": {"margin": 0.3}}, []),
    "rll": ({"ranked_list": {}}, []),
    # the authors' options: Pearson W, tau 80, 3 anchors, T 2, CE weight 1 with smoothing 0.1
    "group-authors": ({"group": {"preset": "authors"}}, []),
    # the previous demo recipe; "group-cos-t10-a1-T1" is the recommended preset (`group: {}`)
    "group-demo": ({"group": {"temperature": 10, "num_anchors": 2, "num_iters": 2, "similarity": "cosine"}}, []),
    "group-cos-t30-a1-T1": (
        {"group": {"temperature": 30, "num_anchors": 1, "num_iters": 1, "similarity": "cosine"}},
        [],
    ),
    "group-cos-t10-a1-T2": (
        {"group": {"temperature": 10, "num_anchors": 1, "num_iters": 2, "similarity": "cosine"}},
        [],
    ),
    "group-cos-t30-a1-T2": (
        {"group": {"temperature": 30, "num_anchors": 1, "num_iters": 2, "similarity": "cosine"}},
        [],
    ),
    "group-cos-t10-a1-T1-detach": (
        {
            "group": {
                "temperature": 10,
                "num_anchors": 1,
                "num_iters": 1,
                "similarity": "cosine",
                "detach_similarity": True,
            }
        },
        [],
    ),
    "group-cos-t10-a1-T1-pw2": (
        {
            "group": {
                "temperature": 10,
                "num_anchors": 1,
                "num_iters": 1,
                "similarity": "cosine",
                "propagation_weight": 2.0,
            }
        },
        [],
    ),
    "group-cos-t10-a1-T1": (
        {"group": {"temperature": 10, "num_anchors": 1, "num_iters": 1, "similarity": "cosine"}},
        [],
    ),
    # W from the BNNeck output (the test-time embedding) instead of the pooled features
    "group-cos-t10-a1-T1-bnneck": ({"group": {"w_features": "bnneck"}}, []),
    # the authors' classifier warm-up (backbone frozen, plain CE), here 1 epoch of a short budget
    "group-cos-t10-a1-T1-clswarm1": ({"group": {}}, ["train.classifier_warmup_epochs=1"]),
    # larger P x K: 16 identities x 4 per batch (half the steps per epoch)
    "group-cos-t10-a1-T1-P16": ({"group": {}}, ["data.identities_per_batch=16"]),
    # Group Loss++ late phases scaled to a short run: no anchors and tau 30 for the last two epochs, lr 0 in the last
    "group-cos-t10-a1-T1-gpp": (
        {"group": {"phases": [{"from_epoch": -2, "num_anchors": 0, "temperature": 30}]}},
        ["optim.zero_lr_from=-1"],
    ),
    "group-cos-t10-a1-T1+triplet": (
        {
            "group": {"temperature": 10, "num_anchors": 1, "num_iters": 1, "similarity": "cosine"},
            "triplet": {"margin": 0.3},
        },
        [],
    ),
    "group-cos-t10-a1-T1+rll": ({"group": {}, "ranked_list": {}}, []),
    "group-cos-t10-a2-T2+triplet": (
        {
            "group": {"temperature": 10, "num_anchors": 2, "num_iters": 2, "similarity": "cosine"},
            "triplet": {"margin": 0.3},
        },
        [],
    ),
}


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def from_end(epochs: int, value: int) -> int:
    """A recipe's negative 1-based epoch counts from the end (-1: the last epoch), so phases scale with --epochs."""
    return epochs + 1 + value if value < 0 else value


def run_one(args: argparse.Namespace, root: Path, recipe: str, seed: int) -> dict:
    loss, overrides = RECIPES[recipe]
    loss = json.loads(json.dumps(loss))
    for phase in loss.get("group", {}).get("phases", []):
        phase["from_epoch"] = from_end(args.epochs, phase["from_epoch"])
    overrides = [
        f"optim.zero_lr_from={from_end(args.epochs, int(o.split('=')[1]))}"
        if o.startswith("optim.zero_lr_from=")
        else o
        for o in overrides
    ]
    config = load_config(
        args.config,
        [
            f"data.root={root}",
            f"data.val_identities={args.val_identities}",
            f"train.epochs={args.epochs}",
            f"train.seed={seed}",
            "train.eval_before=false",
            "train.eval_every=0",
            "train.snapshot_epochs=[]",
            "train.plots=false",
            "train.tensorboard=false",
            *([f"model.pretrained={args.pretrained}"] if args.pretrained else []),
            *overrides,
            *args.set,
        ],
    )
    config.loss = loss
    run_dir = Path(args.out) / f"{recipe.replace('+', '_')}-seed{seed}"
    timing = run_dir / "ablation_seconds.txt"
    done = run_dir / "metrics.json"
    if done.is_file() and timing.is_file():  # finished earlier: reuse (delete the folder to retrain)
        history, seconds = json.loads(done.read_text()), float(timing.read_text())
    else:
        start = time.perf_counter()
        history = Trainer.from_config(config, run_dir=run_dir, progress=False, resume=run_dir.is_dir()).fit()
        seconds = time.perf_counter() - start
        write_text(timing, f"{seconds:.1f}\n")
    row = {"seed": seed, "seconds": seconds, "test": history["final"], "val": history.get("final_val")}
    val = row["val"] or {}
    print(
        f"{recipe:<30} seed {seed}: val rank-1 {100 * val.get('rank1', float('nan')):.1f} "
        f"mAP {100 * val.get('mAP', float('nan')):.1f} | test rank-1 {100 * row['test']['rank1']:.1f} "
        f"mAP {100 * row['test']['mAP']:.1f} mINP {100 * row['test']['mINP']:.1f} ({seconds:.0f} s)",
        flush=True,
    )
    return row


def summarise(results: dict[str, list[dict]]) -> dict:
    summary = {}
    for recipe, runs in results.items():
        entry: dict = {"runs": runs, "seconds_mean": statistics.mean(r["seconds"] for r in runs)}
        for split in ("val", "test"):
            for metric in ("rank1", "mAP", "mINP"):
                values = [100 * r[split][metric] for r in runs if r.get(split)]
                if values:
                    entry[f"{split}_{metric}_mean"], entry[f"{split}_{metric}_std"] = (
                        statistics.mean(values),
                        sd(values),
                    )
        summary[recipe] = entry
    return summary


def print_table(summary: dict) -> None:
    cell = "{:>5.1f} ± {:<4.1f}"
    print("\n| loss | val rank-1 | val mAP | val mINP | test rank-1 | test mAP | test mINP | s/run | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe, e in summary.items():
        cols = [
            cell.format(e.get(f"{k}_mean", float("nan")), e.get(f"{k}_std", float("nan")))
            for k in ("val_rank1", "val_mAP", "val_mINP", "test_rank1", "test_mAP", "test_mINP")
        ]
        print(f"| {recipe} | " + " | ".join(cols) + f" | {e['seconds_mean']:.0f} | {len(e['runs'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/demo.yaml", help="base config (model, data, optimiser)")
    parser.add_argument("--data-root", default="runs/ablation-data")
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--val-identities", type=int, default=20, help="held-out training ids for selection")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pretrained", help="ImageNet weights file for the backbone (model.pretrained)")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, key=value")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--out", default="runs/ablation-losses")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    root = Path(args.data_root)
    if not (root / "synthetic-market").is_dir():
        generate(root / "synthetic-market", SynthSpec(identities=args.identities, seed=1234))
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:  # seed-major: an interrupted run still has every recipe at the first seeds
        for recipe in args.recipes:
            results.setdefault(recipe, []).append(run_one(args, root, recipe, seed))
    summary = summarise(results)
    print_table(summary)
    if args.json:
        write_text(Path(args.json), json.dumps({"args": vars(args), "results": summary}, indent=2))


if __name__ == "__main__":
    main()
