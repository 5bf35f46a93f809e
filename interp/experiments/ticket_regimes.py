"""How the ticket speedup depends on the regime (a study beyond the Grokking
Tickets paper): for each model (the 1-layer transformer and the MLP) and
each setting (a learning rate, a training fraction, or both), a dense run and
its rate-``rate`` ticket per seed. The speedup (dense t_gen / ticket t_gen)
is plotted against the dense run's grokking delay t_gen / t_mem. A ticket
can at best skip the delay, so the question is how much of it it skips.

Spec and presets: :class:`interp.config.tickets.RegimeSpec`, ``REGIMES``.
Layout: ``OUT/<model>-lr<lr>[-frac<f>]/seed<k>/{dense,ticket-r<rate>}/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from interp.config.tickets import REGIMES, RegimeSpec
from interp.experiments.runner import Job, JobResult, Study, run_study
from interp.experiments.ticket_suite import budget, cut_from_dense, prune_step
from interp.training.rundir import open_run


def setting_name(lr: float | None, frac: float | None) -> tuple[str, str]:
    """(label, directory tag) of a setting: ``"lr 0.003 train 0.4"``, ``"lr0.003-frac0.4"``."""
    axes = [
        (label, tag, v)
        for label, tag, v in (("lr", "lr", lr), ("train", "frac", frac))
        if v is not None
    ]
    return (
        " ".join(f"{label} {v:g}" for label, _, v in axes),
        "-".join(f"{tag}{v:g}" for _, tag, v in axes),
    )


def dense_config(
    spec: RegimeSpec, model: str, lr: float | None, frac: float | None, seed: int
) -> Any:
    """The model's grokking preset with the spec's overrides, the setting's lr
    and training fraction, the step cap, and the tickets experiment's stop."""
    from interp.experiments import grokking

    cfg = grokking.preset(spec.presets[model], seed=seed, overrides=spec.dense_overrides)
    train = replace(
        cfg.train,
        steps=spec.steps,
        stop_after_gen=spec.dense_stop_after_gen,
        stop_accuracy=spec.dense_stop_accuracy,
    )
    if lr is not None:
        train = replace(train, lr=lr)
    data = cfg.data if frac is None else replace(cfg.data, train_fraction=frac)
    return replace(cfg, train=train, data=data)


def configure_ticket(spec: RegimeSpec, deps: Mapping[str, JobResult]) -> Any:
    (dense,) = deps.values()
    at = prune_step(open_run(dense.run_dir), spec.prune_at, spec.dense_stop_accuracy)
    steps = budget(2.0, dense.summary, spec.stop_after_gen)  # the tickets' budget
    return cut_from_dense(dense.run_dir, at, spec.rate, "ticket", steps, spec.stop_after_gen)


class TicketRegimes(Study):
    """``interp experiment ticket-regimes``."""

    name = "ticket-regimes"
    selects = frozenset({"models", "lrs", "fractions", "seeds"})

    def jobs(self, spec: RegimeSpec, out: Path) -> list[Job]:
        jobs = []
        for model in spec.models:
            for lr, frac in spec.settings(model):
                label, tag = setting_name(lr, frac)
                sub = f"{model}-{tag}"
                for seed in spec.seeds:
                    dense = dense_config(spec, model, lr, frac, seed)
                    tags = {
                        "model": model,
                        "setting": label,
                        "lr": dense.train.lr,
                        "train_fraction": dense.data.train_fraction,
                        "seed": seed,
                    }
                    key = f"{sub}/seed{seed}/dense"
                    jobs.append(Job(key, "grokking", dense, tags={**tags, "run": "dense"}))
                    jobs.append(
                        Job(
                            f"{sub}/seed{seed}/ticket-r{spec.rate:g}",
                            "tickets",
                            after=(key,),
                            configure=partial(configure_ticket, spec),
                            tags={**tags, "run": "ticket"},
                        )
                    )
        return jobs

    def tabulate(self, spec: RegimeSpec, table: pd.DataFrame) -> dict[str, Any]:
        return {"rows": regime_rows(table)}

    def report(self, out: Path, result: Mapping[str, Any]) -> Path:
        from interp.viz.report import Page, frame_html, write_page
        from interp.viz.tickets import regime_figure

        df = pd.DataFrame(result["rows"])
        figs = [regime_figure(df)] if len(df) else []
        page = Page("Ticket speedup vs grokking delay", figs, extra_body=frame_html(df))
        return write_page(page, out / "report.html")

    def log_line(self, job: Job, res: JobResult) -> str:
        s = res.summary
        return (
            f"{job.tags['model']} {job.tags['setting']} seed {job.tags['seed']} "
            f"{job.tags['run']:>6}: t_mem {s.get('t_mem')}  t_gen {s.get('t_gen')}  "
            f"steps {s.get('steps')}  ({res.seconds:.0f} s)"
        )

    def format(self, result: Mapping[str, Any]) -> str:
        df = pd.DataFrame(result["rows"])
        if df.empty:
            return "(no finished pairs)"
        return df.drop(columns=["label"]).to_string(index=False, float_format=lambda v: f"{v:.3g}")


def _num(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def regime_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, setting, seed) whose dense run and ticket finished:
    the dense delay t_gen / t_mem, the ticket's t_gen and speedup (or, when it
    never reached 95%, the bound its speedup is below)."""
    rows = []
    if table.empty:
        return pd.DataFrame(rows)
    for (model, setting, seed), t in table.groupby(["model", "setting", "seed"], sort=False):
        runs = {r["run"]: r for r in t.to_dict(orient="records")}
        if "dense" not in runs or "ticket" not in runs:
            continue
        dense, ticket = runs["dense"], runs["ticket"]
        d_gen, d_mem, t_gen = dense.get("t_gen"), dense.get("t_mem"), ticket.get("t_gen")
        ok = _num(d_gen) and _num(t_gen)
        rows.append(
            {
                "model": model,
                "setting": setting,
                "lr": dense["lr"],
                "train_fraction": dense["train_fraction"],
                "seed": int(seed),
                "dense_t_mem": d_mem,
                "dense_t_gen": d_gen,
                "delay": d_gen / d_mem if _num(d_gen) and _num(d_mem) else None,
                "ticket_t_gen": t_gen,
                "speedup": d_gen / t_gen if ok else None,
                # when the ticket never reached 95%: its speedup is below this
                "speedup_upper_bound": d_gen / ticket["steps"]
                if _num(d_gen) and not _num(t_gen)
                else None,
                "label": f"{model} {setting} seed {seed}",
            }
        )
    return pd.DataFrame(rows)


STUDY = TicketRegimes()


def regime_sweep(spec: RegimeSpec, out: str | Path, **kw: Any) -> pd.DataFrame:
    """Train the sweep under ``out``; returns its rows (``OUT/results.csv``)."""
    return pd.DataFrame(run_study(STUDY, spec, out, **kw)["rows"])


__all__ = ["REGIMES", "STUDY", "RegimeSpec", "TicketRegimes", "regime_rows", "regime_sweep"]
