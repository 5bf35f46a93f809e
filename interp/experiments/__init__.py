"""Experiments: presets and entry points that train runs into run directories."""

from interp.experiments import grokking

__all__ = ["grokking"]
