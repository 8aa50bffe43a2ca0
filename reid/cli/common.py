"""Shared CLI helpers: options, devices, printing tables."""

from __future__ import annotations

import click

from reid.errors import ReidError
from reid.evaluation.tables import format_metrics_table

__all__ = ["device_option", "fail", "format_metrics_table", "pick_device"]


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
