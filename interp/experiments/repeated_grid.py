"""The repeated-data grid (Hernandez et al. 2022 §2–4): model sizes × repeated
fraction f × repeated epochs E × seeds, with the unique-data baselines and
controls, a results table, mean ± standard error over seeds, and figures. It
runs on the multi-run runner (:mod:`interp.experiments.runner`); its spec and
presets are :class:`interp.config.repeated_data.GridSpec` and ``GRIDS``.

Runs per size and seed:

* ``f0`` — D unique tokens (the baseline; also the points of the
  effective-size power law);
* for each f > 0: ``unique-fewer-steps`` — only the (1−f)·D unique tokens,
  same batch, so fewer steps; ``unique-same-steps`` — the same tokens with
  the batch scaled by (1−f), so as many steps as the repeated-data runs
  (Hernandez's models are step-limited at this scale; both controls are needed);
* for each f > 0 and E: the repeated-data run.

Layout: ``OUT/spec.json``, ``OUT/<size>/<run>/seed<k>/`` (run directories),
``OUT/results.csv|json`` and ``OUT/report.html``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from interp.config.core import apply_overrides
from interp.config.repeated_data import CONTROLS, GRIDS, PRESETS, SIZES, GridSpec
from interp.experiments.runner import Job, JobResult, Study, run_study


@dataclass(frozen=True)
class GridRun:
    """One run of the grid."""

    size: str
    kind: str  # f0 | repeated | unique-fewer-steps | unique-same-steps
    seed: int
    f: float = 0.0
    epochs: int = 0
    total_tokens: int | None = None  # None: the base preset's D
    batch_size: int | None = None  # None: the base preset's batch

    @property
    def name(self) -> str:
        if self.kind == "repeated":
            return f"f{self.f:g}-E{self.epochs}"
        if self.kind == "f0":
            return "f0"
        return f"{self.kind}-f{self.f:g}"

    def path(self, out: Path) -> Path:
        return out / self.size / self.name / f"seed{self.seed}"


def grid_runs(spec: GridSpec) -> list[GridRun]:
    """Every run of ``spec``, cheapest-first within each seed. (f, E) pairs whose
    repeated subset f·D/E would be shorter than one sequence are left out."""
    base = PRESETS[spec.base]
    D, L, B = base.data.total_tokens, base.data.seq_len, base.train.batch_size or 1
    runs: list[GridRun] = []
    for size in spec.sizes:
        for seed in sorted(set(spec.seeds) | set(spec.key_seeds)):
            main = seed in spec.seeds
            runs.append(GridRun(size, "f0", seed))
            for f in spec.fractions:
                if spec.controls:
                    # (1 - f)·D unique tokens, rounded to whole batches of the base batch size
                    unique = max(1, round((1 - f) * D / (L * B))) * L * B
                    runs.append(GridRun(size, "unique-fewer-steps", seed, f, total_tokens=unique))
                    # the same number of steps as the f = 0 run, with a (1 - f) batch
                    b = max(1, round(B * (1 - f)))
                    runs.append(
                        GridRun(
                            size,
                            "unique-same-steps",
                            seed,
                            f,
                            total_tokens=D // (L * B) * b * L,
                            batch_size=b,
                        )
                    )
                for e in spec.epochs:
                    if f * D / e < L:  # the subset would be shorter than one sequence
                        continue
                    if main or e in spec.key_epochs:
                        runs.append(GridRun(size, "repeated", seed, f, e))
    for size in spec.baseline_sizes:
        if size not in spec.sizes:
            for seed in sorted(spec.seeds):
                runs.append(GridRun(size, "f0", seed))
    return runs


def run_config(spec: GridSpec, r: GridRun) -> Any:
    """The config of grid run ``r``: the base preset with the run's size, seed,
    mix and batch, then the spec's overrides, resolved."""
    base = PRESETS[spec.base]
    data = replace(
        base.data,
        repeated_fraction=r.f if r.kind == "repeated" else 0.0,
        repeated_epochs=r.epochs if r.kind == "repeated" else base.data.repeated_epochs,
        total_tokens=r.total_tokens or base.data.total_tokens,
    )
    train = replace(base.train, batch_size=r.batch_size or base.train.batch_size)
    cfg = replace(base, seed=r.seed, model=SIZES[r.size], data=data, train=train)
    return (apply_overrides(cfg, spec.overrides) if spec.overrides else cfg).resolve()


class RepeatedGrid(Study):
    """``interp experiment repeated-data``."""

    name = "repeated-data"
    selects = frozenset(
        {"sizes", "fractions", "epochs", "seeds", "key_epochs", "key_seeds", "baseline_sizes"}
    )
    legacy_spec: ClassVar[Mapping[str, Mapping[str, Any]]] = {"grid.json": {}}

    def jobs(self, spec: GridSpec, out: Path) -> list[Job]:
        return [
            Job(
                str(r.path(Path())),
                "repeated-data",
                run_config(spec, r),
                tags={
                    "size": r.size,
                    "run": r.name,
                    "kind": r.kind,
                    "f": r.f,
                    "E": r.epochs,
                    "seed": r.seed,
                },
            )
            for r in grid_runs(spec)
        ]

    def tabulate(self, spec: GridSpec, table: pd.DataFrame) -> dict[str, Any]:
        rows = results_table(table)
        return {"rows": rows, "aggregate": aggregate(rows).to_dict(orient="records")}

    def report(self, out: Path, result: Mapping[str, Any]) -> Path:
        return write_report(out, pd.DataFrame(result["rows"]), missing=len(result["missing"]))

    def log_line(self, job: Job, res: JobResult) -> str:
        s, t = res.summary, job.tags
        return (
            f"{t['size']} {t['run']:>24} seed {t['seed']}: test {s.get('final_test_loss'):.4f}  "
            f"prefix-match {s.get('prefix_matching_max', math.nan):.2f}  ({res.seconds:.0f} s)"
        )

    def format(self, result: Mapping[str, Any]) -> str:
        agg = pd.DataFrame(result["aggregate"])
        cols = [c for c in PRINTED_COLUMNS if c in agg]
        return agg[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


STUDY = RepeatedGrid()

#: what ``interp experiment repeated-data`` prints (every column is in results.json)
PRINTED_COLUMNS = (
    "size",
    "run",
    "seeds",
    "test_loss_mean",
    "se",
    "vs_f0",
    "vs_unique-fewer-steps",
    "vs_unique-fewer-steps_se",
    "vs_unique-same-steps",
    "vs_unique-same-steps_se",
    "copy_gain_mean",
    "copy_gain_se",
    "prefix_matching_max_mean",
    "prefix_matching_text_mean",
)


def grid_preset(
    name: str,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    *,
    sizes: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    epochs: Sequence[int] | None = None,
    baseline_sizes: Sequence[str] | None = None,
) -> GridSpec:
    """The grid ``name`` with its seeds, sizes, fractions, repeated epochs or
    baseline-only sizes replaced where given (e.g. a finer E scan; runs already
    trained under the same ``--out`` are reused)."""
    spec = STUDY.preset(name)
    changes: dict[str, Any] = {}
    if seeds:
        changes["seeds"] = tuple(seeds)
    if sizes:
        changes["sizes"] = tuple(sizes)
    if baseline_sizes:
        changes["baseline_sizes"] = tuple(baseline_sizes)
    if fractions:
        changes["fractions"] = tuple(float(f) for f in fractions)
    if epochs:
        changes["epochs"] = tuple(sorted({int(e) for e in epochs}))
    if overrides:
        changes["overrides"] = tuple(overrides)
    return replace(spec, **changes) if changes else spec


def run_grid(spec: GridSpec, out: str | Path, **kw: Any) -> pd.DataFrame:
    """Train every run of ``spec`` under ``out`` and write the results
    (:func:`~interp.experiments.runner.run_study` keywords); returns the table."""
    return pd.DataFrame(run_study(STUDY, spec, out, **kw)["rows"])


def report_grid(spec: GridSpec, out: str | Path, **kw: Any) -> pd.DataFrame:
    """The results and report of the runs of ``spec`` that have finished under
    ``out``, training nothing (a grid still running, or launched in part);
    the others are listed under ``missing`` in ``results.json``."""
    return run_grid(spec, out, report_only=True, **kw)


def results_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run; the effective size is filled in when ≥ 2 sizes have
    f = 0 runs (a power law L = a·N^−α through their mean losses), with a
    95% interval from bootstrapping the f = 0 seeds
    (:func:`~interp.analysis.memorization.effective_size_intervals`)."""
    from interp.analysis.memorization import (
        effective_size,
        effective_size_intervals,
        fit_power_law,
    )

    rows = []
    for s in frame.to_dict(orient="records"):
        rows.append(
            {
                "size": s["size"],
                "run": s["run"],
                "kind": s["kind"],
                "f": s["f"],
                "E": s["E"],
                "seed": s["seed"],
                "achieved_f": s.get("data_repeated_fraction"),
                "steps": s.get("steps"),
                "tokens": s.get("tokens_seen"),
                "non_embedding_params": s.get("non_embedding_params"),
                "test_loss": s.get("final_test_loss"),
                "repeated_loss": s.get("final_repeated_loss"),
                "unique_loss": s.get("final_unique_loss"),
                "copy_gain": s.get("final_copy_gain"),
                "copy_loss_later": s.get("final_copy_loss_later"),
                "verbatim_repeated": s.get("verbatim_repeated_exact"),
                "verbatim_unique": s.get("verbatim_unique_exact"),
                "prefix_matching_max": s.get("prefix_matching_max"),
                "induction_max": s.get("induction_max"),
                "prefix_matching_text": s.get("final_copy_prefix_matching_max"),
                "seconds": s["seconds"],
            }
        )
    df = pd.DataFrame(rows)
    df["effective_params"] = math.nan
    df["effective_ratio_lo"] = df["effective_ratio_hi"] = math.nan
    base = df[df["kind"] == "f0"].groupby("size")[["non_embedding_params", "test_loss"]].mean()
    if len(base) >= 2:
        try:
            law = fit_power_law(list(base["non_embedding_params"]), list(base["test_loss"]))
            df["effective_params"] = [effective_size(law, v) for v in df["test_loss"]]
            iv = effective_size_intervals(df, n_boot=1000)
            for i, r in df.iterrows():
                got = iv[(iv["size"] == r["size"]) & (iv["run"] == r["run"])]
                key = f"ratio_seed{r['seed']}"
                if len(got) and f"{key}_lo" in got:
                    df.loc[i, "effective_ratio_lo"] = got[f"{key}_lo"].iloc[0]
                    df.loc[i, "effective_ratio_hi"] = got[f"{key}_hi"].iloc[0]
        except ValueError:
            pass
    df["effective_ratio"] = df["effective_params"] / df["non_embedding_params"]
    return df


# per-run measures averaged over seeds by aggregate() (absent columns give NaN)
MEAN_COLUMNS = (
    "copy_gain",
    "copy_loss_later",
    "prefix_matching_max",
    "prefix_matching_text",
    "repeated_loss",
    "verbatim_repeated",
    "effective_ratio",
)


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (size, run), with the difference
    from the f = 0 baseline and from each unique-only control of the same f.

    The differences are paired by seed (Hernandez et al. 2022 §3 compare each
    repeated-data model with its unique-data baseline): ``vs_f0`` and
    ``vs_unique-*`` are the mean over seeds of (run − the reference run of the
    same size, f and seed), with ``*_se`` their standard error and ``*_seeds``
    the number of seeds that have both runs. A run trained on seed 0 only is
    therefore compared with the seed-0 controls, not with their mean over seeds.
    """
    table = paired_differences(table)
    g = table.groupby(["size", "run", "kind", "f", "E"], dropna=False)
    agg = g["test_loss"].agg(["mean", "count", "std"]).reset_index()
    agg["se"] = agg["std"] / agg["count"].pow(0.5)
    for col in MEAN_COLUMNS:
        agg[f"{col}_mean"] = g[col].mean().values if col in table else math.nan
    agg["copy_gain_se"] = (
        (g["copy_gain"].std() / g["copy_gain"].count().pow(0.5)).values
        if "copy_gain" in table
        else math.nan
    )
    agg = agg.rename(columns={"mean": "test_loss_mean", "std": "test_loss_std", "count": "seeds"})
    for ref in ("f0", *CONTROLS):
        col = f"vs_{ref}"
        n = g[col].count()
        agg[col] = g[col].mean().values
        agg[f"{col}_se"] = (g[col].std() / n.pow(0.5)).values
        agg[f"{col}_seeds"] = n.values
    return agg


def paired_differences(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with per-run test-loss differences from the f = 0 run of the
    same size and seed (``vs_f0``) and, for repeated runs, from each unique-only
    control of the same size, f and seed (NaN where that run is missing)."""
    t = table.copy()
    loss = t.set_index(["size", "kind", "f", "seed"])["test_loss"]
    loss = loss[~loss.index.duplicated()]
    kinds = loss.index.get_level_values("kind")
    f0 = loss[kinds == "f0"].droplevel(["kind", "f"])

    def ref(series: pd.Series, keys: list[tuple]) -> list[float]:
        return [float(series.get(k, math.nan)) for k in keys]

    t["vs_f0"] = t["test_loss"] - ref(f0, list(zip(t["size"], t["seed"], strict=True)))
    for ctrl in CONTROLS:
        keys = list(zip(t["size"], [ctrl] * len(t), t["f"], t["seed"], strict=True))
        diff = t["test_loss"] - ref(loss, keys)
        t[f"vs_{ctrl}"] = diff.where(t["kind"] == "repeated")
    return t


# the columns of the report's table (all of them are in results.json)
REPORT_COLUMNS = (
    "size",
    "run",
    "seeds",
    "test_loss_mean",
    "se",
    "vs_f0",
    "vs_unique-fewer-steps",
    "vs_unique-fewer-steps_se",
    "vs_unique-same-steps",
    "vs_unique-same-steps_se",
    "copy_gain_mean",
    "copy_loss_later_mean",
    "prefix_matching_max_mean",
    "repeated_loss_mean",
    "verbatim_repeated_mean",
    "effective_ratio_mean",
)


def last_step_llc(out: Path, table: pd.DataFrame) -> pd.DataFrame:
    """The LLC (default settings) of each run's last checkpoint, where a sweep
    left it in the run's cache: columns size, run, seed, llc_mean, llc_se."""
    from interp.experiments.llc_runs import cached_llc
    from interp.training.rundir import open_run

    rows = []
    for _, r in table.iterrows():
        run = open_run(Path(out) / r["size"] / r["run"] / f"seed{int(r['seed'])}")
        df = cached_llc(run)
        df = df[(df["step"] == run.last_step) & df["layer"].isna()] if len(df) else df
        vals = dict(zip(df["metric"], df["value"], strict=True)) if len(df) else {}
        if "llc_mean" in vals:
            rows.append({"size": r["size"], "run": r["run"], "seed": int(r["seed"]),
                         "llc_mean": vals["llc_mean"], "llc_se": vals.get("llc_se")})  # fmt: skip
    return pd.DataFrame(rows)


def write_report(out: Path, table: pd.DataFrame, missing: int = 0) -> Path:
    """OUT/report.html: the figures, then the table of means over seeds
    (``missing``: how many runs of the grid have not finished, said in the intro)."""
    import html

    from interp.training.rundir import open_run
    from interp.viz.repeated import (
        damage_vs_epochs,
        llc_by_run,
        loss_vs_epochs,
        measures_vs_epochs,
        training_curves_by_run,
    )
    from interp.viz.report import Page, frame_html, write_page

    agg = aggregate(table)
    figs = [
        loss_vs_epochs(agg),
        damage_vs_epochs(paired_differences(table), agg),
        measures_vs_epochs(agg),
    ]
    size, seed = table["size"].iloc[0], int(table["seed"].min())
    runs = table[(table["size"] == size) & (table["seed"] == seed)]
    curves = {r: open_run(Path(out) / size / r / f"seed{seed}").metrics() for r in runs["run"]}
    figs.append(training_curves_by_run(curves, f"{size}, seed {seed}"))
    llc = last_step_llc(Path(out), table)
    if len(llc):  # where `interp sweep RUN --analyzer llc` has estimated it
        figs.append(llc_by_run(llc))
    seeds = sorted({int(s) for s in table["seed"]})
    intro = (
        f"<p>{html.escape(Path(out).name)}: {len(table)} runs, seeds {seeds}"
        + (f" (partial: {missing} runs of the grid not finished)" if missing else "")
        + ". Test loss in nats per "
        "token of held-out text; differences from f = 0 and from the unique-only controls "
        "are paired by seed (run minus the reference run of its own seed, mean ± s.e. over "
        "the seeds that have both). Every column is in results.csv / results.json.</p>"
    )
    cols = [c for c in REPORT_COLUMNS if c in agg]
    body = "<h2>Means over seeds</h2>" + frame_html(agg[cols], digits=4)
    page = Page("Repeated data", figs, intro_html=intro, extra_body=body)
    return write_page(page, Path(out) / "report.html")


__all__ = [
    "CONTROLS",
    "GRIDS",
    "STUDY",
    "GridRun",
    "GridSpec",
    "RepeatedGrid",
    "aggregate",
    "grid_preset",
    "grid_runs",
    "paired_differences",
    "report_grid",
    "results_table",
    "run_config",
    "run_grid",
]
