"""The `reid` command line: train, test, rerank, extract, export, data, track, tune."""

from __future__ import annotations

import errno
import sys

import click

from reid.errors import ReidError

from .data import data
from .export import export
from .extract import extract
from .rerank import rerank
from .search import index, search
from .test import test
from .track import track
from .train import train
from .tune import tune


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reid")
def cli() -> None:
    """Person re-identification with the Group Loss: train, evaluate, re-rank, extract features."""


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG}

for command in (train, test, rerank, extract, export, data, index, search, track, tune):
    cli.add_command(command)


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ReidError as exc:
        # undecodable bytes of non-UTF-8 file names are shown escaped, never crash the message
        click.echo(f"Error: {exc}".encode("utf-8", "backslashreplace").decode("utf-8"), err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {where}{exc.strerror or exc} (nothing was overwritten)", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
