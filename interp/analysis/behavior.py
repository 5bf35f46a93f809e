"""Behavioural measures from forward passes.

* :func:`per_token_loss` — next-token cross-entropy at every position;
* :func:`copy_gain` — loss at an early index of a repeated random segment
  minus loss at a late one (the second copy): how much the repeat is
  predicted from context, on synthetic tokens. It is not Olsson et al.'s
  in-context-learning score, which is :func:`olsson_icl_score`;
* :func:`olsson_icl_score` — Olsson et al. 2022 §2: loss at token 500 minus
  loss at token 50 of natural text;
* :func:`logit_copying_scores` — the copying score of Bansal et al. 2023
  (after Olsson et al. 2022's copying criterion), in [0, 1];
* :func:`signed_logit_copying` — this library's signed variant, in [−1, 1];
* :func:`head_ablation_losses` — the rise in loss when one head's output is
  mean- or zero-ablated (Olsson et al. 2022 ablate heads this way to tie
  induction heads to in-context learning).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.analysis.heads import (
    _check_tokens,
    default_probe,
    induction_targets,
    model_dims,
    run_cache,
)
from interp.config.core import InputError
from interp.data.sequences import random_segments


def per_token_loss(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"],
    *,
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "batch seq_minus_1"]:
    """Cross-entropy of predicting token i+1 from positions ≤ i; NaN where
    token i+1 is not one the model can output (an input-only token, e.g. the
    ``=`` of the grokking models, whose outputs are the p residues)."""
    logits = run_cache(model, tokens, memo)["logits"]  # validates the probe
    return _next_token_loss(logits[:, :-1], tokens[:, 1:])


def _next_token_loss(
    logits: Float[Tensor, "batch pos vocab"], targets: Int[Tensor, "batch pos"]
) -> Float[Tensor, "batch pos"]:
    """Cross-entropy in float64, a few rows at a time (a 50k vocabulary in
    float64 is 0.4 MB per position); NaN for targets the model cannot output."""
    targets = targets.to(logits.device)
    n_out = logits.shape[-1]
    valid = targets < n_out
    rows = max(1, (1 << 25) // max(1, logits.shape[1] * n_out))
    parts = []
    for i in range(0, logits.shape[0], rows):
        lg = logits[i : i + rows].double()
        tg = targets[i : i + rows].clamp(max=n_out - 1)
        loss = F.cross_entropy(lg.reshape(-1, n_out), tg.reshape(-1), reduction="none")
        parts.append(loss.reshape(tg.shape))
    loss = torch.cat(parts) if parts else torch.zeros(targets.shape, dtype=torch.float64)
    return torch.where(valid, loss, torch.full_like(loss, math.nan))


def copy_gain(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    early: int | None = None,
    late: int | None = None,
    memo: dict[Any, Any] | None = None,
) -> dict[str, float]:
    """Loss at token index ``early`` minus loss at ``late`` (indices of the
    predicted token; > 0 when the later token is predicted better). Defaults:
    on :func:`default_probe` (random tokens repeated twice), ``early`` = the
    middle of the first copy, ``late`` = the middle of the second, so it
    measures copying from context. It has Olsson et al.'s form with other
    tokens and indices: their in-context-learning score (loss at 500 minus
    loss at 50, natural text) is :func:`olsson_icl_score`.

    Returns ``copy_gain`` and both losses.
    """
    tokens = default_probe(model) if tokens is None else tokens
    seq = tokens.shape[1]
    half = seq // 2
    early = half // 2 if early is None else early
    late = half + half // 2 if late is None else late
    for name, idx in (("early", early), ("late", late)):
        if not 1 <= idx < seq:
            raise InputError(f"{name} index {idx} must be in [1, {seq}) for sequences of {seq}")
    loss = per_token_loss(model, tokens, memo=memo)  # index i predicts token i+1
    e, lt = loss[:, early - 1].mean().item(), loss[:, late - 1].mean().item()
    return {"copy_gain": e - lt, "loss_early": e, "loss_late": lt}


def icl_score(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    early: int | None = None,
    late: int | None = None,
    memo: dict[Any, Any] | None = None,
) -> dict[str, float]:
    """Deprecated: :func:`copy_gain` (``icl_score`` = −copy_gain, loss late
    minus early); Olsson et al.'s score is :func:`olsson_icl_score`."""
    import warnings

    warnings.warn(
        "icl_score is now copy_gain (= −icl_score); Olsson's score is olsson_icl_score",
        DeprecationWarning,
        stacklevel=2,
    )
    out = copy_gain(model, tokens, early=early, late=late, memo=memo)
    return {"icl_score": -out["copy_gain"], "loss_early": out["loss_early"],
            "loss_late": out["loss_late"]}  # fmt: skip


def olsson_icl_score(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"],
    *,
    early: int = 50,
    late: int = 500,
    batch: int = 4,
    memo: dict[Any, Any] | None = None,
) -> dict[str, float]:
    """Olsson et al. 2022's in-context-learning score (§2, "in-context
    learning score"): the loss on token ``late`` (500) of natural text minus
    the loss on token ``early`` (50), averaged over examples; negative when
    later context helps. Indices count tokens from 0, so the sequences need
    more than ``late`` tokens (a context of 512, as the paper's models).
    :func:`~interp.analysis.probes.natural_text` gives such sequences of the
    shipped corpus for a tokenizer. Runs ``batch`` sequences at a time and
    keeps only the two positions' logits (``memo`` is accepted for the sweep
    and not used: no other analyzer reads these long sequences)."""
    if tokens.shape[1] <= late:
        raise InputError(
            f"Olsson's ICL score needs sequences of more than {late} tokens (a context of 512); "
            f"got {tokens.shape[1]}"
        )
    _check_tokens(model, tokens)
    at = torch.tensor([early - 1, late - 1])  # logits at index i predict token i+1
    device = next(model.parameters()).device
    losses = []
    with torch.no_grad():
        for i in range(0, tokens.shape[0], batch):
            chunk = tokens[i : i + batch].to(device)
            logits = model(chunk[:, :late])[:, at.to(device)]
            losses.append(_next_token_loss(logits, chunk[:, at + 1]))
    loss = torch.cat(losses)
    e, lt = loss[:, 0].mean().item(), loss[:, 1].mean().item()
    return {"olsson_icl_score": lt - e, f"loss_at_{early}": e, f"loss_at_{late}": lt}


def _row_extremes(
    x: Float[Tensor, "b q d"], w: Float[Tensor, "d vocab"], rows: int = 32
) -> tuple[Float[Tensor, "b q"], Float[Tensor, "b q"]]:
    """Max and min over the vocabulary of ``x @ w`` (float64), formed a few
    rows at a time so that each block of logits stays in the CPU's cache."""
    flat = x.reshape(-1, x.shape[-1])
    top = torch.empty(flat.shape[0], dtype=torch.float64, device=x.device)
    bottom = torch.empty_like(top)
    for i in range(0, flat.shape[0], rows):
        lo, hi = torch.aminmax(flat[i : i + rows] @ w, dim=-1)
        top[i : i + rows], bottom[i : i + rows] = hi, lo
    return top.reshape(x.shape[:-1]), bottom.reshape(x.shape[:-1])


def _head_logits(model: nn.Module, tokens: Tensor, memo: dict[Any, Any] | None):
    """Per layer: (z [b, q, h, d_head], pattern [b, h, q, k], W_OU [h, d_head,
    vocab_out]) in float64 — each head's direct path to the logits."""
    n_layers, _, _, _ = model_dims(model)
    cache = run_cache(model, tokens, memo)
    W_O = model.W_O.detach().double()  # [l, h, d_head, d_model]
    W_U = model.W_U.detach().double()  # [d_model, vocab_out]
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"].double()
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"].double()
        yield layer, z, pattern, W_O[layer] @ W_U


def copying_probe(
    model: nn.Module,
    n: int = 8,
    length: int | None = None,
    vocab_range: tuple[int, int] | None = None,
    seed: int = 0,
) -> Int[Tensor, "n seq"]:
    """``n`` sequences of distinct random tokens, not repeated: the input of
    Bansal et al.'s copying score (their code draws distinct BPE tokens, so
    every attended position names one token). ``length`` defaults to
    min(100, n_ctx, the size of the range); no start token (the model may
    have no BOS), so position 0 plays its part."""
    _, _, d_vocab, n_ctx = model_dims(model)
    lo, hi = vocab_range or (0, d_vocab)
    length = length or min(100, n_ctx, hi - lo)
    if length < 2:
        raise InputError(f"a copying probe needs at least 2 distinct tokens; got {length}")
    return random_segments(n, length, (lo, hi), seed)


def _keep(store: dict[str, Tensor], name: str):
    """A forward hook that stores its activation under ``name``."""

    def hook(x: Tensor, hook: Any) -> Tensor:
        store[name] = x.detach()
        return x

    return hook


def _embedding_path_layers(model: nn.Module, tokens: Tensor):
    """Per layer: (pattern [b, h, q, k], v [b, k, h, d_head]) of that layer's
    attention run on the token (+ position) embeddings instead of its real
    input, as Bansal et al.'s code feeds every layer (its own LayerNorm
    still applied)."""
    n_layers, _, _, _ = model_dims(model)
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens, names_filter=lambda name: name in ("hook_embed", "hook_pos_embed")
        )
        embedded = cache["hook_embed"]
        if "hook_pos_embed" in cache:
            embedded = embedded + cache["hook_pos_embed"]
        for layer in range(n_layers):
            got: dict[str, Tensor] = {}

            model.run_with_hooks(
                tokens,
                fwd_hooks=[
                    (f"blocks.{layer}.hook_resid_pre", lambda x, hook: embedded),
                    (f"blocks.{layer}.attn.hook_pattern", _keep(got, "pattern")),
                    (f"blocks.{layer}.attn.hook_v", _keep(got, "v")),
                ],
            )
            yield layer, got["pattern"].double(), got["v"].double()


def logit_copying_scores(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    vocab_range: tuple[int, int] | None = None,
    form: Literal["reference", "attended", "residual"] = "reference",
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """The token copying score of Bansal et al. 2023 ("Rethinking the role
    of scale for in-context learning", §3; after Olsson et al. 2022's
    copying criterion), in [0, 1], as their public code computes it
    (``form="reference"``, on :func:`copying_probe`):

    every layer's attention runs on the token and position embeddings
    (through its own LayerNorm); at each position j ≥ 1 the head's output
    for the value at j, v_j · W_O + b_O, goes straight to the unembedding
    (no final LayerNorm, no b_U) and through a softmax over the vocabulary;
    the probabilities of the attendable tokens (positions ≤ j) are centred
    on their mean and passed through ReLU (the "raised" ones); the score is
    the raised value of the token at the most-attended position over the
    sum over all attendable tokens (0 when none is raised), averaged over
    positions and sequences. 1: the head's output raises exactly the token
    it attends to most.

    Their code sends the value *at j* through W_O, not the head's
    attention-weighted output, so the score asks whether the head's output
    for the token at j raises the token it attends to most: a head that
    attends to its own position and copies scores 1, a previous-token head
    that copies what it attends to scores about 0. ``form="attended"``
    follows the paper's wording instead: the same computation with the
    head's output at j, z_j · W_O + b_O (z_j = Σ_k A_jk v_k). Both read the
    direct path from the embeddings, where a head that needs an earlier
    layer (an induction head) cannot attend as it does in the model.

    ``form="residual"`` is ours and differs further: each layer reads its
    real input, the head's output z · W_O gives the logits, which are
    centred over the whole vocabulary before ReLU (no softmax, no b_O), and
    only queries whose token occurred before count (on
    :func:`default_probe`, repeated random tokens). It reads what the head
    does inside the trained circuit. ``memo`` is used by this form only.
    """
    if form == "residual":
        probe = default_probe(model, vocab_range=vocab_range) if tokens is None else tokens
        return _residual_copying(model, probe, memo)
    if form not in ("reference", "attended"):
        raise InputError(f"form must be 'reference', 'attended' or 'residual', got {form!r}")
    tokens = copying_probe(model, vocab_range=vocab_range) if tokens is None else tokens
    _check_tokens(model, tokens)
    n_layers, n_heads, _, _ = model_dims(model)
    b, seq = tokens.shape
    if seq < 2:
        raise InputError("the copying score needs sequences of at least 2 tokens")
    W_U = model.W_U.detach()
    vocab_out = W_U.shape[-1]
    # float64 on small vocabularies; float32 for the [rows, vocab] logits of large ones
    dtype = torch.float64 if vocab_out <= 8192 else torch.float32
    W_U = W_U.to(dtype)
    W_O = model.W_O.detach().to(dtype)  # [l, h, d_head, d_model]
    b_O = getattr(model, "b_O", None)
    src = tokens.to(W_U.device).clamp(max=vocab_out - 1)
    causal = torch.ones(seq, seq, dtype=torch.bool, device=W_U.device).tril()
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer, pattern, v in _embedding_path_layers(model, tokens):
        # logits = values · (W_O W_U) + b_O · W_U: through d_head, not d_model
        W_OU = W_O[layer] @ W_U  # [h, d_head, vocab]
        bias = 0.0 if b_O is None else b_O.detach().to(dtype)[layer] @ W_U  # [vocab]
        for head in range(n_heads):
            values = v[:, :, head]  # [b, pos, d_head]
            if form == "attended":
                values = pattern[:, head] @ values  # z: the head's output at each query
            logits = values.to(dtype) @ W_OU[head] + bias  # [b, q, vocab]
            lse = torch.logsumexp(logits, dim=-1, keepdim=True)
            # probability of each attendable source token at each position: [b, q, k]
            picked = torch.gather(logits, 2, src[:, None, :].expand(b, seq, seq))
            at_src = (picked - lse).double().exp()
            mask = causal[None].expand(b, seq, seq)
            mean = (at_src * mask).sum(-1) / mask.sum(-1)
            raised = ((at_src - mean[..., None]).clamp_min(0)) * mask
            top = pattern[:, head].argmax(-1)  # [b, q]
            num = torch.gather(raised, 2, top[..., None])[..., 0]
            total = raised.sum(-1)
            ratio = torch.where(total > 0, num / total.clamp_min(1e-300), 0.0)
            out[layer, head] = ratio[:, 1:].mean()
    return out.float()


def _residual_copying(
    model: nn.Module, tokens: Tensor, memo: dict[Any, Any] | None
) -> Float[Tensor, "layer head"]:
    """:func:`logit_copying_scores` with ``form="residual"``."""
    n_layers, n_heads, _, _ = model_dims(model)
    b, seq = tokens.shape
    queries = induction_targets(tokens).any(-1)  # [b, q]: the token occurred before
    if not bool(queries.any()):
        raise InputError("no query position repeats an earlier token: the probe has no repeats")
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer, z, pattern, W_OU in _head_logits(model, tokens, memo):
        vocab_out = W_OU.shape[-1]
        queries = queries.to(W_OU.device)
        src = tokens.to(W_OU.device).clamp(max=vocab_out - 1)
        # distinct tokens up to each query: the first occurrence of each id
        first = torch.ones(b, seq, dtype=torch.bool, device=src.device)
        for k in range(1, seq):
            first[:, k] = ~(src[:, :k] == src[:, k : k + 1]).any(1)
        causal = torch.ones(seq, seq, dtype=torch.bool, device=src.device).tril()
        attendable = causal[None] & first[:, None, :]  # [b, q, k]
        for head in range(n_heads):
            zh, ou = z[:, :, head], W_OU[head]
            mean = zh @ ou.mean(-1)  # [b, q]: the logits' mean over the vocabulary
            # raised (centred, ReLU) logit of each source token at each query: [b, q, k]
            at_src = torch.einsum("bqd,dbk->bqk", zh, ou[:, src]) - mean[..., None]
            at_src = at_src.clamp_min(0)
            total = (at_src * attendable).sum(-1)
            top = pattern[:, head].argmax(-1)  # [b, q]: the most-attended position
            num = torch.gather(at_src, 2, top[..., None])[..., 0]
            ratio = torch.where(total > 0, num / total.clamp_min(1e-300), 0.0)
            out[layer, head] = ratio[queries].mean()
    return out.float()


def signed_logit_copying(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """This library's signed copying measure, in [−1, 1] (not a published
    one; :func:`logit_copying_scores` is): at each query position the head's
    direct logit contribution z · W_O · W_U is centred over the vocabulary
    and divided by its largest absolute entry; the score is the
    attention-weighted value at the attended source tokens (+1: the attended
    token gets the head's largest boost, −1: its largest suppression),
    averaged over positions and examples. Models with a final LayerNorm are
    measured before it."""
    tokens = default_probe(model) if tokens is None else tokens
    n_layers, n_heads, _, _ = model_dims(model)
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer, z, pattern, W_OU in _head_logits(model, tokens, memo):
        vocab_out = W_OU.shape[-1]
        src = tokens.to(W_OU.device)
        in_vocab = src < vocab_out  # [b, k]
        for head in range(n_heads):
            zh, ou = z[:, :, head], W_OU[head]
            # the head's logits are zh @ ou, centred over the vocabulary
            mean = zh @ ou.mean(-1)  # [b, q]
            top, bottom = _row_extremes(zh.float(), ou.float())
            scale = torch.maximum(top - mean, mean - bottom)  # max |centred logit|
            # centred logit of each source token at each query position: [b, q, k]
            cols = ou[:, src.clamp(max=vocab_out - 1)]  # [d_head, b, k]
            at_src = torch.einsum("bqd,dbk->bqk", zh, cols) - mean[..., None]
            at_src = torch.where(in_vocab[:, None, :], at_src, torch.zeros_like(at_src))
            attended = (pattern[:, head] * at_src).sum(-1)  # [b, q]
            ratio = torch.where(scale > 1e-12, attended / scale.clamp_min(1e-300), 0.0)
            out[layer, head] = ratio.mean()
    return out.float()


def direct_logit_copying(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Deprecated name of :func:`signed_logit_copying`."""
    import warnings

    warnings.warn(
        "direct_logit_copying is now signed_logit_copying; the published copying score "
        "is logit_copying_scores",
        DeprecationWarning,
        stacklevel=2,
    )
    return signed_logit_copying(model, tokens, memo=memo)


def head_ablation_losses(
    model: nn.Module,
    tokens: Int[Tensor, "batch seq"] | None = None,
    *,
    ablation: Literal["mean", "zero"] = "mean",
    memo: dict[Any, Any] | None = None,
) -> Float[Tensor, "layer head"]:
    """Mean next-token loss on ``tokens`` with one head ablated, minus the
    loss of the intact model, for every head (nats; > 0: the model needs it).

    The head's ``hook_z`` (its attention-weighted values, before ``W_O``) is
    replaced by its mean over the batch and positions of ``tokens`` (``mean``:
    keeps the head's average contribution, removes what it computes per
    position) or by zeros (``zero``). One forward pass per head; only the head's
    own output changes, its effect on later layers included. Defaults to
    :func:`default_probe` (random tokens repeated twice), where ablating an
    induction head or the previous-token head it composes with raises the
    loss on the second copy; pass held-out text to ask what the head is worth
    on real data. Olsson et al. 2022 (§ "Argument 3", ablations).
    """
    if ablation not in ("mean", "zero"):
        raise InputError(f"ablation must be 'mean' or 'zero', got {ablation!r}")
    tokens = default_probe(model) if tokens is None else tokens
    n_layers, n_heads, _, _ = model_dims(model)
    cache = run_cache(model, tokens, memo)  # validates the probe
    device = next(model.parameters()).device
    x, targets = tokens.to(device), tokens[:, 1:].to(device).reshape(-1)

    def loss_with(hooks: list[tuple[str, Any]]) -> Tensor:
        with torch.no_grad():
            logits = model.run_with_hooks(x, fwd_hooks=hooks).double()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets)

    base = loss_with([])
    out = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # [b, q, h, d_head]
        for head in range(n_heads):
            fill = z[:, :, head].mean(dim=(0, 1)) if ablation == "mean" else 0.0

            def hook(act: Tensor, hook: Any, head: int = head, fill: Any = fill) -> Tensor:
                act = act.clone()
                act[:, :, head] = fill
                return act

            out[layer, head] = loss_with([(f"blocks.{layer}.attn.hook_z", hook)]) - base
    return out.float()
