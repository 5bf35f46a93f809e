"""Experiments: one :class:`~interp.experiments.base.Experiment` per kind of run
(grokking, induction, tickets, repeated-data) and one
:class:`~interp.experiments.runner.Study` per multi-run experiment, trained
through one runner (:func:`~interp.experiments.runner.run_study`).

Submodules are imported on first use (``from interp.experiments import
grokking`` works as usual)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"experiment": "registry", "study": "registry", "run_study": "runner"}

__all__ = ["experiment", "run_study", "study"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"interp.experiments.{_LAZY[name]}"), name)
    try:
        return importlib.import_module(f"interp.experiments.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"interp.experiments.{name}":
            raise AttributeError(f"module 'interp.experiments' has no attribute {name!r}") from None
        raise
