"""Input validation shared by every model and algorithm.

Each check raises a ``ValueError`` (or ``TypeError``) whose message names the
problem, in the style of scikit-learn's ``check_array``.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["as_data_tensor", "check_n_components", "check_positive_int", "check_choice", "HALF_DTYPES",
           "is_working_float"]

#: floating dtypes the zoo never computes in (distributions, Cholesky factors and EM sums lack them or lose
#: too much): data in them is read like integer data, converted to the entry point's working dtype
HALF_DTYPES = (torch.float16, torch.bfloat16)


def is_working_float(t) -> bool:
    """Whether ``t`` is a tensor in a floating dtype the zoo computes in (float32, float64): such data
    keeps its dtype; half precision (:data:`HALF_DTYPES`) and integers are converted."""
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype not in HALF_DTYPES


def as_data_tensor(X, *, dtype=None, device=None, name: str = "data", allow_1d: bool = True) -> torch.Tensor:
    """Return ``X`` as a finite 2-D tensor of shape ``(n_samples, n_features)``.

    Accepts NumPy arrays, torch tensors and nested sequences. A 1-D input is read
    as ``n_samples`` univariate points when ``allow_1d`` is true. The dtype follows
    the input for float32 and float64 (float64 for anything else: integers, and half
    precision, float16 and bfloat16, which the zoo never computes in) unless ``dtype``
    is given; the device follows the input unless ``device`` is given.
    """
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be an array-like of numbers, got {type(X).__name__}")
    if isinstance(X, torch.Tensor):
        t = X
    else:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError) as exc:  # ragged sequences
            raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        t = torch.as_tensor(arr)
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
    if dtype is None:
        dtype = t.dtype if is_working_float(t) else torch.float64
    t = t.to(dtype=dtype, device=device if device is not None else t.device)
    if t.dim() == 1 and allow_1d:
        t = t.unsqueeze(-1)
    if t.dim() != 2:
        expected = "1-D or 2-D" if allow_1d else "2-D"
        raise ValueError(
            f"{name} must be {expected} with shape (n_samples, n_features), got {t.dim()}-D shape {tuple(t.shape)}"
        )
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: found array with 0 samples (shape {tuple(t.shape)})")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {tuple(t.shape)})")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = "NaN" if bool(torch.isnan(t).any()) else "infinity"
        raise ValueError(f"{name} contains {bad}: {int((~finite).sum())} non-finite values")
    return t


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_n_components(n_components: int, n_samples: int, name: str = "K") -> None:
    """K components need at least K data points."""
    if n_components > n_samples:
        raise ValueError(
            f"{name}={n_components} components is more than the n_samples={n_samples} data points"
        )


def check_choice(value, choices, name: str):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(map(repr, sorted(choices)))}")
    return value
