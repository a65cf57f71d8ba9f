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
# # Variational EM (CAVI) for a Bayesian Gaussian mixture
#
# A Gaussian mixture with conjugate priors -- Dirichlet (or stick-breaking) weights and a
# Gauss-Wishart prior on every component -- fitted three ways to the same data:
#
# * **CAVI**: coordinate ascent, each factor of the mean-field `q` set to
#   `log q_j* = E_{-j}[log p] + const` in closed form (`zoo.BayesianGaussianMixture`,
#   `inference.cavi.fit_cavi` for the Pyro model);
# * **scikit-learn**'s `BayesianGaussianMixture` (the same algorithm: the bounds agree);
# * **SVI** on the same Pyro model (`zoo.mixture.BayesianGMM`), with the conjugate guide and with the
#   mean-field `normal` guide.
#
# `SMOKE=1` shrinks every size (the test suite runs it that way); `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

if os.environ.get("TUTORIAL_OUT"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture as SkBGM  # noqa: E402

import inference  # noqa: E402
from inference.cavi import enumerated_elbo, fit_cavi, mean_field_elbo  # noqa: E402
from inference.views import keep_figure  # noqa: E402
from zoo.mixture import BayesianGaussianMixture, BayesianGMM  # noqa: E402

SMOKE = os.environ.get("SMOKE") == "1"
OUT = Path(os.environ["TUTORIAL_OUT"]) if os.environ.get("TUTORIAL_OUT") else None
SEED = 0
np.random.seed(SEED)
torch.manual_seed(SEED)
pyro.set_rng_seed(SEED)
warnings.filterwarnings("ignore")


def show(fig, name):
    keep_figure(fig, name, OUT)  # a PNG in TUTORIAL_OUT (written atomically) when it is set; closes the figure


N = 60 if SMOKE else 300
SVI_STEPS = 30 if SMOKE else 1500
PARTICLES = 20 if SMOKE else 500

rng = np.random.default_rng(SEED)
centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
labels = rng.integers(3, size=N)
X = centres[labels] + rng.normal(size=(N, 2))

# %% [markdown]
# ## CAVI and scikit-learn: the same bound, iteration by iteration
#
# Same priors, same initial responsibilities (`random_from_data` with the same seed).
# `lower_bound_` follows scikit-learn's definition (constants dropped); `elbo_` is the full
# ELBO with every constant, comparable with SVI.

# %%
common = dict(n_components=6, covariance_type="full", max_iter=50 if SMOKE else 200, tol=1e-6, init_params="random_from_data",
              random_state=SEED)
rows, fits = [], {}
for prior in ("dirichlet_process", "dirichlet_distribution"):
    t0 = time.perf_counter()
    ours = BayesianGaussianMixture(weight_concentration_prior_type=prior, weight_concentration_prior=0.01,
                                   **common).fit(X)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = SkBGM(weight_concentration_prior_type=prior, weight_concentration_prior=0.01, **common).fit(X)
    t_ref = time.perf_counter() - t0
    fits[prior] = ours
    gap = np.max(np.abs(np.asarray(ours.lower_bounds_) - ref.lower_bounds_) / np.abs(ref.lower_bounds_))
    print(f"{prior:<24} iterations {ours.n_iter_:>3} / sklearn {ref.n_iter_:>3}   max relative gap of the "
          f"bounds {gap:.1e}   time {t_ours:.3f}s / sklearn {t_ref:.3f}s")
    print(f"{'':<24} weights {np.round(np.sort(ours.weights_)[::-1], 3)}")

# %% [markdown]
# Under the Dirichlet-process prior the surplus components are switched off (weights near 0);
# under a finite Dirichlet with the same small concentration they are too, but the
# stick-breaking prior orders them and pushes harder.

# %% [markdown]
# ## CAVI and SVI on the same Pyro model
#
# `zoo.create_model("bayesian_gmm")` is the same mixture as a Pyro model: `fit_cavi` (or
# `inference.fit(method="cavi")`) runs the closed-form updates; SVI takes gradient steps with the
# conjugate-family guide (`custom`) or the mean-field `normal` guide. Every fit is scored by the
# same two Monte Carlo bounds.

# %%
# diagonal precisions (per-dimension Gamma): SVI on full Wishart precisions takes minutes here
model = BayesianGMM(3, covariance_type="diag", weight_concentration_prior_type="dirichlet_process")
t0 = time.perf_counter()
cavi_fit = fit_cavi(model, X, max_iter=500, tol=1e-8, num_samples=2 if SMOKE else 20, progress_bar=False, seed=SEED)
results = [("CAVI", cavi_fit.guide, time.perf_counter() - t0, [-v for v in cavi_fit.losses])]
for guide in ("custom", "normal"):
    t0 = time.perf_counter()
    svi = inference.fit(model, X, method="svi", guide=guide, num_steps=SVI_STEPS, lr=0.05, num_samples=2 if SMOKE else 20,
                        progress_bar=False, seed=SEED)
    results.append((f"SVI ({guide})", svi.guide, time.perf_counter() - t0, [-v for v in svi.losses]))

table = []
for name, guide, seconds, trace in results:
    mf, _ = mean_field_elbo(model, guide, cavi_fit.data, num_particles=PARTICLES)
    en, _ = enumerated_elbo(model, guide, cavi_fit.data, num_particles=max(20, PARTICLES // 5))
    table.append((name, len(trace), seconds, mf, en))
print(f"{'fit':<14}{'iterations':>11}{'time (s)':>10}{'mean-field ELBO':>17}{'enumerated ELBO':>17}")
for name, iters, seconds, mf, en in table:
    print(f"{name:<14}{iters:>11}{seconds:>10.2f}{mf:>17.2f}{en:>17.2f}")

# %% [markdown]
# The mean-field ELBO is CAVI's objective (best factorised `q(z)` for each fit's
# `q(theta)`); the enumerated ELBO, SVI's objective, sums the assignment out exactly and is
# never below it for the same `q(theta)`.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, _, _, trace in results:
    ax.plot(np.arange(1, len(trace) + 1), trace, label=name)
ax.set_xscale("log")
ax.set_xlabel("iteration / SVI step")
ax.set_ylabel("ELBO (SVI: single-particle enumerated estimate)")
lo = min(min(t[len(t) // 10:]) for _, _, _, t in results)
ax.set_ylim(lo - 20, max(max(t) for _, _, _, t in results) + 5)
ax.legend()
fig.tight_layout()
show(fig, "elbo_traces")

fig, ax = plt.subplots(figsize=(6, 3))
width = 0.4
for i, (prior, m) in enumerate(fits.items()):
    ax.bar(np.arange(6) + (i - 0.5) * width, m.weights_, width, label=prior)
ax.set_xlabel("component")
ax.set_ylabel("posterior-mean weight")
ax.legend()
fig.tight_layout()
show(fig, "weights")

# %% [markdown]
# ## Versions

# %%
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
