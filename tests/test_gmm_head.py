"""The GMM head (official layout, loss, sampling) and the ablation heads sharing its interface."""
import math

import pytest
import torch
import torch.nn.functional as F

from divot_mini.generation_heads import DiffusionHead, MSEHead, make_generation_head
from divot_mini.gmm_head import (GMMHead, clip_weights, gmm_mean, gmm_nll, gmm_num_params, gmm_sample,
                                 split_gmm_params)

torch.set_num_threads(1)
INV_SOFTPLUS_1 = math.log(math.e - 1)  # softplus(x) = 1


def pack(means, raw_var, logits):
    """Official layout: means (k*d) | variances (k*d) | k weight logits."""
    return torch.cat([means.flatten(-2), raw_var.flatten(-2), logits], -1)


def test_parameter_layout_and_variance_transform():
    k, d = 3, 4
    means, raw, logits = torch.randn(2, 5, k, d), torch.randn(2, 5, k, d), torch.randn(2, 5, k)
    params = pack(means, raw, logits)
    assert params.shape[-1] == gmm_num_params(k, d) == 2 * k * d + k
    m, v, w = split_gmm_params(params, k)
    assert m.shape == v.shape == (2, 5, k, d) and w.shape == (2, 5, k)
    assert torch.equal(m, means) and torch.equal(w, logits)
    assert torch.allclose(v, F.softplus(raw))
    # clamp first, then var_scale (the official order)
    tiny = pack(means, torch.full_like(raw, -100.0), logits)
    assert torch.allclose(split_gmm_params(tiny, k)[1], torch.full_like(raw, 1e-5))
    assert torch.allclose(split_gmm_params(tiny, k, var_scale=0.1)[1], torch.full_like(raw, 1e-6))
    # the official sizes: k = 16, d = 256 -> 8208
    assert gmm_num_params(16, 256) == 8208


def test_bad_parameter_sizes_raise():
    with pytest.raises(ValueError, match="2\\*k\\*d \\+ k"):
        split_gmm_params(torch.randn(2, 8207), 16)
    with pytest.raises(ValueError):
        split_gmm_params(torch.randn(2, 16), 16)  # d would be 0
    with pytest.raises(ValueError, match="do not match"):
        gmm_nll(torch.randn(2, 3, 2 * 2 * 4 + 2), torch.randn(2, 3, 5), k=2)
    with pytest.raises(ValueError, match="var_scale"):
        gmm_sample(torch.randn(1, 2 * 2 * 4 + 2), 2, var_scale=-1)


def test_nll_equals_a_hand_computed_one_dimensional_mixture():
    # k = 2, d = 1: p(x) = w1 N(x; m1, v1) + w2 N(x; m2, v2)
    m1, m2, r1, r2, l1, l2, x = 0.3, -1.2, 0.4, -0.7, 0.9, -0.2, 0.5
    params = torch.tensor([[m1, m2, r1, r2, l1, l2]], dtype=torch.float64)
    v1, v2 = math.log1p(math.exp(r1)), math.log1p(math.exp(r2))
    w1, w2 = math.exp(l1) / (math.exp(l1) + math.exp(l2)), math.exp(l2) / (math.exp(l1) + math.exp(l2))
    normal = lambda x, m, v: math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)  # noqa: E731
    expected = -math.log(w1 * normal(x, m1, v1) + w2 * normal(x, m2, v2))
    assert gmm_nll(params, torch.tensor([[x]], dtype=torch.float64), k=2).item() == \
        pytest.approx(expected, rel=1e-12)


def test_nll_is_divided_by_d_and_averaged_over_tokens():
    torch.manual_seed(0)
    k, d = 4, 6
    params, targets = torch.randn(3, 5, gmm_num_params(k, d)), torch.randn(3, 5, d)
    m, v, w = split_gmm_params(params, k)
    comp = torch.distributions.Independent(torch.distributions.Normal(m, v.sqrt()), 1)
    logp = (w.log_softmax(-1) + comp.log_prob(targets[..., None, :])).logsumexp(-1)  # [3, 5]
    assert torch.allclose(gmm_nll(params, targets, k), -logp.mean() / d)


def test_k1_with_unit_variance_is_half_mse_plus_a_constant():
    torch.manual_seed(0)
    d = 8
    mu, target = torch.randn(4, 7, 1, d), torch.randn(4, 7, d)
    params = pack(mu, torch.full_like(mu, INV_SOFTPLUS_1), torch.zeros(4, 7, 1))
    mse = F.mse_loss(mu[..., 0, :], target)
    assert torch.allclose(gmm_nll(params, target, k=1), 0.5 * mse + 0.5 * math.log(2 * math.pi))


def test_mean_prediction_is_the_weighted_mean():
    means = torch.tensor([[[0.0, 2.0], [4.0, -2.0]]])  # [1 token, k=2, d=2]
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    params = pack(means, torch.zeros_like(means), logits)
    assert torch.allclose(gmm_mean(params, 2), torch.tensor([[3.0, -1.0]]))


def test_sampling_is_seeded_picks_components_by_weight_and_respects_var_scale():
    n, d = 20000, 2
    means = torch.tensor([[-5.0, -5.0], [5.0, 5.0]]).expand(n, 2, d)
    raw = torch.full((n, 2, d), INV_SOFTPLUS_1)  # variance 1
    params = pack(means, raw, torch.log(torch.tensor([0.2, 0.8])).expand(n, 2))
    a = gmm_sample(params, 2, var_scale=0.1, generator=torch.Generator().manual_seed(1))
    b = gmm_sample(params, 2, var_scale=0.1, generator=torch.Generator().manual_seed(1))
    c = gmm_sample(params, 2, var_scale=0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    upper = a[:, 0] > 0
    assert upper.float().mean().item() == pytest.approx(0.8, abs=0.02)  # component frequencies
    # one component per token (not a blend): every sample sits near one of the means
    assert ((a[upper] - 5).abs().max() < 2) and ((a[~upper] + 5).abs().max() < 2)
    # the variance around the chosen mean is var * var_scale
    assert (a[upper] - 5).var().item() == pytest.approx(0.1, rel=0.05)
    full = gmm_sample(params, 2, var_scale=1.0, generator=torch.Generator().manual_seed(1))
    assert (full[full[:, 0] > 0] - 5).var().item() == pytest.approx(1.0, rel=0.05)
    exact = gmm_sample(params[:10], 2, var_scale=0.0, generator=torch.Generator().manual_seed(0))
    assert set(exact[:, 0].tolist()) <= {-5.0, 5.0}


def test_clip_sampling_makes_one_choice_per_clip_where_token_sampling_votes():
    # 2,000 clips of 16 tokens, two components (-5 / +5) weighted 0.4 / 0.6 at every token.
    clips, n, d = 2000, 16, 2
    means = torch.tensor([[-5.0, -5.0], [5.0, 5.0]]).expand(clips, n, 2, d)
    raw = torch.full((clips, n, 2, d), INV_SOFTPLUS_1)
    params = pack(means, raw, torch.log(torch.tensor([0.4, 0.6])).expand(clips, n, 2))
    tok = gmm_sample(params, 2, generator=torch.Generator().manual_seed(0)) > 0
    clip = gmm_sample(params, 2, generator=torch.Generator().manual_seed(0), component="clip") > 0
    # per token: each token chooses alone, so a clip's tokens disagree; its majority is the likelier one
    share = tok[..., 0].float().mean(1)
    assert 0.55 < tok.float().mean().item() < 0.65 and (share == 1).float().mean().item() < 0.01
    assert (share > 0.5).float().mean().item() > 0.7  # the vote amplifies 0.6 to most clips
    # per clip: all 16 tokens share the choice, and clips choose with the weights 0.4 / 0.6
    assert torch.equal(clip.all(1), clip.any(1))
    assert clip[:, 0, 0].float().mean().item() == pytest.approx(0.6, abs=0.03)
    # the clip's weights: the normalised geometric mean of its tokens' weights
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.5, 0.5]]))
    g = torch.tensor([math.sqrt(0.45), math.sqrt(0.05)])
    assert torch.allclose(clip_weights(logits), g / g.sum())
    with pytest.raises(ValueError, match="component"):
        gmm_sample(params, 2, component="frame")
    with pytest.raises(ValueError, match="N tokens"):
        gmm_sample(params[0, 0], 2, component="clip")
    with pytest.raises(ValueError, match="sample_component"):
        GMMHead(8, 2, k=2, sample_component="video")
    head = GMMHead(8, 2, k=2, sample_component="clip")
    h = torch.randn(3, 16, 8)
    assert torch.equal(head.sample(h, generator=torch.Generator().manual_seed(0)),
                       head.sample(h, generator=torch.Generator().manual_seed(0), component="clip"))


def test_gmm_head_shapes_and_official_projection():
    head = GMMHead(hidden_size=24, token_dim=4, k=3)
    assert [tuple(p.shape) for p in head.proj.parameters()] == [(27, 24), (27,), (27, 27), (27,)]
    h, t = torch.randn(2, 5, 24), torch.randn(2, 5, 4)
    loss = head.loss(h, t)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss) and head.proj[0].weight.grad is not None
    assert head.predict(h).shape == head.sample(h).shape == (2, 5, 4)
    with pytest.raises(ValueError):
        head.loss(torch.randn(2, 5, 23), t)
    with pytest.raises(ValueError):
        head.loss(h, torch.randn(2, 5, 3))


@pytest.mark.parametrize("kind", ["gmm", "gmm_k1", "gmm_mse", "mse", "diffusion"])
def test_every_head_has_the_same_interface(kind):
    torch.manual_seed(0)
    head = make_generation_head(kind, hidden_size=16, token_dim=4)
    h, t = torch.randn(2, 3, 16, requires_grad=True), torch.randn(2, 3, 4)
    loss = head.loss(h, t)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    if kind != "diffusion":  # (its zero-initialised output layer blocks the path until it trains)
        assert h.grad is not None and h.grad.abs().sum() > 0  # the LLM would get a gradient
    s1 = head.sample(h.detach(), generator=torch.Generator().manual_seed(0))
    s2 = head.sample(h.detach(), generator=torch.Generator().manual_seed(0))
    assert s1.shape == (2, 3, 4) and torch.equal(s1, s2)
    with pytest.raises(ValueError):
        head.loss(h, torch.randn(2, 3, 5))


def test_head_kinds():
    assert make_generation_head("gmm", 8, 2).k == 16
    assert make_generation_head("gmm_k1", 8, 2).k == 1
    assert isinstance(make_generation_head("mse", 8, 2), MSEHead)
    assert isinstance(make_generation_head("diffusion", 8, 2), DiffusionHead)
    with pytest.raises(ValueError, match="unknown generation head"):
        make_generation_head("vq", 8, 2)


def test_mse_head_loss_is_the_mse_of_its_prediction():
    head = MSEHead(8, 3)
    h, t = torch.randn(4, 2, 8), torch.randn(4, 2, 3)
    assert torch.allclose(head.loss(h, t), F.mse_loss(head.predict(h), t))
    assert torch.equal(head.sample(h), head.predict(h))


def test_diffusion_head_starts_by_predicting_zero_noise():
    torch.manual_seed(0)
    head = DiffusionHead(8, 4, width=32, depth=2)
    h, t = torch.randn(64, 2, 8), torch.randn(64, 2, 4)
    assert torch.allclose(head.denoise(torch.randn(5, 4), torch.arange(5), torch.randn(5, 8)),
                          torch.zeros(5, 4))
    assert head.loss(h, t).item() == pytest.approx(1.0, abs=0.1)  # E[noise^2]


def test_regression_averages_modes_where_the_gmm_picks_one():
    """The paper's argument in one experiment: the same input, two equally likely answers (+-1)."""
    torch.manual_seed(0)
    hidden = torch.ones(256, 1, 8)
    target = torch.where(torch.rand(256, 1, 1) < 0.5, -1.0, 1.0).expand(256, 1, 2)
    heads = {"mse": MSEHead(8, 2), "gmm": GMMHead(8, 2, k=4)}
    for head in heads.values():
        opt = torch.optim.Adam(head.parameters(), lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            head.loss(hidden, target).backward()
            opt.step()
    mse_out = heads["mse"].sample(hidden[:1])
    assert mse_out.abs().max() < 0.2  # the average of -1 and +1: a token that never occurs
    s = heads["gmm"].sample(hidden, var_scale=0.1, generator=torch.Generator().manual_seed(0))
    assert (s.abs() - 1).abs().mean() < 0.2  # every sample near one of the two modes
    assert 0.25 < (s[..., 0] > 0).float().mean() < 0.75  # and both modes occur


def test_sample_kwargs_give_var_scale_only_to_heads_that_take_it():
    from divot_mini.generation_heads import sample_kwargs
    g = torch.Generator()
    assert sample_kwargs(make_generation_head("gmm", 8, 2), g, 0.3) == {"generator": g, "var_scale": 0.3}
    assert sample_kwargs(make_generation_head("gmm_k1", 8, 2)) == {"var_scale": 0.1}
    assert sample_kwargs(make_generation_head("mse", 8, 2), g) == {"generator": g}
    assert sample_kwargs(make_generation_head("diffusion", 8, 2)) == {}
    # the mixture's component choice only where it is asked for and the head takes one
    assert sample_kwargs(make_generation_head("gmm", 8, 2), component="clip") == {"var_scale": 0.1, "component": "clip"}
    assert sample_kwargs(make_generation_head("mse", 8, 2), component="clip") == {}
