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
# # Sparse coding: MAP codes and the posterior over codes
#
# Sparse coding (MATH.md section 6) learns a dictionary A and codes z with
# min sum_n ||x_n - z_n A||^2 + eta rho(z_n), for three penalties rho: l1 (sum |z_i|),
# log (sum log(1 + z_i^2)) and exp (sum -exp(-z_i^2)). Read as inference, the objective is the
# negative log posterior of x ~ N(z A, sigma^2 I) with a Laplace prior (l1, eta = 2 sigma^2 / b) or a
# Cauchy prior (log, eta = 2 sigma^2); the exp penalty is bounded and no proper prior gives it.
# The usual sparse code is then a MAP estimate, and the zoo can show the posterior next to it.
#
# * `zoo.DictionaryLearning` alternates the code step (FISTA) and the dictionary step (least squares,
#   unit-norm atoms); its `objective_` never rises. Our objective has no 1/2: scikit-learn's
#   `alpha` is `eta / 2`.
# * `zoo.create_model("sparse_coding", dictionary=A, ...)` is the Pyro model for a fixed dictionary:
#   `inference.fit(method="map")` gives the sparse codes, NUTS the posterior over them.
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
import pandas as pd  # noqa: E402
import pyro  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from sklearn.decomposition import sparse_encode as sk_sparse_encode  # noqa: E402

from apps.tutorial import setup  # noqa: E402
import inference  # noqa: E402
import zoo  # noqa: E402
from zoo.sparse_coding import DictionaryLearning, mass_away_from_zero, objective  # noqa: E402

TUTORIAL = setup(seed=0)  # SMOKE, TUTORIAL_OUT, every seed
SMOKE, SEED, show = TUTORIAL.smoke, TUTORIAL.seed, TUTORIAL.show


# %% [markdown]
# ## Data from a known sparse dictionary
#
# Eight unit-norm atoms in twelve dimensions; every datum mixes two or three of them with amplitudes
# between 0.5 and 2 and random signs, plus noise of sd 0.02.

# %%
rng = np.random.default_rng(SEED)
K, D, N = 8, 12, 120 if SMOKE else 300
A_true = rng.normal(size=(K, D))
A_true /= np.linalg.norm(A_true, axis=1, keepdims=True)
Z_true = np.zeros((N, K))
for i in range(N):
    active = rng.choice(K, rng.integers(2, 4), replace=False)
    Z_true[i, active] = rng.choice([-1.0, 1.0], len(active)) * rng.uniform(0.5, 2.0, len(active))
X = Z_true @ A_true + 0.02 * rng.normal(size=(N, D))


def worst_cosine(A_learned):
    """The smallest |cos| between a true atom and its learned match (Hungarian matching)."""
    cos = np.abs(A_true @ (A_learned / np.linalg.norm(A_learned, axis=1, keepdims=True)).T)
    rows, cols = linear_sum_assignment(-cos)
    return cos[rows, cols].min()


# %% [markdown]
# ## Dictionary learning with each penalty
#
# The same data, eta = 0.1, three starts. Per penalty: the final objective, the reconstruction error,
# how sparse the codes are (entries below 1e-3 in magnitude), and how well the learned atoms match the
# true ones.

# %%
rows, fits = [], {}
for penalty in ("l1", "log", "exp"):
    est = DictionaryLearning(K, penalty=penalty, eta=0.1, n_init=1 if SMOKE else 3, max_iter=40 if SMOKE else 300,
                             random_state=SEED).fit(X)
    codes = est.transform(X)
    recon = est.inverse_transform(codes)
    fits[penalty] = est
    rows.append({"penalty": penalty, "alternations": est.n_iter_, "objective": est.objective_[-1],
                 "reconstruction_error": float(((X - recon) ** 2).sum(1).mean()),
                 "zero_share": float((np.abs(codes) < 1e-3).mean()), "true_zero_share": float((Z_true == 0).mean()),
                 "worst_atom_cos": worst_cosine(est.components_)})
print(pd.DataFrame(rows).round(4).to_string(index=False))

fig, ax = plt.subplots(figsize=(6, 3.5))
for penalty, est in fits.items():
    ax.plot(np.arange(1, len(est.objective_) + 1), est.objective_, label=penalty)
ax.set_xscale("log")
ax.set_xlabel("alternation")
ax.set_ylabel("objective")
ax.legend()
fig.tight_layout()
show(fig, "objective")

# %% [markdown]
# The l1 code step is scikit-learn's lasso: with `alpha = eta / 2` the objectives agree.

# %%
A = torch.as_tensor(fits["l1"].components_)
ours = fits["l1"].transform(X)
theirs = sk_sparse_encode(X, fits["l1"].components_, algorithm="lasso_cd", alpha=0.05, max_iter=10_000)
obj = [objective(torch.as_tensor(X), torch.as_tensor(z), A, eta=0.1).sum().item() for z in (ours, theirs)]
print(f"objective: ours {obj[0]:.8f}, scikit-learn {obj[1]:.8f}, relative difference {abs(obj[0] - obj[1]) / obj[1]:.1e}")

# %% [markdown]
# ## The posterior over codes
#
# For a fixed dictionary the Pyro model `sparse_coding` has the code step's answer as its MAP. On a few
# data points of a small problem, NUTS draws the posterior over the codes: the MAP puts many entries at
# exactly zero, the posterior does not.

# %%
g = torch.Generator().manual_seed(SEED)
A_small = torch.randn(4, 3, generator=g, dtype=torch.float64)
A_small /= A_small.norm(dim=1, keepdim=True)
Z_small = torch.zeros(3, 4, dtype=torch.float64)
for i in range(3):
    Z_small[i, torch.randperm(4, generator=g)[:1]] = 2.0 * torch.randn(1, generator=g, dtype=torch.float64)
X_small = Z_small @ A_small + 0.1 * torch.randn(3, 3, generator=g, dtype=torch.float64)
model = zoo.create_model("sparse_coding", dictionary=A_small, noise_scale=0.3, prior_scale=0.5)
map_codes = model.map_codes(X_small, tol=1e-10, max_iter=100_000)
by_adam = inference.fit(model, X_small, method="map", guide="delta", num_steps=300 if SMOKE else 2000, lr=0.05,
                        lr_decay=0.998, progress_bar=False, seed=SEED)
nuts = inference.fit(model, X_small, method="nuts", num_samples=100 if SMOKE else 1000,
                     num_warmup=100 if SMOKE else 500, num_chains=1, progress_bar=False, seed=SEED)
z = nuts.samples["z"]
print("MAP codes (code step):\n", map_codes.numpy().round(3))
print("MAP codes (fit, method='map'):\n", by_adam.samples["z"].reshape(map_codes.shape).numpy().round(3))
print("posterior means (NUTS):\n", z.mean((0, 1)).numpy().round(3))
mass = mass_away_from_zero(z, map_codes, 0.1)
print(f"entries exactly zero at the MAP: {mass.n_zero} of {mass.n_entries}; the posterior puts on average "
      f"{mass.mean:.2f} of its mass at |z| > {mass.threshold:.3f} (a tenth of the largest MAP code) there")

# %%
fig, axes = plt.subplots(3, 4, figsize=(12, 6), sharex=True)
for (n, k), ax in np.ndenumerate(axes):
    ax.hist(z[0, :, n, k].numpy(), bins=40, density=True, color="C0" if map_codes[n, k] != 0 else "C1")
    ax.axvline(float(map_codes[n, k]), color="k", lw=1)
    ax.set_title(f"z[{n}, {k}], MAP {float(map_codes[n, k]):.2f}", fontsize=9)
fig.suptitle("NUTS posterior of every code entry (orange: zero at the MAP; black line: the MAP)")
fig.tight_layout()
show(fig, "posterior_codes")

# %% [markdown]
# ## Versions

# %%
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
