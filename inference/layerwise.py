"""Greedy layer-wise pre-training, then fine-tuning (``method="layerwise"``): the protocol hooks
``layerwise_stages`` and ``assemble`` (e.g. the stacked autoencoder)."""
from __future__ import annotations

import time


from zoo.base import provides

from zoo._validation import Int, declare

from .methods import LR, NUM_STEPS, PROGRESS_BAR, SEED, register_method
from .result import FitResult

__all__ = ["fit_layerwise"]


@register_method("layerwise", description="greedy layer-wise pre-training of the model's stages, then fine-tuning "
                                          "of the whole (e.g. a stacked autoencoder)")
@declare(num_steps=NUM_STEPS, finetune_steps=NUM_STEPS, lr=LR,
         batch_size=Int(ge=1, none=True, what="a positive integer or None"), seed=SEED, progress_bar=PROGRESS_BAR)
def fit_layerwise(model, data, *, method: str = "layerwise", num_steps: int = 1000, finetune_steps: int = 1000,
                  lr: float = 1e-3, batch_size: int | None = None, seed: int = 0, progress_bar: bool = True) -> FitResult:
    """Train each stage of ``model.layerwise_stages()`` for ``num_steps`` SVI steps with its own guide
    (``guide="custom"``), on the data for the first and on the codes of the stage before for the next,
    then ``model.assemble()`` and fine-tune the whole for ``finetune_steps`` steps. The result
    is the fine-tuning's, its ``losses`` the stages' traces followed by the fine-tuning's; ``stage_losses``
    holds each stage's trace."""
    from .fit import fit

    if not provides(model, "layerwise_stages") or not provides(model, "assemble"):
        raise ValueError(f"{type(model).__name__} has no layer-wise stages; use 'svi', 'map' or 'nuts'")
    start = time.perf_counter()
    common = dict(method="svi", guide="custom", lr=lr, batch_size=batch_size, progress_bar=progress_bar)
    x, stage_losses = data, []  # every stage is initialised by its own fit; assemble() sets the whole stack
    for i, stage in enumerate(model.layerwise_stages()):
        r = fit(stage, x, num_steps=num_steps, seed=seed + i, **common)
        stage_losses.append(list(r.losses))
        x = stage.encode(x)
    model.assemble()  # the next reset_parameters keeps the assembled weights: fine-tuning starts there
    result = fit(model, data, num_steps=finetune_steps, seed=seed, **common)
    result.method, result.run_time = method, time.perf_counter() - start
    result.losses = [v for trace in stage_losses for v in trace] + list(result.losses)
    result.stage_losses = stage_losses
    return result
