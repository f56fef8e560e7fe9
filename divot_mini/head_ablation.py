"""The paper's generation-head ablation (its Fig. 4 paradigms), measured on the course's tokens.

Same LLM, same data, same steps, same seed; only the head that turns the LLM's output states at the
N query positions into Divot tokens changes (:mod:`divot_mini.generation_heads`):

    mse        regression               one answer per prompt: the average of the right ones
    diffusion  per-token denoiser (MAR) any distribution, many denoising steps per token
    gmm_k1     one Gaussian per token   regression with a learned variance
    gmm        16 Gaussians per token   Divot's choice: can pick one of several modes
    gmm_mse    gmm + MSE on its mean    the course's measured fix (see ``GMMHead``), not the paper's

**Measured in token space.** A generated clip is judged by linear probes fitted on the *real* tokens
of training clips (:class:`linear_probe.LinearProbes`): does a probe read the prompt's colour off the
tokens the LLM wrote? The ceiling is the probes' accuracy on real tokens of the same split. This
skips the de-tokenizer, whose own errors would otherwise hide the heads' differences (the benchmark
reports decoded-video numbers too).

* ``{split}_{attr}``: probe accuracy of sampled tokens for full captions (test clips, held-out
  combinations); ``{split}_{attr}_det``: the head's deterministic prediction (mixture mean, regression).
* ``colour_free_entropy``: prompts that leave the colour out ("a circle moves left"), 64 samples
  each (mixtures: the official sampler, one component per token); entropy of the probe's colour over the samples / log 4 (1 = all colours equally often,
  0 = always the same). The data has every colour for those prompts, so 1 is right.
* ``weight_sensitivity`` (mixtures, k > 1): how much the mixture *weights* move when only the
  colour word of the prompt changes -- the mean total-variation distance between the weights of
  two such prompts, per token. 0 means the component choice ignores the prompt.
* ``colour_free_agreement``: on the same colour-free samples, how often a clip's tokens agree on a
  colour, each token read *alone* by a probe fitted on that token position of real clips
  (:class:`TokenColourProbes`); real clips: 1.0. Heads that sample every token independently (the
  official GMM sampler, the diffusion head) write clips that disagree with themselves.
* ``colour_free_entropy_clip`` / ``colour_free_agreement_clip`` / ``{split}_{attr}_clip`` (mixtures,
  k > 1): the same with one component chosen per clip (``gmm_head.gmm_sample(component="clip")``). Its
  price shows in ``{split}_{attr}_clip``: per token, a little weight on a wrong colour is outvoted by
  the clip's other tokens; per clip, it is followed.
* ``component_alignment`` (mixtures, k > 1): does component j mean the same colour at every token?
  The colour of each component's mean, read per token, agreeing with that component's majority over
  the clip's tokens (weighted by the components' weights; colour-free prompts). Choosing one
  component per clip only makes sense where this is near 1.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import torch

from . import text_tokenizer as tt
from .data import COLOURS, MOTIONS, SHAPES, partial_caption
from .data import caption as make_caption
from .generation_heads import sample_kwargs
from .gmm_head import split_gmm_params
from .linear_probe import LinearProbes
from .llm_evaluation import generate_clip_tokens, generation_prompts
from .llm_training import DivotLLMTraining, StandardizedDivotLLM, TokenTable, fit

ABLATION_HEADS = ("mse", "diffusion", "gmm_k1", "gmm", "gmm_mse")
# The ablation's LLM is smaller than the shipped Divot-LLM (4 x 256): five of them must train in
# minutes, and the heads, not the LLM, are what is compared.
ABLATION_HIDDEN, ABLATION_LAYERS = 128, 2
ABLATION_STEPS, ABLATION_BATCH, ABLATION_LR = 400, 32, 1e-3
ABLATION_PARTIAL_FRAC = 0.3  # share of prompts with an attribute left out (a third: the colour)
FREE_SAMPLES = 64
BENCHMARK_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "head_ablation.json"


def build_ablation_llm(head: str, text_tokenizer=None, num_tokens: int = tt.MINI_NUM_TOKENS,
                       token_dim: int = 32) -> StandardizedDivotLLM:
    """The ablation's LLM (Mistral 2 x 128) with generation head ``head`` (one of ABLATION_HEADS)."""
    if head not in ABLATION_HEADS:
        raise ValueError(f"unknown head {head!r}; the ablation compares {ABLATION_HEADS}")
    text_tokenizer = text_tokenizer or tt.build_text_tokenizer()
    return StandardizedDivotLLM.mini(text_tokenizer, token_dim=token_dim, num_tokens=num_tokens, head=head,
                                     hidden_size=ABLATION_HIDDEN, num_hidden_layers=ABLATION_LAYERS,
                                     num_attention_heads=4, num_key_value_heads=2,
                                     intermediate_size=3 * ABLATION_HIDDEN)


def train_head(head: str, table: TokenTable, steps: int = ABLATION_STEPS, seed: int = 0,
               progress: bool = False, lr: float = ABLATION_LR) -> tuple[StandardizedDivotLLM, dict]:
    """Train the ablation LLM with ``head`` on generation only (prompt -> clip tokens) for ``steps``.
    Returns (model in eval mode, {"train_seconds", "final_loss", "history"})."""
    text_tokenizer = tt.build_text_tokenizer()
    torch.manual_seed(seed)  # the head's and LLM's initial weights
    model = build_ablation_llm(head, text_tokenizer, table.tokens.shape[1], table.tokens.shape[2])
    task = DivotLLMTraining(model, text_tokenizer, table, lr=lr, total_steps=steps,
                            comp_batch=0, gen_batch=ABLATION_BATCH,
                            partial_frac=ABLATION_PARTIAL_FRAC, seed=seed)
    t0 = time.time()
    fit(task, progress=progress, seed=seed)
    losses = [h["gmm"] for h in task.history]  # the head's loss (named after the official head)
    tail = losses[-max(1, len(losses) // 10):]
    return model, {"train_seconds": round(time.time() - t0, 1), "final_loss": sum(tail) / len(tail),
                   "history": losses}


def normalised_entropy(labels: torch.Tensor, classes: int) -> float:
    """Entropy of the empirical distribution of ``labels`` divided by log(classes): 0..1."""
    p = torch.bincount(labels.flatten(), minlength=classes).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum() / math.log(classes))


class TokenColourProbes:
    """One linear colour probe per token position, fitted on real tokens [M, N, d]: which colour does
    token n say *on its own*? (On the course's real tokens every position reads colour perfectly.)"""

    def __init__(self, tokens: torch.Tensor, colour: torch.Tensor):
        if tokens.ndim != 3 or colour.shape != tokens.shape[:1]:
            raise ValueError(f"need tokens [M, N, d] and colours [M], got {tuple(tokens.shape)} and "
                             f"{tuple(colour.shape)}")
        self.shape = tuple(tokens.shape[1:])
        self.probes = [LinearProbes(tokens[:, n], {"colour": colour}) for n in range(tokens.shape[1])]

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Colour index per token [B, N]."""
        if tokens.ndim != 3 or tuple(tokens.shape[1:]) != self.shape:
            raise ValueError(f"expected tokens [B, {self.shape[0]}, {self.shape[1]}], got {tuple(tokens.shape)}")
        return torch.stack([p.predict(tokens[:, n])["colour"] for n, p in enumerate(self.probes)], 1)

    def agreement(self, tokens: torch.Tensor) -> float:
        """Mean share of a clip's tokens that name the clip's majority colour (1 = all agree)."""
        colour = self.predict(tokens)
        return (colour == colour.mode(1).values[:, None]).float().mean().item()


@torch.no_grad()
def colour_free_report(model, text_tokenizer, probes: LinearProbes, token_probes: TokenColourProbes | None = None,
                       samples: int = FREE_SAMPLES, seed: int = 0, component: str | None = None) -> dict:
    """On ``samples`` generations per colour-free prompt, over every (shape, motion) prompt: the mean
    normalised entropy of the probe's colour (``entropy``) and, given ``token_probes``, the mean
    within-clip colour agreement (``agreement``). ``component``: the GMM sampler's choice
    (None: the head's own)."""
    kw = sample_kwargs(model.output_resampler, component=component)
    ent, agree = [], []
    for i, (s, m) in enumerate(itertools.product(range(len(SHAPES)), range(len(MOTIONS)))):
        prompt = [partial_caption(s, 0, m, "colour")] * samples
        tokens = generate_clip_tokens(model, text_tokenizer, prompt, seed=seed + i, **kw)
        ent.append(normalised_entropy(probes.predict(tokens)["colour"], len(COLOURS)))
        if token_probes is not None:
            agree.append(token_probes.agreement(tokens))
    out = {"entropy": sum(ent) / len(ent)}
    if agree:
        out["agreement"] = sum(agree) / len(agree)
    return out


@torch.no_grad()
def component_alignment(model, text_tokenizer, token_probes: TokenColourProbes) -> float | None:
    """How often component j's mean names the same colour at every token position (module docstring);
    None for heads that are not mixtures."""
    head = model.output_resampler
    if getattr(head, "k", 1) <= 1:
        return None
    model.eval()
    prompts = [partial_caption(s, 0, m, "colour") for s, m in itertools.product(range(len(SHAPES)), range(len(MOTIONS)))]
    ids, mask = generation_prompts(text_tokenizer, prompts)
    means, _, logits = split_gmm_params(head.params(model.generation_states(ids, mask)), head.k)  # [P, N, k, d]
    P, N, k, d = means.shape
    raw = means.transpose(1, 2).reshape(P * k, N, d)  # one "clip" per (prompt, component)
    unstandardize = getattr(model, "unstandardize", None)
    colour = token_probes.predict(unstandardize(raw) if unstandardize else raw).view(P, k, N)
    agree = (colour == colour.mode(-1).values[..., None]).float().mean(-1)  # [P, k]
    weight = logits.softmax(-1).mean(1)  # [P, k]: how much each component is used
    return float((agree * weight).sum(-1).mean())


@torch.no_grad()
def weight_sensitivity(model, text_tokenizer) -> float | None:
    """Mean total-variation distance between the mixture weights of two prompts that differ only in
    their colour word (per token, over every shape, motion and colour pair). None for k <= 1."""
    head = model.output_resampler
    if getattr(head, "k", 1) <= 1:
        return None
    model.eval()
    distances = []
    for s, m in itertools.product(range(len(SHAPES)), range(len(MOTIONS))):
        ids, mask = generation_prompts(text_tokenizer, [make_caption(s, c, m) for c in range(len(COLOURS))])
        w = head.weights(model.generation_states(ids, mask))  # [colours, N, k]
        for a, b in itertools.combinations(range(len(COLOURS)), 2):
            distances.append(0.5 * (w[a] - w[b]).abs().sum(-1).mean())
    return float(torch.stack(distances).mean())


@torch.no_grad()
def evaluate_head(model, probes: LinearProbes, tables: dict[str, TokenTable], seed: int = 0,
                  samples: int = FREE_SAMPLES, token_probes: TokenColourProbes | None = None) -> dict:
    """Every token-space number of the module docstring for one trained model (the agreements only
    given ``token_probes``)."""
    text_tokenizer = tt.build_text_tokenizer()
    mixture = getattr(model.output_resampler, "k", 1) > 1
    # key suffix -> sampler: a mixture's official one (a component per token), whatever the head's own
    # default, and one component per clip -- whose price shows where the prompt decides (``*_clip``)
    samplers = {"": "token", "_clip": "clip"} if mixture else {"": None}
    out = {}
    for split, table in tables.items():
        caps, labels = table.captions(), table.labels()
        for suffix, component in samplers.items():
            sampled = generate_clip_tokens(model, text_tokenizer, caps, seed=seed,
                                           **sample_kwargs(model.output_resampler, component=component))
            out.update({f"{split}_{k}{suffix}": v for k, v in probes.accuracy(sampled, labels).items()})
        if hasattr(model.output_resampler, "predict"):
            det = generate_clip_tokens(model, text_tokenizer, caps, sample=False)
            out.update({f"{split}_{k}_det": v for k, v in probes.accuracy(det, labels).items()})
    for suffix, component in samplers.items():
        free = colour_free_report(model, text_tokenizer, probes, token_probes, samples, seed, component)
        out.update({f"colour_free_{k}{suffix}": v for k, v in free.items()})
    out["weight_sensitivity"] = weight_sensitivity(model, text_tokenizer)
    if mixture and token_probes is not None:
        out["component_alignment"] = component_alignment(model, text_tokenizer, token_probes)
    return out


def ceiling(probes: LinearProbes, tables: dict[str, TokenTable]) -> dict:
    """The probes on the *real* tokens of each split: the best a generator can score."""
    return {f"{split}_{k}": v for split, t in tables.items()
            for k, v in probes.accuracy(t.tokens, t.labels()).items()}


def run_ablation(train: TokenTable, tables: dict[str, TokenTable], heads=ABLATION_HEADS,
                 steps: int = ABLATION_STEPS, seed: int = 0, probe_clips: int = 2048,
                 progress: bool = False, keep_models: bool = False, lr: float = ABLATION_LR) -> dict:
    """Train and evaluate every head. Probes are fitted on the first ``probe_clips`` training clips.
    Returns {"ceiling": {...}, "rows": {head: metrics}, "models": {head: model} if keep_models}."""
    probes = LinearProbes(train.tokens[:probe_clips], train.labels(slice(0, probe_clips)))
    token_probes = TokenColourProbes(train.tokens[:probe_clips], train.colour[:probe_clips])
    result = {"ceiling": ceiling(probes, tables), "rows": {}, "models": {}, "probes": probes,
              "token_probes": token_probes}
    result["ceiling"].update({f"{split}_agreement": token_probes.agreement(t.tokens) for split, t in tables.items()})
    for head in heads:
        model, info = train_head(head, train, steps, seed, progress, lr)
        result["rows"][head] = {**info, **evaluate_head(model, probes, tables, seed, token_probes=token_probes)}
        if keep_models:
            result["models"][head] = model
    return result


def load_benchmark(path: str | Path = BENCHMARK_FILE) -> dict:
    """The committed results of ``benchmarks/head_ablation.py`` (command, commit, recipe, rows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no head-ablation results at {path}; make them with "
                                f"`python benchmarks/head_ablation.py --out {path}` (~12 min on 2 cores)")
    return json.loads(path.read_text())
