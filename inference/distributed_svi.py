"""Data-parallel SVI: the fit one process would run on the union of the ranks' shards.

When a ``torch.distributed`` group with more than one process is active (:mod:`zoo.distributed`),
:func:`inference.svi.fit_svi` treats the data each rank passes as its shard of one data set, the
shards stacked in rank order: rank r owns the global rows [offset_r, offset_r + n_r), and the data
plate has N = sum of n_r rows. Every step then computes, split across the ranks, what one process
computes on the whole data set:

* the global minibatch: B indices drawn from 0..N-1 as the data plate of one process draws them
  (``torch.randperm`` on the global generator, which every rank seeds alike and keeps in step), of
  which each rank keeps the positions that fall in its rows (:class:`ShardedPlate`);
* the scale of the plate: N / B on every rank, so the ranks' losses and gradients sum to one
  process's;
* the guide's reparameterised noise for the plate: drawn for the whole global batch on every rank,
  each rank keeping its positions' rows, so every rank's generator stays in step with the others'
  and with one process's;
* the loss and the gradients are summed over the ranks in one flat buffer, one collective per step
  (:meth:`DataParallel.reduce`), so every rank takes the same optimiser step from the same
  parameters (rank 0's, broadcast at the start). A fingerprint of each rank's generator travels in
  the same buffer: ranks whose generators drift apart (the model drew random numbers of its own)
  stop with an error instead of silently training on different minibatches.

What it applies to (``ZooModel.supports_data_parallel``): a loss that is a sum of per-row terms
of the data plate, no sample site outside that plate, and guide noise from a Normal family
(``torch.distributions.Normal``, :class:`zoo.vae.DiagNormalRows`) or none (a ``Delta``), possibly
wrapped in ``Independent``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch
from pyro.distributions import Delta
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch.distributions import Independent, Normal

from zoo import distributed as zd
from zoo.vae import DiagNormalRows

__all__ = ["Shard", "ShardedPlate", "DataParallel", "global_batch", "check_data_parallel", "from_main"]


@dataclass(frozen=True)
class Shard:
    """This rank's rows of the union: global rows [``offset``, ``offset + rows``) of ``total``."""

    offset: int
    rows: int
    total: int

    @classmethod
    def gather(cls, rows: int) -> "Shard":
        """Every rank's number of rows, gathered (one collective); the shards stack in rank order."""
        sizes = [int(n) for n in zd.all_gather_object(int(rows))]
        if min(sizes) < 1:
            raise ValueError(f"every rank needs at least one row of data; the shard sizes are {sizes}")
        return cls(offset=sum(sizes[:zd.rank()]), rows=int(rows), total=sum(sizes))


def global_batch(total: int, batch_size: int | None, device) -> torch.Tensor:
    """The global minibatch, indices into 0..total-1, drawn as ``pyro.plate(size=total,
    subsample_size=batch_size)`` draws it in one process: the whole range (no draw) when the batch
    covers it, else the first ``batch_size`` of a random permutation."""
    if batch_size is None or batch_size >= total:
        return torch.arange(total, device=device)
    return torch.randperm(total, device=device)[:batch_size].clone()


def check_data_parallel(model, data, *, jit_loss: bool, elbo) -> str:
    """Refuse, with a ``ValueError`` that says why, a data-parallel fit this module cannot run
    exactly; return the name of the model's data plate."""
    name = type(model).__name__
    if not model.supports_minibatch:
        raise ValueError(f"{name} cannot be fitted data parallel: it does not subsample a data plate "
                         "(supports_minibatch is False), so its rows cannot be split across the ranks; fit it "
                         "in one process")
    if not model.supports_data_parallel:
        raise ValueError(f"{name} as configured cannot be fitted data parallel (supports_data_parallel is False): "
                         "its minibatch loss is not a sum of per-row terms whose random draws can be made for the "
                         "global batch; fit it in one process")
    if jit_loss:
        raise ValueError("jit_loss=True compiles the loss with this rank's rows of the batch as constants; a "
                         "data-parallel fit needs jit_loss=False")
    if not hasattr(elbo, "differentiable_loss"):
        raise ValueError(f"data-parallel SVI sums the gradients of a differentiable loss over the ranks; "
                         f"{type(elbo).__name__} backpropagates a surrogate of its own")
    sites = model.sites(data)
    plate = sites.data_plate
    if plate is None:
        raise ValueError(f"{name} has no data plate to split across the ranks")
    size = sites.plates.get(plate, (None,))[0]
    if size != data.shape[0]:
        raise ValueError(f"{name}'s data plate {plate!r} has {size} entries, not one per row of the data "
                         f"({data.shape[0]}), so the rows cannot be split across the ranks")
    return plate


class ShardedPlate(Messenger):
    """Runs a model or guide written for one process on this rank's share of a global minibatch.

    Around a model or guide whose data plate is ``pyro.plate(name, n_rows, subsample_size=...)``
    over this rank's shard, it

    * makes the plate's subsample this rank's rows of the global batch (set by :meth:`select`);
    * rescales every site in the plate to N / B, the scale of the global batch;
    * draws each latent site of the plate that nothing else has set (the guide's) from noise for
      the whole global batch, keeping this rank's rows;
    * refuses a sample site outside the plate (it would be counted once per rank).

    A rank whose share of the batch is empty runs one row at scale 0: its draws stay in step with
    the other ranks', and it adds nothing to the loss.
    """

    def __init__(self, name: str, shard: Shard):
        super().__init__()
        self.name, self.shard = name, shard
        self.full_batch()

    def full_batch(self) -> dict:
        """Every row of the union (no subsampling): this rank's rows, at scale 1. Returns the model's
        keyword arguments for that pass (none)."""
        s = self.shard
        self.positions = torch.arange(s.offset, s.offset + s.rows)
        self.rows, self.batch_size, self.factor = None, s.total, 1.0
        return {}

    def select(self, batch: torch.Tensor) -> dict:
        """This rank's share of the global minibatch ``batch`` (global row indices, (B,)). Returns the
        model's keyword arguments for the step (``subsample_size``)."""
        s = self.shard
        mine = (batch >= s.offset) & (batch < s.offset + s.rows)
        positions = mine.nonzero().squeeze(1)
        self.batch_size = batch.shape[0]
        if positions.numel() == 0:
            positions, self.factor = positions.new_zeros(1), 0.0
            self.rows = torch.zeros(1, dtype=batch.dtype, device=batch.device)
        else:
            self.rows = batch[positions] - s.offset
            # the plate scales by rows / len(rows); the global batch by total / batch_size
            self.factor = (s.total * positions.numel()) / (self.batch_size * s.rows)
        self.positions = positions
        return {"subsample_size": int(self.rows.shape[0])}

    def _pyro_sample(self, msg) -> None:
        if site_is_subsample(msg):
            if msg["name"] == self.name and self.rows is not None and msg["value"] is None:
                msg["value"] = self.rows
            return
        frame = next((f for f in msg["cond_indep_stack"] if f.name == self.name), None)
        if frame is None:
            if msg["infer"].get("_deterministic"):
                return
            raise ValueError(f"data-parallel SVI splits the plate {self.name!r} across the ranks, but site "
                             f"{msg['name']!r} lies outside it and would be counted once per rank; fit this model "
                             "in one process")
        if self.factor != 1.0:
            msg["scale"] = msg["scale"] * self.factor
        if msg["value"] is None and not msg["is_observed"]:
            msg["value"] = self._draw(msg, frame)

    def _draw(self, msg, frame) -> torch.Tensor | None:
        fn = msg["fn"]
        base = fn
        while isinstance(base, Independent):
            base = base.base_dist
        if isinstance(base, Delta):  # a point mass draws nothing: Pyro's own draw is this rank's rows
            return None
        if not (fn.has_rsample and isinstance(base, (DiagNormalRows, Normal))):
            raise ValueError(f"data-parallel SVI draws the noise of the plate's latent sites for the whole global "
                             f"batch and knows how for reparameterised Normal families; site {msg['name']!r} has "
                             f"{type(base).__name__}")
        shape = list(fn.shape())
        dim = frame.dim - len(fn.event_shape)
        shape[dim] = self.batch_size
        # the noise one process draws for the whole batch, then this rank's rows of it
        eps = torch.randn(shape, dtype=base.loc.dtype, device=base.loc.device)
        eps = eps.index_select(dim, self.positions.to(eps.device))
        if isinstance(base, DiagNormalRows):
            return base.rsample_from(eps)
        return base.loc + eps * base.scale


def _generator_stamp(device: torch.device) -> torch.Tensor:
    """A 16-bit fingerprint f of this process's random state, as (f, f^2): summed over W ranks,
    W * sum(f^2) == sum(f)^2 exactly when every rank has the same f (Cauchy-Schwarz; the sums are
    integers below 2^53, exact in float64, up to about 1400 ranks)."""
    state = torch.get_rng_state()
    if device.type == "cuda":
        state = torch.cat([state, torch.cuda.get_rng_state(device)])
    f = float(zlib.crc32(state.numpy().tobytes()) & 0xFFFF)
    return torch.tensor([f, f * f], dtype=torch.float64)


class DataParallel:
    """The collectives of one data-parallel SVI fit (see the module docstring)."""

    def __init__(self, model, data, *, batch_size: int | None, jit_loss: bool, elbo):
        name = check_data_parallel(model, data, jit_loss=jit_loss, elbo=elbo)
        self.shard = Shard.gather(data.shape[0])
        self.batch_size = None if batch_size is None else min(batch_size, self.shard.total)
        self.plate = ShardedPlate(name, self.shard)
        self.device = data.device

    def next_batch(self) -> dict:
        """Draw the step's global minibatch (from the generator every rank keeps in step) and select
        this rank's share; the model's keyword arguments for the step."""
        if self.batch_size is None:
            return self.plate.full_batch()
        return self.plate.select(global_batch(self.shard.total, self.batch_size, self.device))

    def full_batch(self) -> ShardedPlate:
        """The plate handler set to every row of the union (``with dp.full_batch(): ...``)."""
        self.plate.full_batch()
        return self.plate

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks."""
        return float(zd.all_reduce_sum(torch.tensor(float(value), dtype=torch.float64))[0])

    def broadcast_parameters(self, params) -> None:
        """Every rank starts from rank 0's parameters."""
        values = zd.broadcast_object([p.detach() for p in params])
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)

    def reduce(self, loss: torch.Tensor, params, step: int) -> float:
        """Sum the loss and the gradients of ``params`` over the ranks, in one flat buffer (one
        collective); the gradients are replaced by the sums, and a parameter that no rank has a
        gradient for keeps none (as in one process, Adam leaves it alone). Returns the global loss."""
        have = torch.tensor([p.grad is not None for p in params], dtype=torch.float64)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        total, have, stamp, *grads = zd.all_reduce_sum(loss.detach().to(torch.float64), have,
                                                       _generator_stamp(self.device), *grads)
        if zd.world_size() * stamp[1] != stamp[0] * stamp[0]:
            raise RuntimeError(f"the ranks' random generators drifted apart at step {step}: the model or guide "
                               "draws random numbers that data-parallel SVI does not draw for the global batch, so "
                               "the ranks would train on different minibatches; fit this model in one process")
        for p, g, h in zip(params, grads, have.tolist()):
            p.grad = g if h > 0 else None
        return float(total)


def from_main(fn):
    """``fn()`` run on rank 0 and its result broadcast to every rank. An error there (e.g. a
    corrupt checkpoint) is raised on every rank: rank 0's own, a ``ValueError`` with its message
    on the others (a ``RuntimeError`` naming it for other types), instead of leaving them waiting."""
    out, error, raised = None, None, None
    if zd.is_main():
        try:
            out = fn()
        except Exception as exc:  # every rank must hear of it, whatever it is
            raised, error = exc, (type(exc).__name__, str(exc))
    out, error = zd.broadcast_object((out, error))
    if raised is not None:
        raise raised
    if error is not None:
        kind, message = error
        raise ValueError(message) if kind == "ValueError" else RuntimeError(f"on rank 0: {kind}: {message}")
    return out
