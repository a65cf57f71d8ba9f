"""``fit(model, data, method=..., guide=..., **options)``: one entry point for every method.

``model`` is any Pyro model: a callable ``model(data)`` (a function or a ``PyroModule``), a zoo
model, or a registered model name. ``method`` is a registered method (:func:`list_methods`); the
options it takes are its own (:func:`method_spec(method).options <method_spec>`), and an option
it does not take is a ``TypeError`` naming the ones it does. Every run returns a
:class:`FitResult`.
"""
from __future__ import annotations

from zoo import distributed
from zoo.base import as_model
from zoo.sources import as_source, is_source
from zoo.tracing import check_enumerated

from .methods import method_spec
from .result import FitResult

__all__ = ["fit", "SOURCE_METHODS", "DATA_PARALLEL_METHODS"]

#: the methods that read a chunk source (a memory map, a .npy path, a re-iterable of chunks) a chunk at a time
SOURCE_METHODS = ("em", "cavi")
#: the methods that fit the union of the ranks' shards when a torch.distributed group is active
DATA_PARALLEL_METHODS = ("svi", "map", "em", "cavi")


def fit(model, data, method: str = "svi", guide=None, **options) -> FitResult:
    """Fit ``model`` to ``data`` with ``method``.

    Parameters
    ----------
    model : a Pyro model callable ``model(data)``, a zoo model (``zoo.create_model(...)``) or a
        registered model name. Its latent, discrete and observed sites and its plates are found by
        tracing it; discrete sites must be marked ``infer={"enumerate": "parallel"}``.
    data : the model's data: a tensor (its device and dtype are the fit's) or an array-like (a tensor
        of torch's default dtype; a zoo model may convert differently, e.g. the mixtures to (N, D)).
        For ``"em"`` and ``"cavi"`` also a chunk source (:mod:`zoo.sources`: a memory-mapped array, a
        ``.npy`` path, a re-iterable of chunks), read a chunk at a time; the result's ``data`` is then
        the source's first chunk (the fitted values are of all of it). Under ``torchrun`` each rank
        passes its own shard and the fit is of their union (see :mod:`zoo.distributed`).
    method : ``"svi"``, ``"map"``, ``"nuts"``, ``"em"``, ``"coordinate"``, ``"cavi"``, ``"layerwise"``,
        ``"adversarial"`` (a GAN: draws of its generator, no posterior), or any other registered method.
    guide : for ``"svi"`` and ``"map"``: a registered guide name (``guides.list_guides()``) or your own
        guide callable. Other methods take none.
    options : the method's own options (see each method's docstring: ``inference.svi.fit_svi``,
        ``inference.nuts.fit_nuts``...); ``seed`` and ``progress_bar`` are taken by every method.
    """
    spec = method_spec(method)
    spec.check_options(options)  # every option against the method's declaration, before any work
    if guide is not None and not spec.takes_guide:
        raise TypeError(f"method {method!r} takes no guide (got {guide!r}); the methods that do: svi, map")
    if distributed.active() and method not in DATA_PARALLEL_METHODS:
        raise ValueError(f"method {method!r} runs in one process; in a torch.distributed group (world size "
                         f"{distributed.world_size()}) the methods that fit the union of the ranks' shards are "
                         f"{', '.join(DATA_PARALLEL_METHODS)}")
    model = as_model(model)
    if is_source(data):
        if method not in SOURCE_METHODS:
            raise ValueError(f"data given as a chunk source (a memory map, a .npy path or a re-iterable of chunks) "
                             f"are fitted by method 'em' or 'cavi', which read them a chunk at a time; method "
                             f"{method!r} needs an in-memory array")
        model.to(model.check_data(as_source(data).first_chunk()).device)
        return spec.run(model, data, method=method, **options)
    data = model.check_data(data)
    data = data.detach() if data.requires_grad else data  # data are constants of the fit
    model.to(data.device)
    check_enumerated(model.sites(data))
    if spec.takes_guide:
        options["guide"] = guide
    return spec.run(model, data, method=method, **options)
