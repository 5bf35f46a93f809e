"""Memorization and copying measures on models whose answers are known, the
effective-size inversion on synthetic power-law data, and one tiny
repeated-data run end to end (resume included)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from handbuilt import V, build_model
from torch import nn

from interp.analysis.memorization import (
    PowerLaw,
    copy_losses,
    effective_size,
    effective_size_intervals,
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


def test_the_irreducible_term_is_recovered_from_four_sizes():
    """L = E + a·N^−α with E = 1.2: the fit with an irreducible term finds it
    (to the grid step), the pure power law cannot, and effective size
    inverts the fitted law."""
    truth = PowerLaw(a=30.0, alpha=0.3, irreducible=1.2)
    n = [1e4, 1e5, 1e6, 1e7]
    loss = [truth.loss(v) for v in n]
    law = fit_power_law(n, loss, irreducible=True)
    assert law.irreducible == pytest.approx(1.2, abs=2e-3)
    assert law.alpha == pytest.approx(0.3, rel=0.02)
    pure = fit_power_law(n, loss)
    assert pure.irreducible == 0 and abs(pure.loss(1e8) - truth.loss(1e8)) > 0.1
    assert effective_size(law, law.loss(3e5)) == pytest.approx(3e5, rel=1e-6)
    assert effective_size(law, 1.0) == math.inf  # below the irreducible loss
    with pytest.raises(ValueError, match="three distinct sizes"):
        fit_power_law(n[:2], loss[:2], irreducible=True)


def test_effective_size_intervals_bootstrap_over_seeds():
    """Baselines that sit exactly on a power law map to 1 with a tight
    interval; seed noise in the baselines widens every interval, and the
    interval of a run contains its point estimate."""
    law = PowerLaw(a=5.0, alpha=0.1)
    rows = []
    for size, n in (("a", 1e4), ("b", 1e5), ("c", 1e6)):
        for seed, noise in enumerate((0.0, 0.0, 0.0)):
            rows.append(dict(size=size, run="f0", kind="f0", seed=seed,
                             non_embedding_params=n, test_loss=law.loss(n) + noise))  # fmt: skip
        rows.append(dict(size=size, run="rep", kind="repeated", seed=0,
                         non_embedding_params=n, test_loss=law.loss(n / 4)))  # fmt: skip
    exact = effective_size_intervals(pd.DataFrame(rows), n_boot=200)
    f0 = exact[exact["run"] == "f0"]
    assert f0["ratio"].to_numpy() == pytest.approx(1.0, rel=1e-9)
    assert (f0["ratio_hi"] - f0["ratio_lo"]).max() < 1e-9
    rep = exact[exact["run"] == "rep"]
    assert rep["ratio"].to_numpy() == pytest.approx(0.25, rel=1e-9)
    noisy = pd.DataFrame(rows)
    noisy.loc[noisy["kind"] == "f0", "test_loss"] += np.tile([-0.05, 0.0, 0.05], 3)
    iv = effective_size_intervals(noisy, n_boot=300)
    assert ((iv["ratio_lo"] <= iv["ratio"]) & (iv["ratio"] <= iv["ratio_hi"])).all()
    assert (iv["ratio_hi"] / iv["ratio_lo"]).min() > 1.3  # seed noise is worth a factor in N
    assert {"ratio_seed0", "ratio_seed0_lo", "ratio_seed0_hi"} <= set(iv.columns)
