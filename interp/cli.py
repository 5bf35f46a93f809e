"""The ``interp`` command line.

::

    interp train grokking --preset cpu-quick --run-dir runs/grok [--seed 1] [--set train.lr=3e-3]
    interp train induction --preset cpu-quick --run-dir runs/ind
    interp sweep RUN_DIR [--out measures.csv]
    interp report RUN_DIR
    interp experiment tickets --preset cpu-quick [--seed 0 --seed 1] [--jobs 2]
    interp experiment repeated-data --preset cpu-quick [--jobs 2] [--backend ray]
    interp presets grokking
    interp demo [--run-dir runs/demo]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from interp.config import ConfigError
from interp.training.store import RunError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train small models through memorization -> generalization and look inside them.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train a run into a run directory.")
app.add_typer(train_app, name="train")

_USER_ERRORS = (ConfigError, RunError, ValueError, FileNotFoundError, KeyError)


def _fail(exc: BaseException) -> None:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _echo_result(result, run_dir: Path, t0: float, formatter) -> None:
    """Print where a finished training run is, how long it took, and its summary."""
    if result.resumed_from is not None:
        typer.echo(f"resumed from step {result.resumed_from}")
    typer.echo(f"run: {run_dir}  ({time.perf_counter() - t0:.1f} s)")
    typer.echo(formatter(result.summary))


def _experiment(name: str):
    """The experiment module (presets, run, format_summary) registered as ``name``."""
    from interp.experiments.registry import experiment_module

    return experiment_module(name.replace("-", "_"))


def _make_train_command(name: str, help_text: str):
    def command(
        run_dir: Annotated[
            Path, typer.Option("--run-dir", help="Run directory to create or resume.")
        ],
        preset: Annotated[
            str, typer.Option(help="Preset name (see `interp presets EXPERIMENT`).")
        ] = "cpu-quick",
        seed: Annotated[
            int | None, typer.Option(help="Seed for init, data and batch order.")
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set", help="Override a config value, e.g. --set train.lr=3e-3 (repeatable)."
            ),
        ] = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Require an existing run dir and continue it.")
        ] = False,
        device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
        threads: Annotated[
            int | None, typer.Option(help="torch threads (default: $INTERP_THREADS or torch's)")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    ) -> None:
        module = _experiment(name)
        try:
            cfg = module.preset(preset, seed=seed, overrides=list(set_ or []))
            if resume and not (run_dir / "config.json").exists():
                raise RunError(f"--resume given but {run_dir} holds no run to resume")
            t0 = time.perf_counter()
            result = module.run(cfg, str(run_dir), device=device, threads=threads, quiet=quiet)
        except _USER_ERRORS as exc:
            _fail(exc)
            return
        _echo_result(result, run_dir, t0, module.format_summary)

    command.__doc__ = help_text
    return command


train_app.command("grokking")(
    _make_train_command(
        "grokking", "Train a grokking run (modular arithmetic) and print its summary."
    )
)
train_app.command("induction")(
    _make_train_command(
        "induction", "Train an attention-only model on repeated sequences; induction heads form."
    )
)
train_app.command("repeated-data")(
    _make_train_command(
        "repeated_data",
        "Train a language model on unique + repeated tokens (one run of the grid).",
    )
)


@app.command()
def sweep(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the tidy table here (.csv or .json).")
    ] = None,
) -> None:
    """Run the experiment's analyzers over every checkpoint (Fourier progress
    measures for grokking and ticket runs, head analyzers for induction runs)."""
    from interp import analysis as an
    from interp.training.store import open_run

    try:
        run = open_run(run_dir)
        if run.experiment == "repeated_data":
            from interp.experiments.repeated_data import run_head_analyzers

            analyzers = list(run_head_analyzers(run.config))
        elif run.experiment == "induction":
            analyzers = list(an.HEAD_ANALYZERS)
        else:
            analyzers = [an.fourier_progress]
        df = an.sweep(run, analyzers)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    if out is None:
        typer.echo(df.to_csv(index=False))
    elif out.suffix == ".json":
        out.write_text(df.to_json(orient="records"))
    else:
        df.to_csv(out, index=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write RUN_DIR/report.html (opens offline; plotly.js inlined)."""
    from interp.viz.report import write_run_report

    try:
        path = write_run_report(run_dir)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(str(path))


@train_app.command("tickets")
def train_tickets(
    source: Annotated[Path, typer.Option("--from", help="A finished grokking run directory.")],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory of the ticket.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint to prune (default: last).")] = None,
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    rewind: Annotated[int, typer.Option(help="Checkpoint whose weights survive (0 = init).")] = 0,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
    control: Annotated[
        str,
        typer.Option(help="ticket | random | dense_l1 | dense_l2 | snip | grasp | synflow"),
    ] = "ticket",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. train.weight_decay=0.")
    ] = None,
    imp_levels: Annotated[
        int, typer.Option(help="Iterative magnitude pruning: prune-rewind-retrain rounds.")
    ] = 1,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int | None, typer.Option(help="torch threads")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Prune a grokking run by magnitude, rewind the survivors, retrain with the mask fixed."""
    from interp.experiments import tickets

    try:
        cfg = tickets.ticket_config(
            source,
            step,
            rate,
            rewind,
            scope,
            control,
            list(set_ or []),  # type: ignore[arg-type]
            imp_levels,
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
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    _echo_result(result, run_dir, t0, tickets.format_summary)


tickets_app = typer.Typer(no_args_is_help=True, help="Lottery-ticket masks of grokking runs.")
app.add_typer(tickets_app, name="tickets")


@tickets_app.command("find")
def tickets_find(
    run_dir: Annotated[Path, typer.Argument(help="A grokking run directory.")],
    step: Annotated[int | None, typer.Option(help="Checkpoint to prune (default: last).")] = None,
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
) -> None:
    """Magnitude mask of one checkpoint, saved under RUN_DIR/masks/ with its sparsity."""
    from interp.experiments.tickets import find_mask
    from interp.pruning.masks import save_mask, sparsity
    from interp.training.store import open_run

    try:
        run = open_run(run_dir)
        step = run.last_step if step is None else step
        mask = find_mask(run, step, rate, scope)
        path = save_mask(
            run.path / "masks" / f"step_{step:08d}_rate{rate:.2f}_{scope}.safetensors",
            mask,
            {"step": step, "rate": rate, "scope": scope},
        )
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    for name, frac in sparsity(mask).items():
        typer.echo(f"{name:>32}: {frac:.3f} removed")
    typer.echo(str(path))


@tickets_app.command("overlap")
def tickets_overlap(
    run_dir: Annotated[Path, typer.Argument(help="A grokking run directory.")],
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    scope: Annotated[str, typer.Option(help="global | layer")] = "global",
) -> None:
    """Masks of every checkpoint: Jaccard overlap (step × step) and the share of kept
    embedding weight in the key frequencies; writes RUN_DIR/analysis/mask_overlap.*"""
    from interp.pruning.overlap import masks_over_checkpoints, overlap_table, ticket_structure
    from interp.training.store import atomic_write_text, open_run
    from interp.viz.figures import mask_overlap_heatmap
    from interp.viz.report import write_figures

    try:
        run = open_run(run_dir)
        table = overlap_table(masks_over_checkpoints(run, rate, scope))
        structure = ticket_structure(run, rate, scope)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    out = run.path / "analysis"
    atomic_write_text(out / "mask_overlap.csv", table.to_csv(index=False))
    atomic_write_text(out / "ticket_structure.csv", structure.to_csv(index=False))
    write_figures([mask_overlap_heatmap(table)], out / "mask_overlap.html", "mask overlap")
    typer.echo(structure.to_string(index=False))
    typer.echo(str(out / "mask_overlap.html"))


experiment_app = typer.Typer(
    no_args_is_help=True, help="Multi-run experiments: every run, a results table, figures."
)
app.add_typer(experiment_app, name="experiment")


_PRUNE_HELP = (
    "Prune the dense run 500 steps after it reaches this test accuracy (or at its "
    "step cap); 0.95 is the procedure used before 2026-12-02"
)
_PRUNE_AT_HELP = (
    "Which dense checkpoint the masks are cut from: last (default), or generalized "
    "= the last one at or above --dense-stop-accuracy test accuracy, or at its best "
    "if it never got there (skips a loss spike at the step cap)"
)


@experiment_app.command("tickets")
def experiment_tickets(
    preset: Annotated[str, typer.Option(help="cpu-quick | paper | tiny")] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/tickets-PRESET).")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Seed (repeat for several; default 0).")
    ] = None,
    control: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only these controls (repeat): random dense_l1 dense_l2 snip grasp "
            "synflow no_wd t_mem. Default: all."
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel runs (1 torch thread each).")] = 1,
    threads: Annotated[int | None, typer.Option(help="torch threads when --jobs 1")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override of the dense run, e.g. train.lr=3e-3."),
    ] = None,
    dense_stop_accuracy: Annotated[
        float | None,
        typer.Option(help=_PRUNE_HELP + " (default 0.99)"),
    ] = None,
    prune_at: Annotated[str | None, typer.Option(help=_PRUNE_AT_HELP)] = None,
) -> None:
    """Dense run, tickets at several rates, random / PaI / norm-matched / no-WD /
    t_mem controls; prints the results table and the required checks, writes
    OUT/results.csv, results.json and tickets_report.html. Relaunching skips
    finished runs."""
    from interp.experiments.ticket_suite import format_results, run_suite, suite_preset

    try:
        spec = suite_preset(preset, seeds, list(set_ or []), control, dense_stop_accuracy, prune_at)
        result = run_suite(
            spec,
            out or Path("runs") / f"tickets-{preset}",
            jobs=jobs,
            threads=threads,
            log=typer.echo,
        )
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(format_results(result))
    typer.echo(str((out or Path("runs") / f"tickets-{preset}") / "tickets_report.html"))


@experiment_app.command("ticket-regimes")
def experiment_ticket_regimes(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/ticket-regimes"),
    model: Annotated[
        list[str] | None, typer.Option(help="transformer | mlp (repeat; default both)")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Seeds (default 0 1 2).")
    ] = None,
    lr: Annotated[
        list[float] | None, typer.Option(help="Learning rates (default: three per model).")
    ] = None,
    train_fraction: Annotated[
        list[float] | None,
        typer.Option(
            help="Training fractions (repeat): sweep these, at the preset's lr "
            "unless --lr is given too (then every combination)."
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel runs (1 torch thread each).")] = 1,
    dense_stop_accuracy: Annotated[float, typer.Option(help=_PRUNE_HELP)] = 0.99,
    prune_at: Annotated[str, typer.Option(help=_PRUNE_AT_HELP)] = "last",
) -> None:
    """Ticket speedup vs the dense run's grokking delay t_gen/t_mem, over learning
    rates (or training fractions), for the 1-layer transformer and the MLP;
    writes OUT/regimes.csv|html."""
    from interp.experiments.ticket_studies import regime_sweep

    models = list(model or ["transformer", "mlp"])
    try:
        lrs = {m: tuple(lr) for m in models} if lr else None
        fractions = {m: tuple(train_fraction) for m in models} if train_fraction else None
        df = regime_sweep(
            out,
            models,
            lrs,
            list(seeds or [0, 1, 2]),
            jobs=jobs,
            log=typer.echo,
            dense_stop_accuracy=dense_stop_accuracy,
            fractions=fractions,
            prune_at=prune_at,
        )
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(df.drop(columns=["label"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    typer.echo(str(out / "regimes.html"))


@tickets_app.command("curve")
def tickets_curve(
    run_dir: Annotated[Path, typer.Argument(help="A finished grokking run directory.")],
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default RUN_DIR/../NAME-curve).")
    ] = None,
    rate: Annotated[float, typer.Option(help="Fraction of weights REMOVED.")] = 0.6,
    step: Annotated[
        list[int] | None, typer.Option(help="Mask steps (repeat; default ~10 log-spaced).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel runs (1 torch thread each).")] = 1,
) -> None:
    """Retrain a ticket from masks taken at several checkpoints: speedup vs mask step,
    with the mask's overlap with the final mask and its key-frequency share."""
    from interp.experiments.ticket_studies import mask_step_curve

    out = out or run_dir.parent / f"{run_dir.name}-curve"
    try:
        df = mask_step_curve(run_dir, out, rate, step, jobs=jobs, log=typer.echo)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    typer.echo(str(out / "curve.html"))


@experiment_app.command("repeated-data")
def experiment_repeated_data(
    preset: Annotated[
        str,
        typer.Option(help="cpu-quick | cpu-text | cpu-copy | cpu-copy-text | cpu-full | paper"),
    ] = "cpu-quick",
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/repeated-PRESET).")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Seeds of the main grid (repeat).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel runs (1 torch thread each).")] = 1,
    backend: Annotated[str, typer.Option(help="local | ray (an existing Ray cluster)")] = "local",
    threads: Annotated[int | None, typer.Option(help="torch threads when --jobs 1")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override every run, e.g. train.lr=1e-3.")
    ] = None,
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
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="Train nothing: results and report of the runs finished so far under --out.",
        ),
    ] = False,
) -> None:
    """Sizes × repeated fraction × repeated epochs × seeds, with f = 0 baselines and
    unique-only controls; writes OUT/results.csv|json and repeated_report.html.
    Relaunching skips finished runs and resumes interrupted ones, so a finer E
    scan (``--epochs 30 --epochs 300 …``) reuses what is already trained.
    ``--report-only`` tabulates a grid still running or partly run."""
    from interp.experiments.repeated_grid import aggregate, grid_preset, report_grid, run_grid

    out = out or Path("runs") / f"repeated-{preset}"
    try:
        spec = grid_preset(
            preset, seeds, list(set_ or []), sizes=sizes, fractions=fractions, epochs=epochs,
            baseline_sizes=baseline_sizes,
        )  # fmt: skip
        if report_only:
            table = report_grid(spec, out, log=typer.echo)
        else:
            table = run_grid(spec, out, jobs=jobs, backend=backend, threads=threads, log=typer.echo)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    cols = ["size", "run", "seeds", "test_loss_mean", "se", "vs_f0", "vs_unique-fewer-steps",
            "vs_unique-fewer-steps_se", "vs_unique-same-steps", "vs_unique-same-steps_se",
            "copy_gain_mean", "copy_gain_se", "prefix_matching_max_mean",
            "prefix_matching_text_mean"]  # fmt: skip
    typer.echo(aggregate(table)[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(str(out / "repeated_report.html"))


viz_app = typer.Typer(no_args_is_help=True, help="Write one visualisation as offline HTML.")
app.add_typer(viz_app, name="viz")


def parse_token_text(text: str, d_vocab: int) -> list[int]:
    """Token ids from ``--text`` for models without a tokenizer: whitespace- or
    comma-separated integers, each in [0, d_vocab)."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise ValueError("--text is empty")
    ids = []
    for p in parts:
        if not p.lstrip("-").isdigit():
            raise ValueError(
                f"--text token {p!r} is not an integer id; this model has no tokenizer, so "
                "give token ids, e.g. --text '3 17 42 3 17'"
            )
        if not 0 <= int(p) < d_vocab:
            raise ValueError(f"--text token {p} is outside the vocabulary [0, {d_vocab})")
        ids.append(int(p))
    return ids


@viz_app.command("attention")
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

    from interp.training.store import open_run
    from interp.viz.circuits import write_attention_html

    try:
        run = open_run(run_dir)
        model = run.load(step)
        if not hasattr(model, "cfg") or not hasattr(model.cfg, "n_heads"):
            raise ValueError(f"{run_dir} holds a model without attention heads")
        if text is not None:
            tokens = torch.tensor(parse_token_text(text, model.cfg.d_vocab))
        elif run.experiment == "induction":
            from interp.experiments.induction import probe_tokens

            tokens = probe_tokens(run.config)[0]
        else:
            raise ValueError("give --text with the token ids to show")
        shown = run.last_step if step is None else step
        path = write_attention_html(
            out,
            model,
            tokens,
            layers=layer,
            heads=head,
            title=f"attention: {run.path.name}, step {shown}",
        )
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    typer.echo(str(path))


@app.command()
def presets(experiment: Annotated[str, typer.Argument()] = "grokking") -> None:
    """Print an experiment's presets as JSON."""
    from interp.config import to_dict

    try:
        module = _experiment(experiment)
    except KeyError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({k: to_dict(v.resolve()) for k, v in module.PRESETS.items()}, indent=2))


@app.command()
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """Train the cpu-quick grokking preset, sweep its progress measures, write the report."""
    from interp.experiments import grokking
    from interp.viz.report import write_run_report

    t0 = time.perf_counter()
    try:
        cfg = grokking.preset("cpu-quick", seed=seed)
        result = grokking.run(cfg, str(run_dir / f"grokking-seed{seed}"), quiet=quiet)
        typer.echo(grokking.format_summary(result.summary))
        t1 = time.perf_counter()
        path = write_run_report(result.store.path)
    except _USER_ERRORS as exc:
        _fail(exc)
        return
    t2 = time.perf_counter()
    typer.echo(f"train {t1 - t0:.1f} s, sweep + report {t2 - t1:.1f} s")
    typer.echo(f"report: {path.resolve()}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="interp")


if __name__ == "__main__":
    sys.exit(main())
