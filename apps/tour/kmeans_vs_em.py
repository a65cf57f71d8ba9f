"""(b) k-means (hard, fixed spherical variance) against EM (soft), and tempered EM from T = 0 to T = 2.

The data, the fits at each temperature and the temperature sweep of the E-step are public: the
tutorial ``bayes_vs_map_encoding`` (part 1) tells the same story with them.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from zoo.mixture import GaussianMixture, KMeans

from . import Section, Table, TourContext, fmt_vec, tour_section

__all__ = ["three_overlapping_gaussians", "responsibility_entropy", "tempered_responsibilities",
           "temperature_sweep", "fits_at_temperatures", "TemperatureFits"]


def three_overlapping_gaussians(n: int, seed: int = 0):
    """``n`` points from three overlapping 2-D Gaussians of unequal size and shape: a broad one (weight 0.5)
    and two compact ones. Returns ``(X (n, 2), labels (n,), weights (3,), means (3, 2))``."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.25, 0.25])
    means = np.array([[0.0, 0.0], [4.0, 0.5], [2.5, 4.0]])
    covs = np.array([[[4.0, 0.0], [0.0, 4.0]], [[0.3, 0.0], [0.0, 0.3]], [[1.2, 0.9], [0.9, 1.2]]])
    z = rng.choice(3, size=n, p=weights)
    L = np.linalg.cholesky(covs)
    x = means[z] + np.einsum("nij,nj->ni", L[z], rng.standard_normal((n, 2)))
    return x, z, weights, means


def responsibility_entropy(resp: np.ndarray) -> np.ndarray:
    """The entropy (nats) of each row of responsibilities (N, K) -> (N,)."""
    r = np.clip(resp, 1e-300, 1.0)
    return -(resp * np.log(r)).sum(1)


def tempered_responsibilities(log_joint: np.ndarray, T: float) -> np.ndarray:
    """The E-step at temperature ``T`` > 0: r_nk ∝ (pi_k N(x_n | k))^(1/T), from log pi_k + log N(x_n | k)
    (N, K)."""
    logits = log_joint / T
    r = np.exp(logits - logits.max(1, keepdims=True))
    return r / r.sum(1, keepdims=True)


def temperature_sweep(gm, X, temperatures) -> pd.DataFrame:
    """The temperature of the E-step alone: for one fitted mixture ``gm`` (``predict_proba``,
    ``score_samples``), the responsibilities of ``X`` at each temperature. One row per ``T``:
    ``mean_entropy`` of r(T) (log K when uniform) and ``max_gap_to_map``, the largest
    |r_nk(T) - onehot(MAP label)|, which vanishes as T → 0."""
    log_joint = np.log(gm.predict_proba(X)) + gm.score_samples(X)[:, None]  # log pi_k N(x | k)
    onehot = np.eye(log_joint.shape[1])[log_joint.argmax(1)]
    rows = []
    for T in temperatures:
        r = tempered_responsibilities(log_joint, T)
        rows.append({"T": float(T), "mean_entropy": responsibility_entropy(r).mean(),
                     "max_gap_to_map": float(np.abs(r - onehot).max())})
    return pd.DataFrame(rows).set_index("T")


class TemperatureFits(NamedTuple):
    """What :func:`fits_at_temperatures` returns: the table, the k-means fit, the EM fit at each
    temperature (keyed by T) and scikit-learn's EM fit."""

    table: pd.DataFrame
    kmeans: KMeans
    em: dict
    sklearn: SkGaussianMixture


def fits_at_temperatures(X, truth, temperatures, *, seed: int = 0, status=None) -> TemperatureFits:
    """k-means, EM at each temperature (T = 0: hard EM; 1: EM) and scikit-learn's EM, three components
    each, on ``X`` (N, 2) with true labels ``truth`` (N,).

    The table has one row per fit (index ``fit``): ``T``, ``loglik_per_datum`` (untempered), ``ARI``
    against ``truth``, ``mean_entropy`` of the fit's responsibilities, ``uncertain_frac`` (the fraction of
    points whose exact posterior p(k | x) under the fitted parameters has no component above 0.9) and the
    sorted ``weights``. ``status(text)`` is told which fit runs."""
    n = len(X)
    rows, fitted = [], {}
    km = KMeans(3, n_init=5, random_state=seed).fit(X)
    counts = np.bincount(km.labels_, minlength=3) / n
    rows.append({"fit": "k-means", "T": 0.0, "loglik_per_datum": np.nan, "ARI": adjusted_rand_score(truth, km.labels_),
                 "mean_entropy": 0.0, "uncertain_frac": 0.0, "weights": fmt_vec(np.sort(counts), 2)})
    for T in temperatures:
        if status is not None:
            status(f"T={T}")
        gm = GaussianMixture(3, covariance_type="full", temperature=T, n_init=3, max_iter=300, tol=1e-6,
                             random_state=seed).fit(X)
        fitted[T] = gm
        # responsibilities of the fitted parameters at T = 1 (the exact posterior p(k | x)):
        exact = GaussianMixture(3, covariance_type="full", max_iter=0, weights_init=gm.weights_,
                                means_init=gm.means_, precisions_init=gm.precisions_).fit(X).predict_proba(X)
        rows.append({"fit": "hard EM" if T == 0 else "tempered EM", "T": T, "loglik_per_datum": gm.score(X),
                     "ARI": adjusted_rand_score(truth, gm.predict(X)),
                     "mean_entropy": float(responsibility_entropy(gm.predict_proba(X)).mean()),
                     "uncertain_frac": float((exact.max(1) < 0.9).mean()),
                     "weights": fmt_vec(np.sort(gm.weights_), 2)})
    sk = SkGaussianMixture(3, covariance_type="full", n_init=3, max_iter=300, tol=1e-6, random_state=seed).fit(X)
    rows.append({"fit": "scikit-learn EM", "T": 1.0, "loglik_per_datum": sk.score(X),
                 "ARI": adjusted_rand_score(truth, sk.predict(X)),
                 "mean_entropy": float(responsibility_entropy(sk.predict_proba(X)).mean()),
                 "uncertain_frac": float((sk.predict_proba(X).max(1) < 0.9).mean()),
                 "weights": fmt_vec(np.sort(sk.weights_), 2)})
    return TemperatureFits(pd.DataFrame(rows).set_index("fit"), km, fitted, sk)


@tour_section("kmeans_vs_em")
def kmeans_vs_em(ctx: TourContext) -> Section:
    """(b) k-means (hard, fixed spherical variance) vs EM (soft), and tempered EM from T = 0 to T = 2."""
    import matplotlib.pyplot as plt

    n = 300 if ctx.quick else 900
    X, truth, true_w, _ = three_overlapping_gaussians(n, ctx.seed)
    fits = fits_at_temperatures(X, truth, [0.0, 0.1, 0.3, 0.6, 1.0, 2.0], seed=ctx.seed, status=ctx.status)
    table, km = fits.table, fits.kmeans
    em, hard = fits.em[1.0], fits.em[0.0]
    sweep_T = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    sweep = temperature_sweep(em, X, sweep_T)

    colors = np.array([[0.85, 0.2, 0.2], [0.2, 0.45, 0.85], [0.2, 0.7, 0.3]])
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    axes[0].scatter(X[:, 0], X[:, 1], c=colors[km.labels_], s=6)
    axes[0].plot(*km.cluster_centers_.T, "kx", ms=9)
    axes[0].set_title(f"k-means (ARI {table.loc['k-means', 'ARI']:.2f})")
    axes[1].scatter(X[:, 0], X[:, 1], c=colors[hard.predict(X)], s=6)
    axes[1].plot(*hard.means_.T, "kx", ms=9)
    axes[1].set_title(f"hard EM, T = 0 (ARI {adjusted_rand_score(truth, hard.predict(X)):.2f})")
    soft = np.clip(em.predict_proba(X) @ colors, 0, 1)
    axes[2].scatter(X[:, 0], X[:, 1], c=soft, s=6)
    axes[2].plot(*em.means_.T, "kx", ms=9)
    axes[2].set_title("EM, T = 1: colour mixes p(k | x)")
    axes[3].plot(sweep_T, sweep["mean_entropy"].to_numpy(), "o-")
    axes[3].axhline(math.log(3), color="0.6", ls="--", lw=1)
    axes[3].set_xscale("log")
    axes[3].set_xlabel("temperature T")
    axes[3].set_ylabel("mean entropy of responsibilities (nats)")
    axes[3].set_title("E-step at temperature T (EM fit)")
    for ax in axes[:3]:
        ax.set_aspect("equal", adjustable="datalim")
    figures = [ctx.figure(fig, "kmeans_vs_em.png", "Left to right: k-means labels, hard-EM labels, EM "
                          "responsibilities as mixed colours, and the entropy of the tempered E-step "
                          "r_nk ∝ (pi_k N(x_n | k))^(1/T) of the EM fit (dashed: log 3, uniform).")]
    prose = [
        f"{n} points from three overlapping Gaussians: a broad one (weight 0.5) and two compact ones. EM's "
        "E-step is the exact posterior over each point's component; at temperature T it becomes "
        "r_nk ∝ (pi_k N(x_n | k))^(1/T), so T = 1 is EM and T → 0 puts all mass on the arg-max (hard EM, "
        "the MAP assignment). k-means is hard EM with equal weights and one fixed spherical variance.",
        "The table fits at each temperature. Hard assignments throw away the overlap: hard EM and k-means "
        "carve the broad component into pieces, shrink its weight and lower the log-likelihood per datum "
        "(computed untempered for every row). `uncertain_frac` is the fraction of points whose exact posterior "
        "p(k | x) under the fitted parameters has no component above 0.9: that is the uncertainty a hard "
        "assignment hides. The scikit-learn row is an independent check of the T = 1 fit. Above T = 1 the "
        "tempered E-step can be so flat that the components merge into one (equal weights, uniform "
        "responsibilities, entropy log 3): the phase transition that deterministic annealing cools through.",
    ]
    return Section("k-means, hard EM and soft EM: the temperature of the E-step", prose,
                   [Table(f"Fits at each temperature (true weights {fmt_vec(np.sort(true_w), 2)}; "
                          "ARI against the true components).", table, "kmeans_vs_em")], figures)
