"""Synthetic token sequences: repeated random tokens and induction probes.

* :func:`repeated_random_tokens` — random tokens whose later part repeats the
  first (Olsson et al. 2022 §2: the probe on which induction heads are scored);
* :func:`prefix_matching_probe` — an optional start token then ``length``
  random tokens repeated ``repeats`` times (Olsson et al., "prefix matching");
* :func:`induction_training_batch` — the training distribution of the
  induction experiment: random tokens with a span repeated at a random offset.
* :func:`markov_stream`, :func:`markov_icl_stream`, :func:`markov_copy_stream`
  — synthetic languages for the repeated-data experiment;
  :func:`self_quoting_text` — real text laid out like ``markov_copy_stream``.

All take an explicit seed and draw from a private generator.
"""

from __future__ import annotations

import random

import torch
from jaxtyping import Int
from torch import Tensor

from interp.config.core import InputError


def check_vocab_range(vocab_range: tuple[int, int]) -> tuple[int, int]:
    """``(lo, hi)`` as ints, or a ValueError naming the problem: a token range
    is two ids with 0 <= lo < hi (``hi`` exclusive)."""
    if len(vocab_range) != 2:
        raise InputError(f"vocab_range must be (lo, hi), got {vocab_range!r}")
    lo, hi = (int(v) for v in vocab_range)
    if not 0 <= lo < hi:
        raise InputError(f"vocab_range must satisfy 0 <= lo < hi, got {vocab_range!r}")
    return lo, hi


def _check_range(vocab_range: tuple[int, int], length: int, unique: bool) -> None:
    lo, hi = check_vocab_range(vocab_range)
    if length < 1:
        raise InputError(f"sequence length must be >= 1, got {length}")
    if unique and hi - lo < length:
        raise InputError(
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
        raise InputError(f"batch size must be >= 1, got {n}")
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
        raise InputError(f"repeats must be >= 2, got {repeats}")
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
        raise InputError(f"seq_len {seq_len} must be at least 2 × min_span ({2 * min_span})")
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
        raise InputError(f"seq_len {seq_len} must be at least 2 × min_period ({2 * min_period})")
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
        raise InputError(f"need n_tokens >= 1 and vocab >= 2, got {n_tokens}, {vocab}")
    if concentration <= 0:
        raise InputError(f"concentration must be > 0, got {concentration}")
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


def markov_icl_stream(
    n_tokens: int, vocab: int, doc_len: int, seed: int, concentration: float = 0.1
) -> Int[Tensor, " n_tokens"]:
    """Documents of ``doc_len`` tokens, each a Markov chain with its **own**
    transition matrix (rows ~ Dirichlet(``concentration``)), concatenated.

    Across documents every token is equally likely to follow every other, so
    the only way to beat ln(``vocab``) nats is to read the current document's
    transitions from the context: find earlier occurrences of the current
    token and predict what followed them — the job of an induction head. This
    is the in-context Markov-chain task of Edelman et al. 2024 ("The evolution
    of statistical induction heads"), used here as a corpus on which small
    models form induction heads within CPU minutes.
    """
    if n_tokens < 1 or vocab < 2 or doc_len < 2:
        raise InputError(
            f"need n_tokens >= 1, vocab >= 2 and doc_len >= 2, got {n_tokens}, {vocab}, {doc_len}"
        )
    if concentration <= 0:
        raise InputError(f"concentration must be > 0, got {concentration}")
    n_docs = -(-n_tokens // doc_len)
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n_docs, doc_len, dtype=torch.long)
    rows = torch.arange(n_docs)
    chunk = max(1, 2**22 // (vocab * vocab))  # documents per block (bounded memory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for lo in range(0, n_docs, chunk):
            hi = min(n_docs, lo + chunk)
            gamma = torch.distributions.Gamma(
                torch.full((hi - lo, vocab, vocab), concentration), 1.0
            )
            probs = gamma.sample() + 1e-12
            probs /= probs.sum(-1, keepdim=True)
            state = torch.randint(0, vocab, (hi - lo,), generator=gen)
            out[lo:hi, 0] = state
            for t in range(1, doc_len):
                state = torch.multinomial(probs[rows[: hi - lo], state], 1, generator=gen)[:, 0]
                out[lo:hi, t] = state
    return out.reshape(-1)[:n_tokens]


def markov_copy_stream(
    n_tokens: int,
    vocab: int,
    doc_len: int,
    seed: int,
    successors: int = 4,
    quote: float = 0.5,
    span: tuple[int, int] = (8, 32),
    contexts: int = 1,
    concentration: float = 1.0,
) -> Int[Tensor, " n_tokens"]:
    """Documents of ``doc_len`` tokens that quote themselves.

    Every document is written by one sparse Markov chain (the same for all
    documents): each token has ``successors`` possible next tokens, drawn at
    random; which of them follows also depends on the token before it, through
    its class (token id mod ``contexts``): each (token, class) pair has its own
    Dirichlet(``concentration``) probabilities over the successors. With
    ``contexts > 1`` the text rewards reading the previous token, as natural
    text does — so the model grows previous-token heads early, the first half of
    an induction circuit. A document opens with
    ``doc_len // 4`` to ``doc_len // 2`` chain tokens; each next piece
    (``span[0]`` to ``span[1]`` tokens) is, with probability ``quote``, a copy
    of a random earlier span of the same document, else fresh chain tokens.

    Quoted tokens sit at random offsets: predictable from the context by
    finding the current token's earlier occurrence and copying what followed
    (an induction head), not from position; the rest carries the chain's
    bigram statistics, learned in the weights. With a vocabulary much larger
    than the context (e.g. 4096 vs 256, as for BPE text) a token rarely recurs
    by chance, so matching one token locates the quote. Small models form
    induction heads on it within CPU minutes
    (docs/experiments/repeated_data.md).
    """
    _check_quoting(doc_len, quote, span)
    if contexts < 1 or concentration <= 0:
        raise InputError(
            f"need contexts >= 1 and concentration > 0, got {contexts}, {concentration}"
        )
    if n_tokens < 1 or vocab < 2 or not 1 <= successors <= vocab:
        raise InputError(
            f"need n_tokens >= 1, vocab >= 2, 1 <= successors <= vocab; got {n_tokens}, "
            f"{vocab}, {successors}"
        )
    n_docs = -(-n_tokens // doc_len)
    gen = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, vocab, (vocab, successors), generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gamma = torch.distributions.Gamma(torch.tensor(concentration), torch.tensor(1.0))
        weights = gamma.sample((vocab, contexts, successors)) + 1e-12
    probs = weights / weights.sum(-1, keepdim=True)
    # one chain per document, every step sampled at once across documents
    fresh = torch.empty(n_docs, doc_len, dtype=torch.long)
    state = torch.randint(0, vocab, (n_docs,), generator=gen)
    prev = torch.randint(0, vocab, (n_docs,), generator=gen)
    for t in range(doc_len):
        k = torch.multinomial(probs[state, prev % contexts], 1, generator=gen)[:, 0]
        prev, state = state, succ[state, k]
        fresh[:, t] = state
    rng = random.Random(seed)
    out: list[int] = []
    for chain in fresh.tolist():
        out.extend(_quoting_document(_Reader(chain), doc_len, quote, span, rng))
    return torch.tensor(out[:n_tokens], dtype=torch.long)


def self_quoting_text(
    stream: Int[Tensor, " n"],
    doc_len: int,
    seed: int,
    quote: float = 0.5,
    span: tuple[int, int] = (8, 32),
) -> Int[Tensor, " m"]:
    """Real text rewritten into documents of ``doc_len`` tokens that quote themselves.

    The same layout as :func:`markov_copy_stream`, with the corpus in place of
    the Markov chain: each document opens with ``doc_len // 4`` to
    ``doc_len // 2`` tokens of ``stream``; each next piece (``span[0]`` to
    ``span[1]`` tokens) is, with probability ``quote``, a copy of a random
    earlier span of the same document, else the next tokens of ``stream``, read
    once, in order, across documents. So the fresh tokens keep natural text's
    statistics and the quotes sit at random offsets where only an induction
    head can predict them. Every token of ``stream`` appears once, in order, as
    fresh text; the result is longer by the quotes (about a quarter to a third
    of the tokens at ``doc_len`` 64 and ``quote`` 0.7). Train and test streams
    rewritten separately share no text. Seeded; deterministic.
    """
    _check_quoting(doc_len, quote, span)
    if stream.ndim != 1 or stream.numel() == 0:
        raise InputError(f"stream must be non-empty 1-D tokens, got shape {tuple(stream.shape)}")
    rng = random.Random(seed)
    text = _Reader(stream.tolist())
    out: list[int] = []
    while not text.done:
        out.extend(_quoting_document(text, doc_len, quote, span, rng))
    return torch.tensor(out, dtype=stream.dtype)


def _check_quoting(doc_len: int, quote: float, span: tuple[int, int]) -> None:
    lo, hi = span
    if doc_len < 8:
        raise InputError(f"doc_len must be >= 8, got {doc_len}")
    if not 1 <= lo <= hi:
        raise InputError(f"span must be (lo, hi) with 1 <= lo <= hi, got {span}")
    if not 0.0 <= quote < 1.0:
        raise InputError(f"quote must be in [0, 1), got {quote}")


class _Reader:
    """Hands out consecutive pieces of a token list."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens, self.pos = tokens, 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def take(self, n: int) -> list[int]:
        piece = self.tokens[self.pos : self.pos + n]
        self.pos += len(piece)
        return piece


def _quoting_document(
    fresh: _Reader, doc_len: int, quote: float, span: tuple[int, int], rng: random.Random
) -> list[int]:
    """One document: an opening from ``fresh``, then pieces that either quote an
    earlier span of the document (probability ``quote``) or continue ``fresh``.
    Shorter than ``doc_len`` only when ``fresh`` runs out."""
    lo, hi = span
    doc = fresh.take(rng.randint(doc_len // 4, doc_len // 2))
    while len(doc) < doc_len:
        n = rng.randint(lo, hi)
        if rng.random() < quote and len(doc) > n:
            start = rng.randrange(0, len(doc) - n)
            doc.extend(doc[start : start + n])
        else:
            piece = fresh.take(min(n, doc_len - len(doc)))  # none cut off and lost
            if not piece:
                break
            doc.extend(piece)
    return doc[:doc_len]
