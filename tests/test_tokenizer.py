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


def test_resampler_position_option_is_off_as_official_and_tells_slots_apart():
    """``resampler_pos_scale`` (an experiment, not the official model) re-adds the position embeddings
    at the Perceiver resampler's input: off by default; when on, identical features
    in different slots give different tokens, and the walk ``mix`` -> ``resample`` is still the forward."""
    torch.manual_seed(0)
    cfg = TokenizerConfig.mini()
    tok = DivotTokenizer(cfg).eval()
    st = tok.image_proj_model
    assert st.resampler_pos_scale == 0.0  # as official
    st.resampler_pos_scale = 4.0
    mixed = torch.randn(2, 5 * 16, cfg.hidden_size)
    off = DivotTokenizer(TokenizerConfig.mini()).eval()
    off.load_state_dict(tok.state_dict())  # same weights, no extra parameters
    with torch.no_grad():
        on_tokens, off_tokens = st.resample(mixed), off.image_proj_model.resample(mixed)
        torch.testing.assert_close(off_tokens, off.image_proj_model.down_sampler(off.image_proj_model.norm(mixed)))
        assert (on_tokens - off_tokens).abs().max() > 1e-3
        # the resampler now sees where each slot is: a feature moved to another slot changes the tokens
        one = torch.zeros(1, 80, cfg.hidden_size)
        one[0, 0] = torch.randn(cfg.hidden_size)  # one feature in slot 0, nothing elsewhere
        moved = one.roll(17, 1)
        assert (st.resample(one) - st.resample(moved)).abs().max() > 1e-3
        # ... whereas the official resampler is blind to slots: it reads a *set* of features
        torch.testing.assert_close(off.image_proj_model.resample(one), off.image_proj_model.resample(moved))
        feats = torch.randn(2, 5, 64, cfg.vit_dim)
        torch.testing.assert_close(tok(feats), st.resample(st.mix(tok.norm(tok.pool(tok.temporal(feats))))))


def test_mini_design_options_are_off_in_the_official_config_and_omitted_from_old_configs():
    full = TokenizerConfig.full()
    assert full.pos_init == "official" and full.resampler_key_pos is False
    d = TokenizerConfig.mini().to_dict()
    assert "pos_init" not in d and "resampler_key_pos" not in d  # configs stored with earlier weights match
    import dataclasses
    on = dataclasses.replace(TokenizerConfig.mini(), pos_init="sincos", resampler_key_pos=True).to_dict()
    assert on["pos_init"] == "sincos" and on["resampler_key_pos"] is True
    with pytest.raises(ValueError, match="pos_init"):
        TokenizerConfig(pos_init="rope")


def test_sincos_position_init_codes_every_slot_apart_at_the_scale_of_the_features():
    import dataclasses
    cfg = dataclasses.replace(TokenizerConfig.mini(), pos_init="sincos")
    st = DivotTokenizer(cfg).image_proj_model
    pos = st.position_embedding().detach()  # [80, 64]
    dist = torch.cdist(pos, pos) + 1e9 * torch.eye(len(pos))
    assert dist.min() > 0.5  # no two (frame, y, x) slots share a code
    assert 0.3 < pos.pow(2).mean().sqrt() < 1.5  # LayerNorm'd features have RMS 1 (official init: ~0.18)
    assert set(DivotTokenizer(cfg).state_dict()) == set(DivotTokenizer(TokenizerConfig.mini()).state_dict())


def test_resampler_key_position_reads_pairs_of_content_and_place():
    """Positions in the keys only: moving a feature to another slot changes the tokens, but moving
    every feature *with* its position leaves them unchanged (the values carry no position)."""
    from divot_mini.perceiver_resampler import PerceiverResampler

    torch.manual_seed(0)
    res = PerceiverResampler(dim=32, depth=2, num_queries=4, input_dim=32, output_dim=8, dim_head=8, heads=4)
    x, pos = torch.randn(1, 10, 32), torch.randn(10, 32)
    perm = torch.randperm(10)
    with torch.no_grad():
        base = res(x, key_pos=pos)
        torch.testing.assert_close(res(x[:, perm], key_pos=pos[perm]), base)
        assert (res(x[:, perm], key_pos=pos) - base).abs().max() > 1e-3
        torch.testing.assert_close(res(x[:, perm]), res(x))  # without positions: a set
    with pytest.raises(ValueError, match="key_pos"):
        res(x, key_pos=torch.randn(9, 32))
