"""Scoring Divot-LLM: captions and answers read from Divot tokens, clips written from captions.

* **Captioning**: the model reads a clip's tokens, is asked ``what does this video describe?`` and
  answers greedily (``generate()`` with the frame-token forcing of :class:`divot_llm.FrameTokenForcing`).
  A caption is right when it names all three attributes right (:func:`parse_caption`); the exact
  sentence is reported too.
* **Question answering**: the three questions of :func:`data.questions`; an answer is right when it
  is exactly the attribute's word.
* **Text-to-video**: ``[INST] generate a video of {caption} [/INST]\\n<vid>`` -> one forward with the N
  query positions -> GMM sample per token -> the de-tokenizer decodes the clip (few-step DDIM,
  trailing spacing, as :func:`tokenizer_evaluation.decode_tokens`) -> the attribute probe reads it.

Everything is scored on clips the model never trained on: the test split and the held-out
attribute combinations (``data.HELD_OUT``), whose captions never occur in training.
"""
from __future__ import annotations

import torch

from . import text_tokenizer as tt
from .data import ATTRIBUTES, MovingShapes
from .data import caption as make_caption
from .divot_llm import DivotLLM, comprehension_example, generation_prompt
from .generation_heads import sample_kwargs

UNKNOWN = -1


# ----------------------------------------------------------------------------- parsing and scoring
def parse_caption(text: str) -> dict[str, int]:
    """The attribute indices a caption names; -1 where it names none or more than one value.

    ``"a red circle moves left"`` -> {"shape": 0, "colour": 0, "motion": 0}.
    """
    words = tt._words(text)
    out = {}
    for attr, values in ATTRIBUTES.items():
        named = [i for i, v in enumerate(values) if v in words]
        out[attr] = named[0] if len(named) == 1 else UNKNOWN
    return out


def caption_scores(texts: list[str], labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """``caption_all``: share of captions with all three attributes right; ``caption_{attr}``: per
    attribute; ``caption_exact``: word for word the dataset's caption."""
    n = len(texts)
    if n == 0 or any(len(labels[k]) != n for k in ATTRIBUTES):
        raise ValueError(f"need one label per caption and at least one caption; got {n} captions, "
                         f"labels of lengths {[len(labels[k]) for k in ATTRIBUTES]}")
    parsed = [parse_caption(t) for t in texts]
    right = {k: torch.tensor([p[k] == int(y) for p, y in zip(parsed, labels[k])]) for k in ATTRIBUTES}
    truth = [make_caption(*(int(labels[k][i]) for k in ATTRIBUTES)) for i in range(n)]
    out = {"caption_all": torch.stack(list(right.values())).all(0).float().mean().item()}
    out.update({f"caption_{k}": v.float().mean().item() for k, v in right.items()})
    out["caption_exact"] = sum(t.strip() == y for t, y in zip(texts, truth)) / n
    return out


def answer_accuracy(answers: list[str], attribute: str, labels: torch.Tensor) -> float:
    """Share of answers that are exactly the attribute's word (``"circle"``, ``"left"``, ...)."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"attribute must be one of {tuple(ATTRIBUTES)}, got {attribute!r}")
    if len(answers) != len(labels) or not answers:
        raise ValueError(f"need one label per answer; got {len(answers)} answers, {len(labels)} labels")
    values = ATTRIBUTES[attribute]
    return sum(a.strip() == values[int(y)] for a, y in zip(answers, labels)) / len(answers)


# ----------------------------------------------------------------------------- comprehension
def comprehension_prompts(text_tokenizer, task: str, n: int, num_tokens: int = tt.MINI_NUM_TOKENS
                          ) -> torch.Tensor:
    """``n`` copies of the prompt of ``task`` ("caption" or an attribute): [n, L] ids."""
    from .llm_training import question_of

    ids = comprehension_example(text_tokenizer, question_of(task), num_tokens=num_tokens)["input_ids"]
    return torch.tensor([ids] * n)


@torch.no_grad()
def answer(model: DivotLLM, text_tokenizer, video_tokens: torch.Tensor, task: str = "caption",
           batch_size: int = 256, max_new_tokens: int = 10, **generate_kwargs) -> list[str]:
    """The model's text for each clip's tokens [M, N, d] under one task (greedy by default;
    the frame-token forcing processor is :meth:`DivotLLM.generate_text`'s default)."""
    model.eval()
    kw = {"do_sample": False, "max_new_tokens": max_new_tokens, **generate_kwargs}
    kw.setdefault("pad_token_id", text_tokenizer.pad_token_id)
    out = []
    for s in range(0, len(video_tokens), batch_size):
        tok = video_tokens[s:s + batch_size]
        ids = comprehension_prompts(text_tokenizer, task, len(tok), model.num_tokens)
        new = model.generate_text(ids, attention_mask=torch.ones_like(ids), video_tokens=tok[:, None], **kw)
        out += [tt.decode_words(text_tokenizer, row) for row in new]
    return out


def comprehension_scores(model: DivotLLM, text_tokenizer, table, batch_size: int = 256) -> dict:
    """Caption and QA accuracies on a :class:`llm_training.TokenTable`."""
    labels = table.labels()
    out = caption_scores(answer(model, text_tokenizer, table.tokens, "caption", batch_size), labels)
    qa = {k: answer_accuracy(answer(model, text_tokenizer, table.tokens, k, batch_size), k, labels[k])
          for k in ATTRIBUTES}
    out.update({f"qa_{k}": v for k, v in qa.items()})
    out["qa"] = sum(qa.values()) / len(qa)
    return out


def comprehension_report(model: DivotLLM, text_tokenizer, tokenizer_model, n: int = 512,
                         splits: tuple[str, ...] = ("test", "heldout"), seed: int = 0) -> dict:
    """:func:`comprehension_scores` on the first ``n`` clips of each split, keys ``{split}_{score}``."""
    from .llm_training import token_table

    out = {}
    for split in splits:
        table = token_table(tokenizer_model, split, n, seed=seed)
        out.update({f"{split}_{k}": v for k, v in comprehension_scores(model, text_tokenizer, table).items()})
    return out


# ----------------------------------------------------------------------------- text-to-video
def generation_prompts(text_tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``<s>[INST] generate a video of {caption} [/INST]\\n<vid>`` for each caption, left-padded:
    (ids [B, L], attention_mask [B, L])."""
    vid = tt.special_token_id(text_tokenizer, tt.VID_BOI_TOKEN)
    rows = [generation_prompt(text_tokenizer, c) + [vid] for c in captions]
    L = max(len(r) for r in rows)
    pad = text_tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (L - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (L - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


@torch.no_grad()
def writes_vid(model: DivotLLM, text_tokenizer, captions: list[str]) -> float:
    """Share of generation prompts (without ``<vid>``) after which the model's greedy next token is
    ``<vid>``: the official generation first lets the model write text up to ``<vid>``."""
    vid = tt.special_token_id(text_tokenizer, tt.VID_BOI_TOKEN)
    ids, mask = generation_prompts(text_tokenizer, captions)
    ids, mask = ids[:, :-1], mask[:, :-1]  # drop <vid>: left padding keeps the ends aligned
    out = model(input_ids=ids, attention_mask=mask)
    return (out.logits[:, -1].argmax(-1) == vid).float().mean().item()


@torch.no_grad()
def generate_clip_tokens(model: DivotLLM, text_tokenizer, captions: list[str], seed: int = 0,
                         sample: bool = True, batch_size: int = 128, **sample_kwargs) -> torch.Tensor:
    """Divot tokens [B, N, d] written by the model for each caption (one forward per batch; GMM
    sampling with a seeded generator, ``var_scale`` 0.1 by default; ``sample=False``: mixture mean)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, len(captions), batch_size):
        ids, mask = generation_prompts(text_tokenizer, captions[s:s + batch_size])
        kw = {"generator": g, **sample_kwargs} if sample else {}
        out.append(model.generate_video_tokens(ids, mask, sample=sample, **kw))
    return torch.cat(out)


@torch.no_grad()
def text_to_video(model: DivotLLM, text_tokenizer, tokenizer_model, captions: list[str], seed: int = 0,
                  steps: int = 10, sample: bool = True, **sample_kwargs) -> torch.Tensor:
    """Clips [B, 16, 3, 32, 32] generated from captions: LLM -> tokens -> de-tokenizer (``steps``
    trailing DDIM steps, fixed noise seed)."""
    from .tokenizer_evaluation import decode_tokens

    tokens = generate_clip_tokens(model, text_tokenizer, captions, seed, sample, **sample_kwargs)
    return decode_tokens(tokenizer_model, tokens, steps=steps, seed=seed)


def probe_scores(probe, videos: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-attribute probe accuracy of clips against the attributes they should show, and ``all``."""
    pred = probe.predict(videos)
    right = {k: pred[k] == labels[k] for k in ATTRIBUTES}
    out = {k: v.float().mean().item() for k, v in right.items()}
    out["all"] = torch.stack(list(right.values())).all(0).float().mean().item()
    return out


def text_to_video_report(model: DivotLLM, text_tokenizer, tokenizer_model, probe, n: int = 64,
                         splits: tuple[str, ...] = ("test", "heldout"), seed: int = 0,
                         steps: int = 10) -> dict:
    """Probe accuracy of clips generated from the captions of the first ``n`` clips of each split:
    keys ``t2v_{split}_{attr}`` / ``t2v_{split}_all``; plus ``writes_vid``."""
    out = {}
    for split in splits:
        labels = MovingShapes(split, size=n, seed=seed).attributes(list(range(n)))
        labels = {k: labels[k] for k in ATTRIBUTES}
        caps = [make_caption(*(int(labels[k][i]) for k in ATTRIBUTES)) for i in range(n)]
        videos = text_to_video(model, text_tokenizer, tokenizer_model, caps, seed=seed, steps=steps)
        out.update({f"t2v_{split}_{k}": v for k, v in probe_scores(probe, videos, labels).items()})
        out[f"writes_vid_{split}"] = writes_vid(model, text_tokenizer, caps)
    return out


# ----------------------------------------------------------------------------- storytelling
STORY_CHECKS = ("format", "object", "motion", "consistent")


def story_format(sentences: list[str], shape: int, colour: int, num_clips: int = 3) -> bool:
    """``num_clips`` sentences, the first naming the instruction's object and a motion, each later one
    a motion different from the one before (the stories of ``data.MovingShapesStories``)."""
    parsed = [parse_caption(s) for s in sentences]
    motions = [p["motion"] for p in parsed]
    return (len(sentences) == num_clips and parsed[0]["shape"] == shape and parsed[0]["colour"] == colour
            and UNKNOWN not in motions and all(a != b for a, b in zip(motions, motions[1:])))


def story_consistency(sentences: list[str], clips: list[dict[str, int]], shape: int, colour: int,
                      num_clips: int = 3) -> dict[str, bool]:
    """Score one generated story: ``sentences`` (the text before each clip) and the attributes a
    probe reads off each clip. ``format``: :func:`story_format` and one clip per sentence;
    ``object``: every clip shows the instruction's shape and colour; ``motion``: every clip moves the
    way its sentence says; ``consistent``: all three."""
    fmt = story_format(sentences, shape, colour, num_clips) and len(clips) == num_clips
    motions = [parse_caption(s)["motion"] for s in sentences]
    obj = len(clips) == num_clips and all(c["shape"] == shape and c["colour"] == colour for c in clips)
    mot = fmt and all(c["motion"] == m for c, m in zip(clips, motions))
    return {"format": fmt, "object": obj, "motion": mot, "consistent": fmt and obj and mot}


def split_story(parts: list[tuple[str, object]]) -> tuple[list[list[int]], list[torch.Tensor]]:
    """(text before each clip, clip tokens) of :meth:`DivotLLM.generate_interleaved`'s output; text
    after the last clip is dropped, a clip without text before it gets an empty sentence."""
    sentences, clips, pending = [], [], []
    for kind, value in parts:
        if kind == "text":
            pending = pending + list(value)
        else:
            sentences.append(pending)
            clips.append(value)
            pending = []
    return sentences, clips


@torch.no_grad()
def story_report(model: DivotLLM, text_tokenizer, tokenizer_model=None, probe=None, token_probes=None,
                 n: int = 32, splits: tuple[str, ...] = ("test", "heldout"), seed: int = 0,
                 steps: int = 10, var_scale: float = 0.1, temperature: float = 1.0) -> dict:
    """Write the stories of the first ``n`` story instructions of each split (text sampled at
    ``temperature``: the data's motions are random) and score them (:func:`story_consistency`).

    ``story_{split}_format``: the text alone. With the video ``probe`` on decoded clips (needs
    ``tokenizer_model`` for the de-tokenizer): ``story_{split}_{object,motion,consistent}``. With
    ``token_probes`` (:class:`linear_probe.LinearProbes` on real tokens) on the written tokens:
    ``story_{split}_token_{object,motion,consistent}``. Per clip, for each reader:
    ``story_{split}_[token_]clip_{shape,colour,motion}`` -- the share of written clips showing the
    instruction's shape / colour and the motion of their own sentence (a graded view: a consistent
    story needs all nine right). ``story_{split}_clips``: clips per story."""
    from .data import MovingShapesStories
    from .tokenizer_evaluation import decode_tokens

    eos, vid, vid_end = (text_tokenizer.eos_token_id, tt.special_token_id(text_tokenizer, tt.VID_BOI_TOKEN),
                         tt.special_token_id(text_tokenizer, tt.VID_EOI_TOKEN))
    readers = {}
    if probe is not None:
        if tokenizer_model is None:
            raise ValueError("scoring decoded clips with the video probe needs tokenizer_model (the de-tokenizer)")
        readers[""] = lambda t: probe.predict(decode_tokens(tokenizer_model, t, steps=steps, seed=seed))
    if token_probes is not None:
        readers["token_"] = token_probes.predict
    model.eval()
    out = {}
    for split in splits:
        stories = MovingShapesStories(split, size=n, seed=seed)
        objects = stories[list(range(n))]  # renders the clips too: cheap, and the one source of truth
        scores = {name: [] for name in readers}
        per_clip_right = {name: {k: [] for k in ATTRIBUTES} for name in readers}
        formats, n_clips = [], []
        for i in range(n):
            shape, colour = int(objects["shape"][i]), int(objects["colour"][i])
            kw = sample_kwargs(model.output_resampler, torch.Generator().manual_seed(seed * 100_003 + i), var_scale)
            parts = model.generate_interleaved(tt.instruction_ids(text_tokenizer, objects["instruction"][i]),
                                               eos, vid, vid_end, max_clips=stories.num_clips + 1,
                                               temperature=temperature, **kw)
            sentences, clips = split_story(parts)
            sentences = [tt.decode_words(text_tokenizer, s) for s in sentences]
            n_clips.append(len(clips))
            formats.append(story_format(sentences, shape, colour, stories.num_clips)
                           and len(clips) == stories.num_clips)
            for name, read in readers.items():
                per_clip = []
                if clips:
                    pred = read(torch.stack(clips))
                    per_clip = [{k: int(pred[k][j]) for k in ATTRIBUTES} for j in range(len(clips))]
                scores[name].append(story_consistency(sentences, per_clip, shape, colour, stories.num_clips))
                said = [parse_caption(x)["motion"] for x in sentences]
                for c, m in zip(per_clip, said):
                    right = per_clip_right[name]
                    right["shape"].append(c["shape"] == shape)
                    right["colour"].append(c["colour"] == colour)
                    right["motion"].append(c["motion"] == m)
        out[f"story_{split}_format"] = sum(formats) / n
        for name, rows in scores.items():
            out.update({f"story_{split}_{name}{c}": sum(r[c] for r in rows) / n for c in STORY_CHECKS[1:]})
            for k, v in per_clip_right[name].items():
                out[f"story_{split}_{name}clip_{k}"] = sum(v) / max(1, len(v))
        out[f"story_{split}_clips"] = sum(n_clips) / n
    return out
