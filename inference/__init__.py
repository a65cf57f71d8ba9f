"""Algorithms over the model protocol: ``fit`` with a registered method (svi, map, nuts, em, cavi,
coordinate, layerwise, adversarial), the ELBO estimators, ``compare`` (guides against a reference) and ArviZ views.

Any Pyro model can be fitted: ``fit(model_fn, data, method="nuts")``.
"""
import zoo as _zoo  # noqa: F401  (applies the project's Pyro settings)

from .checkpoint import atomic_save, load_checkpoint, staged_output
from .methods import METHODS, MethodSpec, check_options, list_methods, method_spec, register_method
from .result import FitResult
from .elbo import ESTIMATORS, elbo_for, gradient_variance, make_elbo
from .reparam_elbo import ReparamELBO
from .iwae import ImportanceWeightedELBO
from . import svi, nuts, pyro_em, cavi, coordinate, layerwise, adversarial  # noqa: F401  (each registers its method)
from .fit import fit
from .compare import Comparison, compare
from . import views

__all__ = ["fit", "list_methods", "method_spec", "register_method", "MethodSpec", "METHODS", "FitResult", "check_options",
           "make_elbo", "elbo_for", "ESTIMATORS", "ReparamELBO", "ImportanceWeightedELBO", "gradient_variance",
           "atomic_save", "load_checkpoint", "staged_output", "compare", "Comparison", "views"]
