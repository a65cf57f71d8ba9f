"""A normalizing-flow guide that starts where the other guides start.

Pyro's AutoIAFNormal starts from a standard Normal in unconstrained space,
ignoring ``init_loc_fn``; for a mixture that is far from the data. Here the
flow's output is shifted by a learned location (initialised from
``init_loc_fn``) and scaled by a learned positive scale.
"""
from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineTransform, affine_autoregressive
from pyro.infer.autoguide import AutoContinuous
from pyro.infer.autoguide.initialization import init_to_median
from pyro.nn import PyroParam
from torch import nn
from torch.distributions import constraints


class AutoFlow(AutoContinuous):
    """z = loc + scale * IAF_L(...IAF_1(eps)), eps ~ Normal(0, I)."""

    def __init__(self, model, *, init_loc_fn=init_to_median, init_scale=0.1, num_transforms=2, hidden_dims=None):
        if not init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        self._init_scale = float(init_scale)
        self._num_transforms = int(num_transforms)
        self._hidden_dims = hidden_dims
        super().__init__(model, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        if self.latent_dim < 2:
            raise ValueError("the flow guide needs at least 2 latent dimensions; use 'normal'")
        init_loc = self._init_loc()
        hidden = self._hidden_dims or [max(2 * self.latent_dim, 8)] * 2
        self.loc = nn.Parameter(init_loc.detach().clone())
        self.scale = PyroParam(torch.full_like(init_loc, self._init_scale), constraint=constraints.positive)
        # the "stable" IAF step y = sigmoid(s) x + (1 - sigmoid(s)) m never expands its input, so a
        # freshly initialised flow cannot throw z far from loc; spread comes from the learned scale
        flows = [affine_autoregressive(self.latent_dim, hidden_dims=hidden, stable=True)
                 for _ in range(self._num_transforms)]
        self.flows = nn.ModuleList(flows).to(device=init_loc.device, dtype=init_loc.dtype)

    def get_base_dist(self):
        return dist.Normal(torch.zeros_like(self.loc), torch.ones_like(self.loc)).to_event(1)

    def get_posterior(self, *args, **kwargs):
        transforms = list(self.flows) + [AffineTransform(self.loc, self.scale, event_dim=1, cache_size=1)]
        return dist.TransformedDistribution(self.get_base_dist(), transforms)
