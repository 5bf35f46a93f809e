"""Figures of the grokking-tickets experiment: overlaid test-accuracy curves,
speedup bars, the pruning-rate sweep, and speedup against the dense run's
grokking delay (the regime sweep), and speedup vs the step a mask was cut at."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.config.core import InputError


def accuracy_curves(curves: Mapping[int, Mapping[str, pd.DataFrame]], title: str = "") -> go.Figure:
    """Test accuracy vs step for every run of each seed (one panel per seed).

    ``curves[seed][run]`` is a run's metrics frame (columns step/split/metric/value).
    """
    seeds = sorted(curves)
    if not seeds:
        raise InputError("no runs to plot")
    fig = make_subplots(rows=1, cols=len(seeds), subplot_titles=[f"seed {s}" for s in seeds])
    palette = _palette(sorted({r for s in seeds for r in curves[s]}))
    for col, seed in enumerate(seeds, start=1):
        for run, df in curves[seed].items():
            d = df[(df["split"] == "test") & (df["metric"] == "accuracy") & (df["step"] > 0)]
            d = d.sort_values("step")
            fig.add_trace(
                go.Scatter(
                    x=d["step"],
                    y=d["value"],
                    name=run,
                    legendgroup=run,
                    showlegend=col == 1,
                    line={"color": palette[run], "width": 3 if run == "dense" else 1.5},
                ),
                row=1,
                col=col,
            )
        fig.add_hline(y=0.95, line_dash="dot", line_color="gray", row=1, col=col)
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(title_text="test accuracy", range=[0, 1.02], col=1)
    fig.update_layout(title=title or "Test accuracy: dense run, tickets and controls", height=450)
    return fig


def speedup_bars(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Speedup in steps to 95% test accuracy (dense t_gen / run t_gen), one
    marker per seed and run. A run that never reached 95% within its budget is
    an open triangle at its upper bound (dense t_gen / budget): its speedup
    is below that. No averages are drawn: with runs that did not reach 95%,
    a mean over the seeds that did would overstate them."""
    t = table[table["run"] != "dense"]
    if t.empty:
        raise InputError("no ticket or control runs in the table")
    fig = go.Figure()
    symbols = ["circle", "square", "diamond", "cross", "x", "star"]
    for i, (seed, d) in enumerate(t.groupby("seed")):
        fig.add_trace(
            go.Scatter(
                x=d["run"], y=d["speedup"], mode="markers", name=f"seed {seed}",
                marker={"size": 10, "symbol": symbols[i % len(symbols)]},
            )
        )  # fmt: skip
        nr = d[d["speedup"].isna() & d["speedup_upper_bound"].notna()]
        if not nr.empty:
            fig.add_trace(
                go.Scatter(
                    x=nr["run"], y=nr["speedup_upper_bound"], mode="markers",
                    name=f"seed {seed}: not reached (< bound)",
                    marker={"size": 10, "symbol": "triangle-down-open", "color": "#d62728"},
                )
            )  # fmt: skip
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(categoryorder="array", categoryarray=list(dict.fromkeys(t["run"])))
    fig.update_yaxes(type="log", title_text="speedup vs dense (×)")
    fig.update_layout(title=title or "Steps to 95% test accuracy, relative to dense", height=450)
    return fig


def rate_sweep(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Ticket speedup vs pruning rate (fraction removed), one line per seed."""
    t = table[table["kind"] == "ticket"].dropna(subset=["rate"])
    if t.empty:
        raise InputError("no ticket runs in the table")
    fig = go.Figure()
    for seed, d in t.groupby("seed"):
        d = d.sort_values("rate")
        fig.add_trace(
            go.Scatter(x=d["rate"], y=d["speedup"], mode="lines+markers", name=f"seed {seed}")
        )
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(title_text="pruning rate (fraction of weights removed)")
    fig.update_yaxes(type="log", title_text="speedup vs dense (×)")
    fig.update_layout(title=title or "Ticket speedup vs pruning rate", height=400)
    return fig


def regime_figure(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Ticket speedup vs the dense run's grokking delay t_gen/t_mem, one colour
    per model and one marker shape per ``setting`` (else per ``lr``);
    ``table`` has columns model, delay, speedup, label and (optionally)
    setting, lr, speedup_upper_bound. A ticket that never reached 95% within
    its budget is an open triangle at its upper bound (dense t_gen / steps
    trained): its speedup is below that. The dotted diagonal is speedup =
    delay, a ticket that generalises as soon as dense memorises."""
    t = table.dropna(subset=["delay"])
    fig = go.Figure()
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    symbols = ["circle", "square", "diamond", "cross", "x", "star"]
    for i, (model, m) in enumerate(t.groupby("model")):
        colour = colours[i % len(colours)]
        # one marker shape per setting (or learning rate) when the table has them
        if "setting" in m:
            groups = [(f"{model} {k}", d) for k, d in m.groupby("setting", sort=False)]
        elif "lr" in m:
            groups = [(f"{model} lr {k:g}", d) for k, d in m.groupby("lr")]
        else:
            groups = [(str(model), m)]
        for j, (name, d) in enumerate(groups):
            hit = d.dropna(subset=["speedup"])
            if not hit.empty:
                fig.add_trace(
                    go.Scatter(
                        x=hit["delay"], y=hit["speedup"], mode="markers", name=name,
                        text=hit["label"],
                        marker={"size": 9, "color": colour, "symbol": symbols[j % len(symbols)]},
                    )
                )  # fmt: skip
            if "speedup_upper_bound" in d:
                nr = d[d["speedup"].isna() & d["speedup_upper_bound"].notna()]
                if not nr.empty:
                    fig.add_trace(
                        go.Scatter(
                            x=nr["delay"], y=nr["speedup_upper_bound"], mode="markers",
                            name=f"{name}: not reached (< bound)", text=nr["label"],
                            marker={"size": 9, "color": colour, "symbol": "triangle-down-open"},
                        )
                    )  # fmt: skip
    if len(t):
        lo, hi = float(t["delay"].min()), float(t["delay"].max())
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="speedup = t_gen/t_mem",
                line={"dash": "dot", "color": "gray"},
            )
        )
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(type="log", title_text="dense run's grokking delay t_gen / t_mem")
    fig.update_yaxes(type="log", title_text="ticket speedup vs dense (×)")
    fig.update_layout(
        title=title or "When do tickets matter? Speedup vs grokking delay", height=450
    )
    return fig


def mask_step_figure(df: pd.DataFrame, t_mem: int | None, t_gen: int | None) -> go.Figure:
    """Ticket speedup vs the step its mask was cut at (log x; step 0 drawn at
    1), with the mask's Jaccard overlap with the final mask and the share of
    its kept embedding weight in the key frequencies on the right axis; t_mem
    and t_gen marked. Tickets that never reached 95% are open triangles at
    their upper bound."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = df["mask_step"].clip(lower=1)
    fig.add_trace(go.Scatter(x=x, y=df["speedup"], mode="lines+markers", name="ticket speedup"))
    nr = df[df["speedup"].isna()]
    if not nr.empty:
        fig.add_trace(
            go.Scatter(
                x=nr["mask_step"].clip(lower=1), y=nr["speedup_upper_bound"], mode="markers",
                name="not reached (< bound)",
                marker={"symbol": "triangle-down-open", "color": "#d62728", "size": 9},
            )
        )  # fmt: skip
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
            fig.add_annotation(x=math.log10(step), y=1.05, yref="paper", text=label,
                               showarrow=False)  # fmt: skip
    fig.update_xaxes(type="log", title_text="step the mask was taken at (0 shown at 1)")
    fig.update_yaxes(type="log", title_text="speedup vs dense (×)", secondary_y=False)
    fig.update_yaxes(title_text="overlap / share", range=[0, 1.05], secondary_y=True)
    fig.update_layout(title="Tickets from each checkpoint of one dense run", height=450)
    return fig


def llc_curves(curves: Mapping[int, Mapping[str, pd.DataFrame]], title: str = "") -> go.Figure:
    """The local learning coefficient (± s.e. over chains) vs step of every
    run of each seed that has it (one panel per seed, log step axis): the
    ticket, the dense run and the controls at the same steps.

    ``curves[seed][run]`` is a run's sweep frame (rows ``llc_mean`` and
    ``llc_se``, from ``interp sweep RUN --analyzer llc``)."""
    seeds = sorted(s for s in curves if curves[s])
    if not seeds:
        raise InputError("no LLC rows to plot")
    fig = make_subplots(rows=1, cols=len(seeds), subplot_titles=[f"seed {s}" for s in seeds])
    palette = _palette(sorted({r for s in seeds for r in curves[s]}))
    for col, seed in enumerate(seeds, start=1):
        for run, df in sorted(curves[seed].items()):
            piv = df[df["layer"].isna()].pivot_table(index="step", columns="metric", values="value")
            if "llc_mean" not in piv:
                continue
            piv = piv[piv.index > 0]
            se = piv["llc_se"] if "llc_se" in piv else None
            fig.add_trace(
                go.Scatter(
                    x=piv.index, y=piv["llc_mean"], name=run, legendgroup=run,
                    showlegend=col == 1, mode="lines+markers",
                    line={"color": palette[run], "width": 3 if run == "dense" else 1.5},
                    error_y=None if se is None else {"type": "data", "array": se},
                ),
                row=1, col=col,
            )  # fmt: skip
        fig.update_xaxes(type="log", title_text="step", row=1, col=col)
    fig.update_yaxes(title_text="LLC λ̂", row=1, col=1)
    fig.update_layout(
        title=title or "Local learning coefficient: ticket vs dense vs controls at the same steps",
        height=380,
    )
    return fig


def _palette(runs: list[str]) -> dict[str, str]:
    base = [
        "#000000",
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#637939",
        "#8c6d31",
    ]
    ordered = sorted(runs, key=lambda r: (r != "dense", r))
    return {r: base[i % len(base)] for i, r in enumerate(ordered)}


__all__ = ["accuracy_curves", "mask_step_figure", "rate_sweep", "regime_figure", "speedup_bars"]
