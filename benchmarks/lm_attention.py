"""Hooked vs fused attention in a language-model training step (prints JSON).

Times a training step (forward, backward, AdamW) of a repeated-data model with
the TL-native hooked attention and inside :func:`interp.models.fused_attention`,
and checks that two fused runs of ``--steps`` steps end bit-identical.

    python benchmarks/lm_attention.py [--size s] [--seq-len 512] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from interp.experiments.repeated_data import SIZES
from interp.models import make_model
from interp.models.fused_attention import fused_attention


def _steps(model, x, n: int, fused: bool) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    with fused_attention(model, fused):
        t0 = time.perf_counter()
        for _ in range(n):
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return (time.perf_counter() - t0) / n


def _sha(model) -> str:
    h = hashlib.sha256()
    for v in model.state_dict().values():
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="s", choices=sorted(SIZES))
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=257)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = replace(SIZES[a.size], n_ctx=a.seq_len, d_vocab=a.vocab, d_vocab_out=a.vocab)
    x = torch.randint(
        0, a.vocab, (a.batch, a.seq_len + 1), generator=torch.Generator().manual_seed(0)
    )
    out: dict = {"size": a.size, "seq_len": a.seq_len, "batch": a.batch, "threads": a.threads}
    for fused in (False, True):
        model = make_model(cfg, seed=0, device="cpu")
        _steps(model, x, 1, fused)  # warm-up
        out["fused_s_per_step" if fused else "hooked_s_per_step"] = round(
            _steps(model, x, a.steps, fused), 4
        )
    out["speedup"] = round(out["hooked_s_per_step"] / out["fused_s_per_step"], 2)
    shas = []
    for _ in range(2):
        model = make_model(cfg, seed=0, device="cpu")
        _steps(model, x, a.steps, True)
        shas.append(_sha(model))
    out["fused_reruns_bit_identical"] = shas[0] == shas[1]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
