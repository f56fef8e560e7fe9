"""Divot-LLM training (mixed comprehension + GMM generation) and its evaluation helpers."""
import pytest
import torch

from divot_mini import checkpoints
from divot_mini import llm_evaluation as LE
from divot_mini import llm_training as LT
from divot_mini import text_tokenizer as tt
from divot_mini.data import ATTRIBUTES, HELD_OUT, MovingShapes
from divot_mini.divot_llm import IGNORE_INDEX, DivotLLM

torch.set_num_threads(1)
N, D = 16, 32


@pytest.fixture(scope="module")
def tok():
    return tt.build_text_tokenizer()


def small_model(tok, seed=0):
    torch.manual_seed(seed)
    return DivotLLM.mini(tok, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=128)


# ----------------------------------------------------------------------------- data
def test_synthetic_table_keeps_splits_and_combinations():
    table = LT.synthetic_token_table(64, "heldout")
    assert table.tokens.shape == (64, N, D) and len(table) == 64
    held = {tuple(c) for c in HELD_OUT}
    for s, c, m in zip(*(table.labels()[k].tolist() for k in ATTRIBUTES)):
        assert (ATTRIBUTES["shape"][s], ATTRIBUTES["colour"][c], ATTRIBUTES["motion"][m]) in held
    a = MovingShapes("heldout", size=64).attributes(list(range(64)))
    assert all(torch.equal(table.labels()[k], a[k]) for k in ATTRIBUTES)
    with pytest.raises(ValueError, match="tokens must be"):
        LT.TokenTable(torch.zeros(4, N), *(torch.zeros(4, dtype=torch.long),) * 3)
    with pytest.raises(ValueError, match="colour must be"):
        LT.TokenTable(torch.zeros(4, N, D), torch.zeros(4), torch.zeros(3), torch.zeros(4))


def test_token_table_tokenizes_the_split_in_order():
    class FakeTokenizer(torch.nn.Module):  # tokens = mean pixel of each of the 5 frames, repeated
        def tokens(self, video):
            return video[:, [0, 4, 8, 12, 15]].mean((2, 3, 4))[:, None, :].expand(-1, N, 5).repeat(1, 1, 7)[..., :D]

    table = LT.token_table(FakeTokenizer(), "test", n=10, batch_size=4)
    b = MovingShapes("test", size=10)[list(range(10))]
    assert torch.allclose(table.tokens, FakeTokenizer().tokens(b["video"]))
    assert all(torch.equal(table.labels()[k], b[k]) for k in ATTRIBUTES)


def test_batches_are_a_function_of_the_step_and_carry_the_right_clips(tok):
    table = LT.synthetic_token_table(64)
    task = LT.DivotLLMTraining(small_model(tok), tok, table, comp_batch=8, gen_batch=8,
                               caption_frac=0.5, partial_frac=0.0, seed=3)
    a, b, c = task.make_batch(5), task.make_batch(5), task.make_batch(6)
    assert all(torch.equal(a[k][f], b[k][f]) for k in a for f in a[k])
    assert not torch.equal(a["comp"]["video_tokens"], c["comp"]["video_tokens"])
    assert a["comp"]["video_tokens"].shape == (8, 1, N, D) and a["gen"]["target_tokens"].shape == (8, N, D)
    # each comprehension answer is the truth about the clip whose tokens it reads
    comp = a["comp"]
    for row in range(8):
        i = int((table.tokens == comp["video_tokens"][row, 0]).all(-1).all(-1).nonzero()[0])
        prompt = tt.decode_words(tok, comp["input_ids"][row][comp["labels"][row] == IGNORE_INDEX])
        answer = tt.decode_words(tok, comp["labels"][row][comp["labels"][row] != IGNORE_INDEX])
        truth = table.captions([i])[0]
        if "describe" in prompt:
            assert answer == truth
        else:
            assert answer in truth.split()
    # each generation target is the clip its caption describes
    gen = a["gen"]
    for row in range(8):
        i = int((table.tokens == gen["target_tokens"][row]).all(-1).all(-1).nonzero()[0])
        assert table.captions([i])[0] in tt.decode_words(tok, gen["input_ids"][row])
    with pytest.raises(ValueError, match="cannot all be 0"):
        LT.DivotLLMTraining(small_model(tok), tok, table, comp_batch=0, gen_batch=0)
    with pytest.raises(ValueError, match="table holds"):
        LT.DivotLLMTraining(small_model(tok), tok, LT.synthetic_token_table(8, token_dim=8))


def test_comprehension_tasks():
    assert LT.comprehension_prompt_answer("caption", 0, 0, 0) == (tt.DESCRIBE_VIDEO, "a red circle moves left")
    assert LT.comprehension_prompt_answer("motion", 1, 2, 3) == ("which way does it move?", "down")
    assert LT.question_of("colour") == "what colour is the shape?"
    with pytest.raises(ValueError, match="task must be"):
        LT.comprehension_prompt_answer("size", 0, 0, 0)


# ----------------------------------------------------------------------------- training
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(tok):
    table = LT.synthetic_token_table(64)
    task = LT.DivotLLMTraining(small_model(tok), tok, table, total_steps=12, lr=3e-3,
                               comp_batch=16, gen_batch=16, warmup_frac=0.1)
    fixed = task.make_batch(10_000)  # a batch the run never draws
    with torch.no_grad():
        before = {k: v.item() for k, v in task.losses(fixed).items()}
    LT.fit(task, progress=False)
    with torch.no_grad():
        after = {k: v.item() for k, v in task.losses(fixed).items()}
    assert after["loss"] < before["loss"] - 0.5, (before, after)
    assert after["comp_lm"] < before["comp_lm"] and after["gmm"] < before["gmm"], (before, after)
    assert not task.model.training


def test_resuming_from_a_checkpoint_continues_exactly(tok, tmp_path):
    table = LT.synthetic_token_table(64)

    def task():
        return LT.DivotLLMTraining(small_model(tok), tok, table, total_steps=6, lr=3e-3,
                                   comp_batch=8, gen_batch=8)

    straight = task()
    LT.fit(straight, progress=False)
    interrupted = task()
    LT.fit(interrupted, steps=3, ckpt_dir=tmp_path, every_n_steps=3, progress=False)
    assert (tmp_path / "last.ckpt").exists()
    resumed = task()  # a fresh process: fresh model, weights and optimizer come from the checkpoint
    trainer = LT.fit(resumed, ckpt_dir=tmp_path, ckpt_path="last", every_n_steps=3, progress=False)
    assert trainer.global_step == 6
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not all(torch.equal(a[k], interrupted.model.state_dict()[k]) for k in a)


def test_the_course_checkpoint_is_registered_with_its_config():
    spec = checkpoints.REGISTRY["divot_llm"]
    assert spec.config["k"] == 16 and spec.config["tokenizer"] == "divot_tokenizer"
    model = spec.build()
    assert model.num_tokens == N and model.token_dim == D and model.output_resampler.k == 16
    assert model.llm.config.num_hidden_layers == spec.config["llm"]["num_hidden_layers"]
    assert spec.config["vocabulary"] == tt.course_vocabulary()


# ----------------------------------------------------------------------------- evaluation helpers
def test_parse_caption():
    assert LE.parse_caption("a red circle moves left") == {"shape": 0, "colour": 0, "motion": 0}
    assert LE.parse_caption("A Yellow triangle moves down.") == {"shape": 2, "colour": 3, "motion": 3}
    assert LE.parse_caption("a circle moves left") == {"shape": 0, "colour": -1, "motion": 0}
    assert LE.parse_caption("a red blue circle square") == {"shape": -1, "colour": -1, "motion": -1}
    assert LE.parse_caption("") == {"shape": -1, "colour": -1, "motion": -1}


def test_caption_scores_perfect_and_imperfect():
    labels = {"shape": torch.tensor([0, 1, 2, 0]), "colour": torch.tensor([0, 1, 2, 3]),
              "motion": torch.tensor([0, 1, 2, 3])}
    perfect = ["a red circle moves left", "a green square moves right", "a blue triangle moves up",
               "a yellow circle moves down"]
    s = LE.caption_scores(perfect, labels)
    assert s == {"caption_all": 1.0, "caption_shape": 1.0, "caption_colour": 1.0,
                 "caption_motion": 1.0, "caption_exact": 1.0}
    imperfect = ["a red circle moves right",        # motion wrong
                 "the green square goes right",     # all right, not the dataset's sentence
                 "a blue triangle",                 # motion missing
                 "a yellow circle moves down"]      # right
    s = LE.caption_scores(imperfect, labels)
    assert s["caption_all"] == 0.5 and s["caption_exact"] == 0.25
    assert s["caption_shape"] == 1.0 and s["caption_colour"] == 1.0 and s["caption_motion"] == 0.5
    with pytest.raises(ValueError):
        LE.caption_scores(perfect[:3], labels)


def test_answer_accuracy():
    y = torch.tensor([0, 1, 2])
    assert LE.answer_accuracy(["circle", "square", "triangle"], "shape", y) == 1.0
    assert LE.answer_accuracy(["circle", "a square", "circle"], "shape", y) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        LE.answer_accuracy(["circle"], "size", y[:1])
    with pytest.raises(ValueError):
        LE.answer_accuracy(["circle"], "shape", y)


def test_probe_scores_with_a_fake_probe():
    class Fake:
        def predict(self, videos):
            return {"shape": torch.tensor([0, 1]), "colour": torch.tensor([2, 2]), "motion": torch.tensor([3, 0])}

    labels = {"shape": torch.tensor([0, 1]), "colour": torch.tensor([2, 1]), "motion": torch.tensor([3, 0])}
    s = LE.probe_scores(Fake(), torch.zeros(2, 16, 3, 32, 32), labels)
    assert s == {"shape": 1.0, "colour": 0.5, "motion": 1.0, "all": 0.5}


def test_comprehension_scores_use_generate_with_forcing(tok):
    model = small_model(tok).eval()
    table = LT.synthetic_token_table(6, "test")
    texts = LE.answer(model, tok, table.tokens, "caption", batch_size=4, max_new_tokens=3)
    assert len(texts) == 6 and all(isinstance(t, str) for t in texts)
    s = LE.comprehension_scores(model, tok, table)
    assert set(s) >= {"caption_all", "qa", "qa_shape", "qa_colour", "qa_motion"}
    assert all(0.0 <= v <= 1.0 for v in s.values())


def test_generation_prompts_are_left_padded_and_end_in_vid(tok):
    ids, mask = LE.generation_prompts(tok, ["a red circle moves left", "a circle moves left"])
    vid = tt.special_token_id(tok, tt.VID_BOI_TOKEN)
    assert (ids[:, -1] == vid).all() and mask[0].all() and mask[1, 0] == 0 and ids[1, 0] == tok.pad_token_id
    model = small_model(tok).eval()
    out = LE.generate_clip_tokens(model, tok, ["a red circle moves left", "a circle moves left"], seed=0)
    assert out.shape == (2, N, D)
    # a padded prompt gives the same tokens as the same prompt alone
    alone = LE.generate_clip_tokens(model, tok, ["a circle moves left"], sample=False)
    both = LE.generate_clip_tokens(model, tok, ["a red circle moves left", "a circle moves left"], sample=False)
    assert torch.allclose(alone[0], both[1], atol=1e-5)


# ----------------------------------------------------------------------------- standardised tokens
def test_standardized_model_is_the_official_one_with_identity_stats_and_converts_both_ways(tok):
    torch.manual_seed(0)
    base = DivotLLM.mini(tok, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=128)
    std = LT.StandardizedDivotLLM.mini(tok, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                       num_key_value_heads=1, intermediate_size=128)
    std.load_state_dict({**base.state_dict(), "token_mean": torch.zeros(N, D), "token_std": torch.ones(N, D)})
    table = LT.synthetic_token_table(32)
    task = LT.DivotLLMTraining(base, tok, table, comp_batch=4, gen_batch=4)
    b = task.make_batch(0)
    for kind in ("comp", "gen"):
        assert torch.allclose(base(**b[kind]).loss, std(**b[kind]).loss)
    # fitted stats: raw tokens in, the base model sees standardised ones
    raw = 0.01 * table.tokens + 3.0  # small spread around a large shared part, like the real tokenizer's
    std.fit_token_stats(raw)
    assert torch.allclose(std.standardize(raw).mean(0), torch.zeros(N, D), atol=1e-4)
    assert torch.allclose(std.standardize(raw).std(0), torch.ones(N, D), atol=1e-3)
    assert torch.allclose(std.unstandardize(std.standardize(raw)), raw, atol=1e-5)
    b["comp"]["video_tokens"] = 0.01 * b["comp"]["video_tokens"] + 3.0
    z = std.standardize(b["comp"]["video_tokens"])
    assert torch.allclose(std(**b["comp"]).loss, base(**{**b["comp"], "video_tokens": z}).loss, atol=1e-5)
    target = 0.01 * b["gen"]["target_tokens"] + 3.0
    assert torch.allclose(std(**{**b["gen"], "target_tokens": target}).gen_loss,
                          base(**{**b["gen"], "target_tokens": std.standardize(target)}).gen_loss, atol=1e-5)
    # written clips come back on the tokenizer's scale
    ids, mask = LE.generation_prompts(tok, ["a red circle moves left"])
    out = std.generate_video_tokens(ids, mask, sample=False)
    assert torch.allclose(out, std.unstandardize(base.generate_video_tokens(ids, mask, sample=False)), atol=1e-4)
    with pytest.raises(ValueError, match="need tokens"):
        std.fit_token_stats(raw[:1])


def test_training_fits_the_token_stats_from_the_table(tok):
    torch.manual_seed(0)
    model = LT.StandardizedDivotLLM.mini(tok, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=1, intermediate_size=128)
    table = LT.synthetic_token_table(64)
    LT.DivotLLMTraining(model, tok, table)
    assert torch.allclose(model.token_mean, table.tokens.mean(0)) and "token_std" in model.state_dict()
    assert isinstance(checkpoints.REGISTRY["divot_llm"].build(), LT.StandardizedDivotLLM)
