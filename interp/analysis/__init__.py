"""Analyzers: plain typed functions of a model, and ``sweep`` over checkpoints.

Every name is imported on first use (PEP 562): ``import interp.analysis`` is
cheap, ``from interp.analysis import induction_scores`` imports what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

# bound eagerly: the function ``sweep`` shares its name with its module, which
# would otherwise replace it on the package once imported (torch-free)
from interp.analysis.sweep import Analyzer as Analyzer
from interp.analysis.sweep import analyzer_name as analyzer_name
from interp.analysis.sweep import sweep as sweep

_WHERE = {
    "behavior": ("copy_gain", "copying_probe", "direct_logit_copying", "head_ablation_losses",
                 "icl_score", "logit_copying_scores", "olsson_icl_score", "per_token_loss",
                 "signed_logit_copying"),
    "memorization": ("copy_losses", "effective_size", "effective_size_intervals", "extractable",
                     "fit_power_law", "sequence_loss", "verbatim_fraction"),
    "probes": ("TokenPool", "natural_text", "pool_of", "pool_probe", "text_probe"),
    "circuits": ("composition_baseline", "composition_ratios", "composition_scores",
                 "composition_vs_init", "copying_scores"),
    "fourier": ("embedding_frequency_norms", "excluded_logits", "excluded_loss",
                "fourier_basis", "fourier_progress", "gini", "key_frequencies",
                "logit_frequency_shares", "logit_grid", "pick_key_frequencies",
                "neuron_logit_map", "progress_measures", "restricted_logits",
                "restricted_loss",
                "run_key_frequencies", "sum_squared_weights"),
    "heads": ("attention_patterns", "default_probe", "duplicate_token_scores",
              "induction_scores", "prefix_matching_scores", "prev_token_scores"),
    "learning_coefficient": ("LLCDiverged", "default_n_beta", "llc"),
    "llc_known": ("deep_linear", "linear_regression", "reduced_rank_lambda"),
    "named": ("ANALYZERS", "HEAD_ANALYZERS", "head_analyzers", "named_analyzer"),
}  # fmt: skip
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted([*_MODULE, "Analyzer", "analyzer_name", "sweep"])


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        return getattr(importlib.import_module(f"interp.analysis.{_MODULE[name]}"), name)
    raise AttributeError(f"module 'interp.analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
