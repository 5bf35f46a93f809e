"""Offline HTML pages of plotly figures: a :class:`Page` (title, figures, a
summary table, extra HTML) written by :func:`write_page`.

The plotly.js bundle is inlined once per page, so the file opens with no
network. Every piece of text that reaches the page is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from interp.training.files import atomic_write_text


def figures_html(
    figures: Sequence[go.Figure],
    title: str,
    intro_html: str = "",
    extra_body: str = "",
    extra_head: str = "",
) -> str:
    """One self-contained HTML page: plotly.js inlined once, then each figure,
    then ``extra_body`` (e.g. circuitsvis views whose bundle is in ``extra_head``)."""
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%"))
    body = "\n".join(f'<div class="fig">{p}</div>' for p in parts)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        f".fig{{margin:1.5em 0}}</style>{extra_head}</head><body>"
        f"<h1>{html.escape(title)}</h1>{intro_html}{body}{extra_body}</body></html>\n"
    )


def write_figures(
    figures: Sequence[go.Figure], path: str | Path, title: str, intro_html: str = "", **kw: str
) -> Path:
    """Write :func:`figures_html` atomically to ``path`` (``kw``: extra_body, extra_head)."""
    path = Path(path)
    atomic_write_text(path, figures_html(figures, title, intro_html, **kw))
    return path


def table_html(rows: dict[str, Any]) -> str:
    """A two-column key/value table, escaped."""
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def frame_html(df: Any, digits: int = 3) -> str:
    """A data frame as an HTML table: floats to ``digits`` significant digits,
    missing values as an en dash; pandas escapes every cell."""
    return df.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.{digits}g}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class Page:
    """One report page: a title, figures, a key/value summary table shown
    above them, and extra HTML below them (``extra_head`` goes into
    ``<head>``, e.g. an inlined script bundle)."""

    title: str
    figures: list[go.Figure]
    info: dict[str, Any] = field(default_factory=dict)
    extra_body: str = ""
    extra_head: str = ""
    intro_html: str = ""


def write_page(page: Page, path: str | Path) -> Path:
    """Write ``page`` as one offline HTML file (plotly.js inlined once)."""
    intro = page.intro_html + (table_html(page.info) if page.info else "")
    return write_figures(
        page.figures, path, page.title, intro, extra_body=page.extra_body,
        extra_head=page.extra_head,
    )  # fmt: skip
