"""Declared parameter constraints: the one validation layer at the public surface.

A public function or constructor states what each of its parameters accepts, next to its
signature, instead of checking them by hand in its body::

    @declare(n_components=Int(ge=1), concentration=Real(gt=0), covariance_type=Choice("diag", "full"))
    def __init__(self, n_components=2, *, concentration=0.5, covariance_type="diag"): ...

Every argument the caller passes is checked before the body runs (the defaults are trusted); an
argument the function does not take is a ``TypeError`` listing the ones it does. A wrong type is a
``TypeError``, a value of the right type that is out of range, NaN or infinite is a ``ValueError``;
both messages name the parameter. Nothing is converted from another type: ``"0.5"`` is not a number,
``True`` is not an integer (NumPy scalars and 0-d arrays are numbers; a NumPy integer is passed on as
an ``int``). The constraints are kept on the function (``constraints_of(fn)``), so that the model
and method registries, the tests and the documentation read the same declaration.

Where the declarations live: each model class's ``__init__`` (``create_model`` reaches them through
the factory), the data generators in :mod:`zoo.datasets`, each method's function in ``inference``
(``method_spec(name).constraints``, checked by ``fit`` and ``compare`` before any work), each guide
factory in ``guides.registry`` (``guide_kwargs``) and the views. A new model or method declares its
own parameters the same way; the test suite fails for one of the project's own that leaves a
parameter undeclared, and fuzzes every declared one with values its declaration refuses.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Constraint", "Real", "Int", "Choice", "Bool", "Sizes", "Pair", "InstanceOf", "IsCallable", "Mapping",
    "ArrayLike", "FilePath", "OutputPath", "Seed", "RandomState", "Device", "AnyOf", "Unchecked",
    "declare", "constraints_of", "check_device", "SEED_LIMIT",
]

#: seeds must be below this: Pyro seeds NumPy's legacy generator, which takes 32-bit seeds
SEED_LIMIT = 2 ** 32


def _got(value) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})" if not isinstance(value, (int, float)) or isinstance(value, bool) \
        else text


class Constraint:
    """What one parameter accepts. ``none``: ``None`` is accepted too; ``what``: the phrase that
    describes an accepted value in messages (default: the constraint's own). Subclasses write
    :meth:`check` (raise, or return nothing) and :meth:`describe` (a noun phrase)."""

    none: bool = False
    what: str | None = None

    def __call__(self, value, name: str):
        if value is None:
            if self.none:
                return
            raise TypeError(f"{name} must be {self.description()}, got None")
        self.check(value, name)

    def description(self) -> str:
        text = self.what or self.describe()
        return f"{text} or None" if self.none else text

    def describe(self) -> str:  # pragma: no cover - every constraint has its own
        raise NotImplementedError

    def check(self, value, name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def normalize(self, value):
        """The accepted ``value`` as the function receives it (itself, unless a constraint says otherwise)."""
        return value

    def type_error(self, value, name: str) -> TypeError:
        return TypeError(f"{name} must be {self.description()}, got {_got(value)}")

    def value_error(self, value, name: str, why: str = "") -> ValueError:
        return ValueError(f"{name} must be {self.description()}, got {_got(value)}" + (f": {why}" if why else ""))

    def __repr__(self):
        return f"<{type(self).__name__}: {self.description()}>"


def _as_scalar(value):
    """A Python number from an int/float (not a bool), a NumPy scalar or a 0-d real array/tensor; else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return value
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
        kind = value.dtype
        real = (value.is_floating_point() or not (value.is_complex() or kind == torch.bool)) \
            if isinstance(value, torch.Tensor) else (np.issubdtype(kind, np.number) and not np.iscomplexobj(value))
        return value.item() if real else None
    return None


def _range_phrase(gt, ge, lt, le) -> str:
    """How an out-of-range value is told: 'positive', 'non-negative', '>= 1', 'in (0, 1]'..."""
    if gt == 0 and ge is None and lt is None and le is None:
        return "positive"
    if ge == 0 and gt is None and lt is None and le is None:
        return "non-negative"
    return _bounds_text(gt, ge, lt, le)


def _num(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _bounds_text(gt, ge, lt, le) -> str:
    lower = f"> {_num(gt)}" if gt is not None else f">= {_num(ge)}" if ge is not None else None
    upper = f"< {_num(lt)}" if lt is not None else f"<= {_num(le)}" if le is not None else None
    if lower and upper:
        lo, hi = ("(", gt) if gt is not None else ("[", ge)
        close, top = (")", lt) if lt is not None else ("]", le)
        return f"in {lo}{_num(hi)}, {_num(top)}{close}"
    return lower or upper or ""


class _Bounded(Constraint):
    """A number within bounds: a wrong type is told with the kind and the bounds ('a real number > 0'),
    an out-of-range value with the range ('positive', '>= 1', 'in (0, 1)') or ``what``."""

    kind = "a number"

    def __init__(self, *, gt=None, ge=None, lt=None, le=None, none: bool = False, what: str | None = None):
        self.gt, self.ge, self.lt, self.le, self.none, self.what = gt, ge, lt, le, none, what

    def describe(self):
        if self.what:
            return self.what
        bounds = _bounds_text(self.gt, self.ge, self.lt, self.le)
        return self.kind + (f" {bounds}" if bounds else "")

    def type_error(self, value, name) -> TypeError:
        bounds = _bounds_text(self.gt, self.ge, self.lt, self.le)
        kind = self.kind + (f" {bounds}" if bounds else "") + (" or None" if self.none else "")
        return TypeError(f"{name} must be {kind}, got {_got(value)}")

    def _in_range(self, x) -> bool:
        return not ((self.gt is not None and not x > self.gt) or (self.ge is not None and not x >= self.ge)
                    or (self.lt is not None and not x < self.lt) or (self.le is not None and not x <= self.le))

    def range_error(self, value, name) -> ValueError:
        phrase = self.what or _range_phrase(self.gt, self.ge, self.lt, self.le)
        return ValueError(f"{name} must be {phrase}, got {_got(value)}")


class Real(_Bounded):
    """A real number (int, float, NumPy scalar, 0-d array or tensor; not a bool, not a string), finite,
    within the given bounds."""

    kind = "a real number"

    def check(self, value, name):
        x = _as_scalar(value)
        if x is None:
            raise self.type_error(value, name)
        if not math.isfinite(x):
            raise ValueError(f"{name} must be {self.what or 'a finite number'}, got {_got(value)}")
        if not self._in_range(x):
            raise self.range_error(value, name)


class Int(_Bounded):
    """An integer (int or NumPy integer; not a bool, not a float such as 2.0) within the given bounds.
    A NumPy integer is passed on as a Python ``int`` (what ``random.seed`` and friends take)."""

    kind = "an integer"

    def normalize(self, value):
        return int(value) if isinstance(value, np.integer) else value

    def check(self, value, name):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise self.type_error(value, name)
        if not self._in_range(int(value)):
            raise self.range_error(value, name)


class Seed(Int):
    """A seed: an integer in [0, 2**32)."""

    def __init__(self, *, none: bool = False):
        super().__init__(ge=0, lt=SEED_LIMIT, none=none)

    def describe(self):
        return "an integer in [0, 2**32)"

    def range_error(self, value, name) -> ValueError:
        return ValueError(f"{name} must be an integer in [0, 2**32), got {_got(value)}")

    def type_error(self, value, name) -> TypeError:
        return TypeError(f"{name} must be {self.description()}, got {_got(value)}")


def _same(value, choice) -> bool:
    """``value`` is ``choice``: equal and of the same kind (a string is not a number, a bool is not 1)."""
    if value is choice:
        return True
    if isinstance(value, (bool, np.bool_)) != isinstance(choice, bool):
        return False
    if isinstance(value, str) != isinstance(choice, str):
        return False
    try:
        return bool(value == choice)
    except Exception:  # an array's == is not one bool
        return False


class Choice(Constraint):
    """One of the listed values (compared with ``==``; a value of another type is a ``ValueError`` too,
    listing the choices)."""

    def __init__(self, *choices, none: bool = False):
        if len(choices) == 1 and isinstance(choices[0], (tuple, list, set, frozenset, dict)):
            choices = tuple(choices[0])
        self.choices, self.none = tuple(choices), none

    def describe(self):
        return "one of " + ", ".join(map(repr, self.choices))

    def check(self, value, name):
        if not any(_same(value, c) for c in self.choices):
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            known = sorted(self.choices) if all(isinstance(c, str) for c in self.choices) else self.choices
            raise ValueError(f"unknown {name} {shown}; known: {', '.join(map(repr, known))}")


class Bool(Constraint):
    """``True`` or ``False`` (a NumPy bool too; not 0 or 1, not a string)."""

    def __init__(self, *, none: bool = False):
        self.none = none

    def describe(self):
        return "True or False"

    def check(self, value, name):
        if not isinstance(value, (bool, np.bool_)):
            raise self.type_error(value, name)


class Sizes(Constraint):
    """Layer sizes: an int (one layer) or a tuple/list of positive ints, with at least ``min_len``."""

    def __init__(self, *, min_len: int = 0, none: bool = False):
        self.min_len, self.none = min_len, none

    def describe(self):
        return "a positive integer or a tuple of positive integers" + (
            f" (at least {self.min_len})" if self.min_len > 1 else "")

    def check(self, value, name):
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            value = (value,)
        if not isinstance(value, (tuple, list)):
            raise self.type_error(value, name)
        for v in value:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise self.type_error(value, name)
            if v < 1:
                raise self.value_error(value, name)
        if len(value) < self.min_len:
            count = "one layer" if self.min_len == 1 else f"{self.min_len} layers"
            raise ValueError(f"{name} needs at least {count}, got {_got(value)}")


class Pair(Constraint):
    """A tuple or list of ``length`` items, each meeting ``item``."""

    def __init__(self, item: Constraint, length: int = 2, *, none: bool = False):
        self.item, self.length, self.none = item, length, none

    def describe(self):
        count = {2: "two", 3: "three"}.get(self.length, str(self.length))
        item = self.item
        if isinstance(item, _Bounded) and not item.what:
            bounds = _bounds_text(item.gt, item.ge, item.lt, item.le)
            kind = "numbers" if isinstance(item, Real) else "integers"
            return f"{count} {kind}" + (f", each {bounds}" if bounds else "")
        return f"{count} items, each {item.description()}"

    def check(self, value, name):
        if not isinstance(value, (tuple, list)):
            raise self.type_error(value, name)
        if len(value) != self.length:
            raise self.value_error(value, name)
        for i, v in enumerate(value):
            try:
                self.item(v, f"{name}[{i}]")
            except TypeError:
                raise self.type_error(value, name) from None
            except ValueError:
                raise self.value_error(value, name) from None


class InstanceOf(Constraint):
    """An instance of one of ``types``; ``what`` describes them."""

    def __init__(self, *types, what: str | None = None, none: bool = False):
        self.types, self.none = types, none
        self.what = what or " or ".join(f"a {t.__name__}" for t in types)

    def describe(self):
        return self.what

    def check(self, value, name):
        if not isinstance(value, self.types):
            raise self.type_error(value, name)


class IsCallable(Constraint):
    def __init__(self, *, what: str = "a callable", none: bool = False):
        self.what, self.none = what, none

    def describe(self):
        return self.what

    def check(self, value, name):
        if not callable(value):
            raise self.type_error(value, name)


class Mapping(Constraint):
    """A dict with string keys; ``values`` (a constraint) checks every value, named ``name[key]``."""

    def __init__(self, values: Constraint | None = None, *, what: str = "a dict", none: bool = False):
        self.values, self.what, self.none = values, what, none

    def describe(self):
        return self.what

    def check(self, value, name):
        if not isinstance(value, dict):
            raise self.type_error(value, name)
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{name} must have string keys, got the key {_got(k)}")
            if self.values is not None:
                self.values(v, f"{name}[{k!r}]")


class ArrayLike(Constraint):
    """Numbers as an array (a NumPy array, a tensor, a nested list or a scalar): real, finite, of
    ``ndim`` dimensions when given."""

    def __init__(self, *, ndim: int | tuple | None = None, what: str | None = None, none: bool = False):
        self.ndim = (ndim,) if isinstance(ndim, int) else ndim
        self.what, self.none = what, none

    def describe(self):
        if self.what:
            return self.what
        dims = "" if self.ndim is None else " or ".join(f"{d}-D" for d in self.ndim) + " "
        return f"a finite real {dims}array"

    def check(self, value, name):
        if isinstance(value, (str, bytes, dict, set)) or isinstance(value, (bool, np.bool_)):
            raise self.type_error(value, name)
        if isinstance(value, torch.Tensor):
            if value.is_complex() or value.dtype == torch.bool:
                raise self.type_error(value, name)
            arr = value.detach()
            finite = bool(torch.isfinite(arr).all()) if arr.is_floating_point() else True
            ndim = arr.dim()
        else:
            try:
                arr = np.asarray(value)
            except (ValueError, TypeError):
                raise self.value_error(value, name, "not a rectangular array of numbers") from None
            if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) \
                    or np.iscomplexobj(arr):
                raise self.type_error(value, name)
            finite = bool(np.isfinite(arr).all())
            ndim = arr.ndim
        if self.ndim is not None and ndim not in self.ndim:
            raise self.value_error(value, name, f"it is {ndim}-D")
        if not finite:
            a = value.detach().double().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(arr, float)
            bad = "NaN" if np.isnan(a).any() else "infinity"
            raise ValueError(f"{name} contains {bad}: {int((~np.isfinite(a)).sum())} non-finite values")


def _check_path_type(constraint, value, name) -> Path:
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise constraint.type_error(value, name)
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{name} is an empty path")
    return Path(value)


class FilePath(Constraint):
    """The path (``str`` or ``os.PathLike``) of an existing, readable file (not a folder); ``noun`` names
    the kind of file in messages."""

    def __init__(self, *, noun: str = "file", none: bool = False):
        self.noun, self.none = noun, none

    def describe(self):
        return f"the path of an existing {self.noun} (str or os.PathLike)"

    def check(self, value, name):
        path = _check_path_type(self, value, name)
        if path.is_dir():
            raise ValueError(f"{name} {str(path)!r} is a folder, not a {self.noun}")
        if not path.is_file():
            raise ValueError(f"{name}: no {self.noun} at {str(path)!r}")
        if not os.access(path, os.R_OK):
            raise ValueError(f"{name}: the {self.noun} {str(path)!r} is not readable (permission denied)")


class OutputPath(Constraint):
    """The path (``str`` or ``os.PathLike``) of a file to write: not a folder; its folder exists or can
    be created (the nearest existing ancestor is a writable folder)."""

    def __init__(self, *, none: bool = False):
        self.none = none

    def describe(self):
        return "the path of a file to write (str or os.PathLike)"

    def check(self, value, name):
        path = _check_path_type(self, value, name)
        if path.is_dir():
            raise ValueError(f"{name} {str(path)!r} is a folder; give the path of a file inside it")
        if path.exists() and not os.access(path, os.W_OK):
            raise ValueError(f"{name}: the file {str(path)!r} is not writable (permission denied)")
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise ValueError(f"{name} {str(path)!r}: {str(parent)!r} is a file, so no folder can be made there")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"{name} {str(path)!r}: the folder {str(parent)!r} is not writable (permission denied)")


class RandomState(Constraint):
    """A seed for NumPy: ``None``, an integer in [0, 2**32) or a ``numpy.random.Generator`` /
    ``RandomState`` (``generators=False``: no Generator, for scikit-learn)."""

    def __init__(self, *, generators: bool = True):
        self.none, self.generators = True, generators

    def describe(self):
        kinds = "a numpy.random.Generator or RandomState" if self.generators else "a numpy.random.RandomState"
        return f"an integer seed in [0, 2**32) or {kinds}"

    def check(self, value, name):
        kinds = (np.random.RandomState, np.random.Generator) if self.generators else (np.random.RandomState,)
        if isinstance(value, kinds):
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise self.type_error(value, name)
        if not 0 <= value < SEED_LIMIT:
            raise self.value_error(value, name)


def check_device(device, name: str = "device") -> torch.device | None:
    """``device`` (None, a string or a ``torch.device``) as a ``torch.device`` that exists here: an unknown
    name or a device this machine or PyTorch build lacks (``"cuda"`` without CUDA) is a ``ValueError``."""
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be None, a device name such as 'cpu' or 'cuda', or a torch.device, "
                        f"got {_got(device)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown {name} {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {str(device)!r} needs CUDA, which is not available here "
                             f"(torch.cuda.is_available() is False); use device='cpu' or None")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"{name} {str(device)!r} is not available here; use device='cpu' or None")
    elif dev.type not in ("cpu", "meta"):
        backend = getattr(torch, dev.type, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise ValueError(f"{name} {str(device)!r} is not available here; use device='cpu' or None")
    return dev


class Device(Constraint):
    """``None``, a device name or a ``torch.device`` that exists on this machine (see :func:`check_device`)."""

    def __init__(self):
        self.none = True

    def describe(self):
        return "None, a device name such as 'cpu' or 'cuda', or a torch.device"

    def check(self, value, name):
        check_device(value, name)


class AnyOf(Constraint):
    """Meets one of ``options``. A value none accepts: the ``ValueError`` of the option whose type it
    has (it was the right kind, out of range), else a ``TypeError`` listing them all."""

    def __init__(self, *options: Constraint, what: str | None = None, none: bool = False):
        self.options, self.what, self.none = options, what, none

    def describe(self):
        return self.what or " or ".join(o.description() for o in self.options)

    def check(self, value, name):
        value_errors = []
        for option in self.options:
            try:
                option(value, name)
                return
            except ValueError as exc:
                value_errors.append(exc)
            except TypeError:
                pass
        specific = [e for e in value_errors if not str(e).startswith("unknown ")]
        if specific:
            raise ValueError(f"{name} must be {self.description()}; {specific[0]}") from None
        if value_errors:  # a name none of the choices knows
            raise ValueError(f"{value_errors[0]} ({name} must be {self.description()})") from None
        raise self.type_error(value, name)


class Unchecked(Constraint):
    """Accepted as it is, for a declared reason (``why``): e.g. a user's callable checked where it is used."""

    def __init__(self, why: str):
        self.why, self.none = why, True

    def describe(self):
        return f"anything ({self.why})"

    def check(self, value, name):
        return


def _owner(fn) -> str:
    qual = fn.__qualname__
    return qual[: -len(".__init__")] if qual.endswith(".__init__") else qual


def declare(**constraints: Constraint):
    """Decorator: check the arguments of every call against ``constraints`` (parameter name ->
    :class:`Constraint`) before the body runs. See the module docstring."""

    def deco(fn):
        sig = inspect.signature(fn)
        params = sig.parameters
        unknown = sorted(set(constraints) - set(params))
        if unknown:
            raise TypeError(f"{fn.__qualname__}: constraints declared for parameters it does not have: {unknown}")
        bad = [k for k, v in constraints.items() if not isinstance(v, Constraint)]
        if bad:
            raise TypeError(f"{fn.__qualname__}: the constraints of {bad} are not Constraint objects")
        owner = _owner(fn)
        names = [p.name for p in params.values() if p.name != "self"
                 and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        var_kw = next((p.name for p in params.values() if p.kind is inspect.Parameter.VAR_KEYWORD), None)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                takes = f"its parameters: {', '.join(names)}" if names else "it takes no parameters"
                raise TypeError(f"{owner}: {exc}; {takes}") from None
            changed = False
            for name, value in bound.arguments.items():
                constraint = constraints.get(name)
                if constraint is not None:
                    constraint(value, name)
                    if value is not None:
                        new = constraint.normalize(value)
                        if new is not value:
                            bound.arguments[name], changed = new, True
                elif name == var_kw:
                    for k, v in value.items():
                        if k in constraints:
                            constraints[k](v, k)
            return fn(*bound.args, **bound.kwargs) if changed else fn(*args, **kwargs)

        wrapper.__constraints__ = dict(constraints)
        return wrapper

    return deco


def constraints_of(fn) -> dict:
    """The declared constraints of ``fn`` (a function, or a class: its ``__init__``); ``{}`` if none."""
    if isinstance(fn, type):
        fn = fn.__init__
    return dict(getattr(fn, "__constraints__", {}))
