"""Grokking with a plain-PyTorch model: which initialisation groks like the reference?

The reference measurements in ``shared/reference`` (TF-59: t_mem 80, t_gen
1070–1890 steps for seeds 0–2) come from plain-PyTorch probes whose
initialisation is not recorded. This trains :class:`plain_model.PlainTransformer`
(PyTorch's default init, embeddings N(0, ``--embed-std``²)) on a preset's own
data split with the preset's optimiser (lr, warm-up, betas, weight decay,
float64 loss, full batch) and a minimal loop — so against our runs of the same
preset and seed only the model's initialisation (and its trained unembedding
bias) differs. ``--embed-std 1`` is ``nn.Embedding``'s default; TransformerLens
draws embeddings with std ≈ 0.1 (0.8/√d_model).

    python benchmarks/plain_grokking.py --preset cpu-quick-transformer \
        --seed 0 --seed 1 --seed 2 --embed-std 1.0 [--steps 4000]

Prints one JSON object per seed: steps to 95% train (t_mem) and test (t_gen)
accuracy, evaluated every ``train.eval_every`` steps, null if not reached.
One thread (bit-reproducible).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from plain_model import PlainTransformer

from interp.config import ConfigError
from interp.config.train import ACC_THRESHOLD
from interp.experiments import grokking
from interp.models import TransformerConfig


def run(cfg: grokking.GrokkingConfig, embed_std: float, steps: int) -> dict:
    task = grokking.make_task(cfg)
    torch.manual_seed(cfg.seed)
    model = PlainTransformer(cfg.model, embed_std)
    tc = cfg.train
    opt = torch.optim.AdamW(
        model.parameters(), lr=tc.lr, betas=tc.betas, eps=tc.eps, weight_decay=tc.weight_decay
    )
    splits = {
        "train": (task.train_inputs, task.train_labels),
        "test": (task.test_inputs, task.test_labels),
    }
    t_mem = t_gen = None
    acc: dict[str, float] = {}
    start = time.perf_counter()
    step = 0
    while True:
        if step % tc.eval_every == 0 or step == steps:
            with torch.no_grad():
                for split, (x, y) in splits.items():
                    acc[split] = (model(x)[:, -1].argmax(-1) == y).double().mean().item()
            if t_mem is None and acc["train"] >= ACC_THRESHOLD:
                t_mem = step
            if acc["test"] >= ACC_THRESHOLD:
                t_gen = step
                break
        if step == steps:
            break
        step += 1
        for group in opt.param_groups:
            group["lr"] = tc.lr_at(step)
        x, y = splits["train"]
        loss = F.cross_entropy(model(x)[:, -1].double(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {
        "seed": cfg.seed,
        "embed_std": embed_std,
        "t_mem": t_mem,
        "t_gen": t_gen,
        "last_step": step,
        "train_accuracy": round(acc["train"], 4),
        "test_accuracy": round(acc["test"], 4),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu-quick-transformer", help="a transformer preset")
    ap.add_argument("--seed", type=int, action="append", help="repeatable; default 0, 1, 2")
    ap.add_argument("--embed-std", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=4000)
    args = ap.parse_args()
    if args.embed_std <= 0 or args.steps < 1:
        ap.error("--embed-std must be > 0 and --steps >= 1")
    torch.set_num_threads(1)
    for seed in args.seed or [0, 1, 2]:
        try:
            cfg = grokking.preset(args.preset, seed=seed)
            if not isinstance(cfg.model, TransformerConfig):
                raise ConfigError(f"preset {args.preset!r} is not a transformer")
        except ConfigError as exc:
            ap.error(str(exc))
        print(json.dumps(run(cfg, args.embed_std, args.steps)), flush=True)


if __name__ == "__main__":
    main()
