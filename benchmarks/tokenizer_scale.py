#!/usr/bin/env python3
"""Does the tokenizer stage reach its bars with more compute? One variant per process, on a GPU.

The CPU budget allows ~29k training clips (900 steps x 32); on an H100 the mini model takes 0.19 s a
step at batch 128 (1,200 steps in 224 s, measured). This script trains one variant of the joint stage
(or of the de-tokenizer alone, on *oracle* tokens that hold the clip's true latent variables) and
measures it along the way, so that the curve, not just the end point, says whether shape and motion are
on their way. Variants can run side by side on one GPU (one process each), but at batch 128 that buys
nothing: four of them kept the H100 100 % busy at 0.79 s a step each, the same throughput as one alone.

    python benchmarks/tokenizer_scale.py --variant joint --out build/scale          # one variant
    python benchmarks/tokenizer_scale.py --variant oracle_fc --steps 4 --batch 4 --accelerator cpu  # smoke
    python benchmarks/tokenizer_scale.py --variant joint_fc --init shipped --steps 160 --batch 32 \
        --lr 3e-4 --lr-schedule constant --high-noise-frac 1.0   # continue the shipped pair (CPU)

Variants (default recipe: from scratch, one-cycle lr, gradient clipping 1, 30% high-noise timesteps,
seed 0; ``--init shipped``, ``--lr-schedule`` and ``--high-noise-frac`` change it):
  joint       tiny-CLIP ViT frozen, tokenizer + de-tokenizer trained, UNet without a frame channel
  joint_fc    + a frame-index input channel in the UNet (``UNetConfig.frame_channel``; the shipped
              mini architecture since 2026-11-26, trained by ``--variant joint_fc --steps 1200``)
  oracle_fc   de-tokenizer alone, context = oracle tokens, + frame-index channel: what the UNet
              can decode when the tokens carry everything (the ceiling of the joint run)
  oracle      the same without the frame-index channel

Writes ``<out>/<variant>.json`` (curve + final report, rewritten after every evaluation) and, for the
joint variants, ``<out>/<variant>.safetensors`` (tokenizer + resampler + UNet; the frozen VAE and
ViT are their own checkpoints).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import lightning as L
import torch

from divot_mini import checkpoints
from divot_mini import tokenizer_training as T
from divot_mini.data import MovingShapes, MovingShapesDataModule
from divot_mini.detokenizer import DivotDetokenizer
from divot_mini.fit import quiet_lightning

VARIANTS = {"joint": dict(oracle=False, frame_channel=False),
            "joint_fc": dict(oracle=False, frame_channel=True),
            "oracle_fc": dict(oracle=True, frame_channel=True),
            "oracle": dict(oracle=True, frame_channel=False)}


class OracleTokens(torch.nn.Module):
    """Tokens [B, 16, 32] that hold a clip's true latent variables: one fixed random pattern per
    shape, colour and motion value, plus patterns scaled by the start position, speed and radius.
    Nothing is learned here; the de-tokenizer's resampler reads them like Divot tokens."""

    def __init__(self, num_tokens: int = 16, dim: int = 32, resolution: int = 32):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        for k, n in {"shape": 3, "colour": 4, "motion": 4}.items():
            self.register_buffer(k, torch.randn(n, num_tokens, dim, generator=g))
        self.register_buffer("cont", torch.randn(4, num_tokens, dim, generator=g))  # x, y, speed, radius
        self.resolution = resolution

    def forward(self, attrs: dict) -> torch.Tensor:
        res = self.resolution
        cont = torch.stack([attrs["start"][:, 0] / res * 2 - 1, attrs["start"][:, 1] / res * 2 - 1,
                            attrs["speed"] / res * 40 - 1, attrs["radius"] / res * 12 - 2], 1)
        tok = self.shape[attrs["shape"]] + self.colour[attrs["colour"]] + self.motion[attrs["motion"]]
        tok = tok + torch.einsum("bk,knd->bnd", cont.to(tok), self.cont)
        return tok / math.sqrt(7)


class OracleTraining(T.DivotTokenizerTraining):
    """The joint module with the tokenizer replaced by :class:`OracleTokens` (the de-tokenizer alone)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.oracle = OracleTokens()
        self.train_set = MovingShapes("train")

    def batch_tokens(self, index: torch.Tensor, split: str = "train") -> torch.Tensor:
        ds = self.train_set if split == "train" else MovingShapes(split)
        a = ds.attributes(index.cpu().tolist())
        return self.oracle({k: v.to(self.device) for k, v in a.items()})

    def training_step(self, batch, _):
        loss = self.denoising_loss(batch["video"], self.batch_tokens(batch["index"]))
        self.log("loss", loss, prog_bar=True, batch_size=len(batch["video"]))
        return loss

    def uncond_tokens(self, like=None):
        return torch.zeros_like(like)

    def configure_optimizers(self):  # no tokenizer to train
        self.tokenizer.requires_grad_(False)
        return super().configure_optimizers()


def build(variant: str, steps: int, lr: float, random_vit: bool = False, init: str = "scratch",
          high_noise_frac: float = 0.3, lr_schedule: str = "onecycle",
          resampler_pos: float = 0.0) -> T.DivotTokenizerTraining:
    from transformers import CLIPModel, CLIPVisionModel

    from divot_mini.frozen_vit import FrozenViT, load_frozen_vit, tiny_clip_config
    from divot_mini.vae import load_tiny_vae

    v = VARIANTS[variant]
    if init not in ("scratch", "shipped"):
        raise ValueError(f"--init must be 'scratch' or 'shipped', got {init!r}")
    if init == "shipped":  # continue from the course's weights (the shipped architecture: joint_fc)
        if variant != "joint_fc" or random_vit:
            raise ValueError("--init shipped continues the shipped pair: use --variant joint_fc, no --random-vit")
        spec = checkpoints.REGISTRY["divot_tokenizer"]
        pair = spec.build()  # the shipped file or an error -- never a silent retraining
        pair.load_state_dict(checkpoints.verify(spec, checkpoints.shipped_dir(), pair)["state"])
    else:
        torch.manual_seed(0)
        pair = T.DivotPair()
        cfg = pair.detokenizer.cfg  # the de-tokenizer is rebuilt from seed 0 with or without the channel
        torch.manual_seed(0)
        pair.detokenizer = DivotDetokenizer(dataclasses.replace(
            cfg, unet=dataclasses.replace(cfg.unet, frame_channel=v["frame_channel"])))
    if random_vit:
        vit = FrozenViT(CLIPVisionModel(CLIPModel(tiny_clip_config()).config.vision_config))
    else:
        vit = load_frozen_vit(verbose=False)
        if init == "scratch":  # the shipped pair holds its VAE already
            pair.detokenizer.first_stage_model.load_state_dict(load_tiny_vae(verbose=False).state_dict())
    # no new parameters: the same pair, its resampler also told where each slot is (0: as official)
    pair.tokenizer.image_proj_model.resampler_pos_scale = resampler_pos
    cls = OracleTraining if v["oracle"] else T.DivotTokenizerTraining
    module = cls(vit, pair.tokenizer, pair.detokenizer, lr=lr, total_steps=steps,
                 high_noise_frac=high_noise_frac, lr_schedule=lr_schedule)
    module.pair = pair
    return module


@torch.no_grad()
def measure(module, probe, n_decode: int, n_probe: int) -> dict:
    """The benchmark's reconstruction report on ``n_decode`` test clips (oracle tokens for the oracle
    variants); linear probes on the tokens and their spread (joint variants only)."""
    from divot_mini.tokenizer_evaluation import (clips, linear_probe_report, reconstruction_report,
                                                 token_spread, tokens_of)

    was_training = module.pair.training
    module.pair.eval()
    oracle = isinstance(module, OracleTraining)
    given = module.batch_tokens(torch.arange(n_decode), "test") if oracle else None
    out = reconstruction_report(module, probe, "test", n_decode, steps=10, tokens=given)
    if not oracle:
        rep = linear_probe_report(module, n_train=2 * n_probe, n_test=n_probe)
        out.update({k: v for k, v in rep.items() if k.startswith("tokens_")})
        out["token_spread"] = token_spread(tokens_of(module, clips("test", 64)["video"]))
    if was_training:
        module.pair.train()
    return {k: round(float(v), 4) for k, v in out.items()}


class Curve(L.Callback):
    """Measure every ``every`` steps and at the end; rewrite the JSON each time; stop at the time limit."""

    def __init__(self, every, record, path, probe, n_decode, n_probe, max_seconds):
        self.every, self.record, self.path, self.probe = every, record, path, probe
        self.n_decode, self.n_probe, self.max_seconds = n_decode, n_probe, max_seconds
        self.t0 = time.perf_counter()
        self.eval_s = 0.0

    def _write(self):
        self.path.write_text(json.dumps(self.record, indent=1))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == 20:
            self.record["s_per_step_first20"] = round((time.perf_counter() - self.t0) / 20, 4)
        if step % self.every == 0 and step < self.record["recipe"]["steps"]:
            t = time.perf_counter()
            m = measure(module, self.probe, self.n_decode, self.n_probe)
            self.eval_s += time.perf_counter() - t
            self.record["curve"].append({"step": step, "loss": round(float(outputs["loss"]), 4), **m})
            print(json.dumps(self.record["curve"][-1]), flush=True)
            self._write()
        if time.perf_counter() - self.t0 - self.eval_s > self.max_seconds:
            self.record["stopped_at_time_limit"] = step
            trainer.should_stop = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=list(VARIANTS), required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--every", type=int, default=300, help="measure every this many steps")
    ap.add_argument("--n-decode", type=int, default=128)
    ap.add_argument("--n-probe", type=int, default=256)
    ap.add_argument("--max-seconds", type=float, default=float("inf"), help="training time limit")
    ap.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--random-vit", action="store_true", help="smoke tests: no trained ViT/VAE needed")
    ap.add_argument("--init", choices=("scratch", "shipped"), default="scratch",
                    help="shipped: continue training the course's divot_tokenizer weights")
    ap.add_argument("--high-noise-frac", type=float, default=0.3,
                    help="fraction of training timesteps drawn from t >= 900")
    ap.add_argument("--lr-schedule", choices=("onecycle", "constant"), default="onecycle")
    ap.add_argument("--resampler-pos", type=float, default=0.0,
                    help="SpatialTemporalTransformer.resampler_pos_scale (0: off, as the official model)")
    ap.add_argument("--tag", default=None, help="name of the output files (default: the variant)")
    ap.add_argument("--out", default="build/tokenizer_scale")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.accelerator == "gpu":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    quiet_lightning()
    from divot_mini.probe import load_probe

    out, tag = Path(args.out), args.tag or args.variant
    out.mkdir(parents=True, exist_ok=True)
    module = build(args.variant, args.steps, args.lr, args.random_vit, args.init, args.high_noise_frac,
                   args.lr_schedule, args.resampler_pos)
    record = {"variant": args.variant, "tag": tag, **VARIANTS[args.variant],
              "recipe": {"steps": args.steps, "batch_size": args.batch, "lr": args.lr, "seed": 0,
                         "lr_schedule": args.lr_schedule, "gradient_clip": T.TOKENIZER_CLIP,
                         "cond_drop": 0.1, "high_noise_frac": args.high_noise_frac, "init": args.init,
                         "resampler_pos_scale": args.resampler_pos},
              "device": torch.cuda.get_device_name() if args.accelerator == "gpu" else "cpu",
              "torch": torch.__version__, "curve": []}
    curve = Curve(args.every, record, out / f"{tag}.json", load_probe(verbose=False),
                  args.n_decode, args.n_probe, args.max_seconds)
    L.seed_everything(0, workers=True, verbose=False)
    dm = MovingShapesDataModule(batch_size=args.batch, seed=0, steps_per_epoch=args.steps)
    trainer = L.Trainer(max_steps=args.steps, max_epochs=1, accelerator=args.accelerator, devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        gradient_clip_val=T.TOKENIZER_CLIP, callbacks=[curve])
    module.pair.train()
    t0 = time.perf_counter()
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    record["train_s"] = round(time.perf_counter() - t0 - curve.eval_s, 1)
    record["steps_done"] = trainer.global_step
    if args.accelerator == "gpu":
        module.cuda()
    t = time.perf_counter()
    record["final"] = measure(module, curve.probe, 2 * args.n_decode, 2 * args.n_probe)
    record["final_eval_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps({"final": record["final"], "train_s": record["train_s"]}), flush=True)
    curve._write()
    if not VARIANTS[args.variant]["oracle"]:
        from safetensors.torch import save_file
        state = {k: v.detach().cpu().contiguous() for k, v in module.pair.state_dict().items()
                 if not k.startswith("detokenizer.first_stage_model.")}
        save_file(state, str(out / f"{tag}.safetensors"), metadata={"record": json.dumps(record)})


if __name__ == "__main__":
    main()
