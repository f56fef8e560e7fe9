"""The temporal encoder: a small transformer over time, run separately at every ViT patch position.

A frozen image ViT sees each frame alone, so its patch features hold appearance but no motion. The
temporal encoder reads, for one patch position, the 5-frame sequence of that patch's features and
lets the frames exchange information: the first place in Divot where motion can be represented.

Official quirks kept on purpose: there is *no residual* around the encoder, and it is zero-initialised
(``input_proj`` identity; position embedding, every block's output projections and ``output_proj``
zero), so its output starts at exactly 0 and training grows it from nothing. LayerNorms use eps 1e-6
(timm's LayerNorm in the official code). Parameter names follow the official ``MotionPredictor``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn


class QuickGELU(nn.Module):
    """CLIP's GELU approximation x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)),
                                              ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class TemporalEncoder(nn.Module):
    """[N, frames, input_dim] -> [N, frames, output_dim] (N = batch x patch positions)."""

    def __init__(self, input_dim: int, output_dim: int, width: int, layers: int, heads: int,
                 num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.transformer = Transformer(width, layers, heads)
        self.input_proj = nn.Linear(input_dim, width)
        self.positional_embedding = nn.Parameter(torch.empty(num_frames, width))
        self.ln_final = nn.LayerNorm(width, eps=1e-6)
        self.output_proj = nn.Linear(width, output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        width = self.transformer.width
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
            nn.init.zeros_(block.attn.in_proj_bias)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            # zero init: each block starts as the identity
            for lin in (block.attn.out_proj, block.mlp.c_proj):
                nn.init.zeros_(lin.weight), nn.init.zeros_(lin.bias)
        nn.init.eye_(self.input_proj.weight)
        nn.init.zeros_(self.input_proj.bias)
        nn.init.zeros_(self.positional_embedding)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.num_frames:
            raise ValueError(f"the temporal encoder expects {self.num_frames} frames, got {x.shape[1]}")
        x = self.input_proj(x) + self.positional_embedding.to(x.dtype)
        x = self.transformer(x)
        return self.output_proj(self.ln_final(x))  # no residual (official)
