"""Visualisation: plotly figures and offline HTML reports."""

from interp.viz.figures import (
    composition_figure,
    fourier_spectrum,
    head_score_heatmap,
    phase_change_figure,
    progress_figure,
    training_curves,
)
from interp.viz.report import figures_html, table_html, write_figures

__all__ = [
    "composition_figure",
    "figures_html",
    "fourier_spectrum",
    "head_score_heatmap",
    "phase_change_figure",
    "progress_figure",
    "table_html",
    "training_curves",
    "write_figures",
]
