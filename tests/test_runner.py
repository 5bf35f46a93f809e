"""The multi-run runner: dependencies, the DONE marker, the spec rule, the
results table, and the backends (in process, worker processes, a real Ray)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pandas as pd
import pytest

from interp.config import ConfigError
from interp.config.tickets import SUITES
from interp.experiments import grokking, repeated_grid
from interp.experiments.runner import Job, Study, make_backend, run_study, schedule
from interp.training.rundir import RunStore, open_run


class Toy(Study):
    """Two grokking runs, a ticket cut from the first, and a job its
    ``configure`` skips."""

    name = "tickets"  # borrows the tickets spec class for check_spec
    selects = frozenset({"seeds"})

    def jobs(self, spec, out):
        base = grokking.preset("tiny", overrides=["train.steps=40"])

        def ticket(deps):
            from interp.experiments.ticket_suite import cut_from_dense

            (dense,) = deps.values()
            return cut_from_dense(dense.run_dir, 40, 0.6, "ticket", 20, 10)

        return [
            Job("a", "grokking", base, tags={"run": "a"}),
            Job("b", "grokking", replace(base, seed=1), tags={"run": "b"}),
            Job("t", "tickets", after=("a",), configure=ticket, tags={"run": "t"}),
            Job("skipped", "tickets", after=("b",), configure=lambda deps: None),
            Job("after-skipped", "grokking", base, after=("skipped",)),
        ]

    def tabulate(self, spec, table):
        return {"rows": table[["key", "run", "t_gen", "steps", "final_test_accuracy"]]}


def test_dependencies_skips_and_one_results_table(tmp_path):
    seen = []
    result = run_study(Toy(), SUITES["tiny"], tmp_path / "out", log=seen.append)
    rows = pd.DataFrame(result["rows"])
    assert list(rows["key"]) == ["a", "b", "t"]  # listed order; skipped jobs have no row
    assert len(seen) == 3 and all("done" in line for line in seen)
    cfg = json.loads((tmp_path / "out" / "t" / "config.json").read_text())["config"]
    assert cfg["ticket"]["source"] == str(tmp_path / "out" / "a")  # configured from a's result
    assert json.loads((tmp_path / "out" / "spec.json").read_text()) == json.loads(
        json.dumps(result["spec"])
    )
    for key in ("a", "b", "t"):
        assert RunStore(tmp_path / "out" / key).is_done()
    assert not (tmp_path / "out" / "skipped").exists()
    csv = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(csv["key"]) == ["a", "b", "t"]
    # a relaunch trains nothing: every run is done
    stamps = {k: (tmp_path / "out" / k / "summary.json").stat().st_mtime_ns for k in "abt"}
    again = run_study(Toy(), SUITES["tiny"], tmp_path / "out", log=lambda s: None)
    assert again["rows"] == result["rows"]
    assert stamps == {k: (tmp_path / "out" / k / "summary.json").stat().st_mtime_ns for k in "abt"}


def test_a_kill_between_training_and_the_measurements_is_finished_on_relaunch(
    tmp_path, monkeypatch
):
    """The run's last checkpoint is written, then the process dies before the
    experiment's own measurements and DONE: the relaunch must not skip it (as
    a summary.json-as-marker would), and must not retrain it either."""
    out = tmp_path / "out"
    calls = []

    def killed(self, cfg, setup, result):
        calls.append(result.summary["steps"])
        raise KeyboardInterrupt  # the kill

    with monkeypatch.context() as m:
        m.setattr(grokking.Grokking, "summarize", killed)
        with pytest.raises(KeyboardInterrupt):
            run_study(Toy(), SUITES["tiny"], out, log=lambda s: None)
    a = RunStore(out / "a")
    assert calls == [40] and a.steps()[-1] == 40  # trained to the end
    assert not a.is_done() and not a.summary_path.exists()
    ckpts = {p.name: p.stat().st_mtime_ns for p in a.ckpt_dir.iterdir()}
    result = run_study(Toy(), SUITES["tiny"], out, log=lambda s: None)
    assert a.is_done() and "key_freqs" in json.loads(a.summary_path.read_text())
    assert {p.name: p.stat().st_mtime_ns for p in a.ckpt_dir.iterdir()} == ckpts  # not retrained
    assert len(result["rows"]) == 3


def test_a_relaunch_with_another_spec_names_the_fields(tmp_path):
    out = tmp_path / "out"
    run_study(Toy(), SUITES["tiny"], out, log=lambda s: None)
    seeds = replace(SUITES["tiny"], seeds=(0, 1))  # selects runs: allowed
    run_study(Toy(), seeds, out, log=lambda s: None)
    other = replace(SUITES["tiny"], stop_after_gen=7, cap=1.5)
    with pytest.raises(ConfigError) as info:
        run_study(Toy(), other, out, log=lambda s: None)
    msg = str(info.value)
    assert "another spec (cap: 1.0 there, 1.5 now; stop_after_gen: 20 there, 7 now)" in msg
    assert "seeds" not in msg


def test_backend_choices_are_checked():
    assert type(make_backend(None, 1, None)).__name__ == "_Local"
    for backend, jobs, msg in [
        ("local", 2, "--backend local runs one job at a time"),
        ("threads", 1, "--backend must be one of ['local', 'processes', 'ray', 'ensemble']"),
        (None, 0, "--jobs must be a whole number >= 1, got 0"),
    ]:
        with pytest.raises(ConfigError, match=msg.replace("[", "\\[").replace("]", "\\]")):
            make_backend(backend, jobs, None)


def test_a_job_waiting_for_an_unknown_job_is_an_error(tmp_path):
    from interp.experiments.runner import check_jobs

    with pytest.raises(RuntimeError, match="unknown jobs"):
        check_jobs([Job("x", "grokking", after=("nope",))])
    with pytest.raises(RuntimeError, match="duplicate job keys"):
        check_jobs([Job("x", "grokking"), Job("x", "grokking")])
    local = make_backend("local", 1, None)
    circular = [Job("x", "grokking", after=("y",)), Job("y", "grokking", after=("x",))]
    with pytest.raises(RuntimeError, match="wait for jobs that never run"):
        schedule(circular, tmp_path, local)


def _tables_match(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = [c for c in a.columns if c not in ("seconds", "run_dir")]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


@pytest.mark.slow
def test_processes_give_the_same_table_as_local(tmp_path):
    spec = replace(SUITES["tiny"], controls=("random",), rates=(0.6,))
    local = run_study(Toy(), spec, tmp_path / "local", log=lambda s: None)
    procs = run_study(Toy(), spec, tmp_path / "procs", jobs=2, log=lambda s: None)
    assert procs["backend"] == "processes"
    _tables_match(pd.DataFrame(local["rows"]), pd.DataFrame(procs["rows"]))
    a, b = open_run(tmp_path / "local" / "t"), open_run(tmp_path / "procs" / "t")
    assert a.sha(a.last_step) == b.sha(b.last_step)  # bit-identical weights


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_a_real_local_ray_gives_the_same_table_as_local(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token file for a throwaway cluster
    import ray

    spec = repeated_grid.grid_preset("tiny", seeds=[0])
    local = repeated_grid.run_grid(spec, tmp_path / "local", log=lambda s: None)
    on_ray = repeated_grid.run_grid(spec, tmp_path / "ray", backend="ray", jobs=2,
                                    log=lambda s: None)  # fmt: skip
    assert not ray.is_initialized()  # the local Ray started for the launch is shut down
    _tables_match(local, on_ray)
    result = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert result["backend"] == "ray" and len(result["rows"]) == len(local)


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="pip install 'memgen-interp\\[ray\\]'"):
        repeated_grid.run_grid(repeated_grid.GRIDS["tiny"], tmp_path, backend="ray")


def test_run_directories_of_version_0_1_0_open_report_and_finish_in_place(tmp_path):
    """A run written before DONE existed: summary.json was its end, the
    experiment was spelled repeated_data. It opens, reports, counts as
    finished, and a relaunch finishes it (adds the new summary fields and
    DONE) without training."""
    from typer.testing import CliRunner

    from interp.cli import app

    spec = repeated_grid.grid_preset("tiny", seeds=[0], epochs=[2])
    out = tmp_path / "grid"
    repeated_grid.run_grid(spec, out, log=lambda s: None)
    run_dir = out / "tiny" / "f0" / "seed0"
    raw = json.loads((run_dir / "config.json").read_text())
    raw.update(interp_version="0.1.0", experiment="repeated_data")
    (run_dir / "config.json").write_text(json.dumps(raw))
    summary = json.loads((run_dir / "summary.json").read_text())
    heads = {k: summary.pop(k) for k in ("prefix_matching_max", "induction_max")}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "DONE").unlink()
    (out / "spec.json").rename(out / "grid.json")  # the grid's spec file then

    run = open_run(run_dir)
    assert run.experiment == "repeated-data" and run.finished
    r = CliRunner().invoke(app, ["report", str(run_dir)])
    assert r.exit_code == 0 and (run_dir / "report.html").exists(), r.output
    ckpts = {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}
    r = CliRunner().invoke(app, ["experiment", "repeated-data", "--preset", "tiny", "--seed", "0",
                                 "--epochs", "2", "--out", str(out), "--report-only"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (run_dir / "DONE").exists()
    finished = json.loads((run_dir / "summary.json").read_text())
    assert finished["prefix_matching_max"] == pytest.approx(heads["prefix_matching_max"])
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()} == ckpts


def test_every_multi_run_experiment_has_a_tiny_preset():
    from interp.config.catalog import STUDIES

    for name, entry in STUDIES.items():
        assert "tiny" in entry.preset_table(), name


@pytest.mark.parametrize("name", ["ticket-regimes", "ticket-curve"])
def test_tiny_presets_run_from_the_command_line(tmp_path, name):
    from typer.testing import CliRunner

    from interp.cli import app

    args = ["experiment", name, "--preset", "tiny", "--out", str(tmp_path / "out")]
    if name == "ticket-curve":
        from interp.config.tickets import TINY_GROKS

        dense = tmp_path / "dense"
        grokking.run(grokking.preset("tiny", overrides=list(TINY_GROKS)), str(dense), quiet=True)
        args += ["--from", str(dense)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(rows) >= 1 and (tmp_path / "out" / "report.html").exists()
    assert "speedup" in rows.columns


def test_study_presets_and_specs_reject_bad_values(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    r = CliRunner().invoke(app, ["experiment", "tickets", "--preset", "tiny", "--jobs", "0",
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "--jobs must be a whole number >= 1" in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, ["experiment", "tickets", "--preset", "tiny", "--control", "nope",
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "controls[0] must be one of" in r.output
    assert not (tmp_path / "o").exists()


def test_a_skip_that_settles_the_last_dependency_is_not_a_deadlock(tmp_path):
    """A job skipped in the same pass as its dependant's other dependency
    settles: the scheduler scans again instead of reporting a deadlock
    (this ordering used to depend on which process finished last)."""
    from interp.experiments.runner import Job, _Backend, schedule

    class Nothing(_Backend):
        def submit(self, *args):
            raise AssertionError("nothing should run")

    jobs = [
        Job("first", "grokking", None, configure=lambda deps: None),
        Job("second", "grokking", None, after=("first",)),
        Job("third", "grokking", None, after=("second",)),
    ]
    assert schedule(jobs, tmp_path, Nothing()) == {"first": None, "second": None, "third": None}
