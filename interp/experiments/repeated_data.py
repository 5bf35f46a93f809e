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
parameter count (for the effective-size fit), verbatim memorisation of the
repeated subset (:func:`interp.analysis.memorization.verbatim_fraction`) and
the largest prefix-matching and induction scores of any head at the end
(random-token probes from the run's :func:`probe_vocab_range`). The config and
presets are in :mod:`interp.config.repeated_data`.
The run directory holds the tokenizer (``tokenizer.json``) and the data
accounting (``data.json``).

The number of steps is derived: ``D / (seq_len · batch_size)`` (one pass).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from interp.config.data import CorpusConfig, EvalConfig
from interp.config.repeated_data import PRESETS, SIZES, RepeatedDataConfig
from interp.data.corpus import (
    TextTokenizer,
    corpus_manifest,
    load_documents,
    token_stream,
    train_tokenizer,
)
from interp.data.repeated import RepeatedData, chop, mix_repeated
from interp.data.sequences import (
    markov_copy_stream,
    markov_icl_stream,
    markov_stream,
    self_quoting_text,
)
from interp.experiments.base import Experiment, Setup
from interp.training.files import atomic_write_json, cache_dir
from interp.training.metrics import final_metrics
from interp.training.tasks import SequenceLMTask
from interp.training.trainer import TrainResult

if TYPE_CHECKING:
    from interp.training.rundir import Run, RunStore
    from interp.viz.report import Page


# --- data -----------------------------------------------------------------------------


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


def final_head_scores(model: nn.Module, cfg: RepeatedDataConfig) -> dict[str, float]:
    """Max over heads of the prefix-matching and induction scores (Olsson et
    al.; random-token probes) of ``model``, the random tokens drawn from the
    run's probe range (printable ASCII for byte-level text,
    :func:`probe_vocab_range`)."""
    from interp.analysis import induction_scores, prefix_matching_scores

    with torch.no_grad():
        pm, ind = (fn(model) for fn in run_head_analyzers(cfg, (prefix_matching_scores,
                                                                 induction_scores)))  # fmt: skip
    return {"prefix_matching_max": float(pm.max()), "induction_max": float(ind.max())}


class RepeatedDataLM(Experiment):
    """One language model of the repeated-data grid."""

    name = "repeated-data"
    summary_keys = ("final_test_loss", "final_repeated_loss", "final_unique_loss",
                    "final_copy_gain", "verbatim_repeated_exact", "data_repeated_fraction",
                    "data_repeated_epochs", "non_embedding_params", "steps")  # fmt: skip

    def make_task(self, cfg: RepeatedDataConfig) -> SequenceLMTask:
        return make_task(cfg)

    def check(self, cfg: RepeatedDataConfig) -> None:
        pass  # the config itself checks everything the task needs

    def build(
        self, cfg: RepeatedDataConfig, store: RunStore, device: torch.device, quiet: bool
    ) -> Setup:
        from interp.models import make_model

        data = make_data(cfg)
        if data.tokenizer is not None:
            data.tokenizer.save(store.path / "tokenizer.json")
        atomic_write_json(store.path / "data.json", data.mixed.accounting())
        model = make_model(cfg.model, seed=cfg.seed, device=device)
        return Setup(model, make_task(cfg, data), context=data)

    def summarize(
        self, cfg: RepeatedDataConfig, setup: Setup, result: TrainResult
    ) -> dict[str, Any]:
        summary = summarize_run(result.store.read_metric_rows(), result.model, cfg, setup.context)
        summary["steps"] = result.summary["steps"]
        summary.update(final_head_scores(result.model, cfg))
        return summary

    def analyzers(self, run: Run) -> list[Any]:
        return list(run_head_analyzers(run.config))

    def analyzer(self, run: Run, name: str) -> Any:
        return run_head_analyzers(run.config, (super().analyzer(run, name),))[0]

    def probe(self, run: Run) -> torch.Tensor:
        """Held-out text: the first copy passage repeated (``eval.copies`` times)."""
        data = make_data(run.config)
        return data.copy_passages[0].repeat(run.config.eval.copies)

    def report(self, run: Run) -> Page:
        return lm_page(run)


def lm_page(run: Run) -> Page:
    """A repeated-data language-model run: its losses over training (held-out,
    repeated subset, unique, copying) and head scores over checkpoints."""
    import plotly.graph_objects as go

    from interp.analysis import induction_scores, prefix_matching_scores, prev_token_scores
    from interp.analysis.sweep import analyzer_name, sweep
    from interp.viz.figures import head_score_heatmap
    from interp.viz.report import Page

    m = run.metrics()
    loss = go.Figure()
    for split, metric in (("test", "loss"), ("repeated", "loss"), ("unique", "loss"),
                          ("copy", "loss_first"), ("copy", "loss_later")):  # fmt: skip
        d = m[(m["split"] == split) & (m["metric"] == metric) & (m["step"] > 0)].sort_values("step")
        if not d.empty:
            loss.add_trace(go.Scatter(x=d["step"], y=d["value"], name=f"{split} {metric}"))
    loss.update_xaxes(type="log", title_text="step")
    loss.update_yaxes(title_text="nats / token")
    loss.update_layout(title="Losses over training", height=420)
    probes = (prefix_matching_scores, induction_scores, prev_token_scores)
    df = sweep(run, list(run_head_analyzers(run.config, probes)))
    figures = [loss, *[head_score_heatmap(df, analyzer_name(fn)) for fn in probes]]
    return Page(f"LM report: {run.path.name}", figures, {"run": str(run.path),
                                                         **(run.summary() or {})})  # fmt: skip


EXPERIMENT = RepeatedDataLM()


def preset(
    name: str | None = None, seed: int | None = None, overrides: Sequence[str] = ()
) -> RepeatedDataConfig:
    """A resolved preset with ``seed`` and ``key=value`` overrides applied."""
    return EXPERIMENT.preset(name, seed, overrides)


def run(cfg: RepeatedDataConfig, run_dir: str, **kw: Any) -> TrainResult:
    """Train one repeated-data run into ``run_dir`` (resumable)."""
    return EXPERIMENT.train(cfg, run_dir, **kw)


def format_summary(summary: Mapping[str, Any]) -> str:
    return EXPERIMENT.format_summary(summary)


__all__ = [
    "EXPERIMENT", "PRESETS", "SIZES", "CorpusConfig", "EvalConfig", "RepeatedDataConfig",
    "RepeatedDataLM", "corpus_streams", "final_head_scores", "make_data", "make_task",
    "non_embedding_params", "preset", "probe_vocab_range", "run", "run_head_analyzers",
]  # fmt: skip
