"""Ticket structure across checkpoints (beyond Minegishi et al.): when does the
final ticket's mask appear during training, and what does it keep?

* :func:`masks_over_checkpoints` — the magnitude mask of every checkpoint at a
  fixed rate;
* :func:`overlap_table` — Jaccard overlap between every pair of those masks
  (a tidy DataFrame: step_a, step_b, jaccard);
* :func:`kept_key_frequency_share` — of the embedding weight a mask keeps, the
  share (of squared norm) lying in the key-frequency directions found by the
  Fourier analyzer (Nanda et al. §4): 1 when the ticket keeps only the Fourier
  circuit's embedding, ≈ 2|K|/p for an unstructured one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

from interp.analysis.fourier import basis_frequencies, fourier_basis
from interp.config.core import InputError
from interp.pruning.masks import Mask, jaccard, magnitude_mask
from interp.training.rundir import Run


def masks_over_checkpoints(
    run: Run, rate: float, scope: str = "global", steps: Sequence[int] | None = None
) -> dict[int, Mask]:
    """Magnitude mask (removing ``rate``) of each checkpoint of ``run``."""
    chosen = run.steps if steps is None else list(steps)
    return {s: magnitude_mask(run.load(s), rate, scope) for s in chosen}  # type: ignore[arg-type]


def overlap_table(masks: Mapping[int, Mask]) -> pd.DataFrame:
    """Jaccard overlap of every ordered pair of masks: columns step_a, step_b, jaccard."""
    steps = sorted(masks)
    rows = [
        {"step_a": a, "step_b": b, "jaccard": jaccard(masks[a], masks[b])}
        for a in steps
        for b in steps
    ]
    return pd.DataFrame(rows, columns=["step_a", "step_b", "jaccard"])


def kept_key_frequency_share(embedding: Tensor, mask: Tensor, key_freqs: Sequence[int]) -> float:
    """Share of ‖F·(W_E ⊙ mask)‖² along the key frequencies' cos/sin rows.

    ``embedding`` and ``mask`` are ``[p, d]`` (number tokens × features).
    """
    if embedding.shape != mask.shape:
        raise InputError(f"embedding {tuple(embedding.shape)} and mask {tuple(mask.shape)} differ")
    p = embedding.shape[0]
    kept = embedding.detach().double() * mask.double()
    energy = (fourier_basis(p) @ kept).pow(2).sum(dim=1)  # per basis row
    total = energy.sum()
    if total == 0:
        return 0.0
    in_keys = torch.isin(basis_frequencies(p), torch.tensor(list(key_freqs)))
    return float(energy[in_keys].sum() / total)


def embedding_and_mask(
    model: torch.nn.Module, mask: Mapping[str, Tensor], p: int
) -> tuple[Tensor, Tensor]:
    """The number-token embedding rows and their mask, for the TL bridge
    (``embed.weight``) or the operand MLP (its embedding tables side by side)."""
    if "embed.weight" in mask:
        return model.W_E[:p], mask["embed.weight"][:p]
    if "embed_a.weight" in mask:
        parts = [mask["embed_a.weight"]]
        if "embed_b.weight" in mask:
            parts.append(mask["embed_b.weight"])
        return model.W_E[:p], torch.cat(parts, dim=-1)[:p]
    raise InputError(f"the mask covers no embedding matrix: {sorted(mask)}")


def ticket_structure(run: Run, rate: float, scope: str = "global") -> pd.DataFrame:
    """Per checkpoint: Jaccard with the last checkpoint's mask and the share of
    kept embedding weight in the run's key frequencies (columns: step,
    jaccard_with_final, kept_key_frequency_share)."""
    from interp.analysis.fourier import run_key_frequencies

    masks = masks_over_checkpoints(run, rate, scope)
    final = masks[max(masks)]
    keys = run_key_frequencies(run)
    p = run.config.data.p
    rows = []
    for step, mask in sorted(masks.items()):
        emb, m = embedding_and_mask(run.load(step), mask, p)
        rows.append(
            {
                "step": step,
                "jaccard_with_final": jaccard(mask, final),
                "kept_key_frequency_share": kept_key_frequency_share(emb, m, keys),
            }
        )
    return pd.DataFrame(rows)
