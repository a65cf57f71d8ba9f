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
# # Inspecting posteriors
#
# Every fit in latent-zoo converts to an ArviZ `InferenceData` (`result.to_inference_data()`),
# so the usual workflow applies: summaries with `r_hat` and the effective sample sizes, trace and
# rank plots, posterior predictive checks, and model choice by PSIS-LOO. The functions in
# `inference.views` are thin wrappers that return matplotlib figures.
#
# Run it as a script (`python tutorials/inspecting_posteriors.py`) or open it as a notebook
# (jupytext). `SMOKE=1` shrinks every size; `TUTORIAL_OUT=DIR` saves the figures.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import inference  # noqa: E402
from inference.views import keep_figure  # noqa: E402
import zoo  # noqa: E402
from inference import views  # noqa: E402

SEED = 0
torch.manual_seed(SEED)
SMOKE = os.environ.get("SMOKE") == "1"
OUT = Path(os.environ["TUTORIAL_OUT"]) if os.environ.get("TUTORIAL_OUT") else None
pd.set_option("display.width", 160)


def show(fig, name):
    keep_figure(fig, name, OUT)  # a PNG in TUTORIAL_OUT (written atomically) when it is set; closes the figure


# %% [markdown]
# ## 1. A posterior from NUTS
#
# Three blobs and a three-component Bayesian mixture (diagonal scales). Two chains, each
# started at a MAP fit; the component index is summed out inside NUTS's potential.

# %%
n = 45 if SMOKE else 200
data = torch.tensor(zoo.load_dataset("blobs", n_samples=n, n_components=3, random_state=SEED).data)
nuts = dict(num_samples=10, num_warmup=10, jit_compile=False, max_tree_depth=3) if SMOKE else \
    dict(num_samples=500, num_warmup=400)
steps, restarts = (30, 1) if SMOKE else (300, 3)
model = zoo.create_model("gmm", n_components=3, covariance_type="diag")
start = inference.fit(model, data, method="map", num_steps=steps, restarts=restarts, seed=SEED, progress_bar=False)
fit = inference.fit(model, data, method="nuts", num_chains=2, nuts_init=start, seed=SEED, progress_bar=False,
                    **nuts)

# %% [markdown]
# ## 2. Summaries, r_hat and ESS
#
# `r_hat` near 1 (below 1.01) says the chains agree; `ess_bulk` and `ess_tail` are the effective
# numbers of independent draws for the centre and the tails. A mixture's labels can differ
# between chains (label switching): r_hat then flags the locations even though each chain is
# fine. Each chain here starts at the same MAP fit, so the labels agree.

# %%
summary = fit.summary()
print(summary[["mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "ess_tail", "r_hat"]].round(3).to_string())
print("largest r_hat:", float(summary["r_hat"].max()), " smallest bulk ESS:", float(summary["ess_bulk"].min()))

# %%
show(views.plot_trace(fit, var_names=["locs", "weights"]), "trace")
show(views.plot_trace(fit, var_names=["locs"], kind="rank_bars"), "rank")
show(views.plot_posterior(fit, var_names=["weights"]), "posterior_weights")

# %% [markdown]
# Rank plots are the sharper test of mixing: for each chain the histogram of the ranks of its
# draws among all draws should be flat.
#
# ## 3. Posterior predictive checks
#
# For each posterior draw a new data set is drawn from the model (a new component index per
# datum from the weights, then the datum). If the model fits, the observed density sits among
# the replicated ones, feature by feature.

# %%
idata = fit.to_inference_data(posterior_predictive=True, num_predictive_draws=5 if SMOKE else 100)
print(idata.posterior_predictive["obs"].shape, "replicated sets of shape", idata.observed_data["obs"].shape)
show(views.plot_ppc(fit, num_pp_samples=5 if SMOKE else 100), "ppc")

# %% [markdown]
# ## 4. Choosing K by LOO
#
# Fit K = 1..4 components and compare them by PSIS-LOO (the expected log predictive density of
# a left-out point, estimated from the posterior draws). `loo_compare` returns `az.compare`'s
# table, best first; `elpd_diff` and its standard error `dse` say whether a difference matters.
# NUTS gives the draws (in smoke mode a mean-field guide's draws, which LOO accepts too; LOO is then
# only as good as the guide).

# %%
Ks = [2, 3] if SMOKE else [1, 2, 3, 4]


def fit_K(K):
    model = zoo.create_model("gmm", n_components=K, covariance_type="diag")
    if SMOKE:
        return inference.fit(model, data, method="svi", guide="normal", num_steps=steps, restarts=restarts,
                             num_samples=50, seed=SEED, progress_bar=False)
    start = inference.fit(model, data, method="map", num_steps=steps, restarts=3, seed=SEED, progress_bar=False)
    return inference.fit(model, data, method="nuts", num_chains=2, nuts_init=start, seed=SEED, progress_bar=False,
                         **dict(nuts, num_samples=300, num_warmup=300))  # shorter chains: LOO needs fewer draws


fits = {f"K={K}": fit_K(K) for K in Ks}
table = views.loo_compare(fits)
print(table[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "weight", "warning"]].round(2).to_string())
print("chosen:", table.index[0])
show(views.plot_loo_compare(table), "loo_compare")

# %% [markdown]
# Beyond three components the extra ones get little weight and the expected log predictive
# density stops improving (within a standard error or two); with fewer than three it drops by a
# wide margin. Pareto k warnings (`warning = True`) would say that the importance-sampled LOO is
# unreliable for some points.
#
# ## Versions

# %%
import sys  # noqa: E402

import pyro  # noqa: E402

print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"arviz {az.__version__}, pandas {pd.__version__}")
