"""Every relative link of the Markdown docs reaches a file, and every #anchor a heading of it (GitHub's slugs).

The README was cut from 646 lines to 307 with its reference moved into docs/; a link left pointing at a moved
section is what a new reader meets first."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "BENCHMARKS.md", ROOT / "data" / "README.md",
               *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^ *(```|~~~).*?^ *\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")  # inline code: a [x](y) there is text


def slugs(text: str) -> set[str]:
    """The anchors GitHub makes of a file's headings: lower case, punctuation but '-' and '_' dropped, spaces to
    '-', and '-1', '-2' ... on repeats."""
    seen: dict[str, int] = {}
    out = set()
    for head in re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", head.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_slugs_follow_githubs_rules():
    assert slugs("# Quick start\n## `recommend` --user\n```\n# not a heading\n```\n## Quick start\n") == {
        "quick-start", "recommend---user", "quick-start-1"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_a_heading(doc):
    text = doc.read_text()
    bad = []
    for target in LINK.findall(CODE.sub("", FENCE.sub("", text))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest.read_text()):
            bad.append(f"{target}: no heading '#{anchor}' in {dest.relative_to(ROOT)}")
    assert not bad, bad
