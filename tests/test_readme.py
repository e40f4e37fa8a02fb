"""The README stays a short guide, and its links and the guides' in docs/ lead somewhere.

Plain text checks (no subprocess, no model): the README's length, its first commands, and that every
relative link in it and in docs/*.md names a file that exists and, with ``#anchor``, a heading in it
(anchors as GitHub makes them from headings).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text in lower case, without punctuation, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()  # a link in a heading: its text
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        anchors.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return anchors


def _broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: …: not a file here
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.relative_to(ROOT)}")
    return broken


def test_the_readme_is_a_guide_of_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move the detail to docs/ and link it"


def test_the_first_commands_are_setup_run_and_test():
    first_block = FENCE.search(README.read_text(encoding="utf-8"))
    assert first_block, "README.md shows no command"
    commands = [line.split("#", 1)[0].strip() for line in first_block.group(0).splitlines()[1:-1]]
    assert [c for c in commands if c] == ["make setup", "make run", "make test"]


@pytest.mark.parametrize("path", [README, *GUIDES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(path):
    assert _broken_links(path) == []


def test_the_readme_links_to_every_guide_in_docs():
    linked = {(README.parent / target.partition("#")[0]).resolve()
              for target in LINK.findall(_prose(README.read_text(encoding="utf-8")))}
    assert [str(p.relative_to(ROOT)) for p in GUIDES if p.resolve() not in linked] == []


def test_the_slug_is_githubs():
    assert _slug("Feedback → evaluation set") == "feedback--evaluation-set"
    assert _slug("Several knowledge bases 多个知识库") == "several-knowledge-bases-多个知识库"
    assert _slug("A segmented index (`rag index --store segments`)") == "a-segmented-index-rag-index---store-segments"
    assert _slug("Errors, and what the server checks") == "errors-and-what-the-server-checks"
