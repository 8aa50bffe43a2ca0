"""The ten-line Python example of README.md and docs/training.md trains without the CLI (run here tiny)."""

import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def python_examples(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file that build a Trainer."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    return [b for b in blocks if "Trainer(" in b]


@pytest.mark.parametrize("doc", ["README.md", "docs/training.md"])
def test_the_documented_trainer_example_runs(doc, tiny_root, capsys):
    (code,) = python_examples(REPO / doc)
    body = [line for line in code.strip().splitlines() if not line.startswith(("import ", "from "))]
    assert len(body) <= 10  # ten lines after the imports
    tiny = code.replace('"datasets"', repr(str(tiny_root))).replace("epochs=30", "epochs=1")
    tiny = tiny.replace("p=8, k=4", "p=3, k=2").replace("workers=1", "workers=0")
    assert tiny != code
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(tiny, doc, "exec"), {})
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "mAP" in printed and "rank1" in printed
