# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Swapping guides
#
# In latent-zoo the variational family is one word. This tutorial fits the same model with five
# guides (`delta`, `normal`, `mvn`, `lowrank`, `flow`) and measures each against NUTS with
# `inference.compare`: its ELBO, an importance-sampled log evidence with the guide as proposal,
# its run time, and per latent site the error of the posterior mean (in posterior standard
# deviations), of the standard deviation (relative) and the energy distance to the NUTS draws.
# Mixture components are matched to the reference's labels before anything is compared.
#
# Two models: the Bayesian Gaussian mixture (`gmm`: Dirichlet weights, Normal locations,
# LogNormal scales, the component index summed out), and Bayesian encoding with a trained GLGAE
# (`model.frozen()`: a posterior over the codes z of a few points).
#
# Run it as a script (`python tutorials/swapping_guides.py`) or open it as a notebook (jupytext).
# `SMOKE=1` shrinks every size so that it runs in seconds; `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import inference  # noqa: E402
from inference.views import keep_figure  # noqa: E402
import zoo  # noqa: E402
from inference.compare import compare  # noqa: E402

SEED = 0
torch.manual_seed(SEED)
SMOKE = os.environ.get("SMOKE") == "1"
OUT = Path(os.environ["TUTORIAL_OUT"]) if os.environ.get("TUTORIAL_OUT") else None
GUIDES = ["delta", "normal", "mvn", "lowrank", "flow"]
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 12)


def show(fig, name):
    keep_figure(fig, name, OUT)  # a PNG in TUTORIAL_OUT (written atomically) when it is set; closes the figure


# %% [markdown]
# ## 1. The Bayesian mixture
#
# Three well separated blobs, a three-component mixture with per-component diagonal scales.
# NUTS (two chains started at a MAP fit) is the reference.

# %%
n = 45 if SMOKE else 150
data = torch.tensor(zoo.load_dataset("blobs", n_samples=n, n_components=3, random_state=SEED).data)
gmm = zoo.create_model("gmm", n_components=3, covariance_type="diag")
settings = dict(num_steps=20, num_samples=10, num_particles=5) if SMOKE else \
    dict(num_steps=1500, num_samples=1000, num_particles=500)
nuts = dict(num_samples=10, num_warmup=10, num_chains=1, jit_compile=False, max_tree_depth=3) if SMOKE else \
    dict(num_samples=500, num_warmup=300, num_chains=2)
# NUTS starts every chain at a MAP fit
restarts = 1 if SMOKE else 3
start = inference.fit(gmm, data, method="map", num_steps=settings["num_steps"], restarts=restarts, seed=SEED,
                      progress_bar=False)
mixture = compare(gmm, data, guides=GUIDES, reference="nuts", lr=0.05, seed=SEED, progress_bar=False,
                  fit_kwargs=dict(restarts=restarts), reference_kwargs=dict(nuts, nuts_init=start), **settings)
columns = ["rank", "distance", "elbo", "log_evidence", "log_evidence_se", "run_time"]
print(mixture.table[columns].round(3).to_string())

# %% [markdown]
# Per site, in long format: the mean error is the largest over the site's elements, in NUTS
# posterior standard deviations.

# %%
print(mixture.sites.pivot(index="guide", columns="site", values="mean_error").round(3).to_string())
show(mixture.plot(max_marginals=3), "mixture_comparison")

# %% [markdown]
# What to expect: `delta` is a point, so its spread error is 1 and it has no log evidence;
# the mean-field `normal` recovers the locations well but ignores the correlation between the
# weights (they sum to one) and between a component's location and its scale; `mvn` and `flow`
# capture them. The guides that place mass where NUTS does also give the highest
# importance-sampled log evidence, with the smallest standard error.
#
# ## 2. Bayesian encoding with a trained GLGAE
#
# A GLGAE is trained on a noisy ring by its coordinate updates, then frozen: `frozen()` keeps
# its prototypes and anchors fixed and leaves a model over the codes z of new points, whose
# posterior (flat prior, a mixture likelihood through q(k|z)) can be skewed and multimodal.

# %%
ring = torch.tensor(zoo.load_dataset("ring", n_samples=120 if SMOKE else 240, random_state=SEED).data)
glgae = zoo.create_model("glgae", K=8, D=2, E=2, b=1.0)
inference.fit(glgae, ring, method="coordinate", num_steps=2 if SMOKE else 15, seed=SEED, progress_bar=False)
points = ring[:2] if SMOKE else ring[:4]
frozen = glgae.frozen()
encoding = compare(frozen, points, guides=GUIDES, reference="nuts", lr=0.02, seed=SEED, progress_bar=False,
                   reference_kwargs=dict(nuts, nuts_init=frozen.init_values(points)), **settings)
print(encoding.table[columns].round(3).to_string())
show(encoding.plot(max_marginals=4), "encoding_comparison")

# %% [markdown]
# Each code lives in E = 2 dimensions; with few points the posterior is small and NUTS is cheap,
# so it is a fair reference. A Gaussian guide cannot follow a code posterior that is bent around
# the anchors; the flow can.
#
# ## 3. Forest plot across guides
#
# The aligned draws of every guide, side by side (ArviZ).

# %%
from inference.views import plot_forest  # noqa: E402

show(plot_forest({k: v for k, v in mixture.results.items() if k != "delta"}, var_names=["locs"]), "mixture_forest")

# %% [markdown]
# ## Versions

# %%
import arviz  # noqa: E402
import pyro  # noqa: E402
import sys  # noqa: E402

print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"arviz {arviz.__version__}, pandas {pd.__version__}")
