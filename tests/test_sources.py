"""Models we did not train: Hugging Face checkpoint series as sources, checked
against Hugging Face itself, swept once and cached, from a hub cache, and
refused clearly when broken. All offline: the models and the hub cache are
built by the tests."""

from __future__ import annotations

import json

import hfmodels
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from interp import open_checkpoints
from interp.analysis import induction_scores, prefix_matching_scores, sweep
from interp.analysis.probes import pool_of, pool_probe
from interp.cli import app
from interp.sources.hf import HubCheckpoints, LocalCheckpoints
from interp.training.files import RunError

STEPS = [0, 20, 40, 80, 160]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Five save_pretrained checkpoints of a small GPT-2 trained on repeated
    sequences, with its tokenizer."""
    root = tmp_path_factory.mktemp("hf") / "series"
    hfmodels.train_series(hfmodels.gpt2(), root, STEPS, hfmodels.tokenizer())
    return root


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_bridge_logits_equal_hugging_faces(tmp_path, arch):
    hf = getattr(hfmodels, arch)()
    hf.save_pretrained(tmp_path / "m")
    bridge = open_checkpoints(tmp_path / "m").load()
    x = torch.randint(0, hf.config.vocab_size, (3, 17))
    with torch.no_grad():
        diff = (bridge(x) - hf(x).logits).abs().max()
    assert float(diff) < 1e-5


def _reference_induction(hf, tokens: torch.Tensor) -> torch.Tensor:
    """Olsson's induction score from Hugging Face's own attentions, written
    here without TransformerLens: the mean attention from each position of
    the second copy to the token after the current token's first occurrence
    (BOS + a segment of distinct tokens + the same segment)."""
    with torch.no_grad():
        att = torch.stack(hf(tokens, output_attentions=True).attentions, dim=1)  # b l h q k
    seg = (tokens.shape[1] - 1) // 2
    scores = torch.zeros(att.shape[1], att.shape[2], dtype=torch.float64)
    for q in range(1 + seg, tokens.shape[1]):
        scores += att[:, :, :, q, q - seg + 1].double().mean(0)
    return scores / seg


def test_induction_scores_match_a_reference_on_hugging_face_attentions(series):
    src = open_checkpoints(series)
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(series / "step_160", attn_implementation="eager").eval()
    pool = pool_of(src.tokenizer, hf.config.vocab_size, True)
    bridge = src.load(160)
    probe = pool_probe(bridge, pool, n=8, length=20)
    assert bool((probe[:, 0] == pool.bos).all())  # BOS, then the segment twice
    ours = induction_scores(bridge, probe)
    ref = _reference_induction(hf, probe)
    torch.testing.assert_close(ours.double(), ref, atol=1e-6, rtol=0)


def test_a_token_pool_leaves_out_special_and_untrained_ids(series):
    tok = open_checkpoints(series).tokenizer
    pool = pool_of(tok, 320, True)
    assert pool.bos == tok.eos_token_id == 0 and 0 not in pool.ids
    assert max(pool.ids) == len(tok) - 1 < 320  # ids past the tokenizer: never trained
    assert pool_of(tok, 320, False).bos is None


def test_a_sweep_loads_each_checkpoint_once_and_then_serves_the_cache(series, monkeypatch):
    loads = []
    original = LocalCheckpoints.load

    def counted(self, step=None, device="cpu"):
        loads.append(step)
        return original(self, step, device)

    monkeypatch.setattr(LocalCheckpoints, "load", counted)
    src = open_checkpoints(series)

    def best_induction(model, *, memo=None):
        return {"best": float(induction_scores(model, memo=memo).max())}

    first = sweep(src, [best_induction, prefix_matching_scores])
    assert sorted(loads) == STEPS  # each checkpoint once, for both analyzers
    assert set(first["step"]) == set(STEPS)
    loads.clear()
    again = sweep(open_checkpoints(series), [best_induction, prefix_matching_scores])
    assert loads == [] and again.equals(first)  # served from the cache
    best_induction.version = 2  # a new version of the analyzer: recomputed
    sweep(open_checkpoints(series), [best_induction])
    assert sorted(loads) == STEPS


def test_several_sources_side_by_side_with_a_run_column(series, tmp_path, tiny_run):
    other = tmp_path / "other"
    hfmodels.train_series(hfmodels.gpt2(seed=1), other, [0, 20], hfmodels.tokenizer())
    df = sweep([series, other], [induction_scores], steps=[0, 20])
    assert next(iter(df.columns)) == "run" and set(df["run"]) == {"series", "other"}
    assert len(df[df["run"] == "other"]) == 2 * 2 * 4  # 2 steps × 2 layers × 4 heads
    bridge = open_checkpoints(series).load(0)
    loader = open_checkpoints(
        [(0, bridge), (7, lambda: open_checkpoints(other).load(20))], name="pairs"
    )
    df = sweep([tiny_run, loader], [induction_scores])
    assert set(df["run"]) == {"tiny", "pairs"} and set(df[df["run"] == "pairs"]["step"]) == {0, 7}


REPO = "EleutherAI/pythia-70m"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hugging Face cache holding two Pythia-style revisions (step0,
    step1000) of a small GPT-NeoX with its tokenizer, made the current cache;
    any attempt to open a socket fails the test."""
    import socket

    from huggingface_hub import constants

    home = tmp_path / "hf"
    hfmodels.fill_hub_cache(
        home,
        REPO,
        {"step0": hfmodels.neox(seed=0), "step1000": hfmodels.neox(seed=1)},
        hfmodels.tokenizer(),
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # cached: no network even so
    touched = []

    def no_network(self, *args, **kwargs):
        touched.append(args)
        raise RuntimeError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    yield home
    assert touched == []


def test_the_hub_form_loads_cached_revisions_without_the_network(hub):
    src = open_checkpoints(f"hf:{REPO}", steps=[0, 1000])
    assert isinstance(src, HubCheckpoints) and src.revision(1000) == "step1000"
    assert src.tokenizer is not None and len(src.tokenizer) == 300
    a, b = src.load(0), src.load(1000)
    assert not torch.equal(a.W_E, b.W_E)
    assert src.sha(1000) == f"{REPO}@{2:040x}"  # keyed by the cached commit
    df = sweep(src, [induction_scores])
    assert set(df["step"]) == {0, 1000}
    with pytest.raises(Exception, match="no known step convention"):
        open_checkpoints("hf:someone/model", steps=[5])


def test_an_uncached_revision_offline_is_named(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RunError, match=f"cannot load {REPO} at revision step2000: it is not in"):
        open_checkpoints(f"hf:{REPO}", steps=[2000]).load()


def test_the_cli_sweeps_a_hub_series_from_the_cache(hub, tmp_path):
    """As a user runs it: ``HF_HOME`` and ``HF_HUB_OFFLINE`` set before start."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(hub), "HF_HUB_OFFLINE": "1"}
    env["INTERP_CACHE_DIR"] = str(tmp_path / "cache")
    cmd = [
        sys.executable,
        "-m",
        "interp",
        "sweep",
        f"hf:{REPO}",
        "--step",
        "0",
        "--step",
        "1000",
        "--analyzer",
        "induction_scores",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "induction_scores" in out.stdout
    cmd[5:9] = ["--step", "3"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "revision step3" in out.stderr


def test_broken_checkpoint_directories_are_named(series, tmp_path):
    with pytest.raises(RunError, match=r"nowhere \(step 0\) does not exist"):
        open_checkpoints({0: tmp_path / "nowhere"})
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(RunError, match="has no weights"):
        open_checkpoints({0: empty})
    corrupt = tmp_path / "corrupt"
    hfmodels.gpt2().save_pretrained(corrupt)
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(RunError, match=f"cannot load {corrupt}"):
        open_checkpoints(corrupt).load()
    alien = tmp_path / "alien"
    hfmodels.gpt2().save_pretrained(alien)
    cfg = json.loads((alien / "config.json").read_text())
    cfg.update(model_type="nonesuch", architectures=["NonesuchForCausalLM"])
    (alien / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RunError, match=f"cannot load {alien}"):
        open_checkpoints(alien).load()
    out = CliRunner().invoke(app, ["sweep", str(tmp_path / "empty2")])
    assert out.exit_code == 2 and "does not exist" in out.stderr


def test_memorization_per_sequence_over_checkpoints(tmp_path):
    """A model trained on four fixed sequences until it reproduces them: they
    become 32-extractable, fresh sequences do not; per-sequence rows."""
    from interp.analysis import extractable, sequence_loss

    torch.manual_seed(0)
    seqs = torch.randint(1, 256, (4, 64))
    fresh = torch.randint(1, 256, (4, 64))
    model = hfmodels.gpt2(d=64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(301):
        if step in (0, 300):
            model.save_pretrained(tmp_path / f"step_{step}")
        if step == 300:
            break
        model.train()
        loss = model(seqs, labels=seqs).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    both = torch.cat([seqs, fresh])
    import functools

    fns = [
        functools.partial(extractable, sequences=both),
        functools.partial(sequence_loss, sequences=both),
    ]
    df = sweep(open_checkpoints(tmp_path), fns)
    ex = df[df["metric"].str.startswith("extractable")]
    end = ex[ex["step"] == 300].sort_values("item")["value"].tolist()
    assert end == [1.0] * 4 + [0.0] * 4
    assert ex[ex["step"] == 0]["value"].sum() == 0
    loss = df[df["metric"].str.startswith("sequence_loss") & (df["step"] == 300)]
    assert loss.sort_values("item")["value"].iloc[:4].max() < 0.1 < loss["value"].iloc[4:].min()


def test_weight_scores_read_processed_weights_by_default(series):
    from interp.analysis import composition_scores, copying_scores

    bridge = open_checkpoints(series).load(160)
    folded, raw = copying_scores(bridge), copying_scores(bridge, fold_ln=False)
    assert 0 < float((folded - raw).abs().max()) < 0.5  # LayerNorm folded: different
    c1, c2 = composition_scores(bridge), composition_scores(bridge, fold_ln=False)
    assert not torch.allclose(c1["k_composition"], c2["k_composition"])
    x = torch.randint(0, 300, (1, 9))
    before = bridge(x)
    copying_scores(bridge)
    assert torch.equal(bridge(x), before)  # the model itself is untouched


def test_sweep_and_report_from_the_command_line(series, tmp_path):
    out = CliRunner().invoke(
        app,
        ["sweep", str(series), "--step", "0", "--step", "160", "--out", str(tmp_path / "t.csv")],
    )
    assert out.exit_code == 0, out.output
    df = pd.read_csv(tmp_path / "t.csv")
    assert {"induction_scores", "prefix_matching_text", "text_copy_gain"} <= set(df["metric"])
    page = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", str(series), "--out", str(page)])
    assert out.exit_code == 0, out.output
    html = page.read_text()
    assert "CircuitsVis.AttentionHeads" in html and "<script src=" not in html
    assert "induction_scores" in html


def test_olssons_icl_score_needs_a_long_context(series, tmp_path):
    from interp.analysis import olsson_icl_score
    from interp.analysis.probes import natural_text
    from interp.config.core import InputError

    tok = open_checkpoints(series).tokenizer
    long = hfmodels.gpt2(n_ctx=512)
    long.save_pretrained(tmp_path / "long")
    bridge = open_checkpoints(tmp_path / "long").load()
    text = natural_text(tok, n=4, length=512, bos=0)
    res = olsson_icl_score(bridge, text)
    assert set(res) == {"olsson_icl_score", "loss_at_50", "loss_at_500"}
    assert res["olsson_icl_score"] == pytest.approx(res["loss_at_500"] - res["loss_at_50"])
    # Independently: Hugging Face's own logits, the loss of token 500 minus that of token 50.
    with torch.no_grad():
        logp = torch.log_softmax(long(text).logits.double(), dim=-1)
    tok_loss = -logp[:, :-1].gather(-1, text[:, 1:, None])[..., 0]  # [b, i] predicts token i+1
    ref50, ref500 = tok_loss[:, 49].mean().item(), tok_loss[:, 499].mean().item()
    assert res["loss_at_50"] == pytest.approx(ref50, abs=1e-4)
    assert res["olsson_icl_score"] == pytest.approx(ref500 - ref50, abs=1e-4)
    with pytest.raises(InputError, match="needs sequences of more than 500 tokens"):
        olsson_icl_score(bridge, text[:, :400])
