"""Evidence that the tokenizer learned: what notebook 03 and ``benchmarks/tokenizer_stage.py`` measure.

* reconstruction -- tokens of clips the model never saw, decoded by DDIM; the probe reads shape,
  colour and motion off the decoded clips; PSNR against the input;
* the tokens matter -- decoding clip A's tokens must give A's attributes (not those of the clip B
  whose tokens we did *not* pass), and the uninformative context (all-zeros video) must not;
* linear probes on frozen tokens, and on one frame's ViT features (no motion there).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import MovingShapes
from .linear_probe import ATTRIBUTES, position_targets, probe_accuracy, ridge_r2
from .probe import AttributeProbe, accuracy


def _device(model) -> torch.device:
    """Where the model lives (a LightningModule knows; a plain module: its first parameter)."""
    if isinstance(getattr(model, "device", None), torch.device):
        return model.device
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for clips in [-1, 1] (peak-to-peak 2)."""
    return (10 * torch.log10(4.0 / F.mse_loss(a, b))).item()


def clips(split: str, n: int, seed: int = 0) -> dict:
    """``n`` clips of ``split`` with their labels, and ``position``: the object's centre in the first
    and last frame [n, 4] (what :func:`~divot_mini.linear_probe.ridge_r2` regresses)."""
    ds = MovingShapes(split, size=n, seed=seed)
    batch = ds[list(range(n))]
    batch["position"] = position_targets(ds.attributes(list(range(n))))
    return batch


def position_r2(train_x: torch.Tensor, train: dict, test_x: torch.Tensor, test: dict) -> float:
    """Mean R^2 of a linear regression of the object's position (:func:`clips`) on features."""
    return ridge_r2(train_x, train["position"], test_x, test["position"]).mean().item()


@torch.no_grad()
def decode_tokens(model, tokens: torch.Tensor, steps: int = 10, guidance_scale: float = 1.0,
                  batch_size: int = 32, seed: int = 0, size: int = 32) -> torch.Tensor:
    """Decode Divot tokens [N, n, d] to clips in batches, with a fixed noise seed."""
    out = []
    for i in range(0, len(tokens), batch_size):
        tok = tokens[i:i + batch_size]
        unc = model.uncond_tokens(tok) if guidance_scale != 1.0 else None
        out.append(model.detokenizer.sample(
            tok, unc, frames=16, size=size, steps=steps, guidance_scale=guidance_scale,
            generator=torch.Generator().manual_seed(seed + i), spacing="trailing", eta=0.0).cpu())
    return torch.cat(out)


@torch.no_grad()
def tokens_of(model, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Tokens of clips (on the model's device, returned on the CPU)."""
    return torch.cat([model.tokens(video[i:i + batch_size].to(_device(model))).cpu()
                      for i in range(0, len(video), batch_size)])


def token_spread(tokens: torch.Tensor) -> float:
    """Spread of tokens [n, N, d] across clips relative to their size: 0 when every clip gets the
    same tokens (the collapse that makes the UNet ignore them)."""
    return (tokens.std(0).mean() / tokens.abs().mean().clamp_min(1e-8)).item()


@torch.no_grad()
def reconstruction_report(model, probe: AttributeProbe, split: str = "test", n: int = 256,
                          steps: int = 10, guidance_scale: float = 1.0, seed: int = 0,
                          tokens: torch.Tensor | None = None) -> dict:
    """Probe accuracy per attribute and PSNR of decoded reconstructions of ``n`` clips of ``split``,
    plus the two control experiments (swapped tokens, unconditional context). ``tokens``: the clips'
    tokens if they do not come from ``model.tokens`` (``benchmarks/tokenizer_scale.py``'s oracle)."""
    model.eval()
    b = clips(split, n, seed)
    tokens = (tokens_of(model, b["video"]) if tokens is None else tokens).to(_device(model))
    rec = decode_tokens(model, tokens, steps, guidance_scale, seed=seed, size=b["video"].shape[-1])
    report = {f"recon_{k}": v for k, v in accuracy(probe.predict(rec), b).items()}
    report["psnr"] = psnr(rec, b["video"])
    # Swapped tokens: decode clip i from the tokens of clip i+1; score against both clips' labels.
    m = min(n, 64)
    swapped = decode_tokens(model, tokens[:m].roll(-1, 0), steps, guidance_scale, seed=seed + 1)
    pred = probe.predict(swapped)
    own = {k: b[k][:m] for k in ATTRIBUTES}
    donor = {k: b[k][:m].roll(-1, 0) for k in ATTRIBUTES}
    report.update({f"swap_matches_donor_{k}": (pred[k] == donor[k]).float().mean().item() for k in ATTRIBUTES})
    report.update({f"swap_matches_own_{k}": (pred[k] == own[k]).float().mean().item() for k in ATTRIBUTES})
    # The unconditional context carries no clip: its decodes match the clips only by chance.
    unc = model.uncond_tokens(tokens[:m])
    pred = probe.predict(decode_tokens(model, unc, steps, 1.0, seed=seed + 2))
    report.update({f"uncond_matches_{k}": (pred[k] == own[k]).float().mean().item() for k in ATTRIBUTES})
    return report


@torch.no_grad()
def linear_probe_report(model, n_train: int = 1024, n_test: int = 512, seed: int = 0) -> dict:
    """Linear probes on frozen Divot tokens, and on the ViT patch features of one frame (frame 8)."""
    model.eval()
    tr, te = clips("train", n_train, seed), clips("test", n_test, seed)
    a, b = tokens_of(model, tr["video"]), tokens_of(model, te["video"])
    out = {f"tokens_{k}": v for k, v in probe_accuracy(a, tr, b, te).items()}
    out["tokens_position_r2"] = position_r2(a, tr, b, te)

    def frame_feats(video):
        return torch.cat([model.vit(video[i:i + 64, 8:9].to(_device(model))).cpu()
                          for i in range(0, len(video), 64)])

    out.update({f"single_frame_vit_{k}": v for k, v in
                probe_accuracy(frame_feats(tr["video"]), tr, frame_feats(te["video"]), te).items()})
    return out


TOKENIZER_STAGES = ("vit", "temporal", "pooled", "spatial_temporal", "tokens")


@torch.no_grad()
def tokenizer_stages(model, video: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """The tokenizer's intermediate features of clips, each flattened per clip (on the CPU):
    ``vit`` (5 frames' patch features), ``temporal`` (temporal encoder), ``pooled`` (2-D pooling +
    LayerNorm), ``spatial_temporal`` (after the spatial-temporal blocks, before the Perceiver
    resampler) and ``tokens`` (the resampler's output, the Divot tokens)."""
    from .data import tokenizer_frames

    tok, dev = model.tokenizer, _device(model)
    st = tok.image_proj_model
    out = {k: [] for k in TOKENIZER_STAGES}
    for i in range(0, len(video), batch_size):
        feats = model.vit(tokenizer_frames(video[i:i + batch_size].to(dev)))
        temporal = tok.temporal(feats)
        pooled = tok.norm(tok.pool(temporal))
        x = st.mix(pooled)
        tokens = st.resample(x)
        for k, v in zip(TOKENIZER_STAGES, (feats, temporal, pooled, x, tokens)):
            out[k].append(v.flatten(1).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def stage_probe_report(model, n_train: int = 1024, n_test: int = 512, seed: int = 0) -> dict:
    """Linear probes at every stage of the tokenizer (:func:`tokenizer_stages`): where along the
    pipeline an attribute is still readable, and where it is lost. Keys ``{stage}_{attribute}``, and
    ``{stage}_position_r2``: how well a linear regression reads *where* the object is."""
    model.eval()
    tr, te = clips("train", n_train, seed), clips("test", n_test, seed)
    a, b = tokenizer_stages(model, tr["video"]), tokenizer_stages(model, te["video"])
    out = {}
    for s in TOKENIZER_STAGES:
        out.update({f"{s}_{k}": v for k, v in probe_accuracy(a[s], tr, b[s], te).items()})
        out[f"{s}_position_r2"] = position_r2(a[s], tr, b[s], te)
    return out


# ----------------------------------------------------------------------------- where the UNet draws
def latent_centroids(z: torch.Tensor, background: torch.Tensor, cell: float = 4.0) -> torch.Tensor:
    """Where the object is in latents z [n, C, T, h, w]: the centre of the energy that differs from
    the background latent [C] (beyond each frame's median), per frame -> [n, T, 2] (x, y) in pixels
    (``cell`` pixels per latent cell: 4 for the tiny KL-f4 VAE)."""
    e = (z - background.view(1, -1, 1, 1, 1)).pow(2).sum(1)  # [n, T, h, w]
    e = (e - e.flatten(2).median(2).values[..., None, None]).clamp_min(0) + 1e-8
    w = e / e.sum((2, 3), keepdim=True)
    ys = (torch.arange(z.shape[-2], dtype=z.dtype) + 0.5) * cell
    xs = (torch.arange(z.shape[-1], dtype=z.dtype) + 0.5) * cell
    return torch.stack([(w.sum(2) * xs).sum(-1), (w.sum(3) * ys).sum(-1)], -1)


def placement(x0_hat: torch.Tensor, z0: torch.Tensor, background: torch.Tensor) -> dict:
    """How well predicted clean latents put the object where it is and move it the right way:
    mean centroid error (px), the fraction of clips whose first-to-last displacement points the true
    way (cosine > 0.7), and the mean travel of the prediction vs the truth (px). From t = 999 (pure
    noise in, so only the tokens can say where) this is what the de-tokenizer has learned to read."""
    c, true = latent_centroids(x0_hat, background), latent_centroids(z0, background)
    d_hat, d_true = c[:, -1] - c[:, 0], true[:, -1] - true[:, 0]
    return {"centroid_error_px": (c - true).norm(dim=-1).mean().item(),
            "direction_right": (F.cosine_similarity(d_hat, d_true, dim=-1) > 0.7).float().mean().item(),
            "travel_px": d_hat.norm(dim=-1).mean().item(), "true_travel_px": d_true.norm(dim=-1).mean().item()}


@torch.no_grad()
def noisy_input_placement(z0: torch.Tensor, scheduler, timesteps, background: torch.Tensor,
                          seed: int = 0) -> dict[int, float]:
    """How much of *where* the noisy input x_t itself gives away: the centroid error (px) of the
    object read straight off x_t = sqrt(abar) z0 + sqrt(1 - abar) noise (the same reading as
    :func:`placement`), per timestep. Where it is small the UNet can find the object without asking
    the tokens; where it reaches the error of guessing the mean place, only the tokens can say."""
    from .diffusion import v_target

    true = latent_centroids(z0, background)
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    out = {}
    for t in timesteps:
        a = scheduler.alphas_cumprod[int(t)]
        z_t, _ = v_target(scheduler, z0, noise, torch.full((len(z0),), int(t)))
        c = latent_centroids(z_t, a.sqrt() * background)
        out[int(t)] = (c - true).norm(dim=-1).mean().item()
    return out
