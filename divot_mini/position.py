"""Fixed sin-cos codes of *where* (and *when*): the mini design's position signal.

The official tokenizer adds small learned position embeddings once, and its Perceiver resampler and
the UNet's cross-attention have no position at all. At mini scale the diffusion loss then never
teaches the tokens where the object is. Options of the mini configuration give the tokenizer's
spatial-temporal slots (and its resampler's keys) and the UNet's cross-attention queries a code of
the same kind (these functions), large enough to matter next to LayerNorm'd features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sincos_1d(n: int, width: int) -> torch.Tensor:
    """[n, width]: sin and cos of DCT-like frequencies over n cells (amplitude 1; zero-padded)."""
    k = torch.arange(1, width // 2 + 1, dtype=torch.float32)
    ang = torch.pi * k[None] * (torch.arange(n, dtype=torch.float32)[:, None] + 0.5) / n
    return F.pad(torch.cat([ang.sin(), ang.cos()], 1), (0, width - 2 * (width // 2)))


def sincos_3d(frames: int, side: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A code of (frame, y, x) as two parts whose sum codes all three: spatial [side*side, dim] in the
    first two thirds of the channels (y, then x), temporal [frames, dim] in the last third."""
    third = dim // 3
    spatial = torch.zeros(side, side, dim)
    spatial[..., :third] = sincos_1d(side, third)[:, None]
    spatial[..., third:2 * third] = sincos_1d(side, third)[None]
    temporal = torch.zeros(frames, dim)
    temporal[:, 2 * third:] = sincos_1d(frames, dim - 2 * third)
    return spatial.reshape(side * side, dim), temporal
