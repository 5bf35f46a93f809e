"""Tickets whose masks are cut from different checkpoints of one dense run (a
study beyond the Grokking Tickets paper; the rewind is always the init):
speedup vs the step the mask came from, next to the mask's Jaccard overlap
with the final mask and the share of its kept embedding weight in the key
frequencies (:func:`interp.pruning.overlap.ticket_structure`).

Spec and presets: :class:`interp.config.tickets.CurveSpec`, ``CURVES``.
Layout: ``OUT/mask_step_<step>/`` per ticket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from interp.config.core import ConfigError
from interp.config.tickets import CURVES, CurveSpec
from interp.experiments.runner import Job, JobResult, Study, run_study
from interp.experiments.ticket_suite import cut_from_dense, default_mask_steps, key_columns
from interp.training.rundir import Run, open_run


def _dense(spec: CurveSpec) -> tuple[Run, dict[str, Any]]:
    if not spec.source:
        raise ConfigError("source: give the dense grokking run directory")
    dense = open_run(spec.source)
    summary = dense.summary() or {}
    if summary.get("t_gen") is None:
        raise ConfigError(f"{spec.source} never reached 95% test accuracy: no speedup to measure")
    return dense, summary


def mask_steps(spec: CurveSpec, dense: Run, summary: Mapping[str, Any]) -> list[int]:
    steps = list(spec.steps) or default_mask_steps(
        dense.steps, summary.get("t_mem"), summary["t_gen"], spec.n_steps
    )
    bad = sorted(set(steps) - set(dense.steps))
    if bad:
        raise ConfigError(f"{spec.source} has no checkpoints at {bad}; steps: {dense.steps}")
    return steps


class TicketCurve(Study):
    """``interp experiment ticket-curve``."""

    name = "ticket-curve"
    selects = frozenset({"steps", "n_steps"})

    def jobs(self, spec: CurveSpec, out: Path) -> list[Job]:
        dense, summary = _dense(spec)
        cap = math.ceil(spec.budget * summary["t_gen"]) + spec.stop_after_gen
        return [
            Job(
                f"mask_step_{s:08d}",
                "tickets",
                cut_from_dense(str(dense.path), s, spec.rate, "ticket", cap, spec.stop_after_gen),
                tags={"mask_step": s},
            )
            for s in mask_steps(spec, dense, summary)
        ]

    def tabulate(self, spec: CurveSpec, table: pd.DataFrame) -> dict[str, Any]:
        from interp.analysis.fourier import run_key_frequencies
        from interp.pruning.overlap import ticket_structure

        dense, summary = _dense(spec)
        t_gen = summary["t_gen"]
        structure = ticket_structure(dense, spec.rate).set_index("step")
        dense_keys = run_key_frequencies(dense)
        rows = []
        for r in table.to_dict(orient="records"):
            g = None if pd.isna(r.get("t_gen")) else r["t_gen"]
            rows.append(
                {
                    "mask_step": r["mask_step"],
                    "t_gen": g,
                    "speedup": (t_gen / g) if g else None,
                    "speedup_upper_bound": None if g else t_gen / r["steps"],
                    "final_test_accuracy": r.get("final_test_accuracy"),
                    **structure.loc[
                        r["mask_step"], ["jaccard_with_final", "kept_key_frequency_share"]
                    ]
                    .astype(float)
                    .to_dict(),
                    **key_columns(r.get("key_freqs"), dense_keys, bool(g)),
                }
            )
        return {
            "rows": pd.DataFrame(rows),
            "dense": str(dense.path),
            "t_mem": summary.get("t_mem"),
            "t_gen": t_gen,
            "rate": spec.rate,
        }

    def report(self, out: Path, result: Mapping[str, Any]) -> Path:
        from interp.viz.report import Page, frame_html, write_page
        from interp.viz.tickets import mask_step_figure

        df = pd.DataFrame(result["rows"])
        figs = [mask_step_figure(df, result["t_mem"], result["t_gen"])] if len(df) else []
        page = Page("Tickets from each checkpoint", figs, extra_body=frame_html(df))
        return write_page(page, out / "report.html")

    def log_line(self, job: Job, res: JobResult) -> str:
        s = res.summary
        return (
            f"mask@{job.tags['mask_step']}: t_gen {s.get('t_gen')}  steps {s.get('steps')}  "
            f"({res.seconds:.0f} s)"
        )

    def format(self, result: Mapping[str, Any]) -> str:
        return pd.DataFrame(result["rows"]).to_string(
            index=False, float_format=lambda v: f"{v:.3g}"
        )


STUDY = TicketCurve()


def mask_step_curve(spec: CurveSpec, out: str | Path, **kw: Any) -> pd.DataFrame:
    """Train the curve under ``out``; returns its rows (``OUT/results.csv``)."""
    return pd.DataFrame(run_study(STUDY, spec, out, **kw)["rows"])


__all__ = ["CURVES", "STUDY", "CurveSpec", "TicketCurve", "default_mask_steps", "mask_step_curve"]
