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
    copying_scores,
    default_probe,
    direct_logit_copying,
    duplicate_token_scores,
    head_analyzers,
    icl_score,
    induction_scores,
    prefix_matching_scores,
    prev_token_scores,
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


def test_direct_logit_copying(model, probe):
    s = direct_logit_copying(model, probe)
    assert s[1, 0] > 0.8
    assert s[0, 0] == 0 and s[0, 1] == 0 and s[1, 1] == 0
    neg = direct_logit_copying(build_model(copy_sign=-1.0), probe)
    assert neg[1, 0] < -0.8


def test_icl_score(model, probe):
    res = icl_score(model, probe, early=5, late=16)
    assert res["icl_score"] < -0.5 and res["loss_late"] < res["loss_early"]
    with pytest.raises(ValueError, match="late index 40"):
        icl_score(model, probe, early=5, late=40)


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
