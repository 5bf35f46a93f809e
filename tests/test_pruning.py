"""Masks on hand-made weights, and a ticket run end to end on the tiny preset."""

from __future__ import annotations

import pytest
import torch

from interp import open_run
from interp.experiments import grokking, tickets
from interp.models import MLPConfig, make_mlp
from interp.pruning import (
    jaccard,
    load_mask,
    magnitude_mask,
    mask_from_scores,
    prunable_weights,
    random_mask,
    random_mask_like,
    save_mask,
    sparsity,
)
from interp.training import CorruptCheckpointError


def _mlp_with(weights: dict[str, torch.Tensor]):
    model = make_mlp(MLPConfig(n_tokens=3, d_out=3, d_embed=2, d_hidden=2, bias=True), seed=0)
    with torch.no_grad():
        for name, p in model.state_dict(keep_vars=True).items():
            p.copy_(weights.get(name, torch.zeros_like(p)))
    return model


def test_prunable_weights_are_matrices_not_biases():
    model = make_mlp(MLPConfig(n_tokens=5, d_out=5, bias=True), seed=0)
    names = set(prunable_weights(model))
    assert names == {"embed_a.weight", "embed_b.weight", "hidden.weight", "out.weight"}
    assert set(prunable_weights(model, include=["hidden.*"])) == {"hidden.weight", "hidden.bias"}
    with pytest.raises(ValueError, match="no prunable parameters match"):
        prunable_weights(model, include=["nope*"])


def test_magnitude_mask_keeps_exactly_the_largest_entries():
    values = torch.arange(1, 37, dtype=torch.float32)
    perm = values[torch.randperm(36, generator=torch.Generator().manual_seed(0))]
    w = {
        "embed_a.weight": -perm[:6].reshape(3, 2),  # signs must not matter
        "embed_b.weight": perm[6:12].reshape(3, 2),
        "hidden.weight": perm[12:20].reshape(2, 4),
        "out.weight": perm[20:26].reshape(3, 2),
    }
    model = _mlp_with(w)
    mask = magnitude_mask(model, rate=0.5, scope="global")
    kept = torch.cat([w[n].abs().flatten()[mask[n].flatten()] for n in w])
    dropped = torch.cat([w[n].abs().flatten()[~mask[n].flatten()] for n in w])
    assert kept.numel() == 13 and dropped.numel() == 13  # 26 prunable weights
    assert kept.min() > dropped.max()
    layer = magnitude_mask(model, rate=0.5, scope="layer")
    for n in w:
        k = w[n].abs().flatten()
        assert layer[n].sum() == k.numel() // 2
        assert k[layer[n].flatten()].min() > k[~layer[n].flatten()].max()


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.6, 0.9])
def test_global_and_per_layer_rates_are_exact(rate):
    model = make_mlp(MLPConfig(n_tokens=7, d_out=7, d_embed=10, d_hidden=13), seed=1)
    n_total = sum(p.numel() for p in prunable_weights(model).values())
    g = magnitude_mask(model, rate, "global")
    assert sum(int((~m).sum()) for m in g.values()) == round(rate * n_total)
    per = magnitude_mask(model, rate, "layer")
    for name, m in per.items():
        assert int((~m).sum()) == round(rate * m.numel()), name
    with pytest.raises(ValueError, match=r"rate \(fraction removed\) must be in \[0, 1\)"):
        magnitude_mask(model, 1.0)


def test_ties_are_broken_deterministically():
    scores = {"w": torch.ones(10)}
    a, b = mask_from_scores(scores, 0.5, seed=3), mask_from_scores(scores, 0.5, seed=3)
    assert torch.equal(a["w"], b["w"]) and int(a["w"].sum()) == 5


def test_random_mask_matches_per_layer_sparsity_and_jaccard():
    model = make_mlp(MLPConfig(n_tokens=7, d_out=7, d_embed=10, d_hidden=13), seed=1)
    mask = magnitude_mask(model, 0.6)
    rnd = random_mask_like(mask, seed=0)
    for n in mask:
        assert int(rnd[n].sum()) == int(mask[n].sum())
    assert sparsity(rnd) == pytest.approx(sparsity(mask))
    assert jaccard(mask, mask) == 1.0
    inverse = {n: ~m for n, m in mask.items()}
    assert jaccard(mask, inverse) == 0.0
    half = {"w": torch.tensor([True, True, False, False])}
    other = {"w": torch.tensor([True, False, True, False])}
    assert jaccard(half, other) == pytest.approx(1 / 3)


def test_mask_files_round_trip_and_detect_corruption(tmp_path):
    model = make_mlp(MLPConfig(n_tokens=5, d_out=5), seed=0)
    mask = magnitude_mask(model, 0.6)
    path = save_mask(tmp_path / "m.safetensors", mask, {"rate": 0.6})
    back = load_mask(path)
    assert all(torch.equal(back[n], mask[n]) for n in mask)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="m.safetensors"):
        load_mask(path)


def test_ticket_run_rewinds_and_keeps_pruned_weights_at_zero(tmp_path):
    dense = tmp_path / "dense"
    grokking.run(grokking.preset("tiny"), str(dense), device="cpu", quiet=True)
    cfg = tickets.ticket_config(dense, step=None, rate=0.6, rewind=0)
    assert cfg.ticket.source_step == 60 and cfg.ticket.rate == 0.6
    tickets.run(cfg, str(tmp_path / "ticket"), device="cpu", quiet=True, stop_after_step=30)
    res = tickets.run(cfg, str(tmp_path / "ticket"), device="cpu", quiet=True)  # resumes
    assert res.resumed_from == 20
    run = open_run(tmp_path / "ticket")
    mask = load_mask(tmp_path / "ticket" / tickets.MASK_FILE)
    assert sparsity(mask)["total"] == pytest.approx(0.6, abs=1e-3)
    init = open_run(dense).store.load_weights(0)
    w0 = run.store.load_weights(0)
    for n, m in mask.items():
        assert torch.equal(w0[n][m], init[n][m])  # survivors rewound to init
        for s in run.steps:
            assert bool((run.store.load_weights(s)[n][~m] == 0).all()), (n, s)
    # an uninterrupted ticket run ends identical
    tickets.run(cfg, str(tmp_path / "ticket2"), device="cpu", quiet=True)
    assert open_run(tmp_path / "ticket2").sha(60) == run.sha(60)
    with pytest.raises(ValueError, match="has no checkpoint there"):
        tickets.ticket_config(dense, step=7)


def test_controls_random_mask_and_norm_matched_dense(tmp_path):
    dense = tmp_path / "dense"
    grokking.run(grokking.preset("tiny"), str(dense), device="cpu", quiet=True)
    ticket_mask = tickets.find_mask(open_run(dense), 60, 0.6)

    rnd_cfg = tickets.ticket_config(dense, control="random_matched", overrides=["train.steps=20"])
    tickets.run(rnd_cfg, str(tmp_path / "random"), device="cpu", quiet=True)
    rnd = load_mask(tmp_path / "random" / tickets.MASK_FILE)
    assert sparsity(rnd) == pytest.approx(sparsity(ticket_mask))  # per matrix
    assert jaccard(rnd, ticket_mask) < 0.9
    glob_cfg = tickets.ticket_config(dense, control="random", overrides=["train.steps=20"])
    tickets.run(glob_cfg, str(tmp_path / "random_global"), device="cpu", quiet=True)
    glob = load_mask(tmp_path / "random_global" / tickets.MASK_FILE)
    assert sparsity(glob)["total"] == pytest.approx(sparsity(ticket_mask)["total"], abs=1e-3)
    assert sparsity(glob) != pytest.approx(sparsity(ticket_mask))  # one global threshold

    init = open_run(dense).store.load_weights(0)
    for control, p in (("dense_l1", 1), ("dense_l2", 2)):
        cfg = tickets.ticket_config(dense, control=control, overrides=["train.steps=20"])
        tickets.run(cfg, str(tmp_path / control), device="cpu", quiet=True)
        w0 = open_run(tmp_path / control).store.load_weights(0)
        target = sum(float((init[n] * m).abs().pow(p).sum()) for n, m in ticket_mask.items())
        got = sum(float(w0[n].abs().pow(p).sum()) for n in ticket_mask)
        assert got ** (1 / p) == pytest.approx(target ** (1 / p), rel=1e-5)
        summary = open_run(tmp_path / control).summary()
        dense_norm = sum(float(init[n].abs().pow(p).sum()) for n in ticket_mask) ** (1 / p)
        assert summary["norm_scale"] == pytest.approx(target ** (1 / p) / dense_norm, rel=1e-5)
        assert all(bool((w0[n] != 0).any()) for n in ticket_mask)  # dense: nothing pruned

    no_wd = tickets.ticket_config(dense, overrides=["train.weight_decay=0"])
    assert no_wd.train.weight_decay == 0.0 and no_wd.ticket.control == "ticket"
    with pytest.raises(ValueError, match="ticket.control"):
        tickets.ticket_config(dense, control="magnitude-at-init")


def test_overlap_across_checkpoints_and_kept_key_frequency_share(tmp_path):
    import math

    from interp.pruning.overlap import (
        embedding_and_mask,
        kept_key_frequency_share,
        masks_over_checkpoints,
        overlap_table,
        ticket_structure,
    )

    dense = tmp_path / "dense"
    grokking.run(grokking.preset("tiny"), str(dense), device="cpu", quiet=True)
    run = open_run(dense)
    masks = masks_over_checkpoints(run, 0.6)
    table = overlap_table(masks)
    assert len(table) == len(run.steps) ** 2
    diag = table[table.step_a == table.step_b]
    assert (diag.jaccard == 1.0).all()
    piv = table.pivot_table(index="step_a", columns="step_b", values="jaccard")
    assert (piv.values == piv.values.T).all()
    structure = ticket_structure(run, 0.6)
    assert structure.jaccard_with_final.iloc[-1] == 1.0
    assert structure.kept_key_frequency_share.between(0, 1).all()

    # hand-built: an embedding holding only frequency 3 of Z_17
    p = 17
    x = torch.arange(p, dtype=torch.float64)
    emb = torch.stack([torch.cos(2 * math.pi * 3 * x / p), torch.sin(2 * math.pi * 3 * x / p)], 1)
    full = torch.ones(p, 2, dtype=torch.bool)
    assert kept_key_frequency_share(emb, full, [3]) == pytest.approx(1.0)
    assert kept_key_frequency_share(emb, full, [5]) == pytest.approx(0.0, abs=1e-12)
    sparse = full.clone()
    sparse[::2] = False  # masking breaks the pure frequency: the share drops
    assert kept_key_frequency_share(emb, sparse, [3]) < 0.9

    model = run.load()
    emb_t, m_t = embedding_and_mask(model, masks[run.last_step], 17)
    assert emb_t.shape == m_t.shape == (17, model.cfg.d_model)
    mlp = make_mlp(MLPConfig(n_tokens=5, d_out=5, d_embed=3), seed=0)
    emb_m, m_m = embedding_and_mask(mlp, magnitude_mask(mlp, 0.5), 5)
    assert emb_m.shape == m_m.shape == (5, 6)


def test_global_random_mask_is_one_threshold_at_the_rate():
    """The Grokking-Tickets code's random control: exactly ``rate`` removed in
    all, each matrix near the rate (not the ticket's per-matrix counts),
    reproducible from its seed."""
    model = make_mlp(MLPConfig(n_tokens=97, d_out=97, d_embed=64, d_hidden=128), seed=1)
    mask = random_mask(model, 0.6, seed=3)
    assert sparsity(mask)["total"] == pytest.approx(0.6, abs=1e-4)
    for n, m in mask.items():  # binomial spread around 0.6 for matrices of >= 6k weights
        assert abs(sparsity({n: m})[n] - 0.6) < 0.03
    again = random_mask(model, 0.6, seed=3)
    assert all(torch.equal(mask[n], again[n]) for n in mask)
    other = random_mask(model, 0.6, seed=4)
    assert jaccard(mask, other) < 0.5
