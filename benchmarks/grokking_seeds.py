"""t_mem, t_gen and wall time of a grokking preset over several seeds (prints JSON).

The README's cpu-quick table comes from::

    python benchmarks/grokking_seeds.py --preset cpu-quick --seed 0 --seed 1 --seed 2 --threads 2

and checks the preset's promise: test accuracy first reaches 95% at least 3x
later than train accuracy does, for every seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from interp.experiments import grokking


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument(
        "--seed", dest="seeds", type=int, action="append", help="repeatable; default 0, 1, 2"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    args.seeds = args.seeds or [0, 1, 2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = grokking.preset(args.preset, seed=seed, overrides=args.overrides)
            t0 = time.perf_counter()
            res = grokking.run(
                cfg, f"{tmp}/s{seed}", device="cpu", threads=args.threads, quiet=True
            )
            s = res.summary
            rows.append(
                {
                    "seed": seed,
                    "t_mem": s["t_mem"],
                    "t_gen": s["t_gen"],
                    "t_gen_over_t_mem": s["t_gen_over_t_mem"],
                    "final_test_accuracy": round(s["final_test_accuracy"], 4),
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "steps": cfg.train.steps,
                }
            )
    ok = all(r["t_gen_over_t_mem"] is not None and r["t_gen_over_t_mem"] >= 3 for r in rows)
    print(
        json.dumps(
            {
                "preset": args.preset,
                "threads": args.threads,
                "overrides": args.overrides,
                "runs": rows,
                "all_seeds_grok_with_delay_ratio_ge_3": ok,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
