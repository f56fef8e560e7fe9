"""The word-level text tokenizer: vocabulary from data.py, special tokens, instruction format."""
import pytest
import torch
from transformers import PreTrainedTokenizerFast

from divot_mini import data
from divot_mini import text_tokenizer as tt

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return tt.build_text_tokenizer()


def test_vocabulary_covers_every_text_of_the_dataset_and_nothing_is_unknown(tok):
    vocab = set(tt.course_vocabulary())
    assert set(data.SHAPES) | set(data.COLOURS) | set(data.MOTIONS) <= vocab
    assert {"?", ".", "then", "story", "generate", "video"} <= vocab
    ds = data.MovingShapesStories("train", size=8)
    texts = [t for i in range(4) for t in ds[i]["sentences"] + [ds[i]["instruction"]]]
    texts += [t for q, a in data.questions(0, 1, 2) for t in (q, a)]
    for text in texts + tt.course_texts():
        ids = tt.encode_text(tok, text)  # raises on an unknown word
        assert tok.unk_token_id not in ids


def test_round_trip_of_course_texts(tok):
    texts = [data.caption(2, 3, 1), data.partial_caption(0, 1, 2, "shape"),
             *data.story_sentences(1, 0, [0, 3, 2]), "what colour is the shape?"]
    for text in texts:
        assert tok.decode(tt.encode_text(tok, text)) == text
    # words are single ids, punctuation is split off
    assert tok.convert_ids_to_tokens(tt.encode_text(tok, "then it moves up.")) == \
        ["then", "it", "moves", "up", "."]
    # lower-casing: the official capitalised template maps to the same ids
    assert tt.encode_text(tok, "Generate a video of a red circle moves left") == \
        tt.encode_text(tok, "generate a video of a red circle moves left")


def test_special_tokens_are_single_distinct_ids(tok):
    names = [tt.IMG_BOI_TOKEN, tt.IMG_EOI_TOKEN, tt.VID_BOI_TOKEN, tt.VID_EOI_TOKEN, tt.BOI_TOKEN,
             tt.EOI_TOKEN, tt.INST_OPEN, tt.INST_CLOSE, "\n"] + [tt.frame_token(i) for i in range(16)]
    ids = [tt.special_token_id(tok, n) for n in names]
    assert len(set(ids)) == len(ids)
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 3)
    assert tt.num_frame_tokens(tok) == 16 and "<frame_00016>" not in tok.get_vocab()
    assert tt.num_frame_tokens(tt.build_text_tokenizer(num_frame_tokens=64)) == 64
    assert tt.frame_token_ids(tok, 3) == tok.convert_tokens_to_ids(["<frame_00000>", "<frame_00001>",
                                                                    "<frame_00002>"])
    with pytest.raises(ValueError, match="frame tokens"):
        tt.frame_token_ids(tok, 17)
    # special tokens are recognised with no spaces around them, as the official strings are written
    s = tt.video_token_string(2, 3)
    assert s == "<vid>" + ("<frame><frame_00000><frame_00001><frame_00002></frame>" * 2) + "</vid>"
    ids = tt.encode_text(tok, s)
    assert len(ids) == 2 + 2 * (3 + 2)
    assert tok.decode(ids, skip_special_tokens=True) == ""


def test_instruction_format(tok):
    assert tt.instruction_prompt("what shape is it?") == "[INST] what shape is it? [/INST]\n"
    ids = tt.instruction_ids(tok, tt.video_token_string(1, 2) + "what shape is it?")
    assert tok.convert_ids_to_tokens(ids) == [
        "<s>", "[INST]", "<vid>", "<frame>", "<frame_00000>", "<frame_00001>", "</frame>", "</vid>",
        "what", "shape", "is", "it", "?", "[/INST]", "\n"]
    # encode() adds BOS like Mistral's tokenizer; the course adds it by hand, as the official code
    assert tok.encode("a red circle")[0] == tok.bos_token_id
    assert tok.encode("a red circle", add_special_tokens=False)[0] != tok.bos_token_id


def test_unknown_words_map_to_unk_in_the_tokenizer_and_raise_in_the_course_helpers(tok):
    assert tok.encode("a purple circle", add_special_tokens=False)[1] == tok.unk_token_id
    with pytest.raises(ValueError, match=r"\['purple', 'blob'\]"):
        tt.encode_text(tok, "a purple blob moves left")
    with pytest.raises(ValueError, match="purple"):
        tt.instruction_ids(tok, "generate a video of a purple circle")
    bigger = tt.build_text_tokenizer(extra_words=("a purple blob",))
    assert bigger.unk_token_id not in tt.encode_text(bigger, "a purple blob moves left")


def test_bad_arguments_raise(tok):
    with pytest.raises(ValueError):
        tt.build_text_tokenizer(num_frame_tokens=0)
    with pytest.raises(ValueError):
        tt.video_token_string(0, 16)
    with pytest.raises(ValueError):
        tt.clip_token_string(0)
    with pytest.raises(ValueError, match="single token"):
        tt.special_token_id(tok, "<frame_09999>")


def test_save_and_reload(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    text = tt.instruction_prompt(tt.video_token_string(1, 16) + "which way does it move?") + "left"
    assert again.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert len(again) == len(tok)
