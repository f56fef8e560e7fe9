#!/usr/bin/env python3
"""Train a named checkpoint from scratch and save it with its provenance.

    python scripts/train.py probe           # into your cache ($DIVOT_CACHE or .cache/divot)
    python scripts/train.py probe --ship    # into divot_mini/weights/ (what the repository ships)
"""
import argparse
import importlib
import shlex
import sys
import time

import torch

from divot_mini import checkpoints

# Modules that register checkpoints when imported.
PROVIDERS = ["divot_mini.probe", "divot_mini.frozen_vit", "divot_mini.vae", "divot_mini.tokenizer_training",
             "divot_mini.llm_training"]


def main() -> None:
    for mod in PROVIDERS:
        importlib.import_module(mod)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(checkpoints.REGISTRY))
    ap.add_argument("--ship", action="store_true", help="write into the package's weights/ folder")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = checkpoints.REGISTRY[args.name]
    directory = checkpoints.shipped_dir() if args.ship else checkpoints.cache_dir()
    t0 = time.time()
    command = "python " + " ".join(shlex.quote(a) for a in ["scripts/train.py"] + sys.argv[1:])
    _, prov = checkpoints.train_and_save(spec, directory, command=command)
    print(f"{args.name}: {time.time() - t0:.0f} s -> {directory}")
    print("metrics:", prov["metrics"])


if __name__ == "__main__":
    main()
