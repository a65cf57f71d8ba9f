"""The object every fit returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyro.poutine as poutine
import torch
from pyro.infer import infer_discrete

from zoo.base import PyroModel
from zoo.tracing import trace_model

__all__ = ["FitResult", "log_likelihood_name"]


def _model_name(model) -> str:
    return model.__name__ if isinstance(model, PyroModel) else type(model).__name__


def log_likelihood_name(sites) -> str:
    """The name of the pointwise log-likelihood in ArviZ: the observed site's when there is one, else the
    data plate's, else ``"log_likelihood"``."""
    if len(sites.observed) == 1:
        return sites.observed[0].name
    return sites.data_plate or "log_likelihood"


def _observed_dims(o, data_plate) -> list[str]:
    """ArviZ dims of an observed site: the data plate's axis is ``obs_id``, other plates keep their names,
    a single event axis is ``feature``."""
    batch = len(o.shape) - o.event_dim
    by_axis = {axis: name for name, axis in o.plate_axes.items()}
    dims = []
    for axis in range(len(o.shape)):
        if axis < batch:
            plate = by_axis.get(axis)
            dims.append("obs_id" if plate is not None and plate == data_plate else plate or f"{o.name}_dim_{axis}")
        else:
            dims.append("feature" if o.event_dim == 1 else f"{o.name}_dim_{axis}")
    return dims


def _observed_values(model, data, sites) -> dict:
    """The observed sites' values (the data as the model sees it), as NumPy arrays."""
    if len(sites.observed) == 1 and tuple(data.shape) == sites.observed[0].shape:
        return {sites.observed[0].name: data.detach().cpu().numpy()}
    trace = trace_model(model.model, data)
    return {o.name: trace.nodes[o.name]["value"].detach().cpu().numpy() for o in sites.observed}


@dataclass
class FitResult:
    """Outcome of :func:`inference.fit`.

    ``samples`` maps each continuous latent site to a tensor of shape
    (chain, draw, *site_shape): one chain for SVI and MAP (one draw for a
    ``delta`` guide), ``num_chains`` for NUTS. ``losses`` is the loss trace
    (negative ELBO, or negative log joint for MAP; empty for NUTS).
    """

    model: object
    data: torch.Tensor
    method: str
    guide_name: str | None
    guide: object
    losses: list[float]
    samples: dict[str, torch.Tensor]
    converged: bool = False
    run_time: float = 0.0
    posterior_guide: object = None
    seed: int = 0
    _assignment_cache: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        """One line: model, method, guide, steps, final loss, draws, run time (no data, no loss trace)."""
        parts = [f"model={_model_name(self.model)}", f"method={self.method!r}"]
        if self.guide_name is not None:
            parts.append(f"guide={self.guide_name!r}")
        if self.losses:
            steps = f"steps={len(self.losses)}" + (" (converged)" if self.converged else "")
            parts += [steps, f"final_loss={float(self.losses[-1]):.6g}"]
        if self.samples:
            parts.append(f"draws={self.num_chains}x{self.num_draws}")
        parts.append(f"run_time={self.run_time:.3g} s")
        return f"FitResult({', '.join(parts)})"

    __str__ = __repr__

    @property
    def num_chains(self) -> int:
        return next(iter(self.samples.values())).shape[0]

    @property
    def num_draws(self) -> int:
        return next(iter(self.samples.values())).shape[1]

    def posterior_mean(self) -> dict[str, torch.Tensor]:
        return {k: v.mean(dim=(0, 1)) for k, v in self.samples.items()}

    def posterior_std(self) -> dict[str, torch.Tensor]:
        return {k: v.flatten(0, 1).std(0) if v.shape[0] * v.shape[1] > 1 else torch.zeros_like(v[0, 0])
                for k, v in self.samples.items()}

    def _draw(self, c: int, d: int) -> dict[str, torch.Tensor]:
        return {k: v[c, d] for k, v in self.samples.items()}

    @property
    def sites(self):
        """The model's traced structure on the data (:class:`zoo.tracing.ModelSites`)."""
        return self.model.sites(self.data)

    @torch.no_grad()
    def assignments(self, temperature: int = 0, num_draws: int | None = None, *, site: str | None = None) -> torch.Tensor:
        """A discrete site by ``infer_discrete`` given each posterior draw, shape (chain, draw, *site_shape)
        ((chain, draw, N) for a mixture's assignment).

        ``temperature=0`` is the MAP assignment, ``temperature=1`` a posterior sample. ``site`` names the
        discrete site; default the first the model samples.
        """
        if temperature not in (0, 1):
            raise ValueError(f"temperature must be 0 (MAP) or 1 (sample), got {temperature!r}")
        names = self.sites.discrete
        if not names:
            raise ValueError(f"{_model_name(self.model)} has no enumerated discrete sites (found by tracing it)")
        if site is None:
            site = names[0]
        elif site not in names:
            raise ValueError(f"unknown discrete site {site!r}; the model's: {', '.join(names)}")
        return self._discrete_draws(temperature, num_draws)[site]

    def _discrete_draws(self, temperature, num_draws=None) -> dict[str, torch.Tensor]:
        draws = self.num_draws if num_draws is None else min(int(num_draws), self.num_draws)
        key = (temperature, draws)
        if key not in self._assignment_cache:
            sites = self.sites
            first_dim = -1 - sites.max_plate_nesting
            out: dict[str, list] = {name: [] for name in sites.discrete}
            for c in range(self.num_chains):
                rows: dict[str, list] = {name: [] for name in sites.discrete}
                for d in range(draws):
                    conditioned = poutine.condition(self.model.model, data=self._draw(c, d))
                    fn = infer_discrete(conditioned, first_available_dim=first_dim, temperature=temperature)
                    trace = poutine.trace(fn).get_trace(self.data)
                    for name in sites.discrete:
                        rows[name].append(trace.nodes[name]["value"])
                for name in sites.discrete:
                    out[name].append(torch.stack(rows[name]))
            self._assignment_cache[key] = {name: torch.stack(v) for name, v in out.items()}
        return self._assignment_cache[key]

    def pointwise_log_likelihood(self) -> torch.Tensor:
        """log p(x_n | draw) with discrete sites summed out, shape (chain, draw, N) (N = 1 for a model
        without a data plate)."""
        with torch.no_grad():
            return self.model.pointwise_log_likelihood(self.samples, self.data)

    @torch.no_grad()
    def posterior_predictive(self, num_draws: int | None = None, *, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Replicated data: for each posterior draw, every observed site of the model sampled
        afresh given that draw (discrete sites drawn from their conditional prior, i.e. a new
        datum's component is drawn from the weights). Returns site -> tensor of shape
        (chain, draw, *observed_shape); ``num_draws`` keeps the first draws of each chain."""
        if num_draws is not None and (isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 1):
            raise ValueError(f"num_draws must be a positive integer or None, got {num_draws!r}")
        import pyro

        draws = self.num_draws if num_draws is None else min(num_draws, self.num_draws)
        if seed is not None:
            pyro.set_rng_seed(int(seed))
        out: dict[str, list] = {}
        for c in range(self.num_chains):
            rows: dict[str, list] = {}
            for d in range(draws):
                # uncondition innermost: the observed sites are sampled, the latent ones stay at the draw
                fn = poutine.condition(poutine.uncondition(self.model.model), data=self._draw(c, d))
                with poutine.block():
                    trace = poutine.trace(fn).get_trace(self.data)
                for name, site in trace.nodes.items():
                    if site["type"] == "sample" and (site.get("infer") or {}).get("was_observed"):
                        rows.setdefault(name, []).append(site["value"].detach())
            for name, values in rows.items():
                out.setdefault(name, []).append(torch.stack(values))
        return {k: torch.stack(v) for k, v in out.items()}

    def to_inference_data(self, *, assignments: bool = True, posterior_predictive: bool = False,
                          num_predictive_draws: int | None = None):
        """An ArviZ InferenceData: posterior (with discrete assignments drawn at temperature 1 by
        ``infer_discrete`` given each draw), log_likelihood (for ``az.loo``/``az.compare``),
        observed_data, and the loss trace in group ``loss``. ``posterior_predictive=True`` adds the
        group ``posterior_predictive`` (see :meth:`posterior_predictive`; the first
        ``num_predictive_draws`` draws of each chain, default all), shaped like ``observed_data``."""
        import arviz as az

        sites = self.sites
        posterior = {k: v.detach().cpu().numpy() for k, v in self.samples.items()}
        if assignments and sites.discrete:
            posterior.update({k: v.cpu().numpy() for k, v in self._discrete_draws(1).items()})
        loglik = self.pointwise_log_likelihood().cpu().numpy()
        dims = {k: v for k, v in self.model.site_dims.items() if k in posterior}
        observed = _observed_values(self.model, self.data, sites)
        for o in sites.observed:
            dims[o.name] = _observed_dims(o, sites.data_plate)
        loglik_name = log_likelihood_name(sites)
        dims.setdefault(loglik_name, ["obs_id"])
        kwargs = dict(
            posterior=posterior,
            log_likelihood={loglik_name: loglik},
            observed_data=observed,
            **({"posterior_predictive": {k: v.cpu().numpy() for k, v in
                                         self.posterior_predictive(num_predictive_draws, seed=self.seed).items()}}
               if posterior_predictive else {}),
            dims=dims,
            attrs={"inference_method": self.method, "guide": self.guide_name or "", "seed": self.seed},
        )
        idata = az.from_dict(**kwargs)
        # the log-likelihood of each datum is indexed like the data
        default = f"{loglik_name}_dim_0"
        if default in idata.log_likelihood.dims:
            idata.log_likelihood = idata.log_likelihood.rename({default: "obs_id"})
        if self.losses:
            import xarray as xr

            idata.add_groups({"loss": xr.Dataset({"loss": ("step", np.asarray(self.losses))})})
        return idata

    def summary(self, **kwargs):
        """``az.summary`` of the continuous sites."""
        import arviz as az

        return az.summary(self.to_inference_data(assignments=False), **kwargs)
