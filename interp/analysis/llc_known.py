"""Models whose learning coefficient is known in closed form, to calibrate
the LLC sampler (:func:`interp.analysis.learning_coefficient.llc`) before trusting a curve.

* :func:`linear_regression` — a regular model: at its least-squares optimum
  λ = d/2 (Watanabe 2009; every parameter identifiable).
* :func:`deep_linear` — a two-layer linear network y = B·A·x (reduced-rank
  regression), singular: λ from Aoyagi & Watanabe 2005 (the case analysis of
  :func:`reduced_rank_lambda`; Aoyagi 2024 extends it to deeper linear
  networks), below the parameter count's d/2.

Both draw Gaussian noise of variance 1/2, so that the squared error
``per_example_sq_error`` is the negative log-likelihood up to a constant,
and fit the weights to the empirical minimum.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp.config.core import InputError


def per_example_sq_error(
    model: nn.Module, inputs: Float[Tensor, "n d_in"], targets: Float[Tensor, "n d_out"]
) -> Float[Tensor, " n"]:
    """‖model(x) − y‖² per example: the Gaussian NLL (σ² = 1/2) up to a constant."""
    return ((model(inputs) - targets) ** 2).sum(-1)


def linear_regression(
    d: int = 10, n: int = 2000, seed: int = 0
) -> tuple[nn.Module, Float[Tensor, "n d"], Float[Tensor, "n 1"]]:
    """A bias-free linear model at the least-squares fit of ``n`` noisy
    examples of a random linear map; true λ = d/2."""
    if d < 1 or n <= d:
        raise InputError(f"linear_regression needs d >= 1 and n > d, got d={d}, n={n}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 1, generator=g) + torch.randn(n, 1, generator=g) * math.sqrt(0.5)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    return model, x, y


def reduced_rank_lambda(m: int, n_out: int, h: int, r: int) -> float:
    """Learning coefficient of y = B·A·x with A: h×m, B: n_out×h at a true
    map of rank r ≤ h (Aoyagi & Watanabe 2005, Main Theorem)."""
    if not 0 <= r <= min(h, m, n_out):
        raise InputError(f"the true rank r={r} must be in [0, min(h, m, n_out)]")
    if n_out + r <= m + h and m + r <= n_out + h and h + r <= m + n_out:
        base = 2 * (h + r) * (m + n_out) - (m - n_out) ** 2 - (h + r) ** 2
        return (base + (m + h + n_out + r) % 2) / 8
    if m + h < n_out + r:
        return (h * m - h * r + n_out * r) / 2
    if n_out + h < m + r:
        return (h * n_out - h * r + m * r) / 2
    return m * n_out / 2


def deep_linear(
    m: int = 3, n_out: int = 3, h: int = 3, r: int = 1, n: int = 2000, seed: int = 0
) -> tuple[nn.Module, Float[Tensor, "n m"], Float[Tensor, "n n_out"]]:
    """A two-layer linear network fitted (L-BFGS) to ``n`` noisy examples of a
    random rank-``r`` map; true λ = :func:`reduced_rank_lambda`."""
    reduced_rank_lambda(m, n_out, h, r)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, m, generator=g)
    true = torch.randn(n_out, r, generator=g) @ torch.randn(r, m, generator=g)
    y = x @ true.T + torch.randn(n, n_out, generator=g) * math.sqrt(0.5)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(m, h, bias=False), nn.Linear(h, n_out, bias=False))
    opt = torch.optim.LBFGS(
        model.parameters(), lr=1, max_iter=2000, tolerance_grad=1e-12,
        tolerance_change=1e-14, history_size=50, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        loss = per_example_sq_error(model, x, y).mean()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return model, x, y


__all__ = [
    "deep_linear",
    "linear_regression",
    "per_example_sq_error",
    "reduced_rank_lambda",
]
