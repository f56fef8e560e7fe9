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
