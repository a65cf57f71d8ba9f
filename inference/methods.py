"""The fitting methods, a registry like the models' and the guides': ``@register_method`` on a
function, ``method_spec(name)`` to describe it, ``list_methods()`` to see them all.

A method is a function ``run(model, data, *, method, guide=None, **options)`` returning a
:class:`~inference.result.FitResult`: ``model`` is a :class:`zoo.base.ZooModel` (any Pyro model is
wrapped first), ``data`` the model's checked data, ``method`` the registered name it runs under.
Its keyword-only parameters after ``method`` and ``guide`` are its options, with their defaults:
that is the declaration :func:`inference.fit` checks every call against.
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["MethodSpec", "register_method", "method_spec", "list_methods", "METHODS", "positive_int"]

_RESERVED = ("method", "guide")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its ``name``, the function that ``run``s it, its ``options`` (name ->
    default), whether it ``takes_guide`` and a one-line ``description``."""

    name: str
    run: Callable
    options: dict = field(default_factory=dict)
    takes_guide: bool = False
    description: str = ""


_METHODS: dict[str, MethodSpec] = {}
#: name -> description of every registered method
METHODS: dict[str, str] = {}


def register_method(name: str, *, description: str, takes_guide: bool = False):
    """Decorator registering ``run`` as the method ``name`` (see the module docstring)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a method name must be a non-empty string, got {name!r}")

    def deco(run: Callable) -> Callable:
        if name in _METHODS:
            raise ValueError(f"a method named {name!r} is already registered")
        params = inspect.signature(run).parameters
        if "method" not in params:
            raise TypeError(f"method {name!r}: its function must take the keyword-only argument 'method'")
        options = {p.name: p.default for p in params.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _RESERVED}
        missing = [p.name for p in params.values() if p.name in options and p.default is inspect.Parameter.empty]
        if missing:
            raise TypeError(f"method {name!r}: options {missing} need defaults")
        _METHODS[name] = MethodSpec(name, run, options, takes_guide, description)
        METHODS[name] = description
        return run

    return deco


def list_methods(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered methods, optionally filtered by a glob ``pattern``."""
    names = sorted(_METHODS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def method_spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name``; a ``ValueError`` listing the known methods otherwise."""
    if not isinstance(name, str) or name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(list_methods())}")
    return _METHODS[name]


def positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; a ``ValueError`` naming the option otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if minimum == 0:
            what = "a non-negative integer"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def non_negative_or_none(value, name: str):
    """``value`` when it is None or a number >= 0; a ``ValueError`` naming the option otherwise."""
    if value is not None and not value >= 0:
        raise ValueError(f"{name} must be non-negative or None, got {value}")
    return value
