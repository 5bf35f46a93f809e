"""Run analyzers over a run's checkpoints into one tidy DataFrame.

An *analyzer* is a plain function of a model. It may also take the run (a
keyword parameter named ``run``) when it needs the run's data or config. It
returns either

* a ``dict`` of scalars → rows ``(step, metric, value)``;
* a ``[layer, head]`` tensor → rows ``(step, layer, head, metric=<name>, value)``;
* a ``dict`` of ``[layer, head]`` tensors → the same, one metric per key;
* a ``[source_layer, source_head, layer, head]`` tensor (composition scores) →
  one row per later head (layer, head) and earlier head (source_layer,
  source_head), metric = its key (``q_composition`` …).

Analyzers that accept a ``memo`` keyword get a dict shared by all analyzers of
one checkpoint, so those probing the same tokens share one forward pass.

:func:`sweep` loads each checkpoint at most once and runs every analyzer on
it. It caches each (analyzer, checkpoint) result as JSON under
``RUN_DIR/analysis/``, keyed by the analyzer's fingerprint
(:mod:`interp.analysis.fingerprint`: its code, the code it calls, its
arguments), the checkpoint's sha256 and the analyzer's ``cache_token(run)`` if
it defines one (e.g. the key frequencies it used). Analyzers without a stable
fingerprint (lambdas) are computed every time, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from interp.analysis.fingerprint import Unstable, fingerprint
from interp.config.core import InputError
from interp.training.files import CorruptCheckpointError, atomic_write_json, cache_dir, writable
from interp.training.rundir import Run, open_run

if TYPE_CHECKING:
    import pandas as pd
    import torch

COLUMNS = ["step", "layer", "head", "source_layer", "source_head", "metric", "value"]
Analyzer = Callable[..., Any]
CacheMode = bool | Literal["refresh"]


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


def _row(step: int, metric: str, value: float, **where: int | None) -> dict[str, Any]:
    return {
        "step": step,
        "layer": where.get("layer"),
        "head": where.get("head"),
        "source_layer": where.get("source_layer"),
        "source_head": where.get("source_head"),
        "metric": metric,
        "value": value,
    }


def to_rows(step: int, name: str, result: Any) -> list[dict[str, Any]]:
    """Flatten one analyzer result into tidy rows."""
    import torch

    rows: list[dict[str, Any]] = []

    def add_tensor(metric: str, t: torch.Tensor) -> None:
        t = t.detach().to("cpu", torch.float64)
        if t.ndim == 0:
            rows.append(_row(step, metric, float(t)))
        elif t.ndim == 4:  # [source layer, source head, layer, head]
            for l1, h1, l2, h2 in torch.nonzero(torch.ones_like(t, dtype=torch.bool)).tolist():
                if l2 > l1:
                    rows.append(
                        _row(
                            step,
                            metric,
                            float(t[l1, h1, l2, h2]),
                            layer=l2,
                            head=h2,
                            source_layer=l1,
                            source_head=h1,
                        )
                    )
        elif t.ndim == 2:
            for layer in range(t.shape[0]):
                for head in range(t.shape[1]):
                    rows.append(_row(step, metric, float(t[layer, head]), layer=layer, head=head))
        else:
            raise InputError(
                f"analyzer {name!r} returned a tensor of shape {tuple(t.shape)} for {metric!r}; "
                "expected a scalar, [layer, head] or [source_layer, source_head, layer, head]"
            )

    if isinstance(result, torch.Tensor):
        add_tensor(name, result)
    elif isinstance(result, dict):
        for metric, value in result.items():
            if isinstance(value, torch.Tensor):
                add_tensor(metric, value)
            else:
                rows.append(_row(step, metric, float(value)))
    else:
        raise TypeError(
            f"analyzer {name!r} returned {type(result).__name__}; expected dict or Tensor"
        )
    return rows


def cache_key(fn: Analyzer, run: Run) -> str | None:
    """The analyzer's part of its cache key (fingerprint and ``cache_token``),
    or None when it has no stable fingerprint."""
    try:
        key = fingerprint(fn)
    except Unstable as exc:
        warnings.warn(
            f"analyzer {analyzer_name(fn)} is computed but not cached: {exc}", stacklevel=3
        )
        return None
    token = str(fn.cache_token(run)) if hasattr(fn, "cache_token") else ""
    return f"{key}|{token}"


def cache_roots(run: Run) -> list[Path]:
    """Where ``run``'s analysis cache lives: ``RUN_DIR/analysis``, and, for a
    run directory this user cannot write (read-only, shared), a folder of the
    user's cache directory keyed by the run's path, written instead."""
    own = run.path / "analysis"
    digest = hashlib.sha256(str(run.path.resolve()).encode()).hexdigest()[:16]
    user = cache_dir() / "analysis" / f"{run.path.name}-{digest}"
    return [own, user] if writable(own) else [user, own]


def _cache_path(root: Path, run: Run, name: str, step: int, key: str) -> Path:
    digest = hashlib.sha256(f"{name}|{key}|{run.sha(step)}".encode()).hexdigest()[:24]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    return root / safe / f"step_{step:08d}_{digest}.json"


def _read_cached(path: Path) -> list[dict[str, Any]] | None:
    try:
        rows = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return rows


def sweep(
    run: Run | str | Path,
    analyzers: Sequence[Analyzer],
    steps: Iterable[int] | None = None,
    *,
    cache: CacheMode = True,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Apply ``analyzers`` to every checkpoint (or ``steps``) of ``run``.

    Returns a DataFrame with columns step, layer, head, source_layer,
    source_head, metric, value (the head columns are missing where they do
    not apply). Each checkpoint is loaded at most once per call, and not at
    all when every analyzer's result is cached. ``cache=False`` neither reads
    nor writes the cache; ``cache="refresh"`` recomputes and rewrites it.
    """
    import pandas as pd

    run = run if isinstance(run, Run) else open_run(run)
    if not analyzers:
        raise InputError("sweep needs at least one analyzer")
    if cache not in (True, False, "refresh"):
        raise InputError(f"cache must be True, False or 'refresh', got {cache!r}")
    available = run.steps
    if not available:
        raise InputError(f"{run.path} has no checkpoints to analyse")
    wanted = available if steps is None else sorted(set(steps))
    missing = [s for s in wanted if s not in available]
    if missing:
        raise InputError(
            f"steps {missing} have no checkpoint in {run.path}; available: {available}"
        )
    names = [analyzer_name(fn) for fn in analyzers]
    keys = [cache_key(fn, run) if cache else None for fn in analyzers]
    write_root, *read_roots = cache_roots(run)
    rows: list[dict[str, Any]] = []
    corrupt: list[int] = []
    for step in wanted:
        try:
            new = _step_rows(
                run, step, analyzers, names, keys, cache, write_root, read_roots, device
            )
        except CorruptCheckpointError as exc:
            warnings.warn(f"sweep skips step {step}: {exc}", stacklevel=2)
            corrupt.append(step)
            continue
        rows.extend(new)
    rows.extend(_gap_rows(rows, corrupt))
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("step", kind="stable")
    for col in ("layer", "head", "source_layer", "source_head"):
        df[col] = df[col].astype("Int64")
    df = df.reset_index(drop=True)
    df.attrs["corrupt_steps"] = corrupt
    return df


def _step_rows(
    run: Run,
    step: int,
    analyzers: Sequence[Analyzer],
    names: Sequence[str],
    keys: Sequence[str | None],
    cache: CacheMode,
    write_root: Path,
    read_roots: Sequence[Path],
    device: str | torch.device,
) -> list[dict[str, Any]]:
    """Every analyzer's rows at one checkpoint, from the cache or computed
    (the checkpoint is loaded once, and only when something is computed)."""
    rows: list[dict[str, Any]] = []
    model = None
    memo: dict[Any, Any] = {}  # shared forward passes of this checkpoint
    for fn, name, key in zip(analyzers, names, keys, strict=True):
        path = _cache_path(write_root, run, name, step, key) if key is not None else None
        if path is not None and cache is True:
            cached = next(
                (
                    c
                    for root in (write_root, *read_roots)
                    if (c := _read_cached(_cache_path(root, run, name, step, key))) is not None
                ),
                None,
            )
            if cached is not None:
                rows.extend(cached)
                continue
        if model is None:
            model = run.load(step, device=device)
        kwargs: dict[str, Any] = {}
        if _accepts(fn, "run"):
            kwargs["run"] = run
        if _accepts(fn, "memo"):
            kwargs["memo"] = memo
        new = to_rows(step, name, fn(model, **kwargs))
        if path is not None:
            atomic_write_json(path, new)
        rows.extend(new)
    return rows


def _gap_rows(rows: Sequence[dict[str, Any]], corrupt: Sequence[int]) -> list[dict[str, Any]]:
    """For each skipped (corrupt) checkpoint, a row with value NaN for every
    metric (and head) the other checkpoints have: the gap shows in the table,
    and lines in figures break there."""
    where = {
        (r["metric"], r["layer"], r["head"], r["source_layer"], r["source_head"]) for r in rows
    }
    return [
        {
            "step": s,
            "metric": m,
            "layer": la,
            "head": h,
            "source_layer": sl,
            "source_head": sh,
            "value": math.nan,
        }
        for s in corrupt
        for (m, la, h, sl, sh) in sorted(where, key=str)
    ]


__all__ = ["COLUMNS", "Analyzer", "analyzer_name", "cache_key", "sweep", "to_rows"]
