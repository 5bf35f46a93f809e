"""The `interp` command end to end on the tiny preset, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

BIN = Path(sys.executable).parent / "interp"


def interp(*args, cwd=None):
    env = dict(os.environ, INTERP_THREADS="1")
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def test_train_sweep_report_end_to_end(tmp_path):
    run = tmp_path / "grok"
    out = interp(
        "train",
        "grokking",
        "--preset",
        "tiny",
        "--run-dir",
        str(run),
        "--quiet",
        "--seed",
        "3",
        "--set",
        "train.steps=40",
        "--device",
        "cpu",
    )
    assert out.returncode == 0, out.stderr
    assert "t_mem" in out.stdout and "t_gen" in out.stdout
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["seed"] == 3 and cfg["config"]["train"]["steps"] == 40
    assert json.loads((run / "summary.json").read_text())["final_step"] == 40

    again = interp(
        "train",
        "grokking",
        "--preset",
        "tiny",
        "--run-dir",
        str(run),
        "--quiet",
        "--seed",
        "3",
        "--set",
        "train.steps=40",
        "--resume",
    )
    assert again.returncode == 0 and "resumed from step 40" in again.stdout

    csv = tmp_path / "m.csv"
    out = interp("sweep", str(run), "--out", str(csv))
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(csv)
    assert {"restricted_loss", "excluded_loss"} <= set(df["metric"])

    out = interp("report", str(run))
    assert out.returncode == 0, out.stderr
    html = (run / "report.html").read_text()
    assert out.stdout.strip().endswith("report.html")
    # offline: plotly.js is inlined once, no script is loaded from elsewhere
    assert "<script src=" not in html and 'src="http' not in html
    assert html.count("plotly.js v") == 1
    assert html.count("Plotly.newPlot") == 3 and len(html) > 1_000_000


def test_cli_errors_are_clear_and_write_nothing(tmp_path):
    run = tmp_path / "bad"
    out = interp(
        "train", "grokking", "--preset", "tiny", "--run-dir", str(run), "--set", "train.lr=-1"
    )
    assert out.returncode == 2 and "train.lr must be in (0.0, 10.0], got -1" in out.stderr
    out = interp(
        "train", "grokking", "--preset", "tiny", "--run-dir", str(run), "--set", "train.lrate=1"
    )
    assert out.returncode == 2 and "unknown config key 'train.lrate'" in out.stderr
    out = interp("train", "grokking", "--preset", "nope", "--run-dir", str(run))
    assert out.returncode == 2 and "unknown grokking preset 'nope'" in out.stderr
    out = interp("train", "grokking", "--preset", "tiny", "--run-dir", str(run), "--resume")
    assert out.returncode == 2 and "holds no run to resume" in out.stderr
    assert not run.exists()
    out = interp("report", str(tmp_path / "missing"))
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = interp("presets", "grokking")
    assert out.returncode == 0 and set(json.loads(out.stdout)) >= {
        "paper",
        "tickets-mlp",
        "cpu-quick",
    }


def test_sigkill_at_any_point_then_resume_is_bit_identical(tmp_path):
    """A real process killed with SIGKILL mid-run (possibly mid-write) resumes exactly."""
    import signal
    import time

    from interp import open_run

    args = [
        "train",
        "grokking",
        "--preset",
        "tiny",
        "--quiet",
        "--device",
        "cpu",
        "--set",
        "train.steps=300",
        "--set",
        "train.checkpoint_every=20",
    ]
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
    out = interp(
        "train",
        "induction",
        "--preset",
        "tiny",
        "--run-dir",
        str(run),
        "--quiet",
        "--device",
        "cpu",
    )
    assert out.returncode == 0, out.stderr
    assert "t_induction" in out.stdout
    out = interp("report", str(run))
    assert out.returncode == 0, out.stderr
    html = (run / "report.html").read_text()
    assert html.count("plotly.js v") == 1 and "var CircuitsVis" in html
    assert "induction_scores" in html and "CircuitsVis.AttentionHeads" in html
    assert (run / "analysis").is_dir()
    out = interp("sweep", str(run), "--out", str(tmp_path / "heads.csv"))
    assert out.returncode == 0, out.stderr
    heads = pd.read_csv(tmp_path / "heads.csv")
    assert {"induction_scores", "prefix_matching_scores", "icl_score"} <= set(heads["metric"])
    assert heads["layer"].notna().any()

    view = tmp_path / "view.html"
    out = interp(
        "viz",
        "attention",
        str(run),
        "--step",
        "20",
        "--text",
        "1 2 3 1 2 3",
        "--layer",
        "1",
        "-o",
        str(view),
    )
    assert out.returncode == 0, out.stderr
    page = view.read_text()
    assert page.count("CircuitsVis.AttentionHeads") == 1 and '"L1H0"' in page
    bad = tmp_path / "bad.html"
    for args, msg in [
        (["--text", "1 two"], "not an integer id"),
        (["--text", "1 999"], "outside the vocabulary [0, 16)"),
        (["--head", "7"], "head index [7] out of range 0..1"),
        (["--step", "3"], "no checkpoint at step 3"),
    ]:
        out = interp("viz", "attention", str(run), "-o", str(bad), *args)
        assert out.returncode == 2 and msg in out.stderr, (args, out.stderr)
    assert not bad.exists()


def test_train_tickets_says_which_stopping_rule_it_inherits(tmp_path):
    dense = tmp_path / "dense"
    stop = ["--set", "train.stop_after_gen=500", "--set", "train.stop_accuracy=0.99"]
    out = interp("train", "grokking", "--preset", "tiny", "--run-dir", str(dense), "--quiet", *stop)
    assert out.returncode == 0, out.stderr
    out = interp("train", "tickets", "--from", str(dense), "--run-dir", str(tmp_path / "t"))
    assert out.returncode == 0, out.stderr
    assert "stops 500 steps after test accuracy reaches 0.99 (or at 60 steps)" in out.stdout
    train_cfg = json.loads((tmp_path / "t" / "config.json").read_text())["config"]["train"]
    assert train_cfg["stop_accuracy"] == 0.99  # inherited from the source run
    args = ["--run-dir", str(tmp_path / "t2"), "--set", "train.stop_accuracy=0.95"]
    out = interp("train", "tickets", "--from", str(dense), *args)
    assert out.returncode == 0, out.stderr
    assert "stops 500 steps after test accuracy reaches 0.95" in out.stdout


def test_tickets_find_and_train(tmp_path):
    dense = tmp_path / "dense"
    assert (
        interp(
            "train", "grokking", "--preset", "tiny", "--run-dir", str(dense), "--quiet"
        ).returncode
        == 0
    )
    out = interp("tickets", "find", str(dense), "--step", "40", "--rate", "0.6")
    assert out.returncode == 0, out.stderr
    assert "total: 0.600 removed" in out.stdout
    assert (dense / "masks" / "step_00000040_rate0.60_global.safetensors").exists()
    ticket = tmp_path / "ticket"
    out = interp("train", "tickets", "--from", str(dense), "--run-dir", str(ticket), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "steps after test accuracy" not in out.stdout  # the tiny run has no early stop
    cfg = json.loads((ticket / "config.json").read_text())
    assert cfg["experiment"] == "tickets" and cfg["config"]["ticket"]["rate"] == 0.6
    out = interp("report", str(ticket))  # a ticket run is a grokking-style run directory
    assert out.returncode == 0, out.stderr
    assert "restricted (key freqs only)" in (ticket / "report.html").read_text()
    assert (
        cfg["config"]["ticket"]["source_step"] == 60 and cfg["config"]["ticket"]["rewind_step"] == 0
    )
    for args, msg in [
        (["--rate", "1.5"], "ticket.rate must be in [0.0, 1.0)"),
        (["--rewind", "3"], "--rewind 3: "),
    ]:
        out = interp(
            "train", "tickets", "--from", str(dense), "--run-dir", str(tmp_path / "bad"), *args
        )
        assert out.returncode == 2 and msg in out.stderr, out.stderr
    assert not (tmp_path / "bad").exists()
    out = interp("tickets", "overlap", str(dense), "--rate", "0.6")
    assert out.returncode == 0, out.stderr
    assert (dense / "analysis" / "mask_overlap.csv").exists()
    assert "jaccard_with_final" in out.stdout
    out = interp("tickets", "find", str(dense), "--rate", "-0.1")
    assert out.returncode == 2 and "rate (fraction removed) must be in [0, 1)" in out.stderr
