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

**Which component: per token (official) or per clip (``component="clip"``, an option).**
The N tokens of a clip are written in one forward pass, so the official sampler draws their
components *independently*. Where a prompt leaves a choice open ("a circle moves left": which
colour?), every token then makes its own choice: the clip becomes a vote of N tokens, mixed within
itself, and the vote almost always goes to the most likely colour (the law of large numbers) -- the
diversity the mixture was meant to give is lost at the clip level. Measured on the course's
Divot-LLM (notebook 05): the tokens of one sampled clip agree on a colour 67 % of the time (real clips:
100 %), and the clips' colour entropy is 0.30 although each token alone has 0.69 (per-clip choice: 0.69). Because one shared
head writes every token, component j means the same thing at every token of a clip (the colour of
component j's mean agrees across the 16 tokens in 100 % of the cases), so the choice can be made once
per clip: draw j from the clip's weights exp(mean_n log w_nj) (normalised), then every token samples
from its own component j. Same weights, same layout; only the sampler changes. The price: where the
prompt does decide (a red circle), a token's small weight on a wrong colour was outvoted by the other
tokens and is now followed for the whole clip (the course's model writes the prompt's colour 0.95 instead
of 1.00 with it), so the course keeps the official sampler and notebook 05 measures both.
"""
from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F

from .projection import projection_mlp

MIN_VARIANCE = 1e-5
SAMPLE_VAR_SCALE = 0.1  # official generation setting
SAMPLE_COMPONENTS = ("token", "clip")  # one component per token (official) or one per clip


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


def clip_weights(logits: torch.Tensor) -> torch.Tensor:
    """Weight logits [..., N, k] of a clip's N tokens -> one set of weights [..., k] for the clip:
    the normalised geometric mean of the tokens' weights (each token votes in log space)."""
    return logits.log_softmax(-1).mean(-2).softmax(-1)


def gmm_sample(params: torch.Tensor, k: int, var_scale: float = SAMPLE_VAR_SCALE,
               generator: torch.Generator | None = None, component: str = "token") -> torch.Tensor:
    """One sample per token: pick a component by its weight, then draw from that Gaussian.

    ``component="token"`` (official) picks independently for every token; ``"clip"`` picks one index
    per clip from :func:`clip_weights` and uses it for all N tokens (params [..., N, 2kd+k])."""
    if var_scale < 0:
        raise ValueError(f"var_scale must be >= 0, got {var_scale}")
    if component not in SAMPLE_COMPONENTS:
        raise ValueError(f"component must be one of {SAMPLE_COMPONENTS}, got {component!r}")
    means, variances, logits = split_gmm_params(params, k, var_scale=var_scale)
    lead, d = means.shape[:-2], means.shape[-1]
    # torch.distributions cannot take a generator; draw with multinomial + randn to be seedable.
    if component == "clip":  # one pick per clip, shared by its N tokens
        if len(lead) < 2:
            raise ValueError(f"component='clip' needs parameters [..., N tokens, {params.shape[-1]}], "
                             f"got shape {tuple(params.shape)}")
        probs, picks = clip_weights(logits.float()), (*lead[:-1], 1, 1, 1)
    else:
        probs, picks = logits.softmax(-1).float(), (*lead, 1, 1)
    pick = torch.multinomial(probs.reshape(-1, k), 1, generator=generator).view(picks).expand(*lead, 1, d)
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

    def __init__(self, hidden_size: int, token_dim: int, k: int = 16, mean_mse_weight: float = 0.0,
                 sample_component: str = "token"):
        super().__init__()
        if min(hidden_size, token_dim, k) <= 0:
            raise ValueError("hidden_size, token_dim and k must be positive")
        if mean_mse_weight < 0:
            raise ValueError(f"mean_mse_weight must be >= 0, got {mean_mse_weight}")
        if sample_component not in SAMPLE_COMPONENTS:
            raise ValueError(f"sample_component must be one of {SAMPLE_COMPONENTS}, got {sample_component!r}")
        self.hidden_size, self.token_dim, self.k = hidden_size, token_dim, k
        self.mean_mse_weight = mean_mse_weight
        self.sample_component = sample_component  # the sampler's default (module docstring); no weights
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
               generator: torch.Generator | None = None, component: str | None = None) -> torch.Tensor:
        """Tokens [..., N, d]; ``component`` None: the head's ``sample_component``."""
        return gmm_sample(self.params(hidden), self.k, var_scale=var_scale, generator=generator,
                          component=component or self.sample_component)
