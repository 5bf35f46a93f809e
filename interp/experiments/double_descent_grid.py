"""The double-descent experiment (``interp experiment double-descent``):
model-wise, epoch-wise and sample-wise curves with label noise (Nakkiran et
al. 2019 §4–6) and Liu & Flanigan's optimization factors, on the multi-run
runner. Spec and presets: :class:`interp.config.double_descent.DoubleDescentSpec`
and ``GRIDS``.

Layout: ``OUT/spec.json``; run directories ``OUT/model/<arch>-w<width>-noise<f>/seed<k>``,
``OUT/sample/<arch>-w<width>-noise<f>-n<n>/seed<k>``,
``OUT/factor/<name>/<arch>-w<width>-noise<f>/seed<k>`` (a run two parts ask
for is trained once, under the first key); ``OUT/results.csv|json`` (one row
per run, the columns of :data:`COLUMNS` first) and ``OUT/report.html``.

What the results say (``results.json``):

* ``modelwise`` — mean and standard error over seeds of every error per
  (model, noise, width);
* ``peaks`` — per (model, noise): the interpolation width (the narrowest
  whose train error is 0 on every seed), the width of the largest mean test
  error, and that peak's height over the best narrower width and over the
  widest width, each with the standard error of the seed-paired difference;
* ``factors`` — per setting: its train loss and error at the width nearest
  the base optimizer's interpolation width, whether that is low (train loss
  ≤ :data:`LOW_LOSS`), and its peak height with the paired standard error;
* ``samplewise`` and ``epochwise`` (test error and noisy-label fit over
  training of the widest model at the largest noise, mean over seeds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from interp.config.core import to_dict
from interp.config.double_descent import DoubleDescentSpec
from interp.experiments.runner import Job, JobResult, Study, run_study

#: the results table's leading columns (the issue's list)
COLUMNS = ("dataset", "model", "width", "params", "n_train", "label_noise", "optimizer", "lr",
           "batch_size", "init_scale", "normalization", "seed", "steps", "train_loss",
           "train_error", "test_loss", "test_error", "noisy_fit_fraction")  # fmt: skip
#: a final training loss at or below this counts as "low" (Liu & Flanigan's condition)
LOW_LOSS = 0.1


def _tags(cfg: Any, role: str, factor: str = "") -> dict[str, Any]:
    t = cfg.train
    return {
        "roles": role, "factor": factor, "dataset": cfg.data.dataset, "model": cfg.model.arch,
        "width": cfg.model.width, "n_train": cfg.n_train, "label_noise": cfg.data.label_noise,
        "optimizer": t.optimizer if t.optimizer == "adamw" or not t.momentum else "sgd-momentum",
        "lr": t.lr, "batch_size": t.batch_size, "init_scale": cfg.model.init_scale,
        "normalization": cfg.model.normalization, "seed": cfg.seed,
    }  # fmt: skip


def spec_runs(spec: DoubleDescentSpec) -> list[tuple[str, Any, dict[str, Any]]]:
    """(key, config, tags) of every run, duplicates merged (their roles joined)."""
    runs: dict[str, tuple[str, Any, dict[str, Any]]] = {}

    def add(key: str, cfg: Any, role: str, factor: str = "") -> None:
        ident = json.dumps(to_dict(cfg), sort_keys=True)
        if ident in runs:
            tags = runs[ident][2]
            if role not in tags["roles"].split("|"):
                tags["roles"] += f"|{role}"
            tags["factor"] = tags["factor"] or factor
            return
        runs[ident] = (key, cfg, _tags(cfg, role, factor))

    def name(arch: str, w: int, f: float) -> str:
        return f"{arch}-w{w}-noise{f:g}"

    for seed in spec.seeds:
        for arch in spec.models:
            for f in spec.noises:
                for w in spec.widths[arch]:
                    add(f"model/{name(arch, w, f)}/seed{seed}",
                        spec.run_config(arch, w, f, seed), "model")  # fmt: skip
        for n in spec.sample_sizes:
            a, w, f = spec.sample_model, spec.sample_width, spec.sample_noise
            add(f"sample/{name(a, w, f)}-n{n}/seed{seed}",
                spec.run_config(a, w, f, seed, n_train=n), "sample")  # fmt: skip
        for fname, over in spec.factors.items():
            for w in spec.factor_widths:
                a, f = spec.factor_model, spec.factor_noise
                add(f"factor/{fname}/{name(a, w, f)}/seed{seed}",
                    spec.run_config(a, w, f, seed, extra=over), "factor", fname)  # fmt: skip
    return list(runs.values())


class DoubleDescentGrid(Study):
    name = "double-descent"
    selects = frozenset({"seeds", "models", "widths", "noises", "sample_sizes", "factors",
                         "factor_widths"})  # fmt: skip

    def jobs(self, spec: DoubleDescentSpec, out: Path) -> list[Job]:
        return [Job(k, "double-descent", c, tags=t) for k, c, t in spec_runs(spec)]

    def tabulate(self, spec: DoubleDescentSpec, table: pd.DataFrame) -> dict[str, Any]:
        rows = results_table(table)
        model = rows[rows["roles"].str.contains("model")] if len(rows) else rows
        thresholds = interpolation_widths(model)
        return {
            "rows": rows,
            "modelwise": aggregate(model, ["model", "label_noise", "width"]).to_dict("records"),
            "peaks": peaks(model).to_dict("records"),
            "factors": factor_table(rows, thresholds, spec.factor_noise).to_dict("records"),
            "samplewise": aggregate(
                rows[rows["roles"].str.contains("sample")] if len(rows) else rows, ["n_train"]
            ).to_dict("records"),
            "epochwise": epochwise(model).to_dict("records"),
        }

    def report(self, out: Path, result: Mapping[str, Any]) -> Path:
        from interp.viz.double_descent import grid_page
        from interp.viz.report import write_page

        return write_page(grid_page(result), out / "report.html")

    def log_line(self, job: Job, res: JobResult) -> str:
        s = res.summary
        return (
            f"{job.key:>44}: train err {s.get('train_error', math.nan):.3f}  test err "
            f"{s.get('test_error', math.nan):.3f}  noisy fit "
            f"{_f(s.get('noisy_fit_fraction'))}  ({res.seconds:.0f} s)"
        )

    def format(self, result: Mapping[str, Any]) -> str:
        parts = ["Peaks (model-wise):", pd.DataFrame(result["peaks"]).to_string(index=False)]
        if result["factors"]:
            parts += ["Factors:", pd.DataFrame(result["factors"]).to_string(index=False)]
        return "\n".join(parts)


def _f(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


STUDY = DoubleDescentGrid()


def results_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run, :data:`COLUMNS` first, then the rest."""
    if frame.empty:
        return pd.DataFrame(columns=[*COLUMNS, "roles", "factor"])
    lead = [c for c in COLUMNS if c in frame]
    return frame[lead + [c for c in frame.columns if c not in lead]]


def _mean_se(values: pd.Series) -> tuple[float, float]:
    v = values.dropna().astype(float)
    if len(v) == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


def aggregate(rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean and standard error over seeds of the errors, losses and noisy
    fit, per ``keys``."""
    out = []
    if rows.empty:
        return pd.DataFrame()
    for key, g in rows.groupby(list(keys), sort=True):
        rec = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        rec["seeds"] = len(g)
        rec["params"] = int(g["params"].iloc[0])
        for col in ("test_error", "train_error", "test_loss", "train_loss", "noisy_fit_fraction"):
            rec[f"{col}_mean"], rec[f"{col}_se"] = _mean_se(g[col])
        out.append(rec)
    return pd.DataFrame(out)


def interpolation_widths(model_rows: pd.DataFrame) -> dict[tuple[str, float], int | None]:
    """Per (model, noise): the narrowest width whose final train error is 0 on every seed."""
    out: dict[tuple[str, float], int | None] = {}
    for (arch, noise), g in model_rows.groupby(["model", "label_noise"]) if len(model_rows) else ():
        zero = g.groupby("width")["train_error"].max()
        zero = zero[zero <= 0.0]
        out[(arch, float(noise))] = int(zero.index.min()) if len(zero) else None
    return out


def _paired(g: pd.DataFrame, w1: int, w2: int) -> tuple[float, float]:
    """Mean and s.e. over seeds of test_error(w1) − test_error(w2), paired by seed."""
    a = g[g["width"] == w1].set_index("seed")["test_error"]
    b = g[g["width"] == w2].set_index("seed")["test_error"]
    return _mean_se((a - b).dropna())


def peak_of(g: pd.DataFrame) -> dict[str, Any]:
    """The peak of one curve (rows of one model and noise, or one factor):
    the width of the largest mean test error, its height over the best
    narrower width and over the widest, with paired standard errors."""
    means = g.groupby("width")["test_error"].mean().sort_index()
    widths = list(means.index)
    peak = int(means.idxmax())
    rec: dict[str, Any] = {"peak_width": peak, "peak_test_error": float(means[peak]),
                           "widest": int(widths[-1])}  # fmt: skip
    narrower = means[means.index < peak]
    if len(narrower):
        best = int(narrower.idxmin())
        rec["best_narrower_width"] = best
        rec["over_narrower"], rec["over_narrower_se"] = _paired(g, peak, best)
    else:
        rec["best_narrower_width"], rec["over_narrower"], rec["over_narrower_se"] = (
            None, math.nan, math.nan,
        )  # fmt: skip
    if peak != widths[-1]:
        rec["over_widest"], rec["over_widest_se"] = _paired(g, peak, widths[-1])
    else:
        rec["over_widest"], rec["over_widest_se"] = math.nan, math.nan
    h = [v for v in (rec["over_narrower"], rec["over_widest"]) if not math.isnan(v)]
    rec["peak_height"] = min(h) if len(h) == 2 else 0.0
    rec["clear_peak"] = bool(
        len(h) == 2 and all(rec[k] > 2 * rec[f"{k}_se"] for k in ("over_narrower", "over_widest"))
    )
    return rec


def peaks(model_rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`peak_of` per (model, noise), with the interpolation width and
    whether the peak lies within a factor of 4 of it."""
    out = []
    if model_rows.empty:
        return pd.DataFrame()
    thresholds = interpolation_widths(model_rows)
    for (arch, noise), g in model_rows.groupby(["model", "label_noise"]):
        rec = {"model": arch, "label_noise": float(noise), "seeds": int(g["seed"].nunique())}
        rec.update(peak_of(g))
        t = thresholds[(arch, float(noise))]
        rec["interpolation_width"] = t
        rec["peak_within_4x"] = None if t is None else bool(t / 4 <= rec["peak_width"] <= 4 * t)
        out.append(rec)
    return pd.DataFrame(out)


def factor_table(
    rows: pd.DataFrame, thresholds: Mapping[tuple[str, float], int | None], noise: float
) -> pd.DataFrame:
    """Per factor setting: train loss and error at the width nearest the
    base runs' interpolation width (mean over seeds), whether that loss is
    low, and the setting's peak (:func:`peak_of`)."""
    out = []
    fac = rows[rows["roles"].str.contains("factor")] if len(rows) else rows
    for name, g in fac.groupby("factor", sort=False) if len(fac) else ():
        arch = g["model"].iloc[0]
        ref = thresholds.get((arch, float(noise)))
        widths = sorted(g["width"].unique())
        at = min(widths, key=lambda w: abs(math.log(w / ref))) if ref else widths[len(widths) // 2]
        near = g[g["width"] == at]
        rec = {"factor": name, "optimizer": g["optimizer"].iloc[0], "lr": g["lr"].iloc[0],
               "normalization": g["normalization"].iloc[0], "init_scale": g["init_scale"].iloc[0],
               "threshold_width": int(at), "seeds": int(g["seed"].nunique())}  # fmt: skip
        rec["train_loss_at_threshold"], _ = _mean_se(near["train_loss"])
        rec["train_error_at_threshold"], _ = _mean_se(near["train_error"])
        rec["low_train_loss"] = bool(rec["train_loss_at_threshold"] <= LOW_LOSS)
        rec.update(peak_of(g))
        out.append(rec)
    return pd.DataFrame(out)


def epochwise(model_rows: pd.DataFrame) -> pd.DataFrame:
    """Test error and noisy-label fit over training of the widest model at
    the largest noise (mean over seeds, per evaluation step)."""
    from interp.training.rundir import open_run

    if model_rows.empty:
        return pd.DataFrame()
    noise = model_rows["label_noise"].max()
    g = model_rows[model_rows["label_noise"] == noise]
    arch = g["model"].iloc[0]
    g = g[g["model"] == arch]
    g = g[g["width"] == g["width"].max()]
    frames = []
    for _, r in g.iterrows():
        m = open_run(r["run_dir"]).metrics()
        piv = m.pivot_table(index="step", columns=["split", "metric"], values="value")
        f = pd.DataFrame({"step": piv.index, "seed": r["seed"]})
        f["test_error"] = 1 - piv[("test", "accuracy")].to_numpy()
        f["train_error"] = 1 - piv[("train", "accuracy")].to_numpy()
        if ("noisy", "accuracy") in piv:
            f["noisy_fit"] = piv[("noisy", "accuracy")].to_numpy()
        frames.append(f)
    every = pd.concat(frames)
    out = every.groupby("step").mean(numeric_only=True).drop(columns="seed").reset_index()
    out.insert(0, "model", arch)
    out.insert(1, "width", int(g["width"].iloc[0]))
    out.insert(2, "label_noise", float(noise))
    return out


def grid_preset(
    name: str, seeds: Sequence[int] | None = None, overrides: Sequence[str] = (), **changes: Any
) -> DoubleDescentSpec:
    """The grid ``name`` with its seeds (and any other field) replaced where given."""
    spec = STUDY.preset(name)
    if seeds:
        changes["seeds"] = tuple(seeds)
    if overrides:
        changes["overrides"] = tuple(overrides)
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(spec, **changes) if changes else spec


def run_grid(spec: DoubleDescentSpec, out: str | Path, **kw: Any) -> dict[str, Any]:
    """Train every run of ``spec`` under ``out``; returns ``results.json``'s content."""
    return run_study(STUDY, spec, out, **kw)


__all__ = [
    "COLUMNS", "LOW_LOSS", "STUDY", "aggregate", "epochwise", "factor_table", "grid_preset",
    "interpolation_widths", "peak_of", "peaks", "results_table", "run_grid", "spec_runs",
]  # fmt: skip
