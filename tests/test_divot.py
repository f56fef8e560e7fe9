"""The public switch: load_divot("full", <official layout>) and the Divot verbs, on a synthetic
release in the official file layout (reduced sizes, random weights)."""
from dataclasses import replace

import pytest
import torch

import divot_mini
from divot_mini import official_synthetic as S
from divot_mini import text_tokenizer as tt
from divot_mini.data import sample_indices_5_of_16
from divot_mini.divot import FULL_DECODE, Divot
from divot_mini.frozen_vit import official_resize

SMALL = replace(FULL_DECODE, steps=2, size=16)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return S.write_synthetic_release(tmp_path_factory.mktemp("divot"), fmt="safetensors",
                                     agents=("sft_gen", "sft_comp"))


@pytest.fixture(scope="module")
def divot(release):
    return divot_mini.load_divot("full", release.root, configs=release.configs, decode=SMALL)


def video(b=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 16, 3, size, size, generator=g) * 2 - 1


def test_full_switch_loads_each_task_component(divot):
    assert divot.scale == "full"
    # official: stage 1 reconstructs, stage 2 decodes generations; one LLM per task
    assert divot.reconstruction_detokenizer is not divot.detokenizer
    assert divot.comprehension_llm is not divot.llm
    assert "full" in repr(divot)


def test_tokenize_reads_the_five_sampled_frames_resized_like_official(divot, release):
    v = video(size=24)  # any size: the full ViT resizes as the official preprocessing
    tokens = divot.tokenize(v)
    c = release.configs
    assert tokens.shape == (2, c.num_tokens, c.token_dim)
    frames = official_resize(v[:, sample_indices_5_of_16(16)], c.vit.image_size)
    expected = divot.tokenizer(divot.vit(frames))
    torch.testing.assert_close(tokens, expected)
    assert divot.tokenize(v[0]).shape == (c.num_tokens, c.token_dim)  # one clip without batch dim


def test_detokenize_is_seeded_and_uses_cfg(divot, release):
    tokens = divot.tokenize(video(1))
    a, b = divot.detokenize(tokens, seed=3), divot.detokenize(tokens, seed=3)
    assert a.shape == (1, 16, 3, 16, 16) and torch.equal(a, b)
    assert a.abs().max() <= 1
    no_cfg = divot.detokenize(tokens, seed=3, guidance_scale=1.0)
    assert not torch.equal(a, no_cfg)
    assert divot.reconstruct(video(1)[0]).shape == (16, 3, 16, 16)


def test_describe_and_answer_return_text(divot):
    v = video(2)
    texts = divot.describe(v, max_new_tokens=3)
    assert isinstance(texts, list) and len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert isinstance(divot.answer(v[0], "what colour is the shape?", max_new_tokens=3), str)


class Scripted:
    """Stands in for the LLM's text generation only: replies with scripted words, records calls."""

    def __init__(self, llm, tok, replies):
        self.llm, self.tok, self.replies, self.calls = llm, tok, list(replies), []

    def __call__(self, input_ids, attention_mask=None, video_tokens=None, **kw):
        self.calls.append((input_ids[0].tolist(), None if video_tokens is None else tuple(video_tokens.shape)))
        words = self.replies.pop(0)
        ids = [tt.special_token_id(self.tok, w) if w.startswith("<") else
               tt.encode_text(self.tok, w)[0] for w in words]
        return torch.tensor([ids])


def test_generate_writes_one_clip_after_vid(divot, monkeypatch):
    tok = divot.text_tokenizer
    script = Scripted(divot.llm, tok, [["<vid>"]])
    monkeypatch.setattr(divot.llm, "generate_text", script)
    clip = divot.generate("a red circle moves left", seed=1)
    assert clip.shape == (16, 3, 16, 16) and torch.isfinite(clip).all()
    again = Scripted(divot.llm, tok, [["<vid>"]])
    monkeypatch.setattr(divot.llm, "generate_text", again)
    assert torch.equal(clip, divot.generate("a red circle moves left", seed=1))  # seeded


def test_generate_without_vid_names_what_the_model_wrote(divot, monkeypatch):
    monkeypatch.setattr(divot.llm, "generate_text", Scripted(divot.llm, divot.text_tokenizer, [["red"]]))
    with pytest.raises(RuntimeError, match="did not write <vid>.*red"):
        divot.generate("a red circle moves left")


def test_story_interleaves_text_and_clips_keeping_written_clips_as_query_blocks(divot, monkeypatch):
    tok, llm = divot.text_tokenizer, divot.llm
    script = [tt.special_token_id(tok, w) if w.startswith("<") else tt.encode_text(tok, w)[0]
              for w in ["red", "<vid>", "</vid>", "blue", "<vid>", "</vid>", "</s>"]]
    vocab = llm.llm.config.vocab_size

    def scripted_head(hidden):  # the greedy choice of each text step, one after another
        return torch.nn.functional.one_hot(torch.tensor([script.pop(0)]), vocab).float() * 10

    masks = []
    real_hidden_states = llm.hidden_states
    monkeypatch.setattr(llm.llm.lm_head, "forward", scripted_head)
    monkeypatch.setattr(llm, "hidden_states", lambda e, m: masks.append(m.clone()) or real_hidden_states(e, m))
    story = divot.story("generate a story about a red circle")
    assert [kind for kind, _ in story] == ["text", "clip", "text", "clip"]
    assert story[0][1] == "red" and story[2][1] == "blue"
    assert story[1][1].shape == (16, 3, 16, 16) and not torch.equal(story[1][1], story[3][1])
    # the last forward still holds both written clips as bidirectional query blocks (-1)
    assert int((masks[-1] == -1).sum()) == 2 * llm.num_tokens
    assert not script  # every scripted step was used; generation stopped at </s>
    again = divot.story  # seeded: the same instruction and seed give the same clips
    script += [tt.special_token_id(tok, w) if w.startswith("<") else tt.encode_text(tok, w)[0]
               for w in ["red", "<vid>", "</vid>", "blue", "<vid>", "</vid>", "</s>"]]
    assert torch.equal(again("generate a story about a red circle")[1][1], story[1][1])


def test_bad_inputs_get_clear_errors(divot, release):
    with pytest.raises(ValueError, match="scale must be"):
        divot_mini.load_divot("huge")
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        divot_mini.load_divot("full")
    with pytest.raises(ValueError, match="checkpoint_dir is for"):
        divot_mini.load_divot("mini", release.root)
    with pytest.raises(ValueError, match=r"16 frames"):
        divot.tokenize(torch.zeros(2, 8, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        divot.tokenize(torch.full((16, 3, 16, 16), 255.0))
    with pytest.raises(TypeError, match="tensor"):
        divot.tokenize([[0.0]])
    with pytest.raises(TypeError, match="unknown decode setting"):
        divot.detokenize(torch.zeros(4, 8), stepz=3)
    with pytest.raises(ValueError, match="non-empty"):
        divot.generate("  ")
    bare = Divot(divot.vit, divot.tokenizer, scale="full")
    with pytest.raises(RuntimeError, match="without detokenizer"):
        bare.detokenize(torch.zeros(4, 8))
    with pytest.raises(RuntimeError, match="comprehension_llm"):
        bare.describe(video(1))


def test_missing_release_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Divot_tokenizer.bin"):
        divot_mini.load_divot("full", tmp_path, tasks="reconstruction")


def test_mini_switch_loads_the_shipped_course_weights():
    from divot_mini.data import MovingShapes
    from divot_mini.llm_evaluation import UNKNOWN, parse_caption

    mini = divot_mini.load_divot("mini", verbose=False)
    assert mini.scale == "mini" and mini.decode.size == 32
    clip = MovingShapes("test")[0]["video"]
    tokens = mini.tokenize(clip)
    assert tokens.shape == (16, 32)
    assert mini.detokenize(tokens, steps=2).shape == (16, 3, 32, 32)
    caption = mini.describe(clip)
    # the trained model answers in the course's caption format: every attribute named exactly once
    assert UNKNOWN not in parse_caption(caption).values(), caption
