"""Visualisation: plotly figures and offline HTML reports."""

from interp.viz.figures import fourier_spectrum, progress_figure, training_curves
from interp.viz.report import figures_html, table_html, write_figures

__all__ = [
    "figures_html",
    "fourier_spectrum",
    "progress_figure",
    "table_html",
    "training_curves",
    "write_figures",
]
