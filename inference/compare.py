"""``compare(model, data, guides=[...], reference=...)``: every guide against one reference posterior.

Each guide is fitted by :func:`inference.fit` (``method="map"`` for point-estimate guides,
``"svi"`` otherwise) and reported with

* its ELBO and an importance-sampled log evidence with the guide as proposal,
  log p(x) ~ log mean_s exp(log p(x, theta_s) - log q(theta_s)), theta_s ~ q, the discrete
  sites summed out by enumeration (each term is one particle of ``TraceEnum_ELBO``), with the
  delta-method standard error and the importance weights' effective sample size; the mean of
  the same log weights is the ELBO. Point-estimate guides have no density: NaN;
* its run time;
* per latent site: the largest error of the posterior mean over the site's elements, in
  reference posterior standard deviations; the largest relative error of the posterior
  standard deviation; and the energy distance between the guide's and the reference's draws
  (after standardising every element by the reference standard deviation).

Mixture components are aligned to the reference first (label switching): the permutation of
the ``component`` dimension that best matches the posterior means (Hungarian matching, per
chain) is applied to every site that has that dimension (``model.site_dims``).
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pyro
import torch
from pyro.infer import TraceEnum_ELBO

from zoo._validation import AnyOf, Choice, InstanceOf, Int, Mapping, Real, declare
from zoo.base import as_model, provides
from zoo.progress import progress

from .methods import LR, NUM_STEPS, OPTIONS_DICT, PROGRESS_BAR, SEED, method_spec
from .result import FitResult

__all__ = ["compare", "Comparison", "align_components", "importance_log_evidence", "energy_distance",
           "REFERENCES"]

REFERENCES = ("nuts", "exact")
COMPONENT_DIM = "component"


# --- label switching -------------------------------------------------------------------
def _component_axes(model, samples) -> dict[str, int]:
    """Site -> axis of the ``component`` dimension in its (chain, draw, ...) tensor."""
    dims = model.site_dims
    return {name: 2 + list(dims[name]).index(COMPONENT_DIM) for name in samples
            if name in dims and COMPONENT_DIM in dims[name]}


def _component_cost(means_a: dict, means_b: dict, axes: dict, scales: dict) -> np.ndarray:
    """cost[i, j]: squared standardised distance between component i of ``a`` and j of ``b``."""
    cost = 0.0
    for name, axis in axes.items():
        a, b, s = (torch.movedim(t[name], axis - 2, 0) for t in (means_a, means_b, scales))
        a, b, s = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1), s.reshape(s.shape[0], -1)
        s = s.mean(0).clamp_min(1e-12)
        cost = cost + (((a[:, None, :] - b[None, :, :]) / s) ** 2).mean(-1)
    return cost.detach().cpu().double().numpy()


def _permute(samples: dict, axes: dict, chain: int, perm) -> None:
    index = torch.as_tensor(perm, dtype=torch.long)
    for name, axis in axes.items():
        v = samples[name]
        samples[name][chain] = torch.index_select(v[chain], axis - 1, index.to(v.device))


def align_components(result: FitResult, reference) -> tuple[FitResult, np.ndarray]:
    """Relabel the mixture components of ``result`` to match ``reference``.

    ``reference``: a FitResult, or a dict of posterior means per site (site shape, no chain/draw).
    For each chain of ``result``, the permutation ``perm`` (component k of the aligned result is
    component ``perm[k]`` of the original) minimises the summed squared distance between
    posterior means, standardised by the reference's spread (``scipy.optimize.linear_sum_assignment``).
    Every site with a ``component`` dimension in ``result.model.site_dims`` is permuted.

    Returns the aligned copy (``result`` itself when the model has no component dimension) and
    the permutations, shape (chain, K) (shape (chain, 0) without components).
    """
    from scipy.optimize import linear_sum_assignment

    if not isinstance(result, FitResult):
        raise TypeError(f"result must be a FitResult, got {type(result).__name__}")
    axes = _component_axes(result.model, result.samples)
    if not axes:
        return result, np.zeros((result.num_chains, 0), dtype=int)
    if isinstance(reference, FitResult):
        ref_means, ref_scales = reference.posterior_mean(), reference.posterior_std()
    elif isinstance(reference, dict):
        ref_means = {k: torch.as_tensor(v) for k, v in reference.items()}
        ref_scales = {k: torch.ones_like(v) for k, v in ref_means.items()}
    else:
        raise TypeError(f"reference must be a FitResult or a dict of posterior means, got {type(reference).__name__}")
    missing = sorted(set(axes) - set(ref_means))
    if missing:
        raise ValueError(f"the reference has no values for the component sites {missing}")
    sizes = {result.samples[n].shape[a] for n, a in axes.items()} | {ref_means[n].shape[a - 2] for n, a in axes.items()}
    if len(sizes) != 1:
        raise ValueError(f"the result and the reference disagree on the number of components: {sorted(sizes)}")
    scales = {}
    for name in axes:  # a point-estimate reference has zero spread: fall back to the means' own scale
        s = ref_scales[name].to(result.samples[name])
        scales[name] = torch.where(s > 0, s, ref_means[name].to(s).abs().mean().clamp_min(1.0).expand_as(s))
    samples = {k: v.clone() for k, v in result.samples.items()}
    perms = []
    for c in range(result.num_chains):
        chain_means = {n: result.samples[n][c].mean(0) for n in axes}
        cost = _component_cost(chain_means, {n: ref_means[n].to(chain_means[n]) for n in axes}, axes, scales)
        rows, cols = linear_sum_assignment(cost.T)  # reference component j <- result component cols[j]
        perm = cols[np.argsort(rows)]
        _permute(samples, axes, c, perm)
        perms.append(perm)
    aligned = replace(result, samples=samples, _assignment_cache={})
    return aligned, np.stack(perms)


# --- distances --------------------------------------------------------------------------
def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between the empirical laws of draws ``x``
    (n, d) and ``y`` (m, d): non-negative, zero only for identical draws; for two samples of one law
    it shrinks like 1/n + 1/m."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance needs (n, d) and (m, d) draws, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError("energy_distance needs at least one draw on each side")
    y = y.to(x)

    value = 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()
    return max(float(value), 0.0)  # >= 0 up to rounding


def _flat(samples: torch.Tensor) -> torch.Tensor:
    """(chain, draw, *site_shape) -> (chain * draw, elements); a scalar site has one element."""
    return samples.reshape(samples.shape[0] * samples.shape[1], -1)


def _site_distances(draws, ref_draws, ref_mean, ref_sd, max_draws, generator) -> dict:
    x, y = _flat(draws).double(), _flat(ref_draws).double()
    mean = x.mean(0)
    sd = x.std(0) if x.shape[0] > 1 else torch.zeros_like(mean)
    ref_mean, ref_sd = ref_mean.flatten().double().to(x), ref_sd.flatten().double().to(x)
    unit = torch.where(ref_sd > 0, ref_sd, torch.ones_like(ref_sd))
    mean_error = ((mean - ref_mean).abs() / unit).max()
    sd_error = ((sd - ref_sd).abs() / unit).max()

    def sub(a):
        if a.shape[0] <= max_draws:
            return a
        return a[torch.randperm(a.shape[0], generator=generator)[:max_draws].to(a.device)]

    ed = energy_distance(sub((x - ref_mean) / unit), sub((y - ref_mean) / unit))
    return {"mean_error": float(mean_error), "sd_error": float(sd_error), "energy": ed}


# --- evidence -----------------------------------------------------------------------------
@torch.no_grad()
def importance_log_evidence(model, guide, data, num_particles: int = 1000, *, seed: int = 0,
                            progress_bar: bool = False) -> dict:
    """Importance sampling with ``guide`` as the proposal.

    Draws theta_s ~ q (``num_particles`` of them) and forms log w_s = log p(data, theta_s) -
    log q(theta_s), the model's discrete sites summed out by enumeration. Returns a dict:
    ``log_evidence`` (log mean_s w_s), ``log_evidence_se`` (its delta-method standard error,
    std(w) / (sqrt(S) mean(w))), ``elbo`` (mean_s log w_s), ``ess`` (Kish effective sample size of
    the weights, between 1 and S) and ``log_weights`` (S,).
    """
    if isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 2:
        raise ValueError(f"num_particles must be an integer >= 2, got {num_particles!r}")
    model = as_model(model)
    data = model.check_data(data)
    data = data.detach() if data.requires_grad else data
    elbo = TraceEnum_ELBO(max_plate_nesting=model.sites(data).max_plate_nesting)
    pyro.set_rng_seed(seed)
    lw = torch.empty(num_particles, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TraceEnum_ELBO found no sample sites.*")
        for s in progress(range(num_particles), desc="log evidence", enabled=progress_bar):
            lw[s] = -elbo.loss(model.model, guide, data)
    if not bool(torch.isfinite(lw).all()):
        raise FloatingPointError("a log importance weight is not finite")
    S = float(num_particles)
    log_z = torch.logsumexp(lw, 0) - math.log(S)
    w = (lw - lw.max()).exp()
    se = float(w.std() / (math.sqrt(S) * w.mean()))
    ess = float(w.sum() ** 2 / (w ** 2).sum())
    return {"log_evidence": float(log_z), "log_evidence_se": se, "elbo": float(lw.mean()), "ess": ess,
            "log_weights": lw}


# --- the comparison ----------------------------------------------------------------------
@dataclass
class Comparison:
    """What :func:`compare` returns.

    ``table``: one row per fit (the guides, then the reference), columns ``method``, ``elbo``,
    ``log_evidence``, ``log_evidence_se``, ``is_ess`` (importance ESS), ``run_time``, ``distance``
    (mean over sites of the energy distance), ``rank`` (1 = closest to the reference) and per
    site ``mean_error[site]``, ``sd_error[site]``, ``energy[site]``. ``sites``: the same per-site
    figures in long format (guide, site, mean_error, sd_error, energy). ``results``: the aligned
    FitResult of every guide and of the reference (key ``reference_label``).
    """

    table: object
    sites: object
    results: dict
    reference_label: str
    permutations: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        """One line: the reference and the guides by rank (the figures are in ``table``)."""
        try:
            ranked = self.table[self.table["rank"] > 0].sort_values("rank")
            order = ", ".join(f"{g} ({int(r)})" for g, r in zip(ranked.index, ranked["rank"]))
        except (AttributeError, KeyError, TypeError):  # a table built by hand
            order = ", ".join(k for k in self.results if k != self.reference_label)
        return f"Comparison(reference={self.reference_label!r}, guides by rank: {order}; see .table)"

    __str__ = __repr__

    @property
    def reference(self) -> FitResult:
        return self.results[self.reference_label]

    def to_inference_data(self) -> dict:
        """Label -> ArviZ InferenceData (aligned posterior draws), e.g. for ``az.plot_forest``."""
        return {label: r.to_inference_data(assignments=False) for label, r in self.results.items()}

    def plot(self, *, max_marginals: int = 4):
        """Energy distance per site and guide (bars, log scale), and up to ``max_marginals``
        marginal densities (the first elements of each site) of every guide against the reference.
        Returns a matplotlib Figure with 1 + the number of marginals axes."""
        import matplotlib.pyplot as plt

        if isinstance(max_marginals, bool) or not isinstance(max_marginals, int) or max_marginals < 0:
            raise ValueError(f"max_marginals must be a non-negative integer, got {max_marginals!r}")
        guides = [g for g in self.results if g != self.reference_label]
        site_names = list(dict.fromkeys(self.sites["site"]))
        ref = self.reference
        marginals = []
        for name in site_names:
            for j in range(_flat(ref.samples[name]).shape[1]):
                if len(marginals) < max_marginals:
                    marginals.append((name, j))
        fig, axes = plt.subplots(1, 1 + len(marginals), figsize=(4.2 * (1 + len(marginals)), 3.4), squeeze=False)
        axes = axes[0]
        width = 0.8 / max(len(guides), 1)
        colors = plt.cm.tab10(np.arange(len(guides)) % 10)
        for i, g in enumerate(guides):
            rows = self.sites[self.sites["guide"] == g].set_index("site").reindex(site_names)
            values = np.clip(rows["energy"].to_numpy(dtype=float), 1e-9, None)
            axes[0].bar(np.arange(len(site_names)) + i * width, values, width, label=g, color=colors[i])
        axes[0].set_xticks(np.arange(len(site_names)) + 0.4 - width / 2)
        axes[0].set_xticklabels(site_names)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("energy distance to reference")
        axes[0].legend(fontsize=8)
        for ax, (name, j) in zip(axes[1:], marginals):
            r = _flat(ref.samples[name])[:, j].detach().cpu().numpy()
            lo, hi = np.quantile(r, [0.001, 0.999])
            pad = 0.5 * (hi - lo) + 1e-9
            bins = np.linspace(lo - pad, hi + pad, 40)
            ax.hist(r, bins=bins, density=True, color="0.8", label=self.reference_label)
            for i, g in enumerate(guides):
                v = _flat(self.results[g].samples[name])[:, j].detach().cpu().numpy()
                if v.size == 1 or np.ptp(v) == 0:
                    ax.axvline(v[0], color=colors[i], lw=1.5, label=g)
                else:
                    ax.hist(v, bins=bins, density=True, histtype="step", color=colors[i], lw=1.5, label=g)
            ax.set_title(f"{name}[{j}]" if _flat(ref.samples[name]).shape[1] > 1 else name)
            ax.set_yticks([])
        fig.tight_layout()
        return fig


def _reference_from_samples(model, data, samples: dict, label: str) -> FitResult:
    names = model.sites(data).latent_names
    unknown = sorted(set(samples) - set(names))
    if unknown:
        raise ValueError(f"reference samples name {unknown}, which are not latent sites; latent sites: {names}")
    missing = sorted(set(names) - set(samples))
    if missing:
        raise ValueError(f"reference samples lack the latent sites {missing}")
    out = {}
    for k, v in samples.items():
        v = torch.as_tensor(v).to(data)
        if v.dim() < 2 or v.shape[0] < 1 or v.shape[1] < 2:
            raise ValueError(f"reference samples[{k!r}] must have shape (chain, draw >= 2, ...), got {tuple(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"reference samples[{k!r}] contain NaN or infinity")
        out[k] = v
    shapes = {v.shape[:2] for v in out.values()}
    if len(shapes) != 1:
        raise ValueError(f"reference samples disagree on (chain, draw): {sorted(map(tuple, shapes))}")
    return FitResult(model=model, data=data, method=label, guide_name=None, guide=None, losses=[], samples=out,
                     converged=True)


def _exact_reference(model, data, num_samples, seed):
    if not provides(model, "exact_posterior"):
        raise ValueError(f"reference='exact' needs a model with exact_posterior(data); {type(model).__name__} has "
                         "none (use reference='nuts', a FitResult or a dict of samples)")
    names = model.sites(data).latent_names
    if len(names) != 1:
        raise ValueError(f"reference='exact' supports one latent site, the model has {names}")
    mean, cov = model.exact_posterior(data)
    g = torch.Generator(device=mean.device).manual_seed(int(seed))
    eps = torch.randn(1, num_samples, mean.numel(), generator=g, dtype=mean.dtype, device=mean.device)
    draws = mean.flatten() + eps @ torch.linalg.cholesky(cov).T
    site_shape = mean.shape
    ref = FitResult(model=model, data=data, method="exact", guide_name=None, guide=None, losses=[],
                    samples={names[0]: draws.reshape(1, num_samples, *site_shape)}, converged=True)
    moments = {names[0]: (mean, cov.diagonal().sqrt().reshape(site_shape))}
    return ref, moments


#: the arguments compare passes to every guide's fit itself: fit_kwargs must not repeat them
_OWN_FIT_ARGS = ("method", "guide", "num_steps", "lr", "lr_decay", "num_samples", "seed", "progress_bar")


@declare(guides=AnyOf(InstanceOf(str), InstanceOf(list, tuple), what="a guide name or a list of guide names"),
         reference=AnyOf(Choice(REFERENCES), InstanceOf(FitResult), Mapping(),
                         what="'nuts', 'exact', a FitResult or a dict of samples"),
         num_samples=Int(ge=2, what="an integer >= 2 (posterior spreads need two draws)"),
         num_particles=Int(ge=2, none=True), num_steps=NUM_STEPS, lr=LR, lr_decay=Real(gt=0, le=1), seed=SEED,
         progress_bar=PROGRESS_BAR, fit_kwargs=OPTIONS_DICT, reference_kwargs=OPTIONS_DICT,
         max_distance_draws=Int(ge=1, what="a positive integer"))
def compare(model, data, guides=("normal", "mvn"), reference="nuts", *, num_samples: int = 1000,
            num_particles: int | None = None, num_steps: int = 1000, lr: float = 0.05, lr_decay: float = 1.0,
            seed: int = 0, progress_bar: bool = True, fit_kwargs: dict | None = None,
            reference_kwargs: dict | None = None, max_distance_draws: int = 1000) -> Comparison:
    """Fit ``model`` to ``data`` with every guide in ``guides`` and compare each with a reference.

    Parameters
    ----------
    model : a Pyro model callable ``model(data)``, a zoo model or a registered name; each fit gets its own
        deep copy.
    data : the model's data.
    guides : registered guide names (``guides.list_guides()``) that apply to the model (others are refused
        before any fit); point-estimate guides (delta, laplace) are fitted by MAP (which stops once its
        loss is flat, see :func:`inference.svi.fit_svi`), the others by SVI.
    reference : ``"nuts"`` (``inference.fit(method="nuts", **reference_kwargs)``), ``"exact"`` (the
        model's closed-form ``exact_posterior``; its moments are used exactly and its
        ``log_evidence`` fills the reference row), a FitResult, or a dict site -> draws of shape
        (chain, draw, *site_shape).
    num_samples : posterior draws per guide (and for the exact reference).
    num_particles : importance-sampling particles for the log evidence (default ``num_samples``).
    num_steps, lr, lr_decay, seed, progress_bar : passed to every guide's fit.
    fit_kwargs : more options for every guide's ``fit`` (e.g. ``restarts``, ``guide_kwargs``); a dict
        keyed by guide name gives per-guide options when all its keys are guide names.
    reference_kwargs : options for the NUTS reference (``num_samples``, ``num_warmup``, ``num_chains``...).
    max_distance_draws : the energy distance uses at most this many draws of each side.
    """
    import pandas as pd

    from guides import guide_spec, guides_for

    from .fit import fit

    model = as_model(model)
    if isinstance(guides, str):
        guides = [guides]
    guides = list(guides)
    if not guides:
        raise ValueError("guides is empty: name at least one guide")
    specs = [guide_spec(g) for g in guides]  # raises on unknown names, listing the known ones
    refused = [g for g, spec in zip(guides, specs) if not spec.applies(model)]
    if refused:  # before any fit: the reference may take minutes
        applicable = guides_for(model)
        raise ValueError(f"guide(s) {refused} do not apply to {type(model).__name__}; applicable: "
                         f"{applicable if applicable else 'none (the model supports no guide)'}")
    if len(set(guides)) != len(guides):
        raise ValueError(f"guides contains duplicates: {guides}")
    num_particles = num_samples if num_particles is None else num_particles
    fit_kwargs = dict(fit_kwargs or {})
    per_guide = bool(fit_kwargs) and set(fit_kwargs) <= set(guides)
    _check_fit_kwargs(guides, specs, fit_kwargs, per_guide)  # before any work, the NUTS reference included
    if isinstance(reference, str) and reference == "nuts":
        kw = dict(reference_kwargs or {})
        if "method" in kw:
            raise TypeError("reference_kwargs must not name the method: the reference is method='nuts'")
        method_spec("nuts").check_options(kw)
    elif reference_kwargs:
        raise TypeError(f"reference_kwargs are options of the NUTS reference; reference={_short(reference)} takes "
                        "none")
    data = model.check_data(data)
    data = data.detach() if data.requires_grad else data  # data are constants of the fits
    model.to(data.device)

    # the reference
    moments, ref_log_z = {}, float("nan")
    if isinstance(reference, FitResult):
        ref, label = reference, reference.method if reference.method != "svi" else f"svi/{reference.guide_name}"
    elif isinstance(reference, dict):
        label = "reference"
        ref = _reference_from_samples(model, data, reference, label)
    elif reference == "exact":
        label = "exact"
        ref, moments = _exact_reference(model, data, num_samples, seed)
        if provides(model, "log_evidence"):
            ref_log_z = float(model.log_evidence(data))
    else:
        label = "nuts"
        kw = dict(reference_kwargs or {})
        kw.setdefault("seed", seed)
        kw.setdefault("progress_bar", progress_bar)
        ref = fit(copy.deepcopy(model), data, method="nuts", **kw)
    if label in guides:
        label = f"reference ({label})"
    if ref.num_chains * ref.num_draws < 2:
        raise ValueError("the reference needs at least 2 draws")
    if ref.num_chains > 1:  # the reference's chains may disagree on the labels
        ref, _ = align_components(ref, _first_chain(ref))
    ref_mean, ref_sd = ref.posterior_mean(), ref.posterior_std()
    for name, (m, s) in moments.items():
        ref_mean[name], ref_sd[name] = m, s

    results, permutations, rows, long_rows = {}, {}, [], []
    generator = torch.Generator().manual_seed(int(seed))
    for name, spec in zip(guides, specs):
        kw = dict(fit_kwargs.get(name, {}) if per_guide else fit_kwargs)
        method = "map" if spec.point_estimate else "svi"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TraceEnum_ELBO found no sample sites.*")
            r = fit(copy.deepcopy(model), data, method=method, guide=name, num_steps=num_steps, lr=lr,
                    lr_decay=lr_decay, num_samples=num_samples, seed=seed, progress_bar=progress_bar, **kw)
        aligned, perm = align_components(r, ref)
        results[name], permutations[name] = aligned, perm
        row = {"guide": name, "method": method, "run_time": r.run_time, "final_loss": float(np.mean(r.losses[-10:]))}
        if name == "delta":
            row.update(elbo=float("nan"), log_evidence=float("nan"), log_evidence_se=float("nan"), is_ess=float("nan"))
        else:
            q = r.posterior_guide if r.posterior_guide is not None else r.guide
            ev = importance_log_evidence(r.model, q, data, num_particles, seed=seed, progress_bar=progress_bar)
            row.update(elbo=ev["elbo"], log_evidence=ev["log_evidence"], log_evidence_se=ev["log_evidence_se"],
                       is_ess=ev["ess"])
        for site in ref.samples:
            d = _site_distances(aligned.samples[site], ref.samples[site], ref_mean[site], ref_sd[site],
                                max_distance_draws, generator)
            long_rows.append({"guide": name, "site": site, **d})
            for k, v in d.items():
                row[f"{k}[{site}]"] = v
        row["distance"] = float(np.mean([row[f"energy[{s}]"] for s in ref.samples]))
        rows.append(row)
    results[label] = ref
    rows.append({"guide": label, "method": ref.method, "run_time": ref.run_time, "final_loss": float("nan"),
                 "elbo": float("nan"), "log_evidence": ref_log_z, "log_evidence_se": 0.0 if math.isfinite(ref_log_z)
                 else float("nan"), "is_ess": float("nan"), "distance": 0.0})
    table = pd.DataFrame(rows).set_index("guide")
    table["rank"] = 0  # the reference
    table.loc[guides, "rank"] = table.loc[guides, "distance"].rank(method="min").astype(int)
    first = ["method", "rank", "distance", "elbo", "log_evidence", "log_evidence_se", "is_ess", "run_time", "final_loss"]
    table = table[first + [c for c in table.columns if c not in first]]
    sites = pd.DataFrame(long_rows, columns=["guide", "site", "mean_error", "sd_error", "energy"])
    return Comparison(table=table, sites=sites, results=results, reference_label=label, permutations=permutations)


def _short(value) -> str:
    return repr(value) if isinstance(value, str) else f"a {type(value).__name__}"


def _check_fit_kwargs(guides, specs, fit_kwargs: dict, per_guide: bool) -> None:
    """Every guide's options (``fit_kwargs``, shared or per guide) checked against its method's declaration
    and its guide's: an unknown or bad option fails now, not after the reference has run."""
    from guides import check_guide_options

    for name, spec in zip(guides, specs):
        kw = fit_kwargs.get(name, {}) if per_guide else fit_kwargs
        label = f"fit_kwargs[{name!r}]" if per_guide else "fit_kwargs"
        if not isinstance(kw, dict):
            raise TypeError(f"{label} must be a dict of fit options, got {type(kw).__name__}")
        repeated = sorted(set(kw) & set(_OWN_FIT_ARGS))
        if repeated:
            raise TypeError(f"{label} repeats {repeated}, which compare sets itself: pass them to compare "
                            f"(num_steps=..., lr=...), not in {label}")
        method = "map" if spec.point_estimate else "svi"
        method_spec(method).check_options(kw)
        if kw.get("guide_kwargs"):
            check_guide_options(name, kw["guide_kwargs"])


def _first_chain(result: FitResult) -> dict:
    return {k: v[0].mean(0) for k, v in result.samples.items()}
