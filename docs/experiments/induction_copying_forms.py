"""Copying scores in their forms on trained induction runs.

    for s in 0 1 2; do
        interp train induction --preset cpu-quick --seed $s --run-dir runs/ind-s$s
    done
    interp train induction --preset 1-layer --seed 0 --run-dir runs/ind-l1
    python docs/experiments/induction_copying_forms.py runs/ind-s{0,1,2} runs/ind-l1

Prints one JSON line per run: on its last checkpoint, the best last-layer
induction head (ours and TransformerLens's normalisation), the copy gain, and
per head of the last layer the OV-eigenvalue copying score, Bansal et al.'s
copying score in its three forms, the signed measure, and the K-composition
from every head of the layer before into the induction head, raw and over
fresh inits (docs/experiments/induction.md, "Copying scores in their forms").
"""

from __future__ import annotations

import json
import sys

import torch

from interp import open_run
from interp.analysis import (
    composition_scores,
    composition_vs_init,
    copy_gain,
    copying_scores,
    induction_scores,
    logit_copying_scores,
    signed_logit_copying,
)


def rounded(values: torch.Tensor, digits: int = 3) -> list[float]:
    return [round(float(v), digits) for v in values]


def measure(path: str) -> dict:
    run = open_run(path)
    step = run.steps[-1]
    model = run.load(step)
    ind = induction_scores(model)
    last = ind.shape[0] - 1
    best = int(ind[last].argmax())
    out = {
        "run": path,
        "step": step,
        "best_head": f"L{last}H{best}",
        "induction": round(float(ind[last, best]), 3),
        "induction_tl": round(float(induction_scores(model, normalize="tl")[last, best]), 3),
        "copy_gain": round(copy_gain(model)["copy_gain"], 3),
        "ov_copying": rounded(copying_scores(model)[last]),
        "signed": rounded(signed_logit_copying(model)[last]),
    }
    for form in ("reference", "attended", "residual"):
        out[f"logit_copying_{form}"] = rounded(logit_copying_scores(model, form=form)[last])
    if last >= 1:
        raw = composition_scores(model)["k_composition"][last - 1, :, last, best]
        ratio = composition_vs_init(model, run)["k_composition_ratio"][last - 1, :, last, best]
        out["k_comp_into_best"] = rounded(raw)
        out["k_comp_ratio_into_best"] = rounded(ratio, 2)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    for arg in sys.argv[1:]:
        print(json.dumps(measure(arg)))
