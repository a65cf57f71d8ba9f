"""Step-size schedules of the streaming mixtures: how far one pass of ``partial_fit`` lands from
the batch fit of the same rows, per ``learning_decay`` and ``learning_offset``.

The mixture of ``tests/test_online_mixture.py`` (D=6, K=5, centres 7 apart, random covariances);
for each seed, fresh rows, a batch fit (``GaussianMixture.fit`` or ``BayesianGaussianMixture.fit``)
and one pass per schedule in chunks of ``--chunk`` rows; the figure is the relative gap of the
held-out log-likelihood per sample, ``(batch - online) / |batch|`` (negative: the pass did
better). Both take the best of ``--n-init`` initialisations (the pass on its first chunk, where
its optimum is chosen: with one, a k-means start on one chunk sometimes merges two components
and no later step splits them, a failure of the start, not of the schedule). Prints one line per
schedule and one JSON line per (schedule, seed).

    python benchmarks/online_schedule.py                     # 1e5 rows, chunks of 100 and 1000
    python benchmarks/online_schedule.py --model bgmm --rows 1000000 --chunk 2000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.mixture import BayesianGaussianMixture, GaussianMixture  # noqa: E402

K, D = 5, 6


def truth():
    rng = np.random.default_rng(0)
    a = 0.3 * rng.normal(size=(K, D, D)) + np.eye(D)
    return rng.dirichlet(np.full(K, 5.0)), 5.0 * np.eye(K, D), np.einsum("kij,klj->kil", a, a)


def draw(n, seed, weights, centres, covariances):
    rng = np.random.default_rng(seed)
    labels = rng.choice(K, size=n, p=weights)
    chol = np.linalg.cholesky(covariances)
    return centres[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, D)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["gmm", "bgmm"], default="gmm")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--decay", type=float, nargs="+", default=[0.6, 0.7, 0.85, 1.0])
    ap.add_argument("--offset", type=float, nargs="+", default=[0.0, 10.0, 100.0])
    ap.add_argument("--n-init", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = truth()
    held_out = draw(100_000, 1, *params)
    if args.model == "gmm":
        def make(**kw):
            return GaussianMixture(K, random_state=0, n_init=args.n_init, **kw)
    else:
        def make(**kw):
            return BayesianGaussianMixture(n_components=K, random_state=0, n_init=args.n_init, total_samples=args.rows,
                                           **kw)
    for chunk in args.chunk:
        gaps = {}
        for seed in range(args.seeds):
            X = draw(args.rows, 100 + seed, *params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                batch = make().fit(X).score(held_out)
            for decay in args.decay:
                for offset in args.offset:
                    t0 = time.perf_counter()
                    est = make(learning_decay=decay, learning_offset=offset)
                    for s in range(0, args.rows, chunk):
                        est.partial_fit(X[s:s + chunk])
                    seconds = time.perf_counter() - t0
                    gap = (batch - est.score(held_out)) / abs(batch)
                    gaps.setdefault((decay, offset), []).append(gap)
                    print(json.dumps(dict(model=args.model, rows=args.rows, chunk=chunk, seed=seed, decay=decay,
                                          offset=offset, gap=gap, seconds=round(seconds, 3))))
        print(f"{args.model}, {args.rows} rows in chunks of {chunk}: relative gap to the batch fit per seed")
        for (decay, offset), g in gaps.items():
            print(f"  decay {decay:<5g} offset {offset:<5g} " + " ".join(f"{x:+.2e}" for x in g)
                  + f"   worst {max(g):+.2e}")


if __name__ == "__main__":
    main()
