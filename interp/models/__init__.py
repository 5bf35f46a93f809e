"""Model factories: TL-bridge transformers, the hooked operand MLP and the
feature classifiers of double descent."""

from __future__ import annotations

import torch
from torch import nn
from transformer_lens.model_bridge import TransformerBridge

from interp.config.models import ClassifierConfig
from interp.models.mlp import HookedMLP, MLPConfig, make_mlp
from interp.models.transformer import TransformerConfig, make_transformer

ModelConfig = TransformerConfig | MLPConfig | ClassifierConfig


def make_model(cfg: ModelConfig, seed: int, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a config describes (transformer bridge or MLP)."""
    if isinstance(cfg, TransformerConfig):
        return make_transformer(cfg, seed, device)
    if isinstance(cfg, MLPConfig):
        return make_mlp(cfg, seed, device)
    if isinstance(cfg, ClassifierConfig):
        from interp.models.classifier import make_classifier

        return make_classifier(cfg, seed, device)
    raise TypeError(f"unknown model config {type(cfg).__name__}")


def move_to(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model.to(device)`` without the bridge's "Moving model to device" print."""
    if isinstance(model, TransformerBridge):
        return model.to(device, print_details=False)
    return model.to(device)


def named_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters under their clean state-dict names.

    On the TL bridge ``named_parameters()`` carries ``_original_component``
    segments; ``state_dict`` keys (``blocks.0.attn.q.weight``) are what we save,
    mask and report, so this maps those keys to the live parameters.
    """
    seen: set[int] = set()
    out: dict[str, nn.Parameter] = {}
    for name, value in model.state_dict(keep_vars=True).items():
        if isinstance(value, nn.Parameter) and value.requires_grad and id(value) not in seen:
            seen.add(id(value))
            out[name] = value
    return out


__all__ = [
    "ClassifierConfig",
    "HookedMLP",
    "MLPConfig",
    "ModelConfig",
    "TransformerConfig",
    "make_mlp",
    "make_model",
    "make_transformer",
    "move_to",
    "named_weights",
]
