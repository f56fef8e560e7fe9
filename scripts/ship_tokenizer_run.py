#!/usr/bin/env python3
"""Ship a tokenizer-stage run made by ``benchmarks/tokenizer_scale.py`` (e.g. on a GPU) as the
``divot_tokenizer`` checkpoint, with its provenance.

    python scripts/ship_tokenizer_run.py RUN.safetensors --command "python benchmarks/tokenizer_scale.py ..."

The run's file holds the tokenizer, resampler and UNet (the frozen tiny VAE is its own checkpoint and
is filled in here). The architecture must be the one ``divot_mini`` builds now (checked key by key),
and the measurements stored in the provenance are made here, exactly as ``train_pair`` makes them
after a local training run (128 test clips decoded, linear probes on 512/256 clips).
"""
import argparse
import json
import time

from safetensors import safe_open
from safetensors.torch import load_file

from divot_mini import checkpoints
from divot_mini import tokenizer_training as T
from divot_mini.frozen_vit import load_frozen_vit
from divot_mini.probe import load_probe
from divot_mini.tokenizer_evaluation import linear_probe_report, reconstruction_report
from divot_mini.vae import load_tiny_vae


def recipe_mismatch(record: dict) -> str | None:
    """Why a run's training record is not the registered ``divot_tokenizer`` recipe (None if it is):
    the shipped provenance names that recipe, so only a from-scratch run of it may ship."""
    spec = checkpoints.REGISTRY["divot_tokenizer"]
    want = {**{k: spec.config[k] for k in ("steps", "batch_size", "lr", "high_noise_frac")},
            "lr_schedule": "onecycle", "init": "scratch", "resampler_pos_scale": 0.0}
    recipe = record["recipe"]
    got = {"steps": record.get("steps_done"), "batch_size": recipe["batch_size"], "lr": recipe["lr"],
           # runs written before these options existed used the registered values
           **{k: recipe.get(k, want[k]) for k in ("high_noise_frac", "lr_schedule", "init", "resampler_pos_scale")}}
    if got != want:
        return f"the run's recipe {got} is not the registered one {want}"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a .safetensors written by benchmarks/tokenizer_scale.py")
    ap.add_argument("--command", required=True, help="the command line that trained it")
    ap.add_argument("--ship", action="store_true", help="write into divot_mini/weights/ (else your cache)")
    args = ap.parse_args()
    with safe_open(args.run, "pt") as f:
        record = json.loads((f.metadata() or {}).get("record", "{}"))
    if not record:
        raise SystemExit(f"{args.run} has no training record: was it written by tokenizer_scale.py?")
    mismatch = recipe_mismatch(record)
    if mismatch:
        raise SystemExit(mismatch)
    spec = checkpoints.REGISTRY["divot_tokenizer"]
    pair = spec.build()
    state = load_file(args.run)
    missing, unexpected = pair.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("detokenizer.first_stage_model.")]
    if missing or unexpected:
        raise SystemExit(f"{args.run} does not fit the current architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    pair.detokenizer.first_stage_model.load_state_dict(load_tiny_vae(verbose=False).state_dict())
    module = T.DivotTokenizerTraining(load_frozen_vit(verbose=False), pair.tokenizer, pair.detokenizer).eval()
    t0 = time.time()
    metrics = {**reconstruction_report(module, load_probe(verbose=False), n=128),
               **linear_probe_report(module, n_train=512, n_test=256)}
    print(f"measured in {time.time() - t0:.0f} s:", json.dumps({k: round(v, 3) for k, v in metrics.items()}))
    directory = checkpoints.shipped_dir() if args.ship else checkpoints.cache_dir()
    path = checkpoints.save(spec, pair, metrics, directory, record["train_s"], args.command,
                            extra={"trained_on": record["device"] + ", torch " + record["torch"]})
    print("shipped" if args.ship else "saved", path)


if __name__ == "__main__":
    main()
