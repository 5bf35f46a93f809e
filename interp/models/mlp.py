"""A hooked two-operand MLP for modular arithmetic.

Two layouts cover the grokking-MLP literature:

* the Grokking Tickets MLP (Minegishi et al. §4.1, "OnlyMLP"): one embedding
  table shared by both operands, embeddings summed, ``W_in`` → ReLU →
  ``W_readout`` back to the embedding width → unembedding; weights drawn
  N(0, 1/fan_in) (``init="scaled_normal"``);
* the plain MLP (Liu et al. "Omnigrok"; our fast CPU preset): one table per
  operand, embeddings concatenated, ``W_in`` → ReLU → unembedding, PyTorch's
  default init.

It is a TransformerLens ``HookedRootModule`` so ``run_with_cache`` and
``run_with_hooks`` work as on the bridge. Hook points: ``hook_embed_a``,
``hook_embed_b``, ``hook_embed`` (combined), ``hook_pre``, ``hook_hidden``
(post-ReLU), ``hook_out`` (logits).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config.core import ConfigError
from interp.config.models import MLPConfig


class HookedMLP(HookedRootModule):
    """logits = W_U · [W_readout ·] ReLU(W_in · combine(E_a[a], E_b[b]))  (biases optional)."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        if cfg.n_tokens is None or cfg.d_out is None:
            raise ConfigError("MLPConfig.n_tokens and d_out must be set (resolve the config first)")
        self.cfg = cfg
        self.embed_a = nn.Embedding(cfg.n_tokens, cfg.d_embed)
        self.embed_b = None if cfg.shared_embedding else nn.Embedding(cfg.n_tokens, cfg.d_embed)
        d_in = 2 * cfg.d_embed if cfg.combine == "concat" else cfg.d_embed
        self.hidden = nn.Linear(d_in, cfg.d_hidden, bias=cfg.bias)
        d_last = cfg.d_hidden
        self.readout = None
        if cfg.d_readout is not None:
            self.readout = nn.Linear(cfg.d_hidden, cfg.d_readout, bias=cfg.bias)
            d_last = cfg.d_readout
        self.out = nn.Linear(d_last, cfg.d_out, bias=cfg.bias)
        self.hook_embed_a = HookPoint()
        self.hook_embed_b = HookPoint()
        self.hook_embed = HookPoint()
        self.hook_pre = HookPoint()
        self.hook_hidden = HookPoint()
        self.hook_out = HookPoint()
        self.setup()

    def forward(self, pairs: Int[Tensor, "batch 2"]) -> Float[Tensor, "batch d_out"]:
        if pairs.ndim != 2 or pairs.shape[-1] != 2:
            raise ValueError(
                f"HookedMLP expects operand pairs [batch, 2], got {tuple(pairs.shape)}"
            )
        table_b = self.embed_a if self.embed_b is None else self.embed_b
        ea = self.hook_embed_a(self.embed_a(pairs[:, 0]))
        eb = self.hook_embed_b(table_b(pairs[:, 1]))
        x = torch.cat([ea, eb], dim=-1) if self.cfg.combine == "concat" else ea + eb
        x = self.hook_embed(x)
        h = self.hook_hidden(torch.relu(self.hook_pre(self.hidden(x))))
        if self.readout is not None:
            h = self.readout(h)
        return self.hook_out(self.out(h))

    @property
    def W_E(self) -> Float[Tensor, "n_tokens d_features"]:
        """Token t's input features: the shared table, or both tables side by side."""
        if self.embed_b is None:
            return self.embed_a.weight
        return torch.cat([self.embed_a.weight, self.embed_b.weight], dim=-1)

    @property
    def W_U(self) -> Float[Tensor, "d_last d_out"]:
        """The final linear map, TL orientation (in × out)."""
        return self.out.weight.T


def make_mlp(cfg: MLPConfig, seed: int, device: str | torch.device = "cpu") -> HookedMLP:
    """Build the MLP with weights drawn from ``seed`` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HookedMLP(cfg)
        if cfg.init == "scaled_normal":
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, nn.Embedding):
                        module.weight.normal_(0.0, 1.0 / math.sqrt(module.num_embeddings))
                    elif isinstance(module, nn.Linear):
                        module.weight.normal_(0.0, 1.0 / math.sqrt(module.in_features))
                        if module.bias is not None:
                            module.bias.zero_()
    return model.to(device)
