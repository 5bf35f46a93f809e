"""The repeated-data grid: run list, controls' token accounting, aggregation
with standard errors, effective sizes, and an interrupted grid resumed."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from interp.cli import app
from interp.config import ConfigError
from interp.experiments import repeated_data
from interp.experiments.repeated_grid import (
    GRIDS,
    GridRun,
    GridSpec,
    aggregate,
    grid_preset,
    grid_runs,
    paired_differences,
    results_table,
    run_config,
)
from interp.training.rundir import RunStore, open_run
from interp.viz.repeated import (
    MEASURE_PANELS,
    damage_vs_epochs,
    loss_vs_epochs,
    measures_vs_epochs,
    training_curves_by_run,
)


def test_grid_runs_and_control_budgets():
    spec = GridSpec(base="cpu-text", sizes=("xs", "s"), fractions=(0.5,), epochs=(10, 100),
                    seeds=(0,), key_epochs=(100,), key_seeds=(0, 1, 2))  # fmt: skip
    runs = grid_runs(spec)
    names = {(r.size, r.name, r.seed) for r in runs}
    assert ("s", "f0.5-E10", 0) in names and (
        "s",
        "f0.5-E10",
        1,
    ) not in names  # E=10 main seed only
    assert {("s", "f0.5-E100", k) for k in (0, 1, 2)} <= names  # key point: 3 seeds
    assert {("xs", "f0", k) for k in (0, 1, 2)} <= names
    base = repeated_data.PRESETS["cpu-text"]
    D, B = base.data.total_tokens, base.train.batch_size
    by = {(r.size, r.name, r.seed): r for r in runs}
    fewer = run_config(spec, by[("s", "unique-fewer-steps-f0.5", 0)])
    same = run_config(spec, by[("s", "unique-same-steps-f0.5", 0)])
    rep = run_config(spec, by[("s", "f0.5-E100", 0)])
    assert fewer.data.total_tokens == same.data.total_tokens == D // 2
    L, E = rep.data.seq_len, rep.data.repeated_epochs  # same unique tokens, up to rounding S
    assert abs(rep.data.unique_tokens - D // 2) <= E * L / 2  # (to whole sequences)
    assert fewer.train.steps == rep.train.steps // 2  # same batch, half the tokens
    assert same.train.steps == rep.train.steps and same.train.batch_size == B // 2
    assert run_config(spec, by[("xs", "f0", 0)]).model.d_model == 64
    with pytest.raises(ConfigError, match="unknown model sizes"):
        GridSpec(sizes=("huge",))
    with pytest.raises(ConfigError, match="fractions"):
        GridSpec(fractions=(0.0,))


def test_aggregate_standard_errors_and_differences():
    rows = []
    for seed, (a, b, c) in enumerate([(3.0, 3.3, 3.1), (3.2, 3.5, 3.3), (3.1, 3.2, 3.2)]):
        for kind, run, f, E, loss in (
            ("f0", "f0", 0.0, 0, a),
            ("repeated", "f0.5-E100", 0.5, 100, b),
            ("unique-same-steps", "unique-same-steps-f0.5", 0.5, 0, c),
        ):
            rows.append({"size": "s", "run": run, "kind": kind, "f": f, "E": E, "seed": seed,
                         "test_loss": loss, "copy_gain": 0.5 + 0.1 * seed,
                         "prefix_matching_max": 0.5,
                         "repeated_loss": 1.0, "verbatim_repeated": 0.0})  # fmt: skip
    agg = aggregate(pd.DataFrame(rows)).set_index("run")
    rep = agg.loc["f0.5-E100"]
    losses = [3.3, 3.5, 3.2]
    mean = sum(losses) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / 2)
    assert rep["test_loss_mean"] == pytest.approx(mean)
    assert rep["se"] == pytest.approx(sd / math.sqrt(3)) and rep["seeds"] == 3
    assert rep["vs_f0"] == pytest.approx(mean - 3.1)
    assert rep["vs_unique-same-steps"] == pytest.approx(mean - 3.2)
    assert math.isnan(rep["vs_unique-fewer-steps"])  # that control was not run
    assert rep["copy_gain_mean"] == pytest.approx(0.6)
    assert rep["copy_gain_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert math.isnan(rep["prefix_matching_text_mean"])  # a table from before that column


def test_aggregate_pairs_differences_by_seed():
    # controls on seeds 0-2, the repeated run on seed 0 only: compared with the
    # seed-0 control, not with the controls' mean
    rows = [
        {"size": "s", "run": "unique-fewer-steps-f0.5", "kind": "unique-fewer-steps", "f": 0.5,
         "E": 0, "seed": seed, "test_loss": loss}
        for seed, loss in enumerate([2.0, 1.0, 1.0])
    ]  # fmt: skip
    rows += [
        {"size": "s", "run": "f0", "kind": "f0", "f": 0.0, "E": 0, "seed": 0, "test_loss": 1.9},
        {"size": "s", "run": "f0.5-E10", "kind": "repeated", "f": 0.5, "E": 10, "seed": 0,
         "test_loss": 1.8},
        {"size": "s", "run": "f0.5-E99", "kind": "repeated", "f": 0.5, "E": 99, "seed": 1,
         "test_loss": 1.3},
        {"size": "s", "run": "f0.5-E99", "kind": "repeated", "f": 0.5, "E": 99, "seed": 2,
         "test_loss": 1.5},
    ]  # fmt: skip
    agg = aggregate(pd.DataFrame(rows)).set_index("run")
    fig = damage_vs_epochs(paired_differences(pd.DataFrame(rows)), aggregate(pd.DataFrame(rows)))
    lines = {t.xaxis: t for t in fig.data if t.mode == "lines+markers"}  # one per control
    assert list(lines["x"].x) == [10, 99] and list(lines["x"].y) == pytest.approx([-0.2, 0.4])
    assert list(lines["x2"].x) == []  # no same-steps control in the table
    dots = next(t for t in fig.data if t.mode == "markers" and t.xaxis == "x")
    assert sorted(dots.y) == pytest.approx([-0.2, 0.3, 0.5])  # every seed's own difference
    e10 = agg.loc["f0.5-E10"]
    assert e10["vs_unique-fewer-steps"] == pytest.approx(-0.2)  # not 1.8 - 4/3
    assert e10["vs_f0"] == pytest.approx(-0.1) and e10["vs_unique-fewer-steps_seeds"] == 1
    e99 = agg.loc["f0.5-E99"]
    assert e99["vs_unique-fewer-steps"] == pytest.approx(0.4)  # (0.3 + 0.5) / 2
    assert e99["vs_unique-fewer-steps_se"] == pytest.approx(math.sqrt(0.02) / math.sqrt(2))
    assert math.isnan(e99["vs_f0"]) and e99["vs_f0_seeds"] == 0  # no f = 0 run on seeds 1, 2
    assert math.isnan(e99["vs_unique-same-steps"])


def test_loss_vs_epochs_draws_each_reference_once_in_its_lines_colour():
    rows = [{"size": "s", "run": "f0", "kind": "f0", "f": 0.0, "E": 0, "seed": 0,
             "test_loss": 1.0}]  # fmt: skip
    for f, loss in [(0.1, 1.1), (0.5, 1.2)]:
        rows += [
            {"size": "s", "run": f"unique-fewer-steps-f{f:g}", "kind": "unique-fewer-steps",
             "f": f, "E": 0, "seed": 0, "test_loss": loss},
            {"size": "s", "run": f"f{f:g}-E10", "kind": "repeated", "f": f, "E": 10, "seed": 0,
             "test_loss": loss + 0.5},
        ]  # fmt: skip
    fig = loss_vs_epochs(aggregate(pd.DataFrame(rows)))
    colour = {t.name: t.line.color for t in fig.data}
    assert sorted(colour) == ["s, f=0.1", "s, f=0.5"] and len(set(colour.values())) == 2
    refs = {(sh.y0, sh.line.color) for sh in fig.layout.shapes}
    # f = 0 once (gray), each f's control in the colour of that f's line
    assert refs == {(1.0, "gray"), (1.1, colour["s, f=0.1"]), (1.2, colour["s, f=0.5"])}
    assert len(fig.layout.shapes) == 3
    # the damage figure of the same grid draws each (size, f) in the same colour
    df = pd.DataFrame(rows)
    damage = damage_vs_epochs(paired_differences(df), aggregate(df))
    assert {t.name: t.line.color for t in damage.data if t.mode == "lines+markers"} == colour


def _frame(runs, summaries):
    """The runner's assembled table for these grid runs and summaries."""
    return pd.DataFrame(
        [{"size": r.size, "run": r.name, "kind": r.kind, "f": r.f, "E": r.epochs, "seed": r.seed,
          **s, "seconds": 1.0} for r, s in zip(runs, summaries, strict=True)]
    )  # fmt: skip


def test_effective_size_column_from_two_sizes():
    runs = [GridRun("xs", "f0", 0), GridRun("s", "f0", 0), GridRun("s", "repeated", 0, 0.5, 100)]
    summaries = [
        {"non_embedding_params": n, "final_test_loss": loss, "prefix_matching_max": 0.0,
         "induction_max": 0.0}
        for n, loss in zip((1e5, 1e6, 1e6), (4.0, 2.0, 3.0), strict=True)
    ]  # fmt: skip
    t = results_table(_frame(runs, summaries))
    # L = a N^-alpha through (1e5, 4) and (1e6, 2): loss 3 ⇔ N = 1e5 · (4/3)^(1/alpha)
    alpha = math.log10(2)
    assert t["effective_params"].iloc[2] == pytest.approx(1e5 * (4 / 3) ** (1 / alpha))
    assert t["effective_ratio"].iloc[1] == pytest.approx(1.0)


def test_measures_figure_plots_effective_size_and_copying_loss_vs_epochs():
    runs = [GridRun("xs", "f0", 0), GridRun("s", "f0", 0)]
    runs += [GridRun("s", "repeated", seed, 0.5, 100) for seed in (0, 1)]
    summaries = [
        {"non_embedding_params": n, "final_test_loss": loss, "final_copy_loss_later": loss / 2,
         "prefix_matching_max": 0.1 * (r.seed + 1), "induction_max": 0.0}
        for r, n, loss in zip(runs, (1e5, 1e6, 1e6, 1e6), (4.0, 2.0, 3.0, 2.5), strict=True)
    ]  # fmt: skip
    agg = aggregate(results_table(_frame(runs, summaries)))
    fig = measures_vs_epochs(agg)
    panels = {a.text: f"x{i if i > 1 else ''}" for i, a in enumerate(fig.layout.annotations, 1)}
    assert set(panels) == {title for _, title in MEASURE_PANELS}

    def line(title):
        (t,) = [t for t in fig.data if t.xaxis == panels[title] and t.name == "s, f=0.5"]
        return list(t.x), list(t.y)

    # L = a N^-alpha through (1e5, 4) and (1e6, 2), inverted at losses 3 and 2.5
    alpha = math.log10(2)
    ratios = [1e5 * (4 / loss) ** (1 / alpha) / 1e6 for loss in (3.0, 2.5)]
    assert line("effective size / actual size") == ([100], [pytest.approx(sum(ratios) / 2)])
    assert line("loss on later copies of a held-out passage") == ([100], [pytest.approx(1.375)])
    assert line("max prefix-matching score") == ([100], [pytest.approx(0.15)])
    crosses = [t for t in fig.data if t.name == "f = 0" and t.xaxis == panels[
        "effective size / actual size"]]  # fmt: skip
    assert len(crosses) == 1 and list(crosses[0].y) == [pytest.approx(1.0)]  # s, on its own law
    # one f = 0 legend entry, even when the first panel's column is missing for f = 0
    agg.loc[agg["kind"] == "f0", MEASURE_PANELS[0][0]] = math.nan
    shown = [t for t in measures_vs_epochs(agg).data if t.name == "f = 0" and t.showlegend]
    assert len(shown) == 1
    colour = {t.name: t.line.color for t in loss_vs_epochs(agg).data}
    assert {t.line.color for t in fig.data if t.name == "s, f=0.5"} == {colour["s, f=0.5"]}


def test_interrupted_grid_resumes_and_skips_finished_runs(tmp_path):
    spec = GRIDS["tiny"]
    out = tmp_path / "grid"
    # one run killed half-way before the grid starts
    victim = GridRun("tiny", "repeated", 0, 0.5, 8)
    repeated_data.run(
        run_config(spec, victim), str(victim.path(out)), quiet=True, stop_after_step=20
    )
    r = CliRunner().invoke(
        app, ["experiment", "repeated-data", "--preset", "tiny", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "results.csv")
    assert len(table) == len(grid_runs(spec)) == 10
    assert set(table["kind"]) == {"f0", "repeated", "unique-fewer-steps", "unique-same-steps"}
    fresh = tmp_path / "fresh"
    repeated_data.run(run_config(spec, victim), str(fresh), quiet=True)
    assert RunStore(victim.path(out)).checkpoint_sha(32) == RunStore(fresh).checkpoint_sha(32)
    stamp = (victim.path(out) / "summary.json").stat().st_mtime_ns
    r = CliRunner().invoke(
        app, ["experiment", "repeated-data", "--preset", "tiny", "--out", str(out)]
    )
    assert r.exit_code == 0 and (victim.path(out) / "summary.json").stat().st_mtime_ns == stamp
    res = json.loads((out / "results.json").read_text())
    assert res["aggregate"] and "<script src=" not in (out / "report.html").read_text()
    assert "Local learning coefficient" not in (out / "report.html").read_text()
    # where a sweep has estimated the LLC of runs' last checkpoints, the report draws it
    from interp.experiments.sweeping import sweep_run

    for name in ("f0", victim.name):
        run_dir = out / "tiny" / name / "seed0"
        sweep_run(run_dir, ["llc"], [open_run(run_dir).last_step])
    r = CliRunner().invoke(
        app, ["experiment", "repeated-data", "--preset", "tiny", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "Local learning coefficient at the end of each run" in (out / "report.html").read_text()
    # over training: test loss, copying gain and prefix matching, a line per run and panel
    first = table[(table["size"] == table["size"].iloc[0]) & (table["seed"] == 0)]
    curves = {r: open_run(out / "tiny" / r / "seed0").metrics() for r in first["run"]}
    fig = training_curves_by_run(curves, "tiny, seed 0")
    n_runs = len(first)
    assert len(fig.data) == 3 * n_runs
    pm = [t for t in fig.data if t.yaxis == "y3"]
    assert len(pm) == n_runs and all(len(t.y) > 1 and 0 <= min(t.y) <= max(t.y) <= 1 for t in pm)
    r = CliRunner().invoke(
        app,
        [
            "experiment",
            "repeated-data",
            "--preset",
            "tiny",
            "--out",
            str(out),
            "--set",
            "train.lr=1e-2",
        ],
    )
    assert r.exit_code == 2 and "another spec (overrides: [] there" in r.output
    # --report-only on a grid with one run unfinished: tabulates the rest, trains nothing
    (victim.path(out) / "DONE").rename(tmp_path / "DONE")
    before = sorted(p.name for p in (victim.path(out) / "checkpoints").iterdir())
    r = CliRunner().invoke(
        app, ["experiment", "repeated-data", "--preset", "tiny", "--out", str(out), "--report-only"]
    )
    assert r.exit_code == 0, r.output
    assert "9 of 10 runs finished" in r.output and not (victim.path(out) / "DONE").exists()
    assert sorted(p.name for p in (victim.path(out) / "checkpoints").iterdir()) == before
    partial = pd.read_csv(out / "results.csv")
    assert len(partial) == 9 and victim.name not in set(partial["run"][partial["seed"] == 0])
    res = json.loads((out / "results.json").read_text())
    assert res["missing"] == [str(victim.path(out).relative_to(out))]
    assert "partial: 1 runs" in (out / "report.html").read_text()
    pd.testing.assert_frame_equal(
        partial.drop(columns=["seconds"]).reset_index(drop=True),
        table[table["run"].ne(victim.name) | table["seed"].ne(0)]
        .drop(columns=["seconds"]).reset_index(drop=True),
    )  # fmt: skip
    for bad, msg in ((tmp_path / "nowhere", "no spec.json"), (tmp_path, "no spec.json")):
        r = CliRunner().invoke(
            app, ["experiment", "repeated-data", "--preset", "tiny", "--out", str(bad),
                  "--report-only"],
        )  # fmt: skip
        assert r.exit_code == 2 and msg in r.output, r.output


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_every_grid_preset_resolves_to_valid_run_configs(name):
    spec = GRIDS[name]
    runs = grid_runs(spec)
    kinds = {r.kind for r in runs}
    assert {"f0", "repeated"} <= kinds
    for r in runs:
        cfg = run_config(spec, r).resolve()
        assert cfg.steps >= 1 and cfg.model.n_ctx == cfg.data.seq_len
        if r.kind == "repeated":
            assert cfg.data.repeated_fraction == r.f and cfg.data.repeated_epochs == r.epochs


def test_finer_epoch_scan_reuses_the_runs_already_trained(tmp_path):
    assert grid_preset("tiny", epochs=[8, 2, 8]).epochs == (2, 8)
    with pytest.raises(ConfigError, match="repeated epochs must be >= 1"):
        grid_preset("tiny", epochs=[0])
    out = tmp_path / "g"
    base = ["experiment", "repeated-data", "--preset", "tiny", "--seed", "0", "--out", str(out)]
    r = CliRunner().invoke(app, [*base, "--epochs", "0"])
    assert r.exit_code == 2 and "repeated epochs must be >= 1" in r.output
    r = CliRunner().invoke(app, [*base, "--set", "train.lr=-1"])
    assert r.exit_code == 2 and not out.exists()  # nothing written for a bad grid
    r = CliRunner().invoke(app, [*base, "--epochs", "2"])
    assert r.exit_code == 0, r.output
    first = pd.read_csv(out / "results.csv")
    assert sorted(first.loc[first["kind"] == "repeated", "E"]) == [2]
    e2 = GridRun("tiny", "repeated", 0, 0.5, 2)
    stamp = (e2.path(out) / "summary.json").stat().st_mtime_ns
    r = CliRunner().invoke(app, [*base, "--epochs", "2", "--epochs", "4"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "results.csv")
    assert sorted(table.loc[table["kind"] == "repeated", "E"]) == [2, 4]
    assert (e2.path(out) / "summary.json").stat().st_mtime_ns == stamp  # not retrained


def test_baseline_sizes_add_only_f0_runs():
    spec = GridSpec(base="tiny", sizes=("tiny",), epochs=(2,), seeds=(0, 1), baseline_sizes=("xs",))
    extra = [r for r in grid_runs(spec) if r.size == "xs"]
    assert [(r.kind, r.seed) for r in extra] == [("f0", 0), ("f0", 1)]
    with pytest.raises(ConfigError, match="unknown model sizes"):
        GridSpec(base="tiny", baseline_sizes=("huge",))
    assert grid_preset("tiny", baseline_sizes=["xs"]).baseline_sizes == ("xs",)


def test_final_head_scores_and_sweep_probe_the_runs_own_token_range(tmp_path):
    """A byte-level run's end-of-run head scores and `interp sweep` draw printable
    ASCII, as its logged probe does (bytes >= 128 never occur in the corpus)."""
    from interp.analysis import prefix_matching_scores

    byte_text = ["corpus.name=python-stdlib", "corpus.tokenizer.kind=byte",
                 "corpus.tokenizer.vocab_size=257", "data.repeated_fraction=0.0"]  # fmt: skip
    cfg = repeated_data.preset("tiny", overrides=byte_text)
    repeated_data.run(cfg, str(tmp_path / "run"), quiet=True)
    model = open_run(tmp_path / "run").load()
    heads = open_run(tmp_path / "run").summary()  # the end-of-run head scores
    got = heads["prefix_matching_max"]
    printable = float(prefix_matching_scores(model, vocab_range=(32, 127)).max())
    assert got == pytest.approx(printable, abs=1e-6)
    assert got != pytest.approx(float(prefix_matching_scores(model).max()), abs=1e-4)
    # `interp sweep` on the run measures every head on the same printable range
    csv = tmp_path / "sweep.csv"
    r = CliRunner().invoke(app, ["sweep", str(tmp_path / "run"), "--out", str(csv)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(csv)
    last = df[df["step"] == df["step"].max()]
    by_metric = last.groupby("metric")["value"].max()
    assert by_metric["prefix_matching_scores"] == pytest.approx(printable, abs=1e-6)
    assert by_metric["induction_scores"] == pytest.approx(heads["induction_max"], abs=1e-6)
    assert {"prev_token_scores", "copying_scores", "logit_copying_scores"} <= set(by_metric.index)
    # the ranged results are cached apart from a whole-vocabulary sweep's
    from interp.analysis import sweep

    whole = sweep(tmp_path / "run", [prefix_matching_scores], steps=[int(df["step"].max())])
    assert whole["value"].max() == pytest.approx(float(prefix_matching_scores(model).max()))
