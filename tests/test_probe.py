import pytest
import torch

from divot_mini import probe as P
from divot_mini.data import MovingShapes, MovingShapesConfig


@pytest.fixture(scope="module")
def trained():
    m, prov = P.checkpoints.load("probe", verbose=False)
    assert prov["source"] == "shipped"  # CI must never train the probe silently
    return m


@pytest.mark.parametrize("split", ["test", "heldout"])
def test_probe_accuracy_clean_and_degraded(trained, split):
    # Fresh clips (seed 7, not the seed the provenance was measured on), fixed degradation seed.
    clean = P.evaluate(trained, split, n=256, seed=7)
    degraded = P.evaluate(trained, split, n=256, seed=7, degraded=True)
    assert min(clean.values()) >= 0.99, clean
    assert min(degraded.values()) >= 0.95, degraded


def test_probe_reads_other_resolutions(trained):
    b = MovingShapes("test", size=64, config=MovingShapesConfig(resolution=64))[list(range(64))]
    acc = P.accuracy(trained.predict(b["video"]), b)
    assert min(acc.values()) >= 0.95, acc


def test_untrained_probe_is_near_chance():
    torch.manual_seed(0)
    b = MovingShapes("test", size=256)[list(range(256))]
    acc = P.accuracy(P.AttributeProbe().predict(b["video"]), b)
    assert max(acc.values()) < 0.7  # so the accuracy test above can fail


def test_degrade_is_seeded_and_in_range():
    v = MovingShapes("val")[list(range(4))]["video"]
    a = P.degrade(v, 1.0, torch.Generator().manual_seed(1))
    b = P.degrade(v, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
    assert (a - v).abs().mean() > 0.02
    assert torch.equal(P.degrade(v, 0.0, torch.Generator().manual_seed(1)), v)


def test_probe_bad_inputs(trained):
    with pytest.raises(ValueError, match=r"\[B, 16, 3, H, W\]"):
        trained.predict(torch.zeros(2, 5, 3, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        trained.predict(torch.full((1, 16, 3, 32, 32), float("nan")))
    with pytest.raises(TypeError, match="tensor"):
        trained.predict([1, 2, 3])


def test_a_short_training_run_learns():
    """The training path itself works (a few steps, far from the shipped quality)."""
    torch.manual_seed(0)
    m = P.AttributeProbe()
    P.train_probe(m, seed=0, steps=40, batch_size=32, progress=False, evaluate_after=False)
    acc = P.evaluate(m, "val", n=256)
    assert acc["colour"] > 0.6 and acc["motion"] > 0.6, acc
