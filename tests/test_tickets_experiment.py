"""Pruning-at-init controls, iterative magnitude pruning, early stopping after
generalisation and the one-command tickets experiment (on the tiny preset)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from html import escape
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from interp.analysis.fourier import run_key_frequencies
from interp.cli import app
from interp.config import ConfigError
from interp.config.tickets import RegimeSpec
from interp.config.train import TrainConfig
from interp.experiments import grokking, ticket_suite, tickets
from interp.experiments.runner import JobResult
from interp.models import (
    MLPConfig,
    TransformerConfig,
    make_mlp,
    make_model,
    make_transformer,
    named_weights,
)
from interp.pruning import jaccard, load_mask, sparsity
from interp.pruning.scores import synflow_scores
from interp.training.metrics import first_step_at_or_above
from interp.training.rundir import RunStore, open_run
from interp.training.tasks import ClassificationTask
from interp.training.trainer import train


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("tix") / "dense"
    grokking.run(grokking.preset("tiny"), str(path), device="cpu", quiet=True)
    return path


@pytest.mark.parametrize(
    "method", ["snip", "grasp", "synflow", "grasp_t1", "synflow_iterative", "random"]
)
def test_pai_controls_prune_the_init_at_the_rate(dense, tmp_path, method):
    cfg = tickets.ticket_config(dense, rate=0.6, control=method, overrides=["train.steps=20"])
    tickets.run(cfg, str(tmp_path / method), device="cpu", quiet=True)
    mask = load_mask(tmp_path / method / tickets.MASK_FILE)
    assert sparsity(mask)["total"] == pytest.approx(0.6, abs=1e-3)
    magnitude = tickets.find_mask(open_run(dense), 60, 0.6)
    assert any(not torch.equal(mask[n], magnitude[n]) for n in mask)  # not the ticket
    w = open_run(tmp_path / method).store.load_weights(20)
    assert all(bool((w[n][~m] == 0).all()) for n, m in mask.items())


@pytest.mark.parametrize("kind", ["transformer", "mlp"])
def test_synflow_all_ones_input_reaches_every_matrix(kind):
    if kind == "transformer":
        model = make_transformer(TransformerConfig(n_ctx=3, d_vocab=8, d_vocab_out=7), seed=0)
    else:
        model = make_mlp(MLPConfig(n_tokens=7, d_out=7, d_embed=6, d_hidden=5), seed=0)
    scores, _ = synflow_scores(model, tickets.all_ones_forward)
    assert scores and all(float(s.min()) >= 0 for s in scores.values())
    embed = [n for n in scores if "embed" in n and not n.startswith("unembed")]
    assert embed and all(float(scores[n].sum()) > 0 for n in embed)
    # the all-ones input: every row of the table counts, so every row has a score
    assert all(bool((scores[n].sum(-1) > 0).all()) for n in embed)


def test_the_paper_variants_differ_from_the_earlier_ones(dense):
    """grasp (T = 200, prunable weights) vs grasp_t1, synflow (a training
    batch, one round) vs synflow_iterative: different masks at the same rate."""
    run = open_run(dense)
    cfg = tickets.ticket_config(dense, rate=0.6)
    model = make_model(cfg.model, seed=cfg.seed, device="cpu")
    model.load_state_dict(run.store.load_weights(0))
    task = tickets.make_task(cfg)
    masks = {m: tickets.pai_mask(m, model, task, 0.6) for m in tickets.PAI}
    for a, b in (("grasp", "grasp_t1"), ("synflow", "synflow_iterative")):
        assert jaccard(masks[a], masks[b]) < 0.99, (a, b)


def test_a_control_cut_by_the_earlier_definition_is_not_reused(dense, tmp_path):
    """A finished 'grasp' run whose mask records no variant (cut before
    'grasp' meant the paper's) is refused, naming its new name."""
    import json

    cfg = tickets.ticket_config(dense, rate=0.6, control="grasp", overrides=["train.steps=10"])
    tickets.run(cfg, str(tmp_path / "g"), device="cpu", quiet=True)
    meta_path = (tmp_path / "g" / tickets.MASK_FILE).with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["variant"] == "grokking-tickets"
    tickets.run(cfg, str(tmp_path / "g"), device="cpu", quiet=True)  # finished: returned
    del meta["variant"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="now called 'grasp_t1'"):
        tickets.run(cfg, str(tmp_path / "g"), device="cpu", quiet=True)


def test_iterative_magnitude_pruning_is_nested_and_exact(dense, tmp_path):
    cfg = tickets.ticket_config(dense, rate=0.6, overrides=["train.steps=20"], imp_levels=3)
    tickets.run(cfg, str(tmp_path / "imp"), device="cpu", quiet=True)
    mask = load_mask(tmp_path / "imp" / tickets.MASK_FILE)
    assert sparsity(mask)["total"] == pytest.approx(0.6, abs=1e-3)
    rates = []
    runtime = RunStore(tmp_path / "imp").read_config()["runtime"]
    assert runtime["threads"] >= 1 and runtime["cpu_capability"]
    for k in (1, 2):
        level = RunStore(tmp_path / "imp" / "imp" / f"level{k}")
        assert level.read_config()["runtime"] == runtime  # recorded, not left empty
        w = level.load_weights(level.steps()[-1])
        kept = {n: w[n] != 0 for n in mask}
        rates.append(sparsity(kept)["total"])
        assert all(bool((mask[n] <= kept[n]).all()) for n in mask)  # final ⊆ level k
    # level k removes 1 - 0.4^(k/3) (up to weights that are exactly 0 anyway)
    assert rates[0] == pytest.approx(1 - 0.4 ** (1 / 3), abs=0.01)
    assert rates[1] == pytest.approx(1 - 0.4 ** (2 / 3), abs=0.01)
    with pytest.raises(ConfigError, match="imp_levels"):
        tickets.ticket_config(dense, control="random", imp_levels=2)


def _easy_task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 7, (64, 2), generator=g)
    y = (x[:, 0] + x[:, 1]) % 7
    return ClassificationTask(x, y, x, y, None)  # test = train: generalises when it fits


@pytest.mark.parametrize("stop_accuracy", [0.95, 1.0])
def test_stop_after_gen_ends_the_run_and_resumes_to_the_same_step(tmp_path, stop_accuracy):
    cfg = TrainConfig(
        steps=2000,
        lr=1e-2,
        weight_decay=0.0,
        eval_every=5,
        stop_after_gen=20,
        stop_accuracy=stop_accuracy,
    )
    mcfg = MLPConfig(n_tokens=7, d_out=7, d_embed=16, d_hidden=32)

    def fit(path, stop=None):
        store = RunStore(path)
        store.init("test", {"x": 1}, {})
        model = make_mlp(mcfg, seed=0)
        return train(model, _easy_task(), cfg, store, 0, quiet=True, stop_after_step=stop)

    res = fit(tmp_path / "a")
    rows = RunStore(tmp_path / "a").read_metric_rows()
    t_gen = grokking.summarize(rows)["t_gen"]  # always at 95% test accuracy
    start = first_step_at_or_above(rows, "test", "accuracy", stop_accuracy)
    assert t_gen == first_step_at_or_above(rows, "test", "accuracy", 0.95)
    if stop_accuracy == 1.0:
        assert start > t_gen  # else this case would not test the threshold
    end = res.summary["steps"]  # the first evaluation >= 20 steps after `start`
    assert start is not None and start + 20 <= end < start + 25
    assert RunStore(tmp_path / "a").steps()[-1] == end  # with a checkpoint there
    fit(tmp_path / "b", stop=start + 7)  # killed after reaching the threshold
    again = fit(tmp_path / "b")
    assert again.summary["steps"] == end
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    assert a.checkpoint_sha(end) == b.checkpoint_sha(end)
    done = fit(tmp_path / "a")  # relaunching a stopped run trains nothing more
    assert done.summary["steps"] == end and RunStore(tmp_path / "a").steps()[-1] == end


def test_torch_init_matches_plain_pytorch_modules():
    cfg = TransformerConfig(n_ctx=3, d_vocab=60, d_vocab_out=59, init="torch")
    w = named_weights(make_transformer(cfg, seed=3))
    assert float(w["embed.weight"].detach().std()) == pytest.approx(1.0, rel=0.1)
    bound = 1 / math.sqrt(64)
    assert float(w["blocks.0.attn.q.weight"].detach().abs().max()) <= bound
    assert float(w["unembed.weight"].detach().abs().max()) <= bound
    assert float(w["blocks.0.mlp.out.weight"].detach().abs().max()) <= 1 / math.sqrt(256)
    again = named_weights(make_transformer(cfg, seed=3))
    assert all(torch.equal(w[n], again[n]) for n in w)
    # rejected by our check (ConfigError) or, under the tests' beartype hook, by the Literal
    with pytest.raises(Exception, match="init"):
        TransformerConfig(init="xavier")


def test_init_scale_multiplies_every_weight_matrix_and_nothing_else():
    base = TransformerConfig(n_ctx=3, d_vocab=8, d_vocab_out=7, normalization="LN")
    w1 = named_weights(make_transformer(base, seed=5))
    w2 = named_weights(make_transformer(replace(base, init_scale=2.5), seed=5))
    assert set(w1) == set(w2)
    for n in w1:
        factor = 2.5 if w1[n].ndim >= 2 else 1.0
        assert torch.equal(w2[n], w1[n] * factor), n
    assert any(w1[n].ndim == 1 and bool((w1[n] != 0).any()) for n in w1)  # LN gains kept
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="init_scale"):
            TransformerConfig(init_scale=bad)


def _row(run, t_gen, kind=None, steps=5000, t_gen_90=None):
    return {
        "seed": 0,
        "run": run,
        "kind": kind or run,
        "t_gen": t_gen,
        "t_gen_90": t_gen_90,
        "steps_trained": steps,
    }


def test_suite_spec_dense_stop_and_ticket_stop(tmp_path):
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="dense_stop_accuracy"):
            ticket_suite.SuiteSpec(dense_preset="tiny", dense_stop_accuracy=bad)
    spec = ticket_suite.SuiteSpec(dense_preset="tiny", stop_after_gen=30)
    dense = ticket_suite.dense_config(spec, seed=0)
    assert (dense.train.stop_after_gen, dense.train.stop_accuracy) == (500, 0.99)
    grokking.run(dense, str(tmp_path / "d"), quiet=True)
    # tickets and controls stop at t_gen's 95%, whatever the dense run stopped at
    cfg = ticket_suite.cut_from_dense(str(tmp_path / "d"), 60, 0.6, "ticket", 123, 30)
    assert (cfg.train.stop_after_gen, cfg.train.stop_accuracy, cfg.train.steps) == (30, 0.95, 123)
    assert ticket_suite.budget(2.0, {"t_gen": 100, "steps": 700}, 30) == 230
    assert ticket_suite.budget(2.0, {"t_gen": None, "steps": 700}, 30) == 730


def test_required_checks_on_known_tables():
    spec = ticket_suite.SuiteSpec(dense_preset="tiny", rates=(0.6,))
    base = [
        _row("dense", 1000),
        _row("dense_l1", 1900),
        _row("dense_l2", 600),
        _row("random", None),
        _row("t_mem", 1000),
    ]
    good = pd.DataFrame([*base, _row("ticket-r0.6", 250, "ticket")])
    good["speedup"] = 1000 / good["t_gen"]
    res = {c["check"]: c["pass"] for c in ticket_suite.check_results(good, spec)}
    assert all(res.values()) and len(res) == 5
    bad = pd.DataFrame(
        [
            _row("dense", 1000),
            _row("ticket-r0.6", 300, "ticket"),
            _row("dense_l1", 2100),
            _row("dense_l2", 400),
            _row("random", 990),
            _row("t_mem", 500),
        ]
    )
    bad["speedup"] = 1000 / bad["t_gen"]
    res = {c["check"]: c["pass"] for c in ticket_suite.check_results(bad, spec)}
    assert not any(res.values()) and len(res) == 5
    never = pd.DataFrame([_row("dense", None), _row("ticket-r0.6", 300, "ticket")])
    never["speedup"] = None
    (only,) = ticket_suite.check_results(never, spec)
    assert only["check"] == "dense generalizes" and not only["pass"]


def test_ordering_checks_compare_the_ticket_with_each_control():
    spec = ticket_suite.SuiteSpec(dense_preset="tiny", rates=(0.6,))
    table = pd.DataFrame(
        [
            _row("dense", 1000),
            _row("ticket-r0.6", 300, "ticket"),
            _row("random", 900),  # faster than dense, slower than the ticket
            _row("dense_l1", 300),  # a tie is not "faster"
            _row("dense_l2", None, steps=2100),  # not reached, trained past 300
            _row("snip", None, steps=200),  # stopped before 300: order unknown
            _row("t_mem", 250),
        ]
    )
    res = {c["check"]: c for c in ticket_suite.ordering_checks(table, spec)}
    verdict = {k.removeprefix("ticket r0.6 faster than "): c["pass"] for k, c in res.items()}
    assert verdict == {
        "random": True,
        "dense_l1": False,
        "dense_l2": True,
        "snip": False,
        "t_mem": False,
    }
    assert res["ticket r0.6 faster than snip"]["detail"].startswith("unknown")
    table.loc[table.run == "ticket-r0.6", "t_gen"] = None
    assert not any(c["pass"] for c in ticket_suite.ordering_checks(table, spec))
    result = {
        "rows": table.assign(
            tau=None,
            speedup=None,
            t_mem=None,
            speedup_90=None,
            final_test_accuracy=None,
            key_freqs=None,
        ).to_dict(orient="records"),
        "checks": [],
        "orderings": ticket_suite.ordering_checks(table, spec),
        "wall_seconds": 1.0,
        "jobs": 1,
    }
    text = ticket_suite.format_results(result)
    assert "[FAIL] seed 0: ticket r0.6 faster than random (the ticket never reached 95%)" in text


def test_across_seeds_counts_checks_and_takes_censored_medians():
    spec = ticket_suite.SuiteSpec(dense_preset="tiny", rates=(0.6,))
    rows = []
    for seed, runs in {  # (run, steps to 95%, steps to 90%)
        0: [("dense", 1000, 900), ("ticket-r0.6", 250, 100), ("random", None, 950)],
        1: [("dense", 800, 700), ("ticket-r0.6", 100, 70), ("random", 400, 350)],
    }.items():
        for run, t_gen, t_90 in [*runs, ("dense_l1", 1900 if seed == 0 else 3000, None)]:
            kind = "ticket" if run.startswith("ticket") else run
            rows.append(_row(run, t_gen, kind, t_gen_90=t_90) | {"seed": seed})
    table = pd.DataFrame(rows)
    # keys among dense's: tickets on both seeds, the random mask on the seed it
    # reached 95% (no verdict on the other), dense_l1 on neither
    in_dense = {"ticket-r0.6": [True, True], "random": [None, True], "dense_l1": [False, False]}
    table["keys_in_dense"] = [
        in_dense[r.run][r.seed] if r.run in in_dense else None for r in table.itertuples()
    ]
    for col, src in (("speedup", "t_gen"), ("speedup_90", "t_gen_90")):
        dense = table[table.run == "dense"].set_index("seed")[src]
        table[col] = table["seed"].map(dense) / table[src]
    agg = ticket_suite.across_seeds(table, ticket_suite.check_results(table, spec))
    agg = agg.set_index("run")
    assert agg.loc["ticket-r0.6", "median_speedup"] == pytest.approx(6.0)  # 4x and 8x
    assert agg.loc["ticket-r0.6", "median_speedup_90"] == pytest.approx(9.5)  # 9x and 10x
    # reached 90% on both seeds (0.95x, 2x), though 95% on one only
    assert agg.loc["random", "median_speedup_90"] == pytest.approx((900 / 950 + 2) / 2)
    assert pd.isna(agg.loc["dense_l1", "median_speedup_90"])  # never reached 90%
    assert agg.loc["ticket-r0.6", "checks"] == "ticket r0.6 >= 4x faster: 2/2"
    # one seed never reached 95%: it counts as the slowest, so the median is unknown
    assert agg.loc["random", "reached"] == 1 and pd.isna(agg.loc["random", "median_speedup"])
    assert agg.loc["random", "checks"] == "random no faster than dense: 1/2"
    assert agg.loc["dense_l1", "median_speedup"] == pytest.approx((1000 / 1900 + 800 / 3000) / 2)
    assert agg.loc["dense_l1", "checks"] == "dense_l1 within 2x of dense: 1/2"
    assert agg.loc["dense", "checks"] == ""  # "dense generalizes" only appears when it fails
    assert agg.loc["ticket-r0.6", "keys_in_dense"] == "2/2"
    assert agg.loc["random", "keys_in_dense"] == "1/1"
    assert agg.loc["dense_l1", "keys_in_dense"] == "0/2"
    assert agg.loc["dense", "keys_in_dense"] == ""


CONTROLS = ["random", "dense_l2", "t_mem", "no_wd"]


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """The tiny tickets experiment (it groks by ~200 steps) with four controls."""
    out = tmp_path_factory.mktemp("suite") / "tiny"
    args = ["experiment", "tickets", "--preset", "tiny", "--out", str(out)]
    r = CliRunner().invoke(app, args + [x for c in CONTROLS for x in ("--control", c)])
    assert r.exit_code == 0, r.output
    return out, args, r.output


def test_tickets_experiment_tiny_end_to_end(tiny_suite):
    out, args, output = tiny_suite
    table = pd.read_csv(out / "results.csv")
    spec = ticket_suite.SUITES["tiny"]
    assert set(table["run"]) == {"dense", *(f"ticket-r{x:g}" for x in spec.rates), *CONTROLS}
    # the mask-step curve: tickets cut from checkpoints of dense, in the report
    curve = pd.DataFrame(json.loads((out / "results.json").read_text())["curve"])
    assert len(curve) == spec.curve_points == 2 and curve["mask_step"].is_monotonic_increasing
    assert {"speedup", "jaccard_with_final", "kept_key_frequency_share"} <= set(curve.columns)
    assert curve["jaccard_with_final"].iloc[-1] == pytest.approx(1.0)  # the last: the final mask
    assert "tickets cut from each checkpoint" in (out / "report.html").read_text()
    by = table.set_index("run")
    dense_t_gen = by.loc["dense", "t_gen"]
    assert dense_t_gen > 0  # the tiny preset generalises
    for _, row in by.iterrows():  # speedup is dense t_gen / run t_gen, or empty
        if pd.notna(row["t_gen"]):
            assert row["speedup"] == pytest.approx(dense_t_gen / row["t_gen"])
            assert row["t_gen_90"] <= row["t_gen"]
            if row.name != "dense":  # stops at 95% + stop_after_gen, not at dense's 99%
                assert row["steps_trained"] < row["t_gen"] + spec.stop_after_gen + 10
        else:
            assert pd.isna(row["speedup"]) and row["speedup_upper_bound"] > 0
        # steps to 90% test accuracy, read back from the run's own metrics
        metrics = open_run(out / "seed0" / row.name).metrics()
        test = metrics.query("split == 'test' and metric == 'accuracy' and value >= 0.9")
        want = test["step"].min() if len(test) else None
        assert (pd.isna(row["t_gen_90"]) and want is None) or row["t_gen_90"] == want
        if pd.notna(row["t_gen_90"]):
            assert row["speedup_90"] == pytest.approx(by.loc["dense", "t_gen_90"] / row["t_gen_90"])
        # key frequencies of the run's last checkpoint, and whether dense has them all
        keys = run_key_frequencies(open_run(out / "seed0" / row.name))
        assert row["key_freqs"] == " ".join(map(str, keys))
        dense_keys = set(map(int, by.loc["dense", "key_freqs"].split()))
        if row.name == "dense" or pd.isna(row["t_gen"]):
            assert pd.isna(row["keys_in_dense"])
        else:
            assert bool(row["keys_in_dense"]) == (set(keys) <= dense_keys)
    t_mem_step = by.loc["t_mem", "mask_step"]
    assert t_mem_step >= by.loc["dense", "t_mem"]
    # dense is pruned "after perfect generalization": it stopped at the first
    # evaluation dense_stop_after_gen steps after reaching dense_stop_accuracy
    rows = open_run(out / "seed0" / "dense").store.read_metric_rows()
    full = first_step_at_or_above(rows, "test", "accuracy", spec.dense_stop_accuracy)
    assert full is not None and full > dense_t_gen  # else 95% and 99% would not differ
    stop = by.loc["dense", "steps_trained"]
    assert full + spec.dense_stop_after_gen <= stop < full + spec.dense_stop_after_gen + 10
    result = json.loads((out / "results.json").read_text())
    checks = {c["check"] for c in result["checks"]}
    assert checks == {
        "ticket r0.6 >= 1x faster",
        "dense_l2 within 2x of dense",
        "random no faster than dense",
        "t_mem no faster than dense",
    }
    orderings = {c["check"] for c in result["orderings"]}
    assert orderings == {f"ticket r0.6 faster than {c}" for c in ("random", "dense_l2", "t_mem")}
    for c in result["checks"] + result["orderings"]:  # printed with its verdict
        assert f"[{'PASS' if c['pass'] else 'FAIL'}] seed 0: {c['check']}" in output
    html = (out / "report.html").read_text()
    assert "Steps to 95% test accuracy" in html and "<script src=" not in html
    # counts first, then the figures, then every verdict
    n_pass = sum(c["pass"] for c in result["checks"])
    assert f"Required checks: {n_pass} of {len(result['checks'])} pass" in html
    first_fig = html.index("Steps to 95% test accuracy")
    for c in result["checks"] + result["orderings"]:
        assert html.index(f"seed 0: {escape(c['check'])}") > first_fig
    dense_last = open_run(out / "seed0" / "dense").last_step
    for run in ("ticket-r0.6", "random", "dense_l2"):  # cut from dense's last checkpoint
        assert by.loc[run, "mask_step"] == dense_last
    stamp = (out / "seed0" / "random" / "summary.json").stat().st_mtime_ns
    # the suite.json of version 0.1.0 (no prune_at then) relaunches as "last"
    stored = json.loads((out / "spec.json").read_text())
    assert stored.pop("prune_at") == "last"
    (out / "suite.json").write_text(json.dumps(stored))
    (out / "spec.json").unlink()
    r = CliRunner().invoke(app, args + [x for c in CONTROLS for x in ("--control", c)])
    assert r.exit_code == 0, r.output
    assert (out / "seed0" / "random" / "summary.json").stat().st_mtime_ns == stamp  # skipped
    r = CliRunner().invoke(app, [*args, "--set", "train.lr=3e-2"])
    assert r.exit_code == 2 and "another spec" in r.output
    # names what differs; the runs a relaunch may add (seeds, rates, controls) may differ
    assert "train.lr=3e-2" in r.output and "dense_overrides" in r.output
    assert "seeds" not in r.output and "rates" not in r.output and "controls" not in r.output
    r = CliRunner().invoke(app, ["experiment", "tickets", "--preset", "nope", "--out", str(out)])
    assert r.exit_code == 2 and "unknown tickets preset 'nope'" in r.output


@pytest.mark.filterwarnings("ignore:llc. the chains")
def test_the_suite_report_draws_the_llc_of_ticket_and_dense(tiny_suite, tmp_path):
    """Where ``interp sweep RUN --analyzer llc`` has estimated the LLC of a
    ticket and its dense run, the suite's report draws both over steps."""
    import shutil

    from interp.experiments.sweeping import sweep_run

    out = tmp_path / "suite"
    shutil.copytree(tiny_suite[0], out)
    result = json.loads((out / "results.json").read_text())
    for row in result["rows"]:  # the copies' run directories
        row["run_dir"] = str(out / Path(row["run_dir"]).relative_to(tiny_suite[0]))
    html = ticket_suite.write_suite_report(out, result)
    assert "Local learning coefficient" not in html.read_text()  # nothing estimated yet
    ticket = open_run(out / "seed0" / "ticket-r0.6")
    shared = sorted(set(ticket.steps) & set(open_run(out / "seed0" / "dense").steps))[-2:]
    for run in ("ticket-r0.6", "dense"):
        df = sweep_run(out / "seed0" / run, ["llc"], shared)
        assert df[df["metric"] == "llc_mean"]["value"].notna().all()
    html = ticket_suite.write_suite_report(out, result)
    assert "Local learning coefficient: ticket vs dense" in html.read_text()


def test_mask_step_curve_and_default_steps(tiny_suite, tmp_path):
    from interp.config.tickets import CurveSpec
    from interp.experiments.ticket_curve import default_mask_steps, mask_step_curve

    every = [0, 10, 20, 40, 80, 100]
    assert default_mask_steps(every, t_mem=15, t_gen=70) == every
    picks = default_mask_steps(list(range(0, 10001, 100)), t_mem=150, t_gen=2050)
    assert {0, 200, 2100, 10000} <= set(picks) and len(picks) <= 14
    out, _, _ = tiny_suite
    dense = open_run(out / "seed0" / "dense")
    steps = [0, dense.last_step]
    r = CliRunner().invoke(
        app,
        ["experiment", "ticket-curve", "--from", str(dense.path), "--out", str(tmp_path / "c"),
         *[x for s in steps for x in ("--step", str(s))]],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "c" / "results.csv")
    assert list(df["mask_step"]) == steps
    assert df["jaccard_with_final"].iloc[-1] == 1.0
    final_ticket = pd.read_csv(out / "results.csv").set_index("run").loc["ticket-r0.6", "t_gen"]
    assert df["t_gen"].iloc[-1] == final_ticket  # same mask, same init, same data: same run
    results = pd.read_csv(out / "results.csv").set_index("run")
    for col in ("key_freqs", "keys_in_dense"):  # so the same frequencies, judged the same way
        assert df[col].iloc[-1] == results.loc["ticket-r0.6", col]
    assert (tmp_path / "c" / "report.html").exists()
    with pytest.raises(ConfigError, match="no checkpoints at"):
        mask_step_curve(CurveSpec(source=str(dense.path), steps=(7,)), tmp_path / "d")
    assert not (tmp_path / "d").exists()
    r = CliRunner().invoke(app, ["experiment", "ticket-curve", "--from", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_regime_sweep_rows_and_figure(tmp_path):
    from interp.experiments.ticket_regimes import regime_sweep

    spec = RegimeSpec(
        presets={"transformer": "tiny"}, models=("transformer",), lrs={"transformer": (1e-2,)},
        fractions={"transformer": (0.9,)}, seeds=(0,), steps=300,
        dense_overrides=("train.weight_decay=0.1",),
    )  # fmt: skip
    df = regime_sweep(spec, tmp_path / "regimes", log=lambda line: None)
    (row,) = df.to_dict(orient="records")
    assert row["model"] == "transformer" and row["lr"] == 1e-2 and row["train_fraction"] == 0.9
    assert row["setting"] == "lr 0.01 train 0.9"
    assert row["delay"] == pytest.approx(row["dense_t_gen"] / row["dense_t_mem"])
    assert row["speedup"] == pytest.approx(row["dense_t_gen"] / row["ticket_t_gen"])
    dense_dir = tmp_path / "regimes" / "transformer-lr0.01-frac0.9" / "seed0" / "dense"
    cfg = json.loads((dense_dir / "config.json").read_text())
    # the sweep's lr and fraction reached the dense run
    assert cfg["config"]["train"]["lr"] == 1e-2
    assert cfg["config"]["data"]["train_fraction"] == 0.9
    # pruned after 99% like the tickets experiment's dense run
    assert cfg["config"]["train"]["stop_accuracy"] == 0.99
    assert (tmp_path / "regimes" / "report.html").exists()
    with pytest.raises(ConfigError, match="models\\[0\\] must be one of 'transformer' or 'mlp'"):
        RegimeSpec(models=("cnn",))
    with pytest.raises(ConfigError, match="fractions\\[mlp\\] must be in \\(0, 1\\)"):
        RegimeSpec(fractions={"mlp": (1.5,)}, models=("mlp",))
    r = CliRunner().invoke(app, ["experiment", "ticket-regimes", "--preset", "tiny", "--out",
                                 str(tmp_path / "y"), "--train-fraction", "1.5"])  # fmt: skip
    assert r.exit_code == 2 and "must be in (0, 1)" in r.output
    assert not (tmp_path / "y").exists()


def test_regime_settings_lr_fraction_or_both():
    lrs = RegimeSpec().lrs
    assert RegimeSpec(models=("mlp",)).settings("mlp") == [(lr, None) for lr in lrs["mlp"]]
    assert RegimeSpec(lrs={"mlp": (1e-3,)}, models=("mlp",)).settings("mlp") == [(1e-3, None)]
    only = RegimeSpec(lrs=None, fractions={"mlp": (0.3, 0.5)}, models=("mlp",))
    assert only.settings("mlp") == [(None, 0.3), (None, 0.5)]
    both = RegimeSpec(lrs={"mlp": (1e-3, 1e-2)}, fractions={"mlp": (0.3,)}, models=("mlp",))
    assert both.settings("mlp") == [(1e-3, 0.3), (1e-2, 0.3)]
    with pytest.raises(ConfigError, match="fractions has no entry for model 'mlp'"):
        RegimeSpec(fractions={"transformer": (0.3,)}, models=("mlp",))
    with pytest.raises(ConfigError, match="lrs has no entry for model 'mlp'"):
        RegimeSpec(lrs={"transformer": (1e-3,)}, models=("mlp",))


def test_regime_sweep_checks_every_model_before_training(tmp_path):
    out = tmp_path / "regimes"
    with pytest.raises(ConfigError, match="lrs has no entry for model 'mlp'"):
        # the transformer's setting is fine, but nothing may train before the mlp's is checked
        RegimeSpec(models=("transformer", "mlp"), lrs={"transformer": (1e-2,)}, seeds=(0,))
    assert not out.exists()


def test_dense_stop_accuracy_option(tmp_path):
    """--dense-stop-accuracy reaches the suite spec; bad values fail before any
    directory is made, in both commands."""
    assert ticket_suite.suite_preset("tiny").dense_stop_accuracy == 0.99
    spec = ticket_suite.suite_preset("tiny", dense_stop_accuracy=0.95)
    assert spec.dense_stop_accuracy == 0.95 and spec.dense_preset == "tiny"
    for cmd in (["tickets", "--preset", "tiny"], ["ticket-regimes", "--preset", "tiny"]):
        out = tmp_path / cmd[0]
        args = ["experiment", *cmd, "--out", str(out), "--dense-stop-accuracy", "1.5"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "dense_stop_accuracy must be <= 1.0, got 1.5" in r.output
        assert not out.exists()
        args = ["experiment", *cmd, "--out", str(out), "--prune-at", "best"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "prune_at must be one of" in r.output, r.output
        assert not out.exists()


def _fake_run(test_acc: dict[int, float], steps: list[int]):
    """A stand-in for a dense run: checkpoints at ``steps``, test accuracy per
    evaluated step (evaluations also fall between checkpoints)."""
    from types import SimpleNamespace

    rows = [
        {"step": k, "split": split, "metric": "accuracy", "value": v}
        for k, v in test_acc.items()
        for split, v in (("test", v), ("train", 1.0))
    ]
    store = SimpleNamespace(read_metric_rows=lambda: rows)
    return SimpleNamespace(steps=steps, last_step=steps[-1], store=store)


def test_prune_step_last_or_last_generalized_checkpoint():
    # 150 is evaluated (100%) but has no checkpoint; 300 ends in a loss spike
    acc = {0: 0.0, 100: 0.5, 150: 1.0, 200: 0.995, 250: 0.97, 300: 0.8}
    run = _fake_run(acc, [0, 100, 200, 300])
    spec = ticket_suite.SuiteSpec(dense_preset="tiny")
    assert ticket_suite.prune_step(run, spec.prune_at, spec.dense_stop_accuracy) == 300
    gen = replace(spec, prune_at="generalized")
    assert ticket_suite.prune_step(run, gen.prune_at, gen.dense_stop_accuracy) == 200
    assert ticket_suite.prune_step(run, "generalized", 0.75) == 300
    # never reached the bar: the last checkpoint at the run's best accuracy
    assert ticket_suite.prune_step(run, "generalized", 0.999) == 200
    plateau = _fake_run(
        {0: 0.0, 100: 0.98, 200: 0.985, 300: 0.985, 400: 0.86}, [0, 100, 200, 300, 400]
    )
    assert ticket_suite.prune_step(plateau, gen.prune_at, gen.dense_stop_accuracy) == 300
    assert ticket_suite.prune_step(plateau, spec.prune_at, spec.dense_stop_accuracy) == 400
    with pytest.raises(ConfigError, match="prune_at must be one of"):
        ticket_suite.SuiteSpec(dense_preset="tiny", prune_at="best")


def test_prune_at_generalized_cuts_every_mask_but_t_mem_there(tiny_suite):
    out = tiny_suite[0]
    seed_dir = out / "seed0"
    run = open_run(seed_dir / "dense")
    spec = ticket_suite.suite_preset("tiny", prune_at="generalized")
    at = ticket_suite.prune_step(run, spec.prune_at, spec.dense_stop_accuracy)
    rows = run.store.read_metric_rows()
    test = {
        r["step"]: r["value"] for r in rows if (r["split"], r["metric"]) == ("test", "accuracy")
    }
    assert test[at] >= spec.dense_stop_accuracy
    assert all(test[s] < spec.dense_stop_accuracy for s in run.steps if s > at)
    dense = {"d": JobResult("d", str(seed_dir / "dense"), run.config, run.summary(), 0.0, False)}
    for name in ("ticket-r0.6", "random", "dense_l1", "no_wd", "t_mem"):
        cfg = ticket_suite.configure_control(spec, name, dense)
        if name == "t_mem":  # the first checkpoint at or after dense's t_mem
            assert cfg.ticket.source_step < at
        else:
            assert cfg.ticket.source_step == at, name
        assert cfg.ticket.control == {"random": "random", "dense_l1": "dense_l1"}.get(
            name, "ticket"
        )
    no_wd = ticket_suite.configure_control(spec, "no_wd", dense)
    assert no_wd.train.weight_decay == 0.0


def test_figures_draw_not_reached_runs_at_their_bound():
    from interp.viz.tickets import regime_figure, speedup_bars

    regimes = pd.DataFrame(
        {
            "model": ["mlp", "mlp", "transformer"],
            "delay": [20.0, 30.0, 10.0],
            "speedup": [2.0, None, 4.0],
            "speedup_upper_bound": [None, 0.9, None],
            "label": ["a", "b", "c"],
        }
    )
    fig = regime_figure(regimes)
    marked = {
        t.name: (list(t.x), list(t.y)) for t in fig.data if t.marker.symbol == "triangle-down-open"
    }
    assert marked == {"mlp: not reached (< bound)": ([30.0], [0.9])}
    with_lr = regime_figure(regimes.assign(lr=[1e-3, 1e-2, 1e-3]))
    names = {t.name for t in with_lr.data}
    assert {"mlp lr 0.001", "mlp lr 0.01: not reached (< bound)", "transformer lr 0.001"} <= names
    dots = {
        t.name: list(t.y)
        for t in fig.data
        if t.mode == "markers" and t.name in regimes.model.values
    }
    assert dots == {"mlp": [2.0], "transformer": [4.0]}
    suite = pd.DataFrame(
        {
            "seed": [0, 0, 0],
            "run": ["dense", "ticket-r0.6", "random"],
            "speedup": [1.0, 5.0, None],
            "speedup_upper_bound": [None, None, 1.0],
        }
    )
    bars = speedup_bars(suite)
    (nr,) = [t for t in bars.data if t.marker.symbol == "triangle-down-open"]
    assert (list(nr.x), list(nr.y)) == (["random"], [1.0])
