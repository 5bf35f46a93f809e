"""The catalog of experiments: every name a user types, its config class and
presets — everything that can be known without torch.

Two kinds of entries:

* a **run experiment** trains one run into a run directory
  (``interp train NAME``); its config class and presets live in
  ``interp.config.<module>``, its behaviour (training, analyzers, report
  sections, probe) in the :class:`~interp.experiments.base.Experiment` object
  ``interp.experiments.<module>.EXPERIMENT``;
* a **multi-run experiment** trains many runs through the runner
  (``interp experiment NAME``); its spec class and presets live in
  ``interp.config.<module>``, its jobs, results table and report in the
  :class:`~interp.experiments.runner.Study` object
  ``interp.experiments.<study_module>.STUDY``.

``Run`` reads a run directory's config through :func:`config_class` without
importing any experiment. Names stored by older versions (``repeated_data``)
resolve through ``aliases``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from interp.config.core import ConfigError


@dataclass(frozen=True)
class Entry:
    """One run experiment or multi-run experiment of the catalog."""

    name: str  # what the user types; one spelling
    module: str  # interp.config.<module> and interp.experiments.<module>
    config: str  # name of the config (or spec) class in interp.config.<module>
    presets: str  # name of its dict of presets there
    help: str
    default: str | None = None  # the preset used when none is named
    aliases: tuple[str, ...] = ()  # names written by earlier versions

    def config_class(self) -> type[Any]:
        return getattr(importlib.import_module(f"interp.config.{self.module}"), self.config)

    def preset_table(self) -> dict[str, Any]:
        return getattr(importlib.import_module(f"interp.config.{self.module}"), self.presets)


RUNS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "grokking",
            "grokking",
            "GrokkingConfig",
            "PRESETS",
            "modular arithmetic (Power et al. 2022; Nanda et al. 2023)",
            default="cpu-quick",
        ),
        Entry(
            "induction",
            "induction",
            "InductionConfig",
            "PRESETS",
            "induction heads on repeated sequences (Olsson et al. 2022)",
            default="cpu-quick",
        ),
        Entry(
            "tickets",
            "tickets",
            "TicketsConfig",
            "PRESETS",
            "a lottery ticket cut from a grokking run (Minegishi et al.)",
        ),
        Entry(
            "repeated-data",
            "repeated_data",
            "RepeatedDataConfig",
            "PRESETS",
            "a language model on unique + repeated tokens (Hernandez et al. 2022)",
            default="cpu-quick",
            aliases=("repeated_data",),
        ),
        Entry(
            "double-descent",
            "double_descent",
            "DoubleDescentConfig",
            "PRESETS",
            "a classifier of some width on MNIST-1D / digits with label noise (Nakkiran et al.)",
            default="cpu-quick",
        ),
    )
}

STUDIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "tickets",
            "tickets",
            "SuiteSpec",
            "SUITES",
            "dense run, tickets and every control per seed; checks and report",
            default="cpu-quick",
        ),
        Entry(
            "ticket-regimes",
            "tickets",
            "RegimeSpec",
            "REGIMES",
            "ticket speedup vs the dense run's grokking delay over lr / train fraction",
            default="cpu-quick",
        ),
        Entry(
            "ticket-curve",
            "tickets",
            "CurveSpec",
            "CURVES",
            "a ticket from each checkpoint of one dense run: speedup vs mask step",
            default="cpu-quick",
        ),
        Entry(
            "repeated-data",
            "repeated_data",
            "GridSpec",
            "GRIDS",
            "sizes × repeated fraction × repeated epochs × seeds, with controls",
            default="cpu-quick",
        ),
        Entry(
            "double-descent",
            "double_descent",
            "DoubleDescentSpec",
            "GRIDS",
            "width × label noise × seeds, sample sizes and optimizer factors (Liu & Flanigan)",
            default="cpu-quick",
        ),
    )
}

#: The experiments module that implements each multi-run experiment.
STUDY_MODULES = {
    "tickets": "ticket_suite",
    "ticket-regimes": "ticket_regimes",
    "ticket-curve": "ticket_curve",
    "repeated-data": "repeated_grid",
    "double-descent": "double_descent_grid",
}


def canonical(name: str) -> str:
    """The one spelling of a run experiment's name (old aliases resolved)."""
    if name in RUNS:
        return name
    for entry in RUNS.values():
        if name in entry.aliases:
            return entry.name
    raise ConfigError(f"unknown experiment {name!r}; known: {sorted(RUNS)}")


def run_entry(name: str) -> Entry:
    """The catalog entry of run experiment ``name`` (or an old alias of it)."""
    return RUNS[canonical(name)]


def study_entry(name: str) -> Entry:
    """The catalog entry of multi-run experiment ``name``."""
    if name not in STUDIES:
        raise ConfigError(f"unknown multi-run experiment {name!r}; known: {sorted(STUDIES)}")
    return STUDIES[name]


def config_class(name: str) -> type[Any]:
    """The config class of run experiment ``name`` (torch-free)."""
    return run_entry(name).config_class()


__all__ = [
    "RUNS",
    "STUDIES",
    "STUDY_MODULES",
    "Entry",
    "canonical",
    "config_class",
    "run_entry",
    "study_entry",
]
