"""Small offline classification sets for double descent, with seeded label
noise.

* ``mnist1d`` — Greydanus & Kobak's MNIST-1D (PyPI ``mnist1d``), generated
  locally from the templates in its code with its default arguments (4,000
  train / 1,000 test sequences of 40 values, 10 classes); never downloaded,
  never read from a pickle. ``make_dataset`` draws from numpy's *global* RNG,
  so its state is saved and restored around the call.
* ``digits`` — scikit-learn's bundled 8×8 digits (1,797 images, 64 features
  scaled to [0, 1], 10 classes), split once into 1,297 train / 500 test with a
  fixed permutation.

:func:`classification_data` subsamples ``n_train`` training examples (a
seeded permutation: the sample-wise axis) and replaces a seeded
``label_noise`` fraction of their labels by a different class, uniformly
(Nakkiran et al. 2019 §3's label noise), recording which examples are noisy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interp.config.core import InputError

DATASETS = ("mnist1d", "digits")
#: the data's own split seed (digits); fixed, unlike the run's seed
_SPLIT_SEED = 20_190_410


@dataclass(frozen=True)
class ClassificationData:
    """Features and labels of one run; ``noisy[i]`` says whether training
    label ``i`` was replaced (``clean_labels[i]`` is the original)."""

    train_x: Float[Tensor, "n_train features"]
    train_y: Int[Tensor, " n_train"]
    test_x: Float[Tensor, "n_test features"]
    test_y: Int[Tensor, " n_test"]
    clean_labels: Int[Tensor, " n_train"]
    noisy: Bool[Tensor, " n_train"]
    classes: int


@functools.lru_cache(maxsize=4)
def _full(dataset: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if dataset == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        state = np.random.get_state()
        try:
            d = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(state)
        return (
            torch.tensor(d["x"], dtype=torch.float32),
            torch.tensor(d["y"], dtype=torch.long),
            torch.tensor(d["x_test"], dtype=torch.float32),
            torch.tensor(d["y_test"], dtype=torch.long),
        )
    if dataset == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        perm = np.random.default_rng(_SPLIT_SEED).permutation(len(y))
        x = torch.tensor(x[perm] / 16.0, dtype=torch.float32)
        y = torch.tensor(y[perm], dtype=torch.long)
        return x[:1297], y[:1297], x[1297:], y[1297:]
    raise InputError(f"data.dataset: unknown dataset {dataset!r}; known: {list(DATASETS)}")


def dataset_sizes(dataset: str) -> tuple[int, int, int]:
    """(training examples, test examples, features) of ``dataset``."""
    x, _, xt, _ = _full(dataset)
    return x.shape[0], xt.shape[0], x.shape[1]


def noisy_labels(
    labels: Int[Tensor, " n"], fraction: float, classes: int, seed: int
) -> tuple[Int[Tensor, " n"], Bool[Tensor, " n"]]:
    """Replace round(fraction·n) labels, chosen by a seeded permutation, by a
    different class drawn uniformly; returns the new labels and which changed."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"data.label_noise must be in [0, 1), got {fraction}")
    n = labels.shape[0]
    gen = torch.Generator().manual_seed(seed * 7_919 + 17)
    idx = torch.randperm(n, generator=gen)[: round(fraction * n)]
    out = labels.clone()
    out[idx] = (labels[idx] + torch.randint(1, classes, (idx.numel(),), generator=gen)) % classes
    noisy = torch.zeros(n, dtype=torch.bool)
    noisy[idx] = True
    return out, noisy


def classification_data(
    dataset: str, n_train: int | None = None, label_noise: float = 0.0, seed: int = 0
) -> ClassificationData:
    """The training subset (``n_train`` examples, all when None), its noisy
    labels and the full test set of ``dataset`` for the run seeded ``seed``."""
    x, y, xt, yt = _full(dataset)
    n = x.shape[0]
    if n_train is not None and not 1 <= n_train <= n:
        raise InputError(f"data.n_train must be in [1, {n}] for {dataset}, got {n_train}")
    if n_train is not None and n_train < n:
        keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_train]
        x, y = x[keep], y[keep]
    classes = int(max(y.max(), yt.max())) + 1
    labels, noisy = noisy_labels(y, label_noise, classes, seed)
    return ClassificationData(x, labels, xt, yt, y, noisy, classes)


__all__ = ["DATASETS", "ClassificationData", "classification_data", "dataset_sizes", "noisy_labels"]
