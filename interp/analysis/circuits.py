"""Weight-based circuit scores (Elhage et al. 2021, "A Mathematical Framework
for Transformer Circuits").

* :func:`copying_scores` — eigenvalues λ of each head's full OV circuit
  W_E · W_V · W_O · W_U; score Σλ / Σ|λ| ∈ [−1, 1] (§"Copying / Primarily
  Positive Eigenvalues"): +1 for a head that copies (identity-like OV), −1 for
  one that suppresses the tokens it attends to.
* :func:`composition_scores` — Q-, K- and V-composition between every head of
  an earlier layer and every head of a later layer:
  ‖M_left · M_right‖_F / (‖M_left‖_F ‖M_right‖_F) with M_left the earlier head's
  W_OV and M_right the later head's W_QK (Q), W_QKᵀ (K) or W_OV (V)
  (§"Virtual attention heads / composition").

Both read weights only (row-vector convention: x · W). By default
(``fold_ln=True``) they read them as TransformerLens's HookedTransformer
processes them on load, which is what the papers' numbers were computed on:
LayerNorm scales folded into the next weights, writing weights and the
unembedding centred (``enable_compatibility_mode()`` on a copy of the bridge;
the model itself is untouched). ``fold_ln=False`` reads the raw weights. On a
model with LayerNorm the two differ by a few hundredths; centring alone moves
them on a model without.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp.analysis.heads import model_dims
from interp.config.core import InputError


def _head_weights(model: nn.Module) -> dict[str, Tensor]:
    model_dims(model)
    return {
        "W_Q": model.W_Q.detach().double(),  # [layer, head, d_model, d_head]
        "W_K": model.W_K.detach().double(),
        "W_V": model.W_V.detach().double(),
        "W_O": model.W_O.detach().double(),  # [layer, head, d_head, d_model]
    }


def _detached_activations(model: nn.Module) -> dict[int, Any]:
    """A deepcopy memo that copies the activations a forward pass left on
    the modules (TL keeps the last attention pattern) as detached tensors:
    a tensor with a graph cannot be deep-copied."""
    return {
        id(v): v.detach().clone()
        for m in model.modules()
        for v in vars(m).values()
        if isinstance(v, Tensor) and not v.is_leaf
    }


def processed(model: nn.Module, memo: dict[Any, Any] | None = None) -> nn.Module:
    """A copy of a TransformerLens bridge with HookedTransformer's weight
    processing (fold LayerNorm, centre writing weights and unembedding); the
    model itself for anything else. Shared through ``memo`` per checkpoint."""
    if not hasattr(model, "enable_compatibility_mode"):
        return model
    key = ("processed", id(model))
    if memo is not None and key in memo:
        return memo[key]
    out = copy.deepcopy(model, _detached_activations(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.enable_compatibility_mode(disable_warnings=True)
    if memo is not None:
        memo[key] = out
    return out


def copying_scores(
    model: nn.Module, *, fold_ln: bool = True, memo: dict[Any, Any] | None = None
) -> Float[Tensor, "layer head"]:
    """Σλ / Σ|λ| over the eigenvalues of each head's full OV circuit
    (Elhage et al. 2021, "Copying / Primarily Positive Eigenvalues").

    The V×V circuit (W_E W_V)(W_O W_U) has the same non-zero eigenvalues as the
    d_head×d_head matrix (W_O W_U)(W_E W_V), which is what we diagonalise.
    When the input and output vocabularies differ, the first min(d_vocab,
    d_vocab_out) tokens are used. A head with an all-zero circuit scores 0.
    ``fold_ln``: read the processed weights (module docstring).
    """
    model = processed(model, memo) if fold_ln else model
    w = _head_weights(model)
    W_E = model.W_E.detach().double()
    W_U = model.W_U.detach().double()
    n = min(W_E.shape[0], W_U.shape[1])
    W_E, W_U = W_E[:n], W_U[:, :n]
    left = torch.einsum("vd,lhde->lhve", W_E, w["W_V"])  # [l, h, V, d_head]
    right = torch.einsum("lhed,dv->lhev", w["W_O"], W_U)  # [l, h, d_head, V]
    small = right @ left  # [l, h, d_head, d_head]
    eig = torch.linalg.eigvals(small)
    total = eig.abs().sum(-1)
    score = eig.real.sum(-1) / total.clamp_min(1e-300)
    return torch.where(total > 1e-12, score, torch.zeros_like(score)).float()


def _frob_ratio(left: Tensor, right: Tensor) -> Tensor:
    """‖left @ right‖ / (‖left‖ ‖right‖), 0 where either factor is 0."""
    num = (left @ right).flatten(-2).norm(dim=-1)
    den = left.flatten(-2).norm(dim=-1) * right.flatten(-2).norm(dim=-1)
    return torch.where(den > 1e-12, num / den.clamp_min(1e-300), torch.zeros_like(num))


def composition_scores(
    model: nn.Module, *, fold_ln: bool = True, memo: dict[Any, Any] | None = None
) -> dict[str, Float[Tensor, "layer1 head1 layer2 head2"]]:
    """Q-, K- and V-composition scores from each head (layer1, head1) into each
    head of a later layer (layer2 > layer1); entries with layer2 ≤ layer1 are 0
    (Elhage et al. 2021, "Virtual attention heads"; the same pairing of W_OV
    with W_QK, W_QKᵀ and W_OV as TransformerLens's ``all_composition_scores``).
    ``fold_ln``: read the processed weights (module docstring).

    Returns ``{"q_composition": …, "k_composition": …, "v_composition": …}``.
    """
    model = processed(model, memo) if fold_ln else model
    w = _head_weights(model)
    n_layers, n_heads, _, _ = model_dims(model)
    W_OV = w["W_V"] @ w["W_O"]  # [l, h, d_model, d_model]
    W_QK = w["W_Q"] @ w["W_K"].transpose(-1, -2)
    out = {
        k: torch.zeros(n_layers, n_heads, n_layers, n_heads, dtype=torch.float64)
        for k in ("q_composition", "k_composition", "v_composition")
    }
    for l1 in range(n_layers):
        for l2 in range(l1 + 1, n_layers):
            left = W_OV[l1][:, None]  # [h1, 1, d, d]
            out["q_composition"][l1, :, l2] = _frob_ratio(left, W_QK[l2][None])
            out["k_composition"][l1, :, l2] = _frob_ratio(left, W_QK[l2].transpose(-1, -2)[None])
            out["v_composition"][l1, :, l2] = _frob_ratio(left, W_OV[l2][None])
    return {k: v.float() for k, v in out.items()}


def composition_baseline(
    make: Callable[[int], nn.Module], n: int = 8, *, fold_ln: bool = True
) -> dict[str, Float[Tensor, "layer1 layer2"]]:
    """Chance level of the composition scores: their mean over ``n`` models
    ``make(seed)`` with the same shapes, freshly initialised as the run was
    (seeds 0 … n−1), and over the heads of each (layer1, layer2) pair. Random
    matrices already compose at about 1/sqrt(d_head); a score is read against
    this level (:func:`composition_ratios`)."""
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    sums: dict[str, Tensor] = {}
    for seed in range(n):
        scores = composition_scores(make(seed), fold_ln=fold_ln)
        for k, v in scores.items():
            sums[k] = sums.get(k, 0) + v.double().mean(dim=(1, 3))
    return {k: (v / n).float() for k, v in sums.items()}


def composition_ratios(
    scores: Mapping[str, Tensor], baseline: Mapping[str, Tensor]
) -> dict[str, Float[Tensor, "layer1 head1 layer2 head2"]]:
    """Each composition score over the random-init baseline of its layer
    pair (``…_ratio``; 1 = chance); 0 where the baseline is 0 (layer2 ≤
    layer1)."""
    out = {}
    for k, v in scores.items():
        base = baseline[k][:, None, :, None].to(v.dtype)
        out[f"{k}_ratio"] = torch.where(base > 0, v / base.clamp_min(1e-30), torch.zeros_like(v))
    return out


_BASELINES: dict[str, dict[str, Tensor]] = {}


def composition_vs_init(
    model: nn.Module, run: Any, *, memo: dict[Any, Any] | None = None
) -> dict[str, Float[Tensor, "layer1 head1 layer2 head2"]]:
    """Sweep analyzer for our runs: the composition scores over their chance
    level, the mean of 8 fresh initialisations of the run's model config
    (:func:`composition_baseline`; computed once per run)."""
    from interp.config.core import to_json
    from interp.models import make_model

    cfg = run.config.model
    key = to_json(cfg)
    if key not in _BASELINES:
        _BASELINES[key] = composition_baseline(lambda seed: make_model(cfg, seed=seed))
    return composition_ratios(composition_scores(model, memo=memo), _BASELINES[key])
