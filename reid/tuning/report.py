"""What a tune leaves behind: the best config as YAML, a table of every trial, and two plots."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import yaml

from reid.io.atomic import save_figure, write_text

from .space import SearchSpace
from .study import trial_config


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One dict per trial: number, state, value, epochs reached, seconds, params, test metrics (recorded only)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        test = t.user_attrs.get("test") or {}
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                "last_epoch": max(t.intermediate_values) if t.intermediate_values else None,
                "seconds": seconds,
                **{key: t.params.get(key) for key in sorted({k for tr in study.trials for k in tr.params})},
                "test_mAP": test.get("mAP"),
                "run_dir": t.user_attrs.get("run_dir", ""),
            }
        )
    return rows


def write_report(study: Any, out_dir: Path, config_path: str | None, overrides: list[str], space: SearchSpace) -> dict:
    """Write best.yaml, trials.csv, trials.md, plots/history.png, plots/importances.png; return what was written."""
    rows = trial_rows(study)
    written: dict[str, Any] = {"trials": len(rows)}
    if rows:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text(out_dir / "trials.csv", buffer.getvalue())
        header = [k for k in rows[0] if k != "run_dir"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_fmt(row[k]) for k in header) + " |" for row in rows]
        write_text(out_dir / "trials.md", "\n".join(lines) + "\n")
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete:
        best = max(complete, key=lambda t: t.value)
        config = trial_config(config_path, overrides, space, best.params)
        config.train.run_name = ""
        header = (
            f"# best of {len(complete)} complete trials: trial {best.number}, "
            f"validation {space.metric} {best.value:.4f}\n"
        )
        write_text(out_dir / "best.yaml", header + yaml.safe_dump(config.to_dict(), sort_keys=False))
        written.update(best_trial=best.number, best_value=best.value, best_params=dict(best.params))
    written["plots"] = _plots(study, out_dir / "plots", space.metric)
    return written


def _save(fig: Any, path: Path) -> None:
    save_figure(fig, path, dpi=110)


def _plots(study: Any, folder: Path, metric: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state.name == "PRUNED"]
    if complete or pruned:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([t.number for t in complete], [t.value for t in complete], label="complete", color="tab:blue")
        last = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in pruned if t.intermediate_values]
        if last:
            ax.scatter(*zip(*last), label="pruned (last report)", color="tab:gray", marker="x")
        best, xs, ys = -math.inf, [], []
        for t in sorted(complete, key=lambda t: t.number):
            best = max(best, t.value)
            xs.append(t.number)
            ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color="tab:red", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"validation {metric}")
        ax.legend()
        ax.set_title("optimisation history")
        fig.tight_layout()
        _save(fig, folder / "history.png")
        plt.close(fig)
        made.append("history.png")
    varied = {k for t in complete for k in t.params}
    if len(complete) >= 3 and varied:
        import optuna

        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # e.g. every complete trial has the same value
            importances = {}
        if importances:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(importances)))
            names = list(importances)[::-1]
            ax.barh(names, [importances[n] for n in names], color="tab:green")
            ax.set_xlabel("importance (fANOVA)")
            ax.set_title(f"parameter importances for validation {metric}")
            fig.tight_layout()
            _save(fig, folder / "importances.png")
            plt.close(fig)
            made.append("importances.png")
    return made
