"""Pruning: prunable-weight selection, masks at exact rates, overlap, storage."""

from interp.pruning.masks import (
    jaccard,
    load_mask,
    magnitude_mask,
    mask_from_scores,
    prunable_weights,
    random_mask_like,
    save_mask,
    sparsity,
)

__all__ = [
    "jaccard",
    "load_mask",
    "magnitude_mask",
    "mask_from_scores",
    "prunable_weights",
    "random_mask_like",
    "save_mask",
    "sparsity",
]
