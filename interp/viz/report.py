"""Offline HTML pages of plotly figures, and the per-run report.

The plotly.js bundle is inlined once per page, so the file opens with no
network. Every piece of text that reaches the page is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from interp.training.store import atomic_write_text


def figures_html(
    figures: Sequence[go.Figure],
    title: str,
    intro_html: str = "",
    extra_body: str = "",
    extra_head: str = "",
) -> str:
    """One self-contained HTML page: plotly.js inlined once, then each figure,
    then ``extra_body`` (e.g. circuitsvis views whose bundle is in ``extra_head``)."""
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%"))
    body = "\n".join(f'<div class="fig">{p}</div>' for p in parts)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        f".fig{{margin:1.5em 0}}</style>{extra_head}</head><body>"
        f"<h1>{html.escape(title)}</h1>{intro_html}{body}{extra_body}</body></html>\n"
    )


def write_figures(
    figures: Sequence[go.Figure], path: str | Path, title: str, intro_html: str = "", **kw: str
) -> Path:
    """Write :func:`figures_html` atomically to ``path`` (``kw``: extra_body, extra_head)."""
    path = Path(path)
    atomic_write_text(path, figures_html(figures, title, intro_html, **kw))
    return path


def table_html(rows: dict[str, Any]) -> str:
    """A two-column key/value table, escaped."""
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_run_report(run_path: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` with the layout of the run's experiment."""
    from interp.training.store import open_run

    run = open_run(run_path)
    writers = {
        "grokking": write_grokking_report,
        "tickets": write_grokking_report,  # a ticket run is a grokking-style run directory
        "induction": write_induction_report,
        "repeated_data": write_lm_report,
    }
    if run.experiment not in writers:
        raise ValueError(f"no report layout for experiment {run.experiment!r}")
    return writers[run.experiment](run)


def write_induction_report(run: Any) -> Path:
    """Head analyzers over checkpoints, the phase change, composition at the
    last checkpoint and circuitsvis attention views of the probe (offline)."""
    from interp.analysis import HEAD_ANALYZERS, composition_scores
    from interp.analysis.heads import attention_patterns
    from interp.analysis.sweep import sweep
    from interp.experiments.induction import probe_tokens
    from interp.viz.circuits import attention_view, circuitsvis_bundle
    from interp.viz.figures import (
        composition_figure,
        head_score_heatmap,
        phase_change_figure,
        training_curves,
    )

    df = sweep(run, list(HEAD_ANALYZERS))
    summary = run.summary() or {}
    marks = {"t_induction": summary.get("t_induction")}
    final = run.load(run.last_step)
    figures = [
        phase_change_figure(df, marks=marks),
        training_curves(run.metrics(), title="next-token loss and accuracy"),
        *[
            head_score_heatmap(df, m)
            for m in (
                "induction_scores",
                "prev_token_scores",
                "prefix_matching_scores",
                "copying_scores",
                "direct_logit_copying",
            )
        ],
        composition_figure(composition_scores(final), f"composition at step {run.last_step}"),
    ]
    probe = probe_tokens(run.config)[0]
    pats = attention_patterns(final, probe[None])[0]
    labels = [str(int(t)) for t in probe]
    views = [
        attention_view(
            pats[layer],
            labels,
            [f"L{layer}H{h}" for h in range(pats.shape[1])],
            f"attention at step {run.last_step}, layer {layer} (probe: two copies)",
        )
        for layer in range(pats.shape[0])
    ]
    cfg = run.config
    info = {
        "run": str(run.path),
        "data": f"{cfg.data.kind} sequences, vocab {cfg.data.vocab}, length {cfg.data.seq_len}",
        "model": f"{cfg.model.n_layers} layers × {cfg.model.n_heads} heads, "
        f"d_model {cfg.model.d_model}" + (", attention-only" if cfg.model.d_mlp is None else ""),
        "seed": cfg.seed,
        **{k: v for k, v in summary.items()},
    }
    return write_figures(
        figures,
        run.path / "report.html",
        f"induction report: {run.path.name}",
        table_html(info),
        extra_body="\n".join(views),
        extra_head=f"<script>{circuitsvis_bundle()}</script>",
    )


def write_grokking_report(run: Any, steps_for_spectrum: Sequence[int] | None = None) -> Path:
    """Sweep the progress measures of a grokking run and write ``RUN_DIR/report.html``.

    The page holds the run summary, training curves, progress measures and the
    embedding Fourier spectrum at init, around t_mem, around t_gen and at the end.
    """
    from interp.analysis.fourier import (
        embedding_frequency_norms,
        fourier_progress,
        run_key_frequencies,
        token_embedding,
    )
    from interp.analysis.sweep import sweep
    from interp.training.trainer import summarize
    from interp.viz.figures import fourier_spectrum, progress_figure, training_curves

    metrics = run.metrics()
    summary = summarize(metrics.to_dict("records"))
    marks = {"t_mem": summary["t_mem"], "t_gen": summary["t_gen"]}
    keys = run_key_frequencies(run)
    sweep_df = sweep(run, [fourier_progress])
    steps = run.steps
    if steps_for_spectrum is None:
        chosen = {steps[0], steps[-1]}
        for t in (summary["t_mem"], summary["t_gen"]):
            if t is not None:
                chosen.add(min(steps, key=lambda s, t=t: abs(s - t)))
        steps_for_spectrum = sorted(chosen)
    p = run.config.data.p
    spectra = {
        s: embedding_frequency_norms(token_embedding(run.load(s), p)).tolist()
        for s in steps_for_spectrum
    }
    figures = [
        training_curves(metrics, marks, title="train / test loss and accuracy"),
        progress_figure(sweep_df, marks, title="progress measures (Nanda et al. §5)"),
        fourier_spectrum(spectra, keys),
    ]
    cfg = run.config
    info = {
        "run": str(run.path),
        "data": f"(a {cfg.data.op} b) mod {p}, {cfg.data.pairs} pairs, "
        f"train fraction {cfg.data.train_fraction}",
        "model": type(cfg.model).__name__,
        "seed": cfg.seed,
        "key frequencies (final checkpoint)": keys,
        **{k: v for k, v in summary.items() if k != "threshold"},
    }
    return write_figures(
        figures, run.path / "report.html", f"grokking report: {run.path.name}", table_html(info)
    )


def write_lm_report(run: Any) -> Path:
    """A repeated-data language-model run: its losses over training (held-out,
    repeated subset, unique, copying) and head scores over checkpoints."""
    import plotly.graph_objects as go

    from interp.analysis import induction_scores, prefix_matching_scores, prev_token_scores
    from interp.analysis.sweep import analyzer_name, sweep
    from interp.experiments.repeated_data import run_head_analyzers
    from interp.viz.figures import head_score_heatmap

    m = run.metrics()
    loss = go.Figure()
    for split, metric in (("test", "loss"), ("repeated", "loss"), ("unique", "loss"),
                          ("copy", "loss_first"), ("copy", "loss_later")):  # fmt: skip
        d = m[(m["split"] == split) & (m["metric"] == metric) & (m["step"] > 0)].sort_values("step")
        if not d.empty:
            loss.add_trace(go.Scatter(x=d["step"], y=d["value"], name=f"{split} {metric}"))
    loss.update_xaxes(type="log", title_text="step")
    loss.update_yaxes(title_text="nats / token")
    loss.update_layout(title="Losses over training", height=420)
    probes = (prefix_matching_scores, induction_scores, prev_token_scores)
    df = sweep(run, list(run_head_analyzers(run.config, probes)))
    figures = [loss, *[head_score_heatmap(df, analyzer_name(fn)) for fn in probes]]
    info = {"run": str(run.path), **(run.summary() or {})}
    return write_figures(figures, run.path / "report.html", f"LM report: {run.path.name}",
                         table_html(info))  # fmt: skip
