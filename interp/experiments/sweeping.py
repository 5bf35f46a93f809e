"""Sweep a run with its experiment's analyzers, chosen by name, optionally over
several worker processes (what ``interp sweep`` runs)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from interp.analysis.sweep import CacheMode, sweep
from interp.config.core import ConfigError
from interp.experiments.registry import experiment
from interp.training.rundir import Run, open_run


def run_analyzers(run: Run, names: Sequence[str] | None = None) -> list[Any]:
    """The analyzers called ``names`` as they apply to ``run`` (e.g. with its
    probe range), or the run experiment's defaults."""
    exp = experiment(run.experiment)
    fns = [exp.analyzer(run, n) for n in names] if names else exp.analyzers(run)
    if not fns:
        raise ConfigError(f"{run.experiment} runs have no default analyzers; name some")
    return fns


def _chunk(path: str, names: Sequence[str] | None, steps: Sequence[int], cache: CacheMode) -> int:
    """Worker: fill the cache of ``steps`` (one torch thread)."""
    import torch

    torch.set_num_threads(1)
    run = open_run(path)
    sweep(run, run_analyzers(run, names), steps, cache=cache)
    return len(steps)


def sweep_run(
    run: Run | str | Path,
    names: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    *,
    jobs: int = 1,
    refresh: bool = False,
    device: str = "cpu",
) -> Any:
    """``sweep`` of ``run`` with analyzers chosen by name (default: the
    experiment's). With ``jobs > 1`` the checkpoints are split over that many
    worker processes of one torch thread each, which fill the cache; the
    table is then read from it. ``refresh`` recomputes every result."""
    run = run if isinstance(run, Run) else open_run(run)
    fns = run_analyzers(run, names)
    wanted = list(steps) if steps else run.steps
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1, got {jobs!r}")
    cache: CacheMode = "refresh" if refresh else True
    if jobs > 1 and len(wanted) > 1:
        chunks = [wanted[i::jobs] for i in range(jobs) if wanted[i::jobs]]
        with ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("spawn")) as pool:
            for fut in [pool.submit(_chunk, str(run.path), names, c, cache) for c in chunks]:
                fut.result()
        cache = True
    return sweep(run, fns, wanted, cache=cache, device=device)


__all__ = ["run_analyzers", "sweep_run"]
