"""The weight concentration chosen by the evidence: seed 002's full-Bayes step, variationally.

Seed 002 puts a prior p(theta | alpha) on the parameters and maximises the evidence over the
hyperparameter, max_alpha log ∫ p(x | theta) p(theta | alpha) dtheta. For the conjugate mixture of
:mod:`zoo.mixture.gauss_wishart` the evidence is intractable; CAVI's bound

    ELBO*(alpha) = max_q ELBO(q; alpha) <= log p(X | alpha)

is maximised instead, over the weight concentration alpha0 of the Dirichlet (or the stick-breaking
gamma0), by a one-dimensional search over log alpha0 (:func:`maximise_concentration`).

The bound must keep every term that depends on alpha0. Among them is the weight prior's log
normaliser, log Gamma(K alpha0) - K log Gamma(alpha0) (sticks: K log gamma0), which scikit-learn's
``lower_bound_`` leaves out with the other prior constants: ``BayesianGaussianMixture.lower_bound_``
minus ``elbo_`` is exactly that normaliser plus a term that does not depend on alpha0 (measured in
the tests), so only ``elbo_`` can be compared across alpha0.

:func:`elbo_concentration_gradient` is an independent check of those terms: at a converged CAVI fit
every factor of q is a coordinate maximum, so by the envelope theorem dELBO*/d log alpha0 is the
partial derivative at fixed q, alpha0 [K psi(K alpha0) - K psi(alpha0) + sum_k E_q log pi_k]
(sticks: K + gamma0 sum_k E_q log(1 - v_k)), which a finite difference of ELBO* must match.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from . import gauss_wishart as gw
from .bayesian_mixture import BayesianGaussianMixture

__all__ = ["weight_prior_log_normaliser", "elbo_concentration_gradient", "elbo_at_concentration",
           "maximise_concentration", "ConcentrationSearch"]


def weight_prior_log_normaliser(concentration: float, n_components: int,
                                weight_type: str = "dirichlet_distribution") -> float:
    """log of the weight prior's normalising constant: log Gamma(K a) - K log Gamma(a) for the symmetric
    Dirichlet(a 1_K), K log g for K sticks Beta(1, g)."""
    a, K = float(concentration), int(n_components)
    if weight_type == "dirichlet_process":
        return K * math.log(a)
    if weight_type == "dirichlet_distribution":
        return math.lgamma(K * a) - K * math.lgamma(a)
    raise ValueError(f"unknown weight_type {weight_type!r}")


def elbo_concentration_gradient(model: BayesianGaussianMixture) -> float:
    """dELBO / d log alpha0 at the fitted q with every factor held fixed: the derivative of the
    converged bound ELBO*(alpha0) (envelope theorem; exact when the fit converged with
    ``reg_covar=0``, so that each update is a coordinate maximum)."""
    model._check_is_fitted()
    p, prior = model._params, model._prior
    a, conc = float(prior.weight_concentration), p["conc"]
    if prior.weight_type == "dirichlet_process":
        s, t = conc  # q(v_k) = Beta(s_k, t_k)
        e_log_1mv = torch.digamma(t) - torch.digamma(s + t)
        return float(conc.shape[-1] + a * e_log_1mv.sum())
    K = conc.shape[0]
    e_log_pi = gw.expected_log_weights(conc, prior.weight_type)
    return float(a * (K * torch.special.digamma(torch.tensor(K * a, dtype=conc.dtype))
                      - K * torch.special.digamma(torch.tensor(a, dtype=conc.dtype)) + e_log_pi.sum()))


_DEFAULTS = dict(weight_concentration_prior_type="dirichlet_distribution", reg_covar=0.0, tol=1e-10,
                 max_iter=2000, init_params="kmeans", random_state=0)


def elbo_at_concentration(X, concentration: float, n_components: int, **kwargs) -> BayesianGaussianMixture:
    """A :class:`BayesianGaussianMixture` fitted by CAVI at weight concentration ``concentration``; its
    ``elbo_`` is ELBO*(alpha0). Defaults: the finite Dirichlet prior, ``reg_covar=0`` (exact coordinate
    maxima), ``tol=1e-10``, k-means initialisation with ``random_state=0`` (the same starting
    responsibilities at every alpha0, so that ELBO* is one smooth function); ``kwargs`` override them."""
    options = {**_DEFAULTS, **kwargs}
    return BayesianGaussianMixture(n_components, weight_concentration_prior=float(concentration), **options).fit(X)


class ConcentrationSearch(NamedTuple):
    """What :func:`maximise_concentration` returns: the maximiser ``alpha`` and ``elbo`` = ELBO*(alpha),
    its fitted ``model``, and every evaluation of the search, ``log_alphas`` and ``elbos`` (in order)."""

    alpha: float
    elbo: float
    model: BayesianGaussianMixture
    log_alphas: np.ndarray
    elbos: np.ndarray


def maximise_concentration(X, n_components: int, *, bounds=(math.log(1e-4), math.log(1e2)), xatol: float = 1e-3,
                           **kwargs) -> ConcentrationSearch:
    """max over alpha0 of ELBO*(alpha0) (:func:`elbo_at_concentration`) by a bounded Brent search over
    log alpha0 in ``bounds``, to ``xatol``. A local search: the tests compare its maximum with a grid."""
    from scipy.optimize import minimize_scalar

    seen: dict[float, BayesianGaussianMixture] = {}

    def negative(log_a):
        model = elbo_at_concentration(X, math.exp(log_a), n_components, **kwargs)
        seen[float(log_a)] = model
        return -model.elbo_

    res = minimize_scalar(negative, bounds=bounds, method="bounded", options={"xatol": xatol})
    log_a = float(res.x)
    if log_a not in seen:
        negative(log_a)
    model = seen[log_a]
    keys = list(seen)
    return ConcentrationSearch(math.exp(log_a), float(model.elbo_), model, np.array(keys),
                               np.array([seen[k].elbo_ for k in keys]))
