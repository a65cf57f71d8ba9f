"""The model's own EM-style coordinate updates (``method="coordinate"``): the protocol hook
``coordinate_fit`` (e.g. GLGAE: encode every datum, then update the parameters)."""
from __future__ import annotations

import time

import pyro

from zoo.base import provides

from zoo._validation import declare

from .methods import NUM_STEPS, PROGRESS_BAR, SEED, TOL, register_method
from .result import FitResult

__all__ = ["fit_coordinate"]


@register_method("coordinate",
                 description="the model's own EM-style coordinate updates (e.g. GLGAE: encode every datum, then update)")
@declare(num_steps=NUM_STEPS, tol=TOL, seed=SEED, progress_bar=PROGRESS_BAR)
def fit_coordinate(model, data, *, method: str = "coordinate", num_steps: int = 1000, tol: float | None = None,
                   seed: int = 0, progress_bar: bool = True) -> FitResult:
    """Reset the model's parameters from ``seed``, run ``model.coordinate_fit`` for at most ``num_steps``
    sweeps (stopping when the loss changes by less than ``tol``), and return its point values as one draw."""
    if not provides(model, "coordinate_fit"):
        raise ValueError(f"{type(model).__name__} has no coordinate updates; use 'svi', 'map', 'em' or 'nuts'")
    start = time.perf_counter()
    pyro.set_rng_seed(seed)
    model.reset_parameters(data, seed=seed)
    out = model.coordinate_fit(data, num_steps=num_steps, tol=tol, seed=seed, progress_bar=progress_bar)
    return FitResult(model=model, data=data, method=method, guide_name=None, guide=None, losses=list(out.losses),
                     samples={k: v.detach()[None, None] for k, v in out.samples.items()}, converged=out.converged,
                     run_time=time.perf_counter() - start, seed=seed)
