"""Pruning: prunable-weight selection, masks at exact rates, overlap, storage."""

from interp.pruning.masks import (
    jaccard,
    load_mask,
    magnitude_mask,
    mask_from_scores,
    prunable_weights,
    random_mask,
    random_mask_like,
    save_mask,
    sparsity,
)
from interp.pruning.scores import grasp_scores, snip_scores, synflow_scores

__all__ = [
    "grasp_scores",
    "jaccard",
    "load_mask",
    "magnitude_mask",
    "mask_from_scores",
    "prunable_weights",
    "random_mask",
    "random_mask_like",
    "save_mask",
    "snip_scores",
    "sparsity",
    "synflow_scores",
]
