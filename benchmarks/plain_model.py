"""A one-layer grokking transformer written out in plain PyTorch (no TransformerLens).

Shared by the benchmarks that compare our trainer with a minimal loop
(``train_throughput.py``) and our model's initialisation with PyTorch's
(``plain_grokking.py``). Token and position embeddings are ``nn.Embedding``
(N(0, 1) unless ``embed_std`` says otherwise); every other layer is an
``nn.Linear`` with its default init U(±1/√fan_in), biases included — the
unembedding's too, which TransformerLens's native model does not have.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from interp.models import TransformerConfig


class PlainTransformer(nn.Module):
    """1 layer, no LayerNorm, ReLU MLP, causal attention; logits at every position."""

    def __init__(self, m: TransformerConfig, embed_std: float | None = None):
        super().__init__()
        if m.n_layers != 1 or m.normalization is not None or m.act_fn != "relu" or not m.d_mlp:
            raise ValueError(f"the plain model is 1 layer, no LayerNorm, ReLU MLP; got {m}")
        self.nh, self.hd = m.n_heads, m.d_head
        self.embed = nn.Embedding(m.d_vocab, m.d_model)
        self.pos = nn.Embedding(m.n_ctx, m.d_model)
        if embed_std is not None:
            nn.init.normal_(self.embed.weight, std=embed_std)
            nn.init.normal_(self.pos.weight, std=embed_std)
        self.qkv = nn.Linear(m.d_model, 3 * m.n_heads * m.d_head)
        self.o = nn.Linear(m.n_heads * m.d_head, m.d_model)
        self.mlp_in = nn.Linear(m.d_model, m.d_mlp)
        self.mlp_out = nn.Linear(m.d_mlp, m.d_model)
        self.unembed = nn.Linear(m.d_model, m.d_vocab_out)
        self.register_buffer("mask", torch.triu(torch.ones(m.n_ctx, m.n_ctx, dtype=torch.bool), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape
        h = self.embed(x) + self.pos.weight[:t]
        q, k, v = self.qkv(h).view(b, t, 3, self.nh, self.hd).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        att = att.masked_fill(self.mask[:t, :t], float("-inf")).softmax(-1)
        h = h + self.o((att @ v).transpose(1, 2).reshape(b, t, -1))
        h = h + self.mlp_out(F.relu(self.mlp_in(h)))
        return self.unembed(h)
