"""Storytelling: the interleaved layout, story tables and batches, greedy interleaved generation and
the consistency score."""
import pytest
import torch

from divot_mini import llm_evaluation as LE
from divot_mini import llm_training as LT
from divot_mini import text_tokenizer as tt
from divot_mini.divot_llm import IGNORE_INDEX, story_example
from divot_mini.linear_probe import LinearProbes

torch.set_num_threads(1)
N, D = tt.MINI_NUM_TOKENS, 32


@pytest.fixture(scope="module")
def tok():
    return tt.build_text_tokenizer()


def small_model(tok, seed=0):
    torch.manual_seed(seed)
    return LT.StandardizedDivotLLM.mini(tok, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                        num_key_value_heads=1, intermediate_size=128)


def test_story_example_layout(tok):
    ex = story_example(tok, "generate a story about a red circle", ["a red circle moves left.", "then it moves up."])
    ids, labels, mask = ex["input_ids"], ex["labels"], ex["attention_mask"]
    assert len(ids) == len(labels) == len(mask)
    vid, evid = tt.special_token_id(tok, tt.VID_BOI_TOKEN), tt.special_token_id(tok, tt.VID_EOI_TOKEN)
    boi, eoi = tt.special_token_id(tok, tt.BOI_TOKEN), tt.special_token_id(tok, tt.EOI_TOKEN)
    assert ids.count(vid) == ids.count(evid) == ids.count(boi) == ids.count(eoi) == 2
    assert mask.count(-1) == 2 * N and ids[-1] == tok.eos_token_id
    for i, t in enumerate(ids):  # the queries are exactly the frame tokens
        assert (mask[i] == -1) == (t in tt.frame_token_ids(tok, N))
    assert [labels[i] for i, t in enumerate(ids) if t in (vid, evid)] == [vid, evid, vid, evid]
    assert all(labels[i] == IGNORE_INDEX for i, t in enumerate(ids) if t in (boi, eoi) or mask[i] == -1)
    text = tt.decode_words(tok, [l for l, t in zip(labels, ids) if l != IGNORE_INDEX and t not in (vid, evid)][:-1])
    assert text == "a red circle moves left. then it moves up."
    with pytest.raises(ValueError, match="at least one sentence"):
        story_example(tok, "generate a story about a red circle", [])


def test_story_table_and_batches(tok):
    M, C = 6, 3
    tokens = torch.randn(M, C, N, D)
    with pytest.raises(ValueError, match="motion"):
        LT.StoryTable(tokens, torch.zeros(M, dtype=torch.long), torch.zeros(M, dtype=torch.long),
                      torch.zeros(M, dtype=torch.long))
    stories = LT.StoryTable(tokens, torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2, 3, 0, 1]),
                            torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1], [0, 2, 1], [1, 3, 2]]))
    model = small_model(tok)
    table = LT.synthetic_token_table(32)
    with pytest.raises(ValueError, match="needs a StoryTable"):
        LT.DivotLLMTraining(model, tok, table, total_steps=4, story_batch=2)
    task = LT.DivotLLMTraining(model, tok, table, total_steps=4, comp_batch=0, gen_batch=0, stories=stories,
                               story_batch=4, lr=3e-3)
    batch = task.make_batch(0)
    assert set(batch) == {"story"} and batch["story"]["target_tokens"].shape == (4, C, N, D)
    assert ((batch["story"]["attention_mask"] == -1).sum(-1) == C * N).all()
    out = task.losses(batch)
    assert out["story_lm"] > 0 and torch.isfinite(out["story_gmm"]) and out["gmm"] == 0
    first = out["loss"].item()
    LT.fit(task, progress=False)
    assert task.losses(batch)["loss"].item() < first


def test_generate_interleaved_writes_where_the_model_opens_a_clip(tok, monkeypatch):
    model = small_model(tok).eval()
    vid, evid = tt.special_token_id(tok, tt.VID_BOI_TOKEN), tt.special_token_id(tok, tt.VID_EOI_TOKEN)
    words = lambda *w: [tt.special_token_id(tok, x) if x.startswith("<") else tt.encode_text(tok, x)[0] for x in w]
    script = words("red", "<vid>", "</vid>", "then", "<vid>", "</vid>", "<vid>")
    vocab = model.llm.config.vocab_size
    monkeypatch.setattr(model.llm.lm_head, "forward",
                        lambda h: torch.nn.functional.one_hot(torch.tensor([script.pop(0)]), vocab).float())
    prompt = tt.instruction_ids(tok, "generate a story about a red circle")
    parts = model.generate_interleaved(prompt, tok.eos_token_id, vid, evid, max_clips=2,
                                       generator=torch.Generator().manual_seed(0))
    assert [k for k, _ in parts] == ["text", "clip", "text", "clip"]  # the third <vid> exceeds max_clips
    assert parts[0][1] == words("red") and parts[1][1].shape == (N, D)
    sentences, clips = LE.split_story(parts)
    assert [tt.decode_words(tok, s) for s in sentences] == ["red", "then"] and len(clips) == 2


def test_generate_interleaved_never_writes_frame_tokens(tok):
    model = small_model(tok).eval()
    vid, evid = tt.special_token_id(tok, tt.VID_BOI_TOKEN), tt.special_token_id(tok, tt.VID_EOI_TOKEN)
    with torch.no_grad():  # make frame tokens the overwhelming favourite: they must still be refused
        model.llm.lm_head.weight[model.frame_token_ids] += 100.0
    parts = model.generate_interleaved(tt.instruction_ids(tok, "generate a story about a red circle"),
                                       tok.eos_token_id, vid, evid, max_new_tokens=5)
    written = [t for k, v in parts if k == "text" for t in v]
    assert not set(written) & set(model.frame_token_ids.tolist())


def test_story_consistency():
    red_circle = {"shape": 0, "colour": 0}
    sents = ["a red circle moves left.", "then it moves up.", "then it moves right."]
    clips = [{**red_circle, "motion": m} for m in (0, 2, 1)]
    assert LE.story_consistency(sents, clips, 0, 0) == dict(format=True, object=True, motion=True, consistent=True)
    wrong_motion = [{**red_circle, "motion": m} for m in (0, 2, 3)]
    assert LE.story_consistency(sents, wrong_motion, 0, 0)["consistent"] is False
    blue = [dict(c, colour=2) for c in clips]
    assert LE.story_consistency(sents, blue, 0, 0) == dict(format=True, object=False, motion=True, consistent=False)
    repeated = ["a red circle moves left.", "then it moves left.", "then it moves right."]
    assert LE.story_consistency(repeated, clips, 0, 0)["format"] is False
    assert LE.story_consistency(sents[:2], clips[:2], 0, 0)["format"] is False
    assert LE.story_consistency(sents, clips, 1, 0)["format"] is False  # the story is about a square
    assert LE.story_format(sents, 0, 0) and not LE.story_format(sents[:1], 0, 0)


def test_story_report_with_token_probes(tok):
    model = small_model(tok)
    table = LT.synthetic_token_table(64)
    probes = LinearProbes(table.tokens, table.labels())
    r = LE.story_report(model, tok, token_probes=probes, n=2, splits=("test",))
    assert set(r) == ({f"story_test_token_{c}" for c in LE.STORY_CHECKS[1:]} | {"story_test_clips", "story_test_format"}
                      | {f"story_test_token_clip_{k}" for k in ("shape", "colour", "motion")})
    with pytest.raises(ValueError, match="needs tokenizer_model"):
        LE.story_report(model, tok, probe=object(), n=1)
    assert all(0.0 <= v <= 1.0 for k, v in r.items() if k != "story_test_clips")


def test_sampled_story_text_is_seeded_and_varies(tok):
    model = small_model(tok).eval()
    vid, evid = tt.special_token_id(tok, tt.VID_BOI_TOKEN), tt.special_token_id(tok, tt.VID_EOI_TOKEN)
    prompt = tt.instruction_ids(tok, "generate a story about a red circle")
    run = lambda seed, t: model.generate_interleaved(prompt, tok.eos_token_id, vid, evid, max_new_tokens=6,
                                                     max_clips=0, temperature=t,
                                                     generator=torch.Generator().manual_seed(seed))
    assert run(0, 1.0) == run(0, 1.0)  # seeded
    assert len({str(run(s, 1.0)) for s in range(4)}) > 1  # an untrained model's sampled words differ
    assert len({str(run(s, 0.0)) for s in range(4)}) == 1  # greedy ignores the seed
