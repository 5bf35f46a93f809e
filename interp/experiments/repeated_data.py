"""One language-model run of the repeated-data experiment (Hernandez et al.
2022, "Scaling Laws and Interpretability of Learning from Repeated Data").

A decoder-only transformer (TL bridge, LayerNorm, MLPs) is trained for one
pass over ``D`` tokens, a fraction ``f`` of which is a small subset repeated
``E`` times (:mod:`interp.data.repeated`). Logged at every evaluation:

* ``test/loss`` — held-out text (another split of the corpus);
* ``repeated/loss`` — the repeated subset; ``unique/loss`` — unique training text;
* ``copy/loss_first``, ``copy/loss_later``, ``copy/gain`` — Hernandez §4's
  copying evaluation: held-out passages repeated 4 times in one context, mean
  loss on copy 1 vs copies 2–4 (gain = first − later).
* ``heads/prefix_matching_max`` and ``copy/prefix_matching_max`` — the largest
  prefix-matching score of any head (Olsson et al. §2) on repeated random tokens
  (printable ASCII for byte-level text: :func:`probe_vocab_range`) and on the
  copying evaluation's repeated held-out passages.

``summary.json`` adds the achieved f and E, token counts, non-embedding
parameter count (for the effective-size fit) and verbatim memorisation of the
repeated subset (:func:`interp.analysis.memorization.verbatim_fraction`).
The run directory holds the tokenizer (``tokenizer.json``) and the data
accounting (``data.json``).

The number of steps is derived: ``D / (seq_len · batch_size)`` (one pass).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from interp.config import ConfigError, check_choice, check_float, check_int
from interp.data.corpus import (
    TextTokenizer,
    TokenizerConfig,
    corpus_manifest,
    load_documents,
    token_stream,
    train_tokenizer,
)
from interp.data.repeated import RepeatedConfig, RepeatedData, chop, mix_repeated
from interp.data.sequences import (
    markov_copy_stream,
    markov_icl_stream,
    markov_stream,
    self_quoting_text,
)
from interp.experiments.common import format_fields, pick_preset, prepare_run
from interp.models import TransformerConfig, make_model
from interp.training.store import SUMMARY_FILE, atomic_write_json
from interp.training.tasks import SequenceLMTask
from interp.training.trainer import TrainConfig, TrainResult, final_metrics, train

EXPERIMENT = "repeated_data"


CORPORA = ("python-stdlib", "markov", "markov-icl", "markov-copy")


@dataclass(frozen=True)
class CorpusConfig:
    """Where the tokens come from: the shipped corpus (``python-stdlib``), a
    synthetic Markov language with one transition matrix (``markov``), or
    documents of ``markov_doc_len`` tokens each with its own transition matrix
    (``markov-icl``: predictable only in context, so induction heads pay off;
    see :func:`interp.data.sequences.markov_icl_stream`), or self-quoting
    documents of one chain (``markov-copy``). ``text_quote > 0`` rewrites a
    text corpus into self-quoting documents of ``text_doc_len`` tokens
    (:func:`interp.data.sequences.self_quoting_text`): real tokens, with the
    copying structure of ``markov-copy``."""

    name: str = "python-stdlib"
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    markov_vocab: int = 64
    markov_tokens: int = 400_000
    markov_concentration: float = 0.05
    markov_doc_len: int = 256
    markov_quote: float = 0.5
    markov_successors: int = 4
    markov_contexts: int = 1
    text_quote: float = 0.0
    text_doc_len: int = 64

    def __post_init__(self) -> None:
        check_choice("corpus.name", self.name, CORPORA)
        check_float("corpus.text_quote", self.text_quote, 0.0, 1.0, hi_open=True)
        check_int("corpus.text_doc_len", self.text_doc_len, lo=8)
        if self.text_quote > 0 and self.name.startswith("markov"):
            raise ConfigError(
                f"corpus.text_quote applies to text corpora, not {self.name!r} "
                "(markov-copy has markov_quote)"
            )
        check_int("corpus.markov_doc_len", self.markov_doc_len, lo=8)
        check_float("corpus.markov_quote", self.markov_quote, 0.0, 1.0, hi_open=True)
        check_int("corpus.markov_successors", self.markov_successors, lo=1, hi=self.markov_vocab)
        check_int("corpus.markov_contexts", self.markov_contexts, lo=1)
        check_int("corpus.markov_vocab", self.markov_vocab, lo=2)
        check_int("corpus.markov_tokens", self.markov_tokens, lo=1000)
        check_float("corpus.markov_concentration", self.markov_concentration, 0.0, lo_open=True)

    @property
    def vocab_size(self) -> int:
        return self.markov_vocab if self.name.startswith("markov") else self.tokenizer.vocab_size


@dataclass(frozen=True)
class EvalConfig:
    """Sizes of the evaluation sets and probes."""

    test_sequences: int = 128
    subset_sequences: int = 64
    unique_sequences: int = 64
    copy_passages: int = 32
    copy_length: int = 32
    copies: int = 4
    verbatim_sequences: int = 64
    verbatim_prefix: int = 32
    verbatim_continuation: int = 32

    def __post_init__(self) -> None:
        for name in (
            "test_sequences", "subset_sequences", "unique_sequences", "copy_passages",
            "copy_length", "verbatim_sequences", "verbatim_prefix", "verbatim_continuation",
        ):  # fmt: skip
            check_int(f"eval.{name}", getattr(self, name), lo=1)
        check_int("eval.copies", self.copies, lo=2, hi=64)


@dataclass(frozen=True)
class RepeatedDataConfig:
    """One run: corpus and tokenizer, the repeated-data mix, model, optimiser, probes."""

    seed: int = 0
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    data: RepeatedConfig = field(default_factory=RepeatedConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, lo=0, hi=2**31 - 1)
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


SIZES: dict[str, TransformerConfig] = {
    "tiny": TransformerConfig(n_layers=1, n_heads=2, d_model=32, d_head=16, d_mlp=64,
                              normalization="LN", act_fn="gelu"),
    "xs": TransformerConfig(n_layers=2, n_heads=4, d_model=64, d_head=16, d_mlp=256,
                            normalization="LN", act_fn="gelu"),
    "s": TransformerConfig(n_layers=2, n_heads=4, d_model=128, d_head=32, d_mlp=512,
                           normalization="LN", act_fn="gelu"),
    "m": TransformerConfig(n_layers=2, n_heads=6, d_model=192, d_head=32, d_mlp=768,
                           normalization="LN", act_fn="gelu"),
    "l": TransformerConfig(n_layers=4, n_heads=8, d_model=256, d_head=32, d_mlp=1024,
                           normalization="LN", act_fn="gelu"),
    "xl": TransformerConfig(n_layers=4, n_heads=8, d_model=512, d_head=64, d_mlp=2048,
                            normalization="LN", act_fn="gelu"),
}  # fmt: skip

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
    # plain Python text, BPE: the damage peak, but no induction heads (README)
    "cpu-text": RepeatedDataConfig(
        corpus=CorpusConfig("python-stdlib", TokenizerConfig("bpe", 4096)),
        data=RepeatedConfig(total_tokens=2_097_152, repeated_fraction=0.5,
                            repeated_epochs=100, seq_len=256),
        model=SIZES["s"],
        train=replace(_LM_TRAIN, lr=2e-3, batch_size=16),
    ),
    # synthetic text that quotes itself (see markov_copy_stream): copying pays, so
    # the f = 0 model forms induction heads within CPU minutes (the text presets
    # do not): prefix matching on random tokens passes 0.3 at 7-13k steps (seeds
    # 0-2) and ends at 0.40-0.76
    "cpu-copy": RepeatedDataConfig(
        corpus=CorpusConfig("markov-copy", markov_vocab=512, markov_tokens=33_554_432,
                            markov_concentration=0.1, markov_doc_len=64, markov_quote=0.7,
                            markov_successors=8, markov_contexts=4),
        data=RepeatedConfig(total_tokens=33_554_432, repeated_fraction=0.5,
                            repeated_epochs=100, seq_len=64),
        model=SIZES["xs"],
        train=replace(_COPY_TRAIN, batch_size=32),
        eval=_COPY_EVAL,
    ),
    # the shipped Python source, bytes, laid out like markov-copy (self_quoting_text):
    # real text statistics, copying at random offsets. The f = 0 model forms an
    # induction head (printable-ASCII prefix matching 0.42 at the end, seed 0);
    # the same text without quotes does not (README)
    "cpu-copy-text": RepeatedDataConfig(
        corpus=CorpusConfig("python-stdlib", TokenizerConfig("byte", 257), text_quote=0.7,
                            text_doc_len=64),
        data=RepeatedConfig(total_tokens=15_728_640, repeated_fraction=0.5,
                            repeated_epochs=1000, seq_len=64),
        model=SIZES["xs"],
        train=replace(_COPY_TRAIN, batch_size=16),
        eval=_COPY_EVAL,
    ),
    "tiny": RepeatedDataConfig(
        corpus=CorpusConfig("markov", markov_vocab=32, markov_tokens=60_000),
        data=RepeatedConfig(total_tokens=16_384, repeated_fraction=0.5,
                            repeated_epochs=8, seq_len=64),
        model=SIZES["tiny"],
        train=replace(_LM_TRAIN, lr=3e-3, batch_size=8, warmup_steps=5, eval_every=8,
                      checkpoint_every=16),
        eval=EvalConfig(test_sequences=16, subset_sequences=8, unique_sequences=8,
                        copy_passages=8, copy_length=16, verbatim_sequences=8,
                        verbatim_prefix=16, verbatim_continuation=8),
    ),
}  # fmt: skip
# one run of the cpu-quick grid (interp train repeated-data's default preset)
PRESETS["cpu-quick"] = PRESETS["cpu-copy-text"]
# for a GPU: the cpu-copy-text recipe (under which the f = 0 xs and s models form
# induction heads here) with the 4-layer l model. The budget is one pass of the
# shipped corpus laid out to quote itself (15.7M bytes); plain BPE text gives a
# pass of only 2.8M tokens, where no model here formed heads
PRESETS["paper"] = replace(PRESETS["cpu-copy-text"], model=SIZES["l"])


def preset(
    name: str, seed: int | None = None, overrides: list[str] | None = None
) -> RepeatedDataConfig:
    return pick_preset(EXPERIMENT, PRESETS, name, seed, overrides)


# --- data -----------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$INTERP_CACHE_DIR`` or ``~/.cache/interp`` (tokenizers and token streams)."""
    env = os.environ.get("INTERP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "interp"


def corpus_streams(corpus: CorpusConfig) -> tuple[TextTokenizer | None, Tensor, Tensor]:
    """(tokenizer, train stream, test stream) of ``corpus``; BPE tokenizers and
    token streams of real corpora are cached on disk, keyed by the corpus
    hashes and the tokenizer config (both are deterministic)."""
    return _corpus_streams(json.dumps(_corpus_key(corpus), sort_keys=True), corpus)


def _corpus_key(corpus: CorpusConfig) -> dict[str, Any]:
    if corpus.name.startswith("markov"):
        key = [corpus.markov_vocab, corpus.markov_tokens, corpus.markov_concentration]
        if corpus.name != "markov":
            key.append(corpus.markov_doc_len)
        if corpus.name == "markov-copy":
            key = [corpus.markov_vocab, corpus.markov_tokens, corpus.markov_successors,
                   corpus.markov_doc_len, corpus.markov_quote, corpus.markov_contexts,
                   corpus.markov_concentration]  # fmt: skip
        return {corpus.name: key}
    key = _tokenized_key(corpus)
    if corpus.text_quote > 0:
        key["quote"] = [corpus.text_quote, corpus.text_doc_len]
    return key


def _tokenized_key(corpus: CorpusConfig) -> dict[str, Any]:
    """What a text corpus's tokenized streams depend on: its files and tokenizer."""
    m = corpus_manifest(corpus.name)
    return {
        "corpus": corpus.name,
        "sha": [m["train"]["sha256_xz"], m["test"]["sha256_xz"]],
        "tokenizer": [corpus.tokenizer.kind, corpus.tokenizer.vocab_size],
    }


@lru_cache(maxsize=4)
def _corpus_streams(key: str, corpus: CorpusConfig) -> tuple[TextTokenizer | None, Tensor, Tensor]:
    if corpus.name == "markov":
        n_test = max(corpus.markov_tokens // 10, 4096)
        stream = markov_stream(
            corpus.markov_tokens + n_test, corpus.markov_vocab, 0, corpus.markov_concentration
        )
        return None, stream[: corpus.markov_tokens], stream[corpus.markov_tokens :]
    if corpus.name == "markov-icl":  # independent documents: test ones from another seed
        c = corpus
        n_test = max(c.markov_tokens // 10, 16 * c.markov_doc_len)
        train = markov_icl_stream(c.markov_tokens, c.markov_vocab, c.markov_doc_len, 0,
                                  c.markov_concentration)  # fmt: skip
        test = markov_icl_stream(n_test, c.markov_vocab, c.markov_doc_len, 1,
                                 c.markov_concentration)  # fmt: skip
        return None, train, test
    if corpus.name == "markov-copy":  # one chain: test documents from its continuation
        c = corpus
        n_test = max(c.markov_tokens // 10, 16 * c.markov_doc_len)
        n_test -= n_test % c.markov_doc_len
        stream = markov_copy_stream(c.markov_tokens + n_test, c.markov_vocab, c.markov_doc_len, 0,
                                    c.markov_successors, c.markov_quote,
                                    contexts=c.markov_contexts,
                                    concentration=c.markov_concentration)  # fmt: skip
        return None, stream[: c.markov_tokens], stream[c.markov_tokens :]
    tok, train_s, test_s = _text_streams(corpus)
    if corpus.text_quote > 0:  # train and test rewritten apart: still no shared text
        q, n = corpus.text_quote, corpus.text_doc_len
        train_s, test_s = self_quoting_text(train_s, n, 0, q), self_quoting_text(test_s, n, 1, q)
    return tok, train_s, test_s


def _text_streams(corpus: CorpusConfig) -> tuple[TextTokenizer, Tensor, Tensor]:
    """A text corpus tokenized, cached on disk by corpus hashes and tokenizer."""
    key = json.dumps(_tokenized_key(corpus), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    folder = cache_dir() / f"{corpus.name}-{digest}"
    tok_path, st_path = folder / "tokenizer.json", folder / "tokens.safetensors"
    if tok_path.exists() and st_path.exists():
        try:
            t = load_file(st_path)
            return TextTokenizer.load(tok_path), t["train"], t["test"]
        except Exception:  # a torn cache entry: rebuild it
            pass
    train_docs = load_documents(corpus.name, "train")
    tok = train_tokenizer(corpus.tokenizer, train_docs)
    train_s = token_stream(train_docs, tok)
    test_s = token_stream(load_documents(corpus.name, "test"), tok)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tokens.{os.getpid()}.tmp"
    save_file({"train": train_s, "test": test_s}, tmp)
    tok.save(tok_path)
    os.replace(tmp, st_path)
    return tok, train_s, test_s


@dataclass
class LMData:
    """Everything one run trains and evaluates on."""

    mixed: RepeatedData
    test: Tensor
    subset: Tensor | None
    unique: Tensor
    copy_passages: Tensor
    tokenizer: TextTokenizer | None


def make_data(cfg: RepeatedDataConfig) -> LMData:
    """The mixed training sequences and the evaluation sets of ``cfg``."""
    tok, train_s, test_s = corpus_streams(cfg.corpus)
    mixed = mix_repeated(train_s, cfg.data, cfg.seed)
    e, L = cfg.eval, cfg.data.seq_len
    test = chop(test_s, L, e.test_sequences)
    # copy passages from the part of the test stream the test sequences don't use
    rest = test_s[test.numel() :]
    if rest.numel() < e.copy_length:
        rest = test_s
    passages = chop(rest, e.copy_length, e.copy_passages)
    subset = chop(mixed.subset, L, e.subset_sequences) if mixed.subset.numel() >= L else None
    # spread over the whole unique stream: its start adjoins the subset in the
    # source text (same file), which a model that memorised the subset predicts well
    all_unique = chop(mixed.unique, L)
    pick = torch.linspace(0, all_unique.shape[0] - 1, min(e.unique_sequences, all_unique.shape[0]))
    unique = all_unique[pick.round().long()]
    return LMData(mixed, test, subset, unique, passages, tok)


def make_task(cfg: RepeatedDataConfig, data: LMData | None = None) -> SequenceLMTask:
    from interp.analysis.memorization import copy_losses

    data = data or make_data(cfg)
    evals = {"test": data.test, "unique": data.unique}
    if data.subset is not None:
        evals["repeated"] = data.subset

    def probes(model: nn.Module) -> dict[tuple[str, str], float]:
        losses = copy_losses(model, data.copy_passages, cfg.eval.copies)
        first, later = float(losses[0]), float(losses[1:].mean())
        pm_random, pm_text = prefix_matching_pair(
            model, data.copy_passages, cfg.eval.copies, probe_vocab_range(cfg.corpus)
        )
        return {
            ("copy", "loss_first"): first,
            ("copy", "loss_later"): later,
            ("copy", "gain"): first - later,
            ("heads", "prefix_matching_max"): pm_random,
            ("copy", "prefix_matching_max"): pm_text,
        }

    return SequenceLMTask(data.mixed.sequences, evals, probes)


def probe_vocab_range(corpus: CorpusConfig) -> tuple[int, int] | None:
    """Token ids the random-token prefix-matching probe draws from: printable
    ASCII (ids 32–126) for byte-level text, whose other byte values never occur
    in the shipped corpus and keep untrained embeddings (a probe over all 256
    bytes under-reads an induction head by half or more: 0.16 vs 0.42 on the
    same head); the whole vocabulary otherwise (BPE ids and synthetic tokens all
    occur in training). The start token is the range's first id (space)."""
    if not corpus.name.startswith("markov") and corpus.tokenizer.kind == "byte":
        return (32, 127)
    return None


def run_head_analyzers(cfg: RepeatedDataConfig, analyzers: Sequence[Any] | None = None) -> tuple:
    """The head analyzers (default: all of :data:`interp.analysis.HEAD_ANALYZERS`)
    with their random-token probes drawn from the run's :func:`probe_vocab_range`
    — what ``interp sweep`` and ``interp report`` run on a repeated-data run."""
    from interp.analysis import HEAD_ANALYZERS, head_analyzers

    return head_analyzers(probe_vocab_range(cfg.corpus), analyzers or HEAD_ANALYZERS)


def prefix_matching_pair(
    model: nn.Module,
    passages: Int[Tensor, "n length"],
    copies: int,
    vocab_range: tuple[int, int] | None = None,
    n: int = 16,
) -> tuple[float, float]:
    """Max over heads of the prefix-matching score (Olsson et al. 2022 §2) on two
    probes: random tokens from ``vocab_range`` repeated (the standard,
    off-distribution probe; see :func:`probe_vocab_range`) and
    ``n`` held-out passages repeated ``copies`` times (the copying evaluation's
    contexts, in-distribution). A model trained on a narrow language can copy
    its own text well before its heads generalise to random tokens.

    The text probe has a chance level well above 0: the score sums attention
    over the token after *every* earlier occurrence of the current token, and in
    natural text common tokens recur within a passage (uniform attention at
    init scores ≈ 0.33 on byte-level Python). Read it against its step-0
    value; the random-token probe (chance ≈ 0.05) is the one the ≥ 0.3
    induction-head criterion refers to."""
    from interp.analysis.heads import prefix_matching_scores

    with torch.no_grad():
        pm_random = prefix_matching_scores(model, vocab_range=vocab_range)
        pm_text = prefix_matching_scores(model, passages[:n].repeat(1, copies))
    return float(pm_random.max()), float(pm_text.max())


def non_embedding_params(model: nn.Module) -> int:
    """Parameters outside the token/position embeddings and the unembedding
    (Kaplan et al. 2020's N, used by Hernandez et al.)."""
    return sum(
        p.numel()
        for n, p in model.state_dict().items()
        if not (n.startswith(("embed.", "pos_embed.", "unembed.")))
    )


def summarize_run(
    rows: list[dict[str, Any]], model: nn.Module, cfg: RepeatedDataConfig, data: LMData
) -> dict[str, Any]:
    """Final losses, copying, verbatim memorisation, accounting, parameter counts."""
    from interp.analysis.memorization import verbatim_fraction

    e = cfg.eval
    out: dict[str, Any] = final_metrics(rows)
    out.update({f"data_{k}": v for k, v in data.mixed.accounting().items()})
    out["non_embedding_params"] = non_embedding_params(model)
    out["params"] = sum(p.numel() for p in model.parameters())
    out["tokens_seen"] = cfg.steps * cfg.train.batch_size * cfg.data.seq_len  # type: ignore[operator]
    model.eval()
    sets = {"test": data.test, "unique": data.unique}
    if data.subset is not None:
        sets["repeated"] = data.subset
    for name, seqs in sets.items():
        v = verbatim_fraction(
            model, seqs[: e.verbatim_sequences], e.verbatim_prefix, e.verbatim_continuation
        )
        out[f"verbatim_{name}_exact"] = v["exact"]
        out[f"verbatim_{name}_token_match"] = v["token_match"]
    return out


def run(
    cfg: RepeatedDataConfig,
    run_dir: str,
    *,
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train one repeated-data run into ``run_dir`` (resumable)."""
    cfg = cfg.resolve()
    store, dev = prepare_run(EXPERIMENT, cfg, run_dir, device, threads)
    data = make_data(cfg)
    if data.tokenizer is not None:
        data.tokenizer.save(store.path / "tokenizer.json")
    atomic_write_json(store.path / "data.json", data.mixed.accounting())
    model = make_model(cfg.model, seed=cfg.seed, device=dev)
    result = train(
        model, make_task(cfg, data), cfg.train, store, cfg.seed,
        device=dev, quiet=quiet, stop_after_step=stop_after_step,
    )  # fmt: skip
    if result.summary:
        summary = summarize_run(store.read_metric_rows(), result.model, cfg, data)
        summary["steps"] = result.summary["steps"]
        atomic_write_json(store.path / SUMMARY_FILE, summary)
        result.summary = summary
    return result


def format_summary(summary: dict[str, Any]) -> str:
    return format_fields(
        summary,
        [
            "final_test_loss", "final_repeated_loss", "final_unique_loss", "final_copy_gain",
            "verbatim_repeated_exact", "data_repeated_fraction", "data_repeated_epochs",
            "non_embedding_params", "steps",
        ],
    )  # fmt: skip


__all__ = [
    "EXPERIMENT", "PRESETS", "SIZES", "CorpusConfig", "EvalConfig", "RepeatedDataConfig",
    "corpus_streams", "make_data", "make_task", "non_embedding_params", "preset", "run",
]  # fmt: skip
