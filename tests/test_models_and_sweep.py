from __future__ import annotations

import pandas as pd
import pytest
import torch

from interp import open_run
from interp.analysis import fourier_progress, sweep
from interp.analysis.sweep import analyzer_name
from interp.models import MLPConfig, TransformerConfig, make_mlp, make_transformer, named_weights


def test_transformer_bridge_hooks_and_weights():
    model = make_transformer(TransformerConfig(n_ctx=3, d_vocab=8, d_vocab_out=7), seed=0)
    logits, cache = model.run_with_cache(torch.tensor([[1, 2, 7]]))
    assert logits.shape == (1, 3, 7)
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, 4, 3, 3)
    assert model.W_E.shape == (8, 64) and model.W_U.shape == (64, 7)
    assert set(named_weights(model)) >= {"embed.weight", "blocks.0.attn.q.weight", "unembed.weight"}
    assert len(named_weights(model)) == len(list(model.parameters()))
    same = make_transformer(TransformerConfig(n_ctx=3, d_vocab=8, d_vocab_out=7), seed=0)
    assert torch.equal(same.W_E, model.W_E)


@pytest.mark.parametrize("combine,shared", [("concat", False), ("sum", True)])
def test_mlp_hooks(combine, shared):
    cfg = MLPConfig(
        n_tokens=11,
        d_out=11,
        d_embed=8,
        d_hidden=16,
        combine=combine,
        shared_embedding=shared,
        d_readout=8 if shared else None,
    )
    model = make_mlp(cfg, seed=1)
    logits, cache = model.run_with_cache(torch.tensor([[1, 2], [3, 4]]))
    assert logits.shape == (2, 11)
    assert cache["hook_hidden"].shape == (2, 16)
    assert cache["hook_embed"].shape == (2, 16 if combine == "concat" else 8)
    assert bool((cache["hook_hidden"] >= 0).all())
    with pytest.raises((ValueError, TypeError), match="pairs"):
        model(torch.tensor([1, 2, 3]))


def test_make_model_does_not_touch_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    make_mlp(MLPConfig(n_tokens=5, d_out=5), seed=0)
    make_transformer(TransformerConfig(n_ctx=3, d_vocab=6, d_vocab_out=5), seed=0)
    assert torch.equal(before, torch.get_rng_state())


def test_sweep_is_tidy_and_cached(tiny_run, monkeypatch):
    run = open_run(tiny_run)
    df = sweep(run, [fourier_progress])
    assert list(df.columns) == [
        "step",
        "layer",
        "head",
        "source_layer",
        "source_head",
        "item",
        "metric",
        "value",
    ]
    assert sorted(df["step"].unique()) == run.steps
    assert {"restricted_loss", "excluded_loss", "embedding_gini", "sum_squared_weights"} <= set(
        df["metric"]
    )
    assert df["layer"].isna().all()

    def per_head(model) -> torch.Tensor:
        return torch.arange(model.cfg.n_layers * model.cfg.n_heads, dtype=torch.float).reshape(
            model.cfg.n_layers, model.cfg.n_heads
        )

    both = sweep(run, [fourier_progress, per_head], steps=[0, 60])
    heads = both[both["metric"] == "per_head"]
    assert len(heads) == 2 * 1 * 2 and heads["head"].tolist() == [0, 1, 0, 1]

    # a second call is served from analysis/ without loading any checkpoint
    monkeypatch.setattr(type(run), "load", lambda *a, **k: pytest.fail("checkpoint reloaded"))
    again = sweep(open_run(tiny_run), [fourier_progress])
    pd.testing.assert_frame_equal(again, df)


def test_sweep_bad_input(tiny_run):
    with pytest.raises(ValueError, match=r"steps \[3\] have no checkpoint"):
        sweep(tiny_run, [fourier_progress], steps=[3])
    with pytest.raises(ValueError, match="at least one analyzer"):
        sweep(tiny_run, [])


def test_analyzer_names():
    import functools

    def f(model, k=1):
        return {}

    assert analyzer_name(f) == "f"
    assert analyzer_name(functools.partial(f, k=2)) == "f(k=2)"


def test_beartype_checks_jaxtyping_shapes():
    """The conftest import hook makes shape annotations real checks."""
    from interp.analysis.fourier import embedding_frequency_norms

    with pytest.raises(Exception, match="(?i)type-check|shape|dimension|violates"):
        embedding_frequency_norms(torch.zeros(5))  # wants [p, d]
