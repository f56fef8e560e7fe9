"""The LLM's text tokenizer: one id per word of the course, plus Divot's special tokens.

Divot-LLM reads and writes text with Mistral's SentencePiece tokenizer, extended with the tokens
that mark video in the sequence (official vocabulary 32,262 = 32,000 + 262 added tokens):

    <vid> <frame> <frame_00000> ... <frame_00063> </frame> <frame> ... </frame> </vid>
    (a video: ``<vid>``, then one ``<frame>`` ... ``</frame>`` block of N frame tokens per 2-s clip)

and ``<img>`` ``</img>`` for still images. The N frame tokens of a clip are placeholders: the LLM
never sees their word embeddings when it *reads* a clip (they are replaced by the projected Divot
tokens), and when it *writes* a clip they are the learnable queries whose output states predict the
clip's tokens. The same N ids repeat in every clip.

Moving Shapes needs a few dozen words, so the course uses a **word-level** vocabulary built from
``data.py`` (every caption, partial caption, question, answer, story sentence and instruction the
dataset can produce) instead of a 32k-piece one. It is a real ``tokenizers`` tokenizer wrapped as a
``transformers.PreTrainedTokenizerFast``, so ``generate()``, ``decode()`` and ``save_pretrained()``
work as with Mistral's. Text is lower-cased and punctuation is split off (``"it?"`` -> ``it``, ``?``).

**Unknown words.** The tokenizer itself maps a word outside the vocabulary to ``<unk>`` (like every
Hugging Face tokenizer, so decoding or generating never crashes). The course's own entry points,
:func:`encode_text` and :func:`instruction_ids`, are strict: they raise a ``ValueError`` naming the
unknown words, because a silent ``<unk>`` in a training prompt is a bug, not data.

**How many frame-token ids.** The official tokenizer files are not released; 262 added tokens = the
6 markers + 256 frame tokens ``<frame_00000>`` ... ``<frame_00255>`` is the split that fits (its
generation code also builds ``<frame_00099>`` by default, so there are at least 100). Only the first
64 (N at full size) are ever used. The course's tokenizer carries exactly ``num_frame_tokens`` ids,
default 16 = the mini tokenizer's N: unused ids would only be embedding rows that never train.
"""
from __future__ import annotations

import itertools
import re

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from . import data

# Special tokens, spelled as in the official code.
IMG_BOI_TOKEN, IMG_EOI_TOKEN = "<img>", "</img>"
VID_BOI_TOKEN, VID_EOI_TOKEN = "<vid>", "</vid>"
BOI_TOKEN, EOI_TOKEN = "<frame>", "</frame>"
FRAME_TOKEN = "<frame_{:05d}>"
BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, PAD_TOKEN = "<s>", "</s>", "<unk>", "<pad>"  # Mistral's bos/eos/unk
INST_OPEN, INST_CLOSE = "[INST]", "[/INST]"

OFFICIAL_NUM_FRAME_TOKENS = 256  # inferred: 32262 - 32000 - 6 markers (see the module docstring)
MINI_NUM_TOKENS = 16  # N of the mini tokenizer (TokenizerConfig.mini().num_tokens)

# The official prompts, in the course's words (the tokenizer lower-cases, so "Generate" works too).
INSTRUCTION_PROMPT = "[INST] {instruction} [/INST]\n"
GENERATE_VIDEO = "generate a video of {caption}"  # official: "Generate a video of {caption}"
DESCRIBE_VIDEO = "what does this video describe?"  # official demo: "What does this video describe?"


def frame_token(i: int) -> str:
    return FRAME_TOKEN.format(i)


def clip_token_string(num_tokens: int) -> str:
    """One clip: ``<frame>`` + N frame tokens + ``</frame>``."""
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    return BOI_TOKEN + "".join(frame_token(i) for i in range(num_tokens)) + EOI_TOKEN


def video_token_string(num_clips: int, num_tokens: int) -> str:
    """A video: ``<vid>`` + one clip block per 2-s clip + ``</vid>`` (the official layout)."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    return VID_BOI_TOKEN + clip_token_string(num_tokens) * num_clips + VID_EOI_TOKEN


def instruction_prompt(instruction: str) -> str:
    """The official (Mistral-Instruct) format: ``"[INST] {instruction} [/INST]\\n"``."""
    return INSTRUCTION_PROMPT.format(instruction=instruction)


# ----------------------------------------------------------------------------- vocabulary
def _normalizer():
    return normalizers.Lowercase()


def _pre_tokenizer():
    # Split on whitespace, then isolate every punctuation character: "left." -> "left", "."
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def _words(text: str) -> list[str]:
    text = _normalizer().normalize_str(text)
    return [w for w, _ in _pre_tokenizer().pre_tokenize_str(text)]


def course_texts() -> list[str]:
    """Every text Moving Shapes can produce, plus the instruction templates (collected from data.py)."""
    texts = [DESCRIBE_VIDEO]
    for s, c, m in itertools.product(range(len(data.SHAPES)), range(len(data.COLOURS)),
                                     range(len(data.MOTIONS))):
        cap = data.caption(s, c, m)
        texts += [cap, GENERATE_VIDEO.format(caption=cap), data.story_instruction(s, c)]
        for leave_out in data.ATTRIBUTES:
            part = data.partial_caption(s, c, m, leave_out)
            texts += [part, GENERATE_VIDEO.format(caption=part)]
        texts += [f"{q} {a}" for q, a in data.questions(s, c, m)]
        texts += data.story_sentences(s, c, [m, *range(len(data.MOTIONS))])
    return texts


def course_vocabulary() -> list[str]:
    """The sorted word list (punctuation included) of :func:`course_texts`."""
    return sorted({w for t in course_texts() for w in _words(t)})


# ----------------------------------------------------------------------------- the tokenizer
def build_text_tokenizer(num_frame_tokens: int = MINI_NUM_TOKENS,
                         extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """The course's tokenizer. Ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2 (as Mistral), ``<pad>`` 3, the
    words, ``[INST]`` ``[/INST]`` and the newline, then the video special tokens in the order
    ``<img> </img> <vid> </vid> <frame> </frame> <frame_00000> ...`` (each a single id).

    ``encode(text)`` prepends ``<s>`` like Mistral's tokenizer; the official code (and this course)
    always encodes with ``add_special_tokens=False`` and adds BOS by hand (:func:`instruction_ids`).
    """
    if num_frame_tokens <= 0:
        raise ValueError(f"num_frame_tokens must be positive, got {num_frame_tokens}")
    specials = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN]
    words = sorted(set(course_vocabulary()) | {w for t in extra_words for w in _words(t)})
    vocab = {w: i for i, w in enumerate(specials + [w for w in words if w not in specials])}

    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    backend.normalizer = _normalizer()
    backend.pre_tokenizer = _pre_tokenizer()
    # WordPiece's decoder with a prefix no word uses = join with spaces, then glue punctuation back
    # ("left ." -> "left."), so decode(encode(caption)) == caption.
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, vocab[BOS_TOKEN])])

    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                                  unk_token=UNK_TOKEN, pad_token=PAD_TOKEN,
                                  clean_up_tokenization_spaces=False)
    # Matched in the raw text before lower-casing and splitting: "[/INST]" stays one token (in
    # Mistral's tokenizer it is a few ordinary pieces; one id is simpler and changes nothing here).
    tok.add_tokens([AddedToken(t, normalized=False, single_word=False) for t in
                    (INST_OPEN, INST_CLOSE, "\n")])
    video = [IMG_BOI_TOKEN, IMG_EOI_TOKEN, VID_BOI_TOKEN, VID_EOI_TOKEN, BOI_TOKEN, EOI_TOKEN]
    video += [frame_token(i) for i in range(num_frame_tokens)]
    tok.add_special_tokens({"additional_special_tokens": video})
    return tok


def num_frame_tokens(tokenizer: PreTrainedTokenizerFast) -> int:
    """How many ``<frame_xxxxx>`` ids the tokenizer carries."""
    vocab = tokenizer.get_vocab()
    n = 0
    while frame_token(n) in vocab:
        n += 1
    return n


def frame_token_ids(tokenizer: PreTrainedTokenizerFast, num_tokens: int) -> list[int]:
    """The ids of ``<frame_00000>`` ... ``<frame_{N-1}>``; ValueError if the tokenizer has fewer."""
    have = num_frame_tokens(tokenizer)
    if num_tokens > have:
        raise ValueError(f"the tokenizer has {have} frame tokens, {num_tokens} were asked for; "
                         f"build it with build_text_tokenizer(num_frame_tokens={num_tokens})")
    return tokenizer.convert_tokens_to_ids([frame_token(i) for i in range(num_tokens)])


def special_token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        raise ValueError(f"{token!r} is not a single token of this tokenizer")
    return ids[0]


def unknown_words(tokenizer: PreTrainedTokenizerFast, text: str) -> list[str]:
    """The words of ``text`` (as written) that the tokenizer maps to ``<unk>``."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [text[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
            if i == tokenizer.unk_token_id]


def encode_text(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Ids of ``text`` without BOS; ValueError naming any word outside the vocabulary."""
    unknown = unknown_words(tokenizer, text)
    if unknown:
        raise ValueError(f"words outside the course vocabulary: {unknown} in {text!r} "
                         "(add them with build_text_tokenizer(extra_words=...))")
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def instruction_ids(tokenizer: PreTrainedTokenizerFast, instruction: str) -> list[int]:
    """``[BOS] + ids("[INST] {instruction} [/INST]\\n")``, as the official scripts build prompts."""
    return [tokenizer.bos_token_id] + encode_text(tokenizer, instruction_prompt(instruction))


def decode_words(tokenizer: PreTrainedTokenizerFast, ids) -> str:
    """Text of generated ids without special tokens, spaces normalised."""
    return re.sub(r"\s+", " ", tokenizer.decode(ids, skip_special_tokens=True)).strip()
