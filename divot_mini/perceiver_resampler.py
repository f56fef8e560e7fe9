"""The Perceiver resampler: a fixed number of learned queries read a variable-length sequence.

Divot uses it twice: at the end of the tokenizer (125 spatio-temporal features -> 64 tokens x 256,
the ``down_sampler``) and in the de-tokenizer (64 tokens -> 125 x 1024 UNet context, the
``image_proj_model``). Each layer lets the queries ("latents") attend to the inputs *and to
themselves* (keys/values come from ``concat(inputs, latents)``), then a feed-forward block; both
residual. Parameter names follow the official ``Resampler_DC`` so official weights load unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class PerceiverAttention(nn.Module):
    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)  # inputs
        self.norm2 = nn.LayerNorm(dim)  # latents
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.dim_head).transpose(1, 2)  # [b, heads, n, dim_head]

    def forward(self, x: torch.Tensor, latents: torch.Tensor,
                key_pos: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        x, latents = self.norm1(x), self.norm2(latents)
        q = self._heads(self.to_q(latents))
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        if key_pos is not None:
            # DETR-style: the inputs' positions [N, dim] join their *keys* only, so where a slot is
            # decides which query reads it while what it says (the value) stays pure content.
            # The latents' keys get none. Not in the official resampler (key_pos=None there).
            pos_k = key_pos.to(k.dtype) @ self.to_kv.weight[: self.heads * self.dim_head].T
            k = k + F.pad(pos_k, (0, 0, 0, latents.shape[1]))
        k, v = self._heads(k), self._heads(v)
        # Scale q and k by dim_head^-1/4 each (not the product by dim_head^-1/2): same maths,
        # smaller intermediate values in fp16 -- and the official weights expect exactly this.
        scale = 1 / math.sqrt(math.sqrt(self.dim_head))
        w = (q * scale) @ (k * scale).transpose(-2, -1)
        if bias is not None:  # [Q, N] on the inputs' columns; the latents' own columns get none
            w = w + F.pad(bias.to(w.dtype), (0, latents.shape[1]))
        w = torch.softmax(w.float(), dim=-1).to(w.dtype)
        out = (w @ v).transpose(1, 2).reshape(latents.shape[0], latents.shape[1], -1)
        return self.to_out(out)


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """LayerNorm -> Linear (x mult, no bias) -> GELU -> Linear (no bias); indices 0, 1, 3 as official."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class PerceiverResampler(nn.Module):
    """[B, N, input_dim] -> [B, num_queries, output_dim]."""

    def __init__(self, dim: int, depth: int, num_queries: int, input_dim: int, output_dim: int,
                 dim_head: int = 64, heads: int = 16, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(input_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth))

    def forward(self, x: torch.Tensor, key_pos: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """``key_pos`` [N, dim]: optional positions of the N inputs, added to their keys in every
        layer (see :class:`PerceiverAttention`). ``bias`` [num_queries, N]: optional fixed attention
        logits added in every layer (a query's preference for some inputs; not in the official model)."""
        latents = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        if key_pos is not None and tuple(key_pos.shape) != (x.shape[1], x.shape[2]):
            raise ValueError(f"key_pos must be [{x.shape[1]}, {x.shape[2]}] (one per input), "
                             f"got {tuple(key_pos.shape)}")
        if bias is not None and tuple(bias.shape) != (latents.shape[1], x.shape[1]):
            raise ValueError(f"bias must be [{latents.shape[1]}, {x.shape[1]}] (queries x inputs), "
                             f"got {tuple(bias.shape)}")
        for attn, ff in self.layers:
            latents = attn(x, latents, key_pos, bias) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))
