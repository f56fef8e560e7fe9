"""The VAE behind the de-tokenizer: configs, the shipped tiny VAE, pre-training that learns."""
import torch
from diffusers import AutoencoderKL

from divot_mini import vae as V
from divot_mini.data import MovingShapes


def test_sd_config_is_kl_f8_with_4_latent_channels():
    with torch.device("meta"):
        sd = AutoencoderKL(**V.sd_vae_config())
    assert sum(p.numel() for p in sd.parameters()) == 83_653_863  # official first_stage_model size
    assert sd.config.latent_channels == 4 and len(sd.config.block_out_channels) == 4  # 3 downsamplings: /8


def test_shipped_tiny_vae_reconstructs_and_has_the_recorded_scale():
    vae = V.load_tiny_vae(verbose=False)
    assert not any(p.requires_grad for p in vae.parameters())
    m = V.evaluate_vae(vae, n=8)
    assert m["psnr"] > 28, m
    # the de-tokenizer's scale constant is 1 / latent std, measured when the VAE was trained
    assert abs(1 / m["latent_std"] - V.TINY_VAE_SCALE) < 0.25, m


def test_pretraining_step_reduces_reconstruction_loss():
    torch.manual_seed(0)
    vae = AutoencoderKL(**{**V.tiny_vae_config(), "block_out_channels": (16, 16, 16)})
    task = V.VAEPretraining(vae, lr=3e-3, total_steps=30, frames_per_clip=2)
    batch = MovingShapes("train")[list(range(8))]
    opt = torch.optim.Adam(vae.parameters(), 3e-3)  # (the one-cycle schedule starts at lr / 25)

    def loss():
        torch.manual_seed(1)
        return task.loss(batch)[0]

    with torch.no_grad():
        before = loss().item()
    for _ in range(15):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        assert loss().item() < 0.7 * before
