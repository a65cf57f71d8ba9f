"""(h) Mode collapse, side by side: the GAN with each generator loss, the VAE, the Gaussian mixture and
GLGAE, trained on the same rows of the ring of 8 and the grid of 25 Gaussians, several seeds each."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

import inference
from zoo.datasets import make_grid, make_ring, mode_coverage
from zoo.mixture import GaussianMixture
from zoo.registry import create_model

from . import Section, Table, TourContext, tour_section

__all__ = ["MODELS", "SETTINGS", "mode_collapse_runs", "summarise_runs", "plot_samples", "mode_collapse_data"]

#: the models compared, in the table's order
MODELS = ("GAN, minimax loss", "GAN, non-saturating loss", "VAE", "Gaussian mixture", "GLGAE")
_DATA = {"ring of 8": make_ring, "grid of 25": make_grid}


def mode_collapse_data(name: str, *, n_train: int, n_test: int, seed: int = 0) -> tuple:
    """Training rows, held-out rows (float32 tensors) and the truth (``locs``, ``scale``) of the data set
    ``name`` ("ring of 8" or "grid of 25"); the held-out rows are drawn with another seed."""
    if name not in _DATA:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(map(repr, _DATA))}")
    train = _DATA[name](n_train, random_state=1000 + seed)
    test = _DATA[name](n_test, random_state=2000 + seed)
    return (torch.tensor(train.data, dtype=torch.float32), torch.tensor(test.data, dtype=torch.float32),
            train.truth)


#: training lengths: "full" (the tutorial), "quick" (``make run``'s budget) and "test" (smoke runs)
SETTINGS = {"full": {"gan_steps": 6000, "vae_steps": 4000, "glgae_sweeps": 20, "n_samples": 2500},
            "quick": {"gan_steps": 1500, "vae_steps": 1000, "glgae_sweeps": 6, "n_samples": 2500},
            "test": {"gan_steps": 60, "vae_steps": 40, "glgae_sweeps": 2, "n_samples": 500}}


def _fit_one(model: str, x: torch.Tensor, truth: dict, seed: int, s: dict):
    """Train ``model`` on ``x``; return (samples (S, 2) array, held-out scorer or None)."""
    k = len(truth["locs"])
    n = s["n_samples"]
    torch.manual_seed(seed)
    if model.startswith("GAN"):
        loss = "minimax" if "minimax" in model else "non_saturating"
        gan = create_model("gan", n_features=2, noise_dim=2, hidden=(128, 128), generator_loss=loss)
        inference.fit(gan, x, method="adversarial", num_steps=s["gan_steps"], batch_size=256, lr=1e-3,
                      seed=seed, progress_bar=False, num_samples=1)
        return gan.sample(n).cpu().numpy(), None
    if model == "VAE":
        # the decoder's scale is fixed at the components' sd: a learned scale settles in the
        # one-Gaussian optimum (posterior collapse) on these data
        vae = create_model("vae", n_features=2, latent_dim=2, hidden=(64, 64), likelihood="gaussian",
                           scale=truth["scale"])
        inference.fit(vae, x, method="svi", guide="custom", num_steps=s["vae_steps"], lr=3e-3, batch_size=256,
                      seed=seed, progress_bar=False)
        return vae.sample(n).detach().cpu().numpy(), lambda t: vae.log_likelihood(t, num_samples=200)
    if model == "Gaussian mixture":
        gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed).fit(x.double().numpy())
        return gm.sample(n)[0], lambda t: torch.as_tensor(gm.score_samples(t.double().numpy()))
    if model == "GLGAE":
        glgae = create_model("glgae", K=k, D=2, E=2, b=1.0, scale=truth["scale"])
        fit = inference.fit(glgae, x.double(), method="coordinate", num_steps=s["glgae_sweeps"], seed=seed,
                            progress_bar=False)
        radius = float(fit.samples["z"].abs().max()) + 1.0  # the box of the uniform q(z): the codes and a margin
        return (glgae.sample(n, radius, seed=seed).numpy(),
                lambda t: glgae.score_samples(t.double(), radius))
    raise ValueError(f"unknown model {model!r}; known: {', '.join(map(repr, MODELS))}")


def mode_collapse_runs(datasets=("ring of 8", "grid of 25"), models=MODELS, seeds=(0, 1, 2), *,
                       setting: str = "quick", n_train: int = 2000, n_test: int = 1000, status=None):
    """Train every model on every data set with every seed; return (runs, samples): one row per run
    (data, model, seed, modes covered, high-quality fraction, held-out log-likelihood per datum (NaN
    where a model has none), seconds) and the samples of the first seed, ``samples[(data, model)]``
    (S, 2). ``setting`` is a key of :data:`SETTINGS`."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {', '.join(map(repr, SETTINGS))}")
    rows, samples = [], {}
    s = SETTINGS[setting]
    for name in datasets:
        for seed in seeds:
            x, test, truth = mode_collapse_data(name, n_train=n_train, n_test=n_test, seed=seed)
            for model in models:
                if status is not None:
                    status(f"{name}: {model}, seed {seed}")
                t0 = time.perf_counter()
                draws, scorer = _fit_one(model, x, truth, seed, s)
                elapsed = time.perf_counter() - t0
                cover = mode_coverage(draws, truth["locs"], truth["scale"])
                ll = float(torch.as_tensor(scorer(test)).double().mean()) if scorer is not None else float("nan")
                rows.append({"data": name, "model": model, "seed": seed, "modes": cover["modes"],
                             "modes of": len(truth["locs"]), "high-quality fraction": cover["high_quality"],
                             "held-out log-lik": ll, "seconds": elapsed})
                if seed == seeds[0]:
                    samples[(name, model)] = draws
    return pd.DataFrame(rows), samples


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over the seeds of every (data, model): modes covered, high-quality fraction, held-out
    log-likelihood, seconds per run."""
    cols = ["modes", "high-quality fraction", "held-out log-lik", "seconds"]
    g = runs.groupby(["data", "model"], sort=False)
    out = pd.concat({"mean": g[cols].mean(), "sd": g[cols].std(ddof=1)}, axis=1)
    out.columns = [f"{c} ({stat})" for stat, c in out.columns]
    out = out[[f"{c} ({stat})" for c in cols for stat in ("mean", "sd")]]
    out.insert(0, "runs", g.size())
    out.insert(1, "modes of", g["modes of"].first())
    return out


def plot_samples(samples: dict, truth_locs: dict, axes_grid) -> None:
    """Samples of each (data, model) on ``axes_grid`` (rows: data sets, columns: models), with the modes."""
    names = list(dict.fromkeys(d for d, _ in samples))
    models = list(dict.fromkeys(m for _, m in samples))
    for i, name in enumerate(names):
        for j, model in enumerate(models):
            ax = axes_grid[i][j]
            draws = samples[(name, model)]
            ax.scatter(draws[:, 0], draws[:, 1], s=1.5, alpha=0.4, color="C0", rasterized=True)
            locs = np.asarray(truth_locs[name])
            ax.scatter(locs[:, 0], locs[:, 1], s=18, marker="x", color="C3")
            lim = 1.6 * np.abs(locs).max()
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(model, fontsize=9)
            if j == 0:
                ax.set_ylabel(name)


@tour_section("gans")
def gans(ctx: TourContext) -> Section:
    """(h) Mode collapse: GANs against the likelihood models on the ring and the grid."""
    import matplotlib.pyplot as plt

    seeds = tuple(ctx.seed + i for i in range(3))
    runs, samples = mode_collapse_runs(seeds=seeds, setting="test" if ctx.quick else "quick",
                                       n_train=300 if ctx.quick else 2000, n_test=200 if ctx.quick else 1000,
                                       status=ctx.status)
    table = summarise_runs(runs)
    truth = {name: mode_collapse_data(name, n_train=1, n_test=1)[2]["locs"] for name in runs["data"].unique()}
    models = list(dict.fromkeys(runs["model"]))
    fig, axes = plt.subplots(len(truth), len(models), figsize=(2.6 * len(models), 2.6 * len(truth)), squeeze=False)
    plot_samples(samples, truth, axes)
    fig.tight_layout()
    figures = [ctx.figure(fig, "mode_collapse.png",
                          f"2500 draws of each model (seed {seeds[0]}); red crosses: the true modes.")]
    prose = [
        "The generative adversarial network is the one model here without a likelihood: a generator G(z) of "
        "noise z ~ N(0, I) and a discriminator D(x) trained against each other (`method=\"adversarial\"`). "
        "At the optimal discriminator D* = p_r / (p_r + p_g) the minimax generator loss is "
        "2 JS(p_r || p_g) - 2 log 2, whose gradient vanishes when the two distributions do not overlap; the "
        "non-saturating loss -log D(G(z)) keeps a gradient but follows KL(p_g || p_r) - 2 JS, a reverse KL "
        "that does not punish a generator for missing modes (tests/test_gan.py measures each claim).",
        "Every model is trained on the same rows of each data set for each seed (3 seeds) and draws 2500 "
        "samples. A sample is high quality when it lies within 3 standard deviations of its nearest mode; a "
        "mode is covered when at least 20 of the 2500 samples are high-quality samples of it (PacGAN's rule). "
        "The held-out log-likelihood is per datum, on rows drawn with another seed; the GANs have none. This "
        "is the quick setting (1500 adversarial steps, 1000 VAE steps, 6 GLGAE sweeps); the tutorial "
        "`gans_and_mode_collapse` runs the full one.",
        "The VAE's decoder scale is fixed at the components' standard deviation (learned, it settles in the "
        "one-Gaussian optimum), and GLGAE's observation scale likewise; its samples come from its generative "
        "view: z uniform on a box around the codes, k ~ q(k|z) with the absorbing draws emitting nothing.",
    ]
    def shown(frame):  # a GAN has no likelihood: say so in the cell rather than print NaN
        return frame.astype(object).where(frame.notna(), "none")

    return Section("Mode collapse: GANs, the VAE, the Gaussian mixture and GLGAE", prose,
                   [Table("Modes covered, high-quality fraction, held-out log-likelihood per datum and seconds per "
                          "run: mean and sd over 3 seeds.", shown(table.reset_index()), "mode_collapse"),
                    Table("Every run.", shown(runs), "mode_collapse_runs")],
                   figures)

