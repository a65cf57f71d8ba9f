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
# # Gradient estimators of the VAE's ELBO
#
# The ELBO of a VAE, E_q[log p(x|z)] - KL(q(z|x) || p(z)), has to be differentiated with respect to
# the encoder's parameters through an expectation under q. `zoo.vae.VAE` swaps the estimator with one
# string: `reparam` (SGVB A), `analytic_kl` (SGVB B: closed-form KL), `score_function` (REINFORCE with
# a baseline) and `iwae` (the k-sample importance-weighted bound). We compare their gradient variance
# at fixed parameters, then what each reaches on binarised digits. The tour's section `vae_estimators`
# computes the same two tables (at its own sizes) with the same functions, `apps.tour.vae_estimators`.
#
# `SMOKE=1` shrinks every size (the test suite runs it that way); `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
from pathlib import Path

import matplotlib

if os.environ.get("TUTORIAL_OUT"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402

import zoo  # noqa: E402
from apps.tour.vae_estimators import bounds_per_estimator, gradient_variance_table  # noqa: E402
from inference.views import keep_figure  # noqa: E402
from zoo.vae import VAE  # noqa: E402

SEED = 0
SMOKE = os.environ.get("SMOKE") == "1"
OUT = Path(os.environ["TUTORIAL_OUT"]) if os.environ.get("TUTORIAL_OUT") else None
torch.manual_seed(SEED)
pyro.set_rng_seed(SEED)


def show(fig, name):
    keep_figure(fig, name, OUT)  # a PNG in TUTORIAL_OUT (written atomically) when it is set; closes the figure


ds = zoo.load_dataset("binary_digits")
xtr, xte = torch.tensor(ds.data), torch.tensor(ds.test_data)
HIDDEN, LATENT = (16 if SMOKE else 128), (4 if SMOKE else 8)
STEPS = 30 if SMOKE else 2000
DRAWS = 10 if SMOKE else 200
K = 100 if SMOKE else 5000
print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}")

# %% [markdown]
# ## Gradient variance at fixed parameters and batch
#
# Each row: `DRAWS` independent gradients of the same loss on the same batch of 64 images, with the
# parameters held fixed; the variance per coordinate of the encoder's gradient, averaged. The row
# "score_function, no baseline" is plain REINFORCE: the same estimator without its control variate.

# %%
model = VAE(64, LATENT, (HIDDEN,))
table = gradient_variance_table(model, xtr[:64], num_draws=DRAWS, burn_in=3 if SMOKE else 20, seed=SEED)
print(table.round(4).to_string())

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar([name.replace(", ", "\n") for name in table.index], table["mean_variance"])
ax.set_yscale("log")
ax.set_ylabel("mean gradient variance (encoder)")
ax.set_title("Gradient variance per estimator")
fig.tight_layout()
show(fig, "vae_gradient_variance")

# %% [markdown]
# The score function's variance is orders of magnitude above the reparameterised estimators'. Its
# decaying-average baseline (one running mean per datum, which at a fixed batch becomes a very good
# control variate) removes much of it, but not the gap; the closed-form KL removes the KL term's
# share of the reparameterised estimator's noise.
#
# ## What each estimator reaches
#
# Same architecture, steps, seed and minibatch size; test ELBO, the 5-sample IWAE bound and the
# K-sample importance-sampled log-likelihood (nats per test image).

# %%
bounds = bounds_per_estimator(xtr, xte, latent=LATENT, hidden=(HIDDEN,), steps=STEPS, k=K, seed=SEED)
print(bounds.round(3).to_string())

# %% [markdown]
# Each row reads ELBO <= IWAE_5 <= log-likelihood estimate (each up to Monte Carlo error). The
# score-function VAE trains slowest: its noisy encoder gradient is visible in the ELBO it reaches.

# %%
import sys  # noqa: E402

import numpy, sklearn  # noqa: E401,E402

print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, pandas {pd.__version__}")
