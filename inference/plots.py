"""Figures for fit results (matplotlib; ArviZ for trace plots)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_losses", "plot_clusters", "plot_trace", "save_figure", "keep_figure"]


def save_figure(fig, path) -> None:
    """Write ``fig`` as PNG to ``path`` via a temporary file and a rename."""
    import os
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)


def keep_figure(fig, name: str, folder=None) -> None:
    """Write ``fig`` to ``folder/name`` (``.png`` added when missing; atomically) when ``folder`` is given,
    creating the folder; close the figure either way (the tutorials' ``show``)."""
    from pathlib import Path

    if folder is not None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_figure(fig, folder / (name if name.endswith(".png") else f"{name}.png"))  # closes it
    else:
        plt.close(fig)


def plot_losses(results: dict, ax=None):
    """Loss traces of several fits, keyed by label."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, r in results.items():
        if r.losses:
            ax.plot(np.arange(1, len(r.losses) + 1), r.losses, label=label, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (negative ELBO)")
    ax.set_yscale("symlog")
    ax.legend()
    ax.set_title("SVI loss")
    return ax


def _ellipse(ax, mean, cov, color):
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = mean[:, None] + vecs @ (2 * np.sqrt(np.maximum(vals, 0))[:, None] * circle)
    ax.plot(pts[0], pts[1], color=color, lw=1.5)


def plot_clusters(result, ax=None, *, title=None, unscale=None, feature_names=None):
    """2-D scatter coloured by the MAP assignment, with posterior-mean components (2-sd ellipses).

    ``unscale=(mean, std)`` maps standardised data and parameters back to the original units.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    data = result.data.detach().cpu().numpy()
    post = {k: v.detach().cpu() for k, v in result.posterior_mean().items()}
    covs = _component_covariances(post, data.shape[1])
    locs = post["locs"].numpy()
    mean, std = (np.zeros(data.shape[1]), np.ones(data.shape[1])) if unscale is None else map(np.asarray, unscale)
    z = result.assignments(temperature=0, num_draws=1)[0, 0].cpu().numpy()
    colors = plt.cm.tab10(np.arange(locs.shape[0]) % 10)
    x = data * std + mean
    ax.scatter(x[:, 0], x[:, 1], c=colors[z], s=8, alpha=0.6)
    for k in range(locs.shape[0]):
        m = locs[k, :2] * std[:2] + mean[:2]
        c = covs[k][:2, :2] * np.outer(std[:2], std[:2])
        _ellipse(ax, m, c, colors[k])
        ax.plot(*m, "x", color="k")
    if feature_names:
        ax.set_xlabel(feature_names[0])
        ax.set_ylabel(feature_names[1])
    ax.set_title(title or f"{result.method}" + (f" / {result.guide_name}" if result.guide_name else ""))
    return ax


def _component_covariances(post, D):
    """Each component's covariance, read from the posterior's site names: one shared ``scale``,
    ``scales`` with ``corr_chol`` (full), ``scales`` alone (diag), or a ``precision`` matrix or
    vector (the conjugate mixture)."""
    K = post["locs"].shape[0]
    if "scale" in post:
        return [np.eye(D) * float(post["scale"]) ** 2] * K
    if "precision" in post:
        prec = post["precision"].numpy()
        return [np.linalg.inv(p) if p.ndim == 2 else np.diag(1.0 / p) for p in prec]
    scales = post["scales"].numpy()
    if "corr_chol" in post:
        L = scales[..., None] * post["corr_chol"].numpy()
        return [L[k] @ L[k].T for k in range(K)]
    return [np.diag(scales[k] ** 2) for k in range(K)]


def plot_trace(result, var_names=("locs", "weights")):
    """ArviZ trace plot of a result's continuous sites; returns the figure."""
    import arviz as az

    axes = az.plot_trace(result.to_inference_data(assignments=False), var_names=list(var_names), compact=True)
    return np.asarray(axes).ravel()[0].figure
