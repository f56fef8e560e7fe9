#!/usr/bin/env python3
"""Compare training recipes of the tokenizer stage quickly, on a GPU if there is one.

The shipped recipe (``divot_mini.tokenizer_training``) takes ~50 min on 2 CPU cores, too slow to
try many ideas. This script trains the *same* mini tokenizer + de-tokenizer (frozen tiny-CLIP ViT,
frozen tiny VAE) under several recipes, one after another, each from the same seed, and measures
each with the benchmark's own numbers (reconstruction probe accuracy, PSNR, swapped-token control,
linear probes on tokens). Results go to a JSON file after every variant, so a run cut short keeps
what it finished.

    python benchmarks/tokenizer_sweep.py --accelerator gpu --out sweep.json
    python benchmarks/tokenizer_sweep.py --accelerator cpu --steps-scale 0.005 --variants base   # smoke test

GPU numbers are not bit-identical to CPU runs of the same recipe (different kernels), so a recipe
picked here is re-run on the CPU before its weights ship.
"""
import argparse
import json
import time

import torch

# The recipe the sweep of 2026-11-26 started from (the third shipping run's); variants override it.
BASE = dict(steps=1200, batch_size=8, lr=1e-3, lr_schedule="onecycle", high_noise_frac=0.3, clip=1.0)
VARIANTS = {  # name: overrides of BASE
    "base": {},
    "constant_lr": {"lr_schedule": "constant"},
    "batch_32": {"batch_size": 32},
    "lr_3e-4": {"lr": 3e-4},
    "high_noise_0.6": {"high_noise_frac": 0.6},
    "steps_x3": {"steps": 3600},
    "shipped": {"steps": 900, "batch_size": 32},  # what divot_mini.tokenizer_training ships
}


def run(name: str, overrides: dict, accelerator: str, steps_scale: float, eval_n: int) -> dict:
    from divot_mini import tokenizer_training as T
    from divot_mini.probe import load_probe
    from divot_mini.tokenizer_evaluation import (clips, linear_probe_report, reconstruction_report, token_spread,
                                                 tokens_of)

    recipe = {**BASE, **overrides}
    steps = max(2, int(recipe["steps"] * steps_scale))
    torch.manual_seed(0)
    pair = T.DivotPair()
    t0 = time.perf_counter()
    module = T.fit_pair(pair, 0, steps, recipe["batch_size"], False, lr=recipe["lr"],
                        lr_schedule=recipe["lr_schedule"], high_noise_frac=recipe["high_noise_frac"],
                        clip=recipe["clip"], accelerator=accelerator)
    train_s = time.perf_counter() - t0
    report = {**reconstruction_report(module, load_probe(verbose=False), n=eval_n),
              **linear_probe_report(module, n_train=4 * eval_n, n_test=2 * eval_n)}
    report["token_spread"] = token_spread(tokens_of(module, clips("test", 64)["video"]))
    return {"variant": name, "recipe": {**recipe, "steps": steps}, "train_s": round(train_s, 1),
            "eval_s": round(time.perf_counter() - t0 - train_s, 1),
            **{k: round(v, 4) for k, v in report.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every recipe's steps")
    ap.add_argument("--eval-n", type=int, default=128, help="test clips decoded per variant")
    ap.add_argument("--budget-s", type=float, default=float("inf"),
                    help="skip the remaining variants once this many seconds have passed")
    ap.add_argument("--out", default="tokenizer_sweep.json")
    args = ap.parse_args()
    if args.accelerator == "gpu":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    start, results = time.perf_counter(), []
    for name in args.variants:
        if time.perf_counter() - start > args.budget_s:
            print(f"budget spent: skipping {name}", flush=True)
            continue
        r = run(name, VARIANTS[name], args.accelerator, args.steps_scale, args.eval_n)
        results.append(r)
        print(json.dumps(r), flush=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
