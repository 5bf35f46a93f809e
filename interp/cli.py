"""The ``interp`` command line: a thin layer over the experiment registry and
the runner. Nothing heavy is imported until a command runs, so ``interp
--help`` starts at once.

A user error (a bad config value, an unknown name, a run directory that holds
something else) prints one line, ``error: …``, and exits with status 2; any
other exception is a bug and keeps its traceback.
"""

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from interp.config.catalog import RUNS, STUDIES, run_entry, study_entry
from interp.config.core import UserError

#: file-system errors a user causes (a path that is wrong, or not theirs to write)
USER_OS_ERRORS = (
    PermissionError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI's error boundary. A :class:`UserError`, an error of the file
    system or the operating system, a device error and running out of memory
    become one line, ``error: …``, naming the path or setting, with exit
    status 2 when the user caused it (a bad value or path, a model too large)
    and 1 otherwise (a full disk, a failing device). Anything else is a bug
    and keeps its traceback. (What a failed start of a run wrote is removed
    where it is written: :func:`interp.training.rundir.writing`.)"""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc), 2)
        except OSError as exc:
            _fail(os_error_text(exc), 2 if isinstance(exc, USER_OS_ERRORS) else 1)
        except MemoryError:
            _fail(OUT_OF_MEMORY, 2)
        except RuntimeError as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if type(exc).__name__ == "OutOfMemoryError" or re.search(
                r"out of memory|can't allocate memory", str(exc), re.I
            ):
                _fail(f"{OUT_OF_MEMORY} ({text})", 2)
            if re.search(r"\bCUDA\b|\bcuDNN\b|\bdevice-side\b", str(exc)):
                _fail(f"device error: {text}", 1)
            raise

    return wrapper


OUT_OF_MEMORY = (
    "out of memory: the model or batch is too large for this machine "
    "(make model.d_model, model.d_mlp, model.n_layers or train.batch_size smaller)"
)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def os_error_text(exc: OSError) -> str:
    """An OSError as one line naming its path(s): ``permission denied: runs/x``."""
    if exc.filename is None:
        return str(exc)
    what = (exc.strerror or type(exc).__name__).lower()
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    return f"{what}: {where}"


def _typer(help_text: str) -> typer.Typer:
    return typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        help=help_text,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )


app = _typer("Train small models through memorization -> generalization and look inside them.")
train_app = _typer("Train one run into a run directory.")
experiment_app = _typer("Multi-run experiments: every run, a results table, checks, a report.")
tickets_app = _typer("Lottery-ticket masks of grokking runs.")
viz_app = _typer("Write one visualisation as offline HTML.")
app.add_typer(train_app, name="train")
app.add_typer(experiment_app, name="experiment")
app.add_typer(tickets_app, name="tickets")
app.add_typer(viz_app, name="viz")

# ------------------------------------------------------------------ options
Device = Annotated[str, typer.Option(help="auto (cuda when present) | cpu | cuda")]
Threads = Annotated[
    int | None,
    typer.Option(
        help="torch threads (default: $INTERP_THREADS, else torch's; on a busy machine "
        "the idle cores)"
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set train.lr=3e-3 (repeatable; JSON values; "
        "`interp presets EXPERIMENT` lists the keys).",
    ),
]
Seeds = Annotated[list[int] | None, typer.Option("--seed", help="A seed (repeat for several).")]
Jobs = Annotated[int, typer.Option(help="Runs at a time (each in its own process, 1 thread).")]
SetEvery = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override every run's config, e.g. train.lr=1e-3 (repeatable)."),
]
Backend = Annotated[
    str | None,
    typer.Option(
        help="local (in this process) | processes | ray ($RAY_ADDRESS, else a local Ray) | "
        "ensemble (compatible runs trained together as batched ensembles, over --jobs "
        "processes); default: processes when --jobs > 1, else local"
    ),
]
ReportOnly = Annotated[
    bool,
    typer.Option(
        "--report-only", help="Train nothing: tabulate and report the runs finished so far."
    ),
]
StopAccuracy = Annotated[
    float | None,
    typer.Option(
        help="The dense run trains until 500 steps after this test accuracy (or its step cap)."
    ),
]
PruneAt = Annotated[
    str | None,
    typer.Option(
        help="Dense checkpoint the masks are cut from: last, or generalized (the last one at "
        "or above --dense-stop-accuracy, its best if it never got there)."
    ),
]


def _presets_help(names: Any, default: str | None) -> str:
    return " | ".join(names) + (f" (default {default})" if default else "")


class ConfigKeysCommand(TyperCommand):
    """A ``train`` command whose help ends with every key ``--set`` accepts."""

    experiment = ""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        from interp.config.core import describe

        entry = run_entry(self.experiment)
        cfg = entry.preset_table()[entry.default or ""]
        formatter.write_paragraph()
        formatter.write_text(
            f"Keys --set accepts (values of the {entry.default} preset; `interp presets "
            f"{self.experiment} PRESET` shows another):"
        )
        with formatter.indentation():
            formatter.write_dl(
                [(k.key, f"{_text(k.value)} ({k.type}): {k.help}") for k in describe(cfg)]
            )


def _text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


# ------------------------------------------------------------------- train
def _check_output(out: Path | None) -> None:
    """An output file's directory must exist and the name must not be a directory."""
    from interp.config.core import InputError

    if out is None:
        return
    if out.is_dir():
        raise InputError(f"{out} is a directory; give a file name, e.g. {out / 'out.html'}")
    if not out.parent.is_dir():
        raise InputError(f"{out}: the directory {out.parent} does not exist")


def _echo_result(result: Any, run_dir: Path, t0: float, formatter: Callable[[Any], str]) -> None:
    """Print where a finished training run is, how long it took, and its summary."""
    if result.resumed_from is not None:
        typer.echo(f"resumed from step {result.resumed_from}")
    typer.echo(f"run: {run_dir}  ({time.perf_counter() - t0:.1f} s)")
    typer.echo(formatter(result.summary))


def _fail_if_diverged(summary: dict[str, Any], run_dir: Path) -> None:
    """Exit 1 when the run stopped because its training loss was not finite."""
    if summary.get("diverged_at") is not None:
        _fail(
            f"{run_dir} diverged: the training loss became {summary.get('diverged_loss')} at "
            f"step {summary['diverged_at']}, so the run stopped at step {summary['steps']} "
            "(a smaller train.lr, or train.grad_clip, may help; --set "
            "train.on_nonfinite=continue trains on)",
            1,
        )


def _train_command(name: str) -> Callable[..., None]:
    entry = run_entry(name)
    preset_help = "Preset: " + _presets_help(entry.preset_table(), entry.default)

    @guarded
    def command(
        run_dir: Annotated[
            Path, typer.Option("--run-dir", help="Run directory to create or resume.")
        ],
        preset: Annotated[str, typer.Option(help=preset_help)] = entry.default or "",
        seed: Annotated[
            int | None, typer.Option(help="Seed of init, data and batch order.")
        ] = None,
        set_: Sets = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Require an existing run dir and continue it.")
        ] = False,
        device: Device = "auto",
        threads: Threads = None,
        quiet: Quiet = False,
    ) -> None:
        from interp.experiments.registry import experiment
        from interp.training.files import RunError

        exp = experiment(name)
        cfg = exp.preset(preset, seed, set_ or [])
        if resume and not (run_dir / "config.json").exists():
            raise RunError(f"--resume given but {run_dir} holds no run to resume")
        t0 = time.perf_counter()
        result = exp.train(cfg, run_dir, device=device, threads=threads, quiet=quiet)
        _echo_result(result, run_dir, t0, exp.format_summary)
        _fail_if_diverged(result.summary, run_dir)

    command.__doc__ = f"Train one {name} run: {entry.help}."
    return command


for _name, _entry in RUNS.items():  # every run experiment with presets (tickets: below)
    if _entry.preset_table():
        _cls = type(f"{_name}Keys", (ConfigKeysCommand,), {"experiment": _name})
        train_app.command(_name, cls=_cls)(_train_command(_name))


@train_app.command("tickets")
@guarded
def train_tickets(
    source: Annotated[Path, typer.Option("--from", help="A finished grokking run directory.")],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory of the ticket.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint to prune (default: last).")] = None,
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    rewind: Annotated[int, typer.Option(help="Checkpoint whose weights survive (0 = init).")] = 0,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
    control: Annotated[
        str, typer.Option(help="ticket | random | dense_l1 | dense_l2 | snip | grasp | synflow")
    ] = "ticket",
    set_: Sets = None,
    imp_levels: Annotated[
        int, typer.Option(help="Iterative magnitude pruning: prune-rewind-retrain rounds.")
    ] = 1,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Prune a grokking run by magnitude, rewind the survivors, retrain with the mask fixed."""
    from interp.experiments import tickets

    cfg = tickets.ticket_config(
        source, step, rate, rewind, scope, control, list(set_ or []), imp_levels
    )
    tc = cfg.train
    if tc.stop_after_gen is not None:  # usually inherited from the source run: say so
        typer.echo(
            f"stops {tc.stop_after_gen} steps after test accuracy reaches "
            f"{tc.stop_accuracy:g} (or at {tc.steps} steps); the source run's rule "
            "unless --set train.stop_after_gen=… / train.stop_accuracy=…"
        )
    t0 = time.perf_counter()
    result = tickets.run(cfg, str(run_dir), device=device, threads=threads, quiet=quiet)
    _echo_result(result, run_dir, t0, tickets.format_summary)
    _fail_if_diverged(result.summary, run_dir)


# --------------------------------------------------------------- analysis
Source = Annotated[
    str,
    typer.Argument(
        help="A run directory, save_pretrained checkpoint directories (one, or a folder of "
        "step_N / checkpoint-N), or hf:OWNER/NAME (its revisions by --step)."
    ),
]


@app.command()
@guarded
def sweep(
    source: Source,
    analyzer: Annotated[
        list[str] | None,
        typer.Option(help="Analyzer to run (repeatable; default: the source's)."),
    ] = None,
    step: Annotated[
        list[int] | None, typer.Option(help="Checkpoint step (repeatable; default: all).")
    ] = None,
    jobs: Annotated[
        int, typer.Option(help="Parallel parts of the checkpoints, one thread each.")
    ] = 1,
    backend: Backend = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Recompute cached results.")] = False,
    device: Device = "auto",
    out: Annotated[
        Path | None, typer.Option(help="Write the tidy table here (.csv or .json).")
    ] = None,
) -> None:
    """Run analyzers over a source's checkpoints into one tidy table (cached in
    RUN_DIR/analysis/, or the user cache for models we did not train).
    Analyzers: composition_scores, copy_gain, copying_scores,
    duplicate_token_scores, fourier_progress, head_ablation_losses,
    induction_scores, logit_copying_scores, prefix_matching_scores,
    prev_token_scores, signed_logit_copying, composition_vs_init; for our
    runs also llc (the local learning coefficient on the run's training data;
    docs/llc.md) and, for classification runs, example_fits (per training
    example: fitted or not, its margin); for models with a tokenizer also prefix_matching_text,
    text_copy and (context >= 512) olsson_icl_score."""
    from interp.experiments.sweeping import sweep_run
    from interp.training.files import atomic_write_text

    _check_output(out)
    df = sweep_run(
        source, analyzer, step, jobs=jobs, backend=backend, refresh=refresh, device=device
    )
    if out is None:
        typer.echo(df.to_csv(index=False))
    else:
        text = df.to_json(orient="records") if out.suffix == ".json" else df.to_csv(index=False)
        atomic_write_text(out, text)


@app.command()
@guarded
def report(
    source: Source,
    step: Annotated[
        list[int] | None, typer.Option(help="Checkpoint step (repeatable; hub: required).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="HTML file (default: RUN_DIR/report.html; report-NAME.html for others)."),
    ] = None,
) -> None:
    """Write the offline HTML report of a run, or of a checkpoint series we did
    not train (plotly.js and circuitsvis inlined)."""
    from interp.experiments.registry import experiment
    from interp.experiments.sweeping import open_source
    from interp.training.rundir import Run

    _check_output(out)
    src = open_source(source, step)
    if isinstance(src, Run):
        typer.echo(str(experiment(src.experiment).write_report(src)))
        return
    from interp.experiments.external import write_external_report

    typer.echo(str(write_external_report(src, out or Path(f"report-{src.name}.html"), step)))


@app.command()
@guarded
def info(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """A run's experiment, state, checkpoints, summary and config."""
    from interp.training.rundir import open_run

    run = open_run(run_dir)
    steps = run.steps
    raw = run.store.read_config()
    typer.echo(f"run:        {run.path}")
    typer.echo(f"experiment: {run.experiment}")
    state = "finished" if run.finished else ("not started" if not steps else "not finished")
    typer.echo(f"state:      {state}")
    span = f"{len(steps)} ({steps[0]} … {steps[-1]})" if steps else "0"
    typer.echo(f"checkpoints: {span}")
    typer.echo(f"version:    {raw.get('interp_version')} (git {raw.get('git_commit') or '?'})")
    runtime = run.runtime
    if runtime:
        typer.echo("runtime:    " + ", ".join(f"{k} {v}" for k, v in sorted(runtime.items())))
    summary = run.summary()
    if summary:
        typer.echo("summary:")
        for k, v in sorted(summary.items()):
            typer.echo(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    typer.echo("config:")
    typer.echo(json.dumps(run.config_dict, indent=2, sort_keys=True))


# ---------------------------------------------------------------- presets
@app.command()
@guarded
def presets(
    experiment: Annotated[str, typer.Argument(help=f"One of {sorted(set(RUNS) | set(STUDIES))}.")],
    preset: Annotated[str | None, typer.Argument(help="A preset (default: list them).")] = None,
) -> None:
    """An experiment's presets, or one preset's keys: value, type and help."""
    from interp.config.core import ConfigError

    if experiment not in RUNS and experiment not in STUDIES:
        raise ConfigError(
            f"unknown experiment {experiment!r}; known: {sorted(set(RUNS) | set(STUDIES))}"
        )
    sections = []
    if experiment in RUNS:
        sections.append((f"interp train {experiment}", run_entry(experiment)))
    if experiment in STUDIES:
        sections.append((f"interp experiment {experiment}", study_entry(experiment)))
    shown = False
    for command, entry in sections:
        table = entry.preset_table()
        if preset is None:
            typer.echo(f"{command}: {entry.help}")
            if not table:
                typer.echo("  no presets (its config is cut from a grokking run: --from RUN)")
            for name in table:
                typer.echo(f"  --preset {name}" + (" (default)" if name == entry.default else ""))
            continue
        if preset in table:
            shown = True
            typer.echo(f"{command} --preset {preset}:")
            typer.echo(_key_table(table[preset]))
    if preset is not None and not shown:
        known = sorted({n for _, e in sections for n in e.preset_table()})
        raise ConfigError(f"unknown {experiment} preset {preset!r}; choose from {known}")


def _key_table(cfg: Any) -> str:
    """``key = value  (type)`` and its help below, for every key of ``cfg``."""
    from interp.config.core import describe

    return "\n".join(
        f"  {k.key} = {_text(k.value)}  ({k.type})\n      {k.help}" for k in describe(cfg)
    )


# ------------------------------------------------------------ experiments
def _run_study(
    name: str,
    spec: Any,
    out: Path,
    jobs: int,
    backend: str | None,
    threads: int | None,
    report_only: bool,
) -> None:
    from interp.experiments.registry import study
    from interp.experiments.runner import run_study

    s = study(name)
    result = run_study(
        s,
        spec,
        out,
        backend=backend,
        jobs=jobs,
        threads=threads,
        log=typer.echo,
        report_only=report_only,
    )
    typer.echo(s.format(result))
    typer.echo(str(out / "report.html"))


def _study_preset_help(name: str) -> str:
    entry = study_entry(name)
    return "Preset: " + _presets_help(entry.preset_table(), entry.default)


@experiment_app.command("tickets")
@guarded
def experiment_tickets(
    preset: Annotated[str, typer.Option(help=_study_preset_help("tickets"))] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/tickets-PRESET).")
    ] = None,
    seeds: Seeds = None,
    control: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only these controls (repeat): random dense_l1 dense_l2 snip grasp "
            "synflow no_wd t_mem. Default: all."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override of the dense run, e.g. train.lr=3e-3."),
    ] = None,
    dense_stop_accuracy: StopAccuracy = None,
    prune_at: PruneAt = None,
    jobs: Jobs = 1,
    backend: Backend = None,
    threads: Threads = None,
    report_only: ReportOnly = False,
) -> None:
    """Dense run, tickets at several rates, random / PaI / norm-matched / no-WD /
    t_mem controls per seed; prints the results table, the checks and the
    paper's orderings, writes OUT/results.csv|json and OUT/report.html.
    Relaunching skips finished runs (and may add seeds and controls)."""
    from interp.experiments.ticket_suite import suite_preset

    spec = suite_preset(preset, seeds, list(set_ or []), control, dense_stop_accuracy, prune_at)
    _run_study(
        "tickets",
        spec,
        out or Path("runs") / f"tickets-{preset}",
        jobs,
        backend,
        threads,
        report_only,
    )


@experiment_app.command("ticket-regimes")
@guarded
def experiment_ticket_regimes(
    preset: Annotated[str, typer.Option(help=_study_preset_help("ticket-regimes"))] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/ticket-regimes-PRESET).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="transformer | mlp (repeat; default: the preset's)")
    ] = None,
    seeds: Seeds = None,
    lr: Annotated[
        list[float] | None, typer.Option(help="Learning rates (repeat; default: three per model).")
    ] = None,
    train_fraction: Annotated[
        list[float] | None,
        typer.Option(
            help="Training fractions (repeat): sweep these, at the preset's lr "
            "unless --lr is given too (then every combination)."
        ),
    ] = None,
    dense_stop_accuracy: StopAccuracy = None,
    prune_at: PruneAt = None,
    jobs: Jobs = 1,
    backend: Backend = None,
    threads: Threads = None,
    report_only: ReportOnly = False,
) -> None:
    """Ticket speedup vs the dense run's grokking delay t_gen/t_mem, over
    learning rates (or training fractions), for the 1-layer transformer and the
    MLP; writes OUT/results.csv|json and OUT/report.html."""
    from dataclasses import replace

    from interp.experiments.registry import study

    spec = study("ticket-regimes").preset(preset)
    changes: dict[str, Any] = {}
    models = tuple(model) if model else spec.models
    if model:
        changes["models"] = models
    if seeds:
        changes["seeds"] = tuple(seeds)
    if lr:
        changes["lrs"] = {m: tuple(lr) for m in models}
    if train_fraction:
        changes["fractions"] = {m: tuple(train_fraction) for m in models}
        if not lr:
            changes["lrs"] = None
    if dense_stop_accuracy is not None:
        changes["dense_stop_accuracy"] = dense_stop_accuracy
    if prune_at is not None:
        changes["prune_at"] = prune_at
    spec = replace(spec, **changes) if changes else spec
    _run_study(
        "ticket-regimes",
        spec,
        out or Path("runs") / f"ticket-regimes-{preset}",
        jobs,
        backend,
        threads,
        report_only,
    )


@experiment_app.command("ticket-curve")
@guarded
def experiment_ticket_curve(
    source: Annotated[Path, typer.Option("--from", help="A finished grokking run directory.")],
    preset: Annotated[str, typer.Option(help=_study_preset_help("ticket-curve"))] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default: RUN_DIR/../NAME-curve).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Fraction of weights REMOVED (default 0.6).")
    ] = None,
    step: Annotated[
        list[int] | None, typer.Option(help="Mask steps (repeat; default ~10 log-spaced).")
    ] = None,
    jobs: Jobs = 1,
    backend: Backend = None,
    threads: Threads = None,
    report_only: ReportOnly = False,
) -> None:
    """Retrain a ticket from masks cut at several checkpoints of one dense run:
    speedup vs mask step, with the mask's overlap with the final mask and its
    key-frequency share; writes OUT/results.csv|json and OUT/report.html."""
    from dataclasses import replace

    from interp.experiments.registry import study

    spec = study("ticket-curve").preset(preset)
    changes: dict[str, Any] = {"source": str(source.resolve())}
    if rate is not None:
        changes["rate"] = rate
    if step:
        changes["steps"] = tuple(step)
    spec = replace(spec, **changes)
    _run_study(
        "ticket-curve",
        spec,
        out or source.parent / f"{source.name}-curve",
        jobs,
        backend,
        threads,
        report_only,
    )


@experiment_app.command("repeated-data")
@guarded
def experiment_repeated_data(
    preset: Annotated[str, typer.Option(help=_study_preset_help("repeated-data"))] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/repeated-PRESET).")
    ] = None,
    seeds: Seeds = None,
    set_: SetEvery = None,
    sizes: Annotated[
        list[str] | None, typer.Option("--size", help="Model sizes instead of the preset's.")
    ] = None,
    fractions: Annotated[
        list[float] | None,
        typer.Option("--fraction", help="Repeated fractions f instead of the preset's."),
    ] = None,
    epochs: Annotated[
        list[int] | None,
        typer.Option("--epochs", help="Repeated epochs E instead of the preset's (repeat)."),
    ] = None,
    baseline_sizes: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline-size",
            help="Sizes trained at f = 0 only (points for the effective-size fit).",
        ),
    ] = None,
    jobs: Jobs = 1,
    backend: Backend = None,
    threads: Threads = None,
    report_only: ReportOnly = False,
) -> None:
    """Sizes × repeated fraction × repeated epochs × seeds, with f = 0 baselines
    and unique-only controls; writes OUT/results.csv|json and OUT/report.html.
    Relaunching skips finished runs and resumes interrupted ones, so a finer E
    scan (``--epochs 30 --epochs 300 …``) reuses what is already trained."""
    from interp.experiments.repeated_grid import grid_preset

    spec = grid_preset(
        preset,
        seeds,
        list(set_ or []),
        sizes=sizes,
        fractions=fractions,
        epochs=epochs,
        baseline_sizes=baseline_sizes,
    )
    _run_study(
        "repeated-data",
        spec,
        out or Path("runs") / f"repeated-{preset}",
        jobs,
        backend,
        threads,
        report_only,
    )


@experiment_app.command("double-descent")
@guarded
def experiment_double_descent(
    preset: Annotated[str, typer.Option(help=_study_preset_help("double-descent"))] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/double-descent-PRESET).")
    ] = None,
    seeds: Seeds = None,
    set_: SetEvery = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="mlp | cnn (repeat) instead of the preset's."),
    ] = None,
    widths: Annotated[
        list[int] | None,
        typer.Option("--width", help="Model-wise widths (repeat) for every --model."),
    ] = None,
    noises: Annotated[
        list[float] | None, typer.Option("--noise", help="Label-noise fractions (repeat).")
    ] = None,
    jobs: Jobs = 1,
    backend: Backend = None,
    threads: Threads = None,
    report_only: ReportOnly = False,
) -> None:
    """Model-wise (width × label noise × seeds), epoch-wise, sample-wise double
    descent and Liu & Flanigan's optimizer factors on MNIST-1D or digits;
    writes OUT/results.csv|json (the peaks and factor verdicts) and
    OUT/report.html. Relaunching reuses finished runs."""
    from interp.experiments.double_descent_grid import STUDY, grid_preset

    base = STUDY.preset(preset)
    chosen = tuple(models) if models else None
    width_map = None
    if widths:
        width_map = {m: tuple(widths) for m in (chosen or base.models)}
    spec = grid_preset(
        preset, seeds, list(set_ or []), models=chosen, widths=width_map,
        noises=tuple(noises) if noises else None,
    )  # fmt: skip
    _run_study(
        "double-descent",
        spec,
        out or Path("runs") / f"double-descent-{preset}",
        jobs,
        backend,
        threads,
        report_only,
    )


# ----------------------------------------------------------------- tickets
@tickets_app.command("find")
@guarded
def tickets_find(
    run_dir: Annotated[Path, typer.Argument(help="A grokking run directory.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint to prune (default: last).")] = None,
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
) -> None:
    """Magnitude mask of one checkpoint, saved under RUN_DIR/masks/ with its sparsity."""
    from interp.experiments.tickets import find_mask
    from interp.pruning.masks import save_mask, sparsity
    from interp.training.rundir import open_run

    run = open_run(run_dir)
    step = run.last_step if step is None else step
    mask = find_mask(run, step, rate, scope)
    path = save_mask(
        run.path / "masks" / f"step_{step:08d}_rate{rate:.2f}_{scope}.safetensors",
        mask,
        {"step": step, "rate": rate, "scope": scope},
    )
    for name, frac in sparsity(mask).items():
        typer.echo(f"{name:>32}: {frac:.3f} removed")
    typer.echo(str(path))


@tickets_app.command("overlap")
@guarded
def tickets_overlap(
    run_dir: Annotated[Path, typer.Argument(help="A grokking run directory.")],
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
) -> None:
    """Masks of every checkpoint: Jaccard overlap (step × step) and the share of kept
    embedding weight in the key frequencies; writes RUN_DIR/analysis/mask_overlap.*"""
    from interp.pruning.overlap import masks_over_checkpoints, overlap_table, ticket_structure
    from interp.training.files import atomic_write_text
    from interp.training.rundir import open_run
    from interp.viz.figures import mask_overlap_heatmap
    from interp.viz.report import write_figures

    run = open_run(run_dir)
    table = overlap_table(masks_over_checkpoints(run, rate, scope))
    structure = ticket_structure(run, rate, scope)
    out = run.path / "analysis"
    atomic_write_text(out / "mask_overlap.csv", table.to_csv(index=False))
    atomic_write_text(out / "ticket_structure.csv", structure.to_csv(index=False))
    write_figures([mask_overlap_heatmap(table)], out / "mask_overlap.html", "mask overlap")
    typer.echo(structure.to_string(index=False))
    typer.echo(str(out / "mask_overlap.html"))


# --------------------------------------------------------------------- viz
def parse_token_text(text: str, d_vocab: int) -> list[int]:
    """Token ids from ``--text`` for models without a tokenizer: whitespace- or
    comma-separated integers, each in [0, d_vocab)."""
    from interp.config.core import ConfigError

    parts = text.replace(",", " ").split()
    if not parts:
        raise ConfigError("--text is empty")
    ids = []
    for p in parts:
        if not re.fullmatch(r"-?[0-9]+", p):
            raise ConfigError(
                f"--text token {p!r} is not an integer id; this model has no tokenizer, so "
                "give token ids, e.g. --text '3 17 42 3 17'"
            )
        if not 0 <= int(p) < d_vocab:
            raise ConfigError(f"--text token {p} is outside the vocabulary [0, {d_vocab})")
        ids.append(int(p))
    return ids


@viz_app.command("attention")
@guarded
def viz_attention(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a transformer run.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="HTML file to write.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint step (default: last).")] = None,
    text: Annotated[
        str | None, typer.Option(help="Token ids to show, e.g. '3 17 42 3 17' (default: probe).")
    ] = None,
    layer: Annotated[list[int] | None, typer.Option(help="Layer(s) to show (repeatable).")] = None,
    head: Annotated[list[int] | None, typer.Option(help="Head(s) to show (repeatable).")] = None,
) -> None:
    """circuitsvis attention patterns at one checkpoint, as HTML that opens offline."""
    import torch

    from interp.config.core import ConfigError
    from interp.experiments.registry import experiment
    from interp.training.rundir import open_run
    from interp.viz.circuits import write_attention_html

    _check_output(out)
    run = open_run(run_dir)
    model = run.load(step)
    if not hasattr(model, "cfg") or not hasattr(model.cfg, "n_heads"):
        raise ConfigError(f"{run_dir} holds a model without attention heads")
    if text is not None:
        tokens = torch.tensor(parse_token_text(text, model.cfg.d_vocab))
    else:
        tokens = experiment(run.experiment).probe(run)
        if tokens is None:
            raise ConfigError("give --text with the token ids to show")
    shown = run.last_step if step is None else step
    path = write_attention_html(
        out,
        model,
        tokens,
        layers=layer,
        heads=head,
        title=f"attention: {run.path.name}, step {shown}",
    )
    typer.echo(str(path))


# -------------------------------------------------------------------- demo
@app.command()
@guarded
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option()] = 0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train the cpu-quick grokking preset, sweep its progress measures, write the report."""
    from interp.experiments import grokking
    from interp.training.rundir import open_run

    t0 = time.perf_counter()
    cfg = grokking.preset("cpu-quick", seed=seed)
    result = grokking.run(cfg, str(run_dir / f"grokking-seed{seed}"), threads=threads, quiet=quiet)
    typer.echo(grokking.format_summary(result.summary))
    t1 = time.perf_counter()
    path = grokking.EXPERIMENT.write_report(open_run(result.store.path))
    t2 = time.perf_counter()
    typer.echo(f"train {t1 - t0:.1f} s, sweep + report {t2 - t1:.1f} s")
    typer.echo(f"report: {path.resolve()}")


def main() -> None:
    """Console-script entry point; warnings print as one line, ``warning: …``."""
    import warnings

    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    app(prog_name="interp")


if __name__ == "__main__":
    sys.exit(main())
