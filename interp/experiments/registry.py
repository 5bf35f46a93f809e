"""Experiment name → module and config class, so a run directory can be reopened typed."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

EXPERIMENTS = {
    "grokking": ("interp.experiments.grokking", "GrokkingConfig"),
    "induction": ("interp.experiments.induction", "InductionConfig"),
    "tickets": ("interp.experiments.tickets", "TicketsConfig"),
    "repeated_data": ("interp.experiments.repeated_data", "RepeatedDataConfig"),
}


def experiment_module(experiment: str) -> ModuleType:
    """The module of a registered experiment (``preset``, ``run``, ``PRESETS``, …)."""
    if experiment not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {experiment!r}; known: {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[experiment][0])


def config_class(experiment: str) -> type[Any]:
    """The config dataclass of a registered experiment."""
    module = experiment_module(experiment)
    return getattr(module, EXPERIMENTS[experiment][1])
