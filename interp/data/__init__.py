"""Datasets: modular arithmetic tables, token sequences and probes, the shipped
text corpus and the repeated-data mixer. Names are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "interp.config.data": ("OPERATIONS", "ModularConfig", "is_prime"),
    "interp.data.modular": ("ModularData", "all_pairs", "apply_op", "make_modular"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE)


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        return getattr(importlib.import_module(_MODULE[name]), name)
    raise AttributeError(f"module 'interp.data' has no attribute {name!r}")
