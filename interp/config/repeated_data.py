"""Config and presets of one language-model run of the repeated-data
experiment (Hernandez et al. 2022). The number of steps is derived:
one pass over ``data.total_tokens``.

Presets (docs/experiments/repeated_data.md has what each one shows):

* ``cpu-text`` — plain Python source with a BPE tokenizer, the ``s`` model;
* ``cpu-copy`` — synthetic text that quotes itself (``markov-copy``), ``xs``;
* ``cpu-copy-text`` (= ``cpu-quick``) — the shipped Python source as bytes,
  laid out to quote itself, ``xs``;
* ``paper`` — the ``cpu-copy-text`` recipe with the 4-layer ``l`` model, for a GPU;
* ``tiny`` — seconds-long, for tests.
"""

from __future__ import annotations

from dataclasses import replace

from interp.config.core import ConfigError, config, setting
from interp.config.data import CorpusConfig, EvalConfig, RepeatedConfig, TokenizerConfig
from interp.config.models import TransformerConfig
from interp.config.train import TrainConfig


@config()
class RepeatedDataConfig:
    """One run: corpus and tokenizer, the repeated-data mix, model, optimiser, probes."""

    seed: int = setting(
        0, "seed of the init and of the repeated subset's choice", ge=0, le=2**31 - 1
    )
    corpus: CorpusConfig = setting(CorpusConfig, "where the tokens come from")
    data: RepeatedConfig = setting(RepeatedConfig, "the unique + repeated mix")
    model: TransformerConfig = setting(TransformerConfig, "the language model")
    train: TrainConfig = setting(TrainConfig, "optimiser and schedule (steps are derived)")
    eval: EvalConfig = setting(EvalConfig, "evaluation sets and probes")

    def __post_init__(self) -> None:
        if self.train.batch_size is None:
            raise ConfigError("train.batch_size must be set for language-model runs")
        n_seq = self.data.total_tokens // self.data.seq_len
        if n_seq % self.train.batch_size:
            raise ConfigError(
                f"data.total_tokens / data.seq_len = {n_seq} sequences is not a multiple of "
                f"train.batch_size={self.train.batch_size}"
            )
        e = self.eval
        if e.copies * e.copy_length > self.data.seq_len:
            raise ConfigError(
                f"eval.copies × eval.copy_length = {e.copies * e.copy_length} exceeds "
                f"data.seq_len={self.data.seq_len}"
            )
        if e.verbatim_prefix + e.verbatim_continuation > self.data.seq_len:
            raise ConfigError("eval.verbatim_prefix + eval.verbatim_continuation > data.seq_len")

    @property
    def steps(self) -> int:
        return self.data.total_tokens // (self.data.seq_len * self.train.batch_size)

    def resolve(self) -> RepeatedDataConfig:
        """Context = sequence length, vocabulary from the corpus, steps = one pass."""
        v = self.corpus.vocab_size
        model = replace(self.model, n_ctx=self.data.seq_len, d_vocab=v, d_vocab_out=v)
        return replace(self, model=model, train=replace(self.train, steps=self.steps))


def _lm(n_layers: int, n_heads: int, d_model: int, d_head: int, d_mlp: int) -> TransformerConfig:
    return TransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_head,
        d_mlp=d_mlp,
        normalization="LN",
        act_fn="gelu",
    )


#: Model sizes of the grid (non-embedding parameters from 0.01M to 12.6M).
SIZES: dict[str, TransformerConfig] = {
    "tiny": _lm(1, 2, 32, 16, 64),
    "xs": _lm(2, 4, 64, 16, 256),
    "s": _lm(2, 4, 128, 32, 512),
    "m": _lm(2, 6, 192, 32, 768),
    "l": _lm(4, 8, 256, 32, 1024),
    "xl": _lm(4, 8, 512, 64, 2048),
}

_LM_TRAIN = TrainConfig(
    lr=1e-3,
    weight_decay=0.1,
    betas=(0.9, 0.95),
    warmup_steps=50,
    lr_schedule="cosine",
    min_lr_ratio=0.1,
    batch_size=16,
    loss_dtype="float32",
    grad_clip=1.0,
    fused_attention=True,
    eval_every=100,
    checkpoint_every=200,
)
# the self-quoting presets (cpu-copy, cpu-copy-text): context 64, constant lr,
# 16-token copy passages and verbatim probes
_COPY_TRAIN = replace(
    _LM_TRAIN, lr=3e-3, lr_schedule="constant", eval_every=256, checkpoint_every=1024
)
_COPY_EVAL = EvalConfig(copy_length=16, verbatim_prefix=16, verbatim_continuation=16)

PRESETS: dict[str, RepeatedDataConfig] = {
    # plain Python text, BPE
    "cpu-text": RepeatedDataConfig(
        corpus=CorpusConfig(
            name="python-stdlib", tokenizer=TokenizerConfig(kind="bpe", vocab_size=4096)
        ),
        data=RepeatedConfig(
            total_tokens=2_097_152, repeated_fraction=0.5, repeated_epochs=100, seq_len=256
        ),
        model=SIZES["s"],
        train=replace(_LM_TRAIN, lr=2e-3, batch_size=16),
    ),
    # synthetic text that quotes itself (markov_copy_stream): copying pays
    "cpu-copy": RepeatedDataConfig(
        corpus=CorpusConfig(
            name="markov-copy",
            markov_vocab=512,
            markov_tokens=33_554_432,
            markov_concentration=0.1,
            markov_doc_len=64,
            markov_quote=0.7,
            markov_successors=8,
            markov_contexts=4,
        ),
        data=RepeatedConfig(
            total_tokens=33_554_432, repeated_fraction=0.5, repeated_epochs=100, seq_len=64
        ),
        model=SIZES["xs"],
        train=replace(_COPY_TRAIN, batch_size=32),
        eval=_COPY_EVAL,
    ),
    # the shipped Python source, bytes, laid out like markov-copy (self_quoting_text)
    "cpu-copy-text": RepeatedDataConfig(
        corpus=CorpusConfig(
            name="python-stdlib",
            tokenizer=TokenizerConfig(kind="byte", vocab_size=257),
            text_quote=0.7,
            text_doc_len=64,
        ),
        data=RepeatedConfig(
            total_tokens=15_728_640, repeated_fraction=0.5, repeated_epochs=1000, seq_len=64
        ),
        model=SIZES["xs"],
        train=replace(_COPY_TRAIN, batch_size=16),
        eval=_COPY_EVAL,
    ),
    "tiny": RepeatedDataConfig(
        corpus=CorpusConfig(name="markov", markov_vocab=32, markov_tokens=60_000),
        data=RepeatedConfig(
            total_tokens=16_384, repeated_fraction=0.5, repeated_epochs=8, seq_len=64
        ),
        model=SIZES["tiny"],
        train=replace(
            _LM_TRAIN, lr=3e-3, batch_size=8, warmup_steps=5, eval_every=8, checkpoint_every=16
        ),
        eval=EvalConfig(
            test_sequences=16,
            subset_sequences=8,
            unique_sequences=8,
            copy_passages=8,
            copy_length=16,
            verbatim_sequences=8,
            verbatim_prefix=16,
            verbatim_continuation=8,
        ),
    ),
}
# one run of the cpu-quick grid (interp train repeated-data's default preset)
PRESETS["cpu-quick"] = PRESETS["cpu-copy-text"]
# for a GPU: the cpu-copy-text recipe with the 4-layer l model
PRESETS["paper"] = replace(PRESETS["cpu-copy-text"], model=SIZES["l"])

__all__ = ["PRESETS", "SIZES", "RepeatedDataConfig"]


# --------------------------------------------------------------------------
# The multi-run experiment (interp experiment repeated-data)


#: the two unique-only controls of each size, f and seed
CONTROLS = ("unique-fewer-steps", "unique-same-steps")


@config()
class GridSpec:
    """What one ``interp experiment repeated-data`` launch trains (Hernandez et
    al. 2022 §2–4): model sizes × repeated fraction f × repeated epochs E ×
    seeds, with the f = 0 baseline and (``controls``) two unique-only
    controls per size, f and seed. A relaunch may add sizes, fractions,
    epochs and seeds (finished runs are reused); ``base``, ``controls`` and
    ``overrides`` must match."""

    base: str = setting("cpu-text", "the run preset every run starts from")
    sizes: tuple[str, ...] = setting(("s",), "model sizes (SIZES)")
    fractions: tuple[float, ...] = setting((0.5,), "repeated fractions f > 0 (f = 0 is always run)")
    epochs: tuple[int, ...] = setting((10, 100, 1000), "repeated epochs E on the main seeds")
    seeds: tuple[int, ...] = setting((0,), "main seeds (every E)")
    key_epochs: tuple[int, ...] = setting((), "E values also run on key_seeds")
    key_seeds: tuple[int, ...] = setting((), "extra seeds for key_epochs and the baselines")
    controls: bool = setting(True, "train the two unique-only controls per size, f and seed")
    baseline_sizes: tuple[str, ...] = setting(
        (), "sizes trained at f = 0 only, on the main seeds (points for the effective-size fit)"
    )
    overrides: tuple[str, ...] = setting((), "key=value overrides of every run")

    def __post_init__(self) -> None:
        if self.base not in PRESETS:
            raise ConfigError(
                f"base: unknown repeated-data preset {self.base!r}; choose from {sorted(PRESETS)}"
            )
        bad = sorted((set(self.sizes) | set(self.baseline_sizes)) - set(SIZES))
        if bad:
            raise ConfigError(f"sizes: unknown model sizes {bad}; choose from {sorted(SIZES)}")
        for f in self.fractions:
            if not 0.0 < f < 1.0:
                raise ConfigError(
                    f"fractions must be in (0, 1) (f = 0 runs are always included), got {f}"
                )
        bad_e = [e for e in (*self.epochs, *self.key_epochs) if int(e) < 1]
        if bad_e:
            raise ConfigError(f"epochs: repeated epochs must be >= 1, got {bad_e}")
        if not self.seeds or not self.sizes:
            raise ConfigError("sizes and seeds must not be empty")


GRIDS: dict[str, GridSpec] = {
    # the quick look: one seed, no unique-only controls
    "cpu-quick": GridSpec(
        base="cpu-copy-text",
        sizes=("xs",),
        fractions=(0.5,),
        epochs=(30, 300, 3000),
        seeds=(0,),
        controls=False,
    ),
    # plain BPE text: the damage peak against both controls on three seeds
    "cpu-text": GridSpec(
        base="cpu-text",
        sizes=("s",),
        fractions=(0.5,),
        epochs=(10, 100, 1000),
        seeds=(0,),
        key_epochs=(100,),
        key_seeds=(0, 1, 2),
    ),
    # the self-quoting Python corpus, xs and s, f 0.1 and 0.5 (docs: its wall time)
    "cpu-full": GridSpec(
        base="cpu-copy-text",
        sizes=("xs", "s"),
        fractions=(0.1, 0.5),
        epochs=(10, 30, 100, 200, 300, 500, 1000, 3000),
        seeds=(0,),
        key_epochs=(300, 1000, 3000),
        key_seeds=(0, 1, 2),
        baseline_sizes=("tiny",),
    ),
    "cpu-copy": GridSpec(
        base="cpu-copy",
        sizes=("xs",),
        fractions=(0.5,),
        epochs=(10, 100, 1000),
        seeds=(0,),
        key_epochs=(100, 1000),
        key_seeds=(0, 1, 2),
    ),
    "cpu-copy-text": GridSpec(
        base="cpu-copy-text",
        sizes=("xs",),
        fractions=(0.5,),
        epochs=(10, 30, 100, 200, 300, 500, 1000, 3000),
        seeds=(0,),
        key_epochs=(300, 1000, 3000),
        key_seeds=(0, 1, 2),
        baseline_sizes=("tiny", "s"),
    ),
    # for a GPU: cpu-full's corpus and recipe over four sizes; 258 runs
    "paper": GridSpec(
        base="paper",
        sizes=("s", "m", "l", "xl"),
        fractions=(0.1, 0.5),
        epochs=(10, 30, 100, 200, 300, 500, 1000, 3000),
        seeds=(0, 1, 2),
        baseline_sizes=("tiny", "xs"),
    ),
    "tiny": GridSpec(base="tiny", sizes=("tiny",), fractions=(0.5,), epochs=(2, 8), seeds=(0, 1)),
}

__all__ += ["CONTROLS", "GRIDS", "GridSpec"]
