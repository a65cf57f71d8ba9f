"""Figures of fit results: ArviZ views (thin functions over ``FitResult.to_inference_data()``),
loss traces and 2-D cluster plots, and the helpers that write figures to files.

The ArviZ views return a matplotlib Figure, :func:`plot_losses` and :func:`plot_clusters` the Axes
they drew on; close a figure with ``plt.close(fig)`` or write it with :func:`save_figure`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from zoo._validation import AnyOf, Bool, Choice, InstanceOf, Int, Mapping, OutputPath, declare

from .result import FitResult, _observed_dims

__all__ = ["plot_posterior", "plot_trace", "plot_forest", "plot_ppc", "loo_compare", "plot_loo_compare",
           "plot_losses", "plot_clusters", "save_figure", "keep_figure", "TRACE_KINDS"]

TRACE_KINDS = ("trace", "rank_bars", "rank_vlines")
PPC_KINDS = ("kde", "cumulative", "scatter")

# the declarations the views share
_RESULT = InstanceOf(FitResult, what="a FitResult")
_RESULTS = Mapping(_RESULT, what="a dict label -> FitResult")
_VAR_NAMES = AnyOf(InstanceOf(str), InstanceOf(list, tuple), none=True, what="a site name or a list of site names")


def _check_result(result, name="result") -> FitResult:
    if not isinstance(result, FitResult):
        raise TypeError(f"{name} must be a FitResult, got {type(result).__name__}")
    return result


def _var_names(result: FitResult, var_names):
    known = list(result.samples)
    if var_names is None:
        return known
    if isinstance(var_names, str):
        var_names = [var_names]
    var_names = list(var_names)
    if not var_names:
        raise ValueError(f"var_names is empty; known sites: {known}")
    unknown = [v for v in var_names if v not in known]
    if unknown:
        raise ValueError(f"unknown var_names {unknown}; known sites: {known}")
    return var_names


def _figure(axes):
    return np.asarray(axes).ravel()[0].figure


@declare(result=_RESULT, var_names=_VAR_NAMES)
def plot_posterior(result: FitResult, var_names=None, **kwargs):
    """``az.plot_posterior`` of the continuous sites ``var_names`` (default all): one axis per
    scalar element, with the posterior mean and the 94% HDI."""
    import arviz as az

    _check_result(result)
    axes = az.plot_posterior(result.to_inference_data(assignments=False), var_names=_var_names(result, var_names),
                             **kwargs)
    return _figure(axes)


@declare(result=_RESULT, var_names=_VAR_NAMES, kind=Choice(TRACE_KINDS))
def plot_trace(result: FitResult, var_names=None, kind: str = "trace", **kwargs):
    """Trace plot (``kind="trace"``: densities per chain and the draws) or rank plot
    (``"rank_bars"`` / ``"rank_vlines"``: per-chain rank histograms, flat when the chains mix)
    of ``var_names`` (default all continuous sites); one row per site."""
    import arviz as az

    _check_result(result)
    axes = az.plot_trace(result.to_inference_data(assignments=False), var_names=_var_names(result, var_names),
                         kind=kind, compact=True, **kwargs)
    return _figure(axes)


@declare(results=_RESULTS, var_names=_VAR_NAMES, align=Bool(), combined=Bool())
def plot_forest(results: dict, var_names=None, *, align: bool = True, combined: bool = True, **kwargs):
    """Forest plot (94% intervals per element) of several fits side by side, ``results`` mapping
    label -> FitResult. With ``align`` the mixture components of every fit are first relabelled
    to match the first fit's (see :func:`inference.compare.align_components`)."""
    import arviz as az

    from .compare import align_components

    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict label -> FitResult")
    for label, r in results.items():
        _check_result(r, f"results[{label!r}]")
    labels = list(results)
    first = results[labels[0]]
    names = _var_names(first, var_names)
    for label in labels[1:]:
        missing = [n for n in names if n not in results[label].samples]
        if missing:
            raise ValueError(f"results[{label!r}] lacks the sites {missing}")
    idatas = []
    for label in labels:
        r = results[label]
        if align and label != labels[0]:
            r, _ = align_components(r, first)
        idatas.append(r.to_inference_data(assignments=False))
    axes = az.plot_forest(idatas, model_names=labels, var_names=names, combined=combined, **kwargs)
    return _figure(axes)


@declare(result=_RESULT, num_pp_samples=Int(ge=1, none=True, what="a positive integer or None"),
         kind=Choice(PPC_KINDS), feature=Int(ge=0, none=True))
def plot_ppc(result: FitResult, *, num_pp_samples: int | None = 50, kind: str = "kde", feature: int | None = None,
             **kwargs):
    """Posterior predictive check: the observed data's density against replicated data sets drawn
    given the posterior draws (``FitResult.posterior_predictive``), one axis per feature, or only
    ``feature``. ``num_pp_samples`` replicated sets are drawn (the first draws of every chain)."""
    import arviz as az

    _check_result(result)
    sites = result.sites
    observed = {o.name: dict(zip(_observed_dims(o, sites.data_plate), o.shape)) for o in sites.observed}
    sizes = {dim: size for dims in observed.values() for dim, size in dims.items()}
    if feature is not None:
        D = sizes.get("feature")
        if D is None:
            raise ValueError("feature selects a column of 2-D data; the observed sites have no feature axis")
        if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < D:
            raise ValueError(f"feature must be an integer in [0, {D}), got {feature!r}")
    per_chain = None if num_pp_samples is None else max(1, -(-num_pp_samples // result.num_chains))
    idata = result.to_inference_data(assignments=False, posterior_predictive=True, num_predictive_draws=per_chain)
    coords = None if feature is None else {"feature": [feature]}
    flatten = ["obs_id"] if "obs_id" in sizes else None
    axes = az.plot_ppc(idata, kind=kind, coords=coords, flatten=flatten, random_seed=result.seed, **kwargs)
    return _figure(axes)


@declare(results=_RESULTS)
def loo_compare(results: dict, **kwargs):
    """``az.compare`` (PSIS-LOO) of several fits of the same data, ``results`` mapping label ->
    FitResult. Returns its DataFrame, best model first (column ``rank`` 0), with ``elpd_loo``,
    ``p_loo``, ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning``."""
    import arviz as az

    if not isinstance(results, dict) or len(results) < 2:
        raise ValueError("loo_compare needs a dict of at least two label -> FitResult")
    shapes = set()
    for label, r in results.items():
        _check_result(r, f"results[{label!r}]")
        shapes.add(tuple(r.data.shape))
        if r.num_chains * r.num_draws < 2:
            what = r.method + (f"/{r.guide_name}" if r.guide_name else "")
            raise ValueError(f"results[{label!r}] is a point estimate ({what}: one draw); PSIS-LOO needs posterior "
                             "draws: compare fits by svi, nuts, cavi or a laplace MAP")
    if len(shapes) != 1:
        raise ValueError(f"the fits were made on data of different shapes {sorted(shapes)}; LOO compares fits of the same data")
    idatas = {label: r.to_inference_data(assignments=False) for label, r in results.items()}
    return az.compare(idatas, ic="loo", **kwargs)


def plot_loo_compare(results_or_table, **kwargs):
    """``az.plot_compare`` of :func:`loo_compare` (given the fits, or its DataFrame)."""
    import arviz as az
    import pandas as pd

    table = results_or_table if isinstance(results_or_table, pd.DataFrame) else loo_compare(results_or_table)
    ax = az.plot_compare(table, **kwargs)
    return _figure(ax)


# --- figures to files, loss traces, clusters ---------------------------------------------------
@declare(path=OutputPath())
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
