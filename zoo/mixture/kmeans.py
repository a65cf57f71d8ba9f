"""K-means (Lloyd) with scikit-learn's semantics, and k-means++ seeding, on the spherical design.

:class:`KMeans` is a drop-in for :class:`sklearn.cluster.KMeans`: the same parameters,
methods, fitted attributes, warnings and messages, and from the same initial centres the same
iterations (labels, ``n_iter_``, inertia). Its distances are the spherical design and
coefficients of :mod:`zoo.mixture._gaussian`, the code of the spherical
:class:`~zoo.mixture.GaussianMixture`, in row chunks of batched matrix products on the data's
device and in its dtype (centres, sums and inertia are accumulated in float64).
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, _is_arraylike_not_scalar

from .._checks import as_data_tensor
from . import _gaussian as kernels
from .. import distributed
from .._estimator import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin, to_numpy
from ..sources import is_source

__all__ = ["KMeans", "kmeans_plusplus"]

_STAT = kernels.STAT  # dtype of centres, sums and inertia
_NP = {torch.float32: np.float32, torch.float64: np.float64}


# --------------------------------------------------------------------- helpers
def _check_n_samples(n_samples, n_clusters):
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")


def _sample_weight(sample_weight, n_samples, dtype: torch.dtype, device) -> torch.Tensor:
    """scikit-learn's ``_check_sample_weight`` (its messages) for arrays and tensors alike: a
    ``(n_samples,)`` tensor of the data dtype on ``device`` (ones when None)."""
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = sample_weight.detach().cpu().numpy()
    np_dtype = _NP[dtype]
    w = _check_sample_weight(sample_weight, np.empty((n_samples, 0), dtype=np_dtype), dtype=np_dtype)
    return torch.as_tensor(w, device=device)


def _assignment_coef(centers: torch.Tensor, dtype: torch.dtype):
    """``(coef, repeated)``: the ``(K, D+1)`` rows ``[c_k, -|c_k|^2 / 2]`` in ``dtype``, so that
    ``[x, 1] @ coef.T = x.c_k - |c_k|^2 / 2``, and the indices of the rows equal to an earlier
    row (None when there are none).

    The spherical coefficients (unit precisions, zero constants) without their ``|x|^2``
    column: ``-|x|^2 / 2`` is the same for every centre, and leaving it out of the arg-max
    leaves out its rounding too (scikit-learn's assignment also drops it). A repeated centre
    ties everywhere with its first copy, which wins; a matrix product need not give equal rows
    equal results, so the repeats are taken out rather than left to its rounding.
    """
    ones = centers.new_ones(centers.shape[0])
    coef = kernels.coefficients("spherical", centers, ones, torch.zeros_like(ones), dtype=dtype)["At"][:, 1:]
    unique, inverse = torch.unique(coef, dim=0, return_inverse=True)
    if unique.shape[0] == coef.shape[0]:
        return coef, None
    order = torch.arange(coef.shape[0], device=coef.device)
    first = torch.full((unique.shape[0],), coef.shape[0], dtype=order.dtype, device=coef.device)
    first.scatter_reduce_(0, inverse, order, "amin")
    return coef, torch.nonzero(first[inverse] != order).flatten()


def _assign(z: torch.Tensor, coef) -> torch.Tensor:
    """Index of the nearest centre of each design row (the first one on a tie, as scikit-learn),
    for :func:`_assignment_coef` ``coef``.

    ``max`` rather than ``argmax``: over the (K, n) layout it runs several times faster on CPU.
    """
    coef, repeated = coef
    scores = coef @ z[:, 1:].T
    if repeated is not None:
        scores[repeated] = -math.inf
    return scores.max(dim=0).indices


def _centres_from_sums(sums: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The new centres ``sums / weight`` (scikit-learn multiplies by the reciprocal). A cluster still
    empty after relocation (every point on its centre) gets what scikit-learn's averaging loop leaves
    there: a copy of the heaviest cluster's row as it stands when the loop reaches the empty one, its
    mean after it, its weighted sum before it (not yet averaged). Kept for identical labels: a copy of
    the mean at a lower index would take the tied points."""
    new = sums * (1.0 / weight)[:, None]
    still_empty = ~(weight > 0)
    if bool(still_empty.any()):
        heaviest = torch.argmax(weight)
        order = torch.arange(weight.shape[0], device=new.device)
        new[still_empty & (order > heaviest)] = new[heaviest].clone()
        new[still_empty & (order < heaviest)] = sums[heaviest]
    return new


def _same_clustering(labels1: torch.Tensor, labels2: torch.Tensor, n_clusters: int) -> bool:
    """Whether ``labels2`` is a function of ``labels1`` (scikit-learn's ``_is_same_clustering``:
    the same partition up to a relabelling)."""
    first = torch.full((n_clusters,), -1, dtype=labels2.dtype, device=labels2.device)
    first.scatter_reduce_(0, labels1, labels2, "amin", include_self=False)
    return bool(torch.equal(first[labels1], labels2))


# ------------------------------------------------------------------ k-means++
def _plusplus(Z, n_clusters, random_state, sample_weight=None, n_local_trials=None):
    """Indices of greedy k-means++ seeds of the spherical design ``Z`` (n, D+2).

    ``sample_weight``: a float64 tensor or None (unweighted, the first seed drawn uniformly).
    """
    n = Z.shape[0]
    X = kernels.design_x(Z, "spherical", Z.shape[1] - 2)
    trials = n_local_trials if n_local_trials is not None else 2 + int(np.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.int64)
    if sample_weight is None:
        indices[0] = random_state.randint(n)
    else:
        p = sample_weight.cpu().numpy()
        indices[0] = random_state.choice(n, p=p / p.sum())
    closest = kernels.sq_distances(Z, X[indices[:1]].to(_STAT))[:, 0].to(_STAT)
    weighted = closest if sample_weight is None else closest * sample_weight
    potential = float(weighted.sum())
    for c in range(1, n_clusters):
        # candidates drawn with probability ∝ weight x squared distance to the chosen centres
        draws = random_state.uniform(size=trials) * potential
        cum = torch.cumsum(weighted, 0).cpu().numpy()
        cand = np.minimum(np.searchsorted(cum, draws), n - 1)
        dist = kernels.sq_distances(Z, X[torch.as_tensor(cand, device=Z.device)].to(_STAT)).to(_STAT)
        torch.minimum(dist, closest[:, None], out=dist)
        pots = (dist if sample_weight is None else dist * sample_weight[:, None]).sum(0)
        best = int(torch.argmin(pots))
        indices[c], potential, closest = cand[best], float(pots[best]), dist[:, best].contiguous()
        weighted = closest if sample_weight is None else closest * sample_weight
    return indices


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), as scikit-learn's.

    Our own draws (not scikit-learn's random sequence): the first seed uniformly (with
    probability proportional to ``sample_weight`` when given), each further one the best of
    ``n_local_trials`` candidates drawn with probability proportional to weight times squared
    distance to the seeds so far.

    Parameters
    ----------
    X : tensor or array of shape (n_samples, n_features)
    n_clusters : int
    sample_weight : array-like or tensor of shape (n_samples,), default=None
    random_state : None, int or numpy RandomState
    n_local_trials : int, default ``2 + int(log(n_clusters))``
        Candidates drawn per centre; the one lowering the weighted potential most is kept.

    Returns
    -------
    centers : tensor of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
    """
    X = as_data_tensor(X, name="X")
    _check_n_samples(X.shape[0], n_clusters)
    w = None
    if sample_weight is not None:
        w = _sample_weight(sample_weight, X.shape[0], X.dtype, X.device).to(_STAT)
    Z = kernels.design(X, "spherical", X.mean(0))
    indices = _plusplus(Z, n_clusters, check_random_state(random_state), w, n_local_trials)
    return X[torch.as_tensor(indices, device=X.device)].clone(), indices


# ---------------------------------------------------------------------- KMeans
class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, TorchEstimatorMixin, BaseEstimator):
    """K-means clustering (Lloyd), a drop-in for :class:`sklearn.cluster.KMeans`.

    From the same initial centres it makes scikit-learn's iterations: the data centred by
    their mean (initial centres shifted too); per iteration the labels from the old centres,
    the weighted sums, empty clusters relocated to the points farthest from their assigned
    centres (chosen as scikit-learn chooses them, their weight moved out of their old cluster),
    the averages; stop when the labels did not change or when the summed squared centre shift
    is at most ``tol`` times the mean per-feature variance, then (unless the labels had stopped
    changing) one more assignment so that ``labels_`` belong to ``cluster_centers_``. Of
    ``n_init`` runs the one with the lowest inertia is kept. Distances are the spherical
    design's matrix products (:mod:`zoo.mixture._gaussian`) in row chunks, on the data's device
    and in its dtype; centres, sums and inertia are float64.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {'k-means++', 'random'}, callable or array-like of shape (n_clusters, n_features), \
default='k-means++'
        'k-means++': greedy k-means++ seeding (:func:`kmeans_plusplus`, weighted by
        ``sample_weight``; our own random draws, not scikit-learn's). 'random': ``n_clusters``
        distinct samples drawn with probability proportional to ``sample_weight`` (scikit-learn's
        draw: the same ``random_state`` gives the same centres). An array or tensor: the
        initial centres. A callable ``init(X, n_clusters, random_state=random_state)``
        returning the centres; as in scikit-learn ``X`` is the centred data (a NumPy array, or
        a tensor on the data's device when the data were a tensor).
    n_init : 'auto' or int, default='auto'
        Number of runs; 'auto' is 1 for 'k-means++' and an explicit array, 10 for 'random' and a
        callable. An explicit array with ``n_init > 1`` warns and makes one run.
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative to the mean per-feature variance of the data.
    verbose : int, default=0
        Prints scikit-learn's progress lines.
    random_state : int, RandomState instance or None, default=None
    copy_x : bool, default=True
        Accepted for compatibility: the data given are never modified, whatever its value
        (the centred copy is a new array either way).
    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        Both run Lloyd's iterations ('elkan' only prunes distance computations in
        scikit-learn; its result is the same).
    device : None, str or torch.device, default=None
        Where to compute (None: where the data are).
    dtype : None, 'float32', 'float64' (or the NumPy / torch dtype), default=None
        Precision of the data and the distances (None: float32 input stays float32, anything
        else becomes float64).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        In the data dtype.
    labels_ : ndarray of shape (n_samples,), int32
    inertia_ : float
        Weighted sum of squared distances of the samples to their centres.
    n_iter_ : int
        Iterations of the kept run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When the data had string column names.
    """

    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data":
            "integer weights are not the same as repeated samples for the random seeding of the centres "
            "(scikit-learn's own KMeans lists this check as an expected failure for the same reason)",
    }
    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), callable, "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "copy_x": ["boolean"],
        "algorithm": [StrOptions({"lloyd", "elkan"})],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4, verbose=0,
                 random_state=None, copy_x=True, algorithm="lloyd", device=None, dtype=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.device = device
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------ checks
    def _resolve_n_init(self):
        """scikit-learn's ``n_init``: 'auto' resolved, one run (with its warning) for explicit centres."""
        n_init = self.n_init
        if n_init == "auto":
            n_init = 10 if callable(self.init) or (isinstance(self.init, str) and self.init == "random") else 1
        if _is_arraylike_not_scalar(self.init) and n_init != 1:
            warnings.warn("Explicit initial center position passed: performing only one init in "
                          f"{type(self).__name__} instead of n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        return n_init

    def _check_centers(self, centers, n_features, dtype):
        """User-given centres as a tensor of the data dtype on the fitting device (scikit-learn's checks
        and messages)."""
        if isinstance(centers, torch.Tensor):
            centers = centers.detach().cpu().numpy()
        centers = check_array(centers, dtype=_NP[dtype], copy=True, order="C")
        if centers.shape[0] != self.n_clusters:
            raise ValueError(f"The shape of the initial centers {centers.shape} does not match the number of "
                             f"clusters {self.n_clusters}.")
        if centers.shape[1] != n_features:
            raise ValueError(f"The shape of the initial centers {centers.shape} does not match the number of "
                             f"features of the data {n_features}.")
        return torch.as_tensor(centers, device=self._fit_device)

    # ------------------------------------------------------------ fit
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features), or a chunk source
            A source (a memory-mapped array, a ``.npy`` path, a re-iterable of chunks: see
            :mod:`zoo.sources`) is read a chunk at a time, one pass per iteration; the initial centres
            come from a uniform sample of at most 100 000 rows (every row when there are no more, which
            gives the in-memory fit's centres). With a ``torch.distributed`` group active, ``X`` is this
            rank's shard: the fit is of all ranks' rows, ``labels_`` are this rank's.
        y : ignored
        sample_weight : array-like or tensor of shape (n_samples,), default=None
            Weights of the samples (None: all 1). Not used by an explicit or callable ``init``; not
            taken with a source or in a data-parallel run.

        Returns
        -------
        self
        """
        self._validate_params()
        if is_source(X) or distributed.active():
            return self._fit_rows(X, sample_weight)
        is_tensor = isinstance(X, torch.Tensor)
        X = self._validate_data(X, reset=True)
        n, d = X.shape
        k = self.n_clusters
        _check_n_samples(n, k)
        if self.algorithm == "elkan" and k == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using 'lloyd' instead.",
                          RuntimeWarning, stacklevel=2)
        n_init = self._resolve_n_init()
        random_state = check_random_state(self.random_state)
        weights_given = sample_weight is not None
        w = _sample_weight(sample_weight, n, X.dtype, X.device)
        init = self.init
        explicit = _is_arraylike_not_scalar(init)
        if explicit:
            init = self._check_centers(init, d, X.dtype)

        # centred data: the distance expansions stay accurate away from the origin; the shift
        # is rounded to the data dtype so that data and centres move by the same amount
        self._shift = X.mean(0, dtype=_STAT).to(X.dtype).to(_STAT)
        Z = kernels.design(X, "spherical", self._shift)  # a new array: X is never modified
        if explicit:
            init = (init - self._shift.to(X.dtype)).to(_STAT)
        self._chunk = kernels.chunk_rows("spherical", k, d)
        tol = self._tolerance(Z)
        w64 = w.to(_STAT)

        best = None
        for _ in range(n_init):
            centers = self._init_centers(Z, init, random_state, w64 if weights_given else None, is_tensor)
            if self.verbose:
                print("Initialization complete")
            labels, inertia, centers, n_iter = self._lloyd(Z, w, centers, tol)
            # a new run is kept when its inertia is lower and its partition differs (scikit-learn:
            # equal partitions differ in inertia only by rounding)
            if best is None or (inertia < best[1] and not _same_clustering(labels, best[0], k)):
                best = (labels, inertia, centers, n_iter)
        labels, inertia, centers, n_iter = best

        distinct = int(torch.unique(labels).numel())
        if distinct < k:
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                          "Possibly due to duplicate points in X.", ConvergenceWarning, stacklevel=2)
        self.cluster_centers_ = to_numpy(centers + self._shift, X.dtype)
        self._n_features_out = k
        self.labels_ = labels.to(torch.int32).cpu().numpy()
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    # ------------------------------------------------------------ streamed and data-parallel fits
    def _fit_rows(self, X, sample_weight):
        """Lloyd's iterations over a chunk source, or over the shards of a data-parallel run: one pass
        per iteration, the per-cluster sums all-reduced; the same iterations as in memory."""
        from ._stream import INIT_SAMPLE_ROWS, gather_sample, open_rows, sample_rng, summarize

        if sample_weight is not None:
            raise ValueError("sample_weight is not supported when fitting a chunk source or in a data-parallel "
                             "run; pass the rows repeated, or fit an in-memory array")
        rows = open_rows(self, X, reset=True)
        k = self.n_clusters
        rng = sample_rng(self.random_state)  # asked for a generator only if a shard exceeds the sample
        summary, sample = summarize(rows, sample_rows=INIT_SAMPLE_ROWS, rng=rng)
        n, d, dtype = summary.n, summary.d, self._fit_dtype
        _check_n_samples(n, k)
        n_init = self._resolve_n_init()
        random_state = check_random_state(self.random_state)
        init = self.init
        explicit = _is_arraylike_not_scalar(init)
        if explicit:
            init = self._check_centers(init, d, dtype)
        self._shift = summary.mean.to(dtype).to(_STAT)
        if explicit:
            init = (init - self._shift.to(dtype)).to(_STAT)
        self._chunk = kernels.chunk_rows("spherical", k, d)
        rows.block = self._chunk
        tol = 0.0 if self.tol == 0 else float(torch.trace(summary.scatter)) / n / d * self.tol
        init_sample = gather_sample(sample, rows.n_local, INIT_SAMPLE_ROWS, rng())
        best = None
        for _ in range(n_init):
            centers = None
            if distributed.is_main():
                with distributed.local():
                    Zs = kernels.design(init_sample.to(self._fit_device), "spherical", self._shift)
                    centers = self._init_centers(Zs, init, random_state, None, isinstance(init_sample, torch.Tensor))
            centers = distributed.broadcast_object(centers).to(self._fit_device)
            if self.verbose and distributed.is_main():
                print("Initialization complete")
            centers, n_iter = self._lloyd_rows(rows, centers, tol)
            labels, inertia = self._assign_rows(rows, centers)
            # in memory's rule: a lower inertia with a different partition (on every rank's rows)
            if best is None or (inertia < best[1] and not self._same_clustering_rows(labels, best[0], k)):
                best = (labels, inertia, centers, n_iter)
        labels, inertia, centers, n_iter = best
        counts = torch.zeros(k, dtype=_STAT)
        counts.index_add_(0, labels.cpu(), torch.ones(labels.shape[0], dtype=_STAT))
        (counts,) = distributed.all_reduce_sum(counts)
        distinct = int((counts > 0).sum())
        if distinct < k and distributed.is_main():
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                          "Possibly due to duplicate points in X.", ConvergenceWarning, stacklevel=3)
        self.cluster_centers_ = to_numpy(centers + self._shift, dtype)
        self._n_features_out = k
        self.labels_ = labels.to(torch.int32).cpu().numpy()
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    def _design_blocks(self, rows):
        for x in rows.blocks():
            yield kernels.design(x, "spherical", self._shift)

    def _lloyd_rows(self, rows, centers, tol):
        """Lloyd's iterations from ``centers`` by passes over ``rows``: ``(centers, n_iter)``. Strict
        convergence (the labels did not change) is read off the centres: equal labels give equal sums,
        so the new centres equal the old ones bit for bit."""
        k, d = centers.shape
        for i in range(self.max_iter):
            coef = _assignment_coef(centers, rows.dtype)
            acc = kernels.new_stats("spherical", k, d + 2, self._fit_device)
            for z in self._design_blocks(rows):
                lab = _assign(z, coef)
                resp = z.new_zeros((k, z.shape[0])).scatter_(0, lab[None], 1.0)
                kernels.accumulate_stats(acc, z, resp, "spherical")
            (acc,) = distributed.all_reduce_sum(acc)
            sums, weight = acc[:, 1 : d + 1], acc[:, d + 1]
            empty = torch.nonzero(weight == 0).flatten()
            if empty.numel():
                self._relocate_rows(rows, centers, coef, sums, weight, empty)
            new = _centres_from_sums(sums, weight)
            strict = bool(torch.equal(new, centers))
            moved = torch.linalg.vector_norm(new - centers, dim=1)
            moved = float((moved * moved).sum())
            if self.verbose and distributed.is_main():
                print(f"Iteration {i}, center shift {moved}.")
            centers = new
            if strict or moved <= tol:
                break
        return centers, i + 1

    def _relocate_rows(self, rows, centers, coef, sums, weight, empty):
        """The relocation of empty clusters (see :meth:`_relocate`) by one more pass: each rank keeps its
        farthest rows from their assigned centres, rank 0's merge of them is every rank's."""
        m = empty.numel()
        cand = []
        for z in self._design_blocks(rows):
            x = kernels.design_x(z, "spherical", centers.shape[1]).to(_STAT)
            lab = _assign(z, coef)
            far = ((x - centers[lab]) ** 2).sum(1)
            top = torch.topk(far, min(m, far.shape[0]))
            cand.append((top.values.cpu(), x[top.indices].cpu(), lab[top.indices].cpu()))
        parts = [c for rank_cand in distributed.all_gather_object(cand) for c in rank_cand]
        far = torch.cat([p[0] for p in parts])
        if far.numel() == 0 or float(far.max()) == 0:
            return
        picked = torch.topk(far, m).indices
        xs, labs = torch.cat([p[1] for p in parts])[picked], torch.cat([p[2] for p in parts])[picked]
        for j, (new_id, old_id) in enumerate(zip(empty.tolist(), labs.tolist())):
            xw = xs[j].to(sums.device)
            sums[old_id] -= xw
            sums[new_id] = xw
            weight[new_id] = 1.0
            weight[old_id] -= 1.0

    @staticmethod
    def _same_clustering_rows(labels, best, k):
        """:func:`_same_clustering` over the rows of all ranks: on each rank ``best`` is a function of
        ``labels``, and the ranks' functions agree wherever two of them are defined."""
        same = _same_clustering(labels, best, k)
        first = torch.full((k,), -1, dtype=best.dtype, device=best.device)
        first.scatter_reduce_(0, labels, best, "amin", include_self=False)
        views = distributed.all_gather_object((same, first.cpu()))
        if not all(v[0] for v in views):
            return False
        maps = torch.stack([v[1] for v in views])  # (ranks, k), -1 where a rank has no row of the cluster
        top = maps.max(0).values
        return bool(((maps == top) | (maps < 0)).all())

    def _assign_rows(self, rows, centers):
        """This rank's labels (int64) of the final ``centers`` and the inertia of all ranks."""
        coef = _assignment_coef(centers, rows.dtype)
        labels, total = [], torch.zeros((), dtype=_STAT, device=self._fit_device)
        for z in self._design_blocks(rows):
            lab = _assign(z, coef)
            diff = kernels.design_x(z, "spherical", centers.shape[1]).to(_STAT) - centers[lab]
            total += (diff * diff).sum()
            labels.append(lab)
        (total,) = distributed.all_reduce_sum(total)
        out = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64, device=self._fit_device)
        return out, float(total)

    def _tolerance(self, Z):
        """``tol`` times the mean per-feature variance (``|x|^2`` is the design's first column)."""
        if self.tol == 0:
            return 0.0
        n, d = Z.shape[0], Z.shape[1] - 2
        mean = kernels.design_x(Z, "spherical", d).mean(0, dtype=_STAT)
        total_var = float(Z[:, 0].sum(dtype=_STAT)) / n - float((mean * mean).sum())
        return total_var / d * self.tol

    def _init_centers(self, Z, init, random_state, sample_weight, is_tensor):
        """Initial centres (K, D), float64, in the centred coordinates."""
        n, d = Z.shape[0], Z.shape[1] - 2
        X = kernels.design_x(Z, "spherical", d)
        if isinstance(init, torch.Tensor):  # validated explicit centres
            return init
        if isinstance(init, str) and init == "k-means++":
            idx = _plusplus(Z, self.n_clusters, random_state, sample_weight)
        elif isinstance(init, str):  # random: scikit-learn's draw
            p = np.ones(n) if sample_weight is None else sample_weight.cpu().numpy()
            p = p.astype(_NP[Z.dtype])
            idx = random_state.choice(n, size=self.n_clusters, replace=False, p=p / p.sum())
        else:  # callable on the centred data, as scikit-learn calls it
            data = X.contiguous() if is_tensor else X.cpu().numpy().copy()
            return self._check_centers(init(data, self.n_clusters, random_state=random_state), d, Z.dtype).to(_STAT)
        return X[torch.as_tensor(idx, device=Z.device)].to(_STAT)

    def _chunks(self, n):
        for start in range(0, n, self._chunk):
            yield slice(start, min(start + self._chunk, n))

    def _lloyd(self, Z, w, centers, tol):
        """One run of Lloyd's iterations from ``centers``: ``(labels, inertia, centers, n_iter)``."""
        n, k = Z.shape[0], centers.shape[0]
        labels = torch.empty(n, dtype=torch.int64, device=Z.device)
        labels_old = torch.full_like(labels, -1)
        strict = False
        for i in range(self.max_iter):
            new, shift = self._iteration(Z, w, centers, labels)
            if self.verbose:
                print(f"Iteration {i}, inertia {self._inertia(Z, w, centers, labels)}.")
            centers = new
            if torch.equal(labels, labels_old):
                if self.verbose:
                    print(f"Converged at iteration {i}: strict convergence.")
                strict = True
                break
            if shift <= tol:
                if self.verbose:
                    print(f"Converged at iteration {i}: center shift {shift} within tolerance {tol}.")
                break
            labels_old.copy_(labels)
        if not strict:  # labels of the final centres
            self._labels_into(Z, centers, labels)
        return labels, self._inertia(Z, w, centers, labels), centers, i + 1

    def _labels_into(self, Z, centers, labels):
        coef = _assignment_coef(centers, Z.dtype)
        for sl in self._chunks(Z.shape[0]):
            labels[sl] = _assign(Z[sl], coef)

    def _iteration(self, Z, w, centers, labels):
        """Labels from ``centers`` (written into ``labels``) and the new centres; returns
        ``(new_centers, summed squared shift)``."""
        k, d = centers.shape
        coef = _assignment_coef(centers, Z.dtype)
        acc = kernels.new_stats("spherical", k, d + 2, Z.device)  # rows [sum w|x|^2, sum w x, sum w]
        for sl in self._chunks(Z.shape[0]):
            z = Z[sl]
            lab = _assign(z, coef)
            labels[sl] = lab
            resp = z.new_zeros((k, z.shape[0])).scatter_(0, lab[None], w[sl][None])
            kernels.accumulate_stats(acc, z, resp, "spherical")
        sums, weight = acc[:, 1 : d + 1], acc[:, d + 1]
        empty = torch.nonzero(weight == 0).flatten()
        if empty.numel():
            self._relocate(Z, w, centers, labels, sums, weight, empty)
        new = _centres_from_sums(sums, weight)
        shift = torch.linalg.vector_norm(new - centers, dim=1)
        return new, float((shift * shift).sum())

    def _relocate(self, Z, w, centers, labels, sums, weight, empty):
        """scikit-learn's relocation of empty clusters: each gets one of the points farthest from
        their assigned (old) centre, whose weight leaves its old cluster's sums."""
        d = centers.shape[1]
        X = kernels.design_x(Z, "spherical", d)
        far = torch.cat([((X[sl].to(_STAT) - centers[labels[sl]]) ** 2).sum(1) for sl in self._chunks(Z.shape[0])])
        far = far.cpu().numpy()
        if far.max() == 0:  # every point on its centre: more clusters than distinct points
            return
        m = empty.numel()
        # numpy's argpartition, as scikit-learn: ties between equally far points resolve alike
        picked = torch.as_tensor(np.argpartition(far, -m)[: -m - 1 : -1].copy(), device=Z.device)
        old, wp = labels[picked], w[picked].to(_STAT)
        xw = X[picked].to(_STAT) * wp[:, None]
        for j, (new_id, old_id) in enumerate(zip(empty.tolist(), old.tolist())):
            sums[old_id] -= xw[j]
            sums[new_id] = xw[j]
            weight[new_id] = wp[j]
            weight[old_id] -= wp[j]

    def _inertia(self, Z, w, centers, labels):
        """Weighted sum of squared distances to the assigned centres, from exact differences."""
        X = kernels.design_x(Z, "spherical", centers.shape[1])
        total = torch.zeros((), dtype=_STAT, device=Z.device)
        for sl in self._chunks(Z.shape[0]):
            diff = X[sl].to(_STAT) - centers[labels[sl]]
            total += ((diff * diff).sum(1) * w[sl]).sum()
        return float(total)

    # ------------------------------------------------------------ fitted model
    def _fitted(self, X):
        """Validated ``X`` as a design centred like the training data, and the centres (float64,
        same coordinates) of ``cluster_centers_``."""
        X = self._validate_data(X, reset=False)
        centers = torch.as_tensor(self.cluster_centers_, device=X.device).to(_STAT) - self._shift
        self._chunk = kernels.chunk_rows("spherical", centers.shape[0], centers.shape[1])
        return X, centers

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_``.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        X, centers = self._fitted(X)
        Z = kernels.design(X, "spherical", self._shift)
        labels = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
        self._labels_into(Z, centers, labels)
        return labels.to(torch.int32).cpu().numpy()

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X, sample_weight=sample_weight).transform(X)``.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def transform(self, X):
        """Euclidean distances to the cluster centres, computed in float64 (exactly 0 for a
        sample on a centre).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters), in the data dtype
        """
        X, centers = self._fitted(X)
        norms = (centers * centers).sum(1)
        out = []
        for sl in self._chunks(X.shape[0]):
            z = kernels.design(X[sl].to(_STAT), "spherical", self._shift)
            d2 = kernels.sq_distances(z, centers)
            # where the expansion |x|^2 - 2 x.c + |c|^2 is within its rounding of 0, exact
            # differences: a point on a centre is at distance 0, not 1e-8
            near = d2 <= _NEAR_ZERO * (z[:, :1] + norms)
            if bool(near.any()):
                i, j = near.nonzero(as_tuple=True)
                diff = kernels.design_x(z, "spherical", centers.shape[1])[i] - centers[j]
                d2[i, j] = (diff * diff).sum(1)
            out.append(d2.sqrt_())
        return to_numpy(torch.cat(out), self._fit_dtype)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the weighted inertia of ``X`` with respect to the centres.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like or tensor of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        X, centers = self._fitted(X)
        w = _sample_weight(sample_weight, X.shape[0], X.dtype, X.device)
        Z = kernels.design(X, "spherical", self._shift)
        labels = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
        self._labels_into(Z, centers, labels)
        return -self._inertia(Z, w, centers, labels)


#: Squared distances below this fraction of ``|x|^2 + |c|^2`` are recomputed from differences
#: (the expansion's rounding error is about ``n_features * eps`` of that sum).
_NEAR_ZERO = 1e-8
