"""Joint training: the denoising loss falls, checkpoints resume, DDP runs with 2 CPU processes."""
import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import CLIPModel, CLIPVisionModel

from divot_mini.data import MovingShapes
from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer
from divot_mini.frozen_vit import FrozenViT, tiny_clip_config
from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
from divot_mini.tokenizer_training import DivotTokenizerTraining

ROOT = Path(__file__).resolve().parent.parent


def _module():
    torch.manual_seed(0)
    vit = FrozenViT(CLIPVisionModel(CLIPModel(tiny_clip_config()).config.vision_config))
    tok = DivotTokenizer(TokenizerConfig.mini(vit_dim=vit.width, patch_grid=vit.grid))
    return DivotTokenizerTraining(vit, tok, DivotDetokenizer(DetokenizerConfig.mini()), cond_drop=0.0)


def test_loss_falls_on_a_fixed_batch():
    m = _module()
    video = MovingShapes("train")[list(range(4))]["video"]
    opt = torch.optim.AdamW(list(m.tokenizer.parameters()) + list(m.detokenizer.parameters()), 2e-3)

    def loss(seed):
        torch.manual_seed(seed)
        return m.denoising_loss(video)

    with torch.no_grad():
        before = sum(loss(s).item() for s in range(3))
    for step in range(15):
        opt.zero_grad()
        loss(100 + step).backward()
        opt.step()
    with torch.no_grad():
        after = sum(loss(s).item() for s in range(3))
    assert after < 0.8 * before, (before, after)
    assert all(p.grad is None for p in m.vit.parameters())  # the ViT stays frozen


def test_reconstruct_and_uncond_tokens_shapes():
    m = _module().eval()
    video = MovingShapes("val")[[0, 1]]["video"]
    assert m.uncond_tokens().shape == (1, 16, 32)
    rec = m.reconstruct(video, steps=1, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    assert rec.shape == video.shape


def _run(tmp_path, *args):
    cmd = [sys.executable, str(ROOT / "scripts" / "train_tokenizer.py"), "--random-vit",
           "--batch-size", "2", "--out", str(tmp_path), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "result.json").read_text())


def test_ddp_two_cpu_processes(tmp_path):
    result = _run(tmp_path, "--steps", "2", "--devices", "2", "--strategy", "ddp")
    assert result["world_size"] == 2 and result["steps"] == 2


def test_interrupted_run_resumes(tmp_path):
    first = _run(tmp_path, "--steps", "4", "--stop-after", "2")
    assert first["steps"] == 2 and (tmp_path / "last.ckpt").exists()
    second = _run(tmp_path, "--steps", "4", "--resume", str(tmp_path / "last.ckpt"))
    assert second["steps"] == 4


def test_latent_pool_gives_the_latents_the_vae_would_and_an_interrupted_run_resumes(tmp_path):
    """The latent pool: clips' latents computed once equal what the frozen VAE gives at each step
    (posterior mean); a run with a resume folder leaves a checkpoint, a second call of the same
    recipe continues from it (here: nothing left to do, so the weights are unchanged), and a run of
    another recipe refuses the folder instead of overwriting it."""
    import pytest

    from divot_mini import fit
    from divot_mini.data import MovingShapes
    from divot_mini.tokenizer_training import DivotPair, fit_pair

    torch.manual_seed(0)
    pair = DivotPair()
    module = fit_pair(pair, steps=3, batch_size=2, progress=False, latent_pool=6,
                      resume_dir=tmp_path / "run")
    assert (tmp_path / "run" / "last.ckpt").exists()
    video = MovingShapes("train", size=6, seed=0)[[1, 4]]["video"]
    torch.testing.assert_close(module.pool_latents[[1, 4]], module.detokenizer.encode(video))
    before = {k: v.clone() for k, v in pair.state_dict().items()}
    fit_pair(pair, steps=3, batch_size=2, progress=False, latent_pool=6, resume_dir=tmp_path / "run")
    assert all(torch.equal(before[k], v) for k, v in pair.state_dict().items())
    with pytest.raises(ValueError, match="another recipe"):
        fit.prepare_resume(tmp_path / "run", {"steps": 5})


def test_tokenizer_lr_scale_zero_keeps_the_tokenizer_and_trains_the_detokenizer():
    m = _module()
    m.tokenizer_lr_scale, m.total_steps = 0.0, 10
    opt = m.configure_optimizers()["optimizer"]
    tok0 = [p.detach().clone() for p in m.tokenizer.parameters()]
    det0 = [p.detach().clone() for p in m.detokenizer.diffusion_model.parameters()]
    torch.manual_seed(0)
    m.denoising_loss(MovingShapes("train")[[0, 1]]["video"]).backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(tok0, m.tokenizer.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(det0, m.detokenizer.diffusion_model.parameters()))
    try:
        DivotTokenizerTraining(m.vit, m.tokenizer, m.detokenizer, tokenizer_lr_scale=-1.0)
    except ValueError as e:
        assert "tokenizer_lr_scale" in str(e)
    else:
        raise AssertionError("a negative tokenizer_lr_scale was accepted")
