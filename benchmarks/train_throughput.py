"""Training throughput of the `paper` grokking model on this machine (prints JSON).

Three measurements in one process, per thread count:

1. our trainer (``interp.training.train`` through the TransformerLens bridge),
   steps/s and achieved GFLOP/s — the whole call, including its evaluations at
   the first and last step and two checkpoint writes;
2. the same model and optimiser as a minimal plain-PyTorch loop (our overhead
   ratio = plain steps/s ÷ ours; goal ≤ 1.10);
3. plain matmuls of the same FLOPs per step (the fraction of the machine's
   matmul throughput the trainer reaches).

It also reports the cost of ``torch.use_deterministic_algorithms(True)`` and
the step rate with ``train.readout_only`` (the last layer computed only at the
read-out position, :mod:`interp.models.readout`; the GFLOP figures count the
full forward).

    python benchmarks/train_throughput.py [--preset paper] [--steps 60] [--threads 1 2]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from plain_model import PlainTransformer

from interp.experiments import grokking
from interp.models import make_model
from interp.training import RunStore, train


def flops_per_step(cfg: grokking.GrokkingConfig, n_train: int) -> float:
    """Matmul FLOPs of one full-batch training step (forward + backward ≈ 3 × forward).

    Per token: Q, K, V, O projections 8·d·d_head·n_heads, attention scores and
    mixing 4·n_ctx·d_head·n_heads, MLP 4·d·d_mlp, unembedding 2·d·p (the bridge
    computes logits at every position, and so does the plain loop).
    """
    m = cfg.model
    d, hd, nh, ctx, p = m.d_model, m.d_head, m.n_heads, m.n_ctx, m.d_vocab_out
    per_token = 8 * d * hd * nh + 4 * ctx * hd * nh + 4 * d * m.d_mlp + 2 * d * p
    return 3.0 * per_token * ctx * n_train


def time_ours(cfg, steps: int) -> float:
    task = grokking.make_task(cfg)
    tcfg = replace(
        cfg.train, steps=steps, eval_every=steps, checkpoint_every=steps, checkpoint_log_early=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        store.init("benchmark", {}, {})
        model = make_model(cfg.model, seed=0)
        # warm-up outside the timed region
        warm = RunStore(f"{tmp}/warm")
        warm.init("benchmark", {}, {})
        train(
            make_model(cfg.model, seed=0),
            task,
            replace(tcfg, steps=3, eval_every=3, checkpoint_every=3),
            warm,
            0,
            quiet=True,
        )
        t0 = time.perf_counter()
        train(model, task, tcfg, store, 0, quiet=True)
        return time.perf_counter() - t0


def plain_step(model: torch.nn.Module, forward, cfg, x, y):
    """One full-batch AdamW step of ``model`` through ``forward`` (the model
    itself or a compiled wrapper), float64 loss at the read-out position."""
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.train.lr,
        betas=cfg.train.betas,
        weight_decay=cfg.train.weight_decay,
    )

    def step():
        loss = F.cross_entropy(forward(x)[:, -1].double(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def time_plain(cfg, steps: int) -> float:
    task = grokking.make_task(cfg)
    torch.manual_seed(0)
    model = PlainTransformer(cfg.model)
    step = plain_step(model, model, cfg, task.train_inputs, task.train_labels)
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def matmul_gflops(total_flops: float, n: int = 512) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    reps = max(1, round(total_flops / (2 * n**3)))
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    dt = time.perf_counter() - t0
    return 2 * n**3 * reps / dt / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", help="a transformer grokking preset")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = grokking.preset(args.preset)
    cfg = replace(cfg, train=replace(cfg.train, readout_only=False))
    cfg_readout = replace(cfg, train=replace(cfg.train, readout_only=True))
    n_train = grokking.make_task(cfg).train_inputs.shape[0]
    fl = flops_per_step(cfg, n_train)
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        # interleaved, best of --repeats: this machine's timings drift by 10-30%
        ours, plain, readout = float("inf"), float("inf"), float("inf")
        for _ in range(args.repeats):
            ours = min(ours, time_ours(cfg, args.steps))
            plain = min(plain, time_plain(cfg, args.steps))
            readout = min(readout, time_ours(cfg_readout, args.steps))
        torch.use_deterministic_algorithms(True)
        ours_det = time_ours(cfg, args.steps)
        torch.use_deterministic_algorithms(False)
        mm = matmul_gflops(fl * 20)
        ours_sps, plain_sps = args.steps / ours, args.steps / plain
        results.append(
            {
                "threads": threads,
                "ours_steps_per_s": round(ours_sps, 2),
                "ours_gflops": round(fl * ours_sps / 1e9, 2),
                "plain_steps_per_s": round(plain_sps, 2),
                "plain_gflops": round(fl * plain_sps / 1e9, 2),
                "overhead_ratio": round(plain_sps / ours_sps, 3),
                "readout_only_steps_per_s": round(args.steps / readout, 2),
                "readout_speedup": round(ours / readout, 3),
                "deterministic_algorithms_steps_per_s": round(args.steps / ours_det, 2),
                "matmul_gflops": round(mm, 2),
                "fraction_of_matmul_peak": round(fl * ours_sps / 1e9 / mm, 3),
            }
        )
    print(
        json.dumps(
            {
                "preset": args.preset,
                "model": str(cfg.model),
                "train_examples": n_train,
                "gflop_per_step": round(fl / 1e9, 3),
                "steps_timed": args.steps,
                "torch": torch.__version__,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
