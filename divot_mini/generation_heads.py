"""The paper's three ways to let an LLM *write* continuous tokens (Fig. 4), with one interface.

Each head turns the LLM's output states at the N query positions, ``hidden`` [B, N, H], into a loss
against the tokenizer's real tokens ``target_tokens`` [B, N, d] and into generated tokens:

    head.loss(hidden, target_tokens) -> scalar        head.sample(hidden, generator=...) -> [B, N, d]

* ``"mse"``: regression (Linear-GELU-Linear to d, mean squared error). One prediction per input:
  where the data has several answers it predicts their average.
* ``"diffusion"``: a small per-token denoiser conditioned on the output state (MAR-style, Li et al.
  2024): training adds noise to the real token and teaches the MLP to predict it; sampling runs DDIM
  from pure noise. It can represent any distribution, but needs many denoising steps per token.
* ``"gmm"`` (k = 16, Divot's choice) and ``"gmm_k1"`` (a single Gaussian): see
  :mod:`divot_mini.gmm_head`. k = 1 is regression with a learned variance; k = 16 can pick a mode.
* ``"gmm_mse"``: k = 16 plus an MSE term on the mixture mean (not in the paper; the course's
  measured fix for a mixture that ignores the prompt, see ``GMMHead``).
"""
from __future__ import annotations

import inspect

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.models.embeddings import TimestepEmbedding, Timesteps

from .gmm_head import SAMPLE_VAR_SCALE, GMMHead
from .projection import projection_mlp

HEAD_KINDS = ("gmm", "gmm_k1", "gmm_mse", "mse", "diffusion")


def _check(hidden: torch.Tensor, hidden_size: int, target: torch.Tensor | None = None,
           token_dim: int | None = None) -> None:
    if hidden.ndim < 2 or hidden.shape[-1] != hidden_size:
        raise ValueError(f"expected output states [..., N, {hidden_size}], got {tuple(hidden.shape)}")
    if target is not None and target.shape != hidden.shape[:-1] + (token_dim,):
        raise ValueError(f"target tokens must have shape {tuple(hidden.shape[:-1]) + (token_dim,)}, "
                         f"got {tuple(target.shape)}")


class MSEHead(nn.Module):
    """Regression: predict the token itself, loss = mean squared error."""

    def __init__(self, hidden_size: int, token_dim: int):
        super().__init__()
        self.hidden_size, self.token_dim = hidden_size, token_dim
        self.proj = projection_mlp(hidden_size, token_dim)

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        _check(hidden, self.hidden_size)
        return self.proj(hidden)

    def loss(self, hidden: torch.Tensor, target_tokens: torch.Tensor) -> torch.Tensor:
        _check(hidden, self.hidden_size, target_tokens, self.token_dim)
        return F.mse_loss(self.proj(hidden).float(), target_tokens.float())

    @torch.no_grad()
    def sample(self, hidden: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.predict(hidden)  # deterministic: nothing to sample


class AdaLNBlock(nn.Module):
    """Residual MLP block whose LayerNorm shift/scale and output gate come from the condition."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        nn.init.zeros_(self.modulation[1].weight)  # each block starts as the identity
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(c).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class DiffusionHead(nn.Module):
    """A per-token epsilon-prediction denoiser MLP conditioned on the LLM's output state.

    Training: cosine-schedule DDPM noise at a random timestep, ``batch_mul`` noise draws per token
    (MAR uses 4: the head is cheap next to the LLM). Sampling: DDIM, eta 0, from N(0, I).
    """

    def __init__(self, hidden_size: int, token_dim: int, width: int = 256, depth: int = 3,
                 num_train_timesteps: int = 1000, num_inference_steps: int = 25, batch_mul: int = 4):
        super().__init__()
        self.hidden_size, self.token_dim = hidden_size, token_dim
        self.num_inference_steps, self.batch_mul = num_inference_steps, batch_mul
        self.cond_proj = nn.Linear(hidden_size, width)
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(width, width)
        self.input_proj = nn.Linear(token_dim, width)
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(depth))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.output_proj = nn.Linear(width, token_dim)
        nn.init.zeros_(self.output_proj.weight)  # predicts eps = 0 at init: a calm start
        nn.init.zeros_(self.output_proj.bias)
        self.scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps,
                                       beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                                       clip_sample=False)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Predicted noise for noisy tokens ``x_t`` [M, d] at timesteps ``t`` [M], states [M, H]."""
        c = self.cond_proj(hidden) + self.time_embed(self.time_proj(t).to(hidden.dtype))
        x = self.input_proj(x_t)
        for block in self.blocks:
            x = block(x, c)
        return self.output_proj(self.final_norm(x))

    def loss(self, hidden: torch.Tensor, target_tokens: torch.Tensor) -> torch.Tensor:
        _check(hidden, self.hidden_size, target_tokens, self.token_dim)
        h = hidden.reshape(-1, self.hidden_size).repeat(self.batch_mul, 1)
        x0 = target_tokens.reshape(-1, self.token_dim).repeat(self.batch_mul, 1).to(h.dtype)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.scheduler.add_noise(x0, noise, t)
        return F.mse_loss(self.denoise(x_t, t, h).float(), noise.float())

    @torch.no_grad()
    def sample(self, hidden: torch.Tensor, generator: torch.Generator | None = None,
               num_inference_steps: int | None = None) -> torch.Tensor:
        _check(hidden, self.hidden_size)
        sampler = DDIMScheduler.from_config(self.scheduler.config)
        sampler.set_timesteps(num_inference_steps or self.num_inference_steps)
        h = hidden.reshape(-1, self.hidden_size)
        x = torch.randn((len(h), self.token_dim), generator=generator, device=h.device, dtype=h.dtype)
        for t in sampler.timesteps:
            eps = self.denoise(x, t.expand(len(h)).to(h.device), h)
            x = sampler.step(eps, t, x, eta=0.0).prev_sample
        return x.reshape(*hidden.shape[:-1], self.token_dim)


def sample_kwargs(head: nn.Module, generator: torch.Generator | None = None,
                  var_scale: float = SAMPLE_VAR_SCALE, component: str | None = None) -> dict:
    """Keyword arguments for ``head.sample``: ``generator`` (if given), ``var_scale`` where the head
    takes one (the GMM heads; regression and the diffusion head have no variance to scale), and the
    mixture's ``component`` choice (``"token"``/``"clip"``) if given and the head takes one."""
    kw = {} if generator is None else {"generator": generator}
    takes = inspect.signature(head.sample).parameters
    if "var_scale" in takes:
        kw["var_scale"] = var_scale
    if component is not None and "component" in takes:
        kw["component"] = component
    return kw


def make_generation_head(kind: str, hidden_size: int, token_dim: int, **kwargs) -> nn.Module:
    """``"gmm"`` (k=16, official), ``"gmm_k1"``, ``"gmm_mse"``, ``"mse"`` or ``"diffusion"``
    (kwargs go to the head)."""
    if kind == "gmm":
        return GMMHead(hidden_size, token_dim, k=kwargs.pop("k", 16), **kwargs)
    if kind == "gmm_mse":
        return GMMHead(hidden_size, token_dim, k=kwargs.pop("k", 16),
                       mean_mse_weight=kwargs.pop("mean_mse_weight", 1.0), **kwargs)
    if kind == "gmm_k1":
        return GMMHead(hidden_size, token_dim, k=1, **kwargs)
    if kind == "mse":
        return MSEHead(hidden_size, token_dim, **kwargs)
    if kind == "diffusion":
        return DiffusionHead(hidden_size, token_dim, **kwargs)
    raise ValueError(f"unknown generation head {kind!r}; choose one of {HEAD_KINDS}")
