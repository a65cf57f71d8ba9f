"""``ReparamELBO``: the ELBO of a fully reparameterised guide, with less bookkeeping than Pyro's.

How it differs from Pyro's own classes: the value and the gradient are those of ``Trace_ELBO``
(``analytic_kl=False``) and ``TraceMeanField_ELBO`` (``analytic_kl=True``), tested to 1e-5 on
the VAE and on eight generic model/guide pairs; what it leaves out is their bookkeeping (no
copies of the traces, no score-function parts, no Python-float copies of the bound, one sum per
group of per-datum terms). It refuses what those classes would estimate differently: guide
sites that are not reparameterised (use ``TraceGraph_ELBO``) or enumerated (``TraceEnum_ELBO``).
Where ``TraceMeanField_ELBO`` stops with a ``KeyError`` (a model latent the guide lacks), it
counts the model's own draw by its log density.
"""
from __future__ import annotations

import numbers

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from pyro.util import check_model_guide_match, check_site_shape, warn_if_nan
from torch.distributions import kl_divergence

from .elbo import DifferentiableELBO

__all__ = ["ReparamELBO"]


class _SampleSites(Messenger):
    """The sample sites of one run, by name (the messages themselves), with the latent values of an earlier
    run's sites replayed if ``replay`` is given: what ``poutine.trace(poutine.replay(fn, trace))`` gives
    an ELBO, without a Trace's copies of every message and its param nodes. Param statements still pass
    through the handler stack (an enclosing ``poutine.trace``, as in ``SVI``, records them)."""

    def __init__(self, replay: dict | None = None):
        super().__init__()
        self.nodes: dict = {}
        self.replay = replay

    def _pyro_sample(self, msg) -> None:
        if self.replay is not None and not msg["is_observed"]:
            site = self.replay.get(msg["name"])
            if site is not None:
                if site["is_observed"]:
                    raise RuntimeError(f"site {msg['name']} must be sampled in trace")
                msg["done"] = True
                msg["value"] = site["value"]
                msg["infer"] = site["infer"]

    def _pyro_post_sample(self, msg) -> None:
        if msg["infer"].get("_do_not_trace"):
            return
        if msg["name"] in self.nodes:
            raise RuntimeError(f"Multiple sample sites named '{msg['name']}'")
        self.nodes[msg["name"]] = msg




class ReparamELBO(DifferentiableELBO):
    """The ELBO of a fully reparameterised guide with less bookkeeping than Pyro's classes.

    ``analytic_kl=False``: ``Trace_ELBO``'s estimator, log p(x, z) - log q(z) at the guide's draws.
    ``analytic_kl=True``: ``TraceMeanField_ELBO``'s, KL(q || p) in closed form for each latent site where
    torch registers one (the Monte Carlo terms elsewhere).

    Same value and gradient as those classes; what it leaves out is their bookkeeping: the sample sites
    are recorded without a Trace's copies (and not copied again to prune the subsample sites), no
    score-function parts or Python-float copies of the bound are made, and the per-datum terms that
    share a scale and a shape (the sites of one plate) are added before they are reduced, so a plate
    costs one sum and one scaling instead of one per site. Latent guide sites that are not
    reparameterised, or enumerated, are refused (use ``TraceGraph_ELBO`` / ``TraceEnum_ELBO``); observed
    guide sites (``pyro.factor``) count as in ``Trace_ELBO``. A model latent the guide lacks is drawn from
    the model and counted by its log density (where ``TraceMeanField_ELBO`` stops with a ``KeyError``).
    With validation on (``pyro.enable_validation``, Pyro's default), model and guide run under Pyro's own
    traces and are checked as its ELBOs check them (matching sites, site shapes against their plates, NaN
    warnings).
    """

    def __init__(self, num_particles: int = 1, max_plate_nesting: float = float("inf"),
                 vectorize_particles: bool = False, *, analytic_kl: bool = False, retain_graph=None):
        super().__init__(num_particles=num_particles, max_plate_nesting=max_plate_nesting,
                         vectorize_particles=vectorize_particles, retain_graph=retain_graph)
        self.analytic_kl = bool(analytic_kl)

    def _get_trace(self, model, guide, args, kwargs):
        if is_validation_enabled():  # Pyro's traces, checked as its ELBOs check them
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
            return model_trace, guide_trace
        with _SampleSites() as guide_sites:
            guide(*args, **kwargs)
        with _SampleSites(replay=guide_sites.nodes) as model_sites:
            model(*args, **kwargs)
        return model_sites, guide_sites

    def _loss_particle(self, model_trace, guide_trace):
        validate = is_validation_enabled()
        groups: dict = {}  # (scale, shape) -> per-datum sum of the terms of that scale and shape

        def add(term, scale, mask, sign):
            if mask is not None:
                term = scale_and_mask(term, mask=mask)
            if not isinstance(scale, numbers.Number):  # a tensor scale: applied here, grouped as 1
                term, scale = term * scale, 1.0
            key = (scale, term.shape)
            acc = groups.get(key)
            if acc is None:
                groups[key] = term if sign > 0 else -term
            else:
                groups[key] = acc + term if sign > 0 else acc - term

        def log_prob(site):
            lp = site["fn"].log_prob(site["value"])
            if validate:  # the shape Pyro checks: after the site's scale and mask
                site["log_prob"] = scale_and_mask(lp, site["scale"], site["mask"])
                check_site_shape(site, self.max_plate_nesting)
            return lp

        closed_form = set()
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if self.analytic_kl and not site["is_observed"] and name in guide_trace.nodes:
                q_site = guide_trace.nodes[name]
                try:
                    kl = kl_divergence(q_site["fn"], site["fn"])
                except NotImplementedError:
                    pass
                else:
                    if not torch.is_tensor(kl):
                        value = q_site["value"]
                        kl = torch.full(q_site["fn"].batch_shape, float(kl), dtype=value.dtype, device=value.device)
                    if validate:  # shape checks only: the closed form replaces both log densities
                        log_prob(site)
                        log_prob(q_site)
                    add(kl, q_site["scale"], q_site["mask"], -1)
                    closed_form.add(name)
                    continue
            add(log_prob(site), site["scale"], site["mask"], +1)
        for name, site in guide_trace.nodes.items():  # latent sites, and observed ones such as pyro.factor
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if site["infer"].get("enumerate"):
                raise ValueError(f"ReparamELBO does not sum out enumerated sites; {name!r} is enumerated "
                                 f"(use TraceEnum_ELBO)")
            if not site["is_observed"] and not site["fn"].has_rsample:
                raise ValueError(f"ReparamELBO needs reparameterised guide sites; {name!r} is not "
                                 f"(use TraceGraph_ELBO, or the 'score_function' estimator)")
            if name not in closed_form:
                add(log_prob(site), site["scale"], site["mask"], -1)
        loss = None  # -ELBO / num_particles: the sign and the particle average folded into each group's scale
        for (scale, _), term in groups.items():
            factor = -scale / self.num_particles
            part = -term.sum() if factor == -1.0 else term.sum() * factor
            loss = part if loss is None else loss + part
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs):
        """-ELBO averaged over ``num_particles`` draws, differentiable in the model's and guide's parameters."""
        loss = None
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            part = self._loss_particle(model_trace, guide_trace)
            loss = part if loss is None else loss + part
        if loss is None:
            raise ValueError("the model and guide have no sample sites")
        if is_validation_enabled():
            warn_if_nan(loss, "loss")
        return loss


