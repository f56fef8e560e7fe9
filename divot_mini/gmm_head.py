r"""Generating continuous tokens: the LLM predicts a Gaussian Mixture Model per token.

A clip's N Divot tokens are continuous vectors (d = 256), so "the next token" has no softmax over a
vocabulary. Divot lets the LLM's output state at each of the N query positions predict the
parameters of a k-component mixture of diagonal Gaussians over that token (k = 16):

    output_resampler(h)  ->  [ means (k*d) | variances (k*d) | weight logits (k) ]   (2kd + k = 8208)

    p(x) = \sum_j softmax(logits)_j  N(x; mu_j, diag(var_j)),   var_j = max(softplus(raw_j), 1e-5)

Training minimises the negative log-likelihood of the tokenizer's real tokens, divided by d (so the
loss reads "per dimension", like an MSE). Generation samples one component per token and then a
point from it, with the variances shrunk by ``var_scale`` (0.1 officially): a sharper sample that
still *chooses* among modes. Regression (MSE) would instead average the modes -- a clip "halfway
between red and blue" -- which is the paper's argument for the GMM.
"""
from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F

from .projection import projection_mlp

MIN_VARIANCE = 1e-5
SAMPLE_VAR_SCALE = 0.1  # official generation setting


def gmm_num_params(k: int, d: int) -> int:
    return 2 * k * d + k


def split_gmm_params(params: torch.Tensor, k: int, var_scale: float = 1.0,
                     min_variance: float = MIN_VARIANCE):
    """[..., 2kd+k] -> means [..., k, d], variances [..., k, d], weight logits [..., k].

    Variances are ``clamp(softplus(raw), min=1e-5) * var_scale`` (the official order: clamp first).
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if params.shape[-1] <= k or (params.shape[-1] - k) % (2 * k):
        raise ValueError(f"GMM parameters must have 2*k*d + k entries for k={k}; "
                         f"got last dimension {params.shape[-1]}")
    d = (params.shape[-1] - k) // (2 * k)
    lead = params.shape[:-1]
    means = params[..., : k * d].reshape(*lead, k, d)
    raw = params[..., k * d: 2 * k * d].reshape(*lead, k, d)
    variances = F.softplus(raw).clamp(min=min_variance) * var_scale
    return means, variances, params[..., 2 * k * d:]


def gmm_distribution(means, variances, logits) -> D.MixtureSameFamily:
    """The mixture as a torch distribution over d-dimensional vectors (event shape [d])."""
    components = D.Independent(D.Normal(means, variances.sqrt()), 1)
    return D.MixtureSameFamily(D.Categorical(logits=logits), components)


def gmm_nll(params: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Mean negative log-likelihood of ``targets`` [..., d] per token, divided by d (official loss)."""
    means, variances, logits = split_gmm_params(params, k)
    if targets.shape != means.shape[:-2] + means.shape[-1:]:
        raise ValueError(f"targets of shape {tuple(targets.shape)} do not match GMM parameters for "
                         f"tokens {tuple(means.shape[:-2])} of width {means.shape[-1]}")
    return -gmm_distribution(means, variances, logits).log_prob(targets).mean() / targets.shape[-1]


def gmm_mean(params: torch.Tensor, k: int) -> torch.Tensor:
    """The mixture's mean, sum_j w_j mu_j (the official non-sampling prediction)."""
    means, _, logits = split_gmm_params(params, k)
    return (logits.softmax(-1).unsqueeze(-1) * means).sum(-2)


def gmm_sample(params: torch.Tensor, k: int, var_scale: float = SAMPLE_VAR_SCALE,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample per token: pick a component by its weight, then draw from that Gaussian."""
    if var_scale < 0:
        raise ValueError(f"var_scale must be >= 0, got {var_scale}")
    means, variances, logits = split_gmm_params(params, k, var_scale=var_scale)
    lead, d = means.shape[:-2], means.shape[-1]
    # torch.distributions cannot take a generator; draw with multinomial + randn to be seedable.
    probs = logits.softmax(-1).reshape(-1, k).float()
    pick = torch.multinomial(probs, 1, generator=generator).view(*lead, 1, 1).expand(*lead, 1, d)
    mu, var = means.gather(-2, pick).squeeze(-2), variances.gather(-2, pick).squeeze(-2)
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + var.sqrt() * noise


class GMMHead(nn.Module):
    """The official ``output_resampler`` + GMM: output states [B, N, H] -> tokens [B, N, d].

    ``proj`` is Linear(H, 2kd+k) -> GELU -> Linear(2kd+k, 2kd+k), the official two-layer shape.

    ``mean_mse_weight`` (0 = official): adds that weight times the MSE between the *mixture mean* and
    the real token to the loss. Not in the paper: a measured fix for the failure the course's head
    ablation shows (notebook 05) -- the NLL alone is minimised early by fitting the tokens' marginal
    distribution, and the mixture then ignores the prompt; the MSE term makes the LLM's states carry
    the prompt from the first steps, which the mixture can then use.
    """

    def __init__(self, hidden_size: int, token_dim: int, k: int = 16, mean_mse_weight: float = 0.0):
        super().__init__()
        if min(hidden_size, token_dim, k) <= 0:
            raise ValueError("hidden_size, token_dim and k must be positive")
        if mean_mse_weight < 0:
            raise ValueError(f"mean_mse_weight must be >= 0, got {mean_mse_weight}")
        self.hidden_size, self.token_dim, self.k = hidden_size, token_dim, k
        self.mean_mse_weight = mean_mse_weight
        self.proj = projection_mlp(hidden_size, gmm_num_params(k, token_dim))

    def params(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.shape[-1] != self.hidden_size:
            raise ValueError(f"expected output states of width {self.hidden_size}, "
                             f"got shape {tuple(hidden.shape)}")
        return self.proj(hidden)

    def loss(self, hidden: torch.Tensor, target_tokens: torch.Tensor) -> torch.Tensor:
        # The NLL in fp32: log-probabilities of 256-dim Gaussians overflow fp16/bf16 easily.
        params, target = self.params(hidden).float(), target_tokens.float()
        loss = gmm_nll(params, target, self.k)
        if self.mean_mse_weight:
            loss = loss + self.mean_mse_weight * F.mse_loss(gmm_mean(params, self.k), target)
        return loss

    def weights(self, hidden: torch.Tensor) -> torch.Tensor:
        """Mixture weights [..., k] per token (softmax of the logits)."""
        return split_gmm_params(self.params(hidden), self.k)[2].softmax(-1)

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        return gmm_mean(self.params(hidden), self.k)

    @torch.no_grad()
    def sample(self, hidden: torch.Tensor, var_scale: float = SAMPLE_VAR_SCALE,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return gmm_sample(self.params(hidden), self.k, var_scale=var_scale, generator=generator)
