"""The README and docs/*.md link only to files that exist, and to headings
that exist (GitHub's anchor rule), so moving text between them cannot leave
a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces
    to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _prose(page.read_text()), re.M)}


def test_slug_follows_githubs_rule():
    assert slug("What it takes to form induction heads here — what was tried") == (
        "what-it-takes-to-form-induction-heads-here--what-was-tried"
    )
    assert slug('Lottery tickets in grokking (Minegishi et al. 2024, "Grokking Tickets")') == (
        "lottery-tickets-in-grokking-minegishi-et-al-2024-grokking-tickets"
    )
    assert slug("`cpu-full` and `paper`") == "cpu-full-and-paper"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    targets = LINK.findall(_prose(page.read_text()))
    assert targets, f"{page.name} has no links: the pattern is wrong"
    dead = []
    for target in targets:
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            dead.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(target)
    assert not dead, f"{page.name}: dead links {dead}"
