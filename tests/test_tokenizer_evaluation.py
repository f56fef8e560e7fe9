"""The evidence functions of the tokenizer stage: PSNR, the report's controls, seeded decoding."""
import math

import torch

from divot_mini import tokenizer_evaluation as ev
from divot_mini.probe import AttributeProbe


def test_psnr_known_value():
    a = torch.zeros(2, 16, 3, 8, 8)
    assert math.isclose(ev.psnr(a, a + 0.1), 10 * math.log10(4 / 0.01), rel_tol=1e-5)


class _Oracle(AttributeProbe):
    """A 'probe' that reads the attributes a fake decoder wrote into the first pixels."""

    def predict(self, video):
        return {k: video[:, 0, 0, 0, i].round().long() for i, k in enumerate(("shape", "colour", "motion"))}


class _FakeDetokenizer:
    def sample(self, tokens, unc, frames, size, steps, guidance_scale, generator, spacing, eta):
        out = torch.zeros(len(tokens), frames, 3, size, size)
        out[:, 0, 0, 0, :3] = tokens[:, 0, :3]  # decodes exactly what the tokens say
        return out


class _FakeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.detokenizer = _FakeDetokenizer()

    def tokens(self, video):  # a perfect tokenizer: the labels hidden in pixel (0, 0) of frame 1
        return torch.cat([video[:, 1, 0, 0, :3], torch.zeros(len(video), 29)], 1)[:, None].repeat(1, 16, 1)

    def uncond_tokens(self, like):
        return torch.full_like(like, 9.0)


def test_reconstruction_report_controls(monkeypatch):
    n = 12
    g = torch.Generator().manual_seed(0)
    labels = {"shape": torch.randint(0, 3, (n,), generator=g), "colour": torch.randint(0, 4, (n,), generator=g),
              "motion": torch.randint(0, 4, (n,), generator=g)}
    video = torch.zeros(n, 16, 3, 32, 32)
    for i, k in enumerate(labels):
        video[:, 1, 0, 0, i] = labels[k].float()
    monkeypatch.setattr(ev, "clips", lambda split, n, seed=0: {"video": video, **labels})
    r = ev.reconstruction_report(_FakeModel(), _Oracle(), n=n, steps=1)
    for k in labels:
        assert r[f"recon_{k}"] == 1.0
        assert r[f"swap_matches_donor_{k}"] == 1.0   # the decoder follows the tokens it is given
        assert r[f"uncond_matches_{k}"] == 0.0       # "9" is nobody's label


def test_tokenizer_stages_end_in_the_tokens():
    """The stage-by-stage walk must be the tokenizer's own forward: its last stage equals the tokens."""
    from transformers import CLIPModel, CLIPVisionModel

    from divot_mini.data import MovingShapes
    from divot_mini.detokenizer import DetokenizerConfig, DivotDetokenizer
    from divot_mini.frozen_vit import FrozenViT, tiny_clip_config
    from divot_mini.tokenizer import DivotTokenizer, TokenizerConfig
    from divot_mini.tokenizer_training import DivotTokenizerTraining

    torch.manual_seed(0)
    vit = FrozenViT(CLIPVisionModel(CLIPModel(tiny_clip_config()).config.vision_config))
    tok = DivotTokenizer(TokenizerConfig.mini(vit_dim=vit.width, patch_grid=vit.grid))
    for p in tok.temporal_encoder.output_proj.parameters():  # leave the zero init: stages differ per clip
        torch.nn.init.normal_(p, std=0.1)
    model = DivotTokenizerTraining(vit, tok, DivotDetokenizer(DetokenizerConfig.mini())).eval()
    video = MovingShapes("train")[list(range(5))]["video"]
    stages = ev.tokenizer_stages(model, video, batch_size=2)
    assert list(stages) == list(ev.TOKENIZER_STAGES)
    with torch.no_grad():
        want = model.tokens(video)
    torch.testing.assert_close(stages["tokens"], want.flatten(1))
    assert stages["vit"].shape == (5, 5 * vit.grid**2 * vit.width)
    assert stages["pooled"].shape == stages["spatial_temporal"].shape == (5, 5 * 16 * 64)


def test_placement_reads_where_a_latent_blob_is_and_which_way_it_moves():
    from divot_mini.tokenizer_evaluation import latent_centroids, placement

    bg = torch.tensor([0.5, -0.2, 0.1, 0.0])
    z = bg.view(1, 4, 1, 1, 1).repeat(2, 1, 3, 8, 8)
    for f, x in enumerate((1, 3, 5)):  # clip 0 moves right along row 2; clip 1 down column 6
        z[0, :, f, 2, x] += 2.0
        z[1, :, f, x, 6] += 2.0
    c = latent_centroids(z, bg)
    torch.testing.assert_close(c[0, :, 0], torch.tensor([6.0, 14.0, 22.0]))  # cell centres x 4 px
    torch.testing.assert_close(c[1, :, 1], torch.tensor([6.0, 14.0, 22.0]))
    perfect = placement(z, z, bg)
    assert perfect["centroid_error_px"] < 1e-4 and perfect["direction_right"] == 1.0
    static = z.clone()
    static[0] = z[0, :, 1:2].expand_as(z[0])  # clip 0 drawn still, in the middle frame's place
    report = placement(static, z, bg)
    assert report["centroid_error_px"] > 2 and report["travel_px"] < report["true_travel_px"]


def test_noisy_input_gives_position_away_at_low_noise_only():
    from divot_mini import diffusion
    from divot_mini.tokenizer_evaluation import noisy_input_placement

    torch.manual_seed(0)
    bg = torch.zeros(4)
    z = torch.zeros(32, 4, 4, 8, 8)
    where = torch.randint(0, 8, (32, 2))
    for i, (y, x) in enumerate(where.tolist()):
        z[i, :, :, y, x] = 3.0  # a one-cell object, still, somewhere
    err = noisy_input_placement(z, diffusion.make_scheduler(), [0, 999], bg)
    shifted = noisy_input_placement(z, diffusion.make_scheduler(shift=3.0), [300], bg)
    official = noisy_input_placement(z, diffusion.make_scheduler(), [300], bg)
    assert err[0] < 0.5 and err[999] > 4  # clean: found; pure noise: nothing to find
    assert shifted[300] > official[300]  # the shifted schedule hides it earlier
