#!/usr/bin/env python3
"""Why do the shipped Divot tokens carry no motion? Because they carry no *position*: three measurements.

1. **Where along the tokenizer is position lost?** A linear (ridge) regression of the object's centre in
   the first and last frame from each stage's features (``stage_probe_report``'s ``*_position_r2``).
2. **Can the mini Perceiver resampler carry position at all?** A *diagnostic, supervised* check: the
   shipped tokenizer's resampler input (the spatial-temporal features) frozen, a freshly initialised
   resampler + a linear head trained to regress the position directly. If it cannot, the architecture
   is the limit; if it can, the training signal is.
3. **Does a self-supervised warm-up bring position in?** The shipped resampler trained to let a small
   decoder (another Perceiver resampler, one query per input feature) rebuild the standardised
   features it read -- an autoencoder on features, no labels. Does the tokens' position R^2 rise?

Runs on the CPU in ~6 min (2 cores); writes ``benchmarks/results/position_diagnostics.json``.

    python benchmarks/position_diagnostics.py
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from divot_mini import tokenizer_evaluation as ev
from divot_mini import tokenizer_training as T
from divot_mini.data import tokenizer_frames
from divot_mini.linear_probe import probe_accuracy, ridge_r2
from divot_mini.perceiver_resampler import PerceiverResampler

OUT = Path(__file__).parent / "results" / "position_diagnostics.json"


@torch.no_grad()
def resampler_inputs(model, video: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """What the Perceiver resampler reads: the spatial-temporal features after their LayerNorm."""
    tok = model.tokenizer
    return torch.cat([tok.image_proj_model.norm(tok.mixed(model.vit(tokenizer_frames(v))))
                      for v in video.split(batch)])


def fresh_resampler(cfg, seed: int = 0) -> PerceiverResampler:
    torch.manual_seed(seed)
    return PerceiverResampler(cfg.hidden_size, cfg.resampler_depth, cfg.num_tokens, cfg.hidden_size,
                              cfg.token_dim, cfg.resampler_dim_head, cfg.resampler_heads)


def train(resampler, head, loss_fn, x, steps, every, evaluate, lr=1e-3, batch=128, seed=0) -> list:
    """AdamW on resampler + head; ``evaluate()`` every ``every`` steps -> the curve."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(list(resampler.parameters()) + list(head.parameters()), lr)
    curve, t0 = [], time.perf_counter()
    for step in range(steps + 1):
        i = torch.randint(0, len(x), (batch,), generator=g)
        loss = loss_fn(i)
        if step % every == 0:
            with torch.no_grad():
                curve.append({"step": step, "loss": round(loss.item(), 4), **evaluate(),
                              "s": round(time.perf_counter() - t0, 1)})
            print(json.dumps(curve[-1]), flush=True)
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=4096)
    ap.add_argument("--n-test", type=int, default=512)
    ap.add_argument("--capacity-steps", type=int, default=600)
    ap.add_argument("--warmup-steps", type=int, default=800)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = T.load_trained(verbose=False)
    result = {"n_train": args.n_train, "n_test": args.n_test}

    t = time.perf_counter()
    stage = ev.stage_probe_report(model, n_train=1024, n_test=512)
    result["stage_position_r2"] = {s: round(stage[f"{s}_position_r2"], 3) for s in ev.TOKENIZER_STAGES}
    result["stage_motion"] = {s: round(stage[f"{s}_motion"], 3) for s in ev.TOKENIZER_STAGES}
    print("stages:", result["stage_position_r2"], f"{time.perf_counter() - t:.0f} s", flush=True)

    tr, te = ev.clips("train", args.n_train), ev.clips("test", args.n_test)
    a, b = resampler_inputs(model, tr["video"]), resampler_inputs(model, te["video"])
    ya, yb = tr["position"].float(), te["position"].float()
    cfg = model.tokenizer.cfg
    n_fit = min(1024, args.n_train)  # clips the evaluation's probes are fitted on
    labels = {k: tr[k][:n_fit] for k in ("shape", "colour", "motion")}

    def evaluate(resampler):
        def f():
            ta, tb = resampler(a[:n_fit]), resampler(b)
            acc = probe_accuracy(ta, labels, tb, te)
            return {"tokens_position_r2": round(ridge_r2(ta, ya[:n_fit], tb, yb).mean().item(), 3),
                    **{f"tokens_{k}": round(v, 3) for k, v in acc.items()}}
        return f

    # 2. capacity (supervised, diagnostic only): a fresh resampler + linear head regress the position
    r = fresh_resampler(cfg)
    head = torch.nn.Linear(cfg.num_tokens * cfg.token_dim, 4)
    mu, sd = ya.mean(0), ya.std(0)
    result["capacity_supervised"] = train(
        r, head, lambda i: ((head(r(a[i]).flatten(1)) - (ya[i] - mu) / sd) ** 2).mean(), a,
        args.capacity_steps, max(1, args.capacity_steps // 4), evaluate(r))

    # 3. self-supervised warm-up: the shipped resampler + a decoder rebuild the standardised features
    r = fresh_resampler(cfg)
    r.load_state_dict(model.tokenizer.image_proj_model.down_sampler.state_dict())
    dec = PerceiverResampler(cfg.hidden_size, 2, a.shape[1], cfg.token_dim, cfg.hidden_size,
                             cfg.resampler_dim_head, cfg.resampler_heads)
    f_mu, f_sd = a.mean(0), a.std(0) + 1e-3
    result["feature_variance_across_clips"] = round((a.var(0).mean() / a.pow(2).mean()).item(), 3)
    result["feature_reconstruction"] = train(
        r, dec, lambda i: ((dec(r(a[i])) - (a[i] - f_mu) / f_sd) ** 2).mean(), a,
        args.warmup_steps, max(1, args.warmup_steps // 4), evaluate(r))

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
