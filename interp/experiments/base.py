"""The one experiment interface.

An :class:`Experiment` is everything the toolkit knows about one kind of run:
its config class and presets (declared torch-free in ``interp.config``, listed
in :mod:`interp.config.catalog`), how to build and train a run, the summary it
writes at the end, which analyzers fit its runs, its report and its probe.
Each experiment module defines one (``EXPERIMENT``) and
:func:`interp.experiments.registry.experiment` finds it by name; the CLI, the
runner and ``interp report`` ask it instead of branching on names.

Training a run (:meth:`Experiment.train`) is always: resolve the config,
check it against the task before anything is written, create (or reopen) the
run directory, :meth:`~Experiment.build` the model and task, train, then
:meth:`~Experiment.summarize` — the experiment's own measurements — write
``summary.json``, and last of all ``DONE``. A run killed anywhere before
``DONE`` resumes on relaunch; a finished run is returned as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.config.catalog import run_entry
from interp.config.core import ConfigError
from interp.experiments.common import format_fields, pick_preset, prepare_run
from interp.models.size import check_fits
from interp.training.device import configure_threads, resolve_device
from interp.training.metrics import final_metrics
from interp.training.rundir import writing
from interp.training.trainer import TrainResult, check_task, train

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from interp.training.rundir import Run, RunStore
    from interp.training.tasks import Task
    from interp.viz.report import Page


@dataclass
class Setup:
    """What :meth:`Experiment.build` hands the trainer: the model (already at
    its starting weights), the task, optional fixed masks, anything
    :meth:`Experiment.summarize` needs later (``context``) and summary fields
    known before training (``extra``)."""

    model: nn.Module
    task: Task
    masks: Mapping[str, Tensor] | None = None
    context: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Experiment:
    """Base class of every run experiment (see the module docstring)."""

    name: str = ""
    #: summary fields ``interp train`` prints, in order
    summary_keys: Sequence[str] = ("steps", "final_train_loss", "final_test_loss")

    # ---------------------------------------------------------------- config
    @property
    def config_class(self) -> type[Any]:
        return run_entry(self.name).config_class()

    @property
    def presets(self) -> dict[str, Any]:
        return run_entry(self.name).preset_table()

    def preset(
        self, name: str | None = None, seed: int | None = None, overrides: Sequence[str] = ()
    ) -> Any:
        """Preset ``name`` (default: the catalog's) with ``seed`` and
        ``key=value`` overrides applied, resolved."""
        name = name or run_entry(self.name).default or ""
        return pick_preset(self.name, self.presets, name, seed, list(overrides))

    # -------------------------------------------------------------- training
    def make_task(self, cfg: Any) -> Task:
        """The task ``cfg`` trains on (used to check the config before a run
        directory exists)."""
        raise NotImplementedError

    def build(self, cfg: Any, store: RunStore, device: torch.device, quiet: bool) -> Setup:
        """Model at its starting weights, task, masks, and summary context."""
        from interp.models import make_model

        return Setup(make_model(cfg.model, seed=cfg.seed, device=device), self.make_task(cfg))

    def summarize(self, cfg: Any, setup: Setup, result: TrainResult) -> dict[str, Any]:
        """The run's ``summary.json``: ``steps`` and the final metrics, plus
        whatever the experiment measures at the end."""
        return {**final_metrics(result.store.read_metric_rows()), "steps": result.summary["steps"]}

    def train(
        self,
        cfg: Any,
        run_dir: str | Path,
        *,
        device: str = "auto",
        threads: int | None = None,
        quiet: bool = False,
        stop_after_step: int | None = None,
    ) -> TrainResult:
        """Train (or resume, or return the finished) run of ``cfg`` in ``run_dir``.

        Everything that can be checked is checked before the directory is
        touched (config, device, memory); the directory is then held with its
        lock (a second writer is refused), and a start that fails before its
        first checkpoint leaves nothing behind."""
        cfg = cfg.resolve()
        dev = resolve_device(device)
        self.check(cfg)
        check_fits(cfg.model, dev)
        n_threads = configure_threads(threads)
        with writing(run_dir) as store:
            prepare_run(self.name, cfg, store, dev, n_threads)
            if store.is_done():
                problem = self.reuse_problem(store.path)
                if problem:
                    raise ConfigError(problem)
                return self._finished(store, dev)
            setup = self.build(cfg, store, dev, quiet)
            result = train(
                setup.model, setup.task, cfg.train, store, cfg.seed, masks=setup.masks,
                device=dev, quiet=quiet, stop_after_step=stop_after_step,
            )  # fmt: skip
            return self._finish(cfg, setup, result)

    def _finish(self, cfg: Any, setup: Setup, result: TrainResult) -> TrainResult:
        """A complete run's summary (the experiment's measurements), then ``DONE``."""
        if result.complete:
            diverged = {k: v for k, v in result.summary.items() if k.startswith("diverged_")}
            summary = {**self.summarize(cfg, setup, result), **setup.extra, **diverged}
            result.store.write_summary(summary)
            result.store.mark_done()  # last: every measurement of the run is written
            result.summary = summary
        return result

    def train_ensemble(
        self,
        cfgs: Sequence[Any],
        run_dirs: Sequence[str | Path],
        *,
        device: str = "auto",
        threads: int | None = None,
        quiet: bool = False,
        stop_after_step: int | None = None,
    ) -> list[TrainResult]:
        """Train the runs of ``cfgs`` in ``run_dirs`` together as one batched
        ensemble (:mod:`interp.training.ensemble`); each run directory ends
        exactly as :meth:`train` leaves it, with the same summary and
        ``DONE``. Finished runs are returned as they are; members that
        cannot share one stack (other data shapes or parameter shapes) are
        trained in separate ensembles, one after another."""
        from contextlib import ExitStack

        from interp.training.ensemble import Member, train_ensemble

        if len(cfgs) != len(run_dirs):
            raise ConfigError(f"{len(cfgs)} configs for {len(run_dirs)} run directories")
        cfgs = [c.resolve() for c in cfgs]
        dev = resolve_device(device)
        for cfg in cfgs:
            self.check(cfg)
            check_fits(cfg.model, dev)
        n_threads = configure_threads(threads)
        results: list[TrainResult | None] = [None] * len(cfgs)
        with ExitStack() as stack:
            todo: dict[str, list[tuple[int, Setup]]] = {}
            stores = {}
            for i, (cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
                store = stores[i] = stack.enter_context(writing(run_dir))
                prepare_run(self.name, cfg, store, dev, n_threads, trainer="ensemble")
                if store.is_done():
                    if problem := self.reuse_problem(store.path):
                        raise ConfigError(problem)
                    results[i] = self._finished(store, dev)
                    continue
                setup = self.build(cfg, store, dev, quiet)
                todo.setdefault(_stack_shape(setup, cfg), []).append((i, setup))
            for group in todo.values():
                members = [
                    Member(s.model, s.task, cfgs[i].train, stores[i], cfgs[i].seed, s.masks)
                    for i, s in group
                ]
                trained = train_ensemble(
                    members, device=dev, quiet=quiet, stop_after_step=stop_after_step
                )
                for (i, setup), result in zip(group, trained, strict=True):
                    results[i] = self._finish(cfgs[i], setup, result)
        return [r for r in results if r is not None]

    def reuse_problem(self, run_dir: str | Path) -> str | None:
        """Why a finished run directory of this config may not stand for it
        (a definition changed since it was written), or None."""
        return None

    def check(self, cfg: Any) -> None:
        """Raise a ConfigError for a config the task cannot train on."""
        check_task(self.make_task(cfg), cfg.train)

    def _finished(self, store: RunStore, device: torch.device) -> TrainResult:
        from interp.training.rundir import Run

        run = Run(store.path)
        return TrainResult(run.load(device=device), store, run.summary() or {}, run.last_step)

    # -------------------------------------------------------------- analysis
    def analyzers(self, run: Run) -> list[Any]:
        """The analyzers ``sweep``, ``interp sweep`` and the report run by default."""
        return []

    def analyzer(self, run: Run, name: str) -> Any:
        """Analyzer ``name`` as it applies to ``run`` (e.g. with the run's probe
        range); the names are :data:`interp.analysis.ANALYZERS`'s."""
        from interp.analysis import named_analyzer

        if name == "llc":
            from interp.experiments.llc_runs import RunLLC

            return RunLLC()
        if name == "example_fits":
            from interp.experiments.example_fits import RunExampleFits

            return RunExampleFits()
        return named_analyzer(name)

    def probe(self, run: Run) -> Tensor | None:
        """Default tokens to look at (attention views); None when there are none."""
        return None

    def report(self, run: Run) -> Page:
        """The run's report page (figures, a summary table, extra HTML)."""
        raise NotImplementedError(f"no report for experiment {self.name!r}")

    def write_report(self, run: Run) -> Path:
        """Write ``RUN_DIR/report.html`` (offline) and return its path; for a
        run directory this user cannot write (read-only, shared), the page goes
        to the user's cache directory instead (the path says where)."""
        import hashlib
        import warnings

        from interp.training.files import cache_dir, writable
        from interp.viz.report import write_page

        path = run.path / "report.html"
        if not writable(run.path):
            digest = hashlib.sha256(str(run.path.resolve()).encode()).hexdigest()[:16]
            path = cache_dir() / "reports" / f"{run.path.name}-{digest}" / "report.html"
            warnings.warn(f"{run.path} is not writable: the report goes to {path}", stacklevel=2)
        return write_page(self.report(run), path)

    def format_summary(self, summary: Mapping[str, Any]) -> str:
        """The summary fields a user looks at first, one per line."""
        return format_fields(summary, list(self.summary_keys))


def _stack_shape(setup: Setup, cfg: Any) -> str:
    """Runs with equal keys can share a stack: the same train settings
    (:func:`~interp.training.ensemble.stack_key`), parameter shapes, kind of
    task and batch shapes."""
    from interp.models import named_weights
    from interp.training.ensemble import stack_key

    shapes = {n: tuple(p.shape) for n, p in named_weights(setup.model).items()}
    x, y = setup.task.batch(1, cfg.train.batch_size, cfg.seed)
    kind = (type(setup.model).__name__, type(setup.task).__name__, tuple(x.shape), tuple(y.shape))
    return repr((stack_key(cfg.train), shapes, kind, x.dtype))


__all__ = ["Experiment", "Setup"]
