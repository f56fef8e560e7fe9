"""The Divot tokenizer: 5 frames of a clip -> N continuous tokens (64 x 256 at full size).

    ViT patch features   [B, 5, P*P, C_vit]       (frozen image ViT, one frame at a time)
    -> temporal encoder  [B, 5, P*P, D]           (per patch position, across the 5 frames)
    -> 2-D pooling       [B, 5, S*S, D]           (AdaptiveAvgPool2d: overlapping windows when S does not divide P)
    -> LayerNorm, + spatial [S*S] and temporal [5] position embeddings
    -> spatial-temporal transformer over all 5*S*S tokens
    -> LayerNorm -> Perceiver resampler -> [B, N, d]

The same class builds the course's mini tokenizer and the official one (``TokenizerConfig.full()``);
parameter names follow the official checkpoint (``temporal_encoder.*``, ``norm.*``,
``image_proj_model.*``), so official weights load without renaming. The frozen ViT is not part of
this module (the official tokenizer checkpoint omits it too): pass its patch features, or use
:meth:`DivotTokenizer.encode_frames` with a vision tower.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoints import later_fields_omitted
from .perceiver_resampler import PerceiverResampler
from .position import locality_bias, sincos_3d
from .temporal_encoder import TemporalEncoder


@dataclass(frozen=True)
class TokenizerConfig:
    num_frames: int = 5
    vit_dim: int = 1280          # ViT patch feature width (ViT-H/14: 1280)
    patch_grid: int = 16         # ViT patches per side (224 / 14)
    hidden_size: int = 1024      # temporal encoder output = spatial-temporal transformer width
    temporal_width: int = 768
    temporal_depth: int = 6
    temporal_heads: int = 12
    pool_size: int = 5
    st_depth: int = 4
    st_heads: int = 8
    resampler_depth: int = 6
    resampler_heads: int = 16
    resampler_dim_head: int = 64
    num_tokens: int = 64
    token_dim: int = 256
    # Mini-only design options (the official model: "official", False; see position.py).
    pos_init: str = "official"      # "official": learned embeddings, init std dim^-1/2 (~3% of the
                                    # LayerNorm'd features); "sincos": learned, initialised to a
                                    # 3-D sin-cos pattern over (frame, y, x) as large as the features
    resampler_key_pos: bool = False  # add those position embeddings to the resampler's keys
    temporal_init: str = "official"  # "official": the temporal encoder's output starts at exactly 0;
                                     # "random": its output projection starts random (features flow at step 0)
    resampler_local: float = 0.0     # > 0: tie each resampler query to a region (position.locality_bias,
                                     # this sigma in pooled-slot widths); 0 = official, global queries

    def __post_init__(self):
        if self.pos_init not in ("official", "sincos"):
            raise ValueError(f"pos_init must be 'official' or 'sincos', got {self.pos_init!r}")
        if self.temporal_init not in ("official", "random"):
            raise ValueError(f"temporal_init must be 'official' or 'random', got {self.temporal_init!r}")
        if self.resampler_local < 0:
            raise ValueError(f"resampler_local must be >= 0 (0 = off), got {self.resampler_local}")

    @classmethod
    def full(cls) -> "TokenizerConfig":
        """The official configuration (``configs/visual_encoder/Divot_video.yaml``)."""
        return cls()

    @classmethod
    def mini(cls, vit_dim: int = 64, patch_grid: int = 8) -> "TokenizerConfig":
        """The course's CPU configuration: the same pipeline, narrow and shallow."""
        return cls(vit_dim=vit_dim, patch_grid=patch_grid, hidden_size=64, temporal_width=64,
                   temporal_depth=2, temporal_heads=4, pool_size=4, st_depth=2, st_heads=4,
                   resampler_depth=2, resampler_heads=4, resampler_dim_head=16, num_tokens=16,
                   token_dim=32)

    def to_dict(self) -> dict:
        return later_fields_omitted(asdict(self), _LATER_FIELDS)


# Fields added after weights were first shipped, with the value that means "as before".
_LATER_FIELDS = {"pos_init": "official", "resampler_key_pos": False, "resampler_local": 0.0,
                 "temporal_init": "official"}


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm ``Attention`` names)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN ViT block (LayerNorm eps 1e-6, as the official ``partial(nn.LayerNorm, eps=1e-6)``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SpatialTemporalTransformer(nn.Module):
    """Position embeddings + transformer over the pooled (frame, h, w) tokens + Perceiver resampler.

    (Official name: ``image_proj_model``, class ``SelfAttention_3D_Pos_Down``.)
    """

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        d, s = cfg.hidden_size, cfg.pool_size
        self.num_frames, self.tokens_per_frame = cfg.num_frames, s * s
        # Not in the official model (0 = off, as there, and in the course's weights): add the spatial +
        # temporal position embeddings, times this, once more to the Perceiver resampler's input, so its
        # queries can address places and frames. No new parameters (and deliberately not a config field:
        # the shipped weights' configuration stays as it is). benchmarks/tokenizer_scale.py --resampler-pos.
        self.resampler_pos_scale = 0.0
        self.blocks = nn.ModuleList(Block(d, cfg.st_heads) for _ in range(cfg.st_depth))
        self.pos_embed_spatial = nn.Parameter(d**-0.5 * torch.randn(s * s, d))
        self.pos_embed_temporal = nn.Parameter(d**-0.5 * torch.randn(cfg.num_frames, d))
        if cfg.pos_init == "sincos":
            spatial, temporal = sincos_3d(cfg.num_frames, s, d)
            with torch.no_grad():
                self.pos_embed_spatial.copy_(spatial), self.pos_embed_temporal.copy_(temporal)
        self.key_pos = cfg.resampler_key_pos
        bias = (locality_bias(cfg.num_tokens, cfg.num_frames, s, cfg.resampler_local)
                if cfg.resampler_local else None)
        self.register_buffer("resampler_bias", bias, persistent=False)
        self.norm = nn.LayerNorm(d)  # eps 1e-5 here (nn.LayerNorm default in the official code)
        self.down_sampler = PerceiverResampler(
            dim=d, depth=cfg.resampler_depth, num_queries=cfg.num_tokens, input_dim=d,
            output_dim=cfg.token_dim, dim_head=cfg.resampler_dim_head, heads=cfg.resampler_heads)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Position embeddings + the transformer blocks: [B, F*S*S, D] -> [B, F*S*S, D] (what the
        Perceiver resampler then compresses)."""
        B = x.shape[0]
        x = x.view(B, self.num_frames, self.tokens_per_frame, -1)
        x = x + self.pos_embed_spatial[None, None] + self.pos_embed_temporal[None, :, None]
        x = x.reshape(B, self.num_frames * self.tokens_per_frame, -1)
        for blk in self.blocks:
            x = blk(x)
        return x

    def position_embedding(self) -> torch.Tensor:
        """[F*S*S, D]: the spatial + temporal position embedding of every (frame, h, w) slot."""
        pos = self.pos_embed_spatial[None] + self.pos_embed_temporal[:, None]
        return pos.reshape(self.num_frames * self.tokens_per_frame, -1)

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm + Perceiver resampler: the mixed features [B, F*S*S, D] -> tokens [B, N, d]."""
        x = self.norm(x)
        pos = self.position_embedding() if self.resampler_pos_scale or self.key_pos else None
        if self.resampler_pos_scale:
            x = x + self.resampler_pos_scale * pos
        return self.down_sampler(x, key_pos=pos if self.key_pos else None, bias=self.resampler_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.mix(x))


class DivotTokenizer(nn.Module):
    """Patch features of 5 frames [B, 5, P*P, vit_dim] -> Divot tokens [B, num_tokens, token_dim]."""

    def __init__(self, cfg: TokenizerConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or TokenizerConfig.mini()
        self.temporal_encoder = TemporalEncoder(cfg.vit_dim, cfg.hidden_size, cfg.temporal_width,
                                                cfg.temporal_depth, cfg.temporal_heads, cfg.num_frames)
        if cfg.temporal_init == "random":  # the ViT's features reach the tokens from the first step
            out = self.temporal_encoder.output_proj
            nn.init.normal_(out.weight, std=out.in_features**-0.5)
        self.spatial_pool = nn.AdaptiveAvgPool2d(cfg.pool_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.image_proj_model = SpatialTemporalTransformer(cfg)

    def check_features(self, feats: torch.Tensor) -> None:
        c = self.cfg
        want = (c.num_frames, c.patch_grid**2, c.vit_dim)
        if feats.ndim != 4 or tuple(feats.shape[1:]) != want:
            raise ValueError(f"expected ViT patch features [B, {want[0]}, {want[1]}, {want[2]}] "
                             f"(5 frames x {c.patch_grid}x{c.patch_grid} patches x width), "
                             f"got {tuple(feats.shape)}")
        if not torch.isfinite(feats).all():
            raise ValueError("ViT features contain NaN or infinite values")

    def temporal(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, F, P*P, C] -> [B, F, P*P, D]: the temporal encoder at every patch position."""
        B, Fr, N, C = feats.shape
        x = feats.permute(0, 2, 1, 3).reshape(B * N, Fr, C)  # one 5-frame sequence per patch
        x = self.temporal_encoder(x)
        return x.view(B, N, Fr, -1).permute(0, 2, 1, 3)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F, P*P, D] -> [B, F*S*S, D], tokens ordered (frame, h, w)."""
        B, Fr, N, D = x.shape
        P = self.cfg.patch_grid
        x = x.reshape(B * Fr, P, P, D).permute(0, 3, 1, 2)
        x = self.spatial_pool(x)  # [B*F, D, S, S]
        return x.flatten(2).transpose(1, 2).reshape(B, -1, D)

    def mixed(self, feats: torch.Tensor) -> torch.Tensor:
        """[B, F, P*P, C] -> [B, F*S*S, D]: everything before the Perceiver resampler (temporal encoder,
        pooling, LayerNorm, position embeddings, spatial-temporal blocks) -- what it compresses."""
        return self.image_proj_model.mix(self.norm(self.pool(self.temporal(feats))))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        self.check_features(feats)
        return self.image_proj_model.resample(self.mixed(feats))
