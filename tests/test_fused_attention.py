"""Fused attention (training speed path) computes the hooked attention's function."""

from __future__ import annotations

import torch

from interp.models import TransformerConfig, make_transformer
from interp.models.fused_attention import fused_attention


def _model() -> torch.nn.Module:
    cfg = TransformerConfig(
        n_layers=2, n_heads=2, d_model=16, d_head=8, d_mlp=32, n_ctx=12, d_vocab=10,
        d_vocab_out=10, normalization="LN", act_fn="gelu",
    )  # fmt: skip
    return make_transformer(cfg, seed=3)


def _logits_and_grads(model, x):
    model.zero_grad()
    out = model(x)
    out.pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_fused_matches_hooked_path_in_values_and_gradients():
    model, x = _model(), torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(0))
    ref, ref_g = _logits_and_grads(model, x)
    with fused_attention(model) as n:
        assert n == 2
        out, g = _logits_and_grads(model, x)
    assert not torch.equal(out, ref)  # the fused kernel really ran (different rounding) ...
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)  # ... and computes the same
    scale = max(v.abs().max() for v in ref_g.values())
    for name in ref_g:
        torch.testing.assert_close(g[name], ref_g[name], rtol=0, atol=1e-5 * float(scale))
    after, _ = _logits_and_grads(model, x)
    assert torch.equal(after, ref)  # restored on exit


def test_listened_layers_keep_the_hooked_path():
    model, x = _model(), torch.randint(0, 10, (2, 12), generator=torch.Generator().manual_seed(1))
    ref, cache = model.run_with_cache(x)
    seen = []
    with fused_attention(model):
        out, cache2 = model.run_with_cache(x)
        model.blocks[1].attn.hook_pattern.add_hook(lambda t, hook: seen.append(t.shape))
        model(x)
        model.reset_hooks()
    assert torch.equal(out, ref)  # every pattern hook listened: nothing fused
    assert torch.equal(cache2["blocks.0.attn.hook_pattern"], cache["blocks.0.attn.hook_pattern"])
    assert seen == [(2, 2, 12, 12)]


def test_disabled_and_mlp_models_are_untouched():
    model = _model()
    with fused_attention(model, enabled=False) as n:
        assert n == 0
    from interp.models import MLPConfig, make_mlp

    with fused_attention(make_mlp(MLPConfig(n_tokens=5, d_out=5), seed=0)) as n:
        assert n == 0
