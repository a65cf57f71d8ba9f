"""Rank functions for ``tests/test_distributed_svi.py`` (run through ``distributed_harness.run_ranks``),
and the fits they share with the single-process reference in the test itself.

Every rank builds the same data set and keeps its own rows (the shards stacked in rank order); the
reference fits the whole data set in one process with the same options.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyro
import torch

import inference
import zoo
from zoo import distributed as zd
from zoo.autoencoders import Autoencoder

N_FEATURES = 12


def make_data(n: int, dtype=torch.float64, seed: int = 7) -> torch.Tensor:
    """Binary data with structure: two latent factors switch blocks of features on, plus noise."""
    g = torch.Generator().manual_seed(seed)
    factors = torch.rand(n, 2, generator=g) < 0.5
    blocks = torch.zeros(2, N_FEATURES, dtype=torch.bool)
    blocks[0, :6], blocks[1, 6:] = True, True
    clean = (factors[:, :, None] & blocks).any(1)
    flip = torch.rand(n, N_FEATURES, generator=g) < 0.1
    return (clean ^ flip).to(dtype)


def shard(x: torch.Tensor, sizes) -> torch.Tensor:
    """This rank's rows of x, for shards of ``sizes`` stacked in rank order."""
    start = sum(sizes[:zd.rank()])
    return x[start:start + sizes[zd.rank()]]


def make_model(family: str = "vae", **kwargs):
    if family == "vae":
        return zoo.create_model("vae", n_features=N_FEATURES, latent_dim=3, hidden=(16,), **kwargs)
    return Autoencoder(N_FEATURES, 3, (16,), **kwargs)


def fit_case(x: torch.Tensor, *, family: str = "vae", model_kwargs=None, **options) -> dict:
    """One fit of a fresh model on x (this process's data); the losses, the parameters and the time."""
    pyro.clear_param_store()
    model = make_model(family, **(model_kwargs or {}))
    options = dict(dict(guide="custom", num_steps=30, lr=1e-2, seed=0, progress_bar=False, num_samples=2), **options)
    start = time.perf_counter()
    result = inference.fit(model, x, method="svi", **options)
    return {"losses": torch.tensor(result.losses, dtype=torch.float64), "seconds": time.perf_counter() - start,
            "params": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "samples": {k: v.detach().clone() for k, v in result.samples.items()}}


#: the cases compared with one process: (name, shard sizes, data dtype, fit options)
CASES = [
    ("even", (1000, 1000), torch.float64, dict(batch_size=100)),
    ("uneven", (1001, 999), torch.float64, dict(batch_size=100)),
    ("float32", (1001, 999), torch.float32, dict(batch_size=100)),
    ("full_batch", (1001, 999), torch.float64, dict(batch_size=None, num_steps=10)),
    ("iwae", (1001, 999), torch.float64, dict(batch_size=64, num_steps=15,
                                             model_kwargs=dict(estimator="iwae", num_particles=3))),
    ("analytic_kl", (1001, 999), torch.float64, dict(batch_size=64, num_steps=15,
                                                    model_kwargs=dict(estimator="analytic_kl"))),
    ("tiny_shard", (3, 1997), torch.float64, dict(batch_size=32, num_steps=40)),
    ("restarts_initial", (1001, 999), torch.float64, dict(batch_size=64, num_steps=10, restarts=3)),
    ("restarts_final", (1001, 999), torch.float64, dict(batch_size=64, num_steps=10, restarts=2,
                                                       restart_select="final")),
    ("autoencoder", (1001, 999), torch.float64, dict(family="autoencoder", batch_size=64, num_steps=15)),
]


def _refusal(fn) -> tuple[str, str] | None:
    try:
        fn()
    except (ValueError, RuntimeError) as exc:
        return type(exc).__name__, str(exc)
    return None


class _ClaimsSupport(Autoencoder):
    """An autoencoder variant that claims data-parallel support it lacks: the safety nets must catch it."""

    supports_data_parallel = True


def refusals() -> dict:
    """The fits a data-parallel run must refuse, each as (exception type, message), or None if it ran."""
    x = shard(make_data(400), (200, 200))
    gmm_x = shard(torch.randn(400, 2, dtype=torch.float64), (200, 200))
    return {
        "no_minibatch": _refusal(lambda: inference.fit(zoo.create_model("gmm", n_components=2), gmm_x, method="svi",
                                                       num_steps=2, progress_bar=False)),
        "score_function": _refusal(lambda: fit_case(x, batch_size=32, num_steps=2,
                                                    model_kwargs=dict(estimator="score_function"))),
        "jit_loss": _refusal(lambda: fit_case(x, batch_size=32, num_steps=2, jit_loss=True)),
        "denoising": _refusal(lambda: fit_case(x, family="autoencoder", batch_size=32, num_steps=2,
                                               model_kwargs=dict(kind="denoising"))),
        # the safety nets behind the declaration: a site outside the plate, a model drawing its own noise
        "outside_plate": _refusal(lambda: _fit_claiming(x, kind="sparse")),
        "own_noise": _refusal(lambda: _fit_claiming(x, kind="denoising")),
    }


def _fit_claiming(x, kind):
    pyro.clear_param_store()
    inference.fit(_ClaimsSupport(N_FEATURES, 3, (16,), kind=kind), x, method="svi", guide="custom", batch_size=32,
                  num_steps=5, lr=1e-2, progress_bar=False)


def checkpoints(tmp: str, sizes=(1001, 999), stop: int = 12, num_steps: int = 30) -> dict:
    """Stop at ``stop`` with a checkpoint, then resume to ``num_steps`` (the options of the "uneven"
    case). Each rank names its own path: rank 0's is the one written and read, the others' must stay
    absent. Rank 0 keeps a copy of the checkpoint at ``stop`` for a one-process resume."""
    x = shard(make_data(sum(sizes)), sizes)
    path = Path(tmp) / f"ckpt-rank{zd.rank()}.pt"
    kw = dict(batch_size=100, checkpoint=path, checkpoint_every=5)
    first = fit_case(x, num_steps=stop, **kw)
    at_stop = Path(tmp) / f"ckpt-step{stop}.pt"
    if zd.is_main():
        shutil.copy(path, at_stop)
    resumed = fit_case(x, num_steps=num_steps, resume=True, **kw)
    return {"first": first["losses"], "resumed": resumed["losses"], "exists": path.exists(), "at_stop": str(at_stop)}


def run_all(tmp: str) -> dict:
    """Every data-parallel case of the test module, in one spawn of the ranks."""
    out = {}
    for name, sizes, dtype, options in CASES:
        out[name] = fit_case(shard(make_data(sum(sizes), dtype), sizes), **options)
    out["refusals"] = refusals()
    out["checkpoints"] = checkpoints(tmp)
    return out
