"""Variational families, swapped by one string: ``make_guide(name, model)``.

A guide factory reads only the model protocol (:mod:`zoo.base`): any Pyro model callable, or a
zoo model with its optional ``custom_guide`` and ``supported_guides``.
"""
import zoo as _zoo  # noqa: F401  (applies the project's Pyro settings)

from .discrete import check_discrete_sites, discrete_latent_sites, hide_discrete
from .registry import GuideSpec, check_guide_options, guide_spec, guides_for, list_guides, make_guide, register_guide

__all__ = ["make_guide", "list_guides", "register_guide", "guide_spec", "guides_for", "GuideSpec",
           "hide_discrete", "check_discrete_sites", "discrete_latent_sites", "check_guide_options"]
