"""K-means (Lloyd) as hard EM, and k-means++ seeding, on the spherical Gaussian design.

:class:`KMeans` is the EM driver of :mod:`zoo.mixture._base` at temperature 0 with equal
weights and a fixed unit spherical variance; its E-step and :func:`kmeans_plusplus` use the
spherical design and distance kernels of :mod:`zoo.mixture._gaussian`, the same code as the
spherical :class:`~zoo.mixture.GaussianMixture`.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .._checks import as_data_tensor, check_choice, check_n_components, check_positive_int
from . import _gaussian as kernels
from ._base import TORCH_PARAMETER_CONSTRAINTS, EMBase, as_param, check_shape, to_numpy

__all__ = ["KMeans", "kmeans_plusplus"]

_STAT = kernels.STAT


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
    Z = kernels.design(X, "spherical", X.mean(0))
    Xc = kernels.design_x(Z, "spherical", d)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.randint(n)
    closest = kernels.sq_distances(Z, Xc[indices[:1]].to(_STAT))[:, 0].to(_STAT)
    potential = float(closest.sum())
    for c in range(1, n_clusters):
        # sample candidates with probability ∝ squared distance to the chosen centres
        draws = rng.uniform(size=trials) * potential
        cum = torch.cumsum(closest, 0).cpu().numpy()
        cand = np.minimum(np.searchsorted(cum, draws), n - 1)
        dist = kernels.sq_distances(Z, Xc[torch.as_tensor(cand, device=X.device)].to(_STAT)).to(_STAT)
        torch.minimum(dist, closest[:, None], out=dist)
        pots = dist.sum(0)
        best = int(torch.argmin(pots))
        indices[c], potential, closest = cand[best], float(pots[best]), dist[:, best].contiguous()
    return X[torch.as_tensor(indices, device=X.device)].clone(), indices


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
    device, dtype : as in :class:`~zoo.mixture.GaussianMixture`.

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

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "random_state": ["random_state"],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 random_state=None, device=None, dtype=None):
        self._store_hyperparameters(locals())

    def _check_parameters(self, X):
        k = check_positive_int(self.n_clusters, "n_clusters")
        check_n_components(k, X.shape[0], name="n_clusters")
        self._k, self._d = k, X.shape[1]
        self._init_centers = None
        if isinstance(self.init, str):
            check_choice(self.init, ("k-means++", "random"), "init")
        else:
            c = as_param(self.init, "init", X.device)
            check_shape(c, (k, X.shape[1]), "init")
            self._init_centers = c

    def _chunk_rows(self, n_samples):
        return kernels.chunk_rows("spherical", self._k, self._d)

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
        return kernels.design(X, "spherical", self._shift)

    def _initialize_parameters(self, Z, random_state):
        X = kernels.design_x(Z, "spherical", self._d)
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
        return kernels.spherical_scores(z, self._centers, ones, torch.zeros_like(ones))  # -|x - c|^2 / 2

    def _m_step(self, Z, log_resp):
        labels = log_resp.argmax(1)
        sums = torch.zeros((self._k, self._d), dtype=_STAT, device=Z.device)
        X = kernels.design_x(Z, "spherical", self._d)
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
        return to_numpy(t, self._fit_dtype)

    def _after_fit(self, Z, labels):
        self.labels_ = labels.cpu().numpy()
        self.inertia_ = self._inertia(Z, labels)

    def _inertia(self, Z, labels):
        # exact differences, not the |x|^2 - 2 x.c + |c|^2 expansion
        X = kernels.design_x(Z, "spherical", self._d)
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
        d2 = torch.cat([kernels.sq_distances(Z[sl], self._centers) for sl in self._chunks(Z.shape[0])])
        return d2.sqrt_().to(_STAT).cpu().numpy()

    def score(self, X, y=None):
        """Opposite of the k-means objective (sum of squared distances) on ``X``."""
        Z = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        labels = self._labels(Z)
        return -self._inertia(Z, labels)
