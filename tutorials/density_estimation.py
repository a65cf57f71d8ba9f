# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Density estimation: histograms, kernels, nearest neighbours and the parametric models
#
# The first question about a density model is whether it beats a kernel estimate on held-out data.
# This tutorial fits every density model of the zoo to the same training rows and scores the same
# held-out rows (MATH.md section 6):
#
# * `zoo.Histogram`: p(x) = K / (N V) with K the count of the cell; its count view K ~ Binomial(N, P);
# * `zoo.KernelDensity`: the Parzen estimate (scikit-learn's arguments, an exact sum), its bandwidth by
#   held-out likelihood (`zoo.density.select_bandwidth`);
# * `zoo.KNNDensity`: p(x) = k / (N V_d r_k(x)^d), which does not integrate to one;
# * `zoo.GaussianMixture` (K by BIC), `zoo.BayesianGaussianMixture` (Dirichlet process) and a VAE
#   (importance-sampled log-likelihood).
#
# The tour's section `density_estimation` makes the same two comparisons with the functions of
# `apps.tour.density_estimation`.
#
# `SMOKE=1` shrinks every size (the test suite runs it that way); `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
import sys

import matplotlib

if os.environ.get("TUTORIAL_OUT"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402

from apps.tutorial import setup  # noqa: E402
from apps.tour.density_estimation import (density_comparison, dimension_sweep, held_out_splits,  # noqa: E402
                                          plot_dimension_sweep)
from zoo.density import Histogram, KernelDensity, KNNDensity, select_bandwidth  # noqa: E402

TUTORIAL = setup(seed=0)  # SMOKE, TUTORIAL_OUT, every seed
SMOKE, SEED, show = TUTORIAL.smoke, TUTORIAL.seed, TUTORIAL.show


# %% [markdown]
# ## Three estimates of one density
#
# Old Faithful's eruptions (standardised): a histogram with NumPy's `auto` bin widths, a kernel
# estimate with the bandwidth of best 5-fold held-out likelihood, and the 15-nearest-neighbour
# estimate, each drawn as log-density contours.

# %%
splits = held_out_splits(SEED, quick=SMOKE)
train, test = splits["Old Faithful (2-D)"]
grid = np.geomspace(0.05, 1.5, 16) * len(train) ** (-1 / 6)
h, grid, scores = select_bandwidth(train, grid, cv=5, return_scores=True)
estimates = {"histogram": Histogram(bin_width="auto", alpha=1.0).fit(train),
             f"KDE, h = {h:.3f}": KernelDensity(bandwidth=h).fit(train),
             "15-NN": KNNDensity(n_neighbors=15).fit(train)}
u = np.linspace(-2.5, 2.5, 120)
gx, gy = np.meshgrid(u, u)
points = np.column_stack([gx.ravel(), gy.ravel()])
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True, sharey=True)
for ax, (name, est) in zip(axes, estimates.items()):
    logp = est.score_samples(points).reshape(gx.shape)
    ax.contourf(gx, gy, np.maximum(logp, -8), levels=20, cmap="viridis")
    ax.scatter(*train.T, s=4, c="w")
    ax.set_title(name)
fig.tight_layout()
show(fig, "three_estimates")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(grid, scores, marker="o")
ax.axvline(h, color="k", lw=0.8)
ax.set_xlabel("bandwidth h")
ax.set_ylabel("5-fold held-out log-likelihood")
fig.tight_layout()
show(fig, "bandwidth")

# %% [markdown]
# The histogram's count in a cell of probability P is Binomial(N, P): its estimate K / (N V) is
# unbiased for the cell's mean density, with a relative sd of sqrt((1 - P) / (N P)), large for the
# small cells a fine histogram needs.

# %%
hist = estimates["histogram"]
for P in (0.01, 0.05, 0.2):
    view = hist.count_view(P)
    print(f"P = {P:<5} K ~ Binomial({len(train)}, {P}): mean {view.mean:.1f}, "
          f"relative sd of K/(NV) {view.estimate_std / view.density:.2f}")

# %% [markdown]
# ## Every model on held-out data
#
# Mean log-likelihood per held-out datum (standardised units; higher is better), with the share of
# held-out points an estimate gives zero density (the histogram's grid ends at the training range)
# and the fit time. The kNN column is not a normalised density: its numbers flatter it.

# %%
table = density_comparison(splits, seed=SEED, quick=SMOKE)
print(table.drop(columns=["setting"]).round(3).to_string())
print(table[["data", "estimator", "setting"]].to_string())

# %% [markdown]
# ## As the dimension grows
#
# Two unit Gaussians 4 apart in d dimensions (the true density is known): the gap between the held-out
# log-likelihood and the true log density, per dimension. The histogram's cells empty out, the kernel and
# neighbour estimates fall behind, and the mixtures -- the right family -- stay near the truth.

# %%
sweep = dimension_sweep((1, 2, 4) if SMOKE else (1, 2, 4, 8, 16), n_train=300 if SMOKE else 1000,
                        n_test=300 if SMOKE else 1000, seed=SEED, quick=SMOKE)
print(sweep.round(3).to_string())
fig, ax = plt.subplots(figsize=(7, 4.5))
plot_dimension_sweep(sweep, ax)
fig.tight_layout()
show(fig, "dimension")

# %% [markdown]
# ## Versions

# %%
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
