"""Shapes of the models we build from scratch (``model.*``): TL-bridge
transformers and the two-operand MLP. ``model.kind`` tells them apart."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from interp.config.core import config, setting


@config("model")
class TransformerConfig:
    """A from-scratch transformer on the TransformerLens 4 bridge
    (``interp.models.transformer``); ``d_mlp = null`` means attention-only.
    ``n_ctx``, ``d_vocab`` and ``d_vocab_out`` may be null in a preset: the
    experiment fills them from its data."""

    kind: Literal["transformer"] = setting("transformer", "model type")
    n_layers: int = setting(1, "transformer blocks", ge=1, le=64)
    n_heads: int = setting(4, "attention heads per layer", ge=1, le=256)
    d_model: int = setting(64, "residual stream width", ge=1)
    d_head: int = setting(16, "width of each head's query/key/value", ge=1)
    d_mlp: int | None = setting(256, "MLP hidden width; null = attention-only", ge=1)
    act_fn: Literal["relu", "gelu", "gelu_new", "silu"] = setting("relu", "MLP activation")
    normalization: Literal["LN", "LNPre", "RMS"] | None = setting(
        None, "LayerNorm type before attention and MLP; null = none (Nanda et al.'s model)"
    )
    n_ctx: int | None = setting(None, "context length; null = from the data", ge=1)
    d_vocab: int | None = setting(None, "input vocabulary; null = from the data", ge=1)
    d_vocab_out: int | None = setting(None, "output vocabulary; null = from the data", ge=1)
    init: Literal["tl", "torch"] = setting(
        "tl", "tl: TransformerLens's init; torch: nn.Embedding N(0,1) and nn.Linear uniform"
    )
    init_scale: float = setting(
        1.0,
        "every weight matrix (embeddings and unembedding too; not biases or LayerNorm "
        "gains) is multiplied by this after it is drawn",
        gt=0.0,
    )


@config("model")
class MLPConfig:
    """The two-operand MLP of the grokking literature (``interp.models.mlp``):
    logits = W_U · [W_readout ·] ReLU(W_in · combine(E_a[a], E_b[b]))."""

    kind: Literal["mlp"] = setting("mlp", "model type")
    n_tokens: int | None = setting(None, "operand vocabulary (p); null = from the data", ge=1)
    d_embed: int = setting(128, "embedding width per operand", ge=1)
    d_hidden: int = setting(128, "ReLU units", ge=1)
    d_readout: int | None = setting(
        None,
        "width of a linear read-out layer after the ReLU (Minegishi et al.'s MLP); null = none",
        ge=1,
    )
    d_out: int | None = setting(None, "output classes (p); null = from the data", ge=1)
    combine: Literal["concat", "sum"] = setting(
        "concat", "how the two operand embeddings are combined"
    )
    shared_embedding: bool = setting(False, "one embedding table for both operands")
    bias: bool = setting(False, "biases in the linear layers")
    init: Literal["torch", "scaled_normal"] = setting(
        "torch", "torch: PyTorch's defaults; scaled_normal: N(0, 1/fan_in) (Minegishi et al.)"
    )


@config("model")
class ClassifierConfig:
    """A classifier of feature vectors (``interp.models.classifier``), the
    double-descent models: ``mlp`` = Linear(d_in, width) → [norm] → ReLU →
    Linear(width, classes); ``cnn`` = a 1-D CNN (Conv(1→width, 5) → [norm] →
    ReLU → Conv(width→width, 5, stride 2) → [norm] → ReLU → global average
    pool → Linear(width, classes)), the small CNN of Greydanus & Kobak's
    MNIST-1D benchmarks with its channel count as the width."""

    kind: Literal["classifier"] = setting("classifier", "model type")
    arch: Literal["mlp", "cnn"] = setting("mlp", "mlp (one hidden layer) or cnn (1-D, two convs)")
    width: int = setting(128, "hidden units (mlp) or channels (cnn)", ge=1, le=1_000_000)
    normalization: Literal["none", "batch", "layer"] = setting(
        "none", "a BatchNorm or LayerNorm after each hidden linear map / conv, or none"
    )
    init_scale: float = setting(
        1.0, "every weight and bias of PyTorch's default init multiplied by this", gt=0.0
    )
    d_in: int | None = setting(None, "input features; null = from the data", ge=1)
    classes: int | None = setting(None, "output classes; null = from the data", ge=2)


#: Every model, told apart by ``kind`` (old run directories carry it).
ModelConfig = Annotated[
    TransformerConfig | MLPConfig | ClassifierConfig, Field(discriminator="kind")
]

__all__ = ["ClassifierConfig", "MLPConfig", "ModelConfig", "TransformerConfig"]
