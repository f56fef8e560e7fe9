"""The weights policy: shipped -> cache -> train, corruption detected, atomic writes, forced retrain."""
import json

import pytest
import torch

from divot_mini import checkpoints
from divot_mini.checkpoints import CheckpointSpec


def _toy(name="toy", config=None, width=3):
    calls = []

    def train(module, seed):
        calls.append(seed)
        with torch.no_grad():
            module.weight.fill_(float(len(calls)))
        return {"calls": len(calls)}

    spec = CheckpointSpec(name=name, build=lambda: torch.nn.Linear(width, 2), train=train,
                          config=config or {"width": width}, seed=5, command="toy")
    checkpoints.register(spec)
    return spec, calls


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    monkeypatch.setenv("DIVOT_SHIPPED", str(shipped))
    monkeypatch.setenv("DIVOT_CACHE", str(cache))
    yield shipped, cache
    checkpoints.REGISTRY.pop("toy", None)


def test_trains_when_nothing_exists_then_uses_cache(dirs):
    shipped, cache = dirs
    spec, calls = _toy()
    m, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "trained" and calls == [5] and not m.training
    assert (cache / "toy.safetensors").exists() and prov["seed"] == 5
    assert prov["metrics"] == {"calls": 1} and len(prov["sha256"]) == 64 and prov["command"]
    m2, prov2 = checkpoints.load("toy", verbose=False)
    assert prov2["source"] == "cache" and calls == [5]
    assert torch.equal(m2.weight, m.weight)


def test_shipped_is_preferred(dirs):
    shipped, cache = dirs
    spec, calls = _toy()
    checkpoints.train_and_save(spec, shipped)
    checkpoints.train_and_save(spec, cache)
    m, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "shipped" and m.weight.eq(1.0).all()


def test_corrupted_cache_is_set_aside_and_retrained(dirs):
    shipped, cache = dirs
    spec, calls = _toy()
    checkpoints.train_and_save(spec, cache)
    path = cache / "toy.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # flip a byte of the weights
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupted"):
        m, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "trained" and calls == [5, 5]
    assert len(list(cache.glob("toy.safetensors.bad-*"))) == 1  # the user's file is kept aside


def test_truncated_shipped_file_is_not_used(dirs):
    shipped, cache = dirs
    spec, calls = _toy()
    checkpoints.train_and_save(spec, shipped)
    path = shipped / "toy.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="shipped checkpoint 'toy'"):
        m, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "trained"
    assert path.exists()  # shipped files are reported, never moved


def test_incompatible_config_or_shapes_are_reported(dirs):
    shipped, cache = dirs
    spec, _ = _toy()
    checkpoints.train_and_save(spec, shipped)
    _toy(config={"width": 3, "variant": "new"})
    with pytest.warns(UserWarning, match="another configuration"):
        _, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "trained"
    # Same config, file from a differently shaped model (hash is right, shapes are not).
    spec4, _ = _toy(config={"width": 3}, width=4)
    checkpoints.train_and_save(spec4, shipped)
    _toy(config={"width": 3}, width=3)
    err = None
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.verify(checkpoints.REGISTRY["toy"], shipped, torch.nn.Linear(3, 2))
    assert "weight: file (2, 4) != model (2, 3)" in str(err.value)


def test_missing_provenance_is_reported(dirs):
    shipped, cache = dirs
    spec, _ = _toy()
    checkpoints.train_and_save(spec, shipped)
    (shipped / "toy.json").unlink()
    with pytest.raises(checkpoints.CheckpointError, match="toy.json is missing"):
        checkpoints.verify(spec, shipped, spec.build())
    (shipped / "toy.json").write_text("{not json")
    with pytest.raises(checkpoints.CheckpointError, match="not valid JSON"):
        checkpoints.verify(spec, shipped, spec.build())


def test_forced_retrain(dirs, monkeypatch):
    shipped, cache = dirs
    spec, calls = _toy()
    checkpoints.train_and_save(spec, shipped)
    monkeypatch.setenv("DIVOT_RETRAIN", "other,toy")
    monkeypatch.setattr(checkpoints, "_RETRAINED", set())
    _, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "trained" and len(calls) == 2
    # retrained once per process: the next load takes the fresh cache file, not the shipped one
    _, prov = checkpoints.load("toy", verbose=False)
    assert prov["source"] == "cache" and len(calls) == 2
    monkeypatch.setenv("DIVOT_RETRAIN", "other")
    assert checkpoints.load("toy", verbose=False)[1]["source"] == "shipped"
    monkeypatch.setenv("DIVOT_RETRAIN", "all")
    assert checkpoints.forced_retrain("anything")


def test_save_keeps_previous_and_leaves_no_temp_files(dirs):
    shipped, cache = dirs
    spec, _ = _toy()
    checkpoints.train_and_save(spec, cache)
    checkpoints.train_and_save(spec, cache)
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["toy.json", "toy.prev.json", "toy.prev.safetensors", "toy.safetensors"]
    assert json.loads((cache / "toy.json").read_text())["metrics"] == {"calls": 2}


def test_unknown_name():
    with pytest.raises(KeyError, match="unknown checkpoint"):
        checkpoints.load("nope")


def test_shipped_probe_matches_its_provenance():
    import divot_mini.probe as probe

    spec = checkpoints.REGISTRY["probe"]
    found = checkpoints.verify(spec, checkpoints.SHIPPED_DIR, probe.AttributeProbe())
    prov = found["provenance"]
    assert prov["command"].startswith("python scripts/train.py probe")
    assert prov["commit"] != "unknown" and prov["seed"] == 0
    for split in ("test", "heldout"):
        assert min(prov["metrics"][f"{split}_clean"].values()) >= 0.99
        assert min(prov["metrics"][f"{split}_degraded"].values()) >= 0.95
