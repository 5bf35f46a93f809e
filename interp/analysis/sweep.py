"""Run analyzers over a run's checkpoints into one tidy DataFrame.

An *analyzer* is a plain function of a model. It may also take the run (a
keyword parameter named ``run``) when it needs the run's data or config. It
returns either

* a ``dict`` of scalars → rows ``(step, metric, value)``;
* a ``[layer, head]`` tensor → rows ``(step, layer, head, metric=<name>, value)``;
* a ``dict`` of ``[layer, head]`` tensors → the same, one metric per key;
* a ``[layer1, head1, layer2, head2]`` tensor (composition scores) → one row per
  later head (layer2, head2) and metric ``<name>_from_L{layer1}H{head1}``.

Analyzers that accept a ``memo`` keyword get a dict shared by all analyzers of
one checkpoint, so those probing the same tokens share one forward pass.

:func:`sweep` loads each checkpoint once, runs every analyzer on it and caches
each (analyzer, checkpoint) result as JSON under ``RUN_DIR/analysis/``, keyed
by the analyzer's name, the checkpoint's sha256 and the analyzer's
``cache_token(run)`` if it defines one (e.g. the key frequencies it used), so a
second call reads JSON instead of recomputing.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from interp.training.store import Run, atomic_write_json, open_run

COLUMNS = ["step", "layer", "head", "metric", "value"]
Analyzer = Callable[..., Any]


def analyzer_name(fn: Analyzer) -> str:
    """Stable name of an analyzer: function name plus any ``partial`` arguments."""
    if isinstance(fn, functools.partial):
        args = ",".join(
            [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in sorted(fn.keywords.items())]
        )
        return f"{analyzer_name(fn.func)}({args})"
    return getattr(fn, "analyzer_name", None) or getattr(fn, "__name__", type(fn).__name__)


def _accepts(fn: Analyzer, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def to_rows(step: int, name: str, result: Any) -> list[dict[str, Any]]:
    """Flatten one analyzer result into tidy rows."""
    rows: list[dict[str, Any]] = []

    def add_tensor(metric: str, t: torch.Tensor) -> None:
        t = t.detach().to("cpu", torch.float64)
        if t.ndim == 0:
            rows.append(
                {"step": step, "layer": None, "head": None, "metric": metric, "value": float(t)}
            )
        elif t.ndim == 4:  # [layer1, head1, layer2, head2]: source in the metric name
            for l1, h1, l2, h2 in torch.nonzero(torch.ones_like(t, dtype=torch.bool)).tolist():
                if l2 > l1:
                    rows.append(
                        {
                            "step": step,
                            "layer": l2,
                            "head": h2,
                            "metric": f"{metric}_from_L{l1}H{h1}",
                            "value": float(t[l1, h1, l2, h2]),
                        }
                    )
        elif t.ndim == 2:
            for layer in range(t.shape[0]):
                for head in range(t.shape[1]):
                    rows.append(
                        {
                            "step": step,
                            "layer": layer,
                            "head": head,
                            "metric": metric,
                            "value": float(t[layer, head]),
                        }
                    )
        else:
            raise ValueError(
                f"analyzer {name!r} returned a tensor of shape {tuple(t.shape)} for {metric!r}; "
                "expected a scalar, [layer, head] or [layer1, head1, layer2, head2]"
            )

    if isinstance(result, torch.Tensor):
        add_tensor(name, result)
    elif isinstance(result, dict):
        for metric, value in result.items():
            if isinstance(value, torch.Tensor):
                add_tensor(metric, value)
            else:
                rows.append(
                    {
                        "step": step,
                        "layer": None,
                        "head": None,
                        "metric": metric,
                        "value": float(value),
                    }
                )
    else:
        raise TypeError(
            f"analyzer {name!r} returned {type(result).__name__}; expected dict or Tensor"
        )
    return rows


def _cache_path(run: Run, name: str, step: int, token: str) -> Path:
    key = hashlib.sha256(f"{name}|{run.sha(step)}|{token}".encode()).hexdigest()[:24]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    return run.path / "analysis" / safe / f"step_{step:08d}_{key}.json"


def sweep(
    run: Run | str | Path,
    analyzers: Sequence[Analyzer],
    steps: Iterable[int] | None = None,
    *,
    cache: bool = True,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Apply ``analyzers`` to every checkpoint (or ``steps``) of ``run``.

    Returns a DataFrame with columns step, layer, head, metric, value (layer and
    head are missing for scalar metrics). Each checkpoint is loaded at most once
    per call, and not at all when every analyzer's result is cached.
    """
    run = run if isinstance(run, Run) else open_run(run)
    if not analyzers:
        raise ValueError("sweep needs at least one analyzer")
    available = run.steps
    if not available:
        raise ValueError(f"{run.path} has no checkpoints to analyse")
    wanted = available if steps is None else sorted(set(steps))
    missing = [s for s in wanted if s not in available]
    if missing:
        raise ValueError(
            f"steps {missing} have no checkpoint in {run.path}; available: {available}"
        )

    names = [analyzer_name(fn) for fn in analyzers]
    tokens = [str(fn.cache_token(run)) if hasattr(fn, "cache_token") else "" for fn in analyzers]
    rows: list[dict[str, Any]] = []
    for step in wanted:
        model = None
        memo: dict[Any, Any] = {}  # shared forward passes of this checkpoint
        for fn, name, token in zip(analyzers, names, tokens, strict=True):
            path = _cache_path(run, name, step, token)
            if cache and path.exists():
                try:
                    rows.extend(json.loads(path.read_text()))
                    continue
                except json.JSONDecodeError:
                    path.unlink(missing_ok=True)
            if model is None:
                model = run.load(step, device=device)
            kwargs: dict[str, Any] = {}
            if _accepts(fn, "run"):
                kwargs["run"] = run
            if _accepts(fn, "memo"):
                kwargs["memo"] = memo
            result = fn(model, **kwargs)
            new = to_rows(step, name, result)
            if cache:
                atomic_write_json(path, new)
            rows.extend(new)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["layer"] = df["layer"].astype("Int64")
    df["head"] = df["head"].astype("Int64")
    return df
