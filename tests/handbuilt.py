"""A 2-layer attention-only model whose heads are known by construction.

Residual stream = [token one-hot (V) | position one-hot (N) | previous-token one-hot (V)].
* L0H0 is a previous-token head: queries read position i, keys position i−1;
  its OV copies the source token into the previous-token subspace.
* L1H0 is an induction head: queries read the current token, keys read the
  previous-token subspace (K-composition with L0H0); its OV copies the
  attended token to the logits (W_U reads the token subspace).
* L0H1 and L1H1 are all zeros (uniform attention, no output).
"""

from __future__ import annotations

import torch

from interp.models import TransformerConfig, make_transformer

V, N, C = 12, 32, 60.0
D_MODEL, D_HEAD = 2 * V + N, 32
TOK, POS, PREV = 0, V, V + N


def build_model(copy_sign: float = 1.0):
    model = make_transformer(
        TransformerConfig(
            n_layers=2,
            n_heads=2,
            d_model=D_MODEL,
            d_head=D_HEAD,
            d_mlp=None,
            n_ctx=N,
            d_vocab=V,
            d_vocab_out=V,
        ),
        seed=0,
    )
    sd = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    for t in range(V):
        sd["embed.weight"][t, TOK + t] = 1.0
        sd["unembed.weight"][t, TOK + t] = 1.0
    for i in range(N):
        sd["pos_embed.weight"][i, POS + i] = 1.0

    def head(layer, h, W_Q, W_K, W_V, W_O):
        cols = slice(h * D_HEAD, (h + 1) * D_HEAD)
        sd[f"blocks.{layer}.attn.q.weight"][cols] = W_Q.T
        sd[f"blocks.{layer}.attn.k.weight"][cols] = W_K.T
        sd[f"blocks.{layer}.attn.v.weight"][cols] = W_V.T
        sd[f"blocks.{layer}.attn.o.weight"][:, cols] = W_O.T

    z = lambda: torch.zeros(D_MODEL, D_HEAD)  # noqa: E731
    # L0H0: previous-token head
    Q, K, Vm, Wo = z(), z(), z(), torch.zeros(D_HEAD, D_MODEL)
    for i in range(1, N):
        Q[POS + i, i - 1] = C
    for j in range(N):
        K[POS + j, j] = 1.0
    for t in range(V):
        Vm[TOK + t, t] = 1.0
        Wo[t, PREV + t] = 1.0
    head(0, 0, Q, K, Vm, Wo)
    # L1H0: induction head, copies the attended token
    Q, K, Vm, Wo = z(), z(), z(), torch.zeros(D_HEAD, D_MODEL)
    for t in range(V):
        Q[TOK + t, t] = C
        K[PREV + t, t] = 1.0
        Vm[TOK + t, t] = 1.0
        Wo[t, TOK + t] = copy_sign
    head(1, 0, Q, K, Vm, Wo)
    model.load_state_dict(sd)
    return model.eval()
