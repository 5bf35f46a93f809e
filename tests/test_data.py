import pytest
import torch

from interp.config import ConfigError
from interp.config.data import ModularConfig, is_prime
from interp.data.modular import all_pairs, apply_op, make_modular


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_operations_are_correct(op):
    p = 7
    pairs = all_pairs(p, "ordered", op)
    labels = apply_op(pairs[:, 0], pairs[:, 1], p, op)
    for (a, b), c in zip(pairs.tolist(), labels.tolist(), strict=True):
        if op == "+":
            assert c == (a + b) % p
        elif op == "-":
            assert c == (a - b) % p
        elif op == "*":
            assert c == (a * b) % p
        else:
            assert (c * b) % p == a % p and b != 0


def test_pair_sets():
    assert all_pairs(5, "ordered").shape == (25, 2)
    unordered = all_pairs(5, "unordered")
    assert unordered.shape == (15, 2)
    assert bool((unordered[:, 0] <= unordered[:, 1]).all())
    assert all_pairs(5, "ordered", "/").shape == (20, 2)


def test_split_is_deterministic_disjoint_and_complete():
    cfg = ModularConfig(p=13, train_fraction=0.3)
    a, b = make_modular(cfg, seed=4), make_modular(cfg, seed=4)
    assert torch.equal(a.pairs_train, b.pairs_train) and torch.equal(a.pairs_test, b.pairs_test)
    c = make_modular(cfg, seed=5)
    assert not torch.equal(a.pairs_train, c.pairs_train)
    train = {tuple(x) for x in a.pairs_train.tolist()}
    test = {tuple(x) for x in a.pairs_test.tolist()}
    assert not train & test
    assert len(train) + len(test) == 169
    assert len(train) == round(0.3 * 169)
    # the data seed overrides the experiment seed
    d = make_modular(ModularConfig(p=13, train_fraction=0.3, seed=4), seed=99)
    assert torch.equal(d.pairs_train, a.pairs_train)


def test_token_form():
    data = make_modular(ModularConfig(p=11), seed=0)
    toks = data.tokens("train")
    assert toks.shape == (data.pairs_train.shape[0], 3)
    assert bool((toks[:, 2] == 11).all()) and data.vocab_size == 12


def test_bad_inputs():
    assert is_prime(113) and not is_prime(111)
    with pytest.raises(ConfigError, match="prime"):
        ModularConfig(p=15, op="/")
    with pytest.raises(ConfigError, match="both splits must be non-empty"):
        make_modular(ModularConfig(p=2, train_fraction=0.1))
