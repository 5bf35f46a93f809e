"""Our models as pure functions of stacked parameters, for training many
members at once (:mod:`interp.training.ensemble`).

:func:`functional_model` turns a model into a :class:`FunctionalModel`: the
names of its trainable parameters (the clean state-dict names of
:func:`interp.models.named_weights`) and ``forward(params, inputs)``, which
computes the model's function for N members at once from parameters stacked
along a leading member dimension (``[member, ...]``) on inputs stacked the
same way, as one batched matmul per layer.

* TL-native transformers (``TransformerBridge.boot_native``): the bridge's
  components cannot be called with swapped-in tensors, so the network is
  written out here: learned positions, causal multi-head attention, a
  ReLU / GELU / SiLU MLP, no norm or LayerNorm (the architectures of
  :func:`interp.models.readout.readout_unsupported` with ``LN`` or no
  normalization). Each linear map is a ``baddbmm`` (the batched ``addmm``
  of ``nn.Linear``), embeddings are one lookup in the members' tables laid
  end to end, q, k, v are computed in the bridge's order and LayerNorm is
  the bridge's own step-by-step arithmetic, so a member's logits round
  exactly as the bridge's do (tested). ``forward(params, tokens, position)``
  computes the last layer at ``position`` only and then mirrors
  :func:`interp.models.readout.readout_logits` the same way (its position
  slice, its k, v, q order, ``nn.LayerNorm``'s arithmetic).
* Plain modules (the operand MLP, the feature classifiers): their own
  forward through ``torch.func.functional_call``, batched over members with
  ``torch.func.vmap`` (equal to rounding). Modules that update buffers in
  training (BatchNorm's running statistics) cannot be stacked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from interp.config.core import ConfigError
from interp.models.readout import _act, readout_unsupported

Params = Mapping[str, Tensor]

#: the ``model.normalization`` values a stacked model supports
STACKABLE_NORMALIZATIONS = (None, "LN")


@dataclass
class FunctionalModel:
    """``forward(params, inputs, position=None)``: every member's output,
    ``[member, batch, ...]``, from parameters and inputs stacked along a
    leading member dimension (``position``: a transformer's logits at that
    position only, the last layer computed there alone)."""

    names: list[str]
    forward: Callable[..., Tensor]


def functional_model(model: nn.Module, fused: bool = False) -> FunctionalModel:
    """The functional form of ``model``; ``ConfigError`` naming why a model
    cannot be stacked (see the module docstring). ``fused``: a transformer's
    attention through ``scaled_dot_product_attention``, as
    :func:`interp.models.fused_attention.fused_attention` computes it."""
    from interp.models import named_weights

    names = list(named_weights(model))
    if getattr(model, "original_model", None) is not None:
        return _transformer(model, names, fused)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise ConfigError(
                "BatchNorm updates running statistics in training; such models train one at a time"
            )
    buffers = {k: v for k, v in model.state_dict().items() if k not in names}

    def one(params: Params, inputs: Tensor) -> Tensor:
        return torch.func.functional_call(model, {**params, **buffers}, (inputs,))

    def forward(params: Params, inputs: Tensor, position: int | None = None) -> Tensor:
        out = torch.func.vmap(one)(params, inputs)
        return out if position is None else out[:, :, position]

    return FunctionalModel(names, forward)


def _transformer(model: nn.Module, names: list[str], fused: bool) -> FunctionalModel:
    reason = readout_unsupported(model)
    if reason is not None:
        raise ConfigError(f"cannot stack this transformer: {reason}")
    cfg = model.cfg
    norm = cfg.normalization_type
    if norm not in STACKABLE_NORMALIZATIONS:
        raise ConfigError(f"cannot stack a transformer with normalization {norm!r} (None or LN)")
    native = model.original_model
    attn0 = native.layers[0].original_component.attn.original_component
    n_layers, n_heads, d_head = cfg.n_layers, attn0.n_heads, attn0.d_head
    scale = attn0.scale
    eps = float(cfg.eps) if norm == "LN" else 0.0
    act = _act(cfg.act_fn)
    attn_only = bool(cfg.attn_only)
    unembed_bias = model.state_dict().get("unembed.bias")  # a fixed buffer of the bridge
    if unembed_bias is not None and bool(unembed_bias.any()):
        raise ConfigError("cannot stack a transformer whose fixed unembedding bias is not zero")
    mask = torch.triu(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool), diagonal=1)

    def forward(
        params: Params, tokens: Tensor, position: int | None = None
    ) -> Float[Tensor, "member batch ..."]:
        if tokens.ndim != 3:
            raise ValueError(
                f"stacked tokens must be [member, batch, seq], got {tuple(tokens.shape)}"
            )
        if position is not None:
            tokens = tokens[:, :, : position % tokens.shape[2] + 1]
        e, b, s = tokens.shape
        readout = position is not None
        if readout:  # as readout_logits: positions added as a slice of their table
            pos = params["pos_embed.weight"][:, :s].unsqueeze(1)
        else:  # as the bridge: positions looked up like tokens
            positions = torch.arange(s, device=tokens.device).expand(e, b, s)
            pos = _embed(positions, params["pos_embed.weight"])
        h = _embed(tokens, params["embed.weight"]) + pos
        for i in range(n_layers):
            h = _block(params, f"blocks.{i}", h, readout, last_only=readout and i == n_layers - 1)
        return _linear(_ln(params, "ln_final", h, readout), params["unembed.weight"], None)

    def _ln(params: Params, name: str, x: Tensor, readout: bool) -> Tensor:
        if norm is None:
            return x
        w, bias = _per(params[f"{name}.weight"], x), _per(params[f"{name}.bias"], x)
        if readout:  # readout_logits calls nn.LayerNorm: F.layer_norm's affine step
            return torch.addcmul(bias, F.layer_norm(x, (x.shape[-1],), None, None, eps), w)
        # the arithmetic of the bridge's NormalizationBridge, step by step
        x = x - x.mean(-1, keepdim=True)
        x = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        return x * w + bias

    def _lin(params: Params, name: str, x: Tensor) -> Tensor:
        return _linear(x, params[f"{name}.weight"], params.get(f"{name}.bias"))

    def _block(params: Params, p: str, h: Tensor, readout: bool, last_only: bool) -> Tensor:
        e, b, s, _ = h.shape
        x = _ln(params, f"{p}.ln1", h, readout)
        # q, k, v in the order of the path mirrored (the bridge: q, k, v;
        # readout_logits: k, v, q): autograd sums their gradients into the
        # residual stream in that order
        if not readout:
            q = _lin(params, f"{p}.attn.q", x)
        k = _lin(params, f"{p}.attn.k", x).view(e, b, s, n_heads, d_head).transpose(2, 3)
        v = _lin(params, f"{p}.attn.v", x).view(e, b, s, n_heads, d_head).transpose(2, 3)
        if readout:
            q = _lin(params, f"{p}.attn.q", x[:, :, -1:] if last_only else x)
        if last_only:  # the last query attends to every position: no mask needed
            q = q.view(e, b, 1, n_heads, d_head).transpose(2, 3)
            pattern = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / scale, dim=-1)
            z = torch.matmul(pattern, v).reshape(e, b, 1, n_heads * d_head)
            h = h[:, :, -1:]
        elif fused:
            q = q.view(e * b, s, n_heads, d_head).transpose(1, 2)
            z = F.scaled_dot_product_attention(
                q, k.reshape(e * b, n_heads, s, d_head), v.reshape(e * b, n_heads, s, d_head),
                is_causal=True, scale=1.0 / scale,
            )  # fmt: skip
            z = z.transpose(1, 2).reshape(e, b, s, n_heads * d_head)
        else:
            q = q.view(e, b, s, n_heads, d_head).transpose(2, 3)
            scores = torch.matmul(q, k.transpose(-2, -1)) / scale
            scores = scores.masked_fill(mask[:s, :s].to(h.device), float("-inf"))
            pattern = torch.softmax(scores, dim=-1)
            z = torch.matmul(pattern, v).transpose(2, 3).contiguous().view(e, b, s, -1)
        h = h + _lin(params, f"{p}.attn.o", z)
        if not attn_only:
            mid = act(_lin(params, f"{p}.mlp.in", _ln(params, f"{p}.ln2", h, readout)))
            h = h + _lin(params, f"{p}.mlp.out", mid)
        return h[:, :, 0] if last_only else h

    return FunctionalModel(names, forward)


def _per(v: Float[Tensor, "member d"], like: Tensor) -> Tensor:
    """A per-member vector shaped to broadcast over ``like`` ``[member, ..., d]``."""
    return v.view(v.shape[0], *([1] * (like.ndim - 2)), v.shape[-1])


def _embed(ids: Tensor, table: Float[Tensor, "member rows d"]) -> Tensor:
    """Member ``m``'s rows of its own table: one lookup in the members' tables
    laid end to end (the backward sums each row in the order one member's
    lookup does)."""
    e, rows, d = table.shape
    offset = (torch.arange(e, device=ids.device) * rows).view(e, *([1] * (ids.ndim - 1)))
    return F.embedding(ids + offset, table.reshape(e * rows, d))


def _linear(x: Tensor, weight: Float[Tensor, "member out inp"], bias: Tensor | None) -> Tensor:
    """``F.linear`` per member as one batched matmul: ``baddbmm`` with the
    bias (the batched form of the ``addmm`` a single ``nn.Linear`` calls, so
    each member rounds as it would alone), ``bmm`` without."""
    e, o = weight.shape[0], weight.shape[1]
    flat = x.reshape(e, -1, x.shape[-1])
    if bias is None:
        out = torch.bmm(flat, weight.transpose(1, 2))
    else:
        out = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return out.view(*x.shape[:-1], o)


__all__ = ["STACKABLE_NORMALIZATIONS", "FunctionalModel", "functional_model"]
