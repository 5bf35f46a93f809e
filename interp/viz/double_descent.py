"""Figures of double descent: test and train error against width (with the
seed spread and the interpolation width marked), noisy-label fit against
width, test error over training (epoch-wise), against training-set size
(sample-wise) and per optimizer setting (Liu & Flanigan), and one run's
curves. Inputs are the data frames of
:mod:`interp.experiments.double_descent_grid` (never calls experiments)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.config.core import InputError

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def _band(fig: go.Figure, x: Any, mean: Any, se: Any, colour: str, name: str, **kw: Any) -> None:
    """A mean line with a ± s.e. band (s.e. NaN: no band)."""
    se = pd.Series(se).fillna(0.0).to_numpy()
    fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1],
                             y=list(mean + se) + list((mean - se)[::-1]), fill="toself",
                             fillcolor=colour, opacity=0.2, line={"width": 0},
                             showlegend=False, hoverinfo="skip"), **kw)  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=mean, name=name, mode="lines+markers",
                             line={"color": colour}), **kw)  # fmt: skip


def width_curves(modelwise: pd.DataFrame, peaks: pd.DataFrame) -> go.Figure:
    """Test error (solid) and train error (dotted) vs width per model and
    noise, ± s.e. over seeds; the interpolation width as a dashed line."""
    if modelwise.empty:
        raise InputError("no model-wise runs to plot")
    fig = make_subplots(rows=1, cols=2, subplot_titles=["test error", "train error"])
    for i, ((arch, noise), g) in enumerate(modelwise.groupby(["model", "label_noise"])):
        c = _COLOURS[i % len(_COLOURS)]
        g = g.sort_values("width")
        name = f"{arch}, noise {noise:g}"
        _band(fig, g["width"], g["test_error_mean"], g["test_error_se"], c, name, row=1, col=1)
        _band(fig, g["width"], g["train_error_mean"], g["train_error_se"], c, name + " (train)",
              row=1, col=2)  # fmt: skip
        p = peaks[(peaks["model"] == arch) & (peaks["label_noise"] == noise)] if len(peaks) else []
        if len(p) and pd.notna(p["interpolation_width"].iloc[0]):
            fig.add_vline(x=float(p["interpolation_width"].iloc[0]), line_dash="dash",
                          line_color=c, row=1, col=1)  # fmt: skip
    fig.update_xaxes(type="log", title_text="width")
    fig.update_layout(title="Model-wise: error vs width (± s.e. over seeds; dashed: the "
                      "narrowest width with train error 0 on every seed)", height=420)  # fmt: skip
    return fig


def noisy_fit_curves(modelwise: pd.DataFrame) -> go.Figure:
    """Fraction of noisy training labels fitted, and test error, vs width."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    noisy = modelwise[modelwise["label_noise"] > 0]
    for i, ((arch, noise), g) in enumerate(noisy.groupby(["model", "label_noise"])):
        c = _COLOURS[i % len(_COLOURS)]
        g = g.sort_values("width")
        fig.add_trace(go.Scatter(x=g["width"], y=g["noisy_fit_fraction_mean"], mode="lines+markers",
                                 name=f"noisy labels fitted ({arch}, {noise:g})",
                                 line={"color": c}), secondary_y=False)  # fmt: skip
        fig.add_trace(go.Scatter(x=g["width"], y=g["test_error_mean"], mode="lines",
                                 name=f"test error ({arch}, {noise:g})",
                                 line={"color": c, "dash": "dot"}), secondary_y=True)  # fmt: skip
    fig.update_xaxes(type="log", title_text="width")
    fig.update_yaxes(title_text="fraction of noisy labels fitted", secondary_y=False)
    fig.update_yaxes(title_text="test error", secondary_y=True)
    fig.update_layout(title="Which widths memorise the noisy labels", height=400)
    return fig


def epoch_curves(epochwise: pd.DataFrame) -> go.Figure:
    """Test and train error and noisy-label fit over training (mean over seeds)."""
    fig = go.Figure()
    for col, c in (("test_error", "#d62728"), ("train_error", "#1f77b4"), ("noisy_fit", "#2ca02c")):
        if col in epochwise:
            d = epochwise[epochwise["step"] > 0]
            fig.add_trace(go.Scatter(x=d["step"], y=d[col], name=col, line={"color": c}))
    first = epochwise.iloc[0] if len(epochwise) else {}
    fig.update_xaxes(type="log", title_text="step")
    fig.update_layout(
        title=f"Epoch-wise: {first.get('model', '')} width {first.get('width', '')}, "
        f"noise {first.get('label_noise', '')} (mean over seeds)", height=380,
    )  # fmt: skip
    return fig


def sample_curve(samplewise: pd.DataFrame) -> go.Figure:
    """Test error vs training-set size (± s.e.)."""
    fig = go.Figure()
    g = samplewise.sort_values("n_train")
    _band(fig, g["n_train"], g["test_error_mean"], g["test_error_se"], "#9467bd", "test error")
    fig.update_xaxes(type="log", title_text="training examples")
    fig.update_layout(title="Sample-wise: test error vs training-set size", height=360)
    return fig


def factor_curves(rows: pd.DataFrame, factors: pd.DataFrame) -> go.Figure:
    """Test error vs width for each optimizer setting, named with its train
    loss at the interpolation width (Liu & Flanigan's condition)."""
    fig = go.Figure()
    fac = rows[rows["roles"].str.contains("factor")]
    info = factors.set_index("factor") if len(factors) else pd.DataFrame()
    for i, (name, g) in enumerate(fac.groupby("factor", sort=False)):
        m = g.groupby("width")["test_error"].agg(["mean", "sem"]).reset_index()
        loss = info.loc[name, "train_loss_at_threshold"] if name in info.index else float("nan")
        _band(fig, m["width"], m["mean"], m["sem"], _COLOURS[i % len(_COLOURS)],
              f"{name} (train loss {loss:.3g})")  # fmt: skip
    fig.update_xaxes(type="log", title_text="width")
    fig.update_layout(title="Optimization factors: test error vs width per setting", height=420)
    return fig


def grid_page(result: Mapping[str, Any]) -> Any:
    """The experiment's report page."""
    from interp.viz.report import Page, frame_html

    rows = pd.DataFrame(result["rows"])
    modelwise, peaks = pd.DataFrame(result["modelwise"]), pd.DataFrame(result["peaks"])
    figs = []
    if len(modelwise):
        figs += [width_curves(modelwise, peaks)]
        if (modelwise["label_noise"] > 0).any():
            figs.append(noisy_fit_curves(modelwise))
    if result.get("epochwise"):
        figs.append(epoch_curves(pd.DataFrame(result["epochwise"])))
    if result.get("samplewise"):
        figs.append(sample_curve(pd.DataFrame(result["samplewise"])))
    factors = pd.DataFrame(result.get("factors", []))
    if len(factors):
        figs.append(factor_curves(rows, factors))
    body = ""
    for title, key in (("Peaks (model-wise)", "peaks"), ("Optimization factors", "factors")):
        if result.get(key):
            body += f"<h2>{html.escape(title)}</h2>" + frame_html(pd.DataFrame(result[key]))
    body += "<h2>All runs</h2>" + frame_html(rows.drop(columns=["run_dir"], errors="ignore"))
    intro = ("<p>Test error is 1 − accuracy on the clean test set; noisy labels are training "
             "labels replaced by another class. Peak heights are seed-paired differences of "
             "test error (± s.e.).</p>")  # fmt: skip
    return Page("Double descent", figs, intro_html=intro, extra_body=body)


def run_page(run: Any) -> Any:
    """One double-descent run: loss and error over training and the share of
    noisy labels fitted."""
    from interp.viz.figures import training_curves
    from interp.viz.report import Page

    m = run.metrics()
    figs = [training_curves(m[m["split"].isin(["train", "test"])])]
    fit = m[(m["metric"] == "accuracy") & m["split"].isin(["noisy", "clean"]) & (m["step"] > 0)]
    if len(fit):
        fig = go.Figure()
        for split, g in fit.groupby("split"):
            fig.add_trace(go.Scatter(x=g["step"], y=g["value"], name=f"{split} labels fitted"))
        fig.update_xaxes(type="log", title_text="step")
        fig.update_layout(title="Training labels fitted (noisy vs clean)", height=360)
        figs.append(fig)
    cfg = run.config
    info = {"dataset": cfg.data.dataset, "model": cfg.model.arch, "width": cfg.model.width,
            "label noise": cfg.data.label_noise, **(run.summary() or {})}  # fmt: skip
    return Page(f"Double descent run: {run.path.name}", figs, info=info)


__all__ = ["epoch_curves", "factor_curves", "grid_page", "noisy_fit_curves", "run_page",
           "sample_curve", "width_curves"]  # fmt: skip
