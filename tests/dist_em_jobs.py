"""Rank functions for tests/test_distributed_em.py (run by distributed_harness.run_ranks)."""
import warnings

import numpy as np
import torch

from zoo import distributed
from zoo.mixture import BayesianGaussianMixture, GaussianMixture, KMeans

COV_TYPES = ("full", "tied", "diag", "spherical")


def fitted(est):
    """The fitted attributes the tests compare, as float64 arrays."""
    names = ("weights_", "means_", "covariances_", "precisions_cholesky_", "cluster_centers_", "lower_bound_",
             "inertia_", "n_iter_")
    return {n: np.asarray(getattr(est, n), dtype=np.float64) for n in names if hasattr(est, n)}


def fit_variants(X, K, max_iter, shard_rows, paths):
    """:func:`fit_all` on in-memory shards, on lists of chunks and on each rank's own ``.npy`` file."""
    return {"arrays": fit_all(X, K, max_iter, shard_rows=shard_rows),
            "chunks": fit_all(X, K, max_iter, shard_rows=shard_rows, chunk_rows=250),
            "files": fit_all(X, K, max_iter, paths=paths)}


def fit_all(X, K, max_iter, shard_rows=None, paths=None, chunk_rows=None):
    """Fit every estimator on this rank's shard: rows of ``X`` (``shard_rows`` per rank, in order) or
    this rank's own ``.npy`` file of ``paths``. Returns ``{name: fitted attributes}`` and the labels."""
    r = distributed.rank()
    if paths is not None:
        data = paths[r]
    else:
        start = sum(shard_rows[:r])
        data = X[start:start + shard_rows[r]]
        if chunk_rows is not None:  # a list of chunks: a source read again each pass
            data = [data[i:i + chunk_rows] for i in range(0, data.shape[0], chunk_rows)]
    out = {"rank": r, "world_size": distributed.world_size()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cov in COV_TYPES:
            kw = dict(n_components=K, covariance_type=cov, max_iter=max_iter, tol=0, random_state=0)
            out[f"gmm-{cov}"] = fitted(GaussianMixture(**kw).fit(data))
            out[f"bgmm-{cov}"] = fitted(BayesianGaussianMixture(**kw).fit(data))
        km = KMeans(K, random_state=0, n_init=2).fit(data)
        out["kmeans"] = fitted(km)
        out["kmeans-labels"] = km.labels_
        out["gmm-labels"] = GaussianMixture(K, max_iter=max_iter, tol=0, random_state=0).fit_predict(data)
    return out


def cli_and_refusals(argv, X):
    """``zoo fit-em`` under the group (every rank runs the same command), and the refusal of a method that
    runs in one process."""
    import inference
    import zoo
    from apps.cli import main

    code = main(list(argv))
    try:
        inference.fit(zoo.create_model("gmm", n_components=2), X[:50], method="nuts", num_samples=5, num_warmup=5)
        refusal = None
    except ValueError as exc:
        refusal = str(exc)
    return {"rank": distributed.rank(), "code": code, "refusal": refusal}
