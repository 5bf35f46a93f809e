"""Fused (``scaled_dot_product_attention``) attention for training steps.

The TL bridge's native attention materialises the full ``[batch, head, q, k]``
score and pattern tensors so that ``hook_pattern`` can read and edit them. At
context 512 that is most of a training step on a CPU (measured: ~70% of a
2-layer d_model-128 step). Training does not need the pattern, so inside
:func:`fused_attention` every native attention layer whose ``hook_pattern`` and
``hook_attn_scores`` have no hooks attached computes the same function with
``torch.nn.functional.scaled_dot_product_attention`` instead. Layers someone is
listening to keep the hooked path, so analyzers and caches are unaffected; the
fused path returns no pattern.

The two paths agree to float rounding (tested), not bit for bit, so a run's
config records whether it trained fused (``TrainConfig.fused_attention``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _native_attention_layers(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(bridge attention component, native attention module) pairs of ``model``."""
    pairs = []
    for module in model.modules():
        native = getattr(module, "original_component", None)
        if native is not None and getattr(native, "accepts_pattern_fn", False):
            pairs.append((module, native))
    return pairs


def _listened(bridge_attn: nn.Module) -> bool:
    for name in ("hook_pattern", "hook_attn_scores"):
        hook = getattr(bridge_attn, name, None)
        if hook is not None and (hook._forward_hooks or hook._backward_hooks):
            return True
    return False


def _fused_forward(native: nn.Module, bridge_attn: nn.Module, original: Any) -> Any:
    def forward(
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pattern_fn: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None] | Any:
        usable = (
            attention_mask is None
            and native.causal
            and native.rotary is None
            and native.attn_scores_soft_cap <= 0.0
            and native.kv_repeats == 1
            and not _listened(bridge_attn)
        )
        if not usable:
            return original(
                hidden_states, attention_mask=attention_mask, position_ids=position_ids,
                pattern_fn=pattern_fn, **kwargs,
            )  # fmt: skip
        b, s, _ = hidden_states.shape
        h, d = native.n_heads, native.d_head
        q = native.q(hidden_states).view(b, s, h, d).transpose(1, 2)
        k = native.k(hidden_states).view(b, s, h, d).transpose(1, 2)
        v = native.v(hidden_states).view(b, s, h, d).transpose(1, 2)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / native.scale)
        return native.o(z.transpose(1, 2).reshape(b, s, h * d)), None

    return forward


@contextmanager
def fused_attention(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """Within the block, unhooked attention layers of ``model`` run fused.

    Yields the number of layers switched (0 for models without TL-native
    attention, e.g. the MLPs, or when ``enabled`` is False). The layers are
    restored on exit, also after an exception.
    """
    pairs = _native_attention_layers(model) if enabled else []
    for bridge_attn, native in pairs:
        native.forward = _fused_forward(native, bridge_attn, native.forward)
    try:
        yield len(pairs)
    finally:
        for _, native in pairs:
            del native.forward  # back to the class's method


__all__ = ["fused_attention"]
