"""Fourier progress measures on weights and logits built by hand."""

from __future__ import annotations

import math

import pytest
import torch

from interp.analysis import (
    embedding_frequency_norms,
    excluded_logits,
    fourier_basis,
    gini,
    key_frequencies,
    logit_frequency_shares,
    logit_grid,
    pick_key_frequencies,
    progress_measures,
    restricted_logits,
    restricted_loss,
    sum_squared_weights,
)
from interp.data.modular import ModularConfig, all_pairs, make_modular
from interp.models import MLPConfig, TransformerConfig, make_mlp, make_transformer

P = 31


def _embedding_with(freqs, p=P, d=24, seed=0):
    """A [p, d] embedding whose columns mix only cos/sin of the given frequencies."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.arange(p, dtype=torch.float64)
    cols = []
    for k in freqs:
        cols += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    basis = torch.stack(cols, dim=1)  # [p, 2K]
    return basis @ torch.randn(basis.shape[1], d, generator=gen, dtype=torch.float64)


def test_basis_is_orthonormal():
    for p in (7, 8, 31):
        F = fourier_basis(p)
        torch.testing.assert_close(F @ F.T, torch.eye(p, dtype=torch.float64))


def test_embedding_with_two_frequencies_has_exactly_those_keys():
    W = _embedding_with([4, 11])
    norms = embedding_frequency_norms(W)
    assert norms.shape == (P // 2,)
    nonzero = [i + 1 for i, v in enumerate(norms.tolist()) if v > 1e-9]
    assert nonzero == [4, 11]
    assert pick_key_frequencies(norms) == [4, 11]
    # total energy is preserved by an orthonormal basis
    assert norms.pow(2).sum().item() == pytest.approx(W.pow(2).sum().item() - 0.0, rel=1e-9)


def test_key_frequencies_of_hand_set_models():
    """Both model kinds, with the hand-built embedding written into their weights."""
    W = _embedding_with([3, 9, 14]).float()
    tf = make_transformer(
        TransformerConfig(
            d_model=24, d_head=6, n_heads=4, d_mlp=32, n_ctx=3, d_vocab=P + 1, d_vocab_out=P
        ),
        seed=0,
    )
    with torch.no_grad():
        tf.embed.weight[:P] = W  # the '=' row (index P) stays random and is ignored
    assert key_frequencies(tf, P) == [3, 9, 14]
    mlp = make_mlp(
        MLPConfig(n_tokens=P, d_out=P, d_embed=24, shared_embedding=True, combine="sum"), seed=0
    )
    with torch.no_grad():
        mlp.embed_a.weight[:] = W
    assert key_frequencies(mlp, P) == [3, 9, 14]


def test_key_frequency_pick_with_noise_floor():
    scores = torch.full((20,), 0.1)
    scores[[2, 6]] = torch.tensor([5.0, 4.0])
    assert pick_key_frequencies(scores) == [3, 7]


def _cos_logits(freqs, p=P, scale=5.0):
    a = torch.arange(p, dtype=torch.float64)[:, None, None]
    b = torch.arange(p, dtype=torch.float64)[None, :, None]
    c = torch.arange(p, dtype=torch.float64)[None, None, :]
    return scale * sum(torch.cos(2 * math.pi * k * (a + b - c) / p) for k in freqs)


def test_restricted_and_excluded_logits_on_a_pure_key_frequency_grid():
    grid = _cos_logits([2, 5])
    torch.testing.assert_close(restricted_logits(grid, [2, 5]), grid)
    # removing the key frequencies leaves only each output's constant (here 0)
    torch.testing.assert_close(
        excluded_logits(grid, [2, 5]), torch.zeros_like(grid), atol=1e-9, rtol=0
    )
    # restricting to a frequency the logits don't use removes everything
    torch.testing.assert_close(
        restricted_logits(grid, [7]), torch.zeros_like(grid), atol=1e-9, rtol=0
    )
    shares = logit_frequency_shares(grid)
    assert shares[[1, 4]].sum().item() == pytest.approx(1.0)
    assert pick_key_frequencies(shares) == [2, 5]


def test_bad_key_frequencies():
    with pytest.raises(ValueError, match="outside 1..15"):
        restricted_logits(_cos_logits([1]), [0, 16])
    with pytest.raises(ValueError, match="empty"):
        restricted_logits(_cos_logits([1]), [])


def test_gini_known_values():
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    one_hot = torch.zeros(10)
    one_hot[3] = 2.0
    assert gini(one_hot) == pytest.approx(0.9)
    assert gini(torch.tensor([1.0, 3.0])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="non-negative"):
        gini(torch.tensor([-1.0, 1.0]))


class _CosineModel(torch.nn.Module):
    """logits(a, b, c) = 5 Σ_k cos(w_k(a+b−c)): a perfect Fourier adder, built by hand."""

    def __init__(self, p, freqs):
        super().__init__()
        self.table = torch.nn.Parameter(_cos_logits(freqs, p).float())
        self.W_E = torch.nn.Parameter(_embedding_with(freqs, p).float())

    def forward(self, tokens):
        return self.table[tokens[:, 0], tokens[:, 1]][:, None, :].expand(-1, 3, -1)


def test_progress_measures_on_a_perfect_fourier_model():
    data = make_modular(ModularConfig(p=P, train_fraction=0.3), seed=0)
    model = _CosineModel(P, [2, 5])
    m = progress_measures(model, data, [2, 5])
    assert m["test_accuracy"] == 1.0 and m["train_accuracy"] == 1.0
    assert m["restricted_loss"] == pytest.approx(m["test_loss"], rel=1e-5)
    assert m["excluded_loss"] == pytest.approx(math.log(P), rel=1e-5)  # uniform logits remain
    assert m["key_freq_logit_share"] == pytest.approx(1.0)
    assert m["sum_squared_weights"] == pytest.approx(sum_squared_weights(model))
    wrong = progress_measures(model, data, [7])
    assert wrong["restricted_loss"] == pytest.approx(math.log(P), rel=1e-5)
    assert wrong["excluded_loss"] == pytest.approx(m["train_loss"], rel=1e-5)


def test_restricted_loss_is_on_the_test_pairs_by_default():
    """Nanda's code evaluates the restricted loss on the test pairs; all p²
    pairs is an option, and both appear in progress_measures."""
    data = make_modular(ModularConfig(p=P, train_fraction=0.3), seed=0)
    torch.manual_seed(0)
    model = _CosineModel(P, [2, 5])
    with torch.no_grad():
        model.table += torch.randn_like(model.table)  # not a perfect adder: splits differ
    grid = logit_grid(model, P)
    restricted = restricted_logits(grid, [2, 5])

    def ce(pairs):
        logits = restricted[pairs[:, 0], pairs[:, 1]]
        return float(torch.nn.functional.cross_entropy(logits, (pairs[:, 0] + pairs[:, 1]) % P))

    test, every = ce(data.pairs_test), ce(all_pairs(P))
    assert test != pytest.approx(every, rel=1e-4)
    assert restricted_loss(model, data, [2, 5]) == pytest.approx(test, rel=1e-9)
    assert restricted_loss(model, data, [2, 5], split="all") == pytest.approx(every, rel=1e-9)
    assert restricted_loss(model, P, [2, 5], split="all") == pytest.approx(every, rel=1e-9)
    with pytest.raises(Exception, match="needs the run's data"):
        restricted_loss(model, P, [2, 5])
    m = progress_measures(model, data, [2, 5])
    assert m["restricted_loss"] == pytest.approx(test, rel=1e-9)
    assert m["restricted_loss_all_pairs"] == pytest.approx(every, rel=1e-9)


def test_neuron_logit_gini_reads_the_map_from_neurons_to_logits():
    """W_L of an MLP model is its output layer (times the read-out); one
    whose rows follow a single frequency over the outputs has a Gini near
    its maximum, a random one a low Gini (Nanda et al. §5.1)."""
    from interp.analysis.fourier import neuron_logit_map

    model = make_mlp(MLPConfig(n_tokens=P, d_out=P, d_embed=16, d_hidden=32), seed=0)
    w_l = neuron_logit_map(model)
    assert w_l is not None and w_l.shape == (P, 32)
    random_gini = gini(embedding_frequency_norms(w_l))
    c = torch.arange(P, dtype=torch.float64)[:, None]
    with torch.no_grad():
        model.out.weight.copy_(torch.cos(2 * math.pi * 3 * c / P) * torch.randn(1, 32))
    one = gini(embedding_frequency_norms(neuron_logit_map(model)))
    n = P // 2
    assert one == pytest.approx((n - 1) / n, abs=1e-6) and random_gini < 0.5  # float32 weights
    data = make_modular(ModularConfig(p=P, train_fraction=0.3), seed=0)
    assert progress_measures(model, data, [3])["neuron_logit_gini"] == pytest.approx(one)
    attn_only = _CosineModel(P, [2])
    assert "neuron_logit_gini" not in progress_measures(attn_only, data, [2])
