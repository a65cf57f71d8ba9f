"""ELBO estimators by name: ``make_elbo("reparam")``, and the one a model's fit uses.

=================  =========================================================================
``trace``          Pyro's ``Trace_ELBO``
``trace_enum``     Pyro's ``TraceEnum_ELBO``: enumerated sites summed out
``mean_field``     Pyro's ``TraceMeanField_ELBO``
``reparam``        :class:`~inference.reparam_elbo.ReparamELBO` (``Trace_ELBO``'s estimator, less
                   bookkeeping); ``pyro_elbo=True`` or ``jit=True``: Pyro's (compiled) class
``analytic_kl``    the same with closed-form KL terms (``TraceMeanField_ELBO``'s estimator)
``score_function`` Pyro's ``TraceGraph_ELBO`` (REINFORCE with the guide's baselines)
``iwae``           :class:`~inference.iwae.ImportanceWeightedELBO`, the per-datum k-sample bound
=================  =========================================================================

:func:`elbo_for` picks a model's ELBO: its own (``model.elbo_spec()``, e.g. the VAE's gradient
estimator), else ``trace_enum`` when the model has enumerated sites and ``trace`` otherwise.
:func:`gradient_variance` measures the variance of the VAE's gradient under each estimator.
"""
from __future__ import annotations

import pyro
import torch
from pyro.infer import (
    ELBO,
    JitTrace_ELBO,
    JitTraceEnum_ELBO,
    JitTraceGraph_ELBO,
    JitTraceMeanField_ELBO,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from pyro.infer.util import torch_item

from zoo._checks import check_choice, check_positive_int
from zoo.base import as_model

__all__ = ["ESTIMATORS", "DifferentiableELBO", "make_elbo", "elbo_for", "gradient_variance"]

ESTIMATORS = {
    "trace": "Pyro's Trace_ELBO: Monte Carlo log p(x, z) - log q(z)",
    "trace_enum": "Pyro's TraceEnum_ELBO: enumerated discrete sites summed out exactly",
    "mean_field": "Pyro's TraceMeanField_ELBO: closed-form KL where torch has one",
    "reparam": "SGVB A: Trace_ELBO's estimator with less bookkeeping (ReparamELBO)",
    "analytic_kl": "SGVB B: closed-form KL, sampled reconstruction (ReparamELBO(analytic_kl=True))",
    "score_function": "REINFORCE with the guide's baselines, no reparameterisation (TraceGraph_ELBO)",
    "iwae": "the k-sample importance-weighted bound, per datum (ImportanceWeightedELBO)",
}
_PYRO = {"trace": (Trace_ELBO, JitTrace_ELBO), "trace_enum": (TraceEnum_ELBO, JitTraceEnum_ELBO),
         "mean_field": (TraceMeanField_ELBO, JitTraceMeanField_ELBO), "reparam": (Trace_ELBO, JitTrace_ELBO),
         "analytic_kl": (TraceMeanField_ELBO, JitTraceMeanField_ELBO),
         "score_function": (TraceGraph_ELBO, JitTraceGraph_ELBO)}
_BASELINE_PREFIX = "__baseline_avg_downstream_cost_"  # where TraceGraph_ELBO keeps its decaying averages


class DifferentiableELBO(ELBO):
    """An ELBO whose loss is one differentiable tensor (no surrogate): ``loss`` and ``loss_and_grads``
    follow from ``differentiable_loss``."""

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        return torch_item(loss)


def make_elbo(estimator: str = "trace", *, num_particles: int = 1, max_plate_nesting: float = float("inf"),
              vectorize_particles: bool | None = None, jit: bool = False, pyro_elbo: bool = False) -> ELBO:
    """The ELBO estimator ``estimator`` (a name of :data:`ESTIMATORS`) with ``num_particles`` draws per
    step, vectorised by default when there are several. ``jit=True`` compiles it (Pyro's ``Jit*``
    classes; not for ``score_function`` and ``iwae``); ``pyro_elbo=True`` gives Pyro's own class
    for ``reparam`` / ``analytic_kl``. ``score_function`` starts from fresh decaying-average
    baselines (Pyro keeps them in the param store)."""
    from .iwae import ImportanceWeightedELBO
    from .reparam_elbo import ReparamELBO

    check_choice(estimator, ESTIMATORS, "estimator")
    num_particles = check_positive_int(num_particles, "num_particles")
    vectorize = num_particles > 1 if vectorize_particles is None else bool(vectorize_particles)
    kw = dict(num_particles=num_particles, max_plate_nesting=max_plate_nesting, vectorize_particles=vectorize)
    if estimator == "iwae":
        if jit:
            raise ValueError("the 'iwae' estimator has no compiled variant; use jit=False")
        nesting = 1 if max_plate_nesting == float("inf") else int(max_plate_nesting)
        return ImportanceWeightedELBO(num_particles if num_particles > 1 else 5, max_plate_nesting=nesting)
    if jit:
        if estimator == "score_function":
            raise ValueError("the 'score_function' estimator has no compiled variant (its decaying-average "
                             "baseline lives in the param store); use jit=False")
        kw["ignore_jit_warnings"] = True
    elif not pyro_elbo and estimator in ("reparam", "analytic_kl"):
        return ReparamELBO(**kw, analytic_kl=estimator == "analytic_kl")
    if estimator == "score_function":
        store = pyro.get_param_store()
        for name in [n for n in store.keys() if n.startswith(_BASELINE_PREFIX)]:
            del store[name]
    return _PYRO[estimator][int(bool(jit))](**kw)


def elbo_for(model, data=None, *, num_particles: int = 1, jit: bool = False, pyro_elbo: bool = False,
             estimator: str | None = None) -> ELBO:
    """The ELBO that fits ``model``: its own (``model.elbo_spec()``, or ``estimator`` to override the
    spec's name), else ``trace_enum`` with enumerated sites and ``trace`` without. ``data`` gives the
    plate depth by tracing (Pyro guesses it without). A model with its own ELBO sets its draws itself;
    ``num_particles`` is then refused."""
    model = as_model(model)
    sites = model.sites(model.check_data(data)) if data is not None else None
    nesting = sites.max_plate_nesting if sites is not None else float("inf")
    spec = model.elbo_spec()
    if spec is not None:
        if num_particles != 1:
            raise ValueError(f"{type(model).__name__} supplies its own ELBO; set its num_particles when building it, "
                             "not fit(num_particles=...)")
        return make_elbo(estimator or spec.estimator, num_particles=spec.num_particles, max_plate_nesting=nesting,
                         jit=jit, pyro_elbo=pyro_elbo)
    if estimator is None:
        estimator = "trace_enum" if sites is not None and sites.discrete else "trace"
    return make_elbo(estimator, num_particles=num_particles, max_plate_nesting=nesting, jit=jit, pyro_elbo=pyro_elbo)


def gradient_variance(model, x, estimators=("reparam", "analytic_kl", "score_function"), num_draws: int = 200,
                      *, burn_in: int = 20, seed: int = 0):
    """Variance of each estimator's gradient of a VAE's ELBO with respect to its encoder's parameters phi,
    at fixed parameters and batch: ``num_draws`` independent gradient draws per estimator (after
    ``burn_in`` draws that warm up a decaying-average baseline; parameters are not updated). x (B, D).

    Returns a pandas DataFrame, one row per estimator: ``mean_variance`` (the per-coordinate variance,
    averaged over the P coordinates of phi), ``total_variance`` (its sum, the trace of the covariance),
    ``mean_grad_norm`` (norm of the mean gradient) and ``snr`` (mean |mean| / std over coordinates).
    """
    import pandas as pd

    from zoo.vae import VAE

    if not isinstance(model, VAE):
        raise TypeError(f"model must be a zoo.vae.VAE, got {type(model).__name__}")
    if isinstance(estimators, str):
        estimators = (estimators,)
    for est in estimators:
        check_choice(est, ESTIMATORS, "estimator")
    num_draws = check_positive_int(num_draws, "num_draws", minimum=2)
    burn_in = check_positive_int(burn_in, "burn_in", minimum=0)
    x = model.check_data(x)
    params = list(model.encoder.parameters())
    guide = model.custom_guide()
    saved = model.estimator
    rows = []
    try:
        for est in estimators:
            model.estimator = est  # the guide draws z without reparameterisation for the score function
            elbo = make_elbo(est, num_particles=model.num_particles, max_plate_nesting=1)
            pyro.set_rng_seed(seed)
            draws = []
            for d in range(burn_in + num_draws):
                model.zero_grad()
                elbo.loss_and_grads(model.model, guide, x)
                if d >= burn_in:
                    draws.append(torch.cat([p.grad.reshape(-1) for p in params]).detach().clone())
            G = torch.stack(draws).double()
            var, mean = G.var(0), G.mean(0)
            rows.append({"estimator": est, "mean_variance": var.mean().item(), "total_variance": var.sum().item(),
                         "mean_grad_norm": mean.norm().item(),
                         "snr": (mean.abs() / var.sqrt().clamp_min(1e-30)).mean().item()})
    finally:
        model.estimator = saved
        model.zero_grad()
    return pd.DataFrame(rows).set_index("estimator")
