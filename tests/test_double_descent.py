"""Double descent: the offline datasets and their label noise, the
classifiers, the noisy-label metrics, per-example learning and forgetting
events, the peak statistics, and the multi-run experiment on its tiny preset."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from interp import open_run
from interp.analysis import sweep
from interp.analysis.forgetting import example_events, fit_fractions, noisy_from_run_data
from interp.cli import app
from interp.config.core import ConfigError, InputError, from_dict
from interp.config.double_descent import DoubleDescentSpec
from interp.data.classification import classification_data, noisy_labels
from interp.experiments import double_descent
from interp.experiments.double_descent_grid import COLUMNS, peak_of, spec_runs
from interp.experiments.example_fits import RunExampleFits
from interp.models import ClassifierConfig, make_model
from interp.models.classifier import parameter_count
from interp.training.tasks import NoisyLabelTask


def test_mnist1d_is_generated_offline_deterministically_and_leaves_numpy_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    d = classification_data("mnist1d", None, 0.0, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)  # global RNG untouched
    assert d.train_x.shape == (4000, 40) and d.test_x.shape == (1000, 40) and d.classes == 10
    assert set(d.train_y.tolist()) == set(range(10))
    again = classification_data("mnist1d", None, 0.0, seed=0)
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)
    digits = classification_data("digits", 500, 0.0, seed=1)
    assert digits.train_x.shape == (500, 64) and digits.test_x.shape == (500, 64)
    assert float(digits.train_x.max()) <= 1.0


def test_label_noise_replaces_exactly_that_many_labels_by_another_class():
    y = torch.arange(1000) % 10
    noisy_y, noisy = noisy_labels(y, 0.2, 10, seed=3)
    assert int(noisy.sum()) == 200
    assert bool((noisy_y[noisy] != y[noisy]).all()) and torch.equal(noisy_y[~noisy], y[~noisy])
    assert torch.equal(noisy_labels(y, 0.2, 10, seed=3)[0], noisy_y)  # seeded
    assert not torch.equal(noisy_labels(y, 0.2, 10, seed=4)[1], noisy)
    # every other class is drawn: the replacement is uniform over the 9 others
    counts = torch.bincount((noisy_y[noisy] - y[noisy]) % 10, minlength=10)
    assert counts[0] == 0 and bool((counts[1:] > 5).all())
    with pytest.raises(InputError, match="label_noise must be in"):
        noisy_labels(y, 1.0, 10, seed=0)
    with pytest.raises(InputError, match="n_train must be in"):
        classification_data("digits", 5000)


def test_classifiers_have_their_parameter_count_and_init_scale():
    mlp = ClassifierConfig(arch="mlp", width=7, d_in=40, classes=10)
    assert parameter_count(mlp) == 40 * 7 + 7 + 7 * 10 + 10
    cnn = ClassifierConfig(arch="cnn", width=3, d_in=40, classes=10)
    assert parameter_count(cnn) == (5 * 3 + 3) + (3 * 3 * 5 + 3) + (3 * 10 + 10)
    a = make_model(mlp, seed=0)
    b = make_model(replace(mlp, init_scale=0.1), seed=0)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.allclose(q, 0.1 * p), n
    x = torch.randn(5, 40)
    for norm in ("none", "batch", "layer"):
        for arch in ("mlp", "cnn"):
            m = make_model(ClassifierConfig(arch=arch, width=4, normalization=norm, d_in=40,
                                            classes=10), seed=0).eval()  # fmt: skip
            assert m(x).shape == (5, 10)
    with pytest.raises(InputError, match=r"\[batch, 40\]"):
        a(torch.randn(5, 41))


class _Lookup(torch.nn.Module):
    """Predicts, for one-hot input i, the class table[i]: a perfect memoriser."""

    def __init__(self, table: torch.Tensor, classes: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.nn.functional.one_hot(table, classes).double())

    def forward(self, x):
        return x.double() @ self.w


def test_noisy_label_metrics_on_a_perfect_memoriser_and_on_the_truth():
    y = torch.arange(100) % 10
    noisy_y, noisy = noisy_labels(y, 0.3, 10, seed=0)
    x = torch.eye(100)
    task = NoisyLabelTask(x, noisy_y, x[:10], y[:10], position=None, noisy=noisy,
                          clean_labels=y)  # fmt: skip
    memo = task.evaluate(_Lookup(noisy_y, 10), torch.float64)
    assert memo[("noisy", "accuracy")] == 1.0 and memo[("noisy", "clean_accuracy")] == 0.0
    assert memo[("clean", "accuracy")] == 1.0 and memo[("train", "accuracy")] == 1.0
    truth = task.evaluate(_Lookup(y, 10), torch.float64)
    assert truth[("noisy", "accuracy")] == 0.0 and truth[("noisy", "clean_accuracy")] == 1.0
    assert truth[("train", "accuracy")] == pytest.approx(0.7)


def test_learning_and_forgetting_events_on_a_known_history():
    # example 0: learned at 10, forgotten at 20, relearned at 30 (stays)
    # example 1: never fitted; example 2: fitted from the start
    history = {0: [0, 1, 0, 1, 1], 1: [0, 0, 0, 0, 0], 2: [1, 1, 1, 1, 1]}
    steps = [0, 10, 20, 30, 40]
    df = pd.DataFrame([{"step": s, "item": i, "metric": "correct", "value": float(v),
                        "layer": None} for i, h in history.items()
                       for s, v in zip(steps, h, strict=True)])  # fmt: skip
    ev = example_events(df, noisy=torch.tensor([True, False, False])).set_index("item")
    assert ev.loc[0, "first_fit_step"] == 10 and ev.loc[0, "forgetting_events"] == 1
    assert ev.loc[0, "learning_events"] == 2 and ev.loc[0, "settled_step"] == 30
    assert not ev.loc[0, "stays_fitted"] and bool(ev.loc[0, "noisy"])
    assert np.isnan(ev.loc[1, "first_fit_step"]) and np.isnan(ev.loc[1, "settled_step"])
    assert ev.loc[2, "settled_step"] == 0 and ev.loc[2, "stays_fitted"]
    fr = fit_fractions(df, torch.tensor([True, False, False]))
    assert fr["noisy_fit"].tolist() == [0, 1, 0, 1, 1]
    assert fr["clean_fit"].tolist() == [0.5] * 5
    with pytest.raises(InputError, match="example_fits"):
        example_events(df.assign(metric="other"))


@pytest.fixture(scope="module")
def tiny_dd(tmp_path_factory):
    path = tmp_path_factory.mktemp("dd") / "run"
    cfg = double_descent.preset("tiny", overrides=["train.steps=200", "model.width=128"])
    double_descent.run(cfg, str(path), device="cpu", quiet=True)
    return path


def test_a_run_records_its_noisy_labels_and_the_sweep_agrees_with_its_metrics(tiny_dd):
    run = open_run(tiny_dd)
    data = json.loads((tiny_dd / "data.json").read_text())
    noisy = noisy_from_run_data(data, data["n_train"])
    assert int(noisy.sum()) == round(0.2 * 300) == len(data["noisy_labels"])
    assert all(a != b for a, b in zip(data["noisy_labels"], data["noisy_original_labels"],
                                      strict=True))  # fmt: skip
    df = sweep(run, [RunExampleFits()], progress=False)
    ev = example_events(df, noisy)
    s = run.summary()
    # two code paths: the trainer's noisy/accuracy metric and the per-example sweep
    assert ev[ev["noisy"]]["final_fitted"].mean() == pytest.approx(s["noisy_fit_fraction"])
    assert 1 - ev["final_fitted"].mean() == pytest.approx(s["train_error"])
    assert s["params"] == parameter_count(run.config.model)
    out = CliRunner().invoke(app, ["report", str(tiny_dd)])
    assert out.exit_code == 0, out.output
    assert "Training labels fitted" in (tiny_dd / "report.html").read_text()


def test_same_config_and_seed_give_the_same_weights(tiny_dd, tmp_path):
    cfg = double_descent.preset("tiny", overrides=["train.steps=200", "model.width=128"])
    double_descent.run(cfg, str(tmp_path / "again"), device="cpu", quiet=True)
    assert open_run(tiny_dd).sha(200) == open_run(tmp_path / "again").sha(200)


def test_sgd_with_momentum_resumes_bit_identically(tmp_path):
    sgd = ["train.optimizer=sgd", "train.lr=0.05", "train.momentum=0.9", "train.steps=120"]
    cfg = double_descent.preset("tiny", overrides=sgd)
    double_descent.run(cfg, str(tmp_path / "full"), device="cpu", quiet=True)
    double_descent.run(cfg, str(tmp_path / "cut"), device="cpu", quiet=True, stop_after_step=70)
    resumed = double_descent.run(cfg, str(tmp_path / "cut"), device="cpu", quiet=True)
    assert resumed.resumed_from is not None
    assert open_run(tmp_path / "full").sha(120) == open_run(tmp_path / "cut").sha(120)
    with pytest.raises(ConfigError, match="momentum applies to optimizer sgd"):
        double_descent.preset("tiny", overrides=["train.momentum=0.9"])


def test_example_fits_work_on_a_grokking_run(tiny_run):
    run = open_run(tiny_run)
    df = sweep(run, [RunExampleFits()], run.steps[-2:], progress=False)
    ev = example_events(df)
    assert len(ev) == run.config.data.n_train if hasattr(run.config.data, "n_train") else len(ev)
    final_acc = run.metrics().query("split == 'train' and metric == 'accuracy'")
    last = final_acc[final_acc["step"] == run.steps[-1]]["value"].iloc[0]
    assert ev["final_fitted"].mean() == pytest.approx(last)


def _curve(errors_by_seed: dict[int, list[float]], widths: list[int]) -> pd.DataFrame:
    return pd.DataFrame([{"seed": s, "width": w, "test_error": e}
                         for s, es in errors_by_seed.items()
                         for w, e in zip(widths, es, strict=True)])  # fmt: skip


def test_peak_statistics_on_known_curves():
    widths = [8, 16, 32, 64]
    g = _curve({0: [0.30, 0.25, 0.40, 0.28], 1: [0.31, 0.26, 0.42, 0.27],
                2: [0.29, 0.24, 0.41, 0.29]}, widths)  # fmt: skip
    p = peak_of(g)
    assert p["peak_width"] == 32 and p["best_narrower_width"] == 16
    assert p["over_narrower"] == pytest.approx(0.16) and p["over_widest"] == pytest.approx(0.13)
    assert p["peak_height"] == pytest.approx(0.13) and p["clear_peak"]
    mono = peak_of(_curve({0: [0.5, 0.4, 0.3, 0.2], 1: [0.5, 0.41, 0.3, 0.2]}, widths))
    assert mono["peak_width"] == 8 and mono["peak_height"] == 0.0 and not mono["clear_peak"]
    noisy = _curve({0: [0.3, 0.35, 0.3, 0.3], 1: [0.3, 0.25, 0.3, 0.3]}, widths)
    assert not peak_of(noisy)["clear_peak"]  # a mean bump within the seeds' noise


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--noise", "1.0"], "noises must be in"),
        (["--width", "0"], "must be positive"),
        (["--set", "data.dataset=cifar"], "dataset"),
        (["--set", "train.batch_size=5000"], "batch_size"),
    ],
)
def test_bad_grid_input_is_named_before_any_run_directory(tmp_path, args, message):
    out = tmp_path / "dd"
    r = CliRunner().invoke(app, ["experiment", "double-descent", "--preset", "tiny", "--out",
                                 str(out), *args])  # fmt: skip
    assert r.exit_code == 2 and message in r.output, r.output
    assert not out.exists()


def test_the_tiny_experiment_end_to_end(tmp_path):
    out = tmp_path / "dd"
    args = ["experiment", "double-descent", "--preset", "tiny", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    spec = from_dict(DoubleDescentSpec, json.loads((out / "spec.json").read_text()))
    keys = [k for k, _, _ in spec_runs(spec)]
    assert len(table) == len(keys) == len(set(keys))
    # the adam factor at the model-wise widths is the model-wise run, trained once
    adam = table[table["factor"] == "adam"]
    assert len(adam) == 2 and adam["roles"].str.contains("model").all()
    assert not (out / "factor" / "adam").exists()
    result = json.loads((out / "results.json").read_text())
    assert {"peaks", "factors", "modelwise", "samplewise", "epochwise"} <= set(result)
    assert {f["factor"] for f in result["factors"]} == {"adam", "sgd"}
    assert len(result["epochwise"]) > 5
    html = (out / "report.html").read_text()
    assert "Model-wise: error vs width" in html and "Optimization factors" in html
    stamp = (out / "model" / "mlp-w4-noise0" / "seed0" / "summary.json").stat().st_mtime_ns
    r = CliRunner().invoke(app, [*args, "--seed", "0"])
    assert r.exit_code == 0, r.output
    assert (out / "model" / "mlp-w4-noise0" / "seed0" / "summary.json").stat().st_mtime_ns == stamp


def test_head_tuning_on_frozen_features_peaks_at_the_interpolation_threshold():
    """Minimum-norm least squares on k random projections of fixed features:
    the head interpolates the training labels from k = n − 1 on (it has an
    intercept), and its test risk is largest there (Belkin et al. 2019)."""
    from interp.analysis.head_tuning import frozen_feature_risk

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(20, 3, generator=gen)
    x, xt = torch.randn(60, 20, generator=gen), torch.randn(200, 20, generator=gen)
    feats = torch.relu(torch.cat([x, xt]) @ torch.randn(20, 400, generator=gen))
    y, yt = (x @ w).argmax(1), (xt @ w).argmax(1)
    risk = frozen_feature_risk(feats[:60], y, feats[60:], yt, [5, 20, 40, 55, 59, 65, 120, 400])
    r = risk.set_index("k")
    assert r.loc[59, "train_mse"] < 1e-8 and r.loc[400, "train_mse"] < 1e-8
    assert r.loc[40, "train_mse"] > 1e-3
    assert risk.loc[risk["test_mse"].idxmax(), "k"] == 59
    assert r.loc[400, "test_mse"] < r.loc[59, "test_mse"] / 5
    with pytest.raises(InputError, match="dims must be positive"):
        frozen_feature_risk(feats[:60], y, feats[60:], yt, [0])
