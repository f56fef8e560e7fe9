"""Scheduler settings equal the official ones; v <-> eps/x0; CFG + rescale; DDIM on a toy."""
import pytest
import torch

from divot_mini import diffusion as D


@pytest.fixture
def sched():
    return D.make_scheduler()


def test_official_timesteps_and_alphas(sched):
    sched.set_timesteps(50)
    assert sched.timesteps.tolist() == list(range(981, 0, -20))
    ac = sched.alphas_cumprod
    assert ac[-1].item() == pytest.approx(0.0, abs=1e-12)  # zero terminal SNR
    assert sched.final_alpha_cumprod.item() == pytest.approx(ac[0].item())  # alpha_prev of the last step
    # sqrt(beta) linear from sqrt(0.00085) before the zero-SNR rescale: first beta unchanged to 1e-4 rel.
    assert ac[0].item() == pytest.approx(1 - 0.00085, rel=1e-3)
    assert sched.config.prediction_type == "v_prediction"


def test_v_conversions(sched):
    torch.manual_seed(0)
    x0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([0, 500, 999])
    x_t, v = D.v_target(sched, x0, noise, t)
    assert torch.allclose(v, sched.get_velocity(x0, noise, t), atol=1e-6)
    assert torch.allclose(D.v_to_x0(sched, v, x_t, t), x0, atol=1e-5)
    assert torch.allclose(D.v_to_eps(sched, v, x_t, t), noise, atol=1e-5)
    # at t = 999 the noised sample is pure noise and v = -x0
    assert torch.allclose(x_t[2], noise[2], atol=1e-6) and torch.allclose(v[2], -x0[2], atol=1e-6)


def test_guidance_and_rescale():
    torch.manual_seed(0)
    vc, vu = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert torch.allclose(D.guided(vc, vu, 1.0, 0.0), vc)
    plain = vu + 7.5 * (vc - vu)
    assert torch.allclose(D.guided(vc, vu, 7.5, 0.0), plain)
    full = D.guided(vc, vu, 7.5, 1.0)
    assert torch.allclose(full.std(dim=(1, 2)), vc.std(dim=(1, 2)), atol=1e-5)
    assert torch.allclose(D.guided(vc, vu, 7.5, 0.7), 0.7 * full + 0.3 * plain, atol=1e-5)


def test_ddim_with_an_oracle_recovers_the_target(sched):
    target = torch.linspace(-1, 1, 16).view(1, 1, 16)

    def oracle(x_t, t, context):  # the v that points exactly at `target`
        a = sched.alphas_cumprod[t.long()].view(-1, 1, 1)
        eps = (x_t - a.sqrt() * target) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * target

    traj = []
    out = D.ddim_sample(oracle, torch.zeros(1, 1, 1), None, (1, 1, 16), steps=10, eta=0.0,
                        generator=torch.Generator().manual_seed(0), trajectory=traj, scheduler=sched)
    assert len(traj) == 10
    assert torch.allclose(traj[-1], target, atol=1e-4)  # the last predicted x0 is exact
    # the sample itself keeps sqrt(1 - abar_0) ~ 0.03 of noise (the schedule never reaches abar = 1)
    assert (out - target).abs().max() < 0.15
    with pytest.raises(ValueError, match="steps"):
        D.ddim_sample(oracle, torch.zeros(1, 1, 1), None, (1, 1, 16), steps=0)


def test_cfg_runs_both_contexts_in_one_batch(sched):
    seen = []

    def model(x, t, ctx):
        seen.append(ctx[:, 0, 0].tolist())
        return torch.zeros_like(x)

    D.ddim_sample(model, torch.ones(1, 1, 1), torch.zeros(1, 1, 1), (1, 1, 4), steps=2,
                  generator=torch.Generator().manual_seed(0), scheduler=sched)
    assert seen == [[1.0, 0.0], [1.0, 0.0]]


def test_trailing_spacing_starts_at_pure_noise():
    official, trailing = D.make_scheduler(), D.make_scheduler("trailing")
    official.set_timesteps(1)
    trailing.set_timesteps(1)
    assert official.timesteps.tolist() == [1]  # why the course decodes few-step with "trailing"
    assert trailing.timesteps.tolist() == [999]
    trailing.set_timesteps(4)
    assert trailing.timesteps.tolist()[0] == 999
    with pytest.raises(ValueError, match="spacing"):
        D.make_scheduler("leading")


def test_noise_shift_moves_log_snr_by_2_ln_s_and_keeps_zero_terminal_snr():
    import math

    official, shifted = D.make_scheduler(), D.make_scheduler(shift=3.0)
    a, b = official.alphas_cumprod.double()[:-1], shifted.alphas_cumprod.double()[:-1]
    diff = (a / (1 - a)).log() - (b / (1 - b)).log()
    torch.testing.assert_close(diff, torch.full_like(diff, 2 * math.log(3)), atol=1e-3, rtol=0)
    assert shifted.alphas_cumprod[-1].item() == 0.0  # still zero terminal SNR
    assert (shifted.alphas_cumprod[1:] <= shifted.alphas_cumprod[:-1]).all()  # still a noising schedule
    # the trailing spacing and v-prediction carry over; shift 1 is the official scheduler itself
    trailing = D.make_scheduler("trailing", shift=3.0)
    trailing.set_timesteps(4)
    assert trailing.timesteps.tolist()[0] == 999 and trailing.config.prediction_type == "v_prediction"
    torch.testing.assert_close(D.make_scheduler(shift=1.0).alphas_cumprod, official.alphas_cumprod)
    with pytest.raises(ValueError, match="noise shift"):
        D.make_scheduler(shift=0.0)


def test_detokenizer_samples_and_trains_with_its_own_shifted_schedule():
    import dataclasses

    from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer

    assert DetokenizerConfig.full().noise_shift == 1.0  # official
    assert "noise_shift" not in DetokenizerConfig.mini().to_dict()  # earlier weights' configs still match
    cfg = dataclasses.replace(DetokenizerConfig.mini(), noise_shift=3.0)
    assert cfg.to_dict()["noise_shift"] == 3.0
    det = DivotDetokenizer(cfg)
    torch.testing.assert_close(det.scheduler.alphas_cumprod, D.make_scheduler(shift=3.0).alphas_cumprod)


def test_training_timesteps_cover_0_999_with_the_asked_share_of_high_noise():
    g = torch.Generator().manual_seed(0)
    uniform = D.sample_timesteps(20_000, 0.0, g)
    biased = D.sample_timesteps(20_000, 0.3, g)
    assert uniform.min() >= 0 and uniform.max() <= 999 and biased.max() <= 999
    assert abs((uniform >= 900).float().mean().item() - 0.10) < 0.01
    assert abs((biased >= 900).float().mean().item() - (0.3 + 0.7 * 0.10)) < 0.015
