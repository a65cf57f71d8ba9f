"""What every torch-backed estimator with scikit-learn's surface shares.

scikit-learn's conventions, kept once: parameters validated from a ``_parameter_constraints``
table (``self._validate_params()``, its messages); input validated by :func:`validate_tensor`
(NumPy, lists, data frames through scikit-learn's ``validate_data``; torch tensors on their own
device with the same checks and messages); the dtype following the input (float32 stays float32,
everything else becomes float64) unless a ``dtype`` parameter names one; pickling that stores
tensors on the CPU with the device they came from (:class:`TorchEstimatorMixin`); the checks of
scikit-learn's ``check_estimator`` an estimator fails by design, with the reasons
(:func:`expected_failed_checks`).
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch
from sklearn.utils._param_validation import Options, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._validation import check_device

__all__ = [
    "TorchEstimatorMixin", "TORCH_PARAMETER_CONSTRAINTS", "resolve_dtype", "validate_tensor",
    "expected_failed_checks", "as_param", "param_is_float32", "check_shape", "to_numpy",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, np.float32: torch.float32,
           np.float64: torch.float64, torch.float32: torch.float32, torch.float64: torch.float64}

#: The constraints (scikit-learn's ``_parameter_constraints`` entries) of the two parameters every
#: torch-backed estimator takes: where it computes and in which precision.
TORCH_PARAMETER_CONSTRAINTS: dict = {
    "device": [None, str, torch.device],
    "dtype": [None, StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64}),
              Options(torch.dtype, {torch.float32, torch.float64})],
}

def resolve_dtype(dtype) -> torch.dtype | None:
    """The torch dtype a ``dtype`` parameter names (None: follow the input)."""
    return None if dtype is None else _DTYPES[dtype]


def _map_tensors(obj, fn):
    """``obj`` with ``fn`` applied to every tensor inside dicts, lists, tuples and dataclasses."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _map_tensors(getattr(obj, f.name), fn) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj


class TorchEstimatorMixin:
    """Pickling for estimators that hold torch tensors: the tensors are stored on the CPU with the
    device they were fitted on, and come back on that device when it exists here (CUDA tensors
    load on the CPU on a machine without CUDA). Also the input validation, with scikit-learn's
    messages, and the fitted check."""

    #: scikit-learn's estimator checks that the estimator fails on purpose: check name -> reason
    #: (read by :func:`expected_failed_checks`; the README lists them).
    _expected_failed_checks: dict = {}

    def __getstate__(self):
        state = super().__getstate__()
        return _map_tensors(state, lambda t: t.detach().cpu())

    def __setstate__(self, state):
        device = state.get("_fit_device")
        if device is not None:
            device = _available(torch.device(device))
            state = _map_tensors(state, lambda t: t.to(device))
            state["_fit_device"] = device
        super().__setstate__(state)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_iter_")

    def _validate_data(self, X, *, reset, ensure_min_samples=1):
        """``X`` as a validated ``(n_samples, n_features)`` tensor (scikit-learn's checks and
        messages). When fitting (``reset``) the dtype follows the input (float32 stays float32,
        float64 and every other type become float64) unless the ``dtype`` parameter names one,
        and the device is the ``device`` parameter or the input's; afterwards both are the
        fitted ones."""
        if reset:
            dtype, device = resolve_dtype(getattr(self, "dtype", None)), getattr(self, "device", None)
            device = check_device(device)  # an unknown name, or CUDA on a machine without it: a clear ValueError
        else:
            check_is_fitted(self)
            dtype, device = self._fit_dtype, self._fit_device
        X = validate_tensor(self, X, reset=reset, dtype=dtype, device=device, ensure_min_samples=ensure_min_samples)
        if reset:
            self._fit_dtype, self._fit_device = X.dtype, X.device
        return X


def expected_failed_checks(estimator) -> dict:
    """The checks of scikit-learn's ``check_estimator`` that ``estimator`` fails by design, each
    with its reason: pass it as ``expected_failed_checks`` to ``check_estimator`` (the dict) or
    ``parametrize_with_checks`` (this function)."""
    return dict(type(estimator)._expected_failed_checks)


def _available(device: torch.device) -> torch.device:
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        return torch.device("cpu")
    return device


_RESHAPE = ("Reshape your data either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample.")


def validate_tensor(estimator, X, *, reset: bool, dtype=None, device=None, ensure_min_samples=1) -> torch.Tensor:
    """scikit-learn's ``validate_data`` for torch tensors and array-likes alike.

    Array-likes (NumPy, lists, data frames, sparse matrices) go through scikit-learn's own
    ``validate_data`` (so ``n_features_in_``, ``feature_names_in_`` and every message are its
    own) and become tensors sharing their memory where possible. A torch tensor stays on its
    device (or moves to ``device``) and gets the same checks with the same messages. ``dtype``
    None keeps float32 and float64 and turns anything else into float64."""
    name = type(estimator).__name__
    if not isinstance(X, torch.Tensor):
        np_dtype = [np.float64, np.float32] if dtype is None else \
            (np.float32 if dtype == torch.float32 else np.float64)
        arr = validate_data(estimator, X, reset=reset, dtype=np_dtype, ensure_min_samples=ensure_min_samples)
        with warnings.catch_warnings():  # a read-only array (a memmap): the estimators never write into X
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(arr, device=device)
    if X.is_complex():
        raise ValueError(f"Complex data not supported\n{X}\n")
    if X.dim() == 0:
        raise ValueError(f"Expected 2D array, got scalar array instead:\narray={X}.\n{_RESHAPE}")
    if X.dim() == 1:
        raise ValueError(f"Expected 2D array, got 1D array instead:\narray={X}.\n{_RESHAPE}")
    if X.dim() > 2:
        raise ValueError(f"Found array with dim {X.dim()}, while dim <= 2 is required by {name}.")
    if dtype is None:
        dtype = X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float64
    X = X.detach().to(dtype=dtype, device=device if device is not None else X.device)
    n, d = X.shape
    if n < ensure_min_samples:
        raise ValueError(f"Found array with {n} sample(s) (shape={tuple(X.shape)}) while a minimum of "
                         f"{ensure_min_samples} is required by {name}.")
    if d < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
                         f"required by {name}.")
    if not bool(torch.isfinite(X).all()):
        if bool(torch.isnan(X).any()):
            raise ValueError(f"Input X contains NaN.\n{name} does not accept missing values encoded as NaN "
                             "natively.")
        raise ValueError(f"Input X contains infinity or a value too large for dtype('{str(dtype)[6:]}').")
    if reset:
        estimator.n_features_in_ = d
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif d != estimator.n_features_in_:
        raise ValueError(f"X has {d} features, but {name} is expecting {estimator.n_features_in_} features "
                         "as input.")
    return X


def as_param(value, name, device) -> torch.Tensor:
    """A user-given parameter (array-like or tensor) as a finite float64 tensor on ``device``,
    checked by scikit-learn's ``check_array`` (its messages). The given precision is kept in
    ``.given_float32`` semantics by :func:`param_is_float32`."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = check_array(value, dtype=[np.float64, np.float32], ensure_2d=False, allow_nd=True, input_name=name)
    return torch.as_tensor(arr, dtype=torch.float64, device=device)


def param_is_float32(value) -> bool:
    """Whether a user-given parameter is in single precision (its checks then use float32
    tolerances, as scikit-learn's)."""
    dtype = getattr(value, "dtype", None)
    return dtype in (torch.float32, np.float32)


def check_shape(t, shape, name):
    """scikit-learn's message for a parameter of the wrong shape (``name`` as it says it:
    'weights', 'means', 'precisions', ...)."""
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"The parameter '{name}' should have the shape of {tuple(shape)}, but got "
                         f"{tuple(t.shape)}")


def to_numpy(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A fitted attribute: ``t`` as a NumPy array of the model dtype (float32 or float64)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    return t.detach().to("cpu", torch.float64).numpy().astype(np_dtype)
