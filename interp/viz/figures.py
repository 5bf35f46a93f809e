"""Plotly figures of training curves and grokking progress measures.

Each function returns a ``plotly.graph_objects.Figure``; :mod:`interp.viz.report`
writes them into one offline HTML page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.config.core import InputError

_COLORS = {"train": "#1f77b4", "test": "#d62728"}


def _mark_steps(fig: go.Figure, marks: Mapping[str, int | None], rows: int, cols: int = 1) -> None:
    """Dotted vertical lines at the marked steps on log-x subplots.

    ``add_vline`` converts to log coordinates itself; annotations on a log
    axis take log10 coordinates.
    """
    for label, step in marks.items():
        if not step or step <= 0:
            continue
        for r in range(1, rows + 1):
            for c in range(1, cols + 1):
                fig.add_vline(x=step, line_dash="dot", line_color="gray", row=r, col=c)
        fig.add_annotation(
            x=math.log10(step),
            y=1.0,
            xref="x",
            yref="paper",
            text=f"{label}={step}",
            showarrow=False,
            yshift=12,
            font={"size": 11, "color": "gray"},
        )


def training_curves(
    metrics: pd.DataFrame, marks: Mapping[str, int | None] | None = None, title: str = ""
) -> go.Figure:
    """Train/test loss (log y) and accuracy vs step (log x; step 0 is omitted)."""
    df = metrics[metrics["step"] > 0]
    if df.empty:
        raise InputError("no metrics after step 0 to plot")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for split in ("train", "test"):
            d = df[(df["split"] == split) & (df["metric"] == metric)].sort_values("step")
            if d.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=d["step"],
                    y=d["value"],
                    mode="lines",
                    name=f"{split} {metric}",
                    line={"color": _COLORS.get(split)},
                    legendgroup=split,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    if marks:
        _mark_steps(fig, marks, rows=1, cols=2)
    fig.update_layout(title=title or "training curves", height=420)
    return fig


def progress_figure(
    sweep_df: pd.DataFrame, marks: Mapping[str, int | None] | None = None, title: str = ""
) -> go.Figure:
    """Nanda et al. Fig. 7-style progress measures over checkpoints: losses
    (train, test, restricted, excluded), key-frequency logit share and embedding
    Gini, the sum of squared weights, and the local learning coefficient when
    ``sweep_df`` holds ``llc_mean`` rows."""
    piv = sweep_df[sweep_df["layer"].isna()].pivot_table(
        index="step", columns="metric", values="value"
    )
    piv = piv[piv.index > 0]
    with_llc = "llc_mean" in piv
    rows = 4 if with_llc else 3
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=(
            "losses", "Fourier sparsity", "sum of squared weights",
            *(["local learning coefficient (± s.e. over chains)"] if with_llc else []),
        ),
    )  # fmt: skip
    loss_series = [
        ("train_loss", "train", "#1f77b4", "solid"),
        ("test_loss", "test", "#d62728", "solid"),
        ("restricted_loss", "restricted (key freqs only, test pairs)", "#2ca02c", "dash"),
        ("restricted_loss_all_pairs", "restricted, all p² pairs", "#2ca02c", "dot"),
        ("excluded_loss", "excluded (key freqs removed, train)", "#9467bd", "dash"),
    ]
    for col, label, color, dash in loss_series:
        if col in piv:
            fig.add_trace(
                go.Scatter(
                    x=piv.index,
                    y=piv[col],
                    name=label,
                    mode="lines",
                    line={"color": color, "dash": dash},
                ),
                row=1,
                col=1,
            )
    for col, label, color in (
        ("key_freq_logit_share", "logit variance in key freqs", "#ff7f0e"),
        ("embedding_gini", "Gini of W_E's frequency norms", "#8c564b"),
        ("neuron_logit_gini", "Gini of W_L's frequency norms", "#e377c2"),
    ):
        if col in piv:
            fig.add_trace(
                go.Scatter(
                    x=piv.index, y=piv[col], name=label, mode="lines", line={"color": color}
                ),
                row=2,
                col=1,
            )
    if "sum_squared_weights" in piv:
        fig.add_trace(
            go.Scatter(
                x=piv.index,
                y=piv["sum_squared_weights"],
                name="Σ w²",
                mode="lines",
                line={"color": "#17becf"},
            ),
            row=3,
            col=1,
        )
    if with_llc:
        se = piv["llc_se"] if "llc_se" in piv else None
        fig.add_trace(
            go.Scatter(
                x=piv.index,
                y=piv["llc_mean"],
                name="LLC λ̂",
                mode="lines+markers",
                line={"color": "#000000"},
                error_y=None if se is None else {"type": "data", "array": se, "visible": True},
            ),
            row=4,
            col=1,
        )
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="step", row=rows, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=2, col=1)
    if marks:
        _mark_steps(fig, marks, rows=rows)
    fig.update_layout(title=title or "progress measures", height=820 + 250 * with_llc)
    return fig


def fourier_spectrum(
    norms_by_step: Mapping[int, Sequence[float]],
    key_freqs: Sequence[int] = (),
    title: str = "",
) -> go.Figure:
    """Embedding norm per frequency k = 1 … p//2 at chosen steps (Nanda et al. Fig. 3)."""
    if not norms_by_step:
        raise InputError("no steps to plot")
    fig = go.Figure()
    for step, norms in sorted(norms_by_step.items()):
        norms = list(norms)
        fig.add_trace(go.Bar(x=list(range(1, len(norms) + 1)), y=norms, name=f"step {step}"))
    for k in key_freqs:
        fig.add_vline(x=k, line_dash="dot", line_color="gray")
    fig.update_layout(
        barmode="group",
        height=400,
        xaxis_title="frequency k",
        yaxis_title="‖W_E along cos_k, sin_k‖",
        title=title or f"embedding Fourier spectrum (key frequencies: {list(key_freqs)})",
    )
    return fig


def head_score_heatmap(sweep_df: pd.DataFrame, metric: str, title: str = "") -> go.Figure:
    """A per-head score over checkpoints: rows are heads (L{layer}H{head}), columns steps."""
    d = sweep_df[(sweep_df["metric"] == metric) & sweep_df["layer"].notna()]
    if d.empty:
        raise InputError(f"no per-head rows for metric {metric!r}")
    d = d.assign(headname=[f"L{int(r.layer)}H{int(r.head)}" for r in d.itertuples()])
    piv = d.pivot_table(index="headname", columns="step", values="value")
    order = sorted(piv.index, key=lambda n: tuple(int(x) for x in n[1:].split("H")))
    piv = piv.loc[order]
    fig = go.Figure(
        go.Heatmap(
            z=piv.values,
            x=[str(s) for s in piv.columns],
            y=list(piv.index),
            colorscale="Viridis",
            colorbar={"title": metric},
        )
    )
    fig.update_layout(
        title=title or metric,
        xaxis_title="step (checkpoint)",
        yaxis_title="head",
        height=max(300, 28 * len(order) + 150),
        yaxis={"autorange": "reversed"},
    )
    return fig


def phase_change_figure(
    sweep_df: pd.DataFrame,
    score: str = "induction_scores",
    icl: str = "copy_gain",
    marks: Mapping[str, int | None] | None = None,
) -> go.Figure:
    """Olsson et al. Fig. 2 style: the best head's score and, on a second
    axis, a copying / in-context-learning measure (``icl``: ``copy_gain``,
    or ``olsson_icl_score`` where the sweep has it) vs step."""
    heads = sweep_df[(sweep_df["metric"] == score) & sweep_df["layer"].notna()]
    best = heads.groupby("step")["value"].max()
    icl_s = sweep_df[(sweep_df["metric"] == icl) & sweep_df["layer"].isna()].set_index("step")[
        "value"
    ]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=best.index, y=best.values, name=f"max {score}", mode="lines+markers")
    )
    fig.add_trace(
        go.Scatter(
            x=icl_s.index, y=icl_s.values, name=icl, mode="lines+markers", line={"color": "#d62728"}
        ),
        secondary_y=True,
    )
    for label, step in (marks or {}).items():
        if step:
            fig.add_vline(
                x=step, line_dash="dot", line_color="gray", annotation_text=f"{label}={step}"
            )
    fig.update_yaxes(title_text=f"max {score}", range=[0, 1.02], secondary_y=False)
    sign = "loss early − late" if icl == "copy_gain" else "loss late − early"
    fig.update_yaxes(title_text=f"{icl} ({sign})", secondary_y=True)
    fig.update_layout(title="phase change", xaxis_title="step", height=420)
    return fig


def llc_figure(
    sweep_df: pd.DataFrame,
    others: Sequence[str] = ("copy_gain",),
    marks: Mapping[str, int | None] | None = None,
    title: str = "",
) -> go.Figure:
    """The local learning coefficient over checkpoints (± s.e. over chains,
    left axis) with scalar measures ``others`` (right axis), e.g. the copy
    gain and the best head's induction score of an induction run."""
    flat = sweep_df[sweep_df["layer"].isna()]
    piv = flat.pivot_table(index="step", columns="metric", values="value")
    if "llc_mean" not in piv:
        raise InputError("the sweep holds no llc_mean rows")
    piv = piv[piv.index > 0]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    se = piv["llc_se"] if "llc_se" in piv else None
    fig.add_trace(
        go.Scatter(
            x=piv.index, y=piv["llc_mean"], name="LLC λ̂", mode="lines+markers",
            line={"color": "#000000"},
            error_y=None if se is None else {"type": "data", "array": se, "visible": True},
        ),
        secondary_y=False,
    )  # fmt: skip
    palette = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
    for i, name in enumerate(others):
        if name in piv:
            fig.add_trace(
                go.Scatter(
                    x=piv.index, y=piv[name], name=name, mode="lines",
                    line={"color": palette[i % len(palette)]},
                ),
                secondary_y=True,
            )  # fmt: skip
        else:
            heads = sweep_df[(sweep_df["metric"] == name) & sweep_df["layer"].notna()]
            if len(heads):
                best = heads.groupby("step")["value"].max()
                best = best[best.index > 0]
                fig.add_trace(
                    go.Scatter(
                        x=best.index, y=best.values, name=f"max {name}", mode="lines",
                        line={"color": palette[i % len(palette)], "dash": "dot"},
                    ),
                    secondary_y=True,
                )  # fmt: skip
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(title_text="LLC", secondary_y=False)
    if marks:
        _mark_steps(fig, marks, rows=1)
    fig.update_layout(title=title or "local learning coefficient", height=420)
    return fig


def composition_figure(scores: Mapping[str, Any], title: str = "") -> go.Figure:
    """Q/K/V composition matrices: earlier heads (rows) into later heads
    (columns); scores or their ratios over the random-init baseline."""
    kinds = [
        k + suffix
        for suffix in ("", "_ratio")
        for k in ("q_composition", "k_composition", "v_composition")
        if k + suffix in scores
    ]
    if not kinds:
        raise InputError("no composition scores to plot")
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=kinds, horizontal_spacing=0.08)
    for i, kind in enumerate(kinds, start=1):
        t = scores[kind]
        n_layers, n_heads = t.shape[0], t.shape[1]
        src = [f"L{l1}H{h1}" for l1 in range(n_layers - 1) for h1 in range(n_heads)]
        dst = [f"L{l2}H{h2}" for l2 in range(1, n_layers) for h2 in range(n_heads)]
        z = t[: n_layers - 1, :, 1:, :].reshape(len(src), len(dst)).tolist()
        fig.add_trace(go.Heatmap(z=z, x=dst, y=src, coloraxis="coloraxis"), row=1, col=i)
    fig.update_layout(
        title=title or "composition scores (earlier head → later head)",
        height=420,
        coloraxis={"colorscale": "Viridis"},
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def mask_overlap_heatmap(table: pd.DataFrame, title: str = "") -> go.Figure:
    """Jaccard overlap of the masks cut at every pair of checkpoints (step × step)."""
    piv = table.pivot_table(index="step_a", columns="step_b", values="jaccard")
    labels = [str(s) for s in piv.index]
    fig = go.Figure(
        go.Heatmap(
            z=piv.values,
            x=labels,
            y=labels,
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            colorbar={"title": "Jaccard"},
        )
    )
    fig.update_layout(
        title=title or "mask overlap across checkpoints",
        height=600,
        xaxis_title="step",
        yaxis_title="step",
    )
    return fig
