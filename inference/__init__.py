"""Algorithms: SVI, MAP and NUTS through one ``fit``; results convert to ArviZ."""
import zoo as _zoo  # noqa: F401  (applies the project's Pyro settings)

from .checkpoint import atomic_save, load_checkpoint, staged_output
from .fit import METHODS, fit, list_methods
from .result import FitResult
from .compare import Comparison, compare
from . import views


__all__ = ["fit", "list_methods", "METHODS", "FitResult", "atomic_save", "load_checkpoint", "staged_output", "compare", "Comparison", "views"]
