"""What each experiment trains on (``data.*``, ``corpus.*``, ``eval.*``)."""

from __future__ import annotations

from typing import Literal

from interp.config.core import ConfigError, config, setting

Operation = Literal["+", "-", "*", "/"]
OPERATIONS: tuple[str, ...] = ("+", "-", "*", "/")


def is_prime(n: int) -> bool:
    """True when ``n`` is a prime number."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


@config("data")
class ModularConfig:
    """(a ∘ b) mod p, its pair set and its train/test split (Power et al. 2022
    §2; Nanda et al. 2023 §3). ``op="/"`` is a · b⁻¹ mod p (b ≠ 0) and needs a
    prime p."""

    p: int = setting(59, "the modulus", ge=2, le=10_000)
    op: Operation = setting("+", "the operation: + - * /")
    pairs: Literal["ordered", "unordered"] = setting(
        "ordered", "ordered: all p² pairs (a, b); unordered: a ≤ b (Minegishi et al. §4.1)"
    )
    train_fraction: float = setting(0.4, "fraction of the pairs used for training", gt=0.0, lt=1.0)
    seed: int | None = setting(None, "seed of the train/test split; null = the run's seed", ge=0)

    def __post_init__(self) -> None:
        if self.op == "/" and not is_prime(self.p):
            raise ConfigError(f"p must be prime for op '/', got {self.p}")


@config("data")
class InductionDataConfig:
    """Sequences for the induction task and the repeated-token probe."""

    kind: Literal["periodic", "copied_span"] = setting(
        "periodic",
        "periodic: each sequence tiles a random segment of random period; "
        "copied_span: random tokens with one span copied later",
    )
    vocab: int = setting(64, "vocabulary size", ge=2)
    seq_len: int = setting(48, "tokens per training sequence", ge=4)
    min_span: int = setting(4, "shortest period / copied span", ge=1)
    eval_size: int = setting(256, "sequences in each fixed evaluation batch", ge=1)
    probe_size: int = setting(64, "sequences in the repeated-random-token probe", ge=1)
    probe_length: int = setting(
        20, "distinct tokens per probe copy (the probe is two copies)", ge=2
    )

    def __post_init__(self) -> None:
        if self.seq_len < 2 * self.min_span:
            raise ConfigError(
                f"seq_len={self.seq_len} must be at least 2 × min_span ({2 * self.min_span})"
            )
        if 2 * self.probe_length > self.seq_len:
            raise ConfigError(
                f"probe_length={self.probe_length}: two copies must fit in seq_len={self.seq_len}"
            )
        if self.probe_length > self.vocab:
            raise ConfigError(
                f"probe_length={self.probe_length} exceeds vocab={self.vocab} "
                "(probe tokens are distinct)"
            )


@config("corpus.tokenizer")
class TokenizerConfig:
    """``byte``: 257 ids (bytes, then end-of-document); ``bpe``: byte-level BPE
    with ``vocab_size`` ids including the end-of-document token."""

    kind: Literal["byte", "bpe"] = setting("bpe", "byte-level ids, or a BPE trained here")
    vocab_size: int = setting(
        4096, "ids, end-of-document included (257 for byte)", ge=257, le=1_000_000
    )

    def __post_init__(self) -> None:
        if self.kind == "byte" and self.vocab_size != 257:
            raise ConfigError("vocab_size must be 257 for kind 'byte'")


CORPORA = ("python-stdlib", "markov", "markov-icl", "markov-copy")


@config("corpus")
class CorpusConfig:
    """Where the tokens come from: the shipped corpus (``python-stdlib``), a
    synthetic Markov language with one transition matrix (``markov``), one
    chain per document (``markov-icl``), or self-quoting documents of one
    chain (``markov-copy``). ``text_quote > 0`` rewrites a text corpus into
    self-quoting documents (:func:`interp.data.sequences.self_quoting_text`)."""

    name: Literal["python-stdlib", "markov", "markov-icl", "markov-copy"] = setting(
        "python-stdlib", "the corpus"
    )
    tokenizer: TokenizerConfig = setting(TokenizerConfig, "tokenizer of a text corpus")
    markov_vocab: int = setting(64, "markov corpora: vocabulary size", ge=2)
    markov_tokens: int = setting(400_000, "markov corpora: training tokens generated", ge=1000)
    markov_concentration: float = setting(
        0.05, "markov corpora: Dirichlet concentration of each transition row", gt=0.0
    )
    markov_doc_len: int = setting(256, "markov-icl / markov-copy: tokens per document", ge=8)
    markov_quote: float = setting(
        0.5, "markov-copy: share of each document that quotes earlier spans of it", ge=0.0, lt=1.0
    )
    markov_successors: int = setting(4, "markov-copy: successors per state", ge=1)
    markov_contexts: int = setting(1, "markov-copy: chains mixed into the corpus", ge=1)
    text_quote: float = setting(
        0.0,
        "text corpora: share of each document that quotes earlier spans of it; 0 = plain text",
        ge=0.0,
        lt=1.0,
    )
    text_doc_len: int = setting(64, "text corpora with text_quote > 0: tokens per document", ge=8)

    def __post_init__(self) -> None:
        if self.text_quote > 0 and self.name.startswith("markov"):
            raise ConfigError(
                f"text_quote applies to text corpora, not {self.name!r} "
                "(markov-copy has markov_quote)"
            )
        if self.markov_successors > self.markov_vocab:
            raise ConfigError(
                f"markov_successors must be <= markov_vocab={self.markov_vocab}, "
                f"got {self.markov_successors}"
            )

    @property
    def vocab_size(self) -> int:
        return self.markov_vocab if self.name.startswith("markov") else self.tokenizer.vocab_size


@config("data")
class RepeatedConfig:
    """Hernandez et al. 2022's mix: a budget of ``total_tokens`` (D) of which a
    fraction ``repeated_fraction`` (f) is a subset repeated ``repeated_epochs``
    (E) times, cut into sequences of ``seq_len`` tokens."""

    total_tokens: int = setting(1_000_000, "token budget D of one pass", ge=1)
    repeated_fraction: float = setting(0.5, "fraction f of D that is repeated data", ge=0.0, lt=1.0)
    repeated_epochs: int = setting(100, "times E the repeated subset is seen", ge=1)
    seq_len: int = setting(128, "tokens per training sequence (the context)", ge=2)
    align: Literal["sequences", "shifted"] = setting(
        "sequences",
        "sequences: the repeated subset is whole training sequences, each repeat the same "
        "sequences (Hernandez et al.); shifted: the subset's tokens tiled end to end, so its "
        "repeats start at shifted positions within the sequences",
        legacy="shifted",
    )

    def __post_init__(self) -> None:
        if self.total_tokens % self.seq_len:
            raise ConfigError(
                f"total_tokens={self.total_tokens} must be a multiple of seq_len={self.seq_len}"
            )
        exact = self.repeated_fraction * self.total_tokens / self.repeated_epochs
        if self.repeated_fraction > 0 and round(exact) < self.seq_len:
            raise ConfigError(
                f"repeated_epochs={self.repeated_epochs} is too large: the repeated subset "
                f"would hold {round(exact)} tokens, fewer than one sequence ({self.seq_len}); "
                f"use E <= {self.repeated_fraction * self.total_tokens / self.seq_len:.0f}"
            )

    @property
    def subset_tokens(self) -> int:
        """S = f·D / E, rounded (to whole sequences when ``align="sequences"``)."""
        if self.repeated_fraction == 0:
            return 0
        exact = self.repeated_fraction * self.total_tokens / self.repeated_epochs
        if self.align == "sequences":
            return max(1, round(exact / self.seq_len)) * self.seq_len
        return max(1, round(exact))

        if self.repeated_tokens > self.total_tokens:
            raise ConfigError(
                f"repeated_fraction={self.repeated_fraction} rounded to whole sequences leaves "
                "no room for unique data; lower it or use data.align=shifted"
            )

    @property
    def repeated_tokens(self) -> int:
        return self.subset_tokens * self.repeated_epochs

    @property
    def unique_tokens(self) -> int:
        return self.total_tokens - self.repeated_tokens

    @property
    def source_tokens_needed(self) -> int:
        return self.subset_tokens + self.unique_tokens


@config("eval")
class EvalConfig:
    """Sizes of the evaluation sets and probes of a language-model run."""

    test_sequences: int = setting(128, "held-out sequences for test/loss", ge=1)
    subset_sequences: int = setting(64, "sequences of the repeated subset for repeated/loss", ge=1)
    unique_sequences: int = setting(64, "unique training sequences for unique/loss", ge=1)
    copy_passages: int = setting(32, "held-out passages of the copying evaluation", ge=1)
    copy_length: int = setting(32, "tokens per copy passage", ge=1)
    copies: int = setting(4, "copies of each passage in one context", ge=2, le=64)
    verbatim_sequences: int = setting(64, "sequences tested for verbatim continuation", ge=1)
    verbatim_prefix: int = setting(32, "prompt tokens of the verbatim test", ge=1)
    verbatim_continuation: int = setting(32, "greedy tokens compared in the verbatim test", ge=1)


__all__ = [
    "CORPORA",
    "OPERATIONS",
    "CorpusConfig",
    "EvalConfig",
    "InductionDataConfig",
    "ModularConfig",
    "Operation",
    "RepeatedConfig",
    "TokenizerConfig",
    "is_prime",
]
