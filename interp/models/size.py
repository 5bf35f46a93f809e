"""How big a model is before it is built, and whether training it fits in memory.

The model is built on PyTorch's ``meta`` device, which allocates nothing, to
count its parameters exactly. Training with AdamW keeps four tensors per
parameter (weights, gradients, two moments), so a config whose model cannot
fit is refused with a message naming its size, instead of the operating
system killing the process mid-way.
"""

from __future__ import annotations

from typing import Any

import torch

from interp.config.core import ConfigError

BYTES_PER_PARAMETER = 4 * 4  # float32 weights, gradients, AdamW's two moments


def parameter_count(cfg: Any) -> int:
    """Parameters of the model ``cfg`` (a resolved model config), counted on
    the meta device."""
    from interp.models import make_model

    with torch.device("meta"):
        model = make_model(cfg, seed=0, device="meta")
    return sum(p.numel() for p in model.parameters())


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on ``device`` (None when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(cfg: Any, device: torch.device, share: float = 0.9) -> None:
    """Raise ConfigError when training the model ``cfg`` on ``device`` needs
    more than ``share`` of the memory free there."""
    need = parameter_count(cfg) * BYTES_PER_PARAMETER
    free = available_bytes(device)
    if free is not None and need > share * free:
        n = need // BYTES_PER_PARAMETER
        raise ConfigError(
            f"the model has {n:,} parameters: training it needs about {need / 2**30:.1f} GiB "
            f"(weights, gradients and AdamW state), more than the {free / 2**30:.1f} GiB free "
            f"on {device}; make it smaller (model.d_model, model.d_mlp, model.n_layers, …)"
        )


__all__ = ["BYTES_PER_PARAMETER", "available_bytes", "check_fits", "parameter_count"]
