"""Shared CLI helpers: options, devices, printing tables."""

from __future__ import annotations

import click

from reid.errors import ReidError


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def device_option(f):
    return click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")(f)


def bad_image_options(f):
    """--skip-bad and --verify-images, the switches the bad-image errors point to."""
    f = click.option(
        "--verify-images", is_flag=True, help="Decode every image before starting (slow; finds corrupt files)."
    )(f)
    return click.option("--skip-bad", is_flag=True, help="Skip (and count) missing, empty or undecodable images.")(f)


def pick_device(name: str):
    from reid.engine.trainer import resolve_device

    try:
        return resolve_device(name)
    except ReidError as exc:
        raise fail(str(exc)) from None


def format_metrics_table(rows: dict[str, dict]) -> str:
    """Rows of metrics (rank1/5/10, mAP, mINP as fractions) as an aligned percent table."""
    columns = ["rank1", "rank5", "rank10", "mAP", "mINP"]
    width = max(10, *(len(name) for name in rows))
    lines = [f"{'model':<{width}} " + " ".join(f"{c:>7}" for c in columns)]
    for name, metrics in rows.items():
        cells = " ".join(f"{100 * metrics[c]:>6.1f}%" if c in metrics else f"{'-':>7}" for c in columns)
        lines.append(f"{name:<{width}} {cells}")
    return "\n".join(lines)
