"""`reid data ...`: generate the synthetic benchmark (and inspect datasets)."""

from __future__ import annotations

import click

from .common import fail
from .data_check import check


@click.group()
def data() -> None:
    """Dataset tools: generate the synthetic benchmark, check a benchmark's counts."""


data.add_command(check)


@data.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to create (Market-1501 layout).")
@click.option("--identities", default=200, show_default=True, help="Identities in all; half train, half test.")
@click.option("--images-per-identity", default=12, show_default=True)
@click.option("--cameras", default=6, show_default=True)
@click.option("--height", default=128, show_default=True)
@click.option("--width", default=64, show_default=True)
@click.option("--distractors", default=100, show_default=True, help="Gallery images of pid 0 (other people).")
@click.option("--junk", default=50, show_default=True, help="Gallery images of pid -1 (false detections).")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
def synth(out, identities, images_per_identity, cameras, height, width, distractors, junk, seed, overwrite) -> None:
    """Generate a synthetic person re-ID dataset in Market-1501's exact layout and naming."""
    from reid.data.synthetic import SynthSpec, generate

    if height < 32 or width < 16:
        raise fail("--height must be >= 32 and --width >= 16")
    spec = SynthSpec(
        identities=identities,
        images_per_identity=images_per_identity,
        cameras=cameras,
        cameras_per_identity=(2, min(4, cameras)),
        height=height,
        width=width,
        distractors=distractors,
        junk=junk,
        seed=seed,
    )
    counts = generate(out, spec, overwrite=overwrite)
    click.echo(
        f"{out}: {counts['train']} train images of {counts['train_ids']} ids; {counts['query']} query and "
        f"{counts['gallery']} gallery images of {counts['test_ids']} ids, "
        f"+{counts['distractors']} distractors, +{counts['junk']} junk"
    )
