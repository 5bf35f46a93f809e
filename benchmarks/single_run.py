"""Wall time of one ``cpu-quick`` grokking run from the command line (prints JSON).

Times the demo's run exactly as a user starts it,
``interp train grokking --preset cpu-quick --seed 7 --quiet`` (2,000 steps,
every evaluation and checkpoint, interpreter start-up and imports included),
in a fresh process per repeat, and the same run with settings that could make
it faster:

- ``threads1``: ``INTERP_THREADS=1`` (one torch thread instead of torch's
  default of one per core);
- ``readout_only``: ``--set train.readout_only=true`` (the last layer only at
  the read-out position; exact to rounding, not bit-identical, so it is an
  option, not the default);
- ``startup``: ``interp train grokking --help``, the cost of starting the CLI
  (torch and TransformerLens are imported only once a run starts, so this
  is not the start-up of a training run).

Each variant is run ``--repeats`` times; the JSON has every wall and the
median, with the CPU's vector capability and core count. Run it on a quiet
machine: a second busy process slows a 2-thread run several times over.

    python benchmarks/single_run.py [--repeats 3] [--variants default readout_only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RUN = ["train", "grokking", "--preset", "cpu-quick", "--seed", "7", "--quiet"]
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "default": ([], {}),
    "threads1": ([], {"INTERP_THREADS": "1"}),
    "readout_only": (["--set", "train.readout_only=true"], {}),
    "startup": (["--help"], {}),
}


def wall(args: list[str], env: dict[str, str], run_dir: Path | None) -> float:
    """Seconds of one ``interp`` process (a fresh interpreter)."""
    cmd = [sys.executable, "-m", "interp", *args]
    if run_dir is not None:
        cmd += ["--run-dir", str(run_dir)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    out: dict[str, object] = {
        "command": "interp " + " ".join(RUN),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            extra, env = VARIANTS[name]
            walls = []
            for r in range(args.repeats):
                if name == "startup":
                    walls.append(wall([*RUN, *extra], env, None))
                else:
                    walls.append(wall([*RUN, *extra], env, Path(tmp) / f"{name}{r}"))
            out[name] = {"walls_s": [round(w, 1) for w in walls],
                         "median_s": round(statistics.median(walls), 1)}  # fmt: skip
            print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
