"""Loss ablation on the synthetic benchmark: same model, data and budget, several seeds.

    python tools/ablation_losses.py                       # 4 losses x 3 seeds, table + JSON
    python tools/ablation_losses.py --seeds 0 1 --epochs 4 --json runs/ablation_losses.json

Trains each loss recipe from the same random initialisation budget (epochs, P x K, lr,
schedule) on generated data (created under --data-root if missing), evaluates rank-1 and
mAP on the synthetic query/gallery split, and prints the mean and standard deviation
over seeds. Each run folder is kept under --out for inspection.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reid.config import load_config
from reid.data.synthetic import SynthSpec, generate
from reid.engine.trainer import Trainer

RECIPES: dict[str, dict] = {
    "cross-entropy": {"ce": {"epsilon": 0.1}},
    "cross-entropy + triplet": {"ce": {"epsilon": 0.1}, "triplet": {"margin": 0.3}},
    "group loss": {"group": {"temperature": 10, "num_anchors": 2, "num_iters": 2, "ce_weight": 1.0}},
    "ranked list loss": {"ranked_list": {}},
}


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/demo.yaml", help="base config (model, data, optimiser)")
    parser.add_argument("--data-root", default="runs/ablation-data")
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--out", default="runs/ablation-losses")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    root = Path(args.data_root)
    if not (root / "synthetic-market").is_dir():
        generate(root / "synthetic-market", SynthSpec(identities=args.identities, seed=1234))
    results: dict[str, list[dict]] = {}
    for recipe in args.recipes:
        for seed in args.seeds:
            config = load_config(
                args.config,
                [
                    f"data.root={root}",
                    f"train.epochs={args.epochs}",
                    f"train.seed={seed}",
                    "train.eval_before=false",
                    "train.eval_every=0",
                    "train.snapshot_epochs=[]",
                ],
            )
            config.loss = json.loads(json.dumps(RECIPES[recipe]))
            run_dir = Path(args.out) / f"{recipe.replace(' ', '').replace('+', '_')}-seed{seed}"
            start = time.perf_counter()
            done = run_dir / "metrics.json"
            if done.is_file():  # finished earlier: reuse (delete the folder to retrain)
                history = json.loads(done.read_text())
            else:
                history = Trainer.from_config(config, run_dir=run_dir, progress=False, resume=run_dir.is_dir()).fit()
            final = history["final"]
            results.setdefault(recipe, []).append({"seed": seed, "seconds": time.perf_counter() - start, **final})
            print(f"{recipe:<24} seed {seed}: rank-1 {100 * final['rank1']:.1f}%  mAP {100 * final['mAP']:.1f}%")

    print(f"\n{'loss':<24} {'rank-1 (%)':>14} {'mAP (%)':>14} {'runs':>5}")
    summary = {}
    for recipe, runs in results.items():
        r1 = [100 * r["rank1"] for r in runs]
        ap = [100 * r["mAP"] for r in runs]
        summary[recipe] = {
            "rank1_mean": statistics.mean(r1),
            "rank1_std": sd(r1),
            "mAP_mean": statistics.mean(ap),
            "mAP_std": sd(ap),
            "runs": runs,
        }
        print(
            f"{recipe:<24} {statistics.mean(r1):>7.1f} ± {sd(r1):<4.1f} {statistics.mean(ap):>7.1f} ± {sd(ap):<4.1f}"
            f" {len(runs):>5}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": summary}, indent=2))


if __name__ == "__main__":
    main()
