"""``ImportanceWeightedELBO``: the k-sample importance-weighted bound (IWAE), per datum.

How it differs from Pyro's ``RenyiELBO(alpha=0)``, which also gives a k-sample
importance-weighted bound: ``RenyiELBO`` sums the log weights over the whole trace before its
log-mean-exp over the k particles, so with N data it is the k-sample bound of the joint p(x_1..N)
(k joint draws of every local latent), far looser than the IWAE objective for a model with one
latent per datum. Here the log-mean-exp is taken per datum of the data plate: k draws of z_n for
each x_n, the bound of Burda et al.; with a subsampled plate the per-datum bounds are scaled to
the full data after the log-mean-exp (``RenyiELBO`` scales before it).
"""
from __future__ import annotations

import math

import torch
from pyro.infer.enum import get_importance_trace

from zoo._checks import check_positive_int

from .elbo import DifferentiableELBO

__all__ = ["ImportanceWeightedELBO"]


class ImportanceWeightedELBO(DifferentiableELBO):
    """The k-sample importance-weighted bound (Burda et al., IWAE), per datum of the data plate:

        L_k = sum_n log (1/k) sum_i p(x_n, z_n^i) / q(z_n^i | x_n),   z_n^i ~ q(. | x_n),

    with reparameterised draws, vectorised over the k particles. Sites outside the data plate are
    shared by every datum (their log weight broadcasts). With a subsampled plate, the per-datum
    bound is multiplied by N / batch size *after* the log-mean-exp. ``loss`` is -L_k.
    """

    def __init__(self, num_particles: int = 5, max_plate_nesting: int = 1):
        super().__init__(num_particles=check_positive_int(num_particles, "num_particles"),
                         max_plate_nesting=max_plate_nesting, vectorize_particles=True)

    def _get_trace(self, model, guide, args, kwargs):
        return get_importance_trace("flat", self.max_plate_nesting, model, guide, args, kwargs)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        model_trace, guide_trace = next(iter(self._get_traces(model, guide, args, kwargs)))
        log_w, scale = 0.0, None
        for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
            for site in trace.nodes.values():
                if site["type"] != "sample" or (sign < 0 and site["is_observed"]):
                    continue
                if sign < 0 and not site["fn"].has_rsample:
                    raise ValueError(f"the importance-weighted bound needs reparameterised guide sites; "
                                     f"{site['name']!r} is not")
                lp = site["fn"].log_prob(site["value"])
                if site["mask"] is not None:
                    lp = lp * site["mask"]
                s = site["scale"]
                if scale is None or (isinstance(s, (int, float)) and s != 1.0):
                    scale = s
                log_w = log_w + sign * lp
        if not isinstance(log_w, torch.Tensor):
            raise ValueError("the model has no sample sites")
        k = self.num_particles
        log_w = log_w.reshape(k, -1) if log_w.dim() > 0 else log_w.expand(k).reshape(k, 1)
        bound = torch.logsumexp(log_w, 0) - math.log(k)
        return -(bound.sum() * (scale if scale is not None else 1.0))


