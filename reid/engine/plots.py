"""Loss and metric curves of a run as PNG files (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reid.io.atomic import save_figure

_METRICS = ("mAP", "rank1", "mINP", "recall@1", "map@r")  # re-ID, then retrieval sets
_NOT_LOSSES = {"epoch", "lr", "images_per_s", "data_wait", "steps"}


def plot_curves(records: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write out_dir/loss.png (loss terms and lr per epoch) and, when any record holds an
    evaluation ({split: {"mAP": ...}}), out_dir/metrics.png. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    records = [r for r in records if "epoch" in r]
    if not records:
        return written
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [k for k in records[-1] if k not in _NOT_LOSSES and isinstance(records[-1][k], (int, float))]
    for name in names:
        style = {"color": "black", "lw": 2.5, "alpha": 0.6} if name == "loss" else {}
        ax.plot(epochs, [r.get(name, float("nan")) for r in records], marker="o", ms=3, label=name, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch)")
    ax.grid(alpha=0.3)
    if any("lr" in r for r in records):
        ax2 = ax.twinx()
        ax2.plot(epochs, [r.get("lr", float("nan")) for r in records], color="grey", ls="--", label="lr")
        ax2.set_ylabel("learning rate")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(handles + h2, labels + l2, loc="upper right", fontsize=8)
    else:
        ax.legend(fontsize=8)
    ax.set_title("training loss")
    fig.tight_layout()
    save_figure(fig, out_dir / "loss.png", dpi=100)
    plt.close(fig)
    written.append(out_dir / "loss.png")

    splits = sorted({k for r in records for k, v in r.items() if isinstance(v, dict) and set(_METRICS) & set(v)})
    if splits:
        fig, ax = plt.subplots(figsize=(7, 4))
        for split in splits:
            points = [(r["epoch"], r[split]) for r in records if isinstance(r.get(split), dict)]
            for metric in _METRICS:
                xs = [e for e, m in points if metric in m]
                ys = [100 * m[metric] for _, m in points if metric in m]
                if xs:
                    ax.plot(xs, ys, marker="o", ms=3, label=f"{split} {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("evaluation")
        fig.tight_layout()
        save_figure(fig, out_dir / "metrics.png", dpi=100)
        plt.close(fig)
        written.append(out_dir / "metrics.png")
    return written
