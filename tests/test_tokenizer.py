"""The Divot tokenizer: official key names/shapes at full size, shapes and quirks at mini size."""
import json
from pathlib import Path

import pytest
import torch

from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig

MANIFESTS = Path(__file__).parent / "fixtures" / "divot_official"


def test_full_configuration_matches_the_official_manifest():
    manifest = json.loads((MANIFESTS / "tokenizer.json").read_text())
    with torch.device("meta"):
        model = DivotTokenizer(TokenizerConfig.full())
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v["shape"] for k, v in manifest["entries"].items()}
    assert sorted(theirs.keys() - ours.keys()) == []  # missing
    assert sorted(ours.keys() - theirs.keys()) == []  # unexpected
    assert {k: ours[k] for k in ours if ours[k] != theirs[k]} == {}
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"] == 171_635_968


def test_full_size_forward_shape_on_meta():
    with torch.device("meta"):
        model = DivotTokenizer(TokenizerConfig.full())
        out = model.image_proj_model(torch.empty(2, 125, 1024))
    assert out.shape == (2, 64, 256)


def test_mini_shapes_through_every_step():
    torch.manual_seed(0)
    cfg = TokenizerConfig.mini()
    tok = DivotTokenizer(cfg)
    feats = torch.randn(3, 5, cfg.patch_grid**2, cfg.vit_dim)
    t = tok.temporal(feats)
    assert t.shape == (3, 5, cfg.patch_grid**2, cfg.hidden_size)
    p = tok.pool(t)
    assert p.shape == (3, 5 * cfg.pool_size**2, cfg.hidden_size)
    assert tok(feats).shape == (3, cfg.num_tokens, cfg.token_dim)


def test_temporal_encoder_is_zero_at_init_and_learns():
    torch.manual_seed(0)
    tok = DivotTokenizer(TokenizerConfig.mini())
    feats = torch.randn(2, 5, 64, 64)
    assert torch.equal(tok.temporal(feats), torch.zeros(2, 5, 64, 64))
    # No residual around it, so at init the tokens do not depend on the frames at all.
    assert torch.allclose(tok(feats), tok(torch.randn(2, 5, 64, 64)), atol=1e-6)
    # ...but gradients reach it, so training grows it from zero.
    tok(feats).square().sum().backward()
    assert tok.temporal_encoder.output_proj.weight.grad.abs().sum() > 0


def test_pooling_windows_overlap_as_official():
    """16x16 -> 5x5 with windows [0,4), [3,7), [6,10), [9,13), [12,16)."""
    pool = torch.nn.AdaptiveAvgPool2d(5)
    windows = []
    for i in range(5):
        rows = [r for r in range(16) if pool(torch.eye(16)[r].view(1, 1, 16, 1).expand(1, 1, 16, 16))[0, 0, i, 0] > 0]
        windows.append((rows[0], rows[-1] + 1))
    assert windows == [(0, 4), (3, 7), (6, 10), (9, 13), (12, 16)]


def test_bad_inputs():
    tok = DivotTokenizer(TokenizerConfig.mini())
    with pytest.raises(ValueError, match=r"expected ViT patch features \[B, 5, 64, 64\]"):
        tok(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match="expected ViT patch features"):
        tok(torch.randn(1, 5, 49, 64))
    bad = torch.randn(1, 5, 64, 64)
    bad[0, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        tok(bad)
