"""Run the `reid` entry point in-process and capture what a user would see."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from reid.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def one_line_error(self) -> str:
        """The single stderr line (asserting there is exactly one and no traceback)."""
        lines = [line for line in self.err.strip().splitlines() if line.strip()]
        assert "Traceback" not in self.err, self.err
        assert len(lines) == 1, self.err
        return lines[0]


def run_reid(capsys, monkeypatch, *args) -> Outcome:
    """`reid ARGS` through reid.cli.main (the installed entry point), exit code and output."""
    monkeypatch.setattr(sys, "argv", ["reid", *map(str, args)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)
