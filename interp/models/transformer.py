"""Transformers built offline on the TransformerLens 4 bridge.

``TransformerBridge.boot_native`` constructs TL's native architecture with
random weights and no hub access; hook names (``blocks.0.attn.hook_pattern``),
``run_with_cache`` and weight views (``W_E``, ``W_Q`` … ``OV``) are TL's.
The grokking model is Nanda et al. 2023 §3: one layer, no LayerNorm, ReLU MLP.
TL's native model has no unembedding bias: the bridge holds a zero buffer under
the name ``unembed.bias`` (saved in checkpoints, never trained, not prunable).
``tests/test_plain_reference.py`` checks the model and our trainer against a
from-scratch PyTorch version of the same network step for step.
"""

from __future__ import annotations

import math

import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from interp.config.core import ConfigError
from interp.config.models import TransformerConfig


def make_transformer(
    cfg: TransformerConfig, seed: int, device: str | torch.device = "cpu"
) -> TransformerBridge:
    """A TL bridge with weights drawn from ``seed`` (TL's private generator).

    Initialisation does not consume the global torch RNG, so data order and
    model init can be seeded independently.
    """
    if cfg.kind != "transformer":
        raise ConfigError(f"model.kind must be 'transformer', got {cfg.kind!r}")
    missing = [n for n in ("n_ctx", "d_vocab", "d_vocab_out") if getattr(cfg, n) is None]
    if missing:
        raise ConfigError(f"model.{missing[0]} must be set before building (resolve the config)")
    tl_cfg = TransformerBridgeConfig(
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        attn_only=cfg.d_mlp is None,
        act_fn=cfg.act_fn,
        normalization_type=cfg.normalization,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out,
        n_ctx=cfg.n_ctx,
        seed=seed,
    )
    bridge = TransformerBridge.boot_native(tl_cfg, device=str(device))
    if cfg.init == "torch":
        torch_default_init(bridge, seed)
    if cfg.init_scale != 1.0:
        scale_init(bridge, cfg.init_scale)
    return bridge


@torch.no_grad()
def scale_init(model: torch.nn.Module, scale: float) -> None:
    """Multiply every weight matrix (ndim >= 2) by ``scale``; biases and
    LayerNorm gains are left alone. The initialisation scale sets how long a
    network memorises before it generalises (Liu et al. 2023, "Omnigrok", §3:
    a larger init norm, a longer grokking delay)."""
    from interp.models import named_weights

    for p in named_weights(model).values():
        if p.ndim >= 2:
            p.mul_(scale)


@torch.no_grad()
def torch_default_init(model: torch.nn.Module, seed: int) -> None:
    """Re-draw the weights as plain PyTorch modules would initialise them:
    embeddings (``*embed.weight``, not the unembedding) ~ N(0, 1) like
    ``nn.Embedding``; every other matrix and its bias ~ U(±1/√fan_in) like
    ``nn.Linear``: embeddings 10× larger than TL's ~N(0, 0.1²) (what that does
    to grokking is measured in docs/experiments/tickets.md). Seeded by
    ``seed``; the global RNG is untouched.
    """
    from interp.models import named_weights

    gen = torch.Generator().manual_seed(seed + 7_777)
    params = named_weights(model)
    for name, p in params.items():
        if name.endswith("embed.weight") and not name.startswith("unembed"):
            new = torch.randn(p.shape, generator=gen)
        elif name.endswith(".weight") and p.ndim == 2:
            bound = 1.0 / math.sqrt(p.shape[1])  # (out, in) layout of the bridge's linears
            new = (torch.rand(p.shape, generator=gen) * 2 - 1) * bound
            bias = params.get(name[: -len("weight")] + "bias")
            if bias is not None:
                bias.copy_(((torch.rand(bias.shape, generator=gen) * 2 - 1) * bound).to(bias))
        else:
            continue
        p.copy_(new.to(p))
