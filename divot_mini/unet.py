"""The de-tokenizer's video UNet (DynamiCrafter-style): it predicts v for all 16 frames at once.

A 2-D UNet runs over the frames as a batch of images ``[(b t), c, h, w]``; what makes it a *video*
model is what sits between its 2-D layers:

* every ResBlock ends in a temporal convolution stack (kernel 3 over time, 1x1 in space),
* every attention level has a SpatialTransformer (pixels of a frame attend to each other and to the
  Divot-token context) followed by a TemporalTransformer (each pixel attends across frames),
* the timestep embedding is joined by a frame-stride (``fs``) embedding.

``UNetConfig.full()`` is the official 1.4 B-parameter UNet (320 channels, levels 1/2/4/4, keys as in
``diffusion_model.*`` of the official checkpoint, including its ``temopral_conv`` typo);
``UNetConfig.mini()`` is the course's CPU version of the same classes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoints import later_fields_omitted
from .unet_attention import SpatialTransformer, TemporalTransformer


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_head_channels: int = 64
    context_dim: int = 1024
    text_context_len: int = 77     # the context split: first 77 -> to_k/to_v, rest -> *_ip
    init_attn_heads: int = 8       # the extra temporal attention after the input conv
    norm_groups: int = 32
    dropout: float = 0.1
    default_fs: int = 3
    coord_channels: bool = False   # mini only: append 2 coordinate maps (y, x in [-1, 1]) to the input
    frame_channel: bool = False    # mini only: append 1 map holding the frame's index (in [-1, 1])
    query_pos: bool = False        # mini only: a sin-cos code of (frame, y, x) in the cross-attention queries
    context_grid: float = 0.0      # mini only, > 0: the first text_context_len context tokens form a
                                   # grid over the clip and pixels prefer their region's (bias width)

    def __post_init__(self):
        if self.context_grid < 0:
            raise ValueError(f"context_grid must be >= 0 (0 = off), got {self.context_grid}")
        if self.context_grid and round(self.text_context_len ** 0.5) ** 2 != self.text_context_len:
            raise ValueError(f"context_grid lays the first text_context_len context tokens on a square "
                             f"grid; text_context_len={self.text_context_len} is not a square number")

    @classmethod
    def full(cls) -> "UNetConfig":
        return cls()

    @classmethod
    def mini(cls, in_channels: int = 3, context_dim: int = 64, text_context_len: int = 16) -> "UNetConfig":
        return cls(in_channels=in_channels, out_channels=in_channels, model_channels=32,
                   channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(1, 2),
                   num_head_channels=16, context_dim=context_dim, text_context_len=text_context_len,
                   init_attn_heads=2, norm_groups=8, dropout=0.0, coord_channels=True,
                   frame_channel=True)

    def to_dict(self) -> dict:
        return later_fields_omitted(asdict(self), {"query_pos": False, "context_grid": 0.0})


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos | sin] of (possibly fractional) timesteps t [N] -> [N, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in fp32 whatever the input dtype (official ResBlock/output norms)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class TemporalConv(nn.Conv3d):
    """A (3, 1, 1) Conv3d computed as a Conv1d over time: the same weights, several times faster
    on a CPU (no 3-D convolution kernel for a kernel that is 1x1 in space)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [b, c, t, h, w]
        b, c, t, h, w = x.shape
        y = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)
        y = F.conv1d(y, self.weight[..., 0, 0], self.bias, padding=1)
        return y.view(b, h, w, -1, t).permute(0, 3, 4, 1, 2)


class TemporalConvBlock(nn.Module):
    """Four GroupNorm-SiLU-(Dropout)-temporal-conv layers with a residual; the last conv is zero, so
    the block starts as the identity. (Official attribute name in ResBlock: ``temopral_conv``.)"""

    def __init__(self, channels: int, dropout: float, groups: int = 32):
        super().__init__()

        def layer(drop: bool) -> nn.Sequential:
            mods = [nn.GroupNorm(groups, channels), nn.SiLU()]
            mods += [nn.Dropout(dropout)] if drop else []
            return nn.Sequential(*mods, TemporalConv(channels, channels, (3, 1, 1), padding=(1, 0, 0)))

        self.conv1, self.conv2, self.conv3, self.conv4 = layer(False), layer(True), layer(True), layer(True)
        nn.init.zeros_(self.conv4[-1].weight), nn.init.zeros_(self.conv4[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv4(self.conv3(self.conv2(self.conv1(x))))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + timestep embedding, GroupNorm-SiLU-Dropout-conv(zero), + skip; then
    the temporal conv block over the clip."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dropout: float,
                 groups: int = 32):
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(groups, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(groups, out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight), nn.init.zeros_(self.out_layers[-1].bias)
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))
        self.temopral_conv = TemporalConvBlock(out_channels, dropout=0.1 if dropout else 0.0,
                                               groups=groups)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb).to(x.dtype)[..., None, None]
        h = self.skip_connection(x) + self.out_layers(h)
        bt, c, hh, ww = h.shape
        h = h.view(bt // frames, frames, c, hh, ww).transpose(1, 2)  # [b, c, t, h, w]
        h = self.temopral_conv(h)
        return h.transpose(1, 2).reshape(bt, c, hh, ww)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNetStage(nn.ModuleList):
    """One entry of input_blocks / middle_block / output_blocks: layers applied in order, each given
    what it needs (timestep embedding, context, or the clip's frame structure)."""

    def forward(self, x, emb, context, frames):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb, frames)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, frames)
            elif isinstance(layer, TemporalTransformer):
                bt, c, h, w = x.shape
                x = layer(x.view(bt // frames, frames, c, h, w).transpose(1, 2))
                x = x.transpose(1, 2).reshape(bt, c, h, w)
            else:
                x = layer(x)
        return x


class VideoUNet(nn.Module):
    """v-prediction UNet: x [B, C, T, H, W], timesteps [B], context [B, L, context_dim], fs [B]."""

    def __init__(self, cfg: UNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or UNetConfig.mini()
        mc, g = cfg.model_channels, cfg.norm_groups
        emb_dim = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.fps_embedding = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        nn.init.zeros_(self.fps_embedding[-1].weight), nn.init.zeros_(self.fps_embedding[-1].bias)

        def attention(ch: int) -> list[nn.Module]:
            heads = ch // cfg.num_head_channels
            return [SpatialTransformer(ch, heads, cfg.num_head_channels, cfg.context_dim, g,
                                       text_context_len=cfg.text_context_len, query_pos=cfg.query_pos,
                                       context_grid=cfg.context_grid),
                    TemporalTransformer(ch, heads, cfg.num_head_channels, g)]

        # Coordinate channels (mini only): at t = 999 the input is pure noise and a small UNet on an
        # 8x8 grid has little else to tell *where* to draw the shape the tokens describe; the
        # official 32x32 UNet (and its pre-training) gets by with the borders' zero padding.
        # A frame-index channel (mini only): temporal attention is blind to frame order, so without
        # it the UNet learns *when* a frame is only from the temporal convs' zero padding at the
        # clip's ends -- and motion is exactly "where, as a function of when".
        conv_in = cfg.in_channels + (2 if cfg.coord_channels else 0) + (1 if cfg.frame_channel else 0)
        self.input_blocks = nn.ModuleList([UNetStage([nn.Conv2d(conv_in, mc, 3, padding=1)])])
        self.init_attn = UNetStage([TemporalTransformer(mc, cfg.init_attn_heads, cfg.num_head_channels,
                                                        g, linear=False)])
        skips, ch, ds = [mc], mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers = [ResBlock(ch, emb_dim, mult * mc, cfg.dropout, g)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                self.input_blocks.append(UNetStage(layers))
                skips.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(UNetStage([Downsample(ch)]))
                skips.append(ch)
                ds *= 2
        self.middle_block = UNetStage([ResBlock(ch, emb_dim, ch, cfg.dropout, g), *attention(ch),
                                       ResBlock(ch, emb_dim, ch, cfg.dropout, g)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), emb_dim, mult * mc, cfg.dropout, g)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(UNetStage(layers))
        self.out = nn.Sequential(GroupNorm32(g, ch), nn.SiLU(), nn.Conv2d(mc, cfg.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight), nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                fs: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"expected x [B, {cfg.in_channels}, T, H, W], got {tuple(x.shape)}")
        b, _, t, h, w = x.shape
        levels = len(cfg.channel_mult) - 1
        if h % 2**levels or w % 2**levels:
            raise ValueError(f"H and W must be multiples of {2**levels}, got {h}x{w}")
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
            raise ValueError(f"expected context [{b}, L, {cfg.context_dim}], got {tuple(context.shape)}")
        timesteps = torch.as_tensor(timesteps, device=x.device).reshape(-1).expand(b)
        if fs is None:
            fs = torch.full((b,), cfg.default_fs, device=x.device)
        fs = torch.as_tensor(fs, device=x.device).reshape(-1).expand(b)
        emb = self.time_embed(timestep_embedding(timesteps, cfg.model_channels).to(x.dtype))
        emb = emb + self.fps_embedding(timestep_embedding(fs, cfg.model_channels).to(x.dtype))
        # Frames are a batch of images; each frame gets the clip's embedding and the same context.
        emb = emb.repeat_interleave(t, dim=0)
        context = context.repeat_interleave(t, dim=0)
        hcur = x.transpose(1, 2).reshape(b * t, -1, h, w)
        if cfg.coord_channels:
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype),
                                    torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype), indexing="ij")
            hcur = torch.cat([hcur, torch.stack([ys, xs]).expand(b * t, 2, h, w)], dim=1)
        if cfg.frame_channel:  # frames are laid out (b, t): frame index repeats per clip
            when = torch.linspace(-1, 1, t, device=x.device, dtype=x.dtype).repeat(b)
            hcur = torch.cat([hcur, when[:, None, None, None].expand(b * t, 1, h, w)], dim=1)
        hs = []
        for i, stage in enumerate(self.input_blocks):
            hcur = stage(hcur, emb, context, t)
            if i == 0:
                hcur = self.init_attn(hcur, emb, context, t)
            hs.append(hcur)
        hcur = self.middle_block(hcur, emb, context, t)
        for stage in self.output_blocks:
            hcur = stage(torch.cat([hcur, hs.pop()], dim=1), emb, context, t)
        y = self.out(hcur)
        return y.view(b, t, -1, h, w).transpose(1, 2)
