"""circuitsvis attention views as HTML that works offline.

circuitsvis's own HTML imports its JavaScript from a CDN, so an offline page
stays blank. Here the package's bundled ``dist/cdn/iife.js`` (which defines a
global ``CircuitsVis``) is inlined once per page, and every view is rendered
from it with ``CircuitsVis.render(id, CircuitsVis.AttentionHeads, props)``.

Token strings reach the page only inside a JSON literal whose ``<``, ``>``,
``&`` and line separators are \\u-escaped, so no token can close the script
element. ``AttentionHeads`` draws token labels on a canvas (plain text), but
``ColoredTokens`` inserts each token with ``innerHTML`` (a markup-injection
sink in circuitsvis 1.43), so tokens for that view are HTML-escaped first.
Titles are HTML-escaped.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import circuitsvis
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.analysis.behavior import per_token_loss
from interp.analysis.heads import attention_patterns
from interp.config.core import InputError
from interp.training.files import atomic_write_text


@lru_cache(maxsize=1)
def circuitsvis_bundle() -> str:
    """The circuitsvis browser bundle, made safe to inline in a <script>."""
    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    if not path.exists():
        raise FileNotFoundError(f"circuitsvis bundle not found at {path}")
    js = path.read_text(encoding="utf-8")
    js = js.replace("</script", "<\\/script")  # cannot end the inline element early
    return "\n".join(
        line for line in js.splitlines() if not line.startswith("//# sourceMappingURL")
    )


def script_json(obj: Any) -> str:
    """JSON that is safe inside an HTML <script> element."""
    text = json.dumps(obj, ensure_ascii=False)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def attention_view(
    patterns: Float[Tensor, "head seq_q seq_k"],
    tokens: Sequence[str],
    head_names: Sequence[str],
    title: str = "",
) -> str:
    """One ``AttentionHeads`` view (a div and the script that renders it).

    Needs :func:`page` (or another page holding the bundle) around it.
    """
    if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
        raise InputError(f"patterns must be [head, seq, seq], got {tuple(patterns.shape)}")
    if patterns.shape[1] != len(tokens):
        raise InputError(
            f"{len(tokens)} token strings for a pattern over {patterns.shape[1]} positions"
        )
    if len(head_names) != patterns.shape[0]:
        raise InputError(f"{len(head_names)} head names for {patterns.shape[0]} heads")
    div = f"cv-{uuid.uuid4().hex[:12]}"
    props = {
        "attention": patterns.detach().float().cpu().tolist(),
        "tokens": [str(t) for t in tokens],
        "attentionHeadNames": list(head_names),
        "maskUpperTri": True,
    }
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return (
        f'<section class="attention-view">{heading}<div id="{div}"></div>\n'
        f"<script>CircuitsVis.render({script_json(div)}, CircuitsVis.AttentionHeads, "
        f"{script_json(props)});</script></section>"
    )


def layer_attention_views(
    patterns: Float[Tensor, "layer head seq_q seq_k"], tokens: Sequence[str], title: str
) -> list[str]:
    """One :func:`attention_view` per layer, heads named ``L{layer}H{head}``;
    ``title`` is formatted with ``layer``."""
    return [
        attention_view(
            patterns[layer],
            tokens,
            [f"L{layer}H{h}" for h in range(patterns.shape[1])],
            title.format(layer=layer),
        )
        for layer in range(patterns.shape[0])
    ]


def tokens_view(tokens: Sequence[str], values: Sequence[float], title: str = "") -> str:
    """A ``ColoredTokens`` view: the sequence as text, each token shaded by a value."""
    if len(tokens) != len(values):
        raise InputError(f"{len(tokens)} tokens but {len(values)} values")
    div = f"cv-{uuid.uuid4().hex[:12]}"
    # ColoredTokens writes each token with innerHTML: escape so it shows as text
    props = {"tokens": [html.escape(str(t)) for t in tokens], "values": [float(v) for v in values]}
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return (
        f'<section class="tokens-view">{heading}<div id="{div}"></div>\n'
        f"<script>CircuitsVis.render({script_json(div)}, CircuitsVis.ColoredTokens, "
        f"{script_json(props)});</script></section>"
    )


def page(views: Sequence[str], title: str, intro_html: str = "") -> str:
    """A complete offline page: the circuitsvis bundle once, then the views."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}</style>"
        f"<script>{circuitsvis_bundle()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1>{intro_html}" + "\n".join(views) + "</body></html>\n"
    )


def attention_html(
    model: nn.Module,
    tokens: Int[Tensor, " seq"],
    token_strings: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    title: str = "attention patterns",
) -> str:
    """A page with one attention view per layer for a single token sequence.

    ``token_strings`` label the positions (default: the token ids); ``heads``
    selects which heads each view shows (default: all).
    """
    if tokens.ndim != 1:
        raise InputError(f"tokens must be one sequence [seq], got shape {tuple(tokens.shape)}")
    pats = attention_patterns(model, tokens[None])[0]  # [layer, head, q, k]
    n_layers, n_heads = pats.shape[:2]
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    for name, sel, n in (("layer", layers, n_layers), ("head", heads, n_heads)):
        bad = [i for i in sel if not 0 <= i < n]
        if bad:
            raise InputError(f"{name} index {bad} out of range 0..{n - 1}")
    strings = [str(int(t)) for t in tokens] if token_strings is None else list(token_strings)
    loss = [0.0 if v != v else v for v in per_token_loss(model, tokens[None])[0].tolist()]
    views = [
        tokens_view(strings, [0.0, *loss], "tokens, shaded by the model's loss predicting each "
                    "(unshaded: the first token, and tokens the model never outputs)")
    ]  # fmt: skip
    views += [
        attention_view(
            pats[layer, heads], strings, [f"L{layer}H{h}" for h in heads], f"layer {layer}"
        )
        for layer in layers
    ]
    return page(views, title)


def write_attention_html(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Write :func:`attention_html` atomically to ``path``."""
    path = Path(path)
    atomic_write_text(path, attention_html(*args, **kwargs))
    return path
