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


def grid_points(g: int, side: float) -> torch.Tensor:
    """[g*g, 2]: the (y, x) centres of a g x g grid laid over ``side`` cells (cell units)."""
    c = (torch.arange(g, dtype=torch.float32) + 0.5) * side / g - 0.5
    return torch.stack(torch.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)


def distance_bias(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """[len(a), len(b)]: attention logits -d^2 / (2 sigma^2) between points a [A, 2] and b [B, 2]."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return -torch.cdist(a, b) ** 2 / (2 * sigma**2)


def square_root(n: int, what: str) -> int:
    g = round(n ** 0.5)
    if g * g != n:
        raise ValueError(f"{what} must be a square number to sit on a grid, got {n}")
    return g


def locality_bias(num_queries: int, frames: int, side: int, sigma: float) -> torch.Tensor:
    """[num_queries, frames*side*side]: attention logits that tie each resampler query to one place.

    The queries sit on a g x g grid (g^2 = num_queries) spread over the side x side grid of pooled
    slots; query q prefers the slots near its anchor, in every frame: logit -d^2 / (2 sigma^2), d in
    slot widths. So token q describes its region of the clip over time, and *where* something is
    becomes *which* tokens describe it -- there from the first step, not left for training to find.
    """
    g = square_root(num_queries, "the number of queries")
    bias = distance_bias(grid_points(g, side), grid_points(side, side), sigma)  # [Q, side*side]
    return bias[:, None].expand(-1, frames, -1).reshape(num_queries, -1)


def token_grid_bias(num_queries: int, num_tokens: int, sigma: float) -> torch.Tensor:
    """[num_queries, num_tokens]: the de-tokenizer resampler's first ``num_tokens`` queries each tied
    to one token of the square token grid (query j reads token j and its neighbours); the rest of
    the queries get no bias and read the whole clip."""
    g = square_root(num_tokens, "the number of tokens")
    if num_queries < num_tokens:
        raise ValueError(f"a token-grid bias needs at least {num_tokens} queries, got {num_queries}")
    tied = distance_bias(grid_points(g, g), grid_points(g, g), sigma)
    return torch.cat([tied, torch.zeros(num_queries - num_tokens, num_tokens)])


def pixel_grid_bias(h: int, w: int, num_context: int, sigma: float) -> torch.Tensor:
    """[h*w, num_context]: cross-attention logits that send each pixel of an h x w feature map to the
    context tokens whose region of the clip it lies in (context laid out on a square grid)."""
    if h != w:
        raise ValueError(f"a pixel-grid bias needs square feature maps, got {h}x{w}")
    g = square_root(num_context, "the number of grid context tokens")
    return distance_bias(grid_points(h, g), grid_points(g, g), sigma)
