"""SNIP, GraSP and SynFlow against scores worked out by hand on tiny networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interp.pruning import mask_from_scores
from interp.pruning.scores import grasp_scores, snip_scores, synflow_scores

X = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
T = 0.5


def two_layer() -> nn.Sequential:
    """y = w2 · (W1 x), no biases, weights set by hand."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -1.0], [2.0, 0.25]]))
        net[1].weight.copy_(torch.tensor([[1.5, -0.5]]))
    return net


def mse(model: nn.Module) -> torch.Tensor:
    return 0.5 * ((model(X.to(next(model.parameters()).dtype)) - T) ** 2).sum()


def test_snip_is_abs_weight_times_gradient_by_hand():
    net = two_layer()
    W1, w2 = net[0].weight.detach(), net[1].weight.detach()[0]
    h = W1 @ X[0]  # hidden = [2.5, 1.5]
    r = float(w2 @ h) - T  # residual 3.0 - 0.5 = 2.5
    assert r == pytest.approx(2.5)
    d_w2 = r * h
    d_W1 = r * torch.outer(w2, X[0])
    s = snip_scores(net, mse)
    torch.testing.assert_close(s["1.weight"][0], (w2 * d_w2).abs())
    torch.testing.assert_close(s["0.weight"], (W1 * d_W1).abs())
    # the model passed in is untouched (no grads, same dtype)
    assert net[0].weight.grad is None


def test_grasp_is_weight_times_hessian_gradient_product_by_hand():
    # one linear layer, L = ½(w·x − t)²: g = r x, H = x xᵀ, Hg = r |x|² x
    net = nn.Linear(2, 1, bias=False).double()
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    with torch.no_grad():
        net.weight.copy_(w[None])
    x = X[0]
    r = float(w @ x) - T  # 0.3 - 1.4 - 0.5 = -1.6
    hg = r * float(x @ x) * x
    s = grasp_scores(net, mse)
    torch.testing.assert_close(s["weight"][0], w * hg)


def test_grasp_matches_an_explicit_hessian_on_two_layers():
    net = two_layer()
    params = [p.detach().clone() for p in net.parameters()]
    shapes = [p.shape for p in params]
    flat = torch.cat([p.flatten() for p in params])

    def loss_of(v):
        W1 = v[:4].reshape(shapes[0])
        w2 = v[4:].reshape(shapes[1])
        return 0.5 * ((X @ W1.T @ w2.T) - T).pow(2).sum()

    g = torch.autograd.functional.jacobian(loss_of, flat)
    H = torch.autograd.functional.hessian(loss_of, flat)
    expect = flat * (H @ g)
    s = grasp_scores(net, mse)
    torch.testing.assert_close(s["0.weight"].flatten(), expect[:4])
    torch.testing.assert_close(s["1.weight"].flatten(), expect[4:])


def ones_forward(model: nn.Module) -> torch.Tensor:
    return model(torch.ones(1, 2, dtype=torch.float64))


def test_synflow_scores_are_path_norms_by_hand():
    # R = 1ᵀ|w2||W1|1  ⇒  score(W1_ij) = |W1_ij|·|w2_i|,  score(w2_i) = |w2_i|·Σ_j |W1_ij|
    net = two_layer()
    A1, a2 = net[0].weight.detach().abs(), net[1].weight.detach().abs()[0]
    scores, mask = synflow_scores(net, ones_forward)
    torch.testing.assert_close(scores["0.weight"], A1 * a2[:, None])
    torch.testing.assert_close(scores["1.weight"][0], a2 * A1.sum(1))
    assert all(bool(m.all()) for m in mask.values())  # rate 0 prunes nothing
    assert float(net[0].weight.detach()[0, 1]) == -1.0  # signs of the original are kept


def test_iterative_synflow_removes_the_rate_and_rescores():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5, bias=False), nn.Linear(5, 3, bias=False)).double()
    ones6 = lambda m: m(torch.ones(1, 6, dtype=torch.float64))  # noqa: E731
    scores, mask = synflow_scores(net, ones6, rate=0.6, iterations=5)
    total = sum(m.numel() for m in mask.values())
    assert sum(int((~m).sum()) for m in mask.values()) == round(0.6 * total)
    # one shot at the same rate is the plain score ranking
    _s1, m1 = synflow_scores(net, ones6, rate=0.6, iterations=1)
    plain, _ = synflow_scores(net, ones6)
    expect = mask_from_scores(plain, 0.6)
    assert all(torch.equal(m1[n], expect[n]) for n in expect)
    # the final mask removes the lowest scores of the last round
    kept = torch.cat([scores[n][mask[n]] for n in mask])
    gone = torch.cat([scores[n][~mask[n]] for n in mask])
    assert float(gone.max()) <= float(kept.min())
    with pytest.raises(ValueError, match="iterations"):
        synflow_scores(net, ones6, iterations=0)


def test_grasp_over_prunable_weights_uses_their_hessian_block_only():
    """With a bias (not prunable), ``wrt="prunable"`` is θ_W ⊙ H_WW g_W (the
    Grokking-Tickets code's GraSP) and ``wrt="all"`` θ_W ⊙ (H g)_W, each from
    an explicit Hessian; the temperature lives in the loss (CE of logits/T)."""
    torch.manual_seed(0)
    net = nn.Linear(3, 4).double()
    x, y, temp = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 1]), 200.0
    W, b = net.weight.detach().clone(), net.bias.detach().clone()

    def ce(v: torch.Tensor) -> torch.Tensor:
        Wv, bv = v[:12].reshape(4, 3), v[12:]
        return nn.functional.cross_entropy((x @ Wv.T + bv) / temp, y)

    flat = torch.cat([W.flatten(), b])
    g = torch.autograd.functional.jacobian(ce, flat)
    H = torch.autograd.functional.hessian(ce, flat)
    only_w = W.flatten() * (H[:12, :12] @ g[:12])
    whole = W.flatten() * (H @ g)[:12]
    assert (only_w - whole).abs().max() > 0.01 * whole.abs().max()  # the bias's block matters

    def loss(m: nn.Module) -> torch.Tensor:
        return nn.functional.cross_entropy(m(x) / temp, y)

    close = {"rtol": 1e-9, "atol": 0.0}  # the scores are ~1e-9: relative only
    torch.testing.assert_close(grasp_scores(net, loss)["weight"].flatten(), only_w, **close)
    torch.testing.assert_close(
        grasp_scores(net, loss, wrt="all")["weight"].flatten(), whole, **close
    )
    with pytest.raises(Exception, match="wrt"):
        grasp_scores(net, loss, wrt="some")
