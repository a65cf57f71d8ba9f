"""Gaussian mixtures fitted by (tempered) EM with closed-form steps, and their common base.

``GaussianMixture`` is maximum-likelihood EM: the E-step is the exact posterior
over the component of each point, the M-step is closed form. With a temperature
``T`` the E-step uses ``r_nk ∝ (pi_k N(x_n | mu_k, Sigma_k)) ** (1 / T)``; ``T -> 0``
is hard (classification) EM (``KMeans`` is hard EM with equal weights and a fixed
unit spherical variance).

``BaseGaussianMixture`` is what ``GaussianMixture`` and ``BayesianGaussianMixture``
share on top of the EM driver of :mod:`zoo.mixture._base`: the centred data design,
row chunks and scratch buffers, one fused pass per iteration that turns each chunk's
E-step scores into responsibilities and accumulates the sufficient statistics while
they are in cache, the initial responsibilities, the parameter snapshot and
:meth:`~BaseGaussianMixture.sample`. The arithmetic is the kernels of
:mod:`zoo.mixture._gaussian` (a few large matrix products per row chunk); a subclass
supplies the update from the statistics, the E-step constants and its weights.

Rows are processed in chunks, so extra memory is O(chunk x K x D) plus the
``(n_samples, K)`` responsibilities of the non-fused paths; parameters and statistics
are kept in float64 even when the data are float32, and the data are centred, so
float32 stays accurate.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from .._checks import check_positive_int
from . import _gaussian as kernels
from . import online
from .._estimator import as_param, check_shape, param_is_float32, to_numpy
from ._base import EM_PARAMETER_CONSTRAINTS, ConvergenceWarning, EMBase
from .kmeans import KMeans, kmeans_plusplus
from ._stream import INIT_SAMPLE_ROWS, Rows, gather_sample, open_rows, sample_rng, summarize, to_device
from .. import distributed

__all__ = ["BaseGaussianMixture", "GaussianMixture", "DegenerateComponentWarning", "INIT_PARAMS"]

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
_STAT = kernels.STAT  # dtype of parameters and accumulated statistics


class DegenerateComponentWarning(UserWarning):
    """A component collapsed (duplicate points, a single point, an empty
    component) or a covariance was not positive definite: it is held
    positive definite by ``reg_covar`` (or extra jitter) and stays finite."""


class BaseGaussianMixture(EMBase, BaseEstimator):
    """What the Gaussian mixtures share (see the module docstring); not used directly.

    A subclass stores at least the hyperparameters of :class:`GaussianMixture` that both
    estimators take (``n_components``, ``covariance_type``, ``tol``, ``reg_covar``, ``max_iter``,
    ``n_init``, ``init_params``, ``random_state``, ``warm_start``, ``device``, ``dtype``,
    ``chunk_size``, ``verbose``, ``verbose_interval``, ``progress_bar``), sets
    ``_covariance_types`` and supplies ``_initialize(Z, resp)``,
    ``_params_from_stats(stats)``, ``_update(stats, log_norm_sum, n_samples)`` (the M-step or
    variational update of the fused iteration; returns the bound), ``_score_constants()`` (the
    (K,) constants of the E-step scores), ``_estimate_log_weights()`` and
    ``_mixture_weights()`` (the published ``weights_``).

    ``self._params`` holds float64 tensors in the centred coordinates: at least ``means``
    (K, D), ``prec_chol`` (``U`` with precision ``U U^T``), ``covariances`` and ``jitter``.
    """

    _covariance_types = kernels.COVARIANCE_TYPES
    _parameter_constraints: dict = {
        **EM_PARAMETER_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(kernels.COVARIANCE_TYPES))],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "init_params": [StrOptions(set(INIT_PARAMS))],
        **online.ONLINE_PARAMETER_CONSTRAINTS,
    }
    _min_fit_samples = 2  # as scikit-learn's mixtures

    # ------------------------------------------------------------ checks
    def _check_parameters(self, X):
        k = self.n_components
        if X.shape[0] < k:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {k}, "
                             f"n_samples = {X.shape[0]}")
        self._kind, self._d, self._k = self.covariance_type, X.shape[1], k

    # ------------------------------------------------------------ data
    def _prepare_data(self, X, fitting):
        if fitting and not (self.warm_start and hasattr(self, "converged_")):
            # centring keeps the expansions accurate; the shift is rounded to the data
            # dtype so that data and (float64) parameters are shifted by the same amount
            self._shift = X.mean(0, dtype=_STAT).to(X.dtype).to(_STAT)
        Z = kernels.design(X, self._kind, self._shift)
        if fitting:
            self._ws = kernels.Workspace()
            # below this a component variance is rounding noise: the component collapsed
            x = kernels.design_x(Z, self._kind, X.shape[1])
            sq = float(torch.linalg.vector_norm(x, dtype=_STAT)) ** 2  # no (n, D) temporary
            self._var_floor = 100 * torch.finfo(X.dtype).eps * sq / x.numel()
            if self._kind == "tied":  # total scatter of the centred data, constant over the iterations
                self._scatter = self._gram(Z)
        return Z

    def _gram(self, Z):
        """``sum_n x_n x_n^T`` (D, D) of the centred data in a full/tied design (float64)."""
        d = self._d
        acc = torch.zeros((d, d), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            x = Z[sl, :d]
            acc += (x.T @ x).to(_STAT)
        return acc

    def _chunk_rows(self, n_samples):
        return kernels.chunk_rows(self._kind, self._k, self._d)

    # ------------------------------------------------------------ init
    def _user_initialised(self):
        """Whether user-given parameters make initial responsibilities unnecessary."""
        return False

    def _initial_resp(self, Z, random_state):
        if self._user_initialised():
            return None
        n, k = Z.shape[0], self._k
        X = kernels.design_x(Z, self._kind, self._d)
        method = self.init_params
        if method in ("random",):
            resp = torch.as_tensor(random_state.uniform(size=(n, k)), dtype=Z.dtype, device=Z.device)
            return resp / resp.sum(1, keepdim=True)
        if method == "kmeans":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                km = KMeans(k, n_init=1, random_state=random_state, device=Z.device, dtype=Z.dtype).fit(X)
            labels = torch.as_tensor(km.labels_, device=Z.device)
        else:
            if method == "k-means++":
                _, idx = kmeans_plusplus(X, k, random_state=random_state)
            else:  # random_from_data
                idx = random_state.choice(n, size=k, replace=False)
            resp = Z.new_zeros((n, k))
            resp[torch.as_tensor(idx, device=Z.device), torch.arange(k, device=Z.device)] = 1.0
            return resp
        resp = Z.new_zeros((n, k))
        resp.scatter_(1, labels.view(-1, 1), 1.0)
        return resp

    # ------------------------------------------------------------ statistics
    def _suff_stats(self, Z, R, *, is_log):
        """Statistics of ``(n, K)`` responsibilities ``R`` (or log responsibilities)."""
        return kernels.sufficient_statistics(Z, R, self._kind, self._chunks(Z.shape[0]), is_log=is_log, ws=self._ws)

    # ------------------------------------------------------------ E/M hooks
    def _refresh(self):
        """Rebuild the E-step coefficients from ``self._params``."""
        p = self._params
        self._coef = kernels.coefficients(self._kind, p["means"], p["prec_chol"], self._score_constants(),
                                          dtype=self._fit_dtype)

    def _scores(self, z):
        """``log pi_k + log N(x | k)`` (or CAVI's expectation) of a design chunk, laid out as
        :func:`zoo.mixture._gaussian.components_first`."""
        return kernels.log_prob_scores(z, self._coef, self._kind, self._ws)

    def _estimate_weighted_log_prob(self, z):
        return kernels.weighted_log_prob(z, self._coef, self._kind, self._ws)

    def _em_iteration(self, Z, temperature):
        # fused E+M: each chunk's responsibilities go straight into the statistics; in a data-parallel
        # run the statistics and the bound are summed over the ranks (one collective), so that every
        # rank runs the same update
        kind = self._kind
        acc = kernels.new_stats(kind, self._k, kernels.design_width(kind, self._d), self._fit_device)
        total = torch.zeros((), dtype=_STAT, device=self._fit_device)
        for z in self._design_blocks(Z):
            total += kernels.em_chunk(acc, z, self._coef, kind, temperature, self._ws)
        acc, total = distributed.all_reduce_sum(acc, total)
        return self._update(kernels.finish_stats(acc, kind, self._k), total, self._n_rows(Z))

    def _design_blocks(self, Z):
        """The design rows of a pass, a chunk at a time: slices of the in-memory design, or the
        blocks of a streamed fit's rows turned into designs as they are read."""
        if isinstance(Z, Rows):
            for x in Z.blocks():
                yield kernels.design(x, self._kind, self._shift)
        else:
            for sl in self._chunks(Z.shape[0]):
                yield Z[sl]

    @staticmethod
    def _n_rows(Z):
        return Z.n if isinstance(Z, Rows) else Z.shape[0]

    def _labels(self, data):
        if not isinstance(data, Rows):
            return super()._labels(data)
        return torch.cat([self._estimate_weighted_log_prob(z).argmax(dim=1) for z in self._design_blocks(data)])

    # ------------------------------------------------------------ streamed and data-parallel fits
    def _prepare_rows(self, X, warm):
        rows = open_rows(self, X, reset=not warm)
        rng = sample_rng(self.random_state)  # asked for a generator only if a shard exceeds the sample
        summary, sample = summarize(rows, sample_rows=INIT_SAMPLE_ROWS, rng=rng, min_rows=self._min_fit_samples)
        self._check_parameters(summary)
        dtype, n, d = self._fit_dtype, summary.n, summary.d
        self._n_rows_fitted = n
        if not warm:  # the shift rounded to the data dtype, as in memory
            self._shift = summary.mean.to(dtype).to(_STAT)
        off = summary.mean - self._shift
        scatter = summary.scatter + n * torch.outer(off, off)  # about the shift
        self._ws = kernels.Workspace()
        self._var_floor = 100 * torch.finfo(dtype).eps * float(torch.trace(scatter)) / (n * d)
        if self._kind == "tied":
            self._scatter = scatter
        rows.block = self.chunk_size or kernels.chunk_rows(self._kind, self._k, self._d)
        self._init_sample = None if warm else gather_sample(sample, rows.n_local, INIT_SAMPLE_ROWS, rng())
        return rows

    #: whether an initialisation from a sample scales its counts up to the whole data (the variational
    #: posterior's counts are absolute; maximum-likelihood weights are normalised anyway)
    _init_counts_absolute = False

    def _initialize_parameters(self, data, random_state):
        if not isinstance(data, Rows):
            return super()._initialize_parameters(data, random_state)
        params = None
        if distributed.is_main():  # rank 0 draws the initialisation from the sample of all ranks' rows
            with distributed.local():
                Zs = kernels.design(self._init_sample.to(self._fit_device), self._kind, self._shift)
                resp = self._initial_resp(Zs, random_state)
                if resp is not None and self._init_counts_absolute and data.n > Zs.shape[0]:
                    resp = resp * (data.n / Zs.shape[0])
                self._initialize(Zs, resp)
            params = self._params
        self._install(to_device(distributed.broadcast_object(params), self._fit_device))

    def _install(self, params):
        """Take ``params`` (broadcast by rank 0) as the current parameters."""
        self._params = params
        self._refresh()

    def _get_parameters(self):
        return self._params

    def _set_parameters(self, params):
        self._params = params
        self._refresh()
        self._publish()

    def _after_fit(self, Z, labels):
        self._ws.clear()
        p = self._params
        if "collapsed" in p and bool(p["collapsed"].any()):
            idx = torch.nonzero(p["collapsed"]).flatten().tolist()
            what = "the shared covariance" if self._kind == "tied" else f"component(s) {idx}"
            warnings.warn(
                f"{what} collapsed (duplicate points, a single point or an empty component): "
                f"the within-component variance is at most reg_covar={self.reg_covar}, which now "
                "sets the covariance. Consider fewer components, a larger reg_covar or rescaled data.",
                DegenerateComponentWarning,
                stacklevel=3,
            )
        if p.get("jitter"):
            warnings.warn(
                "a covariance was not positive definite and was regularised with extra jitter on "
                "its diagonal; increase reg_covar or check the data for duplicates/constant features.",
                DegenerateComponentWarning,
                stacklevel=3,
            )

    def _to_numpy(self, t):
        return to_numpy(t, self._fit_dtype)

    def _publish(self):
        """Public fitted attributes as NumPy arrays in the model dtype."""
        p, kind = self._params, self._kind
        U = p["prec_chol"]
        self.weights_ = self._to_numpy(self._mixture_weights())
        self.means_ = self._to_numpy(p["means"] + self._shift)
        self.covariances_ = self._to_numpy(p["covariances"])
        self.precisions_cholesky_ = self._to_numpy(U)
        self.precisions_ = self._to_numpy(U @ U.mT if kind in ("full", "tied") else U * U)

    # ------------------------------------------------------------ public extras
    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,), component labels
        """
        self._check_is_fitted()
        n = check_positive_int(n_samples, "n_samples")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n, self.weights_.astype(np.float64) / self.weights_.sum())
        cov = np.asarray(self.covariances_, dtype=np.float64)
        d, out = self.means_.shape[1], []
        for k, m in enumerate(counts):
            if self._kind == "full":
                L = np.linalg.cholesky(cov[k])
            elif self._kind == "tied":
                L = np.linalg.cholesky(cov)
            elif self._kind == "diag":
                L = np.diag(np.sqrt(cov[k]))
            else:
                L = np.sqrt(cov[k]) * np.eye(d)
            out.append(self.means_[k] + rng.standard_normal((m, d)) @ L.T)
        X = np.vstack(out).astype(self.means_.dtype)
        y = np.repeat(np.arange(len(counts)), counts)
        return X, y


class GaussianMixture(BaseGaussianMixture):
    """Gaussian mixture fitted by (tempered) EM; scikit-learn compatible.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components ``K``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Own full covariance per component, one shared full covariance, own
        diagonal covariance, or own single variance.
    tol : float, default=1e-3
        EM stops when the per-sample lower bound changes by less than ``tol``
        (``tol=0`` runs exactly ``max_iter`` iterations).
    reg_covar : float, default=1e-6
        Added to the covariance diagonals; keeps them positive definite.
    max_iter : int, default=100
        EM iterations per initialisation (0: initialise only).
    n_init : int, default=1
        Initialisations; the one with the best final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        Initial responsibilities: hard labels of :class:`KMeans`, one-hot at
        k-means++ seeds, uniform random, or one-hot at random data points.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Inverse covariances, shaped ``(K,)`` spherical, ``(D, D)`` tied,
        ``(K, D)`` diag, ``(K, D, D)`` full. When all three inits are given no
        responsibilities are computed at initialisation.
    random_state : int, RandomState or None, default=None
        Seeds initialisation and :meth:`sample`.
    warm_start : bool, default=False
        Re-fit from the current parameters (one initialisation, ``n_init``
        ignored) when already fitted.
    temperature : float >= 0, default=1.0
        E-step temperature: ``r_nk ∝ (pi_k N(x_n | k)) ** (1/T)``. 1 is EM, 0 is
        hard EM (arg-max assignments). The tracked bound is the tempered free
        energy ``mean_n T logsumexp_k(log(pi_k N(x_n | k)) / T)``.
    annealing : None, callable or tuple (T0, T_final, n_steps), default=None
        A temperature schedule overriding ``temperature``: a callable
        ``iteration -> T`` (iterations counted from 0 in each restart), or
        geometric cooling from ``T0`` to ``T_final`` over the first ``n_steps``
        iterations, then ``T_final``. Convergence is only declared between
        iterations at equal temperature. E.g. ``(10.0, 1.0, 30)`` is
        deterministic annealing ending in plain EM.
    device : str or torch.device, default=None
        Where to compute; ``None`` follows the input (CPU for NumPy input).
    dtype : None, 'float32', 'float64' (or the NumPy / torch type), default=None
        Precision of the computation and of the fitted attributes. ``None`` follows the
        input as scikit-learn does: float32 stays float32, float64 and every other type
        (integers, ...) become float64. Statistics are accumulated in float64.
    chunk_size : int, default=None
        Rows per chunk (``None``: sized so that the scratch buffers are a few MB).
    verbose : int, default=0
    verbose_interval : int, default=10
    progress_bar : bool, default=False
        Show a tqdm bar over the EM iterations.
    learning_decay : float in (0.5, 1], default=0.7
        :meth:`partial_fit`'s step sizes ``rho_t = (t + learning_offset) ** (-learning_decay)``
        (``t`` counts updates of a reference-size chunk from 1). Smaller values forget faster
        and average over fewer recent rows; 1 with ``learning_offset=0`` makes the statistics
        the plain mean over the stream, the least noisy when the stream is stationary and the
        start good, but a chunk read with poor parameters is never forgotten. 0.7 is
        scikit-learn's ``LatentDirichletAllocation`` default, inside Cappé and Moulines' range;
        ``benchmarks/online_schedule.py`` measures one pass over 1e5 rows at about 1e-4
        (relative held-out log-likelihood) behind batch EM with it, 1e-6 with 1 and offset 0.
    learning_offset : float >= 0, default=10.0
        Slows the first steps: the first update after the starting chunk takes
        ``rho_1 = 11 ** -0.7 ≈ 0.19``, so one unlucky chunk cannot undo the burn-in on the first;
        0 makes ``rho_1 = 1`` (the first update replaces the statistics).

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, D)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shaped as ``precisions_init``. ``precisions_cholesky_`` is the upper
        triangular ``U`` with ``precision = U U^T`` (scikit-learn's convention).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
        The bound after every iteration of the kept run (at iteration ``i`` it is
        the tempered log-likelihood of the parameters of iteration ``i - 1``).
    temperature_ : float
        Temperature of the last iteration, used by :meth:`predict_proba`.
    n_features_in_ : int
    n_samples_seen_, step_size_ : int, float
        After :meth:`partial_fit`: rows seen since the stream started, and the step size of the
        last update (1 after the starting call).

    Notes
    -----
    Fitted arrays are NumPy in the model dtype. Degenerate components (one
    point, duplicates) are held positive definite by ``reg_covar`` (extra jitter
    if that is not enough) with a :class:`DegenerateComponentWarning`; results
    stay finite.

    Streaming: :meth:`partial_fit` is online EM (Cappé & Moulines 2009) for data seen once,
    a chunk at a time; the first call fits its chunk (the burn-in), each later one moves a
    running average of per-row sufficient statistics towards the chunk's and takes the M-step.
    Chunks may differ in size: rows, not calls, are counted (:mod:`zoo.mixture.online`).
    After it, ``n_iter_`` counts the calls, ``converged_`` is False and ``lower_bound_`` (with
    ``lower_bounds_``, one per call) is the mean log-likelihood of the last chunk under the
    parameters each row met.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, means_init=None, precisions_init=None, random_state=None,
                 warm_start=False, temperature=1.0, annealing=None, device=None, dtype=None, chunk_size=None,
                 verbose=0, verbose_interval=10, progress_bar=False, learning_decay=0.7, learning_offset=10.0):
        self._store_hyperparameters(locals())

    # ------------------------------------------------------------ checks
    def _check_parameters(self, X):
        super()._check_parameters(X)
        k, d, dev, kind = self._k, self._d, X.device, self._kind
        self._w_init = self._m_init = self._p_init = None
        single = X.dtype == torch.float32
        if self.weights_init is not None:  # scikit-learn's checks and messages
            w = as_param(self.weights_init, "weights_init", dev)
            check_shape(w, (k,), "weights")
            if bool((w < 0).any()) or bool((w > 1).any()):
                raise ValueError("The parameter 'weights' should be in the range [0, 1], but got max value "
                                 f"{float(w.max()):.5f}, min value {float(w.min()):.5f}")
            atol = 1e-6 if single or param_is_float32(self.weights_init) else 1e-8
            if abs(1.0 - float(w.sum())) > atol:
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = "
                                 f"{float(w.sum()):.5f}")
            self._w_init = w / w.sum()
        if self.means_init is not None:
            m = as_param(self.means_init, "means_init", dev)
            check_shape(m, (k, d), "means")
            self._m_init = m
        if self.precisions_init is not None:
            p = as_param(self.precisions_init, "precisions_init", dev)
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[kind]
            check_shape(p, shape, f"{kind} precision")
            if kind in ("full", "tied"):
                single = single or param_is_float32(self.precisions_init)
                symmetric = torch.allclose(p, p.mT, rtol=1e-5, atol=1e-6 if single else 1e-8)
                _, info = torch.linalg.cholesky_ex(p)
                if not symmetric or bool((info != 0).any()):
                    raise ValueError(f"'{kind} precision' should be symmetric, positive-definite")
            elif bool((p <= 0).any()):
                raise ValueError(f"'{kind} precision' should be positive")
            self._p_init = p

    # ------------------------------------------------------------ init
    def _user_initialised(self):
        return self._w_init is not None and self._m_init is not None and self._p_init is not None

    def _initialize(self, Z, resp):
        p = {}
        if resp is not None:
            p = self._params_from_stats(self._suff_stats(Z, resp, is_log=False), weights_norm=Z.shape[0])
        if self._w_init is not None:
            p["weights"] = self._w_init.clone()
        if self._m_init is not None:
            p["means"] = self._m_init - self._shift
        if self._p_init is not None:
            p.update(self._from_precisions(self._p_init))
        self._params = p
        self._refresh()

    def _from_precisions(self, prec):
        if self._kind in ("full", "tied"):
            U = kernels.precision_cholesky_from_precision(prec)
            eye = torch.eye(self._d, dtype=_STAT, device=prec.device)
            V = torch.linalg.solve_triangular(U, eye.expand_as(U), upper=True)  # U^-1
            cov = V.mT @ V
        else:
            U, cov = prec.sqrt(), 1.0 / prec
        collapsed = torch.zeros(self._k, dtype=torch.bool, device=prec.device)
        return {"covariances": cov, "prec_chol": U, "collapsed": collapsed, "jitter": False}

    # ------------------------------------------------------------ the M-step
    def _params_from_stats(self, stats, *, weights_norm=None):
        kind, reg = self._kind, float(self.reg_covar)
        tiny = 10 * torch.finfo(self._fit_dtype).eps  # as scikit-learn: no 0/0 for empty components
        nk, means, cov, raw = kernels.estimate_gaussian_parameters(
            stats, kind, reg, tiny, scatter=self._scatter if kind == "tied" else None)
        out = {
            "weights": nk / (weights_norm if weights_norm is not None else nk.sum()),
            "means": means,
            # the data's own variance is no larger than the regulariser (or rounding noise)
            "collapsed": raw <= max(reg, self._var_floor),
        }
        out["covariances"], out["prec_chol"], out["jitter"] = kernels.compute_precision_cholesky(cov, kind, reg)
        return out

    def _update(self, stats, log_norm_sum, n_samples):
        self._params = self._params_from_stats(stats)
        self._refresh()
        return float(log_norm_sum) / n_samples

    def _score_constants(self):
        p = self._params
        return kernels.log_gaussian_const(p["prec_chol"], self._kind, self._d) + torch.log(p["weights"])

    def _estimate_log_weights(self):
        return torch.log(self._params["weights"])

    def _mixture_weights(self):
        return self._params["weights"]

    # ------------------------------------------------------------ model selection
    def _n_parameters(self):
        k, d = self.means_.shape
        cov = {"full": k * d * (d + 1) / 2, "diag": k * d, "tied": d * (d + 1) / 2, "spherical": k}[self._kind]
        return int(cov + k * d + k - 1)

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = self._validate_data(X, reset=False).shape[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better)."""
        n = self._validate_data(X, reset=False).shape[0]
        return -2.0 * self.score(X) * n + 2 * self._n_parameters()

    # ------------------------------------------------------------ streaming
    def partial_fit(self, X, y=None):
        """Online EM on one chunk of a stream (:mod:`zoo.mixture.online`).

        The first call on an unfitted estimator is :meth:`fit` on ``X`` (initialisation and a
        burn-in; the data shift is fixed there); each later call cuts ``X`` into blocks of at
        most the first chunk's size and, per block, runs the E-step at the current parameters,
        moves the running statistics ``s <- (1 - rho) s + rho s_hat`` and takes the M-step.
        After :meth:`fit`, it continues from the fitted parameters.

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
        return online.online_em_update(self, X)
