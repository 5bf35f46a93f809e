"""Analyzers: plain typed functions of a model, and ``sweep`` over checkpoints."""

from interp.analysis.behavior import direct_logit_copying, icl_score, per_token_loss
from interp.analysis.circuits import composition_scores, copying_scores
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
from interp.analysis.heads import (
    attention_patterns,
    default_probe,
    duplicate_token_scores,
    induction_scores,
    prefix_matching_scores,
    prev_token_scores,
)
from interp.analysis.sweep import analyzer_name, sweep

#: Every per-head analyzer of a transformer, in the order reports show them
#: (what ``interp sweep`` and ``interp report`` run on induction runs).
HEAD_ANALYZERS = (
    prev_token_scores,
    duplicate_token_scores,
    induction_scores,
    prefix_matching_scores,
    copying_scores,
    direct_logit_copying,
    composition_scores,
    icl_score,
)

__all__ = [
    "HEAD_ANALYZERS",
    "analyzer_name",
    "attention_patterns",
    "composition_scores",
    "copying_scores",
    "default_probe",
    "direct_logit_copying",
    "duplicate_token_scores",
    "embedding_frequency_norms",
    "excluded_logits",
    "excluded_loss",
    "fourier_basis",
    "fourier_progress",
    "gini",
    "icl_score",
    "induction_scores",
    "key_frequencies",
    "logit_frequency_shares",
    "logit_grid",
    "per_token_loss",
    "pick_key_frequencies",
    "prefix_matching_scores",
    "prev_token_scores",
    "progress_measures",
    "restricted_logits",
    "restricted_loss",
    "run_key_frequencies",
    "sum_squared_weights",
    "sweep",
]
