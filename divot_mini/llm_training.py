"""Training Divot-LLM on Moving Shapes: comprehension (LM loss) and generation (GMM loss) in one model.

The official pre-training mixes two kinds of examples in every step, and so does this module:

* **comprehension** -- the LLM *reads* a clip's Divot tokens and writes text, next-token loss on the
  answer only: ``[INST] <vid><frame> N tokens </frame></vid>what does this video describe? [/INST]\\n``
  -> ``a red circle moves left``, or one of the questions of :func:`data.questions` -> ``circle``;
* **generation** -- the LLM reads a caption and *writes* the clip: ``[INST] generate a video of ...
  [/INST]\\n`` -> ``<vid><frame>`` + N query positions, whose output states go through the GMM head
  and are scored by the mixture NLL of the clip's real tokens (plus the text loss on ``<vid>``,
  ``</vid>`` and EOS).

One step = one comprehension batch + one generation batch, two forwards (a :class:`DivotLLM` batch
must read and write the same number of clips in every sample), loss = their sum with
``lm_loss + gen_loss_scale * gmm_loss``.

**Where the Divot tokens come from.** The tokenizer is frozen, and cheap next to the LLM but not free
(about 10-25 ms per clip on a CPU core: the frozen ViT on 5 frames plus the tokenizer). So training
does not tokenize clips on the fly: it precomputes a :class:`TokenTable` -- the tokens of a fixed
set of training clips (``data.MovingShapes("train")[0 .. n-1]``) with their attributes -- once, at the
start. That costs one tokenizer pass per clip instead of one per use, makes every batch a pure
function of (seed, step) and therefore makes a resumed run continue exactly where it stopped. The
price is a finite set of clips (4,096 by default, ~100 per training combination): enough here,
because the LLM learns a handful of facts per clip, not pixels.

**Resumable.** Each step's batch is drawn from a generator seeded by ``(seed, global_step)``, not from
the position in the data loader, so resuming from a Lightning checkpoint (``ckpt_path``) replays no
batch and skips none: 2 x 5 steps with a restart give the same weights as 10 steps in one go.

The trained model ships as the checkpoint ``divot_llm`` (weights policy: shipped -> cache -> train;
``python scripts/train.py divot_llm [--ship]``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from . import checkpoints
from . import text_tokenizer as tt
from .data import ATTRIBUTES, MovingShapes, MovingShapesStories, partial_caption, questions, story_instruction, story_sentences
from .data import caption as make_caption
from .divot_llm import DivotLLM, collate, comprehension_example, generation_example, story_example

# The tasks a comprehension example can be: the caption, or one question per attribute.
COMPREHENSION_TASKS = ("caption",) + tuple(ATTRIBUTES)


# ----------------------------------------------------------------------------- token tables
@dataclass
class TokenTable:
    """Divot tokens of a fixed set of clips with their attributes: ``tokens`` [M, N, d],
    ``shape``/``colour``/``motion`` [M] (indices into data.SHAPES/COLOURS/MOTIONS)."""

    tokens: torch.Tensor
    shape: torch.Tensor
    colour: torch.Tensor
    motion: torch.Tensor
    split: str = "train"

    def __post_init__(self):
        if self.tokens.ndim != 3:
            raise ValueError(f"tokens must be [clips, N, d], got {tuple(self.tokens.shape)}")
        for k in ATTRIBUTES:
            if getattr(self, k).shape != (len(self.tokens),):
                raise ValueError(f"{k} must be [{len(self.tokens)}], got {tuple(getattr(self, k).shape)}")

    def __len__(self) -> int:
        return len(self.tokens)

    def labels(self, index=None) -> dict[str, torch.Tensor]:
        sel = slice(None) if index is None else index
        return {k: getattr(self, k)[sel] for k in ATTRIBUTES}

    def captions(self, index=None) -> list[str]:
        lab = self.labels(index)
        return [make_caption(s, c, m) for s, c, m in
                zip(lab["shape"].tolist(), lab["colour"].tolist(), lab["motion"].tolist())]

    def head(self, n: int) -> "TokenTable":
        return TokenTable(self.tokens[:n], self.shape[:n], self.colour[:n], self.motion[:n], self.split)


@torch.no_grad()  # the tables are data: no graph back into the frozen tokenizer
def _tokenize(tokenizer_model, ds: MovingShapes, n: int, batch_size: int, keys) -> tuple[torch.Tensor, dict]:
    """Tokens of items 0..n-1 of ``ds`` ([n, N, d], or [n, clips, N, d] for multi-clip items) and the
    items' ``keys``, rendered and tokenized in batches."""
    parts, labels = [], {k: [] for k in keys}
    was_training = getattr(tokenizer_model, "training", False)
    tokenizer_model.eval()
    for s in range(0, n, batch_size):
        b = ds[list(range(s, min(n, s + batch_size)))]
        lead = b["video"].shape[:-4]  # [B] or [B, clips]
        parts.append(tokenizer_model.tokens(b["video"].flatten(0, len(lead) - 1)).float().unflatten(0, lead))
        for k in keys:
            labels[k].append(b[k])
    tokenizer_model.train(was_training)
    return torch.cat(parts), {k: torch.cat(v) for k, v in labels.items()}


def token_table(tokenizer_model, split: str = "train", n: int = 4096, seed: int = 0,
                batch_size: int = 128) -> TokenTable:
    """Tokenize clips 0..n-1 of ``split`` with the frozen Divot tokenizer (``tokenizer_model.tokens``,
    e.g. :func:`tokenizer_training.load_trained`); rendered and tokenized in batches."""
    tokens, labels = _tokenize(tokenizer_model, MovingShapes(split, size=n, seed=seed), n, batch_size, ATTRIBUTES)
    return TokenTable(tokens, *(labels[k] for k in ATTRIBUTES), split=split)


def synthetic_token_table(n: int = 512, split: str = "train", num_tokens: int = tt.MINI_NUM_TOKENS,
                          token_dim: int = 32, noise: float = 0.3, seed: int = 0) -> TokenTable:
    """Hand-made "oracle" tokens for tests and demonstrations: a fixed random code of each attribute
    (one random [N, d] pattern per value, summed) plus Gaussian noise. Attributes are those of clips
    0..n-1 of ``split`` (so held-out combinations stay held out)."""
    a = MovingShapes(split, size=n, seed=seed).attributes(list(range(n)))
    g = torch.Generator().manual_seed(1234)
    code = {k: torch.randn(len(v), num_tokens, token_dim, generator=g) for k, v in ATTRIBUTES.items()}
    tokens = sum(code[k][a[k]] for k in ATTRIBUTES) / 3 ** 0.5
    tokens = tokens + noise * torch.randn(tokens.shape, generator=torch.Generator().manual_seed(seed + 1))
    return TokenTable(tokens, a["shape"], a["colour"], a["motion"], split=split)


@dataclass
class StoryTable:
    """Divot tokens of the clips of fixed three-clip stories (``data.MovingShapesStories``):
    ``tokens`` [M, C, N, d], ``shape``/``colour`` [M] (one object per story), ``motion`` [M, C]."""

    tokens: torch.Tensor
    shape: torch.Tensor
    colour: torch.Tensor
    motion: torch.Tensor
    split: str = "train"

    def __post_init__(self):
        if self.tokens.ndim != 4:
            raise ValueError(f"story tokens must be [stories, clips, N, d], got {tuple(self.tokens.shape)}")
        M, C = self.tokens.shape[:2]
        if self.shape.shape != (M,) or self.colour.shape != (M,) or self.motion.shape != (M, C):
            raise ValueError(f"need shape/colour [{M}] and motion [{M}, {C}], got "
                             f"{tuple(self.shape.shape)}, {tuple(self.colour.shape)}, {tuple(self.motion.shape)}")

    def __len__(self) -> int:
        return len(self.tokens)


def story_table(tokenizer_model, split: str = "train", n: int = 1024, seed: int = 0,
                batch_size: int = 64) -> StoryTable:
    """Tokenize the clips of stories 0..n-1 of ``split`` with the frozen Divot tokenizer."""
    tokens, labels = _tokenize(tokenizer_model, MovingShapesStories(split, size=n, seed=seed), n, batch_size,
                               ATTRIBUTES)
    return StoryTable(tokens, *(labels[k] for k in ATTRIBUTES), split=split)


# ----------------------------------------------------------------------------- token standardisation
class StandardizedDivotLLM(DivotLLM):
    """:class:`DivotLLM` that reads and writes Divot tokens standardised per (position, dimension).

    Why: the LLM can only use what varies *across clips*. The course's tokenizer ends in a LayerNorm,
    so its tokens have unit scale overall, but most of that is a part shared by every clip (the
    Perceiver's learned queries); what distinguishes one clip from another can be a small fraction of
    it (measured on the first shipped mini tokenizer: std across clips 0.014 against 1.0 overall). The
    input projection would have to learn a ~70x gain before the tokens could steer the LLM. So the
    course model subtracts the training clips' mean token and divides by their std across clips
    (``token_mean`` / ``token_std`` [N, d], buffers fitted once by :meth:`fit_token_stats` and saved
    with the weights). Identity stats (mean 0, std 1) give back the official model exactly.

    Callers pass and receive *raw* tokenizer tokens: ``embed`` (reading), ``forward``'s
    ``target_tokens`` (the GMM loss) and ``write_tokens`` (every written clip, mapped back to the
    tokenizer's scale for the de-tokenizer) convert internally.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("token_mean", torch.zeros(self.num_tokens, self.token_dim))
        self.register_buffer("token_std", torch.ones(self.num_tokens, self.token_dim))

    @torch.no_grad()
    def fit_token_stats(self, tokens: torch.Tensor, eps: float = 1e-6) -> None:
        """Set the stats from raw tokens [M, N, d] of training clips."""
        if tokens.ndim != 3 or tokens.shape[1:] != (self.num_tokens, self.token_dim) or len(tokens) < 2:
            raise ValueError(f"need tokens [clips >= 2, {self.num_tokens}, {self.token_dim}], "
                             f"got {tuple(tokens.shape)}")
        self.token_mean.copy_(tokens.mean(0))
        self.token_std.copy_(tokens.std(0) + eps)

    def standardize(self, tokens: torch.Tensor) -> torch.Tensor:
        return (tokens - self.token_mean.to(tokens.dtype)) / self.token_std.to(tokens.dtype)

    def unstandardize(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens * self.token_std.to(tokens.dtype) + self.token_mean.to(tokens.dtype)

    def embed(self, input_ids, attention_mask=None, video_tokens=None):
        if video_tokens is not None and torch.is_tensor(video_tokens) and video_tokens.shape[-2:] == \
                self.token_mean.shape:
            video_tokens = self.standardize(video_tokens)
        return super().embed(input_ids, attention_mask, video_tokens)

    def forward(self, input_ids, attention_mask=None, labels=None, video_tokens=None, target_tokens=None):
        if target_tokens is not None and target_tokens.shape[-2:] == self.token_mean.shape:
            target_tokens = self.standardize(target_tokens)
        return super().forward(input_ids, attention_mask, labels, video_tokens, target_tokens)

    def write_tokens(self, states, sample=True, **sample_kwargs) -> torch.Tensor:
        # Every written clip (generate_video_tokens, generate_interleaved) back on the tokenizer's scale.
        return self.unstandardize(super().write_tokens(states, sample, **sample_kwargs))


# ----------------------------------------------------------------------------- examples
def comprehension_prompt_answer(task: str, shape: int, colour: int, motion: int) -> tuple[str, str]:
    """(instruction after the video, expected answer) of one comprehension task: ``"caption"`` or
    an attribute name (its question from :func:`data.questions`)."""
    if task == "caption":
        return tt.DESCRIBE_VIDEO, make_caption(shape, colour, motion)
    if task not in ATTRIBUTES:
        raise ValueError(f"task must be one of {COMPREHENSION_TASKS}, got {task!r}")
    return dict(zip(ATTRIBUTES, questions(shape, colour, motion)))[task]


def question_of(task: str) -> str:
    """The instruction text of a comprehension task ("caption" or an attribute name)."""
    return comprehension_prompt_answer(task, 0, 0, 0)[0]


# ----------------------------------------------------------------------------- the LightningModule
class DivotLLMTraining(L.LightningModule):
    """Trains a :class:`DivotLLM` on a :class:`TokenTable` with the mixed comprehension + generation
    objective. The batch of step ``t`` is :meth:`make_batch` ``(t)``: the data loader only counts
    steps (see the module docstring).

    ``caption_frac``: share of comprehension examples that are captions (the rest are the three
    questions, equally often). ``partial_frac``: share of generation examples whose prompt leaves one
    attribute out (``data.partial_caption``; the GMM must then cover every value of it).
    ``comp_batch`` / ``gen_batch``: examples per step of each kind (0 switches a kind off).
    ``stories`` + ``story_batch``: also train on interleaved stories (``story_example``: sentences
    and the clips they describe; text loss + the head's loss on every clip) -- the instruction-tuning
    stage (:func:`train_divot_llm_sft`).
    A :class:`StandardizedDivotLLM` gets its token stats from the table here (``fit_stats``).
    """

    def __init__(self, model: DivotLLM, text_tokenizer, table: TokenTable, lr: float = 1e-3,
                 total_steps: int = 600, comp_batch: int = 32, gen_batch: int = 32,
                 caption_frac: float = 0.5, partial_frac: float = 0.2, gen_loss_scale: float = 1.0,
                 weight_decay: float = 0.01, warmup_frac: float = 0.05, seed: int = 0,
                 fit_stats: bool = True, stories: StoryTable | None = None, story_batch: int = 0):
        super().__init__()
        if comp_batch <= 0 and gen_batch <= 0 and story_batch <= 0:
            raise ValueError("comp_batch, gen_batch and story_batch cannot all be 0")
        if story_batch > 0 and stories is None:
            raise ValueError("story_batch > 0 needs a StoryTable (stories=...)")
        if stories is not None and stories.tokens.shape[2:] != (model.num_tokens, model.token_dim):
            raise ValueError(f"the story table holds tokens {tuple(stories.tokens.shape[2:])}, the model "
                             f"writes ({model.num_tokens}, {model.token_dim})")
        if total_steps < 3:
            raise ValueError(f"total_steps must be at least 3 (warm-up + decay of the one-cycle "
                             f"schedule), got {total_steps}")
        if table.tokens.shape[1:] != (model.num_tokens, model.token_dim):
            raise ValueError(f"the table holds tokens {tuple(table.tokens.shape[1:])}, the model reads "
                             f"({model.num_tokens}, {model.token_dim})")
        self.model, self.text_tokenizer, self.table = model, text_tokenizer, table
        if fit_stats and isinstance(model, StandardizedDivotLLM):
            model.fit_token_stats(table.tokens)
        self.lr, self.total_steps, self.weight_decay, self.warmup_frac = lr, total_steps, weight_decay, warmup_frac
        self.comp_batch, self.gen_batch = comp_batch, gen_batch
        self.stories, self.story_batch = stories, story_batch
        self.caption_frac, self.partial_frac, self.gen_loss_scale = caption_frac, partial_frac, gen_loss_scale
        self.seed = seed
        self.history: list[dict] = []  # per step: step, loss, comp_lm, gen_lm, gmm (for plots)
        self._cache: dict[tuple, dict] = {}

    # -- data -----------------------------------------------------------------------------------
    def _encode(self, kind: str, *key) -> dict:
        """Token ids of one example (memoised: there are only a few hundred distinct texts)."""
        if (kind, *key) not in self._cache:
            if kind == "comp":
                task, s, c, m = key
                q, a = comprehension_prompt_answer(task, s, c, m)
                ex = comprehension_example(self.text_tokenizer, q, a, num_tokens=self.model.num_tokens)
            elif kind == "story":
                shape, colour, *motions = key
                ex = story_example(self.text_tokenizer, story_instruction(shape, colour),
                                   story_sentences(shape, colour, motions), num_tokens=self.model.num_tokens)
            else:
                ex = generation_example(self.text_tokenizer, key[0], num_tokens=self.model.num_tokens)
            self._cache[(kind, *key)] = ex
        return self._cache[(kind, *key)]

    def make_batch(self, step: int) -> dict:
        """The batch of training step ``step``: a pure function of (seed, step) and the table."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pad = self.text_tokenizer.pad_token_id
        batch = {}
        if self.comp_batch > 0:
            idx = torch.randint(0, len(self.table), (self.comp_batch,), generator=g)
            is_cap = torch.rand(self.comp_batch, generator=g) < self.caption_frac
            which_q = torch.randint(0, len(ATTRIBUTES), (self.comp_batch,), generator=g)
            lab = self.table.labels(idx)
            examples = []
            for j in range(self.comp_batch):
                task = "caption" if is_cap[j] else tuple(ATTRIBUTES)[int(which_q[j])]
                examples.append(self._encode("comp", task, *(int(lab[k][j]) for k in ATTRIBUTES)))
            batch["comp"] = {**collate(examples, pad), "video_tokens": self.table.tokens[idx][:, None]}
        if self.gen_batch > 0:
            idx = torch.randint(0, len(self.table), (self.gen_batch,), generator=g)
            partial = torch.rand(self.gen_batch, generator=g) < self.partial_frac
            leave = torch.randint(0, len(ATTRIBUTES), (self.gen_batch,), generator=g)
            lab = self.table.labels(idx)
            texts = []
            for j in range(self.gen_batch):
                s, c, m = (int(lab[k][j]) for k in ATTRIBUTES)
                texts.append(partial_caption(s, c, m, tuple(ATTRIBUTES)[int(leave[j])]) if partial[j]
                             else make_caption(s, c, m))
            examples = [self._encode("gen", t) for t in texts]
            batch["gen"] = {**collate(examples, pad), "target_tokens": self.table.tokens[idx]}
        if self.story_batch > 0:
            idx = torch.randint(0, len(self.stories), (self.story_batch,), generator=g)
            st = self.stories
            examples = [self._encode("story", int(st.shape[i]), int(st.colour[i]), *st.motion[i].tolist())
                        for i in idx.tolist()]
            batch["story"] = {**collate(examples, pad), "target_tokens": st.tokens[idx]}
        return batch

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        zero = next(self.model.parameters()).new_zeros(())
        out = {"comp_lm": zero, "gen_lm": zero, "gmm": zero, "story_lm": zero, "story_gmm": zero}
        if "comp" in batch:
            out["comp_lm"] = self.model(**batch["comp"]).lm_loss
        if "gen" in batch:
            o = self.model(**batch["gen"])
            out["gen_lm"], out["gmm"] = o.lm_loss, o.gen_loss
        if "story" in batch:
            o = self.model(**batch["story"])
            out["story_lm"], out["story_gmm"] = o.lm_loss, o.gen_loss
        out["loss"] = (out["comp_lm"] + out["gen_lm"] + out["story_lm"]
                       + self.gen_loss_scale * (out["gmm"] + out["story_gmm"]))
        return out

    # -- Lightning ------------------------------------------------------------------------------
    def train_dataloader(self):
        # Only counts steps; the batch comes from make_batch(global_step) (exact resumption).
        return torch.utils.data.DataLoader(list(range(self.total_steps)), batch_size=None)

    def training_step(self, _, __):
        batch = self.make_batch(int(self.global_step))
        out = self.losses(batch)
        self.log("loss", out["loss"], prog_bar=True)
        self.log("lm", out["comp_lm"], prog_bar=True)
        self.log("gmm", out["gmm"], prog_bar=True)
        self.log("gen_lm", out["gen_lm"])
        if self.story_batch > 0:
            self.log("story", out["story_lm"] + out["story_gmm"], prog_bar=True)
        self.history.append({"step": int(self.global_step), **{k: float(v.detach()) for k, v in out.items()}})
        return out["loss"]

    def configure_optimizers(self):
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "embed" not in n]
        rest = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                 {"params": rest, "weight_decay": 0.0}], lr=self.lr, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.total_steps,
                                                    # >= 2 warm-up steps: fewer breaks OneCycleLR
                                                    pct_start=max(self.warmup_frac, 2 / self.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(task: DivotLLMTraining, steps: int | None = None, ckpt_dir: str | Path | None = None,
        ckpt_path: str | Path | None = None, every_n_steps: int = 100, progress: bool = True,
        seed: int = 0) -> L.Trainer:
    """Run ``task`` up to ``steps`` (default ``task.total_steps``) optimizer steps on the CPU.

    ``ckpt_dir``: write Lightning checkpoints there every ``every_n_steps`` steps and at the end
    (``last.ckpt``). ``ckpt_path``: resume from that checkpoint (``"last"`` = the newest in
    ``ckpt_dir``). ``steps`` may stop short of ``task.total_steps`` (the schedule keeps its length),
    which is how a run is interrupted on purpose in the tests.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .fit import quiet_lightning

    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    callbacks = []
    if ckpt_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=str(ckpt_dir), every_n_train_steps=every_n_steps,
                                         save_last=True, save_top_k=-1, filename="step{step}",
                                         auto_insert_metric_name=False))
    trainer = L.Trainer(max_steps=steps or task.total_steps, max_epochs=1, accelerator="cpu",
                        logger=False, enable_checkpointing=ckpt_dir is not None, callbacks=callbacks,
                        enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    task.model.train()
    if ckpt_path == "last":
        ckpt_path = str(Path(ckpt_dir) / "last.ckpt")
    import warnings
    with warnings.catch_warnings():
        # Our loader only counts steps, so Lightning's "not resumable mid-epoch" warning is moot.
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        if ckpt_path is not None:  # resuming into the folder the interrupted run wrote
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        trainer.fit(task, ckpt_path=None if ckpt_path is None else str(ckpt_path))
    task.model.eval()
    return trainer


# ----------------------------------------------------------------------------- the course's weights
LLM_LAYERS, LLM_HIDDEN, LLM_HEADS, LLM_KV_HEADS, LLM_FFN = 4, 256, 4, 2, 768
LLM_STEPS = 600
LLM_COMP_BATCH, LLM_GEN_BATCH = 32, 32
LLM_LR = 1e-3
LLM_TRAIN_CLIPS = 4096
LLM_CAPTION_FRAC, LLM_PARTIAL_FRAC = 0.5, 0.2
# The GMM sampler: "token" (official: one component per token) or "clip" (one per clip). Measured on the
# shipped model (benchmarks/RESULTS.md): "clip" lifts colour-free diversity but costs prompt following,
# because per clip the weights' errors are no longer outvoted by the other tokens. The course keeps the
# official one; notebook 05 shows both.
LLM_SAMPLE_COMPONENT = "token"


def shipped_fingerprint(name: str) -> str | None:
    """sha256 (first 16 hex digits) of the shipped weights ``name``, or None if none ship.

    Part of the config of a checkpoint trained on another one's outputs: an LLM trained on one
    tokenizer's tokens is meaningless with another's, so re-shipping the tokenizer makes the weights
    policy reject (and retrain) a ``divot_llm`` made before; likewise ``divot_llm_sft`` and its base."""
    import json

    meta = checkpoints.paths(checkpoints.shipped_dir(), name)[1]
    try:
        return str(json.loads(meta.read_text())["sha256"])[:16]
    except (OSError, ValueError, KeyError):
        return None


def tokenizer_fingerprint() -> str | None:
    """:func:`shipped_fingerprint` of ``divot_tokenizer``."""
    return shipped_fingerprint("divot_tokenizer")


def build_divot_llm() -> StandardizedDivotLLM:
    """The course's Divot-LLM (untrained, identity token stats): mini Mistral 4 x 256, GMM head
    k = 16, N = 16, d = 32. The head is the official GMM (same parameters, so official weights load
    into it); its training loss adds the MSE of the mixture mean (``"gmm_mse"``): with the paper's
    NLL alone the mini mixture ignores the prompt (benchmarks/head_ablation.json: colour 0.21 vs 1.00).
    Its sampler (``LLM_SAMPLE_COMPONENT``) is the official one, a component per token; one per clip is a
    sampler setting, not a weight: ``generate_video_tokens(..., component="clip")`` (see
    :mod:`divot_mini.gmm_head` and notebook 05)."""
    model = StandardizedDivotLLM.mini(tt.build_text_tokenizer(), token_dim=32, num_tokens=tt.MINI_NUM_TOKENS,
                                      head="gmm_mse", hidden_size=LLM_HIDDEN, num_hidden_layers=LLM_LAYERS,
                                      num_attention_heads=LLM_HEADS, num_key_value_heads=LLM_KV_HEADS,
                                      intermediate_size=LLM_FFN)
    model.output_resampler.sample_component = LLM_SAMPLE_COMPONENT
    return model


def train_divot_llm(model: DivotLLM, seed: int = 0, steps: int = LLM_STEPS,
                    n_clips: int = LLM_TRAIN_CLIPS, progress: bool = True, evaluate: bool = True,
                    ckpt_dir: str | Path | None = None, ckpt_path: str | Path | None = None,
                    tokenizer_model=None, **task_kwargs) -> dict:
    """The shipped recipe: tokenize ``n_clips`` training clips with the trained Divot tokenizer,
    train the mixed objective for ``steps`` steps, then measure (comprehension on test and held-out
    clips, text-to-video through the de-tokenizer and the probe). Returns the metrics, timings
    included."""
    from .tokenizer_training import load_trained

    t0 = time.time()
    if tokenizer_model is None:
        tokenizer_model = load_trained(verbose=progress)
    table = token_table(tokenizer_model, "train", n_clips, seed=0)
    t_table = time.time() - t0
    kw = dict(lr=LLM_LR, comp_batch=LLM_COMP_BATCH, gen_batch=LLM_GEN_BATCH,
              caption_frac=LLM_CAPTION_FRAC, partial_frac=LLM_PARTIAL_FRAC)
    task = DivotLLMTraining(model, tt.build_text_tokenizer(), table, total_steps=steps, seed=seed,
                            **{**kw, **task_kwargs})
    t1 = time.time()
    trainer = fit(task, ckpt_dir=ckpt_dir, ckpt_path=ckpt_path, progress=progress, seed=seed)
    t_train = time.time() - t1
    metrics = {"tokenizer_sha256": tokenizer_fingerprint(), "token_table_seconds": round(t_table, 1), "train_seconds": round(t_train, 1),
               "steps": steps, "threads": torch.get_num_threads(),
               **{f"final_{k}": round(float(v), 4) for k, v in trainer.callback_metrics.items()}}
    if not evaluate:
        return metrics
    from .llm_evaluation import comprehension_report, text_to_video_report
    from .probe import load_probe

    t2 = time.time()
    text_tok = task.text_tokenizer
    metrics.update(comprehension_report(model, text_tok, tokenizer_model, n=512))
    metrics["comprehension_eval_seconds"] = round(time.time() - t2, 1)
    t3 = time.time()
    metrics.update(text_to_video_report(model, text_tok, tokenizer_model, load_probe(verbose=progress),
                                        n=64))
    metrics["t2v_eval_seconds"] = round(time.time() - t3, 1)
    return metrics


checkpoints.register(checkpoints.CheckpointSpec(
    name="divot_llm",
    build=build_divot_llm,
    train=lambda m, seed: train_divot_llm(m, seed),
    config={"llm": {"hidden_size": LLM_HIDDEN, "num_hidden_layers": LLM_LAYERS,
                    "num_attention_heads": LLM_HEADS, "num_key_value_heads": LLM_KV_HEADS,
                    "intermediate_size": LLM_FFN},
            "vocabulary": tt.course_vocabulary(), "num_tokens": tt.MINI_NUM_TOKENS, "token_dim": 32,
            "head": "gmm_mse", "k": 16, "steps": LLM_STEPS, "comp_batch": LLM_COMP_BATCH,
            "gen_batch": LLM_GEN_BATCH, "lr": LLM_LR, "train_clips": LLM_TRAIN_CLIPS,
            "caption_frac": LLM_CAPTION_FRAC, "partial_frac": LLM_PARTIAL_FRAC,
            "token_standardization": "per (position, dim) over the training clips",
            "tokenizer": "divot_tokenizer", "tokenizer_sha256": tokenizer_fingerprint()},
    seed=0,
    command="python scripts/train.py divot_llm --ship",
))


# ----------------------------------------------------------------------------- instruction tuning
SFT_STEPS, SFT_LR = 300, 3e-4
SFT_COMP_BATCH, SFT_GEN_BATCH, SFT_STORY_BATCH = 16, 16, 16
SFT_STORIES = 1024


def train_divot_llm_sft(model: DivotLLM, seed: int = 0, steps: int = SFT_STEPS, n_stories: int = SFT_STORIES,
                        progress: bool = True, evaluate: bool = True, tokenizer_model=None,
                        base: DivotLLM | None = None, **task_kwargs) -> dict:
    """The instruction-tuning stage: start from the pre-trained ``divot_llm`` (``base``, default the
    shipped/cached one) and continue at a lower learning rate on a mix that adds *interleaved
    stories* ("generate a story about a red circle" -> sentence, clip, sentence, clip, ...) to the
    captions, questions and text-to-video of pre-training. Its token statistics stay those of
    pre-training (``fit_stats=False``)."""
    from .tokenizer_training import load_trained

    t0 = time.time()
    if base is None:
        base, _ = checkpoints.load("divot_llm", verbose=progress)
    model.load_state_dict(base.state_dict())
    if tokenizer_model is None:
        tokenizer_model = load_trained(verbose=progress)
    table = token_table(tokenizer_model, "train", LLM_TRAIN_CLIPS, seed=0)
    stories = story_table(tokenizer_model, "train", n_stories, seed=0)
    t_table = time.time() - t0
    kw = dict(lr=SFT_LR, comp_batch=SFT_COMP_BATCH, gen_batch=SFT_GEN_BATCH, story_batch=SFT_STORY_BATCH,
              caption_frac=LLM_CAPTION_FRAC, partial_frac=LLM_PARTIAL_FRAC, fit_stats=False)
    task = DivotLLMTraining(model, tt.build_text_tokenizer(), table, total_steps=steps, seed=seed,
                            stories=stories, **{**kw, **task_kwargs})
    t1 = time.time()
    trainer = fit(task, progress=progress, seed=seed)
    metrics = {"tokenizer_sha256": tokenizer_fingerprint(), "token_table_seconds": round(t_table, 1),
               "train_seconds": round(time.time() - t1, 1), "steps": steps, "threads": torch.get_num_threads(),
               **{f"final_{k}": round(float(v), 4) for k, v in trainer.callback_metrics.items()}}
    if not evaluate:
        return metrics
    from .linear_probe import LinearProbes
    from .llm_evaluation import comprehension_report, story_report
    from .probe import load_probe

    t2 = time.time()
    text_tok = task.text_tokenizer
    metrics.update(comprehension_report(model, text_tok, tokenizer_model, n=512))
    probes = LinearProbes(table.tokens[:2048], table.labels(slice(0, 2048)))
    metrics.update(story_report(model, text_tok, tokenizer_model, load_probe(verbose=progress), probes, n=32))
    base_stories = story_report(base, text_tok, token_probes=probes, n=32)  # before instruction tuning
    metrics.update({f"base_{k}": v for k, v in base_stories.items() if k.endswith(("_format", "_clips"))})
    metrics["eval_seconds"] = round(time.time() - t2, 1)
    return metrics


checkpoints.register(checkpoints.CheckpointSpec(
    name="divot_llm_sft",
    build=build_divot_llm,
    train=lambda m, seed: train_divot_llm_sft(m, seed),
    config={"base": "divot_llm", "base_sha256": shipped_fingerprint("divot_llm"), "steps": SFT_STEPS, "lr": SFT_LR, "comp_batch": SFT_COMP_BATCH,
            "gen_batch": SFT_GEN_BATCH, "story_batch": SFT_STORY_BATCH, "stories": SFT_STORIES,
            "tokenizer_sha256": tokenizer_fingerprint()},
    seed=0,
    command="python scripts/train.py divot_llm_sft --ship",
))


def load_divot_llm_sft(verbose: bool = True) -> tuple[DivotLLM, object]:
    """(instruction-tuned Divot-LLM in eval mode, its text tokenizer) through the weights policy."""
    model, _ = checkpoints.load("divot_llm_sft", verbose=verbose)
    return model, tt.build_text_tokenizer()


def load_divot_llm(verbose: bool = True) -> tuple[DivotLLM, object]:
    """(trained Divot-LLM in eval mode, its text tokenizer) through the weights policy."""
    model, _ = checkpoints.load("divot_llm", verbose=verbose)
    return model, tt.build_text_tokenizer()
