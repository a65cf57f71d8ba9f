"""Laplace approximation for models with enumerated sites.

Pyro's AutoLaplaceApproximation takes the Hessian of a single trace of the
model, in which an enumerated assignment is *sampled*, not summed out. Here the
Hessian is that of the enumerated negative log joint (the TraceEnum loss of the
MAP guide), so for a mixture it is the curvature of the marginal posterior.
"""
from __future__ import annotations

import torch
from pyro.infer import TraceEnum_ELBO
from pyro.infer.autoguide import AutoLaplaceApproximation, AutoMultivariateNormal

from zoo.tracing import model_sites


class AutoEnumLaplace(AutoLaplaceApproximation):
    """``model`` is the model with its enumerated sites hidden (what the guide traces);
    ``full_model`` the same model with them visible, whose enumerated log joint is
    differentiated; ``max_plate_nesting`` is found by tracing it when not given."""

    def __init__(self, model, *, full_model, init_loc_fn=None, max_plate_nesting=None):
        kw = {} if init_loc_fn is None else {"init_loc_fn": init_loc_fn}
        super().__init__(model, **kw)
        self._full_model = full_model
        self._max_plate_nesting = max_plate_nesting

    def laplace_approximation(self, *args, **kwargs) -> AutoMultivariateNormal:
        """An AutoMultivariateNormal at the MAP point with covariance the inverse Hessian."""
        nesting = self._max_plate_nesting
        if nesting is None:
            nesting = model_sites(self._full_model, *args, **kwargs).max_plate_nesting
        elbo = TraceEnum_ELBO(max_plate_nesting=nesting)
        loc = self.loc.detach().clone().requires_grad_(True)

        def neg_log_joint(x):
            saved = self.loc
            del self.loc
            self.loc = x
            try:
                return elbo.differentiable_loss(self._full_model, self, *args, **kwargs)
            finally:
                del self.loc
                self.loc = saved

        H = torch.autograd.functional.hessian(neg_log_joint, loc)
        H = 0.5 * (H + H.T)
        if not bool((torch.linalg.eigvalsh(H) > 0).all()):
            raise ValueError("the Hessian of the negative log joint at the MAP point is not positive definite "
                             "(not a strict local optimum: train longer, or use fewer components)")
        cov = torch.linalg.inv(H)
        scale = cov.diagonal().clamp_min(0).sqrt()
        corr = cov / scale[:, None] / scale[None, :]
        scale_tril = torch.linalg.cholesky(0.5 * (corr + corr.T))
        gaussian = AutoMultivariateNormal(self.model)
        gaussian._setup_prototype(*args, **kwargs)
        del gaussian.loc
        del gaussian.scale
        del gaussian.scale_tril
        gaussian.register_buffer("loc", loc.detach())
        gaussian.register_buffer("scale", scale.detach())
        gaussian.register_buffer("scale_tril", scale_tril.detach())
        return gaussian
