"""Synthetic checkpoints in the official release layout, for testing the loaders without weights.

The official weights cannot be downloaded on the machines this course is built on, so the loaders
of :mod:`divot_mini.official` are tested on *synthetic* releases: random weights under the official
file names and key names (OpenCLIP names for the ViT, LDM names for the VAE, the DynamiCrafter
layout with its ``video_tokenizer.*`` and schedule buffers, a Hugging Face folder for the LLM, a
tokenizer folder), for a reduced configuration that keeps every key family of the full one (the
full key sets themselves are checked against the official manifests on the meta device).

    rel = write_synthetic_release(tmp_path)            # .bin files, as released
    release = official.load_release(tmp_path, configs=rel.configs)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from . import official as O
from . import text_tokenizer as tt

FORMATS = ("bin", "safetensors")


def reduced_vit_config():
    from transformers import CLIPVisionConfig
    # 16 px / 4 px patches = a 4 x 4 grid (official: 224 / 14 = 16 x 16)
    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, image_size=16, patch_size=4, hidden_act="gelu",
                            projection_dim=16, layer_norm_eps=1e-5)


def reduced_vae_config() -> dict:
    """An SD-style KL VAE (mid-block attention, GroupNorm 32) with two levels: /2."""
    return dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64),
                latent_channels=4, layers_per_block=1, norm_num_groups=32, sample_size=16)


def reduced_configs() -> O.ReleaseConfigs:
    """Small configurations with every key family of the official ones (a 4x4 patch grid pooled
    3x3 with overlapping windows, as 16x16 -> 5x5 is)."""
    from .detokenizer import DetokenizerConfig
    from .tokenizer import TokenizerConfig
    from .unet import UNetConfig
    vit = reduced_vit_config()
    tok = TokenizerConfig(vit_dim=vit.hidden_size, patch_grid=vit.image_size // vit.patch_size,
                          hidden_size=32, temporal_width=32, temporal_depth=1, temporal_heads=2,
                          pool_size=3, st_depth=1, st_heads=2, resampler_depth=1, resampler_heads=2,
                          resampler_dim_head=8, num_tokens=4, token_dim=8)
    unet = UNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2),
                      num_res_blocks=1, attention_resolutions=(1, 2), num_head_channels=16,
                      context_dim=32, text_context_len=4, init_attn_heads=2, norm_groups=8, dropout=0.0)
    det = DetokenizerConfig(token_dim=tok.token_dim, num_context=6, resampler_dim=32, resampler_depth=1,
                            resampler_heads=2, resampler_dim_head=8, unet=unet, vae="sd_kl_f8",
                            vae_scale=0.18215, vae_downsample=2, vae_sample=False)
    return O.ReleaseConfigs(tokenizer=tok, vit=vit, detokenizer=det, vae=reduced_vae_config(),
                            token_dim=tok.token_dim, num_tokens=tok.num_tokens, num_gmm_kernel=2)


def reduced_llm_config(vocab_size: int):
    from .divot_llm import mini_mistral_config
    return mini_mistral_config(vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               num_key_value_heads=1, intermediate_size=64, pad_token_id=3)


# ----------------------------------------------------------------------------- random weights
def _random(shapes: Mapping[str, tuple], g: torch.Generator) -> dict[str, torch.Tensor]:
    """Random but tame weights: 1-D ``weight``s near 1 (norms), 0-D near 0, the rest ~ N(0, 1/fan_in)."""
    out = {}
    for k, s in shapes.items():
        x = torch.randn(tuple(s), generator=g)
        if len(s) == 1 and k.endswith("weight"):
            x = 1 + 0.1 * x
        elif len(s) >= 2:
            x = x / math.sqrt(math.prod(s[1:]))
        else:
            x = 0.1 * x
        out[k] = x.contiguous()
    return out


def _openclip_text_shapes(width: int = 16, layers: int = 1, vocab: int = 50, context: int = 8,
                          embed: int = 16) -> dict[str, tuple]:
    """A small CLIP text tower in OpenCLIP names (the CLIP file carries one; Divot ignores it)."""
    s = {"token_embedding.weight": (vocab, width), "positional_embedding": (context, width),
         "ln_final.weight": (width,), "ln_final.bias": (width,), "text_projection": (width, embed),
         "logit_scale": ()}
    for i in range(layers):
        b = f"transformer.resblocks.{i}."
        s.update({b + "ln_1.weight": (width,), b + "ln_1.bias": (width,),
                  b + "attn.in_proj_weight": (3 * width, width), b + "attn.in_proj_bias": (3 * width,),
                  b + "attn.out_proj.weight": (width, width), b + "attn.out_proj.bias": (width,),
                  b + "ln_2.weight": (width,), b + "ln_2.bias": (width,),
                  b + "mlp.c_fc.weight": (4 * width, width), b + "mlp.c_fc.bias": (4 * width,),
                  b + "mlp.c_proj.weight": (width, 4 * width), b + "mlp.c_proj.bias": (width,)})
    return s


def synthetic_state_dicts(configs: O.ReleaseConfigs | None = None, seed: int = 0,
                          llm_vocab_size: int | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Random weights in the official key names: ``clip`` (the OpenCLIP file: visual + text tower),
    ``tokenizer``, ``detokenizer`` (DynamiCrafter: UNet, LDM VAE, resampler, schedule buffers;
    no ``video_tokenizer.*``), ``agent`` (the heads, float16 as the official merge script saves
    them) and ``llm`` (transformers names)."""
    from transformers import MistralForCausalLM

    c = configs or reduced_configs()
    g = torch.Generator().manual_seed(seed)
    clip = {"visual." + k: v for k, v in _random(O.openclip_visual_shapes(c.vit), g).items()}
    clip.update(_random(_openclip_text_shapes(), g))
    tok = _random(O.expected_tokenizer_shapes(c.tokenizer), g)
    det = _random(O.expected_detokenizer_shapes(c.detokenizer, c.vae), g)
    det.update(O.official_schedule_buffers())
    vocab = llm_vocab_size or len(tt.build_text_tokenizer(num_frame_tokens=c.num_tokens))
    llm_config = reduced_llm_config(vocab)
    heads = O.expected_agent_shapes(llm_config.hidden_size, c.token_dim, c.num_gmm_kernel)
    agent = {k: v.half() for k, v in _random(heads, g).items()}
    with torch.device("meta"):
        llm_shapes = O._shapes(MistralForCausalLM(llm_config))
    llm = _random(llm_shapes, g)
    return {"clip": clip, "tokenizer": tok, "detokenizer": det, "agent": agent, "llm": llm}


# ----------------------------------------------------------------------------- writing a release
def save_state_dict(sd: Mapping[str, torch.Tensor], path: Path, fmt: str = "bin") -> Path:
    """``torch.save`` of a plain dict of tensors (``X.bin``) or safetensors (``X.safetensors``)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    path = Path(path).with_suffix("." + fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "bin":
        torch.save(dict(sd), path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def write_llm_folder(folder: Path, sd: Mapping[str, torch.Tensor], config, fmt: str = "safetensors") -> None:
    """A Hugging Face model folder: ``config.json`` + ``model.safetensors`` (``fmt="safetensors"``)
    or two ``pytorch_model-0000i-of-00002.bin`` shards with their index (``fmt="bin"``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    if fmt == "safetensors":
        save_state_dict(sd, folder / "model.safetensors", "safetensors")
        return
    keys = sorted(sd)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f"pytorch_model-{i:05d}-of-{len(shards):05d}.bin"
        torch.save({k: sd[k] for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@dataclass
class SyntheticRelease:
    root: Path
    configs: O.ReleaseConfigs
    state_dicts: dict = field(default_factory=dict)   # as in synthetic_state_dicts (+ detokenizer_stage1)
    llm_config: object = None


def write_synthetic_release(root, configs: O.ReleaseConfigs | None = None, fmt: str = "bin",
                            seed: int = 0, agents=("sft_gen", "sft_comp", "pretrain")) -> SyntheticRelease:
    """Write a complete synthetic ``pretrained/`` folder (see ``official.RELEASE_LAYOUT``).

    Stage 1 of the de-tokenizer carries the whole DynamiCrafter state dict, ``video_tokenizer.*``
    (tokenizer + ViT) included; stage 2 omits it (both are accepted). The LLM folders hold the same
    random LLM (safetensors for ``fmt="safetensors"``, two ``.bin`` shards otherwise).
    """
    root = Path(root)
    c = configs or reduced_configs()
    text = tt.build_text_tokenizer(num_frame_tokens=c.num_tokens)
    sds = synthetic_state_dicts(c, seed, len(text))
    video_tok = {**sds["tokenizer"], **{"vit_model.model." + k: v for k, v in sds["clip"].items()
                                         if not k.startswith("transformer.")}}  # text transformer deleted
    stage1 = {**sds["detokenizer"], **{"video_tokenizer." + k: v for k, v in video_tok.items()}}
    sds["detokenizer_stage1"] = stage1

    save_state_dict(sds["clip"], root / O.CLIP_FILE, fmt)
    save_state_dict(sds["tokenizer"], root / O.TOKENIZER_FILE, fmt)
    save_state_dict(stage1, root / O.DETOKENIZER_FILES["stage1"], fmt)
    save_state_dict(sds["detokenizer"], root / O.DETOKENIZER_FILES["stage2"], fmt)
    llm_config = reduced_llm_config(len(text))
    for name in agents:
        d = root / O.AGENT_DIRS[name]
        save_state_dict(sds["agent"], d / O.AGENT_FILE, fmt)
        write_llm_folder(d / O.LLM_DIR, sds["llm"], llm_config, fmt)
    text.save_pretrained(root / O.TEXT_TOKENIZER_DIR)
    return SyntheticRelease(root, c, sds, llm_config)
