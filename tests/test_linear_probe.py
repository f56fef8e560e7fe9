"""Linear probes: perfect on separable features, chance on random labels, scale-free, shape errors."""
import pytest
import torch
import torch.nn.functional as F

from divot_mini import linear_probe as LP


def _labels(n: int, generator: torch.Generator) -> dict:
    return {k: torch.randint(0, c, (n,), generator=generator) for k, c in LP.ATTRIBUTES.items()}


def _split(x: torch.Tensor, labels: dict, n_train: int):
    return (x[:n_train], {k: v[:n_train] for k, v in labels.items()},
            x[n_train:], {k: v[n_train:] for k, v in labels.items()})


def test_separable_features_are_read_perfectly():
    g = torch.Generator().manual_seed(0)
    labels = _labels(600, g)
    # one-hot codes of every attribute plus noise, and some pure-noise dimensions
    code = torch.cat([F.one_hot(labels[k], c).float() for k, c in LP.ATTRIBUTES.items()], 1)
    x = torch.cat([2 * code, torch.zeros(600, 9)], 1) + 0.3 * torch.randn(600, 20, generator=g)
    acc = LP.probe_accuracy(*_split(x, labels, 300))
    assert set(acc) == set(LP.ATTRIBUTES)
    assert min(acc.values()) > 0.97, acc
    colour_only = LP.LinearProbes(x[:300], {"colour": labels["colour"][:300]})  # probe what is given
    assert set(colour_only.predict(x[300:])) == {"colour"}
    assert torch.equal(colour_only.predict(x[300:])["colour"],
                       LP.LinearProbes(x[:300], {k: v[:300] for k, v in labels.items()}).predict(x[300:])["colour"])
    with pytest.raises(ValueError, match="at least one of"):
        LP.LinearProbes(x, {"size": labels["shape"]})


def test_random_labels_stay_near_chance():
    g = torch.Generator().manual_seed(1)
    labels = _labels(800, g)
    x = torch.randn(800, 32, generator=g)  # nothing to read: the probe can only overfit
    acc = LP.probe_accuracy(*_split(x, labels, 400))
    for k, classes in LP.ATTRIBUTES.items():
        assert abs(acc[k] - 1 / classes) < 0.12, (k, acc)


def test_features_are_flattened_and_standardised_with_training_statistics():
    g = torch.Generator().manual_seed(2)
    labels = _labels(400, g)
    code = torch.cat([F.one_hot(labels[k], c).float() for k, c in LP.ATTRIBUTES.items()], 1)
    x = (code + torch.randn(400, 11, generator=g)).repeat(1, 2)  # [N, 22], noisy enough to err
    flat = LP.probe_accuracy(*_split(x, labels, 200))
    shaped = LP.probe_accuracy(*_split(x.view(400, 2, 11), labels, 200))  # [N, 2, 11] clips
    scaled = LP.probe_accuracy(*_split(1000 * x + 5, labels, 200))  # units do not matter
    assert shaped == flat
    for k in flat:
        assert abs(scaled[k] - flat[k]) <= 0.02, (k, flat, scaled)
    assert 0.4 < min(flat.values()) < 1.0, flat  # above chance (<= 1/3), not trivially perfect


def test_bad_shapes_raise():
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        LP.fit_linear_probe(x.view(10, 2, 2), y, 3)
    with pytest.raises(ValueError, match="labels"):
        LP.fit_linear_probe(x, y[:9], 3)
    labels = {k: torch.zeros(9, dtype=torch.long) for k in LP.ATTRIBUTES}  # one label short
    with pytest.raises(ValueError):
        LP.probe_accuracy(x, labels, x, {k: torch.zeros(10, dtype=torch.long) for k in LP.ATTRIBUTES})


def test_ridge_r2_reads_linear_targets_and_not_noise():
    g = torch.Generator().manual_seed(3)
    y = torch.randn(600, 4, generator=g)
    mix = torch.randn(4, 40, generator=g)
    x = y @ mix + 0.05 * torch.randn(600, 40, generator=g)  # the targets, linearly spread over 40 dims
    r2 = LP.ridge_r2(x[:300], y[:300], x[300:], y[300:])
    assert r2.shape == (4,) and r2.min() > 0.95, r2
    noise = torch.randn(600, 40, generator=g)  # nothing to read
    r2 = LP.ridge_r2(noise[:300], y[:300], noise[300:], y[300:])
    assert r2.max() < 0.1, r2
    # wide features (D >> N) cost an N x N solve and still read a linear code
    wide = y @ torch.randn(4, 5000, generator=g)
    assert LP.ridge_r2(wide[:300], y[:300], wide[300:], y[300:]).min() > 0.95
    with pytest.raises(ValueError, match="differ in size"):
        LP.ridge_r2(x[:300], y[:300], x[300:, :10], y[300:])
    with pytest.raises(ValueError, match="same number"):
        LP.ridge_r2(x[:300], y[:299], x[300:], y[300:])


def test_position_targets_follow_the_rendered_object():
    """The regression targets are where the renderer drew the object (first and last frame)."""
    from divot_mini.data import BACKGROUND, MovingShapes

    ds = MovingShapes("train", size=6, seed=0)
    pos = LP.position_targets(ds.attributes(list(range(6))))
    video = ds[list(range(6))]["video"]  # [6, 16, 3, H, W]
    ink = (video - BACKGROUND).abs().sum(2)  # [6, 16, H, W]: where the object is
    coords = torch.arange(video.shape[-1], dtype=torch.float32) + 0.5
    for f, cols in ((0, slice(0, 2)), (15, slice(2, 4))):
        w = ink[:, f] / ink[:, f].sum((1, 2), keepdim=True)
        centre = torch.stack([(w.sum(1) * coords).sum(1), (w.sum(2) * coords).sum(1)], 1)
        assert (centre - pos[:, cols].float()).abs().max() < 1.0, (f, centre, pos[:, cols])
