"""Config and presets of an induction run (Olsson et al. 2022).

Presets:

* ``cpu-quick`` — 2-layer attention-only transformer (d_model 64, 4 × 16
  heads), vocab 64, context 48; dense checkpoints around the phase change.
* ``1-layer`` — the same with one layer: the control that cannot form an
  induction circuit.
* ``paper`` — a GPU-size run (2 layers, d_model 256, 8 heads, vocab 512,
  context 256).
* ``tiny`` — seconds-long smoke configuration for tests.
"""

from __future__ import annotations

from dataclasses import replace

from interp.config.core import ConfigError, config, setting
from interp.config.data import InductionDataConfig
from interp.config.models import TransformerConfig
from interp.config.train import TrainConfig


@config()
class InductionConfig:
    """One induction run: seed, data, model, optimiser."""

    seed: int = setting(0, "seed of the init and of every generated batch", ge=0, le=2**31 - 1)
    data: InductionDataConfig = setting(InductionDataConfig, "training sequences and the probe")
    model: TransformerConfig = setting(TransformerConfig, "the transformer")
    train: TrainConfig = setting(TrainConfig, "optimiser and schedule")

    def __post_init__(self) -> None:
        m, d = self.model, self.data
        for name in ("d_vocab", "d_vocab_out"):
            have = getattr(m, name)
            if have is not None and have != d.vocab:
                raise ConfigError(f"model.{name}={have} does not match data.vocab={d.vocab}")
        if m.n_ctx is not None and m.n_ctx < d.seq_len:
            raise ConfigError(f"model.n_ctx={m.n_ctx} is shorter than data.seq_len={d.seq_len}")
        if self.train.batch_size is None:
            raise ConfigError("train.batch_size must be set for the induction task")

    def resolve(self) -> InductionConfig:
        """Fill vocabulary and context from the data."""
        d = self.data
        model = replace(
            self.model, d_vocab=d.vocab, d_vocab_out=d.vocab, n_ctx=self.model.n_ctx or d.seq_len
        )
        return replace(self, model=model)


def _attn_only(n_layers: int, d_model: int, n_heads: int, d_head: int) -> TransformerConfig:
    return TransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_head,
        d_mlp=None,
        normalization=None,
    )


_QUICK_TRAIN = TrainConfig(
    steps=1200,
    lr=3e-3,
    weight_decay=0.01,
    betas=(0.9, 0.98),
    warmup_steps=50,
    batch_size=32,
    loss_dtype="float32",
    eval_every=25,
    checkpoint_every=50,
)
PRESETS: dict[str, InductionConfig] = {
    "cpu-quick": InductionConfig(model=_attn_only(2, 64, 4, 16), train=_QUICK_TRAIN),
    "1-layer": InductionConfig(model=_attn_only(1, 64, 4, 16), train=_QUICK_TRAIN),
    "paper": InductionConfig(
        data=InductionDataConfig(vocab=512, seq_len=256, probe_length=100, eval_size=512),
        model=_attn_only(2, 256, 8, 32),
        train=TrainConfig(
            steps=20_000,
            lr=1e-3,
            weight_decay=0.01,
            warmup_steps=500,
            batch_size=64,
            lr_schedule="cosine",
            loss_dtype="float32",
            eval_every=100,
            checkpoint_every=250,
        ),
    ),
    "tiny": InductionConfig(
        data=InductionDataConfig(vocab=16, seq_len=16, eval_size=32, probe_size=16, probe_length=6),
        model=_attn_only(2, 32, 2, 16),
        train=TrainConfig(
            steps=40,
            lr=1e-3,
            weight_decay=0.01,
            warmup_steps=5,
            batch_size=8,
            loss_dtype="float32",
            eval_every=10,
            checkpoint_every=20,
        ),
    ),
}

__all__ = ["PRESETS", "InductionConfig"]
