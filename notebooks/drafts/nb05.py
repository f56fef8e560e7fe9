import sys; sys.path.insert(0, __import__('os').path.dirname(__file__))
from nbtools import build
C = []
md = lambda s: C.append(("md", s)); code = lambda s: C.append(("code", s))
# DRAFT: sections 1-2 (the GMM on toys) are complete; sections 3-4 (video generation, the head
# ablation) are added once the tokenizer and Divot-LLM weights ship.
md(r'''
# 05 · Writing continuous tokens: a Gaussian mixture per token

To *generate* a clip, Divot-LLM must write its $N$ Divot tokens. They are continuous vectors, so there
is no vocabulary to put a softmax over. The simplest answer — regress each token with a mean-squared
error — fails in an instructive way, and the paper's answer is to let the LLM predict a **Gaussian
mixture model** (GMM) for each token:

$$
p(x \mid h) = \sum_{j=1}^{k} \pi_j(h)\; \mathcal{N}\!\big(x;\ \mu_j(h),\ \operatorname{diag}\sigma_j^2(h)\big),
\qquad \pi = \operatorname{softmax}(\ell), \quad \sigma^2 = \max(\operatorname{softplus}(r), 10^{-5})
$$

with $k = 16$ components; the output projection maps the LLM's state $h$ at each query position to
$[\mu\ (kd) \mid r\ (kd) \mid \ell\ (k)]$ — $2kd + k = 8208$ numbers for $d = 256$. Training minimises
the negative log-likelihood of the real tokens (divided by $d$); generation picks one component by its
weight and samples from it with the variances shrunk by `var_scale` (0.1 officially).

This chapter first shows *why* on toys small enough to see, using the functions of
`divot_mini/gmm_head.py` (built on `torch.distributions`).
''')
code(r'''
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from divot_mini import viz
from divot_mini.gmm_head import gmm_distribution, gmm_mean, gmm_nll, gmm_num_params, gmm_sample, split_gmm_params

FAST = viz.is_fast()
_ = torch.manual_seed(0)
''')
md(r'''
## 1. A 1-D toy: one prompt, two right answers

Suppose the prompt says "a circle moves left" and says nothing about colour. Half of the matching
training clips are red, half blue; along one token dimension that is a value near $-2$ or near $+2$.
We fit three models of that one number (no LLM — just the parameters of the output distribution):

* **MSE regression**: one number $\hat x$ minimising $\mathbb{E}(x - \hat x)^2$;
* **GMM, $k = 1$**: one Gaussian, fitted by likelihood;
* **GMM, $k = 16$**: the official head.
''')
code(r'''
g = torch.Generator().manual_seed(0)
n = 2000
modes = torch.where(torch.rand(n, generator=g) < 0.5, -2.0, 2.0)
x = (modes + 0.3 * torch.randn(n, generator=g))[:, None]   # [n, d=1]

def fit_gmm(data, k, steps=300, lr=0.05, seed=0):
    """Fit the raw GMM parameters [2kd+k] (shared by every sample) by gradient descent on the NLL."""
    d = data.shape[-1]
    gg = torch.Generator().manual_seed(seed)
    params = torch.zeros(gmm_num_params(k, d))
    params[: k * d] = torch.randn(k * d, generator=gg)          # spread the initial means
    params.requires_grad_(True)
    opt = torch.optim.Adam([params], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = gmm_nll(params.expand(len(data), -1), data, k)
        loss.backward()
        opt.step()
    return params.detach(), loss.item()

steps = 150 if FAST else 400
mse = x.mean(0)                      # the MSE minimiser is the mean
p1, nll1 = fit_gmm(x, 1, steps)
p16, nll16 = fit_gmm(x, 16, steps)
print(f"MSE regression predicts {mse.item():+.2f} (no training clip is near it)")
print(f"NLL per dim: k=1 {nll1:.3f}   k=16 {nll16:.3f}")
assert abs(mse.item()) < 0.2 and nll16 < nll1 - 0.3
''')
code(r'''
grid = torch.linspace(-4, 4, 400)[:, None]
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.hist(x[:, 0], bins=80, density=True, color="0.85", label="training tokens")
for params, k, style in ((p1, 1, "C1"), (p16, 16, "C0")):
    dist = gmm_distribution(*split_gmm_params(params, k))
    ax.plot(grid[:, 0], dist.log_prob(grid).exp(), style, label=f"GMM k={k}")
ax.axvline(mse.item(), color="C3", ls="--", label="MSE regression")
ax.legend(fontsize=7), ax.set_xlabel("token value"), ax.set_yticks([])
fig.tight_layout(), fig.savefig(viz.figures_dir() / "05_gmm_1d.png", dpi=120)
plt.show()
''')
md(r'''
Regression lands *between* the modes — a purple clip that no training clip looks like. A single
Gaussian covers both modes but puts most of its mass in the empty middle: its samples are often purple
too. The mixture puts its components on the modes and its weights say how often each occurs; sampling
picks a mode, then a point near it.

## 2. A 2-D toy, and the two knobs: $k$ and `var_scale`

Four clusters (think: four colours a colour-free prompt allows). Move the sliders: with $k < 4$ some
components must straddle clusters and their samples fall between them; `var_scale` shrinks every
component's variance at sampling time (officially 0.1): samples get sharper, the choice among modes —
the diversity that matters — stays.
''')
code(r'''
centres = torch.tensor([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])
y = centres[torch.randint(0, 4, (2000,), generator=g)] + 0.35 * torch.randn(2000, 2, generator=g)
fits = {k: fit_gmm(y, k, steps, seed=1)[0] for k in (1, 2, 4, 16)}

def inside(samples):
    """Share of samples within 1.0 of a cluster centre (a "real colour")."""
    return (torch.cdist(samples, centres).min(1).values < 1.0).float().mean().item()

def show(k=16, var_scale=0.1):
    s = gmm_sample(fits[k].expand(500, -1), k, var_scale=var_scale, generator=torch.Generator().manual_seed(0))
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.scatter(y[:500, 0], y[:500, 1], s=3, c="0.8", label="data")
    ax.scatter(s[:, 0], s[:, 1], s=3, c="C0", label="samples")
    ax.scatter(*gmm_mean(fits[k], k), marker="x", c="C3", s=60, label="mixture mean")
    ax.set_xlim(-4, 4), ax.set_ylim(-4, 4), ax.set_title(f"k={k}, var_scale={var_scale}: "
                                                         f"{inside(s):.0%} on a cluster", fontsize=8)
    ax.legend(fontsize=6, loc="center")
    plt.show()

_ = widgets.interact(show, k=widgets.SelectionSlider(options=[1, 2, 4, 16], value=16),
                     var_scale=widgets.FloatLogSlider(value=0.1, base=10, min=-2, max=0, step=0.25))
''')
code(r'''
# NBVAL_CHECK_OUTPUT
rows = []
for k in (1, 2, 4, 16):
    for vs in (1.0, 0.1):
        s = gmm_sample(fits[k].expand(2000, -1), k, var_scale=vs, generator=torch.Generator().manual_seed(0))
        rows.append((k, vs, inside(s)))
        print(f"k={k:2d} var_scale={vs:4.1f}: {inside(s):6.1%} of samples on a cluster")
on = {(k, vs): v for k, vs, v in rows}
assert on[(16, 0.1)] > 0.95 and on[(1, 1.0)] < 0.5
''')
build(C, sys.argv[1])
