"""The training engine and the run directory it writes.

Names are imported lazily (PEP 562), so ``from interp.training import
open_run`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ClassificationTask": "tasks",
    "GeneratedLMTask": "tasks",
    "SequenceLMTask": "tasks",
    "Task": "tasks",
    "CorruptCheckpointError": "files",
    "RunError": "files",
    "Run": "rundir",
    "RunStore": "rundir",
    "open_run": "rundir",
    "GrokfastFilter": "grokfast",
    "checkpoint_steps": "schedule",
    "eval_steps": "schedule",
    "configure_threads": "device",
    "resolve_device": "device",
    "TrainResult": "trainer",
    "train": "trainer",
    "final_metrics": "metrics",
    "first_step_at_or_above": "metrics",
}
_CONFIG = {"TrainConfig": "interp.config.train", "GrokfastConfig": "interp.config.train"}

__all__ = sorted([*_NAMES, *_CONFIG])


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"interp.training.{_NAMES[name]}"), name)
    if name in _CONFIG:
        return getattr(importlib.import_module(_CONFIG[name]), name)
    raise AttributeError(f"module 'interp.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
