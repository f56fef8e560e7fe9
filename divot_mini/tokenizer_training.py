"""Training the Divot tokenizer *through* the diffusion de-tokenizer (the paper's central idea).

No labels and no captions: a clip's 5 sampled frames go through the frozen ViT and the tokenizer;
the de-tokenizer's UNet must denoise all 16 frames given those tokens. The only loss is the
denoising loss (v-prediction MSE), so the tokenizer learns whatever the UNet needs to know about the
clip -- what is in it and how it moves. With probability ``cond_drop`` the tokenizer sees an
all-zeros video instead, which teaches the unconditional context that classifier-free guidance
needs (the official unconditional context is exactly the tokens of an all-zeros video).

The module is plain Lightning: it runs unchanged on one CPU, under DDP on several processes, or on
GPUs (``scripts/train_tokenizer.py --devices 2 --strategy ddp`` is the smoke test).
"""
from __future__ import annotations

import json

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints, diffusion
from .data import MovingShapes, tokenizer_frames
from .detokenizer import DetokenizerConfig, DivotDetokenizer
from .frozen_vit import FrozenViT
from .tokenizer import DivotTokenizer, TokenizerConfig


class DivotTokenizerTraining(L.LightningModule):
    def __init__(self, vit: FrozenViT, tokenizer: DivotTokenizer, detokenizer: DivotDetokenizer,
                 lr: float = 1e-3, cond_drop: float = 0.1, high_noise_frac: float = 0.3,
                 total_steps: int = 1000, weight_decay: float = 0.0, lr_schedule: str = "onecycle",
                 latent_pool: int = 0, data_seed: int = 0, tokenizer_lr_scale: float = 1.0):
        super().__init__()
        if lr_schedule not in ("onecycle", "constant"):
            raise ValueError(f"lr_schedule must be 'onecycle' or 'constant', got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.vit, self.tokenizer, self.detokenizer = vit, tokenizer, detokenizer
        self.lr, self.cond_drop, self.high_noise_frac = lr, cond_drop, high_noise_frac
        self.total_steps, self.weight_decay = total_steps, weight_decay
        # < 1: the tokenizer learns slower than the de-tokenizer (two timescales), so what its
        # tokens hold at the start stays put while the de-tokenizer learns to read it
        if tokenizer_lr_scale < 0:
            raise ValueError(f"tokenizer_lr_scale must be >= 0, got {tokenizer_lr_scale}")
        self.tokenizer_lr_scale = tokenizer_lr_scale
        # latent_pool > 0: training draws from the first latent_pool training clips, whose latents
        # the frozen VAE gives once (computed at fit start) instead of at every step
        self.latent_pool, self.data_seed, self.pool_latents = latent_pool, data_seed, None

    # -- the pieces a notebook calls -----------------------------------------------------------
    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Clips [B, 16, 3, H, W] -> Divot tokens [B, N, d] (from the 5 sampled frames)."""
        return self.tokenizer(self.vit(tokenizer_frames(video)))

    def uncond_tokens(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of an all-zeros (mid-grey) video: the unconditional input of CFG."""
        size = self.vit.image_size
        zeros = torch.zeros(1, 16, 3, size, size, device=self.device)
        tok = self.tokens(zeros)
        return tok if like is None else tok.expand_as(like)

    @torch.no_grad()
    def reconstruct(self, video: torch.Tensor, steps: int = 25, guidance_scale: float = 1.0,
                    generator: torch.Generator | None = None, **kw) -> torch.Tensor:
        tokens = self.tokens(video)
        unc = self.uncond_tokens(tokens) if guidance_scale != 1.0 else None
        return self.detokenizer.sample(tokens, unc, frames=video.shape[1], size=video.shape[-1],
                                       steps=steps, guidance_scale=guidance_scale,
                                       generator=generator, **kw)

    # -- training ------------------------------------------------------------------------------
    def denoising_loss(self, video: torch.Tensor, tokens: torch.Tensor | None = None,
                       z0: torch.Tensor | None = None) -> torch.Tensor:
        """v-prediction loss of the UNet on ``video`` given its tokens (computed here from the 5
        sampled frames, or given: ``benchmarks/tokenizer_scale.py`` passes oracle tokens) and its
        latents (encoded here, or given: the latent pool)."""
        B = video.shape[0]
        drop = torch.rand(B, device=video.device) < self.cond_drop
        if tokens is None:
            frames = tokenizer_frames(video)
            frames = torch.where(drop[:, None, None, None, None], torch.zeros_like(frames), frames)
            tokens = self.tokenizer(self.vit(frames))
        else:
            tokens = torch.where(drop[:, None, None], torch.zeros_like(tokens), tokens)
        if z0 is None:
            z0 = self.detokenizer.encode(video)
        noise = torch.randn_like(z0)
        t = diffusion.sample_timesteps(B, self.high_noise_frac, device=video.device)
        z_t, v = diffusion.v_target(self.detokenizer.scheduler, z0, noise, t)
        return F.mse_loss(self.detokenizer(z_t, t, tokens), v)

    @torch.no_grad()
    def on_fit_start(self):
        if self.latent_pool and self.pool_latents is None:
            ds = MovingShapes("train", size=self.latent_pool, seed=self.data_seed)
            self.pool_latents = torch.cat([
                self.detokenizer.encode(ds[list(range(i, min(self.latent_pool, i + 128)))]["video"].to(self.device))
                for i in range(0, self.latent_pool, 128)])

    def training_step(self, batch, _):
        z0 = None
        if self.pool_latents is not None:
            if int(batch["index"].max()) >= len(self.pool_latents):
                raise ValueError(f"clip {int(batch['index'].max())} is outside the latent pool of "
                                 f"{len(self.pool_latents)} clips: train on a split of that size")
            z0 = self.pool_latents[batch["index"].to(self.pool_latents.device)]
        loss = self.denoising_loss(batch["video"], z0=z0)
        self.log("loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["video"]))
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self.denoising_loss(batch["video"]), prog_bar=True, sync_dist=True,
                 batch_size=len(batch["video"]))

    def configure_optimizers(self):
        # the ViT and the VAE stay frozen: only the tokenizer, the image-projection resampler and the UNet learn
        det = (list(self.detokenizer.image_proj_model.parameters())
               + list(self.detokenizer.diffusion_model.parameters()))
        tok_lr = self.lr * self.tokenizer_lr_scale
        tok = list(self.tokenizer.parameters())
        # one group when both learn alike, so checkpoints of runs made before the option still resume
        groups = ([{"params": tok + det, "lr": self.lr}] if self.tokenizer_lr_scale == 1.0
                  else [{"params": tok, "lr": tok_lr}, {"params": det, "lr": self.lr}])
        opt = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups],
                                                        total_steps=self.total_steps, pct_start=0.05)
        else:  # linear warm-up over 5% of the steps, then constant
            warm = max(1, self.total_steps // 20)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


# ----------------------------------------------------------------------------- the course's weights
class DivotPair(nn.Module):
    """What the joint training produces and the course ships: the tokenizer and the de-tokenizer
    (image-projection resampler + UNet + its frozen VAE). The frozen ViT is its own checkpoint
    (``tiny_clip``), as the official tokenizer checkpoint omits the ViT too."""

    def __init__(self, vit_width: int = 64, vit_grid: int = 8):
        super().__init__()
        self.tokenizer = DivotTokenizer(TokenizerConfig.mini(vit_dim=vit_width, patch_grid=vit_grid))
        self.detokenizer = DivotDetokenizer(DetokenizerConfig.mini(token_dim=self.tokenizer.cfg.token_dim))


# The shipped recipe: 1,200 steps x 128 clips, measured on an H100 (224 s) by
# ``benchmarks/tokenizer_scale.py``; on 2 CPU cores the same recipe takes hours (benchmarks/RESULTS.md).
# The earlier CPU recipe (900 x 32, 92 min) decoded colour 0.50 / shape 0.38; this one 1.00 / 0.71.
TOKENIZER_STEPS = 1200
TOKENIZER_BATCH = 128
TOKENIZER_LR = 1e-3
TOKENIZER_CLIP = 1.0


def fit_pair(pair: DivotPair, seed: int = 0, steps: int = TOKENIZER_STEPS,
             batch_size: int = TOKENIZER_BATCH, progress: bool = True, *, lr: float = TOKENIZER_LR,
             lr_schedule: str = "onecycle", high_noise_frac: float = 0.3,
             clip: float | None = TOKENIZER_CLIP, accelerator: str = "cpu", latent_pool: int = 0,
             resume_dir=None) -> DivotTokenizerTraining:
    """Joint self-supervised training (frozen tiny-CLIP ViT, frozen tiny VAE) of ``pair`` with the
    shipped recipe (keywords override it, e.g. for ``benchmarks/tokenizer_sweep.py``). Returns the
    training module in eval mode, on the accelerator it trained on. ``latent_pool``: train on that
    many clips with their latents computed once; ``resume_dir``: checkpoints there, continued after
    an interruption."""
    from .fit import fit_on_moving_shapes
    from .frozen_vit import load_frozen_vit
    from .vae import load_tiny_vae

    vit = load_frozen_vit(verbose=progress)
    pair.detokenizer.first_stage_model.load_state_dict(load_tiny_vae(verbose=progress).state_dict())
    module = DivotTokenizerTraining(vit, pair.tokenizer, pair.detokenizer, lr=lr, total_steps=steps,
                                    high_noise_frac=high_noise_frac, lr_schedule=lr_schedule,
                                    latent_pool=latent_pool, data_seed=seed)
    recipe = {"steps": steps, "batch_size": batch_size, "seed": seed, "lr": lr, "lr_schedule": lr_schedule,
              "high_noise_frac": high_noise_frac, "gradient_clip": clip, "latent_pool": latent_pool,
              "tokenizer": pair.tokenizer.cfg.to_dict(), "detokenizer": pair.detokenizer.cfg.to_dict()}
    # Gradient clipping at norm 1, as the official training. Measured without it: the tokens'
    # spread across clips collapsed to 0.01 and decoding ignored the tokens (benchmarks/RESULTS.md).
    fit_on_moving_shapes(module, pair, steps, batch_size, seed, vit.image_size, progress,
                         gradient_clip_val=clip, accelerator=accelerator,
                         train_size=latent_pool or None, resume_dir=resume_dir, recipe=recipe)
    if accelerator == "gpu":  # Lightning hands the model back on the CPU
        module.cuda()
    return module.eval()


def train_pair(pair: DivotPair, seed: int = 0, steps: int = TOKENIZER_STEPS,
               batch_size: int = TOKENIZER_BATCH, progress: bool = True, evaluate: bool = True) -> dict:
    """:func:`fit_pair` with the shipped recipe, then the measurements stored in the provenance."""
    module = fit_pair(pair, seed, steps, batch_size, progress,
                      accelerator="gpu" if torch.cuda.is_available() else "cpu")
    if not evaluate:
        return {}
    from .probe import load_probe
    from .tokenizer_evaluation import linear_probe_report, reconstruction_report
    return {**reconstruction_report(module, load_probe(verbose=progress), n=128),
            **linear_probe_report(module, n_train=512, n_test=256)}


checkpoints.register(checkpoints.CheckpointSpec(
    name="divot_tokenizer",
    build=DivotPair,
    train=lambda m, seed: train_pair(m, seed),
    config={"tokenizer": TokenizerConfig.mini(vit_dim=64, patch_grid=8).to_dict(),
            "detokenizer": json.loads(json.dumps(DetokenizerConfig.mini().to_dict())),
            "steps": TOKENIZER_STEPS, "batch_size": TOKENIZER_BATCH, "lr": TOKENIZER_LR,
            "gradient_clip": TOKENIZER_CLIP,
            "cond_drop": 0.1, "high_noise_frac": 0.3, "vit": "tiny_clip", "vae": "tiny_vae"},
    seed=0,
    command="python scripts/train.py divot_tokenizer --ship",
))


def load_trained(verbose: bool = True) -> DivotTokenizerTraining:
    """The trained mini tokenizer + de-tokenizer with their frozen ViT, ready to tokenize and decode."""
    from .frozen_vit import load_frozen_vit

    pair, _ = checkpoints.load("divot_tokenizer", verbose=verbose)
    return DivotTokenizerTraining(load_frozen_vit(verbose=verbose), pair.tokenizer,
                                  pair.detokenizer).eval()
