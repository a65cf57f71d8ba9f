"""Discrete sites and autoguides.

Autoguides see every sample site of the model they trace. A mixture's
assignment must be summed out by enumeration and hidden from the guide; if it
is neither, the guide learns a point value for each datum's component and SVI
quietly collapses the mixture. :func:`check_discrete_sites` turns that trap into
an error and :func:`hide_discrete` hides the enumerated sites (both read the
model's traced structure, :mod:`zoo.tracing`).
"""
from __future__ import annotations

from zoo.tracing import check_enumerated, hide_discrete, model_sites

__all__ = ["discrete_latent_sites", "check_discrete_sites", "hide_discrete"]


def discrete_latent_sites(model, *args, **kwargs) -> dict[str, bool]:
    """Map each discrete, unobserved sample site of one trace of ``model`` to
    whether it is marked for enumeration."""
    sites = model_sites(model, *args, **kwargs)
    return {**{name: True for name in sites.discrete}, **{name: False for name in sites.unenumerated}}


def check_discrete_sites(model, *args, **kwargs) -> list[str]:
    """Return the enumerated discrete sites; raise ``ValueError`` for any that is not enumerated."""
    return check_enumerated(model_sites(model, *args, **kwargs))
