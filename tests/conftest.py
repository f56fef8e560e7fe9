import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_and_isolate(tmp_path, monkeypatch):
    """Every test is seeded and writes caches/figures into its own temporary folder."""
    torch.manual_seed(0)
    monkeypatch.setenv("DIVOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIVOT_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv("DIVOT_RETRAIN", raising=False)
    monkeypatch.delenv("DIVOT_SHIPPED", raising=False)
