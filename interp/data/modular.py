"""Modular arithmetic datasets: (a ∘ b) mod p with a seeded train/test split.

Follows Power et al. 2022 (§2, binary-operation tables) and the setting of
Nanda et al. 2023 §3 (a + b mod 113, 30% train, tokens ``a b =``). Unordered
pairs (a ≤ b) are the Grokking Tickets setting (Minegishi et al., §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Int
from torch import Tensor

from interp.config.core import ConfigError
from interp.config.data import OPERATIONS, ModularConfig


@dataclass(frozen=True)
class ModularData:
    """A split modular-arithmetic table.

    ``pairs_*`` hold operands ``[n, 2]`` (a, b); ``labels_*`` hold (a ∘ b) mod p.
    ``tokens_*`` are the transformer form ``a b =`` with ``=`` = token ``p``.
    """

    p: int
    op: str
    pairs_train: Int[Tensor, "n_train 2"]
    labels_train: Int[Tensor, " n_train"]
    pairs_test: Int[Tensor, "n_test 2"]
    labels_test: Int[Tensor, " n_test"]

    @property
    def equals_token(self) -> int:
        return self.p

    @property
    def vocab_size(self) -> int:
        """Input vocabulary of the token form: p numbers plus ``=``."""
        return self.p + 1

    def tokens(self, split: Literal["train", "test"]) -> Int[Tensor, "n 3"]:
        """Transformer inputs ``a b =`` for a split."""
        pairs = self.pairs_train if split == "train" else self.pairs_test
        eq = torch.full((pairs.shape[0], 1), self.equals_token, dtype=pairs.dtype)
        return torch.cat([pairs, eq], dim=1)


def apply_op(a: Tensor, b: Tensor, p: int, op: str) -> Tensor:
    """(a ∘ b) mod p elementwise; ``/`` multiplies by the inverse of b (b ≠ 0)."""
    if op == "+":
        return (a + b) % p
    if op == "-":
        return (a - b) % p
    if op == "*":
        return (a * b) % p
    if op == "/":
        if bool((b % p == 0).any()):
            raise ValueError("division by 0 mod p")
        inv = torch.tensor([pow(int(x), -1, p) for x in b.tolist()], dtype=a.dtype)
        return (a * inv) % p
    raise ValueError(f"unknown op {op!r}; expected one of {OPERATIONS}")


def all_pairs(p: int, pairs: str = "ordered", op: str = "+") -> Int[Tensor, "n 2"]:
    """Every operand pair of the table in a fixed order (a major, b minor)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    keep = torch.ones_like(a, dtype=torch.bool)
    if pairs == "unordered":
        keep &= a <= b
    if op == "/":
        keep &= b != 0
    return torch.stack([a[keep], b[keep]], dim=1)


def make_modular(cfg: ModularConfig, seed: int = 0) -> ModularData:
    """Build the table for ``cfg`` and split it with ``cfg.seed`` (else ``seed``).

    The split is a random permutation from a private ``torch.Generator``, so it
    is the same on every machine and does not touch the global RNG.
    """
    pairs = all_pairs(cfg.p, cfg.pairs, cfg.op)
    labels = apply_op(pairs[:, 0], pairs[:, 1], cfg.p, cfg.op)
    n = pairs.shape[0]
    n_train = round(cfg.train_fraction * n)
    if n_train < 1 or n_train >= n:
        raise ConfigError(
            f"data.train_fraction={cfg.train_fraction} leaves {n_train} of {n} pairs for "
            "training; both splits must be non-empty"
        )
    split_seed = cfg.seed if cfg.seed is not None else seed
    gen = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(n, generator=gen)
    tr, te = perm[:n_train], perm[n_train:]
    return ModularData(
        p=cfg.p,
        op=cfg.op,
        pairs_train=pairs[tr],
        labels_train=labels[tr],
        pairs_test=pairs[te],
        labels_test=labels[te],
    )
