"""The docs point at things that exist: every relative link in README.md and docs/*.md names an existing
file, and every `reid/...py` module docs/design.md names is in the package."""

import itertools
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are code, not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(path: Path) -> list[str]:
    targets = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", t)]


def expand_braces(path: str) -> list[str]:
    """reid/engine/{ema,warmup}.py -> reid/engine/ema.py, reid/engine/warmup.py."""
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def test_link_parsing_skips_code_urls_and_anchors():
    text = "[a](docs/a.md) [b](https://x.org/b.md) [c](#top) `[d](d.md)`\n```\n[e](e.md)\n```\n[f](f.md#part)"
    assert LINK.findall(prose(text)) == ["docs/a.md", "https://x.org/b.md", "#top", "f.md#part"]
    assert expand_braces("reid/{a,b}/{c,d}.py") == ["reid/a/c.py", "reid/a/d.py", "reid/b/c.py", "reid/b/d.py"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_to_an_existing_file(page):
    missing = [t for t in relative_links(page) if not (page.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_every_module_named_in_design_md_exists():
    text = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    named = sorted({p for raw in re.findall(r"reid/[\w/{},.]*\.py", text) for p in expand_braces(raw)})
    assert len(named) >= 30  # the module map names the modules, not just the layers
    missing = [p for p in named if not (REPO / p).is_file()]
    assert not missing, f"docs/design.md names modules that do not exist: {missing}"
