"""The full-size switch: load the official Divot release into the project's own modules.

The project's classes *are* the official architecture (same parameter names where the official
code is a module of its own); only three parts come from libraries and need their keys converted:

* the frozen ViT: OpenCLIP ViT-H/14 (``open_clip_pytorch_model.bin``, keys ``visual.*``) ->
  transformers' ``CLIPVisionModel`` (:func:`openclip_to_clip_vision`, a table written here);
* the VAE: LDM ``first_stage_model.*`` keys -> diffusers' ``AutoencoderKL`` (diffusers'
  ``convert_ldm_vae_checkpoint``);
* the LLM: a Hugging Face folder (``llm/``), already in transformers' names.

Everything else (tokenizer, UNet, image-projection resampler, agent heads) loads under its official
key names unchanged.

**The official ``pretrained/`` folder** (paths from the official configs)::

    pretrained/
    ├── CLIP-ViT-H-14-laion2B-s32B-b79K/open_clip_pytorch_model.bin   (ViT: load_vit)
    ├── Divot_tokenizer_detokenizer/
    │   ├── Divot_tokenizer.bin               (load_tokenizer)
    │   ├── Divot_detokenizer_stage1.bin      (load_detokenizer; the reconstruction script uses it)
    │   └── Divot_detokenizer_stage2.bin      (load_detokenizer; the generation script uses it)
    ├── Divot_sft_gen/{llm/, agent/pytorch_model.bin}    (load_agent: generation)
    ├── Divot_sft_comp/{llm/, agent/pytorch_model.bin}   (load_agent: comprehension)
    ├── Divot_pretrain/{llm/, agent/pytorch_model.bin}   (load_agent: pre-trained, before SFT)
    └── cvlm_mistral_instruct_tokenizer/   (the LLM's text tokenizer: load_text_tokenizer)

Any ``X.bin`` may also be given as ``X.safetensors`` (same folder, same stem).

**Rules.** Files are read with ``torch.load(..., weights_only=True)`` (memory-mapped) or as
safetensors, never by unpickling arbitrary objects. Loading is strict: every missing, unexpected or
mis-shaped key is collected and reported in *one* :class:`OfficialCheckpointError`. The documented
exceptions -- and only they -- are accepted:

* tokenizer checkpoint: the frozen ViT ``vit_model.*`` may be absent (the official loader,
  ``strict=False``, expects it absent: the ViT comes from the CLIP file) or present (then it must be
  the complete ViT-H/14; it is checked and ignored -- :func:`load_vit` can read it);
* de-tokenizer checkpoint (the whole ``DynamiCrafter`` state dict): ``video_tokenizer.*`` may be
  absent or present (then checked like a tokenizer checkpoint and ignored: the tokenizer is loaded
  separately -- but note that the official scripts share one tokenizer module and load the
  de-tokenizer checkpoint *after* it, so ``video_tokenizer.*`` weights, if the file has them, are
  what the official scripts actually run: ``load_tokenizer(path, prefix="video_tokenizer.")``
  loads them); the 12 noise-schedule buffers (``betas`` ... ``posterior_mean_coef2``) may be absent
  or present (then compared with the official schedule, which the sampler uses; never loaded);
* CLIP file: the text tower (``transformer.*``, ``token_embedding``, ``positional_embedding``,
  ``text_projection``, ``ln_final``, ``logit_scale``, ``attn_mask``) and the visual ``proj``
  (the 1280 -> 1024 image-embedding projection: Divot's features are the patch tokens *before*
  ``ln_post``/``proj``) are ignored;
* LLM state dicts: ``*.rotary_emb.inv_freq`` (saved by old transformers versions) are ignored.

**Memory.** Modules are built with their parameters on the meta device (no memory), the state dict
is read memory-mapped, each tensor is moved to the target device and dtype on its own, and the
module takes those tensors as its parameters (``load_state_dict(assign=True)``): no second copy. A
7 B LLM goes straight from the files to the GPU. ``device="meta"`` loads nothing at all (shapes
only): the tests load the official *manifests* through the very same code this way.
"""
from __future__ import annotations

import contextlib
import itertools
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

PathLike = str | Path
StateDict = Mapping[str, torch.Tensor]

# ----------------------------------------------------------------------------- the release layout
CLIP_FILE = "CLIP-ViT-H-14-laion2B-s32B-b79K/open_clip_pytorch_model.bin"
TOKENIZER_FILE = "Divot_tokenizer_detokenizer/Divot_tokenizer.bin"
DETOKENIZER_FILES = {"stage1": "Divot_tokenizer_detokenizer/Divot_detokenizer_stage1.bin",
                     "stage2": "Divot_tokenizer_detokenizer/Divot_detokenizer_stage2.bin"}
AGENT_DIRS = {"sft_gen": "Divot_sft_gen", "sft_comp": "Divot_sft_comp", "pretrain": "Divot_pretrain"}
AGENT_FILE = "agent/pytorch_model.bin"
LLM_DIR = "llm"
TEXT_TOKENIZER_DIR = "cvlm_mistral_instruct_tokenizer"

RELEASE_LAYOUT = """\
pretrained/                                    (the folder you pass as checkpoint_dir)
├── CLIP-ViT-H-14-laion2B-s32B-b79K/
│   └── open_clip_pytorch_model.bin            (laion/CLIP-ViT-H-14-laion2B-s32B-b79K)
├── Divot_tokenizer_detokenizer/               (TencentARC/Divot)
│   ├── Divot_tokenizer.bin
│   ├── Divot_detokenizer_stage1.bin
│   └── Divot_detokenizer_stage2.bin
├── Divot_sft_gen/   {llm/ (config.json + weights), agent/pytorch_model.bin}
├── Divot_sft_comp/  {llm/ (config.json + weights), agent/pytorch_model.bin}
├── Divot_pretrain/  {llm/ (config.json + weights), agent/pytorch_model.bin}
└── cvlm_mistral_instruct_tokenizer/           (tokenizer_config.json + tokenizer.model or tokenizer.json)
(any X.bin may be X.safetensors instead)"""

# Component name -> what it needs, relative to the release folder.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "vit": (CLIP_FILE,),
    "tokenizer": (TOKENIZER_FILE,),
    "detokenizer_stage1": (DETOKENIZER_FILES["stage1"],),
    "detokenizer_stage2": (DETOKENIZER_FILES["stage2"],),
    "text_tokenizer": (TEXT_TOKENIZER_DIR + "/",),
    **{f"agent_{k}": (f"{d}/{AGENT_FILE}", f"{d}/{LLM_DIR}/") for k, d in AGENT_DIRS.items()},
}
# What each official script loads (src/tools/eval_Divot_video_{recon,comp,gen}.py). The generation
# script needs the ViT and the tokenizer too: the unconditional context is the tokenizer's answer to
# an all-zeros video.
TASKS: dict[str, tuple[str, ...]] = {
    "reconstruction": ("vit", "tokenizer", "detokenizer_stage1"),
    "comprehension": ("text_tokenizer", "vit", "tokenizer", "agent_sft_comp"),
    "generation": ("text_tokenizer", "vit", "tokenizer", "agent_sft_gen", "detokenizer_stage2"),
}

# Official parameter counts (tests/fixtures/divot_official manifests; Mistral-7B's config.json).
OFFICIAL_PARAMETERS = {
    "tokenizer": 171_635_968,
    "vit_visual": 632_076_800,
    "diffusion_model": 1_438_843_476,
    "first_stage_model": 83_653_863,
    "image_proj_model": 76_977_152,
    "agent_heads": 118_841_632,
    "llm": 7_241_732_096 + 2 * 262 * 4096,  # Mistral-7B + 262 new rows in embed_tokens and lm_head
}

# The DynamiCrafter schedule buffers (official ``register_schedule``), never loaded.
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                    "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")

# The CLIP file's text tower (deleted by the official ViT wrapper) and other leftovers.
CLIP_TEXT_KEYS = ("positional_embedding", "text_projection", "logit_scale", "attn_mask",
                  "token_embedding.weight", "ln_final.weight", "ln_final.bias")
CLIP_TEXT_PREFIXES = ("transformer.",)
CLIP_VISUAL_UNUSED = ("proj",)  # visual.proj: CLIP's image-embedding projection, unused by Divot


# ----------------------------------------------------------------------------- errors
class OfficialCheckpointError(ValueError):
    """A checkpoint does not match the official layout. ``missing``, ``unexpected`` (key lists) and
    ``mismatched`` ((key, shape in the file, expected shape) triples) hold *every* problem found."""

    def __init__(self, message: str, missing: Sequence[str] = (), unexpected: Sequence[str] = (),
                 mismatched: Sequence[tuple[str, tuple, tuple]] = (), other: Sequence[str] = ()):
        self.missing, self.unexpected = list(missing), list(unexpected)
        self.mismatched, self.other = list(mismatched), list(other)
        super().__init__(message)


class UnsafeCheckpointError(OfficialCheckpointError):
    """A ``.bin`` holds pickled objects other than tensors: refused, never unpickled."""


class OfficialFileNotFoundError(FileNotFoundError):
    """A file of the release is missing; the message names it and shows the expected layout."""


class _Problems:
    """Collects missing / unexpected / mis-shaped keys over several checks, raises once."""

    def __init__(self):
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.mismatched: list[tuple[str, tuple, tuple]] = []
        self.other: list[str] = []

    def compare(self, expected: Mapping[str, tuple], got: Mapping[str, Any], prefix: str = "") -> None:
        self.missing += [prefix + k for k in expected if k not in got]
        self.unexpected += [prefix + k for k in got if k not in expected]
        for k in expected:
            if k in got and tuple(got[k].shape) != tuple(expected[k]):
                self.mismatched.append((prefix + k, tuple(got[k].shape), tuple(expected[k])))

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched or self.other)

    def raise_if_any(self, what: str, source: Any) -> None:
        if not self:
            return
        counts = (f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                  f"{len(self.mismatched)} mis-shaped key(s)")
        lines = [f"{_describe(source)} does not match the official {what}: {counts}"]
        if self.missing:
            lines.append("  missing:    " + ", ".join(sorted(self.missing)))
        if self.unexpected:
            lines.append("  unexpected: " + ", ".join(sorted(self.unexpected)))
        if self.mismatched:
            lines.append("  mis-shaped: " + ", ".join(
                f"{k} {list(got)} in the file, expected {list(want)}" for k, got, want in sorted(self.mismatched)))
        lines += ["  " + o for o in self.other]
        raise OfficialCheckpointError("\n".join(lines), self.missing, self.unexpected, self.mismatched,
                                      self.other)


def _describe(source: Any) -> str:
    return "the state dict" if isinstance(source, Mapping) else str(source)


def _missing_file(path: Path, role: str) -> OfficialFileNotFoundError:
    return OfficialFileNotFoundError(
        f"{role}: file not found: {path}\nExpected the official release layout:\n{RELEASE_LAYOUT}")


# ----------------------------------------------------------------------------- reading files
def read_state_dict(source: PathLike | StateDict, *, mmap: bool = True, role: str = "checkpoint",
                    device=None, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a path (``.safetensors``, read tensor by tensor straight onto
    ``device``; or anything ``torch.save`` wrote: read with ``weights_only=True``, memory-mapped,
    on the CPU) or from an already-loaded state dict. With ``keep``, the safetensors entries it
    rejects are returned as meta tensors (shapes for the checks, nothing read)."""
    if isinstance(source, Mapping):
        sd = source
    else:
        path = Path(source)
        if not path.is_file():
            raise _missing_file(path, role)
        if path.suffix == ".safetensors":
            try:
                sd = _read_safetensors(path, _device(device), keep=keep)
            except Exception as err:  # safetensors has its own error types for malformed headers
                raise OfficialCheckpointError(f"{path} cannot be read as safetensors: {err}") from err
        else:
            sd = _torch_load(path, mmap)
    if not isinstance(sd, Mapping):
        raise OfficialCheckpointError(f"{_describe(source)} holds a {type(sd).__name__}, "
                                      "not a state dict {name: tensor}")
    bad = {k: type(v).__name__ for k, v in sd.items() if not (isinstance(k, str) and torch.is_tensor(v))}
    if bad:
        hint = ""
        if any(k in bad for k in ("state_dict", "module", "model")):
            hint = " (a training checkpoint wrapping the weights? pass its 'state_dict' entry)"
        raise OfficialCheckpointError(
            f"{_describe(source)} is not a flat state dict of tensors: "
            + ", ".join(f"{k!r} is a {t}" for k, t in sorted(bad.items(), key=str)) + hint)
    return dict(sd)


def _read_safetensors(path: Path, device: torch.device, dtype=None,
                      keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    if device.type == "meta":  # shapes only: nothing is read
        keep = lambda k: False  # noqa: E731
    with safe_open(str(path), framework="pt", device="cpu" if device.type == "meta" else str(device)) as fh:
        return {k: _cast(fh.get_tensor(k), device, dtype) if keep is None or keep(k)
                else _meta_like(fh.get_slice(k), dtype) for k in fh.keys()}


def _torch_load(path: Path, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains pickled Python objects other than tensors, and "
            f"unpickling them could run arbitrary code (torch.load with weights_only=True said: "
            f"{str(err).splitlines()[0]})") from err
    except RuntimeError as err:
        if mmap and "mmap" in str(err):  # a legacy (non-zip) torch.save file cannot be mapped
            return _torch_load(path, mmap=False)
        raise OfficialCheckpointError(f"{path} cannot be read by torch.load: {err}") from err


def _resolve_file(path: PathLike) -> Path:
    """``X.bin`` or, if only that exists, ``X.safetensors`` (and the other way round)."""
    path = Path(path)
    if path.is_file():
        return path
    alt = path.with_suffix(".safetensors" if path.suffix == ".bin" else ".bin")
    return alt if alt.is_file() else path


# ----------------------------------------------------------------------------- building modules
@contextlib.contextmanager
def empty_parameters():
    """Build modules with every *parameter* on the meta device (no memory, no initialisation cost)
    while buffers are built normally -- non-persistent buffers (RoPE frequencies, position ids) are
    not in any checkpoint and must be real."""
    register = nn.Module.register_parameter

    def register_on_meta(module, name, param):
        register(module, name, param)
        p = module._parameters.get(name)
        if p is not None and not p.is_meta:
            module._parameters[name] = type(p)(p.to("meta"), requires_grad=p.requires_grad)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def _build(fn: Callable[[], nn.Module], device: torch.device) -> nn.Module:
    if device.type == "meta":
        with torch.device("meta"):
            return fn()
    with empty_parameters():
        return fn()


def _device(device) -> torch.device:
    return torch.device("cpu" if device is None else device)


def _cast(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else t.dtype)


def _assign(module: nn.Module, sd: Mapping[str, torch.Tensor], device: torch.device,
            dtype: torch.dtype | None, strict: bool = True) -> nn.Module:
    """Give ``module`` the (checked) tensors of ``sd`` as its own, moved one by one."""
    sd = {k: _cast(v, device, dtype) for k, v in sd.items()}
    module.load_state_dict(sd, strict=strict, assign=True)
    if device.type != "meta":
        module.to(device)  # the buffers built on the CPU
        left = [n for n, t in itertools.chain(module.named_parameters(), module.named_buffers()) if t.is_meta]
        if left:  # a bug here, not in the checkpoint: every parameter should have been assigned
            raise RuntimeError(f"tensors left on the meta device after loading: {left[:10]}")
    return module.eval()


def _shapes(module: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _sub(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


# ----------------------------------------------------------------------------- the ViT
def openclip_visual_shapes(config=None) -> dict[str, tuple]:
    """Keys and shapes of an OpenCLIP ``VisionTransformer`` (``visual.*`` without the prefix) for a
    transformers ``CLIPVisionConfig`` (default ViT-H/14): what the CLIP file must hold."""
    from .frozen_vit import vit_h14_config
    c = config or vit_h14_config()
    w, m, p = c.hidden_size, c.intermediate_size, c.patch_size
    n = (c.image_size // p) ** 2 + 1
    s = {"class_embedding": (w,), "positional_embedding": (n, w), "proj": (w, c.projection_dim),
         "conv1.weight": (w, c.num_channels, p, p),
         "ln_pre.weight": (w,), "ln_pre.bias": (w,), "ln_post.weight": (w,), "ln_post.bias": (w,)}
    for i in range(c.num_hidden_layers):
        b = f"transformer.resblocks.{i}."
        s.update({b + "ln_1.weight": (w,), b + "ln_1.bias": (w,),
                  b + "attn.in_proj_weight": (3 * w, w), b + "attn.in_proj_bias": (3 * w,),
                  b + "attn.out_proj.weight": (w, w), b + "attn.out_proj.bias": (w,),
                  b + "ln_2.weight": (w,), b + "ln_2.bias": (w,),
                  b + "mlp.c_fc.weight": (m, w), b + "mlp.c_fc.bias": (m,),
                  b + "mlp.c_proj.weight": (w, m), b + "mlp.c_proj.bias": (w,)})
    return s


# OpenCLIP name -> CLIPVisionModel name (per block: resblocks.N.X -> encoder.layers.N.Y).
_VIT_TOP = {"conv1.weight": "embeddings.patch_embedding.weight",
            "class_embedding": "embeddings.class_embedding",
            "positional_embedding": "embeddings.position_embedding.weight",
            "ln_pre.weight": "pre_layrnorm.weight", "ln_pre.bias": "pre_layrnorm.bias",
            "ln_post.weight": "post_layernorm.weight", "ln_post.bias": "post_layernorm.bias"}
_VIT_BLOCK = {"ln_1": "layer_norm1", "attn.out_proj": "self_attn.out_proj", "ln_2": "layer_norm2",
              "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def openclip_to_clip_vision(visual: StateDict) -> dict[str, torch.Tensor]:
    """OpenCLIP visual keys (without ``visual.``) -> ``CLIPVisionModel`` keys. The fused attention
    input projection ``in_proj_weight`` [3w, w] splits into q, k, v (in that order, as
    ``nn.MultiheadAttention`` uses it); ``proj`` is dropped (unused by Divot)."""
    out = {}
    for k, v in visual.items():
        if k in _VIT_TOP:
            out[_VIT_TOP[k]] = v
        elif k.startswith("transformer.resblocks."):
            i, rest = k[len("transformer.resblocks."):].split(".", 1)
            base = f"encoder.layers.{i}."
            if rest.startswith("attn.in_proj_"):
                kind = "weight" if rest.endswith("weight") else "bias"
                for name, part in zip("qkv", v.chunk(3, dim=0)):
                    out[f"{base}self_attn.{name}_proj.{kind}"] = part
            else:
                mod, kind = rest.rsplit(".", 1)
                if mod not in _VIT_BLOCK:
                    raise KeyError(f"no CLIPVisionModel equivalent for OpenCLIP key {k!r}")
                out[f"{base}{_VIT_BLOCK[mod]}.{kind}"] = v
        elif k not in CLIP_VISUAL_UNUSED:
            raise KeyError(f"no CLIPVisionModel equivalent for OpenCLIP key {k!r}")
    return out


def clip_vision_to_openclip(state: StateDict, proj: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The inverse of :func:`openclip_to_clip_vision` (``proj`` supplied separately): for writing
    checkpoints in the official layout."""
    top = {v: k for k, v in _VIT_TOP.items()}
    block = {v: k for k, v in _VIT_BLOCK.items()}
    out, qkv = {}, {}
    for k, v in state.items():
        if k in top:
            out[top[k]] = v
        elif k.startswith("encoder.layers."):
            i, rest = k[len("encoder.layers."):].split(".", 1)
            mod, kind = rest.rsplit(".", 1)
            if mod in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((i, kind), {})[mod[-6]] = v
            else:
                out[f"transformer.resblocks.{i}.{block[mod]}.{kind}"] = v
        else:
            raise KeyError(f"no OpenCLIP equivalent for CLIPVisionModel key {k!r}")
    for (i, kind), parts in qkv.items():
        out[f"transformer.resblocks.{i}.attn.in_proj_{kind}"] = torch.cat([parts[c] for c in "qkv"])
    if proj is not None:
        out["proj"] = proj
    return out


def _is_clip_leftover(key: str) -> bool:
    return key in CLIP_TEXT_KEYS or key.startswith(CLIP_TEXT_PREFIXES)


def _check_vit(sd: Mapping[str, Any], problems: _Problems, config, prefix: str = "",
               outer: str = "") -> None:
    """Check an OpenCLIP model state dict (``visual.*`` + text leftovers) among the keys under
    ``prefix``; problems are reported as ``outer + key``."""
    visual = _sub(sd, prefix + "visual.")
    problems.compare(openclip_visual_shapes(config), visual, outer + prefix + "visual.")
    problems.unexpected += [outer + k for k in sd if k.startswith(prefix)
                            and not k.startswith(prefix + "visual.")
                            and not _is_clip_leftover(k[len(prefix):])]


_VIT_PREFIXES = ("", "vit_model.model.", "video_tokenizer.vit_model.model.")


def load_vit(source: PathLike | StateDict, config=None, *, device=None, dtype=None):
    """The frozen ViT (:class:`~divot_mini.frozen_vit.FrozenViT` around a transformers
    ``CLIPVisionModel``, default ViT-H/14) from OpenCLIP weights: the CLIP file
    ``open_clip_pytorch_model.bin`` (keys ``visual.*`` + the text tower, ignored), or a tokenizer /
    de-tokenizer checkpoint that carries the ViT (``[video_tokenizer.]vit_model.model.visual.*``;
    the rest of such a file is ignored)."""
    from transformers import CLIPVisionModel

    from .frozen_vit import FrozenViT, vit_h14_config
    config = config or vit_h14_config()
    device = _device(device)
    src = _resolve_file(source) if not isinstance(source, Mapping) else source
    sd = read_state_dict(src, role="ViT (OpenCLIP ViT-H/14)", device=device,
                         keep=lambda k: k.startswith(tuple(p + "visual." for p in _VIT_PREFIXES)))
    prefix = next((p for p in _VIT_PREFIXES if p + "visual.conv1.weight" in sd), None)
    if prefix is None:
        raise OfficialCheckpointError(
            f"{_describe(source)} holds no OpenCLIP vision tower (no 'visual.conv1.weight', "
            "'vit_model.model.visual.conv1.weight' or 'video_tokenizer.vit_model.model.visual."
            "conv1.weight'); expected the CLIP file open_clip_pytorch_model.bin", missing=["visual.conv1.weight"])
    problems = _Problems()
    _check_vit(sd, problems, config, prefix)  # (the CLIP file itself: prefix "", nothing else allowed)
    problems.raise_if_any(f"OpenCLIP ViT ({config.hidden_size} wide, {config.num_hidden_layers} blocks)", source)
    hf = openclip_to_clip_vision({k: v for k, v in _sub(sd, prefix + "visual.").items()})
    vision = _build(lambda: CLIPVisionModel(config), device)
    _assign(vision, hf, device, dtype or torch.float32)
    return FrozenViT(vision, resize=True).eval()  # official preprocessing: any size -> 224


# ----------------------------------------------------------------------------- the tokenizer
def expected_tokenizer_shapes(config=None) -> dict[str, tuple]:
    from .tokenizer import DivotTokenizer, TokenizerConfig
    with torch.device("meta"):
        return _shapes(DivotTokenizer(config or TokenizerConfig.full()))


def _check_tokenizer(sd: Mapping[str, Any], problems: _Problems, config, vit_config,
                     outer: str = "") -> None:
    """Tokenizer keys; ``vit_model.*`` may be absent or, if present, must be the whole ViT."""
    own = {k: v for k, v in sd.items() if not k.startswith("vit_model.")}
    problems.compare(expected_tokenizer_shapes(config), own, outer)
    vit = {k: v for k, v in sd.items() if k.startswith("vit_model.")}
    if vit:
        _check_vit(vit, problems, vit_config, "vit_model.model.", outer)
        problems.unexpected += [outer + k for k in vit if not k.startswith("vit_model.model.")]


def load_tokenizer(source: PathLike | StateDict, config=None, *, device=None, dtype=None,
                   prefix: str = "", vit_config=None):
    """The Divot tokenizer (:class:`~divot_mini.tokenizer.DivotTokenizer`, default the official
    configuration) from ``Divot_tokenizer.bin`` or a state dict in the official names.

    ``prefix="video_tokenizer."`` reads the tokenizer a de-tokenizer checkpoint carries (keys
    outside the prefix are then ignored). ``vit_model.*`` keys, if present, are checked against
    ``vit_config`` (default ViT-H/14) and ignored: load the ViT with :func:`load_vit`.
    """
    from .tokenizer import DivotTokenizer, TokenizerConfig
    config = config or TokenizerConfig.full()
    device = _device(device)
    src = _resolve_file(source) if not isinstance(source, Mapping) else source
    sd = read_state_dict(src, role="Divot tokenizer (Divot_tokenizer.bin)", device=device,
                         keep=lambda k: k.startswith(prefix) and not k.startswith(prefix + "vit_model."))
    if prefix:
        sd = _sub(sd, prefix)
        if not sd:
            raise OfficialCheckpointError(f"{_describe(source)} has no keys under {prefix!r}")
    problems = _Problems()
    _check_tokenizer(sd, problems, config, vit_config, prefix)
    problems.raise_if_any("tokenizer", source)
    own = {k: v for k, v in sd.items() if not k.startswith("vit_model.")}
    tok = _build(lambda: DivotTokenizer(config), device)
    return _assign(tok, own, device, dtype or torch.float32)


# ----------------------------------------------------------------------------- the VAE
def ldm_vae_shapes(vae_config: Mapping | None = None) -> dict[str, tuple]:
    """Keys and shapes of the LDM ``AutoencoderKL`` (``first_stage_model.*`` without the prefix)
    that corresponds to a diffusers ``AutoencoderKL`` configuration (default SD KL-f8)."""
    from .vae import sd_vae_config
    c = dict(vae_config or sd_vae_config())
    outs = list(c["block_out_channels"])
    ch, nrb, z = outs[0], c.get("layers_per_block", 2), c.get("latent_channels", 4)
    cin, cout = c.get("in_channels", 3), c.get("out_channels", 3)
    if not (c.get("mid_block_add_attention", True) and c.get("use_quant_conv", True)
            and c.get("use_post_quant_conv", True)) or any(o % ch for o in outs):
        raise ValueError("not an LDM-style VAE configuration (needs mid-block attention, quant "
                         "convs and channels that are multiples of the first level's)")
    s: dict[str, tuple] = {}

    def conv(name, o, i, k):
        s[name + ".weight"], s[name + ".bias"] = (o, i, k, k), (o,)

    def norm(name, n):
        s[name + ".weight"], s[name + ".bias"] = (n,), (n,)

    def res(name, i, o):
        norm(name + ".norm1", i), conv(name + ".conv1", o, i, 3)
        norm(name + ".norm2", o), conv(name + ".conv2", o, o, 3)
        if i != o:
            conv(name + ".nin_shortcut", o, i, 1)

    def mid(name, n):
        res(name + ".block_1", n, n)
        norm(name + ".attn_1.norm", n)
        for q in ("q", "k", "v", "proj_out"):
            conv(f"{name}.attn_1.{q}", n, n, 1)
        res(name + ".block_2", n, n)

    conv("encoder.conv_in", ch, cin, 3)
    n = ch
    for i, o in enumerate(outs):
        for j in range(nrb):
            res(f"encoder.down.{i}.block.{j}", n, o)
            n = o
        if i != len(outs) - 1:
            conv(f"encoder.down.{i}.downsample.conv", n, n, 3)
    mid("encoder.mid", n)
    norm("encoder.norm_out", n), conv("encoder.conv_out", 2 * z, n, 3)
    n = outs[-1]
    conv("decoder.conv_in", n, z, 3)
    mid("decoder.mid", n)
    for i in reversed(range(len(outs))):
        for j in range(nrb + 1):
            res(f"decoder.up.{i}.block.{j}", n, outs[i])
            n = outs[i]
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", n, n, 3)
    norm("decoder.norm_out", n), conv("decoder.conv_out", cout, n, 3)
    conv("quant_conv", 2 * z, 2 * z, 1), conv("post_quant_conv", z, z, 1)
    return s


def convert_vae(ldm: StateDict, vae_config: Mapping | None = None) -> dict[str, torch.Tensor]:
    """LDM VAE keys (with or without ``first_stage_model.``) -> diffusers ``AutoencoderKL`` keys,
    by diffusers' own ``convert_ldm_vae_checkpoint`` (it also reshapes the 1x1-conv attention
    projections into linear weights)."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from .vae import sd_vae_config
    return convert_ldm_vae_checkpoint(dict(ldm), dict(vae_config or sd_vae_config()))


# ----------------------------------------------------------------------------- the de-tokenizer
def official_schedule_buffers(timesteps: int = 1000, linear_start: float = 0.00085,
                              linear_end: float = 0.012) -> dict[str, torch.Tensor]:
    """The 12 buffers DynamiCrafter's ``register_schedule`` computes (and its state dict saves):
    betas linear in sqrt(beta), rescaled to zero terminal SNR; computed in float64, stored float32."""
    betas = np.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps, dtype=np.float64) ** 2
    sq = np.sqrt(np.cumprod(1.0 - betas))
    s0, sT = sq[0], sq[-1]
    sq = (sq - sT) * s0 / (s0 - sT)
    abar = sq ** 2
    betas = 1 - np.concatenate([abar[:1], abar[1:] / abar[:-1]])
    a = np.cumprod(1.0 - betas)
    prev = np.append(1.0, a[:-1])
    with np.errstate(divide="ignore"):
        post_var = betas * (1.0 - prev) / (1.0 - a)
        out = {"betas": betas, "alphas_cumprod": a, "alphas_cumprod_prev": prev,
               "sqrt_alphas_cumprod": np.sqrt(a), "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - a),
               "log_one_minus_alphas_cumprod": np.log(1.0 - a),
               "sqrt_recip_alphas_cumprod": np.zeros_like(a),  # official: zeros (v-prediction)
               "sqrt_recipm1_alphas_cumprod": np.zeros_like(a),
               "posterior_variance": post_var,
               "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
               "posterior_mean_coef1": betas * np.sqrt(prev) / (1.0 - a),
               "posterior_mean_coef2": (1.0 - prev) * np.sqrt(1.0 - betas) / (1.0 - a)}
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in out.items()}


def _build_detokenizer(config, vae_config):
    from diffusers import AutoencoderKL

    from .detokenizer import DivotDetokenizer
    return DivotDetokenizer(config, vae=AutoencoderKL(**vae_config))


def expected_detokenizer_shapes(config=None, vae_config=None) -> dict[str, tuple]:
    """The official key names and shapes of a de-tokenizer checkpoint (without the optional
    ``video_tokenizer.*`` and schedule buffers): ``image_proj_model.*``, ``diffusion_model.*`` as
    the project's modules name them, ``first_stage_model.*`` in LDM names."""
    from .detokenizer import DetokenizerConfig
    from .vae import VAE_CONFIGS
    config = config or DetokenizerConfig.full()
    vae_config = dict(vae_config or VAE_CONFIGS[config.vae])
    with torch.device("meta"):
        det = _build_detokenizer(config, vae_config)
    shapes = {k: v for k, v in _shapes(det).items() if not k.startswith("first_stage_model.")}
    shapes.update({"first_stage_model." + k: v for k, v in ldm_vae_shapes(vae_config).items()})
    return shapes


def load_detokenizer(source: PathLike | StateDict, config=None, *, vae_config: Mapping | None = None,
                     tokenizer_config=None, vit_config=None, device=None, dtype=None,
                     check_schedule: bool = True):
    """The de-tokenizer (:class:`~divot_mini.detokenizer.DivotDetokenizer`, default the official
    configuration) from ``Divot_detokenizer_stage{1,2}.bin`` -- the whole DynamiCrafter state dict
    -- or a state dict in the official names.

    ``first_stage_model.*`` (LDM names) become diffusers ``AutoencoderKL`` weights (``vae_config``:
    its diffusers arguments, default that of ``config.vae``). ``video_tokenizer.*`` (if present) is
    checked against ``tokenizer_config`` and ignored; the schedule buffers (if present) are
    compared with :func:`official_schedule_buffers` when ``check_schedule`` and ignored. The
    official de-tokenizer runs in float32 (the default ``dtype``).
    """
    from .detokenizer import DetokenizerConfig
    from .vae import VAE_CONFIGS
    config = config or DetokenizerConfig.full()
    vae_config = dict(vae_config or VAE_CONFIGS[config.vae])
    device = _device(device)
    src = _resolve_file(source) if not isinstance(source, Mapping) else source
    sd = read_state_dict(src, role="Divot de-tokenizer (Divot_detokenizer_stage1/2.bin)", device=device,
                         keep=lambda k: not k.startswith("video_tokenizer."))

    problems = _Problems()
    video_tok = _sub(sd, "video_tokenizer.")
    if video_tok:
        _check_tokenizer(video_tok, problems, tokenizer_config, vit_config, "video_tokenizer.")
    schedule = {k: sd[k] for k in SCHEDULE_BUFFERS if k in sd}
    ref = official_schedule_buffers()
    for k, v in schedule.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            problems.mismatched.append((k, tuple(v.shape), tuple(ref[k].shape)))
        elif check_schedule and not v.is_meta and not torch.allclose(v.float(), r := ref[k].to(v.device),
                                                                     rtol=1e-4, atol=1e-6):
            problems.other.append(f"schedule buffer {k!r} differs from the official noise schedule "
                                  f"(max abs difference {(v.float() - r).abs().max().item():.3g}); "
                                  "the sampler uses the official one")
    own = {k: v for k, v in sd.items() if not k.startswith("video_tokenizer.") and k not in SCHEDULE_BUFFERS}
    problems.compare(expected_detokenizer_shapes(config, vae_config), own)
    problems.raise_if_any("de-tokenizer (DynamiCrafter)", source)

    weights = {k: v for k, v in own.items() if not k.startswith("first_stage_model.")}
    vae = convert_vae(_sub(own, "first_stage_model."), vae_config)
    weights.update({"first_stage_model." + k: v for k, v in vae.items()})
    det = _build(lambda: _build_detokenizer(config, vae_config), device)
    return _assign(det, weights, device, dtype or torch.float32)


# ----------------------------------------------------------------------------- the LLM and agent
def read_hf_folder(folder: PathLike, *, device=None, dtype=None) -> dict[str, torch.Tensor]:
    """All weights of a Hugging Face model folder (``model*.safetensors`` or
    ``pytorch_model*.bin``, sharded or not), each tensor read and moved to ``device``/``dtype`` on
    its own (safetensors straight to the device; ``.bin`` memory-mapped, ``weights_only``)."""
    folder = Path(folder)
    device = _device(device)
    files = sorted(folder.glob("model*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not (folder / "config.json").is_file() or not files:
        raise _missing_file(folder / ("config.json" if not (folder / "config.json").is_file()
                                      else "model.safetensors"),
                            f"LLM folder {folder} (config.json + model*.safetensors or pytorch_model*.bin)")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":  # each tensor read straight onto the device
            out.update(_read_safetensors(f, device, dtype))
        else:
            out.update({k: _cast(v, device, dtype) for k, v in read_state_dict(f, role="LLM weights").items()})
    return out


_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32, "BOOL": torch.bool}


def _meta_like(sl, dtype) -> torch.Tensor:
    t = _ST_DTYPES.get(sl.get_dtype(), torch.float32)
    return torch.empty(sl.get_shape(), dtype=dtype if dtype is not None and t.is_floating_point else t,
                       device="meta")


def _llm_ignored(key: str) -> bool:
    return key.endswith("rotary_emb.inv_freq")


def _llm_config(source, config=None):
    """The LLM configuration: given, else the folder's ``config.json``, else Mistral-7B's."""
    from transformers import MistralConfig

    from .divot_llm import mistral_7b_config
    if config is not None:
        return config
    if isinstance(source, Mapping):
        return mistral_7b_config()
    folder = Path(source)
    if not (folder / "config.json").is_file():
        raise _missing_file(folder / "config.json", "LLM folder (llm/: config.json + weights)")
    return MistralConfig.from_pretrained(folder)


def load_llm(source: PathLike | StateDict, config=None, *, device=None, dtype=None):
    """The LLM (transformers ``MistralForCausalLM``) from a Hugging Face folder (``llm/``: its
    ``config.json`` decides the configuration) or a state dict in transformers' names (``config``
    default :func:`~divot_mini.divot_llm.mistral_7b_config`). Strict like every loader here."""
    from transformers import MistralForCausalLM
    device = _device(device)
    dtype = dtype or torch.float32
    config = _llm_config(source, config)
    if isinstance(source, Mapping):
        sd = read_state_dict(source)
    else:
        sd = read_hf_folder(source, device=device, dtype=dtype)
    sd = {k: v for k, v in sd.items() if not _llm_ignored(k)}
    with torch.device("meta"):
        expected = _shapes(MistralForCausalLM(config))
    problems = _Problems()
    problems.compare(expected, sd)
    problems.raise_if_any(f"LLM (MistralForCausalLM, {config.num_hidden_layers} layers x "
                          f"{config.hidden_size}, vocabulary {config.vocab_size})", source)
    llm = _build(lambda: MistralForCausalLM(config), device)
    return _assign(llm, sd, device, dtype)


def expected_agent_shapes(hidden_size: int = 4096, token_dim: int = 256, num_gmm_kernel: int = 16
                          ) -> dict[str, tuple]:
    """``input_resampler.*`` and ``output_resampler.*`` (``agent/pytorch_model.bin``)."""
    from .gmm_head import GMMHead
    from .projection import ProjectionLayer
    with torch.device("meta"):
        heads = nn.ModuleDict({"input_resampler": ProjectionLayer(token_dim, hidden_size),
                               "output_resampler": GMMHead(hidden_size, token_dim, num_gmm_kernel)})
    return _shapes(heads)


def load_agent(source: PathLike | StateDict, llm, *, tokenizer=None, token_dim: int = 256,
               num_tokens: int = 64, num_gmm_kernel: int = 16, frame_token_ids: Sequence[int] | None = None,
               boi_token_id: int | None = None, eoi_token_id: int | None = None, llm_config=None,
               device=None, dtype=None):
    """Divot-LLM (:class:`~divot_mini.divot_llm.DivotLLM`) from the agent heads
    (``agent/pytorch_model.bin``: ``input_resampler.*``, ``output_resampler.*``) and the LLM
    (``llm``: the ``llm/`` folder, a state dict in transformers' names, or a loaded
    ``MistralForCausalLM``). The frame-token ids come from ``tokenizer`` (the release's text
    tokenizer) if given, else from the explicit arguments, else the official-order defaults of
    :meth:`DivotLLM.full`. The official scripts run it in float16 (``dtype``; default float32).
    """
    from transformers import MistralForCausalLM

    from . import text_tokenizer as tt
    from .divot_llm import DivotLLM
    device = _device(device)
    src = _resolve_file(source) if not isinstance(source, Mapping) else source
    heads = read_state_dict(src, role="Divot-LLM agent heads (agent/pytorch_model.bin)", device=device)
    cfg = llm.config if isinstance(llm, MistralForCausalLM) else _llm_config(llm, llm_config)
    problems = _Problems()  # the heads first: a mismatch is reported before 14 GB are read
    problems.compare(expected_agent_shapes(cfg.hidden_size, token_dim, num_gmm_kernel), heads)
    problems.raise_if_any(f"agent heads (token width {token_dim}, LLM width {cfg.hidden_size}, "
                          f"GMM k={num_gmm_kernel})", source)
    if not isinstance(llm, MistralForCausalLM):
        llm = load_llm(llm, cfg, device=device, dtype=dtype)
    dtype = dtype or llm.dtype
    if tokenizer is not None:
        frame_token_ids = tt.frame_token_ids(tokenizer, num_tokens)
        boi_token_id = tt.special_token_id(tokenizer, tt.BOI_TOKEN)
        eoi_token_id = tt.special_token_id(tokenizer, tt.EOI_TOKEN)
    elif frame_token_ids is None:
        frame_token_ids = range(32006, 32006 + num_tokens)  # DivotLLM.full()'s assumed order
    boi_token_id = 32004 if boi_token_id is None else boi_token_id
    eoi_token_id = 32005 if eoi_token_id is None else eoi_token_id
    with torch.device("meta"):  # the LLM built here is thrown away: the loaded one replaces it
        model = DivotLLM(cfg, token_dim, num_tokens, list(frame_token_ids), boi_token_id, eoi_token_id,
                         head="gmm", num_gmm_kernel=num_gmm_kernel)
    model.frame_token_ids = torch.tensor(list(frame_token_ids))  # a real (non-persistent) buffer
    model.llm = llm
    sd = {k: _cast(v, device, dtype) for k, v in heads.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if unexpected or any(not k.startswith("llm.") for k in missing):  # a bug here: heads were checked
        raise RuntimeError(f"agent heads did not load: missing {missing}, unexpected {unexpected}")
    if device.type != "meta":
        model.to(device)
    return model.eval()


def load_text_tokenizer(folder: PathLike, num_tokens: int = 64):
    """The LLM's text tokenizer (``cvlm_mistral_instruct_tokenizer/``) via ``AutoTokenizer``;
    checks that it has Divot's special tokens and ``num_tokens`` frame tokens."""
    from transformers import AutoTokenizer

    from . import text_tokenizer as tt
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing_file(folder, "text tokenizer folder")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:
        hint = ""
        if (folder / "tokenizer.model").is_file() and not (folder / "tokenizer.json").is_file():
            hint = (" -- the folder has only a SentencePiece tokenizer.model; converting it needs the "
                    "'sentencepiece' package (not a dependency of this project): install it, or "
                    "convert once elsewhere and save tokenizer.json into the folder")
        raise OfficialCheckpointError(f"cannot load the text tokenizer from {folder}: {err}{hint}") from err
    for t in (tt.VID_BOI_TOKEN, tt.VID_EOI_TOKEN, tt.BOI_TOKEN, tt.EOI_TOKEN):
        tt.special_token_id(tok, t)  # ValueError if missing
    tt.frame_token_ids(tok, num_tokens)
    return tok


# ----------------------------------------------------------------------------- the whole release
@dataclass
class ReleaseConfigs:
    """The configurations a release is loaded with: the official ones by default (a reduced set
    loads the synthetic test releases of :mod:`divot_mini.official_synthetic`)."""

    tokenizer: Any = None        # TokenizerConfig (default .full())
    vit: Any = None              # CLIPVisionConfig (default vit_h14_config())
    detokenizer: Any = None      # DetokenizerConfig (default .full())
    vae: Mapping | None = None   # diffusers AutoencoderKL arguments (default sd_vae_config())
    token_dim: int = 256
    num_tokens: int = 64
    num_gmm_kernel: int = 16


@dataclass
class DivotRelease:
    """What :func:`load_release` loaded (``None``/absent: not asked for)."""

    root: Path
    text_tokenizer: Any = None
    vit: Any = None
    tokenizer: Any = None
    detokenizers: dict = field(default_factory=dict)   # "stage1" / "stage2" -> DivotDetokenizer
    agents: dict = field(default_factory=dict)         # "sft_gen" / "sft_comp" / "pretrain" -> DivotLLM


def release_components(components: Iterable[str]) -> list[str]:
    """Task names (``TASKS``) and component names (``COMPONENTS``) -> component names, in order."""
    out: list[str] = []
    for c in components:
        if c in TASKS:
            out += [x for x in TASKS[c] if x not in out]
        elif c in COMPONENTS:
            out += [c] if c not in out else []
        else:
            raise ValueError(f"unknown component {c!r}; choose from {sorted(TASKS)} or {sorted(COMPONENTS)}")
    return out


def check_release(checkpoint_dir: PathLike, components: Iterable[str] = tuple(TASKS)) -> None:
    """Raise one :class:`OfficialFileNotFoundError` naming every file the components need that is
    missing (``X.bin`` may be ``X.safetensors``), with the expected layout."""
    root = Path(checkpoint_dir)
    missing = []
    for c in release_components(components):
        for rel in COMPONENTS[c]:
            p = root / rel
            if rel.endswith(LLM_DIR + "/"):
                ok = (p / "config.json").is_file() and bool(
                    list(p.glob("model*.safetensors")) or list(p.glob("pytorch_model*.bin")))
            elif rel.endswith("/"):
                ok = p.is_dir()
            else:
                ok = _resolve_file(p).is_file()
            if not ok:
                missing.append(f"{rel}  (needed by {c})")
    if missing:
        raise OfficialFileNotFoundError(
            f"{len(missing)} file(s)/folder(s) of the official release missing under {root}:\n  "
            + "\n  ".join(missing) + f"\nExpected layout:\n{RELEASE_LAYOUT}")


def load_release(checkpoint_dir: PathLike, components: Iterable[str] = tuple(TASKS), *,
                 device=None, dtype=None, detokenizer_dtype=torch.float32,
                 configs: ReleaseConfigs | None = None) -> DivotRelease:
    """Load the components (task names of ``TASKS`` and/or names of ``COMPONENTS``) of an official
    ``pretrained/`` folder onto ``device``. ``dtype`` applies to the ViT, tokenizer and Divot-LLM
    (the official comprehension/generation scripts use float16; reconstruction float32), the
    de-tokenizers get ``detokenizer_dtype`` (official: float32). Every needed file is checked to
    exist before anything is read."""
    root = Path(checkpoint_dir)
    comps = release_components(components)
    check_release(root, comps)
    c = configs or ReleaseConfigs()
    rel = DivotRelease(root=root)
    if "text_tokenizer" in comps:
        rel.text_tokenizer = load_text_tokenizer(root / TEXT_TOKENIZER_DIR, c.num_tokens)
    if "vit" in comps:
        rel.vit = load_vit(root / CLIP_FILE, c.vit, device=device, dtype=dtype)
    if "tokenizer" in comps:
        rel.tokenizer = load_tokenizer(root / TOKENIZER_FILE, c.tokenizer, device=device, dtype=dtype,
                                       vit_config=c.vit)
    for stage, path in DETOKENIZER_FILES.items():
        if f"detokenizer_{stage}" in comps:
            rel.detokenizers[stage] = load_detokenizer(
                root / path, c.detokenizer, vae_config=c.vae, tokenizer_config=c.tokenizer,
                vit_config=c.vit, device=device, dtype=detokenizer_dtype)
    for name, d in AGENT_DIRS.items():
        if f"agent_{name}" in comps:
            rel.agents[name] = load_agent(root / d / AGENT_FILE, root / d / LLM_DIR,
                                          tokenizer=rel.text_tokenizer, token_dim=c.token_dim,
                                          num_tokens=c.num_tokens, num_gmm_kernel=c.num_gmm_kernel,
                                          device=device, dtype=dtype)
    return rel


# ----------------------------------------------------------------------------- parameter counts
def parameter_report(include_mini: bool = True) -> list[dict]:
    """Every FULL component built on the meta device (no memory): parameter counts next to the
    official numbers, and (``include_mini``) the course's mini counterparts."""
    from transformers import CLIPVisionModel

    from . import text_tokenizer as tt
    from .detokenizer import DetokenizerConfig
    from .divot_llm import DivotLLM
    from .frozen_vit import tiny_clip_config, vit_h14_config
    from .tokenizer import DivotTokenizer, TokenizerConfig
    from .vae import VAE_CONFIGS

    def count(m: nn.Module, prefix: str = "") -> int:
        return sum(p.numel() for n, p in m.named_parameters() if n.startswith(prefix))

    def heads(m) -> int:
        return count(m.input_resampler) + count(m.output_resampler)

    with torch.device("meta"):
        full = {"tokenizer": DivotTokenizer(TokenizerConfig.full()),
                "vit": CLIPVisionModel(vit_h14_config()),
                "detokenizer": _build_detokenizer(DetokenizerConfig.full(), VAE_CONFIGS["sd_kl_f8"]),
                "agent": DivotLLM.full()}
        mini = {}
        if include_mini:
            text = tt.build_text_tokenizer()
            mini = {"tokenizer": DivotTokenizer(TokenizerConfig.mini()),
                    "vit": CLIPVisionModel(tiny_clip_config().vision_config),
                    "detokenizer": _build_detokenizer(DetokenizerConfig.mini(), VAE_CONFIGS["tiny_kl_f4"]),
                    "agent": DivotLLM.mini(text)}
    proj = vit_h14_config().hidden_size * vit_h14_config().projection_dim
    rows = [
        ("tokenizer", lambda s: count(s["tokenizer"]), "temporal encoder + ST transformer + resampler; no ViT"),
        ("vit_visual", lambda s: count(s["vit"]),
         f"CLIPVisionModel has no visual.proj ({proj:,} parameters, unused by Divot)"),
        ("diffusion_model", lambda s: count(s["detokenizer"], "diffusion_model."), "the video UNet"),
        ("first_stage_model", lambda s: count(s["detokenizer"], "first_stage_model."),
         "VAE (encoder included)"),
        ("image_proj_model", lambda s: count(s["detokenizer"], "image_proj_model."),
         "tokens -> UNet context resampler"),
        ("agent_heads", lambda s: heads(s["agent"]), "input_resampler + output_resampler (GMM)"),
        ("llm", lambda s: count(s["agent"].llm), "Mistral-7B, vocabulary 32000 + 262"),
    ]
    out = []
    for name, fn, note in rows:
        ours = fn(full)
        official = OFFICIAL_PARAMETERS[name]
        expected = official - proj if name == "vit_visual" else official
        row = {"component": name, "full": ours, "official": official, "matches": ours == expected,
               "note": note}
        if include_mini:
            row["mini"] = fn(mini)
        out.append(row)
    return out


def format_parameter_report(rows: list[dict] | None = None) -> str:
    rows = rows if rows is not None else parameter_report()
    has_mini = "mini" in rows[0]
    head = f"{'component':<18}" + (f"{'mini':>14}" if has_mini else "") + f"{'full':>16}{'official':>16}  ok  note"
    lines = [head]
    for r in rows:
        lines.append(f"{r['component']:<18}" + (f"{r['mini']:>14,}" if has_mini else "")
                     + f"{r['full']:>16,}{r['official']:>16,}  {'yes' if r['matches'] else 'NO '} {r['note']}")
    return "\n".join(lines)
