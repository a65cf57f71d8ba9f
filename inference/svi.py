"""Stochastic variational inference (``method="svi"``) and MAP (``method="map"``, a point-estimate guide).

The guide is a registered name (``guides.list_guides()``) or the user's own guide callable; the loss
is :func:`inference.elbo.elbo_for` the model (enumerated sites summed out); the loop is plain
PyTorch Adam over the model's and the guide's parameters, with a progress bar, early stopping,
restarts, checkpoints, minibatches, and data parallelism over a ``torch.distributed`` group
(:mod:`inference.distributed_svi`).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import math
import time
from pathlib import Path

import pyro
import pyro.poutine as poutine
import torch

from guides import check_guide_options, guide_spec, make_guide
from zoo import distributed as zd
from zoo._validation import Bool, Choice, Int, Real, declare
from zoo.base import provides
from zoo.progress import progress
from zoo.tracing import trace_model

from .checkpoint import atomic_save, load_checkpoint, restore_state
from .distributed_svi import DataParallel, from_main
from .elbo import elbo_for
from .methods import (BETAS, CHECKPOINT, LR, NUM_STEPS, OPTIONS_DICT, POSITIVE_INT, PROGRESS_BAR, SEED, TOL,
                      register_method)
from .result import FitResult

__all__ = ["fit_svi", "fit_map", "guide_samples", "MAP_TOL", "MAP_PATIENCE", "DIVERGENCE_FACTOR"]


#: what an SVI checkpoint holds
_CHECKPOINT_KEYS = ("guide", "model", "optim", "schedule", "losses", "step", "best", "stall", "rng")


def _own_method_hint(model) -> str:
    """How a model that no guide applies to is fitted instead (asked through the protocol's hooks)."""
    if provides(model, "adversarial_parts"):
        return ": it is an implicit model without a likelihood; fit it with method='adversarial'"
    return ""


def _guide_label(guide) -> str:
    return getattr(guide, "__name__", type(guide).__name__)


#: MAP's default stopping rule (``method="map"``): stop once ``MAP_PATIENCE`` steps in a row have not lowered
#: the loss by more than ``MAP_TOL`` relative. MAP's loss is deterministic for a point guide with the
#: discrete sites enumerated, so "flat" is read without noise: on the zoo's mixtures it stops after 150 to
#: 600 steps, within 1e-5 relative of the loss that 2000 steps reach. ``tol=None`` runs every step.
MAP_TOL, MAP_PATIENCE = 1e-6, 50
#: a run whose loss ends (mean of its last 10 steps) more than this many times max(|first loss|, 1) above
#: its first loss has diverged: a FloatingPointError, not a result
DIVERGENCE_FACTOR = 10.0


@register_method("svi", description="stochastic variational inference with any registered guide or your own",
                 takes_guide=True)
@declare(num_steps=NUM_STEPS, lr=LR, betas=BETAS, lr_decay=Real(gt=0, le=1), tol=TOL, patience=POSITIVE_INT,
         restarts=POSITIVE_INT, restart_select=Choice("initial", "final"), seed=SEED, progress_bar=PROGRESS_BAR,
         checkpoint=CHECKPOINT, checkpoint_every=POSITIVE_INT, resume=Bool(), num_samples=POSITIVE_INT,
         guide_kwargs=OPTIONS_DICT, batch_size=Int(ge=1, none=True, what="a positive integer or None"),
         jit_loss=Bool(), num_particles=POSITIVE_INT)
def fit_svi(model, data, *, method: str, guide=None, num_steps: int = 1000, lr: float = 0.05, betas=(0.9, 0.999),
            lr_decay: float = 1.0, tol: float | None = None, patience: int = 20, restarts: int = 1,
            restart_select: str = "initial", seed: int = 0, progress_bar: bool = True, checkpoint=None,
            checkpoint_every: int = 100, resume: bool = False, num_samples: int = 500, guide_kwargs: dict | None = None,
            batch_size: int | None = None, jit_loss: bool = False, num_particles: int = 1) -> FitResult:
    """Fit ``model`` by SVI (or MAP) and draw ``num_samples`` posterior draws from the guide.

    Parameters
    ----------
    guide : a registered guide name (default ``"normal"`` for SVI, ``"delta"`` for MAP) or a guide
        callable with the model's signature (an autoguide, a function with ``pyro.param`` statements,
        a ``PyroModule``); a callable runs one restart and is trusted to be a point estimate for MAP.
    num_steps, lr, betas, lr_decay : SVI steps and Adam settings; the learning rate is multiplied
        by ``lr_decay`` after every step (as Pyro's ClippedAdam ``lrd``).
    tol, patience : stop when the loss has not improved by more than ``tol`` (relative) for
        ``patience`` consecutive steps (``FitResult.converged`` is then true). ``None`` runs every step:
        the default for ``"svi"``, whose loss is noisy; ``"map"`` stops by default at ``tol=1e-6``,
        ``patience=50`` (:data:`MAP_TOL`, :data:`MAP_PATIENCE`); pass ``tol=None`` to run every step.
        A run whose loss becomes NaN or infinite, whose parameters do, or whose loss ends more than
        :data:`DIVERGENCE_FACTOR` times max(|first loss|, 1) above its first loss raises a
        ``FloatingPointError`` that says so (try a smaller ``lr``).
    restarts, restart_select : from ``restarts`` seeded initialisations. With ``"initial"`` (Pyro's
        GMM tutorial strategy) each is scored by its initial loss and only the best is trained; with
        ``"final"`` each is trained and the lowest final loss (mean of the last 10 steps) is kept.
        Under a Dirichlet prior with concentration < 1 the MAP density is unbounded where a weight hits
        0, so ``"final"`` can prefer such a collapsed fit.
    seed, progress_bar : seeds Pyro, torch and the initialisation; a progress bar (:mod:`zoo.progress`).
    checkpoint, checkpoint_every, resume : save guide, model and optimiser state to ``checkpoint`` every
        ``checkpoint_every`` steps (atomically); with ``resume`` continue from it when present.
    num_samples : posterior draws from the guide (at most ``model.max_posterior_draws``; one for delta).
    guide_kwargs : options for the guide factory (``init_scale``, ``rank``, ``num_transforms``...).
    batch_size : minibatches of the model's data plate (a model that ``supports_minibatch`` and its
        ``custom`` guide); ``None``: full batch.
    jit_loss : compile the loss with ``torch.jit`` (Pyro's ``Jit*_ELBO``).
    num_particles : vectorised draws of the guide per step (a model with its own ELBO sets its own).

    Data parallel
    -------------
    When a ``torch.distributed`` group with more than one process is initialised (``torchrun``,
    :func:`zoo.distributed.init_from_env`), every rank calls ``fit`` with its own shard of the rows
    (shards may differ in size) and the fit is that of their union, stacked in rank order
    (:mod:`inference.distributed_svi`): N is the sum of the shard sizes, each step draws one global
    minibatch of ``batch_size`` rows (``None``: all N) as one process would, each rank evaluates the
    rows of it that it holds, with the plate scaled by N / ``batch_size`` and the guide's noise drawn
    for the whole batch, and the loss and the gradients are summed over the ranks in one collective.
    Every rank starts from rank 0's parameters and takes the same Adam steps, so the parameters stay
    identical on every rank, and the loss trace is, up to rounding, the one a single process gets
    on the union with the same ``seed``. ``FitResult.losses`` is that global trace on every rank;
    ``FitResult.samples`` holds posterior draws for this rank's rows. Only rank 0 shows progress and
    reads and writes ``checkpoint``; resume restores its state on every rank (a checkpoint holds what
    one process would hold, so a run can resume with another number of ranks). A data-dependent
    start (the Gaussian VAE's learned scale) is rank 0's, from its shard. It applies to models that
    declare ``supports_data_parallel`` (the VAE with a reparameterised estimator, the deterministic
    autoencoder); other models, ``jit_loss=True`` and the score-function estimator are refused with a
    ``ValueError`` that says why. Launch one process per shard, e.g. ``train.py``::

        from zoo import distributed
        distributed.init_from_env()                  # gloo on CPU, NCCL on GPU
        x = torch.load(f"shard-{distributed.rank()}.pt")
        vae = zoo.create_model("vae", n_features=x.shape[1])
        fit(vae, x, guide="custom", batch_size=256, num_steps=5000, checkpoint="vae.pt")

    run as ``torchrun --nproc-per-node 4 train.py``.
    """
    if model.supported_guides == ():
        raise ValueError(f"{type(model).__name__} supports no guide, so method {method!r} does not apply"
                         + _own_method_hint(model))
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if checkpoint is not None and restarts != 1:
        raise ValueError("checkpoints are kept for a single run; use restarts=1 with checkpoint")
    if resume:  # a corrupt or foreign file fails now, not after the set-up (on every rank, read by rank 0)
        from_main(lambda: _read_checkpoint(checkpoint) is not None)
    user_guide = guide is not None and not isinstance(guide, str)
    if user_guide:
        if not callable(guide):
            raise TypeError(f"guide must be a registered guide name or a guide callable, got {type(guide).__name__}")
        if restarts != 1:
            raise ValueError("restarts build a fresh guide each time: pass a guide name, or restarts=1 with a "
                             "guide callable")
        if guide_kwargs:
            raise ValueError("guide_kwargs are options for a registered guide's factory, not for a guide callable")
        if checkpoint is not None and not isinstance(guide, torch.nn.Module):
            raise ValueError("checkpoints save a guide's state_dict: use a guide module (an autoguide, a PyroModule)")
    if batch_size is not None:
        if not model.supports_minibatch:
            raise ValueError(f"{type(model).__name__} does not subsample its data plate; use batch_size=None")
        if guide not in (None, "custom"):
            raise ValueError(f"minibatches need the model's amortised 'custom' guide, got guide {guide!r}")
        guide = "custom"
    if guide is None:
        guide = "delta" if method == "map" else "normal"
    if not user_guide:
        spec = guide_spec(guide)
        if method == "map" and not spec.point_estimate:
            raise ValueError(f"method 'map' needs a point-estimate guide ('delta' or 'laplace'), got {guide!r}")
        check_guide_options(guide, guide_kwargs or {})  # the guide factory's declaration, before any work
    guide_kwargs = dict(guide_kwargs or {})
    guide_name = _guide_label(guide) if user_guide else guide
    if guide == "laplace":
        guide_kwargs.setdefault("max_plate_nesting", model.sites(data).max_plate_nesting)

    start = time.perf_counter()
    elbo = elbo_for(model, data, num_particles=num_particles, jit=jit_loss)
    loss_kwargs = {} if batch_size is None else {"subsample_size": min(batch_size, data.shape[0])}
    parallel = DataParallel(model, data, batch_size=batch_size, jit_loss=jit_loss, elbo=elbo) if zd.active() else None

    def build(run_seed):
        pyro.set_rng_seed(run_seed)
        model.reset_parameters(data, seed=run_seed)
        g = guide if user_guide else make_guide(guide, model, init_values=model.init_values(data, seed=run_seed),
                                                **guide_kwargs)
        with torch.no_grad():
            if parallel is None:
                initial = float(elbo.loss(model.model, g, data))
            else:  # the loss of the whole union, from rank 0's starting point
                parallel.broadcast_parameters(_module_params(model, g))
                with parallel.full_batch():
                    initial = parallel.sum(elbo.loss(model.model, g, data))
        return g, initial

    def train(g, run_seed, label):
        pyro.set_rng_seed(run_seed)
        losses, converged = _svi_loop(
            model, g, data, elbo=elbo, num_steps=num_steps, lr=lr, betas=betas, lr_decay=lr_decay, tol=tol,
            patience=patience, progress_bar=progress_bar, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
            resume=resume, desc=f"{method}/{guide_name}" + label, loss_kwargs=loss_kwargs, parallel=parallel,
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
    with parallel.full_batch() if parallel is not None else contextlib.nullcontext():
        samples = guide_samples(model, posterior_guide, data, draws)
    return FitResult(model=model, data=data, method=method, guide_name=guide_name, guide=g, losses=losses,
                     samples=samples, converged=converged, run_time=time.perf_counter() - start,
                     posterior_guide=posterior_guide, seed=run_seed)


def _with_defaults(run, **defaults):
    """``run`` with other defaults for some options, declared in its signature (what ``method_spec`` reads)."""
    sig = inspect.signature(run)
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in sig.parameters.values()]

    @functools.wraps(run)
    def wrapped(*args, **kwargs):
        for name, value in defaults.items():
            kwargs.setdefault(name, value)
        return run(*args, **kwargs)

    wrapped.__signature__ = sig.replace(parameters=params)
    return wrapped


#: ``method="map"``: :func:`fit_svi` with a point-estimate guide and MAP's stopping rule by default
fit_map = register_method("map", description="maximum a posteriori: SVI with a point-estimate guide (delta, laplace)",
                          takes_guide=True)(_with_defaults(fit_svi, tol=MAP_TOL, patience=MAP_PATIENCE))


def _read_checkpoint(path):
    """An SVI checkpoint at ``path``, or ``None`` when there is no file there."""
    return load_checkpoint(path, map_location="cpu", keys=_CHECKPOINT_KEYS) if Path(path).exists() else None


def _module_params(model, guide) -> list:
    """The parameters of the model's and the guide's modules, each once."""
    found = list(model.parameters()) + (list(guide.parameters()) if isinstance(guide, torch.nn.Module) else [])
    return list({id(p): p for p in found}.values())


def _params(model, guide, data, elbo, loss_kwargs):
    """The leaf tensors to optimise: the parameters of the guide and model modules, and the param-store
    values that the loss reads (``pyro.param`` in a plain function, ``pyro.module``)."""
    devices = [data.device] if data.is_cuda else []
    with torch.random.fork_rng(devices=devices), poutine.trace(param_only=True) as capture, torch.no_grad():
        elbo.loss(model.model, guide, data, **loss_kwargs)  # the draws of this pass leave no trace
    found = []
    for site in capture.trace.nodes.values():
        value = site["value"]
        value = value.unconstrained() if hasattr(value, "unconstrained") else value  # the param store's leaf
        if value.is_leaf:  # a module's constrained parameter is reached through .parameters() instead
            found.append(value)
    modules = list(guide.parameters()) if isinstance(guide, torch.nn.Module) else []
    seen, out = set(), []
    for p in modules + list(model.parameters()) + found:
        if id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append(p)
    return out


def _svi_loop(model, guide, data, *, elbo, num_steps, lr, betas, lr_decay, tol, patience, progress_bar, checkpoint,
              checkpoint_every, resume, desc, loss_kwargs=None, parallel=None):
    loss_kwargs = loss_kwargs or {}
    if parallel is not None:  # this rank's share of the step, summed over the ranks
        def loss_and_grads():
            kwargs = parallel.next_batch()
            with parallel.plate:
                loss = elbo.differentiable_loss(model.model, guide, data, **kwargs)
            if torch.isfinite(loss):
                loss.backward()
            return parallel.reduce(loss, params, step)
    elif hasattr(elbo, "differentiable_loss"):
        def loss_and_grads():
            loss = elbo.differentiable_loss(model.model, guide, data, **loss_kwargs)
            if torch.isfinite(loss):
                loss.backward()
            return loss.item()
    else:  # surrogate-loss estimators (TraceGraph_ELBO: score function with baselines) backpropagate themselves
        def loss_and_grads():
            return float(elbo.loss_and_grads(model.model, guide, data, **loss_kwargs))
    with torch.no_grad(), parallel.full_batch() if parallel is not None else contextlib.nullcontext():
        guide(data)  # creates the guide's parameters on the data's device
    optim = torch.optim.Adam(_params(model, guide, data, elbo, loss_kwargs), lr=lr, betas=tuple(betas))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optim, gamma=lr_decay)
    if parallel is not None:
        parallel.broadcast_parameters([p for group in optim.param_groups for p in group["params"]])
    losses, step, best, stall = [], 0, float("inf"), 0
    state = from_main(lambda: _read_checkpoint(checkpoint)) if resume and checkpoint is not None else None
    if state is not None:  # every rank restores rank 0's checkpoint; the ranks' generators are in step
        restore_state(guide, state["guide"], "guide", checkpoint)
        restore_state(model, state["model"], "model", checkpoint)
        restore_state(optim, state["optim"], "optimiser state (another guide or model)", checkpoint)
        restore_state(schedule, state["schedule"], "learning-rate schedule", checkpoint)
        losses, step = list(state["losses"]), int(state["step"])
        best, stall = float(state["best"]), int(state["stall"])
        torch.set_rng_state(state["rng"])
        if data.is_cuda and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device=data.device)

    def save():
        if not zd.is_main():  # the ranks hold the same state; rank 0 writes it
            return
        atomic_save({"guide": guide.state_dict(), "model": model.state_dict(), "optim": optim.state_dict(),
                     "schedule": schedule.state_dict(),
                     "losses": torch.tensor(losses, dtype=torch.float64), "step": step, "best": best,
                     "stall": stall, "rng": torch.get_rng_state(),
                     **({"cuda_rng": torch.cuda.get_rng_state(data.device)} if data.is_cuda else {})}, checkpoint)

    params = [p for group in optim.param_groups for p in group["params"]]

    def diverged(what):
        start = f" (it started at {losses[0]:.6g})" if losses else ""
        return FloatingPointError(f"{desc}: the fit diverged: {what}{start}; try a smaller lr (now {lr:g}), "
                                  "an lr_decay below 1, or another seed")

    converged = False
    with progress(total=num_steps, initial=step, desc=desc, enabled=progress_bar and zd.is_main()) as bar:
        while step < num_steps:
            optim.zero_grad()
            try:
                value = loss_and_grads()
            except (ValueError, RuntimeError) as exc:  # e.g. a distribution refusing NaN parameters
                if not all(bool(torch.isfinite(p).all()) for p in params):
                    raise diverged(f"the parameters became NaN or infinite by step {step}") from exc
                raise
            if not math.isfinite(value):
                raise diverged(f"the loss became {value} at step {step}")
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
                        bar.set_postfix(loss=f"{value:.4g}", stopped="loss flat")
                        break
            if checkpoint is not None and step % checkpoint_every == 0:
                save()
    if checkpoint is not None:
        save()
    end = sum(losses[-10:]) / max(len(losses[-10:]), 1)
    if losses and end - losses[0] > DIVERGENCE_FACTOR * max(abs(losses[0]), 1.0):
        raise diverged(f"the loss grew to {end:.6g} (mean of the last {len(losses[-10:])} steps) after "
                       f"{len(losses)} steps")
    return [float(v) for v in losses], converged


@torch.no_grad()
def guide_samples(model, guide, data, num_samples) -> dict[str, torch.Tensor]:
    """Draws of every continuous latent site of ``model`` from ``guide``, each (1, num_samples, ...)."""
    names = model.sites(data).latent_names
    # One pass through the model first, drawing from the global stream: a seed gives the draws
    # it has always given.
    trace_model(model.model, data, keep_rng=False)
    draws: dict[str, list] = {name: [] for name in names}
    for _ in range(num_samples):
        trace = pyro.poutine.trace(guide).get_trace(data)
        for name in names:
            draws[name].append(trace.nodes[name]["value"].detach())
    return {k: torch.stack(v)[None] for k, v in draws.items()}
