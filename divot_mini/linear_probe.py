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


class LinearProbes:
    """One fitted linear probe per attribute on frozen features: ``LinearProbes(x, labels)`` fits on
    features x [M, ...] (flattened per clip, standardised with *these* statistics) and labels
    {attribute: [M]} (all three attributes, or those to probe); :meth:`predict` / :meth:`accuracy` then read other features the same way.
    Notebook 05 uses probes fitted on real Divot tokens to read the tokens an LLM *writes*."""

    def __init__(self, x: torch.Tensor, labels: dict[str, torch.Tensor]):
        if x.ndim < 2:
            raise ValueError(f"expected features [N, ...] per clip, got {tuple(x.shape)}")
        x = x.detach().flatten(1).float()  # frozen features: no graph back into their model
        self.mean, std = x.mean(0), x.std(0)
        self.std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant features: unscaled
        x = (x - self.mean) / self.std
        if not set(labels) & set(ATTRIBUTES):
            raise ValueError(f"labels must name at least one of {tuple(ATTRIBUTES)}, got {tuple(labels)}")
        with torch.enable_grad():  # one probe per attribute given
            self.probes = {k: fit_linear_probe(x, labels[k], n) for k, n in ATTRIBUTES.items() if k in labels}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.flatten(1).float()
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"the probes read {self.mean.shape[0]} features per clip, got {x.shape[1]}")
        x = (x - self.mean) / self.std
        return {k: lin(x).argmax(-1) for k, lin in self.probes.items()}

    def accuracy(self, x: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
        return {k: (v == labels[k]).float().mean().item() for k, v in self.predict(x).items()}


def probe_accuracy(train_x: torch.Tensor, train_labels: dict, test_x: torch.Tensor,
                   test_labels: dict) -> dict[str, float]:
    """Fit one probe per attribute on (train_x, labels) and return accuracies on test_x.

    Features are flattened per clip and standardised with the training statistics.
    """
    if train_x.ndim < 2 or test_x.ndim < 2:
        raise ValueError(f"expected features [N, ...] per clip, got {tuple(train_x.shape)} and {tuple(test_x.shape)}")
    if train_x[0].numel() != test_x[0].numel():
        raise ValueError(f"train and test features differ in size: {train_x[0].numel()} vs {test_x[0].numel()}")
    return LinearProbes(train_x, train_labels).accuracy(test_x, test_labels)


def position_targets(attributes: dict) -> torch.Tensor:
    """Where the object is: its centre (x, y) in the first and the last of the 16 frames, in pixels,
    from the clips' latent variables (``MovingShapes.attributes``) -> [N, 4]."""
    from .data import DIRECTIONS

    start, speed = attributes["start"].double(), attributes["speed"].double()
    end = start + DIRECTIONS[attributes["motion"]].double() * speed[:, None] * 15
    return torch.cat([start, end], 1)


def ridge_r2(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
             alpha: float = 0.01) -> torch.Tensor:
    """Linear (ridge) regression of continuous targets y [N, k] on frozen features; returns the R^2 of
    each target on the test clips (1: read perfectly, 0: no better than the mean, can go below 0).

    Features are flattened, standardised with the training statistics and scaled by 1/sqrt(D); the
    problem is solved in its dual form (an N x N system), so 20,000-wide ViT features cost no more than
    512-wide tokens. ``alpha`` is the ridge penalty on that scale."""
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("features and targets must have the same number of clips")
    x, xt = train_x.flatten(1).double(), test_x.flatten(1).double()
    if x.shape[1] != xt.shape[1]:
        raise ValueError(f"train and test features differ in size: {x.shape[1]} vs {xt.shape[1]}")
    mean, std = x.mean(0), x.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    x, xt = (x - mean) / std / x.shape[1] ** 0.5, (xt - mean) / std / x.shape[1] ** 0.5
    y, yt = train_y.double(), test_y.double()
    y_mean = y.mean(0)
    a = torch.linalg.solve(x @ x.T + alpha * torch.eye(len(x), dtype=x.dtype), y - y_mean)
    pred = xt @ (x.T @ a) + y_mean
    return 1 - ((pred - yt) ** 2).sum(0) / ((yt - yt.mean(0)) ** 2).sum(0).clamp_min(1e-12)
