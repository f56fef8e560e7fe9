"""The assembled Divot system behind one switch: ``load_divot(scale="mini" | "full")``.

What the notebooks build piece by piece, put together the way a user calls it::

    divot = divot_mini.load_divot("mini")                       # the course's trained weights
    divot = divot_mini.load_divot("full", "pretrained/", "cuda", torch.float16)   # official release
    tokens = divot.tokenize(video)            # [B, 16, 3, H, W] in [-1, 1] -> [B, N, d]
    clip = divot.detokenize(tokens)           # DDIM (+ CFG) through the diffusion de-tokenizer
    divot.describe(video); divot.answer(video, "what colour is the shape?")
    clip = divot.generate("a red circle moves left")            # or a list of prompts -> a batch
    story = divot.story("generate a story about a blue square")

Mini and full are the same classes; only the configurations, the weights and the sampler defaults
differ (the mini de-tokenizer decodes well in 10 trailing DDIM steps without guidance, the official
one uses 50 steps, CFG 7.5, rescale 0.7, eta 1).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import data
from . import text_tokenizer as tt
from .data import tokenizer_frames
from .generation_heads import sample_kwargs


@dataclass(frozen=True)
class DecodeSettings:
    """How tokens are decoded to clips (see :meth:`detokenizer.DivotDetokenizer.sample`)."""

    steps: int
    guidance_scale: float
    guidance_rescale: float
    eta: float
    spacing: str
    frames: int = 16
    size: int = 32


# The official reconstruction/generation scripts (DynamiCrafter defaults, 256 px).
FULL_DECODE = DecodeSettings(steps=50, guidance_scale=7.5, guidance_rescale=0.7, eta=1.0,
                             spacing="official", size=256)
# What the course measures the mini de-tokenizer with (tokenizer_evaluation.decode_tokens).
MINI_DECODE = DecodeSettings(steps=10, guidance_scale=1.0, guidance_rescale=0.0, eta=0.0,
                             spacing="trailing", size=32)

# Instruction wording: the course's word-level tokenizer is lower-case; the official prompts are not.
PROMPTS = {
    "mini": {"describe": tt.DESCRIBE_VIDEO, "generate": tt.GENERATE_VIDEO},
    "full": {"describe": "What does this video describe?", "generate": "Generate a video of {caption}"},
}


# What the mini Divot-LLM was taught to read (Moving Shapes' questions and instructions). Other
# requests still get an answer, with an OffScriptWarning: a small model trained on one dataset
# continues an unfamiliar prompt with whatever its data made likely, often a loop.
MINI_QUESTIONS = (tt.DESCRIBE_VIDEO, *data.QUESTIONS.values())
MINI_STORY = re.compile(rf"generate a story about a ({'|'.join(data.COLOURS)}) ({'|'.join(data.SHAPES)})")
# Longest answer the mini model was taught: a caption ("a red circle moves left") + </s>.
MINI_MAX_ANSWER_TOKENS = 12
# The official comprehension script's limit on new tokens.
FULL_MAX_ANSWER_TOKENS = 256


class OffScriptWarning(UserWarning):
    """The request is outside what the (mini) model was trained on; its output is unreliable."""


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


class Divot:
    """Tokenizer + de-tokenizer + Divot-LLM with the user-facing verbs.

    ``vit``/``tokenizer``/``detokenizer`` are needed for tokenize/detokenize; ``llm`` (a
    :class:`divot_llm.DivotLLM`) and ``text_tokenizer`` for describe/answer/generate/story.
    The official release has one LLM per task and two de-tokenizer stages: ``comprehension_llm``
    (default ``llm``) answers questions, ``reconstruction_detokenizer`` (default ``detokenizer``)
    decodes :meth:`reconstruct` (official: stage 1; generation decodes with stage 2).
    """

    def __init__(self, vit, tokenizer, detokenizer=None, llm=None, text_tokenizer=None, *,
                 scale: str = "mini", decode: DecodeSettings | None = None, comprehension_llm=None,
                 reconstruction_detokenizer=None):
        if scale not in PROMPTS:
            raise ValueError(f"scale must be 'mini' or 'full', got {scale!r}")
        self.vit, self.tokenizer, self.detokenizer = vit, tokenizer, detokenizer
        self.reconstruction_detokenizer = reconstruction_detokenizer or detokenizer
        self.llm, self.comprehension_llm = llm, comprehension_llm or llm
        self.text_tokenizer, self.scale = text_tokenizer, scale
        self.decode = decode or (FULL_DECODE if scale == "full" else MINI_DECODE)
        self.prompts = PROMPTS[scale]

    def __repr__(self) -> str:
        have = [n for n in ("vit", "tokenizer", "detokenizer", "llm", "text_tokenizer") if getattr(self, n) is not None]
        return f"Divot(scale={self.scale!r}, loaded={have}, decode={self.decode})"

    # ------------------------------------------------------------------ helpers
    def _need(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise RuntimeError(f"this Divot was loaded without {', '.join(missing)}; load_divot(...) "
                               "with the components this call needs")

    @property
    def device(self) -> torch.device:
        return next(self.tokenizer.parameters()).device

    def _video(self, video: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Accept one clip [16, 3, H, W] or a batch [B, 16, 3, H, W]: floats in [-1, 1], or uint8
        pixels 0..255 (converted with x / 127.5 - 1, as video files are usually read)."""
        if not torch.is_tensor(video):
            raise TypeError(f"video must be a tensor [B, 16, 3, H, W] in [-1, 1], got {type(video).__name__}")
        if video.dtype == torch.uint8:
            video = video.float() / 127.5 - 1
        elif not video.is_floating_point():
            raise TypeError(f"video has dtype {video.dtype}: pass floats in [-1, 1] or uint8 pixels 0..255 "
                            "(e.g. video.to(torch.uint8), or video.float() / 127.5 - 1)")
        single = video.ndim == 4
        if single:
            video = video[None]
        if video.ndim != 5 or video.shape[1] != 16 or video.shape[2] != 3:
            raise ValueError(f"video must be [16, 3, H, W] or [B, 16, 3, H, W] (16 frames, RGB), "
                             f"got {tuple(video.shape)}")
        if video.min() < -1.01 or video.max() > 1.01:
            raise ValueError(f"video values must lie in [-1, 1], got [{video.min():.2f}, {video.max():.2f}]"
                             " (map 0..255 pixels with x / 127.5 - 1)")
        return video, single

    # ------------------------------------------------------------------ tokens <-> video
    @torch.no_grad()
    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """Clip(s) [(B,) 16, 3, H, W] in [-1, 1] -> Divot tokens [(B,) N, d] (from 5 of the 16 frames)."""
        self._need("vit", "tokenizer")
        video, single = self._video(video)
        vit_param = next(self.vit.parameters())
        frames = tokenizer_frames(video).to(vit_param.device, vit_param.dtype)
        tokens = self.tokenizer(self.vit(frames).to(next(self.tokenizer.parameters()).dtype))
        return tokens[0] if single else tokens

    @torch.no_grad()
    def uncond_tokens(self, n: int = 1) -> torch.Tensor:
        """The unconditional input of CFG: tokens of an all-zeros (mid-grey) video, as official."""
        s = self.decode
        zeros = torch.zeros(1, s.frames, 3, s.size, s.size, device=self.device)
        return self.tokenize(zeros).expand(n, -1, -1)

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor, seed: int = 0, *, _detokenizer=None, **settings) -> torch.Tensor:
        """Tokens [(B,) N, d] -> clip(s) [(B,) 16, 3, size, size] in [-1, 1]; ``settings`` override
        :class:`DecodeSettings` fields (steps, guidance_scale, ...)."""
        module = _detokenizer or self.detokenizer
        if module is None:
            self._need("detokenizer")
        bad = set(settings) - set(DecodeSettings.__dataclass_fields__)
        if bad:
            raise TypeError(f"unknown decode setting(s) {sorted(bad)}; choose from "
                            f"{sorted(DecodeSettings.__dataclass_fields__)}")
        s = replace(self.decode, **settings)
        if tokens.ndim not in (2, 3):
            raise ValueError(f"tokens must be [N, d] or [B, N, d], got {tuple(tokens.shape)}")
        single = tokens.ndim == 2
        tokens = tokens[None] if single else tokens
        det = next(module.parameters())
        tokens = tokens.to(det.device, det.dtype)
        unc = self.uncond_tokens(len(tokens)).to(det.dtype) if s.guidance_scale != 1.0 else None
        clip = module.sample(tokens, unc, frames=s.frames, size=s.size, steps=s.steps,
                                       guidance_scale=s.guidance_scale, guidance_rescale=s.guidance_rescale,
                                       eta=s.eta, generator=torch.Generator().manual_seed(seed),
                                       spacing=s.spacing).clamp(-1, 1)
        return clip[0] if single else clip

    def reconstruct(self, video: torch.Tensor, seed: int = 0, **settings) -> torch.Tensor:
        """tokenize then decode (with the reconstruction de-tokenizer)."""
        return self.detokenize(self.tokenize(video), seed, _detokenizer=self.reconstruction_detokenizer,
                               **settings)

    # ------------------------------------------------------------------ the LLM
    def _text(self, ids: torch.Tensor) -> str:
        if self.scale == "mini":
            return tt.decode_words(self.text_tokenizer, ids)
        return self.text_tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _check_words(self, text: str, what: str) -> None:
        """Mini: every word of the user's ``text`` must be in the course vocabulary (named if not)."""
        if self.scale != "mini":
            return
        unknown = tt.unknown_words(self.text_tokenizer, text)
        if unknown:
            raise ValueError(
                f"{what} {text!r} has words the mini model does not know: {unknown}. It knows the "
                f"Moving Shapes words: shapes {list(data.SHAPES)}, colours {list(data.COLOURS)}, "
                f"motions {list(data.MOTIONS)} (e.g. 'a red circle moves left'); the full-size model "
                "reads any English text")

    def _off_script(self, text: str, taught: str) -> None:
        warnings.warn(f"{text!r} is outside what the mini model was taught ({taught}); expect an "
                      "unreliable answer", OffScriptWarning, stacklevel=3)

    @torch.no_grad()
    def answer(self, video: torch.Tensor, question: str, max_new_tokens: int | None = None,
               **generate_kwargs):
        """The Divot-LLM's answer to ``question`` about the clip(s) (greedy unless told otherwise).
        One clip -> a string; a batch -> a list of strings.

        Writing stops at ``</s>`` or after ``max_new_tokens`` (default: mini 12, the longest answer
        it was taught; full 256, as the official script). On mini, a question other than the ones it
        was taught (:data:`MINI_QUESTIONS`) gets an :class:`OffScriptWarning`.
        """
        from .divot_llm import comprehension_example

        self._need("comprehension_llm", "text_tokenizer", "vit", "tokenizer")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        self._check_words(question, "the question")
        if self.scale == "mini" and _normalised(question) not in MINI_QUESTIONS:
            self._off_script(question, f"questions {list(MINI_QUESTIONS)}")
        if max_new_tokens is None:
            max_new_tokens = MINI_MAX_ANSWER_TOKENS if self.scale == "mini" else FULL_MAX_ANSWER_TOKENS
        video, single = self._video(video)
        llm = self.comprehension_llm
        tokens = self.tokenize(video)
        ids = comprehension_example(self.text_tokenizer, question, num_tokens=llm.num_tokens)["input_ids"]
        ids = torch.tensor([ids] * len(video), device=tokens.device)
        kw = {"do_sample": False, "max_new_tokens": max_new_tokens,
              "eos_token_id": self.text_tokenizer.eos_token_id,
              "pad_token_id": self.text_tokenizer.pad_token_id, **generate_kwargs}
        new = llm.generate_text(ids, attention_mask=torch.ones_like(ids), video_tokens=tokens[:, None], **kw)
        texts = [self._text(row) for row in new]
        return texts[0] if single else texts

    def describe(self, video: torch.Tensor, **generate_kwargs):
        """A caption of the clip(s): the official comprehension instruction."""
        return self.answer(video, self.prompts["describe"], **generate_kwargs)

    def _marker(self, token: str) -> int:
        return tt.special_token_id(self.text_tokenizer, token)

    @torch.no_grad()
    def generate(self, prompt: str | list[str], seed: int | list[int] = 0, var_scale: float = 0.1,
                 max_text_tokens: int = 16, **settings) -> torch.Tensor:
        """Text -> clip [16, 3, size, size]: the official generation. The model writes text up to
        ``<vid>``; then ``<frame>`` + N queries, one forward, a GMM sample per token (``var_scale``),
        and the de-tokenizer decodes the tokens.

        A list of prompts gives a batch [B, 16, 3, size, size]. ``seed`` is one per prompt (a list),
        or an int: prompt i then gets ``seed + i``. Prompts are written one after another, so a clip
        depends only on its own prompt and seed: ``generate([a, b], seed=[3, 7])[1]`` equals
        ``generate(b, seed=7)``.
        """
        self._need("llm", "text_tokenizer", "detokenizer")
        if isinstance(prompt, (list, tuple)):
            if not prompt:
                raise ValueError("prompt must be a non-empty string or a non-empty list of strings")
            seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed + i for i in range(len(prompt))]
            if len(seeds) != len(prompt):
                raise ValueError(f"got {len(prompt)} prompts but {len(seeds)} seeds; pass one seed "
                                 "per prompt, or an int")
            return torch.stack([self.generate(p, s, var_scale, max_text_tokens, **settings)
                                for p, s in zip(prompt, seeds)])
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string (a caption, e.g. 'a red circle moves left')")
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int for one prompt, got {type(seed).__name__}")
        self._check_words(prompt, "the prompt")
        instruction = self.prompts["generate"].format(caption=prompt.strip())
        ids = tt.instruction_ids(self.text_tokenizer, instruction)
        vid = self._marker(tt.VID_BOI_TOKEN)
        x = torch.tensor([ids], device=self.device)
        new = self.llm.generate_text(x, attention_mask=torch.ones_like(x), do_sample=False,
                                     max_new_tokens=max_text_tokens, eos_token_id=[vid, self.text_tokenizer.eos_token_id],
                                     pad_token_id=self.text_tokenizer.pad_token_id)[0].tolist()
        if vid not in new:
            raise RuntimeError(f"the model did not write <vid> within {max_text_tokens} tokens after "
                               f"the prompt {prompt!r}; it wrote {self._text(new)!r}")
        ids = ids + new[:new.index(vid) + 1]
        g = torch.Generator(device=self.device).manual_seed(seed)
        x = torch.tensor([ids], device=self.device)
        kw = sample_kwargs(self.llm.output_resampler, g, var_scale)
        tokens = self.llm.generate_video_tokens(x, torch.ones_like(x), **kw)[0]
        return self.detokenize(tokens, seed, **settings)

    @torch.no_grad()
    def story(self, instruction: str, seed: int = 0, var_scale: float = 0.1, max_clips: int = 4,
              max_new_tokens: int = 128, temperature: float = 1.0, **settings) -> list[tuple[str, object]]:
        """Interleaved text and clips for an instruction such as "generate a story about ...".

        The model writes text sampled at ``temperature`` with the seed (0 = greedy). The default 1
        samples the model's own distribution: greedy text takes the single likeliest motion each
        time and so repeats itself, which the trained stories never do. Whenever it opens a clip (``<vid>``), the clip is written the
        official way (``<frame>`` + N queries, one forward, a GMM sample per token) and stays in the
        sequence as that query block while writing goes on (:meth:`DivotLLM.generate_interleaved`,
        the layout the course's instruction tuning trains). Returns a list of ``("text", str)`` and
        ``("clip", tensor [16, 3, size, size])`` in order.
        """
        self._need("llm", "text_tokenizer", "detokenizer")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("instruction must be a non-empty string")
        self._check_words(instruction, "the instruction")
        if self.scale == "mini" and not MINI_STORY.fullmatch(_normalised(instruction)):
            self._off_script(instruction, "'generate a story about a {colour} {shape}'")
        tok = self.text_tokenizer
        g = torch.Generator(device=self.device).manual_seed(seed)
        parts = self.llm.generate_interleaved(
            tt.instruction_ids(tok, instruction.strip()), tok.eos_token_id, self._marker(tt.VID_BOI_TOKEN),
            self._marker(tt.VID_EOI_TOKEN), max_new_tokens=max_new_tokens, max_clips=max_clips,
            temperature=temperature, **sample_kwargs(self.llm.output_resampler, g, var_scale))
        out: list[tuple[str, object]] = []
        for kind, value in parts:
            if kind == "clip":
                n = sum(k == "clip" for k, _ in out) + 1
                out.append(("clip", self.detokenize(value, seed + n, **settings)))
            elif self._text(value):
                out.append(("text", self._text(value)))
        return out


# ----------------------------------------------------------------------------- loading
def _load_mini(device, dtype, verbose: bool) -> Divot:
    from .llm_training import load_divot_llm_sft
    from .tokenizer_training import load_trained

    pair = load_trained(verbose=verbose)
    llm, text_tok = load_divot_llm_sft(verbose=verbose)  # instruction-tuned: every task, stories too
    d = Divot(pair.vit, pair.tokenizer, pair.detokenizer, llm.eval(), text_tok, scale="mini")
    for m in (d.vit, d.tokenizer, d.detokenizer, d.llm):
        m.to(device=device, dtype=dtype)
    return d


def load_divot(scale: str = "mini", checkpoint_dir: str | Path | None = None, device=None, dtype=None,
               *, tasks=("reconstruction", "comprehension", "generation"), configs=None,
               decode: DecodeSettings | None = None, verbose: bool = True) -> Divot:
    """The whole system, mini or full, behind the same verbs.

    * ``scale="mini"``: the course's weights through the weights policy (shipped files, else the
      user cache, else trained now); ``checkpoint_dir`` must be None.
    * ``scale="full"``: the official release laid out as the official repository's ``pretrained/``
      (see :data:`official.RELEASE_LAYOUT`); ``tasks`` picks what to load (generation needs the
      stage-2 de-tokenizer and the generation LLM, comprehension the comprehension LLM). The ViT,
      tokenizer and LLMs get ``dtype`` (official: float16 on a GPU); the de-tokenizer stays float32.
      ``configs`` (an :class:`official.ReleaseConfigs`) is for reduced test releases.
    * ``decode`` replaces the scale's :class:`DecodeSettings` (sampler and output size).
    """
    if scale not in ("mini", "full"):
        raise ValueError(f"scale must be 'mini' or 'full', got {scale!r}")
    if isinstance(tasks, str):
        tasks = (tasks,)
    if scale == "mini":
        if checkpoint_dir is not None:
            raise ValueError("the mini system loads the course's own weights; checkpoint_dir is for "
                             "scale='full' (the official release)")
        d = _load_mini(device, dtype, verbose)
        d.decode = decode or d.decode
        return d
    if checkpoint_dir is None:
        from .official import RELEASE_LAYOUT
        raise ValueError("scale='full' needs checkpoint_dir: the folder laid out as the official "
                         f"repository's pretrained/:\n{RELEASE_LAYOUT}")
    from .official import load_release

    rel = load_release(checkpoint_dir, tasks, device=device, dtype=dtype, configs=configs)
    # official: reconstruction decodes with stage 1, generation with stage 2
    stage1, stage2 = rel.detokenizers.get("stage1"), rel.detokenizers.get("stage2")
    gen, comp = rel.agents.get("sft_gen"), rel.agents.get("sft_comp")
    return Divot(rel.vit, rel.tokenizer, stage2 or stage1, gen or comp, rel.text_tokenizer, scale="full",
                 comprehension_llm=comp or gen, reconstruction_detokenizer=stage1 or stage2, decode=decode)
