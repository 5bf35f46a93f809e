"""Run analyzers over a run's checkpoints into one tidy DataFrame.

An *analyzer* is a plain function of a model. It may also take the run (a
keyword parameter named ``run``) when it needs the run's data or config. It
returns either

* a ``dict`` of scalars → rows ``(step, metric, value)``;
* a ``[layer, head]`` tensor → rows ``(step, layer, head, metric=<name>, value)``;
* a ``dict`` of ``[layer, head]`` tensors → the same, one metric per key;
* a ``[source_layer, source_head, layer, head]`` tensor (composition scores) →
  one row per later head (layer, head) and earlier head (source_layer,
  source_head), metric = its key (``q_composition`` …);
* a 1-D tensor → one row per item (``item``: a sequence or an example, e.g.
  :func:`~interp.analysis.memorization.extractable`).

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
import gc
import hashlib
import inspect
import json
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tqdm.auto import tqdm

from interp.analysis.fingerprint import Unstable, fingerprint
from interp.config.core import InputError
from interp.training.device import resolve_device
from interp.training.files import CorruptCheckpointError, atomic_write_json, cache_dir, writable
from interp.training.rundir import Run

if TYPE_CHECKING:
    import pandas as pd
    import torch

COLUMNS = ["step", "layer", "head", "source_layer", "source_head", "item", "metric", "value"]
Analyzer = Callable[..., Any]
CacheMode = bool | Literal["refresh", "only"]


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
        "item": where.get("item"),
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
        elif t.ndim == 1:  # one value per item (sequence, example)
            rows.extend(_row(step, metric, float(v), item=i) for i, v in enumerate(t.tolist()))
        else:
            raise InputError(
                f"analyzer {name!r} returned a tensor of shape {tuple(t.shape)} for {metric!r}; "
                "expected a scalar, [item], [layer, head] or [source_layer, source_head, layer, "
                "head]"
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


def cache_key(fn: Analyzer, run: Any) -> str | None:
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


def cache_roots(source: Any) -> list[Path]:
    """Where a source's analysis cache is written (first) and also read: a run
    directory of ours writes ``RUN_DIR/analysis``, or, when this user cannot
    write it (read-only, shared), a folder of the user's cache directory keyed
    by the run's path; an external source writes its own folder there
    (``source.cache_dir``)."""
    if not isinstance(source, Run):
        return [source.cache_dir]
    own = source.path / "analysis"
    digest = hashlib.sha256(str(source.path.resolve()).encode()).hexdigest()[:16]
    user = cache_dir() / "analysis" / f"{source.path.name}-{digest}"
    return [own, user] if writable(own) else [user, own]


def _cache_path(root: Path, name: str, step: int, key: str, sha: str) -> Path:
    digest = hashlib.sha256(f"{name}|{key}|{sha}".encode()).hexdigest()[:24]
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


def _is_pair(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], int)


def sweep(
    source: Any,
    analyzers: Sequence[Analyzer],
    steps: Iterable[int] | None = None,
    *,
    cache: CacheMode = True,
    device: str | torch.device = "auto",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Apply ``analyzers`` to every checkpoint (or ``steps``) of ``source``.

    ``source`` is anything :func:`interp.open_checkpoints` opens: a run
    directory (or :class:`~interp.training.rundir.Run`), ``save_pretrained``
    directories, a hub name with steps, a model, ``(step, model or loader)``
    pairs, or a list of several of these (the table then has a ``run``
    column naming each).

    Returns a DataFrame with columns step, layer, head, source_layer,
    source_head, item, metric, value (the head and item columns are null
    where they do not apply). Each checkpoint is loaded at most once, and not
    at all when every analyzer's result is cached, and dropped before the
    next is loaded. ``cache=False`` neither reads nor writes the cache;
    ``cache="refresh"`` recomputes and rewrites it; ``cache="only"`` returns
    what the cache holds and computes nothing (a report showing an expensive
    analyzer's results where a sweep left them). ``device="auto"`` uses a
    GPU when there is one; ``progress`` shows checkpoint i of n (default: when
    there is more than one).
    """
    import pandas as pd

    from interp.sources import open_checkpoints

    if not analyzers:
        raise InputError("sweep needs at least one analyzer")
    if cache not in (True, False, "refresh", "only"):
        raise InputError(f"cache must be True, False, 'refresh' or 'only', got {cache!r}")
    many = isinstance(source, (list, tuple)) and source and not _is_pair(source[0])
    if many:
        frames, seen = [], set()
        for item in source:
            src = open_checkpoints(item)
            name = src.name if src.name not in seen else f"{src.name}#{len(seen)}"
            seen.add(name)
            frames.append(
                sweep(src, analyzers, steps, cache=cache, device=device, progress=progress).assign(
                    run=name
                )
            )
        df = pd.concat(frames, ignore_index=True)
        df.attrs["corrupt_steps"] = {
            f["run"].iloc[0]: f.attrs.get("corrupt_steps", []) for f in frames if len(f)
        }
        return df[["run", *COLUMNS]]
    src = source if isinstance(source, Run) else open_checkpoints(source)
    available = src.steps
    if not available:
        raise InputError(f"{src.name} has no checkpoints to analyse")
    wanted = available if steps is None else sorted(set(steps))
    missing = [s for s in wanted if s not in available]
    if missing:
        raise InputError(
            f"steps {missing} have no checkpoint in {src.name}; available: {available}"
        )
    names = [analyzer_name(fn) for fn in analyzers]
    keys = [cache_key(fn, src) if cache else None for fn in analyzers]
    roots = cache_roots(src)
    dev = resolve_device(device)
    rows: list[dict[str, Any]] = []
    corrupt: list[int] = []
    show = len(wanted) > 1 if progress is None else progress
    for step in tqdm(wanted, desc=f"sweep {src.name}", disable=not show, leave=False):
        try:
            new = _step_rows(src, step, analyzers, names, keys, cache, roots, dev)
        except CorruptCheckpointError as exc:
            warnings.warn(f"sweep skips step {step}: {exc}", stacklevel=2)
            corrupt.append(step)
            continue
        rows.extend(new)
    rows.extend(_gap_rows(rows, corrupt))
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("step", kind="stable")
    for col in ("layer", "head", "source_layer", "source_head", "item"):
        df[col] = df[col].astype("Int64")
    df = df.reset_index(drop=True)
    df.attrs["corrupt_steps"] = corrupt
    return df


def _step_rows(
    src: Any,
    step: int,
    analyzers: Sequence[Analyzer],
    names: Sequence[str],
    keys: Sequence[str | None],
    cache: CacheMode,
    roots: Sequence[Path],
    device: torch.device,
) -> list[dict[str, Any]]:
    """Every analyzer's rows at one checkpoint, from the cache or computed
    (the checkpoint is loaded once, and only when something is computed)."""
    rows: list[dict[str, Any]] = []
    model = None
    memo: dict[Any, Any] = {}  # shared forward passes of this checkpoint
    sha = src.sha(step) if any(k is not None for k in keys) else None
    for fn, name, key in zip(analyzers, names, keys, strict=True):
        paths = [_cache_path(r, name, step, key, sha) for r in roots] if key and sha else []
        if paths and cache in (True, "only"):
            cached = next((c for p in paths if (c := _read_cached(p)) is not None), None)
            if cached is not None:
                rows.extend(cached)
                continue
        if cache == "only":
            continue
        if model is None:
            model = src.load(step, device=device)
        kwargs: dict[str, Any] = {}
        if _accepts(fn, "run"):
            kwargs["run"] = src
        if _accepts(fn, "memo"):
            kwargs["memo"] = memo
        new = to_rows(step, name, fn(model, **kwargs))
        if paths:
            atomic_write_json(paths[0], new)
        rows.extend(new)
    if model is not None and not isinstance(src, Run):
        del model, memo  # one model in memory at a time
        gc.collect()
    return rows


def _gap_rows(rows: Sequence[dict[str, Any]], corrupt: Sequence[int]) -> list[dict[str, Any]]:
    """For each skipped (corrupt) checkpoint, a row with value NaN for every
    metric (and head, item) the other checkpoints have: the gap shows in the
    table, and lines in figures break there."""
    where = sorted({tuple(r.get(c) for c in _WHERE) for r in rows}, key=str)
    return [
        {"step": s, **dict(zip(_WHERE, w, strict=True)), "value": math.nan}
        for s in corrupt
        for w in where
    ]


_WHERE = ("layer", "head", "source_layer", "source_head", "item", "metric")
