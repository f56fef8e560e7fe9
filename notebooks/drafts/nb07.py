import sys; sys.path.insert(0, __import__('os').path.dirname(__file__))
from nbtools import build
C = []
md = lambda s: C.append(("md", s)); code = lambda s: C.append(("code", s))
md(r'''
# 07 · The full-size switch: the same code, the official weights

Everything so far ran the **mini** configuration on a laptop CPU. The classes are the ones that hold the
official Divot: a frozen OpenCLIP ViT-H/14, a 172 M-parameter tokenizer, a 1.4 B-parameter DynamiCrafter
video UNet with the SD KL-f8 VAE, and Mistral-7B with its GMM head. One call switches:

```python
import divot_mini
divot = divot_mini.load_divot("mini")                                   # the course's weights
divot = divot_mini.load_divot("full", "pretrained/", "cuda", torch.float16)  # the official release
tokens = divot.tokenize(video)        # [B, 16, 3, H, W] in [-1, 1]  ->  [B, 64, 256]
clip   = divot.detokenize(tokens)     # 50 DDIM steps, CFG 7.5 (rescale 0.7), 16 frames at 256 px
divot.describe(video); divot.answer(video, "What is the man doing?")
clip   = divot.generate("a dog running on the beach"); divot.story("Generate a story about ...")
```

This chapter shows what the full system is (sizes, memory), where its weights go, and rehearses the
whole loading path on a **synthetic release**: random weights written in the official file layout and
key names, loaded through exactly the code that loads the real files. With `DIVOT_CHECKPOINTS` pointing
at the official `pretrained/` folder and a GPU, the last section runs the real system.
''')
code(r'''
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

import divot_mini
from divot_mini import official, official_synthetic, viz
from divot_mini.divot import FULL_DECODE
from divot_mini.video_io import load_video_clip

FAST = viz.is_fast()
_ = torch.manual_seed(0)
''')
md(r'''
## 1. Parameter counts: mini, full, official

Each FULL component is built on PyTorch's `meta` device — shapes without memory — so this runs on any
laptop. The *official* column is counted from the official code's state dicts (manifests in
`tests/fixtures/divot_official/`, built from TencentARC/Divot's configs); `ok` says our full
configuration has exactly that many parameters. (transformers' `CLIPVisionModel` has no `visual.proj`:
Divot reads the patch features before it, so those 1.3 M parameters are never used.)
''')
code(r'''
# NBVAL_CHECK_OUTPUT
rows = official.parameter_report()
print(official.format_parameter_report(rows))
assert all(r["matches"] for r in rows), [r["component"] for r in rows if not r["matches"]]
''')
md(r'''
## 2. Memory: what a GPU must hold

The official scripts run the ViT, the tokenizer and the LLM in float16 and the de-tokenizer (UNet + VAE
+ context resampler) in float32. Weights alone, per task (the official release has one LLM per task and
two de-tokenizer stages: stage 1 reconstructs, stage 2 decodes generations):
''')
code(r'''
# NBVAL_CHECK_OUTPUT
GiB = 2**30
size = {r["component"]: r["full"] for r in rows}
fp16, fp32 = 2, 4
encoder = (size["vit_visual"] + size["tokenizer"]) * fp16
detok = (size["diffusion_model"] + size["first_stage_model"] + size["image_proj_model"]) * fp32
llm = (size["llm"] + size["agent_heads"]) * fp16
for task, nbytes in {"reconstruction (ViT + tokenizer + de-tokenizer)": encoder + detok,
                     "comprehension (ViT + tokenizer + LLM)": encoder + llm,
                     "generation (ViT + tokenizer + LLM + de-tokenizer)": encoder + llm + detok}.items():
    print(f"{task:52s} {nbytes / GiB:6.1f} GiB of weights")
''')
md(r'''
Measured on an NVIDIA H100 with `scripts/gpu_check.py` (random weights built straight on the GPU; numbers
in `benchmarks/RESULTS.md`): one tokenizer call on 5 frames of 224² took 0.03 s; one 50-step DDIM decode
with classifier-free guidance of 16 frames at 256 px took **10.7 s** (5.9 s with TF32 matmuls) at a peak
of 11.5 GiB; the LLM's generation forward (prompt + `<frame>` + 64 queries, GMM sample) took 0.03 s with
21.3 GiB allocated. So a 24 GB card runs reconstruction and comprehension; generation wants ~26 GB
(21 GiB of weights + ~4 GiB for the guided decode), or the LLM and the de-tokenizer loaded one after the other.

What this machine has:
''')
code(r'''
if torch.cuda.is_available():
    free, total = torch.cuda.mem_get_info()
    print(f"CUDA: {torch.cuda.get_device_name()} — {free / GiB:.1f} of {total / GiB:.1f} GiB free")
else:
    print("no CUDA GPU here: the full system is shown, rehearsed on a synthetic release, not run")
''')
md(r'''
## 3. Where the weights go

The loader expects the folder layout of the official repository's `pretrained/` (the files come from the
Hugging Face repositories TencentARC/Divot, laion/CLIP-ViT-H-14-laion2B-s32B-b79K and Mistral-7B's
instruct tokenizer). Set `DIVOT_CHECKPOINTS` to that folder. Before reading a single byte, the loader
checks that every file a task needs exists, and names each missing one:
''')
code(r'''
ckpt = os.environ.get("DIVOT_CHECKPOINTS")
try:
    official.check_release(ckpt or "pretrained", ["reconstruction", "comprehension", "generation"])
    print(f"official release found at {ckpt}")
    have_release = True
except FileNotFoundError as err:
    print(err)
    have_release = False
''')
md(r'''
Loading is **strict** and **safe**: `.bin` files are read with `torch.load(weights_only=True)` (a file
holding any pickled object other than tensors is refused), safetensors are preferred, and any missing,
unexpected or mis-shaped key raises one error listing them all — the only tolerated exceptions are the
documented ones (e.g. the ViT keys the tokenizer checkpoint omits; the OpenCLIP text tower).

## 4. A rehearsal on a synthetic release

`official_synthetic.write_synthetic_release` writes random weights under the official file names and key
names, at reduced sizes (every key family of the official state dicts is there; the full key sets are
checked against the manifests in `tests/test_official.py`). Loading it goes through the same
`load_divot("full", ...)` as the real release — OpenCLIP→transformers key conversion for the ViT, LDM→diffusers
for the VAE, the HF folder for the LLM, strict checks everywhere.
''')
code(r'''
workdir = Path(tempfile.mkdtemp(prefix="divot_synthetic_"))
release = official_synthetic.write_synthetic_release(workdir, fmt="bin", agents=("sft_gen", "sft_comp"))
for p in sorted(workdir.rglob("*")):
    if p.is_file() and "cvlm" not in str(p):
        print(f"{str(p.relative_to(workdir)):62s} {p.stat().st_size / 1e6:7.2f} MB")
small = replace(FULL_DECODE, steps=4 if FAST else 10, size=16)
rehearsal = divot_mini.load_divot("full", workdir, configs=release.configs, decode=small)
print(rehearsal)
''')
md(r'''
A real video, sampled the official way (`divot_mini/video_io.py`): 16 frames at 8 fps, of which the
tokenizer reads 5 (indices 0, 4, 8, 12, 15); short side resized to 256, centre crop, values in [-1, 1].
The full ViT resizes 256 → 224 as the official preprocessing (bicubic, `align_corners=True`).
''')
code(r'''
real = load_video_clip("../data/sample_video.mp4", size=64)
print("clip", tuple(real["clip"].shape), "from video frames", [int(i) for i in real["indices"]])
print("the tokenizer reads frames", [int(i) for i in real["tokenizer_indices"]], f"of a {real['fps']:.0f} fps video")
tokens = rehearsal.tokenize(real["clip"])
print("tokens", tuple(tokens.shape), "(official: 64 x 256)")
recon = rehearsal.detokenize(tokens)
print("decoded", tuple(recon.shape))
assert tokens.shape == (release.configs.num_tokens, release.configs.token_dim)
assert recon.shape == (16, 3, 16, 16) and torch.isfinite(recon).all()
print("caption from the random LLM (noise, by design):", repr(rehearsal.describe(real["clip"], max_new_tokens=6)))
''')
md(r'''
The weights are random, so the words and the decoded clip are noise: the point is that every tensor
flowed through the official-size code path with the official file formats. Strictness in action — drop
one key from the tokenizer checkpoint and rename another:
''')
code(r'''
sd = official.read_state_dict(workdir / official.TOKENIZER_FILE)
broken = dict(sd)
broken.pop(next(k for k in broken if k.startswith("norm.")))
key = next(k for k in broken if k.startswith("temporal_encoder."))
broken["temporal_encoder.typo"] = broken.pop(key)
try:
    official.load_tokenizer(broken, release.configs.tokenizer, vit_config=release.configs.vit)
except official.OfficialCheckpointError as err:
    print(str(err)[:900])
else:
    raise AssertionError("a broken checkpoint must not load")
''')
md(r'''
## 5. The real system (GPU + `DIVOT_CHECKPOINTS`)

With the official weights and a CUDA GPU, the same three verbs run at full size. Each task is loaded on
its own and freed afterwards, so a 40 GB card is enough. On CI and on a laptop this section only says
why it is skipped.
''')
code(r'''
run_full = have_release and torch.cuda.is_available()
if not run_full:
    print("skipped: needs DIVOT_CHECKPOINTS (the official pretrained/ folder) and a CUDA GPU")
else:
    clip = load_video_clip("../data/sample_video.mp4", size=256)["clip"]
    divot = divot_mini.load_divot("full", ckpt, "cuda", torch.float16, tasks="reconstruction")
    recon = divot.reconstruct(clip.cuda())
    viz.save_clip(recon.cpu(), "07_full_reconstruction.gif")
    display(viz.animate([clip, recon.cpu()], ["input", "Divot reconstruction (50 DDIM steps, CFG 7.5)"], upscale=1))
    del divot; torch.cuda.empty_cache()

    divot = divot_mini.load_divot("full", ckpt, "cuda", torch.float16, tasks="comprehension")
    print("caption:", divot.describe(clip.cuda(), do_sample=True, temperature=0.7, top_p=0.5, max_new_tokens=256))
    del divot; torch.cuda.empty_cache()

    divot = divot_mini.load_divot("full", ckpt, "cuda", torch.float16, tasks="generation")
    gen = divot.generate("a dog running on the beach")
    viz.save_clip(gen.cpu(), "07_full_generation.gif")
    display(viz.animate([gen.cpu()], ["Generate a video of a dog running on the beach"], upscale=1))
''')
md(r'''
## Summary

* `load_divot("mini")` and `load_divot("full", folder)` return the same `Divot` object with the same verbs;
  the mini classes *are* the full classes with a smaller configuration (parameter table above).
* The official release loads strictly and safely from its own file layout and key names; a synthetic
  release in that layout exercises the whole path on a CPU (and in CI).
* Full size needs a GPU: 7.5 GiB of weights to reconstruct, 15.2 GiB to comprehend, 21.2 GiB to
  generate; the 50-step guided decode of one clip takes ~11 s on an H100.
''')
build(C, sys.argv[1])
