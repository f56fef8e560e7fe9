#!/usr/bin/env python3
"""Benchmark of the course foundation: dataset generation speed and the probe trained from scratch.

    .venv/bin/python benchmarks/foundation.py            # prints a table; results go in RESULTS.md

Measures (on the machine it runs on, torch's default threads):
- Moving Shapes generation speed, clips/s, at 32 and 64 px;
- the probe trained from scratch with the shipped recipe (seed 0): wall time, and per-attribute
  accuracy on clean and degraded clips of the test split and of the held-out combinations.
Bars (issue 2): probe ready in <= 2 min on 2 cores; >= 0.99 clean, >= 0.95 degraded.
"""
import json
import time

import torch

from divot_mini import checkpoints, data, probe


def main() -> None:
    out = {"threads": torch.get_num_threads()}
    for res in (32, 64):
        out[f"clips_per_s_{res}px"] = round(data.generation_speed(n=8192, resolution=res))
    spec = checkpoints.REGISTRY["probe"]
    torch.manual_seed(spec.seed)
    model = spec.build()
    t0 = time.time()
    probe.train_probe(model, seed=spec.seed, steps=probe.PROBE_STEPS, progress=False,
                      evaluate_after=False)
    out["probe_train_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    for split, n in (("test", 1024), ("heldout", 512)):
        for kind in ("clean", "degraded"):
            out[f"{split}_{kind}"] = probe.evaluate(model, split, n=n, degraded=kind == "degraded")
    out["probe_eval_s"] = round(time.time() - t0, 1)
    # Stress: degradations 1.5x stronger than anything the probe was trained on.
    out["test_degraded_x1.5"] = probe.evaluate(model, "test", n=1024, degraded=True, strength=1.5)
    print(json.dumps(out, indent=1))
    ok = out["probe_train_s"] <= 120 and all(
        min(out[f"{s}_{k}"].values()) >= (0.99 if k == "clean" else 0.95)
        for s in ("test", "heldout") for k in ("clean", "degraded"))
    print("bars met" if ok else "BARS MISSED")


if __name__ == "__main__":
    main()
