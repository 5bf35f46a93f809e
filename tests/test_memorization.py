"""Memorization and copying measures on models whose answers are known, the
effective-size inversion on synthetic power-law data, and one tiny
repeated-data run end to end (resume included)."""

from __future__ import annotations

import json

import pytest
import torch
from handbuilt import V, build_model
from torch import nn

from interp.analysis.memorization import (
    copy_losses,
    effective_size,
    fit_power_law,
    verbatim_fraction,
)
from interp.experiments import repeated_data
from interp.training.rundir import RunStore, open_run


class Successor(nn.Module):
    """Predicts token t+1 (mod V) with certainty: a perfect memoriser of the
    sequences 0,1,2,… and of nothing else."""

    def __init__(self, vocab: int = 10):
        super().__init__()
        self.vocab = vocab
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, toks):
        return 50.0 * nn.functional.one_hot((toks + 1) % self.vocab, self.vocab).float()


def test_verbatim_fraction_counts_exact_reproductions():
    model = Successor()
    follow = (torch.arange(12)[None] + torch.arange(6)[:, None]) % 10  # obey the rule
    broken = follow.clone()
    broken[:3, 9] = (broken[:3, 9] + 5) % 10  # one wrong token in the continuation
    res = verbatim_fraction(model, torch.cat([follow, broken]), prefix=4, continuation=6)
    assert res["exact"] == pytest.approx(9 / 12)
    assert res["token_match"] == pytest.approx(1 - 3 / (12 * 6))
    with pytest.raises(ValueError, match="must fit"):
        verbatim_fraction(model, follow, prefix=8, continuation=8)


def test_copy_losses_see_the_induction_head():
    model = build_model()
    passages = torch.stack([torch.randperm(V, generator=torch.Generator().manual_seed(i))[:8]
                            for i in range(6)])  # fmt: skip
    losses = copy_losses(model, passages, copies=3)
    assert losses.shape == (3,)
    # copy 1 is unpredictable (distinct random tokens, loss near ln 12 = 2.48);
    # copies 2-3 are copied from context (the head's logit boost is ~1, so not to 0)
    assert float(losses[0]) > 2.3 and float(losses[1:].max()) < float(losses[0]) - 0.5
    # each copy's first token (no earlier occurrence to copy from) is left out, so copies
    # 2 and 3 are scored on the same copyable positions
    assert abs(float(losses[1]) - float(losses[2])) < 0.1
    broken = build_model(copy_sign=-1.0)  # an anti-copying head
    assert float(copy_losses(broken, passages, copies=3)[1]) > float(losses[0])
    with pytest.raises(ValueError, match="exceed the context"):
        copy_losses(model, torch.zeros(2, 20, dtype=torch.long), copies=2)


def test_effective_size_inverts_a_power_law_exactly():
    n = torch.tensor([1e5, 3e5, 1e6, 3e6], dtype=torch.float64)
    loss = 40.0 * n ** (-0.2)
    law = fit_power_law(n, loss)
    assert law.a == pytest.approx(40.0) and law.alpha == pytest.approx(0.2)
    for size in (2e5, 7e5, 5e6):  # loss of a size → back to the size
        assert effective_size(law, law.loss(size)) == pytest.approx(size, rel=1e-9)
    # a worse loss maps to a smaller effective model
    assert effective_size(law, law.loss(1e6) * 1.05) < 1e6
    with pytest.raises(ValueError, match="two distinct"):
        fit_power_law([1e5, 1e5], [2.0, 1.9])
    with pytest.raises(ValueError, match="does not fall"):
        fit_power_law([1e5, 1e6], [2.0, 2.5])


def test_repeated_data_run_end_to_end_and_resume(tmp_path):
    cfg = repeated_data.preset("tiny")
    res = repeated_data.run(cfg, str(tmp_path / "a"), device="cpu", quiet=True)
    s = res.summary
    assert s["steps"] == 16384 // (64 * 8) == 32
    assert s["data_repeated_fraction"] == pytest.approx(0.5, abs=8 / 16384)
    assert s["data_repeated_epochs"] == 8
    acc = json.loads((tmp_path / "a" / "data.json").read_text())
    assert acc["repeated_tokens"] + acc["unique_tokens"] == 16384
    metrics = open_run(tmp_path / "a").metrics()
    assert {"test", "repeated", "unique", "copy"} <= set(metrics["split"])
    for key in ("final_test_loss", "final_repeated_loss", "final_copy_gain",
                "verbatim_repeated_exact", "non_embedding_params"):  # fmt: skip
        assert key in s
    # the repeated subset (seen 8 times) is fit better than held-out text
    assert s["final_repeated_loss"] < s["final_test_loss"]
    # killed and resumed: identical to the uninterrupted run
    repeated_data.run(cfg, str(tmp_path / "b"), device="cpu", quiet=True, stop_after_step=20)
    again = repeated_data.run(cfg, str(tmp_path / "b"), device="cpu", quiet=True)
    assert again.resumed_from == 16
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    assert a.checkpoint_sha(32) == b.checkpoint_sha(32)
    with pytest.raises(ValueError, match="multiple of train.batch_size"):
        repeated_data.preset("tiny", overrides=["train.batch_size=7"])
