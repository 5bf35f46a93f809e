"""What each run's best induction-head candidate is worth on held-out text.

For every run of a repeated-data grid directory: the head with the largest
prefix-matching score (random tokens from the run's probe range), that score,
and the rise in held-out test loss when the head is mean-ablated
(:func:`interp.analysis.head_ablation_losses` on the run's 128 test
sequences); also the largest rise over all heads. Prints one JSON object per
run, then a JSON summary (mean per run kind, split by whether the run has an
induction head, prefix matching >= 0.3).

Usage: ``python docs/repeated_head_ablation.py GRID_DIR [OUT.json]``.
"""

import json
import sys
from pathlib import Path

import torch

from interp.analysis import head_ablation_losses, prefix_matching_scores
from interp.experiments.repeated_data import make_data, probe_vocab_range
from interp.training.rundir import open_run

HEAD = 0.3  # the prefix-matching level the issue calls an induction head


def main(grid: str, out: str | None = None) -> None:
    torch.set_num_threads(1)
    tests: dict[str, torch.Tensor] = {}  # held-out sequences per corpus config
    rows = []
    for path in sorted(Path(grid).glob("*/*/seed*")):
        if not (path / "summary.json").exists():
            continue
        run = open_run(path)
        cfg = run.config
        key = json.dumps([str(cfg.corpus), cfg.data.seq_len, cfg.eval.test_sequences])
        if key not in tests:
            tests[key] = make_data(cfg).test
        model = run.load()
        with torch.no_grad():
            pm = prefix_matching_scores(model, vocab_range=probe_vocab_range(cfg.corpus))
        ablation = head_ablation_losses(model, tests[key])
        layer, head = divmod(int(pm.argmax()), pm.shape[1])
        row = {
            "run": f"{path.parts[-3]}/{path.parts[-2]}",
            "seed": int(path.name.removeprefix("seed")),
            "test_loss": run.summary()["final_test_loss"],
            "top_head": f"L{layer}H{head}",
            "prefix_matching": round(float(pm.max()), 4),
            "ablation_top_head": round(float(ablation[layer, head]), 4),
            "ablation_max": round(float(ablation.max()), 4),
            "ablation_max_head": "L{}H{}".format(*divmod(int(ablation.argmax()), pm.shape[1])),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    groups: dict[str, list[float]] = {}
    for r in rows:
        kind = "with head" if r["prefix_matching"] >= HEAD else "without head"
        groups.setdefault(kind, []).append(r["ablation_top_head"])
    summary = {k: {"runs": len(v), "mean_ablation_top_head": sum(v) / len(v)}
               for k, v in groups.items()}  # fmt: skip
    print(json.dumps(summary))
    if out:
        Path(out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
