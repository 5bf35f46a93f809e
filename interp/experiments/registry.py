"""Experiment name → config class, so a run directory can be reopened typed."""

from __future__ import annotations

from typing import Any


def config_class(experiment: str) -> type[Any]:
    """The config dataclass of a registered experiment."""
    if experiment == "grokking":
        from interp.experiments.grokking import GrokkingConfig

        return GrokkingConfig
    raise KeyError(f"unknown experiment {experiment!r} in config.json")
