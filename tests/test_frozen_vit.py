"""The frozen ViT: tiny CLIP shapes and freezing, ViT-H/14 size, caption encoding errors."""
import pytest
import torch
from transformers import CLIPModel, CLIPVisionModel

from divot_mini import frozen_vit as V


def test_vit_h14_has_the_official_size():
    with torch.device("meta"):
        vit = CLIPVisionModel(V.vit_h14_config())
    # official visual tower 632,076,800 minus its 1280x1024 output projection (not used by Divot)
    assert sum(p.numel() for p in vit.parameters()) == 632_076_800 - 1280 * 1024
    assert vit.config.image_size // vit.config.patch_size == 16


def test_features_are_pre_post_layernorm_patches_and_frozen():
    torch.manual_seed(0)
    clip = CLIPModel(V.tiny_clip_config())
    vision = CLIPVisionModel(clip.config.vision_config)
    vit = V.FrozenViT(vision)
    frames = torch.rand(2, 5, 3, 32, 32) * 2 - 1
    feats = vit(frames)
    assert feats.shape == (2, 5, 64, 64)
    # by hand: embeddings -> pre_layrnorm -> encoder, class token dropped, no post_layernorm
    vm = vision  # transformers 5: CLIPVisionModel holds the transformer parts directly
    h = vm.pre_layrnorm(vm.embeddings(V.clip_normalize(frames.flatten(0, 1))))
    h = vm.encoder(inputs_embeds=h).last_hidden_state
    assert torch.allclose(feats, h[:, 1:].reshape(2, 5, 64, 64), atol=1e-5)
    vit.train()
    assert not vit.vision.training and not any(p.requires_grad for p in vit.parameters())
    with pytest.raises(ValueError, match="32x32"):
        vit(torch.zeros(1, 5, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\[B, F, 3, H, W\]"):
        vit(torch.zeros(5, 3, 32, 32))


def test_caption_encoding():
    ids = V.encode_captions(["a red circle", "a blue triangle"])
    assert ids.shape == (2, V.TEXT_LEN) and ids[0, 0] == 1 and (ids[:, 4] == 2).all()
    with pytest.raises(ValueError, match="unknown word"):
        V.encode_captions(["a purple circle"])
    with pytest.raises(ValueError, match="too long"):
        V.encode_captions(["a red red red red circle"])


def test_soft_target_loss_is_lower_for_matching_pairs():
    torch.manual_seed(0)
    clip = CLIPModel(V.tiny_clip_config())
    pixels = torch.randn(4, 3, 32, 32)
    ids = V.encode_captions(["a red circle"] * 2 + ["a blue square"] * 2)
    loss = V.clip_loss(clip, pixels, ids)
    assert torch.isfinite(loss) and loss > 0
