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

With ``--device cuda`` our fit runs on the GPU (scikit-learn on the CPU) and the
report adds the FLOP rate of an EM iteration as a fraction of the rate measured
for a plain GEMM of comparable size on the same device.
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


def em_flops(cov_type, n, d, k):
    """Multiply-adds x 2 of one EM iteration's matrix products (our formulation)."""
    if cov_type == "full":  # [x,1] @ (D+1, K D)  and  Z^T (R ⊙ Z) over (D+1, K (D+1))
        return 2 * n * (d + 1) * k * d + 2 * n * (d + 1) * k * (d + 1)
    if cov_type == "tied":
        return 2 * n * d * d + 2 * n * d * k + 2 * n * (d + 1) * k
    p = 2 * d + 1 if cov_type == "diag" else d + 2
    return 2 * 2 * n * p * k


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_rate(n, d, k, dtype, device, repeats=5):
    """FLOP/s of a plain (n, D+1) @ (D+1, K D) product on ``device``."""
    a = torch.randn(n, d + 1, dtype=dtype, device=device)
    b = torch.randn(d + 1, k * d, dtype=dtype, device=device)
    rows = max(1, min(n, (1 << 26) // (k * d)))  # keep the output to a few hundred MB
    out = torch.empty(rows, k * d, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        for s in range(0, n, rows):
            torch.mm(a[s : s + rows], b, out=out[: min(rows, n - s)])
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * (d + 1) * k * d / best


def run_case(cov_type, n, d, k, n_iter, repeats, device, dtype, skip_sklearn=False, pause=0.5):
    X, means, prec = make_problem(n, d, k)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64  # data and initial parameters alike
    common = dict(covariance_type=cov_type, tol=0.0, max_iter=n_iter, weights_init=np.full(k, 1.0 / k, dtype=np_dtype),
                  means_init=means.astype(np_dtype), precisions_init=prec[cov_type].astype(np_dtype))
    ours = GaussianMixture(k, device=device, dtype=dtype, **common)
    ref = SkGaussianMixture(k, **common)
    Xt = torch.as_tensor(X, dtype=dtype, device=device)  # data already on the device
    Xs = X.astype(np_dtype)

    def time_ours():
        time.sleep(pause)  # let the other library's idle BLAS/OpenMP threads stop spinning
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
    }
    if not skip_sklearn:
        assert ref.n_iter_ == n_iter, (ref.n_iter_, n_iter)
        row.update(
            sklearn_s=min(t_ref),
            sklearn_all_s=t_ref,
            ratio=min(t_ref) / min(t_ours),
            lower_bound_rel_diff=float(abs(ours.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_)),
        )
    if device.type == "cuda":
        rate = gemm_rate(n, d, k, dtype, device)
        achieved = em_flops(cov_type, n, d, k) * n_iter / min(t_ours)
        row.update(gemm_tflops=rate / 1e12, em_tflops=achieved / 1e12, fraction_of_gemm=achieved / rate)
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
    header = f"{'case':<28}{'dtype':>8}{'ours (s)':>10}{'sklearn (s)':>13}{'ratio':>8}{'iter (ms)':>11}"
    if device.type == "cuda":
        header += f"{'GEMM TF/s':>11}{'EM TF/s':>9}{'frac':>7}"
    print(header)
    rows = []
    cases = [(c.strip(), dt) for c in args.cases.split(",") if c.strip() for dt in dtypes]
    for cov_type, dtype in cases:
        row = run_case(cov_type, n, d, k, n_iter, args.repeats, device, dtype, skip_sklearn=args.no_sklearn,
                       pause=args.pause)
        rows.append(row)
        line = f"{row['case']:<28}{row['dtype']:>8}{row['ours_s']:>10.3f}"
        line += f"{row['sklearn_s']:>13.3f}{row['ratio']:>8.2f}" if "ratio" in row else f"{'-':>13}{'-':>8}"
        line += f"{1e3 * row['ours_s'] / n_iter:>11.1f}"
        if device.type == "cuda":
            line += f"{row['gemm_tflops']:>11.2f}{row['em_tflops']:>9.2f}{row['fraction_of_gemm']:>7.2f}"
        print(line, flush=True)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
