"""Adversarial training (``method="adversarial"``): the protocol hook ``adversarial_parts`` (e.g. the GAN),
a generator and a discriminator trained in turn by two Adam optimisers."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pyro
import torch

from zoo._validation import Bool, Pair, Real, declare
from zoo.base import provides
from zoo.progress import progress

from .checkpoint import atomic_save, load_checkpoint, restore_state
from .methods import CHECKPOINT, NUM_STEPS, POSITIVE_INT, PROGRESS_BAR, SEED, register_method
from .result import FitResult

__all__ = ["fit_adversarial"]


def _trainable(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


@register_method("adversarial", description="adversarial training of a generator against a discriminator (a GAN); "
                                            "the draws are the generator's, there is no posterior")
@declare(num_steps=NUM_STEPS, batch_size=POSITIVE_INT, lr=Real(gt=0, le=10, what="a positive number at most 10"),
         betas=Pair(Real(ge=0, lt=1)), d_steps=POSITIVE_INT, seed=SEED, progress_bar=PROGRESS_BAR, checkpoint=CHECKPOINT,
         checkpoint_every=POSITIVE_INT, resume=Bool(), num_samples=POSITIVE_INT)
def fit_adversarial(model, data, *, method: str = "adversarial", num_steps: int = 2000, batch_size: int = 128,
                    lr: float = 2e-4, betas=(0.5, 0.999), d_steps: int = 1, seed: int = 0, progress_bar: bool = True,
                    checkpoint=None, checkpoint_every: int = 500, resume: bool = False,
                    num_samples: int = 1000) -> FitResult:
    """Train the generator and the discriminator of ``model.adversarial_parts()`` in turn.

    Every step takes ``d_steps`` discriminator steps, each on a minibatch of ``batch_size`` data rows
    drawn with replacement and as many fresh generator draws, then one generator step on
    ``batch_size`` fresh draws (the model's generator loss, e.g. the GAN's ``minimax`` or
    ``non_saturating``). Each network has its own Adam optimiser; a network without trainable
    parameters gets none and stays fixed (a known generator: the discriminator is trained alone,
    towards D* = p_r / (p_r + p_g)).

    Parameters
    ----------
    num_steps : generator steps (each after ``d_steps`` discriminator steps).
    batch_size : data rows per discriminator step (at most N) and generator draws per step.
    lr, betas : both optimisers' Adam settings (the DCGAN defaults 2e-4 and (0.5, 0.999)).
    seed, progress_bar : seeds Pyro, torch and the networks' initialisation; a progress bar with both losses.
    checkpoint, checkpoint_every, resume : save both networks, both optimisers, both loss traces, the step
        and the RNG state (CUDA's too on a CUDA device) to ``checkpoint`` every ``checkpoint_every`` steps and
        at the end (atomically); with ``resume`` continue from it when present: the run is then the one an
        uninterrupted run would have been, bit for bit.
    num_samples : generator draws kept in the result.

    Returns
    -------
    FitResult
        ``losses``: the generator loss at every step (N steps); ``discriminator_losses``: the
        discriminator loss at every step (the mean over its ``d_steps``), -(E log D(x) + E log(1 - D(G(z)))),
        which is 2 log 2 = 1.386 at the game's equilibrium; ``samples["x"]``: (1, num_samples, D) draws of
        the trained generator. These are draws of the implicit model p_g, not posterior draws: a GAN has no
        posterior and no likelihood (its ``pointwise_log_likelihood``, hence ``to_inference_data``, raise a
        ``ValueError``). ``guide`` is None.

    Raises
    ------
    FloatingPointError : a loss became NaN or infinite (the step is named); try a smaller ``lr``.
    """
    if not provides(model, "adversarial_parts"):
        raise ValueError(f"{type(model).__name__} has no generator and discriminator (the protocol hook "
                         f"adversarial_parts); use 'svi', 'map' or 'nuts'")
    betas = (float(betas[0]), float(betas[1]))
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    start = time.perf_counter()
    pyro.set_rng_seed(seed)
    state = load_checkpoint(checkpoint, map_location="cpu", keys=(
        "generator", "discriminator", "optim_g", "optim_d", "losses", "discriminator_losses", "step", "rng")) \
        if resume and Path(checkpoint).exists() else None
    if state is None:
        model.reset_parameters(data, seed=seed)
    parts = model.adversarial_parts()
    g_params, d_params = _trainable(parts.generator), _trainable(parts.discriminator)
    if not g_params and not d_params:
        raise ValueError("neither the generator nor the discriminator has trainable parameters: nothing to fit")
    opt_g = torch.optim.Adam(g_params, lr=lr, betas=betas) if g_params else None
    opt_d = torch.optim.Adam(d_params, lr=lr, betas=betas) if d_params else None
    losses, d_losses, step = [], [], 0
    if state is not None:
        restore_state(parts.generator, state["generator"], "generator", checkpoint)
        restore_state(parts.discriminator, state["discriminator"], "discriminator", checkpoint)
        for opt, key in ((opt_g, "optim_g"), (opt_d, "optim_d")):
            if opt is not None:
                restore_state(opt, state[key], f"optimiser ({key})", checkpoint)
        losses, d_losses = state["losses"].tolist(), state["discriminator_losses"].tolist()
        step = int(state["step"])
        torch.set_rng_state(state["rng"])
        if data.is_cuda and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device=data.device)

    def save():
        atomic_save({"generator": parts.generator.state_dict(), "discriminator": parts.discriminator.state_dict(),
                     "optim_g": opt_g.state_dict() if opt_g is not None else {},
                     "optim_d": opt_d.state_dict() if opt_d is not None else {},
                     "losses": torch.tensor(losses, dtype=torch.float64),
                     "discriminator_losses": torch.tensor(d_losses, dtype=torch.float64), "step": step,
                     "rng": torch.get_rng_state(),
                     **({"cuda_rng": torch.cuda.get_rng_state(data.device)} if data.is_cuda else {})}, checkpoint)

    n = data.shape[0]
    batch = min(batch_size, n)
    with progress(total=num_steps, initial=step, desc=method, enabled=progress_bar) as bar:
        while step < num_steps:
            d_values = []
            for _ in range(d_steps):
                idx = torch.randint(n, (batch,), device=data.device)
                with torch.set_grad_enabled(opt_d is not None):
                    loss_d = parts.discriminator_loss(data[idx])
                if opt_d is not None:
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward(inputs=d_params)
                    opt_d.step()
                d_values.append(loss_d.detach())
            with torch.set_grad_enabled(opt_g is not None):
                loss_g = parts.generator_loss(batch)
            if opt_g is not None:
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward(inputs=g_params)  # the discriminator's gradients are not needed here
                opt_g.step()
            # one device-to-host transfer per step for both losses
            d_value, g_value = torch.stack([torch.stack(d_values).mean(), loss_g.detach()]).tolist()
            if not (math.isfinite(d_value) and math.isfinite(g_value)):
                raise FloatingPointError(f"a loss became non-finite at step {step} (discriminator {d_value}, "
                                         f"generator {g_value}); try a smaller lr")
            losses.append(g_value)
            d_losses.append(d_value)
            step += 1
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(d_loss=f"{d_value:.4g}", g_loss=f"{g_value:.4g}")
            if checkpoint is not None and step % checkpoint_every == 0:
                save()
    if checkpoint is not None:
        save()
    draws = parts.sample(num_samples)
    result = FitResult(model=model, data=data, method=method, guide_name=None, guide=None, losses=list(losses),
                       samples={"x": draws.detach()[None]}, run_time=time.perf_counter() - start, seed=seed)
    result.discriminator_losses = list(d_losses)
    return result
