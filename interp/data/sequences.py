"""Synthetic token sequences: repeated random tokens and induction probes.

* :func:`repeated_random_tokens` — random tokens whose later part repeats the
  first (Olsson et al. 2022 §2: the probe on which induction heads are scored);
* :func:`prefix_matching_probe` — an optional start token then ``length``
  random tokens repeated ``repeats`` times (Olsson et al., "prefix matching");
* :func:`induction_training_batch` — the training distribution of the
  induction experiment: random tokens with a span repeated at a random offset.

All take an explicit seed and draw from a private generator.
"""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor


def _check_range(vocab_range: tuple[int, int], length: int, unique: bool) -> None:
    lo, hi = vocab_range
    if not 0 <= lo < hi:
        raise ValueError(f"vocab_range must satisfy 0 <= lo < hi, got {vocab_range}")
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    if unique and hi - lo < length:
        raise ValueError(
            f"vocab_range {vocab_range} has {hi - lo} tokens, fewer than the {length} distinct "
            "tokens a segment needs"
        )


def random_segments(
    n: int, length: int, vocab_range: tuple[int, int], seed: int, unique: bool = True
) -> Int[Tensor, "n length"]:
    """``n`` random segments of ``length`` tokens from ``[lo, hi)``; distinct
    tokens within a segment when ``unique`` (so every repeat is unambiguous)."""
    _check_range(vocab_range, length, unique)
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    lo, hi = vocab_range
    gen = torch.Generator().manual_seed(seed)
    if unique:
        keys = torch.rand(n, hi - lo, generator=gen)
        return keys.argsort(dim=1)[:, :length] + lo
    return torch.randint(lo, hi, (n, length), generator=gen)


def repeated_random_tokens(
    n: int,
    length: int,
    vocab_range: tuple[int, int],
    seed: int = 0,
    repeats: int = 2,
    start_token: int | None = None,
) -> Int[Tensor, "n seq"]:
    """[start_token] + segment × ``repeats`` for ``n`` random segments."""
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2, got {repeats}")
    seg = random_segments(n, length, vocab_range, seed)
    toks = seg.repeat(1, repeats)
    if start_token is not None:
        toks = torch.cat([torch.full((n, 1), start_token, dtype=toks.dtype), toks], dim=1)
    return toks


def prefix_matching_probe(
    n: int = 10,
    length: int = 25,
    repeats: int = 4,
    vocab_range: tuple[int, int] = (1, 100),
    seed: int = 0,
    start_token: int | None = 0,
) -> Int[Tensor, "n seq"]:
    """Olsson et al.'s prefix-matching probe: a start token, then 25 random
    tokens repeated 4 times, 10 examples (all parameters)."""
    return repeated_random_tokens(n, length, vocab_range, seed, repeats, start_token)


def induction_training_batch(
    n: int,
    seq_len: int,
    vocab_range: tuple[int, int],
    seed: int,
    min_span: int = 4,
) -> Int[Tensor, "n seq_len"]:
    """Training sequences for the induction task: uniform random tokens in which
    a span of random length (``min_span`` … ``seq_len // 2``) is copied to a
    later random position, so predicting the copy needs in-context lookup."""
    _check_range(vocab_range, seq_len, unique=False)
    if seq_len < 2 * min_span:
        raise ValueError(f"seq_len {seq_len} must be at least 2 × min_span ({2 * min_span})")
    lo, hi = vocab_range
    gen = torch.Generator().manual_seed(seed)
    toks = torch.randint(lo, hi, (n, seq_len), generator=gen)
    spans = torch.randint(min_span, seq_len // 2 + 1, (n,), generator=gen)
    for row in range(n):
        span = int(spans[row])
        src = int(torch.randint(0, seq_len - 2 * span + 1, (1,), generator=gen))
        dst = int(torch.randint(src + span, seq_len - span + 1, (1,), generator=gen))
        toks[row, dst : dst + span] = toks[row, src : src + span]
    return toks


def periodic_batch(
    n: int,
    seq_len: int,
    vocab_range: tuple[int, int],
    seed: int,
    min_period: int = 4,
) -> Int[Tensor, "n seq_len"]:
    """Sequences that repeat a random segment: each row draws a period P in
    ``min_period`` … ``seq_len // 2`` and tiles P random tokens to ``seq_len``.

    Everything after the first period is predictable in context only, which
    makes induction heads form quickly (the variable period stops a model from
    solving it with fixed positional offsets).
    """
    _check_range(vocab_range, seq_len, unique=False)
    if seq_len < 2 * min_period:
        raise ValueError(f"seq_len {seq_len} must be at least 2 × min_period ({2 * min_period})")
    lo, hi = vocab_range
    gen = torch.Generator().manual_seed(seed)
    periods = torch.randint(min_period, seq_len // 2 + 1, (n,), generator=gen)
    base = torch.randint(lo, hi, (n, seq_len), generator=gen)
    pos = torch.arange(seq_len)
    return torch.gather(base, 1, pos[None, :] % periods[:, None])


def markov_stream(
    n_tokens: int, vocab: int, seed: int, concentration: float = 0.05
) -> Int[Tensor, " n_tokens"]:
    """A synthetic language: a first-order Markov chain whose transition rows are
    drawn from Dirichlet(``concentration``) (small values: few likely successors
    per token, so the stream has learnable bigram structure and its entropy is
    known). Fast test data for the repeated-data pipeline."""
    if n_tokens < 1 or vocab < 2:
        raise ValueError(f"need n_tokens >= 1 and vocab >= 2, got {n_tokens}, {vocab}")
    if concentration <= 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    gen = torch.Generator().manual_seed(seed)
    gamma = torch.distributions.Gamma(torch.full((vocab, vocab), concentration), 1.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        weights = gamma.sample() + 1e-12
    probs = weights / weights.sum(-1, keepdim=True)
    out = torch.empty(n_tokens, dtype=torch.long)
    state = int(torch.randint(0, vocab, (1,), generator=gen))
    # sample in blocks: one multinomial draw per position given the previous token
    u = torch.rand(n_tokens, generator=gen, dtype=torch.float64)
    cdf = probs.double().cumsum(-1)
    cdf[:, -1] = 1.0
    for i in range(n_tokens):
        state = int(torch.searchsorted(cdf[state], u[i]))
        out[i] = state
    return out
