"""Variational Bayesian Gaussian mixture (CAVI), scikit-learn compatible.

:class:`BayesianGaussianMixture` is the conjugate model of :mod:`zoo.mixture.gauss_wishart`
(Dirichlet or truncated stick-breaking weights, Gauss-Wishart components) fitted by
coordinate ascent on the ELBO through the EM driver of :mod:`zoo.mixture._base`. It is a
sibling of :class:`~zoo.mixture.GaussianMixture` over :class:`~zoo.mixture.BaseGaussianMixture`:
the E-step and the statistics are the same (one GEMM per row chunk for all components, fused
with the accumulation of the sufficient statistics); only the update from the statistics, the
E-step constants and the objective differ. There are no ``bic``/``aic``: compare ``elbo_``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from . import _gaussian as kernels
from . import gauss_wishart as gw
from . import online
from .gaussian_mixture import BaseGaussianMixture

__all__ = ["BayesianGaussianMixture"]

_STAT = kernels.STAT


class BayesianGaussianMixture(BaseGaussianMixture):
    """Variational Bayesian Gaussian mixture fitted by CAVI (scikit-learn's surface).

    Parameters
    ----------
    n_components : int, default=1
        Number of components ``K`` (the truncation level under the Dirichlet process).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        scikit-learn's: a Wishart per component with a full, diagonal or ``I/psi_k`` scale, or
        one Wishart factor ``q(Lambda)`` shared by all components (tied; see
        :mod:`zoo.mixture.gauss_wishart`).
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
    covariance_prior : array-like (D, D) full and tied / (D,) diag / float spherical, default=None
        (the data's covariance / variances / mean variance, ``ddof=1``). The inverse Wishart
        scale ``Psi0 = W0^-1`` (spherical: ``psi0 I``).
    diag_family : {'wishart', 'gamma'}, default='wishart'
        Family of the ``diag`` precisions (see :mod:`zoo.mixture.gauss_wishart`): scikit-learn's
        diagonal-scale Wishart, or independent per-dimension Gammas.
    device, dtype, chunk_size, progress_bar : as :class:`~zoo.mixture.GaussianMixture`.
    learning_decay, learning_offset : float, default=0.7, 10.0
        :meth:`partial_fit`'s step sizes ``rho_t = (t + learning_offset) ** (-learning_decay)``, as
        :class:`~zoo.mixture.GaussianMixture` (decay in (0.5, 1], offset >= 0).
    total_samples : float > 0, default=1e6
        The size ``N`` of the data set :meth:`partial_fit` infers from: a chunk of ``m`` rows
        stands for ``N / m`` copies of itself in the natural-gradient step (scikit-learn's
        ``LatentDirichletAllocation`` name and default). Set it to the length of the stream,
        or a posterior of the wrong certainty results; read when the stream starts.

    Attributes
    ----------
    weights_ : (K,) posterior-mean weights.
    means_ : (K, D) ``m_k``.
    covariances_ : ``Psi_k / nu_k`` (the inverse of ``E[Lambda_k]``): (K, D, D) full, (D, D) tied,
        (K, D) diag, (K,) spherical.
    precisions_, precisions_cholesky_ : ``E[Lambda_k]`` and its upper Cholesky factor, shaped
        as ``covariances_`` (spherical: ``lambda_k`` and ``sqrt(lambda_k)``).
    weight_concentration_ : (K,) Dirichlet ``alpha``, or a tuple ``(a, b)`` of (K,) Beta
        parameters of the sticks.
    mean_precision_ : (K,) ``beta_k``.  degrees_of_freedom_ : (K,) ``nu_k`` (tied: a scalar).
    covariance_prior_ : as ``covariance_prior`` (spherical: a scalar).
    lower_bound_, lower_bounds_ : scikit-learn's bound (constants dropped) of the kept run.
    elbo_, elbos_ : the full ELBO (every constant) after each iteration of the kept run.
    converged_, n_iter_, n_features_in_ :
    n_samples_seen_, step_size_ : after :meth:`partial_fit`, as :class:`~zoo.mixture.GaussianMixture`.

    Notes
    -----
    Streaming: :meth:`partial_fit` is stochastic variational inference (Hoffman, Blei, Wang &
    Paisley 2013): the local step is the E-step under the current ``q``, the global step the
    convex combination ``lambda <- (1 - rho) lambda + rho lambda_hat`` of the natural parameters
    of ``q(pi) q(mu, Lambda)``, with ``lambda_hat`` the CAVI update if all ``total_samples`` rows
    looked like the chunk (:mod:`zoo.mixture.online`). The first call runs CAVI on its chunk (the
    prior's data-dependent defaults come from that chunk) and rescales the result to
    ``total_samples`` rows. After it, ``n_iter_`` counts the calls, ``converged_`` is False, and
    ``lower_bound_`` and ``elbo_`` (with ``lower_bounds_`` and ``elbos_``, one per call) are a
    minibatch estimate of the full ELBO of ``q`` on ``total_samples`` rows.
    """

    _parameter_constraints: dict = {**BaseGaussianMixture._parameter_constraints, **gw.PRIOR_PARAMETER_CONSTRAINTS,
                                    **online.SVI_PARAMETER_CONSTRAINTS}

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, diag_family="wishart", random_state=None,
                 warm_start=False, device=None, dtype=None, chunk_size=None, verbose=0, verbose_interval=10,
                 progress_bar=False, learning_decay=0.7, learning_offset=10.0, total_samples=1e6):
        self._store_hyperparameters(locals())

    # ------------------------------------------------------------ checks
    def _check_parameters(self, X):
        super()._check_parameters(X)
        self._prior = gw.make_prior(
            X, covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior, mean_prior=self.mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior, covariance_prior=self.covariance_prior,
            n_components=self._k, diag_family=self.diag_family)
        self._gamma = self.covariance_type == "diag" and self.diag_family == "gamma"

    def _prepare_data(self, X, fitting):
        Z = super()._prepare_data(X, fitting)
        if fitting:
            # the data are centred by the driver's shift: so is the prior mean
            self._prior_c = dataclasses.replace(self._prior, mean=self._prior.mean - self._shift)
        return Z

    def _prepare_rows(self, X, warm):
        rows = super()._prepare_rows(X, warm)
        self._prior_c = dataclasses.replace(self._prior, mean=self._prior.mean - self._shift)
        return rows

    _init_counts_absolute = True

    def _install(self, params):
        self._elbo_trace = params["elbo_trace"]  # the trace the updates append to
        super()._install(params)

    # ------------------------------------------------------------ updates
    def _moments(self, stats, scatter=None):
        """Soft counts (K,), means (K, D) and covariances (no regulariser) from the statistics
        (tied: pooled, from ``scatter``, by default the training data's)."""
        tiny = 10 * torch.finfo(self._fit_dtype).eps  # as scikit-learn: no 0/0 for empty components
        if self._kind == "tied" and scatter is None:
            scatter = self._scatter
        nk, xk, sk = kernels.estimate_moments(stats, self._kind, tiny, scatter)
        if self._kind in ("diag", "spherical"):
            sk = sk.clamp_(min=0.0)
        return nk, xk, sk

    def _params_from_stats(self, stats, *, neg_entropy=None):
        prior, kind, reg = self._prior_c, self._kind, float(self.reg_covar)
        nk, xk, sk = self._moments(stats)
        conc = gw.weight_update(nk, prior)
        q = gw.component_update(nk, xk, kernels.add_reg_covar(sk, kind, reg), prior)
        nu, psi = q["nu"], q["psi"]
        cov = psi / nu.reshape(nu.shape + (1,) * (psi.dim() - nu.dim()))  # nu per component, or shared
        cov, U, jitter = kernels.compute_precision_cholesky(cov, kind, reg)
        # log|Psi| = D log nu - log|E[Lambda]| (of the factor used in the E-step, as scikit-learn)
        logdet_psi = self._d * torch.log(nu) - 2.0 * kernels.log_det_cholesky(U, kind, self._d)
        precision = U @ U.mT if kind in ("full", "tied") else U * U
        p = {"conc": conc, **q, "covariances": cov, "prec_chol": U, "jitter": jitter, "logdet_psi": logdet_psi}
        p["const"] = gw.estep_constants(conc, q, prior, logdet_psi)
        if neg_entropy is not None:
            full = gw.elbo(neg_entropy, nk, xk, sk, conc, q, prior, precision=precision, logdet_psi=logdet_psi)
            if self._gamma:  # scikit-learn's bound has no per-dimension Gamma form
                bound = full
            else:
                bound = gw.sklearn_lower_bound(neg_entropy, conc, q, prior, logdet_psi)
            p["bound"], p["elbo"] = float(bound), float(full)
        return p

    def _initialize(self, Z, resp):
        self._elbo_trace = []
        self._params = self._params_from_stats(self._suff_stats(Z, resp, is_log=False))
        self._params["elbo_trace"] = self._elbo_trace
        self._refresh()

    def _update(self, stats, log_norm_sum, n_samples):
        # sum r log r = sum_nk r_nk s_nk - sum_n logsumexp_k s_nk with the E-step scores s_nk;
        # the first term from the statistics (no extra pass over the (N, K) responsibilities)
        p = self._params
        neg_entropy = kernels.expected_scores(stats, self._kind, p["means"], p["prec_chol"], p["const"],
                                              scatter=self._scatter if self._kind == "tied" else None) - log_norm_sum
        trace = self._elbo_trace
        self._params = self._params_from_stats(stats, neg_entropy=neg_entropy)
        trace.append(self._params["elbo"])
        self._params["elbo_trace"] = trace
        self._refresh()
        return self._params["bound"]

    def _score_constants(self):
        return self._params["const"]

    def _estimate_log_weights(self):
        return gw.expected_log_weights(self._params["conc"], self._prior.weight_type)

    def _mixture_weights(self):
        return gw.mixture_weights(self._params["conc"], self._prior.weight_type)

    def _publish(self):
        super()._publish()
        p, as_np = self._params, self._to_numpy
        conc = p["conc"]
        self.weight_concentration_ = (as_np(conc[0]), as_np(conc[1])) if conc.dim() == 2 else as_np(conc)
        self.mean_precision_ = as_np(p["beta"])
        # [()]: a 0-d array becomes a NumPy scalar (tied nu_, spherical psi0), as scikit-learn's
        self.degrees_of_freedom_ = as_np(p["nu"])[()]
        prior = self._prior
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = as_np(prior.mean)
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        self.covariance_prior_ = as_np(prior.covariance)[()]
        self.elbos_ = list(p.get("elbo_trace", []))
        self.elbo_ = self.elbos_[-1] if self.elbos_ else float("nan")

    def variational_parameters(self):
        """The fitted ``q`` as float64 tensors (data coordinates): ``conc`` ((K,) or (2, K)),
        ``beta`` (K,), ``means`` (K, D), ``nu`` ((K,); tied: 0-d), ``psi`` (``W^-1``: (K, D, D)
        full, (D, D) tied, (K, D) diag, (K,) spherical with ``W_k = I/psi_k``)."""
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
        scatter = self._gram(Z) if self._kind == "tied" else None  # of X, not of the training data
        nk, xk, sk = self._moments(self._suff_stats(Z, R.to(Z.dtype), is_log=False), scatter)
        p = self._params
        q = {k: p[k] for k in ("beta", "means", "nu", "psi")}
        return float(gw.elbo(neg_entropy, nk, xk, sk, p["conc"], q, self._prior_c, logdet_psi=p["logdet_psi"]))

    # ------------------------------------------------------------ streaming
    def partial_fit(self, X, y=None):
        """Stochastic variational inference on one chunk of a stream (:mod:`zoo.mixture.online`).

        The first call on an unfitted estimator is :meth:`fit` on ``X`` (initialisation, the
        prior's defaults and the data shift come from it), its statistics rescaled to
        ``total_samples`` rows; each later call cuts ``X`` into blocks of at most the first
        chunk's size and, per block, computes the responsibilities under the current ``q`` and
        takes the step ``lambda <- (1 - rho) lambda + rho lambda_hat`` on the natural parameters.
        After :meth:`fit`, it continues from the fitted ``q``.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Any number of rows. The first chunk's fit picks the optimum the stream then stays
            near (later steps refine it, they do not split merged components): give it enough
            rows per component, and ``n_init > 1`` where one start can go wrong.
        y : ignored

        Returns
        -------
        self
        """
        return online.svi_update(self, X)
