"""What the EM-type estimators need to fit a chunk source, or a shard in a data-parallel run.

A streamed fit (a :mod:`zoo.sources` source, or any data when a ``torch.distributed`` group is
active) never holds the data: each pass reads them again a chunk at a time. Before the first
iteration one pass (:func:`summarize`) gives everything the in-memory fit reads off the whole array:
the number of rows, the mean (the centring shift), the centred scatter matrix (for the default
Bayesian priors, the tied covariance and the collapse threshold), and a uniform sample of rows for the
initialisation (:class:`zoo.sources.Reservoir`). Every sum is float64 and, in a data-parallel run,
all-reduced, so that every rank holds the same summary; the initialisation sample is gathered on
rank 0 (:func:`gather_sample`), which draws the initial parameters and broadcasts them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import distributed
from .._validation import check_device
from sklearn.utils import check_random_state

from .._estimator import _map_tensors, resolve_dtype
from ..sources import DEFAULT_CHUNK_ROWS, ArraySource, Reservoir, as_source, is_source

__all__ = ["DataSummary", "Rows", "summarize", "gather_sample", "open_rows", "to_device", "sample_rng",
           "INIT_SAMPLE_ROWS"]

#: rows of the uniform sample an initialisation reads (all rows when there are no more)
INIT_SAMPLE_ROWS = 100_000
_F64 = torch.float64


@dataclass
class DataSummary:
    """The whole data set as an in-memory fit sees it: ``n`` rows (over all ranks), ``d`` features,
    the float64 ``mean`` (D,) and centred ``scatter`` ``sum_n (x_n - mean)(x_n - mean)^T`` (D, D), and
    the dtype and device of the fit. ``shape`` is ``(n, d)``, as an array's."""

    n: int
    d: int
    mean: torch.Tensor
    scatter: torch.Tensor
    dtype: torch.dtype
    device: torch.device

    @property
    def shape(self):
        return (self.n, self.d)

    def covariance(self, ddof: int = 1) -> torch.Tensor:
        """The sample covariance (D, D), float64 (``ddof=1``: as ``numpy.cov``)."""
        return self.scatter / (self.n - ddof)


class Rows:
    """The rows of a streamed fit: a chunk source (this rank's shard), read again on every pass, in
    blocks of at most ``block`` rows in the fit's dtype and device. ``n`` is the number of rows of
    all ranks, ``n_local`` this rank's."""

    def __init__(self, source, dtype, device, block: int | None = None):
        self.source, self.dtype, self.device, self.block = source, dtype, device, block
        self.n = self.n_local = None

    def blocks(self):
        for chunk in self.source:
            chunk = chunk.to(device=self.device, dtype=self.dtype)
            step = self.block or chunk.shape[0]
            for start in range(0, chunk.shape[0], step):
                yield chunk[start:start + step]


def open_rows(estimator, X, *, reset: bool):
    """``X`` (a source, or an array of this rank's rows) as :class:`Rows`, with the fit's dtype and
    device set on ``estimator`` when ``reset`` (the dtype rules of ``_validate_data``: the ``dtype``
    parameter, else float32 stays float32 and everything else becomes float64) and the number of
    features checked (``n_features_in_``, scikit-learn's message), the same on every rank."""
    if is_source(X):
        source = as_source(X)
        first = source.first_chunk()
        if reset:
            dtype = resolve_dtype(getattr(estimator, "dtype", None))
            if dtype is None:
                dtype = torch.float32 if first.dtype == torch.float32 else _F64
            device = check_device(getattr(estimator, "device", None)) or torch.device("cpu")
            estimator._fit_dtype, estimator._fit_device = dtype, torch.device(device)
    else:  # an in-memory shard: scikit-learn's checks, then read in place
        t = estimator._validate_data(X, reset=reset, ensure_min_samples=1)
        source, first = ArraySource(t, DEFAULT_CHUNK_ROWS), t
    d = first.shape[1]
    dims = distributed.all_gather_object(d)
    if len(set(dims)) > 1:
        raise ValueError(f"the ranks' data have different numbers of features: {dims}")
    if reset:
        estimator.n_features_in_ = d
        if hasattr(estimator, "feature_names_in_") and is_source(X):
            del estimator.feature_names_in_
    elif d != estimator.n_features_in_:
        raise ValueError(f"X has {d} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    return Rows(source, estimator._fit_dtype, estimator._fit_device)


def summarize(rows: Rows, *, sample_rows: int = INIT_SAMPLE_ROWS, rng=None, min_rows: int = 1):
    """One pass over ``rows``: ``(DataSummary, sample)`` with the sums of every rank and this rank's
    uniform sample of at most ``sample_rows`` rows (``rng``: a generator or a callable returning one,
    asked for only when this rank has more rows). Sets ``rows.n`` and ``rows.n_local``."""
    reservoir = Reservoir(sample_rows, rng)
    n_local, total, pilot, gram = 0, None, None, None
    for block in rows.blocks():
        reservoir.add(block)
        x = block.to(_F64)
        if pilot is None:  # scatter about the first block's mean, corrected below: one pass, no cancellation
            pilot = x.mean(0)
            total = torch.zeros_like(pilot)
            gram = torch.zeros((x.shape[1], x.shape[1]), dtype=_F64, device=x.device)
        total += x.sum(0)
        dev = x - pilot
        gram += dev.T @ dev
        n_local += x.shape[0]
    d = rows.source.first_chunk().shape[1] if pilot is None else pilot.shape[0]
    if pilot is None:
        pilot = total = torch.zeros(d, dtype=_F64, device=rows.device)
        gram = torch.zeros((d, d), dtype=_F64, device=rows.device)
    count = torch.tensor([float(n_local)], dtype=_F64, device=total.device)
    count_all, total_all = distributed.all_reduce_sum(count, total)
    n = int(count_all.item())
    if n < min_rows:
        raise ValueError(f"Found array with {n} sample(s) (shape=({n}, {d})) while a minimum of {min_rows} is "
                         "required.")
    mean = total_all / n
    if n_local:
        local_mean = total / n_local
        shift = local_mean - pilot
        gram = gram - n_local * torch.outer(shift, shift)  # about the local mean
        gram = gram + n_local * torch.outer(local_mean - mean, local_mean - mean)  # about the global mean
    (scatter,) = distributed.all_reduce_sum(gram)
    scatter = 0.5 * (scatter + scatter.T)
    rows.n, rows.n_local = n, n_local
    return DataSummary(n, d, mean, scatter, rows.dtype, rows.device), reservoir.sample


def gather_sample(sample, n_local: int, size: int, random_state):
    """On rank 0, a uniform sample of at most ``size`` rows of the union of the ranks' shards from
    their reservoirs (in rank order; all their rows when they hold every row); None elsewhere. Every
    rank must call it. ``random_state`` (rank 0's) is used only when the reservoirs hold more than
    ``size`` rows in all."""
    parts = distributed.all_gather_object((sample, n_local))
    if not distributed.is_main():
        return None
    parts = [(s, n) for s, n in parts if s is not None and n > 0]
    held = sum(s.shape[0] for s, _ in parts)
    if held <= size:
        out = torch.cat([s for s, _ in parts])
    else:  # rows from each reservoir in proportion to its shard's size
        sizes = np.array([n for _, n in parts], dtype=np.float64)
        counts = random_state.multinomial(size, sizes / sizes.sum())
        counts = np.minimum(counts, [s.shape[0] for s, _ in parts])
        out = torch.cat([s[torch.as_tensor(random_state.choice(s.shape[0], c, replace=False))]
                         for (s, _), c in zip(parts, counts)])
    return out


def to_device(obj, device):
    """``obj`` (a dict/list of tensors and plain values) with its tensors on ``device``."""
    return _map_tensors(obj, lambda t: t.to(device))


def sample_rng(random_state):
    """A callable returning this rank's generator for the reservoir sample, seeded from
    ``random_state`` (a draw from a copy for an int, as every ``check_random_state`` of it)."""
    seed = check_random_state(random_state).randint(2**31 - 1)
    return lambda: np.random.default_rng([seed, distributed.rank()])
