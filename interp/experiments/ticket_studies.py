"""Two studies beyond the Grokking-Tickets paper, built on the tickets experiment.

* :func:`regime_sweep` — how the ticket speedup depends on the regime. For
  each model (the 1-layer transformer and the MLP) and each learning rate, a
  dense run and its rate-0.6 ticket per seed; the speedup (dense t_gen /
  ticket t_gen) is plotted against the dense run's grokking delay
  t_gen / t_mem. A ticket can at best skip the delay, so speedup ≤ roughly
  t_gen / t_ticket; the question is how much of the delay it skips.
* :func:`mask_step_curve` — tickets whose masks are taken at different
  checkpoints of one dense run (the rewind is always the init): speedup vs
  the step the mask came from, next to the mask's Jaccard overlap with the
  final mask and the share of its kept embedding weight in the key
  frequencies (:func:`interp.pruning.overlap.ticket_structure`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from interp.config import ConfigError
from interp.experiments.parallel import run_jobs
from interp.experiments.ticket_suite import (
    Job,
    SuiteSpec,
    execute_job,
    job_line,
    key_columns,
    run_suite,
    ticket_stop,
)
from interp.training.store import atomic_write_json, atomic_write_text, open_run

REGIME_MODELS = {"transformer": "cpu-quick-transformer", "mlp": "cpu-quick-mlp"}
REGIME_LRS = {"transformer": (3e-3, 6e-3, 1e-2), "mlp": (1e-3, 3e-3, 1e-2)}


def regime_sweep(
    out: str | Path,
    models: Sequence[str] = ("transformer", "mlp"),
    lrs: dict[str, Sequence[float]] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    rate: float = 0.6,
    jobs: int = 1,
    log: Callable[[str], None] = print,
    presets: dict[str, str] | None = None,
    dense_overrides: Sequence[str] = (),
    dense_stop_accuracy: float = 0.99,
    fractions: dict[str, Sequence[float]] | None = None,
    prune_at: str = "last",
) -> pd.DataFrame:
    """Dense run + rate-``rate`` ticket for each model × setting × seed; returns
    one row per (model, setting, seed) with the dense delay and the ticket
    speedup, and writes OUT/regimes.csv and OUT/regimes.html.

    The settings are the learning rates ``lrs[model]`` (default
    :data:`REGIME_LRS`), or with ``fractions`` the training fractions
    ``fractions[model]`` at the preset's learning rate, or with both every
    combination. As in the tickets experiment, the dense run is pruned 500
    steps after it reaches ``dense_stop_accuracy`` test accuracy (or at its
    20,000-step cap), at its last checkpoint or (``prune_at="generalized"``)
    the last one at or above that accuracy; tickets stop 100 steps after 95%."""
    from interp.experiments import grokking

    out = Path(out)
    presets = presets or REGIME_MODELS
    for model in models:  # every model's settings are checked before anything trains
        if model not in presets:
            raise ConfigError(f"unknown model {model!r}; choose from {sorted(presets)}")
    settings = {model: _settings(model, lrs, fractions) for model in models}
    rows = []
    for model in models:
        for lr, frac in settings[model]:
            # (config key, label, directory tag, value) of each axis this setting varies
            axes = [
                a
                for a in (
                    ("train.lr", "lr", "lr", lr),
                    ("data.train_fraction", "train", "frac", frac),
                )
                if a[3] is not None
            ]
            overrides = (
                *(f"{k}={v}" for k, _, _, v in axes),
                "train.steps=20000",
                *dense_overrides,
            )
            cfg = grokking.preset(presets[model], overrides=list(overrides))
            name = " ".join(f"{label} {v:g}" for _, label, _, v in axes)
            sub = "-".join([model, *(f"{tag}{v:g}" for _, _, tag, v in axes)])
            spec = SuiteSpec(
                dense_preset=presets[model],
                dense_overrides=overrides,
                rates=(rate,),
                rate=rate,
                controls=(),
                seeds=tuple(seeds),
                min_speedup=1.0,
                dense_stop_accuracy=dense_stop_accuracy,
                prune_at=prune_at,
            )
            res = run_suite(spec, out / sub, jobs=jobs, log=log)
            table = pd.DataFrame(res["rows"])
            for seed, t in table.groupby("seed"):
                dense = t[t["run"] == "dense"].iloc[0]
                ticket = t[t["kind"] == "ticket"].iloc[0]
                delay = (
                    dense["t_gen"] / dense["t_mem"]
                    if _num(dense["t_gen"]) and _num(dense["t_mem"])
                    else None
                )
                rows.append(
                    {
                        "model": model,
                        "setting": name,
                        "lr": cfg.train.lr,
                        "train_fraction": cfg.data.train_fraction,
                        "seed": int(seed),
                        "dense_t_mem": dense["t_mem"],
                        "dense_t_gen": dense["t_gen"],
                        "delay": delay,
                        "ticket_t_gen": ticket["t_gen"],
                        "speedup": ticket["speedup"],
                        # when the ticket never reached 95%: its speedup is below this
                        "speedup_upper_bound": ticket["speedup_upper_bound"],
                        "label": f"{model} {name} seed {seed}",
                    }
                )
    df = pd.DataFrame(rows)
    _write(out, "regimes", df, _regime_fig)
    return df


def _settings(
    model: str,
    lrs: dict[str, Sequence[float]] | None,
    fractions: dict[str, Sequence[float]] | None,
) -> list[tuple[float | None, float | None]]:
    """(lr, train fraction) pairs of one model's sweep; None = the preset's.
    A dict given for an axis must name every swept model."""
    for axis, given in (("lrs", lrs), ("fractions", fractions)):
        if given is not None and model not in given:
            raise ConfigError(f"{axis} has no entry for model {model!r} (it has {sorted(given)})")
    if fractions is None:
        return [(lr, None) for lr in (lrs or REGIME_LRS)[model]]
    fr = fractions[model]  # values are checked by the data config
    if lrs is None:
        return [(None, f) for f in fr]
    return [(lr, f) for lr in lrs[model] for f in fr]


def _regime_fig(df: pd.DataFrame):
    from interp.viz.tickets import regime_figure

    return regime_figure(df)


def mask_step_curve(
    dense_dir: str | Path,
    out: str | Path,
    rate: float = 0.6,
    steps: Sequence[int] | None = None,
    jobs: int = 1,
    budget: float = 1.5,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Retrain a ticket from each of ``steps`` (default: about ten checkpoints,
    log-spaced, always including the first ones at/after t_mem and t_gen and
    the last); each trains for ``budget × dense t_gen`` steps at most and
    stops 100 steps after reaching 95% test accuracy. Each row also has the
    key frequencies the retrained ticket uses and whether they are all among
    the dense run's final ones (:func:`ticket_suite.key_columns`). Writes
    OUT/curve.csv and OUT/curve.html; returns one row per mask step."""
    from interp.analysis.fourier import run_key_frequencies
    from interp.pruning.overlap import ticket_structure

    dense = open_run(dense_dir)
    summary = dense.summary() or {}
    t_gen, t_mem = summary.get("t_gen"), summary.get("t_mem")
    if t_gen is None:
        raise ConfigError(f"{dense_dir} never reached 95% test accuracy: no speedup to measure")
    steps = list(steps) if steps else default_mask_steps(dense.steps, t_mem, t_gen)
    bad = sorted(set(steps) - set(dense.steps))
    if bad:
        raise ConfigError(f"{dense_dir} has no checkpoints at {bad}; steps: {dense.steps}")
    cap = math.ceil(budget * t_gen) + 100
    spec = SuiteSpec(dense_preset="", rates=(rate,), rate=rate, controls=())
    todo = [
        Job(
            f"mask@{s}",
            dense.config.seed,
            str(Path(out) / f"mask_step_{s:08d}"),
            "ticket",
            "ticket",
            rate,
            s,
            (f"train.steps={cap}", *ticket_stop(spec)),
            str(dense.path),
        )
        for s in steps
    ]
    t0 = time.perf_counter()
    finished = run_jobs(
        todo, partial(execute_job, spec), jobs=jobs, on_done=lambda j, r: log(job_line(j, r))
    )
    done = {job.run_dir: res for job, res in finished}
    structure = ticket_structure(dense, rate).set_index("step")
    dense_keys = run_key_frequencies(dense)
    rows = []
    for job in todo:
        s = done[job.run_dir]["summary"]
        rows.append(
            {
                "mask_step": job.source_step,
                "t_gen": s.get("t_gen"),
                "speedup": (t_gen / s["t_gen"]) if s.get("t_gen") else None,
                "speedup_upper_bound": None if s.get("t_gen") else t_gen / s["steps"],
                "final_test_accuracy": s.get("final_test_accuracy"),
                **structure.loc[job.source_step, ["jaccard_with_final", "kept_key_frequency_share"]]
                .astype(float)
                .to_dict(),
                **key_columns(s.get("key_freqs"), dense_keys, bool(s.get("t_gen"))),
            }
        )
    df = pd.DataFrame(rows)
    out = Path(out)
    atomic_write_json(
        out / "curve.json",
        {
            "dense": str(dense.path),
            "t_mem": t_mem,
            "t_gen": t_gen,
            "rate": rate,
            "wall_seconds": time.perf_counter() - t0,
            "rows": df.to_dict(orient="records"),
        },
    )
    _write(out, "curve", df, lambda d: _curve_fig(d, t_mem, t_gen))
    return df


def default_mask_steps(steps: Sequence[int], t_mem: int | None, t_gen: int) -> list[int]:
    """About ten checkpoints, log-spaced, plus the first at/after t_mem and
    t_gen, the init and the last."""
    steps = sorted(steps)
    picks = {steps[0], steps[-1]}
    for mark in (t_mem, t_gen):
        after = [s for s in steps if mark is not None and s >= mark]
        if after:
            picks.add(after[0])
    positive = [s for s in steps if s > 0]
    if positive:
        lo, hi = math.log(positive[0]), math.log(positive[-1])
        for i in range(10):
            target = math.exp(lo + (hi - lo) * i / 9)
            picks.add(min(positive, key=lambda s: abs(math.log(s) - math.log(target))))
    return sorted(picks)


def _curve_fig(df: pd.DataFrame, t_mem: int | None, t_gen: int):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = df["mask_step"].clip(lower=1)
    fig.add_trace(go.Scatter(x=x, y=df["speedup"], mode="lines+markers", name="ticket speedup"))
    nr = df[df["speedup"].isna()]
    if not nr.empty:
        fig.add_trace(
            go.Scatter(
                x=nr["mask_step"].clip(lower=1),
                y=nr["speedup_upper_bound"],
                mode="markers",
                name="not reached (< bound)",
                marker={"symbol": "triangle-down-open", "color": "#d62728", "size": 9},
            )
        )
    for col, name in (
        ("jaccard_with_final", "Jaccard with final mask"),
        ("kept_key_frequency_share", "kept embedding in key freqs"),
    ):
        fig.add_trace(
            go.Scatter(x=x, y=df[col], mode="lines", name=name, line={"dash": "dot"}),
            secondary_y=True,
        )
    for label, step in (("t_mem", t_mem), ("t_gen", t_gen)):
        if step:
            fig.add_vline(x=math.log10(step), line_dash="dash", line_color="gray")
            fig.add_annotation(
                x=math.log10(step), y=1.05, yref="paper", text=label, showarrow=False
            )
    fig.update_xaxes(type="log", title_text="step the mask was taken at (0 shown at 1)")
    fig.update_yaxes(type="log", title_text="speedup vs dense (×)", secondary_y=False)
    fig.update_yaxes(title_text="overlap / share", range=[0, 1.05], secondary_y=True)
    fig.update_layout(title="Tickets from each checkpoint of one dense run", height=450)
    return fig


def _write(out: Path, stem: str, df: pd.DataFrame, make_fig: Callable[[pd.DataFrame], Any]) -> None:
    from interp.viz.report import write_figures

    atomic_write_text(out / f"{stem}.csv", df.to_csv(index=False))
    figs = [make_fig(df)] if len(df) else []
    table = df.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.3g}")
    write_figures(figs, out / f"{stem}.html", stem, extra_body=table)  # figure first, then rows


def _num(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


__all__ = ["default_mask_steps", "mask_step_curve", "regime_sweep"]
