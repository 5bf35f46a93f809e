"""Which training examples a model fits, when, and whether it keeps them:
learning and forgetting events (Toneva et al. 2019, "An empirical study of
example forgetting during deep neural network learning", §3) read from a
sweep of per-example correctness over checkpoints.

Toneva et al. count a *forgetting event* when an example classified
correctly at one presentation is misclassified at the next (every minibatch
it appears in). Here the "presentations" are the run's checkpoints, so an
event is counted between consecutive checkpoints: a coarser clock, which
misses a forget-and-relearn that happens between two checkpoints. With
log-spaced early checkpoints it resolves the early phase best.

Input: the tidy frame of a sweep with the per-example analyzer
(:class:`interp.experiments.example_fits.RunExampleFits`): rows with
``metric == "correct"``, ``item`` = training example, ``step``, ``value``
(1 fitted, 0 not).
"""

from __future__ import annotations

import pandas as pd
import torch
from jaxtyping import Bool
from torch import Tensor

from interp.config.core import InputError


def correctness_matrix(sweep_df: pd.DataFrame) -> pd.DataFrame:
    """Steps × examples of 0/1 correctness (rows sorted by step)."""
    rows = sweep_df[sweep_df["metric"] == "correct"]
    if rows.empty:
        raise InputError("the sweep holds no per-example 'correct' rows (analyzer example_fits)")
    return rows.pivot_table(index="step", columns="item", values="value").sort_index()


def example_events(sweep_df: pd.DataFrame, noisy: Bool[Tensor, " n"] | None = None) -> pd.DataFrame:
    """One row per training example: ``first_fit_step`` (first checkpoint it
    is fitted at, NaN if never), ``learning_events`` (not fitted → fitted
    between consecutive checkpoints), ``forgetting_events`` (fitted → not
    fitted), ``final_fitted``, ``stays_fitted`` (fitted at every checkpoint
    from its first fit to the end), ``settled_step`` (the first checkpoint
    from which it stays fitted to the end; NaN if it is not fitted at the
    end) and, with ``noisy``, whether its label is noisy."""
    m = correctness_matrix(sweep_df)
    steps = m.index.to_numpy()
    c = m.to_numpy() >= 0.5
    diff = c[1:].astype(int) - c[:-1].astype(int)
    ever = c.any(0)
    first = c.argmax(0)
    # settled: last checkpoint at which it was not fitted, plus one
    not_fit = ~c
    last_miss = len(steps) - 1 - not_fit[::-1].argmax(0)
    settled_idx = last_miss + 1
    settled_idx[~not_fit.any(0)] = 0
    out = pd.DataFrame({
        "item": m.columns.astype(int),
        "first_fit_step": [
            steps[f] if e else float("nan") for f, e in zip(first, ever, strict=True)
        ],
        "learning_events": (diff == 1).sum(0),
        "forgetting_events": (diff == -1).sum(0),
        "final_fitted": c[-1],
        "stays_fitted": ever & (diff == -1).sum(0).__eq__(0) & c[-1],
        "settled_step": [steps[i] if i < len(steps) else float("nan") for i in settled_idx],
    })  # fmt: skip
    if noisy is not None:
        if noisy.shape[0] <= int(out["item"].max()):
            raise InputError(f"noisy has {noisy.shape[0]} entries; the sweep has more examples")
        out["noisy"] = noisy.cpu().numpy()[out["item"].to_numpy()]
    return out


def fit_fractions(sweep_df: pd.DataFrame, noisy: Bool[Tensor, " n"]) -> pd.DataFrame:
    """Per checkpoint: the fraction of noisy-label and of clean training
    examples the model fits (columns ``step``, ``noisy_fit``, ``clean_fit``)."""
    m = correctness_matrix(sweep_df)
    mask = noisy.cpu().numpy()[m.columns.to_numpy().astype(int)]
    if not mask.any():
        raise InputError("no example is noisy: the noisy-label fit fraction is undefined")
    c = m.to_numpy() >= 0.5
    return pd.DataFrame({
        "step": m.index, "noisy_fit": c[:, mask].mean(1),
        "clean_fit": c[:, ~mask].mean(1) if (~mask).any() else float("nan"),
    })  # fmt: skip


def noisy_from_run_data(data: dict, n_train: int) -> Bool[Tensor, " n"]:
    """The noisy-label mask of a run from its ``data.json``."""
    mask = torch.zeros(n_train, dtype=torch.bool)
    mask[torch.tensor(data.get("noisy_indices", []), dtype=torch.long)] = True
    return mask


__all__ = ["correctness_matrix", "example_events", "fit_fractions", "noisy_from_run_data"]
