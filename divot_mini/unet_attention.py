"""Attention inside the video UNet: spatial transformers (self-attention + cross-attention to the
Divot tokens) and temporal transformers (self-attention across frames at every pixel).

The official DynamiCrafter cross-attention splits its context in two: the first ``text_context_len``
(77) tokens go through ``to_k``/``to_v``, the rest through ``to_k_ip``/``to_v_ip``; the two
attentions have separate softmaxes and are summed, the image part scaled by ``tanh(alpha) + 1``
(``alpha`` learnable, initially 0). Divot feeds 125 context tokens, so 77 + 48. Names follow the
official modules so official weights load unchanged.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .position import pixel_grid_bias, sincos_3d


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
            bias: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v with heads split off the channel dim: [B, N, h*d] -> [B, N, h*d].
    ``bias`` [N, L]: optional fixed logits, the same for every head and sample."""
    B, N, C = q.shape
    split = lambda t: t.view(B, t.shape[1], heads, C // heads).transpose(1, 2)  # noqa: E731
    mask = None if bias is None else bias.to(q.dtype)
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(B, N, C)


class CrossAttention(nn.Module):
    """Self-attention (``context=None``) or cross-attention, with the optional image-context branch."""

    def __init__(self, query_dim: int, context_dim: int | None = None, heads: int = 8,
                 dim_head: int = 64, dropout: float = 0.0, image_cross_attention: bool = False,
                 text_context_len: int = 77):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads, self.text_context_len = heads, text_context_len
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))
        self.image_cross_attention = image_cross_attention
        if image_cross_attention:
            self.to_k_ip = nn.Linear(context_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner, bias=False)
            self.alpha = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                text_bias: torch.Tensor | None = None) -> torch.Tensor:
        """``text_bias`` [N, text_context_len]: optional fixed logits on the first context branch."""
        q = self.to_q(x)
        if context is None:  # self-attention
            return self.to_out(_attend(q, self.to_k(x), self.to_v(x), self.heads))
        text = context[:, :self.text_context_len]
        out = _attend(q, self.to_k(text), self.to_v(text), self.heads, text_bias)
        if self.image_cross_attention:
            image = context[:, self.text_context_len:]
            if image.shape[1] == 0:
                raise ValueError(f"the context has {context.shape[1]} tokens: none left for the image "
                                 f"branch after the first {self.text_context_len}")
            out_ip = _attend(q, self.to_k_ip(image), self.to_v_ip(image), self.heads)
            out = out + out_ip * (torch.tanh(self.alpha) + 1)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """x + attn1(norm1 x) (self), x + attn2(norm2 x, context), x + ff(norm3 x)."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None = None,
                 image_cross_attention: bool = False, text_context_len: int = 77):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head,
                                    image_cross_attention=image_cross_attention,
                                    text_context_len=text_context_len)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                query_pos: torch.Tensor | None = None, text_bias: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        q_in = self.norm2(x) if query_pos is None else self.norm2(x) + query_pos  # queries only
        x = self.attn2(q_in, context, text_bias) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Attention over the pixels of each frame, cross-attending to the context. [(b t), c, h, w]."""

    def __init__(self, channels: int, heads: int, dim_head: int, context_dim: int,
                 norm_groups: int = 32, image_cross_attention: bool = True, text_context_len: int = 77,
                 query_pos: bool = False, context_grid: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        # Mini only (official: False): a fixed code of (frame, y, x) joins the cross-attention's
        # queries, so a pixel can ask the context about *its* place and time from the first step.
        self.query_pos, self.inner = query_pos, inner
        # Mini only (official: 0): the first context branch is a grid of tokens, one per region of
        # the clip, and each pixel prefers the tokens of its region (a fixed bias, width in grid cells)
        # -- so *which* token says something decides *where* it is drawn.
        self.context_grid, self.text_context_len = context_grid, text_context_len
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(
            inner, heads, dim_head, context_dim, image_cross_attention, text_context_len)])
        self.proj_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.proj_out.weight), nn.init.zeros_(self.proj_out.bias)

    def position_code(self, frames: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """[frames, h*w, inner]: the (frame, y, x) code added to the cross-attention queries."""
        if h != w:
            raise ValueError(f"query positions need square feature maps, got {h}x{w}")
        spatial, temporal = sincos_3d(frames, h, self.inner)
        return (spatial[None] + temporal[:, None]).to(like)

    def forward(self, x: torch.Tensor, context: torch.Tensor, frames: int = 1) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        pos = None
        if self.query_pos:  # images are laid out (clip, frame): the code repeats per clip
            pos = self.position_code(frames, h, w, y).repeat(b // frames, 1, 1)
        bias = (pixel_grid_bias(h, w, self.text_context_len, self.context_grid).to(y)
                if self.context_grid else None)
        for block in self.transformer_blocks:
            y = block(y, context, pos, bias)
        y = self.proj_out(y).transpose(1, 2).reshape(b, c, h, w)
        return x + y


class TemporalTransformer(nn.Module):
    """Attention across the frames at each pixel (both attentions are self-attention). [b, c, t, h, w].

    ``linear=False`` uses 1x1 Conv1d projections (the official ``init_attn`` after the input conv).
    """

    def __init__(self, channels: int, heads: int, dim_head: int, norm_groups: int = 32,
                 linear: bool = True):
        super().__init__()
        inner = heads * dim_head
        self.linear = linear
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner) if linear else nn.Conv1d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head)])
        self.proj_out = nn.Linear(inner, channels) if linear else nn.Conv1d(inner, channels, 1)
        nn.init.zeros_(self.proj_out.weight), nn.init.zeros_(self.proj_out.bias)

    def _project(self, layer: nn.Module, y: torch.Tensor) -> torch.Tensor:
        # y: [N, t, c]; a 1x1 Conv1d is a Linear with a trailing singleton kernel dim
        if self.linear:
            return layer(y)
        return F.linear(y, layer.weight.squeeze(-1), layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.norm(x).permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)  # one sequence per pixel
        y = self._project(self.proj_in, y)
        for block in self.transformer_blocks:
            y = block(y)
        y = self._project(self.proj_out, y)
        return x + y.view(b, h, w, t, c).permute(0, 4, 3, 1, 2)
