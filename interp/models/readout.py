"""Logits at one read-out position, computing the last layer only there.

A classification task on a transformer (modular arithmetic: tokens ``a b =``,
the answer read at ``=``) uses the logits of one position. Every layer but the
last must run at all positions (later layers attend to them), but the last
layer's queries, attention output, MLP, final norm and unembedding matter
only at the read-out position; at the other positions they are computed and
thrown away. For the 1-layer grokking transformers that is most of a training
step: on the ``cpu-quick-transformer`` preset (context 3) the full forward
spends two thirds of its MLP and unembedding work on unused positions
(``benchmarks/train_throughput.py --preset cpu-quick-transformer`` measures
the step rate of both paths).

:func:`readout_logits` computes exactly the function ``model(tokens)[:, pos]``
of a TL-native bridge from the bridge's own parameters (so gradients reach
them, masks apply and checkpoints are the bridge's state dict), without the
bridge's hook points. The two agree to float rounding (tested), not bit for
bit (the matmuls have other shapes), so a run records which it trained with
(``TrainConfig.readout_only``). Analyzers keep using the hooked bridge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.config import ConfigError
from interp.config.core import InputError

_ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def _native(model: nn.Module) -> nn.Module | None:
    return getattr(model, "original_model", None)


def readout_unsupported(model: nn.Module) -> str | None:
    """Why :func:`readout_logits` cannot compute ``model``'s function (None if it can).

    Supported: TransformerBridge ``boot_native`` models with learned absolute
    positions, standard causal attention (no rotary, GQA or soft-capping), a
    ReLU / GELU / SiLU (or gelu_new) MLP or none, and any of TL's per-position norms.
    """
    native = _native(model)
    cfg = getattr(model, "cfg", None)
    if native is None or cfg is None or not hasattr(native, "layers"):
        return f"{type(model).__name__} is not a TransformerBridge built with boot_native"
    if getattr(native, "pos", None) is None or getattr(native, "rotary", None) is not None:
        return "only learned absolute position embeddings are supported (no rotary)"
    if float(getattr(native, "output_logits_soft_cap", 0.0)) > 0:
        return "output logit soft-capping is not supported"
    for i, block in enumerate(native.layers):
        attn = block.attn.original_component
        if not attn.causal or attn.kv_repeats != 1 or attn.attn_scores_soft_cap > 0:
            return f"layer {i}: only causal multi-head attention without soft-cap or GQA"
        if not cfg.attn_only:
            mlp = block.mlp.original_component
            if type(mlp).__name__ != "NativeMLP" or getattr(mlp, "ln", None) is not None:
                return f"layer {i}: only a plain two-layer MLP (not gated, not SoLU-LN)"
    if (cfg.act_fn or "gelu").lower() not in (*_ACTS, "gelu_new"):
        return f"activation {cfg.act_fn!r} is not supported"
    return None


def check_readout(model: nn.Module) -> None:
    """Raise ``ConfigError`` naming the reason when the fast path does not apply."""
    reason = readout_unsupported(model)
    if reason is not None:
        raise ConfigError(f"train.readout_only: {reason}")


def _act(name: str | None):
    name = (name or "gelu").lower()
    if name == "gelu_new":
        return lambda x: F.gelu(x, approximate="tanh")
    return _ACTS[name]


def _norm(component: nn.Module, x: Tensor) -> Tensor:
    inner = getattr(component, "original_component", component)
    return x if isinstance(inner, nn.Identity) else inner(x)


def _block(block: nn.Module, h: Tensor, act, attn_only: bool, last_only: bool) -> Tensor:
    """One pre-norm block; with ``last_only`` only the final position's output."""
    attn = block.attn.original_component
    b, s, _ = h.shape
    nh, dh = attn.n_heads, attn.d_head
    x = _norm(block.ln1, h)
    k = F.linear(x, attn.k.weight, attn.k.bias).view(b, s, nh, dh).transpose(1, 2)
    v = F.linear(x, attn.v.weight, attn.v.bias).view(b, s, nh, dh).transpose(1, 2)
    if last_only:
        # the last query attends to every position, so no causal mask is needed
        q = F.linear(x[:, -1:], attn.q.weight, attn.q.bias).view(b, 1, nh, dh).transpose(1, 2)
        pattern = torch.softmax(q @ k.transpose(-2, -1) / attn.scale, dim=-1)
        z = (pattern @ v).reshape(b, nh * dh)
        h = h[:, -1]
    else:
        q = F.linear(x, attn.q.weight, attn.q.bias).view(b, s, nh, dh).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / attn.scale
        scores = scores.masked_fill(attn.causal_mask[:s, :s], float("-inf"))
        z = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, s, nh * dh)
    h = h + F.linear(z, attn.o.weight, attn.o.bias)
    if not attn_only:
        mlp = block.mlp.original_component
        mid = act(F.linear(_norm(block.ln2, h), mlp.fc_in.weight, mlp.fc_in.bias))
        h = h + F.linear(mid, mlp.fc_out.weight, mlp.fc_out.bias)
    return h


def readout_logits(
    model: nn.Module, tokens: Int[Tensor, "batch seq"], position: int = -1
) -> Float[Tensor, "batch vocab"]:
    """``model(tokens)[:, position]`` with the last layer computed only at ``position``.

    Inputs longer than ``position + 1`` are cut there first: by causality the
    logits at ``position`` do not depend on later tokens.
    """
    native = _native(model)
    if native is None:
        raise ConfigError(f"readout_logits needs a TransformerBridge, got {type(model).__name__}")
    if tokens.ndim != 2:
        raise InputError(f"tokens must be [batch, seq], got shape {tuple(tokens.shape)}")
    seq = tokens.shape[1]
    if not -seq <= position < seq:
        raise InputError(f"position {position} is outside a sequence of length {seq}")
    tokens = tokens[:, : position % seq + 1]
    cfg = model.cfg
    act = _act(cfg.act_fn)
    s = tokens.shape[1]
    h = native.tok_embed.original_component(tokens) + native.pos.original_component.weight[:s]
    n = len(native.layers)
    for i, block in enumerate(native.layers):
        h = _block(block.original_component, h, act, bool(cfg.attn_only), last_only=i == n - 1)
    return F.linear(_norm(native.ln_out, h), native.head.original_component.weight)
