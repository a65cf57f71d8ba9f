"""Non-parametric density estimation (MATH.md section 6): histogram, kernel density, k nearest neighbours.

All three estimate ``p(x)`` from the count of training points near ``x``. If a region ``R`` of
volume ``V`` has probability ``P = int_R p``, the number ``K`` of the ``N`` training points that
fall in it is binomial,

    P(K) = C(N, K) P^K (1 - P)^(N - K),       E[K] = N P,   Var[K] = N P (1 - P)

(the source note drops the binomial coefficient; MATH.md records the slip), so ``K / N`` estimates
``P`` and, for a small region where ``p`` is nearly constant, ``p(x) ~= K / (N V)``
(:func:`count_view`). The estimators differ in what they fix:

* :class:`Histogram` fixes the regions (the cells of a grid) and counts;
* :class:`KernelDensity` (Parzen) fixes the volume, a kernel of bandwidth ``h`` around ``x``,
  and counts softly: ``p(x) = 1 / (N h^d) sum_n k((x - x_n) / h)`` with ``k`` normalised;
* :class:`KNNDensity` fixes the count ``K = k`` and measures the volume, the ball reaching the
  ``k``-th nearest training point: ``p(x) = k / (N V_d r_k(x)^d)``.

Every score is computed in log space (log-sum-exp over training points) and follows the device
and dtype of the fitted data. Distances come in blocks of about ``_BLOCK`` entries (queries x
training points, the training points streamed in chunks when there are many), so memory stays
``O(chunk x N_train)`` whatever the number of queries. The gaussian and tophat kernels and the
neighbour search use one GEMM per block (``|x|^2 - 2 x.y + |y|^2`` on centred data, negative
rounding clamped to 0): its absolute error, about ``eps |x|^2``, is harmless in ``exp(-d^2/2h^2)``
and only matters for the tophat on the sphere ``d = h``. The other kernels take exact
differences: the square root of a rounded squared distance loses its digits when two points
(nearly) coincide (exponential, linear, cosine), and ``1 - d^2/h^2`` loses them near the edge of
the support (epanechnikov).
"""
from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import gammainc
from sklearn.base import BaseEstimator
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from zoo._estimator import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin

__all__ = ["KernelDensity", "Histogram", "KNNDensity", "select_bandwidth", "count_view", "CountView",
           "KERNELS", "HISTOGRAM_RULES"]

#: Entries (queries x training points) of one distance block on the CPU: 2^20 float64 values
#: (8 MB) keep a pass over a block in the last-level cache, and few enough blocks that the
#: per-operation cost of the thread pool (large when other processes share the cores) stays small.
_BLOCK = 1 << 20
#: The same on a GPU, where bigger blocks keep it busy.
_CUDA_BLOCK = 1 << 24
#: Fewest query rows per block: below it the training points are streamed in chunks.
_MIN_ROWS = 16


# ----------------------------------------------------------------- geometry
def _log_ball_volume(d: int) -> float:
    """log V_d, the volume of the unit ball in R^d: pi^(d/2) / Gamma(d/2 + 1)."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def _log_sphere_area(d: int) -> float:
    """log S_(d-1), the area of the unit sphere in R^d: 2 pi^(d/2) / Gamma(d/2) = d V_d."""
    return math.log(d) + _log_ball_volume(d)


def _cosine_radial_integral(d: int) -> float:
    """int_0^1 cos(pi t / 2) t^(d-1) dt, from the Taylor series of the cosine (alternating terms
    that shrink like (pi/2)^(2j) / (2j)!; 40 terms are far below the float64 rounding)."""
    a2 = (0.5 * math.pi) ** 2
    terms, term = [], 1.0
    for j in range(40):
        terms.append(term / (2 * j + d))
        term *= -a2 / ((2 * j + 1) * (2 * j + 2))
    return math.fsum(terms)


@dataclasses.dataclass(frozen=True)
class _Kernel:
    squared: bool  # computed from GEMM squared distances; otherwise from exact differences
    compact: bool
    log_integral: callable  # d -> log of int_{R^d} k(|u|) du (bandwidth 1)


# log k as a function of the block (squared distances or distances) and the bandwidth; new tensors.
def _log_gaussian(s, h):
    return s * (-0.5 / (h * h))


def _log_tophat(s, h):
    return torch.zeros_like(s).masked_fill_(s >= h * h, -math.inf)


def _log_epanechnikov(r, h):
    return torch.log1p((r * (1.0 / h)).square_().neg_()).masked_fill_(r >= h, -math.inf)


def _log_exponential(r, h):
    return r * (-1.0 / h)


def _log_linear(r, h):
    return torch.log1p(r * (-1.0 / h)).masked_fill_(r >= h, -math.inf)


def _log_cosine(r, h):
    return torch.cos(r * (0.5 * math.pi / h)).log_().masked_fill_(r >= h, -math.inf)


_LOG_KERNELS = {"gaussian": _log_gaussian, "tophat": _log_tophat, "epanechnikov": _log_epanechnikov,
                "exponential": _log_exponential, "linear": _log_linear, "cosine": _log_cosine}

#: The kernels (scikit-learn's six), each a radial profile k(r/h) with its normalising integral.
#: The cosine kernel's integral int_0^1 cos(pi t/2) t^(d-1) dt is exact here in every dimension;
#: scikit-learn 1.9.1 sums only the polynomial part of its integration by parts, which is exact
#: for odd d but not for even d (its 2-D cosine density integrates to 1 - 2/pi, its 4-D one to NaN).
KERNELS = {
    "gaussian": _Kernel(True, False, lambda d: 0.5 * d * math.log(2 * math.pi)),
    "tophat": _Kernel(True, True, _log_ball_volume),
    "epanechnikov": _Kernel(False, True, lambda d: _log_ball_volume(d) + math.log(2.0 / (d + 2.0))),
    "exponential": _Kernel(False, False, lambda d: _log_sphere_area(d) + math.lgamma(d)),
    "linear": _Kernel(False, True, lambda d: _log_ball_volume(d) - math.log(d + 1.0)),
    "cosine": _Kernel(False, True, lambda d: _log_sphere_area(d) + math.log(_cosine_radial_integral(d))),
}


def _log_kernel_norm(kernel: str, d: int, h: float) -> float:
    """log of the integral of the unnormalised kernel of bandwidth h over R^d."""
    return KERNELS[kernel].log_integral(d) + d * math.log(h)


# ----------------------------------------------------------------- blocked distances
def _chunks(n: int, step: int):
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _block_elements(device: torch.device) -> int:
    return _CUDA_BLOCK if device.type == "cuda" else _BLOCK


def _block_shape(n_train: int, device: torch.device) -> tuple[int, int]:
    """(query rows, training columns) of one distance block."""
    block = _block_elements(device)
    cols = n_train if n_train * _MIN_ROWS <= block else block // _MIN_ROWS
    return max(1, block // cols), cols


def _sq_dist_factors(T):
    """``[-2t, 1, |t|^2]`` (n, D + 2): with ``[q, |q|^2, 1]`` one GEMM gives ``|q - t|^2``."""
    return torch.cat([T * -2.0, T.new_ones((T.shape[0], 1)), T.square().sum(1, keepdim=True)], 1)


def _query_factors(Q):
    """``[q, |q|^2, 1]`` (n, D + 2), the query side of :func:`_sq_dist_factors`."""
    return torch.cat([Q, Q.square().sum(1, keepdim=True), Q.new_ones((Q.shape[0], 1))], 1)


class _LogSumExp:
    """Running log-sum-exp over column blocks, row by row (the shift is the running maximum)."""

    def __init__(self, like: torch.Tensor, rows: int):
        self.m = like.new_full((rows,), -math.inf)
        self.s = like.new_zeros((rows,))

    def add(self, L: torch.Tensor):  # L (rows, cols) is overwritten
        new = torch.maximum(self.m, L.amax(1))
        shift = torch.where(torch.isfinite(new), new, torch.zeros_like(new))  # rows without mass so far
        self.s.mul_(torch.exp(self.m - shift)).add_(L.sub_(shift[:, None]).exp_().sum(1))
        self.m = new

    def result(self) -> torch.Tensor:
        return self.m + torch.log(self.s)


class _KernelBlocks:
    """The blocks ``log k(|q - t| / h) + log w_t`` (all <= 0) of queries against training points.

    The Gaussian with one bandwidth is a single GEMM per block: with ``c = 1 / (2 h^2)``,
    ``[q, |q|^2, 1] . (-c [-2t, 1, |t|^2]) = -c |q - t|^2``, written into a reused buffer and
    clamped at 0 (rounding), so no pass over the block is spent on scaling or shifting. The
    tophat, and the Gaussian with several bandwidths (:func:`select_bandwidth`), take GEMM
    squared distances; the other kernels distances from exact differences (see the module
    docstring)."""

    def __init__(self, T, kernel, bandwidths, log_w):
        self.T, self.bandwidths, self.log_w = T, [float(h) for h in bandwidths], log_w
        self.spec, self.log_k = KERNELS[kernel], _LOG_KERNELS[kernel]
        self.rows, self.cols = _block_shape(T.shape[0], T.device)
        self.fused = kernel == "gaussian" and len(self.bandwidths) == 1
        if self.fused:  # the factors of |q - t|^2 with the training side scaled by -c
            self.c = 0.5 / self.bandwidths[0] ** 2
            self.T_aug = _sq_dist_factors(T) * -self.c
        elif self.spec.squared:
            self.T_aug = _sq_dist_factors(T)
        self.buffer = None

    def __call__(self, Q):
        """Yield ``(training slice, bandwidth index, block)`` for the query rows ``Q``; each block
        may be overwritten by the consumer."""
        Q_aug = _query_factors(Q) if self.spec.squared else None
        for ts in _chunks(self.T.shape[0], self.cols):
            if self.fused:
                size = Q.shape[0] * (ts.stop - ts.start)
                if self.buffer is None or self.buffer.numel() < size:  # reused: no page faults per block
                    self.buffer = Q.new_empty(self.rows * min(self.cols, self.T.shape[0]))
                L = torch.mm(Q_aug, self.T_aug[ts].T, out=self.buffer[:size].view(Q.shape[0], -1)).clamp_(max=0.0)
                if self.log_w is not None:
                    L.add_(self.log_w[None, ts])
                yield 0, L
                continue
            if self.spec.squared:
                base = torch.mm(Q_aug, self.T_aug[ts].T).clamp_(min=0.0)
            else:
                base = torch.cdist(Q, self.T[ts], compute_mode="donot_use_mm_for_euclid_dist")
            for g, h in enumerate(self.bandwidths):
                L = self.log_k(base, h)
                if self.log_w is not None:
                    L.add_(self.log_w[None, ts])
                yield g, L


def _kernel_log_sums(Q, T, kernel, bandwidths, log_w=None):
    """``log sum_n w_n k(|q - t_n| / h)`` for every query row and bandwidth: tensor (G, n_queries).

    ``Q`` (n_queries, D) and ``T`` (n_train, D) must be centred alike; ``log_w`` (n_train,) holds
    the log weights, at most 0 (None: all 0). Every block term is at most 1, so the sums need no
    shift: one ``exp`` and one row sum per block. Rows whose sum falls where the terms may have
    underflowed (below ``tiny / eps^2``: for the Gaussian, every training point beyond about 37
    bandwidths) are summed again with the running-maximum shift (:class:`_LogSumExp`)."""
    blocks = _KernelBlocks(T, kernel, bandwidths, log_w)
    n_q, G = Q.shape[0], len(blocks.bandwidths)
    out = Q.new_empty((G, n_q))
    for qs in _chunks(n_q, blocks.rows):
        sums = Q.new_zeros((G, qs.stop - qs.start))
        for g, L in blocks(Q[qs]):
            sums[g] += L.exp_().sum(1)
        out[:, qs] = torch.log(sums)
    info = torch.finfo(Q.dtype)
    low = out < math.log(info.tiny) - 2 * math.log(info.eps)
    redo = torch.nonzero(low.any(0)).flatten()  # one synchronisation
    for start in range(0, redo.numel(), blocks.rows):
        rows = redo[start : start + blocks.rows]
        acc = [_LogSumExp(Q, rows.numel()) for _ in range(G)]
        for g, L in blocks(Q[rows]):
            acc[g].add(L)
        stable = torch.stack([a.result() for a in acc])
        out[:, rows] = torch.where(low[:, rows], stable, out[:, rows])
    return out


def _kth_neighbour_distance(Q, T, k, *, leave_one_out=False):
    """Distance from every query row to its ``k``-th nearest training row, tensor (n_queries,).

    The ``k`` nearest are found on GEMM blocks (a running top-k over training chunks); the distance
    of the ``k`` found is then recomputed from exact differences. ``leave_one_out``: ``Q`` is ``T``
    and row ``i`` does not count training row ``i`` (its duplicates do count)."""
    rows, cols = _block_shape(T.shape[0], T.device)
    rows = max(1, min(rows, _block_elements(T.device) // max(1, k * Q.shape[1])))  # (rows, k, D) differences
    T_aug = _sq_dist_factors(T)
    out = Q.new_empty(Q.shape[0])
    for qs in _chunks(Q.shape[0], rows):
        Q_aug = _query_factors(Q[qs])
        best_d = best_i = None
        for ts in _chunks(T.shape[0], cols):
            S = torch.mm(Q_aug, T_aug[ts].T).clamp_(min=0.0)
            if leave_one_out:  # the diagonal of the full (N, N) matrix inside this block
                lo, hi = max(qs.start, ts.start), min(qs.stop, ts.stop)
                if lo < hi:
                    idx = torch.arange(lo, hi, device=S.device)
                    S[idx - qs.start, idx - ts.start] = math.inf
            d, i = S.topk(min(k, S.shape[1]), dim=1, largest=False)
            i = i + ts.start
            if best_d is not None:
                d, j = torch.cat([best_d, d], 1).topk(k, dim=1, largest=False)
                i = torch.cat([best_i, i], 1).gather(1, j)
            best_d, best_i = d, i
        exact = (Q[qs, None, :] - T[best_i]).square().sum(-1)  # (rows, k)
        out[qs] = exact.amax(1).sqrt()
    return out


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _sample_weight(sample_weight, n, dtype, device):
    """scikit-learn's checks of ``sample_weight`` (shape, finite, non-negative, not all zero) as a
    tensor; tensors are read on the CPU once (fitting, not a loop)."""
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = sample_weight.detach().cpu().numpy()
    w = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True)
    return torch.as_tensor(w, dtype=dtype, device=device)


def _check_n_samples(n_samples):
    if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample.")
    return int(n_samples)


# ----------------------------------------------------------------- kernel density
class KernelDensity(TorchEstimatorMixin, BaseEstimator):
    """Kernel (Parzen) density estimate, ``scikit-learn.neighbors.KernelDensity``'s surface, on torch.

    ``p(x) = 1 / (W Z_h) sum_n w_n k(|x - x_n| / h)``, ``W = sum_n w_n`` (``N`` unweighted) and
    ``Z_h = h^d int k(|u|) du``, for the radial profiles

    =============  ================================  =====================================
    kernel         k(r), r = distance / h             int_{R^d} k(|u|) du
    =============  ================================  =====================================
    gaussian       exp(-r^2 / 2)                      (2 pi)^(d/2)
    tophat         1 if r < 1                         V_d
    epanechnikov   1 - r^2 if r < 1                   V_d 2 / (d + 2)
    exponential    exp(-r)                            S_(d-1) Gamma(d)
    linear         1 - r if r < 1                     V_d / (d + 1)
    cosine         cos(pi r / 2) if r < 1             S_(d-1) int_0^1 cos(pi t/2) t^(d-1) dt
    =============  ================================  =====================================

    with ``V_d = pi^(d/2) / Gamma(d/2 + 1)`` and ``S_(d-1) = d V_d``. These are scikit-learn's
    constants except the cosine kernel in even dimensions, where scikit-learn 1.9.1's constant is
    wrong (see :data:`KERNELS`); for d = 1, 3, 5, ... the two agree.

    The sum is computed exactly (every training point, log-sum-exp in log space), in blocks: see
    the module docstring. Compact kernels give ``-inf`` where no training point is within ``h``.

    Parameters
    ----------
    bandwidth : float > 0 or {"scott", "silverman"}, default=1.0
        ``h``; the rules are scikit-learn's, which assume unit-variance features (scale the data
        first): ``"scott"`` ``n^(-1/(d+4))`` and ``"silverman"`` ``(n (d+2) / 4)^(-1/(d+4))``
        (``n`` rows, sample weights ignored, as scikit-learn). To choose ``h`` by held-out
        log-likelihood use :func:`select_bandwidth`.
    algorithm : {"kd_tree", "ball_tree", "auto"}, default="auto"
        Accepted for compatibility and ignored: the sum is computed exactly, without a tree.
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"}, default="gaussian"
    metric : {"euclidean"}, default="euclidean"
        Only the Euclidean distance (the kernel constants are Euclidean ones).
    atol, rtol : float >= 0, default=0
        Accepted for compatibility and ignored: the result is exact (scikit-learn's ``rtol=0,
        atol=0``) whatever they are.
    breadth_first : bool, default=True
        Accepted for compatibility and ignored (no tree).
    leaf_size : int >= 1, default=40
        Accepted for compatibility and ignored (no tree).
    metric_params : None or dict, default=None
        Must be None or empty (the Euclidean metric takes no parameter).
    device : str or torch.device, default=None
        Where to compute; None follows the input (CPU for NumPy input).
    dtype : None, "float32", "float64" (or the NumPy / torch type), default=None
        None follows the input as scikit-learn does (float32 stays float32, anything else
        becomes float64).

    Attributes
    ----------
    bandwidth_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when the input has string column names

    Examples
    --------
    >>> import numpy as np
    >>> from zoo.density import KernelDensity
    >>> X = np.random.default_rng(0).normal(size=(500, 2))
    >>> kde = KernelDensity(bandwidth=0.4).fit(X)
    >>> kde.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "bandwidth": [Interval(Real, 0, None, closed="neither"), StrOptions({"scott", "silverman"})],
        "algorithm": [StrOptions({"kd_tree", "ball_tree", "auto"})],
        "kernel": [StrOptions(set(KERNELS))],
        "metric": [StrOptions({"euclidean"})],
        "atol": [Interval(Real, 0, None, closed="left")],
        "rtol": [Interval(Real, 0, None, closed="left")],
        "breadth_first": ["boolean"],
        "leaf_size": [Interval(Integral, 1, None, closed="left")],
        "metric_params": [None, dict],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, *, bandwidth=1.0, algorithm="auto", kernel="gaussian", metric="euclidean", atol=0, rtol=0,
                 breadth_first=True, leaf_size=40, metric_params=None, device=None, dtype=None):
        self.bandwidth = bandwidth
        self.algorithm = algorithm
        self.kernel = kernel
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.metric_params = metric_params
        self.device = device
        self.dtype = dtype

    def __sklearn_is_fitted__(self):
        return hasattr(self, "bandwidth_")

    def fit(self, X, y=None, sample_weight=None):
        """Store the training points ``X`` (n_samples, n_features), weighted by ``sample_weight``
        (n_samples,) >= 0 when given. Returns ``self``."""
        self._validate_params()
        if self.metric_params:
            raise ValueError(f"metric_params={self.metric_params!r}: the euclidean metric takes no parameters")
        X = self._validate_data(X, reset=True)
        n, d = X.shape
        if self.bandwidth == "scott":
            self.bandwidth_ = n ** (-1.0 / (d + 4))
        elif self.bandwidth == "silverman":
            self.bandwidth_ = (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        else:
            self.bandwidth_ = float(self.bandwidth)
        if sample_weight is None:
            self._weights, total = None, float(n)
        else:
            self._weights = _sample_weight(sample_weight, n, X.dtype, X.device)
            total = float(self._weights.double().sum())
            # the sums use w / max(w), so that every term stays at most 1
            total /= float(self._weights.max())
        self._X = X
        self._kernel = self.kernel
        self._log_normaliser = math.log(total) + _log_kernel_norm(self.kernel, d, self.bandwidth_)
        return self

    def score_samples(self, X):
        """Log density of each row of ``X`` (n_samples, n_features): ndarray (n_samples,), in the
        fitted dtype; ``-inf`` where a compact kernel reaches no training point."""
        X = self._validate_data(X, reset=False)
        centre = self._X.mean(0)
        log_w = None if self._weights is None else torch.log(self._weights / self._weights.max())
        sums = _kernel_log_sums(X - centre, self._X - centre, self._kernel, [self.bandwidth_], log_w)
        return _as_numpy(sums[0] - self._log_normaliser)

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` (the sum of :meth:`score_samples`, as scikit-learn's)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points, ndarray (n_samples, n_features), for the gaussian and tophat
        kernels (others: ``NotImplementedError``, as scikit-learn). With the same ``random_state``
        the draws are scikit-learn's: a training point picked by ``floor(u N)`` (or by the
        cumulative weights), then a Gaussian step of scale ``h`` or a uniform point of the ball."""
        check_is_fitted(self)
        n_samples = _check_n_samples(n_samples)
        if self._kernel not in ("gaussian", "tophat"):
            raise NotImplementedError(f"sampling is implemented for the gaussian and tophat kernels, "
                                      f"not kernel={self._kernel!r}")
        data = self._X.detach().to("cpu", torch.float64).numpy()
        rng = check_random_state(random_state)
        u = rng.uniform(0, 1, size=n_samples)
        if self._weights is None:
            i = (u * data.shape[0]).astype(np.int64)
        else:
            cumulative = np.cumsum(_as_numpy(self._weights).astype(np.float64))
            i = np.searchsorted(cumulative, u * cumulative[-1])
        if self._kernel == "gaussian":
            out = np.atleast_2d(rng.normal(data[i], self.bandwidth_))
        else:  # a standard normal direction, its radius mapped to a uniform one in the ball
            dim = data.shape[1]
            z = rng.normal(size=(n_samples, dim))
            s_sq = np.einsum("ij,ij->i", z, z)
            radius = gammainc(0.5 * dim, 0.5 * s_sq) ** (1.0 / dim) * self.bandwidth_ / np.sqrt(s_sq)
            out = data[i] + z * radius[:, None]
        return out.astype(np.float32 if self._X.dtype == torch.float32 else np.float64)


def select_bandwidth(X, bandwidths=None, *, kernel="gaussian", cv=5, device=None, dtype=None, return_scores=False):
    """The bandwidth of a :class:`KernelDensity` with the largest held-out log-likelihood.

    The same choice as ``GridSearchCV(KernelDensity(kernel=kernel), {"bandwidth": bandwidths},
    cv=cv).fit(X).best_params_["bandwidth"]`` (the mean over folds of the summed held-out log
    density; the first of tied maxima), but each fold's distances are computed once for the whole
    grid.

    Parameters
    ----------
    X : array-like or tensor (n_samples, n_features)
    bandwidths : array-like of floats > 0, default=None
        The grid; None: 25 values from 0.1 to 10 times Scott's rule scaled by the data, i.e.
        ``sigma n^(-1/(d+4))`` with ``sigma`` the mean standard deviation of the features.
    kernel : str, default="gaussian"
    cv : int, cross-validation generator or iterable, default=5
        scikit-learn's ``check_cv``: an int is ``KFold(cv)`` without shuffling (as in
        ``GridSearchCV``); pass ``KFold(cv, shuffle=True, random_state=...)`` for ordered data.
    device, dtype : as :class:`KernelDensity`.
    return_scores : bool, default=False
        Also return the grid (ndarray (G,)) and the mean held-out log-likelihood of each value.

    Returns
    -------
    bandwidth : float, or ``(bandwidth, bandwidths, scores)`` with ``return_scores``.
    """
    est = KernelDensity(kernel=kernel, device=device, dtype=dtype)
    est._validate_params()
    X = est._validate_data(X, reset=True, ensure_min_samples=2)
    n, d = X.shape
    if bandwidths is None:
        sigma = float(X.double().std(0, correction=0).mean()) or 1.0
        bandwidths = sigma * n ** (-1.0 / (d + 4)) * np.geomspace(0.1, 10.0, 25)
    grid = np.asarray(bandwidths, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or not np.all(grid > 0):
        raise ValueError(f"bandwidths must be a non-empty array of finite values > 0, got {bandwidths!r}")
    splitter = check_cv(cv)
    totals, n_folds = np.zeros(grid.size), 0
    for train, test in splitter.split(np.zeros((n, 1))):
        train_t = torch.as_tensor(train, device=X.device)
        test_t = torch.as_tensor(test, device=X.device)
        T, Q = X[train_t], X[test_t]
        centre = T.mean(0)
        sums = _kernel_log_sums(Q - centre, T - centre, kernel, list(grid)).double().sum(1)  # (G,)
        norms = torch.as_tensor([math.log(len(train)) + _log_kernel_norm(kernel, d, h) for h in grid],
                                dtype=torch.float64, device=X.device)
        totals += _as_numpy(sums - len(test) * norms)
        n_folds += 1
    scores = totals / n_folds
    if not np.isfinite(scores).any():
        raise ValueError(f"every bandwidth gives some held-out point zero density with kernel={kernel!r}; "
                         "try larger bandwidths or the gaussian kernel")
    best = float(grid[int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))])
    return (best, grid, scores) if return_scores else best


# ----------------------------------------------------------------- the count view
@dataclasses.dataclass(frozen=True)
class CountView:
    """The count ``K`` of ``n_samples`` independent points in a region of probability
    ``probability`` and volume ``volume``: ``K ~ Binomial(N, P)``,
    ``P(K = k) = C(N, k) P^k (1 - P)^(N - k)``, and the density estimate ``K / (N V)``, whose mean
    is ``P / V`` (the region's average density) and standard deviation ``sqrt(P (1 - P) / N) / V``."""

    n_samples: int
    probability: float
    volume: float = 1.0

    def __post_init__(self):
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, Integral) or self.n_samples < 0:
            raise ValueError(f"n_samples must be an integer >= 0, got {self.n_samples!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")
        if not (math.isfinite(self.volume) and self.volume > 0):
            raise ValueError(f"volume must be finite and > 0, got {self.volume!r}")

    def log_pmf(self, k) -> np.ndarray:
        """``log C(N, k) + k log P + (N - k) log(1 - P)`` (``-inf`` off ``0..N``), ndarray like ``k``."""
        k = torch.as_tensor(np.asarray(k, dtype=np.float64))
        n = torch.tensor(float(self.n_samples), dtype=torch.float64)
        p = torch.tensor(self.probability, dtype=torch.float64)
        inside = (k >= 0) & (k <= n) & (k == torch.floor(k))
        kc = torch.minimum(k.clamp(min=0), n)
        log_choose = torch.lgamma(n + 1) - torch.lgamma(kc + 1) - torch.lgamma(n - kc + 1)
        out = log_choose + torch.special.xlogy(kc, p) + torch.special.xlogy(n - kc, 1 - p)
        return out.masked_fill(~inside, -math.inf).numpy()

    def pmf(self, k) -> np.ndarray:
        return np.exp(self.log_pmf(k))

    @property
    def mean(self) -> float:
        return self.n_samples * self.probability

    @property
    def variance(self) -> float:
        return self.n_samples * self.probability * (1 - self.probability)

    def estimate(self, k):
        """The density estimate ``k / (N V)``."""
        return np.asarray(k, dtype=np.float64) / (self.n_samples * self.volume)

    @property
    def density(self) -> float:
        """``P / V``: the mean of :meth:`estimate` (the average density over the region)."""
        return self.probability / self.volume

    @property
    def estimate_std(self) -> float:
        return math.sqrt(self.variance) / (self.n_samples * self.volume)

    @property
    def distribution(self) -> torch.distributions.Binomial:
        """The same binomial as a torch distribution (sampling, batching)."""
        return torch.distributions.Binomial(self.n_samples, probs=torch.tensor(self.probability, dtype=torch.float64))


def count_view(n_samples, probability, volume=1.0) -> CountView:
    """The note's count view of a region (see :class:`CountView`)."""
    return CountView(n_samples, float(probability), float(volume))


# ----------------------------------------------------------------- histogram
def _weighted_percentile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """NumPy's default (linear) percentile of ``x`` repeated ``w`` times (frequency weights;
    real weights generalise it): position ``q/100 (W - 1)`` in the sorted repeated sample."""
    order = np.argsort(x, kind="stable")
    x, cumulative = x[order], np.cumsum(w[order])
    pos = q / 100.0 * (cumulative[-1] - 1.0)
    lo = math.floor(pos)
    at = lambda p: x[min(int(np.searchsorted(cumulative, p, side="right")), len(x) - 1)]  # noqa: E731
    below, above = at(lo), at(min(lo + 1, max(cumulative[-1] - 1.0, 0.0)))
    return float(below + (pos - lo) * (above - below))


def _rule_width(rule: str, x: np.ndarray, w: np.ndarray) -> float:
    """NumPy's bin-width estimators (``np.histogram_bin_edges(x, bins=rule)``) with frequency
    weights: ``n`` is the total weight, moments and percentiles are weighted, so integer weights
    give the width of the repeated sample."""
    n = float(w.sum())
    ptp = float(x.max() - x.min())
    mean = float(np.dot(w, x) / n)
    std = math.sqrt(max(float(np.dot(w, (x - mean) ** 2) / n), 0.0))
    if rule == "sqrt":
        return ptp / math.sqrt(n)
    if rule == "sturges":
        return ptp / (math.log2(n) + 1.0)
    if rule == "rice":
        return ptp / (2.0 * n ** (1.0 / 3))
    if rule == "scott":
        return (24.0 * math.pi ** 0.5 / n) ** (1.0 / 3.0) * std
    if rule == "doane":
        if n > 2 and std > 0:
            sg1 = math.sqrt(6.0 * (n - 2) / ((n + 1.0) * (n + 3)))
            g1 = float(np.dot(w, ((x - mean) / std) ** 3) / n)
            return ptp / (1.0 + math.log2(n) + math.log2(1.0 + abs(g1) / sg1))
        return 0.0
    fd = 2.0 * (_weighted_percentile(x, w, 75) - _weighted_percentile(x, w, 25)) * n ** (-1.0 / 3.0)
    if rule == "fd":
        return fd
    # "auto": Freedman-Diaconis, at least half the sqrt width, at most Sturges
    return min(max(fd, _rule_width("sqrt", x, w) / 2), _rule_width("sturges", x, w))


#: Most bins per feature (the edges are stored).
_MAX_BINS = 10_000_000

#: The bin-width rules (NumPy's names and formulas, per dimension). NumPy's "stone" is left out: it
#: is a cross-validated search over up to max(100, sqrt(n)) bin counts, with no weighted form.
HISTOGRAM_RULES = ("auto", "fd", "doane", "scott", "rice", "sturges", "sqrt")


def _lookup_rows(table: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Row of ``table`` (M, D) equal to each row of ``keys`` (Q, D), -1 where none: one
    ``unique(dim=0)`` of both, so any grid size works (no flattened index to overflow)."""
    unique, inverse = torch.unique(torch.cat([table, keys]), dim=0, return_inverse=True)
    where = torch.full((unique.shape[0],), -1, dtype=torch.long, device=table.device)
    where[inverse[: table.shape[0]]] = torch.arange(table.shape[0], device=table.device)
    return where[inverse[table.shape[0]:]]


class Histogram(TorchEstimatorMixin, BaseEstimator):
    """D-dimensional histogram density: ``p(x) = (c(x) + alpha) / ((W + alpha B) V)``.

    The grid has, in each dimension ``j``, ``n_bins_[j]`` equal bins of width ``bin_width_[j]``
    covering the training range; a cell has volume ``V = prod_j bin_width_[j]``, ``c(x)`` is the
    (weighted) count of training points in the cell of ``x``, ``W`` the total count (``N``
    unweighted) and ``B = prod_j n_bins_[j]`` the number of cells. Summed over the cells,
    ``p V`` is 1. Outside the grid the log density is ``-inf``; inside an empty cell it is
    ``-inf`` when ``alpha == 0`` (every cell gets ``alpha`` pseudo-counts otherwise). Only the
    occupied cells are stored, so high dimensions cost memory in N, not in B. Bins are half-open
    ``[a, b)`` except the last of each dimension, which includes the training maximum.

    Parameters
    ----------
    bin_width : float > 0, array-like (n_features,) of floats > 0, or a rule, default="auto"
        A given width starts the bins at the training minimum and adds bins until the maximum is
        covered (a constant feature gets one bin of that width centred on its value). A rule
        (:data:`HISTOGRAM_RULES`) is NumPy's ``np.histogram_bin_edges(x, bins=rule)`` applied to
        each feature: its width ``w`` gives ``ceil(range / w)`` equal bins spanning exactly the
        range (one bin when ``w`` is 0, e.g. an interquartile range of 0 for ``"fd"``; a
        constant feature gets the range ``[x - 0.5, x + 0.5]``, as NumPy). ``"scott"``:
        ``w = (24 sqrt(pi) / n)^(1/3) sigma``; ``"fd"`` (Freedman-Diaconis): ``2 IQR n^(-1/3)``;
        ``"sturges"``: ``range / (log2 n + 1)``; ``"auto"``: ``min(max(fd, sqrt / 2), sturges)``;
        also ``"doane"``, ``"rice"``, ``"sqrt"``. With sample weights, ``n`` is the total weight
        and moments and quartiles are weighted (integer weights give the widths of the repeated
        sample); points of weight 0 are left out, ranges included.
    alpha : float >= 0, default=0.0
        Pseudo-count added to every cell of the grid (Laplace smoothing).
    device, dtype : as :class:`KernelDensity`.

    Attributes
    ----------
    bin_edges_ : list of n_features ndarrays, the edges of each dimension
    bin_width_ : ndarray (n_features,)
    n_bins_ : ndarray (n_features,) of int
    bin_volume_ : float
    occupied_bins_ : ndarray (n_occupied, n_features) of int, grid indices of the non-empty cells
    counts_ : ndarray (n_occupied,), their (weighted) counts
    n_samples_fit_ : int, training rows of positive weight
    sum_weight_ : float, ``W``
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from zoo.density import Histogram
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> hist = Histogram(bin_width="fd").fit(X)
    >>> float(hist.score_samples([[10.0, 0.0]])[0])   # outside the grid
    -inf
    >>> view = hist.count_view(0.05)   # one cell of probability 0.05: K ~ Binomial(1000, 0.05)
    >>> view.mean, round(view.estimate_std * hist.bin_volume_, 5)
    (50.0, 0.00689)
    """

    _parameter_constraints: dict = {
        "bin_width": [Interval(Real, 0, None, closed="neither"), "array-like", StrOptions(set(HISTOGRAM_RULES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, bin_width="auto", *, alpha=0.0, device=None, dtype=None):
        self.bin_width = bin_width
        self.alpha = alpha
        self.device = device
        self.dtype = dtype

    def __sklearn_is_fitted__(self):
        return hasattr(self, "bin_edges_")

    def _grid(self, X: np.ndarray, w: np.ndarray):
        """Per-dimension (first edge, width, number of bins) from the training sample."""
        d = X.shape[1]
        if isinstance(self.bin_width, str):
            widths = None
        else:
            widths = np.asarray(self.bin_width, dtype=np.float64)
            if widths.ndim == 0:
                widths = np.full(d, float(widths))
            if widths.shape != (d,) or not np.all(np.isfinite(widths)) or not np.all(widths > 0):
                raise ValueError(f"bin_width must be a float > 0 or an array of {d} finite floats > 0 (one per "
                                 f"feature), got {self.bin_width!r}")
        firsts, steps, counts = np.empty(d), np.empty(d), np.empty(d, dtype=np.int64)
        for j in range(d):
            x = X[:, j]
            lo, hi = float(x.min()), float(x.max())
            if widths is not None:
                if lo == hi:
                    firsts[j], steps[j], counts[j] = lo - widths[j] / 2, widths[j], 1
                else:
                    firsts[j], steps[j] = lo, widths[j]
                    counts[j] = max(1, math.ceil((hi - lo) / widths[j]))
                continue
            rule = _rule_width(self.bin_width, x, w) if lo < hi else 0.0
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            counts[j] = math.ceil((hi - lo) / rule) if rule > 0 else 1
            firsts[j], steps[j] = lo, (hi - lo) / counts[j]
        if counts.max() > _MAX_BINS:
            j = int(counts.argmax())
            raise ValueError(f"bin_width={self.bin_width!r} gives {counts[j]} bins in feature {j} (at most {_MAX_BINS} "
                             "per feature): use a wider bin")
        return firsts, steps, counts

    def fit(self, X, y=None, sample_weight=None):
        """Count the training points ``X`` (n_samples, n_features) in the grid's cells, each
        weighted by ``sample_weight`` (n_samples,) >= 0 when given. Returns ``self``."""
        self._validate_params()
        X = self._validate_data(X, reset=True)
        if sample_weight is None:
            w = torch.ones(X.shape[0], dtype=X.dtype, device=X.device)
        else:
            w = _sample_weight(sample_weight, X.shape[0], X.dtype, X.device)
            keep = w > 0
            X, w = X[keep], w[keep]
        X64, w64 = X.detach().to("cpu", torch.float64).numpy(), w.detach().to("cpu", torch.float64).numpy()
        firsts, steps, counts = self._grid(X64, w64)
        self.bin_width_ = steps.astype(X64.dtype)
        self.n_bins_ = counts
        self.bin_edges_ = [firsts[j] + steps[j] * np.arange(counts[j] + 1) for j in range(X.shape[1])]
        for j, edges in enumerate(self.bin_edges_):  # the last edge covers the maximum despite rounding
            edges[-1] = max(edges[-1], float(X64[:, j].max()))
        self.bin_volume_ = float(np.prod(steps))
        self._first = torch.as_tensor(firsts, dtype=torch.float64, device=X.device)
        self._last = torch.as_tensor([e[-1] for e in self.bin_edges_], dtype=torch.float64, device=X.device)
        self._step = torch.as_tensor(steps, dtype=torch.float64, device=X.device)
        self._n_bins = torch.as_tensor(counts, device=X.device)
        cells, _ = self._cells(X)
        occupied, inverse = torch.unique(cells, dim=0, return_inverse=True)
        self._occupied = occupied
        self._counts = torch.zeros(occupied.shape[0], dtype=torch.float64, device=X.device).index_add_(
            0, inverse, w.double())
        self.occupied_bins_ = _as_numpy(occupied)
        self.counts_ = _as_numpy(self._counts).astype(np.float32 if X.dtype == torch.float32 else np.float64)
        self.n_samples_fit_ = int(X.shape[0])
        self.sum_weight_ = float(w64.sum())
        # log(W + alpha B), B = prod n_bins (possibly astronomically large: kept in log space)
        log_cells = float(np.log(counts.astype(np.float64)).sum())
        alpha = float(self.alpha)
        log_total = math.log(self.sum_weight_)
        if alpha > 0:
            log_total = float(np.logaddexp(log_total, math.log(alpha) + log_cells))
        self._log_denominator = log_total + float(np.log(steps).sum())
        return self

    def _cells(self, X):
        """Grid index (n, D) of each row and whether the row is inside the grid (n,)."""
        X = X.double()
        inside = ((X >= self._first) & (X <= self._last)).all(1)
        cells = torch.floor((X - self._first) / self._step).long()
        cells = torch.minimum(cells.clamp_(min=0), self._n_bins - 1)
        return cells, inside

    def score_samples(self, X):
        """Log density of each row of ``X``: ndarray (n_samples,), ``-inf`` outside the grid and,
        without smoothing, in empty cells."""
        X = self._validate_data(X, reset=False)
        out = torch.empty(X.shape[0], dtype=torch.float64, device=X.device)
        alpha = float(self.alpha)
        for sl in _chunks(X.shape[0], 1 << 16):
            cells, inside = self._cells(X[sl])
            row = _lookup_rows(self._occupied, cells)
            count = torch.where(row >= 0, self._counts[row.clamp(min=0)], torch.zeros_like(out[sl]))
            log_p = torch.log(count + alpha) - self._log_denominator
            out[sl] = log_p.masked_fill(~inside, -math.inf)
        return _as_numpy(out.to(X.dtype))

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` (the sum of :meth:`score_samples`)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points from the histogram density: a cell with probability
        ``(c + alpha) / (W + alpha B)``, then a uniform point in it. ndarray (n_samples, n_features)."""
        check_is_fitted(self)
        n_samples = _check_n_samples(n_samples)
        rng = check_random_state(random_state)
        counts = _as_numpy(self._counts)
        n_bins = self.n_bins_
        alpha = float(self.alpha)
        # with smoothing, a draw is from the empirical cells or, with probability alpha B / (W + alpha B),
        # from a uniformly chosen cell of the whole grid
        log_cells = float(np.log(n_bins.astype(np.float64)).sum())
        p_uniform = 0.0 if alpha == 0 else 1.0 / (1.0 + math.exp(math.log(self.sum_weight_ / alpha) - log_cells))
        uniform = rng.uniform(size=n_samples) < p_uniform
        cells = self.occupied_bins_[rng.choice(len(counts), size=n_samples, p=counts / counts.sum())]
        if uniform.any():
            cells[uniform] = np.floor(rng.uniform(size=(int(uniform.sum()), len(n_bins))) * n_bins).astype(np.int64)
        firsts = np.array([e[0] for e in self.bin_edges_])
        points = firsts + (cells + rng.uniform(size=cells.shape)) * self.bin_width_
        return points.astype(self.counts_.dtype)

    def count_view(self, probability) -> CountView:
        """The count in one cell of this histogram whose true probability is ``probability``:
        ``K ~ Binomial(n_samples_fit_, P)`` and the estimate ``K / (N bin_volume_)``."""
        check_is_fitted(self)
        return count_view(self.n_samples_fit_, probability, self.bin_volume_)


# ----------------------------------------------------------------- k nearest neighbours
class KNNDensity(TorchEstimatorMixin, BaseEstimator):
    """k-nearest-neighbour density: ``p(x) = k / (N V_d r_k(x)^d)``.

    ``r_k(x)`` is the Euclidean distance from ``x`` to its ``k``-th nearest training point and
    ``V_d = pi^(d/2) / Gamma(d/2 + 1)`` the volume of the unit ball (``log V_d`` from the
    log-gamma function). A query that coincides with ``k`` or more training points has
    ``r_k = 0`` and log density ``+inf``.

    **This is not a probability density: it does not integrate to one.** Far from the data
    ``r_k(x) ~ |x|``, so ``p(x) ~ k / (N V_d |x|^d)`` and the integral over a ball of radius ``R``
    grows like ``(k / N) d log R``: over ``R^d`` it diverges (logarithmically). Use it to compare
    or rank points, or inside a bounded region.

    Sampling error. For a fixed ``x``, the probability mass ``U`` of the ball of radius
    ``r_k(x)`` is the ``k``-th smallest of ``N`` independent uniforms, ``U ~ Beta(k, N - k + 1)``
    exactly (for any continuous density). Where the density is a constant ``p`` over that ball,
    ``U = p V_d r_k^d`` and so ``p_hat / p = k / (N U)``, with

        E[p_hat / p] = k / (k - 1)                                   (k >= 2)
        sd[p_hat] / E[p_hat] = sqrt((N - 1)(k - 1) / (N (k - 2)) - 1)  -> 1 / sqrt(k - 2)  (k >= 3)

    (``N U`` tends to a ``Gamma(k, 1)`` variable as ``N`` grows.) The estimate is biased upwards
    by ``1 / (k - 1)`` and its relative error is about ``1 / sqrt(k - 2)``; near the edge of the
    support the ball leaves it and ``p_hat`` is too small.

    Parameters
    ----------
    n_neighbors : int >= 1, default=5
        ``k``; it must be smaller than the number of training points (``k >= N`` raises a
        ``ValueError`` at ``fit``), so that the leave-one-out score below exists.
    device, dtype : as :class:`KernelDensity`.

    Attributes
    ----------
    n_samples_fit_ : int, ``N``
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from zoo.density import KNNDensity
    >>> X = np.random.default_rng(0).uniform(size=(2000, 1))
    >>> knn = KNNDensity(n_neighbors=50).fit(X)
    >>> p = np.exp(knn.score_samples([[0.5]]))   # about 1 * 50/49, relative sd about 1/sqrt(48)
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, n_neighbors=5, *, device=None, dtype=None):
        self.n_neighbors = n_neighbors
        self.device = device
        self.dtype = dtype

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_samples_fit_")

    def fit(self, X, y=None):
        """Store the training points ``X`` (n_samples, n_features). Returns ``self``."""
        self._validate_params()
        X = self._validate_data(X, reset=True)
        n, k = X.shape[0], self.n_neighbors
        if k >= n:
            raise ValueError(f"Expected n_neighbors < n_samples, but n_neighbors = {k}, n_samples = {n}: the k-th "
                             "nearest neighbour of a training point among the others needs k < n_samples")
        self._X, self._k = X, k
        self.n_samples_fit_ = n
        return self

    def score_samples(self, X=None):
        """Log density ``log k - log N - log V_d - d log r_k`` of each row of ``X``: ndarray
        (n_samples,).

        ``X`` is treated as new points: every training point counts, so a query equal to a
        training point has that point as its first neighbour (at distance 0). ``X=None`` scores
        the training points leave-one-out, the convention of scikit-learn's ``kneighbors()``:
        point ``i`` is scored by the other ``N - 1`` points, ``k / ((N - 1) V_d r_k^d)`` with
        ``r_k`` its distance to the ``k``-th nearest other point (duplicates of it count)."""
        check_is_fitted(self)
        if X is None:
            Q, n_ref, loo = self._X, self.n_samples_fit_ - 1, True
        else:
            Q, n_ref, loo = self._validate_data(X, reset=False), self.n_samples_fit_, False
        k, d = self._k, self._X.shape[1]
        centre = self._X.mean(0)
        r = _kth_neighbour_distance(Q - centre, self._X - centre, k, leave_one_out=loo)
        log_p = (math.log(k) - math.log(n_ref) - _log_ball_volume(d)) - d * torch.log(r)
        return _as_numpy(log_p)

    def score(self, X=None, y=None):
        """Sum of :meth:`score_samples` (not a log-likelihood: the estimate is not normalised)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))
