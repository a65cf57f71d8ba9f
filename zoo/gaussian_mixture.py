"""Gaussian mixtures and k-means fitted by (tempered) EM with closed-form steps.

``GaussianMixture`` is maximum-likelihood EM: the E-step is the exact posterior
over the component of each point, the M-step is closed form. With a temperature
``T`` the E-step uses ``r_nk ∝ (pi_k N(x_n | mu_k, Sigma_k)) ** (1 / T)``; ``T -> 0``
is hard (classification) EM, and ``KMeans`` is hard EM with equal weights and a
fixed unit spherical variance (Lloyd's algorithm). Both use the EM driver of
:mod:`zoo.mixture._base` and the same distance code.

Speed by design (everything is a few large matrix products per row chunk):

* The data are centred once and turned into a per-sample *design* ``Z`` whose
  rows are linear in everything the model needs: ``[x, 1]`` for full/tied,
  ``[x*x, x, 1]`` for diag, ``[|x|^2, x, 1]`` for spherical/k-means.
* diag/spherical E-step: ``log pi_k + log N(x | k) = Z @ A`` for a
  ``(P, K)`` coefficient matrix ``A`` (the ``|x|^2 - 2 x.mu + |mu|^2``
  expansion with the precisions, log-determinants and log-weights folded in).
* full E-step: one GEMM ``[x, 1] @ [[U_1 ... U_K], [-mu_1 U_1 ... -mu_K U_K]]``
  (``(D+1) x K*D``) gives ``(x - mu_k) U_k`` for every component at once, where
  ``U_k`` is the Cholesky factor of the precision; the Mahalanobis term is its
  squared norm per ``D``-block. No Python loop over components.
* M-step: the sufficient statistics ``sum_n r_nk z_n z_n^T`` (full: one GEMM
  ``Z^T (R ⊙ Z)`` over stacked components) or ``R^T Z`` (other types).
* Rows are processed in chunks, so extra memory is O(chunk x K x D) plus the
  ``(n_samples, K)`` responsibilities; parameters and statistics are kept in
  float64 even when the data are float32, and the data are centred, so float32
  stays accurate.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from zoo.mixture._base import ConvergenceWarning, EMBase, exp_floor, tempered_responsibilities
from zoo._checks import as_data_tensor, check_choice, check_n_components, check_positive_int

__all__ = ["GaussianMixture", "KMeans", "DegenerateComponentWarning", "kmeans_plusplus"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
_LOG_2PI = math.log(2.0 * math.pi)
_STAT = torch.float64  # dtype of parameters and accumulated statistics
# Chunk sizes: big enough that each op is a large parallel region (under CPU
# contention every OpenMP fork/join can cost a time slice), small enough that
# the scratch stays tens of MB whatever n_samples.
_FULL_BLOCK = 1 << 20  # elements of the (chunk, K, D+1) buffer (larger spills the caches)
_SMALL_BLOCK = 1 << 20  # elements of the (K, chunk) blocks of the other cases


class DegenerateComponentWarning(UserWarning):
    """A component collapsed (duplicate points, a single point, an empty
    component) or a covariance was not positive definite: it is held
    positive definite by ``reg_covar`` (or extra jitter) and stays finite."""


# ----------------------------------------------------------------- designs
def _design(X: torch.Tensor, kind: str, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample design rows (see module doc) of ``X - shift`` for ``X`` (n, D).

    Written in place into one ``(n, P)`` allocation (no ``(n, D)`` temporaries).
    """
    n, d = X.shape
    p = {"full": d + 1, "tied": d + 1, "diag": 2 * d + 1}.get(kind, d + 2)
    Z = X.new_empty((n, p))
    xc = _design_x(Z, kind, d)
    if shift is None:
        xc.copy_(X)
    else:
        torch.sub(X, shift.to(X.dtype), out=xc)
    Z[:, -1] = 1.0
    if kind == "diag":
        torch.mul(xc, xc, out=Z[:, :d])
    elif kind not in ("full", "tied"):  # spherical and k-means: |x|^2 in column 0
        step = max(1, (1 << 20) // d)
        for s in range(0, n, step):
            x = xc[s : s + step]
            torch.sum(x * x, dim=1, out=Z[s : s + step, 0])
    return Z


def _design_x(Z: torch.Tensor, kind: str, d: int) -> torch.Tensor:
    """The centred data ``(n, D)`` inside a design (a view)."""
    if kind in ("full", "tied"):
        return Z[:, :d]
    if kind == "diag":
        return Z[:, d : 2 * d]
    return Z[:, 1 : d + 1]


def _spherical_coef(means: torch.Tensor, precisions: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """``(D+2, K)`` matrix ``A`` with ``[|x|^2, x, 1] @ A = const_k - lam_k |x - mu_k|^2 / 2``.

    ``precisions`` (K,) are the ``lam_k``; this is the distance code shared by the
    spherical Gaussian mixture, k-means and k-means++.
    """
    k, d = means.shape
    A = means.new_empty((d + 2, k))
    A[0] = -0.5 * precisions
    A[1 : d + 1] = (means * precisions[:, None]).T
    A[d + 1] = const - 0.5 * precisions * (means * means).sum(1)
    return A


def _spherical_scores(Z: torch.Tensor, means, precisions, const) -> torch.Tensor:
    """``(n, K)`` scores ``const_k - lam_k |x_n - mu_k|^2 / 2`` from a spherical design."""
    return Z @ _spherical_coef(means, precisions, const).to(Z.dtype)


def _sq_distances(Z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``(n, K)`` squared Euclidean distances (clamped at 0) from a spherical design."""
    ones = centers.new_ones(centers.shape[0])
    return _spherical_scores(Z, centers, ones, torch.zeros_like(ones)).mul_(-2.0).clamp_(min=0.0)


# ------------------------------------------------------------- workspace
class _Workspace:
    """Reused scratch buffers: fresh large allocations per chunk cost page faults."""

    def __init__(self):
        self._bufs = {}

    def get(self, name, shape, like: torch.Tensor) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(numel, dtype=like.dtype, device=like.device)
            self._bufs[name] = buf
        return buf[:numel].view(shape)

    def clear(self):
        self._bufs.clear()


# ---------------------------------------------------------------- k-means++
def kmeans_plusplus(X, n_clusters, *, random_state=None, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Parameters
    ----------
    X : tensor or array of shape (n_samples, n_features)
    n_clusters : int
    random_state : None, int or numpy RandomState
    n_local_trials : int, default ``2 + int(log(n_clusters))``
        Candidates drawn per centre; the one lowering the potential most is kept.

    Returns
    -------
    centers : tensor of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
    """
    X = as_data_tensor(X, name="X")
    n, d = X.shape
    check_n_components(n_clusters, n, name="n_clusters")
    rng = check_random_state(random_state)
    trials = n_local_trials if n_local_trials is not None else 2 + int(np.log(n_clusters))
    Z = _design(X, "spherical", X.mean(0))
    Xc = _design_x(Z, "spherical", d)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.randint(n)
    closest = _sq_distances(Z, Xc[indices[:1]].to(_STAT))[:, 0].to(_STAT)
    potential = float(closest.sum())
    for c in range(1, n_clusters):
        # sample candidates with probability ∝ squared distance to the chosen centres
        draws = rng.uniform(size=trials) * potential
        cum = torch.cumsum(closest, 0).cpu().numpy()
        cand = np.minimum(np.searchsorted(cum, draws), n - 1)
        dist = _sq_distances(Z, Xc[torch.as_tensor(cand, device=X.device)].to(_STAT)).to(_STAT)
        torch.minimum(dist, closest[:, None], out=dist)
        pots = dist.sum(0)
        best = int(torch.argmin(pots))
        indices[c], potential, closest = cand[best], float(pots[best]), dist[:, best].contiguous()
    return X[torch.as_tensor(indices, device=X.device)].clone(), indices


# ------------------------------------------------------------ the mixture
def _as_param(value, name, device):
    try:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
        t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinity")
    return t.to(device=device)


def _check_shape(t, shape, name):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} should have shape {tuple(shape)}, got {tuple(t.shape)}")


class GaussianMixture(EMBase, BaseEstimator):
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
    dtype : torch.float64 or torch.float32, default=torch.float64
        Dtype of the data in the heavy products (``None``: follow a floating
        input). Parameters and statistics are always accumulated in float64.
    chunk_size : int, default=None
        Rows per chunk (``None``: sized so that the scratch buffers are a few MB).
    verbose : int, default=0
    verbose_interval : int, default=10
    progress_bar : bool, default=False
        Show a tqdm bar over the EM iterations.

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

    Notes
    -----
    Fitted arrays are NumPy in the model dtype. Degenerate components (one
    point, duplicates) are held positive definite by ``reg_covar`` (extra jitter
    if that is not enough) with a :class:`DegenerateComponentWarning`; results
    stay finite.
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
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        temperature=1.0,
        annealing=None,
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
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.temperature = temperature
        self.annealing = annealing
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.progress_bar = progress_bar

    # ------------------------------------------------------------ checks
    def _check_parameters(self, X):
        check_choice(self.covariance_type, COVARIANCE_TYPES, "covariance_type")
        check_choice(self.init_params, INIT_PARAMS, "init_params")
        k = check_positive_int(self.n_components, "n_components")
        check_n_components(k, X.shape[0], name="n_components")
        reg = self.reg_covar
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not (reg >= 0 and math.isfinite(reg)):
            raise ValueError(f"reg_covar must be a finite number >= 0, got {reg!r}")
        d, dev, kind = X.shape[1], X.device, self.covariance_type
        self._kind, self._d, self._k = kind, d, k
        self._w_init = self._m_init = self._p_init = None
        if self.weights_init is not None:
            w = _as_param(self.weights_init, "weights_init", dev)
            _check_shape(w, (k,), "weights_init")
            if bool((w < 0).any()) or bool((w > 1).any()):
                lo, hi = float(w.min()), float(w.max())
                raise ValueError(f"weights_init must lie in [0, 1], got min {lo:.5g}, max {hi:.5g}")
            if abs(float(w.sum()) - 1.0) > 1e-8:
                raise ValueError(f"weights_init must sum to 1, got {float(w.sum()):.10g}")
            self._w_init = w
        if self.means_init is not None:
            m = _as_param(self.means_init, "means_init", dev)
            _check_shape(m, (k, d), "means_init")
            self._m_init = m
        if self.precisions_init is not None:
            p = _as_param(self.precisions_init, "precisions_init", dev)
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[kind]
            _check_shape(p, shape, f"precisions_init ({kind!r})")
            if kind in ("full", "tied"):
                if not torch.allclose(p, p.mT, rtol=1e-5, atol=1e-8):
                    raise ValueError(f"precisions_init ({kind!r}) must be symmetric")
                _, info = torch.linalg.cholesky_ex(p)
                if bool((info != 0).any()):
                    raise ValueError(f"precisions_init ({kind!r}) must be positive definite")
            elif bool((p <= 0).any()):
                raise ValueError(f"precisions_init ({kind!r}) must be positive")
            self._p_init = p

    # ------------------------------------------------------------ data
    def _prepare_data(self, X, fitting):
        if fitting and not (self.warm_start and hasattr(self, "converged_")):
            # centring keeps the expansions accurate; the shift is rounded to the data
            # dtype so that data and (float64) parameters are shifted by the same amount
            self._shift = X.mean(0, dtype=_STAT).to(X.dtype).to(_STAT)
        Z = _design(X, self._kind, self._shift)
        if fitting:
            self._ws = _Workspace()
            # below this a component variance is rounding noise: the component collapsed
            x = _design_x(Z, self._kind, X.shape[1])
            sq = float(torch.linalg.vector_norm(x, dtype=_STAT)) ** 2  # no (n, D) temporary
            self._var_floor = 100 * torch.finfo(X.dtype).eps * sq / x.numel()
            if self._kind == "tied":  # total scatter of the centred data, constant over EM
                self._scatter = self._gram(Z)
        return Z

    def _gram(self, Z):
        d = self._d
        acc = torch.zeros((d, d), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            x = Z[sl, :d]
            acc += (x.T @ x).to(_STAT)
        return acc

    def _chunk_rows(self, n_samples):
        k, d = self._k, self._d
        if self._kind == "full":
            return max(256, _FULL_BLOCK // (k * (d + 1)))
        return max(1024, _SMALL_BLOCK // k)

    # ------------------------------------------------------------ init
    def _initial_resp(self, Z, random_state):
        if self._w_init is not None and self._m_init is not None and self._p_init is not None:
            return None
        n, k = Z.shape[0], self._k
        X = _design_x(Z, self._kind, self._d)
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

    def _initialize(self, Z, resp):
        n, kind = Z.shape[0], self._kind
        p = {}
        if resp is not None:
            p = self._params_from_stats(self._suff_stats(Z, resp, is_log=False), weights_norm=n)
        if self._w_init is not None:
            p["weights"] = self._w_init.clone()
        if self._m_init is not None:
            p["means"] = self._m_init - self._shift
        if self._p_init is not None:
            p.update(self._from_precisions(self._p_init))
        self._params = p
        self._refresh()

    def _from_precisions(self, prec):
        kind = self._kind
        if kind in ("full", "tied"):
            # U upper triangular with prec = U U^T: Cholesky of the index-reversed matrix
            U = torch.linalg.cholesky(prec.flip(-1, -2)).flip(-1, -2)
            eye = torch.eye(self._d, dtype=_STAT, device=prec.device)
            V = torch.linalg.solve_triangular(U, eye.expand_as(U), upper=True)  # U^-1
            cov = V.mT @ V
        else:
            U, cov = prec.sqrt(), 1.0 / prec
        collapsed = torch.zeros(self._k, dtype=torch.bool, device=prec.device)
        return {"covariances": cov, "prec_chol": U, "collapsed": collapsed, "jitter": False}

    # ------------------------------------------------------------ statistics
    # Responsibilities of a chunk are laid out (K, chunk) -- components along
    # dim 0 -- except for 'full': the narrow (chunk x P) @ (P x K) products run
    # markedly faster as (K x P) @ (P x chunk), while the full case works on
    # (chunk, K) with its wide stacked-component products.
    def _kdim(self):
        return 1 if self._kind == "full" else 0

    def _new_stats(self, Z):
        k, p = self._k, Z.shape[1]
        return torch.zeros((p, k * p) if self._kind == "full" else (k, p), dtype=_STAT, device=Z.device)

    def _accumulate(self, acc, z, resp):
        """Add a chunk's statistics: full ``sum_n r_nk z_n z_n^T`` as one GEMM
        ``z^T (R ⊙ z)`` over the stacked components, else ``R^T z``."""
        if self._kind == "full":
            c, k, p = z.shape[0], self._k, z.shape[1]
            rz = self._ws.get("block", (c, k, p), z)
            torch.mul(resp[:, :, None], z[:, None, :], out=rz)
            left, right = z.T, rz.view(c, k * p)
        else:
            left, right = resp, z
        if acc.dtype == z.dtype:
            acc.addmm_(left, right)
        else:  # float32 data: products per chunk, sums in float64
            acc += torch.mm(left, right).to(_STAT)

    def _finish_stats(self, acc):
        """full: ``(K, P, P)`` blocks ``sum_n r_nk z_n z_n^T``; others: ``(K, P)`` ``sum_n r_nk z_n``."""
        if self._kind == "full":
            p = acc.shape[0]
            return acc.view(p, self._k, p).transpose(0, 1)
        return acc

    def _suff_stats(self, Z, R, *, is_log):
        """Statistics of ``(n, K)`` responsibilities ``R`` (or log responsibilities)."""
        acc, floor = self._new_stats(Z), exp_floor(Z.dtype)
        for sl in self._chunks(Z.shape[0]):
            r = R[sl]
            if is_log:
                r = torch.clamp(r, min=floor).exp_()
            self._accumulate(acc, Z[sl], r if self._kdim() == 1 else r.T)
        return self._finish_stats(acc)

    def _params_from_stats(self, stats, *, weights_norm=None):
        kind, d, reg = self._kind, self._d, float(self.reg_covar)
        tiny = 10 * torch.finfo(self._fit_dtype).eps  # as scikit-learn: no 0/0 for empty components
        if kind == "full":
            nk = stats[:, d, d] + tiny
            sx = stats[:, :d, d]
        elif kind == "tied":
            nk, sx = stats[:, d] + tiny, stats[:, :d]
        elif kind == "diag":
            nk, sx = stats[:, 2 * d] + tiny, stats[:, d : 2 * d]
        else:
            nk, sx = stats[:, d + 1] + tiny, stats[:, 1 : d + 1]
        means = sx / nk[:, None]
        if kind == "full":
            cov = stats[:, :d, :d] / nk[:, None, None] - means[:, :, None] * means[:, None, :]
            cov = 0.5 * (cov + cov.mT)
            raw = torch.diagonal(cov, dim1=-2, dim2=-1).mean(1)
            cov.diagonal(dim1=-2, dim2=-1).add_(reg)
        elif kind == "tied":
            cov = (self._scatter - (means.T * nk) @ means) / nk.sum()
            cov = 0.5 * (cov + cov.T)
            raw = torch.diagonal(cov).mean().expand(self._k)
            cov.diagonal().add_(reg)
        elif kind == "diag":
            cov = stats[:, :d] / nk[:, None] - means * means
            raw = cov.mean(1)
            cov = cov + reg
        else:
            cov = (stats[:, 0] / nk - (means * means).sum(1)) / d
            raw = cov
            cov = cov + reg
        out = {
            "weights": nk / (weights_norm if weights_norm is not None else nk.sum()),
            "means": means,
            # the data's own variance is no larger than the regulariser (or rounding noise)
            "collapsed": raw <= max(reg, self._var_floor),
        }
        out["covariances"], out["prec_chol"], out["jitter"] = self._precision_cholesky(cov, reg)
        return out

    def _precision_cholesky(self, cov, reg):
        """Upper ``U`` with ``cov^-1 = U U^T``; jitter where ``cov`` is not PD."""
        kind, jitter = self._kind, False
        if kind in ("full", "tied"):
            batch = cov if kind == "full" else cov[None]
            L, info = torch.linalg.cholesky_ex(batch)
            if bool((info != 0).any()):
                jitter = True
                batch = batch.clone()
                scale = torch.diagonal(batch, dim1=-2, dim2=-1).abs().mean(-1)
                scale = torch.where(scale > 0, scale, torch.ones_like(scale))
                eps = max(reg, float(torch.finfo(_STAT).eps))
                eye = torch.eye(self._d, dtype=_STAT, device=cov.device)
                for step in range(40):  # growing jitter, only on the failing matrices
                    bad = info != 0
                    if not bool(bad.any()):
                        break
                    amount = (eps * 10.0 ** (step / 2)) * scale[bad]
                    batch[bad] = batch[bad] + amount[:, None, None] * eye
                    L, info = torch.linalg.cholesky_ex(batch)
                if bool((info != 0).any()):
                    raise ValueError("a covariance matrix could not be made positive definite; check the data")
            eye = torch.eye(self._d, dtype=_STAT, device=cov.device).expand_as(L)
            U = torch.linalg.solve_triangular(L, eye, upper=False).mT  # L^-T, upper triangular
            if kind == "tied":
                U, batch = U[0], batch[0]
            return batch, U, jitter
        floor = max(reg, float(torch.finfo(_STAT).eps))
        bad = ~(cov > 0)
        if bool(bad.any()):
            jitter = True
            cov = torch.where(bad, torch.full_like(cov, floor), cov)
        return cov, cov.rsqrt(), jitter

    # ------------------------------------------------------------ E/M hooks
    def _refresh(self):
        """Rebuild the E-step coefficient matrices from ``self._params``."""
        p, kind, d = self._params, self._kind, self._d
        dtype = self._fit_dtype
        logw = torch.log(p["weights"])
        U, mu = p["prec_chol"], p["means"]
        if kind == "full":
            logdet = torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(1)
            k = mu.shape[0]
            W = torch.empty((d + 1, k * d), dtype=_STAT, device=mu.device)
            W[:d] = U.permute(1, 0, 2).reshape(d, k * d)
            W[d] = -torch.einsum("kd,kde->ke", mu, U).reshape(k * d)
            W.mul_(math.sqrt(0.5))  # so that the squared norms come out halved
            self._coef = {"W": W.to(dtype), "const": (logdet - 0.5 * d * _LOG_2PI + logw).to(dtype)}
        elif kind == "tied":
            logdet = torch.log(torch.diagonal(U)).sum()
            M = mu @ U
            const = logdet - 0.5 * d * _LOG_2PI + logw - 0.5 * (M * M).sum(1)
            self._coef = {"Ut": U.T.contiguous().to(dtype), "M": M.to(dtype), "const": const.to(dtype)}
        elif kind == "diag":
            lam = U * U
            A = torch.empty((2 * d + 1, mu.shape[0]), dtype=_STAT, device=mu.device)
            A[:d] = -0.5 * lam.T
            A[d : 2 * d] = (mu * lam).T
            A[2 * d] = torch.log(U).sum(1) - 0.5 * d * _LOG_2PI + logw - 0.5 * (mu * mu * lam).sum(1)
            self._coef = {"At": A.T.contiguous().to(dtype)}
        else:
            const = d * torch.log(U) - 0.5 * d * _LOG_2PI + logw
            self._coef = {"At": _spherical_coef(mu, U * U, const).T.contiguous().to(dtype)}

    def _scores(self, z):
        """``log pi_k + log N(x | k)`` of a chunk, laid out as in ``_kdim``."""
        kind, cf = self._kind, self._coef
        if kind in ("diag", "spherical"):
            return cf["At"] @ z.T
        d = self._d
        if kind == "tied":
            y = cf["Ut"] @ z[:, :d].T  # whitened data (D, c)
            out = torch.addmm(cf["const"][:, None], cf["M"], y)
            return out.sub_(0.5 * (y * y).sum(0))
        c, k = z.shape[0], self._k
        y = self._ws.get("block", (c, k * d), z)
        torch.mm(z, cf["W"], out=y)  # (x - mu_k) U_k / sqrt(2) for all k in one GEMM
        # squared norms per D-block: one read pass (a norm), no in-place square pass
        sq = torch.linalg.vector_norm(y.view(c, k, d), dim=2).square_()
        return torch.sub(cf["const"], sq)

    def _estimate_weighted_log_prob(self, z):
        s = self._scores(z)
        return s if self._kdim() == 1 else s.T

    def _em_iteration(self, Z, temperature):
        # fused E+M: each chunk's responsibilities go straight into the statistics
        acc = self._new_stats(Z)
        total = torch.zeros((), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            z = Z[sl]
            resp = self._scores(z)
            total += tempered_responsibilities(resp, temperature, dim=self._kdim()).sum(dtype=_STAT)
            self._accumulate(acc, z, resp)
        self._params = self._params_from_stats(self._finish_stats(acc))
        self._refresh()
        return float(total) / Z.shape[0]

    def _estimate_log_prob(self, z):
        return self._estimate_weighted_log_prob(z) - torch.log(self._params["weights"]).to(z.dtype)

    def _estimate_log_weights(self):
        return torch.log(self._params["weights"])

    def _m_step(self, Z, log_resp):
        self._params = self._params_from_stats(self._suff_stats(Z, log_resp, is_log=True))
        self._refresh()

    def _compute_lower_bound(self, log_resp, log_prob_norm):
        return log_prob_norm

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

    def _publish(self):
        """Public fitted attributes as NumPy arrays in the model dtype."""
        p, kind = self._params, self._kind
        np_dtype = np.float32 if self._fit_dtype == torch.float32 else np.float64
        as_np = lambda t: t.detach().to("cpu", _STAT).numpy().astype(np_dtype)  # noqa: E731
        U = p["prec_chol"]
        self.weights_ = as_np(p["weights"])
        self.means_ = as_np(p["means"] + self._shift)
        self.covariances_ = as_np(p["covariances"])
        self.precisions_cholesky_ = as_np(U)
        self.precisions_ = as_np(U @ U.mT if kind in ("full", "tied") else U * U)

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

    def _n_parameters(self):
        k, d = self.means_.shape
        cov = {"full": k * d * (d + 1) / 2, "diag": k * d, "tied": d * (d + 1) / 2, "spherical": k}[self._kind]
        return int(cov + k * d + k - 1)

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = as_data_tensor(X, name="X").shape[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better)."""
        n = as_data_tensor(X, name="X").shape[0]
        return -2.0 * self.score(X) * n + 2 * self._n_parameters()


class KMeans(EMBase, BaseEstimator):
    """K-means (Lloyd) as hard EM with equal weights and unit spherical variance.

    The E-step is the spherical Gaussian mixture's distance code at temperature
    0; the M-step sets each centre to the mean of its points. Stopping follows
    scikit-learn: labels unchanged, or the summed squared centre shift at most
    ``tol * mean(var(X, axis=0))``.

    Parameters
    ----------
    n_clusters : int, default=8
    init : 'k-means++', 'random' or array-like (n_clusters, n_features), default='k-means++'
        With an array, a single run is made whatever ``n_init``.
    n_init : int, default=1
    max_iter : int, default=300
    tol : float, default=1e-4
    random_state : int, RandomState or None
    device, dtype : as in :class:`GaussianMixture`.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features)
    labels_ : ndarray (n_samples,)
    inertia_ : float
        Sum of squared distances of the samples to their closest centre.
    n_iter_ : int
    converged_, lower_bound_, lower_bounds_ : as in the EM driver; the bound
        is ``-inertia / (2 n)`` of the centres entering each iteration.
    """

    def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 random_state=None, device=None, dtype=torch.float64):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _check_parameters(self, X):
        k = check_positive_int(self.n_clusters, "n_clusters")
        check_n_components(k, X.shape[0], name="n_clusters")
        self._k, self._d = k, X.shape[1]
        self._init_centers = None
        if isinstance(self.init, str):
            check_choice(self.init, ("k-means++", "random"), "init")
        else:
            c = _as_param(self.init, "init", X.device)
            _check_shape(c, (k, X.shape[1]), "init")
            self._init_centers = c

    def _chunk_rows(self, n_samples):
        return max(1024, _SMALL_BLOCK // self._k)

    def _temperature_at(self, iteration):
        return 0.0  # hard assignments

    def fit_predict(self, X, y=None):
        if self._init_centers_given():
            n_init, self.n_init = self.n_init, 1
            try:
                return super().fit_predict(X, y)
            finally:
                self.n_init = n_init
        return super().fit_predict(X, y)

    def _init_centers_given(self):
        return not isinstance(self.init, str)

    def _prepare_data(self, X, fitting):
        if fitting:
            self._shift = X.mean(0, dtype=_STAT).to(X.dtype).to(_STAT)  # see GaussianMixture
            var = X.to(_STAT).var(0, unbiased=False).mean()
            self._tol_abs = float(var) * self.tol if self.tol else 0.0
        return _design(X, "spherical", self._shift)

    def _initialize_parameters(self, Z, random_state):
        X = _design_x(Z, "spherical", self._d)
        if self._init_centers is not None:
            centers = self._init_centers - self._shift
        elif self.init == "random":
            idx = random_state.choice(Z.shape[0], size=self._k, replace=False)
            centers = X[torch.as_tensor(idx, device=Z.device)].to(_STAT)
        else:
            centers = kmeans_plusplus(X, self._k, random_state=random_state)[0].to(_STAT)
        self._centers = centers
        self._prev_labels = None

    def _estimate_weighted_log_prob(self, z):
        ones = self._centers.new_ones(self._k)
        return _spherical_scores(z, self._centers, ones, torch.zeros_like(ones))  # -|x - c|^2 / 2

    def _m_step(self, Z, log_resp):
        labels = log_resp.argmax(1)
        sums = torch.zeros((self._k, self._d), dtype=_STAT, device=Z.device)
        X = _design_x(Z, "spherical", self._d)
        sums.index_add_(0, labels, X.to(_STAT))
        counts = torch.bincount(labels, minlength=self._k).to(_STAT)
        new = sums / counts.clamp(min=1.0)[:, None]
        empty = counts == 0
        if bool(empty.any()):
            # relocate empty clusters to the points farthest from their centres
            far = ((X.to(_STAT) - self._centers[labels]) ** 2).sum(1)
            idx = torch.topk(far, int(empty.sum())).indices
            new[empty] = X[idx].to(_STAT)
        self._shift_sq = float(((new - self._centers) ** 2).sum())
        self._strict = self._prev_labels is not None and bool(torch.equal(labels, self._prev_labels))
        self._prev_labels = labels
        self._centers = new

    def _compute_lower_bound(self, log_resp, log_prob_norm):
        return log_prob_norm

    def _converged(self, lower_bound, prev_lower_bound):
        return self._strict or self._shift_sq <= self._tol_abs

    def _get_parameters(self):
        return self._centers

    def _set_parameters(self, params):
        self._centers = params
        self.cluster_centers_ = self._np(params + self._shift)

    def _np(self, t):
        np_dtype = np.float32 if self._fit_dtype == torch.float32 else np.float64
        return t.detach().to("cpu", _STAT).numpy().astype(np_dtype)

    def _after_fit(self, Z, labels):
        self.labels_ = labels.cpu().numpy()
        self.inertia_ = self._inertia(Z, labels)

    def _inertia(self, Z, labels):
        # exact differences, not the |x|^2 - 2 x.c + |c|^2 expansion
        X = _design_x(Z, "spherical", self._d)
        total = torch.zeros((), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            diff = X[sl].to(_STAT) - self._centers[labels[sl]]
            total += (diff * diff).sum()
        return float(total)

    def transform(self, X):
        """Euclidean distances to the cluster centres.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        Z = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        d2 = torch.cat([_sq_distances(Z[sl], self._centers) for sl in self._chunks(Z.shape[0])])
        return d2.sqrt_().to(_STAT).cpu().numpy()

    def score(self, X, y=None):
        """Opposite of the k-means objective (sum of squared distances) on ``X``."""
        Z = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        labels = self._labels(Z)
        return -self._inertia(Z, labels)
