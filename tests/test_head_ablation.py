"""The generation-head ablation: its measurements, the GMM + mean-MSE head, and a tiny end-to-end run."""
import pytest
import torch
import torch.nn.functional as F

from divot_mini import head_ablation as A
from divot_mini import llm_training as LT
from divot_mini import text_tokenizer as tt
from divot_mini.gmm_head import GMMHead, gmm_mean, gmm_nll
from divot_mini.linear_probe import LinearProbes
from divot_mini.llm_evaluation import generation_prompts

torch.set_num_threads(1)


def test_normalised_entropy():
    assert A.normalised_entropy(torch.tensor([0, 1, 2, 3] * 5), 4) == pytest.approx(1.0)
    assert A.normalised_entropy(torch.tensor([2] * 9), 4) == 0.0
    assert A.normalised_entropy(torch.tensor([0, 1] * 4), 4) == pytest.approx(0.5)


def test_gmm_mean_mse_term_is_added_to_the_nll():
    torch.manual_seed(0)
    head, hidden, target = GMMHead(8, 4, k=3, mean_mse_weight=0.5), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    p = head.params(hidden)
    expected = gmm_nll(p, target, 3) + 0.5 * F.mse_loss(gmm_mean(p, 3), target)
    assert torch.allclose(head.loss(hidden, target), expected)
    head.mean_mse_weight = 0.0
    assert torch.allclose(head.loss(hidden, target), gmm_nll(p, target, 3))
    assert torch.allclose(head.weights(hidden).sum(-1), torch.ones(2, 5))
    with pytest.raises(ValueError, match="mean_mse_weight"):
        GMMHead(8, 4, mean_mse_weight=-1)


def test_unknown_head_is_named():
    with pytest.raises(ValueError, match="unknown head 'vae'"):
        A.build_ablation_llm("vae")


def test_generation_states_feed_the_head():
    tok = tt.build_text_tokenizer()
    torch.manual_seed(0)
    model = A.build_ablation_llm("gmm", tok).eval()
    ids, mask = generation_prompts(tok, ["a red circle moves left", "a square moves up"])
    states = model.generation_states(ids, mask)
    assert states.shape == (2, tt.MINI_NUM_TOKENS, A.ABLATION_HIDDEN)
    assert torch.allclose(model.output_resampler.predict(states),
                          model.generate_video_tokens(ids, mask, sample=False) * 1.0, atol=1e-6)


def test_weight_sensitivity_is_zero_when_the_weights_ignore_the_prompt():
    tok = tt.build_text_tokenizer()
    torch.manual_seed(0)
    model = A.build_ablation_llm("gmm", tok).eval()
    assert 0 < A.weight_sensitivity(model, tok) < 1  # random init: the weights move a little
    last = model.output_resampler.proj[-1]
    with torch.no_grad():  # logits = a constant bias: the same weights for every prompt
        last.weight[-model.output_resampler.k:] = 0
    assert A.weight_sensitivity(model, tok) == 0.0
    assert A.weight_sensitivity(A.build_ablation_llm("mse", tok), tok) is None
    assert A.weight_sensitivity(A.build_ablation_llm("gmm_k1", tok), tok) is None


def test_tiny_ablation_on_oracle_tokens():
    """Oracle tokens carry every attribute: after a short run the regression writes the prompt's
    colour far above chance and always the same colour for a colour-free prompt; the GMM's samples
    vary."""
    train = LT.synthetic_token_table(512, "train", noise=0.1)
    tables = {"test": LT.synthetic_token_table(64, "test", noise=0.1)}
    r = A.run_ablation(train, tables, heads=("mse", "gmm"), steps=150, probe_clips=256, lr=3e-3)
    assert r["ceiling"]["test_colour"] == 1.0
    mse, gmm = r["rows"]["mse"], r["rows"]["gmm"]
    assert mse["test_colour"] > 0.5, mse  # chance 0.25
    assert mse["colour_free_entropy"] == 0.0
    assert gmm["colour_free_entropy"] > 0.2, gmm
    assert gmm["weight_sensitivity"] is not None and mse["weight_sensitivity"] is None
    assert set(mse) >= {"train_seconds", "final_loss", "test_shape", "test_colour_det", "history"}
    assert r["ceiling"]["test_agreement"] == 1.0  # real clips agree with themselves
    assert "colour_free_entropy_clip" not in mse and 0.0 <= mse["colour_free_agreement"] <= 1.0
    assert "component_alignment" not in mse
    for key in ("colour_free_agreement", "colour_free_agreement_clip", "colour_free_entropy_clip",
                "component_alignment"):
        assert 0.0 <= gmm[key] <= 1.0, (key, gmm)


def test_token_colour_probes_read_each_token_alone():
    g = torch.Generator().manual_seed(0)
    colour = torch.arange(200) % 4
    codes = torch.randn(4, 3, 5, generator=g)  # a pattern per colour for each of 3 token positions
    tokens = codes[colour] + 0.1 * torch.randn(200, 3, 5, generator=g)
    probes = A.TokenColourProbes(tokens, colour)
    assert torch.equal(probes.predict(tokens), colour[:, None].expand(200, 3))
    assert probes.agreement(tokens) == 1.0
    mixed = torch.stack([codes[0, 0], codes[1, 1], codes[1, 2]])[None]  # token 0 red, tokens 1-2 other
    assert probes.agreement(mixed) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="tokens"):
        probes.predict(tokens[:, :2])
    with pytest.raises(ValueError, match="colours"):
        A.TokenColourProbes(tokens, colour[:10])


def test_linear_probes_refuse_features_of_another_size():
    x = torch.randn(40, 3, 2)
    labels = {k: torch.arange(40) % 3 for k in ("shape", "colour", "motion")}
    probes = LinearProbes(x, labels)
    with pytest.raises(ValueError, match="6 features per clip, got 4"):
        probes.predict(torch.randn(5, 4))


def test_llm_training_needs_three_steps():
    tok = tt.build_text_tokenizer()
    model = A.build_ablation_llm("mse", tok)
    with pytest.raises(ValueError, match="total_steps must be at least 3"):
        LT.DivotLLMTraining(model, tok, LT.synthetic_token_table(8), total_steps=2)


def test_shipped_divot_llm_samples_one_component_per_clip():
    """The course's Divot-LLM: its components mean the same colour at every token, so choosing one per
    clip writes clips whose tokens agree on a colour; its own (official) per-token sampler, on the same
    colour-free prompt, writes clips that disagree with themselves."""
    from divot_mini.llm_evaluation import generate_clip_tokens
    from divot_mini.tokenizer_training import load_trained

    model, tok = LT.load_divot_llm(verbose=False)
    assert model.output_resampler.sample_component == LT.LLM_SAMPLE_COMPONENT == "token"  # official
    train = LT.token_table(load_trained(verbose=False), "train", 512)
    probes = A.TokenColourProbes(train.tokens, train.colour)
    assert probes.agreement(train.tokens) == 1.0
    assert A.component_alignment(model, tok, probes) > 0.9
    prompt = ["a circle moves left"] * 48
    per_clip = generate_clip_tokens(model, tok, prompt, seed=0, component="clip")
    per_token = generate_clip_tokens(model, tok, prompt, seed=0)  # the model's own sampler
    assert probes.agreement(per_clip) > 0.95 > 0.85 > probes.agreement(per_token)
