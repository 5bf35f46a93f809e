"""Analyzers by name: what ``interp sweep --analyzer NAME`` and the
experiments' default analyzer lists refer to."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from interp.analysis.behavior import (
    copy_gain,
    head_ablation_losses,
    logit_copying_scores,
    signed_logit_copying,
)
from interp.analysis.circuits import composition_scores, composition_vs_init, copying_scores
from interp.analysis.fourier import fourier_progress
from interp.analysis.heads import (
    default_probe,
    duplicate_token_scores,
    induction_scores,
    model_dims,
    prefix_matching_scores,
    prev_token_scores,
)
from interp.analysis.probes import TokenPool, pool_probe
from interp.analysis.sweep import Analyzer, analyzer_name
from interp.config.core import ConfigError
from interp.data.sequences import check_vocab_range

#: Every per-head analyzer of a transformer, in the order reports show them
#: (what ``interp sweep`` and ``interp report`` run on induction runs).
HEAD_ANALYZERS = (
    prev_token_scores,
    duplicate_token_scores,
    induction_scores,
    prefix_matching_scores,
    copying_scores,
    logit_copying_scores,
    composition_scores,
    copy_gain,
)


def head_analyzers(
    vocab_range: tuple[int, int] | None = None,
    analyzers: Sequence[Analyzer] = HEAD_ANALYZERS,
    *,
    pool: TokenPool | None = None,
) -> tuple[Analyzer, ...]:
    """``analyzers`` with their random-token probes drawn from ``vocab_range``
    (token ids ``lo``…``hi − 1``) instead of the whole vocabulary.

    For models whose vocabulary holds ids that never occur in training — the
    bytes 128–255 of a byte-level model of ASCII text keep their initial
    embeddings — a probe over every id under-reads induction heads (0.16 vs 0.42
    on the same head; :func:`interp.experiments.repeated_data.probe_vocab_range`).
    Analyzers with a ``vocab_range`` parameter get it; those with a ``tokens``
    parameter run on :func:`default_probe` of that range (one probe, so they
    still share a forward pass); weight-only ones are returned unchanged. The
    wrapped analyzers keep their names (so their metrics do) and carry the range
    in their sweep cache key.

    ``pool`` instead draws the probes from a :class:`~interp.analysis.probes.TokenPool`
    (the ids a model was trained on, and its BOS): every analyzer with a
    ``tokens`` parameter gets :func:`~interp.analysis.probes.pool_probe` (prefix
    matching its four-repeat form).
    """
    if pool is not None:
        return tuple(_on_pool(fn, pool) if _takes(fn, "tokens") else fn for fn in analyzers)
    if vocab_range is None:
        return tuple(analyzers)
    lo, hi = check_vocab_range(vocab_range)
    out: list[Analyzer] = []
    for fn in analyzers:
        params = inspect.signature(fn).parameters
        if "vocab_range" in params or "tokens" in params:
            out.append(_on_range(fn, (lo, hi), by_argument="vocab_range" in params))
        else:
            out.append(fn)
    return tuple(out)


def _on_range(fn: Analyzer, vocab_range: tuple[int, int], by_argument: bool) -> Analyzer:
    def analyzer(model: Any, *, memo: dict[Any, Any] | None = None) -> Any:
        if by_argument:
            return fn(model, vocab_range=vocab_range, memo=memo)
        return fn(model, default_probe(model, vocab_range=vocab_range), memo=memo)

    analyzer.__name__ = analyzer_name(fn)
    analyzer.__doc__ = fn.__doc__
    analyzer.cache_token = lambda run: f"vocab_range={vocab_range}"  # type: ignore[attr-defined]
    return analyzer


def _takes(fn: Analyzer, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def _on_pool(fn: Analyzer, pool: TokenPool) -> Analyzer:
    name = analyzer_name(fn)

    def analyzer(model: Any, *, memo: dict[Any, Any] | None = None) -> Any:
        if name == "prefix_matching_scores":
            return fn(model, pool_probe(model, pool, n=10, repeats=4), memo=memo)
        if name == "logit_copying_scores":  # distinct tokens, not repeated (copying_probe)
            room = model_dims(model)[3] - (pool.bos is not None)
            length = min(64, room, len(pool.ids))
            return fn(model, pool_probe(model, pool, n=4, length=length, repeats=1), memo=memo)
        return fn(model, pool_probe(model, pool), memo=memo)

    analyzer.__name__ = analyzer_name(fn)
    analyzer.__doc__ = fn.__doc__
    return analyzer


#: Every analyzer ``interp sweep --analyzer NAME`` knows, by name.
ANALYZERS: dict[str, Analyzer] = {
    analyzer_name(fn): fn
    for fn in (
        *HEAD_ANALYZERS,
        signed_logit_copying,
        composition_vs_init,
        head_ablation_losses,
        fourier_progress,
    )
}


def named_analyzer(name: str) -> Analyzer:
    """The analyzer called ``name`` (one of :data:`ANALYZERS`)."""
    if name not in ANALYZERS:
        raise ConfigError(f"unknown analyzer {name!r}; choose from {sorted(ANALYZERS)}")
    return ANALYZERS[name]


__all__ = ["ANALYZERS", "HEAD_ANALYZERS", "head_analyzers", "named_analyzer"]
