"""Grokfast gradient filters (Lee et al. 2024, "Grokfast: Accelerated Grokking
by Amplifying Slow Gradients", Algorithms 1 and 2).

Each filter keeps a low-pass estimate ``h`` of every parameter's gradient and
adds ``lamb · h`` to the gradient before the optimizer step:

* ``ema``: ``h ← α·h + (1−α)·g`` (Algorithm 2);
* ``ma``: ``h`` = mean of the last ``window`` gradients, applied only once the
  window is full (Algorithm 1).

State is a dict of tensors so it saves to safetensors and resumes exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from interp.config.train import GrokfastConfig


class GrokfastFilter:
    """Stateful gradient filter over a fixed, named set of parameters."""

    def __init__(self, cfg: GrokfastConfig, params: dict[str, nn.Parameter]):
        self.cfg = cfg
        self.params = params
        self.state: dict[str, Tensor] = {}
        self.count = 0  # gradients seen (MA: fills the ring buffer)

    @torch.no_grad()
    def apply(self) -> None:
        """Filter the ``.grad`` of every parameter in place."""
        cfg = self.cfg
        for name, p in self.params.items():
            if p.grad is None:
                continue
            g = p.grad
            if cfg.kind == "ema":
                h = self.state.get(name)
                h = (
                    g.detach().clone()
                    if h is None
                    else h.mul_(cfg.alpha).add_(g, alpha=1 - cfg.alpha)
                )
                self.state[name] = h
                g.add_(h, alpha=cfg.lamb)
            else:
                buf = self.state.get(name)
                if buf is None:
                    buf = torch.zeros((cfg.window, *g.shape), dtype=g.dtype, device=g.device)
                    self.state[name] = buf
                buf[self.count % cfg.window].copy_(g)
                if self.count + 1 >= cfg.window:
                    g.add_(buf.mean(dim=0), alpha=cfg.lamb)
        self.count += 1

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything needed to resume, as named tensors."""
        out = {f"grokfast.{k}": v.detach().clone() for k, v in self.state.items()}
        out["grokfast.__count__"] = torch.tensor([self.count], dtype=torch.int64)
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.state = {
            k[len("grokfast.") :]: v.clone()
            for k, v in tensors.items()
            if k.startswith("grokfast.") and k != "grokfast.__count__"
        }
        self.count = int(tensors["grokfast.__count__"].item())
