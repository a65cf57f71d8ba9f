"""Discrete sites and autoguides.

Autoguides see every sample site of the model they trace. A mixture's
assignment must be summed out by enumeration and hidden from the guide; if it
is neither, the guide learns a point value for each datum's component and SVI
quietly collapses the mixture. :func:`check_discrete_sites` turns that trap into
an error and :func:`hide_discrete` hides the enumerated sites.
"""
from __future__ import annotations

import pyro.poutine as poutine

__all__ = ["discrete_latent_sites", "check_discrete_sites", "hide_discrete"]


def _is_enumerated(msg) -> bool:
    return (msg.get("infer") or {}).get("enumerate") in ("parallel", "sequential")


def discrete_latent_sites(model, *args, **kwargs) -> dict[str, bool]:
    """Map each discrete, unobserved sample site of one trace of ``model`` to
    whether it is marked for enumeration."""
    with poutine.block():
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    found = {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        support = getattr(site["fn"], "support", None)
        if support is not None and getattr(support, "is_discrete", False):
            found[name] = _is_enumerated(site)
    return found


def check_discrete_sites(model, *args, **kwargs) -> list[str]:
    """Return the enumerated discrete sites; raise ``ValueError`` for any that is not enumerated."""
    found = discrete_latent_sites(model, *args, **kwargs)
    missing = sorted(name for name, enumerated in found.items() if not enumerated)
    if missing:
        raise ValueError(
            f"the model has discrete latent sites {missing} that are not marked for enumeration; "
            "a guide would fit a point value per datum and the mixture collapses. Mark them with "
            "infer={'enumerate': 'parallel'} (or pyro.infer.config_enumerate) and fit with TraceEnum_ELBO."
        )
    return sorted(found)


def hide_discrete(model):
    """``model`` with every enumerated site hidden, ready for an autoguide to trace."""
    return poutine.block(model, hide_fn=lambda msg: msg["type"] == "sample" and _is_enumerated(msg))
