#!/usr/bin/env python3
"""Fast experiments on the tokenizer stage: one design lever per process, measured along the way.

The frozen parts (tiny-CLIP features of the 5 tokenizer frames, tiny-VAE latents of all 16 frames) are
computed once for a pool of training clips and cached, so a step costs only the tokenizer and the UNet
(step times: benchmarks/RESULTS.md). Every ``--every`` steps the
tokens of held-out clips are probed -- shape, colour, motion (linear probes) and *where* the object is
(ridge R^2) -- and the denoising loss with each clip's own tokens is compared with another clip's
tokens per noise level: the de-tokenizer uses the tokens where own < swapped. At the end a few test
clips are decoded (10 DDIM steps) and read by the attribute probe.

    python benchmarks/tokenizer_levers.py --lever control --steps 240 --threads 1
    python benchmarks/tokenizer_levers.py --lever shift3 --steps 240 --threads 1

Writes ``<out>/<lever>.json`` (rewritten after every measurement).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from divot_mini import diffusion
from divot_mini.data import MovingShapes, tokenizer_frames
from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer
from divot_mini.linear_probe import LinearProbes, position_targets, ridge_r2
from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
from divot_mini.tokenizer_evaluation import placement

# lever -> (tokenizer overrides, de-tokenizer overrides, training overrides)
LEVERS = {
    "control": ({}, {}, {}),
    "shift3": ({}, {"noise_shift": 3.0}, {}),
    "shift6": ({}, {"noise_shift": 6.0}, {}),
    "sincos": ({"pos_init": "sincos"}, {}, {}),
    "keypos": ({"resampler_key_pos": True}, {}, {}),
    "sincos_keypos": ({"pos_init": "sincos", "resampler_key_pos": True}, {}, {}),
    "shift3_sincos_keypos": ({"pos_init": "sincos", "resampler_key_pos": True}, {"noise_shift": 3.0}, {}),
    "shift6_sincos_keypos": ({"pos_init": "sincos", "resampler_key_pos": True}, {"noise_shift": 6.0}, {}),
    "shift10_sincos_keypos": ({"pos_init": "sincos", "resampler_key_pos": True}, {"noise_shift": 10.0}, {}),
    # the de-tokenizer alone, on oracle tokens (the clip's true attributes and position): how fast
    # can the UNet learn to draw *where* when the tokens carry it perfectly?
    "oracle": ({}, {}, {"oracle": True}),
    "oracle_shift3": ({}, {"noise_shift": 3.0}, {"oracle": True}),
    "oracle_shift3_qpos": ({}, {"noise_shift": 3.0, "unet": {"query_pos": True}}, {"oracle": True}),
    "shift3_sincos_keypos_qpos": ({"pos_init": "sincos", "resampler_key_pos": True},
                                  {"noise_shift": 3.0, "unet": {"query_pos": True}}, {}),
    # + the position code added once more to the resampler's input, so its values carry where too
    "shift3_sincos_keypos_qpos_vpos": ({"pos_init": "sincos", "resampler_key_pos": True},
                                       {"noise_shift": 3.0, "unet": {"query_pos": True}}, {"resampler_pos": 1.0}),
    "shift3_keypos": ({"resampler_key_pos": True}, {"noise_shift": 3.0}, {}),
    # each resampler query tied to one region of the clip (position.locality_bias)
    "local": ({"resampler_local": 0.5}, {}, {}),
    "shift3_local": ({"resampler_local": 0.5}, {"noise_shift": 3.0}, {}),
    "shift3_local_qpos": ({"pos_init": "sincos", "resampler_local": 0.5},
                          {"noise_shift": 3.0, "unet": {"query_pos": True}}, {}),
    # the temporal encoder's output starts random instead of at zero (TokenizerConfig.temporal_init)
    "rinit": ({"temporal_init": "random"}, {}, {}),
    "rinit_local": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5}, {}, {}),
    "shift3_local_qpos_rinit": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                                {"noise_shift": 3.0, "unet": {"query_pos": True}}, {}),
    # two timescales: the tokenizer learns slower (x0.1) or not at all (x0: random tokens, a
    # self-made oracle) while the de-tokenizer learns to read what the tokens already hold
    "shift3_local_qpos_rinit_toklr0.1": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                                         {"noise_shift": 3.0, "unet": {"query_pos": True}}, {"tok_lr": 0.1}),
    "shift3_local_qpos_rinit_toklr0": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                                       {"noise_shift": 3.0, "unet": {"query_pos": True}}, {"tok_lr": 0.0}),
    # a grid de-tokenizer: context j reads token j (DetokenizerConfig.context_local) and each pixel
    # prefers the context of its region (UNetConfig.context_grid), so which token says something
    # decides where the UNet draws it
    "grid_toklr0": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                    {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                    {"tok_lr": 0.0}),
    "grid": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
             {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}}, {}),
    "grid_toklr0.1": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                      {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                      {"tok_lr": 0.1}),
    "grid_toklr0.3": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                      {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                      {"tok_lr": 0.3}),
    # the grid de-tokenizer on perfect grid tokens (GridOracleTokens): its ceiling at this budget
    "grid_oracle": ({}, {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                    {"oracle": "grid"}),
    # a warm-up: the tokenizer stays as initialised for the first 160 steps while the grid
    # de-tokenizer learns to read it, then both train
    "grid_warm160": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                     {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                     {"tok_freeze": 160}),
    "grid_warm160_toklr0.3": ({"temporal_init": "random", "pos_init": "sincos", "resampler_local": 0.5},
                              {"noise_shift": 3.0, "context_local": 0.5, "unet": {"query_pos": True, "context_grid": 0.5}},
                              {"tok_freeze": 160, "tok_lr": 0.3}),
}
BINS = ((0, 300), (300, 700), (700, 900), (900, 1000))


@torch.no_grad()
def build_cache(path: Path, n_train: int, n_test: int, clip: str | None = None) -> dict:
    """Frozen features and latents of ``n_train`` training and ``n_test`` test clips (seed 0); the
    features of the shipped tiny CLIP, or of the ``CLIPModel`` state dict in the safetensors ``clip``."""
    from divot_mini.frozen_vit import load_frozen_vit
    from divot_mini.vae import load_tiny_vae

    vit = load_frozen_vit(verbose=False)
    if clip:
        from safetensors.torch import load_file
        state = load_file(clip)
        vit.vision.load_state_dict({k[len("vision_model."):]: v for k, v in state.items()
                                    if k.startswith("vision_model.")})
    det = DivotDetokenizer(DetokenizerConfig.mini(), vae=load_tiny_vae(verbose=False))
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        ds = MovingShapes(split, size=n, seed=0)
        feats, lat = [], []
        for i in range(0, n, 64):
            video = ds[list(range(i, min(n, i + 64)))]["video"]
            feats.append(vit(tokenizer_frames(video)))
            lat.append(det.encode(video))
        attrs = ds.attributes(list(range(n)))
        out[split] = {"feats": torch.cat(feats), "latents": torch.cat(lat),
                      "position": position_targets(attrs).float(),
                      **{k: attrs[k] for k in ("shape", "colour", "motion")}}
    out["zero_feats"] = vit(tokenizer_frames(torch.zeros(1, 16, 3, 32, 32)))
    torch.save(out, path)
    return out


class OracleTokens(torch.nn.Module):
    """Tokens [B, 16, 32] holding a clip's true attributes (one fixed random pattern per value) and
    its start and end position (patterns scaled by the coordinates). Nothing here is learned."""

    def __init__(self, num_tokens: int = 16, dim: int = 32):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        for k, n in {"shape": 3, "colour": 4, "motion": 4}.items():
            self.register_buffer(k, torch.randn(n, num_tokens, dim, generator=g))
        self.register_buffer("cont", torch.randn(4, num_tokens, dim, generator=g))

    def forward(self, part: dict, idx: torch.Tensor) -> torch.Tensor:
        pos = part["position"][idx] / 16 - 1  # pixels -> about [-1, 1]
        tok = self.shape[part["shape"][idx]] + self.colour[part["colour"][idx]] + self.motion[part["motion"][idx]]
        return (tok + torch.einsum("bk,knd->bnd", pos, self.cont)) / 7**0.5


class GridOracleTokens(torch.nn.Module):
    """Tokens [B, 16, 32] laid out as the grid de-tokenizer reads them: token r (region r of a 4 x 4
    grid over the frame) holds the shape and colour patterns plus, for each of the 5 tokenizer frames,
    a fixed frame pattern weighted by how close the object is to region r then -- where and when, by
    place, perfectly. The ceiling of a grid tokenizer at this de-tokenizer budget."""

    def __init__(self, num_tokens: int = 16, dim: int = 32, size: int = 32, width: float = 6.0):
        super().__init__()
        from divot_mini.data import sample_indices_5_of_16
        from divot_mini.position import grid_points

        g = torch.Generator().manual_seed(1234)
        for k, n in {"shape": 3, "colour": 4}.items():
            self.register_buffer(k, torch.randn(n, dim, generator=g))
        self.register_buffer("frame", torch.randn(5, dim, generator=g))
        side = round(num_tokens ** 0.5)
        self.register_buffer("centres", (grid_points(side, side) + 0.5) * size / side)  # (y, x) px
        self.register_buffer("when", torch.tensor(sample_indices_5_of_16(16), dtype=torch.float32) / 15)
        self.width = width

    def forward(self, part: dict, idx: torch.Tensor) -> torch.Tensor:
        pos = part["position"][idx]  # (x, y) at frames 0 and 15
        at = pos[:, None, :2] + (pos[:, None, 2:] - pos[:, None, :2]) * self.when[None, :, None]  # [B, 5, 2]
        d2 = ((at.flip(-1)[:, :, None] - self.centres[None, None]) ** 2).sum(-1)  # [B, 5, R]
        occ = torch.exp(-d2 / (2 * self.width**2))
        where = torch.einsum("bfr,fd->brd", occ, self.frame)
        what = self.shape[part["shape"][idx]] + self.colour[part["colour"][idx]]
        return (what[:, None] + 2 * where) / 3


def background(cache: dict) -> torch.Tensor:
    """The background latent [C] (the median over training latents): what no object looks like."""
    return cache["train"]["latents"][:512].flatten(2).median(2).values.median(0).values


@torch.no_grad()
def measure(tok, det, cache, n_fit: int = 1024) -> dict:
    tok.eval(), det.eval()
    tr, te = cache["train"], cache["test"]
    n_fit = min(n_fit, len(tr["feats"]))
    a = torch.cat([tok(tr, torch.arange(i, min(n_fit, i + 256))) for i in range(0, n_fit, 256)])
    b = torch.cat([tok(te, torch.arange(i, min(len(te["feats"]), i + 256))) for i in range(0, len(te["feats"]), 256)])
    labels = {k: tr[k][:n_fit] for k in ("shape", "colour", "motion")}
    acc = LinearProbes(a, labels).accuracy(b, {k: te[k] for k in labels})
    out = {f"tokens_{k}": v for k, v in acc.items()}
    out["tokens_position_r2"] = ridge_r2(a, tr["position"][:n_fit], b, te["position"]).mean().item()
    out["token_spread"] = (b.std(0).mean() / b.abs().mean().clamp_min(1e-8)).item()
    # own vs swapped tokens, per noise level, on 64 test clips with fixed noise
    g = torch.Generator().manual_seed(1)
    z0, tk = te["latents"][:64], b[:64]
    noise = torch.randn(z0.shape, generator=g)
    for lo, hi in BINS:
        t = torch.randint(lo, hi, (64,), generator=g)
        z_t, v = diffusion.v_target(det.scheduler, z0, noise, t)
        own = F.mse_loss(det(z_t, t, tk), v).item()
        swp = F.mse_loss(det(z_t, t, tk.roll(1, 0)), v).item()
        out[f"loss_own_t{lo}"], out[f"loss_swap_t{lo}"] = own, swp
    # where the de-tokenizer draws from the tokens alone (t = 999: pure noise in)
    t = torch.full((64,), diffusion.NUM_TRAIN_TIMESTEPS - 1)
    z_t, _ = diffusion.v_target(det.scheduler, z0, noise, t)
    x0 = diffusion.v_to_x0(det.scheduler, det(z_t, t, tk), z_t, t)
    out.update({f"t999_{k}": v for k, v in placement(x0, z0, background(cache)).items()})
    tok.train(), det.train()
    return {k: round(float(v), 4) for k, v in out.items()}


@torch.no_grad()
def decode_report(tok, det, cache, n: int = 64) -> dict:
    from divot_mini.probe import accuracy, load_probe
    from divot_mini.tokenizer_evaluation import psnr

    tok.eval(), det.eval()
    ds = MovingShapes("test", size=n, seed=0)
    batch = ds[list(range(n))]
    tokens = tok(cache["test"], torch.arange(n))
    probe = load_probe(verbose=False)
    out = {}
    for name, tk in (("recon", tokens), ("swap", tokens.roll(1, 0))):
        rec = det.sample(tk, None, frames=16, size=32, steps=10, guidance_scale=1.0, eta=0.0,
                         generator=torch.Generator().manual_seed(0), spacing="trailing")
        pred = probe.predict(rec)
        if name == "recon":
            out.update({f"recon_{k}": v for k, v in accuracy(pred, batch).items()})
            out["psnr"] = psnr(rec, batch["video"])
        else:
            donor = {k: batch[k].roll(1, 0) for k in ("shape", "colour", "motion")}
            out.update({f"swap_donor_{k}": (pred[k] == donor[k]).float().mean().item() for k in donor})
    return {k: round(float(v), 4) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lever", choices=list(LEVERS), required=True)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--high-noise-frac", type=float, default=0.3)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=4096)
    ap.add_argument("--out", default="build/levers")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--clip", default=None, help="CLIPModel safetensors for the frozen ViT (default: shipped)")
    ap.add_argument("--decode-only", action="store_true", help="re-measure a finished run's saved weights")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpath = out / f"cache_{args.n_train}{'_' + Path(args.clip).stem if args.clip else ''}.pt"
    cache = (torch.load(cpath, weights_only=True) if cpath.exists()
             else build_cache(cpath, args.n_train, 512, args.clip))
    tcfg, dcfg, train_cfg = LEVERS[args.lever]
    torch.manual_seed(0)
    tokenizer = DivotTokenizer(dataclasses.replace(TokenizerConfig.mini(), **tcfg))
    from divot_mini.vae import load_tiny_vae
    dcfg = dict(dcfg)
    base = DetokenizerConfig.mini()
    dcfg["unet"] = dataclasses.replace(base.unet, **dcfg.get("unet", {}))
    det = DivotDetokenizer(dataclasses.replace(base, **dcfg), vae=load_tiny_vae(verbose=False))
    oracle = ({"grid": GridOracleTokens}.get(train_cfg.get("oracle"), OracleTokens)()
              if train_cfg.get("oracle") else None)
    tokenizer.image_proj_model.resampler_pos_scale = train_cfg.get("resampler_pos", 0.0)

    class Tok(torch.nn.Module):  # tokens of clips idx of a cache part (features, or the oracle)
        def __init__(self):
            super().__init__()
            self.tokenizer = tokenizer

        def forward(self, part, idx, feats=None):
            if oracle is not None:
                return oracle(part, idx)
            return self.tokenizer(part["feats"][idx] if feats is None else feats)

    tok = Tok()
    det_params = list(det.image_proj_model.parameters()) + list(det.diffusion_model.parameters())
    tok_params = [] if oracle is not None else list(tokenizer.parameters())
    params = tok_params + det_params
    tok_lr = args.lr * train_cfg.get("tok_lr", 1.0)
    groups = [{"params": det_params, "lr": args.lr}] + ([{"params": tok_params, "lr": tok_lr}] if tok_params and tok_lr else [])
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=args.steps, pct_start=0.05)
    record = {"lever": args.lever, "tag": args.tag or args.lever, "tokenizer": tcfg,
              "detokenizer": {**dcfg, "unet": LEVERS[args.lever][1].get("unet", {})},
              "recipe": {"steps": args.steps, "batch": args.batch, "lr": args.lr,
                         "high_noise_frac": args.high_noise_frac, "n_train": args.n_train},
              "clip": args.clip, "threads": torch.get_num_threads(), "curve": []}
    path = out / f"{record['tag']}.json"
    if args.decode_only:
        saved = torch.load(out / f"{record['tag']}.pt", weights_only=True)
        tokenizer.load_state_dict(saved["tokenizer"])
        det.load_state_dict(saved["detokenizer"], strict=False)
        record = json.loads(path.read_text())
        record["final"] = {**decode_report(tok, det, cache),
                           **{k: v for k, v in measure(tok, det, cache).items() if k.startswith("t999_")}}
        print(json.dumps(record["final"]), flush=True)
        path.write_text(json.dumps(record, indent=1))
        return
    def save(where: Path) -> None:  # the trained parts (the frozen VAE is its own checkpoint)
        torch.save({"tokenizer": tokenizer.state_dict(), "detokenizer": {
            k: v for k, v in det.state_dict().items() if not k.startswith("first_stage_model.")}}, where)

    g = torch.Generator().manual_seed(0)
    tr = cache["train"]
    t0, eval_s = time.perf_counter(), 0.0
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            te = time.perf_counter()
            m = measure(tok, det, cache)
            eval_s += time.perf_counter() - te
            record["curve"].append({"step": step, "train_s": round(time.perf_counter() - t0 - eval_s, 1), **m})
            print(json.dumps(record["curve"][-1]), flush=True)
            path.write_text(json.dumps(record, indent=1))
            save(out / f"{record['tag']}.pt")
        if step == args.steps:
            break
        idx = torch.randint(0, len(tr["feats"]), (args.batch,), generator=g)
        feats, z0 = tr["feats"][idx], tr["latents"][idx]
        drop = torch.rand(args.batch, generator=g) < 0.1
        feats = torch.where(drop[:, None, None, None], cache["zero_feats"], feats)
        t = diffusion.sample_timesteps(args.batch, args.high_noise_frac, g)
        noise = torch.randn(z0.shape, generator=g)
        z_t, v = diffusion.v_target(det.scheduler, z0, noise, t)
        tokens = tok(tr, idx, feats)
        if oracle is not None:
            tokens = torch.where(drop[:, None, None], torch.zeros_like(tokens), tokens)
        loss = F.mse_loss(det(z_t, t, tokens), v)
        opt.zero_grad()
        loss.backward()
        if step < train_cfg.get("tok_freeze", 0):
            for p in tok_params:  # AdamW skips parameters without a gradient
                p.grad = None
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
    record["train_s"] = round(time.perf_counter() - t0 - eval_s, 1)
    record["final"] = decode_report(tok, det, cache)
    print(json.dumps(record["final"]), flush=True)
    path.write_text(json.dumps(record, indent=1))
    save(out / f"{record['tag']}.pt")


if __name__ == "__main__":
    main()
