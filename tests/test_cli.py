"""The `interp` command as a user runs it: in process through typer's CliRunner,
and as a real process where that matters (start-up cost, SIGKILL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from interp.cli import app

BIN = Path(sys.executable).parent / "interp"


def cli(*args: str):
    """Run ``interp ARGS`` in this process; the result has exit_code, stdout, stderr."""
    return CliRunner().invoke(app, [str(a) for a in args])


def interp(*args, cwd=None):
    """Run ``interp ARGS`` as its own process."""
    env = dict(os.environ, INTERP_THREADS="1")
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def test_help_starts_without_torch_pandas_or_plotly():
    code = (
        "import sys, interp, interp.cli, interp.config.catalog\n"
        "from interp import open_run\n"
        "heavy = ('torch', 'transformer_lens', 'pandas', 'plotly')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    out = interp("--help")
    assert out.returncode == 0 and "experiment" in out.stdout and "presets" in out.stdout


def test_reading_metrics_needs_no_transformer_lens(tiny_run):
    code = (
        "import sys\nfrom interp import open_run\n"
        f"run = open_run({str(tiny_run)!r})\n"
        "m = run.metrics(); s = run.summary(); c = run.config\n"
        "print(len(m), s['t_gen'] == s['t_gen'], 'transformer_lens' in sys.modules, "
        "'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[2:] == ["False", "False"], out.stdout


def test_train_sweep_report_end_to_end(tmp_path):
    run = tmp_path / "grok"
    args = ["train", "grokking", "--preset", "tiny", "--run-dir", run, "--quiet", "--seed", "3",
            "--set", "train.steps=40", "--device", "cpu"]  # fmt: skip
    out = cli(*args)
    assert out.exit_code == 0, out.output
    assert "t_mem" in out.stdout and "t_gen" in out.stdout
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["seed"] == 3 and cfg["config"]["train"]["steps"] == 40
    assert json.loads((run / "summary.json").read_text())["final_step"] == 40
    assert (run / "DONE").exists()

    again = cli(*args, "--resume")
    assert again.exit_code == 0 and "resumed from step 40" in again.stdout

    csv = tmp_path / "m.csv"
    out = cli("sweep", run, "--out", csv)
    assert out.exit_code == 0, out.output
    df = pd.read_csv(csv)
    assert {"restricted_loss", "excluded_loss"} <= set(df["metric"])
    # a chosen analyzer on chosen checkpoints, in two worker processes
    out = cli("sweep", run, "--analyzer", "induction_scores", "--step", "0", "--step", "40",
              "--jobs", "2", "--out", csv)  # fmt: skip
    assert out.exit_code == 0, out.output
    df = pd.read_csv(csv)
    assert set(df["metric"]) == {"induction_scores"} and set(df["step"]) == {0, 40}
    assert len(df) == 2 * 2  # 2 steps × 1 layer × 2 heads
    out = cli("sweep", run, "--analyzer", "no_such_thing")
    assert out.exit_code == 2 and "unknown analyzer 'no_such_thing'" in out.stderr

    out = cli("report", run)
    assert out.exit_code == 0, out.output
    html = (run / "report.html").read_text()
    assert out.stdout.strip().endswith("report.html")
    # offline: plotly.js is inlined once, no script is loaded from elsewhere
    assert "<script src=" not in html and 'src="http' not in html
    assert html.count("plotly.js v") == 1
    assert html.count("Plotly.newPlot") == 3 and len(html) > 1_000_000

    out = cli("info", run)
    assert out.exit_code == 0, out.output
    assert "experiment: grokking" in out.stdout and "state:      finished" in out.stdout
    assert "t_gen:" in out.stdout and '"steps": 40' in out.stdout


def test_cli_errors_are_clear_and_write_nothing(tmp_path):
    run = tmp_path / "bad"
    base = ["train", "grokking", "--preset", "tiny", "--run-dir", run]
    out = cli(*base, "--set", "train.lr=-1")
    assert out.exit_code == 2 and out.stderr == "error: train.lr must be > 0.0, got -1\n"
    out = cli(*base, "--set", "train.lrate=1")
    assert out.exit_code == 2 and "unknown config key 'train.lrate'" in out.stderr
    out = cli(*base, "--set", "train.lr_schedule=step")
    assert out.exit_code == 2 and "train.lr_schedule must be one of 'constant' or 'cosine'" in (
        out.stderr
    )
    out = cli("train", "grokking", "--preset", "nope", "--run-dir", run)
    assert out.exit_code == 2 and "unknown grokking preset 'nope'" in out.stderr
    out = cli(*base, "--resume")
    assert out.exit_code == 2 and "holds no run to resume" in out.stderr
    out = cli(*base, "--threads", "0")
    assert out.exit_code == 2 and "threads must be a whole number >= 1, got 0" in out.stderr
    assert not run.exists()
    out = cli("report", tmp_path / "missing")
    assert out.exit_code == 2 and "does not exist" in out.stderr
    out = cli("info", tmp_path)
    assert out.exit_code == 2 and "is not a run directory" in out.stderr
    out = cli("presets", "nope")
    assert out.exit_code == 2 and "unknown experiment 'nope'" in out.stderr


def test_internal_errors_keep_their_traceback(tmp_path, monkeypatch):
    """Only user errors get the one-line message; a bug is not dressed up as one."""
    from interp.experiments import grokking

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(grokking.Grokking, "train", broken)
    out = cli("train", "grokking", "--preset", "tiny", "--run-dir", tmp_path / "r")
    assert out.exit_code == 1 and isinstance(out.exception, ValueError)
    assert "error: an internal bug" not in out.output


def test_presets_print_keys_values_types_and_help():
    out = cli("presets", "grokking")
    assert out.exit_code == 0
    for name in ("paper", "tickets-mlp", "cpu-quick", "tiny"):
        assert f"--preset {name}" in out.stdout
    out = cli("presets", "grokking", "tiny")
    assert out.exit_code == 0
    assert "  data.p = 17  (int in [2, 10000])\n      the modulus" in out.stdout
    assert "train.lr_schedule = constant  ('constant' | 'cosine')" in out.stdout
    assert "train.grokfast = null  (section | null)" in out.stdout
    # names that are a run experiment and a multi-run experiment show both
    out = cli("presets", "tickets")
    assert out.exit_code == 0
    assert "interp train tickets" in out.stdout and "interp experiment tickets" in out.stdout
    out = cli("presets", "tickets", "tiny")
    assert "rates = [0.4, 0.6]  (list of float)" in out.stdout
    for name in ("repeated-data", "ticket-regimes", "ticket-curve", "induction"):
        assert cli("presets", name).exit_code == 0, name
    out = cli("presets", "repeated-data", "tiny")  # a run preset and a grid preset
    assert "interp train repeated-data --preset tiny" in out.stdout
    assert "interp experiment repeated-data --preset tiny" in out.stdout


def test_train_help_lists_every_settable_key():
    from interp.config.core import describe
    from interp.experiments import grokking

    out = cli("train", "grokking", "--help")
    assert out.exit_code == 0
    assert "paper | tickets-mlp | cpu-quick" in out.stdout  # the presets
    for key in describe(grokking.preset("cpu-quick")):
        assert key.key in out.stdout, key.key
    out = cli("experiment", "repeated-data", "--help")
    assert "tiny" in out.stdout and "cpu-full" in out.stdout


@pytest.mark.slow
def test_sigkill_at_any_point_then_resume_is_bit_identical(tmp_path):
    """A real process killed with SIGKILL mid-run (possibly mid-write) resumes exactly."""
    import signal
    import time

    from interp import open_run

    args = ["train", "grokking", "--preset", "tiny", "--quiet", "--device", "cpu",
            "--set", "train.steps=300", "--set", "train.checkpoint_every=20"]  # fmt: skip
    ref = interp(*args, "--run-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr

    killed = tmp_path / "killed"
    env = dict(os.environ, INTERP_THREADS="1")
    proc = subprocess.Popen(
        [str(BIN), *args, "--run-dir", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "checkpoints" / "step_00000100.json").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert open_run(killed).last_step < 300, "the run finished before it could be killed"

    out = interp(*args, "--run-dir", str(killed))
    assert out.returncode == 0 and "resumed from step" in out.stdout, out.stderr
    a, b = open_run(tmp_path / "ref"), open_run(killed)
    assert a.steps == b.steps
    assert a.sha(300) == b.sha(300)
    assert (tmp_path / "ref" / "metrics.jsonl").read_text() == (
        killed / "metrics.jsonl"
    ).read_text()


def test_induction_train_report_and_attention_view(tmp_path):
    run = tmp_path / "ind"
    out = cli("train", "induction", "--preset", "tiny", "--run-dir", run, "--quiet")
    assert out.exit_code == 0, out.output
    assert "t_induction" in out.stdout
    out = cli("report", run)
    assert out.exit_code == 0, out.output
    html = (run / "report.html").read_text()
    assert html.count("plotly.js v") == 1 and "var CircuitsVis" in html
    assert "induction_scores" in html and "CircuitsVis.AttentionHeads" in html
    assert (run / "analysis").is_dir()
    out = cli("sweep", run, "--out", tmp_path / "heads.csv")
    assert out.exit_code == 0, out.output
    heads = pd.read_csv(tmp_path / "heads.csv")
    assert {"induction_scores", "prefix_matching_scores", "copy_gain"} <= set(heads["metric"])
    assert heads["layer"].notna().any()
    comp = heads[heads["metric"] == "k_composition"]  # tidy: source head in its own columns
    assert len(comp) and comp["source_layer"].eq(0).all() and comp["layer"].eq(1).all()

    view = tmp_path / "view.html"
    out = cli("viz", "attention", run, "--step", "20", "--text", "1 2 3 1 2 3", "--layer", "1",
              "-o", view)  # fmt: skip
    assert out.exit_code == 0, out.output
    page = view.read_text()
    assert page.count("CircuitsVis.AttentionHeads") == 1 and '"L1H0"' in page
    out = cli("viz", "attention", run, "-o", tmp_path / "probe.html")  # the run's own probe
    assert out.exit_code == 0, out.output
    bad = tmp_path / "bad.html"
    for args, msg in [
        (["--text", "1 two"], "not an integer id"),
        (["--text", "1 999"], "outside the vocabulary [0, 16)"),
        (["--step", "3"], "no checkpoint at step 3"),
    ]:
        out = cli("viz", "attention", run, "-o", bad, *args)
        assert out.exit_code == 2 and msg in out.stderr, (args, out.output)
    assert not bad.exists()


def test_train_tickets_says_which_stopping_rule_it_inherits(tmp_path):
    dense = tmp_path / "dense"
    stop = ["--set", "train.stop_after_gen=500", "--set", "train.stop_accuracy=0.99"]
    out = cli("train", "grokking", "--preset", "tiny", "--run-dir", dense, "--quiet", *stop)
    assert out.exit_code == 0, out.output
    out = cli("train", "tickets", "--from", dense, "--run-dir", tmp_path / "t", "--quiet")
    assert out.exit_code == 0, out.output
    assert "stops 500 steps after test accuracy reaches 0.99 (or at 60 steps)" in out.stdout
    train_cfg = json.loads((tmp_path / "t" / "config.json").read_text())["config"]["train"]
    assert train_cfg["stop_accuracy"] == 0.99  # inherited from the source run
    args = ["--run-dir", tmp_path / "t2", "--set", "train.stop_accuracy=0.95", "--quiet"]
    out = cli("train", "tickets", "--from", dense, *args)
    assert out.exit_code == 0, out.output
    assert "stops 500 steps after test accuracy reaches 0.95" in out.stdout


def test_tickets_find_and_train(tmp_path):
    dense = tmp_path / "dense"
    assert (
        cli("train", "grokking", "--preset", "tiny", "--run-dir", dense, "--quiet").exit_code == 0
    )
    out = cli("tickets", "find", dense, "--step", "40", "--rate", "0.6")
    assert out.exit_code == 0, out.output
    assert "total: 0.600 removed" in out.stdout
    assert (dense / "masks" / "step_00000040_rate0.60_global.safetensors").exists()
    ticket = tmp_path / "ticket"
    out = cli("train", "tickets", "--from", dense, "--run-dir", ticket, "--quiet")
    assert out.exit_code == 0, out.output
    assert "steps after test accuracy" not in out.stdout  # the tiny run has no early stop
    cfg = json.loads((ticket / "config.json").read_text())
    assert cfg["experiment"] == "tickets" and cfg["config"]["ticket"]["rate"] == 0.6
    out = cli("report", ticket)  # a ticket run is a grokking-style run directory
    assert out.exit_code == 0, out.output
    assert "restricted (key freqs only, test pairs)" in (ticket / "report.html").read_text()
    assert cfg["config"]["ticket"]["source_step"] == 60
    assert cfg["config"]["ticket"]["rewind_step"] == 0
    for args, msg in [
        (["--rate", "1.5"], "ticket.rate must be < 1.0, got 1.5"),
        (["--control", "nope"], "ticket.control must be one of 'ticket', 'random'"),
        (["--rewind", "3"], "--rewind 3: "),
    ]:
        out = cli("train", "tickets", "--from", dense, "--run-dir", tmp_path / "bad", *args)
        assert out.exit_code == 2 and msg in out.stderr, out.output
    assert not (tmp_path / "bad").exists()
    out = cli("tickets", "overlap", dense, "--rate", "0.6")
    assert out.exit_code == 0, out.output
    assert (dense / "analysis" / "mask_overlap.csv").exists()
    assert "jaccard_with_final" in out.stdout
    out = cli("tickets", "find", dense, "--rate", "-0.1")
    assert out.exit_code == 2 and "rate (fraction removed) must be in [0, 1)" in out.stderr
