"""The VAE whose latents the de-tokenizer's UNet denoises (official name: ``first_stage_model``).

Official Divot denoises Stable Diffusion's KL-f8 autoencoder latents: a 256-px frame becomes a
4 x 32 x 32 latent, so the 1.4 B-parameter UNet works on 64x fewer values than pixels. Both sizes
here are diffusers' ``AutoencoderKL``:

* full: the SD KL-f8 VAE (``sd_vae_config``), latents scaled by 0.18215 (a constant SD measured once
  so that latents have roughly unit variance);
* mini: a 0.9 M-parameter KL-f4 VAE pre-trained here on Moving Shapes frames (``tiny_vae``): a
  32-px frame becomes 4 x 8 x 8, and the mini UNet works on 12x fewer values than pixels.

Why a latent space for the mini at all (notebook 03 measures it): in pixel space the UNet needs at
least as many channels as the pixel-unshuffled input (48 for 4x4 patches) to pass the noise through,
and 64-channel UNets are too slow for a laptop; the VAE's 4 channels let a 32-channel UNet work.
The VAE is trained once, with a reconstruction loss and a weak KL term, then frozen.
"""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from . import checkpoints
from .fit import fit_on_moving_shapes
from .data import MovingShapes

TINY_VAE_STEPS = 600
TINY_VAE_KL = 1e-5
# Latent scale of the tiny VAE: 1 / std of its posterior means on training frames, measured once
# (the role of SD's 0.18215); benchmarks/tokenizer_stage.py re-measures it after every retrain.
TINY_VAE_SCALE = 1.7


def tiny_vae_config() -> dict:
    return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64),
                latent_channels=4, layers_per_block=1, norm_num_groups=16, sample_size=32,
                mid_block_add_attention=False)


def sd_vae_config() -> dict:
    """The Stable Diffusion KL-f8 VAE (DynamiCrafter's ``first_stage_model``) as diffusers arguments."""
    return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                latent_channels=4, layers_per_block=2, norm_num_groups=32, sample_size=256)


VAE_CONFIGS = {"sd_kl_f8": sd_vae_config(), "tiny_kl_f4": tiny_vae_config()}


class VAEPretraining(L.LightningModule):
    """Frames -> posterior sample -> reconstruction; loss = MSE + ``kl_weight`` * KL."""

    def __init__(self, vae: AutoencoderKL, lr: float = 2e-3, total_steps: int = TINY_VAE_STEPS,
                 kl_weight: float = TINY_VAE_KL, frames_per_clip: int = 4):
        super().__init__()
        self.vae, self.lr, self.total_steps = vae, lr, total_steps
        self.kl_weight, self.frames_per_clip = kl_weight, frames_per_clip

    def loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, reconstruction MSE) on ``frames_per_clip`` random frames of each clip."""
        video = batch["video"]
        pick = torch.randint(0, video.shape[1], (len(video), self.frames_per_clip), device=video.device)
        frames = video[torch.arange(len(video))[:, None], pick].flatten(0, 1)
        post = self.vae.encode(frames).latent_dist
        rec = self.vae.decode(post.sample()).sample
        mse, kl = F.mse_loss(rec, frames), post.kl().mean()
        return mse + self.kl_weight * kl, mse

    def training_step(self, batch, _):
        loss, mse = self.loss(batch)
        self.log("mse", mse, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.vae.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.total_steps,
                                                    pct_start=0.05)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def evaluate_vae(vae: AutoencoderKL, split: str = "test", n: int = 64, seed: int = 0) -> dict:
    """PSNR of frame reconstructions (posterior mean) and the std of the latents (for the scale)."""
    vae.eval()
    frames = MovingShapes(split, size=n, seed=seed)[list(range(n))]["video"].flatten(0, 1)
    z = vae.encode(frames).latent_dist.mode()
    rec = vae.decode(z).sample.clamp(-1, 1)
    mse = F.mse_loss(rec, frames).item()
    return {"psnr": round(10 * torch.log10(torch.tensor(4.0 / mse)).item(), 2),
            "latent_std": round(z.std().item(), 4)}


def train_tiny_vae(vae: AutoencoderKL, seed: int = 0, steps: int = TINY_VAE_STEPS,
                   batch_size: int = 16, progress: bool = True) -> dict:
    fit_on_moving_shapes(VAEPretraining(vae, total_steps=steps), vae, steps, batch_size, seed,
                         vae.config.sample_size, progress)
    return evaluate_vae(vae)


checkpoints.register(checkpoints.CheckpointSpec(
    name="tiny_vae",
    build=lambda: AutoencoderKL(**tiny_vae_config()),
    train=lambda m, seed: train_tiny_vae(m, seed),
    config={"arch": "AutoencoderKL", **{k: list(v) if isinstance(v, tuple) else v
                                        for k, v in tiny_vae_config().items()},
            "steps": TINY_VAE_STEPS, "kl_weight": TINY_VAE_KL, "batch_size": 16, "frames_per_clip": 4},
    seed=0,
    command="python scripts/train.py tiny_vae --ship",
))


def load_tiny_vae(verbose: bool = True) -> AutoencoderKL:
    """The mini VAE, frozen, through the weights policy (shipped -> cache -> train)."""
    vae, _ = checkpoints.load("tiny_vae", verbose=verbose)
    return vae.eval().requires_grad_(False)
