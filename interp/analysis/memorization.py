"""Memorization and copying measures for language models trained on repeated
data (Hernandez et al. 2022).

* :func:`copy_losses` — the copying evaluation of Hernandez et al. §4 (after
  Olsson et al.): a held-out passage repeated several times in one context;
  the mean next-token loss on each copy. A model that copies from context
  predicts copies 2, 3, … far better than copy 1 (which it has never seen).
* :func:`verbatim_fraction` — memorization as verbatim reproduction (Carlini
  et al. 2021/2022's extractability with a known prefix): greedy-decode
  ``continuation`` tokens after a ``prefix`` of a training sequence and count
  the sequences reproduced exactly, and the share of tokens matched.
* :func:`extractable` / :func:`sequence_loss` — per sequence, on any model
  (k-extractable memorization, Carlini et al. 2021; Biderman et al. 2023):
  swept over checkpoints, they say when each sequence was memorized.
* :func:`fit_power_law` / :func:`effective_size` — Hernandez §3's "effective
  model size": fit test loss vs non-embedding parameter count on the
  unique-data runs, ``L(N) = a · N^(−α)`` (a straight line in log–log), and
  invert it: a repeated-data run with loss ``L`` does as well as a model of
  ``N_eff = (L / a)^(−1/α)`` parameters trained on unique data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.config.core import InputError


@torch.no_grad()
def copy_losses(
    model: nn.Module, passages: Int[Tensor, "n length"], copies: int = 4, batch: int = 32
) -> Float[Tensor, " copies"]:
    """Mean next-token loss on each of ``copies`` back-to-back copies of each
    passage (Hernandez et al. 2022 §4's copying evaluation), over tokens 2 …
    ``length`` of every copy: the first token of copy 1 has no context and the
    first token of copy 2 follows the passage's last token in no text, so every
    copy is scored on the same positions. Needs ``copies · length ≤ n_ctx``."""
    n, length = passages.shape
    if copies < 2:
        raise InputError(f"copies must be >= 2, got {copies}")
    n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
    if n_ctx is not None and copies * length > n_ctx:
        raise InputError(f"{copies} copies of {length} tokens exceed the context ({n_ctx})")
    device = next(model.parameters()).device
    sums = torch.zeros(copies, dtype=torch.float64)
    counts = torch.zeros(copies, dtype=torch.float64)
    for i in range(0, n, batch):
        toks = passages[i : i + batch].long().repeat(1, copies).to(device)
        logits = model(toks[:, :-1]).double()
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1), reduction="none"
        ).reshape(toks.shape[0], -1)
        # position j of `loss` predicts token j+1, which lies in copy (j+1) // length
        target = torch.arange(1, toks.shape[1])
        which = target // length
        which[target % length == 0] = -1  # the first token of each copy: not scored
        per = loss.cpu()
        for c in range(copies):
            sel = per[:, which == c]
            sums[c] += sel.sum()
            counts[c] += sel.numel()
    return (sums / counts).float()


def verbatim_fraction(
    model: nn.Module,
    sequences: Int[Tensor, "n seq"],
    prefix: int = 32,
    continuation: int = 32,
    batch: int = 64,
) -> dict[str, float]:
    """Greedy continuation of ``continuation`` tokens from the first ``prefix``
    tokens of each sequence: ``exact`` = share of sequences reproduced
    exactly (Carlini et al. 2021's extraction test as a share;
    :func:`extractable` per sequence), ``token_match`` = share of continuation
    tokens matched (ours)."""
    hits = greedy_matches(model, sequences, prefix, continuation, batch)
    n = sequences.shape[0]
    return {
        "exact": int((hits == continuation).sum()) / n,
        "token_match": int(hits.sum()) / (n * continuation),
    }


@torch.no_grad()
def greedy_matches(
    model: nn.Module,
    sequences: Int[Tensor, "n seq"],
    prefix: int = 32,
    continuation: int = 32,
    batch: int = 32,
    progress: bool = False,
) -> Int[Tensor, " n"]:
    """How many of the ``continuation`` tokens after each sequence's first
    ``prefix`` tokens greedy decoding reproduces, before the first miss
    counts or not: the number of matched tokens per sequence."""
    if prefix < 1 or continuation < 1 or prefix + continuation > sequences.shape[1]:
        raise InputError(
            f"prefix {prefix} + continuation {continuation} must fit the "
            f"{sequences.shape[1]}-token sequences (both >= 1)"
        )
    if sequences.shape[0] == 0:
        raise InputError("no sequences given")
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    out = []
    starts = range(0, sequences.shape[0], batch)
    for i in tqdm(starts, desc="greedy decoding", disable=not progress, leave=False):
        seqs = sequences[i : i + batch].long().to(device)
        ctx = seqs[:, :prefix]
        for _ in range(continuation):
            nxt = model(ctx)[:, -1].argmax(-1, keepdim=True)
            ctx = torch.cat([ctx, nxt], dim=1)
        out.append((ctx[:, prefix:] == seqs[:, prefix : prefix + continuation]).sum(-1).cpu())
    return torch.cat(out)


def extractable(
    model: nn.Module,
    sequences: Int[Tensor, "n seq"],
    prefix: int = 32,
    continuation: int = 32,
    batch: int = 32,
) -> Float[Tensor, " n"]:
    """k-extractable memorization (Carlini et al. 2021; Biderman et al. 2023,
    "Emergent and predictable memorization", §2: k = 32): 1.0 for each
    sequence whose ``continuation`` tokens greedy decoding reproduces exactly
    from its first ``prefix`` tokens, else 0.0. Swept over checkpoints, its
    rows (one per sequence, ``item``) say when each sequence was memorized."""
    hits = greedy_matches(model, sequences, prefix, continuation, batch)
    return (hits == continuation).double()


@torch.no_grad()
def sequence_loss(
    model: nn.Module, sequences: Int[Tensor, "n seq"], batch: int = 32
) -> Float[Tensor, " n"]:
    """Mean next-token loss (nats) of each sequence: one row per sequence
    (``item``) in a sweep."""
    if sequences.ndim != 2 or sequences.shape[0] == 0 or sequences.shape[1] < 2:
        raise InputError(f"sequences must be [n >= 1, seq >= 2], got {tuple(sequences.shape)}")
    device = next(model.parameters()).device
    out = []
    for i in range(0, sequences.shape[0], batch):
        toks = sequences[i : i + batch].long().to(device)
        logits = model(toks[:, :-1]).double()
        loss = F.cross_entropy(logits.transpose(1, 2), toks[:, 1:], reduction="none")
        out.append(loss.mean(-1).cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class PowerLaw:
    """``loss = irreducible + a · N^(−alpha)`` (``irreducible`` = 0: a pure
    power law, a straight line in log–log)."""

    a: float
    alpha: float
    irreducible: float = 0.0

    def loss(self, n_params: float) -> float:
        return self.irreducible + self.a * n_params ** (-self.alpha)


def _line(x: Tensor, y: Tensor) -> tuple[float, float, float]:
    """Least-squares (intercept, slope, residual sum of squares) of y on x."""
    xm, ym = x.mean(), y.mean()
    slope = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    intercept = float(ym - slope * xm)
    sse = float(((y - intercept - slope * x) ** 2).sum())
    return intercept, slope, sse


def fit_power_law(
    n_params: Float[Tensor, " k"] | list[float],
    losses: Float[Tensor, " k"] | list[float],
    irreducible: bool = False,
) -> PowerLaw:
    """Least-squares line through (log N, log L); needs ≥ 2 distinct sizes and
    losses that fall with size. ``irreducible=True`` fits
    ``L = E + a·N^(−α)`` instead (Hernandez et al. fit with an irreducible
    term): E on a grid below the smallest loss, the line through
    (log N, log(L − E)) for each, the best in log space; needs ≥ 3 sizes
    (with exactly 3 the fit passes through them and cannot be checked)."""
    x = torch.log(torch.as_tensor(n_params, dtype=torch.float64))
    losses_t = torch.as_tensor(losses, dtype=torch.float64)
    if x.numel() < 2 or x.unique().numel() < 2:
        raise InputError("a power-law fit needs at least two distinct model sizes")
    if not irreducible:
        intercept, slope, _ = _line(x, torch.log(losses_t))
        if slope >= 0:
            raise InputError(f"loss does not fall with size (log-log slope {slope:.3g}); no fit")
        return PowerLaw(a=math.exp(intercept), alpha=-slope)
    if x.unique().numel() < 3:
        raise InputError("a fit with an irreducible term needs at least three distinct sizes")
    # every E of the grid at once: the line through (log N, log(L − E)), its
    # squared error in log L
    e = torch.linspace(0.0, float(losses_t.min()), 2001, dtype=torch.float64)[:-1, None]
    y = torch.log(losses_t[None, :] - e)  # [grid, k]
    xc = x - x.mean()
    slope = (xc * (y - y.mean(-1, keepdim=True))).sum(-1) / (xc**2).sum()
    intercept = y.mean(-1) - slope * x.mean()
    pred = e + torch.exp(intercept[:, None] + slope[:, None] * x[None, :])
    sse = ((torch.log(losses_t)[None, :] - torch.log(pred)) ** 2).sum(-1)
    sse = torch.where(slope < 0, sse, torch.full_like(sse, math.inf))
    i = int(torch.argmin(sse))
    if not math.isfinite(float(sse[i])):
        raise InputError("loss does not fall with size for any irreducible term; no fit")
    return PowerLaw(
        a=math.exp(float(intercept[i])), alpha=-float(slope[i]), irreducible=float(e[i, 0])
    )


def effective_size(law: PowerLaw, loss: float) -> float:
    """Parameters a unique-data model needs to reach ``loss`` under ``law``
    (infinite at or below its irreducible loss)."""
    if loss <= 0:
        raise InputError(f"loss must be positive, got {loss}")
    if loss <= law.irreducible:
        return math.inf
    return ((loss - law.irreducible) / law.a) ** (-1.0 / law.alpha)


def _quantiles(values: list[float], lo: float, hi: float) -> list[float]:
    """Quantiles without interpolation, so that bootstrap fits under which a
    loss lies at or below the irreducible term (an infinite effective size)
    give an upper bound of inf rather than NaN."""
    import numpy as np

    return np.quantile(np.asarray(values, dtype=float), [lo, hi], method="inverted_cdf").tolist()


def effective_size_intervals(
    table: Any,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    irreducible: bool = False,
) -> Any:
    """Effective model size with its uncertainty over seeds (Hernandez et
    al. 2022 §3's "effective model size"; the bootstrap is ours).

    ``table`` has one row per run: ``size``, ``run``, ``seed``,
    ``non_embedding_params``, ``test_loss``, and ``kind`` (``"f0"`` marks the
    unique-data runs the law is fitted on). The point estimate fits the law
    on each size's mean f = 0 loss and maps a loss to the parameter count
    that reaches it. The interval resamples seeds with replacement — the
    f = 0 seeds of every size (refitting the law) and the seeds of the run —
    ``n_boot`` times and takes the central ``level`` quantiles.

    Returns one row per (size, run): ``seeds``, ``ratio`` (effective /
    actual parameters, at the seeds' mean loss), ``ratio_lo``, ``ratio_hi``,
    and for each seed ``ratio_seed<k>`` with ``ratio_seed<k>_lo`` /
    ``_hi`` (that seed's loss, the law's bootstrap only). The f = 0 rows
    show how far the fit maps the baselines themselves from 1. An upper
    bound of ``inf``: some bootstrap laws put the loss at or below their
    irreducible term, so the data bound the size from below only.
    """
    import numpy as np
    import pandas as pd

    t = table.dropna(subset=["test_loss", "non_embedding_params"])
    base = t[t["kind"] == "f0"]
    sizes = sorted(base["size"].unique())
    if len(sizes) < 2:
        raise InputError("effective size needs f = 0 runs of at least two sizes")
    params = base.groupby("size")["non_embedding_params"].first()
    base_losses = {s: base[base["size"] == s]["test_loss"].to_numpy() for s in sizes}
    rng = np.random.default_rng(seed)

    def law_of(means: dict[str, float]) -> PowerLaw:
        return fit_power_law([params[s] for s in sizes], [means[s] for s in sizes], irreducible)

    law = law_of({s: float(v.mean()) for s, v in base_losses.items()})
    laws = []
    for _ in range(n_boot):
        means = {s: float(rng.choice(v, v.size).mean()) for s, v in base_losses.items()}
        try:
            laws.append(law_of(means))
        except InputError:
            continue  # a resample whose losses do not fall with size
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    rows = []
    for (size, run), g in t.groupby(["size", "run"], sort=False):
        n = float(g["non_embedding_params"].iloc[0])
        losses = g["test_loss"].to_numpy()
        row: dict[str, Any] = {"size": size, "run": run, "kind": g["kind"].iloc[0],
                               "seeds": len(losses)}  # fmt: skip
        row["ratio"] = effective_size(law, float(losses.mean())) / n
        boot = [effective_size(b, float(rng.choice(losses, losses.size).mean())) / n for b in laws]
        row["ratio_lo"], row["ratio_hi"] = _quantiles(boot, lo_q, hi_q)
        for sd, loss in zip(g["seed"], losses, strict=True):
            one = [effective_size(b, float(loss)) / n for b in laws]
            row[f"ratio_seed{sd}"] = effective_size(law, float(loss)) / n
            row[f"ratio_seed{sd}_lo"], row[f"ratio_seed{sd}_hi"] = _quantiles(one, lo_q, hi_q)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["law"] = law
    out.attrs["bootstrap_fits"] = len(laws)
    return out


__all__ = [
    "PowerLaw",
    "copy_losses",
    "effective_size",
    "effective_size_intervals",
    "fit_power_law",
    "verbatim_fraction",
]
