"""EM for any Pyro model with one enumerated discrete site.

The continuous latent sites are the parameters theta (point values), the
enumerated site is the missing data z. Each iteration:

* E-step: the exact posterior marginals q(z_n) = p(z_n | x_n, theta), from
  ``TraceEnum_ELBO.compute_marginals`` (enumeration, no sampling);
* M-step: the model's closed-form update (``model.em_update``) when it has one,
  otherwise L-BFGS on the expected complete-data log joint
  E_q[log p(x, z | theta)] (+ log p(theta) for ``objective="map"``), computed
  exactly by enumerating z in a guide that holds q(z) fixed.

The objective (log-likelihood, or log joint for MAP) never decreases: the
E-step makes the bound tight and each M-step raises it (a generalised EM step
for L-BFGS, which starts at the previous theta and accepts only descent steps).
"""
from __future__ import annotations

import contextlib
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch.distributions import biject_to

from zoo import distributed
from zoo._validation import Choice, declare
from zoo.sources import as_source, is_source
from zoo.base import as_model, provides
from zoo.progress import progress
from zoo.tracing import trace_model

from .methods import NUM_STEPS, PROGRESS_BAR, SEED, TOL, register_method

__all__ = ["fit_em", "log_joint"]


def log_joint(model, values: dict, data) -> float:
    """log p(x, theta) with the discrete site summed out, at point values ``theta``."""
    def empty_guide(data):  # every latent site is conditioned: nothing to guess
        return None

    model = as_model(model)
    conditioned = pyro.poutine.condition(model.model, data={k: torch.as_tensor(v) for k, v in values.items()})
    elbo = TraceEnum_ELBO(max_plate_nesting=model.sites(data).max_plate_nesting)
    with torch.no_grad():
        return -float(elbo.loss(conditioned, empty_guide, data))


class _MaskSites(Messenger):
    """Drop the log-density of the named sample sites (their prior) from every trace."""

    def __init__(self, names):
        super().__init__()
        self.names = frozenset(names)

    def _process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.names:
            msg["mask"] = False


class _Sites:
    """Prototype of the model: continuous latent sites (support, event_dim, plates) and the discrete one."""

    def __init__(self, model, data):
        trace = trace_model(model.model, data)
        self.continuous, self.discrete = {}, {}
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"] or site_is_subsample(site):
                continue
            info = (site["fn"].support, site["fn"].event_dim, site["cond_indep_stack"], site["value"].detach())
            if site["fn"].support.is_discrete:
                self.discrete[name] = info
            else:
                self.continuous[name] = info
        if len(self.discrete) != 1:
            raise ValueError(
                f"method 'em' needs exactly one enumerated discrete site, found {sorted(self.discrete)}"
            )


def _plates(stack, cache):
    """Enter the plates of ``stack``, each created once per guide call (a plate is one site)."""
    es = contextlib.ExitStack()
    for frame in stack:
        if frame.name not in cache:
            cache[frame.name] = pyro.plate(frame.name, frame.size, dim=frame.dim)
        es.enter_context(cache[frame.name])
    return es


@torch.no_grad()
def _posterior(elbo, model_fn, point_guide, data, name):
    return elbo.compute_marginals(model_fn, point_guide, data)[name].probs.detach()


def fit_em(model, data, *, num_steps=200, tol=None, objective="ml", m_step="auto", m_step_iters=20,
           seed=0, progress_bar=True):
    """EM on ``model`` (see the module docstring). Returns a ``FitResult`` whose ``losses`` are the
    negative objective per datum after each iteration (non-increasing) and whose ``samples`` hold
    the final theta as one draw."""
    from .result import FitResult

    if objective not in ("ml", "map"):
        raise ValueError(f"unknown em objective {objective!r}; known: 'map', 'ml'")
    if m_step not in ("auto", "closed_form", "gradient"):
        raise ValueError(f"unknown m_step {m_step!r}; known: 'auto', 'closed_form', 'gradient'")
    tol = 1e-8 if tol is None else tol
    start = time.perf_counter()
    pyro.set_rng_seed(seed)
    sites = _Sites(model, data)
    (zname, (_, _, zstack, _)), = sites.discrete.items()
    closed = model.em_update if provides(model, "em_update") else None
    if m_step == "closed_form" and (closed is None or objective != "ml"):
        raise ValueError(f"{type(model).__name__} has no closed-form M-step for objective {objective!r}")
    use_closed = closed is not None and objective == "ml" and m_step != "gradient"

    init = model.init_values(data, seed=seed) or {}
    unconstrained = {}
    for name, (support, _, _, proto) in sites.continuous.items():
        value = init.get(name, proto).to(data)
        unconstrained[name] = biject_to(support).inv(value).detach().clone().requires_grad_(True)

    def theta():
        return {n: biject_to(sites.continuous[n][0])(u) for n, u in unconstrained.items()}

    def point_guide(data, plates=None):
        plates = {} if plates is None else plates
        for name, value in theta().items():
            _, event_dim, stack, _ = sites.continuous[name]
            with _plates(stack, plates):
                pyro.sample(name, dist.Delta(value, event_dim=event_dim))

    model_fn = model.model
    if objective == "ml":
        model_fn = _MaskSites(sites.continuous)(model.model)
    elbo = TraceEnum_ELBO(max_plate_nesting=model.sites(data).max_plate_nesting)
    N = data.shape[0]

    def objective_value():
        with torch.no_grad():
            return -float(elbo.loss(model_fn, point_guide, data))

    losses, converged = [], False
    previous = objective_value()
    with progress(total=num_steps, desc=f"em/{objective}", enabled=progress_bar) as bar:
        for _ in range(num_steps):
            probs = _posterior(elbo, model_fn, point_guide, data, zname)
            if use_closed:
                new = closed(probs, data)
                with torch.no_grad():
                    for n, v in new.items():
                        unconstrained[n].copy_(biject_to(sites.continuous[n][0]).inv(v.to(data)))
            else:
                def em_guide(data):
                    plates = {}
                    point_guide(data, plates)
                    with _plates(zstack, plates):
                        pyro.sample(zname, dist.Categorical(probs), infer={"enumerate": "parallel"})

                optim = torch.optim.LBFGS(list(unconstrained.values()), max_iter=m_step_iters,
                                          line_search_fn="strong_wolfe", tolerance_change=1e-12)

                def closure():
                    optim.zero_grad()
                    loss = elbo.differentiable_loss(model_fn, em_guide, data)
                    loss.backward()
                    return loss

                optim.step(closure)
            current = objective_value()
            losses.append(-current / N)
            bar.update(1)
            if abs(current - previous) / N < tol:
                converged = True
                break
            previous = current
    with torch.no_grad():
        samples = {n: v.detach()[None, None] for n, v in theta().items()}
    return FitResult(model=model, data=data, method="em", guide_name=None, guide=point_guide, losses=losses,
                     samples=samples, converged=converged, run_time=time.perf_counter() - start, seed=seed)


@register_method("em", description="expectation-maximisation: exact E-step by enumeration, closed-form or L-BFGS M-step")
@declare(num_steps=NUM_STEPS, tol=TOL, em_objective=Choice("ml", "map"), m_step=Choice("auto", "closed_form", "gradient"),
         seed=SEED, progress_bar=PROGRESS_BAR)
def _em(model, data, *, method: str = "em", num_steps: int = 1000, tol: float | None = None, em_objective: str = "ml",
        m_step: str = "auto", seed: int = 0, progress_bar: bool = True):
    """``fit(method="em")``: at most ``num_steps`` iterations, stopping when the objective per datum changes by
    less than ``tol`` (default 1e-8); ``em_objective`` ``"ml"`` (priors ignored) or ``"map"`` (the log joint);
    ``m_step`` ``"auto"`` (the model's closed form when it has ``em_update``), ``"closed_form"`` or ``"gradient"``
    (L-BFGS)."""
    if is_source(data) or distributed.active():
        return _em_fit_hook(model, data, num_steps=num_steps, tol=tol, em_objective=em_objective, m_step=m_step,
                            seed=seed, progress_bar=progress_bar)
    if any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"method 'em' estimates the model's sample sites; {type(model).__name__} has learnable "
                         "module parameters it would leave untouched (use 'map', 'svi' or 'coordinate')")
    return fit_em(model, data, num_steps=num_steps, tol=tol, objective=em_objective, m_step=m_step, seed=seed,
                  progress_bar=progress_bar)


def _em_fit_hook(model, data, *, num_steps, tol, em_objective, m_step, seed, progress_bar):
    """EM of a chunk source or of a data-parallel shard: the model's own closed-form EM over chunks (the
    protocol hook ``em_fit``), its site values as one draw."""
    if not provides(model, "em_fit"):
        raise ValueError(f"{type(model).__name__} has no closed-form EM over chunks (the protocol hook em_fit); "
                         "fit an in-memory array in one process")
    if em_objective != "ml" or m_step not in ("auto", "closed_form"):
        raise ValueError("EM of a chunk source or a data-parallel shard is maximum likelihood with the closed-form "
                         "M-step (em_objective='ml', m_step='auto')")
    from .result import FitResult

    start = time.perf_counter()
    values, est = model.em_fit(data, max_iter=num_steps, tol=1e-8 if tol is None else tol, random_state=seed,
                               progress_bar=progress_bar)
    head = data if isinstance(data, torch.Tensor) else as_source(data).first_chunk().to(values["locs"].dtype)
    return FitResult(model=model, data=head, method="em", guide_name=None, guide=None,
                     losses=[-b for b in est.lower_bounds_], samples={n: v[None, None] for n, v in values.items()},
                     converged=bool(est.converged_), run_time=time.perf_counter() - start, seed=seed)
