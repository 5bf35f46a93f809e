"""The local learning coefficient estimator (interp.analysis.llc: devinterp's
SGLD) on models whose learning coefficient is known in closed form, and its
refusals: diverged chains, stuck chains, bad settings and data."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from interp.analysis.learning_coefficient import LLCDiverged, llc
from interp.analysis.llc_known import (
    deep_linear,
    linear_regression,
    per_example_sq_error,
    reduced_rank_lambda,
)
from interp.config.core import ConfigError, InputError

#: the calibrated sampler of docs/llc.md for these known-answer models
KNOWN = {"lr": 1e-4, "draws": 1000, "chains": 4, "batch_size": 64, "localization": 100.0}


def _estimates(make, seeds=(0, 1, 2)):
    out = []
    for seed in seeds:
        model, x, y = make(seed)
        out.append(llc(model, (x, y), loss_fn=per_example_sq_error, seed=seed, **KNOWN))
    return out


@pytest.mark.slow
def test_a_regular_model_has_half_its_parameter_count():
    """Linear regression with d = 10 at its least-squares fit: λ = d/2 = 5.
    Over data seeds 0–2 the mean estimate is within 10% and each within 25%."""
    res = _estimates(lambda seed: linear_regression(10, 2000, seed))
    values = [r["llc_mean"] for r in res]
    assert sum(values) / 3 == pytest.approx(5.0, rel=0.10), values
    assert all(v == pytest.approx(5.0, rel=0.25) for v in values), values
    assert all(not r["flat"] and r["llc_se"] > 0 for r in res)
    assert all(r["loss_trace"].shape == (4, 1000) for r in res)


@pytest.mark.slow
def test_a_deep_linear_network_has_aoyagis_coefficient():
    """y = B·A·x, 3 → 3 → 3, at a rank-1 map: λ = 4 (Aoyagi & Watanabe
    2005), well below the 9 of a regular model with its 18 parameters. The
    mean estimate over seeds 0–2 is within 10% of 4."""
    truth = reduced_rank_lambda(3, 3, 3, 1)
    assert truth == 4.0
    values = [r["llc_mean"] for r in _estimates(lambda seed: deep_linear(3, 3, 3, 1, 2000, seed))]
    assert sum(values) / 3 == pytest.approx(truth, rel=0.10), values
    assert max(values) < 0.6 * 9


def test_reduced_rank_formula_cases():
    """Aoyagi & Watanabe's cases: at full rank with h = m = n_out the count
    of a rank-r map r(m + n − r)/2; the wide-hidden case mn/2."""
    assert reduced_rank_lambda(4, 4, 4, 4) == pytest.approx(4 * (4 + 4 - 4) / 2)
    assert reduced_rank_lambda(2, 5, 1, 1) == pytest.approx((1 * 2 - 1 + 5) / 2)  # m + h < n + r
    assert reduced_rank_lambda(2, 2, 9, 1) == pytest.approx(2.0)  # m + n < h + r
    with pytest.raises(InputError, match="rank"):
        reduced_rank_lambda(3, 3, 2, 3)


def test_same_seed_same_estimate_and_the_model_is_untouched():
    model, x, y = linear_regression(4, 300, 0)
    before = model.weight.detach().clone()
    a = llc(model, (x, y), loss_fn=per_example_sq_error, draws=50, chains=2, batch_size=32)
    b = llc(model, (x, y), loss_fn=per_example_sq_error, draws=50, chains=2, batch_size=32)
    assert a["llc_per_chain"] == b["llc_per_chain"]
    assert torch.equal(model.weight, before)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=100)
    c = llc(model, loader, loss_fn=per_example_sq_error, draws=50, chains=2, batch_size=32)
    assert c["llc_per_chain"] == a["llc_per_chain"]
    assert a["n"] == 300 and a["n_beta"] == pytest.approx(300 / math.log(300))


def test_a_diverging_chain_is_named_not_returned():
    model, x, y = linear_regression(4, 300, 0)
    with pytest.raises(LLCDiverged, match="lower lr"):
        llc(model, (x, y), loss_fn=per_example_sq_error, lr=1.0, draws=50, chains=2, batch_size=32)


def test_a_stuck_chain_warns():
    model, x, y = linear_regression(4, 300, 0)
    with pytest.warns(UserWarning, match="raise lr"):
        res = llc(
            model, (x, y), loss_fn=per_example_sq_error, lr=1e-12, draws=50, chains=2,
            batch_size=32,
        )  # fmt: skip
    assert res["flat"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 500}, "fewer than batch_size=500"),
        ({"lr": -1.0}, "lr must be"),
        ({"chains": 0}, "chains must be"),
        ({"n_beta": float("nan")}, "n_beta must be"),
        ({"loss_fn": None}, "loss_fn is required"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    model, x, y = linear_regression(4, 300, 0)
    args = {"loss_fn": per_example_sq_error, "draws": 10, "chains": 2, "batch_size": 32, **kwargs}
    with pytest.raises(InputError, match=match):
        llc(model, (x, y), **args)


def test_bad_data_is_named():
    model, x, y = linear_regression(4, 300, 0)
    with pytest.raises(InputError, match="differ in length"):
        llc(model, (x, y[:10]), loss_fn=per_example_sq_error)
    with pytest.raises(InputError, match="empty"):
        llc(model, (x[:0], y[:0]), loss_fn=per_example_sq_error)
    with pytest.raises(InputError, match="no batches"):
        llc(model, [], loss_fn=per_example_sq_error)


def test_a_runs_llc_is_a_cached_sweep_analyzer_keyed_by_its_settings(tiny_run, tmp_path):
    """``interp sweep RUN --analyzer llc`` on the run's own training pairs and
    loss; the cache key holds every setting and the seed (a changed setting
    recomputes, the same one is served from the cache), and the grokking
    report draws the LLC where the sweep left it."""
    import shutil

    from typer.testing import CliRunner

    from interp import open_run
    from interp.analysis import sweep
    from interp.analysis.sweep import cache_key
    from interp.cli import app
    from interp.experiments.llc_runs import RunLLC

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    run = open_run(run_dir)
    fast = {"draws": 20, "chains": 2, "batch_size": 32}
    keys = {
        cache_key(RunLLC(**fast, **extra), run)
        for extra in ({}, {"seed": 1}, {"lr": 2e-4}, {"localization": 50.0}, {"n_beta_factor": 2.0})
    }
    assert len(keys) == 5
    steps = run.steps[-2:]
    df = sweep(run, [RunLLC(**fast)], steps, progress=False)
    llc_rows = df[df["metric"] == "llc_mean"]
    assert list(llc_rows["step"]) == steps and llc_rows["value"].notna().all()
    assert {"llc_se", "init_loss", "flat", "final_rise"} <= set(df["metric"])
    again = sweep(run, [RunLLC(**fast)], steps, cache="only", progress=False)
    assert again["value"].tolist() == df["value"].tolist()
    assert len(sweep(run, [RunLLC(**fast, seed=3)], steps, cache="only", progress=False)) == 0
    with pytest.raises(InputError, match="unknown settings"):
        RunLLC(temperature=1.0)

    out = CliRunner().invoke(app, ["sweep", str(run_dir), "--analyzer", "llc", "--step",
                                   str(steps[-1]), "--out", str(tmp_path / "l.csv")])  # fmt: skip
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(app, ["report", str(run_dir)])
    assert out.exit_code == 0, out.output
    assert "local learning coefficient" in (run_dir / "report.html").read_text()


def test_a_language_model_runs_llc_reads_its_training_sequences(tmp_path):
    """On an induction run the examples are training sequences (a fixed
    seeded sample) with their mean next-token loss; the induction report draws
    the LLC beside the copy gain where a sweep left it."""
    from interp import open_run
    from interp.analysis import sweep
    from interp.experiments import induction
    from interp.experiments.llc_runs import RunLLC, llc_data

    run_dir = tmp_path / "ind"
    induction.run(induction.preset("tiny"), str(run_dir), device="cpu", quiet=True)
    run = open_run(run_dir)
    x, y, loss_fn = llc_data(run, examples=40)
    x2, _, _ = llc_data(run, examples=40)
    assert x.shape[0] == 40 and torch.equal(x, x2) and torch.equal(x, y)
    model = run.load(run.last_step)
    per_example = loss_fn(model, x[:5], y[:5])
    assert per_example.shape == (5,) and bool((per_example > 0).all())
    sweep(run, [RunLLC(draws=10, chains=2, batch_size=16, examples=40)], [run.last_step],
          progress=False)  # fmt: skip
    # the report reads the default settings' cache: fill it for one checkpoint
    sweep(run, [RunLLC(draws=100, chains=4, batch_size=64, examples=1024)], [run.last_step],
          progress=False)  # fmt: skip
    induction.EXPERIMENT.write_report(run)
    assert "local learning coefficient, copy gain" in (run_dir / "report.html").read_text()


@pytest.mark.filterwarnings("ignore:llc. the chains")
def test_a_tickets_chains_move_only_its_kept_weights(tiny_run, tmp_path):
    """A run trained under a mask (a ticket) is sampled in the mask's
    subspace: every chain's model keeps the pruned weights at exactly 0 (seen
    from inside the loss), and the analyzer reports the kept count. The tiny
    preset is a TransformerLens bridge, whose parameter names differ from the
    mask's state-dict names."""
    from interp import open_run
    from interp.experiments import tickets
    from interp.experiments.llc_runs import RunLLC, run_param_masks, task_llc_data
    from interp.models import named_weights
    from interp.pruning import load_mask

    cfg = tickets.ticket_config(tiny_run, rate=0.6, overrides=["train.steps=20"])
    tickets.run(cfg, str(tmp_path / "ticket"), device="cpu", quiet=True)
    run = open_run(tmp_path / "ticket")
    model = run.load(run.last_step)
    mask = load_mask(tmp_path / "ticket" / tickets.MASK_FILE)
    masks = run_param_masks(model, run)
    raw = dict(model.named_parameters())
    assert set(masks) == set(raw) and set(masks) != set(named_weights(model))
    assert sum(m is not None for m in masks.values()) == len(mask)

    x, y, loss_fn = task_llc_data(tickets.make_task(cfg))
    pruned = {n: ~m for n, m in mask.items()}
    seen = []

    def spy(m, xb, yb):
        w = named_weights(m)
        seen.append(max(float(w[n][p].abs().max()) for n, p in pruned.items()))
        return loss_fn(m, xb, yb)

    res = llc(model, (x, y), loss_fn=spy, param_masks=masks, draws=10, chains=2,
              batch_size=32)  # fmt: skip
    assert len(seen) > 20 and max(seen) == 0.0 and math.isfinite(res["llc_mean"])
    total = sum(p.numel() for p in raw.values())
    kept = total - sum(int(p.sum()) for p in pruned.values())
    out = RunLLC(draws=10, chains=2, batch_size=32)(model, run)
    assert out["sampled_params"] == kept < total
    assert open_run(tiny_run) and run_param_masks(model, open_run(tiny_run)) is None


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_an_llc_sweep_runs_on_ray_and_matches_one_process(tiny_run, tmp_path, monkeypatch):
    """``interp sweep RUN --analyzer llc --jobs 2 --backend ray`` splits the
    checkpoints over Ray tasks (a local Ray started and stopped for the
    sweep); every estimate equals the one computed in this process."""
    import shutil

    import ray

    from interp import open_run
    from interp.analysis import sweep
    from interp.experiments.llc_runs import RunLLC
    from interp.experiments.sweeping import sweep_run

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny_run, a)
    shutil.copytree(tiny_run, b)
    steps = open_run(a).steps[-3:]
    on_ray = sweep_run(a, ["llc"], steps, jobs=2, backend="ray")
    assert not ray.is_initialized()
    here = sweep(open_run(b), [RunLLC()], steps, progress=False)
    key = ["step", "metric"]
    on_ray, here = on_ray.sort_values(key), here.sort_values(key)
    assert on_ray["step"].tolist() == here["step"].tolist()
    assert on_ray["value"].tolist() == pytest.approx(here["value"].tolist(), rel=1e-9)
    with pytest.raises(ConfigError, match="--backend must be one of"):
        sweep_run(a, ["llc"], steps, jobs=2, backend="threads")
