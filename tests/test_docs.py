"""The README and the pages under docs/ link only to files that exist, and to
headings that exist (GitHub's anchor rule), so moving text between them cannot
leave a dead link behind; the README stays a short page for users."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    quick = text[text.index("## Quick start") :]
    assert quick.index("make demo") < quick.index("make test") < quick.index("\n## ", 5)


def test_every_cli_command_is_in_the_readme():
    import typer

    from interp.cli import app

    text = (ROOT / "README.md").read_text()

    def walk(cmd, prefix: str) -> list[str]:
        if hasattr(cmd, "commands"):  # a group
            return [n for name, sub in cmd.commands.items() for n in walk(sub, f"{prefix} {name}")]
        return [prefix]

    commands = walk(typer.main.get_command(app), "interp")
    assert len(commands) >= 15
    missing = [c for c in commands if f"`{c}" not in text]
    assert not missing, f"README lacks {missing}"


def test_no_dated_results_in_docstrings_or_help():
    """Results and their dates live in docs/experiments/, not in the code."""
    code = ROOT / "interp"
    dated = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in code.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"20[2-3][0-9]-[01][0-9]-[0-3][0-9]|\bREADME\b(?!\.md)", line)
    ]
    assert not dated, dated
