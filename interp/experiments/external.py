"""Sweeps and reports of checkpoint series we did not train: any source
:func:`interp.open_checkpoints` opens (``save_pretrained`` directories, hub
revisions, models in memory).

The analyzers default to every head analyzer, on probes that fit the model:

* random tokens drawn from the ids its tokenizer was trained on, with its BOS
  (:func:`~interp.analysis.probes.pool_of`); the whole input vocabulary when it
  has no tokenizer;
* prefix matching (``prefix_matching_text``) and the copying gain
  (``text_copy``: loss on a passage's first copy minus its second, Hernandez
  et al. §4) on passages of natural text repeated, from the shipped corpus;
* Olsson et al.'s in-context-learning score (loss at token 500 minus token 50
  of natural text) when the model's context holds 512 tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.analysis import HEAD_ANALYZERS, head_analyzers, named_analyzer
from interp.analysis.sweep import Analyzer
from interp.sources.base import tokenizer_of


def source_dims(source: Any) -> tuple[int, int, bool]:
    """(context length, input vocabulary, whether it expects a BOS) of a
    source, read from its config without loading weights where it can."""
    if hasattr(source, "hf_config"):
        cfg = source.hf_config(source.steps[-1])
        n_ctx = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 0)
        return int(n_ctx), int(cfg.vocab_size), True
    model = source.load(source.steps[-1])
    cfg = model.cfg
    return int(cfg.n_ctx), int(cfg.d_vocab), bool(getattr(cfg, "default_prepend_bos", False))


def source_pool(source: Any) -> tuple[Any, int]:
    """(the source's :class:`~interp.analysis.probes.TokenPool`, or None when
    it has no tokenizer; its context length)."""
    from interp.analysis.probes import pool_of

    n_ctx, d_vocab, bos = source_dims(source)
    tokenizer = tokenizer_of(source)
    return (pool_of(tokenizer, d_vocab, bos) if tokenizer is not None else None), n_ctx


def default_analyzers(source: Any, names: Sequence[str] | None = None) -> list[Analyzer]:
    """The analyzers for a source we did not train (module docstring), or
    those named (``interp sweep --analyzer``), on its probes."""
    pool, n_ctx = source_pool(source)
    tokenizer = tokenizer_of(source)
    if names:
        fns = [_text_analyzers(tokenizer, pool, n_ctx).get(n) or named_analyzer(n) for n in names]
        return list(head_analyzers(analyzers=fns, pool=pool) if pool else fns)
    fns = list(head_analyzers(analyzers=HEAD_ANALYZERS, pool=pool) if pool else HEAD_ANALYZERS)
    return fns + list(_text_analyzers(tokenizer, pool, n_ctx).values())


def _text_analyzers(tokenizer: Any, pool: Any, n_ctx: int) -> dict[str, Analyzer]:
    """Analyzers on natural text, for a model with a tokenizer."""
    if tokenizer is None:
        return {}
    import torch

    from interp.analysis import copy_losses, olsson_icl_score, prefix_matching_scores
    from interp.analysis.probes import natural_text, text_probe

    bos = pool.bos if pool is not None else None
    length = min(25, (n_ctx - 1) // 4)
    stream = natural_text(tokenizer, n=10, length=length).reshape(-1)
    repeated = text_probe(stream, 10, length, repeats=4, bos=bos)
    passages = stream.reshape(10, length)

    def prefix_matching_text(model: Any, *, memo: dict[Any, Any] | None = None) -> Any:
        return prefix_matching_scores(model, repeated, memo=memo)

    def text_copy(model: Any) -> dict[str, float]:
        with torch.no_grad():
            losses = copy_losses(model, passages, copies=2)
        first, later = float(losses[0]), float(losses[1])
        return {
            "text_copy_loss_first": first,
            "text_copy_loss_later": later,
            "text_copy_gain": first - later,
        }

    out: dict[str, Analyzer] = {
        "prefix_matching_text": prefix_matching_text,
        "text_copy": text_copy,
    }
    if n_ctx >= 512:
        icl = functools.partial(olsson_icl_score, tokens=natural_text(tokenizer, 16, 512, bos=bos))

        def olsson_icl(model: Any, *, memo: dict[Any, Any] | None = None) -> dict[str, float]:
            return icl(model, memo=memo)

        out["olsson_icl_score"] = olsson_icl
    return out


def external_page(source: Any, df: Any) -> Any:
    """The report of a source we did not train: the best head's scores over
    checkpoints, per-head heatmaps, composition at the last checkpoint and
    an offline attention view of its probe."""
    import html

    import plotly.graph_objects as go

    from interp.analysis import attention_patterns, composition_scores
    from interp.viz.circuits import circuitsvis_bundle, layer_attention_views
    from interp.viz.figures import composition_figure, head_score_heatmap
    from interp.viz.report import Page

    best = go.Figure()
    for metric in ("induction_scores", "prefix_matching_scores", "prefix_matching_text"):
        d = df[df["metric"] == metric].groupby("step")["value"].max()
        if len(d):
            best.add_trace(
                go.Scatter(x=d.index, y=d.values, mode="lines+markers", name=f"max {metric}")
            )
    for metric in ("olsson_icl_score", "text_copy_gain", "copy_gain"):
        d = df[df["metric"] == metric].set_index("step")["value"]
        if len(d):
            best.add_trace(
                go.Scatter(x=d.index, y=d.values, mode="lines+markers", name=metric, yaxis="y2")
            )
    best.update_layout(
        title="The best head's scores, and in-context learning, over checkpoints",
        yaxis={"title": "score (max over heads)"},
        yaxis2={"title": "loss difference (nats)", "overlaying": "y", "side": "right"},
        xaxis={"title": "step"},
        height=450,
    )
    figures = [best]
    for metric in (
        "induction_scores",
        "prev_token_scores",
        "prefix_matching_scores",
        "copying_scores",
    ):
        if (df["metric"] == metric).any():
            figures.append(head_score_heatmap(df, metric))
    per_item = df[df["item"].notna()]
    if len(per_item):
        items = go.Figure()
        for metric, d in per_item.groupby("metric"):
            mean = d.groupby("step")["value"].mean()
            items.add_trace(
                go.Scatter(x=mean.index, y=mean.values, mode="lines+markers", name=metric)
            )
        items.update_layout(
            title="Per-sequence measures (mean over the sequences) over checkpoints",
            xaxis={"title": "step"},
            height=400,
        )
        figures.append(items)
    last = source.steps[-1]
    model = source.load(last)
    figures.append(composition_figure(composition_scores(model), f"composition at step {last}"))
    from interp.analysis import default_probe
    from interp.analysis.probes import pool_probe

    pool, _ = source_pool(source)
    probe = (pool_probe(model, pool) if pool is not None else default_probe(model))[0]
    pats = attention_patterns(model, probe[None])[0]
    labels = [str(int(t)) for t in probe]
    views = layer_attention_views(
        pats, labels, f"attention at step {last}, layer {{layer}} (probe: a segment repeated)"
    )
    info = {
        "source": repr(source),
        "steps": f"{len(source.steps)} ({source.steps[0]} … {last})",
        **getattr(source, "metadata", {}),
    }
    return Page(
        f"report: {html.escape(source.name)}",
        figures,
        info,
        extra_body="\n".join(views),
        extra_head=f"<script>{circuitsvis_bundle()}</script>",
    )


def write_external_report(
    source: Any,
    out: str | Path,
    steps: Sequence[int] | None = None,
    analyzers: Sequence[Analyzer] | None = None,
) -> Path:
    """Sweep a source we did not train (with its default analyzers, or
    ``analyzers``; cached results are reused) and write its report to
    ``out`` (offline HTML)."""
    from interp.analysis import sweep
    from interp.viz.report import write_page

    df = sweep(source, analyzers or default_analyzers(source), steps)
    return write_page(external_page(source, df), out)


__all__ = [
    "default_analyzers",
    "external_page",
    "source_dims",
    "source_pool",
    "write_external_report",
]
