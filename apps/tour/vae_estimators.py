"""(g) The VAE's gradient estimators: variance at fixed parameters, and the bounds each reaches.

The gradient-variance table and the test-bounds table are public: the tutorial
``vae_gradient_estimators`` prints and plots them at its own sizes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import inference
from inference import gradient_variance
from zoo.datasets import load_binary_digits
from zoo.vae import VAE

from . import Section, Table, TourContext, tour_section

__all__ = ["ESTIMATORS", "gradient_variance_table", "bounds_per_estimator"]

#: the VAE's gradient estimators, by name
ESTIMATORS = ("reparam", "analytic_kl", "score_function", "iwae")


def gradient_variance_table(model: VAE, batch, *, num_draws: int, burn_in: int, seed: int = 0) -> pd.DataFrame:
    """:func:`inference.gradient_variance` of every estimator of :data:`ESTIMATORS` at ``model``'s fixed
    parameters on ``batch`` (B, D), plus the row ``"score_function, no baseline"`` (plain REINFORCE: the
    same estimator without its control variate, no burn-in) and the column ``relative_to_reparam``
    (``mean_variance`` over reparam's). The model's baseline is restored afterwards."""
    var = gradient_variance(model, batch, ESTIMATORS, num_draws=num_draws, burn_in=burn_in, seed=seed)
    baseline, model.baseline = model.baseline, "none"
    try:
        bare = gradient_variance(model, batch, ("score_function",), num_draws=num_draws, burn_in=0, seed=seed)
    finally:
        model.baseline = baseline
    var = pd.concat([var, bare.rename(index={"score_function": "score_function, no baseline"})])
    var["relative_to_reparam"] = var["mean_variance"] / var.loc["reparam", "mean_variance"]
    return var


def bounds_per_estimator(xtr, xte, *, latent: int, hidden: tuple, steps: int, k: int, seed: int = 0,
                         status=None) -> pd.DataFrame:
    """A VAE (64 inputs, ``hidden`` layers, ``latent`` dimensions) trained on ``xtr`` with each estimator
    of :data:`ESTIMATORS` (``iwae`` with 5 particles) for ``steps`` Adam steps (lr 3e-3, minibatches of
    128), then scored on ``xte`` (torch seeded with ``seed`` first): one row per estimator with
    ``test_elbo`` (20 draws), ``iwae_5`` and ``loglik_<k>`` (``k`` importance samples), nats per image."""
    rows = []
    for est in ESTIMATORS:
        if status is not None:
            status(f"VAE {est}")
        m = VAE(64, latent, hidden, estimator=est, num_particles=5 if est == "iwae" else 1)
        inference.fit(m, xtr, guide="custom", num_steps=steps, lr=3e-3, batch_size=128, progress_bar=False, seed=seed)
        torch.manual_seed(seed)
        rows.append({"estimator": est, "test_elbo": m.elbo(xte, num_samples=20).mean().item(),
                     "iwae_5": m.iwae_bound(xte, 5).mean().item(), f"loglik_{k}": m.log_likelihood(xte, k).mean().item()})
    return pd.DataFrame(rows).set_index("estimator")


@tour_section("vae_estimators")
def vae_estimators(ctx: TourContext) -> Section:
    """(g) The VAE's gradient estimators: variance at fixed parameters, and the bounds each reaches."""
    import matplotlib.pyplot as plt

    ds = load_binary_digits()
    xtr, xte = torch.tensor(ds.data), torch.tensor(ds.test_data)
    latent, hidden = 8, (64,)
    ctx.status("gradient variance")
    torch.manual_seed(ctx.seed)
    var = gradient_variance_table(VAE(64, latent, hidden), xtr[:64], num_draws=10 if ctx.quick else 200,
                                  burn_in=3 if ctx.quick else 20, seed=ctx.seed)
    steps, k = (30, 100) if ctx.quick else (1500, 2000)
    bounds = bounds_per_estimator(xtr, xte, latent=latent, hidden=hidden, steps=steps, k=k, seed=ctx.seed,
                                  status=ctx.status)

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar([i.replace(", ", "\n") for i in var.index], var["mean_variance"], color="tab:blue")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("mean variance of the encoder gradient")
    axes[0].set_title("Gradient variance, same parameters and batch")
    x = np.arange(len(bounds))
    for i, col in enumerate(bounds.columns):
        axes[1].bar(x + (i - 1) * 0.27, bounds[col], 0.27, label=col)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(bounds.index)
    lo = float(bounds.to_numpy().min())
    axes[1].set_ylim(lo - 1.0, float(bounds.to_numpy().max()) + 0.5)
    axes[1].set_ylabel("nats per test image")
    axes[1].set_title("Test bounds after training")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    figures = [ctx.figure(fig, "vae_estimators.png", "Left: variance of each estimator's gradient with respect to "
                          "the encoder (log scale). Right: test ELBO, 5-sample IWAE bound and the importance-sampled "
                          "log-likelihood reached by each estimator.")]
    prose = [
        "A VAE on binarised 8 x 8 digits (64-64-8, Bernoulli decoder). The estimator of the ELBO's gradient is "
        "one string: `reparam` (z = mu + sigma eps), `analytic_kl` (the KL term in closed form), "
        "`score_function` (REINFORCE with a baseline, no reparameterisation) and `iwae` (the 5-sample "
        "importance-weighted bound).",
        "At the same parameters and batch the score function's gradient is orders of magnitude noisier than the "
        "reparameterised ones; its decaying-average baseline (per datum, here of a fixed batch) removes much of "
        "that, and the closed-form KL removes part of the reparameterised estimator's noise. After the same "
        f"number of steps ({steps}) every row reads ELBO <= IWAE_5 <= log-likelihood estimate ({k} importance "
        "samples): the gap is what a bound costs.",
    ]
    return Section("VAE gradient estimators", prose,
                   [Table("Gradient variance per estimator (encoder parameters, 64 images).", var, "vae_variance"),
                    Table("Test bounds per estimator (nats per image).", bounds, "vae_bounds")], figures)
