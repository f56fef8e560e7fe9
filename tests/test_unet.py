"""The de-tokenizer UNet: official key names/shapes at full size, mini shapes, the quirks."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from divot_mini.unet import TemporalConv, UNetConfig, VideoUNet, timestep_embedding
from divot_mini.unet_attention import CrossAttention

MANIFESTS = Path(__file__).parent / "fixtures" / "divot_official"


def test_full_configuration_matches_the_official_manifest():
    manifest = json.loads((MANIFESTS / "detokenizer.json").read_text())["entries"]
    theirs = {k[len("diffusion_model."):]: v["shape"] for k, v in manifest.items()
              if k.startswith("diffusion_model.")}
    with torch.device("meta"):
        unet = VideoUNet(UNetConfig.full())
    ours = {k: list(v.shape) for k, v in unet.state_dict().items()}
    assert sorted(theirs.keys() - ours.keys()) == []
    assert sorted(ours.keys() - theirs.keys()) == []
    assert {k: ours[k] for k in ours if ours[k] != theirs[k]} == {}
    assert sum(p.numel() for p in unet.parameters()) == 1_438_843_476


@pytest.fixture
def mini():
    torch.manual_seed(0)
    return VideoUNet(UNetConfig.mini(in_channels=4)).eval()


def test_mini_shapes_and_zero_init(mini):
    x = torch.randn(1, 4, 4, 8, 8)
    ctx = torch.randn(1, 24, 64)
    v = mini(x, torch.tensor([500]), ctx)
    assert v.shape == x.shape
    assert torch.equal(v, torch.zeros_like(v))  # zero-initialised output conv
    torch.nn.init.normal_(mini.out[-1].weight, std=0.1)
    v = mini(x, torch.tensor([500]), ctx)
    assert v.abs().sum() > 0 and torch.isfinite(v).all()


def test_frame_channel_tells_frames_apart(mini):
    """The mini UNet's input conv reads 4 latent + 2 coordinate + 1 frame-index channels; the frame
    channel is what lets it treat identical frames differently (temporal attention is order-blind)."""
    assert mini.input_blocks[0][0].in_channels == 4 + 2 + 1
    assert not UNetConfig.full().frame_channel and not UNetConfig.full().coord_channels
    torch.nn.init.normal_(mini.out[-1].weight, std=0.1)
    x = torch.randn(1, 4, 1, 8, 8).expand(1, 4, 6, 8, 8).contiguous()  # six identical frames
    ctx = torch.randn(1, 24, 64)
    conv = mini.input_blocks[0][0]
    with torch.no_grad():
        conv.weight[:, 6:] = 0.0  # frame channel cut off
        blind = mini(x, torch.tensor([500]), ctx)
        conv.weight[:, 6:].normal_(0.0, 1.0)
        seeing = mini(x, torch.tensor([500]), ctx)
    # middle frames (away from the temporal convs' zero padding) are alike without it, not with it
    assert torch.allclose(blind[:, :, 2], blind[:, :, 3], atol=1e-5)
    assert not torch.allclose(seeing[:, :, 2], seeing[:, :, 3], atol=1e-3)


def test_temporal_conv_equals_a_conv3d():
    torch.manual_seed(0)
    conv = TemporalConv(6, 6, (3, 1, 1), padding=(1, 0, 0))
    x = torch.randn(2, 6, 5, 3, 4)
    ref = F.conv3d(x, conv.weight, conv.bias, padding=(1, 0, 0))
    assert torch.allclose(conv(x), ref, atol=1e-6)


def test_timestep_embedding_is_cos_then_sin():
    e = timestep_embedding(torch.tensor([0.0, 3.0]), 8)
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert torch.allclose(e[1, 0], torch.cos(torch.tensor(3.0)))
    assert torch.allclose(e[1, 4], torch.sin(torch.tensor(3.0)))


def test_cross_attention_context_split_and_alpha():
    torch.manual_seed(0)
    attn = CrossAttention(8, 6, heads=2, dim_head=4, image_cross_attention=True, text_context_len=3)
    x, ctx = torch.randn(1, 5, 8), torch.randn(1, 7, 6)
    out = attn(x, ctx)
    # changing an image token (index >= 3) changes the output only through the *_ip branch
    with torch.no_grad():
        attn.to_k_ip.weight.zero_(), attn.to_v_ip.weight.zero_()
    ctx2 = ctx.clone()
    ctx2[:, 5] += 10
    assert torch.allclose(attn(x, ctx), attn(x, ctx2))
    assert not torch.allclose(out, attn(x, ctx))
    with pytest.raises(ValueError, match="none left for the image branch"):
        attn(x, ctx[:, :3])


def test_bad_inputs(mini):
    ctx = torch.randn(1, 24, 64)
    with pytest.raises(ValueError, match=r"expected x \[B, 4, T, H, W\]"):
        mini(torch.randn(1, 3, 4, 8, 8), torch.tensor([1]), ctx)
    with pytest.raises(ValueError, match="multiples of 2"):
        mini(torch.randn(1, 4, 4, 7, 7), torch.tensor([1]), ctx)
    with pytest.raises(ValueError, match="context"):
        mini(torch.randn(1, 4, 4, 8, 8), torch.tensor([1]), torch.randn(1, 24, 32))


def test_query_positions_are_off_as_official_and_reach_only_the_cross_attention_queries():
    """``query_pos`` (mini design, off in full()): the same parameters; a pixel's cross-attention
    query now depends on its place and frame, so the same feature at two places asks differently."""
    import dataclasses

    from divot_mini.unet_attention import SpatialTransformer

    assert not UNetConfig.full().query_pos and "query_pos" not in UNetConfig.mini().to_dict()
    cfg = dataclasses.replace(UNetConfig.mini(in_channels=4), query_pos=True)
    assert cfg.to_dict()["query_pos"] is True
    torch.manual_seed(0)
    on = SpatialTransformer(32, 2, 16, 64, 8, text_context_len=16, query_pos=True)
    off = SpatialTransformer(32, 2, 16, 64, 8, text_context_len=16)
    off.load_state_dict(on.state_dict())  # no new parameters
    torch.nn.init.normal_(on.proj_out.weight, std=0.1), off.proj_out.weight.data.copy_(on.proj_out.weight)
    x = torch.randn(1, 32, 1, 1).expand(2, 32, 4, 4).contiguous()  # 2 frames, every pixel alike
    ctx = torch.randn(2, 24, 64)
    with torch.no_grad():
        y_off, y_on = off(x, ctx, frames=2), on(x, ctx, frames=2)
    flat = lambda y: y.flatten(2)  # noqa: E731
    assert torch.allclose(flat(y_off)[..., :1].expand_as(flat(y_off)), flat(y_off), atol=1e-5)
    assert not torch.allclose(flat(y_on)[..., :1].expand_as(flat(y_on)), flat(y_on), atol=1e-3)
    code = on.position_code(2, 4, 4, x)
    assert code.shape == (2, 16, 32) and not torch.allclose(code[0], code[1])  # frames differ too
    with pytest.raises(ValueError, match="square"):
        on(torch.randn(2, 32, 4, 2), ctx, frames=2)
