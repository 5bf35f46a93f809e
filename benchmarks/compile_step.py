"""Does ``torch.compile`` pay for the ``cpu-quick`` grokking step? (prints JSON)

Full-batch training steps per second (AdamW, float64 loss at the read-out
position, as the trainer does) for the model built by
:func:`interp.models.make_model` (the TransformerLens bridge) and for the
minimal plain-PyTorch transformer of ``plain_model.py``, each eager and
through ``torch.compile`` (default inductor backend; the compile time is the
first five steps'). Run it on a quiet machine.

    python benchmarks/compile_step.py [--preset cpu-quick] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from plain_model import PlainTransformer
from train_throughput import plain_step

from interp.experiments import grokking
from interp.models import make_model


def steps_per_s(model: torch.nn.Module, forward: Callable, cfg, x, y, steps: int):
    """(steps/s after warm-up, seconds of the five warm-up steps)."""
    step = plain_step(model, forward, cfg, x, y)
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0), warm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    cfg = grokking.preset(args.preset)
    task = grokking.make_task(cfg)
    x, y = task.train_inputs, task.train_labels
    out: dict[str, object] = {
        "preset": args.preset,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }
    builders = {
        "plain": lambda: PlainTransformer(cfg.model),
        "bridge": lambda: make_model(cfg.model, seed=0),
    }
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build()
        out[f"{name}_eager_steps_per_s"] = round(
            steps_per_s(model, model, cfg, x, y, args.steps)[0], 1
        )
        torch.manual_seed(0)
        model = build()
        sps, warm = steps_per_s(model, torch.compile(model), cfg, x, y, args.steps)
        out[f"{name}_compiled_steps_per_s"] = round(sps, 1)
        out[f"{name}_compile_s"] = round(warm, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
