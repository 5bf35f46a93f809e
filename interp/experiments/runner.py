"""The one multi-run runner: every command that trains many runs goes through
:func:`run_study`.

A multi-run experiment is a :class:`Study`: a spec (a config class with
presets, in ``interp.config``), the :class:`Job` list the spec asks for, and
how the finished runs become a results table, checks and a report. The runner
does the rest, the same way for every study:

* **spec compatibility** — ``OUT/spec.json`` records the spec of the launch
  that made ``OUT``; a relaunch may differ only in the fields the study marks
  as selecting runs (seeds, sizes, controls …). Any other difference is an
  error naming the fields.
* **jobs** are typed: a run experiment's name and its config (built with
  ``dataclasses.replace``, never from override strings), or, for a job that
  depends on others (a ticket on its dense run), a ``configure`` function the
  runner calls with their results once they have finished.
* **finished runs are skipped**: a run is finished when its ``DONE`` marker
  exists (written last, after every measurement of the run). A relaunch
  resumes a half-finished run from its last checkpoint. Run directories of
  version 0.1.0, which had no ``DONE``, are finished again in place (nothing
  is retrained).
* **backends**: ``local`` (in this process, one after another), ``processes``
  (``jobs`` worker processes with one torch thread each; they die with their
  parent), ``ray`` (tasks of one CPU on the Ray cluster at ``$RAY_ADDRESS``,
  or on a local Ray started for this launch). Run directories must then be on
  a filesystem every node sees. ``ensemble``: jobs of one experiment whose
  configs can share a stack (:func:`ensemble_key`) are trained together as
  batched ensembles (:mod:`interp.training.ensemble`) of at most
  :data:`ENSEMBLE_SIZE` members, split over ``jobs`` processes; the rest
  train one at a time. Each member's run directory is an ordinary run.
* **the results table** is assembled in one place (:func:`results_frame`):
  one row per finished job, its tags, its summary and its wall time; the
  study adds its derived columns and checks. ``OUT/results.csv``,
  ``OUT/results.json`` and ``OUT/report.html`` are written every time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from interp.config.catalog import study_entry
from interp.config.core import ConfigError, from_dict, to_dict
from interp.training.files import atomic_write_json, read_json

SPEC_FILE = "spec.json"
BACKENDS = ("local", "processes", "ray", "ensemble")
#: most members one ensemble trains at once
ENSEMBLE_SIZE = 32


# ------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One run of a multi-run experiment.

    ``key`` is unique in a launch and names the run directory (``OUT/key``).
    ``config`` is the run's typed config; a job that needs other jobs'
    results names them in ``after`` and gives ``configure`` instead, which
    the runner calls in this process with {key: :class:`JobResult`} of those
    jobs once they have finished (returning None skips the job). ``tags``
    become columns of the results table."""

    key: str
    experiment: str
    config: Any = None
    after: tuple[str, ...] = ()
    configure: Callable[[Mapping[str, JobResult]], Any] | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    """A finished job: its run directory, final config, summary and how long
    the launch spent on it (``trained`` is False when it was already finished)."""

    key: str
    run_dir: str
    config: Any
    summary: dict[str, Any]
    seconds: float
    trained: bool


def execute(experiment: str, config: Any, run_dir: str, threads: int | None) -> dict[str, Any]:
    """Train (or resume, or finish) one run; skip it when it is finished.
    Runs in whichever process or Ray worker the backend chose."""
    from interp.experiments.registry import experiment as get_experiment
    from interp.training.rundir import RunStore, renamed_summary

    t0 = time.perf_counter()
    store = RunStore(run_dir)
    trained = not store.is_done()
    exp = get_experiment(experiment)
    if trained:
        exp.train(config, run_dir, threads=threads, quiet=True)
    elif problem := exp.reuse_problem(run_dir) or _other_config(store, config):
        raise ConfigError(problem)
    if not store.is_done():
        raise RuntimeError(f"{run_dir} trained but is not marked done")  # a bug, not user input
    return {
        "summary": renamed_summary(read_json(store.summary_path)),
        "seconds": time.perf_counter() - t0,
        "trained": trained,
    }


def _other_config(store: Any, config: Any) -> str | None:
    """A finished run directory whose config is not this job's (read with
    the legacy values of fields added since): what differs, else None."""
    from interp.config.core import with_legacy
    from interp.training.rundir import dict_diff

    cls = type(config)
    stored = store.read_config()["config"]
    try:
        old = to_dict(from_dict(cls, with_legacy(cls, stored)))
    except ConfigError:
        old = stored
    new = to_dict(config.resolve())
    if old == new:
        return None
    return (
        f"{store.path} finished with another config ({dict_diff(old, new)}); "
        "move it away or use another output directory"
    )


# --------------------------------------------------------------- backends
def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task's body: one CPU, one torch thread, then ``fn(*args)``."""
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def _exit_with_parent(parent: int, poll: float = 0.5) -> None:
    """Worker initializer: end the worker as soon as the process that started
    it is gone, so a killed launch does not leave workers holding cores. A run
    cut short this way resumes on relaunch like any killed run."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="interp-parent-watch", daemon=True).start()


class _Backend:
    """Submit runs (or any picklable call), wait for the next one to finish."""

    #: torch threads of a run (None: torch's default; parallel backends: 1)
    threads: int | None = 1

    def submit(self, key: str, experiment: str, config: Any, run_dir: str) -> None:
        self.call(key, execute, experiment, config, run_dir, self.threads)

    def call(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` (a module-level function) as job ``key``."""
        raise NotImplementedError

    def next_done(self) -> tuple[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Local(_Backend):
    def __init__(self, threads: int | None):
        self.threads = threads
        self.queue: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []

    def call(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self.queue.append((key, fn, args))

    def next_done(self) -> tuple[str, Any]:
        key, fn, args = self.queue.pop(0)
        return key, fn(*args)


class _Processes(_Backend):
    def __init__(self, jobs: int):
        self.pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=mp.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        self.pending: dict[Future, str] = {}
        self.done: list[Future] = []

    def call(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self.pending[self.pool.submit(fn, *args)] = key

    def next_done(self) -> tuple[str, Any]:
        if not self.done:
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            self.done = sorted(finished, key=lambda f: self.pending[f])
        fut = self.done.pop(0)
        return self.pending.pop(fut), fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Ray(_Backend):
    def __init__(self, jobs: int):
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--backend ray needs Ray: pip install 'memgen-interp[ray]'") from exc
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a local Ray for this launch, one CPU per parallel run
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
                self.started = True
        self.remote = ray.remote(num_cpus=1)(_call)
        self.pending: dict[Any, str] = {}

    def call(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self.pending[self.remote.remote(fn, *args)] = key

    def next_done(self) -> tuple[str, Any]:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        return self.pending.pop(ready[0]), self.ray.get(ready[0])

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def ensemble_key(experiment: str, config: Any) -> str | None:
    """Jobs with equal keys can be trained as one ensemble: the same
    experiment, the same model architecture (the init scale may differ) and
    train settings beyond the per-member ones
    (:data:`interp.training.ensemble.PER_MEMBER`). None when the run must
    train alone (an experiment with its own training, Grokfast, BatchNorm,
    a normalization the stacked transformer lacks)."""
    import json

    from interp.experiments.base import Experiment
    from interp.experiments.registry import experiment as get_experiment
    from interp.models.functional import STACKABLE_NORMALIZATIONS
    from interp.training.ensemble import stack_key, stack_problem

    exp = get_experiment(experiment)
    if type(exp).train is not Experiment.train or stack_problem(config.train) is not None:
        return None
    model = to_dict(config.model)
    if model.get("normalization") not in STACKABLE_NORMALIZATIONS:
        return None
    model.pop("init_scale", None)
    return json.dumps([experiment, model, stack_key(config.train)], sort_keys=True, default=str)


def execute_ensemble(
    experiment: str, configs: list[Any], run_dirs: list[str], threads: int | None
) -> list[dict[str, Any]]:
    """Train the runs of ``configs`` as one ensemble (finished ones are
    checked and reused as :func:`execute` does); one result per run, each
    charged an equal share of the ensemble's wall time."""
    from interp.experiments.registry import experiment as get_experiment
    from interp.training.rundir import RunStore, renamed_summary

    t0 = time.perf_counter()
    done = {i for i, d in enumerate(run_dirs) if RunStore(d).is_done()}
    out: dict[int, dict[str, Any]] = {
        i: execute(experiment, configs[i], run_dirs[i], threads) for i in sorted(done)
    }
    todo = [i for i in range(len(configs)) if i not in done]
    if todo:
        get_experiment(experiment).train_ensemble(
            [configs[i] for i in todo], [run_dirs[i] for i in todo], threads=threads, quiet=True
        )
        share = (time.perf_counter() - t0) / len(todo)
        for i in todo:
            store = RunStore(run_dirs[i])
            if not store.is_done():
                raise RuntimeError(f"{run_dirs[i]} trained but is not marked done")
            summary = renamed_summary(read_json(store.summary_path))
            out[i] = {"summary": summary, "seconds": share, "trained": True}
    return [out[i] for i in range(len(configs))]


class _Ensembles(_Backend):
    """Queue submitted runs; when the scheduler waits, group the queue into
    ensembles (:func:`ensemble_key`) and hand each to ``inner`` (this
    process, or ``jobs`` worker processes)."""

    def __init__(self, jobs: int, threads: int | None, size: int = ENSEMBLE_SIZE):
        self.jobs, self.size = jobs, size
        self.threads = threads if jobs == 1 else 1
        self.inner: _Backend = _Local(threads) if jobs == 1 else _Processes(jobs)
        self.queue: list[tuple[str, str, Any, str]] = []
        self.groups: dict[str, list[str]] = {}
        self.ready: list[tuple[str, Any]] = []

    def submit(self, key: str, experiment: str, config: Any, run_dir: str) -> None:
        self.queue.append((key, experiment, config, run_dir))

    def call(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self.inner.call(key, fn, *args)

    def _dispatch(self) -> None:
        by_key: dict[str | None, list[tuple[str, str, Any, str]]] = {}
        for job in self.queue:
            group = ensemble_key(job[1], job[2]) if job[2] is not None else None
            by_key.setdefault(group, []).append(job)
        self.queue = []
        for group, jobs in by_key.items():
            if group is None or len(jobs) == 1:
                for key, exp, cfg, run_dir in jobs:
                    self.inner.call(key, execute, exp, cfg, run_dir, self.threads)
                continue
            n = min(self.size, -(-len(jobs) // self.jobs))
            for start in range(0, len(jobs), n):
                part = jobs[start : start + n]
                name = f"ensemble:{part[0][0]}+{len(part) - 1}"
                self.groups[name] = [j[0] for j in part]
                self.inner.call(
                    name, execute_ensemble, part[0][1], [j[2] for j in part],
                    [j[3] for j in part], self.threads,
                )  # fmt: skip

    def next_done(self) -> tuple[str, Any]:
        if not self.ready:
            if self.queue:
                self._dispatch()
            key, raw = self.inner.next_done()
            if key not in self.groups:
                return key, raw
            self.ready = list(zip(self.groups.pop(key), raw, strict=True))
        return self.ready.pop(0)

    def close(self) -> None:
        self.inner.close()


def make_backend(backend: str | None, jobs: int, threads: int | None) -> _Backend:
    """``backend`` None picks ``processes`` for ``jobs > 1``, else ``local``."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1, got {jobs!r}")
    backend = backend or ("processes" if jobs > 1 else "local")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "local":
        if jobs > 1:
            raise ConfigError(
                "--backend local runs one job at a time; use --jobs 1, or "
                "--backend processes / ray for parallel runs"
            )
        return _Local(threads)
    if backend == "processes":
        return _Processes(jobs)
    if backend == "ensemble":
        return _Ensembles(jobs, threads)
    return _Ray(jobs)


# --------------------------------------------------------------- scheduling
def schedule(
    jobs: Sequence[Job],
    out: Path,
    backend: _Backend,
    on_done: Callable[[Job, JobResult], None] = lambda job, res: None,
) -> dict[str, JobResult | None]:
    """Run ``jobs`` respecting ``after``; returns {key: result}, None for a
    job its ``configure`` skipped (or whose dependency was skipped)."""
    by_key = {j.key: j for j in jobs}
    results: dict[str, JobResult | None] = {}
    waiting = list(jobs)
    running: dict[str, tuple[Job, Any]] = {}
    while waiting or running:
        # start (or skip) every job whose dependencies are settled; a skip can
        # settle another job's dependency, so scan again until nothing changes
        ready = [j for j in waiting if all(d in results for d in j.after)]
        while ready:
            for job in ready:
                waiting.remove(job)
                deps = {d: results[d] for d in job.after}
                if any(r is None for r in deps.values()):
                    results[job.key] = None
                    continue
                cfg = job.config if job.configure is None else job.configure(deps)  # type: ignore[arg-type]
                if cfg is None:
                    results[job.key] = None
                    continue
                running[job.key] = (job, cfg)
                backend.submit(job.key, job.experiment, cfg, str(out / job.key))
            ready = [j for j in waiting if all(d in results for d in j.after)]
        if not running:
            if waiting:  # nothing can start: a dependency is missing or circular
                raise RuntimeError(f"jobs {[j.key for j in waiting]} wait for jobs that never run")
            break
        key, raw = backend.next_done()
        job, cfg = running.pop(key)
        res = JobResult(key, str(out / key), cfg, raw["summary"], raw["seconds"], raw["trained"])
        results[key] = res
        on_done(by_key[key], res)
    return results


def check_jobs(jobs: Sequence[Job]) -> None:
    """Every key unique, every dependency a job of the list."""
    keys = [j.key for j in jobs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise RuntimeError(f"duplicate job keys {dup}")
    missing = sorted({d for j in jobs for d in j.after} - set(keys))
    if missing:
        raise RuntimeError(f"jobs depend on unknown jobs {missing}")


# ---------------------------------------------------------------- studies
class Study:
    """A multi-run experiment (see the module docstring). Subclasses set
    ``name`` (its catalog entry), ``selects`` (the spec fields a relaunch may
    change because they only choose which runs to train), ``legacy_spec``
    (spec file names of version 0.1.0, with the defaults of fields they
    lack) and implement :meth:`jobs` and :meth:`tabulate`."""

    name: str = ""
    selects: ClassVar[frozenset[str]] = frozenset()
    legacy_spec: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @property
    def spec_class(self) -> type[Any]:
        return study_entry(self.name).config_class()

    @property
    def presets(self) -> dict[str, Any]:
        return study_entry(self.name).preset_table()

    def preset(self, name: str | None = None) -> Any:
        name = name or study_entry(self.name).default or ""
        if name not in self.presets:
            raise ConfigError(
                f"unknown {self.name} preset {name!r}; choose from {sorted(self.presets)}"
            )
        return self.presets[name]

    def jobs(self, spec: Any, out: Path) -> list[Job]:
        raise NotImplementedError

    def tabulate(self, spec: Any, table: Any) -> dict[str, Any]:
        """The results: ``{"rows": DataFrame, **extras}`` from the assembled
        table (:func:`results_frame`)."""
        return {"rows": table}

    def report(self, out: Path, result: Mapping[str, Any]) -> Path | None:
        """Write ``OUT/report.html``; None when there is nothing to draw."""
        return None

    def log_line(self, job: Job, res: JobResult) -> str:
        return f"{job.key}: done ({res.seconds:.0f} s)"

    def format(self, result: Mapping[str, Any]) -> str:
        """What the command prints at the end."""
        import pandas as pd

        return pd.DataFrame(result["rows"]).to_string(index=False)


def results_frame(jobs: Sequence[Job], results: Mapping[str, JobResult | None]) -> Any:
    """The results table of a launch: one row per finished job, in the order
    the study listed them: ``key``, its tags, every summary field and
    ``seconds``, ``run_dir``."""
    import pandas as pd

    rows = []
    for job in jobs:
        res = results.get(job.key)
        if res is None:
            continue
        rows.append(
            {
                "key": job.key,
                **job.tags,
                **res.summary,
                "seconds": round(res.seconds, 1),
                "run_dir": res.run_dir,
            }
        )
    return pd.DataFrame(rows)


def check_spec(study: Study, spec: Any, out: Path) -> None:
    """Refuse ``out`` when it holds a launch of ``study`` whose spec differs
    in a field that is not one of ``study.selects``; the error names them."""
    before = _stored_spec(study, out)
    if before is None:
        return
    now = to_dict(spec)
    differ = sorted(
        k for k in set(before) | set(now) if k not in study.selects and before.get(k) != now.get(k)
    )
    if differ:
        diff = "; ".join(f"{k}: {before.get(k)!r} there, {now.get(k)!r} now" for k in differ)
        raise ConfigError(
            f"{out} holds a {study.name} experiment with another spec ({diff}); use a new --out"
        )


def _stored_spec(study: Study, out: Path) -> dict[str, Any] | None:
    if (out / SPEC_FILE).exists():
        return to_dict(from_dict(study.spec_class, read_json(out / SPEC_FILE)))
    for name, defaults in study.legacy_spec.items():
        if (out / name).exists():
            data = {**defaults, **read_json(out / name)}
            return to_dict(from_dict(study.spec_class, data))
    return None


def finished_keys(jobs: Sequence[Job], out: Path) -> list[str]:
    """Keys of the jobs whose run directory is finished: marked done, or
    written by version 0.1.0 (before ``DONE`` existed) with its summary, which
    :func:`execute` then finishes in place without training."""
    from interp.training.rundir import RunStore

    def finished(store: RunStore) -> bool:
        return store.is_done() or store.is_legacy_finished()

    return [j.key for j in jobs if finished(RunStore(out / j.key))]


def run_study(
    study: Study,
    spec: Any,
    out: str | Path,
    *,
    backend: str | None = None,
    jobs: int = 1,
    threads: int | None = None,
    log: Callable[[str], None] = print,
    report_only: bool = False,
) -> dict[str, Any]:
    """Train every run ``spec`` asks for under ``out`` (or, ``report_only``,
    none: tabulate the finished ones) and write ``results.csv``,
    ``results.json`` and ``report.html``. Returns what ``results.json`` holds
    (``rows``: the results table as records)."""
    out = Path(out)
    check_spec(study, spec, out)
    every = study.jobs(spec, out)  # builds every static config: bad values fail here
    check_jobs(every)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    t0 = time.perf_counter()
    todo = list(every)
    if report_only:
        if _stored_spec(study, out) is None:
            raise ConfigError(f"{out} holds no {study.name} experiment (no {SPEC_FILE})")
        done = set(finished_keys(every, out))
        if not done:
            raise ConfigError(f"no run of this experiment has finished under {out}")
        todo = [j for j in every if j.key in done and set(j.after) <= done]
        runner: _Backend = _Local(threads)
        backend_name = "report-only"
    else:
        runner = make_backend(backend, jobs, threads)
        backend_name = backend or ("processes" if jobs > 1 else "local")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SPEC_FILE, to_dict(spec))
    try:
        results = schedule(todo, out, runner, lambda j, r: log(study.log_line(j, r)))
    finally:
        runner.close()
    result = study.tabulate(spec, results_frame(todo, results))
    rows = result.pop("rows")
    missing = [j.key for j in every if results.get(j.key) is None]
    data = {
        "experiment": study.name,
        "spec": to_dict(spec),
        "rows": rows.to_dict(orient="records"),
        **result,
        "wall_seconds": time.perf_counter() - t0,
        "jobs": jobs,
        "backend": backend_name,
        "missing": missing if report_only else [],
    }
    rows.to_csv(out / "results.csv", index=False)
    atomic_write_json(out / "results.json", _jsonable(data))
    if report_only:
        log(f"{len(rows)} of {len(every)} runs finished; {len(missing)} left out")
    study.report(out, data)
    return data


def _jsonable(obj: Any) -> Any:
    """NaN → None and numpy scalars → Python, so results.json is strict JSON."""
    import math

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, TypeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


__all__ = [
    "BACKENDS",
    "ENSEMBLE_SIZE",
    "SPEC_FILE",
    "Job",
    "JobResult",
    "Study",
    "check_spec",
    "ensemble_key",
    "execute",
    "execute_ensemble",
    "make_backend",
    "results_frame",
    "run_study",
    "schedule",
]
