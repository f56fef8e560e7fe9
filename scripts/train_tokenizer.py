#!/usr/bin/env python3
"""Joint training of the mini Divot tokenizer + de-tokenizer with Lightning.

    python scripts/train_tokenizer.py --steps 200                       # one process
    python scripts/train_tokenizer.py --steps 3 --devices 2 --strategy ddp --random-vit   # DDP smoke test

Checkpoints (Lightning .ckpt, resumable with --resume) go to --out.
"""
import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from transformers import CLIPModel, CLIPVisionModel

from divot_mini.data import MovingShapesDataModule
from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer
from divot_mini.frozen_vit import FrozenViT, load_frozen_vit, tiny_clip_config
from divot_mini.fit import quiet_lightning
from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
from divot_mini.tokenizer_training import TOKENIZER_CLIP, DivotTokenizerTraining
from divot_mini.vae import load_tiny_vae


class StopAfter(L.Callback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, *_):
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


def build(random_vit: bool, total_steps: int, lr: float) -> DivotTokenizerTraining:
    if random_vit:  # for smoke tests: no trained weights needed
        vit = FrozenViT(CLIPVisionModel(CLIPModel(tiny_clip_config()).config.vision_config))
    else:
        vit = load_frozen_vit(verbose=False)
    tok = DivotTokenizer(TokenizerConfig.mini(vit_dim=vit.width, patch_grid=vit.grid))
    det = DivotDetokenizer(DetokenizerConfig.mini())
    if not random_vit:  # the trained tiny VAE (weights policy); smoke tests keep a random one
        det.first_stage_model.load_state_dict(load_tiny_vae(verbose=False).state_dict())
    return DivotTokenizerTraining(vit, tok, det, lr=lr, total_steps=total_steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-vit", action="store_true")
    ap.add_argument("--out", default="build/tokenizer_training")
    ap.add_argument("--resume", default=None, help="a .ckpt to resume from")
    ap.add_argument("--stop-after", type=int, default=None,
                    help="stop (as if interrupted) after this many steps; resume later with --resume")
    args = ap.parse_args()
    quiet_lightning()
    L.seed_everything(args.seed, workers=True, verbose=False)
    torch.set_num_threads(max(1, torch.get_num_threads() // args.devices))
    module = build(args.random_vit, args.steps, args.lr)
    dm = MovingShapesDataModule(batch_size=args.batch_size, seed=args.seed, steps_per_epoch=args.steps,
                                sizes={"val": 4 * args.batch_size})
    out = Path(args.out)
    trainer = L.Trainer(max_steps=args.steps, accelerator="cpu", devices=args.devices,
                        strategy=args.strategy, logger=False, default_root_dir=out,
                        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=out, save_last=True,
                                                                       every_n_train_steps=1)]
                        + ([StopAfter(args.stop_after)] if args.stop_after else []),
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=1,
                        val_check_interval=max(1, args.steps), use_distributed_sampler=False,
                        gradient_clip_val=TOKENIZER_CLIP)
    t0 = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=args.resume)
    if trainer.is_global_zero:
        result = {"steps": trainer.global_step, "world_size": trainer.world_size,
                  "loss": float(trainer.callback_metrics["loss"]), "seconds": round(time.time() - t0, 1)}
        print(json.dumps(result))
        (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
