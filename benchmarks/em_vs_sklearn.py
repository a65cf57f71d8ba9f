"""Time EM for Gaussian mixtures: zoo.mixture.GaussianMixture against scikit-learn.

Both fit the same data from the same initial weights, means and precisions for
the same fixed number of iterations (``tol=0``: neither can stop early; checked
through ``n_iter_``), in one process, warm-up first, best of ``--repeats``
alternating runs, each after a short pause (``--pause``) so that the other
library's spinning thread pool does not steal the cores. Times are whole
``fit`` calls (validation, set-up, iterations, final E-step) for both. Prints
a table and one JSON line per case; ``ratio`` is scikit-learn's time over ours
(> 1: we are faster).

    python benchmarks/em_vs_sklearn.py            # N=100k, D=32, K=32, float64 and float32
    python benchmarks/em_vs_sklearn.py --quick    # small sizes
    python benchmarks/em_vs_sklearn.py --dtype float32

Both libraries get the same arrays: float32 data and initial parameters for the float32 rows
(our fit then computes and returns float32, as scikit-learn's attributes are).
    python benchmarks/em_vs_sklearn.py --device cuda

With ``--device cuda`` our fit runs on the GPU (scikit-learn on the CPU).

FLOP rate. For every case the report adds how close one of our EM iterations comes
to the machine's matrix-multiply rate, both measured in the same run on the same
device and dtype:

* ``gemm_gflops``: the best rate of a plain square product ``(m, m) @ (m, m)``
  (``m`` = 2048 on the CPU, 8192 on a GPU), i.e. what the BLAS reaches at best;
* ``iter_s``: the time of one EM iteration (E-step, statistics and M-step), timed
  around the driver's ``_em_iteration`` hook inside the timed fits: the mean over the
  iterations of a fit, best over the fits;
* ``em_flops_per_iter`` (:func:`em_flops`): 2 x the multiply-adds of the matrix
  products that our formulation of an iteration performs, nothing else (the
  exponentials, maxima, sums and scalings of the responsibilities and the M-step
  on (K, D, D) blocks are not counted). With ``P' = (D+1)(D+2)/2``, the number of
  distinct products ``z_i z_j`` of a design row ``z = [x, 1]``:

  - full: scores ``2 N K P'`` (a quadratic form per component on the packed
    products) and statistics ``2 N K P'`` (``sum_n r_nk z_n z_n^T``, each symmetric
    matrix once); where our scores take the exact route instead (float32, or
    parameters failing the accuracy guard) the scores count ``2 N (D+1) K D``
    (``[x, 1] @ [U_k; -mu_k U_k]`` for every component);
  - tied: ``2 N D D`` (whitening) + ``2 N D K`` (scores) + ``2 N (D+1) K``
    (statistics);
  - diag: ``2 N K (2D+1)`` each for scores and statistics (design ``[x*x, x, 1]``);
  - spherical: ``2 N K (D+2)`` each (design ``[|x|^2, x, 1]``);

* ``flop_fraction`` = ``em_flops_per_iter / iter_s / gemm_rate``.

scikit-learn's own formulation (``(X - mu_k) U_k`` and ``diff^T (r * diff)`` per
component) needs about ``4 N K D^2`` for full, nearly twice our count at D=32.
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
from sklearn.mixture import GaussianMixture as SkGaussianMixture

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from zoo.mixture import GaussianMixture  # noqa: E402

COV_TYPES = ("full", "diag", "tied", "spherical")


def make_problem(n, d, k, seed=0):
    """A K-component Gaussian mixture sample and shared initial parameters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(k, size=n)
    X = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[labels]
    means = X[rng.choice(n, k, replace=False)]
    var = X.var(0)
    prec = {
        "full": np.stack([np.diag(1.0 / var)] * k),
        "tied": np.diag(1.0 / var),
        "diag": np.tile(1.0 / var, (k, 1)),
        "spherical": np.full(k, 1.0 / var.mean()),
    }
    return X, means, prec


def em_flops(cov_type, n, d, k, packed_scores=True):
    """2 x the multiply-adds of the matrix products of one of our EM iterations (see the
    module doc): ``packed_scores`` tells whether full scores ran on the packed products."""
    if cov_type == "full":
        packed = (d + 1) * (d + 2) // 2  # distinct products z_i z_j of z = [x, 1]
        scores = 2 * n * k * packed if packed_scores else 2 * n * (d + 1) * k * d
        return scores + 2 * n * k * packed
    if cov_type == "tied":
        return 2 * n * d * d + 2 * n * d * k + 2 * n * (d + 1) * k
    p = 2 * d + 1 if cov_type == "diag" else d + 2
    return 2 * 2 * n * p * k


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_GEMM_RATES = {}


def gemm_rate(dtype, device, repeats=5):
    """FLOP/s of a plain square product (m, m) @ (m, m) on ``device`` (best of ``repeats``;
    m = 2048 on the CPU, 8192 on a GPU), measured once per run, device and dtype."""
    key = (str(device), dtype)
    if key not in _GEMM_RATES:
        m = 8192 if device.type == "cuda" else 2048
        a = torch.randn(m, m, dtype=dtype, device=device)
        b = torch.randn(m, m, dtype=dtype, device=device)
        out = torch.empty(m, m, dtype=dtype, device=device)
        best = float("inf")
        for _ in range(repeats + 1):
            sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            sync(device)
            best = min(best, time.perf_counter() - t0)
        _GEMM_RATES[key] = 2 * m**3 / best
    return _GEMM_RATES[key]


def run_case(cov_type, n, d, k, n_iter, repeats, device, dtype, skip_sklearn=False, pause=0.5):
    X, means, prec = make_problem(n, d, k)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64  # data and initial parameters alike
    common = dict(covariance_type=cov_type, tol=0.0, max_iter=n_iter, weights_init=np.full(k, 1.0 / k, dtype=np_dtype),
                  means_init=means.astype(np_dtype), precisions_init=prec[cov_type].astype(np_dtype))
    ours = GaussianMixture(k, device=device, dtype=dtype, **common)
    ref = SkGaussianMixture(k, **common)
    Xt = torch.as_tensor(X, dtype=dtype, device=device)  # data already on the device
    Xs = X.astype(np_dtype)

    iteration, iter_times = ours._em_iteration, []

    def timed_iteration(data, temperature):  # the driver's hook, timed
        sync(device)
        t0 = time.perf_counter()
        bound = iteration(data, temperature)
        sync(device)
        iter_times[-1] += time.perf_counter() - t0
        return bound

    ours._em_iteration = timed_iteration

    def time_ours():
        time.sleep(pause)  # let the other library's idle BLAS/OpenMP threads stop spinning
        iter_times.append(0.0)
        sync(device)
        t0 = time.perf_counter()
        ours.fit(Xt)
        sync(device)
        return time.perf_counter() - t0

    def time_ref():
        time.sleep(pause)
        t0 = time.perf_counter()
        ref.fit(Xs)
        return time.perf_counter() - t0

    t_ours, t_ref = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        time_ours()  # warm-up (kernels, allocator, lazy imports)
        if not skip_sklearn:
            time_ref()
        for _ in range(repeats):  # alternate so that both see the same background load
            t_ours.append(time_ours())
            if not skip_sklearn:
                t_ref.append(time_ref())
    assert ours.n_iter_ == n_iter, (ours.n_iter_, n_iter)
    packed = cov_type != "full" or "Bt" in ours._coef  # the route our full scores took
    rate = gemm_rate(dtype, device)
    iter_s = min(iter_times[1:]) / n_iter
    flops = em_flops(cov_type, n, d, k, packed_scores=packed)
    row = {
        "case": f"{cov_type}-N{n}-D{d}-K{k}",
        "covariance_type": cov_type,
        "n_samples": n,
        "n_features": d,
        "n_components": k,
        "n_iter": n_iter,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "ours_s": min(t_ours),
        "ours_all_s": t_ours,
        "iter_s": iter_s,
        "scores": ("packed" if packed else "exact") if cov_type == "full" else "plain",
        "em_flops_per_iter": flops,
        "em_gflops": flops / iter_s / 1e9,
        "gemm_gflops": rate / 1e9,
        "flop_fraction": flops / iter_s / rate,
    }
    if not skip_sklearn:
        assert ref.n_iter_ == n_iter, (ref.n_iter_, n_iter)
        row.update(
            sklearn_s=min(t_ref),
            sklearn_all_s=t_ref,
            ratio=min(t_ref) / min(t_ours),
            lower_bound_rel_diff=float(abs(ours.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_)),
        )
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (N=20k, D=16, K=16, 5 iterations)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="both", choices=["both", "float64", "float32"])
    parser.add_argument("--n-iter", type=int, default=None, help="EM iterations per fit (default 10, quick 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(COV_TYPES), help="comma-separated covariance types")
    parser.add_argument("--pause", type=float, default=0.5,
                        help="seconds of sleep before each timed fit: idle threads of NumPy's OpenBLAS "
                             "and torch's OpenMP spin for a while after a call and slow the other library")
    parser.add_argument("--no-sklearn", action="store_true", help="time ours only (e.g. big GPU cases)")
    parser.add_argument("-N", type=int, default=None)
    parser.add_argument("-D", type=int, default=None)
    parser.add_argument("-K", type=int, default=None)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available; nothing to time on a GPU.", file=sys.stderr)
        return 2
    n, d, k = (20_000, 16, 16) if args.quick else (100_000, 32, 32)
    n, d, k = args.N or n, args.D or d, args.K or k
    n_iter = args.n_iter or (5 if args.quick else 10)
    dtypes = [torch.float64, torch.float32] if args.dtype == "both" else [getattr(torch, args.dtype)]

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print("# iter: one EM iteration (timed inside the fits); EM GF/s: 2 x the multiply-adds of its "
          "matrix products (em_flops) per second; GEMM GF/s: a square (m, m) @ (m, m) product, same device "
          "and dtype; frac = EM / GEMM")
    header = f"{'case':<28}{'dtype':>8}{'ours (s)':>10}{'sklearn (s)':>13}{'ratio':>8}{'iter (ms)':>11}"
    header += f"{'GEMM GF/s':>11}{'EM GF/s':>9}{'frac':>7}"
    print(header)
    rows = []
    cases = [(c.strip(), dt) for c in args.cases.split(",") if c.strip() for dt in dtypes]
    for cov_type, dtype in cases:
        row = run_case(cov_type, n, d, k, n_iter, args.repeats, device, dtype, skip_sklearn=args.no_sklearn,
                       pause=args.pause)
        rows.append(row)
        line = f"{row['case']:<28}{row['dtype']:>8}{row['ours_s']:>10.3f}"
        line += f"{row['sklearn_s']:>13.3f}{row['ratio']:>8.2f}" if "ratio" in row else f"{'-':>13}{'-':>8}"
        line += f"{1e3 * row['iter_s']:>11.1f}"
        line += f"{row['gemm_gflops']:>11.1f}{row['em_gflops']:>9.1f}{row['flop_fraction']:>7.2f}"
        print(line, flush=True)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
