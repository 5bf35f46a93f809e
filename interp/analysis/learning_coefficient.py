"""The local learning coefficient (LLC) of a model at its current weights.

λ̂ = nβ · (E_w[L_n(w)] − L_n(w*)), the expectation over a tempered posterior
localised at w* (Lau et al. 2023, "Quantifying degeneracy in singular models
via the learning coefficient", §3, eq. 7), sampled with SGLD chains.
Sampling and the estimate are devinterp's (PyPI ``devinterp`` 2.x,
``devinterp.slt.llc.llc``); this module adapts our data and losses to it,
reads its diagnostics and refuses to return a number from a chain that
diverged.

devinterp is built for language models: it samples rows of an ``input_ids``
column and asks for per-token losses. Any data fits through an index
column, so :func:`llc` hands it the example indices and looks the examples up
itself; the per-example loss (the negative log-likelihood, in nats) plays the
per-token loss.

Hyperparameters (Lau et al. §4; devinterp's documentation):

* ``n_beta`` — nβ, the inverse temperature times the number of examples.
  Default n / log n (Watanabe's WBIC temperature, the paper's choice).
* ``localization`` — γ, the pull towards w* (default 100).
* ``lr`` — the SGLD step ε. Too large biases the estimate upwards with a
  *small* spread: calibrate it on a model with a known answer
  (``docs/llc.md``).
* ``chains``, ``draws``, ``burnin`` — devinterp averages every step,
  burn-in included, so the default has none.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp.config.core import InputError

#: ``loss_fn(model, inputs, targets)`` → per-example negative log-likelihood [batch]
LossFn = Callable[[nn.Module, Tensor, Tensor], Float[Tensor, " batch"]]


class LLCDiverged(RuntimeError):
    """An SGLD chain's loss became NaN or infinite, or kept growing."""


def cross_entropy_per_example(
    model: nn.Module, inputs: Tensor, targets: Tensor
) -> Float[Tensor, " batch"]:
    """Mean cross-entropy of each example: ``model(inputs)`` is [batch, classes]
    with ``targets`` [batch], or [batch, seq, vocab] with targets [batch, seq]
    (every position counted)."""
    logits = model(inputs)
    if logits.ndim == 2:
        return torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return loss.reshape(targets.shape).mean(-1)


def _materialize(data: Any) -> tuple[Tensor, Tensor]:
    """``(inputs, targets)`` from a tensor pair or an iterable of batches."""
    if (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(t, Tensor) for t in data)
    ):
        inputs, targets = data
    elif isinstance(data, Iterable):
        batches = list(data)
        if not batches:
            raise InputError("llc: the data loader yielded no batches")
        try:
            inputs = torch.cat([b[0] for b in batches])
            targets = torch.cat([b[1] for b in batches])
        except (TypeError, IndexError, RuntimeError) as err:
            raise InputError(
                f"llc: the data loader must yield (inputs, targets) tensor pairs ({err})"
            ) from err
    else:
        raise InputError("llc: data must be an (inputs, targets) tensor pair or a DataLoader")
    if inputs.shape[0] == 0:
        raise InputError("llc: the data is empty")
    if inputs.shape[0] != targets.shape[0]:
        raise InputError(
            f"llc: inputs ({inputs.shape[0]}) and targets ({targets.shape[0]}) differ in length"
        )
    return inputs, targets


@contextlib.contextmanager
def _quiet_progress():
    """devinterp draws a tqdm bar per chain; a sweep over checkpoints should not."""
    import functools

    import devinterp.slt.sampler as sampler
    from tqdm import trange

    old = sampler.trange
    sampler.trange = functools.partial(trange, disable=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sampling without output_path")
            # a failed chain is reported by llc itself (LLCDiverged)
            warnings.filterwarnings("ignore", message="Chain failed")
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")
            yield
    finally:
        sampler.trange = old


def _detach_activations(model: nn.Module) -> None:
    """Replace activations a forward pass left on the modules (TransformerLens
    keeps the last attention pattern) by detached copies: a tensor with a
    graph cannot be deep-copied."""
    # walk ``_modules`` itself: TransformerLens's bridge hides the wrapped
    # components from ``modules()``
    stack, seen = [model], set()
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        for key, value in list(vars(module).items()):
            if isinstance(value, Tensor) and not value.is_leaf:
                object.__setattr__(module, key, value.detach())
        stack.extend(m for m in vars(module).get("_modules", {}).values() if m is not None)


def sampled_parameters(model: nn.Module, masks: dict[str, Tensor | None] | None) -> int:
    """How many weights SGLD moves: every parameter, or the masks' kept ones."""
    params = dict(model.named_parameters())
    if masks is None:
        return sum(p.numel() for p in params.values())
    return sum(
        params[name].numel() if mask is None else int(mask.count_nonzero())
        for name, mask in masks.items()
    )


def default_n_beta(n: int) -> float:
    """n / log n: Watanabe's WBIC inverse temperature times n (Lau et al. §4)."""
    if n < 2:
        raise InputError(f"llc needs at least 2 examples, got {n}")
    return n / math.log(n)


def llc(
    model: nn.Module,
    data: Any,
    *,
    loss_fn: LossFn | None = None,
    n_beta: float | None = None,
    localization: float = 100.0,
    lr: float = 1e-4,
    chains: int = 4,
    draws: int = 100,
    burnin: int = 0,
    batch_size: int = 64,
    seed: int = 0,
    param_masks: dict[str, Tensor | None] | None = None,
) -> dict[str, Any]:
    """Estimate the local learning coefficient of ``model`` at its weights.

    ``data``: an ``(inputs, targets)`` tensor pair or a DataLoader of such
    batches (the training set the weights minimise). ``loss_fn(model, inputs,
    targets)`` returns each example's negative log-likelihood in nats; it is
    required (for our runs :func:`interp.experiments.llc_runs.run_llc` passes
    the experiment's loss). ``param_masks`` (parameter name → boolean mask or
    None) restricts sampling to those weights, e.g. a ticket's kept weights;
    parameters not named are frozen.

    Returns ``llc_mean``, ``llc_std`` (over chains), ``llc_se`` (std /
    √chains), ``llc_per_chain``, ``init_loss`` (L_n(w*) on the sampling
    batches), ``loss_trace`` ([chains, steps], mean loss per step),
    ``n``, ``n_beta`` and ``flat`` — True when no chain's loss moved
    measurably above L_n(w*) (a step too small for the sampler to explore:
    the estimate is near 0 whatever the model). Raises :class:`LLCDiverged`
    (naming ``lr`` and ``localization``) when a chain's loss becomes NaN/inf
    or its last quarter implies an LLC above the number of sampled
    parameters (twice what any model can have) — never a silent number.
    """
    from datasets import Dataset
    from devinterp.slt.llc import llc as devinterp_llc

    if loss_fn is None:
        raise InputError(
            "llc: loss_fn is required for a plain nn.Module (loss_fn(model, inputs, targets) → "
            "per-example NLL); for our runs use interp.experiments.llc_runs.run_llc"
        )
    for name, value, low in (("chains", chains, 1), ("draws", draws, 2), ("batch_size",
                             batch_size, 1), ("burnin", burnin, 0)):  # fmt: skip
        if int(value) != value or value < low:
            raise InputError(f"llc: {name} must be an integer >= {low}, got {value}")
    for name, value in (("lr", lr), ("localization", localization)):
        if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
            raise InputError(f"llc: {name} must be a finite positive number, got {value}")
    inputs, targets = _materialize(data)
    n = inputs.shape[0]
    if n < batch_size:
        raise InputError(
            f"llc: {n} examples are fewer than batch_size={batch_size}; lower batch_size "
            "or pass more data"
        )
    n_beta = default_n_beta(n) if n_beta is None else float(n_beta)
    if not math.isfinite(n_beta) or n_beta <= 0:
        raise InputError(f"llc: n_beta must be a finite positive number, got {n_beta}")
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)

    def per_token(m: nn.Module, input_ids: Tensor) -> Tensor:
        idx = input_ids[:, 0].to(device)
        loss = loss_fn(m, inputs[idx], targets[idx])[:, None]
        # devinterp deep-copies the model for each chain, and TransformerLens's
        # bridge can share components between a copy and its original: leave no
        # activation with a graph behind (the loss keeps its own)
        _detach_activations(m)
        if m is not model:
            _detach_activations(model)
        return loss

    _detach_activations(model)
    index = Dataset.from_dict({"input_ids": [[i, i] for i in range(n)]}).with_format("torch")
    was_training = model.training
    with tempfile.TemporaryDirectory() as tmp, _quiet_progress():
        try:
            res = devinterp_llc(
                model, index, {}, lr=lr, n_beta=n_beta, loss_fn=per_token,
                param_masks=param_masks, num_chains=int(chains), num_draws=int(draws),
                num_burnin_steps=int(burnin), batch_size=int(batch_size),
                localization=localization, init_seed=int(seed), device=str(device),
                output_path=os.path.join(tmp, "samples.zarr"),
            )  # fmt: skip
            trace = torch.as_tensor(res["loss_trace"].values, dtype=torch.float64)
            per_chain = torch.as_tensor(res["llc_per_chain"].values, dtype=torch.float64)
            init_loss = float(res["init_loss"])
        except Exception as err:
            if type(err).__name__ == "ChainHealthError":
                raise LLCDiverged(
                    f"llc: an SGLD chain's loss became NaN or infinite ({err}); lower lr "
                    f"(now {lr}) or raise localization (now {localization})"
                ) from err
            raise
        finally:
            model.train(was_training)
    n_params = sampled_parameters(model, param_masks)
    _check_growth(trace, init_loss, n_beta, n_params, lr, localization)
    rise = trace - init_loss
    # flat: the chains' mean rise is below the loss's own step-to-step noise
    noise = float(trace.diff(dim=1).std()) if trace.shape[1] > 2 else 0.0
    flat = bool(float(rise.mean()) <= max(noise, 1e-12) / math.sqrt(trace.numel()))
    if flat:
        warnings.warn(
            f"llc: the chains' loss stayed at L(w*) (mean rise {float(rise.mean()):.3g}); "
            f"the estimate is not informative — raise lr (now {lr})",
            stacklevel=2,
        )
    std = float(per_chain.std()) if per_chain.numel() > 1 else 0.0
    return {
        "llc_mean": float(per_chain.mean()),
        "llc_std": std,
        "llc_se": std / math.sqrt(per_chain.numel()),
        "llc_per_chain": per_chain.tolist(),
        "init_loss": init_loss,
        "loss_trace": trace,
        "n": n,
        "n_beta": n_beta,
        "flat": flat,
    }


def _check_growth(
    trace: Tensor,
    init_loss: float,
    n_beta: float,
    n_params: int,
    lr: float,
    localization: float,
) -> None:
    """Raise :class:`LLCDiverged` when a chain's loss is NaN or infinite, or
    when its last quarter implies a learning coefficient above n_params —
    twice the largest any model of that many parameters has (a regular one:
    n_params / 2; the factor leaves room for a short window's noise) — or
    sits more than 5 nats above L(w*): the chain has left the basin."""
    if not bool(torch.isfinite(trace).all()):
        raise LLCDiverged(
            f"llc: an SGLD chain's loss became NaN or infinite; lower lr (now {lr}) or raise "
            f"localization (now {localization})"
        )
    q = max(trace.shape[1] // 4, 1)
    late = (trace[:, -q:] - init_loss).mean(1)
    implied = n_beta * late
    bad = (implied > n_params) | (late > _RUNAWAY_NATS)
    if bool(bad.any()):
        c = int(bad.nonzero()[0])
        raise LLCDiverged(
            f"llc: chain {c} has left w*: its last quarter is {float(late[c]):.3g} nats above "
            f"L(w*), an LLC of {float(implied[c]):.4g}, twice the most any model of "
            f"{n_params} parameters has; lower lr (now {lr}) or raise localization "
            f"(now {localization})"
        )


#: a chain whose loss ends this many nats above L(w*) has left the basin
_RUNAWAY_NATS = 5.0


__all__ = [
    "LLCDiverged", "cross_entropy_per_example", "default_n_beta", "llc", "sampled_parameters",
]  # fmt: skip
