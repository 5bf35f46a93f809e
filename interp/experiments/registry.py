"""Find an experiment's behaviour by name: the :class:`~interp.experiments.base.Experiment`
of a run experiment, the :class:`~interp.experiments.runner.Study` of a
multi-run experiment. Names, config classes and presets come from the catalog
(:mod:`interp.config.catalog`), which is all a run directory needs to be read."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from interp.config.catalog import RUNS, STUDIES, STUDY_MODULES, run_entry, study_entry

if TYPE_CHECKING:
    from interp.experiments.base import Experiment
    from interp.experiments.runner import Study


def experiment(name: str) -> Experiment:
    """The run experiment ``name`` (or an old spelling of it)."""
    entry = run_entry(name)
    return importlib.import_module(f"interp.experiments.{entry.module}").EXPERIMENT


def study(name: str) -> Study:
    """The multi-run experiment ``name``."""
    study_entry(name)
    return importlib.import_module(f"interp.experiments.{STUDY_MODULES[name]}").STUDY


def experiment_names() -> list[str]:
    return sorted(RUNS)


def study_names() -> list[str]:
    return sorted(STUDIES)


__all__ = ["experiment", "experiment_names", "study", "study_names"]
