"""The repeated-data grid (Hernandez et al. 2022 §2–4): model sizes × repeated
fraction f × repeated epochs E × seeds, with the unique-data baselines and
controls, a results table, mean ± standard error over seeds, and figures.

Runs per size and seed:

* ``f0`` — D unique tokens (the baseline; also the points of the
  effective-size power law);
* for each f > 0: ``unique-fewer-steps`` — only the (1−f)·D unique tokens,
  same batch, so fewer steps; ``unique-same-steps`` — the same tokens with
  the batch scaled by (1−f), so as many steps as the repeated-data runs
  (Hernandez's models are step-limited at this scale; both controls are needed);
* for each f > 0 and E: the repeated-data run.

Layout: ``OUT/grid.json`` (the spec), ``OUT/<size>/<run>/seed<k>/`` (run
directories), ``OUT/results.csv|json`` and ``OUT/repeated_report.html``.
Finished runs are skipped on relaunch; an interrupted run resumes.

Execution: one after another (default), in ``jobs`` worker processes with one
torch thread each, or as Ray tasks on an existing cluster
(``backend="ray"``, ``pip install 'memgen-interp[ray]'``; ``ray.init(address="auto")``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from interp.config import ConfigError
from interp.experiments.parallel import run_jobs
from interp.training.store import SUMMARY_FILE, atomic_write_json, read_json

GRID_FILE = "grid.json"
HEADS_FILE = "final_heads.json"


@dataclass(frozen=True)
class GridSpec:
    """What one ``interp experiment repeated-data`` launch trains."""

    base: str = "cpu-text"
    sizes: tuple[str, ...] = ("s",)
    fractions: tuple[float, ...] = (0.5,)
    epochs: tuple[int, ...] = (10, 100, 1000)
    seeds: tuple[int, ...] = (0,)
    key_epochs: tuple[int, ...] = ()
    key_seeds: tuple[int, ...] = ()
    controls: bool = True
    # sizes trained at f = 0 only, on the main seeds: points for the effective-size fit
    baseline_sizes: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from interp.experiments.repeated_data import PRESETS, SIZES

        if self.base not in PRESETS:
            raise ConfigError(
                f"unknown repeated-data preset {self.base!r}; choose from {sorted(PRESETS)}"
            )
        bad = sorted((set(self.sizes) | set(self.baseline_sizes)) - set(SIZES))
        if bad:
            raise ConfigError(f"unknown model sizes {bad}; choose from {sorted(SIZES)}")
        for f in self.fractions:
            if not 0.0 < f < 1.0:
                raise ConfigError(
                    f"fractions must be in (0, 1) (f = 0 runs are always included), got {f}"
                )
        bad_e = [e for e in (*self.epochs, *self.key_epochs) if int(e) < 1]
        if bad_e:
            raise ConfigError(f"repeated epochs must be >= 1, got {bad_e}")
        if not self.seeds or not self.sizes:
            raise ConfigError("sizes and seeds must not be empty")


GRIDS: dict[str, GridSpec] = {
    # the quick look (15 min at --jobs 2): f = 0 forms an induction head, and
    # test loss against E peaks inside 30-3000 (seed 0; three seeds and both
    # unique-only controls in cpu-copy-text, whose runs these are)
    "cpu-quick": GridSpec(base="cpu-copy-text", sizes=("xs",), fractions=(0.5,),
                          epochs=(30, 300, 3000), seeds=(0,), controls=False),
    # plain BPE text: the damage peak against both controls on three seeds, no heads
    "cpu-text": GridSpec(base="cpu-text", sizes=("s",), fractions=(0.5,),
                         epochs=(10, 100, 1000), seeds=(0,), key_epochs=(100,),
                         key_seeds=(0, 1, 2)),
    # the self-quoting Python corpus, where the f = 0 xs and s models form induction
    # heads (README); ~8 h at --jobs 2; shares its runs with the cpu-copy-text grid
    # under one --out
    "cpu-full": GridSpec(base="cpu-copy-text", sizes=("xs", "s"), fractions=(0.1, 0.5),
                         epochs=(10, 30, 100, 200, 300, 500, 1000, 3000), seeds=(0,),
                         key_epochs=(300, 1000, 3000), key_seeds=(0, 1, 2),
                         baseline_sizes=("tiny",)),
    # key E: 100 (the repeated half still helps) and 1000 (the middle of the
    # damage band E = 300-3000 measured on three seeds, README)
    "cpu-copy": GridSpec(base="cpu-copy", sizes=("xs",), fractions=(0.5,),
                         epochs=(10, 100, 1000), seeds=(0,), key_epochs=(100, 1000),
                         key_seeds=(0, 1, 2)),
    # E from 10 to 3000 on seed 0 (eight values); three seeds at E = 300, 1000, 3000; f = 0 runs of
    # the tiny and s models for the effective-size fit
    "cpu-copy-text": GridSpec(base="cpu-copy-text", sizes=("xs",), fractions=(0.5,),
                              epochs=(10, 30, 100, 200, 300, 500, 1000, 3000), seeds=(0,),
                              key_epochs=(300, 1000, 3000), key_seeds=(0, 1, 2),
                              baseline_sizes=("tiny", "s")),
    # for a GPU: cpu-full's corpus and recipe over four sizes (0.4M to 12.6M
    # non-embedding parameters) with every point on three seeds and the tiny and xs
    # f = 0 runs as extra points of the effective-size fit; 258 runs
    "paper": GridSpec(base="paper", sizes=("s", "m", "l", "xl"), fractions=(0.1, 0.5),
                      epochs=(10, 30, 100, 200, 300, 500, 1000, 3000), seeds=(0, 1, 2),
                      baseline_sizes=("tiny", "xs")),
    "tiny": GridSpec(base="tiny", sizes=("tiny",), fractions=(0.5,), epochs=(2, 8),
                     seeds=(0, 1)),
}  # fmt: skip


@dataclass(frozen=True)
class GridRun:
    """One run of the grid."""

    size: str
    kind: str  # f0 | repeated | unique-fewer-steps | unique-same-steps
    seed: int
    f: float = 0.0
    epochs: int = 0
    overrides: tuple[str, ...] = field(default_factory=tuple)

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
    from interp.experiments.repeated_data import PRESETS

    base = PRESETS[spec.base]
    D, L, B = base.data.total_tokens, base.data.seq_len, base.train.batch_size or 1
    runs: list[GridRun] = []
    for size in spec.sizes:
        for seed in sorted(set(spec.seeds) | set(spec.key_seeds)):
            main = seed in spec.seeds
            runs.append(GridRun(size, "f0", seed, overrides=("data.repeated_fraction=0.0",)))
            for f in spec.fractions:
                # (1 - f)·D unique tokens, rounded to whole batches of the base batch size
                unique = max(1, round((1 - f) * D / (L * B))) * L * B
                if spec.controls:
                    runs.append(
                        GridRun(
                            size,
                            "unique-fewer-steps",
                            seed,
                            f,
                            0,
                            ("data.repeated_fraction=0.0", f"data.total_tokens={unique}"),
                        )
                    )
                    # the same number of steps as the f = 0 run, with a (1 - f) batch
                    b = max(1, round(B * (1 - f)))
                    runs.append(
                        GridRun(
                            size,
                            "unique-same-steps",
                            seed,
                            f,
                            0,
                            (
                                "data.repeated_fraction=0.0",
                                f"data.total_tokens={D // (L * B) * b * L}",
                                f"train.batch_size={b}",
                            ),
                        )
                    )
                for e in spec.epochs:
                    if f * D / e < L:  # the subset would be shorter than one sequence
                        continue
                    if main or e in spec.key_epochs:
                        runs.append(
                            GridRun(
                                size,
                                "repeated",
                                seed,
                                f,
                                e,
                                (f"data.repeated_fraction={f}", f"data.repeated_epochs={e}"),
                            )
                        )
    for size in spec.baseline_sizes:
        if size not in spec.sizes:
            for seed in sorted(spec.seeds):
                runs.append(GridRun(size, "f0", seed, overrides=("data.repeated_fraction=0.0",)))
    return runs  # fmt: skip


def run_config(spec: GridSpec, r: GridRun):
    from interp.experiments.repeated_data import SIZES, preset

    size = SIZES[r.size]
    fields = [f"model.{k}={json.dumps(v)}" for k, v in asdict(size).items() if k != "kind"]
    return preset(spec.base, seed=r.seed, overrides=[*fields, *r.overrides, *spec.overrides])


def execute(spec: GridSpec, out: str, r: GridRun, threads: int | None) -> dict[str, Any]:
    """Train (or resume, or skip) one grid run and measure its heads at the end."""
    from interp.experiments import repeated_data

    path = r.path(Path(out))
    t0 = time.perf_counter()
    if not (path / SUMMARY_FILE).exists():
        repeated_data.run(run_config(spec, r), str(path), threads=threads, quiet=True)
    if not (path / HEADS_FILE).exists():
        atomic_write_json(path / HEADS_FILE, final_head_scores(path))
    return {
        "summary": read_json(path / SUMMARY_FILE),
        "heads": read_json(path / HEADS_FILE),
        "seconds": time.perf_counter() - t0,
    }


def final_head_scores(path: Path) -> dict[str, float]:
    """Max over heads of the prefix-matching and induction scores (Olsson et
    al.; random-token probes) at the run's last checkpoint, the random tokens
    drawn from the run's probe range (printable ASCII for byte-level text,
    :func:`~interp.experiments.repeated_data.probe_vocab_range`)."""
    from interp.analysis import induction_scores, prefix_matching_scores
    from interp.experiments.repeated_data import run_head_analyzers
    from interp.training.store import open_run

    run = open_run(path)
    model = run.load()
    pm, ind = (
        fn(model)
        for fn in run_head_analyzers(run.config, (prefix_matching_scores, induction_scores))
    )
    return {"prefix_matching_max": float(pm.max()), "induction_max": float(ind.max())}


def run_grid(
    spec: GridSpec,
    out: str | Path,
    *,
    jobs: int = 1,
    backend: str = "local",
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Train every run of ``spec`` under ``out`` and write the results table."""
    out = Path(out)
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    spec_d = _spec_dict(spec)
    if (out / GRID_FILE).exists():
        _check_same_grid(out, spec_d)
    runs = grid_runs(spec)
    for r in runs:  # validate every config before writing or training anything
        run_config(spec, r)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / GRID_FILE, spec_d)
    t0 = time.perf_counter()
    done: dict[GridRun, dict[str, Any]] = {}

    def note(r: GridRun, res: dict[str, Any]) -> None:
        done[r] = res
        s = res["summary"]
        pm = res["heads"]["prefix_matching_max"]
        log(
            f"{r.size} {r.name:>24} seed {r.seed}: test {s.get('final_test_loss'):.4f}  "
            f"prefix-match {pm:.2f}  ({res['seconds']:.0f} s)"
        )

    if backend == "ray":
        _run_ray(spec, runs, str(out), note)
    elif backend != "local":
        raise ConfigError(f"--backend must be 'local' or 'ray', got {backend!r}")
    else:
        run_jobs(runs, partial(execute, spec, str(out)), jobs=jobs, threads=threads, on_done=note)
    table = results_table(runs, done)
    _write_results(out, spec_d, table, {"wall_seconds": time.perf_counter() - t0, "jobs": jobs})
    return table


def report_grid(
    spec: GridSpec, out: str | Path, *, log: Callable[[str], None] = print
) -> pd.DataFrame:
    """The results table, ``results.csv|json`` and report of the runs of
    ``spec`` that have finished under ``out``, training nothing: read a grid
    that is still running, or one launched only in part. Unfinished runs are
    left out and listed under ``missing`` in ``results.json``; a finished run
    without its head scores gets them (as :func:`execute` would)."""
    out = Path(out)
    if not (out / GRID_FILE).exists():
        raise ConfigError(f"{out} has no {GRID_FILE}: not a repeated-data grid directory")
    spec_d = _spec_dict(spec)
    _check_same_grid(out, spec_d)
    runs = grid_runs(spec)
    finished = [r for r in runs if (r.path(out) / SUMMARY_FILE).exists()]
    if not finished:
        raise ConfigError(f"no run of this grid has finished under {out}")
    done = {r: execute(spec, str(out), r, None) for r in finished}
    for r in finished:
        done[r]["seconds"] = 0.0  # nothing was trained here
    missing = [str(r.path(out).relative_to(out)) for r in runs if r not in done]
    log(f"{len(finished)} of {len(runs)} runs finished; {len(missing)} left out")
    table = results_table(finished, done)
    _write_results(out, spec_d, table, {"missing": missing}, missing=len(missing))
    return table


def _spec_dict(spec: GridSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}


def _check_same_grid(out: Path, spec_d: dict[str, Any]) -> None:
    before = read_json(out / GRID_FILE)
    keep = ("base", "overrides", "controls")
    if {k: before.get(k) for k in keep} != {k: spec_d[k] for k in keep}:
        raise ConfigError(f"{out} holds a grid with another base/overrides; use a new --out")


def _write_results(
    out: Path, spec_d: dict[str, Any], table: pd.DataFrame, extra: dict[str, Any], missing: int = 0
) -> None:
    table.to_csv(out / "results.csv", index=False)
    summary = aggregate(table)
    atomic_write_json(
        out / "results.json",
        {"spec": spec_d, **extra, "rows": table.to_dict(orient="records"),
         "aggregate": summary.to_dict(orient="records")},
    )  # fmt: skip
    write_report(out, table, summary, missing=missing)


def _run_ray(spec: GridSpec, runs: list[GridRun], out: str, note: Callable) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--backend ray needs Ray: pip install 'memgen-interp[ray]', and a running cluster"
        ) from exc
    ray.init(address="auto", ignore_reinit_error=True)
    task = ray.remote(num_cpus=1)(execute)
    refs = {task.remote(spec, out, r, 1): r for r in runs}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        note(refs[ready[0]], ray.get(ready[0]))


def results_table(runs: Sequence[GridRun], done: dict[GridRun, dict[str, Any]]) -> pd.DataFrame:
    """One row per run; the effective size is filled in when ≥ 2 sizes have f = 0 runs."""
    from interp.analysis.memorization import effective_size, fit_power_law

    rows = []
    for r in runs:
        s, h = done[r]["summary"], done[r]["heads"]
        rows.append({
            "size": r.size, "run": r.name, "kind": r.kind, "f": r.f, "E": r.epochs, "seed": r.seed,
            "achieved_f": s.get("data_repeated_fraction"), "steps": s.get("steps"),
            "tokens": s.get("tokens_seen"), "non_embedding_params": s.get("non_embedding_params"),
            "test_loss": s.get("final_test_loss"), "repeated_loss": s.get("final_repeated_loss"),
            "unique_loss": s.get("final_unique_loss"), "copy_gain": s.get("final_copy_gain"),
            "copy_loss_later": s.get("final_copy_loss_later"),
            "verbatim_repeated": s.get("verbatim_repeated_exact"),
            "verbatim_unique": s.get("verbatim_unique_exact"),
            "prefix_matching_max": h["prefix_matching_max"], "induction_max": h["induction_max"],
            "prefix_matching_text": s.get("final_copy_prefix_matching_max"),
            "seconds": round(done[r]["seconds"], 1),
        })  # fmt: skip
    df = pd.DataFrame(rows)
    df["effective_params"] = math.nan
    base = df[df["kind"] == "f0"].groupby("size")[["non_embedding_params", "test_loss"]].mean()
    if len(base) >= 2:
        try:
            law = fit_power_law(list(base["non_embedding_params"]), list(base["test_loss"]))
            df["effective_params"] = [effective_size(law, v) for v in df["test_loss"]]
        except ValueError:
            pass
    df["effective_ratio"] = df["effective_params"] / df["non_embedding_params"]
    return df


# per-run measures averaged over seeds by aggregate() (absent columns give NaN)
MEAN_COLUMNS = ("copy_gain", "copy_loss_later", "prefix_matching_max", "prefix_matching_text",
                "repeated_loss", "verbatim_repeated", "effective_ratio")  # fmt: skip


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


CONTROLS = ("unique-fewer-steps", "unique-same-steps")


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
REPORT_COLUMNS = ("size", "run", "seeds", "test_loss_mean", "se", "vs_f0",
                  "vs_unique-fewer-steps", "vs_unique-fewer-steps_se", "vs_unique-same-steps",
                  "vs_unique-same-steps_se", "copy_gain_mean", "copy_loss_later_mean",
                  "prefix_matching_max_mean", "repeated_loss_mean", "verbatim_repeated_mean",
                  "effective_ratio_mean")  # fmt: skip


def write_report(out: Path, table: pd.DataFrame, agg: pd.DataFrame, missing: int = 0) -> Path:
    """OUT/repeated_report.html: the figures, then the table of means over seeds
    (``missing``: how many runs of the grid have not finished, said in the intro)."""
    import html

    from interp.viz.repeated import (
        damage_vs_epochs,
        loss_vs_epochs,
        measures_vs_epochs,
        training_curves_by_run,
    )
    from interp.viz.report import write_figures

    figs = [loss_vs_epochs(agg), damage_vs_epochs(table), measures_vs_epochs(agg)]
    figs.append(training_curves_by_run(out, table))
    seeds = sorted({int(s) for s in table["seed"]})
    intro = (
        f"<p>{html.escape(out.name)}: {len(table)} runs, seeds {seeds}"
        + (f" (partial: {missing} runs of the grid not finished)" if missing else "")
        + ". Test loss in nats per "
        "token of held-out text; differences from f = 0 and from the unique-only controls "
        "are paired by seed (run minus the reference run of its own seed, mean ± s.e. over "
        "the seeds that have both). Every column is in results.csv / results.json.</p>"
    )
    cols = [c for c in REPORT_COLUMNS if c in agg]
    body = "<h2>Means over seeds</h2>" + agg[cols].to_html(
        index=False, na_rep="–", float_format=lambda v: f"{v:.4g}"
    )
    return write_figures(
        figs, out / "repeated_report.html", "Repeated data", intro, extra_body=body
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
    if name not in GRIDS:
        raise ConfigError(f"unknown repeated-data grid {name!r}; choose from {sorted(GRIDS)}")
    spec = GRIDS[name]
    if seeds:
        spec = replace(spec, seeds=tuple(seeds))
    if sizes:
        spec = replace(spec, sizes=tuple(sizes))
    if baseline_sizes:
        spec = replace(spec, baseline_sizes=tuple(baseline_sizes))
    if fractions:
        spec = replace(spec, fractions=tuple(float(f) for f in fractions))
    if epochs:
        spec = replace(spec, epochs=tuple(sorted({int(e) for e in epochs})))
    if overrides:
        spec = replace(spec, overrides=tuple(overrides))
    return spec


__all__ = [
    "CONTROLS", "GRIDS", "GridRun", "GridSpec", "aggregate", "grid_preset", "grid_runs",
    "paired_differences", "report_grid", "run_grid",
]  # fmt: skip
