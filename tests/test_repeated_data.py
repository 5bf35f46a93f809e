"""The repeated-data mixer's exact token accounting, the shipped corpus, the
tokenizer, and the synthetic Markov stream."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from interp.config import ConfigError
from interp.data.corpus import (
    TextTokenizer,
    TokenizerConfig,
    load_documents,
    token_stream,
    train_tokenizer,
)
from interp.data.repeated import RepeatedConfig, chop, mix_repeated
from interp.data.sequences import (
    markov_copy_stream,
    markov_icl_stream,
    markov_stream,
    self_quoting_text,
)


@pytest.mark.parametrize("align", ["sequences", "shifted"])
@pytest.mark.parametrize(("f", "E"), [(0.5, 10), (0.1, 3), (0.25, 1), (0.0, 100), (0.5, 47)])
def test_mixer_accounting_is_exact(f, E, align):
    cfg = RepeatedConfig(
        total_tokens=64 * 100, repeated_fraction=f, repeated_epochs=E, seq_len=64, align=align
    )
    stream = torch.arange(20_000)  # every source position is a distinct token
    data = mix_repeated(stream, cfg, seed=3)
    S = cfg.subset_tokens
    unit = 64 if align == "sequences" else 1  # S is rounded to whole sequences, or tokens
    assert S == (max(1, round(f * 6400 / E / unit)) * unit if f else 0)
    assert data.sequences.shape == (100, 64)
    flat, rep = data.sequences.flatten(), data.is_repeated.flatten()
    counts = torch.bincount(flat, minlength=20_000)
    assert int(rep.sum()) == S * E == cfg.repeated_tokens
    assert int((~rep).sum()) == 6400 - S * E == cfg.unique_tokens
    # every subset token exactly E times, every unique token once, nothing else
    assert torch.equal(counts[data.subset], torch.full((S,), E))
    assert torch.equal(counts[data.unique], torch.ones(data.unique.numel(), dtype=torch.long))
    assert int(counts.sum()) == 6400 and int((counts > 0).sum()) == S + cfg.unique_tokens
    assert set(data.subset.tolist()).isdisjoint(data.unique.tolist())
    assert torch.equal(data.is_repeated, torch.isin(data.sequences, data.subset))  # provenance
    acc = data.accounting()
    assert acc["repeated_fraction"] == pytest.approx(S * E / 6400)
    assert abs(acc["repeated_fraction"] - f) <= E * unit / 2 / 6400  # f up to rounding S


def test_aligned_repeats_are_whole_identical_sequences():
    """align="sequences": every training sequence is all repeated or all
    unique, and each of the subset's S/L sequences occurs exactly E times as
    the same row; "shifted" (S not a multiple of L) repeats the text under
    several alignments instead."""
    kw = {"total_tokens": 64 * 100, "repeated_fraction": 0.5, "repeated_epochs": 10, "seq_len": 64}
    stream = torch.arange(20_000)
    data = mix_repeated(stream, RepeatedConfig(**kw), seed=0)
    mixed = data.is_repeated.any(1) & ~data.is_repeated.all(1)
    assert not mixed.any()
    rows = data.sequences[data.is_repeated.all(1)]
    distinct, counts = torch.unique(rows, dim=0, return_counts=True)
    assert distinct.shape[0] == data.cfg.subset_tokens // 64 and bool((counts == 10).all())
    kw["repeated_epochs"] = 7  # S = 457 tokens: not whole sequences
    shifted = mix_repeated(stream, RepeatedConfig(**kw, align="shifted"), seed=0)
    S = shifted.cfg.subset_tokens
    assert S == 457
    rows = shifted.sequences[shifted.is_repeated.all(1)]
    # the same text under many alignments: far more distinct rows than S / L
    assert torch.unique(rows, dim=0).shape[0] > 3 * math.ceil(S / 64)


def test_runs_written_before_align_existed_read_as_shifted():
    from interp.config.core import from_dict, to_dict, with_legacy
    from interp.config.repeated_data import RepeatedDataConfig
    from interp.experiments import repeated_data

    new = repeated_data.preset("cpu-quick")
    old = to_dict(new)
    del old["data"]["align"]
    cfg = from_dict(RepeatedDataConfig, with_legacy(RepeatedDataConfig, old))
    assert cfg.data.align == "shifted" and new.data.align == "sequences"


def test_mixer_is_seeded_and_shuffled():
    cfg = RepeatedConfig(total_tokens=64 * 50, repeated_fraction=0.5, repeated_epochs=5, seq_len=64)
    stream = torch.arange(10_000)
    a, b = mix_repeated(stream, cfg, 1), mix_repeated(stream, cfg, 1)
    assert torch.equal(a.sequences, b.sequences)
    c = mix_repeated(stream, cfg, 2)
    assert not torch.equal(a.subset, c.subset)
    # repeated sequences are spread through training, not all first
    first_half = a.is_repeated[:25].float().mean()
    assert 0.2 < float(first_half) < 0.8


def test_mixer_rejects_bad_budgets():
    with pytest.raises(ConfigError, match="multiple of"):
        RepeatedConfig(total_tokens=1000, seq_len=64)
    with pytest.raises(ConfigError, match="too large"):
        RepeatedConfig(total_tokens=6400, repeated_fraction=0.5, repeated_epochs=100, seq_len=64)
    with pytest.raises(ConfigError, match="repeated_fraction"):
        RepeatedConfig(repeated_fraction=1.0)
    cfg = RepeatedConfig(total_tokens=6400, repeated_fraction=0.5, repeated_epochs=10, seq_len=64)
    with pytest.raises(ValueError, match="needs 3,520"):
        mix_repeated(torch.arange(1000), cfg, 0)
    with pytest.raises(ValueError, match="holds no sequence"):
        chop(torch.arange(10), 64)


def test_shipped_corpus_splits_share_no_text():
    train, test = load_documents("python-stdlib", "train"), load_documents("python-stdlib", "test")
    assert len(train) == 633 and len(test) == 40
    joined = "\n".join(train)
    rng = random.Random(0)
    for _ in range(200):
        doc = rng.choice(test)
        b = doc.encode()
        i = rng.randrange(0, len(b) - 128)
        window = b[i : i + 128].decode("utf-8", errors="ignore")[8:-8]  # whole characters
        assert window not in joined
    assert set(train).isdisjoint(test)


def test_corrupted_corpus_is_refused(tmp_path, monkeypatch):
    import shutil

    from interp.data.corpus import data_dir

    shutil.copytree(data_dir() / "python-stdlib", tmp_path / "python-stdlib")
    p = tmp_path / "python-stdlib" / "test.txt.xz"
    raw = bytearray(p.read_bytes())
    raw[100] ^= 1
    p.write_bytes(bytes(raw))
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        load_documents("python-stdlib", "test")
    with pytest.raises(FileNotFoundError, match="available"):
        load_documents("nope", "test")


def test_bpe_tokenizer_round_trips_and_is_deterministic(tmp_path):
    docs = load_documents("python-stdlib", "test")[:10]
    cfg = TokenizerConfig("bpe", 600)
    tok = train_tokenizer(cfg, docs)
    again = train_tokenizer(cfg, docs)
    assert tok.to_json() == again.to_json()
    assert tok.vocab_size == 600 and tok.decode(tok.encode(docs[0])) == docs[0]
    tok.save(tmp_path / "tok.json")
    loaded = TextTokenizer.load(tmp_path / "tok.json")
    assert loaded.encode(docs[1]) == tok.encode(docs[1])
    stream = token_stream(docs[:2], tok)
    assert int((stream == tok.eos_id).sum()) == 2 and int(stream[-1]) == tok.eos_id
    byte = train_tokenizer(TokenizerConfig("byte", 257), [])
    assert byte.encode("é") == [195, 169] and byte.decode([195, 169, 256]) == "é"
    with pytest.raises(ConfigError, match="257"):
        TokenizerConfig("byte", 300)


def test_markov_stream_follows_its_transition_structure():
    s = markov_stream(30_000, 16, seed=0, concentration=0.05)
    assert torch.equal(s, markov_stream(30_000, 16, seed=0, concentration=0.05))
    pairs = torch.bincount(s[:-1] * 16 + s[1:], minlength=256).reshape(16, 16).float()
    rows = pairs / pairs.sum(-1, keepdim=True).clamp(min=1)
    # sparse Dirichlet rows: a token's top successor takes most of its mass
    assert float(rows.max(-1).values.mean()) > 0.5
    assert len(set(s.tolist())) > 8


def test_markov_icl_documents_are_predictable_only_in_context():
    V, L = 16, 128
    s = markov_icl_stream(200 * L, V, L, seed=0, concentration=0.1)
    assert s.shape == (200 * L,) and torch.equal(s, markov_icl_stream(200 * L, V, L, 0, 0.1))
    assert not torch.equal(s, markov_icl_stream(200 * L, V, L, 1, 0.1))
    docs = s.reshape(200, L)

    def top_successor_share(d):
        pairs = torch.bincount(d[:-1] * V + d[1:], minlength=V * V).reshape(V, V).float()
        return float(pairs.max(-1).values.sum() / pairs.sum())

    within = sum(top_successor_share(d) for d in docs) / len(docs)
    pooled = torch.cat([torch.stack([d[:-1], d[1:]]) for d in docs], dim=1)
    across = float(
        torch.bincount(pooled[0] * V + pooled[1], minlength=V * V).reshape(V, V).float()
        .max(-1).values.sum() / pooled.shape[1]
    )  # fmt: skip
    # each document has its own sparse transitions; pooled over documents they wash out
    assert within > 0.6 and across < 2.5 / V
    with pytest.raises(ValueError, match="doc_len"):
        markov_icl_stream(100, V, 1, 0)


def _quoted_fraction(docs: torch.Tensor, n: int = 6) -> float:
    """Share of positions whose preceding n-gram already occurred earlier in the document."""
    hits = total = 0
    for d in docs.tolist():
        seen: set[tuple[int, ...]] = set()
        for t in range(n, len(d)):
            gram = tuple(d[t - n : t])  # the n tokens before position t
            hits += gram in seen
            total += 1
            seen.add(gram)
    return hits / total


def test_markov_copy_documents_quote_themselves():
    s = markov_copy_stream(40 * 128, 32, 128, seed=0)
    assert s.shape == (40 * 128,) and torch.equal(s, markov_copy_stream(40 * 128, 32, 128, 0))
    assert markov_copy_stream(100, 32, 128, seed=0).shape == (100,)
    quoted = _quoted_fraction(s.reshape(40, 128))
    plain = _quoted_fraction(markov_stream(40 * 128, 32, 0).reshape(40, 128))
    # about a third of the tokens continue an earlier span of their document
    assert 0.15 < quoted < 0.6 and plain < quoted / 3
    with pytest.raises(ValueError, match="doc_len"):
        markov_copy_stream(100, 16, 4, 0)
    with pytest.raises(ValueError, match="span"):
        markov_copy_stream(100, 16, 64, 0, span=(9, 3))


def test_self_quoting_text_keeps_every_token_once_in_order_and_adds_quotes():
    n, doc_len = 20_000, 64
    stream = torch.arange(n, dtype=torch.int32)  # every token distinct: a quote is a repeat
    out = self_quoting_text(stream, doc_len, seed=0, quote=0.7)
    assert out.dtype == stream.dtype
    assert torch.equal(out, self_quoting_text(stream, doc_len, 0, 0.7))
    assert not torch.equal(out, self_quoting_text(stream, doc_len, 1, 0.7))
    # fresh text = first occurrences: the whole stream, once, in order
    seen: set[int] = set()
    fresh = [t for t in out.tolist() if not (t in seen or seen.add(t))]
    assert fresh == stream.tolist()
    # quotes come from the same document: neighbouring documents share no token
    docs = [set(d) for d in out[: out.numel() // doc_len * doc_len].reshape(-1, doc_len).tolist()]
    assert all(not (a & b) for a, b in itertools.pairwise(docs))
    quoted = 1 - n / out.numel()
    assert 0.2 < quoted < 0.45
    # without quotes it is the stream itself
    assert torch.equal(self_quoting_text(stream, doc_len, 0, 0.0), stream)
    with pytest.raises(ValueError, match="quote"):
        self_quoting_text(stream, doc_len, 0, 1.0)
    with pytest.raises(ValueError, match="stream"):
        self_quoting_text(stream[:0], doc_len, 0, 0.5)


def test_text_quote_is_only_for_text_corpora():
    from interp.experiments.repeated_data import CorpusConfig

    assert CorpusConfig("python-stdlib", text_quote=0.7).text_quote == 0.7
    with pytest.raises(ConfigError, match="text_quote"):
        CorpusConfig("markov-copy", text_quote=0.5)
    with pytest.raises(ConfigError, match="text_doc_len"):
        CorpusConfig("python-stdlib", text_quote=0.5, text_doc_len=4)


def test_byte_level_probe_draws_printable_ascii():
    from interp.experiments.repeated_data import CorpusConfig, probe_vocab_range

    byte_level = CorpusConfig("python-stdlib", TokenizerConfig("byte", 257))
    assert probe_vocab_range(byte_level) == (32, 127)
    assert probe_vocab_range(CorpusConfig("python-stdlib", TokenizerConfig("bpe", 512))) is None
    assert probe_vocab_range(CorpusConfig("markov-copy", markov_vocab=512)) is None
    # the bytes the probe draws are the ones the shipped corpus is made of
    text = "".join(load_documents("python-stdlib", "test")).encode()
    counts = torch.bincount(torch.tensor(list(text)), minlength=256)
    assert counts[32:127].gt(0).all() and counts[128:].sum() < 1e-3 * len(text)
