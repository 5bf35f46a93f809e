"""Induction heads forming during training (Olsson et al. 2022).

Training data (``data.kind``): ``periodic`` (default) — each sequence tiles a
random segment of random period P (4 … seq_len/2) — or ``copied_span`` —
uniform random tokens in which one random-length span is copied to a later
position (:mod:`interp.data.sequences`). Only in-context lookup predicts the
repeats, so a model lowers its loss there by forming an induction circuit
(a previous-token head composing with an induction head in a later layer),
which needs two layers of attention (Elhage et al. 2021).

The config and presets are in :mod:`interp.config.induction`.

Metrics logged at every evaluation: train/test next-token loss and accuracy,
and on a probe of random tokens repeated twice: loss on the first and second
copy, their difference (``copy_gain`` = first − second; before it was
``icl_score`` = second − first, read as −copy_gain from older runs) and top-1
accuracy on the second copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from interp.config.induction import PRESETS, InductionConfig
from interp.data.sequences import (
    induction_training_batch,
    periodic_batch,
    repeated_random_tokens,
)
from interp.experiments.base import Experiment, Setup
from interp.training.metrics import final_metrics, first_step_at_or_above
from interp.training.tasks import GeneratedLMTask, next_token_logits
from interp.training.trainer import TrainResult

if TYPE_CHECKING:
    from interp.training.rundir import Run
    from interp.viz.report import Page

_EVAL_SEED = 2_000_000_007  # the training stream uses seed·1_000_003 + step


def probe_tokens(cfg: InductionConfig) -> torch.Tensor:
    """The fixed repeated-random-token probe of a run (two copies)."""
    d = cfg.data
    return repeated_random_tokens(d.probe_size, d.probe_length, (0, d.vocab), _EVAL_SEED + 2)


def make_task(cfg: InductionConfig) -> GeneratedLMTask:
    d = cfg.data

    def generate(n: int, seed: int) -> torch.Tensor:
        if d.kind == "periodic":
            return periodic_batch(n, d.seq_len, (0, d.vocab), seed, d.min_span)
        return induction_training_batch(n, d.seq_len, (0, d.vocab), seed, d.min_span)

    probe = probe_tokens(cfg)
    L = d.probe_length

    @torch.no_grad()
    def probe_metrics(model: nn.Module) -> dict[tuple[str, str], float]:
        toks = probe.to(next(model.parameters()).device)
        logits = next_token_logits(model, toks).reshape(toks.shape[0], -1, d.vocab)
        target = toks[:, 1:]
        loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [b, pos]
        first = loss[:, : L - 1].mean().item()  # predicting tokens 1 … L−1
        second = loss[:, L:].mean().item()  # predicting tokens L+1 … 2L−1 (copies)
        acc = (logits[:, L:].argmax(-1) == target[:, L:]).double().mean().item()
        return {
            ("probe", "loss_first_copy"): first,
            ("probe", "loss_second_copy"): second,
            ("probe", "copy_gain"): first - second,
            ("probe", "copy_accuracy"): acc,
        }

    return GeneratedLMTask(
        generate=generate,
        train_eval=generate(d.eval_size, _EVAL_SEED),
        test_eval=generate(d.eval_size, _EVAL_SEED + 1),
        probe_metrics=probe_metrics,
    )


def summarize_induction(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Phase change: first evaluated step with probe copy accuracy ≥ 0.5; final
    losses and probe metrics."""
    return {
        "t_induction": first_step_at_or_above(rows, "probe", "copy_accuracy", 0.5),
        **final_metrics(rows),
    }


class Induction(Experiment):
    """Induction heads: train, time the phase change, sweep the head analyzers."""

    name = "induction"
    summary_keys = ("t_induction", "final_test_loss", "final_probe_loss_first_copy",
                    "final_probe_loss_second_copy", "final_probe_copy_accuracy")  # fmt: skip

    def make_task(self, cfg: Any) -> GeneratedLMTask:
        return make_task(cfg)

    def summarize(self, cfg: Any, setup: Setup, result: TrainResult) -> dict[str, Any]:
        rows = result.store.read_metric_rows()
        return {**summarize_induction(rows), "steps": result.summary["steps"]}

    def analyzers(self, run: Run) -> list[Any]:
        from interp.analysis import HEAD_ANALYZERS

        return list(HEAD_ANALYZERS)

    def probe(self, run: Run) -> torch.Tensor:
        """The first example of the run's repeated-random-token probe."""
        return probe_tokens(run.config)[0]

    def report(self, run: Run) -> Page:
        return induction_page(run, self.probe(run))


def induction_page(run: Run, probe: torch.Tensor) -> Page:
    """Head analyzers over checkpoints, the phase change, composition at the
    last checkpoint and circuitsvis attention views of the probe (offline)."""
    from interp.analysis import (
        HEAD_ANALYZERS,
        attention_patterns,
        composition_scores,
        composition_vs_init,
    )
    from interp.analysis.sweep import sweep
    from interp.viz.circuits import circuitsvis_bundle, layer_attention_views
    from interp.viz.figures import (
        composition_figure,
        head_score_heatmap,
        phase_change_figure,
        training_curves,
    )
    from interp.viz.report import Page

    df = sweep(run, list(HEAD_ANALYZERS))
    summary = run.summary() or {}
    marks = {"t_induction": summary.get("t_induction")}
    final = run.load(run.last_step)
    heatmaps = ("induction_scores", "prev_token_scores", "prefix_matching_scores",
                "copying_scores", "logit_copying_scores")  # fmt: skip
    figures = [
        phase_change_figure(df, marks=marks),
        training_curves(run.metrics(), title="next-token loss and accuracy"),
        *[head_score_heatmap(df, m) for m in heatmaps],
        composition_figure(composition_scores(final), f"composition at step {run.last_step}"),
        composition_figure(
            composition_vs_init(final, run),
            f"composition at step {run.last_step} over its random-init level (1 = chance)",
        ),
    ]
    from interp.experiments.llc_runs import cached_llc

    llc_df = cached_llc(run)
    if len(llc_df):
        import pandas as pd

        from interp.viz.figures import llc_figure

        both = pd.concat([llc_df, df], ignore_index=True)
        title = "local learning coefficient, copy gain and induction score"
        figures.insert(1, llc_figure(both, ("copy_gain", "induction_scores"), marks, title))
    pats = attention_patterns(final, probe[None])[0]
    labels = [str(int(t)) for t in probe]
    views = layer_attention_views(
        pats, labels, f"attention at step {run.last_step}, layer {{layer}} (probe: two copies)"
    )
    cfg = run.config
    info = {
        "run": str(run.path),
        "data": f"{cfg.data.kind} sequences, vocab {cfg.data.vocab}, length {cfg.data.seq_len}",
        "model": f"{cfg.model.n_layers} layers × {cfg.model.n_heads} heads, "
        f"d_model {cfg.model.d_model}" + (", attention-only" if cfg.model.d_mlp is None else ""),
        "seed": cfg.seed,
        **summary,
    }
    return Page(
        f"induction report: {run.path.name}", figures, info, extra_body="\n".join(views),
        extra_head=f"<script>{circuitsvis_bundle()}</script>",
    )  # fmt: skip


EXPERIMENT = Induction()


def preset(
    name: str | None = None, seed: int | None = None, overrides: Sequence[str] = ()
) -> InductionConfig:
    """A resolved preset with ``seed`` and ``key=value`` overrides applied."""
    return EXPERIMENT.preset(name, seed, overrides)


def run(cfg: InductionConfig, run_dir: str, **kw: Any) -> TrainResult:
    """Train one induction run into ``run_dir`` (resuming if it holds this config)."""
    return EXPERIMENT.train(cfg, run_dir, **kw)


def format_summary(summary: Mapping[str, Any]) -> str:
    return EXPERIMENT.format_summary(summary)


__all__ = [
    "EXPERIMENT",
    "PRESETS",
    "Induction",
    "InductionConfig",
    "format_summary",
    "induction_page",
    "make_task",
    "preset",
    "probe_tokens",
    "run",
    "summarize_induction",
]
