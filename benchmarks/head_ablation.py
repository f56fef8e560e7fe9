#!/usr/bin/env python3
"""The paper's generation-head ablation (MSE / diffusion / GMM k=1 / GMM k=16, plus the course's
GMM + mean-MSE fix), trained from scratch on the shipped tokenizer's tokens and measured.

    python benchmarks/head_ablation.py                       # the committed numbers (~12 min, 2 cores)
    python benchmarks/head_ablation.py --steps 40 --train-clips 512 --decode 0 --out /tmp/x.json  # smoke

Per head: training time, the head's final loss, probe accuracy of the generated tokens (test split and
held-out combinations; sampled and deterministic), colour entropy on colour-free prompts and how often a
clip's tokens agree on its colour (for mixtures also with one component chosen per clip), how much the
mixture weights depend on the prompt, and -- with ``--decode N`` -- the video probe's accuracy on N
decoded generations per split (the de-tokenizer's own errors included). See divot_mini/head_ablation.py.
Writes the JSON after every head (a cut-short run keeps what it finished); notebook 05 shows the file.
"""
import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="training steps per head (default: the recipe's)")
    ap.add_argument("--train-clips", type=int, default=4096)
    ap.add_argument("--eval-clips", type=int, default=256, help="clips per evaluation split")
    ap.add_argument("--decode", type=int, default=32, help="generations per split decoded to video (0: skip)")
    ap.add_argument("--heads", default=None, help="comma-separated subset of the heads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "head_ablation.json"))
    args = ap.parse_args()

    from divot_mini import head_ablation as A
    from divot_mini import text_tokenizer as tt
    from divot_mini.generation_heads import sample_kwargs
    from divot_mini.data import ATTRIBUTES, MovingShapes
    from divot_mini.data import caption as make_caption
    from divot_mini.llm_evaluation import probe_scores, text_to_video
    from divot_mini.llm_training import token_table
    from divot_mini.probe import load_probe
    from divot_mini.tokenizer_training import load_trained

    heads = tuple(args.heads.split(",")) if args.heads else A.ABLATION_HEADS
    unknown = set(heads) - set(A.ABLATION_HEADS)
    if unknown:
        ap.error(f"unknown heads {sorted(unknown)}; choose from {A.ABLATION_HEADS}")
    steps = args.steps or A.ABLATION_STEPS
    torch.manual_seed(args.seed)
    t0 = time.time()
    tokenizer = load_trained(verbose=False)
    train = token_table(tokenizer, "train", args.train_clips)
    tables = {s: token_table(tokenizer, s, args.eval_clips) for s in ("test", "heldout")}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True,
                            text=True).stdout.strip()
    result = {"command": "python benchmarks/head_ablation.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
              "commit": commit, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "recipe": {"llm": f"Mistral {A.ABLATION_LAYERS} x {A.ABLATION_HIDDEN}", "steps": steps,
                         "batch": A.ABLATION_BATCH, "lr": A.ABLATION_LR,
                         "partial_frac": A.ABLATION_PARTIAL_FRAC, "train_clips": args.train_clips,
                         "seed": args.seed},
              "token_table_seconds": round(time.time() - t0, 1), "rows": {}}
    probe = load_probe(verbose=False) if args.decode else None
    text_tokenizer = tt.build_text_tokenizer()
    for head in heads:
        r = A.run_ablation(train, tables, heads=(head,), steps=steps, seed=args.seed, keep_models=True)
        result["ceiling"] = {k: round(v, 4) for k, v in r["ceiling"].items()}
        row = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r["rows"][head].items()
               if k != "history"}
        if args.decode:
            t1 = time.time()
            for split in tables:
                labels = MovingShapes(split, size=args.decode).attributes(list(range(args.decode)))
                labels = {k: labels[k] for k in ATTRIBUTES}
                caps = [make_caption(*(int(labels[k][i]) for k in ATTRIBUTES)) for i in range(args.decode)]
                videos = text_to_video(r["models"][head], text_tokenizer, tokenizer, caps, seed=args.seed,
                                       **sample_kwargs(r["models"][head].output_resampler))
                row.update({f"video_{split}_{k}": round(v, 4) for k, v in probe_scores(probe, videos, labels).items()})
            row["decode_seconds"] = round(time.time() - t1, 1)
        result["rows"][head] = row
        print(json.dumps({"head": head, **row}), flush=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"ceiling (real tokens): {result['ceiling']}")
    print(f"{'head':10s} {'train s':>8s} {'test s/c/m':>18s} {'heldout s/c/m':>18s} {'free H':>7s} "
          f"{'agree':>6s} {'H clip':>7s} {'w-sens':>7s}")
    for head, row in result["rows"].items():
        acc = lambda s: "/".join(f"{row[f'{s}_{k}']:.2f}" for k in ATTRIBUTES)
        opt = lambda k, f=".3f": "-" if row.get(k) is None else format(row[k], f)
        print(f"{head:10s} {row['train_seconds']:8.1f} {acc('test'):>18s} {acc('heldout'):>18s} "
              f"{row['colour_free_entropy']:7.3f} {opt('colour_free_agreement', '.2f'):>6s} "
              f"{opt('colour_free_entropy_clip'):>7s} {opt('weight_sensitivity'):>7s}")


if __name__ == "__main__":
    main()
