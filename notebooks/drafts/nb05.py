import sys; sys.path.insert(0, __import__('os').path.dirname(__file__))
from nbtools import build
C = []
md = lambda s: C.append(("md", s)); code = lambda s: C.append(("code", s))
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
`divot_mini/gmm_head.py` (built on `torch.distributions`); then lets the course's Divot-LLM write clips;
then reproduces the paper's comparison of generation heads (its Fig. 4) and measures what each does.
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
rows = []
for k in (1, 2, 4, 16):
    for vs in (1.0, 0.1):
        s = gmm_sample(fits[k].expand(2000, -1), k, var_scale=vs, generator=torch.Generator().manual_seed(0))
        rows.append((k, vs, inside(s)))
        print(f"k={k:2d} var_scale={vs:4.1f}: {inside(s):6.1%} of samples on a cluster")
on = {(k, vs): v for k, vs, v in rows}
assert on[(16, 0.1)] > 0.95 and on[(1, 1.0)] < 0.5
''')

md(r"""
## 3. Divot-LLM writes a clip

The shipped Divot-LLM of chapter 04 was trained on both tasks at once: reading clips (captions, answers)
and writing them (the GMM loss on the tokens of the clip a caption describes). Generation is one forward
pass: the prompt, the model's `<vid>`, then `<frame>` and $N$ query positions that attend to each other
(`DivotLLM.generation_states`), the GMM head on their output states, one sample per token, and the
de-tokenizer of chapter 03 turns the sampled tokens into 16 frames.

One change from the paper, made because it was measured (section 4): the shipped model's GMM is trained
with the mixture's negative log-likelihood **plus the squared error of the mixture's mean**,
$\mathcal{L} = \mathcal{L}_\text{NLL} + \lVert \textstyle\sum_j \pi_j \boldsymbol{\mu}_j - \mathbf{z}\rVert^2 / d$.
The head, its parameters and its sampling are the official ones; with the NLL alone, at this budget, the
mixture ignores the prompt.
""")
code(r"""
from divot_mini import head_ablation as A
from divot_mini.data import COLOURS, SHAPES, MOTIONS
from divot_mini.linear_probe import LinearProbes
from divot_mini.llm_evaluation import generate_clip_tokens, generation_prompts, text_to_video
from divot_mini.llm_training import load_divot_llm, token_table
from divot_mini.tokenizer_training import load_trained

divot = load_trained(verbose=False)          # frozen ViT + Divot tokenizer + de-tokenizer (chapter 03)
llm, text_tok = load_divot_llm(verbose=False)  # the shipped Divot-LLM (chapter 04)
prompts = ["a red circle moves left", "a blue square moves up", "a green triangle moves right",
           "a yellow circle moves down"]
videos = text_to_video(llm, text_tok, divot, prompts, seed=0)
print("generated", tuple(videos.shape), "from", len(prompts), "prompts")
assert videos.shape == (4, 16, 3, 32, 32) and torch.isfinite(videos).all()
_ = viz.frame_grid(videos, row_labels=prompts, frames=range(0, 16, 3), path="05_generated.png")
plt.show()
""")
md(r"""
Judge them by eye first: do the colours match the prompts? To judge them with numbers without mixing in
the de-tokenizer's own errors (chapter 03: from *real* tokens it decodes colour 99% right but shape only
75% and motion at chance), read the generated **tokens** directly. Fit linear probes on the real tokens of training clips
(`linear_probe.LinearProbes`), then ask them what the LLM wrote. The probes' accuracy on the real tokens
of test clips is the ceiling: a generator that writes tokens like the tokenizer's cannot do better.
""")
code(r"""
n_train, n_eval = (1024, 128) if FAST else (4096, 256)
train = token_table(divot, "train", n_train)               # real tokens of training clips (+ attributes)
tables = {s: token_table(divot, s, n_eval) for s in ("test", "heldout")}
probes = LinearProbes(train.tokens[:1024], train.labels(slice(0, 1024)))
ceil = A.ceiling(probes, tables)
shipped = A.evaluate_head(llm, probes, tables)
print(f"{'test split':12s} {'real tokens':>12s} {'LLM sample':>11s} {'mixture mean':>13s}   (chance)")
for k, n in (("shape", 3), ("colour", 4), ("motion", 4)):
    print(f"{k:12s} {ceil['test_' + k]:12.2f} {shipped['test_' + k]:11.2f} {shipped['test_' + k + '_det']:13.2f}"
          f"   ({1 / n:.2f})")
print(f"colour-free prompts: colour entropy of the samples {shipped['colour_free_entropy']:.2f} (1 = every colour;"
      f" official sampler; section 5 measures another)")
print(f"mixture weights move by {shipped['weight_sensitivity']:.3f} (total variation) when only the colour word changes")
assert ceil["test_colour"] > 0.6            # the tokens carry colour: a generator could write it
assert shipped["test_colour"] > 0.6         # ... and the shipped LLM writes the prompt's colour
assert shipped["colour_free_entropy"] > 0.2  # the GMM's samples vary
""")
md(r"""
The tokens carry colour (the ceiling), shape partly, and motion not at all (chapter 03: motion is
averaged away in the tokenizer's Perceiver resampler). The LLM's samples write the prompt's **colour** as
well as the real tokens carry it, and on colour-free prompts they still vary. The last line is the
check the course's first prototype failed: when only the colour word changes, do the mixture weights
change (total variation: 0 = not at all, 1 = entirely different components)? Here they do — the mixture
*chooses* its components by the prompt. The picture shows the weights of the first token for the four
colour words:
""")
code(r"""
with torch.no_grad():
    ids, mask = generation_prompts(text_tok, [f"a {c} circle moves left" for c in COLOURS])
    w = llm.output_resampler.weights(llm.generation_states(ids, mask))  # [4 prompts, N tokens, k]
fig, axes = plt.subplots(1, 4, figsize=(9, 1.8), sharey=True)
for i, (ax, c) in enumerate(zip(axes, COLOURS)):
    ax.bar(range(w.shape[-1]), w[i, 0], color="C0")
    ax.set_title(f'"a {c} circle moves left"', fontsize=7), ax.set_xlabel("component", fontsize=7)
axes[0].set_ylabel("weight, token 0", fontsize=7)
fig.tight_layout(), fig.savefig(viz.figures_dir() / "05_mixture_weights.png", dpi=120)
plt.show()
""")
md(r"""
With the paper's loss alone it does not: section 4 trains the same kind of model with the mixture NLL
only, and its weights barely move with the colour word (0.01) and its samples' colour is at chance.
Why would a mixture ignore the prompt? Look at what it has to model. Per (position, dimension) the
standardised tokens vary with unit variance across clips, but almost all of that variation lies in three
directions (the first three principal components hold 99.7% of it on the shipped tokenizer — four colour
clusters span exactly three dimensions). A mixture fits that marginal without reading the prompt: a few
narrow components on each colour cluster, weights about 1/4 each. That alone takes the negative
log-likelihood from about 1.4 to below −0.7 per dimension. Reading the colour word could then only
sharpen the weights from 1/4 to 1 — worth $\log 4 \approx 1.4$ nats per token, 0.04 per dimension. The
gradient that would teach the LLM to pass the colour word to the weights is correspondingly small, and
in 400 steps it does not. Regression
has no such shortcut: its only way to lower the loss is to read the prompt — which is why adding the
regression loss of the mixture's mean fixes the mixture. The next section measures this with every head
the paper compares.

## 4. The paper's ablation: MSE, diffusion head, GMM $k=1$, GMM $k=16$

Same LLM (a smaller Mistral, 2 layers x 128, so five of them train in minutes), same data, same steps,
same seed; trained on generation only (prompt -> clip tokens, 30% of prompts leave one attribute out).
Only the head changes (`divot_mini/generation_heads.py`):

| head | loss | sampling | can it pick one of several modes? |
|---|---|---|---|
| `mse` | $\lVert \hat x - x\rVert^2$ | none: $\hat x$ | no — predicts their average |
| `diffusion` | noise prediction of a per-token MLP denoiser (MAR) | 25 DDIM steps | yes |
| `gmm_k1` | Gaussian NLL | one Gaussian | no — covers them with one wide bump |
| `gmm` ($k=16$) | mixture NLL | component, then point | yes (Divot's choice) |
| `gmm_mse` | mixture NLL + MSE of the mixture mean | as `gmm` | yes (the course's fix, **not** the paper's; the shipped model's) |

Two numbers per head: **prompt following** — the probe's colour on tokens written for full captions
(test split) — and **diversity** — on colour-free prompts ("a circle moves left"), the entropy of the
probe's colour over 64 samples, normalised so 1 means all four colours equally often, which is what the
training data holds for such a prompt. A good head is high on both.
""")
code(r"""
heads = ("mse", "gmm", "gmm_mse") if FAST else A.ABLATION_HEADS
steps = 120 if FAST else A.ABLATION_STEPS
live = A.run_ablation(train, tables, heads=heads, steps=steps, keep_models=True)
print(f"{steps} steps per head, {len(train)} training clips")
print(f"{'head':9s} {'train s':>8s} {'colour (prompt)':>16s} {'colour-free entropy':>20s} {'weights move':>13s}")
opt = lambda r, k, f=".3f": "-" if r.get(k) is None else format(r[k], f)
for h, r in live["rows"].items():
    print(f"{h:9s} {r['train_seconds']:8.1f} {r['test_colour']:16.2f} {r['colour_free_entropy']:20.2f} "
          f"{opt(r, 'weight_sensitivity'):>13s}")
rows = live["rows"]
assert rows["mse"]["colour_free_entropy"] == 0.0   # one prediction per prompt: never diverse
assert rows["gmm"]["colour_free_entropy"] > 0.3    # the mixture's samples are
assert rows["mse"]["history"][-1] < rows["mse"]["history"][0]
""")
md(r"""
The committed benchmark (`python benchmarks/head_ablation.py`, ~12 min on 2 cores) runs every head at the
full budget, and also decodes generations to video and scores them with the video probe of chapter 00.
Its file, with the command and commit that made it:
""")
code(r"""
bench = A.load_benchmark()  # benchmarks/head_ablation.json
print(bench["command"], "| commit", bench["commit"], "|", bench["recipe"])
print(f"ceiling (real tokens): test colour {bench['ceiling']['test_colour']:.2f}, shape {bench['ceiling']['test_shape']:.2f}")
print(f"{'head':9s} {'train s':>8s} {'test s/c/m':>16s} {'heldout s/c/m':>16s} {'free H':>7s} {'agree':>6s} "
      f"{'H clip':>7s} {'w-move':>7s} {'video c':>8s}")
for h, r in bench["rows"].items():
    acc = lambda s: "/".join(f"{r[f'{s}_{k}']:.2f}" for k in ("shape", "colour", "motion"))
    print(f"{h:9s} {r['train_seconds']:8.1f} {acc('test'):>16s} {acc('heldout'):>16s} "
          f"{r['colour_free_entropy']:7.2f} {opt(r, 'colour_free_agreement', '.2f'):>6s} "
          f"{opt(r, 'colour_free_entropy_clip', '.2f'):>7s} {opt(r, 'weight_sensitivity'):>7s} "
          f"{r.get('video_test_colour', float('nan')):8.2f}")

fig, ax = plt.subplots(figsize=(4.2, 3.2))
for i, (h, r) in enumerate(bench["rows"].items()):
    ax.scatter(r["test_colour"], r["colour_free_entropy"], s=40, color=f"C{i}", label=h)
ax.axvline(bench["ceiling"]["test_colour"], color="0.6", ls="--", lw=1)
ax.text(bench["ceiling"]["test_colour"], 0.02, " real tokens", fontsize=7, color="0.4")
ax.axvline(0.25, color="0.8", ls=":", lw=1)
ax.set_xlabel("prompt following: colour of tokens for full captions"), ax.set_ylabel("diversity: colour entropy,\ncolour-free prompts")
ax.set_xlim(0, 1), ax.set_ylim(-0.05, 1.05), ax.legend(fontsize=7, loc="center left")
fig.tight_layout(), fig.savefig(viz.figures_dir() / "05_head_ablation.png", dpi=120)
plt.show()
assert set(bench["rows"]) == set(A.ABLATION_HEADS)
""")
md(r"""
What the committed run (400 steps per head, 2 CPU cores) says, against the paper's claim:

* **MSE regression** follows the prompt perfectly — colour 1.00, the real tokens' ceiling, on the test
  split and on held-out combinations — and is **never diverse**: a colour-free prompt gets the same tokens
  every time (entropy 0). Exactly the half of the paper's argument that holds at any scale.
* **GMM $k=16$** (Divot's head, the paper's loss) samples varied colours (entropy 0.68, the most diverse
  head), but **ignores the prompt**: colour 0.21 (chance 0.25), and its mixture weights move by 0.01 when
  the colour word changes. At this budget the paper's ranking does **not** reproduce: the mixture spends
  its training on the tokens' nuisance structure (section 3).
* **GMM $k=1$** (a single Gaussian) behaves like a noisy regression: colour 1.00, entropy 0.20 — its
  diversity is sampling noise around one mean, not a choice among colours.
* **The diffusion head** lands between: colour 0.75, entropy 0.51, and it is the slowest to train and to
  sample (25 denoiser passes per token).
* **GMM + mean-MSE** (the course's change, not the paper's): colour 1.00 with entropy 0.61 — regression's
  prompt following *and* the mixture's choices; its weights move by 0.88 with the colour word. The MSE term
  makes the LLM's states read the prompt from the first step, and the mixture then uses them. This is the
  recipe of the shipped Divot-LLM (section 3).

**Bars of the course:** text-to-video probe accuracy $\ge 0.90$ per attribute — met for colour
by `mse`, `gmm_k1` and `gmm_mse` (tokens and decoded video), missed for shape and motion by every head,
because the tokens themselves carry no more (ceiling 0.77 / 1.00 / 0.33 for shape / colour / motion);
colour-free entropy of GMM $k=16$ $\ge 0.8$ — missed with the official sampler (0.68; `gmm_mse` 0.61), met
with one component per clip (0.98; `gmm_mse` 0.91) at a price in prompt following (section 5). What the ablation shows,
robustly and in the notebook's own fast run, is the qualitative split the paper builds on: a regression
head cannot be diverse, a mixture can — and, at this scale, a mixture needs help to listen.
""")
md(r"""
## 5. Whose choice is it: each token's, or the clip's?

A colour-free prompt leaves a choice open, and the mixture is there to make it. But the $N$ tokens of a
clip are written in **one** forward pass, so the official sampler draws each token's component
*independently*. Every token then picks its own colour — and the clip becomes a vote. If each token says
"red" with probability $p$, the number of red tokens is binomial, and for $p > 1/2$

$$
P\big(\text{most of the } N \text{ tokens say red}\big) \;\longrightarrow\; 1 \qquad (N \to \infty):
$$

the clip almost always shows the per-token favourite (when the tokens disagree, the decoded clip is a
blend of them), so the diversity the mixture holds per token is lost per clip.

To see it, read every token **on its own**: `head_ablation.TokenColourProbes` fits one linear colour probe
per token position on real tokens (each position alone reads colour perfectly, and the 16 tokens of a
real clip always agree). Below, 24 samples for "a circle moves left": one row per sample, one cell per
token, coloured by what that token says.
""")
code(r"""
token_probes = A.TokenColourProbes(train.tokens, train.colour)
free_prompt = ["a circle moves left"] * 24
palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.15, 0.3, 0.95], [0.95, 0.85, 0.1]])  # COLOURS' order
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
sampled = {}
for ax, component in zip(axes, ("token", "clip")):
    sampled[component] = generate_clip_tokens(llm, text_tok, free_prompt, seed=1, component=component)
    said = token_probes.predict(sampled[component])  # [24 samples, N tokens]
    ax.imshow(palette[said], interpolation="nearest")
    ax.set_title({"token": "official: one component per token", "clip": "one component per clip"}[component], fontsize=8)
    ax.set_xlabel("token", fontsize=7), ax.set_ylabel("sample", fontsize=7), ax.tick_params(labelsize=6)
fig.suptitle('"a circle moves left": the colour each token says on its own', fontsize=8)
fig.tight_layout(), fig.savefig(viz.figures_dir() / "05_component_choice.png", dpi=120)
plt.show()
""")
md(r"""
With the official sampler the rows are mixed: the tokens of one clip disagree. Choosing **one component
per clip** instead is possible because the course's components are *aligned*: one shared head writes every
token, so component $j$ stands for the same colour at all $N$ tokens (`head_ablation.component_alignment`
reads the colour of each component's mean at every token). The clip's weights are the tokens' weights
combined in log space (a normalised geometric mean),

$$
\bar\pi_j \;\propto\; \exp\Big(\frac1N \sum_{n=1}^{N} \log \pi_{n,j}\Big),
$$

one $j$ is drawn from $\bar\pi$, and every token then samples from its own component $j$
(`gmm_sample(..., component="clip")`). Same weights, same parameter layout, same training; only the
sampler changes. Measured on every colour-free prompt (12 prompts x 64 samples), and on the full captions
of the test clips (the colour the written tokens show, by the probes of section 3):
""")
code(r"""
per_token = A.colour_free_report(llm, text_tok, probes, token_probes, component="token")
per_clip = A.colour_free_report(llm, text_tok, probes, token_probes, component="clip")
align = A.component_alignment(llm, text_tok, token_probes)
caps, labels = tables["test"].captions(), tables["test"].labels()
follows = {c: probes.accuracy(generate_clip_tokens(llm, text_tok, caps, seed=0, component=c), labels)["colour"]
           for c in ("token", "clip")}
print(f"component alignment (component j = same colour at every token): {align:.2f}")
print(f"{'sampler':24s} {'colour-free: tokens agree':>25s} {'colour entropy':>15s} {'full captions: colour':>22s}")
for c, r in (("token", per_token), ("clip", per_clip)):
    name = {"token": "one component per token", "clip": "one component per clip"}[c]
    print(f"{name:24s} {r['agreement']:25.2f} {r['entropy']:15.2f} {follows[c]:22.2f}")
print("the shipped Divot-LLM samples with:", llm.output_resampler.sample_component, "(official)")
assert align > 0.9
assert per_clip["agreement"] > per_token["agreement"] and per_clip["entropy"] > per_token["entropy"]
""")
md(r"""
One component per clip makes every sampled clip agree with itself and doubles the diversity of
colour-free prompts — but look at the last column. Where the prompt *does* decide the colour, each token's
weights still put a little mass on wrong colours. Per token, those slips are outvoted by the clip's other
tokens (the vote that hurt diversity filters noise here); per clip, a slip recolours the whole clip. The
same trade-off in the ablation's committed run (table above, `gmm_mse`): colour-free entropy 0.61 per
token, 0.91 per clip — above the course's 0.8 bar — while the colour written for full captions falls from
1.00 to 0.90 (held-out combinations: 1.00 to 0.88).

So the shipped model keeps the **official** sampler (`llm_training.LLM_SAMPLE_COMPONENT = "token"`), and
`component="clip"` is one argument away (`generate_clip_tokens(..., component="clip")`, `gmm_sample`).
The per-clip choice would be free with weights that are sharp wherever the prompt decides. Training the
mixture at the clip level too (the likelihood of all $N$ tokens under one shared component, so that the
weights learn the probability of a whole clip) was the obvious try; at the ablation's budget it did not
sharpen them (colour 0.84 per clip, `benchmarks/RESULTS.md`). The full-size switch keeps the official sampler for a further reason:
nothing guarantees that the official weights' components are aligned across tokens —
`component_alignment` is the check to run before trying it there.
""")
build(C, sys.argv[1])
