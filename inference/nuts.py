"""The No-U-Turn sampler (``method="nuts"``): the reference posterior. Pyro's NUTS on the model's
potential, with the enumerated sites summed out, one chain after another (each seeded)."""
from __future__ import annotations

import time

import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_value

from zoo._validation import AnyOf, ArrayLike, Bool, Choice, InstanceOf, Int, Mapping, Real, declare
from zoo.base import provides
from zoo.progress import log_mode, progress
from zoo.tracing import init_to_median

from .methods import POSITIVE_INT, PROGRESS_BAR, SEED, register_method
from .result import FitResult

#: where the chains start: a name, a fit or site values
NUTS_INIT = AnyOf(Choice("map", "prior"), InstanceOf(FitResult),
                  Mapping(ArrayLike(), what="a dict site -> finite values"),
                  what="'map', 'prior', a FitResult or a dict site -> finite values")

__all__ = ["fit_nuts"]


@register_method("nuts", description="the No-U-Turn sampler, the reference posterior")
@declare(num_samples=POSITIVE_INT, num_warmup=Int(ge=0, what="a non-negative integer"), num_chains=POSITIVE_INT,
         nuts_init=NUTS_INIT, target_accept_prob=Real(gt=0, lt=1), jit_compile=Bool(), max_tree_depth=POSITIVE_INT,
         seed=SEED, progress_bar=PROGRESS_BAR)
def fit_nuts(model, data, *, method: str = "nuts", num_samples: int = 500, num_warmup: int = 500, num_chains: int = 2,
             nuts_init="map", target_accept_prob: float = 0.8, jit_compile: bool = True, max_tree_depth: int = 10,
             seed: int = 0, progress_bar: bool = True) -> FitResult:
    """``num_chains`` chains of ``num_samples`` draws after ``num_warmup`` adaptation steps.

    ``nuts_init``: ``"map"`` starts every chain at a MAP fit (``delta`` guide, best of 3, 300 steps),
    ``"prior"`` at the prior median, a ``FitResult`` at its last draw, a dict at those site values.
    ``target_accept_prob``, ``max_tree_depth``: NUTS's step-size target and tree depth;
    ``jit_compile`` compiles the potential (faster chains, a few seconds to compile).
    """
    from .fit import fit

    if provides(model, "adversarial_parts"):
        raise ValueError(f"{type(model).__name__} is an implicit model without a likelihood: NUTS has nothing to "
                         f"condition on; fit it with method='adversarial'")
    sites = model.sites(data)
    if isinstance(nuts_init, dict):  # checked before any work is done
        unknown = sorted(set(nuts_init) - set(sites.latent))
        if unknown:
            raise ValueError(f"nuts_init names {unknown}, which are not latent sites of the model")
        for name, value in nuts_init.items():
            shape = tuple(torch.as_tensor(value).shape)
            if shape != tuple(sites.latent[name]):
                raise ValueError(f"nuts_init[{name!r}] has shape {shape}; the site {name!r} has shape "
                                 f"{tuple(sites.latent[name])}")
    start = time.perf_counter()
    init_strategy = init_to_median
    if isinstance(nuts_init, str) and nuts_init == "map":
        nuts_init = fit(model, data, method="map", guide="delta", num_steps=300, lr=0.05, seed=seed,
                        progress_bar=progress_bar, restarts=3, tol=None)  # every step: the start of every reference
    if isinstance(nuts_init, FitResult):  # its last draw: a point on every site's support
        nuts_init = {k: v[0, -1] for k, v in nuts_init.samples.items()}
    if isinstance(nuts_init, dict):
        values = {k: torch.as_tensor(v).to(dtype=data.dtype if data.is_floating_point() else None, device=data.device)
                  for k, v in nuts_init.items()}
        init_strategy = init_to_value(values=values, fallback=init_to_median)
    chains = []
    for c in range(num_chains):
        pyro.set_rng_seed(seed + c)
        kernel = NUTS(model.model, max_plate_nesting=sites.max_plate_nesting, target_accept_prob=target_accept_prob,
                      jit_compile=jit_compile, ignore_jit_warnings=True, max_tree_depth=max_tree_depth,
                      init_strategy=init_strategy)
        # Pyro's own bar on a terminal; in a log, the zoo's line bar (zoo.progress) fed by the sampler's hook
        lines = progress_bar and log_mode()
        bar = progress(total=num_warmup + num_samples, desc=f"nuts chain {c + 1}/{num_chains}", enabled=lines)
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, num_chains=1,
                    disable_progbar=not progress_bar or lines, hook_fn=(lambda *_: bar.update(1)) if lines else None)
        with bar:
            mcmc.run(data)
        chains.append({k: v.detach() for k, v in mcmc.get_samples().items()})
    samples = {k: torch.stack([ch[k] for ch in chains]) for k in chains[0]}
    return FitResult(model=model, data=data, method=method, guide_name=None, guide=None, losses=[],
                     samples=samples, converged=True, run_time=time.perf_counter() - start, seed=seed)
