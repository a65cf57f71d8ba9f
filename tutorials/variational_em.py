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
# The tour's section `variational_em` makes the same two comparisons; both use the functions of
# `apps.tour.variational_em`. A last section takes seed 002's "full-Bayes" step: choosing the
# Dirichlet concentration by the evidence, max over alpha of the ELBO.
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
from apps.tour.variational_em import cavi_sklearn_parity, cavi_vs_svi, three_clusters  # noqa: E402
from zoo.mixture import BayesianGMM  # noqa: E402
from zoo.mixture.concentration import (elbo_at_concentration, elbo_concentration_gradient,  # noqa: E402
                                       maximise_concentration, weight_prior_log_normaliser)

TUTORIAL = setup(seed=0)  # SMOKE, TUTORIAL_OUT, every seed
SMOKE, SEED, show = TUTORIAL.smoke, TUTORIAL.seed, TUTORIAL.show


N = 60 if SMOKE else 300
SVI_STEPS = 30 if SMOKE else 1500
PARTICLES = 20 if SMOKE else 500

X = three_clusters(N, SEED)  # centres (0, 0), (6, 0), (0, 6); unit variance

# %% [markdown]
# ## CAVI and scikit-learn: the same bound, iteration by iteration
#
# Six components for three clusters, both weight priors with concentration 0.01, same initial
# responsibilities (`random_from_data` with the same seed). `lower_bound_` follows scikit-learn's
# definition (constants dropped); `elbo_` is the full ELBO with every constant, comparable with SVI.
# `max_rel_gap_per_iter` is the largest relative difference of the two bounds over the iterations.

# %%
parity, fits = cavi_sklearn_parity(X, seed=SEED)
print(parity.T.to_string(float_format="{:.6g}".format))
for prior, (ours, _) in fits.items():
    print(f"{prior:<24} weights {np.round(np.sort(ours.weights_)[::-1], 3)}")

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
# same two Monte Carlo bounds, right after it is fitted.

# %%
# diagonal precisions (per-dimension Gamma): SVI on full Wishart precisions takes minutes here
model = BayesianGMM(3, covariance_type="diag", weight_concentration_prior_type="dirichlet_process")
versus, traces = cavi_vs_svi(model, X, svi_steps=SVI_STEPS, num_particles=PARTICLES, num_samples=2 if SMOKE else 20,
                             enumerated_particles=max(20, PARTICLES // 5), seed=SEED)
print(versus.round(2).to_string())

# %% [markdown]
# The mean-field ELBO is CAVI's objective (best factorised `q(z)` for each fit's
# `q(theta)`); the enumerated ELBO, SVI's objective, sums the assignment out exactly and is
# never below it for the same `q(theta)`.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, trace in traces.items():
    ax.plot(np.arange(1, len(trace) + 1), trace, label=name)
ax.set_xscale("log")
ax.set_xlabel("iteration / SVI step")
ax.set_ylabel("ELBO (SVI: single-particle enumerated estimate)")
lo = min(min(t[len(t) // 10:]) for t in traces.values())
ax.set_ylim(lo - 20, max(max(t) for t in traces.values()) + 5)
ax.legend()
fig.tight_layout()
show(fig, "elbo_traces")

fig, ax = plt.subplots(figsize=(6, 3))
width = 0.4
for i, (prior, (m, _)) in enumerate(fits.items()):
    ax.bar(np.arange(6) + (i - 0.5) * width, m.weights_, width, label=prior)
ax.set_xlabel("component")
ax.set_ylabel("posterior-mean weight")
ax.legend()
fig.tight_layout()
show(fig, "weights")

# %% [markdown]
# ## Choosing the concentration by the evidence
#
# Seed 002's full-Bayes step puts a prior p(theta | alpha) on the parameters and picks the
# hyperparameter by the evidence, max_alpha log ∫ p(x | theta) p(theta | alpha) dtheta. Variationally:
# maximise ELBO*(alpha) = max_q ELBO(q; alpha), one CAVI fit per alpha, over log alpha
# (`zoo.mixture.concentration.maximise_concentration`, a bounded Brent search). Here: the three
# clusters, K = 8, a finite Dirichlet(alpha 1_K) on the weights.
#
# The objective must keep every term that depends on alpha, the prior's log normaliser
# log Gamma(K alpha) - K log Gamma(alpha) included. scikit-learn's `lower_bound_` drops it (with the other
# prior constants), so only `elbo_` can compare different alphas; the check below is that
# `elbo_ - lower_bound_ - normaliser` does not move with alpha, and that a finite difference of ELBO*
# matches the derivative of the ELBO's alpha terms at the fitted q (the envelope theorem).

# %%
torch.set_num_threads(1)  # the small CAVI fits below run about ten times faster on one thread than on two
K8 = 8
best = maximise_concentration(X, K8)
log_alphas = np.linspace(np.log(1e-4), np.log(1e2), 5 if SMOKE else 25)
curve = [elbo_at_concentration(X, np.exp(la), K8) for la in log_alphas]
elbo_curve = np.array([m.elbo_ for m in curve])
lower_curve = np.array([m.lower_bound_ for m in curve])
offset = [m.elbo_ - m.lower_bound_ - weight_prior_log_normaliser(np.exp(la), K8) for m, la in zip(curve, log_alphas)]
print(f"alpha* = {best.alpha:.4g}, ELBO* = {best.elbo:.3f} ({len(best.elbos)} fits); components with weight > 0.01: "
      f"{(best.model.weights_ > 0.01).sum()}; best grid ELBO {elbo_curve.max():.3f}")
print(f"elbo_ - lower_bound_ - log normaliser: spread {np.ptp(offset):.1e} over the grid")
h = 1e-4
la = np.log(best.alpha) + 1.0
fd = (elbo_at_concentration(X, np.exp(la + h), K8).elbo_ - elbo_at_concentration(X, np.exp(la - h), K8).elbo_) / (2 * h)
print(f"at log alpha* + 1: finite difference {fd:.6f}, envelope derivative "
      f"{elbo_concentration_gradient(elbo_at_concentration(X, np.exp(la), K8)):.6f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(log_alphas, elbo_curve, "o-", ms=3, label="ELBO*(alpha) (elbo_)")
axes[0].plot(np.log(best.alpha), best.elbo, "r*", ms=12, label="maximiser")
axes[0].set_xlabel("log alpha")
axes[0].set_ylabel("ELBO*")
axes[0].legend(fontsize=8)
axes[1].plot(log_alphas, lower_curve, "o-", ms=3, color="C1")
axes[1].set_xlabel("log alpha")
axes[1].set_ylabel("lower_bound_ (constants dropped)")
axes[1].set_title("without the prior's normaliser: largest as alpha -> 0")
fig.tight_layout()
show(fig, "concentration_by_evidence")

# %% [markdown]
# The full ELBO has an interior maximum at a small alpha, where three components carry the weight and
# five are switched off; larger alphas spread the weight and pay for it. Without the normaliser the
# curve keeps rising as alpha falls, and would choose alpha → 0.

# %% [markdown]
# ## Versions

# %%
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, "
      f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
