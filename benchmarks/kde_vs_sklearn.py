"""Time kernel density scoring: zoo.density.KernelDensity against scikit-learn's KernelDensity.

Both score the same queries against the same training points (standard normal data, Gaussian
kernel, bandwidth "scott" = n^(-1/(d+4)) as scikit-learn defines it), in one process, warm-up
first, best of ``--repeats`` alternating runs, each after a short pause (``--pause``) so that the
other library's spinning thread pool does not steal the cores. Times are whole ``score_samples``
calls (validation, distances, sums); the fits (ours stores the data, scikit-learn builds its
tree) are not timed. Prints a table and one JSON line per case; ``ratio`` is scikit-learn's time
over ours (> 1: we are faster).

scikit-learn is timed at its default tolerances and at ``rtol=0, atol=0`` (its exact mode). In
scikit-learn 1.9.1 the defaults *are* ``rtol=0, atol=0``: the script then says so and times that
configuration once. ``--sklearn-rtol 1e-4`` adds an approximate configuration.

Accuracy: the log densities of ``--check`` queries are compared with an exact float64 reference
(direct differences, SciPy's logsumexp); ours must agree to 1e-10 relative (the script fails
otherwise). Ours is also compared with scikit-learn's exact mode on every query. scikit-learn's
tree keeps its running bounds with log-space subtractions, which leave a rounding floor: where
the mean kernel value is below about e^-10 (most queries at D=32) its "exact" values drift from
the true sum, so the table gives the difference on all queries and on those above that floor.

    python benchmarks/kde_vs_sklearn.py            # 20k queries x 20k training points, D = 2, 8, 32
    python benchmarks/kde_vs_sklearn.py --quick    # 4k x 4k
    python benchmarks/kde_vs_sklearn.py --device cuda

OpenMP's wait policy: the script sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already
sets it (``OMP_WAIT_POLICY=ACTIVE python benchmarks/kde_vs_sklearn.py`` for torch's default
spinning). Our scorer runs four short parallel operations per block; with spinning waits, a
second process on one of the two cores stalls every one of them (measured: 8k x 8k, D=32, one
busy process beside it: 2.9-3.3 s spinning, 0.3-0.4 s passive, 0.26-0.46 s on one thread).
scikit-learn's KernelDensity is single-threaded Cython and does not use OpenMP.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

# read by OpenMP once, when torch loads (see the docstring)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.neighbors import KernelDensity as SkKernelDensity  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from zoo.density import KernelDensity  # noqa: E402

TOLERANCE = 1e-10


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def exact_log_density(X, Q, h, chunk=500):
    """Gaussian KDE log density of the rows of Q: direct differences in float64, SciPy's logsumexp."""
    n, d = X.shape
    out = np.empty(len(Q))
    for s in range(0, len(Q), chunk):
        sq = cdist(Q[s : s + chunk], X, "sqeuclidean")
        out[s : s + chunk] = logsumexp(-0.5 * sq / h**2, axis=1)
    return out - math.log(n) - 0.5 * d * math.log(2 * math.pi) - d * math.log(h)


def rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def run_case(d, n, m, repeats, device, pause, sklearn_configs, n_check, skip_sklearn=False, seed=0):
    rng = np.random.default_rng(seed + d)
    X, Q = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    ours = KernelDensity(bandwidth="scott").fit(torch.as_tensor(X, device=device))
    Qt = torch.as_tensor(Q, device=device)  # queries already on the device
    h = ours.bandwidth_
    refs = {name: SkKernelDensity(bandwidth="scott", **kw).fit(X) for name, kw in sklearn_configs.items()}
    assert all(r.bandwidth_ == h for r in refs.values())

    def time_ours():
        time.sleep(pause)  # let the other library's idle threads stop spinning
        sync(device)
        t0 = time.perf_counter()
        out = ours.score_samples(Qt)
        sync(device)
        return time.perf_counter() - t0, out

    def time_ref(ref):
        time.sleep(pause)
        t0 = time.perf_counter()
        out = ref.score_samples(Q)
        return time.perf_counter() - t0, out

    ours.score_samples(Qt[: min(m, 2000)])  # warm-up (kernels, allocator, lazy imports)
    if not skip_sklearn:
        for ref in refs.values():
            ref.score_samples(Q[: min(m, 500)])
    t_ours, t_ref, outs = [], {name: [] for name in refs}, {}
    for _ in range(repeats):  # alternate so that both see the same background load
        t, outs["ours"] = time_ours()
        t_ours.append(t)
        if not skip_sklearn:
            for name, ref in refs.items():
                t, outs[name] = time_ref(ref)
                t_ref[name].append(t)
    check = np.linspace(0, m - 1, min(n_check, m)).astype(int)
    exact = exact_log_density(X, Q[check], h)
    row = {
        "case": f"gaussian-N{n}-M{m}-D{d}",
        "n_train": n, "n_queries": m, "n_features": d, "bandwidth": h,
        "dtype": "float64", "device": str(device), "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": os.getloadavg(),
        "ours_s": min(t_ours), "ours_all_s": t_ours,
        "ours_vs_exact": rel(outs["ours"][check], exact), "n_checked": len(check),
    }
    if not skip_sklearn:
        exact_name = next(name for name, kw in sklearn_configs.items() if kw["rtol"] == 0 and kw["atol"] == 0)
        sk = outs[exact_name]
        log_mean_kernel = outs["ours"] + 0.5 * d * math.log(2 * math.pi) + d * math.log(h)
        above = log_mean_kernel > -10
        row.update(
            sklearn_exact_vs_exact=rel(sk[check], exact),
            ours_vs_sklearn_exact=rel(outs["ours"], sk),
            ours_vs_sklearn_exact_above_floor=rel(outs["ours"][above], sk[above]) if above.any() else None,
            n_above_floor=int(above.sum()),
        )
        for name in refs:
            row[f"sklearn_{name}_s"] = min(t_ref[name])
            row[f"sklearn_{name}_all_s"] = t_ref[name]
            row[f"ratio_{name}"] = min(t_ref[name]) / min(t_ours)
            if name != exact_name:
                row[f"sklearn_{name}_vs_exact"] = rel(outs[name][check], exact)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (4k queries x 4k training points)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dims", default="2,8,32", help="comma-separated numbers of features")
    parser.add_argument("-N", type=int, default=None, help="training points (default 20000, quick 4000)")
    parser.add_argument("-M", type=int, default=None, help="queries (default 20000, quick 4000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.5,
                        help="seconds of sleep before each timed call: idle threads of one library spin for "
                             "a while after a call and slow the other")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--sklearn-rtol", type=float, action="append", default=[],
                        help="also time scikit-learn at this rtol (repeatable), e.g. 1e-4")
    parser.add_argument("--check", type=int, default=1000, help="queries checked against the exact reference")
    parser.add_argument("--no-sklearn", action="store_true", help="time ours only (e.g. big GPU cases)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available; nothing to time on a GPU.", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    n = args.N or (4000 if args.quick else 20_000)
    m = args.M or (4000 if args.quick else 20_000)
    dims = [int(x) for x in args.dims.split(",") if x.strip()]

    defaults = SkKernelDensity().get_params()
    configs = {"default": {"rtol": defaults["rtol"], "atol": defaults["atol"]}}
    same = defaults["rtol"] == 0 and defaults["atol"] == 0
    if not same:
        configs["rtol0"] = {"rtol": 0, "atol": 0}
    for r in args.sklearn_rtol:
        configs[f"rtol{r:g}"] = {"rtol": r, "atol": 0}

    load = os.getloadavg()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f"; {os.cpu_count()} cores, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if same:
        print("# scikit-learn's default tolerances are rtol=0, atol=0 (its exact mode): timed once, as 'default'")
    names = list(configs)
    header = f"{'case':<30}{'ours (s)':>10}"
    for name in names:
        header += f"{'sk ' + name + ' (s)':>18}{'ratio':>8}"
    header += f"{'ours/exact':>12}{'sk/exact':>10}{'ours/sk':>10}{'ours/sk>floor':>15}"
    print(header)
    rows, failed = [], False
    for d in dims:
        row = run_case(d, n, m, args.repeats, device, args.pause, configs, args.check, skip_sklearn=args.no_sklearn)
        rows.append(row)
        line = f"{row['case']:<30}{row['ours_s']:>10.3f}"
        for name in names:
            if args.no_sklearn:
                line += f"{'-':>18}{'-':>8}"
            else:
                line += f"{row[f'sklearn_{name}_s']:>18.3f}{row[f'ratio_{name}']:>8.2f}"
        line += f"{row['ours_vs_exact']:>12.1e}"
        if not args.no_sklearn:
            above = row["ours_vs_sklearn_exact_above_floor"]
            line += (f"{row['sklearn_exact_vs_exact']:>10.1e}{row['ours_vs_sklearn_exact']:>10.1e}"
                     + (f"{above:>9.1e} ({row['n_above_floor']})" if above is not None else f"{'-':>15}"))
        print(line, flush=True)
        failed |= row["ours_vs_exact"] > TOLERANCE
    load = os.getloadavg()
    print(f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for row in rows:
        print(json.dumps(row))
    if failed:
        print(f"our log densities differ from the exact reference by more than {TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
