"""The public API on the shipped mini weights, as a new user meets it (README example included)."""
import re
import warnings
from pathlib import Path

import pytest
import torch

import divot_mini
from divot_mini.data import MovingShapes
from divot_mini.divot import MINI_MAX_ANSWER_TOKENS, OffScriptWarning

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def mini():
    return divot_mini.load_divot("mini", verbose=False)


@pytest.fixture(scope="module")
def clips():
    return MovingShapes("test", size=4)[[0, 1, 2, 3]]["video"]


def test_uint8_clip_is_read_as_pixels_not_misread(mini, clips):
    pixels = ((clips + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    assert mini.describe(pixels) == mini.describe(clips)
    torch.testing.assert_close(mini.tokenize(pixels), mini.tokenize(clips), atol=2e-2, rtol=0)
    with pytest.raises(TypeError, match="dtype torch.int64.*uint8"):
        mini.tokenize(pixels.long())
    with pytest.raises(ValueError, match=r"\[-1, 1\].*127.5"):
        mini.tokenize(pixels.float())  # float pixels 0..255: not guessed, named


def test_answers_stop_and_off_script_questions_warn(mini, clips):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a taught question: no warning
        mini.answer(clips[0], "what shape is it?")
    for question in ("is it a circle?", "describe the video."):
        with pytest.warns(OffScriptWarning, match="outside what the mini model was taught"):
            text = mini.answer(clips[0], question)
        assert len(text.split()) <= MINI_MAX_ANSWER_TOKENS  # a bounded answer, not 32 repeats


def test_unknown_words_name_the_users_words_not_the_internal_prompt(mini, clips):
    for call in (lambda: mini.generate("a dog running on the beach"),
                 lambda: mini.answer(clips[0], "what is the man doing?"),
                 lambda: mini.story("tell me a story about a dog")):
        with pytest.raises(ValueError) as err:
            call()
        msg = str(err.value)
        assert "dog" in msg or "man" in msg
        assert "<frame" not in msg and "[INST]" not in msg and "circle" in msg  # the vocabulary, shown


def test_story_samples_at_temperature_one_by_default_and_flags_other_instructions(mini, monkeypatch):
    seen = {}
    real = mini.llm.generate_interleaved

    def spy(*args, **kwargs):
        seen["temperature"] = kwargs["temperature"]
        return real(*args, **{**kwargs, "max_new_tokens": 4})

    monkeypatch.setattr(mini.llm, "generate_interleaved", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mini.story("generate a story about a red circle")
    assert seen["temperature"] == 1.0
    with pytest.warns(OffScriptWarning, match="generate a story about a"):
        mini.story("generate a video of a red circle moves left")


def test_generate_takes_a_batch_with_per_prompt_seeds(mini):
    prompts = ["a red circle moves left", "a blue square moves up"]
    batch = mini.generate(prompts, seed=[3, 7], steps=2)
    assert batch.shape == (2, 16, 3, 32, 32)
    torch.testing.assert_close(batch[1], mini.generate(prompts[1], seed=7, steps=2))
    torch.testing.assert_close(mini.generate(prompts, seed=3, steps=2)[1], mini.generate(prompts[1], seed=4, steps=2))
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        mini.generate(prompts, seed=[1])
    with pytest.raises(ValueError, match="non-empty"):
        mini.generate([])


def test_readme_api_example_runs_as_written_on_mini():
    text = README.read_text()
    section = text[text.index("## The switch"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'load_divot("mini")' in block and "full" not in block
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["tokens"].shape == (16, 32)
    assert namespace["clips"].shape == (2, 16, 3, 32, 32)
    assert any(kind == "clip" for kind, _ in namespace["parts"])
