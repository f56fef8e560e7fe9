import sys; sys.path.insert(0, __import__('os').path.dirname(__file__))
from nbtools import build
C = []
md = lambda s: C.append(("md", s)); code = lambda s: C.append(("code", s))
md(r'''
# 02 · The Divot tokenizer: 5 frames in, 16 continuous tokens out

Chapter 01 gave us a frozen ViT that describes **one frame** as a grid of patch features — and showed
that no single frame knows which way the shape moves. The Divot tokenizer reads the features of **5
frames** of a 2-second clip and compresses them into a fixed number of continuous tokens
($64 \times 256$ in the paper, $16 \times 32$ here) that an LLM can later read and write.

$$
\underbrace{x \in \mathbb{R}^{5 \times 3 \times H \times W}}_{\text{5 sampled frames}}
\xrightarrow{\text{frozen ViT}} \mathbb{R}^{5 \times P^2 \times C}
\xrightarrow{\text{temporal encoder}} \mathbb{R}^{5 \times P^2 \times D}
\xrightarrow{\text{2-D pool}} \mathbb{R}^{5 \times S^2 \times D}
\xrightarrow{\text{ST transformer}} \mathbb{R}^{5 S^2 \times D}
\xrightarrow{\text{Perceiver}} \mathbb{R}^{N \times d}
$$

This notebook walks one clip through every step with the tensor shape at each, using the classes in
`divot_mini/tokenizer.py`, `temporal_encoder.py` and `perceiver_resampler.py` — the **same classes**
that hold the official 172 M-parameter tokenizer. The weights used here were trained in chapter 03
(through the diffusion de-tokenizer); this chapter is about the *shape of the computation*.
''')
code(r'''
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from divot_mini import data, viz
from divot_mini.data import MovingShapes, tokenizer_frames
from divot_mini.temporal_encoder import TemporalEncoder
from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
from divot_mini.tokenizer_training import load_trained

FAST = viz.is_fast()
_ = torch.manual_seed(0)
''')
md(r'''
## 1. Two configurations, one class

The official configuration (`configs/visual_encoder/Divot_video.yaml`) and the course's mini one differ
only in sizes. The full tokenizer is built on PyTorch's `meta` device: every parameter gets a shape but
no memory, so a laptop can count the official model's 171.6 M parameters and compare its state-dict keys
with the official checkpoint's manifest (copied into `tests/fixtures/`).
''')
code(r'''
# NBVAL_CHECK_OUTPUT
full, mini = TokenizerConfig.full(), TokenizerConfig.mini()
print(f"{'':22s}{'full':>8s}{'mini':>8s}")
for field in ("vit_dim", "patch_grid", "temporal_width", "temporal_depth", "hidden_size", "pool_size",
              "st_depth", "resampler_depth", "num_tokens", "token_dim"):
    print(f"{field:22s}{getattr(full, field):8d}{getattr(mini, field):8d}")

with torch.device("meta"):
    big = DivotTokenizer(full)
manifest = json.loads((Path("..") / "tests/fixtures/divot_official/tokenizer.json").read_text())["entries"]
ours = {k: list(v.shape) for k, v in big.state_dict().items()}
theirs = {k: v["shape"] for k, v in manifest.items()}
print("full parameters:", f"{sum(p.numel() for p in big.parameters()):,}",
      "| official:", f"{sum(math.prod(s) for s in theirs.values()):,}")
print("keys and shapes identical to the official checkpoint:", ours == theirs)
assert ours == theirs
''')
md(r'''
## 2. The trained mini tokenizer and one clip

`load_trained()` follows the course's weights policy: the shipped weights (`divot_mini/weights/`), else
your cache, else it trains them (chapter 03). It returns the frozen ViT, the tokenizer and the
de-tokenizer together.
''')
code(r'''
model = load_trained()
vit, tokenizer = model.vit, model.tokenizer
print(f"tokenizer parameters: {sum(p.numel() for p in tokenizer.parameters()):,}")
batch = MovingShapes("test")[list(range(4))]
video = batch["video"]
print("clip batch", tuple(video.shape), "|", batch["caption"])
''')
md(r'''
### Step 0 — which frames

The tokenizer sees 5 of the 16 frames, spread over the 2 seconds (indices 0, 4, 8, 12, 15). The
de-tokenizer will have to produce all 16 from the tokens: the in-between frames are *generated*.
''')
code(r'''
frames = tokenizer_frames(video)
print("frames", tuple(frames.shape), "= [batch, 5 frames, 3, H, W]")
fig = viz.frame_grid(frames, row_labels=batch["caption"], titles=[f"frame {i}" for i in (0, 4, 8, 12, 15)],
                     path="02_tokenizer_frames.png")
plt.show()
''')
md(r'''
### Step 1 — the frozen ViT: $[B, 5, P^2, C]$

Each frame alone goes through the ViT of chapter 01: $8 \times 8 = 64$ patches of width 64 here,
$16 \times 16 = 256$ patches of width 1280 for ViT-H/14.
''')
code(r'''
feats = vit(frames)
print("ViT patch features", tuple(feats.shape), "= [batch, frames, patches, width]")
''')
md(r'''
### Step 2 — the temporal encoder, at every patch position

For each of the $P^2$ patch positions, the 5 features of that position form a short sequence; a small
transformer lets the 5 frames exchange information. This is the first place where *motion* can be
represented: the feature of a patch at frame 4 can now depend on what that patch showed at frames 0 and 8.

Two official details, kept on purpose:

* **no residual** around the encoder: its output replaces the ViT features;
* **zero initialisation** of its output projections, so at initialisation the output is exactly 0 and
  the tokens do not depend on the video at all — training grows the temporal path from nothing.
''')
code(r'''
# NBVAL_CHECK_OUTPUT
fresh = TemporalEncoder(input_dim=64, output_dim=64, width=64, layers=2, heads=4, num_frames=5)
x = torch.randn(10, 5, 64)
print("fresh temporal encoder output is exactly zero:", bool((fresh(x) == 0).all()))
untrained = DivotTokenizer(TokenizerConfig.mini())
a, b = untrained(torch.randn(1, 5, 64, 64)), untrained(torch.randn(1, 5, 64, 64))
print("untrained tokenizer gives the same tokens for two different inputs:", torch.allclose(a, b))
''')
code(r'''
with torch.no_grad():
    temporal = tokenizer.temporal(feats)
print("temporal features", tuple(temporal.shape))
# Where is the temporal encoder's output largest? Norm per patch position, frame 8, on the 8x8 grid.
norms = temporal.norm(dim=-1).view(len(video), 5, 8, 8)
fig, axes = plt.subplots(2, 4, figsize=(7, 3.6))
for i in range(4):
    axes[0, i].imshow(viz.to_uint8(frames[i, 2:3])[0], interpolation="nearest")
    axes[1, i].imshow(norms[i, 2], cmap="magma")
    axes[0, i].set_title(batch["caption"][i], fontsize=7)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("frame 8", fontsize=8)
axes[1, 0].set_ylabel("|temporal|", fontsize=8)
fig.tight_layout()
fig.savefig(viz.figures_dir() / "02_temporal_norms.png", dpi=120)
plt.show()
''')
md(r'''
### Step 3 — spatial pooling with overlapping windows

`AdaptiveAvgPool2d` shrinks the $P \times P$ grid to $S \times S$. When $S$ does not divide $P$ (official:
16 → 5) the windows **overlap**: window $i$ covers rows $\lfloor 16 i / 5 \rfloor$ to
$\lceil 16 (i+1) / 5 \rceil$, i.e. $[0,4), [3,7), [6,10), [9,13), [12,16)$. The mini pools 8 → 4 with
plain $2 \times 2$ windows.
''')
code(r'''
# NBVAL_CHECK_OUTPUT
def windows(P, S):
    return [(math.floor(i * P / S), math.ceil((i + 1) * P / S)) for i in range(S)]

print("official 16 -> 5:", windows(16, 5))
print("mini      8 -> 4:", windows(8, 4))
# check the formula against what AdaptiveAvgPool2d computes: pool a one-hot row per input position
for P, S in ((16, 5), (8, 4)):
    pooled = torch.nn.AdaptiveAvgPool1d(S)(torch.eye(P)[None])[0]   # [P, S]
    covered = [tuple(int(v) for v in (pooled[:, i] > 0).nonzero()[[0, -1], 0] + torch.tensor([0, 1]))
               for i in range(S)]
    assert covered == windows(P, S), (covered, windows(P, S))
''')
code(r'''
pooled = tokenizer.pool(temporal)
print("pooled", tuple(pooled.shape), "= [batch, 5 frames x 4 x 4, D]")
''')
md(r'''
### Step 4 — LayerNorm, position embeddings, spatial-temporal transformer

The $5 \cdot S^2$ pooled features (80 here, 125 officially) are normalised, get a learned **spatial**
embedding (one per $S \times S$ cell) plus a learned **temporal** embedding (one per frame), and a
transformer lets every (frame, cell) attend to every other: now the whole clip is in context.

### Step 5 — the Perceiver resampler: $[5 S^2, D] \to [N, d]$

A fixed set of $N$ learned queries ("latents") reads the sequence. Each layer computes

$$
\text{latents} \leftarrow \text{latents} + \text{softmax}\!\left(\frac{q\,k^\top}{\sqrt{d_h}}\right) v,
\quad q = W_q\,\text{latents},\;\; [k, v] = W_{kv}\,[\text{inputs};\ \text{latents}],
$$

then a feed-forward block; the queries attend to the inputs *and to themselves*. Whatever the clip
length or grid size, the output is always $N$ tokens — the "words" an LLM will read.
''')
code(r'''
with torch.no_grad():
    st = tokenizer.image_proj_model
    x = tokenizer.norm(pooled)
    print("normalised", tuple(x.shape))
    tokens = tokenizer(feats)
print("Divot tokens", tuple(tokens.shape), "= [batch, N tokens, d]")
assert tokens.shape == (len(video), 16, 32)
''')
md(r'''
## 3. What the tokens look like

Each clip becomes a $16 \times 32$ matrix of real numbers. Clips that share attributes should get
similar tokens: the cosine similarity between the token matrices of 24 test clips, sorted by colour,
shows the block structure (chapter 03 measures with linear probes exactly how much of shape, colour and
motion the tokens carry).
''')
code(r'''
fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
for i, ax in enumerate(axes):
    ax.imshow(tokens[i], cmap="coolwarm", vmin=-3, vmax=3)
    ax.set_title(batch["caption"][i], fontsize=7)
    ax.set_xlabel("dimension", fontsize=7), ax.set_ylabel("token", fontsize=7)
fig.tight_layout()
fig.savefig(viz.figures_dir() / "02_tokens.png", dpi=120)
plt.show()
''')
code(r'''
many = MovingShapes("test")[list(range(24))]
with torch.no_grad():
    tok = model.tokens(many["video"]).flatten(1)
order = torch.argsort(many["colour"] * 100 + many["shape"] * 10 + many["motion"], stable=True)
tok = torch.nn.functional.normalize(tok[order] - tok.mean(0), dim=1)
sim = tok @ tok.T
labels = [many["caption"][i].replace(" moves", "")[2:] for i in order.tolist()]
fig, ax = plt.subplots(figsize=(6, 5.5))
im = ax.imshow(sim, cmap="viridis")
ax.set_xticks(range(24), labels, rotation=90, fontsize=6), ax.set_yticks(range(24), labels, fontsize=6)
fig.colorbar(im, fraction=0.046)
ax.set_title("cosine similarity of (centred) token matrices", fontsize=9)
fig.tight_layout()
fig.savefig(viz.figures_dir() / "02_token_similarity.png", dpi=120)
plt.show()
same = (many["colour"][order][:, None] == many["colour"][order][None]).float() - torch.eye(24)
diff = 1 - same - torch.eye(24)
print(f"mean similarity, same colour: {(sim * same).sum() / same.sum():.2f}; "
      f"different colour: {(sim * diff).sum() / diff.sum():.2f}")
assert (sim * same).sum() / same.sum() > (sim * diff).sum() / diff.sum()
''')
md(r'''
## 4. Bad inputs get clear errors

A tokenizer built for 5 frames of $8 \times 8$ patches refuses anything else, and says what it expected.
''')
code(r'''
# NBVAL_CHECK_OUTPUT
for bad in (torch.randn(1, 4, 64, 64), torch.randn(1, 5, 49, 64), torch.full((1, 5, 64, 64), float("nan"))):
    try:
        tokenizer(bad)
    except ValueError as err:
        print("ValueError:", err)
''')
md(r'''
## Summary

* The tokenizer = frozen ViT features of 5 frames → temporal encoder per patch (zero-initialised, no
  residual) → overlapping 2-D pooling → LayerNorm + spatial/temporal position embeddings → transformer →
  Perceiver resampler → $N \times d$ continuous tokens.
* The same class builds the official $64 \times 256$ tokenizer (171.6 M parameters, keys identical to the
  official checkpoint) and the course's $16 \times 32$ one.
* Nothing so far says *what* the tokens should contain. Chapter 03 trains them the Divot way: a video
  diffusion model must rebuild all 16 frames from the tokens.
''')
build(C, sys.argv[1])
