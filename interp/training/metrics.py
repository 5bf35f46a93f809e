"""Reading the metric rows a run logs (``metrics.jsonl``): when a metric first
crosses a bar, and the values at the last evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def first_step_at_or_above(
    rows: list[Mapping[str, Any]], split: str, metric: str, threshold: float
) -> int | None:
    """First evaluated step where ``split/metric`` ≥ threshold (None if never)."""
    steps = sorted(
        r["step"]
        for r in rows
        if r["split"] == split
        and r["metric"] == metric
        and r["value"] is not None  # a non-finite value, logged as null
        and r["value"] >= threshold
    )
    return steps[0] if steps else None


def final_metrics(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``final_step`` and every metric at it as ``final_<split>_<metric>``."""
    last = max((r["step"] for r in rows), default=None)
    final = {f"final_{r['split']}_{r['metric']}": r["value"] for r in rows if r["step"] == last}
    return {"final_step": last, **final}


def metric_at_steps(rows: list[Mapping[str, Any]], split: str, metric: str) -> dict[int, float]:
    """{step: value} of one metric."""
    return {r["step"]: r["value"] for r in rows if r["split"] == split and r["metric"] == metric}


__all__ = ["final_metrics", "first_step_at_or_above", "metric_at_steps"]
