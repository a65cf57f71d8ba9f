"""(d) GLGAE: the MAP code against the exact posterior over z (quadrature on a grid).

The 1-D model, the posterior on a grid and its table against the MAP code, and the GLGAE trained on the
ring are public: the tutorial ``bayes_vs_map_encoding`` (parts 2 and 3) uses them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import inference
from zoo import objectives as obj
from zoo.datasets import make_ring
from zoo.glgae import GLGAE
from zoo.registry import create_model

from . import Section, Table, TourContext, as_numpy, fmt_vec, tour_section

__all__ = ["one_dim_glgae", "posterior_moments", "map_vs_posterior_1d", "ring_glgae", "code_grid"]


def one_dim_glgae() -> GLGAE:
    """A 1-D GLGAE (D = E = 1): prototypes A = ±1.5, anchors B = ±2, absorbing weight b = 1."""
    return GLGAE.from_parameters([[-1.5], [1.5]], [[-2.0], [2.0]], absorbing="constant", b=1.0)


def posterior_moments(model: GLGAE, x, grid):
    """The flat-prior posterior p(z | x) ∝ exp L2(z, x) of every row of ``x`` (N, D) on a uniform ``grid``
    (G, E) or (G,) (:meth:`zoo.GLGAE.grid_posterior`). Returns NumPy arrays: the probability of each grid
    cell (N, G), the posterior mean (N, E) and covariance (N, E, E)."""
    grid = torch.as_tensor(grid, dtype=torch.float64)
    p = as_numpy(model.grid_posterior(x, grid))
    g = as_numpy(grid.reshape(len(grid), -1))
    w = p[..., None]  # elementwise sums, not a matrix product: a symmetric posterior's mean is exactly 0
    mean = (w * g).sum(1)
    centred = g - mean[:, None]  # (N, G, E)
    cov = ((w * centred)[..., :, None] * centred[..., None, :]).sum(1)
    return p, mean, cov


def map_vs_posterior_1d(model: GLGAE, xs, grid):
    """A GLGAE with 1-D data and codes and two components: the MAP code of every datum in ``xs`` (N, 1)
    (batched L-BFGS from the anchor of the nearest prototype) against its exact posterior on the uniform
    1-D ``grid`` (G,). One row per x (index ``x``): ``MAP z``, ``posterior mode``, ``posterior mean``,
    ``posterior sd``, ``P(z > 0 | x)`` and ``P(k = 2 | x)``, the posterior probability of the second
    component. Returns the table and the posterior densities on the grid (N, G)."""
    xs = torch.as_tensor(xs, dtype=torch.float64)
    grid = torch.as_tensor(grid, dtype=torch.float64)
    p, mean, cov = posterior_moments(model, xs, grid)
    g = as_numpy(grid)
    z_map = as_numpy(model.encode(xs))[:, 0]
    with torch.no_grad():  # p(k | z, x) on the grid, (N, G, K)
        r = (model.log_q(grid[:, None])[None] + obj.log_p_x_given_k(xs, model.A)[:, None]).softmax(-1)
    table = pd.DataFrame({"x": as_numpy(xs)[:, 0], "MAP z": z_map, "posterior mode": g[p.argmax(1)],
                          "posterior mean": mean[:, 0], "posterior sd": np.sqrt(cov[:, 0, 0]),
                          "P(z > 0 | x)": p[:, g > 0].sum(1), "P(k = 2 | x)": (p * as_numpy(r[..., 1])).sum(1)})
    return table.set_index("x"), p / float(grid[1] - grid[0])


def ring_glgae(seed: int = 0, *, n_samples: int = 240, epochs: int = 12):
    """A GLGAE (K = 8, E = 2, b = 1) trained by coordinate ascent on ``n_samples`` points of the ring of
    eight Gaussians (fewer points can merge two clusters), frozen for encoding. Returns
    ``(ring, model, fit)``: the data set, the frozen model and the ``FitResult`` of the training."""
    ring = make_ring(n_samples=n_samples, random_state=seed)
    model = create_model("glgae", K=8, D=2, E=2, b=1.0)
    fit = inference.fit(model, torch.tensor(ring.data), method="coordinate", num_steps=epochs, progress_bar=False,
                        seed=seed)
    return ring, model.frozen(), fit


def code_grid(model: GLGAE, n_grid: int, margin: float = 3.0):
    """A square grid over the 2-D codes, the anchors plus ``margin`` on every side: the points
    (n_grid^2, 2) in row-major image order and the half-width ``lim`` of the square."""
    lim = float(np.abs(as_numpy(model.B)).max() + margin)
    axis = torch.linspace(-lim, lim, n_grid, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2), lim


@tour_section("bayes_vs_map_encoding")
def bayes_vs_map_encoding(ctx: TourContext) -> Section:
    """(d) GLGAE: the MAP code against the exact posterior over z (quadrature on a grid)."""
    import matplotlib.pyplot as plt

    # 1-D: prototypes at -1.5 and 1.5, anchors at -2 and 2, absorbing weight b = 1
    m = one_dim_glgae()
    picks = [-1.5, -0.6, -0.2, 0.0, 0.2, 0.6, 1.5]
    sweep = np.linspace(-2.5, 2.5, 61 if ctx.quick else 201)
    xs = torch.tensor(np.unique(np.concatenate([sweep, picks])), dtype=torch.float64)[:, None]
    grid = torch.linspace(-7, 7, 1401 if ctx.quick else 4001, dtype=torch.float64)
    every, dens = map_vs_posterior_1d(m, xs, grid)
    table = every.loc[picks]
    g = grid.numpy()
    z_map, post_mean, post_sd = (every[c].to_numpy() for c in ("MAP z", "posterior mean", "posterior sd"))

    # 2-D: a GLGAE trained on the ring; the posterior over z of three data points
    ctx.status("ring")
    ring, gl, _ = ring_glgae(ctx.seed)  # a few seconds; small runs can merge two clusters
    locs = ring.truth["locs"]
    probes = {"on a cluster": locs[0], "between two clusters": (locs[0] + locs[1]) / 2, "at the centre": 0 * locs[0]}
    Bn = as_numpy(gl.B)
    n_grid = 121 if ctx.quick else 241
    Z, lim = code_grid(gl, n_grid)
    cell = float(Z[1, 0] - Z[0, 0]) ** 2
    zn = Z.numpy()
    rows2, panels = [], []
    for name, p in probes.items():
        x = torch.tensor(p, dtype=torch.float64)[None]
        (w,), (mean,), (cov,) = posterior_moments(gl, x, Z)
        zm = as_numpy(gl.encode(x))[0]
        near = float(w[np.linalg.norm(zn - zm, axis=1) < 1.0].sum())
        rows2.append({"datum": name, "MAP z": fmt_vec(zm, 2), "posterior mean": fmt_vec(mean, 2),
                      "posterior sd (sqrt trace cov)": float(np.sqrt(np.trace(cov))),
                      "P(||z - MAP z|| < 1 | x)": near})
        panels.append((name, (w / cell).reshape(n_grid, n_grid), zm, mean))
    table2 = pd.DataFrame(rows2).set_index("datum")

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    ax = axes[0]
    ax.pcolormesh(xs[:, 0].numpy(), g, dens.T, shading="auto", cmap="Greys", vmax=np.quantile(dens, 0.995))
    ax.plot(xs[:, 0], z_map, "r-", lw=1.8, label="MAP z")
    ax.plot(xs[:, 0], post_mean, "b-", lw=1.5, label="posterior mean")
    ax.fill_between(xs[:, 0].numpy(), post_mean - 2 * post_sd, post_mean + 2 * post_sd, color="b", alpha=0.12,
                    label="mean ± 2 sd")
    ax.set_xlabel("datum x")
    ax.set_ylabel("code z")
    ax.set_ylim(-5, 5)
    ax.set_title("1-D GLGAE: p(z | x) (grey), MAP and mean")
    ax.legend(fontsize=7, loc="upper left")
    for ax, (name, density, zm, mean) in zip(axes[1:], panels):
        ax.imshow(density, origin="lower", extent=[-lim, lim, -lim, lim], cmap="Greys")
        ax.plot(Bn[:, 0], Bn[:, 1], "g^", ms=6, label="anchors B_k")
        ax.plot(*zm, "r*", ms=13, label="MAP z")
        ax.plot(*mean, "bo", ms=6, label="posterior mean")
        ax.set_title(f"ring GLGAE, datum {name}")
        ax.legend(fontsize=7, loc="lower left")
    figures = [ctx.figure(fig, "bayes_vs_map_encoding.png", "Left: a 1-D GLGAE (prototypes ±1.5, anchors ±2, "
                          "b = 1); the grey image is p(z | x) for every x, the red line the MAP code. Right: "
                          "the posterior over the 2-D code of three data points under a GLGAE trained on the "
                          "ring, with the MAP code (red star).")]
    prose = [
        "With an absorbing component the flat-prior posterior p(z | x) ∝ sum_k q(k | z) p(x | k) is proper, "
        "so Bayesian encoding keeps all of it instead of its arg-max. Here it is computed exactly, by "
        "quadrature on a grid (1-D and 2-D codes), and set against the MAP code from batched L-BFGS.",
        "Away from the boundary the two agree: the posterior is a single bump and the MAP code sits at its "
        "mode. Near the boundary between two prototypes the posterior has a mode near each anchor; the MAP "
        "code picks one (it jumps at the boundary) and reports no uncertainty, while the posterior mean moves "
        "smoothly through 0 and its standard deviation peaks. The same holds in 2-D for a datum between two "
        "ring clusters, and a datum at the centre of the ring spreads its posterior over every anchor.",
    ]
    return Section("Bayesian vs MAP encoding (GLGAE)", prose,
                   [Table("1-D GLGAE: MAP code against the exact posterior over z.", table, "bayes_vs_map_1d"),
                    Table("Ring GLGAE (K = 8, E = 2, b = 1): the posterior over the code of three data points.",
                          table2, "bayes_vs_map_ring")],
                   figures)
