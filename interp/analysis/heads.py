"""Attention-pattern scores per head: previous-token, duplicate-token,
induction and prefix matching (Olsson et al. 2022, §2 and App. "prefix matching";
Elhage et al. 2021, "induction heads").

Every score is the attention mass a head puts on a *target set* of source
positions, averaged over the query positions that have a target:

* previous token — target {i − 1};
* duplicate token — earlier positions holding the same token as position i;
* induction / prefix matching — positions j whose *previous* token equals
  token i (the token after each earlier occurrence of the current token),
  summed over all such j.

``induction_scores`` evaluates this on random tokens repeated twice;
``prefix_matching_scores`` on Olsson et al.'s probe (a start token, 25 random
tokens repeated 4 times, 10 examples). Probes draw tokens from the model's own
vocabulary by default; ranges, lengths and repeats are parameters.

All functions share one forward pass per probe through ``memo`` (a dict that
:func:`interp.analysis.sweep` creates per checkpoint).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from interp.config.core import InputError
from interp.data.sequences import prefix_matching_probe, repeated_random_tokens

#: how head scores average: over queries with a target, or over all (TL)
Normalize = Literal["targets", "tl"]


def model_dims(model: nn.Module) -> tuple[int, int, int, int]:
    """(n_layers, n_heads, d_vocab, n_ctx) of a TransformerLens-style model."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "n_heads"):
        raise InputError(
            f"{type(model).__name__} has no attention heads (head analyzers need a "
            "TransformerLens-style transformer with cfg.n_layers / cfg.n_heads)"
        )
    return cfg.n_layers, cfg.n_heads, cfg.d_vocab, cfg.n_ctx


def default_probe(
    model: nn.Module,
    n: int = 16,
    length: int | None = None,
    vocab_range: tuple[int, int] | None = None,
    seed: int = 0,
) -> Int[Tensor, "n seq"]:
    """Random tokens repeated twice, drawn from the model's vocabulary.

    ``vocab_range`` defaults to the whole input vocabulary; ``length`` to
    min(25, n_ctx // 2, the size of the range) — tokens within a segment are
    distinct, so every repeat is unambiguous. No start token: the model may have
    no BOS.
    """
    _, _, d_vocab, n_ctx = model_dims(model)
    lo, hi = vocab_range or (0, d_vocab)
    length = length or min(25, n_ctx // 2, max(hi - lo, 1))
    return repeated_random_tokens(n, length, (lo, hi), seed)


def _check_tokens(model: nn.Module, tokens: Tensor) -> None:
    _, _, d_vocab, n_ctx = model_dims(model)
    if tokens.ndim != 2:
        raise InputError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
    if tokens.shape[1] > n_ctx:
        raise InputError(f"probe length {tokens.shape[1]} exceeds the model's n_ctx {n_ctx}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= d_vocab:
        raise InputError(
            f"probe tokens span [{int(tokens.min())}, {int(tokens.max())}] outside the "
            f"model's vocabulary [0, {d_vocab})"
        )


def _key(kind: str, tokens: Tensor) -> tuple[str, tuple[int, ...], str]:
    digest = hashlib.sha1(tokens.detach().cpu().numpy().tobytes()).hexdigest()
    return (kind, tuple(tokens.shape), digest)


def run_cache(
    model: nn.Module, tokens: Tensor, memo: dict[Any, Any] | None = None
) -> dict[str, Tensor]:
    """Logits plus attention patterns and ``z`` of every layer for ``tokens``;
    one ``run_with_cache`` per distinct probe when ``memo`` is shared."""
    key = _key("cache", tokens)
    if memo is not None and key in memo:
        return memo[key]
    _check_tokens(model, tokens)
    device = next(model.parameters()).device
    wanted = ("hook_pattern", "hook_z")
    with torch.no_grad():
        logits, cache = model.run_with_cache(
            tokens.to(device), names_filter=lambda name: name.endswith(wanted)
        )
    out = {name: t.detach() for name, t in cache.items()}
    out["logits"] = logits.detach()
    if memo is not None:
        memo[key] = out
    return out


def attention_patterns(
    model: nn.Module, tokens: Int[Tensor, "batch seq"], memo: dict[Any, Any] | None = None
) -> Float[Tensor, "batch layer head seq_q seq_k"]:
    """Attention patterns of every head, stacked by layer."""
    n_layers, _, _, _ = model_dims(model)
    cache = run_cache(model, tokens, memo)
    return torch.stack(
        [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)], dim=1
    ).float()


# ----------------------------------------------------------------- target sets
def previous_token_targets(tokens: Int[Tensor, "batch seq"]) -> Bool[Tensor, "batch seq seq"]:
    """target[b, i, j] = (j == i − 1)."""
    b, s = tokens.shape
    eye = torch.eye(s, dtype=torch.bool, device=tokens.device)
    shifted = torch.zeros_like(eye)
    shifted[1:, :-1] = eye[1:, 1:]
    return shifted.expand(b, s, s)


def duplicate_token_targets(tokens: Int[Tensor, "batch seq"]) -> Bool[Tensor, "batch seq seq"]:
    """target[b, i, j] = (j < i and token j == token i)."""
    s = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]
    earlier = torch.ones(s, s, dtype=torch.bool, device=tokens.device).tril(-1)
    return same & earlier


def induction_targets(tokens: Int[Tensor, "batch seq"]) -> Bool[Tensor, "batch seq seq"]:
    """target[b, i, j] = (1 ≤ j ≤ i and token j−1 == token i): the token after
    each earlier occurrence of the current token."""
    b, s = tokens.shape
    target = torch.zeros(b, s, s, dtype=torch.bool, device=tokens.device)
    # token j-1 == token i, for j = 1 … s-1 with j - 1 < i
    prev_same = tokens[:, :, None] == tokens[:, None, :-1]  # [b, i, j-1]
    allowed = torch.ones(s, s - 1, dtype=torch.bool, device=tokens.device).tril(-1)  # j-1 < i
    target[:, :, 1:] = prev_same & allowed
    return target


def pattern_score(
    patterns: Float[Tensor, "batch layer head seq_q seq_k"],
    targets: Bool[Tensor, "batch seq_q seq_k"],
    normalize: Normalize = "targets",
) -> Float[Tensor, "layer head"]:
    """The attention mass on the target set, averaged over (example, query).

    ``normalize="targets"`` averages over the queries that have a target (as
    Olsson et al. average over the positions of the repeat);
    ``normalize="tl"`` over every query position, as TransformerLens's
    ``head_detector`` (error measure ``mul``) does — on a probe whose first
    half has no targets, that is about half as large (exactly
    #queries-with-target / seq times ours)."""
    if normalize not in ("targets", "tl"):
        raise InputError(f"normalize must be 'targets' or 'tl', got {normalize!r}")
    queries = targets.any(dim=-1)  # [batch, q]
    if not bool(queries.any()):
        raise InputError("no query position has a target: the probe has no repeats")
    mass = (patterns * targets[:, None, None].to(patterns.dtype)).sum(-1)  # b l h q
    if normalize == "tl":
        return mass.mean(dim=(0, 3))
    w = queries[:, None, None, :].to(patterns.dtype)
    return (mass * w).sum(dim=(0, 3)) / w.sum(dim=(0, 3))


# -------------------------------------------------------------------- scores
def prev_token_scores(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    normalize: Normalize = "targets",
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Mean attention from each position to the one before it (previous-token
    heads, Olsson et al. 2022 §3; ``normalize``:
    :func:`pattern_score`; TransformerLens's previous-token detector with
    ``"tl"``)."""
    tokens = default_probe(model) if tokens is None else tokens
    return pattern_score(
        attention_patterns(model, tokens, memo), previous_token_targets(tokens), normalize
    )


def duplicate_token_scores(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    normalize: Normalize = "targets",
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Attention from a repeated token to its earlier occurrences (duplicate
    token heads, Wang et al. 2022 §3; ``"tl"``:
    TransformerLens's duplicate-token detector's averaging)."""
    tokens = default_probe(model) if tokens is None else tokens
    return pattern_score(
        attention_patterns(model, tokens, memo), duplicate_token_targets(tokens), normalize
    )


def induction_scores(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    normalize: Normalize = "targets",
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Attention to the token after an earlier copy of the current token, on
    random tokens repeated twice (Olsson et al. §2), averaged over the
    positions of the repeat; ``normalize="tl"`` averages over every position
    as TransformerLens's induction detector does (half as large on this
    probe)."""
    tokens = default_probe(model) if tokens is None else tokens
    return pattern_score(
        attention_patterns(model, tokens, memo), induction_targets(tokens), normalize
    )


def prefix_matching_scores(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    n: int = 10,
    length: int = 25,
    repeats: int = 4,
    vocab_range: tuple[int, int] | None = None,
    start_token: int | None = None,
    seed: int = 0,
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Olsson et al.'s prefix matching: a start token then ``length`` random
    tokens repeated ``repeats`` times; attention summed over the token after
    *each* earlier occurrence of the current token, averaged over positions
    and ``n`` examples.

    ``start_token`` defaults to the first token of ``vocab_range`` (the probe's
    "BOS-like" start; tokens of the segments are drawn from the rest); the
    length shrinks to fit ``n_ctx`` when needed.
    """
    if tokens is None:
        _, _, d_vocab, n_ctx = model_dims(model)
        lo, hi = vocab_range or (0, d_vocab)
        start = lo if start_token is None else start_token
        seg_lo = lo + 1 if start_token is None else lo
        fit = (n_ctx - 1) // repeats
        tokens = prefix_matching_probe(
            n, min(length, fit, hi - seg_lo), repeats, (seg_lo, hi), seed, start
        )
    return pattern_score(attention_patterns(model, tokens, memo), induction_targets(tokens))
