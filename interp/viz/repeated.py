"""Figures of the repeated-data grid (Hernandez et al. 2022, Fig. 2 shape):
test loss vs repeated epochs with the unique-data references, copying and
memorisation measures vs epochs, and test loss, copying gain and prefix
matching over training."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import DEFAULT_PLOTLY_COLORS
from plotly.subplots import make_subplots

from interp.config.core import InputError
from interp.config.repeated_data import CONTROLS

_REF_STYLE = {
    "f0": ("f = 0 (all unique)", "dash"),
    "unique-fewer-steps": ("unique only, fewer steps", "dot"),
    "unique-same-steps": ("unique only, same steps", "dashdot"),
}


def _group_colors(frame: pd.DataFrame) -> dict[tuple[str, float], str]:
    """One plotly colour per (size, f) of the repeated runs, in sorted order,
    so that every figure of a grid draws a given (size, f) in the same colour."""
    keys = sorted(set(zip(frame["size"], frame["f"].astype(float), strict=True)))
    palette = DEFAULT_PLOTLY_COLORS
    return {key: palette[k % len(palette)] for k, key in enumerate(keys)}


def loss_vs_epochs(agg: pd.DataFrame, title: str = "") -> go.Figure:
    """Mean test loss (± standard error over seeds) vs E, one line per (size, f);
    horizontal lines, as seed means: the f = 0 baseline of each size (gray) and
    the unique-only controls of each (size, f) in that line's colour. Where E
    points have fewer seeds than the controls, read :func:`damage_vs_epochs`,
    which pairs every run with its own seed's control."""
    rep = agg[agg["kind"] == "repeated"]
    if rep.empty:
        raise InputError("no repeated-data runs in the table")
    fig = go.Figure()
    colors = _group_colors(rep)
    drawn_f0: set[str] = set()
    for (size, f), d in rep.groupby(["size", "f"]):
        d, color = d.sort_values("E"), colors[(size, float(f))]
        fig.add_trace(
            go.Scatter(
                x=d["E"], y=d["test_loss_mean"], mode="lines+markers", name=f"{size}, f={f:g}",
                line={"color": color},
                error_y={"type": "data", "array": d["se"].fillna(0), "visible": True},
            )
        )  # fmt: skip
        for kind, (label, dash) in _REF_STYLE.items():
            ref = agg[(agg["kind"] == kind) & (agg["size"] == size)]
            if kind == "f0":
                if size in drawn_f0:
                    continue
                drawn_f0.add(size)
                line_color, text = "gray", f"{size}: {label}"
            else:
                ref = ref[ref["f"] == f]
                line_color, text = color, f"{size}, f={f:g}: {label}"
            if ref.empty:
                continue
            fig.add_hline(
                y=float(ref["test_loss_mean"].iloc[0]), line_dash=dash, line_color=line_color,
                annotation_text=text, annotation_position="top left",
                annotation_font_color=line_color,
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="repeated epochs E")
    fig.update_yaxes(title_text="held-out test loss (nats/token)")
    fig.update_layout(title=title or "Test loss vs repetition (mean ± s.e. over seeds)", height=480)
    return fig


def damage_vs_epochs(paired: pd.DataFrame, agg: pd.DataFrame, title: str = "") -> go.Figure:
    """Test loss of each repeated run minus the unique-only control of its own
    seed and f (left: fewer steps, right: same steps), vs E: seeds as dots, their
    mean ± standard error as the line, one colour per (size, f). Above 0 means
    worse than not training on the repeated tokens at all — the comparison
    Hernandez et al. 2022 (§3, Fig. 2) make against unique-data models, paired
    by seed so that a point run on one seed is read against that seed's controls.
    ``paired`` has one row per run with columns ``vs_<control>``
    (:func:`interp.experiments.repeated_grid.paired_differences`); ``agg`` their
    means over seeds with ``vs_<control>_se``
    (:func:`interp.experiments.repeated_grid.aggregate`)."""
    rep = paired[paired["kind"] == "repeated"]
    if rep.empty:
        raise InputError("no repeated-data runs in the table")
    agg = agg[agg["kind"] == "repeated"]
    titles = [f"minus the {c.replace('-', ' ')} control" for c in CONTROLS]
    fig = make_subplots(rows=1, cols=len(CONTROLS), subplot_titles=titles, shared_yaxes=True)
    colors = _group_colors(rep)
    for (size, f), d in rep.groupby(["size", "f"]):
        color, name = colors[(size, float(f))], f"{size}, f={f:g}"
        a = agg[(agg["size"] == size) & (agg["f"] == f)].sort_values("E")
        for j, ctrl in enumerate(CONTROLS, start=1):
            col = f"vs_{ctrl}"
            m = a.dropna(subset=[col])
            fig.add_trace(
                go.Scatter(x=m["E"], y=m[col], mode="lines+markers", name=name,
                           legendgroup=name, showlegend=j == 1, line={"color": color},
                           error_y={"type": "data", "array": m[f"{col}_se"].fillna(0),
                                    "visible": True}),
                row=1, col=j,
            )  # fmt: skip
            pts = d.dropna(subset=[col])
            fig.add_trace(
                go.Scatter(x=pts["E"], y=pts[col], mode="markers", name=f"{name} (per seed)",
                           legendgroup=name, showlegend=False, opacity=0.45,
                           marker={"color": color, "size": 6},
                           text=[f"seed {s}" for s in pts["seed"]]),
                row=1, col=j,
            )  # fmt: skip
            fig.add_hline(y=0.0, line_color="gray", row=1, col=j)
    fig.update_xaxes(type="log", title_text="repeated epochs E")
    fig.update_yaxes(title_text="test-loss difference (nats/token)", col=1)
    fig.update_layout(
        title=title or "Damage vs repetition, paired by seed (above 0: worse than the control)",
        height=460,
    )
    return fig


MEASURE_PANELS: tuple[tuple[str, str], ...] = (
    ("copy_loss_later_mean", "loss on later copies of a held-out passage"),
    ("copy_gain_mean", "copying gain (loss copy 1 − copies 2+)"),
    ("prefix_matching_max_mean", "max prefix-matching score"),
    ("effective_ratio_mean", "effective size / actual size"),
    ("repeated_loss_mean", "loss on the repeated subset"),
    ("verbatim_repeated_mean", "repeated subset reproduced verbatim"),
)


def measures_vs_epochs(agg: pd.DataFrame, title: str = "") -> go.Figure:
    """What repetition does besides test loss, vs E (means over seeds, one
    colour per (size, f) as in :func:`loss_vs_epochs`), with each size's f = 0
    value as a black cross at E = 1: Hernandez et al. 2022 §4's copying
    evaluation (loss on the later copies of a held-out passage and the gain over
    its first copy), the best head's prefix-matching score, the effective model
    size as a fraction of the actual one (§3, Fig. 1: the f = 0 power law
    inverted at the run's test loss; NaN with fewer than two sizes), and loss on
    and verbatim reproduction of the repeated subset (memorisation)."""
    rep = agg[agg["kind"] == "repeated"]
    if rep.empty:
        raise InputError("no repeated-data runs in the table")
    colors = _group_colors(rep)
    fig = make_subplots(rows=3, cols=2, subplot_titles=[c[1] for c in MEASURE_PANELS])
    base = agg[(agg["kind"] == "f0") & agg["size"].isin(set(rep["size"]))]
    base_legend = True  # one "f = 0" legend entry, on the first panel that has f = 0 values
    for i, (col, _) in enumerate(MEASURE_PANELS):
        r, c = i // 2 + 1, i % 2 + 1
        for (size, f), d in rep.groupby(["size", "f"]):
            d, name = d.sort_values("E"), f"{size}, f={f:g}"
            y = d[col] if col in d else [math.nan] * len(d)
            fig.add_trace(
                go.Scatter(x=d["E"], y=y, mode="lines+markers", name=name, legendgroup=name,
                           showlegend=i == 0, line={"color": colors[(size, float(f))]}),
                row=r, col=c,
            )  # fmt: skip
        if col in base and base[col].notna().any():
            fig.add_trace(
                go.Scatter(x=[1] * len(base), y=base[col], mode="markers", name="f = 0",
                           legendgroup="f = 0", marker={"symbol": "x", "color": "black"},
                           showlegend=base_legend, text=list(base["size"])),
                row=r, col=c,
            )  # fmt: skip
            base_legend = False
    fig.update_xaxes(type="log", title_text="E")
    fig.update_layout(
        title=title or "What repetition does to copying, effective size and memorisation",
        height=900,
    )
    return fig


TRAINING_PANELS: tuple[tuple[str, str, str], ...] = (
    ("test", "loss", "held-out test loss"),
    ("copy", "gain", "copying gain"),
    ("heads", "prefix_matching_max", "prefix matching (random tokens)"),
)


def training_curves_by_run(
    curves: Mapping[str, pd.DataFrame],
    label: str = "",
    panels: tuple[tuple[str, str, str], ...] = TRAINING_PANELS,
) -> go.Figure:
    """Test loss, copying gain and the best head's prefix-matching score over
    training, one line per run (``curves[run]``: its metrics frame, columns
    step/split/metric/value); a panel is left empty for runs that did not
    log its metric. ``label`` names the size and seed shown."""
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[title for _, _, title in panels])  # fmt: skip
    colors = DEFAULT_PLOTLY_COLORS
    for k, (run, m) in enumerate(curves.items()):
        for r, (split, metric, _) in enumerate(panels, start=1):
            d = m[(m["split"] == split) & (m["metric"] == metric) & (m["step"] > 0)]
            d = d.sort_values("step")
            fig.add_trace(
                go.Scatter(x=d["step"], y=d["value"], mode="lines", name=run,
                           legendgroup=run, showlegend=r == 1,
                           line={"color": colors[k % len(colors)]}),
                row=r, col=1,
            )  # fmt: skip
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="step", row=len(panels), col=1)
    fig.update_layout(title=f"Over training ({label})" if label else "Over training",
                      height=300 * len(panels))  # fmt: skip
    return fig


__all__ = [
    "MEASURE_PANELS", "damage_vs_epochs", "loss_vs_epochs", "measures_vs_epochs",
    "training_curves_by_run",
]  # fmt: skip


def llc_by_run(llc: pd.DataFrame, title: str = "") -> go.Figure:
    """The local learning coefficient of each run's last checkpoint: one
    marker per seed and the mean over seeds, per size and run."""
    fig = go.Figure()
    for size, g in llc.groupby("size"):
        order = list(dict.fromkeys(g.sort_values("run")["run"]))
        fig.add_trace(go.Scatter(x=g["run"], y=g["llc_mean"], mode="markers",
                                 name=f"{size}, one seed", marker={"size": 7, "opacity": 0.6},
                                 text=[f"seed {s}" for s in g["seed"]]))  # fmt: skip
        mean = g.groupby("run")["llc_mean"].mean().reindex(order)
        fig.add_trace(go.Scatter(x=order, y=mean.to_numpy(), mode="markers",
                                 name=f"{size}, mean over seeds",
                                 marker={"symbol": "line-ew-open", "size": 24}))  # fmt: skip
    fig.update_yaxes(title_text="LLC λ̂ at the last checkpoint")
    fig.update_layout(title=title or "Local learning coefficient at the end of each run",
                      height=380)  # fmt: skip
    return fig
