"""Sweep a run, or a checkpoint series we did not train, with analyzers chosen
by name, optionally over several worker processes (what ``interp sweep``
runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.analysis.sweep import CacheMode, sweep
from interp.config.core import ConfigError
from interp.experiments.registry import experiment
from interp.training.rundir import Run


def open_source(what: str | Path | Any, steps: Sequence[int] | None = None) -> Any:
    """A run directory, ``save_pretrained`` directories or ``hf:OWNER/NAME``
    (with ``steps``: its revisions) as a checkpoint source."""
    from interp.sources import open_checkpoints

    if not isinstance(what, (str, Path)):
        return what
    if isinstance(what, str) and what.startswith("hf:"):
        return open_checkpoints(what, steps)
    return open_checkpoints(Path(what))


def run_analyzers(source: Any, names: Sequence[str] | None = None) -> list[Any]:
    """The analyzers called ``names`` as they apply to ``source`` (with its
    probes), or its defaults: the experiment's for a run of ours, every head
    analyzer and the text probes for a model we did not train."""
    if not isinstance(source, Run):
        from interp.experiments.external import default_analyzers

        return default_analyzers(source, names)
    exp = experiment(source.experiment)
    fns = [exp.analyzer(source, n) for n in names] if names else exp.analyzers(source)
    if not fns:
        raise ConfigError(f"{source.experiment} runs have no default analyzers; name some")
    return fns


def _chunk(what: str, names: Sequence[str] | None, steps: Sequence[int], cache: CacheMode) -> int:
    """Worker: fill the cache of ``steps`` (one torch thread)."""
    import torch

    torch.set_num_threads(1)
    source = open_source(what, steps)
    sweep(source, run_analyzers(source, names), steps, cache=cache, progress=False)
    return len(steps)


def sweep_run(
    what: str | Path | Any,
    names: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    *,
    jobs: int = 1,
    backend: str | None = None,
    refresh: bool = False,
    device: str = "auto",
) -> Any:
    """``sweep`` of a source with analyzers chosen by name (default: its own).
    With ``jobs > 1`` (or ``backend`` "processes" / "ray") the checkpoints are
    split into ``jobs`` parts that the multi-run runner's backend computes in
    parallel, one torch thread each, filling the cache; the table is then
    read from it. ``refresh`` recomputes every result."""
    from interp.experiments.runner import make_backend

    source = open_source(what, steps)
    fns = run_analyzers(source, names)
    wanted = list(steps) if steps else source.steps
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1, got {jobs!r}")
    cache: CacheMode = "refresh" if refresh else True
    parallel = (jobs > 1 or backend not in (None, "local")) and len(wanted) > 1
    if parallel and not isinstance(what, (str, Path)):
        raise ConfigError("a parallel sweep needs a run directory or hf: name, not an object")
    if parallel:
        chunks = [wanted[i::jobs] for i in range(jobs) if wanted[i::jobs]]
        runner = make_backend(backend or "processes", jobs, None)
        try:
            for i, chunk in enumerate(chunks):
                runner.call(f"part{i}", _chunk, str(what), names, chunk, cache)
            for _ in chunks:
                runner.next_done()
        finally:
            runner.close()
        cache = True
    return sweep(source, fns, wanted, cache=cache, device=device)


__all__ = ["open_source", "run_analyzers", "sweep_run"]
