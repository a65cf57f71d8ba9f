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
# # GANs and mode collapse
#
# The generative adversarial network is the one model of the zoo without a likelihood: a generator
# x = G(z) of noise z ~ N(0, I) defines p_g only through its draws, and a discriminator D(x) in (0, 1)
# is trained to tell the data from them. The fourth note (MATH.md section 6) makes four claims about the
# game; this tutorial measures each on 1-D Gaussians, where every density is known, and then puts the GAN
# beside the likelihood models of the zoo on the two benchmarks of mode collapse, the ring of 8 and the
# grid of 25 Gaussians.
#
# The discriminator maximises V(D, G) = E_data log D(x) + E_G log(1 - D(x)); the generator minimises
# either the same V (the *minimax* loss, E log(1 - D(G(z)))) or the *non-saturating* loss
# -E log D(G(z)). Both are `zoo.gan` functions in log space; `inference.fit(gan, x, method="adversarial")`
# alternates the two updates. `tests/test_gan.py` asserts every figure printed here.
#
# `SMOKE=1` shrinks every size (the test suite runs it that way); `TUTORIAL_OUT=DIR` saves the figures.

# %%
import math
import os
import sys

import matplotlib

if os.environ.get("TUTORIAL_OUT"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import inference  # noqa: E402
from apps.tour.gans import mode_collapse_data, mode_collapse_runs, plot_samples, summarise_runs  # noqa: E402
from apps.tutorial import setup  # noqa: E402
from zoo.gan import GAN, gan_value, generator_loss, js_divergence, kl_divergence, optimal_discriminator_logit  # noqa: E402

TUTORIAL = setup(seed=0)  # SMOKE, TUTORIAL_OUT, every seed
SMOKE, SEED, show = TUTORIAL.smoke, TUTORIAL.seed, TUTORIAL.show
F64, LOG2 = torch.float64, math.log(2.0)
X = torch.linspace(-60.0, 60.0, 24001, dtype=F64)  # the quadrature grid: every density below is known on it
Z = torch.linspace(-40.0, 40.0, 16001, dtype=F64)  # the noise grid of E_z f(G(z)), z ~ N(0, 1)


def log_normal(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def over_noise(values):
    """E_z values(z) for z ~ N(0, 1), by the trapezoid rule."""
    return torch.trapezoid(log_normal(Z, 0.0, 1.0).exp() * values, Z)


# %% [markdown]
# ## 1. The optimal discriminator
#
# For a fixed generator the discriminator's best answer is D*(x) = p_r(x) / (p_r(x) + p_g(x)). Data
# N(0, 1) and a generator with no parameters, x = z + 1, so p_g = N(1, 1) and D*(x) = sigmoid(1/2 - x).
# `fit` then trains the discriminator alone.


# %%
class Shift(nn.Module):
    def forward(self, z):
        return z + 1.0


data = torch.randn(4000, 1, generator=torch.Generator().manual_seed(SEED), dtype=F64)
gan_1d = GAN(1, noise_dim=1, hidden=(16,), generator=Shift())
fit_1d = inference.fit(gan_1d, data, method="adversarial", num_steps=200 if SMOKE else 1000, batch_size=1024,
                       lr=1e-2, seed=SEED, progress_bar=False)
grid = torch.linspace(-2.0, 3.0, 501, dtype=F64)
d_star = torch.sigmoid(optimal_discriminator_logit(log_normal(grid, 0, 1), log_normal(grid, 1, 1)))
d_fit = gan_1d.discriminate(grid[:, None])
log_r, log_g = log_normal(X, 0, 1), log_normal(X, 1, 1)
v_fit = gan_value(log_r, log_g, gan_1d.discriminate(X[:, None], logits=True), X).item()
v_star = gan_value(log_r, log_g, optimal_discriminator_logit(log_r, log_g), X).item()
print(f"max |D - D*| on [-2, 3]: {(d_fit - d_star).abs().max().item():.4f}; V(D) = {v_fit:.5f} <= V(D*) = "
      f"{v_star:.5f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(grid, d_star, label="D* = p_r / (p_r + p_g)", lw=2)
ax.plot(grid, d_fit, "--", label="trained discriminator")
ax.set_xlabel("x")
ax.set_ylabel("D(x)")
ax.legend()
fig.tight_layout()
show(fig, "optimal_discriminator")

# %% [markdown]
# ## 2. At D*, the generator minimises 2 JS - 2 log 2
#
# Substituting D* into V gives V(D*, G) = 2 JS(p_r || p_g) - 2 log 2, with JS in [0, log 2]: 0 when the
# two distributions agree, log 2 when they do not overlap. By quadrature, for N(0, 1) against N(d, 1):

# %%
separations = np.array([0.0, 0.5, 1, 2, 4, 6, 8, 10])
js, gap = [], 0.0
for d in separations:
    lr_, lg_ = log_normal(X, 0, 1), log_normal(X, float(d), 1)
    j = js_divergence(lr_, lg_, X).item()
    v = gan_value(lr_, lg_, optimal_discriminator_logit(lr_, lg_), X).item()
    js.append(j)
    gap = max(gap, abs(v - (2 * j - 2 * LOG2)))
print(f"largest |V(D*) - (2 JS - 2 log 2)| over {len(separations)} separations: {gap:.1e}")
print("JS / log 2: " + ", ".join(f"d={d:g}: {j / LOG2:.4f}" for d, j in zip(separations, js)))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(separations, js, marker="o", label="JS(N(0,1) || N(d,1))")
ax.axhline(LOG2, color="k", lw=0.8, ls=":", label="log 2")
ax.set_xlabel("separation d")
ax.legend()
fig.tight_layout()
show(fig, "js")

# %% [markdown]
# ## 3. The minimax gradient vanishes; the non-saturating one does not
#
# p_r = N(0, s^2) and a generator x = s z + theta, the discriminator held at D* (as after its own
# updates). The minimax loss's gradient is that of 2 JS (D* maximises V, so its own change does not
# count): as the distributions separate JS saturates at log 2 and the gradient dies. The non-saturating
# loss's gradient grows with the separation instead.

# %%
s = 1.5


def generator_gradient(theta0, kind):
    theta = torch.tensor(theta0, dtype=F64, requires_grad=True)
    x = s * Z + theta
    logit = optimal_discriminator_logit(log_normal(x, 0.0, s), log_normal(x, theta0, s))
    return abs(torch.autograd.grad(over_noise(generator_loss(logit[:, None], kind)), theta)[0].item())


ratios = np.array([0.5, 1, 2, 4, 8, 10, 15, 20])
grads = {kind: [generator_gradient(r * s, kind) for r in ratios] for kind in ("minimax", "non_saturating")}
for r, a, b in zip(ratios, grads["minimax"], grads["non_saturating"]):
    print(f"theta / s = {r:4}: minimax {a:.3e}   non-saturating {b:.3e}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for kind, g in grads.items():
    ax.semilogy(ratios, g, marker="o", label=kind)
ax.set_xlabel("separation theta / s")
ax.set_ylabel("|d loss / d theta| at D*")
ax.legend()
fig.tight_layout()
show(fig, "vanishing_gradient")

# %% [markdown]
# ## 4. The non-saturating loss follows a reverse KL
#
# At D*, the gradient of -E log D*(G(z)) is the gradient of KL(p_g || p_r) - 2 JS(p_r || p_g) (Arjovsky
# and Bottou 2017, Theorem 2.5). Checked here with p_g = N(mu, sigma^2) against central differences of the
# closed-form KL and the quadrature JS; then what that objective prefers on a two-mode p_r.


# %%
def kl_normal(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


def reverse_kl_minus_2js(mu, log_sigma):
    sg = math.exp(log_sigma)
    return kl_normal(mu, sg, 0.0, 1.0) - 2 * js_divergence(log_normal(X, 0, 1), log_normal(X, mu, sg), X).item()


theta0 = (1.0, math.log(0.6))
theta = torch.tensor(theta0, dtype=F64, requires_grad=True)
x = theta[0] + theta[1].exp() * Z
logit = optimal_discriminator_logit(log_normal(x, 0, 1), log_normal(x, theta0[0], math.exp(theta0[1])))
grad = torch.autograd.grad(over_noise(generator_loss(logit[:, None], "non_saturating")), theta)[0].numpy()
h = 1e-5
fd = np.array([(reverse_kl_minus_2js(theta0[0] + h, theta0[1]) - reverse_kl_minus_2js(theta0[0] - h, theta0[1])) / (2 * h),
               (reverse_kl_minus_2js(theta0[0], theta0[1] + h) - reverse_kl_minus_2js(theta0[0], theta0[1] - h)) / (2 * h)])
print(f"non-saturating gradient {grad.round(8)}, gradient of KL(g||r) - 2 JS {fd.round(8)}, relative gap "
      f"{np.linalg.norm(grad - fd) / np.linalg.norm(fd):.1e}")

log_two_modes = torch.logaddexp(log_normal(X, -3, 0.5), log_normal(X, 3, 0.5)) - LOG2
for name, lg_ in (("generator on one mode", log_normal(X, 3, 0.5)),
                  ("moment-matched Gaussian", log_normal(X, 0, math.sqrt(9.25)))):
    rev = kl_divergence(lg_, log_two_modes, X).item() - 2 * js_divergence(log_two_modes, lg_, X).item()
    fwd = kl_divergence(log_two_modes, lg_, X).item()
    print(f"{name:>24}: KL(g||r) - 2 JS = {rev:.3f}   KL(r||g) (maximum likelihood) = {fwd:.3f}")

# %% [markdown]
# The reverse KL costs a generator nothing for the modes it never visits: the one-mode generator scores
# better than the covering one, while maximum likelihood (the forward KL) prefers the covering one. That
# is the notes' explanation of mode collapse.
#
# ## 5. Mode collapse, side by side
#
# Every model trained on the same rows, three seeds each: the GAN with each generator loss, the VAE,
# `GaussianMixture` and GLGAE. A sample is *high quality* within 3 sds of its nearest mode; a mode is
# *covered* by at least 20 of 2500 high-quality samples. Held-out log-likelihood per datum where a model
# has one. The tour's section `gans` runs the same function with shorter training.

# %%
runs, samples = mode_collapse_runs(seeds=(SEED, SEED + 1, SEED + 2), setting="test" if SMOKE else "full",
                                   n_train=300 if SMOKE else 2000, n_test=200 if SMOKE else 1000)
table = summarise_runs(runs)
print(table.round(3).to_string())
truth = {name: mode_collapse_data(name, n_train=1, n_test=1)[2]["locs"] for name in runs["data"].unique()}
models = list(dict.fromkeys(runs["model"]))
fig, axes = plt.subplots(len(truth), len(models), figsize=(2.6 * len(models), 2.6 * len(truth)), squeeze=False)
plot_samples(samples, truth, axes)
fig.tight_layout()
show(fig, "mode_collapse")

# %% [markdown]
# What the full setting measured (README, "Measured"): on the ring every model finds the 8 modes, but
# the GANs place about 94% of their draws near a mode against 99% for the mixture and GLGAE, and the
# VAE 62% (its decoder smears the draws along the circle). On the grid of 25 the GANs cover 8 to 10
# modes on average after 6000 steps, with a spread of about 3 modes between seeds, and the VAE none:
# its samples fill the square between the modes. The Gaussian mixture and GLGAE, told the number of
# components, cover all 25. The two generator losses differ less than the seeds do here; the
# reverse-KL argument of section 4 explains why a GAN can settle on a subset of the modes, not how many
# it finds in a given run.

# %% [markdown]
# ## Versions

# %%
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, pyro {pyro.__version__}, numpy {np.__version__}")
