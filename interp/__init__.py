"""memgen-interp: train small models through memorization → generalization and
look inside them across checkpoints."""

__version__ = "0.1.0"

from interp.training.store import Run, open_run

__all__ = ["Run", "__version__", "open_run"]
