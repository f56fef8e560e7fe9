#!/usr/bin/env python3
"""Benchmark of the tokenizer stage (issue 3): train it from scratch and measure what it learned.

    python benchmarks/tokenizer_stage.py              # uses the shipped/cached weights, measures quality
    python benchmarks/tokenizer_stage.py --retrain    # trains tiny CLIP + tiny VAE + tokenizer/de-tokenizer
                                                      # from scratch into a fresh cache, times each stage

Bars (issue 3): reconstruction attribute accuracy >= 0.95 per attribute on the test split (probe on
DDIM-decoded tokens), linear probes on tokens >= 0.95 per attribute, whole stage <= 15 min on 2 cores.
Results are written to benchmarks/results/tokenizer_stage.json; the numbers are in RESULTS.md.
"""
import argparse
import time

import torch
from stage_common import ROOT, finish, retrain_into_fresh_cache

BARS = {"recon": 0.95, "tokens": 0.95, "minutes": 15.0}
# Measured 2026-11-26 on the 2-core machine (benchmarks/tokenizer_scale.py, 6 steps of 128 clips,
# 2 threads): what one step of the shipped recipe costs there. Used only to *estimate* the CPU time of
# a checkpoint whose provenance says it was trained on a GPU (the bar is about 2 CPU cores).
CPU_SECONDS_PER_STEP_128 = 20.1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retrain", action="store_true", help="train every piece from scratch (fresh cache)")
    ap.add_argument("--n", type=int, default=256, help="test clips for the reconstruction numbers")
    ap.add_argument("--steps", type=int, default=10, help="DDIM steps (trailing spacing) for decoding")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tokenizer_stage.json"))
    args = ap.parse_args()
    if args.retrain:
        retrain_into_fresh_cache(["tiny_clip", "tiny_vae", "divot_tokenizer"])
    from divot_mini import checkpoints, probe, tokenizer_evaluation as ev
    from divot_mini import frozen_vit, vae  # noqa: F401  (register their checkpoints)
    from divot_mini.tokenizer_training import load_trained

    t0 = time.time()
    model = load_trained(verbose=True)
    wall = time.time() - t0
    provs = {name: checkpoints.load(name, verbose=False)[1] if not args.retrain else None
             for name in ("tiny_clip", "tiny_vae", "divot_tokenizer")}
    result = {"threads": torch.get_num_threads(), "retrained": args.retrain}
    if args.retrain:
        result["train_minutes_total"] = round(wall / 60, 2)
    else:
        secs = {n: p["train_seconds"] for n, p in provs.items()}
        result["train_seconds_recorded"] = secs
        result["trained_on"] = {n: p.get("trained_on", f"CPU, {p.get('threads')} threads") for n, p in provs.items()}
        gpu = {n for n, p in provs.items() if "trained_on" in p}
        if gpu:  # GPU seconds say nothing about the 2-core bar: estimate those pieces' CPU time
            cpu_s = {n: (p["config"]["steps"] * CPU_SECONDS_PER_STEP_128 * p["config"]["batch_size"] / 128
                         if n in gpu else secs[n]) for n, p in provs.items()}
            result["cpu_seconds_estimated"] = {n: round(v) for n, v in cpu_s.items()}
            secs = cpu_s
        result["train_minutes_total"] = round(sum(secs.values()) / 60, 2)
    t1 = time.time()
    report = ev.reconstruction_report(model, probe.load_probe(verbose=False), n=args.n, steps=args.steps)
    report.update(ev.linear_probe_report(model))
    result["eval_seconds"] = round(time.time() - t1, 1)
    result.update({k: round(v, 4) for k, v in report.items()})
    checks = {f"recon_{a} >= {BARS['recon']}": report[f"recon_{a}"] >= BARS["recon"]
              for a in ("shape", "colour", "motion")}
    checks.update({f"tokens_{a} >= {BARS['tokens']}": report[f"tokens_{a}"] >= BARS["tokens"]
                   for a in ("shape", "colour", "motion")})
    checks[f"train minutes <= {BARS['minutes']}"] = result["train_minutes_total"] <= BARS["minutes"]
    finish(result, checks, args.out)


if __name__ == "__main__":
    main()
