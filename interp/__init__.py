"""memgen-interp: train small models through memorization → generalization and
look inside them across checkpoints.

``import interp`` is cheap: the names below are imported on first use
(PEP 562), so neither torch nor TransformerLens loads until a model does.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["Run", "__version__", "open_checkpoints", "open_run"]


def __getattr__(name: str) -> Any:
    if name in ("Run", "open_run"):
        from interp.training import rundir

        return getattr(rundir, name)
    if name == "open_checkpoints":
        from interp.sources import open_checkpoints

        return open_checkpoints
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
