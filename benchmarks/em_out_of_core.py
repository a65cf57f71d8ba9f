"""EM of a Gaussian mixture on more rows than one should hold in memory: a memory-mapped ``.npy`` on
disk, read a chunk at a time, against scikit-learn on the rows it can hold, and 2 processes against 1.

    python benchmarks/em_out_of_core.py            # N = 10^7, D = 16, K = 16, full, 10 iterations
    python benchmarks/em_out_of_core.py --quick    # N = 2 x 10^5 (a minute)

One run measures, each fit in a fresh process (so that its memory is its own):

* ``ours-1p``: ``GaussianMixture.fit(np.load(path, mmap_mode="r"))`` in one process, every thread of
  the machine: wall time of the whole ``fit`` (its summary pass, 10 EM passes and nothing else: the
  initial parameters are given), rows per second (N x iterations / wall time) and peak resident memory
  above the interpreter's baseline after its imports (``VmHWM`` reset after the baseline is read; the
  pages of the memory map count while they are resident, so this is what the fit really holds).
* ``ours-1p-1t`` and ``ours-2p``: one process on one thread, and two processes under
  ``torch.distributed.run`` (gloo on the loopback address, one thread each), each reading its half of
  the file's rows. The ratio is the data-parallel speed-up on this machine.
* ``sklearn``: ``sklearn.mixture.GaussianMixture`` on the first ``--sklearn-rows`` rows loaded into
  memory (it needs the whole array and its (N, K) responsibilities), same initial parameters and
  iterations; its peak memory per row gives the largest N it could fit in the machine's memory and in
  the 0.5 GB that ours stays under. The speed ratio is per row: (its seconds per row-iteration) / (ours).

Prints a table and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ memory
def _status(key: str) -> float:
    """A ``/proc/self/status`` entry in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5": reset VmHWM to the current VmRSS
        f.write("5")


# -------------------------------------------------------------------- data
def make_file(path: Path, n: int, d: int, k: int, seed: int = 0, block: int = 200_000) -> None:
    """``n`` rows of a ``k``-component Gaussian mixture in ``d`` dimensions, written a block at a time
    to a temporary file renamed into place."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    factors = rng.normal(size=(k, d, d)) / np.sqrt(d) + 0.7 * np.eye(d)
    tmp = path.with_name(path.name + ".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(n, d))
    for start in range(0, n, block):
        m = min(block, n - start)
        z = rng.integers(k, size=m)
        out[start:start + m] = means[z] + np.einsum("nij,nj->ni", factors[z], rng.normal(size=(m, d)))
    out.flush()
    del out
    os.replace(tmp, path)


def initial_parameters(path: Path, k: int, seed: int = 1):
    """The same start for every fit: uniform weights, K rows of the file as means, unit precisions."""
    X = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(min(X.shape[0], 1_000_000), size=k, replace=False))
    d = X.shape[1]
    return {"weights_init": np.full(k, 1.0 / k), "means_init": np.array(X[rows]),
            "precisions_init": np.tile(np.eye(d), (k, 1, 1))}


# ------------------------------------------------------------------ children
def child(args) -> None:
    """One measured fit; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from zoo import distributed

    distributed.init_from_env("gloo")
    init = initial_parameters(Path(args.path), args.k)
    kw = dict(covariance_type="full", max_iter=args.iters, tol=0.0, **init)
    if args.mode == "sklearn":
        from sklearn.mixture import GaussianMixture as Sk

        est = Sk(args.k, **kw)
        base = _status("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        X = np.array(np.load(args.path, mmap_mode="r")[: args.rows])  # it needs the array in memory
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X)
        rows = X.shape[0]
    else:
        from zoo.mixture import GaussianMixture
        from zoo.sources import ArraySource

        est = GaussianMixture(args.k, **kw)
        array = np.load(args.path, mmap_mode="r")
        r, p = distributed.rank(), distributed.world_size()
        bounds = np.linspace(0, array.shape[0], p + 1).astype(np.int64)
        source = ArraySource(array[bounds[r]:bounds[r + 1]])
        with warnings.catch_warnings():  # warm the kernels on a few rows, then measure
            warnings.simplefilter("ignore", ConvergenceWarning)
            GaussianMixture(args.k, **dict(kw, max_iter=1)).fit(np.array(array[:4096]))
        base = _status("VmRSS")
        distributed.barrier()
        _reset_peak()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(source)
        rows = int(array.shape[0])
    seconds = time.perf_counter() - t0
    assert est.n_iter_ == args.iters
    print(json.dumps({"mode": args.mode, "rank": distributed.rank(), "processes": distributed.world_size(),
                      "threads": args.threads, "rows": rows, "seconds": seconds,
                      "peak_above_baseline_mb": _status("VmHWM") - base, "baseline_mb": base,
                      "lower_bound": float(est.lower_bound_)}), flush=True)


def run_child(args, mode, threads, processes=1, rows=None):
    cmd = [sys.executable, __file__, "--child", mode, "--path", str(args.path), "--k", str(args.k),
           "--iters", str(args.iters), "--threads", str(threads), "--rows", str(rows or 0)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if processes > 1:
        import socket

        with socket.socket() as sock:  # a free port on the loopback address
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}",
               "--master-addr=127.0.0.1", f"--master-port={port}"] + cmd[1:]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    wall = max(line["seconds"] for line in lines)
    peak = max(line["peak_above_baseline_mb"] for line in lines)
    return {"mode": mode, "processes": processes, "threads": threads, "rows": lines[0]["rows"], "seconds": wall,
            "rows_per_s": lines[0]["rows"] * args.iters / wall, "peak_mb": peak,
            "peak_mb_per_rank": [line["peak_above_baseline_mb"] for line in lines],
            "lower_bound": lines[0]["lower_bound"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=None, help="rows of the file (default 10^7; --quick 2 x 10^5)")
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--sklearn-rows", type=int, default=None, help="rows scikit-learn fits (default N / 10)")
    p.add_argument("--path", default=None, help="the .npy file (made when missing)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.mode = args.child
        return child(args)
    n = args.rows or (200_000 if args.quick else 10_000_000)
    sk_rows = args.sklearn_rows or n // 10
    args.path = Path(args.path or ROOT / "runs" / "bench" / f"em_{n}x{args.d}.npy")
    args.path.parent.mkdir(parents=True, exist_ok=True)
    if not args.path.exists():
        t0 = time.perf_counter()
        make_file(args.path, n, args.d, args.k)
        print(f"wrote {args.path} ({args.path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s")
    size_gb = args.path.stat().st_size / 1e9
    results = [run_child(args, "ours-1p", args.threads), run_child(args, "ours-1p-1t", 1),
               run_child(args, "ours-2p", 1, processes=2), run_child(args, "sklearn", args.threads, rows=sk_rows)]
    by = {r["mode"]: r for r in results}
    mem_total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    sk = by["sklearn"]
    sk_mb_per_row = sk["peak_mb"] / sk["rows"]
    per_row_ratio = (sk["seconds"] / sk["rows"]) / (by["ours-1p"]["seconds"] / by["ours-1p"]["rows"])
    print(f"\nEM, full covariance, N = {n:,} rows x D = {args.d}, K = {args.k}, {args.iters} iterations, "
          f"float64 memory map of {size_gb:.2f} GB; {os.cpu_count()} cores")
    print(f"{'run':12s} {'procs':>5s} {'threads':>7s} {'rows':>11s} {'wall s':>8s} {'rows/s':>11s} {'peak MB':>8s}")
    for r in results:
        print(f"{r['mode']:12s} {r['processes']:5d} {r['threads']:7d} {r['rows']:11,d} {r['seconds']:8.1f} "
              f"{r['rows_per_s']:11,.0f} {r['peak_mb']:8.0f}")
    speedup = by["ours-1p-1t"]["seconds"] / by["ours-2p"]["seconds"]
    summary = {
        "benchmark": "em_out_of_core", "n_rows": n, "n_features": args.d, "n_components": args.k,
        "iterations": args.iters, "file_gb": round(size_gb, 3), "cores": os.cpu_count(),
        "ours_wall_s": round(by["ours-1p"]["seconds"], 2), "ours_rows_per_s": round(by["ours-1p"]["rows_per_s"]),
        "ours_peak_mb_above_baseline": round(by["ours-1p"]["peak_mb"], 1),
        "peak_under_500mb": by["ours-1p"]["peak_mb"] < 500 and by["ours-2p"]["peak_mb"] < 500,
        "sklearn_rows": sk["rows"], "sklearn_wall_s": round(sk["seconds"], 2),
        "sklearn_peak_mb_above_baseline": round(sk["peak_mb"], 1),
        "sklearn_max_rows_in_500mb": int(500 / sk_mb_per_row), "sklearn_max_rows_in_ram": int(mem_total_mb / sk_mb_per_row),
        "per_row_ratio_sklearn_over_ours": round(per_row_ratio, 2),
        "one_thread_s": round(by["ours-1p-1t"]["seconds"], 2), "two_processes_s": round(by["ours-2p"]["seconds"], 2),
        "two_processes_peak_mb_per_rank": [round(v, 1) for v in by["ours-2p"]["peak_mb_per_rank"]],
        "two_processes_speedup_over_one_thread": round(speedup, 2),
        "lower_bound_1p_vs_2p": [by["ours-1p"]["lower_bound"], by["ours-2p"]["lower_bound"]],
    }
    print(f"\nours: {summary['ours_rows_per_s']:,} rows/s, peak {summary['ours_peak_mb_above_baseline']} MB above "
          f"baseline (limit 500 MB: {'met' if summary['peak_under_500mb'] else 'MISSED'}); scikit-learn holds "
          f"{sk_mb_per_row * 1e6:.0f} MB per million rows, so at most {summary['sklearn_max_rows_in_500mb']:,} rows in "
          f"500 MB and {summary['sklearn_max_rows_in_ram']:,} in this machine's {mem_total_mb / 1024:.0f} GB; per row "
          f"it is {per_row_ratio:.2f}x our time. 2 processes vs 1 (one thread each): {speedup:.2f}x.")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
