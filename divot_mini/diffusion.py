r"""Diffusion machinery of the de-tokenizer, from diffusers, set up exactly as the official Divot.

* **Noise schedule**: $\sqrt{\beta_t}$ linear from $\sqrt{0.00085}$ to $\sqrt{0.012}$ over 1000 steps
  ("scaled_linear"), then rescaled so the last step has zero signal-to-noise ratio
  ($\bar\alpha_{999} = 0$): at the highest noise level the model sees *nothing* of the clip and must
  produce it from the tokens alone.
* **v-prediction**: the UNet predicts $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$;
  then $x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,v$ and
  $\epsilon = \sqrt{\bar\alpha_t}\,v + \sqrt{1-\bar\alpha_t}\,x_t$ (well defined even where
  $\bar\alpha_t = 0$, unlike $\epsilon$-prediction).
* **DDIM**: 50 steps t = 981, 961, ..., 1, eta 1.0.
* **Classifier-free guidance** 7.5 on v, then *guidance rescale* 0.7: the guided v is rescaled to the
  standard deviation of the conditional v and mixed 70/30 with the unrescaled one, which keeps
  high guidance from over-saturating the output.

(The official DDIM also rounds its DDIM $\bar\alpha$ tables through float16; diffusers does not. The
difference is below 1e-3 in $\bar\alpha$; the full-size check in notebook 07 documents it.)
"""
from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDIMScheduler

NUM_TRAIN_TIMESTEPS = 1000
GUIDANCE_SCALE = 7.5
GUIDANCE_RESCALE = 0.7
DDIM_STEPS = 50
DDIM_ETA = 1.0


def shifted_alphas_cumprod(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    r"""Move a schedule toward high noise: $\log\mathrm{SNR}'(t) = \log\mathrm{SNR}(t) - 2\ln s$,
    i.e. $\bar\alpha' = \mathrm{sigmoid}(\mathrm{logit}(\bar\alpha) - 2\ln s)$ (Chen 2023, "On the
    importance of noise scheduling"; the same as scaling the clean latents by $1/s$). Zero terminal SNR
    stays zero ($\bar\alpha = 0 \mapsto 0$) and $s = 1$ is the identity."""
    if not shift > 0:
        raise ValueError(f"noise shift must be > 0, got {shift}")
    a = alphas_cumprod.double()
    snr = a / (1 - a).clamp_min(1e-300)
    return (snr / shift**2 / (1 + snr / shift**2)).float()


def make_scheduler(spacing: str = "official", shift: float = 1.0) -> DDIMScheduler:
    """The official schedule as a diffusers scheduler.

    ``spacing="official"`` gives exactly the official timesteps (50 steps: 981, 961, ..., 1). With
    few steps that spacing starts far below t = 999 (1 step: t = 1!), i.e. it treats pure noise as
    a half-clean sample; ``spacing="trailing"`` always starts at t = 999, the fix recommended with
    zero-terminal-SNR schedules (Lin et al., 2024). The course uses it for few-step decoding.

    ``shift`` > 1 moves the whole schedule -- training and sampling alike -- toward high noise
    (:func:`shifted_alphas_cumprod`; 1 = official). An option of the mini configuration: on its small
    latents the noisy input itself shows where the object is at most noise levels, so the tokens are
    rarely needed for it (``tokenizer_evaluation.noisy_input_placement`` measures this).
    """
    if spacing not in ("official", "trailing"):
        raise ValueError(f"spacing must be 'official' or 'trailing', got {spacing!r}")
    kw = dict(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="v_prediction",
              timestep_spacing="leading" if spacing == "official" else "trailing",
              steps_offset=1 if spacing == "official" else 0, set_alpha_to_one=False, clip_sample=False)
    official = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                             rescale_betas_zero_snr=True, **kw)
    if shift == 1.0:
        return official
    a = shifted_alphas_cumprod(official.alphas_cumprod, shift)
    betas = 1 - a / torch.cat([torch.ones(1), a[:-1]])
    return DDIMScheduler(trained_betas=betas.numpy(), **kw)


def sample_timesteps(n: int, high_noise_frac: float = 0.0, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    """Training timesteps [n]: uniform over 0..999, a ``high_noise_frac`` share of them drawn from
    900..999 instead (the noise levels where only the tokens can tell the UNet about the clip)."""
    t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (n,), generator=generator, device=device)
    if high_noise_frac > 0:
        high = torch.rand(n, generator=generator, device=device) < high_noise_frac
        t = torch.where(high, torch.randint(900, NUM_TRAIN_TIMESTEPS, (n,), generator=generator,
                                            device=device), t)
    return t


def _abar(scheduler: DDIMScheduler, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    a = scheduler.alphas_cumprod.to(like.device)[t.long()].to(like.dtype)
    return a.view(-1, *([1] * (like.ndim - 1)))


def v_target(scheduler: DDIMScheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
    """(x_t, v): the noised sample and the v the UNet must predict, for training."""
    a = _abar(scheduler, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise, a.sqrt() * noise - (1 - a).sqrt() * x0


def v_to_x0(scheduler, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a = _abar(scheduler, t, x_t)
    return a.sqrt() * x_t - (1 - a).sqrt() * v


def v_to_eps(scheduler, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a = _abar(scheduler, t, x_t)
    return a.sqrt() * v + (1 - a).sqrt() * x_t


def guided(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float = GUIDANCE_SCALE,
           rescale: float = GUIDANCE_RESCALE) -> torch.Tensor:
    """Classifier-free guidance with guidance rescale (std over all non-batch dims)."""
    v = v_uncond + scale * (v_cond - v_uncond)
    if rescale > 0:
        dims = tuple(range(1, v.ndim))
        # (the clamp only matters for an all-constant v, e.g. a zero-initialised UNet: 0, not NaN)
        v_rescaled = v * (v_cond.std(dim=dims, keepdim=True) / v.std(dim=dims, keepdim=True).clamp_min(1e-12))
        v = rescale * v_rescaled + (1 - rescale) * v
    return v


@torch.no_grad()
def ddim_sample(model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                context: torch.Tensor, uncond_context: torch.Tensor | None, shape: tuple[int, ...],
                steps: int = DDIM_STEPS, guidance_scale: float = GUIDANCE_SCALE,
                guidance_rescale: float = GUIDANCE_RESCALE, eta: float = DDIM_ETA,
                generator: torch.Generator | None = None, trajectory: list | None = None,
                scheduler: DDIMScheduler | None = None) -> torch.Tensor:
    """Denoise pure noise of ``shape`` into a sample with DDIM.

    ``model(x_t, t, context) -> v``. With ``uncond_context`` and ``guidance_scale != 1`` both
    contexts run in one batch and are combined by :func:`guided`. ``trajectory`` (a list) collects
    the predicted x0 after every step, for the denoising viewer.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sched = scheduler or make_scheduler()
    sched.set_timesteps(steps)
    device = context.device
    x = torch.randn(shape, generator=generator, dtype=context.dtype).to(device)
    use_cfg = uncond_context is not None and guidance_scale != 1.0
    for t in sched.timesteps:
        tt = torch.full((shape[0],), int(t), device=device)
        if use_cfg:
            v_c, v_u = model(torch.cat([x, x]), torch.cat([tt, tt]),
                             torch.cat([context, uncond_context.expand_as(context)])).chunk(2)
            v = guided(v_c, v_u, guidance_scale, guidance_rescale)
        else:
            v = model(x, tt, context)
        out = sched.step(v, int(t), x, eta=eta, generator=generator)
        x = out.prev_sample
        if trajectory is not None:
            trajectory.append(out.pred_original_sample.detach().cpu())
    return x
