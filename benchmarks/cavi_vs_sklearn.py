"""Time CAVI for the Bayesian Gaussian mixture: zoo.BayesianGaussianMixture against
scikit-learn's ``BayesianGaussianMixture``.

Both fit the same data from the same initial responsibilities (``init_params=
"random_from_data"`` with the same seed draws the same one-hot rows in both) for the
same number of iterations (``tol=0``: neither stops early; checked through
``n_iter_``), float64, in one process, warm-up first, best of ``--repeats``
alternating runs after a short pause. Times are whole ``fit`` calls. Prints a table
and one JSON line per case; ``ratio`` is scikit-learn's time over ours (> 1: we are
faster); ``lower_bound_rel_diff`` compares the final bounds.

    python benchmarks/cavi_vs_sklearn.py            # N=100k, D=16, K=16, 2 threads
    python benchmarks/cavi_vs_sklearn.py --quick    # N=10k, D=8, K=8
    python benchmarks/cavi_vs_sklearn.py --device cuda
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
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from zoo.mixture import BayesianGaussianMixture  # noqa: E402

COV_TYPES = ("full", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def make_problem(n, d, k, seed=0):
    """A K-component Gaussian mixture sample (N, D)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[labels]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(cov_type, prior_type, X, k, n_iter, repeats, device, pause=0.5, skip_sklearn=False):
    n, d = X.shape
    common = dict(covariance_type=cov_type, weight_concentration_prior_type=prior_type, tol=0.0,
                  max_iter=n_iter, init_params="random_from_data", random_state=0)
    ours = BayesianGaussianMixture(n_components=k, device=device, **common)
    ref = SkBayesianGaussianMixture(n_components=k, **common)
    Xt = torch.as_tensor(X, dtype=torch.float64, device=device)

    def timed(fn):
        time.sleep(pause)  # let the other library's idle thread pool stop spinning
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    t_ours, t_ref = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        timed(lambda: ours.fit(Xt))  # warm-up
        if not skip_sklearn:
            timed(lambda: ref.fit(X))
        for _ in range(repeats):
            t_ours.append(timed(lambda: ours.fit(Xt)))
            if not skip_sklearn:
                t_ref.append(timed(lambda: ref.fit(X)))
    assert ours.n_iter_ == n_iter, (ours.n_iter_, n_iter)
    row = {"case": f"{cov_type}-{'dp' if prior_type == 'dirichlet_process' else 'dir'}-N{n}-D{d}-K{k}",
           "covariance_type": cov_type, "weight_concentration_prior_type": prior_type, "n_samples": n,
           "n_features": d, "n_components": k, "n_iter": n_iter, "dtype": "float64", "device": str(device),
           "threads": torch.get_num_threads(), "ours_s": min(t_ours), "ours_all_s": t_ours}
    if not skip_sklearn:
        assert ref.n_iter_ == n_iter, (ref.n_iter_, n_iter)
        row.update(sklearn_s=min(t_ref), sklearn_all_s=t_ref, ratio=min(t_ref) / min(t_ours),
                   lower_bound_rel_diff=abs(ours.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (N=10k, D=8, K=8, 5 iterations)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (scikit-learn's BLAS: set "
                        "OMP_NUM_THREADS/OPENBLAS_NUM_THREADS in the environment to match)")
    parser.add_argument("--n-iter", type=int, default=None, help="iterations per fit (default 10, quick 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(COV_TYPES), help="comma-separated covariance types")
    parser.add_argument("--priors", default=",".join(PRIOR_TYPES), help="comma-separated weight prior types")
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--no-sklearn", action="store_true", help="time ours only")
    parser.add_argument("-N", type=int, default=None)
    parser.add_argument("-D", type=int, default=None)
    parser.add_argument("-K", type=int, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available.", file=sys.stderr)
        return 2
    n, d, k = (10_000, 8, 8) if args.quick else (100_000, 16, 16)
    n, d, k = args.N or n, args.D or d, args.K or k
    n_iter = args.n_iter or (5 if args.quick else 10)
    X = make_problem(n, d, k)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"{'case':<30}{'ours (s)':>10}{'sklearn (s)':>13}{'ratio':>8}{'iter (ms)':>11}")
    rows = []
    for cov_type in [c.strip() for c in args.cases.split(",") if c.strip()]:
        for prior_type in [p.strip() for p in args.priors.split(",") if p.strip()]:
            row = run_case(cov_type, prior_type, X, k, n_iter, args.repeats, device, pause=args.pause,
                           skip_sklearn=args.no_sklearn)
            rows.append(row)
            line = f"{row['case']:<30}{row['ours_s']:>10.3f}"
            line += f"{row['sklearn_s']:>13.3f}{row['ratio']:>8.2f}" if "ratio" in row else f"{'-':>13}{'-':>8}"
            print(line + f"{1e3 * row['ours_s'] / n_iter:>11.1f}", flush=True)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
