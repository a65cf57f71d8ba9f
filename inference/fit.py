"""``fit(model, data, method=..., guide=...)``: one entry point for every algorithm.

Methods: ``svi`` (any registered guide), ``map`` (a point-estimate guide:
``delta`` or ``laplace``), ``nuts`` (the reference; Pyro's NUTS with the
discrete sites enumerated). Every run returns a :class:`FitResult`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import MCMC, NUTS, JitTrace_ELBO, JitTraceEnum_ELBO, Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide.initialization import init_to_median, init_to_value
from pyro.poutine.util import site_is_subsample
from tqdm.auto import tqdm

from guides import check_discrete_sites, guide_spec, hide_discrete, make_guide

from .checkpoint import atomic_save, load_checkpoint
from .result import FitResult

__all__ = ["fit", "list_methods", "METHODS"]

METHODS = {
    "svi": "stochastic variational inference with any registered guide",
    "map": "maximum a posteriori: SVI with a point-estimate guide (delta, laplace)",
    "nuts": "the No-U-Turn sampler, the reference posterior",
    "em": "expectation-maximisation: exact E-step by enumeration, closed-form or L-BFGS M-step",
    "coordinate": "the model's own EM-style coordinate updates (e.g. GLGAE: encode every datum, then update)",
    "cavi": "mean-field variational Bayes by coordinate ascent (conjugate models: bayesian_gmm)",
}


def list_methods() -> list[str]:
    return sorted(METHODS)


def _resolve_model(model):
    if isinstance(model, str):
        from zoo import create_model

        return create_model(model)
    if not hasattr(model, "model") or not hasattr(model, "check_data"):
        raise TypeError(f"model must be a zoo model or a registered model name, got {type(model).__name__}")
    return model


def fit(
    model,
    data,
    method: str = "svi",
    guide: str | None = None,
    *,
    num_steps: int = 1000,
    lr: float = 0.05,
    betas=(0.9, 0.999),
    lr_decay: float = 1.0,
    tol: float | None = None,
    patience: int = 20,
    restarts: int = 1,
    restart_select: str = "initial",
    seed: int = 0,
    progress_bar: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    num_samples: int = 500,
    num_warmup: int = 500,
    num_chains: int = 2,
    nuts_init="map",
    target_accept_prob: float = 0.8,
    jit_compile: bool = True,
    max_tree_depth: int = 10,
    em_objective: str = "ml",
    m_step: str = "auto",
    guide_kwargs: dict | None = None,
    batch_size: int | None = None,
    jit_loss: bool = False,
    num_particles: int = 1,
) -> FitResult:
    """Fit ``model`` to ``data``.

    Parameters
    ----------
    model : a zoo model (``zoo.create_model(...)``) or a registered model name.
    data : array-like of shape (N, D) or (N,), NumPy or torch; its device is the fit's device.
    method : a name of :data:`METHODS`: ``"svi"``, ``"map"``, ``"nuts"``, ``"em"``, ``"coordinate"`` or
        ``"cavi"`` (conjugate models: ``num_steps`` caps the CAVI iterations, ``tol`` (default 1e-3) is
        the ELBO change that stops them; see :func:`inference.cavi.fit_cavi`).
    guide : a registered guide name (``guides.list_guides()``); default ``"normal"`` for SVI,
        ``"delta"`` for MAP. Ignored by NUTS.
    num_steps, lr, betas, lr_decay : SVI steps and Adam settings; the learning rate is multiplied
        by ``lr_decay`` after every step (as Pyro's ClippedAdam ``lrd``).
    tol, patience : stop when the loss has not improved by more than ``tol`` (relative) for
        ``patience`` consecutive steps. ``None`` runs every step.
    restarts, restart_select : SVI/MAP from ``restarts`` seeded initialisations. With
        ``restart_select="initial"`` (Pyro's GMM tutorial strategy) each is scored by its initial
        loss and only the best is trained; with ``"final"`` each is trained and the lowest final
        loss (mean of the last 10 steps) is kept. Under a Dirichlet prior with concentration < 1
        the MAP density is unbounded where a weight hits 0, so ``"final"`` can prefer such a
        collapsed fit.
    seed : seeds Pyro, torch and the initialisation.
    progress_bar : show a tqdm bar.
    checkpoint, checkpoint_every, resume : save guide, model and optimiser state to ``checkpoint``
        every ``checkpoint_every`` steps (atomically); with ``resume`` continue from it when present.
    num_samples : posterior draws (per chain for NUTS, from the guide for SVI).
    num_warmup, num_chains, nuts_init, target_accept_prob, jit_compile, max_tree_depth : NUTS
        settings. ``nuts_init``:
        ``"map"`` starts every chain at a MAP fit, ``"prior"`` at the prior median, a ``FitResult`` at its
        last draw, a dict at those site values.
    em_objective, m_step : EM settings (``method="em"``): maximise the likelihood (``"ml"``, priors
        ignored) or the log joint (``"map"``); the M-step is the model's closed form (``"auto"`` uses
        it when the model has ``em_update``) or L-BFGS (``"gradient"``). ``num_steps`` caps the
        iterations and ``tol`` (default 1e-8) is the change of the objective per datum that stops them.
    guide_kwargs : options for the guide factory (``init_scale``, ``rank``, ``num_transforms``...).
    batch_size : SVI/MAP on minibatches: every step subsamples ``batch_size`` data of the model's data
        plate (the loss is scaled to the full data). Needs a model with ``supports_minibatch`` (the VAE,
        the autoencoders) and its ``custom`` guide, which subsamples the same plate. ``None``: full batch.
    jit_loss : compile the loss with ``torch.jit`` (Pyro's ``Jit*_ELBO``).
    num_particles : Monte Carlo draws of the guide per SVI step, vectorised (Pyro's ELBO
        ``num_particles``): the gradient's noise falls as 1/sqrt(num_particles). A model with its own
        ELBO (the VAE) sets its draws itself (``VAE(num_particles=...)``).

    The loss is the model's own ELBO when it has ``make_elbo(jit=...)`` (the VAE's gradient estimator),
    else ``TraceEnum_ELBO`` with the enumerated sites summed out (``Trace_ELBO`` for a model without any).
    A model with ``max_posterior_draws`` (local latents, N x L per draw: the VAE) keeps at most that many
    guide draws in ``FitResult.samples``.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(list_methods())}")
    model = _resolve_model(model)
    for name, value in [("num_steps", num_steps), ("restarts", restarts), ("num_samples", num_samples),
                        ("num_chains", num_chains), ("patience", patience), ("checkpoint_every", checkpoint_every),
                        ("num_particles", num_particles)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(num_warmup, bool) or not isinstance(num_warmup, int) or num_warmup < 0:
        raise ValueError(f"num_warmup must be a non-negative integer, got {num_warmup!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay}")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be non-negative or None, got {tol}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if checkpoint is not None and restarts != 1:
        raise ValueError("checkpoints are kept for a single run; use restarts=1 with checkpoint")
    if restart_select not in ("initial", "final"):
        raise ValueError(f"unknown restart_select {restart_select!r}; known: 'initial', 'final'")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if method not in ("svi", "map"):
            raise ValueError(f"minibatches (batch_size) are for the SVI loop ('svi', 'map'), not method {method!r}")
        if not getattr(model, "supports_minibatch", False):
            raise ValueError(f"{type(model).__name__} does not subsample its data plate; use batch_size=None")
        if guide not in (None, "custom"):
            raise ValueError(f"minibatches need the model's amortised 'custom' guide, got guide {guide!r}")
        guide = "custom"
    if checkpoint is not None and method not in ("svi", "map"):
        raise ValueError(f"checkpoints are written by the SVI loop ('svi', 'map'), not by method {method!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if isinstance(max_tree_depth, bool) or not isinstance(max_tree_depth, int) or max_tree_depth < 1:
        raise ValueError(f"max_tree_depth must be a positive integer, got {max_tree_depth!r}")
    if not 0 < target_accept_prob < 1:
        raise ValueError(f"target_accept_prob must be in (0, 1), got {target_accept_prob}")
    if not isinstance(nuts_init, (dict, FitResult)) and nuts_init not in ("map", "prior"):
        raise ValueError(f"unknown nuts_init {nuts_init!r}; known: 'map', 'prior', a FitResult or a dict")
    data = model.check_data(data)
    model.to(data.device)
    enumerated = check_discrete_sites(model.model, data)

    if method == "em":
        from .pyro_em import fit_em

        if any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"method 'em' estimates the model's sample sites; {type(model).__name__} has learnable "
                             "module parameters it would leave untouched (use 'map', 'svi' or 'coordinate')")
        return fit_em(model, data, num_steps=num_steps, tol=tol, objective=em_objective, m_step=m_step,
                      seed=seed, progress_bar=progress_bar)

    if method == "cavi":
        from zoo.base import provides

        from .cavi import fit_cavi

        if not provides(model, "cavi_fit"):
            raise ValueError(f"{type(model).__name__} has no conjugate coordinate updates; method 'cavi' is for "
                             "conjugate models such as 'bayesian_gmm'")
        return fit_cavi(model, data, max_iter=num_steps, tol=1e-3 if tol is None else tol, seed=seed,
                        num_samples=num_samples, progress_bar=progress_bar)

    if method == "coordinate":
        if not hasattr(model, "coordinate_fit"):
            raise ValueError(f"{type(model).__name__} has no coordinate updates; use 'svi', 'map', 'em' or 'nuts'")
        pyro.set_rng_seed(seed)
        model.reset_parameters(data, seed=seed)
        return model.coordinate_fit(data, num_steps=num_steps, tol=tol, seed=seed, progress_bar=progress_bar)

    if method == "nuts":
        return _fit_nuts(model, data, num_samples=num_samples, num_warmup=num_warmup, num_chains=num_chains,
                         seed=seed, progress_bar=progress_bar, nuts_init=nuts_init,
                         target_accept_prob=target_accept_prob, jit_compile=jit_compile,
                         max_tree_depth=max_tree_depth)

    if guide is None:
        guide = "delta" if method == "map" else "normal"
    spec = guide_spec(guide)
    if method == "map" and not spec.point_estimate:
        raise ValueError(f"method 'map' needs a point-estimate guide ('delta' or 'laplace'), got {guide!r}")
    guide_kwargs = dict(guide_kwargs or {})

    start = time.perf_counter()
    if hasattr(model, "make_elbo"):
        if num_particles != 1:
            raise ValueError(f"{type(model).__name__} supplies its own ELBO; set its num_particles when building it, "
                             "not fit(num_particles=...)")
        elbo = model.make_elbo(jit=jit_loss)
    else:
        # TraceEnum_ELBO sums the enumerated sites out; a model without any gets plain Trace_ELBO
        if enumerated:
            cls = JitTraceEnum_ELBO if jit_loss else TraceEnum_ELBO
        else:
            cls = JitTrace_ELBO if jit_loss else Trace_ELBO
        elbo = cls(max_plate_nesting=model.max_plate_nesting, num_particles=num_particles,
                   vectorize_particles=num_particles > 1, **({"ignore_jit_warnings": True} if jit_loss else {}))
    loss_kwargs = {} if batch_size is None else {"subsample_size": min(batch_size, data.shape[0])}

    def build(run_seed):
        pyro.set_rng_seed(run_seed)
        model.reset_parameters(data, seed=run_seed)
        g = make_guide(guide, model, init_values=model.init_values(data, seed=run_seed), **guide_kwargs)
        with torch.no_grad():
            initial = float(elbo.loss(model.model, g, data))
        return g, initial

    def train(g, run_seed, label):
        pyro.set_rng_seed(run_seed)
        losses, converged = _svi_loop(
            model, g, data, elbo=elbo, num_steps=num_steps, lr=lr, betas=betas, lr_decay=lr_decay, tol=tol, patience=patience,
            progress_bar=progress_bar, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
            desc=f"{method}/{guide}" + label, loss_kwargs=loss_kwargs,
        )
        return sum(losses[-10:]) / len(losses[-10:]), g, losses, converged, run_seed

    seeds = [seed + r for r in range(restarts)]
    if restart_select == "initial" and restarts > 1:
        scored = [(build(s)[1], s) for s in seeds]
        run_seed = min(scored)[1]
        best = train(build(run_seed)[0], run_seed, "")
    else:
        best = None
        for r, s in enumerate(seeds):
            out = train(build(s)[0], s, f" {r + 1}/{restarts}" if restarts > 1 else "")
            if best is None or out[0] < best[0]:
                best = out
    _, g, losses, converged, run_seed = best
    pyro.set_rng_seed(run_seed)
    posterior_guide = g.laplace_approximation(data) if guide == "laplace" else g
    draws = 1 if guide == "delta" else min(num_samples, model.max_posterior_draws or num_samples)
    samples = _guide_samples(model, posterior_guide, data, draws)
    return FitResult(model=model, data=data, method=method, guide_name=guide, guide=g, losses=losses,
                     samples=samples, converged=converged, run_time=time.perf_counter() - start,
                     posterior_guide=posterior_guide, seed=run_seed)


def _params(model, guide):
    seen, out = set(), []
    for p in list(guide.parameters()) + list(model.parameters()):
        if id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append(p)
    return out


def _svi_loop(model, guide, data, *, elbo, num_steps, lr, betas, lr_decay, tol, patience, progress_bar, checkpoint,
              checkpoint_every, resume, desc, loss_kwargs=None):
    loss_kwargs = loss_kwargs or {}
    if hasattr(elbo, "differentiable_loss"):
        def loss_and_grads():
            loss = elbo.differentiable_loss(model.model, guide, data, **loss_kwargs)
            if torch.isfinite(loss):
                loss.backward()
            return loss.item()
    else:  # surrogate-loss estimators (TraceGraph_ELBO: score function with baselines) backpropagate themselves
        def loss_and_grads():
            return float(elbo.loss_and_grads(model.model, guide, data, **loss_kwargs))
    with torch.no_grad():
        guide(data)  # creates the guide's parameters on the data's device
    optim = torch.optim.Adam(_params(model, guide), lr=lr, betas=tuple(betas))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optim, gamma=lr_decay)
    losses, step, best, stall = [], 0, float("inf"), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location="cpu")
        guide.load_state_dict(state["guide"])
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        schedule.load_state_dict(state["schedule"])
        losses, step = list(state["losses"]), int(state["step"])
        best, stall = float(state["best"]), int(state["stall"])
        torch.set_rng_state(state["rng"])
        if data.is_cuda and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device=data.device)

    def save():
        atomic_save({"guide": guide.state_dict(), "model": model.state_dict(), "optim": optim.state_dict(),
                     "schedule": schedule.state_dict(),
                     "losses": torch.tensor(losses, dtype=torch.float64), "step": step, "best": best,
                     "stall": stall, "rng": torch.get_rng_state(),
                     **({"cuda_rng": torch.cuda.get_rng_state(data.device)} if data.is_cuda else {})}, checkpoint)

    converged = False
    with tqdm(total=num_steps, initial=step, desc=desc, disable=not progress_bar, leave=False) as bar:
        while step < num_steps:
            optim.zero_grad()
            value = loss_and_grads()
            if not math.isfinite(value):
                raise FloatingPointError(f"the loss became {value} at step {step}; try a smaller lr")
            optim.step()
            schedule.step()
            losses.append(value)
            step += 1
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{value:.4g}")
            if tol is not None:
                if value < best - tol * abs(best) or best == float("inf"):
                    best, stall = value, 0
                else:
                    stall += 1
                    if stall >= patience:
                        converged = True
                        break
            if checkpoint is not None and step % checkpoint_every == 0:
                save()
    if checkpoint is not None:
        save()
    return [float(v) for v in losses], converged


def continuous_latent_sites(model, data) -> list[str]:
    """Names of the model's continuous latent sample sites, in trace order."""
    with pyro.poutine.block():
        trace = pyro.poutine.trace(hide_discrete(model.model)).get_trace(data)
    return [name for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)]


@torch.no_grad()
def _guide_samples(model, guide, data, num_samples) -> dict[str, torch.Tensor]:
    """Draws of every continuous latent site of ``model`` from ``guide``, each (1, num_samples, ...)."""
    names = continuous_latent_sites(model, data)
    draws: dict[str, list] = {name: [] for name in names}
    for _ in range(num_samples):
        trace = pyro.poutine.trace(guide).get_trace(data)
        for name in names:
            draws[name].append(trace.nodes[name]["value"].detach())
    return {k: torch.stack(v)[None] for k, v in draws.items()}


def _fit_nuts(model, data, *, num_samples, num_warmup, num_chains, seed, progress_bar, nuts_init,
              target_accept_prob, jit_compile, max_tree_depth):
    start = time.perf_counter()
    init_strategy = init_to_median
    if isinstance(nuts_init, str) and nuts_init == "map":
        nuts_init = fit(model, data, method="map", guide="delta", num_steps=300, lr=0.05, seed=seed,
                        progress_bar=progress_bar, restarts=3)
    if isinstance(nuts_init, FitResult):  # its last draw: a point on every site's support
        nuts_init = {k: v[0, -1] for k, v in nuts_init.samples.items()}
    if isinstance(nuts_init, dict):
        unknown = sorted(set(nuts_init) - set(continuous_latent_sites(model, data)))
        if unknown:
            raise ValueError(f"nuts_init names {unknown}, which are not latent sites of the model")
        init_strategy = init_to_value(values={k: torch.as_tensor(v).to(data) for k, v in nuts_init.items()})
    chains = []
    for c in range(num_chains):
        pyro.set_rng_seed(seed + c)
        kw = {"init_strategy": init_strategy}
        kernel = NUTS(model.model, max_plate_nesting=model.max_plate_nesting,
                      target_accept_prob=target_accept_prob, jit_compile=jit_compile,
                      ignore_jit_warnings=True, max_tree_depth=max_tree_depth, **kw)
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, num_chains=1,
                    disable_progbar=not progress_bar)
        mcmc.run(data)
        chains.append({k: v.detach() for k, v in mcmc.get_samples().items()})
    samples = {k: torch.stack([ch[k] for ch in chains]) for k in chains[0]}
    return FitResult(model=model, data=data, method="nuts", guide_name=None, guide=None, losses=[],
                     samples=samples, converged=True, run_time=time.perf_counter() - start, seed=seed)
