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


@data.command("from-mot")
@click.argument("seq_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to create (Market-1501 layout).")
@click.option("--min-visibility", default=0.5, show_default=True, help="Skip boxes less visible (gt column 9).")
@click.option("--min-height", default=50, show_default=True, help="Skip boxes lower than this (pixels).")
@click.option("--min-inside", default=0.8, show_default=True, help="Skip boxes with less of their area in the frame.")
@click.option("--every", default=5, show_default=True, help="Crop one box in this many frames of each track.")
@click.option("--time-chunks", default=2, show_default=True, help="Cameras per sequence (equal spans of time).")
@click.option("--test-share", default=0.5, show_default=True, help="Share of identities in query/gallery.")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def from_mot(
    seq_dirs, out, min_visibility, min_height, min_inside, every, time_chunks, test_share, seed, overwrite, quiet
) -> None:
    """Crop the ground-truth boxes of MOTChallenge sequences into a Market-1501-layout re-ID dataset.

    Identity = track id made unique per sequence; camera = sequence, cut into --time-chunks
    spans of time. The split rules are in `reid.tracking.from_mot` and the output's from_mot.json.
    Check it with `reid data check from-mot --data-root OUT`; train on it with the overrides
    data.dataset=from-mot data.root=OUT.
    """
    from reid.tracking.from_mot import FromMotRules, crops_from_mot

    if every < 1 or time_chunks < 1 or min_height < 0:
        raise fail("--every and --time-chunks must be positive, --min-height not negative")
    if not 0 <= test_share < 1 or not 0 <= min_visibility <= 1 or not 0 <= min_inside <= 1:
        raise fail("--test-share must be in [0, 1), --min-visibility and --min-inside in [0, 1]")
    rules = FromMotRules(min_visibility, min_height, min_inside, every, time_chunks, test_share, seed)
    counts = crops_from_mot(seq_dirs, out, rules, overwrite=overwrite, progress=not quiet)
    click.echo(
        f"{out}: {counts['train']} train crops of {counts['train_ids']} ids; {counts['query']} query and "
        f"{counts['gallery']} gallery crops of {counts['gallery_ids']} ids (rules in {out}/from_mot.json)"
    )
