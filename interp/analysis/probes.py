"""Probes that fit real models: random tokens drawn from the tokens a model
was trained on, with a BOS token where it expects one, and passages of
natural text.

The head analyzers score attention on random tokens repeated twice
(:func:`~interp.analysis.heads.induction_scores` …) or, for prefix matching,
a start token then a segment repeated four times (Olsson et al.). By default
they draw ids from the model's whole input vocabulary, which suits models we
train from scratch on synthetic tokens. A model trained on text has ids it
never saw: special tokens, and the padding rows a vocabulary is rounded up to
(Pythia: 50,304 embedding rows, 50,277 tokens). Their embeddings are
untrained, and a probe made of them under-reads every head. A
:class:`TokenPool` lists the ids to draw from (:func:`pool_of` builds it from
a tokenizer) and the BOS id to prepend; ``head_analyzers(pool=…)`` gives
every head analyzer that probe. To use your own tokens instead, pass
``tokens=`` to any analyzer (``functools.partial`` in a sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor, nn

from interp.analysis.heads import model_dims
from interp.config.core import InputError


@dataclass(frozen=True)
class TokenPool:
    """Token ids a random probe draws from, and the BOS id it starts with
    (None: no BOS)."""

    ids: tuple[int, ...]
    bos: int | None = None

    def __post_init__(self) -> None:
        if len(self.ids) < 2:
            raise InputError(f"a token pool needs at least 2 ids, got {len(self.ids)}")


def pool_of(tokenizer: Any, d_vocab: int, prepend_bos: bool = True) -> TokenPool:
    """The ids a model was trained on according to its tokenizer: every id
    below both the tokenizer's size and the embedding's (``d_vocab``), except
    special tokens; BOS (or, for tokenizers without one, EOS, which GPT-2 and
    Pythia use as BOS) when ``prepend_bos``."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    size = min(len(tokenizer), d_vocab)
    ids = tuple(i for i in range(size) if i not in special)
    bos = None
    if prepend_bos:
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is None:
            bos = getattr(tokenizer, "eos_token_id", None)
    return TokenPool(ids, bos)


def pool_segments(pool: TokenPool, n: int, length: int, seed: int) -> Int[Tensor, "n length"]:
    """``n`` segments of ``length`` distinct ids from the pool."""
    if length > len(pool.ids):
        raise InputError(f"the pool has {len(pool.ids)} ids, fewer than a segment's {length}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(n, len(pool.ids), generator=gen).argsort(dim=1)[:, :length]
    return torch.tensor(pool.ids, dtype=torch.long)[order]


def pool_probe(
    model: nn.Module,
    pool: TokenPool,
    n: int = 16,
    length: int | None = None,
    repeats: int = 2,
    seed: int = 0,
) -> Int[Tensor, "n seq"]:
    """[BOS] + a random segment from the pool repeated ``repeats`` times;
    ``length`` defaults to the longest that fits the context, at most 25."""
    _, _, _, n_ctx = model_dims(model)
    room = (n_ctx - (pool.bos is not None)) // repeats
    length = length or min(25, room, len(pool.ids))
    if length < 1:
        raise InputError(f"the model's context ({n_ctx}) holds no {repeats} copies of a segment")
    toks = pool_segments(pool, n, length, seed).repeat(1, repeats)
    if pool.bos is not None:
        toks = torch.cat([torch.full((n, 1), pool.bos, dtype=toks.dtype), toks], dim=1)
    return toks


def text_probe(
    tokens: Int[Tensor, " stream"], n: int, length: int, repeats: int = 2, bos: int | None = None
) -> Int[Tensor, "n seq"]:
    """[BOS] + a passage of natural text repeated ``repeats`` times: the
    first ``n`` passages of ``length`` tokens of a token stream (copying and
    prefix matching on the text a model knows)."""
    if tokens.ndim != 1 or tokens.numel() < n * length:
        raise InputError(
            f"a text probe of {n} passages of {length} tokens needs {n * length} tokens, got "
            f"{tokens.numel()}"
        )
    passages = tokens[: n * length].reshape(n, length).repeat(1, repeats)
    if bos is not None:
        passages = torch.cat([torch.full((n, 1), bos, dtype=passages.dtype), passages], dim=1)
    return passages


def text_tokens(tokenizer: Any, texts: Sequence[str]) -> Int[Tensor, " stream"]:
    """``texts`` tokenized with a Hugging Face tokenizer (or one of ours) and
    concatenated into one stream."""
    ids: list[int] = []
    for text in texts:
        if hasattr(tokenizer, "encode"):
            try:
                ids.extend(tokenizer.encode(text, add_special_tokens=False))
            except TypeError:
                ids.extend(tokenizer.encode(text))
        else:
            raise InputError(f"{type(tokenizer).__name__} cannot encode text")
    return torch.tensor(ids, dtype=torch.long)


def natural_text(
    tokenizer: Any,
    n: int = 16,
    length: int = 512,
    texts: Sequence[str] | None = None,
    bos: int | None = None,
) -> Int[Tensor, "n length"]:
    """``n`` sequences of ``length`` tokens of natural text: ``texts``, or the
    held-out split of the shipped corpus (CPython's standard library source,
    ``data/python-stdlib``), tokenized with ``tokenizer`` and cut into
    consecutive pieces, each after ``bos`` when given."""
    if texts is None:
        from interp.data.corpus import load_documents

        texts = load_documents("python-stdlib", "test")
    body = length - (bos is not None)
    stream = text_tokens(tokenizer, texts)
    if stream.numel() < n * body:
        raise InputError(f"the text gives {stream.numel()} tokens, fewer than {n} × {body}")
    seqs = stream[: n * body].reshape(n, body)
    if bos is not None:
        seqs = torch.cat([torch.full((n, 1), bos, dtype=seqs.dtype), seqs], dim=1)
    return seqs


__all__ = [
    "TokenPool",
    "natural_text",
    "pool_of",
    "pool_probe",
    "pool_segments",
    "text_probe",
    "text_tokens",
]
