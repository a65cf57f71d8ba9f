"""What every model in the zoo provides.

A zoo model is a :class:`~pyro.nn.PyroModule` whose ``model(data)`` is a Pyro
model. Prior hyperparameters live in buffers, so ``.to(device)`` moves the
whole model and sampled values follow the data's device and dtype.
"""
from __future__ import annotations

import torch
from pyro.nn import PyroModule

from ._checks import as_data_tensor

__all__ = ["ZooModel"]


class ZooModel(PyroModule):
    #: sample sites summed out by enumeration (hidden from every guide)
    discrete_sites: tuple[str, ...] = ()
    #: how many plates nest in ``model``; enumeration uses the dims to their left
    max_plate_nesting: int = 1
    #: ArviZ dimension names per latent site, after (chain, draw)
    site_dims: dict[str, list[str]] = {}

    def model(self, data: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, data):
        return self.model(data)

    def check_data(self, data) -> torch.Tensor:
        """Validate ``data`` and return it as a 2-D floating tensor, shape (N, D)."""
        return as_data_tensor(data, name="data")

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """(Re)initialise the model's own learnable parameters from the data; called by ``fit``
        before every restart. Models without parameters do nothing."""

    def init_values(self, data: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor] | None:
        """Data-dependent initial values of latent sites, or ``None`` for the prior median."""
        return None

    def custom_guide(self, init_values=None):
        """The model's own hand-written guide, or ``None`` when it has none."""
        return None

    def pointwise_log_likelihood(self, samples: dict[str, torch.Tensor], data: torch.Tensor) -> torch.Tensor:
        """log p(x_n | parameters) with discrete sites summed out, shape (*sample_shape, N)."""
        raise NotImplementedError(f"{type(self).__name__} has no pointwise log-likelihood")
