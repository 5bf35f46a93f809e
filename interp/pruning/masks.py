"""Pruning masks: which weights are prunable, masks at an exact rate, overlap.

Conventions (Minegishi et al. "Grokking Tickets" §3; Frankle & Carbin 2019):

* **rate = fraction REMOVED** (the Grokking-Tickets code uses the fraction
  kept; ``rate=0.6`` here keeps 40% of the prunable weights);
* prunable = every weight matrix (parameters with ≥ 2 dims: embeddings,
  attention, MLP and unembedding matrices), not biases — configurable with
  glob patterns over the clean state-dict names;
* ``scope="global"`` ranks all prunable weights together; ``"layer"`` removes
  the same fraction from each matrix.

Masks are dicts name → bool tensor (True = kept); exactly
``round(rate · n)`` weights are removed (ties broken by a seeded order).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Bool, Float
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn

from interp.config.core import InputError
from interp.models import named_weights
from interp.training.files import atomic_write_bytes, atomic_write_json, read_json, sha256_bytes

Mask = dict[str, Tensor]


#: where a run trained under a fixed mask (a ticket, a pruned control) keeps it
MASK_FILE = "masks/ticket.safetensors"


def prunable_weights(
    model: nn.Module, include: Sequence[str] | None = None
) -> dict[str, nn.Parameter]:
    """Parameters that may be pruned: matching ``include`` globs (default: every
    parameter with ≥ 2 dimensions, i.e. weight matrices but not biases)."""
    params = named_weights(model)
    if include is None:
        chosen = {n: p for n, p in params.items() if p.ndim >= 2}
    else:
        chosen = {n: p for n, p in params.items() if any(fnmatch.fnmatch(n, g) for g in include)}
    if not chosen:
        raise InputError(f"no prunable parameters match {include!r}; parameters: {sorted(params)}")
    return chosen


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise InputError(f"rate (fraction removed) must be in [0, 1), got {rate!r}")


def _drop_lowest(scores: Float[Tensor, "*shape"], n_remove: int, seed: int) -> Bool[Tensor, " n"]:
    """Flat keep-mask removing exactly the ``n_remove`` lowest scores (seeded tie order)."""
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if n_remove == 0:
        return keep
    gen = torch.Generator().manual_seed(seed)
    jitter = torch.randperm(scores.numel(), generator=gen)
    # sort by (score, random tiebreak): lexsort via stable sorts
    order = torch.argsort(jitter, stable=True)
    order = order[torch.argsort(scores.flatten()[order].double(), stable=True)]
    keep[order[:n_remove]] = False
    return keep


def mask_from_scores(
    scores: Mapping[str, Tensor],
    rate: float,
    scope: Literal["global", "layer"] = "global",
    seed: int = 0,
) -> Mask:
    """Remove the ``rate`` fraction of weights with the lowest scores."""
    _check_rate(rate)
    if scope not in ("global", "layer"):
        raise InputError(f"scope must be 'global' or 'layer', got {scope!r}")
    if scope == "layer":
        return {
            name: _drop_lowest(s.detach().cpu(), round(rate * s.numel()), seed).reshape(s.shape)
            for name, s in scores.items()
        }
    names = list(scores)
    flat = torch.cat([scores[n].detach().cpu().flatten().double() for n in names])
    keep = _drop_lowest(flat, round(rate * flat.numel()), seed)
    out, i = {}, 0
    for n in names:
        k = scores[n].numel()
        out[n] = keep[i : i + k].reshape(scores[n].shape)
        i += k
    return out


def magnitude_mask(
    model: nn.Module,
    rate: float,
    scope: Literal["global", "layer"] = "global",
    include: Sequence[str] | None = None,
) -> Mask:
    """Keep the largest-|w| weights (magnitude pruning, Han et al. 2015; the
    ticket criterion of Frankle & Carbin 2019 and Minegishi et al.)."""
    params = prunable_weights(model, include)
    return mask_from_scores({n: p.detach().abs() for n, p in params.items()}, rate, scope)


def random_mask(
    model: nn.Module,
    rate: float,
    seed: int,
    include: Sequence[str] | None = None,
) -> Mask:
    """A random mask under one global threshold: a standard-normal score per
    prunable weight, the ``rate`` fraction with the lowest removed (the
    Grokking-Tickets code's ``Rand`` pruner). Each matrix loses about
    ``rate`` of its weights, whatever the ticket's per-matrix sparsity."""
    params = prunable_weights(model, include)
    gen = torch.Generator().manual_seed(seed)
    scores = {
        n: torch.randn(p.shape, generator=gen, dtype=torch.float64) for n, p in params.items()
    }
    return mask_from_scores(scores, rate, "global", seed)


def random_mask_like(mask: Mapping[str, Tensor], seed: int) -> Mask:
    """A random mask with exactly the same number of kept weights per matrix
    as ``mask`` (random pruning at the ticket's layer-wise sparsity: a
    stricter control than :func:`random_mask`)."""
    out = {}
    for i, (name, m) in enumerate(sorted(mask.items())):
        gen = torch.Generator().manual_seed(seed * 7919 + i)
        n_keep = int(m.sum())
        keep = torch.zeros(m.numel(), dtype=torch.bool)
        keep[torch.randperm(m.numel(), generator=gen)[:n_keep]] = True
        out[name] = keep.reshape(m.shape)
    return out


def sparsity(mask: Mapping[str, Tensor]) -> dict[str, float]:
    """Fraction removed per matrix and overall (``"total"``)."""
    out = {name: 1.0 - float(m.float().mean()) for name, m in mask.items()}
    kept = sum(int(m.sum()) for m in mask.values())
    total = sum(m.numel() for m in mask.values())
    out["total"] = 1.0 - kept / total
    return out


def jaccard(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """|kept in both| / |kept in either| over all matrices (1 for identical masks)."""
    if set(a) != set(b):
        raise InputError(f"masks cover different parameters: {sorted(set(a) ^ set(b))}")
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    union = sum(int((a[n] | b[n]).sum()) for n in a)
    return inter / union if union else 1.0


def save_mask(path: str | Path, mask: Mapping[str, Tensor], meta: Mapping[str, object]) -> Path:
    """Write ``mask`` (safetensors, uint8) and a JSON sidecar with its sha256,
    sparsity per matrix and ``meta``; both atomically."""
    path = Path(path)
    data = st_save({n: m.to(torch.uint8).contiguous() for n, m in mask.items()})
    atomic_write_bytes(path, data)
    atomic_write_json(
        path.with_suffix(".json"),
        {"sha256": sha256_bytes(data), "sparsity": sparsity(mask), **dict(meta)},
    )
    return path


def load_mask(path: str | Path) -> Mask:
    """Read a mask written by :func:`save_mask`, verifying its sha256."""
    from interp.training.files import CorruptCheckpointError

    path = Path(path)
    meta = read_json(path.with_suffix(".json"))
    data = path.read_bytes()
    if sha256_bytes(data) != meta.get("sha256"):
        raise CorruptCheckpointError(f"mask file {path} does not match its recorded sha256")
    return {n: t.to(torch.bool) for n, t in st_load(data).items()}
