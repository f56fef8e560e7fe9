"""Divot-LLM: a Mistral language model that reads and writes Divot video tokens.

**Reading (comprehension).** A clip's N continuous tokens sit in the text as placeholders,

    <s> [INST] <vid><frame><frame_00000> ... <frame_{N-1}></frame> ... </vid>question [/INST]\\n answer </s>

and at the N frame-token positions the word embeddings are *replaced* by ``input_resampler(token)``
(Linear-GELU-Linear, d -> hidden). The loss is the ordinary next-token loss on the answer only.

**Writing (generation).** After ``[INST] generate a video of ... [/INST]\\n`` the model emits
``<vid>``; then ``<frame>`` and the N frame tokens are appended and their *word embeddings* act as N
learnable queries. The final (normed) output states at the N query positions themselves (not
shifted by one) go through ``output_resampler`` -- a GMM head -- which predicts all N tokens of the
clip in one forward pass. Inside the causal mask the N query positions attend to each other in both
directions (:func:`attention_mask_4d`), so every query sees the whole clip being written; text never
sees the future.

**Attention mask convention** (the official data format): a 2-D ``attention_mask`` [B, L] holds 1
(attend), 0 (padding) or -1 (a query position; each run of N consecutive -1 becomes one
bidirectional block). :func:`attention_mask_4d` turns it into the float 4-D mask [B, 1, L, L]
(0 = attend, a large negative number = blocked) that transformers' ``MistralForCausalLM`` uses as
given, in both its eager and sdpa attention.

The mini model (:func:`mini_mistral_config`) and the official one (:func:`mistral_7b_config`, 32
layers x 4096) are the same ``MistralForCausalLM`` class; only the config differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import LogitsProcessor, LogitsProcessorList, MistralConfig, MistralForCausalLM

from . import text_tokenizer as tt
from .generation_heads import make_generation_head
from .projection import ProjectionLayer

OFFICIAL_VOCAB_SIZE = 32262  # Mistral's 32000 + 262 added tokens (configs/clm_models/mistral7b_lora.yaml)
OFFICIAL_NUM_TOKENS, OFFICIAL_TOKEN_DIM, OFFICIAL_GMM_K = 64, 256, 16
IGNORE_INDEX = -100  # label of positions without a text loss (the transformers convention)


# ----------------------------------------------------------------------------- configurations
def mini_mistral_config(vocab_size: int, hidden_size: int = 256, num_hidden_layers: int = 4,
                        num_attention_heads: int = 4, num_key_value_heads: int = 2,
                        intermediate_size: int = 768, max_position_embeddings: int = 1024,
                        bos_token_id: int = 1, eos_token_id: int = 2, pad_token_id: int | None = 3,
                        **kwargs) -> MistralConfig:
    """The course's CPU-sized Mistral: same architecture (RMSNorm, RoPE, SwiGLU, grouped-query
    attention), 4 layers x 256 wide, 4 query heads sharing 2 key/value heads (Mistral: 32 / 8)."""
    return MistralConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                         intermediate_size=intermediate_size, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=num_attention_heads,
                         num_key_value_heads=num_key_value_heads,
                         max_position_embeddings=max_position_embeddings, rms_norm_eps=1e-5,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         sliding_window=None, tie_word_embeddings=False, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)


def mistral_7b_config(vocab_size: int = OFFICIAL_VOCAB_SIZE) -> MistralConfig:
    """Mistral-7B-Instruct-v0.1 (its published ``config.json``) with Divot's resized vocabulary."""
    return MistralConfig(vocab_size=vocab_size, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         max_position_embeddings=32768, rms_norm_eps=1e-5,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         sliding_window=4096, tie_word_embeddings=False, bos_token_id=1,
                         eos_token_id=2, pad_token_id=None)


# ----------------------------------------------------------------------------- attention mask
def query_blocks(attention_mask: torch.Tensor, num_query_tokens: int) -> list[list[tuple[int, int]]]:
    """Per sample, the [start, end) of each run of ``num_query_tokens`` positions marked -1."""
    blocks = []
    for row in attention_mask:
        idx = (row == -1).nonzero()[:, 0].tolist()
        if len(idx) % num_query_tokens:
            raise ValueError(f"{len(idx)} positions are marked -1, not a multiple of "
                             f"num_query_tokens={num_query_tokens}")
        runs = [(idx[i], idx[i + num_query_tokens - 1] + 1) for i in range(0, len(idx), num_query_tokens)]
        if any(b - a != num_query_tokens for a, b in runs):
            raise ValueError(f"positions marked -1 must form consecutive runs of {num_query_tokens}")
        blocks.append(runs)
    return blocks


def attention_mask_4d(attention_mask: torch.Tensor, num_query_tokens: int,
                      dtype: torch.dtype = torch.float32, sliding_window: int | None = None
                      ) -> torch.Tensor:
    """2-D mask {1, 0, -1} [B, L] -> additive 4-D mask [B, 1, L, L]: causal, padding keys blocked,
    each run of ``num_query_tokens`` positions marked -1 fully bidirectional (the official rule)."""
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be [batch, length], got {tuple(attention_mask.shape)}")
    if not torch.isin(attention_mask, torch.tensor([-1, 0, 1], device=attention_mask.device)).all():
        raise ValueError("attention_mask values must be 1 (attend), 0 (padding) or -1 (query)")
    B, L = attention_mask.shape
    i = torch.arange(L, device=attention_mask.device)
    allowed = (i[None, :] <= i[:, None]).expand(B, L, L).clone()  # [b, query, key]: causal
    if sliding_window is not None:
        allowed &= i[:, None] - i[None, :] < sliding_window
    for b, runs in enumerate(query_blocks(attention_mask, num_query_tokens)):
        for start, end in runs:
            allowed[b, start:end, start:end] = True
    allowed &= (attention_mask != 0)[:, None, :]  # never attend to padding
    mask = torch.zeros(B, 1, L, L, dtype=dtype, device=attention_mask.device)
    # The dtype's most negative finite value, not -inf: a fully blocked row (left padding) then
    # gives a uniform softmax instead of NaN.
    return mask.masked_fill(~allowed[:, None], torch.finfo(dtype).min)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting only non-padding tokens (so left padding does not shift RoPE)."""
    return ((attention_mask != 0).long().cumsum(-1) - 1).clamp(min=0)


# ----------------------------------------------------------------------------- forcing
class FrameTokenForcing(LogitsProcessor):
    """Official rule while generating text: right after ``<frame>`` or a frame token, force the next
    one of ``<frame> <frame_00000> ... <frame_{N-1}> </frame>``; elsewhere set the scores of the frame
    tokens and ``</frame>`` to ``free_score`` (officially 0.0, *not* -inf: a mild push down only when
    other logits are positive).

    Forcing raises the forced token to ``max + margin`` (official margin 10: near-certain, and
    certain under greedy or top-p decoding); ``hard=True`` blocks every other token instead.
    """

    def __init__(self, boi_token_id: int, frame_token_ids: Sequence[int], eoi_token_id: int,
                 free_score: float = 0.0, margin: float = 10.0, hard: bool = False):
        if len(frame_token_ids) == 0:
            raise ValueError("frame_token_ids must not be empty")
        self.sequence = torch.tensor([boi_token_id, *frame_token_ids, eoi_token_id])
        if len(set(self.sequence.tolist())) != len(self.sequence):
            raise ValueError("<frame>, the frame tokens and </frame> must be distinct ids")
        self.free_score, self.margin, self.hard = free_score, margin, hard

    @classmethod
    def from_tokenizer(cls, tokenizer, num_tokens: int, **kwargs) -> "FrameTokenForcing":
        return cls(tt.special_token_id(tokenizer, tt.BOI_TOKEN), tt.frame_token_ids(tokenizer, num_tokens),
                   tt.special_token_id(tokenizer, tt.EOI_TOKEN), **kwargs)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        seq = self.sequence.to(input_ids.device)
        match = input_ids[:, -1:] == seq[None, :-1]  # [B, N+1]: which forcing state we are in
        forced = match.any(-1)
        next_id = seq[1:][match.long().argmax(-1)]
        scores = scores.clone()
        free = (~forced).nonzero()[:, 0]
        scores[free[:, None], seq[1:][None, :]] = self.free_score
        rows = forced.nonzero()[:, 0]
        if len(rows):
            if self.hard:
                target = torch.zeros_like(scores[rows, 0])
                scores[rows] = float("-inf")
            else:
                target = scores[rows].max(-1).values + self.margin
            scores[rows, next_id[rows]] = target
        return scores


# ----------------------------------------------------------------------------- token layout
def comprehension_example(tokenizer, question: str, answer: str | None = None, num_clips: int = 1,
                          num_tokens: int = tt.MINI_NUM_TOKENS) -> dict[str, list[int]]:
    """``<s>[INST] <vid>clips</vid>{question} [/INST]\\n{answer}</s>``; labels on answer and EOS.

    Without ``answer`` it is the prompt for :meth:`DivotLLM.generate_text`.
    """
    ids = tt.instruction_ids(tokenizer, tt.video_token_string(num_clips, num_tokens) + question)
    labels = [IGNORE_INDEX] * len(ids)
    if answer is not None:
        answer_ids = tt.encode_text(tokenizer, answer) + [tokenizer.eos_token_id]
        ids, labels = ids + answer_ids, labels + answer_ids
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}


def generation_prompt(tokenizer, caption: str) -> list[int]:
    """``<s>[INST] generate a video of {caption} [/INST]\\n`` (the model then writes ``<vid>``)."""
    return tt.instruction_ids(tokenizer, tt.GENERATE_VIDEO.format(caption=caption))


def generation_example(tokenizer, caption: str, num_tokens: int = tt.MINI_NUM_TOKENS
                       ) -> dict[str, list[int]]:
    """``prompt <vid><frame> N queries </frame></vid></s>``: the official instruction-tuning layout.

    Labels (text loss) on ``<vid>``, ``</vid>`` and EOS only; the N query positions are marked -1 in
    ``attention_mask`` (bidirectional block) -- their loss is the GMM's, against the clip's tokens.
    """
    prompt = generation_prompt(tokenizer, caption)
    video = tt.encode_text(tokenizer, tt.video_token_string(1, num_tokens))
    ids = prompt + video + [tokenizer.eos_token_id]
    labels = ([IGNORE_INDEX] * len(prompt) + [video[0]] + [IGNORE_INDEX] * (len(video) - 2)
              + [video[-1], tokenizer.eos_token_id])
    mask = [1] * (len(prompt) + 2) + [-1] * num_tokens + [1] * 3  # <vid><frame> queries </frame></vid></s>
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def story_example(tokenizer, instruction: str, sentences: Sequence[str],
                  num_tokens: int = tt.MINI_NUM_TOKENS) -> dict[str, list[int]]:
    """Interleaved text and clips: ``<s>[INST] {instruction} [/INST]\\n`` then, per sentence,
    ``{sentence} <vid><frame> N queries </frame></vid>``, then ``</s>``.

    Each clip is a written clip exactly as in :func:`generation_example` (queries marked -1, labels on
    ``<vid>`` and ``</vid>``); the sentences and EOS carry the text loss. Later text attends to the
    earlier clips' query positions, as at generation time (:meth:`DivotLLM.generate_interleaved`).
    """
    if not sentences:
        raise ValueError("a story needs at least one sentence")
    ids = tt.instruction_ids(tokenizer, instruction)
    labels = [IGNORE_INDEX] * len(ids)
    mask = [1] * len(ids)
    clip = tt.encode_text(tokenizer, tt.video_token_string(1, num_tokens))  # <vid><frame> ... </frame></vid>
    for sentence in sentences:
        words = tt.encode_text(tokenizer, sentence)
        ids += words + clip
        labels += words + [clip[0]] + [IGNORE_INDEX] * (len(clip) - 2) + [clip[-1]]
        mask += [1] * (len(words) + 2) + [-1] * num_tokens + [1] * 2
    ids.append(tokenizer.eos_token_id)
    labels.append(tokenizer.eos_token_id)
    mask.append(1)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def collate(examples: Sequence[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of examples to tensors (ids: pad, labels: -100, attention_mask: 0)."""
    L = max(len(e["input_ids"]) for e in examples)
    fill = {"input_ids": pad_token_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    return {k: torch.tensor([e[k] + [v] * (L - len(e[k])) for e in examples]) for k, v in fill.items()}


# ----------------------------------------------------------------------------- the model
@dataclass
class DivotLLMOutput:
    loss: torch.Tensor
    lm_loss: torch.Tensor
    gen_loss: torch.Tensor
    logits: torch.Tensor
    hidden_states: torch.Tensor  # final-norm output states [B, L, hidden]


class DivotLLM(nn.Module):
    """``llm`` (MistralForCausalLM) + ``input_resampler`` + ``output_resampler`` (official names).

    ``frame_token_ids`` are the ids of ``<frame_00000>`` ... ``<frame_{N-1}>``: at those positions
    the model either reads a clip (embedding replaced) or, where ``attention_mask`` is -1, writes one.
    ``boi_token_id`` / ``eoi_token_id`` (``<frame>``, ``</frame>``) are needed for generation only.
    ``head``: ``"gmm"`` (official, k = ``num_gmm_kernel``), ``"gmm_k1"``, ``"mse"``, ``"diffusion"``
    or a module with ``loss(hidden, target_tokens)`` and ``sample(hidden, ...)``.

    Every sample of a batch must read the same number of clips and write the same number of clips
    (the official trainer masks clips per sample instead): batch comprehension and generation
    examples separately.
    """

    def __init__(self, llm_config: MistralConfig, token_dim: int, num_tokens: int,
                 frame_token_ids: Sequence[int], boi_token_id: int | None = None,
                 eoi_token_id: int | None = None, head: str | nn.Module = "gmm",
                 num_gmm_kernel: int = OFFICIAL_GMM_K, lm_loss_scale: float = 1.0,
                 gen_loss_scale: float = 1.0):
        super().__init__()
        if len(frame_token_ids) != num_tokens:
            raise ValueError(f"need {num_tokens} frame token ids, got {len(frame_token_ids)}")
        if max(frame_token_ids) >= llm_config.vocab_size or min(frame_token_ids) < 0:
            raise ValueError(f"frame token ids must lie in the vocabulary [0, {llm_config.vocab_size})")
        self.token_dim, self.num_tokens = token_dim, num_tokens
        self.boi_token_id, self.eoi_token_id = boi_token_id, eoi_token_id  # <frame>, </frame>
        self.lm_loss_scale, self.gen_loss_scale = lm_loss_scale, gen_loss_scale
        self.llm = MistralForCausalLM(llm_config)
        hidden = llm_config.hidden_size
        self.input_resampler = ProjectionLayer(token_dim, hidden)
        if isinstance(head, str):
            kw = {"k": num_gmm_kernel} if head == "gmm" else {}
            head = make_generation_head(head, hidden, token_dim, **kw)
        self.output_resampler = head
        self.register_buffer("frame_token_ids", torch.tensor(list(frame_token_ids)), persistent=False)

    @classmethod
    def mini(cls, tokenizer, token_dim: int = 32, num_tokens: int = tt.MINI_NUM_TOKENS,
             head: str | nn.Module = "gmm", **config_kwargs) -> "DivotLLM":
        """The course's model for a tokenizer from :func:`text_tokenizer.build_text_tokenizer`."""
        config = mini_mistral_config(len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id,
                                     pad_token_id=tokenizer.pad_token_id, **config_kwargs)
        return cls(config, token_dim, num_tokens, tt.frame_token_ids(tokenizer, num_tokens),
                   tt.special_token_id(tokenizer, tt.BOI_TOKEN),
                   tt.special_token_id(tokenizer, tt.EOI_TOKEN), head=head)

    @classmethod
    def full(cls, frame_token_ids: Sequence[int] | None = None, boi_token_id: int = 32004,
             eoi_token_id: int = 32005, head: str | nn.Module = "gmm") -> "DivotLLM":
        """The official sizes (build it under ``torch.device("meta")`` to inspect it for free).

        The official tokenizer is not released; by default the added tokens are assumed to follow
        Mistral's 32000 ids in the order <img> </img> <vid> </vid> <frame> </frame> <frame_00000>
        ... (so <frame> = 32004, </frame> = 32005, frame tokens from 32006). Pass your ids otherwise.
        """
        if frame_token_ids is None:
            frame_token_ids = range(32006, 32006 + OFFICIAL_NUM_TOKENS)
        return cls(mistral_7b_config(), OFFICIAL_TOKEN_DIM, OFFICIAL_NUM_TOKENS, list(frame_token_ids),
                   boi_token_id, eoi_token_id, head=head)

    # --------------------------------------------------------------- pieces
    def frame_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.isin(input_ids, self.frame_token_ids)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              video_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings, with the frame-token positions that are *not* queries (mask != -1)
        replaced, in order, by ``input_resampler(video_tokens)``; ``video_tokens`` [B, C, N, d]."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        read = self.frame_positions(input_ids)
        if attention_mask is not None:
            read &= attention_mask != -1
        if video_tokens is None:
            if read.any():
                raise ValueError("the sequence has frame tokens to read but no video_tokens were given")
            return embeds
        if video_tokens.ndim == 3:
            video_tokens = video_tokens[:, None]
        B, C, N, d = video_tokens.shape
        if B != input_ids.shape[0] or N != self.num_tokens or d != self.token_dim:
            raise ValueError(f"video_tokens must be [batch={input_ids.shape[0]}, clips, "
                             f"{self.num_tokens}, {self.token_dim}], got {tuple(video_tokens.shape)}")
        counts = read.sum(-1)
        if (counts != C * N).any():
            raise ValueError(f"each sample needs {C} clips x {N} frame-token positions to read, "
                             f"found {counts.tolist()}")
        projected = self.input_resampler(video_tokens.to(embeds.dtype)).reshape(B, C * N, -1)
        return embeds.masked_scatter(read[..., None], projected)

    def hidden_states(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None
                      ) -> torch.Tensor:
        """Final-norm output states, under the causal + bidirectional-query mask."""
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long,
                                        device=inputs_embeds.device)
        mask = attention_mask_4d(attention_mask, self.num_tokens, inputs_embeds.dtype,
                                 self.llm.config.sliding_window)
        out = self.llm.model(inputs_embeds=inputs_embeds, attention_mask=mask,
                             position_ids=position_ids_from_mask(attention_mask), use_cache=False)
        return out.last_hidden_state

    # --------------------------------------------------------------- training
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, video_tokens: torch.Tensor | None = None,
                target_tokens: torch.Tensor | None = None) -> DivotLLMOutput:
        """Next-token loss on labelled text + the head's loss at the query positions.

        ``video_tokens`` [B, C, N, d]: clips to read. ``target_tokens`` [B, N, d] or [B, C, N, d]:
        the clips to write, one per block of N positions marked -1 in ``attention_mask``.
        """
        embeds = self.embed(input_ids, attention_mask, video_tokens)
        hidden = self.hidden_states(embeds, attention_mask)
        logits = self.llm.lm_head(hidden)
        zero = hidden.new_zeros(())
        lm_loss = gen_loss = zero
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels {tuple(labels.shape)} must match input_ids "
                                 f"{tuple(input_ids.shape)}")
            target = labels[:, 1:]  # position t predicts token t+1
            if (target != IGNORE_INDEX).any():
                lm_loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(),
                                          ignore_index=IGNORE_INDEX)
        if target_tokens is not None:
            states = self.query_states(hidden, attention_mask, target_tokens)
            gen_loss = self.output_resampler.loss(
                states, target_tokens.reshape(-1, self.num_tokens, self.token_dim))
        loss = self.lm_loss_scale * lm_loss + self.gen_loss_scale * gen_loss
        return DivotLLMOutput(loss, lm_loss, gen_loss, logits, hidden)

    def query_states(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                     target_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """The output states at the query positions (mask == -1), as [B*C, N, hidden]."""
        if attention_mask is None:
            raise ValueError("mark the query positions with -1 in attention_mask")
        query = attention_mask == -1
        counts = query.sum(-1)
        if target_tokens is not None:
            if target_tokens.ndim == 3:
                target_tokens = target_tokens[:, None]
            clip_shape = (self.num_tokens, self.token_dim)
            if target_tokens.shape[0] != hidden.shape[0] or target_tokens.shape[2:] != clip_shape:
                raise ValueError(f"target_tokens must be [batch, clips, {self.num_tokens}, "
                                 f"{self.token_dim}], got {tuple(target_tokens.shape)}")
            expected = target_tokens.shape[1] * self.num_tokens
        else:
            expected = int(counts[0])
        if expected == 0 or (counts != expected).any():
            raise ValueError(f"every sample needs {expected} query positions (mask -1), "
                             f"found {counts.tolist()}")
        return hidden[query].reshape(-1, self.num_tokens, hidden.shape[-1])

    # --------------------------------------------------------------- inference
    @torch.no_grad()
    def generate_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      video_tokens: torch.Tensor | None = None,
                      logits_processor: LogitsProcessorList | None = None, **generate_kwargs
                      ) -> torch.Tensor:
        """Continue a prompt (clips read through ``video_tokens``) with ``llm.generate``; returns
        only the new ids. Frame tokens are forced/suppressed by :class:`FrameTokenForcing`."""
        if attention_mask is not None and (attention_mask == -1).any():
            raise ValueError("query blocks (-1) are for generate_video_tokens, not text generation")
        if logits_processor is None:
            boi, eoi = self._marker_ids()
            logits_processor = LogitsProcessorList(
                [FrameTokenForcing(boi, self.frame_token_ids.tolist(), eoi)])
        embeds = self.embed(input_ids, attention_mask, video_tokens)
        out = self.llm.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask,
                                logits_processor=logits_processor, **generate_kwargs)
        return out[:, input_ids.shape[1]:]

    def _marker_ids(self) -> tuple[int, int]:
        if self.boi_token_id is None or self.eoi_token_id is None:
            raise ValueError("this model was built without boi_token_id/eoi_token_id (the ids of "
                             "<frame> and </frame>); pass them to DivotLLM(...)")
        return self.boi_token_id, self.eoi_token_id

    @torch.no_grad()
    def generation_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                          video_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """The output states [B, N, hidden] the head turns into a clip: the prompt
        (``... [/INST]\\n<vid>``, left-padded in a batch) + ``<frame>`` + N queries (no ``</frame>``),
        one forward under the causal + bidirectional-query mask."""
        B = input_ids.shape[0]
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        boi, _ = self._marker_ids()
        queries = torch.cat([torch.full_like(input_ids[:, :1], boi),
                             self.frame_token_ids.to(input_ids.device).expand(B, -1)], 1)
        ids = torch.cat([input_ids, queries], 1)
        mask = torch.cat([attention_mask, torch.ones_like(queries[:, :1]),
                          torch.full_like(queries[:, 1:], -1)], 1)
        hidden = self.hidden_states(self.embed(ids, mask, video_tokens), mask)
        return self.query_states(hidden, mask)

    @torch.no_grad()
    def generate_video_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                              video_tokens: torch.Tensor | None = None, sample: bool = True,
                              **sample_kwargs) -> torch.Tensor:
        """The official one-pass clip generation: :meth:`generation_states`, then the head.
        Returns [B, N, d]. ``sample=False`` gives the head's deterministic prediction (GMM: the
        mixture mean; MSE: the regression); ``sample_kwargs`` go to ``head.sample``.
        """
        states = self.generation_states(input_ids, attention_mask, video_tokens)
        return self.write_tokens(states, sample, **sample_kwargs)

    def write_tokens(self, states: torch.Tensor, sample: bool = True, **sample_kwargs) -> torch.Tensor:
        """Query states [B, N, hidden] -> clip tokens [B, N, d]: a head sample, or its deterministic
        prediction (``sample=False``)."""
        if sample:
            return self.output_resampler.sample(states, **sample_kwargs)
        return self.output_resampler.predict(states)

    @torch.no_grad()
    def generate_interleaved(self, input_ids: Sequence[int], eos_token_id: int, vid_token_id: int,
                             vid_end_token_id: int, max_new_tokens: int = 128, max_clips: int = 4,
                             temperature: float = 0.0, **sample_kwargs) -> list[tuple[str, object]]:
        """Greedy text with clips written where the model opens one (storytelling).

        One prompt (a list of ids, e.g. :func:`text_tokenizer.instruction_ids`); the ids of ``</s>``,
        ``<vid>`` and ``</vid>``. Text is greedy; the
        model never writes frame tokens itself. When it writes ``<vid>``, ``<frame>`` + N query
        positions (mask -1) are appended, one forward writes the clip (head on their states, as
        :meth:`generate_video_tokens`), ``</frame>`` closes it and writing goes on -- with the clip's
        query block staying in the sequence, bidirectional, exactly as :func:`story_example` trains
        it. No KV cache: every step is a full forward under the 4-D mask (short sequences here).

        Returns ``[("text", [ids]), ("clip", tokens [N, d]), ...]`` in order (``<vid>`` / ``</vid>``
        and EOS are not in the text segments). Stops at EOS, after ``max_new_tokens`` generated ids
        (clip positions excluded) or when the model opens clip ``max_clips + 1``.
        """
        boi, eoi = self._marker_ids()
        device = self.frame_token_ids.device
        ids, mask = list(input_ids), [1] * len(input_ids)
        never = torch.cat([self.frame_token_ids, torch.tensor([boi, eoi], device=device)])
        out: list[tuple[str, object]] = []
        text: list[int] = []
        clips = 0

        def forward():
            x, m = torch.tensor([ids], device=device), torch.tensor([mask], device=device)
            return self.hidden_states(self.embed(x, m), m), m

        for _ in range(max_new_tokens):
            hidden, _ = forward()
            logits = self.llm.lm_head(hidden[:, -1]).float()
            logits[:, never] = float("-inf")
            if temperature > 0:
                probs = (logits / temperature).softmax(-1)
                nxt = int(torch.multinomial(probs, 1, generator=sample_kwargs.get("generator")))
            else:
                nxt = int(logits.argmax(-1))
            if nxt in (eos_token_id, vid_token_id) and text:
                out.append(("text", text))
                text = []
            if nxt == eos_token_id or (nxt == vid_token_id and clips >= max_clips):
                break
            ids.append(nxt)
            mask.append(1)
            if nxt != vid_token_id:
                if nxt != vid_end_token_id:
                    text.append(nxt)
                continue
            ids += [boi, *self.frame_token_ids.tolist()]
            mask += [1] + [-1] * self.num_tokens
            hidden, m = forward()
            states = self.query_states(hidden, m)[-1:]  # the block just opened
            out.append(("clip", self.write_tokens(states, **sample_kwargs)[0]))
            clips += 1
            ids.append(eoi)
            mask.append(1)
        if text:
            out.append(("text", text))
        return out
