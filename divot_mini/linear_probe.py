"""Linear probes: how much of an attribute can a *linear* classifier read off frozen features?

The standard test of a representation. Features are frozen (here: Divot tokens of a clip, or the ViT
patch features of one frame); a multinomial logistic regression per attribute is fitted on training
clips and scored on other clips. High accuracy means the information is present *and* linearly
accessible; chance accuracy on motion from one frame shows that a single image cannot know
direction -- which is why Divot adds a temporal encoder on top of the frozen ViT.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import COLOURS, MOTIONS, SHAPES

ATTRIBUTES = {"shape": len(SHAPES), "colour": len(COLOURS), "motion": len(MOTIONS)}


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, classes: int, weight_decay: float = 1e-3,
                     iters: int = 100) -> torch.nn.Linear:
    """Full-batch L-BFGS logistic regression on standardised features x [N, D] -> labels y [N]."""
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected features [N, D] and labels [N], got {tuple(x.shape)} and {tuple(y.shape)}")
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], classes)
    with torch.no_grad():
        lin.weight.normal_(0, 0.01, generator=g)
        lin.bias.zero_()
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), y) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


@torch.no_grad()
def probe_accuracy(train_x: torch.Tensor, train_labels: dict, test_x: torch.Tensor,
                   test_labels: dict) -> dict[str, float]:
    """Fit one probe per attribute on (train_x, labels) and return accuracies on test_x.

    Features are flattened per clip and standardised with the training statistics.
    """
    if train_x.ndim < 2 or test_x.ndim < 2:
        raise ValueError(f"expected features [N, ...] per clip, got {tuple(train_x.shape)} and {tuple(test_x.shape)}")
    train_x, test_x = train_x.flatten(1).float(), test_x.flatten(1).float()
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features differ in size: {train_x.shape[1]} vs {test_x.shape[1]}")
    mean, std = train_x.mean(0), train_x.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant features: leave unscaled
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    out = {}
    for name, classes in ATTRIBUTES.items():
        with torch.enable_grad():
            lin = fit_linear_probe(train_x, train_labels[name], classes)
        out[name] = (lin(test_x).argmax(-1) == test_labels[name]).float().mean().item()
    return out
