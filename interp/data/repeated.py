"""Hernandez et al. 2022 ("Scaling Laws and Interpretability of Learning from
Repeated Data", §2) data design: a budget of ``D`` training tokens of which a
fraction ``f`` comes from a small subset repeated ``E`` times; the rest is
seen once.

Construction (exact, seeded). With ``S`` subset tokens, ``f·D / E`` rounded
to whole sequences of ``L`` tokens (``align="sequences"``, the default) or to
whole tokens (``align="shifted"``):

* the subset is ``S`` consecutive tokens of the source stream and the unique
  part the next ``D − S·E`` tokens (a seeded offset picks where), so the two
  share no token position;
* the repeated stream is the subset tiled ``E`` times (``R = S·E`` tokens;
  every subset token occurs exactly ``E`` times), the unique stream follows,
  and the concatenation is cut into ``D / L`` sequences of ``L`` tokens;
* with ``align="sequences"`` the subset is ``S / L`` whole sequences and each
  repeat is those same sequences, as Hernandez et al. repeat whole
  documents; with ``"shifted"`` (``S`` not a multiple of ``L``) each repeat
  starts at another position within the sequences, so the repeated text
  recurs under up to ``L`` different alignments, and one sequence may hold
  the end of the repeated stream and the start of the unique one;
* the sequences are shuffled with the seed; training sees each once.

The achieved fraction is ``R / D`` (reported; equal to ``f`` up to the rounding
of ``S``). ``f·D / E ≥ L`` is required, so no training sequence is the subset
repeated within one context. Held-out text comes from another split of the
corpus, which shares no text with the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.config.core import InputError
from interp.config.data import RepeatedConfig


@dataclass
class RepeatedData:
    """Training sequences and where each token came from."""

    sequences: Int[Tensor, "n seq"]
    is_repeated: Bool[Tensor, "n seq"]
    subset: Int[Tensor, " subset"]
    unique: Int[Tensor, " unique"]
    cfg: RepeatedConfig

    @property
    def achieved_fraction(self) -> float:
        return self.cfg.repeated_tokens / self.cfg.total_tokens

    def accounting(self) -> dict[str, float | int]:
        """Token counts and the achieved f and E, for the run's record."""
        c = self.cfg
        return {
            "total_tokens": c.total_tokens,
            "repeated_tokens": c.repeated_tokens,
            "unique_tokens": c.unique_tokens,
            "subset_tokens": c.subset_tokens,
            "repeated_epochs": c.repeated_epochs if c.subset_tokens else 0,
            "repeated_fraction": self.achieved_fraction,
            "sequences": int(self.sequences.shape[0]),
        }


def mix_repeated(stream: Int[Tensor, " n"], cfg: RepeatedConfig, seed: int) -> RepeatedData:
    """Build the training sequences of ``cfg`` from a token ``stream``."""
    need = cfg.source_tokens_needed
    if stream.ndim != 1:
        raise InputError(f"stream must be 1-D tokens, got shape {tuple(stream.shape)}")
    if stream.numel() < need:
        raise InputError(
            f"the source has {stream.numel():,} tokens; D={cfg.total_tokens:,} at "
            f"f={cfg.repeated_fraction} needs {need:,} (subset {cfg.subset_tokens:,} + "
            f"unique {cfg.unique_tokens:,})"
        )
    gen = torch.Generator().manual_seed(seed)
    offset = int(torch.randint(0, stream.numel() - need + 1, (1,), generator=gen))
    s = cfg.subset_tokens
    subset = stream[offset : offset + s].long()
    unique = stream[offset + s : offset + need].long()
    tokens = torch.cat([subset.repeat(cfg.repeated_epochs) if s else subset, unique])
    flags = torch.cat(
        [
            torch.ones(cfg.repeated_tokens, dtype=torch.bool),
            torch.zeros(unique.numel(), dtype=torch.bool),
        ]
    )
    n = cfg.total_tokens // cfg.seq_len
    order = torch.randperm(n, generator=gen)
    return RepeatedData(
        sequences=tokens.reshape(n, cfg.seq_len)[order],
        is_repeated=flags.reshape(n, cfg.seq_len)[order],
        subset=subset,
        unique=unique,
        cfg=cfg,
    )


def chop(
    stream: Int[Tensor, " n"], seq_len: int, max_sequences: int | None = None
) -> Int[Tensor, "k seq"]:
    """Consecutive ``seq_len`` windows of ``stream`` (the tail is dropped)."""
    k = stream.numel() // seq_len
    if max_sequences is not None:
        k = min(k, max_sequences)
    if k == 0:
        raise InputError(f"a stream of {stream.numel()} tokens holds no sequence of {seq_len}")
    return stream[: k * seq_len].long().reshape(k, seq_len)


__all__ = ["RepeatedConfig", "RepeatedData", "chop", "mix_repeated"]
