"""The guide registry: one string picks the variational family.

Every factory takes a model (a zoo model, or any Pyro model callable) and keyword options and
returns a guide callable with the model's signature. ``init_values`` (a dict of latent site
values, usually ``model.init_values(data)``) sets where a guide starts; without it a guide
starts at the prior median (a feasible point for an improper site). The autoguides also take
Pyro's ``init_loc_fn`` (an init strategy, site -> value), which then decides every start, e.g.
``fit(model_fn, data, guide_kwargs={"init_loc_fn": my_init})``.
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from pyro.infer.autoguide import (
    AutoDelta,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from pyro.infer.autoguide.initialization import init_to_value

from zoo._validation import Int, IsCallable, Mapping, Real, Sizes, Unchecked, constraints_of, declare
from zoo.base import ZooModel
from zoo.tracing import hide_discrete, init_to_median

from .flow import AutoFlow
from .laplace import AutoEnumLaplace

__all__ = ["GuideSpec", "register_guide", "make_guide", "list_guides", "guide_spec", "guides_for",
           "check_guide_options"]


@dataclass(frozen=True)
class GuideSpec:
    name: str
    factory: Callable
    point_estimate: bool = False  # fits a point (MAP); a posterior may come afterwards (laplace)
    applies: Callable = lambda model: True
    description: str = ""

    @property
    def options(self) -> dict:
        """The factory's keyword options (``guide_kwargs``), each with its declared constraint (None: unchecked)."""
        declared = constraints_of(self.factory)
        params = inspect.signature(self.factory).parameters
        return {p.name: declared.get(p.name) for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


_GUIDES: dict[str, GuideSpec] = {}


def register_guide(name: str, *, point_estimate: bool = False, applies: Callable | None = None):
    def deco(factory):
        if name in _GUIDES:
            raise ValueError(f"a guide named {name!r} is already registered")
        doc = (factory.__doc__ or "").strip().split("\n\n")[0]  # the first paragraph, on one line
        _GUIDES[name] = GuideSpec(name, factory, point_estimate, applies or (lambda model: True), " ".join(doc.split()))
        return factory

    return deco


def list_guides(pattern: str | None = None) -> list[str]:
    names = sorted(_GUIDES)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def guide_spec(name: str) -> GuideSpec:
    if not isinstance(name, str):
        raise TypeError(f"guide name must be a string, got {type(name).__name__}")
    try:
        return _GUIDES[name]
    except KeyError:
        raise ValueError(f"unknown guide {name!r}; known guides: {', '.join(list_guides())}") from None


def guides_for(model) -> list[str]:
    """The registered guides that apply to ``model``."""
    return [n for n in list_guides() if _GUIDES[n].applies(model)]


def check_guide_options(name: str, options: dict) -> None:
    """Refuse, before any work, a ``guide_kwargs`` entry the guide ``name``'s factory does not take
    (``TypeError`` naming the ones it does) and a value its declaration refuses (naming the option)."""
    if not isinstance(options, dict):
        raise TypeError(f"guide_kwargs must be a dict, got {type(options).__name__}")
    known = guide_spec(name).options
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"guide {name!r} does not take the option(s) {', '.join(map(repr, unknown))}; its options: "
                        f"{', '.join(known) or 'none'}")
    for key, value in options.items():
        if known[key] is not None:
            known[key](value, f"guide_kwargs[{key!r}]")


def make_guide(name: str, model, **kwargs):
    """Build the guide registered as ``name`` for ``model`` (a zoo model or a model callable)."""
    spec = guide_spec(name)
    if not spec.applies(model):
        raise ValueError(f"guide {name!r} does not apply to {type(model).__name__}; applicable: {guides_for(model)}")
    return spec.factory(model, **kwargs)


def _full_model(model):
    return model.model if isinstance(model, ZooModel) else model


def _model_fn(model):
    return hide_discrete(_full_model(model))


def _init_fn(init_values, init_loc_fn=None):
    """Where an autoguide starts: ``init_loc_fn`` when given (a Pyro init strategy: site -> value), else
    the values in ``init_values`` with the prior median for the other sites."""
    if init_loc_fn is not None:
        if not callable(init_loc_fn):
            raise TypeError(f"init_loc_fn must be a Pyro init strategy (site -> value), got {type(init_loc_fn).__name__}")
        return init_loc_fn
    if not init_values:
        return init_to_median
    return init_to_value(values={k: v.detach() for k, v in init_values.items() if isinstance(v, torch.Tensor)},
                         fallback=init_to_median)


def _supports(name: str):
    """``applies`` for the autoguides: every model, unless a zoo model lists its ``supported_guides``."""
    def applies(model) -> bool:
        supported = model.supported_guides if isinstance(model, ZooModel) else None
        return supported is None or name in supported
    return applies


_INIT_VALUES = Mapping(what="a dict of latent site values", none=True)
_INIT_LOC_FN = IsCallable(what="a Pyro init strategy (site -> value)", none=True)
_INIT_SCALE = Real(gt=0)


@register_guide("delta", point_estimate=True, applies=_supports("delta"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN)
def _delta(model, *, init_values=None, init_loc_fn=None):
    """Point mass at the MAP estimate (AutoDelta)."""
    return AutoDelta(_model_fn(model), init_loc_fn=_init_fn(init_values, init_loc_fn))


@register_guide("normal", applies=_supports("normal"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN, init_scale=_INIT_SCALE)
def _normal(model, *, init_values=None, init_loc_fn=None, init_scale=0.1):
    """Mean-field Normal in unconstrained space (AutoNormal)."""
    return AutoNormal(_model_fn(model), init_loc_fn=_init_fn(init_values, init_loc_fn), init_scale=init_scale)


@register_guide("mvn", applies=_supports("mvn"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN, init_scale=_INIT_SCALE)
def _mvn(model, *, init_values=None, init_loc_fn=None, init_scale=0.1):
    """Full-rank multivariate Normal (AutoMultivariateNormal)."""
    return AutoMultivariateNormal(_model_fn(model), init_loc_fn=_init_fn(init_values, init_loc_fn), init_scale=init_scale)


@register_guide("lowrank", applies=_supports("lowrank"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN, init_scale=_INIT_SCALE, rank=Int(ge=1, none=True))
def _lowrank(model, *, init_values=None, init_loc_fn=None, init_scale=0.1, rank=None):
    """Low-rank plus diagonal multivariate Normal (AutoLowRankMultivariateNormal)."""
    return AutoLowRankMultivariateNormal(
        _model_fn(model), init_loc_fn=_init_fn(init_values, init_loc_fn), init_scale=init_scale, rank=rank
    )


@register_guide("laplace", point_estimate=True, applies=_supports("laplace"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN, max_plate_nesting=Int(ge=0, none=True))
def _laplace(model, *, init_values=None, init_loc_fn=None, max_plate_nesting=None):
    """MAP, then a Gaussian from the Hessian of the enumerated log joint."""
    return AutoEnumLaplace(_model_fn(model), full_model=_full_model(model), init_loc_fn=_init_fn(init_values, init_loc_fn),
                           max_plate_nesting=max_plate_nesting)


@register_guide("flow", applies=_supports("flow"))
@declare(init_values=_INIT_VALUES, init_loc_fn=_INIT_LOC_FN, init_scale=_INIT_SCALE, num_transforms=Int(ge=1),
         hidden_dims=Sizes(none=True))
def _flow(model, *, init_values=None, init_loc_fn=None, init_scale=0.1, num_transforms=2, hidden_dims=None):
    """Affine-autoregressive normalizing flow around a learned location (inverse autoregressive flow)."""
    return AutoFlow(_model_fn(model), init_loc_fn=_init_fn(init_values, init_loc_fn), init_scale=init_scale,
                    num_transforms=num_transforms, hidden_dims=hidden_dims)


@register_guide("custom", applies=lambda model: isinstance(model, ZooModel) and model.custom_guide() is not None)
@declare(init_values=Unchecked("the model's own guide reads them"))
def _custom(model, *, init_values=None):
    """The model's own hand-written guide."""
    return model.custom_guide(init_values)
