"""What a Pyro model is made of, found by running it: the structure behind the model protocol.

A Pyro model needs no declarations to be fitted here. One trace of ``model(data)`` tells its
continuous latent sites, its discrete sites (and whether each is marked for enumeration), its
observed sites and factors, how deeply its plates nest, and which plate indexes the data. The
same trace machinery gives the pointwise log-likelihood, log p(x_n | theta) with every
enumerated site summed out, for any such model.

Rules, stated once:

* latent sites: unobserved sample sites that are not subsample sites; *discrete* when their
  support is discrete, *enumerated* when marked ``infer={"enumerate": "parallel"}`` (or
  ``"sequential"``); the rest are *continuous*;
* observed sites: sites with ``obs=``; ``pyro.factor`` sites are *factors*, kept apart;
* the data plate: among the plates that hold every observed site, the one whose size is the
  data's first dimension (else the outermost of them); ``None`` when there is no common plate;
* the pointwise log-likelihood of datum n: the observed sites and factors inside the data plate
  together with the enumerated sites, summed over the enumerated values, at fixed values of the
  continuous latent sites. Sites outside the data plate are the prior's. A model without a data
  plate has one "datum": the whole data set (factors then count only when inside some plate).
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer.autoguide.initialization import InitMessenger
from pyro.infer.autoguide.initialization import init_to_median as _pyro_init_to_median
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.ops.rings import LogRing
from pyro.poutine.util import prune_subsample_sites, site_is_factor, site_is_subsample
from torch.distributions import transform_to

__all__ = ["ModelSites", "model_sites", "trace_model", "is_enumerated", "hide_discrete", "check_enumerated", "init_to_feasible",
           "init_to_median", "pointwise_log_likelihood"]


def is_enumerated(msg) -> bool:
    """Whether a sample message is marked for enumeration (parallel or sequential)."""
    return (msg.get("infer") or {}).get("enumerate") in ("parallel", "sequential")


def hide_discrete(model):
    """``model`` with every enumerated site hidden, ready for an autoguide to trace."""
    return poutine.block(model, hide_fn=lambda msg: msg["type"] == "sample" and is_enumerated(msg))


def init_to_feasible(site=None):
    """A point of the site's support, without drawing from it: the image of the unconstrained
    zero. Works for improper sites (``ImproperUniform``), which cannot be sampled."""
    if site is None:
        return init_to_feasible
    fn = site["fn"]
    t = transform_to(fn.support)
    like = site.get("value")
    shape = t.inverse_shape(fn.shape())
    dtype = like.dtype if isinstance(like, torch.Tensor) and like.is_floating_point() else torch.get_default_dtype()
    device = like.device if isinstance(like, torch.Tensor) else None
    value = t(torch.zeros(shape, dtype=dtype, device=device)).detach()
    value._pyro_custom_init = False
    return value


def init_to_median(site=None, num_samples: int = 15):
    """Pyro's ``init_to_median`` whose fallback needs no draw (:func:`init_to_feasible`), so that a
    model with an improper site (a flat prior, an ordered vector) can be started."""
    if site is None:
        return init_to_median
    try:
        return _pyro_init_to_median(site, num_samples=num_samples, fallback=init_to_feasible)
    except NotImplementedError:  # an improper distribution has no draws
        return init_to_feasible(site)


def _init_for_tracing(site):
    if site["fn"].support.is_discrete:
        return site["fn"].sample().detach()
    try:
        return site["fn"].sample().detach()
    except NotImplementedError:
        return init_to_feasible(site)


@dataclass(frozen=True)
class ObservedSite:
    """An observed site: its value's shape, how many of its right-most dims are event dims, and
    which axis of the value each plate indexes (axes counted from the left)."""

    name: str
    shape: tuple
    event_dim: int
    plate_axes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSites:
    """The structure of a Pyro model, from one trace of ``model(data)``.

    ``latent``: continuous latent sites (name -> value shape), in trace order; ``discrete``:
    enumerated discrete sites; ``unenumerated``: discrete latent sites *not* marked for
    enumeration; ``observed``: observed sites (:class:`ObservedSite`); ``factors``: names of
    ``pyro.factor`` sites; ``max_plate_nesting``: how many plates nest (enumeration uses the dims
    to their left); ``data_plate``: the plate of the data (name) or ``None``; ``plates``: name ->
    (size, dim) of every vectorised plate."""

    latent: dict
    discrete: tuple
    unenumerated: tuple
    observed: tuple
    factors: tuple
    max_plate_nesting: int
    data_plate: str | None
    plates: dict

    @property
    def latent_names(self) -> list[str]:
        return list(self.latent)

    @property
    def observed_names(self) -> list[str]:
        return [o.name for o in self.observed]


def trace_model(model, *args, keep_rng: bool = True, **kwargs):
    """One blocked trace of ``model``; improper latent sites get a feasible value. With
    ``keep_rng`` (the default) the global random state is left as it was; without it the trace
    draws from the global stream as running the model would."""
    devices = [a.device for a in args if isinstance(a, torch.Tensor) and a.is_cuda][:1]
    rng = torch.random.fork_rng(devices=devices) if keep_rng else contextlib.nullcontext()
    with rng, poutine.block():
        return poutine.trace(InitMessenger(_init_for_tracing)(model)).get_trace(*args, **kwargs)


def model_sites(model, *args, **kwargs) -> ModelSites:
    """Trace ``model(*args, **kwargs)`` once and read its structure (see the module docstring)."""
    try:
        trace = trace_model(model, *args, **kwargs)
    except (ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise type(exc)(f"tracing the model on the data failed: {exc}") from exc
    latent, discrete, unenumerated, observed, factors, plates = {}, [], [], [], [], {}
    depth = 0
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        for f in site["cond_indep_stack"]:
            if f.vectorized:
                plates.setdefault(f.name, (f.size, f.dim))
                depth = max(depth, -f.dim)
        if site["is_observed"]:
            if site_is_factor(site):
                factors.append(name)
                continue
            value = site["value"]
            event_dim = site["fn"].event_dim
            axes = {f.name: value.dim() - event_dim + f.dim for f in site["cond_indep_stack"]
                    if f.vectorized and value.dim() - event_dim + f.dim >= 0}
            observed.append(ObservedSite(name, tuple(value.shape), event_dim, axes))
        elif site["fn"].support.is_discrete:
            (discrete if is_enumerated(site) else unenumerated).append(name)
        else:
            latent[name] = tuple(site["value"].shape)
    data_plate = None
    if observed:
        common = set.intersection(*(set(o.plate_axes) for o in observed))
        n = args[0].shape[0] if args and isinstance(args[0], torch.Tensor) and args[0].dim() > 0 else None
        sized = [p for p in common if plates[p][0] == n]
        candidates = sized or sorted(common, key=lambda p: plates[p][1])  # outermost: most negative dim
        data_plate = candidates[0] if candidates else None
    return ModelSites(latent, tuple(discrete), tuple(unenumerated), tuple(observed), tuple(factors), depth,
                      data_plate, plates)


def check_enumerated(sites: ModelSites) -> list[str]:
    """The enumerated discrete sites; a ``ValueError`` for any discrete latent site that is not
    marked for enumeration (a guide would fit one point value per datum: the mixture collapses)."""
    if sites.unenumerated:
        raise ValueError(
            f"the model has discrete latent sites {sorted(sites.unenumerated)} that are not marked for "
            "enumeration; a guide would fit a point value per datum and the mixture collapses. Mark them with "
            "infer={'enumerate': 'parallel'} (or pyro.infer.config_enumerate) and fit with TraceEnum_ELBO."
        )
    return sorted(sites.discrete)


def _parallel(msg):
    # poutine.enum enumerates "parallel" sites; a "sequential" one is summed out the same way here
    return {"enumerate": "parallel"} if (msg.get("infer") or {}).get("enumerate") == "sequential" else {}


def _draw_shape(samples: dict, sites: ModelSites) -> torch.Size:
    for name, value in samples.items():
        if name in sites.latent:
            return value.shape[: value.dim() - len(sites.latent[name])]
    return torch.Size()


@torch.no_grad()
def pointwise_log_likelihood(model, samples: dict, data, sites: ModelSites) -> torch.Tensor:
    """log p(x_n | theta) for each draw of the continuous latent sites, the enumerated sites summed
    out: ``samples[site]`` of shape (*S, *site_shape) -> (*S, N) (N = 1 without a data plate)."""
    shape = _draw_shape(samples, sites)
    flat = {k: v.reshape((-1,) + tuple(v.shape[len(shape):])) for k, v in samples.items() if k in sites.latent}
    num = next(iter(flat.values())).shape[0] if flat else 1
    rows = [_log_likelihood_one(model, {k: v[i] for k, v in flat.items()}, data, sites) for i in range(num)]
    out = torch.stack(rows)
    return out.reshape(tuple(shape) + out.shape[1:])


def _log_likelihood_one(model, values: dict, data, sites: ModelSites) -> torch.Tensor:
    fn = poutine.enum(poutine.infer_config(poutine.condition(model, data=values), _parallel),
                      first_available_dim=-1 - sites.max_plate_nesting)
    with poutine.block():
        trace = prune_subsample_sites(poutine.trace(fn).get_trace(data))
    trace.compute_log_prob(site_filter=lambda name, site: name not in values)  # the likelihood's terms only
    trace.pack_tensors()
    target = frozenset()
    if sites.data_plate is not None:
        target = frozenset({trace.plate_to_symbol[sites.data_plate]})
    tree, sum_dims, dim_to_size = OrderedDict(), set(), {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or name in values:
            continue
        ordinal = frozenset(trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized)
        if not target <= ordinal or (not target and site_is_factor(site) and not ordinal):
            continue  # outside the data plate: a prior term
        if site["is_observed"]:
            term = packed.scale_and_mask(site["packed"]["unscaled_log_prob"], mask=site["packed"]["mask"])
        else:  # an enumerated site
            term = site["packed"]["unscaled_log_prob"]
        sum_dims.update(term._pyro_dims)
        dim_to_size.update(zip(term._pyro_dims, term.shape))
        tree.setdefault(ordinal, []).append(term)
    sum_dims -= set(trace.plate_to_symbol.values())  # what is left are the enumerated values
    n = sites.plates[sites.data_plate][0] if sites.data_plate is not None else 1
    if not tree:
        return torch.zeros(n, dtype=data.dtype if data.is_floating_point() else torch.get_default_dtype(),
                           device=data.device)
    result = contract_to_tensor(tree, sum_dims, target_ordinal=target, ring=LogRing(dim_to_size=dim_to_size))
    result = packed.unpack(result, trace.symbol_to_dim)
    return result.reshape(-1).expand(n) if result.numel() == 1 else result.reshape(n)
