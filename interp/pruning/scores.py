"""Pruning scores for pruning at initialisation (PaI): SNIP, GraSP and SynFlow
(magnitude and random masks are in :mod:`interp.pruning.masks`).

Each function returns a *keep priority* per prunable weight — higher means
keep — so any of them feeds :func:`interp.pruning.masks.mask_from_scores`,
which removes the ``rate`` fraction with the lowest priority. The baselines
Minegishi et al. ("Grokking Tickets" §4.2) compare grokking tickets against:

* **SNIP** (Lee et al. 2019, eq. 3–6): connection sensitivity
  ``|θ ⊙ ∂L/∂θ|`` on a batch of training data.
* **GraSP** (Wang et al. 2020, eq. 8): ``S(−θ) = −θ ⊙ Hg`` with ``g = ∂L/∂θ``
  and ``H`` the Hessian of ``L``; GraSP removes the weights with the *largest*
  ``S`` (they reduce the gradient flow least when removed), so the keep
  priority returned here is ``θ ⊙ Hg = −S``. The Grokking-Tickets code (and
  Wang et al.'s) divides the logits by a temperature T = 200 and takes ``g``
  and ``H`` over the prunable weights (``wrt="prunable"``).
* **SynFlow** (Tanaka et al. 2020, Alg. 1): replace every parameter by its
  absolute value, run the network forward, ``R = Σ output``; the score is
  ``θ ⊙ ∂R/∂θ``. The SynFlow paper feeds an all-ones input and prunes over
  ``iterations`` rounds, the removed fraction following
  ``1 − (1 − rate)^(k / iterations)`` and the masked network re-scored each
  round (the exponential schedule of §5); the Grokking-Tickets code feeds a
  batch of training data and prunes in one round.

The scores are computed on a copy: the model passed in is not modified. The
loss (SNIP, GraSP) and the forward pass (SynFlow) are callables, because what
"a batch" and "an all-ones input" mean depends on the model;
:mod:`interp.experiments.tickets` builds them for the grokking models (for
token embeddings the all-ones one-hot input is the sum of all embedding rows).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from interp.config.core import InputError
from interp.pruning.masks import Mask, mask_from_scores, prunable_weights

Scores = dict[str, Tensor]
LossFn = Callable[[nn.Module], Tensor]


def _copy(model: nn.Module, dtype: torch.dtype = torch.float64) -> nn.Module:
    clone = copy.deepcopy(model)
    # nn.Module._apply: casts parameters and buffers without TL's dtype notice
    clone._apply(lambda t: t.to(dtype) if t.is_floating_point() else t)
    clone.eval()
    for p in clone.parameters():
        p.requires_grad_(True)
        p.grad = None
    return clone


def snip_scores(model: nn.Module, loss_fn: LossFn, include: Sequence[str] | None = None) -> Scores:
    """SNIP connection sensitivity ``|θ ⊙ ∂L/∂θ|`` (Lee et al. 2019, eq. 6)."""
    clone = _copy(model)
    params = prunable_weights(clone, include)
    grads = torch.autograd.grad(loss_fn(clone), list(params.values()), allow_unused=True)
    return {
        n: (p * (torch.zeros_like(p) if g is None else g)).abs().detach()
        for (n, p), g in zip(params.items(), grads, strict=True)
    }


def grasp_scores(
    model: nn.Module,
    loss_fn: LossFn,
    include: Sequence[str] | None = None,
    wrt: Literal["prunable", "all"] = "prunable",
) -> Scores:
    """GraSP keep priority ``θ ⊙ Hg`` (= −S of Wang et al. 2020, eq. 8).

    ``wrt="prunable"`` (the Grokking-Tickets code, after Wang et al.'s): ``g``
    and ``H`` are taken over the prunable weights only, so the score is
    ``θ ⊙ H_pp g_p``. ``wrt="all"``: ``g`` over every parameter (the
    gradient flow of the whole network), ``θ_p ⊙ (H g)_p``. The temperature
    the reference code divides the logits by (T = 200) belongs in
    ``loss_fn``.
    """
    if wrt not in ("prunable", "all"):
        raise InputError(f"wrt must be 'prunable' or 'all', got {wrt!r}")
    clone = _copy(model)
    params = prunable_weights(clone, include)
    over = list(params.values()) if wrt == "prunable" else list(clone.parameters())
    grads = torch.autograd.grad(loss_fn(clone), over, create_graph=True, allow_unused=True)
    z = sum((g * g.detach()).sum() for g in grads if g is not None)
    if not isinstance(z, Tensor):
        raise InputError("the loss does not depend on any parameter")
    hg = torch.autograd.grad(z, list(params.values()), allow_unused=True)
    return {
        n: (p * (torch.zeros_like(p) if h is None else h)).detach()
        for (n, p), h in zip(params.items(), hg, strict=True)
    }


def synflow_scores(
    model: nn.Module,
    forward_ones: LossFn,
    rate: float = 0.0,
    iterations: int = 1,
    scope: Literal["global", "layer"] = "global",
    include: Sequence[str] | None = None,
) -> tuple[Scores, Mask]:
    """SynFlow scores (Tanaka et al. 2020, Algorithm 1: the path norm
    |θ ⊙ ∂R/∂θ| of R = 1ᵀ f(1; |θ|)) after ``iterations`` rounds of pruning
    towards ``rate`` (exponential schedule).

    ``forward_ones(model)`` runs the model on SynFlow's input (all ones, or a
    batch of data) and returns the output. Returns the last round's scores
    and the resulting mask (with ``rate=0`` and one iteration: the plain
    scores and an all-True mask).
    """
    if iterations < 1:
        raise InputError(f"iterations must be >= 1, got {iterations}")
    clone = _copy(model)
    with torch.no_grad():
        for p in clone.parameters():
            p.abs_()
    params = prunable_weights(clone, include)
    original = {n: p.detach().clone() for n, p in params.items()}
    mask: Mask = {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    scores: Scores = {}
    for k in range(1, iterations + 1):
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n] * mask[n])
        out = forward_ones(clone)
        grads = torch.autograd.grad(out.sum(), list(params.values()), allow_unused=True)
        scores = {
            n: (p * (torch.zeros_like(p) if g is None else g)).detach()
            for (n, p), g in zip(params.items(), grads, strict=True)
        }
        removed = 1.0 - (1.0 - rate) ** (k / iterations)
        # already-removed weights must stay removed: rank them below everything
        ranked = {
            n: torch.where(mask[n].to(s.device), s, torch.full_like(s, -1.0))
            for n, s in scores.items()
        }
        mask = mask_from_scores(ranked, removed, scope)
    return scores, mask


__all__ = ["grasp_scores", "snip_scores", "synflow_scores"]
