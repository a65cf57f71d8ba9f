# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Bayesian vs MAP encoding
#
# Every latent-variable model in the zoo "encodes" a datum: a Gaussian mixture assigns a point to a
# component, a GLGAE gives it a code z. There are two ways to do it. **MAP** keeps the single most
# probable value; **Bayesian** encoding keeps the whole posterior. This tutorial puts the two side by
# side, twice:
#
# 1. a Gaussian mixture: hard assignments (k-means, hard EM) against soft responsibilities (EM), joined
#    by a temperature that turns one into the other;
# 2. a GLGAE (MATH.md section 3): the MAP code argmax_z L2(z, x) against the posterior
#    p(z | x) ∝ sum_k q(k | z) p(x | k).
#
# In both, the arg-max is the low-temperature limit of the posterior, and what it throws away is the
# uncertainty near the boundaries between components. Two of the notes' claims are measured on the way:
# the relaxation of one-hot codes into softargmax(beta u) with beta annealed upwards (section 1), and
# max_z L2 as a lower bound of the evidence of the code (section 3). The tour's sections `kmeans_vs_em` and
# `bayes_vs_map_encoding` make the same comparisons with the same functions (`apps.tour.kmeans_vs_em`,
# `apps.tour.bayes_vs_map_encoding`); this tutorial prints and plots them, and adds NUTS and a guide.
#
# Run it as a script (`python tutorials/bayes_vs_map_encoding.py`) or open it as a notebook with jupytext.
# `SMOKE=1` shrinks every size (the test suite runs it that way); `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
import warnings
from pathlib import Path

import matplotlib

if os.environ.get("TUTORIAL_OUT"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyro
import torch
from sklearn.metrics import adjusted_rand_score

import inference
import zoo
from apps.tour.bayes_vs_map_encoding import code_grid, map_vs_posterior_1d, one_dim_glgae, posterior_moments, ring_glgae
from apps.tour.kmeans_vs_em import (fits_at_temperatures, responsibility_entropy, temperature_sweep,
                                    three_overlapping_gaussians)
from inference.views import keep_figure
from zoo.mixture import GaussianMixture, KMeans
from zoo.relaxed_codes import classification_log_likelihood, fit_relaxed_codes, mixture_log_likelihood

SEED = 0
SMOKE = os.environ.get("SMOKE") == "1"
OUT = Path(os.environ["TUTORIAL_OUT"]) if os.environ.get("TUTORIAL_OUT") else None
torch.manual_seed(SEED)
pyro.set_rng_seed(SEED)
torch.set_num_threads(1)  # every problem here is small: parallel regions would cost more than they save
np.set_printoptions(precision=4, suppress=True)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def show(fig, name):
    keep_figure(fig, name, OUT)  # a PNG in TUTORIAL_OUT (written atomically) when it is set; closes the figure


# %% [markdown]
# ## 1. A mixture: hard against soft assignments
#
# Three overlapping Gaussians in 2-D: a broad one holding half the points and two compact ones. The
# mixture's joint is p(x, k) = pi_k N(x | mu_k, Sigma_k). EM alternates the exact posterior over each
# point's component, the responsibilities r_nk = p(k | x_n), with closed-form weighted updates; every
# iteration raises the log-likelihood (MATH.md section 1).

# %%
N = 300 if SMOKE else 1500
X, truth, true_weights, true_means = three_overlapping_gaussians(N, SEED)

# k-means, EM at T = 0 (hard EM) and T = 1 (EM), scikit-learn's EM; the temperature is explained below
fits = fits_at_temperatures(X, truth, [0.0, 1.0], seed=SEED)
em, sk = fits.em[1.0], fits.sklearn
print(f"EM log-likelihood per datum {em.score(X):.6f} (scikit-learn: {sk.score(X):.6f})")
print("EM weights", np.sort(em.weights_), "true", np.sort(true_weights))

# %% [markdown]
# ### The temperature of the E-step
#
# Raise the joint to the power 1/T before normalising: r_nk(T) ∝ (pi_k N(x_n | k))^(1/T). T = 1 is
# Bayes' rule; as T → 0 the largest term wins and r(T) becomes one-hot at the arg-max, the MAP
# assignment; as T grows the responsibilities flatten to uniform. For the EM fit above we sweep T and
# measure the mean entropy of r(T) and its largest distance to the one-hot MAP assignment.

# %%
map_labels = em.predict(X)
temperatures = np.array([0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
sweep = temperature_sweep(em, X, temperatures)
print(sweep.to_string(float_format="{:.4g}".format))

# %% [markdown]
# The entropy rises monotonically with T, from 0 (hard) towards log 3 = 1.0986 (uniform). At small T the
# largest distance between r(T) and the one-hot MAP assignment shrinks to zero: MAP *is* the
# low-temperature limit of the posterior. The points where it converges last are the ones near a
# boundary, where two terms of the joint are almost equal.

# %% [markdown]
# ### Fitting at a temperature: k-means, hard EM, EM
#
# The temperature also changes the *fit*. Hard EM (T = 0) assigns each point wholly to one component
# before every M-step; k-means is hard EM with equal weights and one fixed spherical variance. Both
# forget how much the components overlap, so the broad component loses the points in its tails to its
# compact neighbours. The table: log-likelihood per datum (untempered), adjusted Rand index against the
# true components, mean entropy of the responsibilities, the fraction of points whose exact posterior
# under the fitted parameters has no component above 0.9, and the sorted weights.

# %%
print(fits.table.to_string(float_format="{:.4f}".format))

# %% [markdown]
# ### What the hard assignment hides
#
# A hard label reports every point with the same confidence. The posterior does not: below, the
# largest responsibility max_k p(k | x_n) of each point under the EM fit. Most points are certain; a
# band along each boundary is not, and those are exactly the points whose label flips between k-means,
# hard EM and EM.

# %%
resp = em.predict_proba(X)
confidence = resp.max(1)
labels = {"k-means": fits.kmeans.labels_, "hard EM": fits.em[0.0].predict(X), "EM": map_labels}
# align labels to EM's components by the best permutation before comparing
from itertools import permutations


def align(a, ref):
    best = max(permutations(range(3)), key=lambda p: (np.array(p)[a] == ref).sum())
    return np.array(best)[a]


flips = np.zeros(N, dtype=bool)
for name, lab in labels.items():
    flips |= align(lab, map_labels) != map_labels
print(f"points with max_k p(k|x) < 0.9: {(confidence < 0.9).mean():.3f}")
print(f"mean confidence of points whose label differs between fits: {confidence[flips].mean():.3f} "
      f"({flips.sum()} points); of the others: {confidence[~flips].mean():.3f}")

colors = np.array([[0.85, 0.2, 0.2], [0.2, 0.45, 0.85], [0.2, 0.7, 0.3]])
fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
axes[0].scatter(X[:, 0], X[:, 1], c=colors[align(fits.kmeans.labels_, map_labels)], s=6)
axes[0].set_title("k-means (hard)")
axes[1].scatter(X[:, 0], X[:, 1], c=np.clip(resp @ colors, 0, 1), s=6)
axes[1].set_title("EM: colour mixes p(k | x)")
sc = axes[2].scatter(X[:, 0], X[:, 1], c=responsibility_entropy(resp), s=6, cmap="magma_r")
axes[2].scatter(*X[flips].T, s=30, facecolors="none", edgecolors="k", lw=0.6, label="label differs between fits")
fig.colorbar(sc, ax=axes[2], label="entropy of p(k | x)")
axes[2].legend(fontsize=7, loc="lower left")
axes[2].set_title("where the uncertainty is")
for ax in axes:
    ax.set_aspect("equal", adjustable="datalim")
show(fig, "gmm_hard_vs_soft.png")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(temperatures, sweep["mean_entropy"].to_numpy(), "o-")
ax.axhline(np.log(3), ls="--", color="0.6")
ax.set_xscale("log")
ax.set_xlabel("temperature T")
ax.set_ylabel("mean entropy of r(T) (nats)")
show(fig, "gmm_temperature_sweep.png")

# %% [markdown]
# ### Relaxed codes: softargmax(beta u) with beta annealed upwards
#
# Seed 001 relaxes the one-hot assignment of each datum into a free code u_b, maximising
# J(u, m) = sum_b log sum_k softmax(beta u_b)_k p(x_b | k, m) over the codes and the means by gradient
# steps while beta grows, so that the codes end one-hot. What does it optimise? For any weights w,
# sum_k w_k p_k <= max_k p_k: at every beta the best free code is one-hot on the arg-max, and J's
# supremum is the *classification* likelihood sum_b max_k log p(x_b | k, m), k-means' objective when the
# components share a fixed spherical variance. beta changes only the path.
#
# We measure it on three overlapping blobs with that model (sd 1, fixed): six starts (three data points
# each) shared by every method; the relaxation (Adam, 400 steps, four beta schedules, all 24 runs in
# one batch) against k-means, zoo.GaussianMixture at T = 0 (hard EM), annealed from T = 5 down to 0, and
# plain EM. The objective is the classification log-likelihood per datum of each fit's means.

# %%
blobs = zoo.load_dataset("blobs", n_samples=150, n_components=3, separation=3.0, random_state=1)
Xb = torch.tensor(blobs.data)
starts = torch.stack([Xb[np.random.default_rng(s).choice(len(Xb), 3, replace=False)] for s in range(6)])
schedules = {"beta 1": (1.0, 1.0), "beta 30": (30.0, 30.0), "beta 1 -> 30": (1.0, 30.0),
             "beta 0.1 -> 100": (0.1, 100.0)}
b0, b1 = (torch.tensor([v[i] for v in schedules.values()], dtype=torch.float64)[:, None] for i in (0, 1))
relaxed = fit_relaxed_codes(Xb, starts.expand(len(schedules), 6, 3, 2), beta=(b0, b1), num_steps=150 if SMOKE else 400)
objective = {name: classification_log_likelihood(Xb, relaxed.means[i]).mean(-1).numpy()
             for i, name in enumerate(schedules)}
onehot = {name: relaxed.onehot_fraction()[i].min().item() for i, name in enumerate(schedules)}
frozen = (relaxed.labels != torch.cdist(Xb, relaxed.means).argmin(-1)).double().mean(-1)  # codes off their nearest mean
reference, ref_labels = {m: [] for m in ["k-means", "hard EM", "annealed EM", "EM"]}, {}
em_loglik = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for s in range(6):
        m0 = starts[s].numpy()
        common = dict(covariance_type="spherical", means_init=m0, weights_init=np.full(3, 1 / 3),
                      precisions_init=np.ones(3), max_iter=500, tol=1e-8)
        ref = {"k-means": KMeans(3, init=m0, n_init=1).fit(blobs.data),
               "hard EM": GaussianMixture(3, temperature=0.0, **common).fit(blobs.data),
               "annealed EM": GaussianMixture(3, annealing=lambda i: 0.0 if i >= 60 else 5.0 * 0.9**i,
                                              **common).fit(blobs.data),
               "EM": GaussianMixture(3, **common).fit(blobs.data)}
        for name, f in ref.items():
            means = torch.tensor(f.cluster_centers_ if name == "k-means" else f.means_)
            reference[name].append(classification_log_likelihood(Xb, means).mean().item())
            ref_labels.setdefault(name, []).append(f.labels_ if name == "k-means" else f.predict(blobs.data))
        em_loglik.append(ref["EM"].score(blobs.data))
rows = {}
for i, name in enumerate(schedules):
    labels_i = relaxed.labels[i].numpy()
    rows[name] = {"objective (mean of 6)": objective[name].mean(), "worst start": objective[name].min(),
                  "one-hot codes (min)": onehot[name], "codes off their nearest mean": frozen[i].mean().item(),
                  "ARI vs k-means": np.mean([adjusted_rand_score(ref_labels["k-means"][s], labels_i[s])
                                             for s in range(6)]),
                  "ARI vs EM": np.mean([adjusted_rand_score(ref_labels["EM"][s], labels_i[s]) for s in range(6)]),
                  "loglik per datum": mixture_log_likelihood(Xb, relaxed.means[i]).mean(-1).mean().item()}
for name, vals in reference.items():
    rows[name] = {"objective (mean of 6)": np.mean(vals), "worst start": np.min(vals)}
rows["EM"]["loglik per datum"] = np.mean(em_loglik)
print(pd.DataFrame(rows).T.to_string(float_format="{:.4f}".format, na_rep=""))

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for i, name in enumerate(schedules):
    axes[0].plot(np.arange(1, relaxed.objective.shape[0] + 1), relaxed.objective[:, i].mean(-1), label=name)
axes[0].axhline(np.mean(reference["k-means"]), color="k", ls=":", label="k-means (same starts)")
axes[0].set_xscale("log")
axes[0].set_ylim(np.mean(reference["k-means"]) - 1.5, np.mean(reference["k-means"]) + 0.3)
axes[0].set_xlabel("Adam step")
axes[0].set_ylabel("J per datum (mean of 6 starts)")
axes[0].legend(fontsize=8)
methods = list(schedules) + list(reference)
for j, name in enumerate(methods):
    vals = objective[name] if name in objective else np.array(reference[name])
    axes[1].plot(np.full(6, j), vals, "o", alpha=0.6)
axes[1].set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
axes[1].set_ylabel("classification log-likelihood per datum")
axes[1].set_title("each start's end point")
fig.tight_layout()
show(fig, "relaxed_codes.png")

# %% [markdown]
# Every schedule ends with one-hot codes, and J ends at (never above) the classification likelihood
# of its means: the relaxation is hard-assignment fitting, and its mixture log-likelihood stays below
# EM's. beta acts as a step size on the logits (with Adam, a constant beta is the same run as beta = 1
# with a beta-times larger learning rate): a large beta from the start commits the codes before the
# means have moved, and a one-hot code has no gradient left to change its mind, so many codes end
# *off* their nearest mean, something hard EM, which re-assigns at every iteration, never does. Slow
# annealing (0.1 -> 100) ends where k-means does or better (k-means is stuck in one start), but so does
# a small constant beta: what matters is not to commit early, not the annealing itself. Annealed EM to
# T = 0 with free variances and weights does worse here.

# %% [markdown]
# ## 2. GLGAE: the MAP code against the posterior over z
#
# GLGAE (MATH.md section 3) generates x by drawing a code z from a flat prior, a component k from
# q(k | z) = exp(-||B_k - z||^2) / (b + sum_j exp(-||B_j - z||^2)) and x from p(x | k) = N(A_k, I/2).
# With b > 0 the absorbing category makes q(k | z) → 0 far from the anchors B_k, so the posterior
# p(z | x) ∝ sum_k q(k | z) p(x | k) = exp L2(z, x) is proper (see the companion tutorial
# `push_away_and_absorbing_component`). MAP encoding returns argmax_z L2(z, x).
#
# Take the smallest case that shows the difference: one-dimensional data and codes, two prototypes at
# ±1.5, anchors at ±2, b = 1. The code is 1-D, so the posterior can be computed exactly by quadrature
# on a fine grid; NUTS and a Gaussian variational guide are then checked against it.

# %%
glgae = one_dim_glgae().frozen()  # A, B and b stay fixed: only the codes are inferred

xs = torch.linspace(-2.5, 2.5, 51 if SMOKE else 401, dtype=torch.float64)[:, None]
grid = torch.linspace(-8, 8, 1601 if SMOKE else 8001, dtype=torch.float64)
# the posterior on the grid (flat prior) against the MAP code, batched L-BFGS from the nearest anchor
table, post = map_vs_posterior_1d(glgae, xs, grid)  # post: densities on the grid, (n_x, n_grid)
g = grid.numpy()
z_map, post_mean, post_sd = (table[c].to_numpy() for c in ("MAP z", "posterior mean", "posterior sd"))
rows = [int(np.argmin(np.abs(xs[:, 0].numpy() - xv))) for xv in [-1.5, -0.5, 0.0, 0.5, 1.5]]
print(table.iloc[rows].rename(index="{:+.2f}".format).to_string(float_format="{:.4f}".format))

# %% [markdown]
# Far from the boundary (x = ±1.5) the posterior is one bump and MAP sits at its mode. At x = 0 both
# prototypes explain x equally well and the posterior has two modes, one near each anchor; MAP picks
# one of them (which one depends only on where the optimiser starts) and reports it with no
# uncertainty, while the posterior mean is 0 and the standard deviation is at its largest.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.3))
ax.pcolormesh(xs[:, 0].numpy(), g, post.T, shading="auto", cmap="Greys", vmax=np.quantile(post, 0.995))
ax.plot(xs[:, 0], z_map, "r-", lw=2, label="MAP z")
ax.plot(xs[:, 0], post_mean, "b-", label="posterior mean")
ax.fill_between(xs[:, 0].numpy(), post_mean - 2 * post_sd, post_mean + 2 * post_sd, color="b", alpha=0.12,
                label="mean ± 2 sd")
ax.set_ylim(-5, 5)
ax.set_xlabel("datum x")
ax.set_ylabel("code z")
ax.legend(fontsize=8, loc="upper left")
ax.set_title("p(z | x) (grey) against the MAP code")
show(fig, "glgae_map_vs_posterior_1d.png")

# %% [markdown]
# ### NUTS and a Gaussian guide against the exact posterior
#
# Three data points: one clearly on prototype 1, one on the boundary, one leaning to prototype 2. NUTS
# samples p(z | x) for all three at once; SVI fits a full-rank Gaussian guide. Both are compared with the
# quadrature. On the boundary a single Gaussian cannot hold two modes: the guide either hides one mode
# or smears over both, a second way of hiding what the posterior knows.

# %%
x3 = torch.tensor([[-1.5], [0.0], [0.4]], dtype=torch.float64)
exact, p3 = map_vs_posterior_1d(glgae, x3, grid)
exact_mean, exact_sd = exact["posterior mean"].to_numpy(), exact["posterior sd"].to_numpy()
dz = float(grid[1] - grid[0])
draws, warmup, depth = (60, 60, 5) if SMOKE else (2000, 1000, 10)
nuts = inference.fit(glgae, x3, method="nuts", num_samples=draws, num_warmup=warmup, num_chains=2,
                     max_tree_depth=depth,
                     nuts_init={"z": torch.tensor([[-2.0], [2.0], [2.0]], dtype=torch.float64)},
                     progress_bar=False, seed=SEED)
svi = inference.fit(glgae, x3, method="svi", guide="mvn", num_steps=100 if SMOKE else 3000, lr=0.05,
                    num_samples=200 if SMOKE else 2000, progress_bar=False, seed=SEED)
summary = nuts.summary(round_to="none")
print("datum   exact mean / sd     NUTS mean / sd (r_hat)       Gaussian guide mean / sd")
for i in range(3):
    nm, ns = nuts.posterior_mean()["z"][i, 0].item(), nuts.posterior_std()["z"][i, 0].item()
    sm, ss = svi.posterior_mean()["z"][i, 0].item(), svi.posterior_std()["z"][i, 0].item()
    print(f"x={x3[i, 0].item():+.1f}   {exact_mean[i]:+.3f} / {exact_sd[i]:.3f}     {nm:+.3f} / {ns:.3f} "
          f"({summary['r_hat'].iloc[i]:.3f})     {sm:+.3f} / {ss:.3f}")
valley = np.abs(g) < 1  # between the two modes of the boundary datum
print(f"x = 0, mass in the valley |z| < 1: exact {p3[1][valley].sum() * dz:.3f}, "
      f"NUTS {(nuts.samples['z'][:, :, 1, 0].abs() < 1).double().mean():.3f}, "
      f"Gaussian guide {(svi.samples['z'][:, :, 1, 0].abs() < 1).double().mean():.3f}")

# %% [markdown]
# On the certain datum all three agree. On the bimodal ones NUTS has to cross the low-density valley
# between the modes; an r_hat above 1.01 on those rows (short chains do show one) is the diagnostic
# doing its job, and longer chains bring the moments to the quadrature. A single Gaussian cannot hold two
# modes: it either sits on one of them with a small sd (as confident as MAP, and as wrong about the
# uncertainty) or spreads across both, getting the sd about right but putting its mass in the valley,
# where the posterior has little. The valley mass above measures that.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), sharey=False)
for i, ax in enumerate(axes):
    ax.plot(g, p3[i], "k-", lw=1.5, label="exact (quadrature)")
    ax.hist(nuts.samples["z"][:, :, i, 0].flatten().numpy(), bins=60, density=True, alpha=0.4, label="NUTS")
    ax.hist(svi.samples["z"][:, :, i, 0].flatten().numpy(), bins=60, density=True, alpha=0.4,
            label="Gaussian guide")
    ax.axvline(glgae.encode(x3[i : i + 1])[0, 0].item(), color="r", label="MAP z")
    ax.set_xlim(-5, 5)
    ax.set_title(f"x = {x3[i, 0].item():+.1f}")
    ax.set_xlabel("z")
axes[0].legend(fontsize=7)
show(fig, "glgae_nuts_guide_vs_exact.png")

# %% [markdown]
# ## 3. A trained GLGAE in two dimensions
#
# Now a GLGAE with K = 8, E = 2 trained by coordinate ascent on a ring of eight Gaussians. The
# posterior over a 2-D code is still cheap to compute on a grid. Walking a datum from one ring cluster
# to its neighbour, the MAP code jumps from one anchor to the other at the boundary, while the posterior
# moves its mass across continuously; its spread, sqrt(trace Cov[z | x]), peaks at the boundary.

# %%
ring, ring_model, fit = ring_glgae(SEED)  # 240 points, 12 epochs; frozen after training
print("E_data[max_z L2] per epoch:", np.round(-np.array(fit.losses), 4))
B = ring_model.B.detach().numpy()
n_grid = 101 if SMOKE else 301
Z, lim = code_grid(ring_model, n_grid)  # the anchors plus 3 on every side

c0, c1 = ring.truth["locs"][0], ring.truth["locs"][1]
path = np.linspace(0, 1, 7 if SMOKE else 21)
spread, jumps, panels = [], [], []
for t in path:
    x = torch.tensor((1 - t) * c0 + t * c1, dtype=torch.float64)[None]
    (w,), (mean,), (cov,) = posterior_moments(ring_model, x, Z)
    spread.append(np.sqrt(np.trace(cov)))
    jumps.append(ring_model.encode(x)[0].numpy())
    if t in (path[0], path[len(path) // 2], path[-1]):
        panels.append((t, w.reshape(n_grid, n_grid), jumps[-1], mean))
print("posterior spread along the path:", np.round(spread, 3))
print("MAP codes along the path:\n", np.round(np.array(jumps), 3))

fig, axes = plt.subplots(1, 4, figsize=(18, 4))
axes[0].plot(path, spread, "o-")
axes[0].set_xlabel("position between two ring clusters")
axes[0].set_ylabel("sqrt(trace Cov[z | x])")
axes[0].set_title("posterior spread along the path")
for ax, (t, dens, zm, mean) in zip(axes[1:], panels):
    ax.imshow(dens, origin="lower", extent=[-lim, lim, -lim, lim], cmap="Greys")
    ax.plot(B[:, 0], B[:, 1], "g^", label="anchors")
    ax.plot(*zm, "r*", ms=13, label="MAP z")
    ax.plot(*mean, "bo", label="posterior mean")
    ax.set_title(f"p(z | x), position {t:.2f}")
axes[1].legend(fontsize=7, loc="lower left")
show(fig, "glgae_ring_posterior.png")

# %% [markdown]
# ### The MAP code against the evidence of the code
#
# Seed 000 trains on max_z L2(z, x) as a point-estimate lower bound of the evidence log ∫ exp L2(z, x) dz
# under the flat prior. On this model the gap log evidence - max L2 is, datum by datum, the log of the
# posterior's effective width. (The companion tutorial `push_away_and_absorbing_component` does the same
# in 1-D.)

# %%
axis = torch.linspace(-lim, lim, 61 if SMOKE else 121, dtype=torch.float64)  # the rectangle rule converges fast
Zc = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
Xs = torch.tensor(ring.data)[:: 4 if SMOKE else 1]  # every datum of the ring (a quarter in smoke mode)
grid_best, cov_r = [], []
for i in range(0, len(Xs), 40):  # chunks of data: (40, grid, K) terms at a time
    with torch.no_grad():
        grid_best.append(ring_model.L2(Zc, Xs[i : i + 40, None]).max(-1).values)
    cov_r.append(posterior_moments(ring_model, Xs[i : i + 40], Zc)[2])
with torch.no_grad():
    best = torch.maximum(ring_model.L2(ring_model.encode(Xs), Xs), torch.cat(grid_best))
gap = (ring_model.log_code_evidence(Xs, [axis, axis]) - best).numpy()
log_width = 0.5 * np.linalg.slogdet(np.concatenate(cov_r))[1]
box = gap - 2 * np.log(2 * lim)  # the proper uniform prior on the grid's square
print(f"log evidence - max L2: from {gap.min():.3f} to {gap.max():.3f}; under the uniform prior on the square "
      f"from {box.min():.3f} to {box.max():.3f}; correlation with log sqrt(det Cov[z | x]) "
      f"{np.corrcoef(gap, log_width)[0, 1]:.2f}")

fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.scatter(log_width, gap, s=8)
ax.set_xlabel("log sqrt(det Cov[z | x])  (posterior width)")
ax.set_ylabel("log evidence - max_z L2 (flat prior)")
ax.set_title(f"every datum above 0; under the uniform prior: {box.max():.2f} or less")
show(fig, "glgae_ring_evidence_vs_map.png")

# %% [markdown]
# Under the flat prior with density 1 every datum's evidence is above max_z L2 (the point estimate is a
# lower bound here), by more where the posterior is wider. But the flat prior has no natural unit: with
# the proper uniform prior on a square that holds the posterior, the evidence is the average of
# exp L2 over the square and falls below the maximum for every datum. "max is a lower bound of the
# evidence" is a property of the prior's normalisation and the posterior's width, not an inequality.

# %% [markdown]
# ## Summary
#
# * For a mixture, the tempered E-step r(T) ∝ p(x, k)^(1/T) connects the Bayesian responsibilities
#   (T = 1) with the MAP assignment (T → 0). Fitting with hard assignments (k-means, hard EM) biases the
#   parameters where the components overlap; EM does not. Relaxing one-hot codes into softargmax(beta u)
#   optimises the same classification likelihood as k-means (beta only changes the path), and a large
#   beta early freezes the codes.
# * For GLGAE, the MAP code is the mode of a posterior that becomes bimodal at the boundary between
#   two components. MAP (and a single-Gaussian guide) reports one mode with full confidence; the posterior
#   (exact here, NUTS in general) shows both, and its spread measures how ambiguous the datum is. Whether
#   max_z L2 lies below the evidence depends on that spread and on the prior's normalisation.

# %%
import matplotlib as mpl
import sklearn

print(f"torch {torch.__version__}, pyro {pyro.__version__}, numpy {np.__version__}, "
      f"scikit-learn {sklearn.__version__}, matplotlib {mpl.__version__}")
