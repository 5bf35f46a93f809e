"""The induction experiment: data, config, resume, and the phase change on a real run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from interp import open_run
from interp.analysis import copy_gain, induction_scores, prev_token_scores, sweep
from interp.config import ConfigError
from interp.data.sequences import induction_training_batch, periodic_batch
from interp.experiments import induction


def test_training_sequences_repeat_as_documented():
    toks = periodic_batch(16, 48, (0, 64), seed=1)
    assert toks.shape == (16, 48) and int(toks.max()) < 64
    for row in toks:
        period = next(p for p in range(4, 25) if torch.equal(row[p:], row[:-p]))
        assert 4 <= period <= 24
    span = induction_training_batch(8, 32, (5, 40), seed=0, min_span=4)
    assert int(span.min()) >= 5 and int(span.max()) < 40
    assert torch.equal(periodic_batch(4, 16, (0, 9), 3), periodic_batch(4, 16, (0, 9), 3))


def test_config_validation():
    with pytest.raises(ConfigError, match="data.probe_length=30: two copies must fit"):
        induction.preset("cpu-quick", overrides=["data.probe_length=30"])
    with pytest.raises(ConfigError, match="data.kind"):
        induction.preset("cpu-quick", overrides=['data.kind="markov"'])
    with pytest.raises(ConfigError, match="train.batch_size must be set"):
        induction.preset("cpu-quick", overrides=["train.batch_size=null"])
    with pytest.raises(ConfigError, match="unknown induction preset"):
        induction.preset("nope")


def test_tiny_run_resumes_bit_identically(tmp_path):
    cfg = induction.preset("tiny")
    full = induction.run(cfg, str(tmp_path / "full"), device="cpu", quiet=True)
    assert full.summary["final_step"] == 40
    induction.run(cfg, str(tmp_path / "killed"), device="cpu", quiet=True, stop_after_step=27)
    resumed = induction.run(cfg, str(tmp_path / "killed"), device="cpu", quiet=True)
    assert resumed.resumed_from == 20
    a, b = open_run(tmp_path / "full"), open_run(tmp_path / "killed")
    assert a.sha(40) == b.sha(40)
    assert set(a.metrics()["split"]) == {"train", "test", "probe"}


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """The real cpu-quick preset and its 1-layer control (≈ 1 min together, 1 thread)."""
    root = tmp_path_factory.mktemp("induction")
    two = induction.run(induction.preset("cpu-quick"), str(root / "two"), device="cpu", quiet=True)
    one = induction.run(induction.preset("1-layer"), str(root / "one"), device="cpu", quiet=True)
    return root / "two", root / "one", two.summary, one.summary


@pytest.mark.slow
def test_induction_heads_form_when_in_context_learning_improves(quick_runs):
    two, _, summary, _ = quick_runs
    run = open_run(two)
    df = sweep(run, [induction_scores, prev_token_scores, copy_gain])
    ind = df[df.metric == "induction_scores"].groupby("step").value.max()
    prev = df[df.metric == "prev_token_scores"].groupby("step").value.max()
    gain = df[df.metric == "copy_gain"].set_index("step").value
    assert ind.iloc[0] < 0.1 and ind.iloc[-1] > 0.5  # no induction head at init, one at the end
    assert prev.iloc[-1] > 0.3  # ... and a previous-token head to compose with
    heads_form = int(ind[ind > 0.3].index.min())
    icl_improves = int(gain[gain > 1.0].index.min())
    assert abs(heads_form - icl_improves) <= 100  # same checkpoints (every 50 steps)
    assert summary["t_induction"] is not None and abs(summary["t_induction"] - heads_form) <= 100
    # the induction head lives in layer 1
    last = df[(df.step == run.last_step) & (df.metric == "induction_scores")]
    assert int(last.loc[last.value.idxmax(), "layer"]) == 1


@pytest.mark.slow
def test_one_layer_control_forms_no_induction_head(quick_runs):
    _, one, summary_two, summary_one = quick_runs
    scores = induction_scores(open_run(one).load())
    assert scores.max() < 0.3
    assert summary_one["t_induction"] is None
    assert summary_one["final_probe_copy_accuracy"] < 0.5 < summary_two["final_probe_copy_accuracy"]


def test_runs_written_with_icl_score_read_as_copy_gain(tmp_path):
    """Runs from before the rename recorded ``probe/icl_score`` (= second −
    first copy); they read back as ``copy_gain`` (first − second), summary
    included, and the results are the same numbers."""
    import json

    run_dir = tmp_path / "ind"
    induction.run(induction.preset("tiny"), str(run_dir), device="cpu", quiet=True)
    new = open_run(run_dir)
    metrics, summary = new.metrics(), new.summary()
    assert "copy_gain" in set(metrics.metric) and "final_probe_copy_gain" in summary
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    old_lines = []
    for line in lines:
        row = json.loads(line)
        if row["metric"] == "copy_gain":
            row = {**row, "metric": "icl_score", "value": -row["value"]}
        old_lines.append(json.dumps(row))
    (run_dir / "metrics.jsonl").write_text("\n".join(old_lines) + "\n")
    old_summary = dict(summary)
    old_summary["final_probe_icl_score"] = -old_summary.pop("final_probe_copy_gain")
    (run_dir / "summary.json").write_text(json.dumps(old_summary))
    old = open_run(run_dir)
    pd.testing.assert_frame_equal(old.metrics(), metrics)
    assert old.summary() == summary
