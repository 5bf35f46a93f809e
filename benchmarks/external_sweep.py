"""Every head analyzer over 20 local checkpoints of a ~20M-parameter GPT-NeoX
(Pythia's architecture and vocabulary size): seconds per checkpoint, split
into loading, hashing (the cache key) and computing (prints JSON).

The checkpoints are ``save_pretrained`` directories of randomly initialised
models (one seed each; the cost of loading and analysing does not depend on
the weights' values) with a small BPE tokenizer trained on the shipped corpus,
swept with the defaults of ``interp sweep DIR``: the eight head analyzers on
random-token probes from the tokenizer's ids, prefix matching and the copying
gain on repeated natural text, and Olsson's ICL score (the context is 2048).
The cache starts empty; a second sweep shows the cached cost.

    python benchmarks/external_sweep.py [--checkpoints 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def build_series(root: Path, n: int, d_model: int, layers: int) -> int:
    """``n`` checkpoints ``root/step_{i*1000}``; returns the parameter count."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import hfmodels

    tok = hfmodels.tokenizer()
    cfg = GPTNeoXConfig(
        vocab_size=50304,
        hidden_size=d_model,
        num_hidden_layers=layers,
        num_attention_heads=d_model // 32,
        intermediate_size=4 * d_model,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        bos_token_id=0,
        eos_token_id=0,
    )
    for i in range(n):
        torch.manual_seed(i)
        model = GPTNeoXForCausalLM(cfg)
        model.save_pretrained(root / f"step_{i * 1000}")
        tok.save_pretrained(root / f"step_{i * 1000}")
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["INTERP_CACHE_DIR"] = f"{tmp}/cache"
        from interp.analysis import sweep
        from interp.experiments.external import default_analyzers
        from interp.sources import hf

        n_params = build_series(Path(tmp) / "series", args.checkpoints, args.d_model, args.layers)
        timings = {"load": 0.0, "hash": 0.0}

        def timed(name, fn):
            def wrapped(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    timings[name] += time.perf_counter() - t0

            return wrapped

        hf.LocalCheckpoints.load = timed("load", hf.LocalCheckpoints.load)
        hf._file_sha = timed("hash", hf._file_sha)

        from interp import open_checkpoints

        t0 = time.perf_counter()
        src = open_checkpoints(Path(tmp) / "series")
        analyzers = default_analyzers(src)
        setup = time.perf_counter() - t0
        timings.update(load=0.0, hash=0.0)
        t0 = time.perf_counter()
        df = sweep(src, analyzers, progress=False)
        cold = time.perf_counter() - t0
        load, hashing = timings["load"], timings["hash"]
        t0 = time.perf_counter()
        sweep(open_checkpoints(Path(tmp) / "series"), analyzers, progress=False)
        warm = time.perf_counter() - t0
    n = args.checkpoints
    compute = cold - load - hashing
    print(
        json.dumps(
            {
                "checkpoints": n,
                "parameters": n_params,
                "analyzers": [getattr(f, "__name__", repr(f)) for f in analyzers],
                "rows": len(df),
                "setup_s": round(setup, 2),
                "cold_s_per_checkpoint": round(cold / n, 3),
                "load_s_per_checkpoint": round(load / n, 3),
                "hash_s_per_checkpoint": round(hashing / n, 3),
                "compute_s_per_checkpoint": round(compute / n, 3),
                "load_fraction": round(load / cold, 3),
                "warm_s_per_checkpoint": round(warm / n, 4),
                "threads": args.threads,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "cpu_count": os.cpu_count(),
                "torch": torch.__version__,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
