"""Mean-field variational Bayes (CAVI) for the conjugate Bayesian Gaussian mixture as a Pyro model.

:func:`fit_cavi` runs the model's own closed-form coordinate ascent (the protocol hook
``cavi_fit``; the conjugate maths live in :mod:`zoo.mixture.gauss_wishart`) and returns an
:class:`inference.result.FitResult` whose draws come from the fitted ``q``.
:func:`mean_field_elbo` and :func:`enumerated_elbo` score any guide's ``q(theta)`` on the objective
CAVI maximises and on the one SVI with enumeration maximises.
"""
from __future__ import annotations

import math
import time
import warnings

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.poutine.util import prune_subsample_sites
from sklearn.exceptions import ConvergenceWarning

from zoo.base import as_model, provides
from zoo.sources import as_source, is_source

from zoo._validation import Choice, Device, Real, declare
from zoo.mixture.gaussian_mixture import INIT_PARAMS

from .methods import NUM_STEPS, POSITIVE_INT, PROGRESS_BAR, SEED, TOL, register_method
from .result import FitResult
from .svi import guide_samples

__all__ = ["fit_cavi", "mean_field_elbo", "enumerated_elbo"]

_F64 = torch.float64


@declare(max_iter=NUM_STEPS, tol=Real(ge=0), n_init=POSITIVE_INT, init_params=Choice(INIT_PARAMS), reg_covar=Real(ge=0),
         seed=SEED, num_samples=POSITIVE_INT, progress_bar=PROGRESS_BAR, device=Device())
def fit_cavi(model, data, *, max_iter=200, tol=1e-3, n_init=1, init_params="kmeans", reg_covar=0.0,
             seed=0, num_samples=500, progress_bar=True, device=None):
    """CAVI for a Pyro model with conjugate updates (the protocol hook ``cavi_fit``), such as
    :class:`zoo.mixture.BayesianGMM`.

    Runs the model's closed-form coordinate ascent (for ``BayesianGMM`` a
    :class:`zoo.mixture.BayesianGaussianMixture` with the model's priors and family, ``diag``:
    per-dimension Gamma precisions), then draws ``num_samples`` samples of every latent site
    from the fitted ``q``.

    Parameters
    ----------
    model : a ``BayesianGMM`` (``zoo.create_model("bayesian_gmm", ...)``).
    data : array-like (N, D).
    max_iter, tol, n_init, init_params, reg_covar : the EM driver's options (``tol`` on the
        ELBO; ``reg_covar=0`` keeps ``q`` the exact coordinate update).
    seed : seeds the initialisation and the draws.

    Returns
    -------
    FitResult with ``method="cavi"``; ``samples[site]`` of shape (1, num_samples, ...),
    ``losses`` the negative full ELBO after every iteration, ``guide`` the model's
    conjugate guide set to the fitted ``q``.
    """
    model = as_model(model)
    if not provides(model, "cavi_fit"):
        raise TypeError(f"fit_cavi needs a model with conjugate updates (zoo.mixture.BayesianGMM), "
                        f"got {type(model).__name__}")
    source = is_source(data)
    if not source:
        data = model.check_data(data)
        if device is not None:
            data = data.to(device)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        guide, est = model.cavi_fit(data, max_iter=max_iter, tol=tol, n_init=n_init, init_params=init_params,
                                    reg_covar=reg_covar, random_state=seed, progress_bar=progress_bar)
    if source:  # the draws need the model's shapes only: its first chunk stands for the data
        data = model.check_data(as_source(data).first_chunk())
        guide.set_from_cavi(est, data)
    pyro.set_rng_seed(seed)
    samples = guide_samples(model, guide, data, num_samples)
    return FitResult(model=model, data=data, method="cavi", guide_name="custom", guide=guide,
                     losses=[-v for v in est.elbos_], samples=samples, converged=bool(est.converged_),
                     run_time=time.perf_counter() - start, posterior_guide=est, seed=seed)


@torch.no_grad()
def mean_field_elbo(model, guide, data, *, num_particles=1000, seed=0):
    """The mean-field ELBO of a guide's ``q(theta)`` with the best factorised ``q(z)``.

    For ``q(theta) q(z)`` the best ``q(z_n)`` is ``r_nk ∝ exp E_q[log pi_k + log p(x_n | k)]``
    and the ELBO is then ``sum_n logsumexp_k E_q[log pi_k + log p(x_n | k)] + E_q[log p(theta)
    - log q(theta)]`` -- the objective CAVI maximises, for any guide (``normal``, ``custom``...).
    Expectations are Monte Carlo averages over ``num_particles`` draws of the guide (the
    logsumexp of an average is biased upwards by ``O(1/num_particles)``: in the guide's favour).

    Returns ``(estimate, standard_error)`` (floats; the error is that of the averaged terms).
    """
    model = as_model(model)
    if not (provides(model, "component_log_prob") and provides(model, "log_prior")):
        raise TypeError(f"the mean-field ELBO needs a mixture's component_log_prob and log_prior (the protocol's "
                        f"hooks); {type(model).__name__} has not both")
    data = model.check_data(data)
    names = model.sites(data).latent_names
    pyro.set_rng_seed(seed)
    comp_sum, rest = None, []
    for _ in range(num_particles):
        tr = poutine.trace(guide).get_trace(data)
        sample = {n: tr.nodes[n]["value"] for n in names}
        # every latent site of the guide, auxiliary ones included: an autoguide draws an unconstrained
        # value at an auxiliary site and puts only the Jacobian term at the model's site
        log_q = sum(site["fn"].log_prob(site["value"]).sum() for site in prune_subsample_sites(tr).nodes.values()
                    if site["type"] == "sample" and not site["is_observed"])
        comp = model.component_log_prob(sample, data).to(_F64)  # (N, K)
        comp_sum = comp if comp_sum is None else comp_sum + comp
        rest.append(float(model.log_prior(sample, data)) - float(log_q))
    mean_comp = comp_sum / num_particles
    rest_t = torch.tensor(rest, dtype=_F64)
    est = float(torch.logsumexp(mean_comp, 1).sum()) + float(rest_t.mean())
    return est, float(rest_t.std() / math.sqrt(num_particles))


@torch.no_grad()
def enumerated_elbo(model, guide, data, *, num_particles=1000, seed=0):
    """``TraceEnum_ELBO`` estimate (the objective of SVI with the assignment summed out):
    ``E_q[log sum_z p(x, z, theta) - log q(theta)]`` averaged over ``num_particles`` single-
    particle estimates. Returns ``(estimate, standard_error)``. It is never below the
    mean-field ELBO of the same ``q(theta)`` (the exact ``p(z | x, theta)`` replaces ``q(z)``).
    """
    model = as_model(model)
    data = model.check_data(data)
    pyro.set_rng_seed(seed)
    elbo_fn = TraceEnum_ELBO(max_plate_nesting=model.sites(data).max_plate_nesting)
    vals = torch.tensor([-float(elbo_fn.loss(model.model, guide, data)) for _ in range(num_particles)], dtype=_F64)
    return float(vals.mean()), float(vals.std() / math.sqrt(num_particles))


@register_method("cavi", description="mean-field variational Bayes by coordinate ascent (conjugate models: "
                                     "bayesian_gmm)")
@declare(num_steps=NUM_STEPS, tol=TOL, num_samples=POSITIVE_INT, seed=SEED, progress_bar=PROGRESS_BAR)
def _cavi(model, data, *, method: str = "cavi", num_steps: int = 1000, tol: float | None = None,
          num_samples: int = 500, seed: int = 0, progress_bar: bool = True):
    """``fit(method="cavi")``: at most ``num_steps`` iterations, stopping when the ELBO changes by less than
    ``tol`` (default 1e-3); ``num_samples`` draws from the fitted q (see :func:`fit_cavi`)."""
    if not provides(model, "cavi_fit"):
        raise ValueError(f"{type(model).__name__} has no conjugate coordinate updates; method 'cavi' is for "
                         "conjugate models such as 'bayesian_gmm'")
    return fit_cavi(model, data, max_iter=num_steps, tol=1e-3 if tol is None else tol, seed=seed,
                    num_samples=num_samples, progress_bar=progress_bar)
