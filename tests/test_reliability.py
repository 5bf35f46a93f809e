"""Faults injected on purpose, each the way a user meets it: two writers, OS
and device errors, a failed start, read-only runs, corrupt checkpoints,
diverged runs, JSON of the wrong shape, silent rewrites. docs/reliability.md
states the promise each test checks."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from interp import open_run
from interp.analysis import fourier_progress, sweep
from interp.cli import app
from interp.experiments import grokking
from interp.training.files import CorruptCheckpointError, RunError
from interp.training.rundir import RunStore

BIN = Path(sys.executable).parent / "interp"
TINY = ["train", "grokking", "--preset", "tiny", "--quiet", "--device", "cpu"]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def spawn(*args, **kw):
    env = dict(os.environ, INTERP_THREADS="1")
    return subprocess.Popen([str(BIN), *map(str, args)], env=env, text=True, **kw)


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert path.exists(), f"{path} never appeared"


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- 1. the lock
def test_a_second_writer_is_refused_and_the_first_finishes_clean(tmp_path):
    run = tmp_path / "R"
    args = [*TINY, "--run-dir", run, "--set", "train.steps=3000"]
    first = spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(run / "lock.json")
        second = subprocess.run(
            [str(BIN), *map(str, args)],
            capture_output=True,
            text=True,
            env=dict(os.environ, INTERP_THREADS="1"),
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert f"is being written by PID {first.pid} on " in second.stderr
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    rows = _rows(run)
    keys = [(r["step"], r["split"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))  # no duplicate rows
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)  # in order
    assert not (run / "lock.json").exists()  # released


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    run = tmp_path / "R"
    args = [*TINY, "--run-dir", run, "--set", "train.steps=3000"]
    victim = spawn(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(run / "checkpoints" / "step_00000100.json")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert json.loads((run / "lock.json").read_text())["pid"] == victim.pid  # left behind
    with pytest.warns(UserWarning, match=f"took over the lock of PID {victim.pid}"):
        res = grokking.run(
            grokking.preset("tiny", overrides=["train.steps=3000"]),
            str(run),
            device="cpu",
            quiet=True,
        )
    assert res.resumed_from is not None and open_run(run).finished


# -------------------------------------------------- 2. the grokking `=` token
def test_attention_view_of_the_documented_a_b_equals_input(tiny_run, tmp_path):
    out = cli("viz", "attention", tiny_run, "-o", tmp_path / "v.html", "--text", "1 2 17")
    assert out.exit_code == 0, out.output  # 17 is `=` for p = 17: an input-only token
    assert "CircuitsVis" in (tmp_path / "v.html").read_text()


# ------------------------------------------------ 3. OS and device errors
def test_os_and_device_errors_are_one_line_and_leave_nothing(tiny_run, tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        ([*TINY, "--run-dir", tmp_path / "a", "--device", "garbage"], "'garbage' is not a device"),
        ([*TINY, "--run-dir", tmp_path / "b", "--device", "meta"], "not on 'meta'"),
        ([*TINY, "--run-dir", tmp_path / "afile" / "R"], "not a directory: "),
        (
            [*TINY, "--run-dir", tmp_path / "c", "--set", "model.d_model=100000000"],
            "parameters: training it needs about",
        ),
        (["sweep", tiny_run, "--out", tmp_path / "nodir" / "x.csv"], "nodir does not exist"),
        (
            ["viz", "attention", tiny_run, "-o", tmp_path / "adir", "--text", "1 2 3"],
            "is a directory",
        ),
    ]
    for args, msg in cases:
        out = cli(*args)
        assert out.exit_code == 2, (args, out.output)
        assert msg in out.stderr and out.stderr.count("\n") == 1, (args, out.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]
    assert list((tmp_path / "adir").iterdir()) == []


def test_a_read_only_parent_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(locked):
        out = cli(*TINY, "--run-dir", locked / "R")
    assert out.exit_code == 2 and out.stderr.startswith("error: "), out.output
    assert "locked/R" in out.stderr and out.stderr.count("\n") == 1
    assert list(locked.iterdir()) == []


class _read_only:
    """Make a folder unwritable, even for root (``chattr +i``), or skip."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        if os.geteuid() != 0:
            self.path.chmod(0o555)
            return self
        done = subprocess.run(["chattr", "+i", str(self.path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a folder read-only as root here: {done.stderr!r}")
        return self

    def __exit__(self, *exc):
        if os.geteuid() != 0:
            self.path.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(self.path)], check=True)


# --------------------------------------------------------- 4. a failed start
def test_a_start_killed_before_its_first_checkpoint_does_not_block_the_relaunch(tmp_path):
    run = tmp_path / "R"
    big = grokking.preset("tiny", overrides=["model.d_model=64"])
    store = RunStore(run)  # what an out-of-memory kill leaves: config.json only
    store.init("grokking", __import__("interp.config", fromlist=["to_dict"]).to_dict(big), {})
    with pytest.warns(UserWarning, match="never started .* replaced"):
        res = grokking.run(grokking.preset("tiny"), str(run), device="cpu", quiet=True)
    assert res.summary["steps"] == 60 and open_run(run).config.model.d_model == 32
    # a run with a checkpoint is still protected
    with pytest.raises(RunError, match="different config"):
        grokking.run(big, str(run), device="cpu", quiet=True)


def test_a_start_that_fails_removes_what_it_wrote(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug while building")

    monkeypatch.setattr(grokking.Grokking, "build", broken)
    with pytest.raises(RuntimeError, match="a bug while building"):
        grokking.run(grokking.preset("tiny"), str(tmp_path / "new"), quiet=True)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(RunError, match="non-empty directory"):
        grokking.run(grokking.preset("tiny"), str(tmp_path / "mine"), quiet=True)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


# -------------------------------------------------------- 5. read-only runs
def test_sweep_and_report_of_a_read_only_run_use_the_user_cache(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "shared"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis", "report.html"))
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    with _read_only(run):
        first = sweep(run, [fourier_progress])
        assert list((tmp_path / "cache" / "analysis").iterdir())  # cached there, keyed the same
        calls = []
        monkeypatch.setattr(type(open_run(run)), "load", lambda *a, **k: calls.append(1))
        again = sweep(run, [fourier_progress])
        assert calls == [] and again.equals(first)
        monkeypatch.undo()
        monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
        out = cli("report", run)
    assert out.exit_code == 0, out.output
    page = Path(out.stdout.strip().splitlines()[-1])
    assert page.is_relative_to(tmp_path / "cache") and page.exists()
    assert not (run / "report.html").exists() and not (run / "analysis").exists()


# ------------------------------------------------------ 6. corrupt checkpoints
def test_a_corrupt_middle_checkpoint_is_skipped_and_marked(tiny_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis"))
    target = run / "checkpoints" / "step_00000020.safetensors"
    target.write_bytes(target.read_bytes()[:50])
    with pytest.warns(UserWarning, match="step_00000020.safetensors is corrupt"):
        df = sweep(run, [fourier_progress])
    assert df.attrs["corrupt_steps"] == [20]
    gap = df[df["step"] == 20]
    assert len(gap) and gap["value"].isna().all()  # the gap is in the table
    assert set(gap["metric"]) == set(df[df["step"] == 40]["metric"])
    assert df[df["step"] != 20]["value"].notna().all()
    out = cli("report", run)
    assert out.exit_code == 0, out.output


def test_resume_falls_back_from_a_corrupt_last_checkpoint(tmp_path):
    cfg = grokking.preset("tiny")
    grokking.run(cfg, str(tmp_path / "ref"), device="cpu", quiet=True)
    run = tmp_path / "r"
    grokking.run(cfg, str(run), device="cpu", quiet=True, stop_after_step=45)
    target = run / "checkpoints" / "step_00000040.state.safetensors"
    target.write_bytes(b"garbage")
    with pytest.warns(
        UserWarning,
        match="step_00000040.state.safetensors is corrupt.*resuming from the checkpoint before it",
    ):
        res = grokking.run(cfg, str(run), device="cpu", quiet=True)
    assert res.resumed_from == 20
    assert (run / "checkpoints" / "step_00000040.state.safetensors.corrupt").exists()  # kept
    assert open_run(run).sha(60) == open_run(tmp_path / "ref").sha(60)
    assert (run / "metrics.jsonl").read_text() == (tmp_path / "ref" / "metrics.jsonl").read_text()


# ------------------------------------------------------------ 7. divergence
def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_diverged_run_stops_with_a_clear_message_and_strict_json(tmp_path):
    run = tmp_path / "R"
    out = cli(*TINY, "--run-dir", run, "--set", "train.lr=10", "--set", "train.steps=200")
    assert out.exit_code == 1, out.output
    assert "diverged: the training loss became nan at step" in out.stderr
    summary = _strict((run / "summary.json").read_text())
    # stopped before the update whose loss was not finite, or at the evaluation that showed it
    assert summary["diverged_at"] in (summary["steps"], summary["steps"] + 1)
    assert (run / "DONE").exists()
    for line in (run / "metrics.jsonl").read_text().splitlines():
        _strict(line)
    assert summary["diverged_loss"] in ("nan", "inf", "-inf")
    # relaunched: the same verdict, nothing trained again
    again = cli(*TINY, "--run-dir", run, "--set", "train.lr=10", "--set", "train.steps=200")
    assert again.exit_code == 1 and "diverged" in again.stderr


def test_a_diverged_run_can_train_on_with_nulls_flagged(tmp_path):
    run = tmp_path / "R"
    sets = [
        "--set",
        "train.lr=10",
        "--set",
        "train.steps=100",
        "--set",
        "train.on_nonfinite=continue",
    ]
    out = cli(*TINY, "--run-dir", run, *sets)
    assert out.exit_code == 0, out.output
    rows = [_strict(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    flagged = [r for r in rows if r["value"] is None]
    assert flagged and all(r["nonfinite"] in ("nan", "inf", "-inf") for r in flagged)
    _strict((run / "summary.json").read_text())
    assert open_run(run).metrics()["value"].isna().sum() == len(flagged)


# ------------------------------------------------ 8. JSON of the wrong shape
@pytest.mark.parametrize(
    "line,msg",
    [
        ("[1, 2]", "line 1 is a list, not a metric row"),
        ('{"step": 3}', "line 1 lacks split, metric, value"),
        (
            '{"step": "3", "split": "train", "metric": "loss", "value": 1}',
            "line 1 has a step that is not an integer",
        ),
    ],
)
def test_metric_rows_of_the_wrong_shape_are_named(tiny_run, tmp_path, line, msg):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(line + "\n" + text)
    out = cli("report", run)
    assert out.exit_code == 2 and "metrics.jsonl: " + msg in out.stderr, out.output
    (run / "DONE").unlink()  # an unfinished run: the relaunch reads its metrics
    with pytest.raises(RunError, match=msg):
        grokking.run(grokking.preset("tiny"), str(run), quiet=True)


def test_a_sidecar_of_the_wrong_shape_is_named(tiny_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    side = run / "checkpoints" / "step_00000040.json"
    side.write_text(json.dumps({"step": 40, "files": {}}))
    with pytest.raises(CorruptCheckpointError, match="step_00000040.json lacks files.weights"):
        open_run(run).load(40)
    with pytest.warns(UserWarning, match="sweep skips step 40: .*step_00000040.json lacks"):
        out = cli("sweep", run, "--step", "40", "--step", "60")
    assert out.exit_code == 0 and "\n60," in out.stdout


# ------------------------------------------------ 9. messages name their source
def test_messages_name_their_source(tiny_run, tmp_path, monkeypatch):
    out = cli("viz", "attention", tiny_run, "-o", tmp_path / "v.html", "--text", "1 ² 3")
    assert out.exit_code == 2 and "'²' is not an integer id" in out.stderr
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    with open(run / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"step": 99, "split": "\xff"}\n')
    out = cli("report", run)
    assert out.exit_code == 2 and "metrics.jsonl is not UTF-8 text" in out.stderr
    monkeypatch.setenv("INTERP_THREADS", "abc")
    out = cli(*TINY, "--run-dir", tmp_path / "t")
    assert out.exit_code == 2 and "INTERP_THREADS must be a whole number, got 'abc'" in out.stderr


# ------------------------------------------------------- 10. silent rewrites
def test_a_finished_run_with_its_metrics_deleted_is_not_rewritten(tiny_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    (run / "metrics.jsonl").unlink()
    summary = (run / "summary.json").read_bytes()
    res = grokking.run(grokking.preset("tiny"), str(run), device="cpu", quiet=True)
    assert (run / "summary.json").read_bytes() == summary and res.summary == json.loads(summary)


def test_an_unfinished_run_with_its_metrics_deleted_warns(tmp_path):
    cfg = grokking.preset("tiny")
    run = tmp_path / "r"
    grokking.run(cfg, str(run), device="cpu", quiet=True, stop_after_step=30)
    (run / "metrics.jsonl").unlink()
    with pytest.warns(UserWarning, match="metrics.jsonl is missing: the metrics of steps up to 20"):
        grokking.run(cfg, str(run), device="cpu", quiet=True)


def test_a_deleted_sidecar_keeps_its_tensors_and_says_so(tmp_path):
    cfg = grokking.preset("tiny")
    run = tmp_path / "r"
    grokking.run(cfg, str(run), device="cpu", quiet=True, stop_after_step=45)
    (run / "checkpoints" / "step_00000020.json").unlink()
    with pytest.warns(UserWarning, match="step_00000020.safetensors has no sidecar"):
        grokking.run(cfg, str(run), device="cpu", quiet=True)
    assert (run / "checkpoints" / "step_00000020.safetensors").exists()


def test_an_unfinished_write_is_removed_and_said(tmp_path):
    cfg = grokking.preset("tiny")
    run = tmp_path / "r"
    grokking.run(cfg, str(run), device="cpu", quiet=True, stop_after_step=25)
    (run / "checkpoints" / "step_00000040.safetensors").write_bytes(b"torn")
    with pytest.warns(UserWarning, match="removed .*step_00000040.safetensors: an unfinished"):
        grokking.run(cfg, str(run), device="cpu", quiet=True)


# ------------------------------------------------ 11. the global generator
def test_identical_runs_have_identical_state_files_and_leave_the_callers_rng(tmp_path):
    cfg = grokking.preset("tiny")
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    grokking.run(cfg, str(tmp_path / "a"), device="cpu", quiet=True)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's generator is untouched
    torch.manual_seed(999)  # another caller state: the run's own stream does not depend on it
    grokking.run(cfg, str(tmp_path / "b"), device="cpu", quiet=True)
    for step in open_run(tmp_path / "a").steps:
        a = json.loads((tmp_path / "a" / "checkpoints" / f"step_{step:08d}.json").read_text())
        b = json.loads((tmp_path / "b" / "checkpoints" / f"step_{step:08d}.json").read_text())
        assert a["files"] == b["files"], step  # weights and state: same sha256


# ------------------------------------------------ SIGKILL at random points
@pytest.mark.slow
def test_twenty_kills_at_random_points_end_bit_identical(tmp_path):
    """Kill the trainer with SIGKILL at 20 random moments (some during a
    checkpoint write), resume each time; the run ends byte-identical to an
    uninterrupted one, metrics included."""
    args = [*TINY, "--set", "train.steps=1500", "--set", "train.checkpoint_every=20"]
    ref = subprocess.run(
        [str(BIN), *map(str, args), "--run-dir", str(tmp_path / "ref")],
        capture_output=True,
        text=True,
        env=dict(os.environ, INTERP_THREADS="1"),
    )
    assert ref.returncode == 0, ref.stderr
    rng = random.Random(0)
    run = tmp_path / "killed"
    kills = 0
    while kills < 20:
        proc = spawn(*args, "--run-dir", run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start = len(RunStore(run).steps()) if run.exists() else 0
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:  # wait until it trains
            if run.exists() and len(RunStore(run).steps()) > start:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    if not open_run(run).finished:
        done = subprocess.run(
            [str(BIN), *map(str, args), "--run-dir", str(run)],
            capture_output=True,
            text=True,
            env=dict(os.environ, INTERP_THREADS="1"),
        )
        assert done.returncode == 0, done.stderr
    assert kills >= 10, f"only {kills} kills landed while training"
    a, b = open_run(tmp_path / "ref"), open_run(run)
    assert a.steps == b.steps and all(a.sha(s) == b.sha(s) for s in a.steps)
    assert (tmp_path / "ref" / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
