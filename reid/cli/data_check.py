"""`reid data check NAME`: load a dataset and compare its counts with the published ones."""

from __future__ import annotations

import click

from reid.errors import ReidError


@click.command("check")
@click.argument("name")
@click.option(
    "--data-root",
    default=None,
    type=click.Path(),
    help="Folder holding the datasets (default: $REID_DATA_ROOT, else datasets/).",
)
@click.option("--strict", is_flag=True, help="Files not following the naming scheme are errors, not warnings.")
@click.option("--skip-bad", is_flag=True, help="Skip (and count) missing, empty or undecodable images.")
@click.option("--verify-images", is_flag=True, help="Decode every image (slow; finds corrupt and truncated files).")
@click.option("--with-val", is_flag=True, help="MSMT17: add list_val.txt to the train split (the published figure).")
def check(name: str, data_root: str | None, strict: bool, skip_bad: bool, verify_images: bool, with_val: bool) -> None:
    """Count identities, images and cameras per split of dataset NAME and name every
    difference from the published counts.

    NAME: market1501, dukemtmc, msmt17, cuhk03-np-detected, cuhk03-np-labeled,
    synthetic, from-mot (`reid data from-mot` output), custom (--data-root is the custom tree or
    CSV) or custom:PATH.
    """
    from reid.data.check import check_dataset, format_check_report
    from reid.data.datasets import build_dataset, resolve_data_root

    root = resolve_data_root(data_root)
    try:
        dataset = build_dataset(
            name, root, strict=strict, skip_bad=skip_bad, verify_images=verify_images, with_val=with_val
        )
    except ReidError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_check_report(check_dataset(dataset)))
