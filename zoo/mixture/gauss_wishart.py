"""The conjugate Bayesian Gaussian mixture: priors, closed-form CAVI updates and the ELBO.

Model (``K`` components, data ``x_n`` in ``R^D``)::

    weights  ~ Dirichlet(alpha0 1_K)                       weight_type="dirichlet_distribution"
    v_k      ~ Beta(1, gamma0), pi_k = v_k prod_{j<k}(1 - v_j)   "dirichlet_process" (stick-breaking)
    Lambda_k ~ Wishart(nu0, W0),  W0 = Psi0^-1              covariance_type="full"
    mu_k | Lambda_k ~ N(m0, (beta0 Lambda_k)^-1)
    z_n ~ Categorical(pi),  x_n | z_n=k ~ N(mu_k, Lambda_k^-1)

Variational family ``q = q(z) q(pi or v) prod_k q(mu_k | Lambda_k) q(Lambda_k)`` with
``q(z_n)`` categorical (responsibilities ``r_nk``), ``q(pi) = Dirichlet(alpha)`` or
``q(v_k) = Beta(a_k, b_k)``, ``q(Lambda_k) = Wishart(nu_k, W_k)``, ``q(mu_k | Lambda_k) =
N(m_k, (beta_k Lambda_k)^-1)``. Each coordinate update is ``log q_j* = E_{-j}[log p] + const``:

* ``q(z)``: ``log r_nk = E[log pi_k] + E[log|Lambda_k|]/2 - D/2 log 2pi - D/(2 beta_k)
  - nu_k (x_n - m_k)^T W_k (x_n - m_k)/2 + const`` (:func:`estep_constants` gives all
  but the quadratic term, whose matrix is the precision ``P_k = nu_k W_k``).
* ``q(pi)``: ``alpha_k = alpha0 + N_k``; sticks ``a_k = 1 + N_k``, ``b_k = gamma0 + sum_{j>k} N_j``.
* ``q(mu, Lambda)``: ``beta_k = beta0 + N_k``, ``m_k = (beta0 m0 + N_k xbar_k)/beta_k``,
  ``nu_k = nu0 + N_k``, ``W_k^-1 = Psi_k = Psi0 + N_k S_k + N_k beta0/beta_k (xbar_k - m0)(xbar_k - m0)^T``.

``covariance_type="tied"`` and ``"spherical"`` are scikit-learn's, and keep the model above
(``K`` independent ``Wishart(nu0, W0)`` precisions); they restrict ``q``:

* ``"tied"``: every ``q(Lambda_k)`` is the same ``Wishart(nu, W)``. The best shared factor is
  ``q ∝ exp(mean_k E_{-Lambda}[log p_k])``: ``nu = nu0 + N/K``, ``W^-1 = Psi = Psi0 + (N S +
  sum_k N_k beta0/beta_k (xbar_k - m0)(xbar_k - m0)^T)/K`` with ``S`` the pooled within-component
  covariance; the ELBO counts its Wishart terms ``K`` times (``nu`` is a scalar, ``Psi`` (D, D)).
* ``"spherical"``: ``W_k = I/psi_k`` (prior ``W0 = I/psi0``, ``psi0`` a number; ``Lambda_k`` is
  still a Wishart matrix, with mean ``nu_k/psi_k I``). The best scalar scale for the full
  update's ``Psi_k`` is ``psi_k = tr(Psi_k)/D = psi0 + N_k s_k + N_k beta0/beta_k |xbar_k - m0|^2/D``
  with ``s_k`` the mean per-dimension variance, and ``nu_k = nu0 + N_k`` stays optimal.

``covariance_type="diag"`` has two families with the same statistics ``Psi_kd``:

* ``"wishart"`` (scikit-learn's ``diag``): the Wishart above restricted to a diagonal
  scale ``W_k = diag(1/Psi_kd)`` (prior scale ``diag(1/Psi0_d)``); the best diagonal scale
  for a fixed ``nu_k`` is exactly that, so the updates are still coordinate maxima.
* ``"gamma"``: independent per-dimension precisions ``lambda_kd ~ Gamma(nu0/2, Psi0_d/2)``
  (shape, rate), ``mu_kd | lambda_kd ~ N(m0_d, 1/(beta0 lambda_kd))``; ``q(lambda_kd) =
  Gamma(nu_k/2, Psi_kd/2)`` (the Pyro model :mod:`zoo.mixture.bayesian_gmm` uses this one).

Two objectives are reported. :func:`elbo` is the full evidence lower bound
``E_q[log p(x, z, theta) - log q(z, theta)]`` with every constant, valid for any ``q``
in the family; :func:`sklearn_lower_bound` is scikit-learn's ``BayesianGaussianMixture``
bound, which is the full ELBO at the optimal ``q(theta)`` given ``q(z)`` minus the terms
that depend only on the priors and ``N, D, K`` (the ``-ND/2 log 2pi`` of the likelihood,
the prior normalisers of the weights and of the Gauss-Wishart). The two differ by those
constants when ``q(theta)`` is the exact update (``reg_covar=0``).

:class:`zoo.mixture.BayesianGaussianMixture` runs these updates over the data;
:func:`inference.cavi.fit_cavi` runs them for the Pyro model :class:`zoo.mixture.BayesianGMM`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_array

from .._estimator import check_shape

__all__ = [
    "GaussianWishartPrior", "make_prior", "weight_update", "expected_log_weights", "mixture_weights",
    "component_update", "expected_log_det", "estep_constants", "expected_precision", "elbo",
    "sklearn_lower_bound", "log_wishart_normalizer", "WEIGHT_PRIOR_TYPES", "PRIOR_PARAMETER_CONSTRAINTS",
]


WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
_LOG_2PI = math.log(2.0 * math.pi)
_F64 = torch.float64


@dataclass
class GaussianWishartPrior:
    """Validated hyperparameters (float64 tensors on the data's device).

    ``mean`` (D,), ``covariance`` the inverse Wishart scale ``Psi0``: (D, D) for ``full`` and
    ``tied``, (D,) for ``diag``, a 0-d tensor ``psi0`` (``Psi0 = psi0 I``) for ``spherical``.
    """

    weight_type: str
    weight_concentration: float
    mean_precision: float
    mean: torch.Tensor
    degrees_of_freedom: float
    covariance: torch.Tensor
    covariance_type: str
    diag_family: str = "wishart"

    @property
    def n_features(self) -> int:
        return self.mean.shape[0]


#: The constraints of the prior's hyperparameters (scikit-learn's ``_parameter_constraints``
#: entries), shared by :func:`make_prior`, ``BayesianGaussianMixture`` and the Pyro ``bayesian_gmm``.
PRIOR_PARAMETER_CONSTRAINTS: dict = {
    "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
    "weight_concentration_prior_type": [StrOptions({"dirichlet_process", "dirichlet_distribution"})],
    "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
    "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
    "mean_prior": [None, "array-like"],
    "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
    "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
    "diag_family": [StrOptions({"wishart", "gamma"})],
}


def _as_f64(value, name, device):
    """A user-given array as a finite float64 tensor (scikit-learn's ``check_array`` messages)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if np.ndim(value) == 0:  # a number (the spherical covariance prior): check_array takes arrays only
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{name} must be a number or an array, got {type(value).__name__}")
        if not np.isfinite(value):
            raise ValueError(f"Input {name} contains NaN or infinity.")
        return torch.tensor(float(value), dtype=torch.float64, device=device)
    arr = check_array(value, dtype=np.float64, ensure_2d=False, input_name=name)
    return torch.as_tensor(arr, device=device)


def make_prior(X, *, covariance_type="full", weight_concentration_prior_type="dirichlet_process",
               weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
               degrees_of_freedom_prior=None, covariance_prior=None, n_components=1,
               diag_family="wishart") -> GaussianWishartPrior:
    """Validate the hyperparameters; ``None`` takes scikit-learn's data-dependent default.

    Defaults: ``weight_concentration_prior = 1/K``, ``mean_precision_prior = 1``,
    ``mean_prior = mean(X)``, ``degrees_of_freedom_prior = D``, ``covariance_prior =
    cov(X)`` (full and tied, ``ddof=1``), ``var(X, ddof=1)`` (diag) or its mean (spherical).

    Parameters
    ----------
    X : tensor (N, D), validated data (only its mean/covariance and shape are used).
    """
    params = dict(covariance_type=covariance_type, weight_concentration_prior_type=weight_concentration_prior_type,
                  weight_concentration_prior=weight_concentration_prior, mean_precision_prior=mean_precision_prior,
                  mean_prior=mean_prior, degrees_of_freedom_prior=degrees_of_freedom_prior,
                  covariance_prior=covariance_prior, diag_family=diag_family)
    validate_parameter_constraints(PRIOR_PARAMETER_CONSTRAINTS, params, caller_name="the Gauss-Wishart prior")
    n, d = X.shape
    dev = X.device
    summary = X if type(X).__name__ == "DataSummary" else None  # a streamed fit's summary of the data (zoo.mixture._stream)
    Xd = None if summary is not None else X.to(_F64)
    # messages below: scikit-learn's for the same situations
    wc = 1.0 / n_components if weight_concentration_prior is None else float(weight_concentration_prior)
    beta0 = 1.0 if mean_precision_prior is None else float(mean_precision_prior)
    if mean_prior is None:
        m0 = summary.mean if summary is not None else Xd.mean(0)
    else:
        m0 = _as_f64(mean_prior, "mean_prior", dev)
        check_shape(m0, (d,), "means")
    gamma_family = covariance_type == "diag" and diag_family == "gamma"
    if degrees_of_freedom_prior is None:
        nu0 = float(d)
    else:
        nu0 = float(degrees_of_freedom_prior)
        floor = 0 if gamma_family else d - 1
        if not nu0 > floor or not math.isfinite(nu0):
            raise ValueError(f"The parameter 'degrees_of_freedom_prior' should be greater than {floor}, but got "
                             f"{nu0:.3f}.")
    if covariance_prior is None:
        if n < 2:
            raise ValueError("the default covariance_prior needs at least 2 samples; pass covariance_prior")
        if covariance_type in ("full", "tied"):
            psi0 = summary.covariance() if summary is not None else torch.atleast_2d(torch.cov(Xd.T))
        else:
            psi0 = torch.diagonal(summary.covariance()).clone() if summary is not None else Xd.var(0, unbiased=True)
            if covariance_type == "spherical":
                psi0 = psi0.mean()
        if covariance_type in ("full", "tied") and bool((torch.linalg.cholesky_ex(psi0)[1] != 0)):
            raise ValueError("the data covariance (the default covariance_prior) is not positive definite; "
                             "pass covariance_prior")
        if covariance_type == "diag" and not bool((psi0 > 0).all()):
            raise ValueError("a feature has zero variance (the default covariance_prior); pass covariance_prior")
        if covariance_type == "spherical" and not bool(psi0 > 0):
            raise ValueError("the data have zero variance (the default covariance_prior); pass covariance_prior")
    else:
        psi0 = _as_f64(covariance_prior, "covariance_prior", dev)
        shape = {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": ()}[covariance_type]
        check_shape(psi0, shape, f"{covariance_type} covariance_prior")
        if covariance_type in ("full", "tied"):
            if not torch.allclose(psi0, psi0.T) or bool(torch.linalg.cholesky_ex(psi0)[1] != 0):
                raise ValueError(f"'{covariance_type} precision' should be symmetric, positive-definite")
        elif covariance_type == "spherical":
            if not bool(psi0 > 0):
                raise ValueError(f"The parameter 'spherical covariance_prior' should be greater than 0., but got "
                                 f"{float(psi0):.3f}.")
        elif not bool((psi0 > 0).all()):
            raise ValueError("'diag precision' should be positive")
    return GaussianWishartPrior(weight_concentration_prior_type, wc, beta0, m0, nu0, psi0, covariance_type,
                                diag_family)


# ------------------------------------------------------------------ weights
def weight_update(nk: torch.Tensor, prior: GaussianWishartPrior) -> torch.Tensor:
    """``q(pi)`` from the soft counts ``nk`` (K,): Dirichlet ``alpha`` (K,) or sticks ``(2, K)``
    (rows ``a_k = 1 + N_k``, ``b_k = gamma0 + sum_{j>k} N_j``)."""
    if prior.weight_type == "dirichlet_process":
        tail = torch.flip(torch.cumsum(torch.flip(nk, (0,)), 0), (0,)) - nk  # sum_{j>k} N_j
        return torch.stack([1.0 + nk, prior.weight_concentration + tail])
    return prior.weight_concentration + nk


def expected_log_weights(conc: torch.Tensor, weight_type: str) -> torch.Tensor:
    """``E_q[log pi_k]`` (K,)."""
    if weight_type == "dirichlet_process":
        a, b = conc
        dsum = torch.digamma(a + b)
        log_v, log_1mv = torch.digamma(a) - dsum, torch.digamma(b) - dsum
        return log_v + torch.cat([log_v.new_zeros(1), torch.cumsum(log_1mv, 0)[:-1]])
    return torch.digamma(conc) - torch.digamma(conc.sum())


def mixture_weights(conc: torch.Tensor, weight_type: str) -> torch.Tensor:
    """Posterior-mean weights (K,), normalised (scikit-learn's ``weights_``)."""
    if weight_type == "dirichlet_process":
        a, b = conc
        frac = b / (a + b)
        w = a / (a + b) * torch.cat([frac.new_ones(1), torch.cumprod(frac[:-1], 0)])
        return w / w.sum()
    return conc / conc.sum()


def _weights_kl(conc, prior):
    from torch.distributions import Beta, Dirichlet, kl_divergence

    if prior.weight_type == "dirichlet_process":
        a, b = conc
        g = torch.full_like(a, prior.weight_concentration)
        return kl_divergence(Beta(a, b), Beta(torch.ones_like(a), g)).sum()
    return kl_divergence(Dirichlet(conc), Dirichlet(torch.full_like(conc, prior.weight_concentration)))


def _log_norm_weight(conc, weight_type):
    """scikit-learn's ``log_norm_weight``: log normaliser of ``q(pi)`` (sticks: minus log Beta)."""
    if weight_type == "dirichlet_process":
        a, b = conc
        return -(torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)).sum()
    return torch.lgamma(conc.sum()) - torch.lgamma(conc).sum()


# --------------------------------------------------------------- components
def component_update(nk, xk, sk, prior: GaussianWishartPrior):
    """``q(mu, Lambda)`` from soft counts ``nk`` (K,), means ``xk`` (K, D) and covariances
    ``sk`` ((K, D, D) full, (D, D) tied (pooled), (K, D) diag, (K,) spherical (the mean
    per-dimension variance); ``reg_covar`` already added when wanted).

    Returns a dict ``beta`` (K,), ``means`` (K, D), ``nu`` ((K,); tied: 0-d), ``psi`` (``W^-1``:
    (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical ``psi_k`` with ``W_k = I/psi_k``).
    """
    kind = prior.covariance_type
    beta = prior.mean_precision + nk
    means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / beta[:, None]
    diff = xk - prior.mean
    shrink = nk * prior.mean_precision / beta
    if kind == "tied":  # the shared factor: the mean over components of the full update
        k = nk.shape[0]
        nu = prior.degrees_of_freedom + nk.sum() / k
        psi = prior.covariance + (nk.sum() * sk + (shrink[:, None] * diff).T @ diff) / k
        return {"beta": beta, "means": means, "nu": nu, "psi": psi}
    nu = prior.degrees_of_freedom + nk
    if kind == "full":
        psi = prior.covariance + nk[:, None, None] * sk + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :]
    elif kind == "diag":
        psi = prior.covariance + nk[:, None] * sk + shrink[:, None] * diff * diff
    else:  # spherical: tr(Psi_k)/D of the full update
        psi = prior.covariance + nk * sk + shrink * (diff * diff).mean(1)
    return {"beta": beta, "means": means, "nu": nu, "psi": psi}


def _multi_digamma_sum(nu, d):
    """``sum_{i=0}^{D-1} digamma((nu - i)/2)`` for nu of any shape."""
    i = torch.arange(d, dtype=nu.dtype, device=nu.device)
    return torch.digamma(0.5 * (nu[..., None] - i)).sum(-1)


def _multi_lgamma_sum(nu, d):
    i = torch.arange(d, dtype=torch.as_tensor(nu).dtype, device=torch.as_tensor(nu).device)
    return torch.lgamma(0.5 * (torch.as_tensor(nu)[..., None] - i)).sum(-1)


def log_wishart_normalizer(nu, logdet_w, d):
    """``log B(W, nu)`` of the Wishart density ``B |L|^{(nu-D-1)/2} exp(-tr(W^-1 L)/2)``."""
    nu = torch.as_tensor(nu, dtype=_F64)
    return (-0.5 * nu * logdet_w - 0.5 * nu * d * math.log(2.0) - 0.25 * d * (d - 1) * math.log(math.pi)
            - _multi_lgamma_sum(nu, d))


def _logdet_psi(psi, kind, d):
    """``log |Psi_k|`` (K,) (tied: 0-d) of the inverse scales ``psi`` of a covariance type."""
    if kind in ("full", "tied"):
        return 2.0 * torch.log(torch.diagonal(torch.linalg.cholesky(psi), dim1=-2, dim2=-1)).sum(-1)
    if kind == "diag":
        return torch.log(psi).sum(-1)
    return d * torch.log(psi)


def expected_log_det(q, prior: GaussianWishartPrior, logdet_psi=None):
    """``E_q[log |Lambda_k|]`` (K,) (tied: 0-d, the shared factor's)."""
    d, nu = prior.n_features, q["nu"]
    if logdet_psi is None:
        logdet_psi = _logdet_psi(q["psi"], prior.covariance_type, d)
    if prior.covariance_type == "diag" and prior.diag_family == "gamma":
        return d * torch.digamma(0.5 * nu) + d * math.log(2.0) - logdet_psi
    return _multi_digamma_sum(nu, d) + d * math.log(2.0) - logdet_psi


def estep_constants(conc, q, prior: GaussianWishartPrior, logdet_psi=None):
    """Per-component constant of the E-step (K,): ``E[log pi_k] + E[log|Lambda_k|]/2
    - D/2 log 2pi - D/(2 beta_k)``; the rest is ``-(x - m_k)^T P_k (x - m_k)/2`` with
    ``P_k = E[Lambda_k]``."""
    d = prior.n_features  # tied: E[log|Lambda|] is 0-d and broadcasts
    return (expected_log_weights(conc, prior.weight_type) + 0.5 * expected_log_det(q, prior, logdet_psi)
            - 0.5 * d * _LOG_2PI - 0.5 * d / q["beta"])


def expected_precision(q, prior):
    """``E_q[Lambda_k] = nu_k W_k``: (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical
    (the ``lambda_k`` of ``lambda_k I``)."""
    kind, nu = prior.covariance_type, q["nu"]
    if kind in ("full", "tied"):
        return nu[..., None, None] * torch.cholesky_inverse(torch.linalg.cholesky(q["psi"]))
    return (nu[:, None] if kind == "diag" else nu) / q["psi"]


# --------------------------------------------------------------- objectives
def sklearn_lower_bound(neg_entropy_z, conc, q, prior, logdet_psi=None):
    """scikit-learn's ``BayesianGaussianMixture`` lower bound (constants dropped).

    ``neg_entropy_z`` is ``sum_nk r_nk log r_nk``.
    """
    d = prior.n_features
    if logdet_psi is None:
        logdet_psi = _logdet_psi(q["psi"], prior.covariance_type, d)
    log_b = log_wishart_normalizer(q["nu"], -logdet_psi, d) + 0.25 * d * (d - 1) * math.log(math.pi)
    log_b = log_b.expand_as(q["beta"])  # tied: the shared factor once per component
    return (-neg_entropy_z - log_b.sum() - _log_norm_weight(conc, prior.weight_type)
            - 0.5 * d * torch.log(q["beta"]).sum())


def _quad_form(P, v):
    """``v_k^T P_k v_k`` (K,) for ``v`` (K, D) and ``P`` (K, D, D) or one shared (D, D)."""
    return ((v[:, None, :] @ P).squeeze(-2) * v).sum(-1)


def elbo(neg_entropy_z, nk, xk, sk_raw, conc, q, prior, precision=None, logdet_psi=None):
    """Full ELBO ``E_q[log p(x, z, pi, mu, Lambda)] - E_q[log q]`` with every constant.

    Parameters
    ----------
    neg_entropy_z : scalar tensor, ``sum_nk r_nk log r_nk``.
    nk, xk, sk_raw : soft counts (K,), weighted means (K, D), weighted covariances of the
        responsibilities in ``q(z)`` (no regulariser), shaped as in :func:`component_update`
        (tied: the pooled covariance, ``sum_k N_k S_k / N``).
    conc, q : ``q(pi)`` and ``q(mu, Lambda)`` (any member of the family). For tied the
        Wishart terms of the shared ``q(Lambda)`` count once per component.
    """
    d, kind = prior.n_features, prior.covariance_type
    gamma = kind == "diag" and prior.diag_family == "gamma"
    if logdet_psi is None:
        logdet_psi = _logdet_psi(q["psi"], kind, d)
    if precision is None:
        precision = expected_precision(q, prior)
    e_logdet = expected_log_det(q, prior, logdet_psi)
    beta, m, nu = q["beta"], q["means"], q["nu"]
    dm = xk - m
    dm0 = m - prior.mean
    beta0, nu0 = prior.mean_precision, prior.degrees_of_freedom
    # quad_k = N_k E[tr(Lambda_k S_k) + (xbar_k - mu_k)^T Lambda_k (xbar_k - mu_k)] less the D/beta_k
    # (tied: one P, so sum_k N_k tr(P S_k) = sum_k N_k tr(P S_pooled))
    if kind in ("full", "tied"):
        quad = nk * ((precision * sk_raw).sum((-2, -1)) + _quad_form(precision, dm))
        prior_quad = _quad_form(precision, dm0)
    elif kind == "diag":
        quad = nk * (precision * (sk_raw + dm * dm)).sum(-1)
        prior_quad = (precision * dm0 * dm0).sum(-1)
    else:  # spherical: sk_raw is the mean per-dimension variance
        quad = nk * precision * (d * sk_raw + (dm * dm).sum(-1))
        prior_quad = precision * (dm0 * dm0).sum(-1)
    loglik = (nk * (0.5 * e_logdet - 0.5 * d * _LOG_2PI - 0.5 * d / beta) - 0.5 * quad).sum()
    log_pi = (nk * expected_log_weights(conc, prior.weight_type)).sum()
    kl_mu = 0.5 * (d * beta0 / beta - d + d * torch.log(beta / beta0) + beta0 * prior_quad)
    if gamma:
        a, b = 0.5 * nu[:, None], 0.5 * q["psi"]
        a0, b0 = 0.5 * nu0, 0.5 * prior.covariance
        kl_lam = ((a - a0) * torch.digamma(a) - torch.lgamma(a) + math.lgamma(a0)
                  + a0 * (torch.log(b) - torch.log(b0)) + a * (b0 - b) / b).sum(-1)
    else:
        logdet_psi0 = _logdet_psi(prior.covariance, kind, d)
        if kind in ("full", "tied"):
            tr = (prior.covariance * precision).sum((-2, -1)) / nu  # tr(Psi0 W_k)
        elif kind == "diag":
            tr = (prior.covariance * precision).sum(-1) / nu
        else:
            tr = d * prior.covariance * precision / nu
        kl_lam = (log_wishart_normalizer(nu, -logdet_psi, d) - log_wishart_normalizer(nu0, -logdet_psi0, d)
                  + 0.5 * (nu - nu0) * e_logdet - 0.5 * nu * d + 0.5 * nu * tr)
        kl_lam = kl_lam.expand_as(beta)  # tied: the shared factor's KL once per component
    return loglik + log_pi - neg_entropy_z - _weights_kl(conc, prior) - (kl_mu + kl_lam).sum()
