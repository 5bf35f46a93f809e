"""Fourier progress measures for modular addition (Nanda et al. 2023, §4–5).

A network that has grokked (a + b) mod p represents tokens by a few *key
frequencies* w_k = 2πk/p and builds logits out of cos(w_k(a + b − c)). The
measures here track that structure across checkpoints:

* :func:`fourier_basis` — the orthonormal real Fourier basis of Z_p (§4.1);
* :func:`embedding_frequency_norms` — norm of the embedding along each
  frequency (cos and sin directions together; Fig. 3);
* :func:`key_frequencies` — the frequencies that stand out, found from the
  weights or the logits (never hard-coded);
* :func:`restricted_loss` / :func:`excluded_loss` — loss with the logits
  projected onto / away from the key-frequency directions cos(w_k(a+b)),
  sin(w_k(a+b)) (§5.1; restricted on all pairs, excluded on training pairs);
* :func:`sum_squared_weights` (§5.1, "total sum of squared weights");
* :func:`gini` of the embedding's frequency norms (sparsity in the Fourier
  basis; used in the same way by Minegishi et al. §5).

Everything works on the TL-bridge transformer (tokens ``a b =``) and on
:class:`~interp.models.HookedMLP` (operand pairs).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.config.core import InputError
from interp.data.modular import ModularData, all_pairs, apply_op
from interp.models.mlp import HookedMLP


# ------------------------------------------------------------------ the basis
def fourier_basis(p: int) -> Float[Tensor, "p p"]:
    """Orthonormal real Fourier basis of Z_p, one basis vector per row.

    Row 0 is the constant; rows 2k−1, 2k are cos(w_k x), sin(w_k x) for
    k = 1 … ⌊(p−1)/2⌋; for even p the last row is cos(πx).
    """
    if p < 2:
        raise InputError(f"p must be >= 2, got {p}")
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        rows.append(torch.sin(2 * math.pi * k * x / p))
    if p % 2 == 0:
        rows.append(torch.cos(math.pi * x))
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True)


def basis_frequencies(p: int) -> Int[Tensor, " p"]:
    """Frequency k of each row of :func:`fourier_basis` (0 for the constant)."""
    freqs = [0]
    for k in range(1, (p - 1) // 2 + 1):
        freqs += [k, k]
    if p % 2 == 0:
        freqs.append(p // 2)
    return torch.tensor(freqs)


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies of Z_p."""
    return p // 2


# ---------------------------------------------------------- embedding measures
def token_embedding(model: nn.Module, p: int) -> Float[Tensor, "p d"]:
    """Rows of the embedding for the p number tokens (drops ``=`` and extras)."""
    W_E = model.W_E
    if W_E.shape[0] < p:
        raise InputError(f"embedding has {W_E.shape[0]} rows, fewer than p={p}")
    return W_E[:p].detach().to(torch.float64)


def embedding_fourier_components(W_E: Float[Tensor, "p d"]) -> Float[Tensor, " p"]:
    """Norm of ``F · W_E`` along each Fourier basis row (constant, cos 1, sin 1, …)."""
    p = W_E.shape[0]
    return (fourier_basis(p).to(W_E) @ W_E.to(torch.float64)).norm(dim=1)


def embedding_frequency_norms(W_E: Float[Tensor, "p d"]) -> Float[Tensor, " n_freq"]:
    """Per frequency k = 1 … p//2, the norm of the embedding's cos_k and sin_k
    components together (Nanda et al. Fig. 3). Index i holds frequency i + 1."""
    p = W_E.shape[0]
    comps = embedding_fourier_components(W_E)
    freqs = basis_frequencies(p)
    out = torch.zeros(n_frequencies(p), dtype=torch.float64)
    for k in range(1, n_frequencies(p) + 1):
        out[k - 1] = comps[freqs == k].pow(2).sum().sqrt()
    return out


def gini(x: Float[Tensor, " n"]) -> float:
    """Gini coefficient of non-negative values: 0 = all equal, → 1 = one value
    holds all (the sorted-values formula; Nanda et al. §5.1 apply it to the
    Fourier norms of W_E and W_L)."""
    x = x.detach().to(torch.float64).flatten()
    if x.numel() == 0:
        raise InputError("gini of an empty tensor")
    if bool((x < 0).any()):
        raise InputError("gini needs non-negative values")
    total = x.sum()
    if total == 0:
        return 0.0
    xs = torch.sort(x).values
    n = xs.numel()
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    return float((2 * (ranks * xs).sum()) / (n * total) - (n + 1) / n)


def pick_key_frequencies(
    scores: Float[Tensor, " n_freq"], max_keys: int | None = None
) -> list[int]:
    """Frequencies (1-based) that stand out: the top group before the largest
    relative drop in the sorted scores.

    Sort the per-frequency scores in decreasing order and cut where
    ``s_i / s_{i+1}`` is largest among the first ``max_keys`` positions
    (default: half the frequencies). An embedding that holds only frequencies
    {k1, k2} gives exactly [k1, k2] (the drop to zero is infinite). The rule
    is ours: Nanda et al. name each run's key frequencies from its Fourier
    spectra.
    """
    scores = scores.detach().to(torch.float64)
    n = scores.numel()
    if n == 0:
        raise InputError("no frequencies to choose from")
    if n == 1:
        return [1]
    max_keys = max(1, min(max_keys or max(1, n // 2), n - 1))
    order = torch.argsort(scores, descending=True)
    s = scores[order]
    head, nxt = s[:max_keys], s[1 : max_keys + 1]
    ratios = torch.where(nxt > 0, head / nxt.clamp_min(1e-300), torch.full_like(head, math.inf))
    ratios = torch.where(head > 0, ratios, torch.zeros_like(ratios))
    cut = int(torch.argmax(ratios).item()) + 1
    return sorted(int(i) + 1 for i in order[:cut])


# --------------------------------------------------------------- logit measures
def is_mlp(model: nn.Module) -> bool:
    return isinstance(model, HookedMLP)


@torch.no_grad()
def logits_on_pairs(model: nn.Module, pairs: Int[Tensor, "n 2"], p: int) -> Float[Tensor, "n c"]:
    """The model's output logits for operand pairs, in either input form."""
    device = next(model.parameters()).device
    pairs = pairs.to(device)
    if is_mlp(model):
        return model(pairs)
    eq = torch.full((pairs.shape[0], 1), p, dtype=pairs.dtype, device=device)
    return model(torch.cat([pairs, eq], dim=1))[:, -1]


def logit_grid(model: nn.Module, p: int) -> Float[Tensor, "p p c"]:
    """Logits for every ordered pair (a, b): ``grid[a, b, c]``."""
    logits = logits_on_pairs(model, all_pairs(p, "ordered"), p)
    return logits.reshape(p, p, -1).to(torch.float64).cpu()


def _sum_directions(p: int, op: str) -> Float[Tensor, "n_freq 2 p p"]:
    """Unit vectors cos(w_k s), sin(w_k s) on the (a, b) grid, s = a + b (or a − b)."""
    if op not in ("+", "-"):
        raise InputError(
            f"Fourier restricted/excluded loss is defined for op '+' or '-', got {op!r}"
        )
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    s = a + b if op == "+" else a - b
    dirs = []
    for k in range(1, n_frequencies(p) + 1):
        w = 2 * math.pi * k / p
        c, si = torch.cos(w * s), torch.sin(w * s)
        pair = []
        for v in (c, si):
            nrm = v.norm()
            pair.append(v / nrm if nrm > 1e-9 else torch.zeros_like(v))
        dirs.append(torch.stack(pair))
    return torch.stack(dirs)


def key_frequency_components(
    grid: Float[Tensor, "p p c"], key_freqs: list[int], op: str = "+"
) -> Float[Tensor, "p p c"]:
    """The part of the logits along cos/sin(w_k(a∘b)) for k in ``key_freqs``."""
    p = grid.shape[0]
    _check_freqs(key_freqs, p)
    dirs = _sum_directions(p, op)[[k - 1 for k in key_freqs]]  # [K, 2, p, p]
    coef = torch.einsum("abc,ktab->ktc", grid, dirs)
    return torch.einsum("ktc,ktab->abc", coef, dirs)


def restricted_logits(
    grid: Float[Tensor, "p p c"], key_freqs: list[int], op: str = "+"
) -> Float[Tensor, "p p c"]:
    """Logits kept only along the key-frequency directions plus each output's
    mean over the grid (Nanda et al. §5.1, "restricted loss")."""
    return grid.mean(dim=(0, 1), keepdim=True) + key_frequency_components(grid, key_freqs, op)


def excluded_logits(
    grid: Float[Tensor, "p p c"], key_freqs: list[int], op: str = "+"
) -> Float[Tensor, "p p c"]:
    """Logits with the key-frequency directions removed (§5.1, "excluded loss")."""
    return grid - key_frequency_components(grid, key_freqs, op)


def logit_frequency_shares(grid: Float[Tensor, "p p c"], op: str = "+") -> Float[Tensor, " n_freq"]:
    """Share of the logits' variance (over the grid, summed over outputs) along
    each frequency's cos/sin(w_k(a∘b)) directions (after Nanda et al. §5.1's
    directions for the restricted loss; the share itself is ours)."""
    p = grid.shape[0]
    centred = grid - grid.mean(dim=(0, 1), keepdim=True)
    coef = torch.einsum("abc,ktab->ktc", centred, _sum_directions(p, op))
    energy = coef.pow(2).sum(dim=(1, 2))
    total = centred.pow(2).sum()
    return energy / total if total > 0 else energy


def _check_freqs(key_freqs: list[int], p: int) -> None:
    if not key_freqs:
        raise InputError("key_freqs is empty")
    bad = [k for k in key_freqs if not 1 <= int(k) <= n_frequencies(p)]
    if bad:
        raise InputError(f"key frequencies {bad} are outside 1..{n_frequencies(p)} for p={p}")


def _grid_loss(grid: Float[Tensor, "p p c"], pairs: Int[Tensor, "n 2"], p: int, op: str) -> float:
    logits = grid[pairs[:, 0], pairs[:, 1]]
    labels = apply_op(pairs[:, 0], pairs[:, 1], p, op)
    return F.cross_entropy(logits, labels).item()


def restricted_loss(
    model: nn.Module,
    data: ModularData | int,
    key_freqs: list[int],
    op: str = "+",
    split: Literal["test", "train", "all"] = "test",
) -> float:
    """Cross-entropy of the key-frequency-restricted logits (Nanda et al.
    §5.1) on the ``split`` pairs of ``data``: the test pairs by default, as
    Nanda's public progress-measures code evaluates it; ``"all"`` on all p²
    ordered pairs (then ``data`` may be just p)."""
    if isinstance(data, int):
        if split != "all":
            raise InputError(f"restricted_loss on split {split!r} needs the run's data, not just p")
        p, pairs = data, all_pairs(data)
    else:
        p, op = data.p, data.op
        pairs = {"test": data.pairs_test, "train": data.pairs_train}.get(split)
        if split == "all":
            pairs = all_pairs(p)
        elif pairs is None:
            raise InputError(f"split must be 'test', 'train' or 'all', got {split!r}")
    grid = logit_grid(model, p)
    return _grid_loss(restricted_logits(grid, key_freqs, op), pairs.cpu(), p, op)


def excluded_loss(model: nn.Module, data: ModularData, key_freqs: list[int]) -> float:
    """Cross-entropy on the *training* pairs with the key frequencies removed
    (Nanda et al. §5.1, "excluded loss"; the training set, as in their code)."""
    grid = logit_grid(model, data.p)
    return _grid_loss(
        excluded_logits(grid, key_freqs, data.op), data.pairs_train.cpu(), data.p, data.op
    )


def key_frequencies(
    model: nn.Module, p: int, source: str = "embedding", op: str = "+", max_keys: int | None = None
) -> list[int]:
    """Key frequencies read off the model: from the embedding's frequency norms
    (``source="embedding"``) or from the logits' frequency shares (``"logits"``)."""
    if source == "embedding":
        scores = embedding_frequency_norms(token_embedding(model, p))
    elif source == "logits":
        scores = logit_frequency_shares(logit_grid(model, p), op)
    else:
        raise InputError(f"source must be 'embedding' or 'logits', got {source!r}")
    return pick_key_frequencies(scores, max_keys)


def neuron_logit_map(model: nn.Module) -> Float[Tensor, "vocab_out d_mlp"] | None:
    """W_L, the map from the last MLP's neurons to the logits (Nanda et al.
    §4: W_L = W_U W_out): ``(W_out W_U)ᵀ`` for a transformer with an MLP, the
    output layer of an MLP model; None for a model without one."""
    hidden, out = getattr(model, "hidden", None), getattr(model, "out", None)
    if isinstance(hidden, nn.Linear) and isinstance(out, nn.Linear):  # HookedMLP
        w = out.weight.detach().double()
        readout = getattr(model, "readout", None)
        if isinstance(readout, nn.Linear):
            w = w @ readout.weight.detach().double()
        return w
    cfg = getattr(model, "cfg", None)
    if cfg is None or not getattr(cfg, "d_mlp", None) or getattr(cfg, "attn_only", False):
        return None
    W_out = model.W_out.detach().double()  # [layer, d_mlp, d_model]
    return (W_out[-1] @ model.W_U.detach().double()).T


def sum_squared_weights(model: nn.Module) -> float:
    """Σ w² over every trainable parameter (Nanda et al. §5.1)."""
    return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()))


def progress_measures(
    model: nn.Module, data: ModularData, key_freqs: list[int]
) -> dict[str, float]:
    """All scalar progress measures of one checkpoint for fixed key frequencies.

    Returns train/test loss and accuracy; restricted loss on the test pairs
    (Nanda's code) and on all pairs (``restricted_loss_all_pairs``); excluded
    loss on the training pairs; the sum of squared weights; the Gini
    coefficients of the frequency norms of W_E (``embedding_gini``) and of
    the neuron-to-logit map W_L (``neuron_logit_gini``, for models with an
    MLP; Nanda et al. §5.1 track both); and the share of logit variance in
    the key frequencies.
    """
    p, op = data.p, data.op
    grid = logit_grid(model, p)
    out: dict[str, float] = {}
    for split, pairs in (("train", data.pairs_train), ("test", data.pairs_test)):
        pairs = pairs.cpu()
        logits = grid[pairs[:, 0], pairs[:, 1]]
        labels = apply_op(pairs[:, 0], pairs[:, 1], p, op)
        out[f"{split}_loss"] = F.cross_entropy(logits, labels).item()
        out[f"{split}_accuracy"] = (logits.argmax(-1) == labels).double().mean().item()
    if op in ("+", "-"):
        restricted = restricted_logits(grid, key_freqs, op)
        out["restricted_loss"] = _grid_loss(restricted, data.pairs_test.cpu(), p, op)
        out["restricted_loss_all_pairs"] = _grid_loss(restricted, all_pairs(p), p, op)
        out["excluded_loss"] = _grid_loss(
            excluded_logits(grid, key_freqs, op), data.pairs_train.cpu(), p, op
        )
        shares = logit_frequency_shares(grid, op)
        out["key_freq_logit_share"] = float(shares[[k - 1 for k in key_freqs]].sum())
    norms = embedding_frequency_norms(token_embedding(model, p))
    out["embedding_gini"] = gini(norms)
    w_l = neuron_logit_map(model)
    if w_l is not None and w_l.shape[0] >= p:
        out["neuron_logit_gini"] = gini(embedding_frequency_norms(w_l[:p]))
    out["sum_squared_weights"] = sum_squared_weights(model)
    return out


# ------------------------------------------------------------ run-level analyzer
def run_data(run) -> ModularData:
    """The modular-arithmetic split a grokking run was trained on."""
    from interp.data.modular import make_modular

    cfg = run.config
    if not hasattr(cfg, "data") or not hasattr(cfg.data, "p"):
        raise InputError(f"{run.path} is not a modular-arithmetic run")
    return make_modular(cfg.data, seed=cfg.seed)


_KEY_CACHE: dict[tuple[str, str, str], list[int]] = {}


def run_key_frequencies(run, step: int | None = None, source: str = "logits") -> list[int]:
    """Key frequencies of a run, read off its last (or given) checkpoint.

    Nanda et al. fix the key frequencies from the fully trained model and track
    every measure against them; we do the same. Memoised per checkpoint sha.
    """
    step = run.last_step if step is None else step
    key = (str(run.path), run.sha(step), source)
    if key not in _KEY_CACHE:
        cfg = run.config
        _KEY_CACHE[key] = final_key_frequencies(run.load(step), cfg.data.p, cfg.data.op, source)
    return list(_KEY_CACHE[key])


def final_key_frequencies(
    model: nn.Module, p: int, op: str = "+", source: str = "logits"
) -> list[int]:
    """The key frequencies of a trained model as a run's summary records them:
    read off the logits for + and − (the directions cos/sin(w(a±b)) exist
    only there), off the embedding otherwise."""
    src = source if op in ("+", "-") else "embedding"
    return key_frequencies(model, p, source=src, op=op)


def fourier_progress(model: nn.Module, run) -> dict[str, float]:
    """Sweep analyzer: :func:`progress_measures` with the run's key frequencies
    (from its last checkpoint) on the run's own train/test split."""
    return progress_measures(model, run_data(run), run_key_frequencies(run))


fourier_progress.cache_token = lambda run: ",".join(map(str, run_key_frequencies(run)))  # type: ignore[attr-defined]
