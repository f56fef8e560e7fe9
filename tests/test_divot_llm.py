"""Divot-LLM: token layout, the bidirectional query mask, frame-token forcing, the full size on meta."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import LogitsProcessorList

from divot_mini import text_tokenizer as tt
from divot_mini.divot_llm import (IGNORE_INDEX, DivotLLM, FrameTokenForcing, attention_mask_4d,
                                  collate, comprehension_example, generation_example,
                                  generation_prompt, mini_mistral_config, mistral_7b_config)

torch.set_num_threads(1)
MANIFESTS = Path(__file__).parent / "fixtures" / "divot_official"
N, D = 16, 32  # the mini tokenizer's tokens per clip and token width


@pytest.fixture(scope="module")
def tok():
    return tt.build_text_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return DivotLLM.mini(tok, num_hidden_layers=2).eval()


def ids_of(tok, *tokens):
    return [tt.special_token_id(tok, t) for t in tokens]


# ----------------------------------------------------------------------------- layout
def test_comprehension_layout_and_labels(tok):
    ex = comprehension_example(tok, "what shape is it?", "circle", num_clips=2)
    toks = tok.convert_ids_to_tokens(ex["input_ids"])
    clip = ["<frame>"] + [tt.frame_token(i) for i in range(N)] + ["</frame>"]
    assert toks == (["<s>", "[INST]", "<vid>"] + clip * 2 + ["</vid>", "what", "shape", "is", "it",
                                                               "?", "[/INST]", "\n", "circle", "</s>"])
    # text loss on the answer and EOS only
    labelled = [t for t, lab in zip(toks, ex["labels"]) if lab != IGNORE_INDEX]
    assert labelled == ["circle", "</s>"]
    assert set(ex["attention_mask"]) == {1}


def test_generation_layout_labels_and_query_marks(tok):
    ex = generation_example(tok, "a red circle moves left")
    toks = tok.convert_ids_to_tokens(ex["input_ids"])
    prompt = tok.convert_ids_to_tokens(generation_prompt(tok, "a red circle moves left"))
    assert prompt == ["<s>", "[INST]", "generate", "a", "video", "of", "a", "red", "circle", "moves",
                      "left", "[/INST]", "\n"]
    queries = [tt.frame_token(i) for i in range(N)]
    assert toks == prompt + ["<vid>", "<frame>"] + queries + ["</frame>", "</vid>", "</s>"]
    # official labels: <vid>, </vid> and EOS; the queries get the GMM loss instead
    assert [t for t, lab in zip(toks, ex["labels"]) if lab != IGNORE_INDEX] == ["<vid>", "</vid>", "</s>"]
    # -1 exactly at the N frame-token positions (not <frame>)
    assert [t for t, m in zip(toks, ex["attention_mask"]) if m == -1] == queries


def test_collate_pads_on_the_right(tok):
    a = comprehension_example(tok, "what shape is it?", "circle")
    b = comprehension_example(tok, "what colour is the shape?", "red")
    batch = collate([a, b], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    pad = len(b["input_ids"]) - len(a["input_ids"])
    assert batch["input_ids"][0, -pad:].tolist() == [tok.pad_token_id] * pad
    assert batch["labels"][0, -pad:].tolist() == [IGNORE_INDEX] * pad
    assert batch["attention_mask"][0, -pad:].tolist() == [0] * pad


def test_frame_positions_get_projected_tokens_and_text_positions_word_embeddings(tok, model):
    ex = collate([comprehension_example(tok, "what shape is it?", num_clips=2)], tok.pad_token_id)
    ids = ex["input_ids"]
    video = torch.randn(1, 2, N, D)
    embeds = model.embed(ids, ex["attention_mask"], video)
    words = model.llm.get_input_embeddings()(ids)
    frame = model.frame_positions(ids)[0]
    assert frame.sum() == 2 * N
    assert torch.equal(embeds[0, ~frame], words[0, ~frame])
    # in order: clip 0's tokens, then clip 1's
    assert torch.allclose(embeds[0, frame], model.input_resampler(video.reshape(2 * N, D)), atol=1e-6)
    assert not torch.allclose(embeds[0, frame], words[0, frame])


# ----------------------------------------------------------------------------- 4-D mask
def test_attention_mask_4d_semantics():
    m2 = torch.tensor([[1, 1, 1, -1, -1, -1, 1, 0]])
    allowed = attention_mask_4d(m2, num_query_tokens=3)[0, 0] == 0  # [query, key]
    causal = torch.tril(torch.ones(8, 8, dtype=torch.bool))
    expected = causal.clone()
    expected[3:6, 3:6] = True  # the query block sees itself both ways
    expected[:, 7] = False  # nobody attends to padding
    assert torch.equal(allowed, expected)
    assert allowed[3, 5] and not allowed[2, 3]  # query -> later query yes; text -> future never
    m = attention_mask_4d(m2, 3, dtype=torch.bfloat16)
    assert m.dtype == torch.bfloat16 and m.min() == torch.finfo(torch.bfloat16).min
    # two clips -> two separate blocks
    two = attention_mask_4d(torch.tensor([[1, -1, -1, 1, -1, -1]]), 2)[0, 0] == 0
    assert two[1, 2] and two[4, 5] and not two[2, 4]
    # sliding window (Mistral-7B: 4096) limits how far back a position looks
    win = attention_mask_4d(torch.ones(1, 6, dtype=torch.long), 2, sliding_window=2)[0, 0] == 0
    assert win[5, 4] and not win[5, 3]


def test_attention_mask_4d_rejects_bad_masks():
    with pytest.raises(ValueError, match="values"):
        attention_mask_4d(torch.tensor([[1, 2, 1]]), 2)
    with pytest.raises(ValueError, match="multiple"):
        attention_mask_4d(torch.tensor([[1, -1, -1, -1]]), 2)
    with pytest.raises(ValueError, match="consecutive"):
        attention_mask_4d(torch.tensor([[-1, 1, -1]]), 2)
    with pytest.raises(ValueError, match="batch, length"):
        attention_mask_4d(torch.ones(4, dtype=torch.long), 2)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_queries_see_each_other_and_text_never_sees_the_future(tok, model, attn):
    model.llm.set_attn_implementation(attn)
    try:
        ex = collate([generation_example(tok, "a red circle moves left")], tok.pad_token_id)
        ids, mask = ex["input_ids"], ex["attention_mask"]
        q = (mask[0] == -1).nonzero()[:, 0]
        first_q, last_q = int(q[0]), int(q[-1])
        text_pos = 5
        embeds = model.embed(ids, mask)
        base = model.hidden_states(embeds, mask)

        later_query = embeds.clone()
        later_query[0, last_q] += 1.0
        out = model.hidden_states(later_query, mask)
        assert not torch.allclose(out[0, first_q], base[0, first_q], atol=1e-4)  # earlier query changed
        assert torch.allclose(out[0, :first_q], base[0, :first_q], atol=1e-5)  # text before: unchanged
        causal = model.hidden_states(embeds, torch.ones_like(mask))  # control: no -1, plain causal
        causal_later = model.hidden_states(later_query, torch.ones_like(mask))
        assert torch.allclose(causal[0, first_q], causal_later[0, first_q], atol=1e-5)

        later_text = embeds.clone()
        later_text[0, text_pos + 1:] += 1.0  # every later position, text and queries
        out = model.hidden_states(later_text, mask)
        assert torch.allclose(out[0, :text_pos + 1], base[0, :text_pos + 1], atol=1e-5)
        assert not torch.allclose(out[0, text_pos + 1], base[0, text_pos + 1], atol=1e-4)
    finally:
        model.llm.set_attn_implementation("sdpa")


def test_padding_does_not_change_real_positions(tok, model):
    long = generation_example(tok, "a red circle moves left")
    short = generation_example(tok, "a red circle")
    padded = collate([long, short], tok.pad_token_id)
    assert (padded["attention_mask"][1] == 0).sum() == 2
    alone = collate([short], tok.pad_token_id)
    h_pad = model(**padded).hidden_states[1]
    h_alone = model(**alone).hidden_states[0]
    n = len(short["input_ids"])
    assert torch.allclose(h_pad[:n], h_alone, atol=1e-5)


# ----------------------------------------------------------------------------- losses
def test_comprehension_loss_is_next_token_loss_on_the_answer_only(tok, model):
    batch = collate([comprehension_example(tok, "what shape is it?", "circle"),
                     comprehension_example(tok, "which way does it move?", "left")], tok.pad_token_id)
    video = torch.randn(2, 1, N, D)
    out = model(**batch, video_tokens=video)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    assert keep.sum() == 4  # two answers + two EOS
    assert torch.allclose(out.lm_loss, F.cross_entropy(logits[keep], labels[keep]))
    assert out.gen_loss == 0 and torch.allclose(out.loss, out.lm_loss)
    # the clips are read: other tokens, other loss; and the input projection gets a gradient
    assert not torch.allclose(model(**batch, video_tokens=torch.randn(2, 1, N, D)).lm_loss, out.lm_loss)
    model.zero_grad()
    out.loss.backward()
    assert model.input_resampler.proj[0].weight.grad.abs().sum() > 0
    model.zero_grad()


def test_generation_loss_is_the_head_loss_at_the_query_states(tok, model):
    batch = collate([generation_example(tok, "a red circle moves left"),
                     generation_example(tok, "a blue square moves up")], tok.pad_token_id)
    target = torch.randn(2, N, D)
    out = model(**batch, target_tokens=target)
    states = out.hidden_states[batch["attention_mask"] == -1].reshape(2, N, -1)
    assert torch.allclose(out.gen_loss, model.output_resampler.loss(states, target))
    assert torch.allclose(out.loss, out.lm_loss + out.gen_loss)
    with pytest.raises(ValueError, match="target_tokens"):
        model(**batch, target_tokens=torch.randn(2, N, D + 1))
    with pytest.raises(ValueError, match="query positions"):
        model(**batch, target_tokens=torch.randn(2, 2, N, D))  # 2 clips asked, 1 block present


def test_bad_inputs_raise_clear_errors(tok, model):
    batch = collate([comprehension_example(tok, "what shape is it?", "circle", num_clips=2)],
                    tok.pad_token_id)
    with pytest.raises(ValueError, match="no video_tokens"):
        model(**batch)
    with pytest.raises(ValueError, match="video_tokens must be"):
        model(**batch, video_tokens=torch.randn(1, 2, N - 1, D))
    with pytest.raises(ValueError, match="frame-token positions"):
        model(**batch, video_tokens=torch.randn(1, 3, N, D))
    with pytest.raises(ValueError, match="labels"):
        model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"][:, :-1],
              video_tokens=torch.randn(1, 2, N, D))
    with pytest.raises(ValueError, match="need 16 frame token ids"):
        DivotLLM(mini_mistral_config(len(tok)), D, N, frame_token_ids=[5, 6])
    with pytest.raises(ValueError, match="vocabulary"):
        DivotLLM(mini_mistral_config(10), D, 2, frame_token_ids=[5, 60])


# ----------------------------------------------------------------------------- generation
def test_forcing_processor_follows_the_official_rule(tok):
    boi, eoi = ids_of(tok, "<frame>", "</frame>")
    frames = tt.frame_token_ids(tok, 3)
    proc = FrameTokenForcing(boi, frames, eoi)
    V = len(tok)
    scores = torch.randn(5, V)
    last = torch.tensor([[boi], [frames[0]], [frames[2]], [7], [eoi]])
    out = proc(last, scores)
    assert out.argmax(-1).tolist() == [frames[0], frames[1], eoi, out[3].argmax().item(),
                                       out[4].argmax().item()]
    assert out[0, frames[0]] == scores[0].max() + 10  # official: max + 10, others untouched
    assert torch.equal(out[0, :frames[0]], scores[0, :frames[0]])
    # not after <frame>/frame tokens: frame tokens and </frame> set to 0.0 (not -inf), rest untouched
    for row in (3, 4):
        assert (out[row, frames + [eoi]] == 0).all()
        others = torch.ones(V, dtype=torch.bool)
        others[frames + [eoi]] = False
        assert torch.equal(out[row, others], scores[row, others])
    hard = FrameTokenForcing(boi, frames, eoi, hard=True)(last[:1], scores[:1])
    assert torch.isinf(hard).sum() == V - 1 and hard[0, frames[0]] == 0
    with pytest.raises(ValueError):
        FrameTokenForcing(boi, [], eoi)
    with pytest.raises(ValueError, match="distinct"):
        FrameTokenForcing(boi, [boi], eoi)


def test_generate_writes_the_frame_token_sequence_after_frame(tok, model):
    prompt = generation_prompt(tok, "a red circle moves left") + ids_of(tok, "<vid>", "<frame>")
    prompt = torch.tensor([prompt])
    new = model.generate_text(prompt, max_new_tokens=N + 1, do_sample=False)
    assert tok.convert_ids_to_tokens(new[0]) == [tt.frame_token(i) for i in range(N)] + ["</frame>"]
    # without the processor an untrained model writes something else
    free = model.generate_text(prompt, logits_processor=LogitsProcessorList(), max_new_tokens=N + 1,
                               do_sample=False)
    assert free[0].tolist() != new[0].tolist()


def test_generate_text_reads_clips(tok, model):
    prompt = collate([comprehension_example(tok, "what shape is it?")], tok.pad_token_id)
    kw = dict(max_new_tokens=4, do_sample=False)
    a = model.generate_text(prompt["input_ids"], video_tokens=torch.randn(1, 1, N, D), **kw)
    assert a.shape == (1, 4)
    with pytest.raises(ValueError, match="no video_tokens"):
        model.generate_text(prompt["input_ids"], **kw)
    with pytest.raises(ValueError, match="generate_video_tokens"):
        model.generate_text(prompt["input_ids"], attention_mask=-torch.ones_like(prompt["input_ids"]), **kw)


def test_generate_video_tokens_one_pass(tok, model):
    prompt = torch.tensor([generation_prompt(tok, "a red circle moves left") + ids_of(tok, "<vid>")] * 2)
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = model.generate_video_tokens(prompt, generator=g(0))
    assert a.shape == (2, N, D)
    assert torch.equal(a, model.generate_video_tokens(prompt, generator=g(0)))
    assert not torch.equal(a, model.generate_video_tokens(prompt, generator=g(1)))
    # the same states as a training-layout forward (prompt <vid> <frame> queries ...)
    mean = model.generate_video_tokens(prompt[:1], sample=False)
    batch = collate([generation_example(tok, "a red circle moves left")], tok.pad_token_id)
    out = model(**batch)
    states = out.hidden_states[batch["attention_mask"] == -1].reshape(1, N, -1)
    assert torch.allclose(mean, model.output_resampler.predict(states), atol=1e-5)
    # var_scale reaches the head: 0 -> a component mean, no noise
    s0 = model.generate_video_tokens(prompt[:1], var_scale=0.0, generator=g(0))
    s1 = model.generate_video_tokens(prompt[:1], var_scale=1.0, generator=g(0))
    assert not torch.allclose(s0, s1)


@pytest.mark.parametrize("head", ["mse", "gmm_k1", "diffusion"])
def test_ablation_heads_plug_into_the_model(tok, head):
    torch.manual_seed(0)
    m = DivotLLM.mini(tok, head=head, num_hidden_layers=1)
    batch = collate([generation_example(tok, "a red circle moves left")], tok.pad_token_id)
    out = m(**batch, target_tokens=torch.randn(1, N, D))
    assert torch.isfinite(out.gen_loss) and out.gen_loss > 0
    prompt = torch.tensor([generation_prompt(tok, "a red circle moves left") + ids_of(tok, "<vid>")])
    kw = {"num_inference_steps": 2} if head == "diffusion" else {}
    out = m.generate_video_tokens(prompt, generator=torch.Generator().manual_seed(0), **kw)
    assert out.shape == (1, N, D)


# ----------------------------------------------------------------------------- full size
def test_full_configuration_matches_the_official_agent_manifest():
    manifest = json.loads((MANIFESTS / "agent.json").read_text())
    with torch.device("meta"):
        model = DivotLLM.full()
    ours = {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith("llm.")}
    theirs = {k: v["shape"] for k, v in manifest["entries"].items()}
    assert ours == theirs
    heads = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("llm."))
    assert heads == manifest["num_parameters"] == 118_841_632
    assert model.output_resampler.k == 16 and model.output_resampler.token_dim == 256
    # the LLM: Mistral-7B with the embedding and output matrices resized to 32262 rows
    sd = model.llm.state_dict()
    assert list(sd["model.embed_tokens.weight"].shape) == [32262, 4096]
    assert list(sd["lm_head.weight"].shape) == [32262, 4096]
    assert list(sd["model.layers.31.self_attn.k_proj.weight"].shape) == [1024, 4096]  # 8 kv heads
    assert list(sd["model.layers.31.mlp.gate_proj.weight"].shape) == [14336, 4096]
    assert "model.layers.32.mlp.gate_proj.weight" not in sd
    # Mistral-7B has 7,241,732,096 parameters at vocabulary 32000; +262 rows in two matrices
    assert sum(p.numel() for p in model.llm.parameters()) == 7_241_732_096 + 2 * 262 * 4096


def test_full_and_mini_configs():
    c = mistral_7b_config()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
            c.num_key_value_heads, c.intermediate_size, c.sliding_window) == \
        (32262, 4096, 32, 32, 8, 14336, 4096)
    assert c.tie_word_embeddings is False and c.rms_norm_eps == 1e-5
    m = mini_mistral_config(62)
    assert (m.hidden_size, m.num_hidden_layers, m.num_attention_heads,
            m.num_key_value_heads) == (256, 4, 4, 2)
    assert m.sliding_window is None


def test_full_size_forward_shapes_on_meta():
    with torch.device("meta"):
        model = DivotLLM.full()
        embeds = model.input_resampler(torch.empty(1, 64, 256))
        params = model.output_resampler.params(torch.empty(1, 64, 4096))
    assert embeds.shape == (1, 64, 4096) and params.shape == (1, 64, 8208)
