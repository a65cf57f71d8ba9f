"""The model registry: ``@register_model`` on small factories, ``create_model``
by name, ``list_models`` to see what exists. Variants are configurations of a
factory, not subclasses."""
from __future__ import annotations

import fnmatch
from typing import Callable

__all__ = ["register_model", "create_model", "list_models"]

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


def create_model(name: str, **kwargs):
    """Build the model registered as ``name`` with the factory's keyword arguments."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return factory(**kwargs)
