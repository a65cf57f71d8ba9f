"""Variational Bayesian Gaussian mixture (CAVI), scikit-learn compatible.

:class:`BayesianGaussianMixture` is the conjugate model of :mod:`zoo.mixture.gauss_wishart`
(Dirichlet or truncated stick-breaking weights, Gauss-Wishart components) fitted by
coordinate ascent on the ELBO through the EM driver of :mod:`zoo.mixture._base`. The
E-step and the statistics are those of :class:`zoo.gaussian_mixture.GaussianMixture`
(one GEMM per row chunk for all components, fused with the accumulation of the
sufficient statistics); only the parameter update and the objective differ.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
import torch

from .mixture import gauss_wishart as gw
from zoo.mixture._base import tempered_responsibilities
from zoo._checks import check_choice, check_n_components, check_positive_int
from zoo.gaussian_mixture import INIT_PARAMS, GaussianMixture

__all__ = ["BayesianGaussianMixture"]

_STAT = torch.float64
_LOG_2PI = math.log(2.0 * math.pi)


class BayesianGaussianMixture(GaussianMixture):
    """Variational Bayesian Gaussian mixture fitted by CAVI (scikit-learn's surface).

    Parameters
    ----------
    n_components : int, default=1
        Number of components ``K`` (the truncation level under the Dirichlet process).
    covariance_type : {'full', 'diag'}, default='full'
    tol : float, default=1e-3
        Stop when the lower bound (a sum over samples, as scikit-learn) changes by less.
    reg_covar : float, default=1e-6
        Added to the weighted covariances ``S_k`` in the Wishart update (as scikit-learn);
        0 makes every update the exact coordinate maximum.
    max_iter, n_init, init_params, random_state, warm_start, verbose, verbose_interval :
        the EM driver's options (``init_params`` in 'kmeans', 'k-means++', 'random',
        'random_from_data').
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration_prior : float > 0, default=None (``1/K``)
    mean_precision_prior : float > 0, default=None (1)
    mean_prior : array-like (D,), default=None (the data mean)
    degrees_of_freedom_prior : float > D - 1, default=None (D)
    covariance_prior : array-like (D, D) full / (D,) diag, default=None (the data's
        covariance / variances, ``ddof=1``). The inverse Wishart scale ``Psi0 = W0^-1``.
    diag_family : {'wishart', 'gamma'}, default='wishart'
        Family of the ``diag`` precisions (see :mod:`zoo.mixture.gauss_wishart`): scikit-learn's
        diagonal-scale Wishart, or independent per-dimension Gammas.
    device, dtype, chunk_size, progress_bar : as :class:`zoo.GaussianMixture`.

    Attributes
    ----------
    weights_ : (K,) posterior-mean weights.
    means_ : (K, D) ``m_k``.
    covariances_ : (K, D, D) or (K, D), ``Psi_k / nu_k`` (the inverse of ``E[Lambda_k]``).
    precisions_, precisions_cholesky_ : ``E[Lambda_k]`` and its upper Cholesky factor.
    weight_concentration_ : (K,) Dirichlet ``alpha``, or a tuple ``(a, b)`` of (K,) Beta
        parameters of the sticks.
    mean_precision_ : (K,) ``beta_k``.  degrees_of_freedom_ : (K,) ``nu_k``.
    lower_bound_, lower_bounds_ : scikit-learn's bound (constants dropped) of the kept run.
    elbo_, elbos_ : the full ELBO (every constant) after each iteration of the kept run.
    converged_, n_iter_, n_features_in_ :
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        diag_family="wishart",
        random_state=None,
        warm_start=False,
        device=None,
        dtype=torch.float64,
        chunk_size=None,
        verbose=0,
        verbose_interval=10,
        progress_bar=False,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.diag_family = diag_family
        self.random_state = random_state
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.progress_bar = progress_bar

    # ------------------------------------------------------------ checks
    def _check_parameters(self, X):
        check_choice(self.covariance_type, ("full", "diag"), "covariance_type")
        check_choice(self.init_params, INIT_PARAMS, "init_params")
        k = check_positive_int(self.n_components, "n_components")
        check_n_components(k, X.shape[0], name="n_components")
        reg = self.reg_covar
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not (reg >= 0 and math.isfinite(reg)):
            raise ValueError(f"reg_covar must be a finite number >= 0, got {reg!r}")
        self._kind, self._d, self._k = self.covariance_type, X.shape[1], k
        self._w_init = self._m_init = self._p_init = None
        self._prior = gw.make_prior(
            X, covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior, mean_prior=self.mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior, covariance_prior=self.covariance_prior,
            n_components=k, diag_family=self.diag_family)
        self._gamma = self.covariance_type == "diag" and self.diag_family == "gamma"

    def _prepare_data(self, X, fitting):
        Z = super()._prepare_data(X, fitting)
        if fitting:
            # the data are centred by the driver's shift: so is the prior mean
            self._prior_c = dataclasses.replace(self._prior, mean=self._prior.mean - self._shift)
        return Z

    # ------------------------------------------------------------ updates
    def _moments(self, stats):
        """Soft counts (K,), means (K, D) and covariances (no regulariser) from the statistics."""
        d = self._d
        tiny = 10 * torch.finfo(self._fit_dtype).eps  # as scikit-learn: no 0/0 for empty components
        if self._kind == "full":
            nk = stats[:, d, d] + tiny
            xk = stats[:, :d, d] / nk[:, None]
            sk = stats[:, :d, :d] / nk[:, None, None] - xk[:, :, None] * xk[:, None, :]
            sk = 0.5 * (sk + sk.mT)
        else:
            nk = stats[:, 2 * d] + tiny
            xk = stats[:, d : 2 * d] / nk[:, None]
            sk = (stats[:, :d] / nk[:, None] - xk * xk).clamp_(min=0.0)
        return nk, xk, sk

    def _params_from_stats(self, stats, *, weights_norm=None, neg_entropy=None):
        prior, kind, reg = self._prior_c, self._kind, float(self.reg_covar)
        nk, xk, sk = self._moments(stats)
        if kind == "full":
            sk_reg = sk.clone()
            sk_reg.diagonal(dim1=-2, dim2=-1).add_(reg)
        else:
            sk_reg = sk + reg
        conc = gw.weight_update(nk, prior)
        q = gw.component_update(nk, xk, sk_reg, prior)
        cov = q["psi"] / (q["nu"][:, None, None] if kind == "full" else q["nu"][:, None])
        cov, U, jitter = self._precision_cholesky(cov, reg)
        if kind == "full":
            logdet_psi = self._d * torch.log(q["nu"]) - 2.0 * torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(1)
            precision = U @ U.mT
        else:
            logdet_psi = torch.log(q["psi"]).sum(1)
            precision = U * U
        p = {"conc": conc, **q, "covariances": cov, "prec_chol": U, "jitter": jitter, "logdet_psi": logdet_psi,
             "collapsed": torch.zeros(self._k, dtype=torch.bool, device=nk.device)}
        p["const"] = gw.estep_constants(conc, q, prior, logdet_psi)
        if neg_entropy is not None:
            full = gw.elbo(neg_entropy, nk, xk, sk, conc, q, prior, precision=precision, logdet_psi=logdet_psi)
            if self._gamma:  # scikit-learn's bound has no per-dimension Gamma form
                bound = full
            else:
                bound = gw.sklearn_lower_bound(neg_entropy, conc, q, prior, logdet_psi)
            p["bound"], p["elbo"] = float(bound), float(full)
        return p

    def _refresh(self):
        p, d, dtype = self._params, self._d, self._fit_dtype
        U, mu, const = p["prec_chol"], p["means"], p["const"]
        k = mu.shape[0]
        if self._kind == "full":
            W = torch.empty((d + 1, k * d), dtype=_STAT, device=mu.device)
            W[:d] = U.permute(1, 0, 2).reshape(d, k * d)
            W[d] = -torch.einsum("kd,kde->ke", mu, U).reshape(k * d)
            W.mul_(math.sqrt(0.5))  # the squared norms come out halved
            self._coef = {"W": W.to(dtype), "const": const.to(dtype)}
        else:
            lam = U * U
            A = torch.empty((2 * d + 1, k), dtype=_STAT, device=mu.device)
            A[:d] = -0.5 * lam.T
            A[d : 2 * d] = (mu * lam).T
            A[2 * d] = const - 0.5 * (mu * mu * lam).sum(1)
            self._coef = {"At": A.T.contiguous().to(dtype)}

    def _initialize(self, Z, resp):
        self._elbo_trace = []
        self._params = self._params_from_stats(self._suff_stats(Z, resp, is_log=False))
        self._params["elbo_trace"] = self._elbo_trace
        self._refresh()

    def _em_iteration(self, Z, temperature):
        acc = self._new_stats(Z)
        total_norm = torch.zeros((), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            z = Z[sl]
            resp = self._scores(z)
            total_norm += tempered_responsibilities(resp, temperature, dim=self._kdim()).sum(dtype=_STAT)
            self._accumulate(acc, z, resp)
        stats = self._finish_stats(acc)
        # sum r log r = sum_nk r_nk s_nk - sum_n logsumexp_k s_nk with the E-step scores s_nk;
        # the first term from the statistics (no extra pass over the (N, K) responsibilities)
        neg_entropy = self._expected_scores(stats) - total_norm
        trace = self._elbo_trace
        self._params = self._params_from_stats(stats, neg_entropy=neg_entropy)
        trace.append(self._params["elbo"])
        self._params["elbo_trace"] = trace
        self._refresh()
        return self._params["bound"]

    def _expected_scores(self, stats):
        """``sum_nk r_nk s_nk`` for the current parameters' E-step scores ``s_nk = const_k
        - (x_n - m_k)^T P_k (x_n - m_k) / 2`` and the responsibilities behind ``stats``."""
        p, d = self._params, self._d
        U, m = p["prec_chol"], p["means"]
        if self._kind == "full":
            n, sx, sxx = stats[:, d, d], stats[:, :d, d], stats[:, :d, :d]
            P = U @ U.mT
            Pm = torch.einsum("kde,ke->kd", P, m)
            quad = (P * sxx).sum((1, 2)) - 2.0 * (Pm * sx).sum(1) + n * (Pm * m).sum(1)
        else:
            n, sx, sxx = stats[:, 2 * d], stats[:, d : 2 * d], stats[:, :d]
            P = U * U
            quad = (P * (sxx - 2.0 * m * sx + n[:, None] * m * m)).sum(1)
        return (p["const"] * n).sum() - 0.5 * quad.sum()

    def _estimate_log_weights(self):
        return gw.expected_log_weights(self._params["conc"], self._prior.weight_type)

    def _estimate_log_prob(self, z):
        return self._estimate_weighted_log_prob(z) - self._estimate_log_weights().to(z.dtype)

    def _publish(self):
        p, kind = self._params, self._kind
        np_dtype = np.float32 if self._fit_dtype == torch.float32 else np.float64
        as_np = lambda t: t.detach().to("cpu", _STAT).numpy().astype(np_dtype)  # noqa: E731
        U = p["prec_chol"]
        self.weights_ = as_np(gw.mixture_weights(p["conc"], self._prior.weight_type))
        self.means_ = as_np(p["means"] + self._shift)
        self.covariances_ = as_np(p["covariances"])
        self.precisions_cholesky_ = as_np(U)
        self.precisions_ = as_np(U @ U.mT if kind == "full" else U * U)
        conc = p["conc"]
        self.weight_concentration_ = (as_np(conc[0]), as_np(conc[1])) if conc.dim() == 2 else as_np(conc)
        self.mean_precision_ = as_np(p["beta"])
        self.degrees_of_freedom_ = as_np(p["nu"])
        prior = self._prior
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = as_np(prior.mean)
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        self.covariance_prior_ = as_np(prior.covariance)
        self.elbos_ = list(p.get("elbo_trace", []))
        self.elbo_ = self.elbos_[-1] if self.elbos_ else float("nan")

    def variational_parameters(self):
        """The fitted ``q`` as float64 tensors (data coordinates): ``conc`` ((K,) or (2, K)),
        ``beta`` (K,), ``means`` (K, D), ``nu`` (K,), ``psi`` ((K, D, D) or (K, D))."""
        self._check_is_fitted()
        p = self._params
        return {"conc": p["conc"].clone(), "beta": p["beta"].clone(), "means": p["means"] + self._shift,
                "nu": p["nu"].clone(), "psi": p["psi"].clone()}

    def compute_elbo(self, X, resp=None):
        """Full ELBO of the fitted ``q(theta)`` on ``X`` with responsibilities ``resp``
        ((N, K), rows summing to 1; default: the optimal ``q(z)`` given ``q(theta)``, i.e.
        :meth:`predict_proba`). Returns a float."""
        Z = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        if resp is None:
            _, log_resp = self._e_step(Z, 1.0)
            R = log_resp.exp_().to(_STAT)
        else:
            R = torch.as_tensor(np.asarray(resp.cpu() if isinstance(resp, torch.Tensor) else resp, dtype=np.float64),
                                device=Z.device)
            if tuple(R.shape) != (Z.shape[0], self._k):
                raise ValueError(f"resp should have shape ({Z.shape[0]}, {self._k}), got {tuple(R.shape)}")
            if not bool(torch.isfinite(R).all()) or bool((R < 0).any()) or \
                    not torch.allclose(R.sum(1), torch.ones_like(R[:, 0]), atol=1e-8):
                raise ValueError("resp must be finite, non-negative, with rows summing to 1")
        neg_entropy = torch.special.xlogy(R, R).sum()
        nk, xk, sk = self._moments(self._suff_stats(Z, R.to(Z.dtype), is_log=False))
        p = self._params
        q = {k: p[k] for k in ("beta", "means", "nu", "psi")}
        return float(gw.elbo(neg_entropy, nk, xk, sk, p["conc"], q, self._prior_c, logdet_psi=p["logdet_psi"]))

    def _n_parameters(self):  # pragma: no cover - information criteria are not defined for VB
        raise AttributeError("BayesianGaussianMixture has no bic/aic")

    def bic(self, X):
        raise AttributeError("bic is not defined for a variational Bayesian mixture; compare elbo_")

    def aic(self, X):
        raise AttributeError("aic is not defined for a variational Bayesian mixture; compare elbo_")
