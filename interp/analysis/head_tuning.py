"""Head tuning on frozen features: the test risk of a linear read-out
trained on a frozen model's features, as the read-out's input dimension
grows ("Investigating the impact of model complexity in large language
models": with the body frozen, the risk of the tuned head first rises, then
falls, as its complexity grows).

The features φ(x) (e.g. a trained classifier's last hidden layer, read with
:func:`hidden_features`) are projected to ``k`` dimensions by a fixed
Gaussian matrix, and the head is the minimum-norm least-squares fit of the
one-hot training labels (the ridgeless limit, the setting in which Belkin et
al. 2019 and Hastie et al. 2022 derive the peak at ``k = n_train``). For
each ``k`` it reports the train and test mean squared error and the test
classification error of the head.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.config.core import InputError


@torch.no_grad()
def hidden_features(
    model: nn.Module, x: Float[Tensor, "n d_in"], hook: str = "hook_hidden"
) -> Float[Tensor, "n width"]:
    """The activation at ``hook`` of a HookedRootModule (default: a
    classifier's last hidden layer) for inputs ``x``."""
    _, cache = model.run_with_cache(x, names_filter=lambda n: n == hook)
    if hook not in cache:
        raise InputError(f"the model has no hook {hook!r}")
    return cache[hook].reshape(x.shape[0], -1).double()


def frozen_feature_risk(
    train_features: Float[Tensor, "n_train width"],
    train_labels: Int[Tensor, " n_train"],
    test_features: Float[Tensor, "n_test width"],
    test_labels: Int[Tensor, " n_test"],
    dims: Sequence[int],
    classes: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Train and test risk of the minimum-norm least-squares head on ``k``
    random projections of the frozen features, for each ``k`` in ``dims``
    (columns ``k``, ``train_mse``, ``test_mse``, ``train_error``,
    ``test_error``). The features are centred and scaled by the training
    set's statistics (so the interpolation threshold is ``k = n_train − 1``:
    the head has an intercept); one projection matrix (seeded) is drawn for the
    largest ``k`` and its first ``k`` columns used, so the heads are nested."""
    n, width = train_features.shape
    if n == 0 or test_features.shape[0] == 0:
        raise InputError("frozen_feature_risk needs training and test examples")
    if test_features.shape[1] != width:
        raise InputError(f"train features have {width} columns, test features "
                         f"{test_features.shape[1]}")  # fmt: skip
    if not dims or min(dims) < 1:
        raise InputError(f"dims must be positive, got {list(dims)}")
    classes = classes or int(max(train_labels.max(), test_labels.max())) + 1
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-8)
    a = ((train_features - mean) / std).double()
    b = ((test_features - mean) / std).double()
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(width, max(dims), generator=gen, dtype=torch.float64) / width**0.5
    y = torch.nn.functional.one_hot(train_labels, classes).double()
    yt = torch.nn.functional.one_hot(test_labels, classes).double()
    ybar = y.mean(0)
    rows = []
    for k in sorted(set(dims)):
        za, zb = a @ proj[:, :k], b @ proj[:, :k]
        # the minimum-norm least-squares head with an intercept (centred
        # features and targets; the intercept is the targets' mean)
        head = torch.linalg.pinv(za) @ (y - ybar)
        pa, pb = za @ head + ybar, zb @ head + ybar
        rows.append({
            "k": k,
            "train_mse": float(((pa - y) ** 2).sum(1).mean()),
            "test_mse": float(((pb - yt) ** 2).sum(1).mean()),
            "train_error": float((pa.argmax(1) != train_labels).double().mean()),
            "test_error": float((pb.argmax(1) != test_labels).double().mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)


__all__ = ["frozen_feature_risk", "hidden_features"]
