"""Classifiers of feature vectors for double descent (Nakkiran et al. 2019;
Liu & Flanigan): a one-hidden-layer MLP and a small 1-D CNN whose width is
the axis of model-wise double descent (:class:`~interp.config.models.ClassifierConfig`).

Both are TransformerLens ``HookedRootModule`` s, so ``run_with_cache`` works
as on our other models. Hook points: ``hook_hidden`` (the last hidden
activation, [batch, width]) and ``hook_out`` (logits).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config.core import ConfigError, InputError
from interp.config.models import ClassifierConfig


def _norm(kind: str, width: int, conv: bool) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if conv else nn.LayerNorm(width)
    return nn.Identity()


class HookedClassifier(HookedRootModule):
    """MLP or 1-D CNN on ``[batch, d_in]`` features; returns ``[batch, classes]`` logits."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        if cfg.d_in is None or cfg.classes is None:
            raise ConfigError("ClassifierConfig.d_in and classes must be set (resolve the config)")
        self.cfg = cfg
        w = cfg.width
        if cfg.arch == "mlp":
            self.body = nn.Sequential(
                nn.Linear(cfg.d_in, w), _norm(cfg.normalization, w, False), nn.ReLU()
            )
        else:
            self.body = nn.Sequential(
                nn.Conv1d(1, w, 5, padding=2), _norm(cfg.normalization, w, True), nn.ReLU(),
                nn.Conv1d(w, w, 5, stride=2, padding=2), _norm(cfg.normalization, w, True),
                nn.ReLU(),
            )  # fmt: skip
        self.out = nn.Linear(w, cfg.classes)
        self.hook_hidden = HookPoint()
        self.hook_out = HookPoint()
        self.setup()

    def forward(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch classes"]:
        if x.ndim != 2 or x.shape[1] != self.cfg.d_in:
            raise InputError(
                f"expected features of shape [batch, {self.cfg.d_in}], got {tuple(x.shape)}"
            )
        if self.cfg.arch == "mlp":
            h = self.body(x)
        else:
            h = self.body(x[:, None, :]).mean(-1)
        return self.hook_out(self.out(self.hook_hidden(h)))


def make_classifier(
    cfg: ClassifierConfig, seed: int, device: str | torch.device = "cpu"
) -> HookedClassifier:
    """The classifier ``cfg`` describes, PyTorch's default init from ``seed``,
    every parameter of the linear maps and convolutions scaled by ``init_scale``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HookedClassifier(cfg)
    if cfg.init_scale != 1.0:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Linear, nn.Conv1d)):
                    for p in m.parameters():
                        p.mul_(cfg.init_scale)
    return model.to(device)


def parameter_count(cfg: ClassifierConfig) -> int:
    """Trainable parameters of ``cfg``'s classifier (normalization included)."""
    return sum(p.numel() for p in HookedClassifier(cfg).parameters())


__all__ = ["HookedClassifier", "make_classifier", "parameter_count"]
