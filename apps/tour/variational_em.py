"""(f) CAVI for the Bayesian mixture: scikit-learn's bound iteration by iteration, and against SVI.

The data, the CAVI-against-scikit-learn table and the CAVI-against-SVI table are public: the tutorial
``variational_em`` prints and plots the same comparisons.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.mixture import BayesianGaussianMixture as SkBGM

import inference
from inference.cavi import enumerated_elbo, fit_cavi, mean_field_elbo
from zoo.mixture import BayesianGaussianMixture, BayesianGMM

from . import Section, Table, TourContext, fmt_vec, tour_section

__all__ = ["three_clusters", "cavi_sklearn_parity", "cavi_vs_svi", "PRIORS"]

#: the two weight priors compared
PRIORS = ("dirichlet_process", "dirichlet_distribution")


def three_clusters(n: int, seed: int = 0) -> np.ndarray:
    """``n`` points from three well-separated unit-variance 2-D Gaussians centred at (0, 0), (6, 0) and
    (0, 6), each point's cluster uniform: (n, 2)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return centres[rng.integers(3, size=n)] + rng.normal(size=(n, 2))


def cavi_sklearn_parity(X, *, seed: int = 0, max_iter: int = 300, status=None):
    """``zoo.BayesianGaussianMixture`` (CAVI) against scikit-learn's ``BayesianGaussianMixture`` on ``X``,
    under each weight prior of :data:`PRIORS`: six components (for three clusters), full covariances,
    concentration 0.01, the same initial responsibilities (``random_from_data`` with ``seed``), tol 1e-6.

    Returns the table (index ``prior``: iterations of each, final bounds, ``max_rel_gap_per_iter`` the
    largest relative difference of the two bounds over the common iterations, the full ELBO, run times
    and the weights of the surplus components) and the fits, prior -> (ours, scikit-learn's)."""
    common = dict(n_components=6, covariance_type="full", weight_concentration_prior=0.01,
                  max_iter=max_iter, tol=1e-6, init_params="random_from_data", random_state=seed)
    rows, fits = [], {}
    for prior in PRIORS:
        if status is not None:
            status(f"CAVI {prior}")
        t0 = time.perf_counter()
        ours = BayesianGaussianMixture(weight_concentration_prior_type=prior, **common).fit(X)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = SkBGM(weight_concentration_prior_type=prior, **common).fit(X)
        t_ref = time.perf_counter() - t0
        fits[prior] = (ours, ref)
        m = min(len(ours.lower_bounds_), len(ref.lower_bounds_))
        gap = np.max(np.abs(np.asarray(ours.lower_bounds_[:m]) - ref.lower_bounds_[:m]) / np.abs(ref.lower_bounds_[:m]))
        w = np.sort(ours.weights_)[::-1]
        rows.append({"prior": prior, "iterations": ours.n_iter_, "sklearn_iterations": ref.n_iter_,
                     "lower_bound": ours.lower_bound_, "sklearn_lower_bound": ref.lower_bound_,
                     "max_rel_gap_per_iter": gap, "elbo (full)": ours.elbo_, "time_s": t_ours, "sklearn_time_s": t_ref,
                     "weights of the 3 unused": fmt_vec(w[3:], 4)})
    return pd.DataFrame(rows).set_index("prior"), fits


def cavi_vs_svi(model, X, *, svi_steps: int, num_particles: int, num_samples: int = 20, seed: int = 0,
                enumerated_particles: int | None = None, status=None):
    """The Pyro mixture ``model`` (``zoo.mixture.BayesianGMM``) fitted to ``X`` by CAVI
    (:func:`inference.cavi.fit_cavi`, at most 500 iterations, tol 1e-8) and by ``svi_steps`` SVI steps
    (lr 0.05) with the conjugate-family guide (``custom``) and the mean-field ``normal`` guide.

    Every fit is scored right after it by the same Monte Carlo mean-field ELBO (``num_particles`` draws
    of q) and, with ``enumerated_particles``, the enumerated ELBO. Returns the table (index ``fit``:
    ``steps``, ``time_s`` of the fit, ``mean_field_elbo`` [, ``enumerated_elbo``]) and the ELBO trace of
    each fit (fit -> the negated losses, one per iteration or step)."""
    def scores(guide, data):
        row = {"mean_field_elbo": mean_field_elbo(model, guide, data, num_particles=num_particles)[0]}
        if enumerated_particles is not None:
            row["enumerated_elbo"] = enumerated_elbo(model, guide, data, num_particles=enumerated_particles)[0]
        return row

    if status is not None:
        status("CAVI vs SVI")
    t0 = time.perf_counter()
    cavi = fit_cavi(model, X, max_iter=500, tol=1e-8, num_samples=num_samples, progress_bar=False, seed=seed)
    rows = [{"fit": "CAVI", "steps": len(cavi.losses), "time_s": time.perf_counter() - t0, **scores(cavi.guide, cavi.data)}]
    traces = {"CAVI": [-v for v in cavi.losses]}
    for guide in ("custom", "normal"):
        if status is not None:
            status(f"SVI {guide}")
        t0 = time.perf_counter()
        svi = inference.fit(model, X, method="svi", guide=guide, num_steps=svi_steps, lr=0.05, num_samples=num_samples,
                            progress_bar=False, seed=seed)
        label = f"SVI ({guide} guide)"
        rows.append({"fit": label, "steps": len(svi.losses), "time_s": time.perf_counter() - t0,
                     **scores(svi.guide, svi.data)})
        traces[label] = [-v for v in svi.losses]
    return pd.DataFrame(rows).set_index("fit"), traces


@tour_section("variational_em")
def variational_em(ctx: TourContext) -> Section:
    """(f) CAVI for the Bayesian mixture: scikit-learn's bound iteration by iteration, and against SVI."""
    import matplotlib.pyplot as plt

    n = 150 if ctx.quick else 600
    X = three_clusters(n, ctx.seed)
    parity, fits = cavi_sklearn_parity(X, seed=ctx.seed, status=ctx.status)

    model = BayesianGMM(3, covariance_type="diag", weight_concentration_prior_type="dirichlet_distribution")
    Xs = X[: 150 if ctx.quick else 300]
    particles = 50 if ctx.quick else 300
    versus, _ = cavi_vs_svi(model, Xs, svi_steps=100 if ctx.quick else 1000, num_particles=particles, seed=ctx.seed,
                            status=ctx.status)

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    ours, ref = fits["dirichlet_process"]
    axes[0].plot(np.arange(1, len(ref.lower_bounds_) + 1), ref.lower_bounds_, "o", ms=6, mfc="none", label="scikit-learn")
    axes[0].plot(np.arange(1, len(ours.lower_bounds_) + 1), ours.lower_bounds_, ".-", label="zoo (CAVI)")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("lower_bound_ (scikit-learn's definition)")
    axes[0].set_title("Dirichlet-process prior: the same bound every iteration")
    axes[0].legend()
    width = 0.4
    for i, (prior, (m, _)) in enumerate(fits.items()):
        axes[1].bar(np.arange(6) + (i - 0.5) * width, np.sort(m.weights_)[::-1], width, label=prior)
    axes[1].set_xlabel("component (sorted)")
    axes[1].set_ylabel("posterior-mean weight")
    axes[1].set_title("Six components for three clusters")
    axes[1].legend()
    fig.tight_layout()
    figures = [ctx.figure(fig, "variational_em.png", "Left: the bound after every CAVI iteration, ours and "
                          "scikit-learn's from the same initial responsibilities. Right: the fitted weights under "
                          "the two weight priors (concentration 0.01).")]
    prose = [
        f"{n} points from three well-separated Gaussians, fitted with six components by mean-field variational "
        "Bayes: coordinate ascent on the ELBO, every factor of q set in closed form (`zoo.BayesianGaussianMixture`). "
        "Started from the same responsibilities, its bound matches scikit-learn's `BayesianGaussianMixture` "
        "after every iteration (`max_rel_gap_per_iter`); `elbo_` adds back the constants scikit-learn drops. "
        "Under the Dirichlet-process (stick-breaking) prior the surplus components are switched off.",
        "The same model is a Pyro model (`zoo.create_model(\"bayesian_gmm\")`): `inference.fit(method=\"cavi\")` "
        "runs the closed-form updates, and SVI fits it by gradient steps with the conjugate-family guide "
        "(`custom`) or the mean-field `normal` guide. The table scores every fit by the same Monte Carlo "
        "mean-field ELBO: CAVI reaches a higher bound in a fraction of the time.",
    ]
    return Section("Variational EM (CAVI) against scikit-learn and SVI", prose,
                   [Table("CAVI against scikit-learn (same priors, same initial responsibilities, full covariances).",
                          parity, "variational_em_parity"),
                    Table(f"CAVI against SVI on the Pyro model (K = 3, diagonal precisions, N = {len(Xs)}); "
                          f"mean-field ELBO from {particles} draws of q.", versus, "variational_em_svi")], figures)
