"""The model protocol: what ``inference`` and ``guides`` read from a model, written down once.

A model is a Pyro model: a callable ``model(data)`` whose ``pyro.sample`` sites are the
latent variables and the observations. Anything callable can be fitted; :func:`as_model`
wraps a plain function or ``PyroModule`` in :class:`PyroModel`, and its structure (latent,
discrete and observed sites, plate depth, the data plate) is found by tracing it
(:mod:`zoo.tracing`). Nothing has to be declared.

A zoo model is a :class:`ZooModel`: a ``PyroModule`` whose ``model(data)`` is the Pyro model,
plus optional hooks. Each hook below has a default that means "not provided"; ``inference``
asks :func:`provides` before using one and reads nothing else. Prior hyperparameters live in
buffers, so ``.to(device)`` moves the whole model, and sampled values follow the data's device
and dtype.

Attributes (class-level defaults shown):

``site_dims = {}``
    ArviZ dimension names per latent site, after (chain, draw). A ``"component"`` entry marks
    the axis of mixture components, which :func:`inference.compare.align_components` relabels.
``supported_guides = None``
    registered guide names that apply (``None``: every guide).
``supports_minibatch = False``
    ``model(data, subsample_size=...)`` and the ``custom`` guide subsample the data plate.
``supports_data_parallel = False``
    SVI may split the data plate across the processes of a ``torch.distributed`` group
    (:mod:`inference.distributed_svi`): the minibatch loss is a sum of per-row terms of that
    plate, with no site outside it, and its only random draws are the guide's reparameterised
    Normal noise (drawn for the whole global batch there).
``max_posterior_draws = None``
    at most this many guide draws are kept in ``FitResult.samples`` (local latents: N x L each).

Methods with a working default:

``check_data(data) -> Tensor``
    validate and convert the data. Default: finite numbers, not empty, the shape unchanged; a
    tensor keeps its dtype and device, other input becomes a tensor of torch's default dtype.
``sites(data) -> ModelSites``
    the traced structure, cached per data tensor.
``reset_parameters(data, seed)``
    (re)initialise the model's own learnable parameters before every restart; default none.
``init_values(data, seed) -> dict | None``
    data-dependent starting values of latent sites; ``None`` is the prior median.
``custom_guide(init_values=None) -> callable | None``
    the model's hand-written guide, the registered guide ``"custom"``.
``pointwise_log_likelihood(samples, data) -> Tensor``
    log p(x_n | theta) with discrete sites summed out, samples (*S, *site_shape) -> (*S, N).
    Default: from the trace (:func:`zoo.tracing.pointwise_log_likelihood`); models override it
    with a closed form.
``elbo_spec() -> ELBOSpec | None``
    the model's own ELBO estimator by name (see :class:`ELBOSpec`); ``None`` lets ``inference``
    choose (``TraceEnum_ELBO`` with enumerated sites, else ``Trace_ELBO``).

Optional hooks (:data:`HOOKS`; unimplemented by default, see :func:`provides`):

``em_update(resp, data) -> dict``
    the closed-form maximum-likelihood M-step given responsibilities (N, K) of the enumerated
    site: constrained values of the continuous latent sites (``inference.fit(method="em")``).
``em_fit(data, *, max_iter, tol, random_state, progress_bar) -> (dict, estimator)``
    the whole maximum-likelihood EM in closed form on data that may be a chunk source
    (:mod:`zoo.sources`) or a shard of a data-parallel run: the constrained values of the continuous
    latent sites and the fitted estimator (``lower_bounds_``, ``converged_``). ``method="em"`` uses it
    for sources.
``coordinate_fit(data, *, num_steps, tol, seed, progress_bar) -> CoordinateFit``
    the model's own coordinate updates (``method="coordinate"``).
``cavi_fit(data, *, max_iter, tol, n_init, init_params, reg_covar, random_state, progress_bar)
-> (guide, estimator)``
    mean-field coordinate ascent in closed form (``method="cavi"``): the model's guide set to the
    fitted q, and the fitted estimator (``elbos_``: the ELBO after every iteration,
    ``converged_``).
``component_log_prob(samples, data) -> Tensor``
    log weights_k + log p(x_n | component k), (*S, N, K), for a mixture.
``log_prior(samples, data) -> Tensor``
    log p(theta) of the continuous latent sites, (*S,).
``exact_posterior(data) -> (mean, covariance)`` and ``log_evidence(data) -> Tensor``
    a closed-form posterior of a single latent site and log p(data) (``reference="exact"``).
``layerwise_stages() -> list`` and ``assemble() -> None``
    greedy layer-wise pre-training (``method="layerwise"``): the models trained one after the
    other, each on the codes (``stage.encode``) of the one before, then copied into the model by
    ``assemble`` before the whole is fine-tuned.
``adversarial_parts() -> AdversarialParts``
    the generator and discriminator of an implicit model and their two losses
    (``method="adversarial"``); see :class:`AdversarialParts`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from pyro.nn import PyroModule

from . import tracing
from ._checks import HALF_DTYPES

__all__ = ["ZooModel", "PyroModel", "as_model", "provides", "HOOKS", "ELBOSpec", "CoordinateFit", "AdversarialParts",
           "as_tensor_data"]

#: the optional hooks of the protocol, each unimplemented on :class:`ZooModel`
HOOKS = ("em_update", "em_fit", "coordinate_fit", "cavi_fit", "component_log_prob", "log_prior", "exact_posterior",
         "log_evidence", "layerwise_stages", "assemble", "adversarial_parts")


@dataclass(frozen=True)
class ELBOSpec:
    """A model's own ELBO, by estimator name: ``"trace"`` (``Trace_ELBO``), ``"trace_enum"``,
    ``"mean_field"`` (``TraceMeanField_ELBO``), ``"reparam"`` and ``"analytic_kl"``
    (:class:`inference.ReparamELBO`), ``"score_function"`` (``TraceGraph_ELBO``) or ``"iwae"``
    (:class:`inference.ImportanceWeightedELBO`), with ``num_particles`` draws per step."""

    estimator: str
    num_particles: int = 1


@dataclass
class CoordinateFit:
    """What ``coordinate_fit`` returns: the loss after every sweep, the final point values of the
    latent sites (site shape, no chain or draw dims) and whether the sweeps converged."""

    losses: list
    samples: dict
    converged: bool = False
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AdversarialParts:
    """What ``adversarial_parts`` returns: the two networks of an adversarial game and their losses.

    ``discriminator_loss(real)`` takes a batch of data (B, D) and returns the discriminator's scalar
    loss on it and on as many fresh generator draws (drawn without a graph to the generator: this
    loss trains the discriminator only). ``generator_loss(batch_size)`` draws ``batch_size`` noise
    vectors and returns the generator's scalar loss, differentiable in the generator's parameters.
    ``sample(n)`` returns n generator draws (n, D) without a graph. An optimiser is built for each
    module that has trainable parameters.
    """

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    discriminator_loss: Callable[[torch.Tensor], torch.Tensor]
    generator_loss: Callable[[int], torch.Tensor]
    sample: Callable[[int], torch.Tensor]


def as_tensor_data(data, *, name: str = "data") -> torch.Tensor:
    """``data`` as a tensor, its shape unchanged: finite where floating, at least one element.
    A tensor keeps its dtype and device, used detached when it requires grad; other input becomes
    torch's default dtype (the dtype of the constants a Pyro model writes, ``torch.tensor(1.0)``),
    and so does a half-precision tensor (float16, bfloat16: the zoo never computes in them)."""
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"{name} must be an array-like of numbers, got {type(data).__name__}")
    if isinstance(data, torch.Tensor):
        t = data.detach() if data.requires_grad else data
        if t.dtype in HALF_DTYPES:
            t = t.to(torch.get_default_dtype())
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
        t = torch.as_tensor(arr, dtype=torch.get_default_dtype())
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    if t.is_floating_point():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = "NaN" if bool(torch.isnan(t).any()) else "infinity"
            raise ValueError(f"{name} contains {bad}: {int((~finite).sum())} non-finite values")
    return t


class ZooModel(PyroModule):
    """The base of every model (see the module docstring for the protocol)."""

    site_dims: dict[str, list[str]] = {}
    supported_guides: tuple[str, ...] | None = None
    supports_minibatch: bool = False
    supports_data_parallel: bool = False
    max_posterior_draws: int | None = None

    def model(self, data):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define model(data)")

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    # --- data and structure -------------------------------------------------------------------
    def check_data(self, data) -> torch.Tensor:
        return as_tensor_data(data)

    def sites(self, data) -> tracing.ModelSites:
        key = (id(data), tuple(data.shape), data.dtype, data.device, data._version)
        cached = self.__dict__.get("_sites")
        if cached is None or cached[0] != key or cached[1] is not data:
            cached = (key, data, tracing.model_sites(self.model, data))
            self.__dict__["_sites"] = cached
        return cached[2]

    # --- hooks with a default -----------------------------------------------------------------
    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """(Re)initialise the model's own learnable parameters; default: none to reset."""

    def init_values(self, data: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor] | None:
        return None

    def custom_guide(self, init_values=None):
        return None

    def pointwise_log_likelihood(self, samples: dict[str, torch.Tensor], data: torch.Tensor) -> torch.Tensor:
        return tracing.pointwise_log_likelihood(self.model, samples, data, self.sites(data))

    def elbo_spec(self) -> ELBOSpec | None:
        return None

    # --- optional hooks (HOOKS) ---------------------------------------------------------------
    def em_update(self, resp: torch.Tensor, data: torch.Tensor) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form M-step")

    def em_fit(self, data, *, max_iter, tol, random_state, progress_bar):
        raise NotImplementedError(f"{type(self).__name__} has no closed-form EM over chunks")

    def coordinate_fit(self, data, *, num_steps: int, tol: float | None, seed: int, progress_bar: bool) -> CoordinateFit:
        raise NotImplementedError(f"{type(self).__name__} has no coordinate updates")

    def cavi_fit(self, data, *, max_iter, tol, n_init, init_params, reg_covar, random_state, progress_bar):
        raise NotImplementedError(f"{type(self).__name__} has no conjugate coordinate updates")

    def component_log_prob(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not a mixture")

    def log_prior(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form log prior")

    def exact_posterior(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no exact posterior")

    def log_evidence(self, data) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form evidence")

    def layerwise_stages(self) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no layer-wise pre-training")

    def assemble(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no layer-wise pre-training")

    def adversarial_parts(self) -> AdversarialParts:
        raise NotImplementedError(f"{type(self).__name__} is not an adversarial (generator/discriminator) model")


def provides(model, hook: str) -> bool:
    """Whether ``model`` implements the optional hook ``hook`` (one of :data:`HOOKS`)."""
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r}; the protocol's optional hooks: {', '.join(HOOKS)}")
    return isinstance(model, ZooModel) and getattr(type(model), hook) is not getattr(ZooModel, hook)


class PyroModel(ZooModel):
    """A user's Pyro model (a function ``model(data)`` or a ``PyroModule``) under the protocol,
    with every default: nothing declared, everything found by tracing."""

    def __init__(self, fn):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"a model must be callable as model(data), got {type(fn).__name__}")
        if isinstance(fn, torch.nn.Module):
            self.fn = fn  # a submodule: its parameters and buffers are the model's
        else:
            self.__dict__["fn"] = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def model(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return f"PyroModel({self.__name__})"


def as_model(model) -> ZooModel:
    """A :class:`ZooModel` for ``model``: a registered model name, a ZooModel (itself), or any
    callable Pyro model (wrapped in :class:`PyroModel`)."""
    if isinstance(model, str):
        from .registry import create_model

        return create_model(model)
    if isinstance(model, ZooModel):
        return model
    if callable(model):
        return PyroModel(model)
    raise TypeError(f"model must be a Pyro model (a callable model(data)), a zoo model or a registered model "
                    f"name, got {type(model).__name__}")
