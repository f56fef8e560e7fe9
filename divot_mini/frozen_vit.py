"""The frozen pretrained ViT the Divot tokenizer starts from: a CLIP vision tower.

Official Divot uses OpenCLIP ViT-H/14 (1280 wide, 16x16 patches of a 224-px frame), frozen. The
course pre-trains a *tiny* CLIP (transformers' ``CLIPModel``) on single Moving Shapes frames and
their captions ("a red circle": one frame shows shape and colour, never motion), then freezes its
vision tower, a ``CLIPVisionModel`` -- the same class that holds ViT-H/14 at full size.

Features, as in the official code: the transformer's output after ``pre_layrnorm`` and all blocks
(no ``post_layernorm``, no projection), class token dropped -> ``[frames, patches, width]``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModel

from . import checkpoints
from .fit import fit_on_moving_shapes
from .data import COLOURS, SHAPES, MovingShapes

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# A word-level vocabulary for frame captions ("a red circle"); 0 pad, 1 start, 2 end.
FRAME_VOCAB = ["<pad>", "<bos>", "<eos>", "a", *COLOURS, *SHAPES]
_WORD_ID = {w: i for i, w in enumerate(FRAME_VOCAB)}
TEXT_LEN = 6


def frame_caption(shape: int, colour: int) -> str:
    return f"a {COLOURS[colour]} {SHAPES[shape]}"


def encode_captions(captions: list[str]) -> torch.Tensor:
    """Captions -> input ids [B, TEXT_LEN] (<bos> words <eos> <pad>...); unknown words raise."""
    rows = []
    for c in captions:
        words = c.split()
        unknown = [w for w in words if w not in _WORD_ID]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown} in caption {c!r}; vocabulary: {FRAME_VOCAB[3:]}")
        ids = [1] + [_WORD_ID[w] for w in words] + [2]
        if len(ids) > TEXT_LEN:
            raise ValueError(f"caption too long ({len(words)} words): {c!r}")
        rows.append(ids + [0] * (TEXT_LEN - len(ids)))
    return torch.tensor(rows)


def tiny_clip_config(image_size: int = 32, patch_size: int = 4, width: int = 64) -> CLIPConfig:
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=4,
                              num_attention_heads=4, image_size=image_size, patch_size=patch_size,
                              projection_dim=width)
    text = CLIPTextConfig(vocab_size=len(FRAME_VOCAB), hidden_size=width, intermediate_size=4 * width,
                          num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=TEXT_LEN,
                          projection_dim=width, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=width)


def vit_h14_config() -> CLIPVisionConfig:
    """OpenCLIP ViT-H/14 (laion2B) as a transformers vision config (issue: full-size switch)."""
    return CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                            num_attention_heads=16, image_size=224, patch_size=14, hidden_act="gelu",
                            projection_dim=1024, layer_norm_eps=1e-5)


def clip_normalize(frames: torch.Tensor) -> torch.Tensor:
    """Frames in [-1, 1] -> CLIP's normalisation ([0, 1], then per-channel mean/std)."""
    mean = torch.tensor(CLIP_MEAN, dtype=frames.dtype, device=frames.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=frames.dtype, device=frames.device).view(3, 1, 1)
    return ((frames + 1) / 2 - mean) / std


def official_resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize frames [..., 3, H, W] to ``size`` x ``size`` as the official tokenizer does before its
    ViT (``kornia.geometry.resize``: bicubic, ``align_corners=True``, antialias = a Gaussian blur
    when shrinking, sigma (factor - 1) / 2, odd kernel >= 3, reflect padding). For the official
    256 -> 224 the blur's sigma is 0.07, so it is numerically the identity; it is kept for other sizes.
    """
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    if (h, w) == (size, size):
        return frames
    x = frames.reshape(-1, c, h, w)
    for axis, n in ((-2, h), (-1, w)):
        factor = n / size
        if factor <= 1:
            continue
        sigma = max((factor - 1) / 2, 0.001)
        k = max(int(4 * sigma), 3)
        k += 1 - k % 2
        t = torch.arange(k, dtype=x.dtype, device=x.device) - k // 2
        kernel = torch.exp(-t**2 / (2 * sigma**2))
        kernel = (kernel / kernel.sum()).repeat(c, 1)
        if axis == -2:
            x = F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode="reflect"), kernel[:, None, :, None], groups=c)
        else:
            x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=c)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=True)
    return x.reshape(*lead, c, size, size)


class FrozenViT(nn.Module):
    """Frames [B, F, 3, H, W] in [-1, 1] -> patch features [B, F, (H/p)*(W/p), width], frozen.

    ``resize=True`` (the full-size system) resizes any frame size to the ViT's as the official
    preprocessing does (256 -> 224); the mini ViT refuses a wrong size instead.
    """

    def __init__(self, vision: CLIPVisionModel, resize: bool = False):
        super().__init__()
        self.resize = resize
        self.vision = vision.eval()
        self.vision.requires_grad_(False)
        cfg = vision.config
        self.image_size, self.grid = cfg.image_size, cfg.image_size // cfg.patch_size
        self.width = cfg.hidden_size

    def train(self, mode: bool = True):  # stays frozen whatever the parent does
        return super().train(False)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"expected frames [B, F, 3, H, W], got {tuple(frames.shape)}")
        if self.resize:
            frames = official_resize(frames, self.image_size)
        elif frames.shape[-1] != self.image_size or frames.shape[-2] != self.image_size:
            raise ValueError(f"this ViT reads {self.image_size}x{self.image_size} frames, "
                             f"got {frames.shape[-2]}x{frames.shape[-1]}")
        B, Fr = frames.shape[:2]
        out = self.vision(pixel_values=clip_normalize(frames.flatten(0, 1)))
        return out.last_hidden_state[:, 1:].reshape(B, Fr, self.grid**2, self.width)


# ----------------------------------------------------------------------------- pre-training
import lightning as L  # noqa: E402


def clip_loss(model: CLIPModel, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Symmetric contrastive loss with *soft* targets: frames sharing a caption are all positives
    (with 12 captions, a batch is full of duplicates that plain CLIP would push apart)."""
    out = model(input_ids=ids, pixel_values=pixels, attention_mask=(ids > 0).long())
    same = (ids[:, None, :] == ids[None, :, :]).all(-1).float()
    target = same / same.sum(1, keepdim=True)
    return (F.cross_entropy(out.logits_per_image, target) + F.cross_entropy(out.logits_per_text, target)) / 2


class TinyCLIPPretraining(L.LightningModule):
    def __init__(self, model: CLIPModel, lr: float = 2e-3, total_steps: int = 300):
        super().__init__()
        self.model, self.lr, self.total_steps = model, lr, total_steps

    def training_step(self, batch, _):
        video = batch["video"]  # one random frame per clip
        frame = video[torch.arange(len(video)), torch.randint(0, video.shape[1], (len(video),))]
        ids = encode_captions([frame_caption(s, c) for s, c in zip(batch["shape"].tolist(),
                                                                   batch["colour"].tolist())])
        loss = clip_loss(self.model, clip_normalize(frame), ids)
        self.log("loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.total_steps, pct_start=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def zero_shot_accuracy(model: CLIPModel, split: str = "test", n: int = 512, seed: int = 0) -> float:
    """Classify single frames by the nearest of the 12 captions "a {colour} {shape}"."""
    model.eval()
    prompts = [(s, c) for s in range(len(SHAPES)) for c in range(len(COLOURS))]
    ids = encode_captions([frame_caption(s, c) for s, c in prompts])
    b = MovingShapes(split, size=n, seed=seed)[list(range(n))]
    frames = b["video"][:, 8]
    out = model(input_ids=ids, pixel_values=clip_normalize(frames), attention_mask=(ids > 0).long())
    pred = out.logits_per_image.argmax(-1)
    truth = torch.tensor([prompts.index((s, c)) for s, c in zip(b["shape"].tolist(), b["colour"].tolist())])
    return (pred == truth).float().mean().item()


def train_tiny_clip(model: CLIPModel, seed: int = 0, steps: int = 300, batch_size: int = 128,
                    progress: bool = True) -> dict:
    fit_on_moving_shapes(TinyCLIPPretraining(model, total_steps=steps), model, steps, batch_size,
                         seed, model.config.vision_config.image_size, progress)
    return {"zero_shot_test": zero_shot_accuracy(model, "test"),
            "zero_shot_heldout": zero_shot_accuracy(model, "heldout")}


TINY_CLIP_STEPS = 300
checkpoints.register(checkpoints.CheckpointSpec(
    name="tiny_clip",
    build=lambda: CLIPModel(tiny_clip_config()),
    train=lambda m, seed: train_tiny_clip(m, seed, steps=TINY_CLIP_STEPS),
    config={"arch": "CLIPModel", "image_size": 32, "patch_size": 4, "width": 64, "vision_layers": 4,
            "text_layers": 2, "vocab": FRAME_VOCAB, "steps": TINY_CLIP_STEPS, "batch_size": 128},
    seed=0,
    command="python scripts/train.py tiny_clip --ship",
))


def load_frozen_vit(verbose: bool = True) -> FrozenViT:
    """The tiny CLIP's vision tower, frozen, through the weights policy (shipped -> cache -> train)."""
    clip, _ = checkpoints.load("tiny_clip", verbose=verbose)
    vision = CLIPVisionModel(clip.config.vision_config)
    vision.load_state_dict(clip.vision_model.state_dict())  # transformers 5: same keys, no wrapper
    return FrozenViT(vision)
