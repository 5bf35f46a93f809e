"""The training engine: reproducibility, resume, refusal, corruption, masks, Grokfast."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy
import pytest
import torch
import torch.nn.functional as F

from interp import open_run
from interp.experiments import grokking
from interp.experiments.grokking import summarize
from interp.models import make_model, named_weights
from interp.training import (
    ClassificationTask,
    CorruptCheckpointError,
    GrokfastConfig,
    RunError,
    RunStore,
    checkpoint_steps,
    train,
)
from interp.training.grokfast import GrokfastFilter
from interp.training.tasks import minibatch_indices


def _final_weights(path):
    run = open_run(path)
    return run.store.load_weights(run.last_step)


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_checkpoint_schedule():
    assert checkpoint_steps(1000, 100) == [
        0,
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        100,
        200,
        300,
        400,
        500,
        600,
        700,
        800,
        900,
        1000,
    ]
    assert checkpoint_steps(250, 100, log_early=False) == [0, 100, 200, 250]


def test_run_directory_layout(tiny_run):
    run = open_run(tiny_run)
    assert (tiny_run / "config.json").exists() and (tiny_run / "metrics.jsonl").exists()
    raw = json.loads((tiny_run / "config.json").read_text())
    assert raw["experiment"] == "grokking" and raw["interp_version"]
    rt = raw["runtime"]
    assert rt["device"] == "cpu" and isinstance(rt["threads"], int) and rt["threads"] >= 1
    assert rt["torch"] == torch.__version__ and rt["numpy"] == numpy.__version__
    assert rt["transformer-lens"][0].isdigit() and rt["python"].startswith("3.")
    assert rt["cpu"] and rt["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert run.steps == [0, 1, 2, 4, 8, 16, 20, 40, 60]
    for s in run.steps:
        side = json.loads(run.store.sidecar_path(s).read_text())
        assert side["step"] == s and len(side["files"]["weights"]["sha256"]) == 64
        assert (tiny_run / "checkpoints" / f"step_{s:08d}.safetensors").exists()
    df = run.metrics()
    assert list(df.columns) == ["step", "split", "metric", "value"]
    assert set(df["split"]) == {"train", "test"} and set(df["metric"]) == {"loss", "accuracy"}
    assert sorted(df["step"].unique()) == [0, 1, 2, 4, 8, 10, 16, 20, 30, 40, 50, 60]
    summary = json.loads((tiny_run / "summary.json").read_text())
    key_freqs = summary.pop("key_freqs")
    assert summary == summarize(df.to_dict("records")) | {"steps": 60}
    assert isinstance(key_freqs, list) and all(1 <= k <= 8 for k in key_freqs)
    done = json.loads((tiny_run / "DONE").read_text())  # written last, vouching for the summary
    assert (
        done["summary_sha256"]
        == hashlib.sha256((tiny_run / "summary.json").read_bytes()).hexdigest()
    )
    assert run.finished
    assert not list(tiny_run.rglob("*.tmp"))
    assert not list(tiny_run.rglob("*.pt")) and not list(tiny_run.rglob("*.pkl"))


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    from interp.training.files import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_loaded_model_reproduces_logged_metrics(tiny_run):
    run = open_run(tiny_run)
    model = run.load(run.last_step)
    task = grokking.make_task(run.config)
    res = task.evaluate(model, torch.float64)
    logged = run.metrics().query(f"step == {run.last_step}")
    for (split, metric), v in res.items():
        want = logged.query(f"split == '{split}' and metric == '{metric}'")["value"].item()
        assert v == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["train.batch_size=64", 'train.lr_schedule="cosine"'],
        ['train.grokfast.kind="ema"'],
        ['train.grokfast.kind="ma"', "train.grokfast.window=7"],
        ["train.readout_only=true"],
    ],
    ids=["full-batch", "minibatch-cosine", "grokfast-ema", "grokfast-ma", "readout"],
)
def test_rerun_is_bit_identical_and_kill_resume_equals_uninterrupted(tmp_path, overrides):
    cfg = grokking.preset("tiny", overrides=overrides)
    grokking.run(cfg, str(tmp_path / "a"), device="cpu", quiet=True)
    grokking.run(cfg, str(tmp_path / "b"), device="cpu", quiet=True)
    _same(_final_weights(tmp_path / "a"), _final_weights(tmp_path / "b"))

    # killed at step 27: its last checkpoint is step 20; resume and finish.
    killed = tmp_path / "killed"
    grokking.run(cfg, str(killed), device="cpu", quiet=True, stop_after_step=27)
    assert open_run(killed).last_step == 20
    # simulate a write torn by the kill
    with open(killed / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 28, "split": "tr')
    (killed / "checkpoints" / ".step_00000030.safetensors.x.tmp").write_bytes(b"partial")
    # weights written but the process died before the sidecar committed them
    (killed / "checkpoints" / "step_00000040.safetensors").write_bytes(b"orphan")
    result = grokking.run(cfg, str(killed), device="cpu", quiet=True)
    assert result.resumed_from == 20
    _same(_final_weights(tmp_path / "a"), _final_weights(killed))
    assert (killed / "metrics.jsonl").read_text() == (tmp_path / "a" / "metrics.jsonl").read_text()
    assert not list(killed.rglob("*.tmp"))
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == sorted(
        p.name for p in (tmp_path / "a" / "checkpoints").iterdir()
    )
    for s in open_run(tmp_path / "a").steps:
        a = open_run(tmp_path / "a").store.load_checkpoint(s)
        k = open_run(killed).store.load_checkpoint(s)
        _same(a.weights, k.weights)
        _same(a.state, k.state)


def test_run_dir_with_another_config_is_refused(tmp_path):
    path = tmp_path / "run"
    grokking.run(grokking.preset("tiny"), str(path), device="cpu", quiet=True)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(RunError, match=r"different config \(train.lr: 0.003 -> 0.001\)"):
        grokking.run(grokking.preset("tiny", overrides=["train.lr=1e-3"]), str(path), quiet=True)
    after = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert before == after


def test_run_written_before_a_new_config_field_still_resumes(tmp_path):
    import json

    path = tmp_path / "run"
    cfg = grokking.preset("tiny")
    grokking.run(cfg, str(path), device="cpu", quiet=True, stop_after_step=30)
    conf = json.loads((path / "config.json").read_text())
    del conf["config"]["train"]["stop_after_gen"]  # as written by an older version
    (path / "config.json").write_text(json.dumps(conf))
    res = grokking.run(cfg, str(path), device="cpu", quiet=True)
    assert res.resumed_from == 20 and res.summary["steps"] == 60
    upgraded = json.loads((path / "config.json").read_text())["config"]["train"]
    assert "stop_after_gen" in upgraded and upgraded["stop_after_gen"] is None
    # a real difference is still refused
    with pytest.raises(RunError, match="different config"):
        grokking.run(grokking.preset("tiny", overrides=["train.lr=1e-3"]), str(path), quiet=True)


def test_resume_in_another_setting_warns(tmp_path):
    """Bit-identity with an uninterrupted run is promised only for the same
    thread count, device and CPU, so a resume that changes any of them warns,
    naming what changed; a resume in the same setting does not."""
    import warnings

    path = tmp_path / "run"
    cfg = grokking.preset("tiny")
    grokking.run(cfg, str(path), device="cpu", threads=1, quiet=True, stop_after_step=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grokking.run(cfg, str(path), device="cpu", threads=1, quiet=True, stop_after_step=40)
    try:  # trains nothing (already at step 40); only the warning is checked
        with pytest.warns(UserWarning, match=r"threads 1 -> 2"):
            grokking.run(cfg, str(path), device="cpu", threads=2, quiet=True, stop_after_step=40)
    finally:
        torch.set_num_threads(1)
    conf = json.loads((path / "config.json").read_text())
    conf["runtime"]["cpu"] = "Some Other CPU"
    conf["runtime"]["cpu_capability"] = "NO-SUCH"  # never the host's, whatever it runs on
    (path / "config.json").write_text(json.dumps(conf))
    with pytest.warns(UserWarning, match=r"cpu 'Some Other CPU' -> .*cpu_capability 'NO-SUCH'"):
        res = grokking.run(cfg, str(path), device="cpu", threads=1, quiet=True)
    assert res.summary["steps"] == 60


def test_non_run_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="non-empty directory"):
        grokking.run(grokking.preset("tiny"), str(tmp_path), quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar"])
def test_corrupted_checkpoint_is_named(tiny_run, tmp_path, damage):
    path = tmp_path / "copy"
    shutil.copytree(tiny_run, path)
    target = path / "checkpoints" / "step_00000040.safetensors"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[-5] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    else:
        target = path / "checkpoints" / "step_00000040.json"
        target.write_text(target.read_text()[:30])
    run = open_run(path)
    with pytest.raises(CorruptCheckpointError, match="step_00000040"):
        run.load(40)
    run.load(20)  # the others still load


def test_masks_keep_weights_exactly_zero(tmp_path):
    cfg = grokking.preset("tiny")
    model = make_model(cfg.model, seed=0)
    params = named_weights(model)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=gen) > 0.5 for n, p in params.items() if p.ndim == 2}
    task = grokking.make_task(cfg)
    store = RunStore(tmp_path / "masked")
    store.init("grokking", {"masked": True}, {})
    train(model, task, cfg.train, store, seed=0, masks=masks, quiet=True)
    for s in [0, 20, 60]:
        w = store.load_weights(s)
        for n, m in masks.items():
            assert bool((w[n][~m] == 0).all()), (s, n)
            if s == 60:
                assert bool((w[n][m] != 0).all()), n  # the kept weights did train
    for sub, bad, msg in [
        ("x", {"embed.weight": torch.ones(3, 3, dtype=torch.bool)}, "has shape"),
        ("y", {"nope": torch.ones(1)}, "unknown parameter 'nope'"),
    ]:
        bad_store = RunStore(tmp_path / sub)
        bad_store.init("grokking", {"masked": sub}, {})
        with pytest.raises(ValueError, match=msg):
            train(
                make_model(cfg.model, seed=0), task, cfg.train, bad_store, 0, masks=bad, quiet=True
            )
        assert bad_store.steps() == [] and not bad_store.metrics_path.exists()
    with pytest.raises(RunError, match="create the run with RunStore.init"):
        train(
            make_model(cfg.model, seed=0), task, cfg.train, RunStore(tmp_path / "z"), 0, quiet=True
        )


def _plain_adamw(cfg, steps, grokfast=None):
    """A hand-written full-batch loop with torch's AdamW (the reference)."""
    model = make_model(cfg.model, seed=cfg.seed)
    task = grokking.make_task(cfg)
    params = named_weights(model)
    opt = torch.optim.AdamW(
        list(params.values()),
        lr=cfg.train.lr,
        betas=cfg.train.betas,
        eps=cfg.train.eps,
        weight_decay=cfg.train.weight_decay,
        foreach=False,
    )
    ema = {}
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = cfg.train.lr * min(1.0, step / cfg.train.warmup_steps)
        logits = model(task.train_inputs)[:, -1]
        loss = F.cross_entropy(logits.double(), task.train_labels)
        opt.zero_grad()
        loss.backward()
        if grokfast is not None:
            for n, p in params.items():
                # h <- alpha h + (1 - alpha) g ; g <- g + lamb h  (same rounding order)
                h = ema.get(n)
                h = (
                    p.grad.clone()
                    if h is None
                    else torch.add(h * grokfast.alpha, p.grad, alpha=1 - grokfast.alpha)
                )
                ema[n] = h
                p.grad = torch.add(p.grad, h, alpha=grokfast.lamb)
        opt.step()
    return model.state_dict()


@pytest.mark.parametrize("with_grokfast", [False, True])
def test_trainer_matches_plain_adamw_loop(tmp_path, with_grokfast):
    over = ["train.grokfast.alpha=0.9"] if with_grokfast else []
    cfg = grokking.preset("tiny", overrides=over)
    grokking.run(cfg, str(tmp_path / "r"), device="cpu", quiet=True)
    ref = _plain_adamw(cfg, cfg.train.steps, cfg.train.grokfast)
    ours = _final_weights(tmp_path / "r")
    for k in ours:
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-6, atol=1e-7)


def test_grokfast_off_is_plain_adamw_and_on_differs(tmp_path):
    cfg = grokking.preset("tiny")
    on = grokking.preset("tiny", overrides=["train.grokfast.lamb=2"])
    grokking.run(cfg, str(tmp_path / "off"), quiet=True)
    grokking.run(on, str(tmp_path / "on"), quiet=True)
    a, b = _final_weights(tmp_path / "off"), _final_weights(tmp_path / "on")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_grokfast_ma_filter_by_hand():
    p = torch.nn.Parameter(torch.zeros(2))
    f = GrokfastFilter(GrokfastConfig(kind="ma", window=2, lamb=1.0), {"w": p})
    grads = [torch.tensor([1.0, 0.0]), torch.tensor([3.0, 2.0]), torch.tensor([5.0, 4.0])]
    seen = []
    for g in grads:
        p.grad = g.clone()
        f.apply()
        seen.append(p.grad.clone())
    assert torch.equal(seen[0], grads[0])  # window not full yet
    assert torch.equal(seen[1], grads[1] + (grads[0] + grads[1]) / 2)
    assert torch.equal(seen[2], grads[2] + (grads[1] + grads[2]) / 2)


def test_minibatches_cover_each_epoch_once():
    n, bs, seed = 10, 3, 7
    epoch0 = torch.cat([minibatch_indices(n, bs, s, seed) for s in (1, 2, 3)])
    assert len(set(epoch0.tolist())) == 9
    assert torch.equal(minibatch_indices(n, bs, 2, seed), minibatch_indices(n, bs, 2, seed))
    assert not torch.equal(minibatch_indices(n, bs, 1, seed), minibatch_indices(n, bs, 4, seed))


def test_empty_training_set_is_an_error():
    empty = torch.zeros(0, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="training set is empty"):
        ClassificationTask(
            empty, torch.zeros(0, dtype=torch.long), empty, torch.zeros(0, dtype=torch.long)
        )


def test_cuda_request_without_cuda_is_clear(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        grokking.run(grokking.preset("tiny"), str(tmp_path / "r"), device="cuda", quiet=True)
    assert not (tmp_path / "r").exists()


def test_summary_thresholds():
    rows = [
        {"step": s, "split": sp, "metric": "accuracy", "value": v}
        for s, sp, v in [
            (0, "train", 0.1),
            (10, "train", 0.96),
            (10, "test", 0.2),
            (50, "test", 0.95),
            (60, "test", 0.99),
            (60, "train", 1.0),
        ]
    ]
    s = summarize(rows)
    assert (s["t_mem"], s["t_gen"], s["t_gen_over_t_mem"]) == (10, 50, 5.0)


def test_a_busy_machine_gets_its_idle_cores_with_a_warning(monkeypatch):
    import warnings

    from interp.config import ConfigError
    from interp.training import device

    monkeypatch.delenv("INTERP_THREADS", raising=False)
    monkeypatch.setattr(device.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(device, "busy_cores", lambda seconds=0.2: 1.3)  # another job on a core
    try:
        torch.set_num_threads(2)
        with pytest.warns(UserWarning, match=r"busy .* training with 1 torch thread; --threads"):
            assert device.configure_threads(None) == 1
        monkeypatch.setattr(device, "busy_cores", lambda seconds=0.2: 0.1)  # a quiet machine
        torch.set_num_threads(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert device.configure_threads(None) == 2
            assert device.configure_threads(1) == 1  # an explicit count is never second-guessed
        monkeypatch.setenv("INTERP_THREADS", "abc")
        with pytest.raises(ConfigError, match="INTERP_THREADS must be a whole number, got 'abc'"):
            device.configure_threads(None)
    finally:
        torch.set_num_threads(1)
