"""Which steps get a checkpoint: 0, log-spaced early, then every ``every`` steps.

Dense early checkpoints catch the fast memorisation phase; the linear tail
covers the slow generalisation phase. Pythia uses the same shape.
"""

from __future__ import annotations

from interp.config.core import InputError


def checkpoint_steps(total: int, every: int, log_early: bool = True) -> list[int]:
    """Sorted checkpoint steps in ``[0, total]``: 0, powers of two below ``every``
    (when ``log_early``), every multiple of ``every``, and ``total`` itself."""
    if total < 0:
        raise InputError(f"total steps must be >= 0, got {total}")
    if every < 1:
        raise InputError(f"checkpoint interval must be >= 1, got {every}")
    steps = {0, total}
    if log_early:
        k = 1
        while k < min(every, total):
            steps.add(k)
            k *= 2
    steps.update(range(every, total + 1, every))
    return sorted(steps)


def eval_steps(total: int, every: int, extra: list[int] | None = None) -> list[int]:
    """Evaluation steps: 0, each multiple of ``every``, ``total`` and any ``extra`` steps."""
    if every < 1:
        raise InputError(f"eval interval must be >= 1, got {every}")
    steps = {0, total, *range(every, total + 1, every)}
    if extra:
        steps.update(s for s in extra if 0 <= s <= total)
    return sorted(steps)
