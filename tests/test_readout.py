"""The read-out fast path computes the bridge's logits at one position."""

from __future__ import annotations

import pytest
import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from interp import open_run
from interp.config import ConfigError
from interp.experiments import grokking, induction, tickets
from interp.models import TransformerConfig, make_transformer, named_weights
from interp.models.readout import check_readout, readout_logits, readout_unsupported
from interp.training import RunStore, train

ARCHS = {
    "1-layer-relu": dict(n_layers=1, d_mlp=32, act_fn="relu"),
    "2-layer-LN-gelu": dict(n_layers=2, d_mlp=32, act_fn="gelu", normalization="LN"),
    "RMS-gelu_new": dict(n_layers=1, d_mlp=32, act_fn="gelu_new", normalization="RMS"),
    "attn-only-2-layer": dict(n_layers=2, d_mlp=None, normalization="LNPre"),
}


def _model(arch: str, seed: int = 0) -> torch.nn.Module:
    cfg = TransformerConfig(
        n_heads=2, d_model=16, d_head=8, n_ctx=6, d_vocab=11, d_vocab_out=7, **ARCHS[arch]
    )
    return make_transformer(cfg, seed=seed)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("position", [-1, 2, 0])
def test_readout_matches_the_bridge_in_values_and_gradients(arch, position):
    model = _model(arch)
    x = torch.randint(0, 11, (20, 6), generator=torch.Generator().manual_seed(1))
    params = list(named_weights(model).values())
    ref = model(x)[:, position]
    ref_g = torch.autograd.grad(ref.pow(2).sum(), params)
    out = readout_logits(model, x, position)
    g = torch.autograd.grad(out.pow(2).sum(), params)
    assert out.shape == (20, 7)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    scale = max(float(t.abs().max()) for t in ref_g)
    for a, b in zip(g, ref_g, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * scale)


def test_readout_of_a_position_ignores_later_tokens():
    model = _model("2-layer-LN-gelu")
    x = torch.randint(0, 11, (5, 6), generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 3:] = (y[:, 3:] + 1) % 11
    torch.testing.assert_close(readout_logits(model, x, 2), readout_logits(model, y, 2))
    assert not torch.allclose(readout_logits(model, x, -1), readout_logits(model, y, -1))


def test_a_position_outside_the_sequence_is_named():
    model = _model("1-layer-relu")
    with pytest.raises(ValueError, match="position 6 is outside a sequence of length 6"):
        readout_logits(model, torch.zeros(2, 6, dtype=torch.long), 6)


def _native(**kw) -> TransformerBridge:
    base = dict(
        n_layers=1, n_heads=2, d_model=16, d_head=8, d_mlp=32, act_fn="relu",
        normalization_type=None, d_vocab=11, d_vocab_out=7, n_ctx=6, seed=0,
    )  # fmt: skip
    return TransformerBridge.boot_native(TransformerBridgeConfig(**{**base, **kw}), device="cpu")


@pytest.mark.parametrize(
    "kw, reason",
    [
        (dict(n_key_value_heads=1), "without soft-cap or GQA"),
        (dict(gated_mlp=True, act_fn="silu"), "not gated"),
        (dict(act_fn="solu"), "activation 'solu'"),
    ],
)
def test_unsupported_architectures_are_refused_with_the_reason(kw, reason):
    model = _native(**kw)
    assert reason in readout_unsupported(model)
    with pytest.raises(ConfigError, match=f"train.readout_only: .*{reason}"):
        check_readout(model)
    assert readout_unsupported(_native()) is None


def test_readout_on_a_model_without_a_read_out_position_is_refused(tmp_path):
    over = ["train.readout_only=true", "train.steps=5"]
    for name, run in [
        ("mlp", lambda d: grokking.run(grokking.preset("cpu-quick-mlp", overrides=over), d)),
        ("lm", lambda d: induction.run(induction.preset("tiny", overrides=over), d, quiet=True)),
    ]:
        with pytest.raises(ConfigError, match="readout_only needs a transformer classification"):
            run(str(tmp_path / name))
        assert not (tmp_path / name).exists()  # refused before the run directory is made
    # a ticket of an MLP run, asked to train with the read-out path
    dense = tmp_path / "dense-mlp"
    mlp = grokking.preset("cpu-quick-mlp", overrides=["train.steps=5"])
    grokking.run(mlp, str(dense), device="cpu", quiet=True)
    cfg = tickets.ticket_config(dense, overrides=["train.readout_only=true"])
    with pytest.raises(ConfigError, match="readout_only needs a transformer classification"):
        tickets.run(cfg, str(tmp_path / "ticket"), device="cpu", quiet=True)
    assert not (tmp_path / "ticket").exists()


def test_readout_training_follows_the_full_forward(tmp_path):
    """Same function, other rounding: over the tiny run's 60 steps the two
    trajectories agree closely, and the readout run records its choice."""
    full = grokking.preset("tiny")
    fast = grokking.preset("tiny", overrides=["train.readout_only=true"])
    grokking.run(full, str(tmp_path / "full"), device="cpu", quiet=True)
    grokking.run(fast, str(tmp_path / "fast"), device="cpu", quiet=True)
    a, b = open_run(tmp_path / "full"), open_run(tmp_path / "fast")
    assert b.config.train.readout_only and not a.config.train.readout_only
    wa, wb = a.store.load_weights(a.last_step), b.store.load_weights(b.last_step)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # the fast path really ran
    for k in wa:
        # the key bias shifts every score of a query equally, which softmax
        # ignores: its true gradient is 0, so its path is rounding noise that
        # Adam scales up to lr-sized steps in either run
        if k != "blocks.0.attn.k.bias":
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=1e-4, msg=k)
    ma = a.metrics().set_index(["step", "split", "metric"])["value"]
    mb = b.metrics().set_index(["step", "split", "metric"])["value"]
    assert (ma - mb).abs().max() < 1e-3
    # training through the fast path with masks keeps masked weights at zero
    model = make_transformer(fast.model, seed=0)
    weights = named_weights(model)
    masks = {n: p.abs() > p.abs().median() for n, p in weights.items() if p.ndim == 2}
    store = RunStore(tmp_path / "masked")
    store.init("grokking", {"masked": True}, {})
    train(model, grokking.make_task(fast), fast.train, store, seed=0, masks=masks, quiet=True)
    w = store.load_weights(fast.train.steps)
    for n, m in masks.items():
        assert bool((w[n][~m] == 0).all()) and bool((w[n][m] != 0).all()), n
