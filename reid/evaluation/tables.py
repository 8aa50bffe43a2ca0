"""The plain-text tables the commands print: generic rows, re-ID metric rows, ablation rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRIC_COLUMNS = ("rank1", "rank5", "rank10", "mAP", "mINP")


def format_table(rows: list[dict], columns: Sequence[str], floatfmt: str = ".4f") -> str:
    """Aligned plain-text table: numbers right-aligned, floats formatted with `floatfmt`, None/missing as '-'."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, (float, np.floating)):
            return format(v, floatfmt)
        return str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r.get(c)) for r in rows if r.get(c) is not None) and rows for c in columns]

    def fmt(values) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    lines = [fmt(list(columns)), "  ".join("-" * w for w in widths)]
    lines += [fmt(line) for line in cells]
    return "\n".join(lines)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def format_metrics_table(rows: dict[str, dict], columns: Sequence[str] = METRIC_COLUMNS) -> str:
    """Rows of metrics (rank1/5/10, mAP, mINP as fractions; or `columns`) as an aligned percent table."""
    width = max(10, *(len(name) for name in rows))
    widths = [max(7, len(c)) for c in columns]
    lines = [f"{'model':<{width}} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths))]
    for name, metrics in rows.items():
        cells = " ".join(
            f"{100 * metrics[c]:>{w - 1}.1f}%" if metrics.get(c) is not None else f"{'-':>{w}}"
            for c, w in zip(columns, widths)
        )
        lines.append(f"{name:<{width}} {cells}")
    return "\n".join(lines)


def format_ablation_table(rows: Sequence) -> str:
    """An aligned text table: rank-1, mAP, mINP (percent), seconds and the change of mAP."""
    width = max(len("strategy"), *(len(r.name) for r in rows))
    head = f"{'strategy':<{width}} {'rank1':>7} {'mAP':>7} {'mINP':>7} {'dmAP':>7} {'seconds':>8}"
    base = rows[0].metrics["mAP"] if rows else 0.0
    lines = [head, "-" * len(head)]
    for r in rows:
        m = r.metrics
        lines.append(
            f"{r.name:<{width}} {100 * m['rank1']:>6.1f}% {100 * m['mAP']:>6.1f}% {100 * m['mINP']:>6.1f}% "
            f"{100 * (m['mAP'] - base):>+6.1f} {r.seconds:>8.2f}"
        )
    return "\n".join(lines)
