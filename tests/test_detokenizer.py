"""The de-tokenizer assembly: official image_proj_model keys, latent round trip, sampling shapes."""
import json
import math
from pathlib import Path

import pytest
import torch

from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer

MANIFESTS = Path(__file__).parent / "fixtures" / "divot_official"


def test_full_image_proj_model_and_unet_match_the_manifest():
    manifest = json.loads((MANIFESTS / "detokenizer.json").read_text())["entries"]
    theirs = {k: v["shape"] for k, v in manifest.items()
              if k.startswith(("image_proj_model.", "diffusion_model."))}
    with torch.device("meta"):
        det = DivotDetokenizer(DetokenizerConfig.full())
    ours = {k: list(v.shape) for k, v in det.state_dict().items()
            if k.startswith(("image_proj_model.", "diffusion_model."))}
    assert sorted(theirs.keys() - ours.keys()) == [] and sorted(ours.keys() - theirs.keys()) == []
    assert {k: ours[k] for k in ours if ours[k] != theirs[k]} == {}
    with torch.device("meta"):
        ctx = det.image_proj_model(torch.empty(1, 64, 256))
    assert ctx.shape == (1, 125, 1024)
    # the SD KL-f8 VAE as diffusers builds it has exactly the official first_stage_model's size
    # (its LDM key names are converted on load: the full-size switch)
    vae_official = sum(math.prod(v["shape"]) for k, v in manifest.items() if k.startswith("first_stage_model."))
    assert sum(p.numel() for p in det.first_stage_model.parameters()) == vae_official == 83_653_863


def test_mini_latents_shapes():
    torch.manual_seed(0)
    det = DivotDetokenizer(DetokenizerConfig.mini())
    clip = torch.rand(2, 16, 3, 32, 32) * 2 - 1
    z = det.encode(clip)
    assert z.shape == (2, 4, 16, 8, 8) and not z.requires_grad  # tiny KL-f4 VAE: 4 x 8 x 8 per frame
    assert det.decode(z).shape == clip.shape
    assert not any(p.requires_grad for p in det.first_stage_model.parameters())  # frozen


def test_sample_shapes_and_trajectory():
    torch.manual_seed(0)
    det = DivotDetokenizer(DetokenizerConfig.mini()).eval()
    tokens = torch.randn(2, 16, 32)
    traj = []
    out = det.sample(tokens, torch.zeros(1, 16, 32).expand(2, -1, -1), steps=2,
                     generator=torch.Generator().manual_seed(0), trajectory=traj)
    assert out.shape == (2, 16, 3, 32, 32) and out.abs().max() <= 1
    assert len(traj) == 2 and traj[0].shape == out.shape
    again = det.sample(tokens, torch.zeros(1, 16, 32).expand(2, -1, -1), steps=2,
                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded


def test_bad_tokens():
    det = DivotDetokenizer(DetokenizerConfig.mini())
    with pytest.raises(ValueError, match=r"expected Divot tokens \[B, N, 32\]"):
        det.context(torch.randn(1, 16, 31))
    with pytest.raises(ValueError, match="NaN"):
        det.context(torch.full((1, 16, 32), float("nan")))


def test_vae_latent_path_shapes():
    from diffusers import AutoencoderKL

    from divot_mini.unet import UNetConfig

    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16),
                        latent_channels=4, layers_per_block=1, norm_num_groups=8, sample_size=32)
    cfg = DetokenizerConfig(token_dim=32, num_context=24, resampler_dim=64, resampler_depth=1,
                            resampler_heads=4, resampler_dim_head=16,
                            unet=UNetConfig.mini(in_channels=4, context_dim=64, text_context_len=16),
                            vae_scale=1.0, vae_downsample=4)
    det = DivotDetokenizer(cfg, vae=vae).eval()
    clip = torch.rand(1, 4, 3, 32, 32) * 2 - 1
    z = det.encode(clip)
    assert z.shape == (1, 4, 4, 8, 8) and not z.requires_grad
    assert det.decode(z).shape == clip.shape
    out = det.sample(torch.randn(1, 16, 32), frames=4, size=32, steps=1, spacing="trailing")
    assert out.shape == (1, 4, 3, 32, 32)
    assert any(k.startswith("first_stage_model.") for k in det.state_dict())  # the official name


def test_grid_biases_tie_each_context_to_its_token_and_each_pixel_to_its_region():
    from divot_mini.position import pixel_grid_bias, token_grid_bias
    b = token_grid_bias(24, 16, 0.5)
    assert b.shape == (24, 16)
    assert torch.equal(b[:16].argmax(1), torch.arange(16)) and torch.equal(b[16:], torch.zeros(8, 16))
    p = pixel_grid_bias(8, 8, 16, 0.5)                   # 8x8 pixels, 4x4 token grid
    region = (torch.arange(8) // 2)[:, None] * 4 + (torch.arange(8) // 2)[None, :]
    assert torch.equal(p.argmax(1), region.reshape(-1))
    for bad in (lambda: token_grid_bias(24, 15, 0.5), lambda: token_grid_bias(8, 16, 0.5),
                lambda: pixel_grid_bias(8, 4, 16, 0.5), lambda: pixel_grid_bias(8, 8, 16, 0.0)):
        with pytest.raises(ValueError):
            bad()


def test_grid_context_is_off_as_official_and_local_when_on():
    import dataclasses
    from divot_mini.unet import UNetConfig
    assert "context_local" not in DetokenizerConfig.mini().to_dict()
    assert "context_grid" not in DetokenizerConfig.full().to_dict()["unet"]
    with pytest.raises(ValueError, match="context_local"):
        DetokenizerConfig(context_local=-1.0)
    with pytest.raises(ValueError, match="square"):
        dataclasses.replace(UNetConfig.mini(), text_context_len=15, context_grid=0.5)

    def spread(local):  # how much a change of token 0 moves each context entry
        cfg = dataclasses.replace(DetokenizerConfig.mini(), context_local=local)
        torch.manual_seed(0)
        det = DivotDetokenizer(cfg)
        tok = torch.randn(16, 16, 32)
        moved = tok.clone()
        moved[:, 0] += 3 * torch.randn(16, 32)
        with torch.no_grad():
            return (det.context(tok) - det.context(moved)).norm(dim=-1).mean(0)

    off, on = spread(0.0), spread(0.5)
    assert on[0] > 3 * on[1:16].max()                     # context 0 reads token 0
    assert off[0] < 2 * off[1:16].min()                   # without the bias, nothing is local

    cfg = DetokenizerConfig.mini()
    cfg = dataclasses.replace(cfg, context_local=0.5, unet=dataclasses.replace(cfg.unet, context_grid=0.5))
    det = DivotDetokenizer(cfg)
    assert det(torch.randn(2, 4, 16, 8, 8), torch.tensor([10, 999]), torch.randn(2, 16, 32)).shape == (2, 4, 16, 8, 8)
