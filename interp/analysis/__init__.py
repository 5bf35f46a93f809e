"""Analyzers: plain typed functions of a model, and ``sweep`` over checkpoints."""

from interp.analysis.fourier import (
    embedding_frequency_norms,
    excluded_logits,
    excluded_loss,
    fourier_basis,
    fourier_progress,
    gini,
    key_frequencies,
    logit_frequency_shares,
    logit_grid,
    pick_key_frequencies,
    progress_measures,
    restricted_logits,
    restricted_loss,
    run_key_frequencies,
    sum_squared_weights,
)
from interp.analysis.sweep import analyzer_name, sweep

__all__ = [
    "analyzer_name",
    "embedding_frequency_norms",
    "excluded_logits",
    "excluded_loss",
    "fourier_basis",
    "fourier_progress",
    "gini",
    "key_frequencies",
    "logit_frequency_shares",
    "logit_grid",
    "pick_key_frequencies",
    "progress_measures",
    "restricted_logits",
    "restricted_loss",
    "run_key_frequencies",
    "sum_squared_weights",
    "sweep",
]
