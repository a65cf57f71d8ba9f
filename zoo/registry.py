"""The model registry: ``@register_model`` on small factories, ``create_model``
by name, ``list_models`` to see what exists. Variants are configurations of a
factory, not subclasses.

A model's hyperparameters are declared where they are taken, with
:func:`zoo._validation.declare` on the class's ``__init__`` (and on the factory for any
parameter of its own), so that ``create_model`` and the class refuse a bad value alike, before
anything is built. :func:`model_parameters` lists every hyperparameter of a registered name
with its declaration (the factory's return annotation names the class); the test suite
requires one for every parameter of the project's own models."""
from __future__ import annotations

import fnmatch
import inspect
import typing
from typing import Callable

from ._validation import constraints_of

__all__ = ["register_model", "create_model", "list_models", "model_parameters"]

_MODELS: dict[str, Callable] = {}


def register_model(name: str | None = None):
    """Decorator registering a model factory under ``name`` (default: its ``__name__``)."""

    def deco(factory: Callable) -> Callable:
        key = name or factory.__name__
        if key in _MODELS and _MODELS[key] is not factory:
            raise ValueError(f"a model named {key!r} is already registered")
        _MODELS[key] = factory
        return factory

    return deco


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a glob ``pattern``."""
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_class(name: str):
    """The class the factory ``name`` builds (its return annotation), or None when it names none."""
    factory = _factory(name)
    try:
        cls = typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation that does not resolve
        return None
    return cls if isinstance(cls, type) else None


def model_parameters(name: str) -> dict:
    """Every hyperparameter ``create_model(name, ...)`` takes (the factory's own and, through its
    ``**kwargs``, those of the class it builds), each with its declared constraint (``None``: not
    declared, accepted unchecked)."""
    factory = _factory(name)
    out = {}
    sources = [factory]
    cls = model_class(name)
    if cls is not None:
        sources.append(cls.__init__)
    for fn in sources:
        declared = constraints_of(fn)
        for p in inspect.signature(fn).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if out.get(p.name) is None:
                out[p.name] = declared.get(p.name)
    return out


def _factory(name):
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs):
    """Build the model registered as ``name`` with the factory's keyword arguments."""
    return _factory(name)(**kwargs)
