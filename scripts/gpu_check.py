#!/usr/bin/env python3
"""Build the FULL Divot system with random weights on one CUDA GPU and time its three paths.

    python scripts/gpu_check.py                    # full size, needs CUDA (~23 GB of weights)
    python scripts/gpu_check.py --reduced --device cpu --steps 3   # the same script, tiny, on a CPU

No checkpoint is needed: every parameter is drawn at random (normal, std 1/sqrt(fan-in); norms 1,
biases 0) directly on the device in its final dtype, so nothing is built twice. Timed, each after
one untimed warm-up call (CUDA kernels, cuDNN autotuning):

1. one tokenizer call: 5 frames of 224x224 -> frozen ViT-H/14 -> tokenizer -> 64 x 256 tokens
   (float16, as the official comprehension/generation scripts run it);
2. one de-tokenizer decode: 50 DDIM steps with classifier-free guidance (the unconditional context
   is the tokenizer's answer to an all-zeros video), 16 frames at 256 px, VAE decode (float32, as
   official);
3. Divot-LLM (Mistral-7B, float16): one comprehension forward reading one clip (64 frame tokens),
   and the generation forward: prompt + <frame> + 64 query tokens, GMM sample at the queries.

Prints wall time and peak GPU memory (torch.cuda.max_memory_allocated) of each step.
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn

from divot_mini import official as O


def randomize_(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Give every (meta) parameter random values on ``device`` in ``dtype``; move the buffers."""
    g = torch.Generator(device=device).manual_seed(0)
    for mod_name, mod in module.named_modules():
        for name, p in list(mod._parameters.items()):
            if p is None:
                continue
            t = torch.empty(p.shape, device=device, dtype=dtype if p.is_floating_point() else p.dtype)
            if t.ndim >= 2:
                t.normal_(0.0, 1.0 / math.sqrt(math.prod(t.shape[1:])), generator=g)
            elif t.ndim == 1 and name == "weight":
                t.fill_(1.0)
            else:
                t.zero_()
            mod._parameters[name] = nn.Parameter(t, requires_grad=False)
    return module.to(device).eval()


def build(fn, device, dtype):
    with O.empty_parameters():  # parameters on meta, buffers real
        module = fn()
    return randomize_(module, device, dtype)


def system(reduced: bool):
    """(builders, sizes): the full official configuration or the reduced test one."""
    from transformers import CLIPVisionModel

    from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer
    from divot_mini.divot_llm import DivotLLM, mistral_7b_config
    from divot_mini.frozen_vit import FrozenViT, vit_h14_config
    from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
    from divot_mini.vae import VAE_CONFIGS
    from diffusers import AutoencoderKL
    if reduced:
        from divot_mini import official_synthetic as S
        c = S.reduced_configs()
        vit_cfg, tok_cfg, det_cfg, vae_cfg = c.vit, c.tokenizer, c.detokenizer, c.vae
        llm_cfg = S.reduced_llm_config(64)
        n, d, k = c.num_tokens, c.token_dim, c.num_gmm_kernel
        ids = dict(frame_token_ids=list(range(40, 40 + n)), boi_token_id=36, eoi_token_id=37, vid=34)
        size, vocab_text = 16, 30
    else:
        vit_cfg, tok_cfg, det_cfg = vit_h14_config(), TokenizerConfig.full(), DetokenizerConfig.full()
        vae_cfg, llm_cfg = VAE_CONFIGS["sd_kl_f8"], mistral_7b_config()
        n, d, k = 64, 256, 16
        # DivotLLM.full()'s assumed order of the 262 added tokens: <img> </img> <vid> </vid> <frame> ...
        ids = dict(frame_token_ids=list(range(32006, 32006 + n)), boi_token_id=32004, eoi_token_id=32005,
                   vid=32002)
        size, vocab_text = 256, 32000
    return {
        "vit": lambda: FrozenViT(CLIPVisionModel(vit_cfg)),
        "tokenizer": lambda: DivotTokenizer(tok_cfg),
        "detokenizer": lambda: DivotDetokenizer(det_cfg, vae=AutoencoderKL(**vae_cfg)),
        "agent": lambda: DivotLLM(llm_cfg, d, n, ids["frame_token_ids"], ids["boi_token_id"],
                                  ids["eoi_token_id"], head="gmm", num_gmm_kernel=k),
    }, dict(frame=vit_cfg.image_size, size=size, n=n, vid=ids["vid"], vocab_text=vocab_text,
            boi=ids["boi_token_id"], frame_ids=ids["frame_token_ids"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reduced", action="store_true", help="the tiny test configuration (for a CPU)")
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps (official 50)")
    ap.add_argument("--llm-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--tokenizer-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (PyTorch default: off)")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit(f"gpu_check.py needs a CUDA GPU, and torch {torch.__version__} sees none "
                 "(torch.cuda.is_available() is False). The full system has ~9.8 B parameters "
                 "(~23 GB in the dtypes used here); on a CPU run the reduced configuration instead: "
                 "python scripts/gpu_check.py --reduced --device cpu --steps 3")
    if not cuda and not args.reduced:
        sys.exit("the full-size check runs on CUDA only; use --reduced for --device cpu")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
              f"TF32 matmul {'on' if args.tf32 else 'off'}")
    tok_dtype, llm_dtype = getattr(torch, args.tokenizer_dtype), getattr(torch, args.llm_dtype)
    builders, sz = system(args.reduced)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def timed(name, fn, warmup=False):
        if warmup:
            fn()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        t = time.perf_counter()
        out = fn()
        sync()
        dt = time.perf_counter() - t
        mem = (f"peak {torch.cuda.max_memory_allocated(device) / 2**30:7.2f} GiB, "
               f"held {torch.cuda.memory_allocated(device) / 2**30:6.2f} GiB") if cuda else ""
        print(f"{name:<58} {dt:8.2f} s   {mem}", flush=True)
        return out

    print(f"{'step':<58} {'time':>10}   GPU memory")
    vit = timed(f"build ViT ({args.tokenizer_dtype})", lambda: build(builders["vit"], device, tok_dtype))
    tok = timed(f"build tokenizer ({args.tokenizer_dtype})", lambda: build(builders["tokenizer"], device, tok_dtype))
    det = timed("build de-tokenizer: UNet + VAE + resampler (float32)",
                lambda: build(builders["detokenizer"], device, torch.float32))
    for name, m in (("ViT", vit), ("tokenizer", tok), ("de-tokenizer", det)):
        print(f"  {name}: {sum(p.numel() for p in m.parameters()):,} parameters")

    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(1, 5, 3, sz["frame"], sz["frame"], generator=g) * 2 - 1).to(device, tok_dtype)
    with torch.no_grad():
        tokens = timed(f"1. tokenizer call: 5 frames {sz['frame']}^2 -> ViT -> {sz['n']} tokens",
                       lambda: tok(vit(frames)), warmup=True)
        uncond = tok(vit(torch.zeros_like(frames)))

        def decode(steps):
            return det.sample(tokens.float(), uncond.float(), frames=16, size=sz["size"], steps=steps,
                              generator=torch.Generator().manual_seed(0))

        decode(2)  # warm-up: the same kernels as 50 steps
        clip = timed(f"2. de-tokenizer: {args.steps} DDIM steps + CFG, 16 x {sz['size']}^2, VAE decode",
                     lambda: decode(args.steps))
    print(f"   tokens {tuple(tokens.shape)} finite={bool(torch.isfinite(tokens).all())}; "
          f"clip {tuple(clip.shape)} finite={bool(torch.isfinite(clip).all())}")

    if not args.skip_llm:
        del det, clip
        if cuda:
            torch.cuda.empty_cache()
        agent = timed(f"build Divot-LLM: LLM + heads ({args.llm_dtype})",
                      lambda: build(builders["agent"], device, llm_dtype))
        print(f"  Divot-LLM: {sum(p.numel() for p in agent.parameters()):,} parameters")
        prompt = torch.randint(3, sz["vocab_text"], (1, 40), generator=g)
        gen_prompt = torch.cat([prompt, torch.tensor([[sz["vid"]]])], 1).to(device)
        clip_ids = torch.tensor([[sz["boi"], *sz["frame_ids"], sz["boi"] + 1]])
        read_ids = torch.cat([prompt[:, :4], clip_ids, prompt[:, 4:]], 1).to(device)
        with torch.no_grad():
            out = timed(f"3a. LLM comprehension forward: {read_ids.shape[1]} positions, 1 clip read",
                        lambda: agent(read_ids, video_tokens=tokens.to(llm_dtype)), warmup=True)
            cg = torch.Generator(device=device).manual_seed(0)
            gen = timed(f"3b. LLM generation forward: prompt + <frame> + {sz['n']} queries, GMM",
                        lambda: agent.generate_video_tokens(gen_prompt, generator=cg), warmup=True)
        print(f"   logits {tuple(out.logits.shape)} finite={bool(torch.isfinite(out.logits).all())}; "
              f"generated tokens {tuple(gen.shape)} finite={bool(torch.isfinite(gen).all())}")
    if cuda:
        print(f"max reserved by the caching allocator: {torch.cuda.max_memory_reserved(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
