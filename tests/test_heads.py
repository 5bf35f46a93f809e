"""Head analyzers on a 2-layer attention-only model whose answer is known by
construction (see tests/handbuilt.py)."""

from __future__ import annotations

import pytest
import torch
from handbuilt import D_HEAD, D_MODEL, POS, PREV, TOK, C, N, V, build_model

from interp.analysis import (
    HEAD_ANALYZERS,
    analyzer_name,
    composition_scores,
    copy_gain,
    copying_scores,
    default_probe,
    duplicate_token_scores,
    head_analyzers,
    induction_scores,
    logit_copying_scores,
    prefix_matching_scores,
    prev_token_scores,
    signed_logit_copying,
)
from interp.analysis.heads import induction_targets, pattern_score, previous_token_targets
from interp.data.sequences import prefix_matching_probe, repeated_random_tokens


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.fixture(scope="module")
def probe():
    # token 0 is a start token: position 0 has no previous token to mark
    return repeated_random_tokens(8, 10, (1, V), seed=3, start_token=0)


def test_hand_built_weights_land_where_intended(model):
    assert model.W_Q.shape == (2, 2, D_MODEL, D_HEAD)
    assert model.W_Q[0, 0, POS + 5, 4] == C and model.W_K[1, 0, PREV + 3, 3] == 1.0
    assert model.W_O[1, 0, 7, TOK + 7] == 1.0 and model.W_Q[0, 1].abs().sum() == 0


def test_previous_token_head(model, probe):
    s = prev_token_scores(model, probe)
    assert s.shape == (2, 2)
    assert s[0, 0] > 0.99
    assert s[0, 1] < 0.3 and s[1, 0] < 0.3 and s[1, 1] < 0.3


def test_induction_head(model, probe):
    s = induction_scores(model, probe)
    assert s[1, 0] > 0.99
    assert s[0, 0] < 0.2 and s[0, 1] < 0.2 and s[1, 1] < 0.2
    d = duplicate_token_scores(model, probe)
    assert (d < 0.2).all()  # nobody attends to the earlier copy itself


def test_prefix_matching(model):
    probe = prefix_matching_probe(
        n=10, length=7, repeats=4, vocab_range=(1, V), seed=1, start_token=0
    )
    assert probe.shape == (10, 29) and bool((probe[:, 0] == 0).all())
    s = prefix_matching_scores(model, probe)
    assert s[1, 0] > 0.99 and s[0, 0] < 0.2 and s[1, 1] < 0.2
    # the default probe is built from the model's own vocabulary and context
    default = prefix_matching_scores(model)
    assert default[1, 0] > 0.99


def test_copying_scores(model):
    s = copying_scores(model)
    assert s[1, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert s[0, 0].item() == 0.0  # writes only into the previous-token subspace
    assert s[0, 1].item() == 0.0 and s[1, 1].item() == 0.0
    neg = copying_scores(build_model(copy_sign=-1.0))
    assert neg[1, 0].item() == pytest.approx(-1.0, abs=1e-6)


def test_composition_scores(model):
    comp = composition_scores(model)
    k = comp["k_composition"]
    assert k.shape == (2, 2, 2, 2)
    assert k[0, 0, 1, 0] == pytest.approx(1 / V**0.5, rel=1e-5)  # identity blocks: 1/sqrt(rank)
    others = k.clone()
    others[0, 0, 1, 0] = 0
    assert others.abs().max() == 0
    assert comp["q_composition"].abs().max() == 0
    assert comp["v_composition"].abs().max() == 0


def test_signed_logit_copying(model, probe):
    s = signed_logit_copying(model, probe)
    assert s[1, 0] > 0.8
    assert s[0, 0] == 0 and s[0, 1] == 0 and s[1, 1] == 0
    neg = signed_logit_copying(build_model(copy_sign=-1.0), probe)
    assert neg[1, 0] < -0.8
    with pytest.warns(DeprecationWarning, match="signed_logit_copying"):
        from interp.analysis import direct_logit_copying

        assert torch.equal(direct_logit_copying(model, probe), s)


def _residual_copying_score(model, tokens, layer, head):
    """``form="residual"`` written out position by position, from
    TransformerLens's cache: ReLU of the centred direct logits, the
    most-attended token's share of the raised logits of the distinct tokens
    up to the query, at queries whose token occurred before."""
    _, cache = model.run_with_cache(tokens)
    z = cache[f"blocks.{layer}.attn.hook_z"][:, :, head].double()
    pat = cache[f"blocks.{layer}.attn.hook_pattern"][:, head].double()
    ou = model.W_O[layer, head].detach().double() @ model.W_U.detach().double()
    vals = []
    for b in range(tokens.shape[0]):
        for q in range(1, tokens.shape[1]):
            if int(tokens[b, q]) not in tokens[b, :q].tolist():
                continue  # only queries whose token occurred before
            logits = z[b, q] @ ou
            raised = torch.relu(logits - logits.mean())
            seen = sorted(set(tokens[b, : q + 1].tolist()))
            total = sum(float(raised[t]) for t in seen)
            top = int(tokens[b, int(pat[b, q].argmax())])
            vals.append(float(raised[top]) / total if total > 0 else 0.0)
    return sum(vals) / len(vals)


def _bansal_copying_score(model, tokens, layer, head, attended=False):
    """Bansal et al.'s public code (``prefix_matching_copying.py``) written
    out for a model without LayerNorm, from the weights alone: the layer's
    attention computed by hand on token + position embeddings, the value at
    j (or, ``attended``, the attention-weighted output) through W_O + b_O
    and W_U, softmax, probabilities of the attendable tokens centred on
    their mean, ReLU, the most-attended position's share; mean over j ≥ 1."""
    W = {k: getattr(model, k).detach().double()[layer] for k in ("W_Q", "W_K", "W_V", "W_O")}
    bias = {k: getattr(model, k).detach().double()[layer] for k in ("b_Q", "b_K", "b_V", "b_O")}
    W_U = model.W_U.detach().double()
    vals = []
    for b in range(tokens.shape[0]):
        t = tokens[b]
        n = t.shape[0]
        e = model.W_E.detach().double()[t] + model.W_pos.detach().double()[:n]
        q = e @ W["W_Q"][head] + bias["b_Q"][head]
        k = e @ W["W_K"][head] + bias["b_K"][head]
        v = e @ W["W_V"][head] + bias["b_V"][head]
        scores = (q @ k.T) / W["W_Q"].shape[-1] ** 0.5
        scores = scores.masked_fill(torch.ones(n, n).triu(1).bool(), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        out = (attn @ v if attended else v) @ W["W_O"][head] + bias["b_O"]
        probs = torch.softmax(out @ W_U, dim=-1)
        for j in range(1, n):
            p = probs[j, t[: j + 1]]
            raised = torch.relu(p - p.mean())
            total = float(raised.sum())
            vals.append(float(raised[int(attn[j].argmax())]) / total if total else 0.0)
    return sum(vals) / len(vals)


def test_logit_copying_scores(model, probe):
    """Bansal et al.'s copying score in [0, 1], in the three forms: equal to
    their code's loop written out by hand on a random model with random
    biases (reference and attended forms), and to a position-by-position
    loop (residual form); the residual form finds the hand-built copying
    head and gives 0 where a head writes nothing or suppresses."""
    from interp.analysis.behavior import copying_probe
    from interp.models import TransformerConfig, make_transformer

    cfg = TransformerConfig(n_layers=2, d_vocab=30, d_vocab_out=30, n_ctx=16)
    rnd = make_transformer(cfg, 0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in rnd.named_parameters():
            if name.endswith("bias") or ".b_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    toks = copying_probe(rnd, n=3)
    assert toks.shape == (3, 16) and all(len(set(r.tolist())) == 16 for r in toks)
    for form, attended in (("reference", False), ("attended", True)):
        got = logit_copying_scores(rnd, toks, form=form)
        assert bool(((got >= 0) & (got <= 1)).all())
        for layer, head in ((0, 0), (1, 1), (1, 3)):
            want = _bansal_copying_score(rnd, toks, layer, head, attended)
            assert float(got[layer, head]) == pytest.approx(want, abs=1e-6)
    assert not torch.equal(
        logit_copying_scores(rnd, toks), logit_copying_scores(rnd, toks, form="attended")
    )

    s = logit_copying_scores(model, probe, form="residual")
    assert s[1, 0] > 0.9
    assert s[0, 0] == 0 and s[0, 1] == 0 and s[1, 1] == 0
    neg = logit_copying_scores(build_model(copy_sign=-1.0), probe, form="residual")
    assert neg[1, 0] < 0.1
    toks = repeated_random_tokens(3, 6, (0, 30), seed=1)
    got = logit_copying_scores(rnd, toks, form="residual")
    for layer, head in ((0, 0), (1, 1)):
        assert float(got[layer, head]) == pytest.approx(
            _residual_copying_score(rnd, toks, layer, head), abs=1e-6
        )
    with pytest.raises(Exception, match="form"):  # the type check, or our InputError
        logit_copying_scores(rnd, toks, form="olsson")


def test_copy_gain(model, probe):
    res = copy_gain(model, probe, early=5, late=16)
    assert res["copy_gain"] > 0.5 and res["loss_late"] < res["loss_early"]
    assert res["copy_gain"] == pytest.approx(res["loss_early"] - res["loss_late"])
    with pytest.raises(ValueError, match="late index 40"):
        copy_gain(model, probe, early=5, late=40)
    with pytest.warns(DeprecationWarning, match="copy_gain"):
        from interp.analysis import icl_score

        assert icl_score(model, probe, early=5, late=16)["icl_score"] == -res["copy_gain"]


def test_scores_on_hand_made_patterns():
    tokens = torch.tensor([[1, 2, 3, 1, 2, 3]])
    prev = previous_token_targets(tokens)[0]
    assert prev[3, 2] and not prev[3, 3] and not prev[0].any()
    ind = induction_targets(tokens)[0]
    assert ind[3].nonzero().flatten().tolist() == [1]  # token after the earlier '1'
    assert ind[5].nonzero().flatten().tolist() == [3]
    assert not ind[:3].any()
    patterns = torch.zeros(1, 1, 1, 6, 6)
    for i in range(6):
        patterns[0, 0, 0, i, max(i - 2, 0) if i < 3 else i - 2] = 1.0
    assert pattern_score(patterns, ind[None]).item() == 1.0


def test_probe_validation(model):
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        induction_scores(model, torch.full((2, 8), V + 3))
    with pytest.raises(ValueError, match="exceeds the model's n_ctx"):
        induction_scores(model, torch.ones(2, N + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="fewer than the 20 distinct"):
        repeated_random_tokens(2, 20, (1, V))
    with pytest.raises(ValueError, match="no attention heads"):
        from interp.models import MLPConfig, make_mlp

        induction_scores(make_mlp(MLPConfig(n_tokens=5, d_out=5), seed=0))


def test_head_analyzers_on_a_vocab_range(model):
    lo, hi = 1, V
    wrapped = {analyzer_name(fn): fn for fn in head_analyzers((lo, hi))}
    assert list(wrapped) == [analyzer_name(fn) for fn in HEAD_ANALYZERS]
    # probe-driven analyzers now read the range; weight-only ones are the originals
    assert wrapped["copying_scores"] is copying_scores
    pm = wrapped["prefix_matching_scores"](model)
    assert torch.equal(pm, prefix_matching_scores(model, vocab_range=(lo, hi)))
    ind = wrapped["induction_scores"](model)
    assert torch.equal(ind, induction_scores(model, default_probe(model, vocab_range=(lo, hi))))
    # no start token here: position 0 is its own "previous token", so the first
    # token of the second copy splits its attention between positions 0 and 1
    assert 0.9 < ind[1, 0] < 0.99 and ind[0].max() < 0.2
    # another range gives another probe, so another sweep cache key
    key = wrapped["induction_scores"].cache_token(None)
    assert key == f"vocab_range={(lo, hi)}"
    other = {analyzer_name(fn): fn for fn in head_analyzers((2, V))}
    assert other["induction_scores"].cache_token(None) != key
    assert head_analyzers(None) == HEAD_ANALYZERS
    for bad in [(5, 5), (-1, 4), (4, 2)]:
        with pytest.raises(ValueError, match="vocab_range"):
            head_analyzers(bad)


def test_head_ablation_losses_find_the_circuit_and_nothing_else(model, probe):
    import math

    from interp.analysis import head_ablation_losses, per_token_loss

    d = head_ablation_losses(model, probe)
    assert d[0, 1] == 0.0 and d[1, 1] == 0.0  # all-zero heads: nothing to remove
    # the induction head and the previous-token head it reads both carry the copy
    # (its logit boost is 1, worth ~1 nat on the second copy: ~0.3-0.4 on average)
    assert d[1, 0] > 0.2 and d[0, 0] > 0.2
    # zero-ablating the induction head leaves logits = one-hot of the current
    # token (the embedding is the only thing W_U reads), a loss known in closed form
    z = head_ablation_losses(model, probe, ablation="zero")
    cur, nxt = probe[:, :-1], probe[:, 1:]
    closed = (math.log(math.e + V - 1) - (cur == nxt).double()).mean()
    base = per_token_loss(model, probe).mean()
    assert float(z[1, 0]) == pytest.approx(float(closed - base), abs=1e-5)
    with pytest.raises((ValueError, TypeError), match="ablation"):  # beartype or our check
        head_ablation_losses(model, probe, ablation="resample")


@pytest.mark.parametrize(
    ("ours", "tl_name"),
    [
        (induction_scores, "induction_head"),
        (duplicate_token_scores, "duplicate_token_head"),
        (prev_token_scores, "previous_token_head"),
    ],
)
def test_tl_normalization_reproduces_transformer_lens_head_detector(ours, tl_name):
    """``normalize="tl"`` equals TransformerLens's head detector (error
    measure ``mul``) on the same cached patterns, sequence by sequence then
    averaged as ``detect_head`` does for a list of prompts; on the default
    probe (a segment repeated twice) our default is exactly 2× TL's for the
    induction and duplicate-token scores."""
    from transformer_lens import head_detector as hd

    from interp.models import TransformerConfig, make_transformer

    model = make_transformer(TransformerConfig(n_layers=2, d_vocab=20, d_vocab_out=20, n_ctx=24), 3)
    tokens = default_probe(model)
    _, cache = model.run_with_cache(tokens)
    detect = getattr(hd, f"get_{tl_name}_detection_pattern")
    expect = torch.zeros(2, model.cfg.n_heads, dtype=torch.float64)
    for b in range(tokens.shape[0]):
        pattern = detect(tokens[b : b + 1]).double()
        for layer in range(2):
            for head in range(model.cfg.n_heads):
                att = cache[f"blocks.{layer}.attn.hook_pattern"][b, head].double()
                expect[layer, head] += hd.compute_head_attention_similarity_score(
                    att, pattern, exclude_bos=False, exclude_current_token=False,
                    error_measure="mul",
                )  # fmt: skip
    expect /= tokens.shape[0]
    got = ours(model, tokens, normalize="tl")
    torch.testing.assert_close(got.double(), expect, atol=1e-6, rtol=0)
    if tl_name != "previous_token_head":
        torch.testing.assert_close(ours(model, tokens), 2 * got, atol=1e-6, rtol=0)


def test_composition_baseline_is_the_chance_level_of_fresh_inits(model):
    """The baseline is the mean score of fresh initialisations per layer
    pair; a fresh init reads about 1 over it, the hand-built K-composition
    far above."""
    from interp.analysis import composition_baseline, composition_ratios
    from interp.models import TransformerConfig, make_transformer

    cfg = TransformerConfig(
        n_layers=2, n_heads=2, d_model=32, d_head=8, d_vocab=20, d_vocab_out=20, n_ctx=12
    )
    base = composition_baseline(lambda seed: make_transformer(cfg, seed), n=6)
    assert base["k_composition"].shape == (2, 2)
    assert float(base["k_composition"][0, 1]) > 0.05 and float(base["k_composition"][1, 0]) == 0
    fresh = composition_ratios(composition_scores(make_transformer(cfg, 99)), base)
    ratio = fresh["k_composition_ratio"][0, :, 1, :]
    assert 0.5 < float(ratio.mean()) < 1.5
    built = composition_ratios(composition_scores(model), {k: torch.ones(2, 2) for k in base})
    assert float(built["k_composition_ratio"][0, 0, 1, 0]) == pytest.approx(1 / V**0.5, rel=1e-5)


def test_weight_scores_equal_transformer_lens_on_random_weights():
    """Copying and composition scores on the raw weights of a random 3-layer
    model equal TransformerLens's own computation: the eigenvalues of the
    factored W_E·OV·W_U, and the bridge's ``all_composition_scores``."""
    from interp.models import TransformerConfig, make_transformer

    cfg = TransformerConfig(
        n_layers=3, n_heads=2, d_model=32, d_head=8, d_vocab=20, d_vocab_out=20, n_ctx=12
    )
    model = make_transformer(cfg, 5)
    ours = composition_scores(model, fold_ln=False)
    for mode in "QKV":
        ref = model.all_composition_scores(mode).scores.detach().double()
        got = ours[f"{mode.lower()}_composition"].double()
        assert float(got[0, :, 1, :].min()) > 0.05  # not a trivially zero comparison
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    eig = (model.W_E @ model.OV @ model.W_U).eigenvalues.detach()
    ref = (eig.real.sum(-1) / eig.abs().sum(-1)).double()
    torch.testing.assert_close(
        copying_scores(model, fold_ln=False).double(), ref, atol=1e-5, rtol=0
    )
