"""CAVI against SVI on the same Pyro model (zoo.mixture.BayesianGMM) and data.

CAVI (``inference.cavi.fit_cavi``, closed-form coordinate updates) and SVI
(``inference.fit(method="svi")`` with the conjugate ``custom`` guide and the mean-field
``normal`` guide; Adam, the assignment enumerated) fit the same model to the same data.
Every fit is scored on two objectives, each estimated with many particles at the end:

* ``mf_elbo``: the mean-field ELBO of the fit's ``q(theta)`` with the best factorised
  ``q(z)`` -- the objective CAVI maximises (for CAVI it is also given in closed form);
* ``enum_elbo``: ``TraceEnum_ELBO``, the assignment summed out exactly -- the objective
  SVI maximises. For the same ``q(theta)`` it is never below ``mf_elbo``.

Prints a table and one JSON line per fit (times are whole fits, samples excluded).

    python benchmarks/cavi_vs_svi.py                  # N=300, K=3, full and diag
    python benchmarks/cavi_vs_svi.py --quick          # N=90, fewer SVI steps and particles
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import inference  # noqa: E402
from inference.cavi import enumerated_elbo, fit_cavi, mean_field_elbo  # noqa: E402
from zoo.mixture import BayesianGMM  # noqa: E402


def make_data(n, seed=0, sep=5.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [sep, 0.0], [0.0, sep]])
    labels = rng.integers(3, size=n)
    return centres[labels] + rng.normal(size=(n, 2)) * rng.uniform(0.6, 1.4, size=(3, 2))[labels]


def run(cov, prior, X, k, num_steps, lr, particles, seed=0):
    model = BayesianGMM(k, covariance_type=cov, weight_concentration_prior_type=prior)
    rows = []
    t0 = time.perf_counter()
    r = fit_cavi(model, X, max_iter=1000, tol=1e-8, seed=seed, num_samples=1, progress_bar=False)
    t_cavi = time.perf_counter() - t0
    fits = [("cavi", r.guide, t_cavi, r.posterior_guide.n_iter_, r.posterior_guide.elbo_)]
    for guide in ("custom", "normal"):
        t0 = time.perf_counter()
        s = inference.fit(model, X, method="svi", guide=guide, num_steps=num_steps, lr=lr, seed=seed,
                          num_samples=1, progress_bar=False)
        fits.append((f"svi/{guide}", s.guide, time.perf_counter() - t0, len(s.losses), None))
    for name, guide, seconds, steps, closed in fits:
        mf, mf_se = mean_field_elbo(model, guide, r.data, num_particles=particles, seed=seed)
        en, en_se = enumerated_elbo(model, guide, r.data, num_particles=max(50, particles // 4), seed=seed)
        rows.append({"case": f"{cov}-{'dp' if prior == 'dirichlet_process' else 'dir'}", "fit": name,
                     "n_samples": X.shape[0], "n_components": k, "iterations": steps, "time_s": seconds,
                     "mf_elbo": closed if closed is not None else mf, "mf_elbo_mc": mf, "mf_elbo_se": mf_se,
                     "enum_elbo": en, "enum_elbo_se": en_se})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-N", type=int, default=None)
    parser.add_argument("-K", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="SVI steps (default 2000, quick 200)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--particles", type=int, default=None, help="particles of the final estimates")
    parser.add_argument("--cases", default="full,diag")
    parser.add_argument("--prior", default="dirichlet_process",
                        choices=["dirichlet_process", "dirichlet_distribution"])
    args = parser.parse_args(argv)
    n = args.N or (90 if args.quick else 300)
    steps = args.steps or (200 if args.quick else 2000)
    particles = args.particles or (100 if args.quick else 1000)
    X = make_data(n)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; N={n}, K={args.K}, SVI steps={steps}")
    print(f"{'case':<10}{'fit':<12}{'iters':>7}{'time (s)':>10}{'mf ELBO':>12}{'enum ELBO':>12}")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cov in [c.strip() for c in args.cases.split(",") if c.strip()]:
            for row in run(cov, args.prior, X, args.K, steps, args.lr, particles):
                rows.append(row)
                print(f"{row['case']:<10}{row['fit']:<12}{row['iterations']:>7}{row['time_s']:>10.2f}"
                      f"{row['mf_elbo']:>12.2f}{row['enum_elbo']:>12.2f}", flush=True)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
