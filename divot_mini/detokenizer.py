"""The Divot de-tokenizer: Divot tokens -> UNet context -> DDIM denoising -> a 16-frame clip.

    tokens [B, N, d] --image_proj_model (Perceiver resampler)--> context [B, L, context_dim]
    noise [B, C, 16, h, w] --VideoUNet(x_t, t, context) + DDIM + CFG--> latents --decode--> clip

The unconditional context of classifier-free guidance is, as in the official code, the context of
an all-zeros (mid-grey) video: the tokenizer's answer to "nothing". The UNet denoises in the latent
space of a frozen VAE (diffusers ``AutoencoderKL``): SD's KL-f8 at full size, the course's tiny
KL-f4 at mini size (``vae.py`` and notebook 03 explain the choice).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from diffusers import AutoencoderKL

from . import diffusion
from .checkpoints import later_fields_omitted
from .perceiver_resampler import PerceiverResampler
from .position import token_grid_bias
from .unet import UNetConfig, VideoUNet
from .vae import TINY_VAE_SCALE, VAE_CONFIGS


@dataclass(frozen=True)
class DetokenizerConfig:
    token_dim: int = 256
    num_context: int = 125        # UNet context length (77 + 48 in the official split)
    resampler_dim: int = 1024
    resampler_depth: int = 6
    resampler_heads: int = 16
    resampler_dim_head: int = 64
    unet: UNetConfig = UNetConfig.full()
    vae: str = "sd_kl_f8"         # which AutoencoderKL (vae.VAE_CONFIGS): "sd_kl_f8" or "tiny_kl_f4"
    vae_scale: float = 0.18215    # latents are multiplied by this (unit variance for the UNet)
    vae_downsample: int = 8       # spatial factor of the VAE (SD KL-f8: 8)
    vae_sample: bool = True       # official: sample the posterior; False: use its mean (a small VAE
                                  # trained with a weak KL has a wide posterior, see RESULTS.md)
    noise_shift: float = 1.0      # mini only: the noise schedule moved toward high noise by this
                                  # (diffusion.make_scheduler); 1 = official
    context_local: float = 0.0    # mini only, > 0: the resampler's first num_tokens queries each tied
                                  # to one token of the token grid (position.token_grid_bias, width)

    def __post_init__(self):
        if self.context_local < 0:
            raise ValueError(f"context_local must be >= 0 (0 = off), got {self.context_local}")

    @classmethod
    def full(cls) -> "DetokenizerConfig":
        return cls()

    @classmethod
    def mini(cls, token_dim: int = 32) -> "DetokenizerConfig":
        unet = UNetConfig.mini(in_channels=4, context_dim=64, text_context_len=16)
        return cls(token_dim=token_dim, num_context=24, resampler_dim=64, resampler_depth=2,
                   resampler_heads=4, resampler_dim_head=16, unet=unet, vae="tiny_kl_f4",
                   vae_scale=TINY_VAE_SCALE, vae_downsample=4, vae_sample=False)

    def to_dict(self) -> dict:
        d = later_fields_omitted(asdict(self), {"noise_shift": 1.0, "context_local": 0.0})
        d["unet"] = self.unet.to_dict()
        return d


class DivotDetokenizer(nn.Module):
    def __init__(self, cfg: DetokenizerConfig | None = None, vae: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DetokenizerConfig.mini()
        self.image_proj_model = PerceiverResampler(
            dim=cfg.resampler_dim, depth=cfg.resampler_depth, num_queries=cfg.num_context,
            input_dim=cfg.token_dim, output_dim=cfg.unet.context_dim,
            dim_head=cfg.resampler_dim_head, heads=cfg.resampler_heads)
        self.diffusion_model = VideoUNet(cfg.unet)
        # the frozen VAE (official name); built untrained from the config unless one is given
        self.first_stage_model = vae if vae is not None else AutoencoderKL(**VAE_CONFIGS[cfg.vae])
        self.first_stage_model.eval().requires_grad_(False)
        self.scheduler = diffusion.make_scheduler(shift=cfg.noise_shift)

    # -- latent space ------------------------------------------------------------------------
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Clip [B, T, 3, H, W] in [-1, 1] -> latents [B, C, T, h, w]."""
        B, T = video.shape[:2]
        with torch.no_grad():  # the VAE is frozen
            post = self.first_stage_model.encode(video.flatten(0, 1)).latent_dist
            z = (post.sample() if self.cfg.vae_sample else post.mode()) * self.cfg.vae_scale
        return z.view(B, T, *z.shape[1:]).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, T, h, w] -> clip [B, T, 3, H, W] (clamped to [-1, 1]), frame by frame."""
        B, C, T = z.shape[:3]
        flat = z.transpose(1, 2).flatten(0, 1)
        x = self.first_stage_model.decode(flat / self.cfg.vae_scale).sample
        return x.view(B, T, *x.shape[1:]).clamp(-1, 1)

    # -- conditioning ------------------------------------------------------------------------
    def context(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3 or tokens.shape[-1] != self.cfg.token_dim:
            raise ValueError(f"expected Divot tokens [B, N, {self.cfg.token_dim}], got {tuple(tokens.shape)}")
        if not torch.isfinite(tokens).all():
            raise ValueError("Divot tokens contain NaN or infinite values")
        bias = None
        if self.cfg.context_local:  # context j < num_tokens reads token j: the grid stays a grid
            bias = token_grid_bias(self.cfg.num_context, tokens.shape[1], self.cfg.context_local).to(tokens)
        return self.image_proj_model(tokens, bias=bias)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """v-prediction for noised latents z_t given Divot tokens."""
        return self.diffusion_model(z_t, t, self.context(tokens))

    @torch.no_grad()
    def sample(self, tokens: torch.Tensor, uncond_tokens: torch.Tensor | None = None,
               frames: int = 16, size: int = 32, steps: int = diffusion.DDIM_STEPS,
               guidance_scale: float = diffusion.GUIDANCE_SCALE,
               guidance_rescale: float = diffusion.GUIDANCE_RESCALE, eta: float = diffusion.DDIM_ETA,
               generator: torch.Generator | None = None, trajectory: list | None = None,
               spacing: str = "official") -> torch.Tensor:
        """Decode tokens to clips [B, frames, 3, size, size] with DDIM (+ CFG if uncond_tokens).
        ``spacing="trailing"`` for few-step decoding (see :func:`diffusion.make_scheduler`)."""
        ctx = self.context(tokens)
        unc = None if uncond_tokens is None else self.context(uncond_tokens)
        c, h = self.cfg.unet.in_channels, size // self.cfg.vae_downsample
        z = diffusion.ddim_sample(
            lambda x, t, cx: self.diffusion_model(x, t, cx), ctx, unc, (len(tokens), c, frames, h, h),
            steps, guidance_scale, guidance_rescale, eta, generator, trajectory,
            diffusion.make_scheduler(spacing, self.cfg.noise_shift))
        if trajectory is not None:
            trajectory[:] = [self.decode(x0) for x0 in trajectory]
        return self.decode(z)
