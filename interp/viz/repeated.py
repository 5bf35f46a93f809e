"""Figures of the repeated-data grid (Hernandez et al. 2022, Fig. 2 shape):
test loss vs repeated epochs with the unique-data references, copying and
memorisation measures vs epochs, and test loss over training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_REF_STYLE = {
    "f0": ("f = 0 (all unique)", "dash"),
    "unique-fewer-steps": ("unique only, fewer steps", "dot"),
    "unique-same-steps": ("unique only, same steps", "dashdot"),
}


def loss_vs_epochs(agg: pd.DataFrame, title: str = "") -> go.Figure:
    """Mean test loss (± standard error over seeds) vs E, one line per (size, f);
    horizontal lines: the f = 0 baseline and the unique-only controls."""
    rep = agg[agg["kind"] == "repeated"]
    if rep.empty:
        raise ValueError("no repeated-data runs in the table")
    fig = go.Figure()
    for (size, f), d in rep.groupby(["size", "f"]):
        d = d.sort_values("E")
        fig.add_trace(
            go.Scatter(
                x=d["E"], y=d["test_loss_mean"], mode="lines+markers", name=f"{size}, f={f:g}",
                error_y={"type": "data", "array": d["se"].fillna(0), "visible": True},
            )
        )  # fmt: skip
        for kind, (label, dash) in _REF_STYLE.items():
            ref = agg[(agg["kind"] == kind) & (agg["size"] == size)]
            if kind != "f0":
                ref = ref[ref["f"] == f]
            if ref.empty:
                continue
            fig.add_hline(
                y=float(ref["test_loss_mean"].iloc[0]), line_dash=dash, line_color="gray",
                annotation_text=f"{size}: {label}", annotation_position="top left",
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="repeated epochs E")
    fig.update_yaxes(title_text="held-out test loss (nats/token)")
    fig.update_layout(title=title or "Test loss vs repetition (mean ± s.e. over seeds)", height=480)
    return fig


def measures_vs_epochs(agg: pd.DataFrame, title: str = "") -> go.Figure:
    """Copying gain, prefix matching, loss on the repeated subset and verbatim
    memorisation vs E (means over seeds), with the f = 0 value as a marker at E = 1."""
    cols = [
        ("copy_gain_mean", "copying gain (loss copy 1 − copies 2+)"),
        ("prefix_matching_max_mean", "max prefix-matching score"),
        ("repeated_loss_mean", "loss on the repeated subset"),
        ("verbatim_repeated_mean", "repeated subset reproduced verbatim"),
    ]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[c[1] for c in cols])
    rep = agg[agg["kind"] == "repeated"]
    for i, (col, _) in enumerate(cols):
        r, c = i // 2 + 1, i % 2 + 1
        for (size, f), d in rep.groupby(["size", "f"]):
            d = d.sort_values("E")
            fig.add_trace(
                go.Scatter(x=d["E"], y=d[col], mode="lines+markers", name=f"{size}, f={f:g}",
                           legendgroup=f"{size}{f}", showlegend=i == 0),
                row=r, col=c,
            )  # fmt: skip
        base = agg[agg["kind"] == "f0"]
        if col in base and base[col].notna().any():
            fig.add_trace(
                go.Scatter(x=[1] * len(base), y=base[col], mode="markers", name="f = 0",
                           marker={"symbol": "x", "color": "black"}, showlegend=i == 0),
                row=r, col=c,
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="E")
    fig.update_layout(title=title or "What repetition does to copying and memorisation", height=650)
    return fig


def training_curves_by_run(out: Path, table: pd.DataFrame, seed: int | None = None) -> go.Figure:
    """Held-out test loss over training for one seed of every run of the first size."""
    from interp.training.store import open_run

    size = table["size"].iloc[0]
    seed = int(table["seed"].min()) if seed is None else seed
    fig = go.Figure()
    for row in table[(table["size"] == size) & (table["seed"] == seed)].itertuples():
        path = Path(out) / row.size / row.run / f"seed{row.seed}"
        m = open_run(path).metrics()
        d = m[(m["split"] == "test") & (m["metric"] == "loss") & (m["step"] > 0)].sort_values(
            "step"
        )
        fig.add_trace(go.Scatter(x=d["step"], y=d["value"], mode="lines", name=row.run))
    fig.update_xaxes(type="log", title_text="step")
    fig.update_yaxes(title_text="test loss")
    fig.update_layout(title=f"Test loss over training ({size}, seed {seed})", height=450)
    return fig


__all__ = ["loss_vs_epochs", "measures_vs_epochs", "training_curves_by_run"]
