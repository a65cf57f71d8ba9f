"""The object every fit returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyro.poutine as poutine
import torch
from pyro.infer import infer_discrete

__all__ = ["FitResult"]


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

    @torch.no_grad()
    def assignments(self, temperature: int = 0, num_draws: int | None = None) -> torch.Tensor:
        """Discrete sites by ``infer_discrete`` given each posterior draw, shape (chain, draw, N).

        ``temperature=0`` is the MAP assignment, ``temperature=1`` a posterior sample.
        With several discrete sites, the first in ``model.discrete_sites`` is returned.
        """
        if temperature not in (0, 1):
            raise ValueError(f"temperature must be 0 (MAP) or 1 (sample), got {temperature!r}")
        sites = tuple(getattr(self.model, "discrete_sites", ()))
        if not sites:
            raise ValueError(f"{type(self.model).__name__} has no discrete sites")
        draws = self.num_draws if num_draws is None else min(int(num_draws), self.num_draws)
        key = (temperature, draws)
        if key not in self._assignment_cache:
            first_dim = -1 - self.model.max_plate_nesting
            out = []
            for c in range(self.num_chains):
                row = []
                for d in range(draws):
                    conditioned = poutine.condition(self.model.model, data=self._draw(c, d))
                    fn = infer_discrete(conditioned, first_available_dim=first_dim, temperature=temperature)
                    trace = poutine.trace(fn).get_trace(self.data)
                    row.append(trace.nodes[sites[0]]["value"])
                out.append(torch.stack(row))
            self._assignment_cache[key] = torch.stack(out)
        return self._assignment_cache[key]

    def pointwise_log_likelihood(self) -> torch.Tensor:
        """log p(x_n | draw) with discrete sites summed out, shape (chain, draw, N)."""
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

        posterior = {k: v.detach().cpu().numpy() for k, v in self.samples.items()}
        if assignments and getattr(self.model, "discrete_sites", ()):
            posterior[self.model.discrete_sites[0]] = self.assignments(temperature=1).cpu().numpy()
        loglik = self.pointwise_log_likelihood().cpu().numpy()
        dims = {k: v for k, v in getattr(self.model, "site_dims", {}).items() if k in posterior}
        dims["obs"] = ["obs_id", "feature"]
        kwargs = dict(
            posterior=posterior,
            log_likelihood={"obs": loglik},
            observed_data={"obs": self.data.detach().cpu().numpy()},
            **({"posterior_predictive": {k: v.cpu().numpy() for k, v in
                                         self.posterior_predictive(num_predictive_draws, seed=self.seed).items()}}
               if posterior_predictive else {}),
            dims=dims,
            attrs={"inference_method": self.method, "guide": self.guide_name or "", "seed": self.seed},
        )
        idata = az.from_dict(**kwargs)
        # the log-likelihood of each datum is indexed like the data
        idata.log_likelihood = idata.log_likelihood.rename({"obs_dim_0": "obs_id"}) \
            if "obs_dim_0" in idata.log_likelihood.dims else idata.log_likelihood
        if self.losses:
            import xarray as xr

            idata.add_groups({"loss": xr.Dataset({"loss": ("step", np.asarray(self.losses))})})
        return idata

    def summary(self, **kwargs):
        """``az.summary`` of the continuous sites."""
        import arviz as az

        return az.summary(self.to_inference_data(assignments=False), **kwargs)
