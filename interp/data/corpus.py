"""Real text, offline: shipped corpora, a locally trained tokenizer, token streams.

Corpora live in the repository's ``data/`` directory (or ``$INTERP_DATA_DIR``),
each with a ``manifest.json`` giving its source, licence, files and the
sha256 of each split; loading verifies the hash. Shipped:

* ``python-stdlib`` — the CPython 3.11.7 standard library's non-test modules
  (PSF licence), 633 train files (10.8 MB) and 40 held-out files (0.6 MB)
  that share no 128-byte span with the train text (data/README.md).

Tokenizers: ``byte`` (256 byte values + an end-of-document token) or ``bpe``,
a byte-level BPE (Sennrich et al. 2016; GPT-2's byte-level variant) trained
here with the ``tokenizers`` package on the train split only, vocabulary size
a parameter. A tokenizer is saved as JSON with every run that uses it.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Int
from torch import Tensor

from interp.config.core import check_choice
from interp.config.data import TokenizerConfig

EOS = "<|endoftext|>"
SEP = "\x00"


def data_dir() -> Path:
    """``$INTERP_DATA_DIR`` or the repository's ``data/`` directory."""
    env = os.environ.get("INTERP_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def corpus_manifest(name: str) -> dict:
    path = data_dir() / name / "manifest.json"
    if not path.exists():
        available = sorted(p.parent.name for p in data_dir().glob("*/manifest.json"))
        raise FileNotFoundError(f"no corpus {name!r} under {data_dir()}; available: {available}")
    return json.loads(path.read_text())


def load_documents(name: str, split: Literal["train", "test"]) -> list[str]:
    """The documents of one split, after checking the file's sha256."""
    check_choice("split", split, ("train", "test"))
    manifest = corpus_manifest(name)
    path = data_dir() / name / f"{split}.txt.xz"
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != manifest[split]["sha256_xz"]:
        raise ValueError(f"{path} does not match the sha256 in its manifest (corrupted?)")
    docs = lzma.decompress(raw).decode("utf-8").split(SEP)
    if len(docs) != manifest[split]["documents"]:
        raise ValueError(f"{path}: expected {manifest[split]['documents']} documents")
    return docs


class TextTokenizer:
    """Encode/decode text; ``eos_id`` separates documents."""

    def __init__(self, cfg: TokenizerConfig, backend: object | None = None):
        self.cfg = cfg
        self._tok = backend
        if cfg.kind == "bpe" and backend is None:
            raise ValueError("a BPE tokenizer needs its trained backend")

    @property
    def vocab_size(self) -> int:
        return 257 if self.cfg.kind == "byte" else self._tok.get_vocab_size()  # type: ignore[union-attr]

    @property
    def eos_id(self) -> int:
        return 256 if self.cfg.kind == "byte" else self._tok.token_to_id(EOS)  # type: ignore[union-attr]

    def encode(self, text: str) -> list[int]:
        if self.cfg.kind == "byte":
            return list(text.encode("utf-8"))
        return self._tok.encode(text).ids  # type: ignore[union-attr]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self.cfg.kind == "byte":
            return [self.encode(t) for t in texts]
        return [e.ids for e in self._tok.encode_batch(texts)]  # type: ignore[union-attr]

    def decode(self, ids: list[int]) -> str:
        if self.cfg.kind == "byte":
            return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
        return self._tok.decode(ids)  # type: ignore[union-attr]

    def to_json(self) -> str:
        body = None if self.cfg.kind == "byte" else self._tok.to_str()  # type: ignore[union-attr]
        return json.dumps(
            {"kind": self.cfg.kind, "vocab_size": self.cfg.vocab_size, "backend": body}
        )

    def save(self, path: str | Path) -> None:
        from interp.training.files import atomic_write_text

        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        d = json.loads(text)
        cfg = TokenizerConfig(d["kind"], d["vocab_size"])
        if cfg.kind == "byte":
            return cls(cfg)
        from tokenizers import Tokenizer

        return cls(cfg, Tokenizer.from_str(d["backend"]))

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        return cls.from_json(Path(path).read_text())


def train_tokenizer(cfg: TokenizerConfig, docs: list[str]) -> TextTokenizer:
    """A tokenizer for ``docs`` (BPE merges learned from them; deterministic)."""
    if cfg.kind == "byte":
        return TextTokenizer(cfg)
    if not docs:
        raise ValueError("cannot train a tokenizer on no documents")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return TextTokenizer(cfg, tok)


def token_stream(docs: list[str], tok: TextTokenizer) -> Int[Tensor, " n"]:
    """All documents tokenized and joined, each followed by ``eos_id``."""
    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc)
        ids.append(tok.eos_id)
    return torch.tensor(ids, dtype=torch.int32 if tok.vocab_size < 2**31 else torch.int64)


__all__ = [
    "EOS",
    "TextTokenizer",
    "TokenizerConfig",
    "data_dir",
    "load_documents",
    "token_stream",
    "train_tokenizer",
]
