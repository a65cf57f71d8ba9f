"""The fitting methods, a registry like the models' and the guides': ``@register_method`` on a
function, ``method_spec(name)`` to describe it, ``list_methods()`` to see them all.

A method is a function ``run(model, data, *, method, guide=None, **options)`` returning a
:class:`~inference.result.FitResult`: ``model`` is a :class:`zoo.base.ZooModel` (any Pyro model is
wrapped first), ``data`` the model's checked data, ``method`` the registered name it runs under.
Its keyword-only parameters after ``method`` and ``guide`` are its options, with their defaults, and
what each accepts is declared on the function with :func:`zoo._validation.declare` (the shared
declarations are below: ``NUM_STEPS``, ``LR``, ``SEED``...). That is what :func:`inference.fit` (and
:func:`inference.compare`, for the options it passes on) checks every call against, before any work
starts: an option the method does not take is a ``TypeError`` naming the ones it does, a value its
declaration refuses a ``TypeError`` or ``ValueError`` naming the option.
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Callable

from zoo._validation import Bool, Int, Mapping, OutputPath, Pair, Real, Seed, constraints_of

__all__ = ["MethodSpec", "register_method", "method_spec", "list_methods", "METHODS", "positive_int",
           "check_options"]

# --- the declarations the methods share ------------------------------------------------------------
#: iterations, sweeps or steps
NUM_STEPS = Int(ge=1, what="a positive integer")
#: Adam's step size: above 10 a step moves every parameter by more than 10 units, which never fits anything
LR = Real(gt=0, le=10, what="positive and at most 10")
#: a relative tolerance for stopping, None to run every step
TOL = Real(ge=0, none=True)
#: Adam's two decay rates
BETAS = Pair(Real(ge=0, lt=1))
SEED = Seed()
PROGRESS_BAR = Bool()
POSITIVE_INT = Int(ge=1, what="a positive integer")
CHECKPOINT = OutputPath(none=True)
OPTIONS_DICT = Mapping(none=True)

_RESERVED = ("method", "guide")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its ``name``, the function that ``run``s it, its ``options`` (name ->
    default), whether it ``takes_guide``, a one-line ``description`` and the ``constraints`` declared
    on its options (name -> :class:`zoo._validation.Constraint`)."""

    name: str
    run: Callable
    options: dict = field(default_factory=dict)
    takes_guide: bool = False
    description: str = ""
    constraints: dict = field(default_factory=dict)

    def check_options(self, options: dict) -> None:
        """Refuse, before any work, an option this method does not take (``TypeError`` naming the ones it
        does) and a value its declaration refuses (``TypeError``/``ValueError`` naming the option)."""
        if not isinstance(options, dict):
            raise TypeError(f"the options of method {self.name!r} must be a dict, got {type(options).__name__}")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"method {self.name!r} does not take the option(s) {', '.join(map(repr, unknown))}; "
                            f"its options: {', '.join(self.options)}")
        for name, value in options.items():
            constraint = self.constraints.get(name)
            if constraint is not None:
                constraint(value, name)


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
        declared = {k: v for k, v in constraints_of(run).items() if k in options}
        _METHODS[name] = MethodSpec(name, run, options, takes_guide, description, declared)
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


def check_options(method: str, options: dict) -> None:
    """``method_spec(method).check_options(options)``: the options of a ``fit(method=...)`` call checked
    against the method's declaration, before any work (see :meth:`MethodSpec.check_options`)."""
    method_spec(method).check_options(options)


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
