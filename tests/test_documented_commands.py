"""Every `reid ...` command line in README.md and docs/*.md still parses: its command exists and every
option it uses is accepted with the value given (click parses it; nothing runs)."""

import re
import shlex
from pathlib import Path

import click
import pytest

from reid.cli import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def documented_commands() -> list[tuple[str, str]]:
    """(file, command line) for each line of a shell or plain code block that runs `reid` (continuations joined)."""
    found = []
    for path in DOCS:
        for lang, block in re.findall(r"```(\w*)\n(.*?)```", path.read_text(), flags=re.S):
            if lang not in ("", "bash", "sh", "console"):
                continue
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split(" #", 1)[0].strip()
                line = re.sub(r"^(\$ )?(\.venv/bin/|python -m )?", "", line)
                if line.startswith("reid "):
                    found.append((path.name, line))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 20
    assert {line.split()[1] for _, line in COMMANDS} >= {"train", "test", "extract", "rerank", "export", "data"}


@pytest.mark.parametrize("doc, line", COMMANDS, ids=[f"{d}:{line[:60]}" for d, line in COMMANDS])
def test_documented_command_parses(doc, line):
    args = shlex.split(line)[1:]
    command: click.Command = cli
    names = ["reid"]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"{doc}: unknown command {' '.join(names + args[:1])}"
        names.append(args.pop(0))
        command = sub
    ctx = command.make_context(" ".join(names), list(args), resilient_parsing=False)
    ctx.close()
