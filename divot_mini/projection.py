"""The projection layer between Divot tokens and the LLM: Linear -> GELU -> Linear, per token.

Divot-LLM uses it twice, under the official names (so official weights load unchanged):

* ``input_resampler``: a Divot token (d = 256) -> the LLM's embedding width (4096 -> 4096);
* ``output_resampler``: the LLM's output state at a query position -> the GMM parameters of that
  token (4096 -> 8208 -> 8208; see :mod:`divot_mini.gmm_head`).

Despite the name ("resampler") it does not change the number of tokens: each of the N tokens of a
clip is projected on its own; the LLM's attention does all the mixing.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def projection_mlp(input_dim: int, output_dim: int) -> nn.Sequential:
    """``proj.0`` Linear(input, output) -> GELU -> ``proj.2`` Linear(output, output)."""
    return nn.Sequential(nn.Linear(input_dim, output_dim), nn.GELU(), nn.Linear(output_dim, output_dim))


class ProjectionLayer(nn.Module):
    """[..., input_dim] -> [..., output_dim]. The hidden width is the *output* width (as official)."""

    def __init__(self, input_dim: int, output_dim: int):
        super().__init__()
        self.input_dim, self.output_dim = input_dim, output_dim
        self.proj = projection_mlp(input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"expected tokens of width {self.input_dim}, got shape {tuple(x.shape)}")
        return self.proj(x)
