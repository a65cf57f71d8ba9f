"""The encoder and decoder networks shared by the VAE and the autoencoder baselines.

Plain ``torch.nn`` modules (no Pyro machinery inside): the VAE's model and guide register
them with ``pyro.module``; the plain-PyTorch reference VAE uses them as they are, so both
train networks of identical architecture and initialisation.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_positive_int

__all__ = ["mlp", "GaussianEncoder", "CodeEncoder", "Decoder", "ACTIVATIONS", "check_hidden"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU, "sigmoid": nn.Sigmoid}


def check_hidden(hidden) -> tuple[int, ...]:
    """Hidden layer sizes as a tuple of positive ints (an int is one layer; ``()`` none)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be an int or a sequence of ints, got {type(hidden).__name__}")
    return tuple(check_positive_int(h, "hidden layer size") for h in hidden)


def mlp(sizes: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {list(sizes)}")
    act = ACTIVATIONS[check_choice(activation, ACTIVATIONS, "activation")]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """x (..., n_features) -> (loc, scale), each (..., latent_dim), scale = softplus(.) + min_scale."""

    def __init__(self, n_features: int, latent_dim: int, hidden=(200,), activation: str = "relu",
                 min_scale: float = 1e-4):
        super().__init__()
        self.latent_dim = latent_dim
        self.min_scale = float(min_scale)
        self.net = mlp((n_features, *check_hidden(hidden), 2 * latent_dim), activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        loc, raw = out.split(self.latent_dim, dim=-1)
        return loc, F.softplus(raw) + self.min_scale


class CodeEncoder(nn.Module):
    """Deterministic encoder of the autoencoders: x (..., n_features) -> code (..., code_dim); linear
    units, or sigmoid units in (0, 1) with ``sigmoid=True`` (a unit's mean activation is then a rate, as
    the sparse penalty needs)."""

    def __init__(self, n_features: int, code_dim: int, hidden=(200,), activation: str = "relu",
                 sigmoid: bool = False):
        super().__init__()
        self.sigmoid = bool(sigmoid)
        self.net = mlp((n_features, *check_hidden(hidden), code_dim), activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.sigmoid(out) if self.sigmoid else out


class Decoder(nn.Module):
    """z (..., latent_dim) -> (..., n_features): Bernoulli logits or the Gaussian mean."""

    def __init__(self, latent_dim: int, n_features: int, hidden=(200,), activation: str = "relu"):
        super().__init__()
        self.net = mlp((latent_dim, *tuple(reversed(check_hidden(hidden))), n_features), activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
