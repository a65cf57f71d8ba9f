"""Streaming fits of the Gaussian mixtures, for data seen once: online EM and stochastic VI.

Both algorithms keep a running average of sufficient statistics and rebuild the parameters from
it after every block of rows; they differ in what the statistics stand for.

* **Online EM** (Cappé & Moulines 2009) for :class:`~zoo.mixture.GaussianMixture`. The state is
  ``s``, the expected statistics of *one average row* (soft counts, first and second moments per
  component, in the kernels' layout). A block of ``m`` rows gives ``s_hat``, its statistics under
  the responsibilities of the current parameters divided by ``m``; then
  ``s <- (1 - rho) s + rho s_hat`` and the parameters are the M-step of ``s`` (scale-free, so the
  ordinary M-step of the estimator serves).
* **Stochastic variational inference** (Hoffman, Blei, Wang & Paisley 2013) for
  :class:`~zoo.mixture.BayesianGaussianMixture`. The global factors ``q(pi) q(mu, Lambda)`` are
  conjugate, so their natural parameters are the prior's plus the statistics of the data:
  ``lambda = eta0 + S`` (``beta = beta0 + N_k``, ``beta m = beta0 m0 + sum r x``, ``nu = nu0 +
  N_k``, ``Psi + beta m m^T = Psi0 + beta0 m0 m0^T + sum r x x^T``; Dirichlet or stick
  parameters add ``N_k``). The local step is the E-step under the current ``q``; ``lambda_hat =
  eta0 + (N / m) S_hat`` is the update the block would give if all ``N = total_samples`` rows
  looked like it, and the natural-gradient step ``lambda <- (1 - rho) lambda + rho lambda_hat``
  is the same convex combination on the statistics ``S`` of ``N`` rows; ``q`` is the estimator's
  own CAVI update from ``S``.

So one driver serves both: the state holds the statistics of ``size`` rows (1 for online EM,
``total_samples`` for SVI), a block's statistics are scaled by ``size / m``, and the estimator's
``_params_from_stats`` maps the state to parameters. Tied covariances carry a second running
statistic, the scatter ``sum_n x_n x_n^T``, averaged the same way.

Step sizes. Updates are counted from 1; update ``t`` of a block of the *reference size* takes
``rho_t = (t + learning_offset) ** (-learning_decay)`` (scikit-learn's names and form, as its
``LatentDirichletAllocation``); Cappé and Moulines need ``learning_decay`` in (0.5, 1] (the steps
sum to infinity, their squares do not). The reference size ``B`` is the number of rows of the
chunk that started the stream, so with chunks of equal size ``t`` counts the ``partial_fit`` calls.
A chunk of another size counts by its rows: it is cut into blocks of at most ``B`` rows, each one
update (E-step at the current parameters, then the step); a block of ``m`` rows advances the
counter by ``u = m / B`` and takes the step of ``u`` consecutive updates with one target,
``1 - prod_t (1 - rho_t) ** w_t``, where ``w_t`` is the overlap of ``(t_0, t_0 + u]`` with
``(t - 1, t]`` (:func:`block_step_size`). Hence a chunk of ``3B`` rows does exactly what three
calls of ``B`` rows do, two halves of a block weigh together what the block weighs, and every row
carries, to first order in ``rho``, the weight it would have in a stream of reference blocks: how
a pass is cut changes little (``tests/test_online_mixture.py`` measures it).

Start. The first ``partial_fit`` of an unfitted estimator is ``fit`` on its chunk (so
``init_params``, the ``*_init`` parameters, ``n_init``, ``max_iter`` and ``tol`` apply: a burn-in of
batch iterations on the first chunk; with a prior built from that chunk for the Bayesian model).
The running statistics then start as those the fitted parameters imply (the statistics whose
M-step, or CAVI update, returns them: :func:`gaussian_statistics`, :func:`gauss_wishart_statistics`),
scaled to ``size`` rows; that is step 0 (``rho = 1``). ``partial_fit`` after ``fit`` continues
from the fitted model the same way, with its chunk as the reference block and the first update.
A later ``fit`` starts afresh and ends the stream (the state lives in the parameters it replaces).
The data shift (the centring of :class:`~zoo.mixture.BaseGaussianMixture`) is the first chunk's
mean (or the fit's) and stays fixed. A :class:`~zoo.mixture.GaussianMixture` ``temperature`` applies
to every E-step; an ``annealing`` schedule is read with the number of updates so far.

Reported after each call: ``n_iter_`` (calls since the stream started), ``n_samples_seen_``,
``step_size_`` (the ``rho`` of the last update; 1 after the starting call), ``converged_`` (False:
a stream is never declared converged), ``lower_bound_`` and its per-call list ``lower_bounds_``:
for online EM the mean log-likelihood of the chunk's rows, each under the parameters in place
when it was read (progressive validation); for SVI a minibatch estimate of the ELBO of ``q``
before the call on ``total_samples`` rows, ``(N / m) sum_n log sum_k exp(s_nk) - KL(q || prior)``
(also ``elbo_`` and ``elbos_``).
"""
from __future__ import annotations

import dataclasses
import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from . import _gaussian as kernels
from . import gauss_wishart as gw

__all__ = [
    "ONLINE_PARAMETER_CONSTRAINTS", "SVI_PARAMETER_CONSTRAINTS", "OnlineState", "step_size", "block_step_size",
    "pack_statistics", "gaussian_statistics", "gauss_wishart_statistics", "online_em_update", "svi_update",
]

_STAT = kernels.STAT

#: The step-size schedule's parameters, shared by both estimators.
ONLINE_PARAMETER_CONSTRAINTS: dict = {
    "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
    "learning_offset": [Interval(Real, 0.0, None, closed="left")],
}
#: The size of the data set SVI scales a minibatch to.
SVI_PARAMETER_CONSTRAINTS: dict = {"total_samples": [Interval(Real, 0.0, None, closed="neither")]}


# ------------------------------------------------------------------ schedule
def step_size(t, learning_offset: float, learning_decay: float):
    """``rho_t = (t + learning_offset) ** (-learning_decay)`` of update ``t`` (counted from 1);
    ``t`` a number or an array. In (0, 1] for ``t >= 1`` and ``learning_offset >= 0``."""
    return np.power(np.add(t, float(learning_offset)), -float(learning_decay))


def block_step_size(t0: float, u: float, learning_offset: float, learning_decay: float) -> float:
    """The step of a block that advances the update counter from ``t0`` to ``t0 + u``.

    ``u`` consecutive updates with the same target compose to one step ``1 - prod (1 - rho_t)``;
    for fractional counts update ``t`` owns the interval ``(t - 1, t]`` and contributes
    ``(1 - rho_t) ** w_t`` with ``w_t`` its overlap with ``(t0, t0 + u]``. For whole ``t0`` and
    ``u = 1`` this is ``rho_{t0 + 1}``.
    """
    if not u > 0:
        raise ValueError(f"a block advances the counter by u > 0, got {u!r}")
    end = t0 + u
    ts = np.arange(math.floor(t0) + 1, math.ceil(end) + 1, dtype=np.float64)
    overlap = np.minimum(ts, end) - np.maximum(ts - 1.0, t0)
    keep = overlap > 0
    rho = step_size(ts[keep], learning_offset, learning_decay)
    if bool(np.any(rho >= 1.0)):
        return 1.0
    return float(-np.expm1(np.sum(overlap[keep] * np.log1p(-rho))))


# ------------------------------------------------------------------ state
@dataclasses.dataclass
class OnlineState:
    """The running statistics of a stream (kept in the estimator's parameter dict, so that ``fit``
    replacing the parameters ends the stream and pickling carries it).

    ``stats``: the statistics of ``size`` rows in the kernels' layout ((K, P, P) full, (K, P)
    the other types); ``scatter``: tied only, ``sum x x^T`` (D, D) of ``size`` rows; ``unit``:
    rows of the reference block; ``t``: the update counter in reference blocks.
    """

    stats: torch.Tensor
    scatter: torch.Tensor | None
    size: float
    unit: int
    t: float = 0.0
    n_updates: int = 0
    n_calls: int = 0
    n_samples_seen: int = 0
    step_size: float = 1.0
    bounds: list = dataclasses.field(default_factory=list)


def pack_statistics(kind: str, nk: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor):
    """``(stats, scatter)`` in the kernels' layout from soft counts ``nk`` (K,), first moments
    ``s1 = sum r x`` (K, D) and second moments ``s2``: ``sum r x x^T`` (K, D, D) full, ``sum r x^2``
    (K, D) diag, ``sum r |x|^2`` (K,) spherical, or for tied the scatter ``sum x x^T`` (D, D),
    which is returned as ``scatter`` (None for the other types)."""
    k, d = s1.shape
    if kind == "full":
        stats = s1.new_zeros((k, d + 1, d + 1))
        stats[:, :d, :d] = s2
        stats[:, :d, d] = s1
        stats[:, d, :d] = s1
        stats[:, d, d] = nk
        return stats, None
    if kind == "tied":
        return torch.cat([s1, nk[:, None]], 1), s2
    if kind == "diag":
        return torch.cat([s2, s1, nk[:, None]], 1), None
    return torch.cat([s2[:, None], s1, nk[:, None]], 1), None


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def gaussian_statistics(est):
    """``(nk, s1, s2)`` (see :func:`pack_statistics`) that the maximum-likelihood parameters of a
    fitted :class:`~zoo.mixture.GaussianMixture` imply, per row (``nk`` sums to 1; centred
    coordinates): the M-step of them returns the parameters (``reg_covar`` is taken off the
    covariances, the M-step adds it back)."""
    p, kind, reg, d = est._params, est._kind, float(est.reg_covar), est._d
    w, mu, cov = p["weights"], p["means"], p["covariances"]
    s1 = w[:, None] * mu
    if kind in ("full", "tied"):
        raw = cov - reg * torch.eye(d, dtype=cov.dtype, device=cov.device)
        s2 = w[:, None, None] * (raw + _outer(mu, mu)) if kind == "full" else w.sum() * raw + (mu.T * w) @ mu
    elif kind == "diag":
        s2 = w[:, None] * (cov - reg + mu * mu)
    else:
        s2 = w * (d * (cov - reg) + (mu * mu).sum(1))
    return w, s1, s2


def gauss_wishart_statistics(est):
    """``(nk, s1, s2)`` that a fitted :class:`~zoo.mixture.BayesianGaussianMixture`'s ``q(mu,
    Lambda)`` implies (centred coordinates): its natural parameters less the prior's, i.e.
    ``N_k = beta_k - beta0``, ``sum r x = beta_k m_k - beta0 m0``, ``sum r x x^T = Psi_k - Psi0 +
    beta_k m_k m_k^T - beta0 m0 m0^T - N_k reg_covar I`` (diag and spherical: its diagonal and
    trace; tied: the shared factor's ``K``-fold form). The CAVI update of them returns ``q``."""
    p, prior, kind, reg, d = est._params, est._prior_c, est._kind, float(est.reg_covar), est._d
    beta, m, psi = p["beta"], p["means"], p["psi"]
    beta0, m0, psi0 = prior.mean_precision, prior.mean, prior.covariance
    nk = beta - beta0
    s1 = beta[:, None] * m - beta0 * m0
    if kind == "full":
        eye = torch.eye(d, dtype=psi.dtype, device=psi.device)
        s2 = psi - psi0 + beta[:, None, None] * _outer(m, m) - beta0 * _outer(m0, m0) - nk[:, None, None] * reg * eye
    elif kind == "tied":
        k = beta.shape[0]
        eye = torch.eye(d, dtype=psi.dtype, device=psi.device)
        s2 = k * (psi - psi0) - nk.sum() * reg * eye + (m.T * beta) @ m - k * beta0 * _outer(m0, m0)
    elif kind == "diag":
        s2 = psi - psi0 + beta[:, None] * m * m - beta0 * m0 * m0 - nk[:, None] * reg
    else:
        s2 = d * (psi - psi0 - nk * reg) + beta * (m * m).sum(1) - beta0 * (m0 * m0).sum()
    return nk, s1, s2


def _global_kl(est) -> float:
    """``KL(q(pi) q(mu, Lambda) || prior)`` of a Bayesian mixture: minus its ELBO on no data."""
    p, prior, kind, k, d = est._params, est._prior_c, est._kind, est._k, est._d
    U = p["prec_chol"]
    zeros = U.new_zeros
    sk = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[kind]
    q = {name: p[name] for name in ("beta", "means", "nu", "psi")}
    precision = U @ U.mT if kind in ("full", "tied") else U * U
    return -float(gw.elbo(zeros(()), zeros(k), zeros((k, d)), zeros(sk), p["conc"], q, prior,
                          precision=precision, logdet_psi=p["logdet_psi"]))


# ------------------------------------------------------------------ the driver
def _apply(est, state):
    """Parameters from the running statistics (the estimator's own M-step / CAVI update)."""
    if state.scatter is not None:
        est._scatter = state.scatter  # the tied update reads the scatter of the same rows
    params = est._params_from_stats(state.stats)
    params["online"] = state
    est._params = params
    est._refresh()


def _start(est, size, implied, unit):
    nk, s1, s2 = implied(est)
    size = float(size(est))
    scale = size / float(nk.sum())
    stats, scatter = pack_statistics(est._kind, nk * scale, s1 * scale, s2 * scale)
    state = OnlineState(stats=stats.contiguous(), scatter=scatter, size=float(size), unit=int(unit))
    _apply(est, state)
    return state


def _read(est, zb, temperature):
    """E-step over a block of design rows: ``(statistics, sum of the log normalisers)``."""
    kind = est._kind
    acc = kernels.new_stats(kind, est._k, zb.shape[1], zb.device)
    total = torch.zeros((), dtype=_STAT, device=zb.device)
    for sl in est._chunks(zb.shape[0]):
        total += kernels.em_chunk(acc, zb[sl], est._coef, kind, temperature, est._ws)
    return kernels.finish_stats(acc, kind, est._k), float(total)


def _partial_fit(est, X, *, size, implied, kl=None):
    """The streaming driver. ``size(est)``: rows the statistics stand for (read when the stream
    starts); ``implied(est)``: the statistics the fitted parameters imply; ``kl(est)``: the
    penalty of the reported bound (SVI's ``KL(q || prior)``)."""
    est._check_driver_parameters()  # _parameter_constraints, scikit-learn's messages
    params = getattr(est, "_params", None)
    state = params.get("online") if isinstance(params, dict) and est.__sklearn_is_fitted__() else None
    started = state is None
    if started and not est.__sklearn_is_fitted__():
        est.fit(X)  # the first chunk: initialisation and a burn-in of batch iterations
        fresh = True
    else:
        fresh = False
    Z = est._prepare_data(est._validate_data(X, reset=False), fitting=False)
    m = Z.shape[0]
    if started:
        state = _start(est, size, implied, m)
    decay, offset = float(est.learning_decay), float(est.learning_offset)
    penalty = kl(est) if kl is not None else 0.0
    log_norm = 0.0
    temperature = est._temperature_at(state.n_updates)
    if fresh:  # the chunk made the parameters: nothing to update, only the figure to report
        _, log_norm = _read(est, Z, temperature)
    else:
        for start in range(0, m, state.unit):
            zb = Z[start:start + state.unit]
            mb = zb.shape[0]
            u = mb / state.unit
            rho = block_step_size(state.t, u, offset, decay)
            temperature = est._temperature_at(state.n_updates)
            stats, norm = _read(est, zb, temperature)
            log_norm += norm
            scale = state.size / mb
            state.stats.mul_(1.0 - rho).add_(stats, alpha=rho * scale)
            if state.scatter is not None:
                state.scatter.mul_(1.0 - rho).add_(est._gram(zb), alpha=rho * scale)
            state.t += u
            state.n_updates += 1
            state.step_size = rho
            _apply(est, state)
    state.n_calls += 1
    state.n_samples_seen += m
    state.bounds.append(state.size * log_norm / m - penalty)
    est._publish()
    est.n_iter_ = state.n_calls
    est.n_samples_seen_ = state.n_samples_seen
    est.step_size_ = state.step_size
    est.converged_ = False
    est.temperature_ = temperature
    est.lower_bound_ = state.bounds[-1]
    est.lower_bounds_ = state.bounds
    return state


def online_em_update(est, X):
    """``GaussianMixture.partial_fit``: one online-EM call on the chunk ``X`` (see the module
    docstring). Returns the estimator."""
    _partial_fit(est, X, size=lambda _: 1.0, implied=gaussian_statistics)
    return est


def svi_update(est, X):
    """``BayesianGaussianMixture.partial_fit``: one SVI call on the chunk ``X`` (see the module
    docstring), the statistics scaled to ``est.total_samples`` rows (read when the stream
    starts). Returns the estimator."""
    state = _partial_fit(est, X, size=lambda e: e.total_samples, implied=gauss_wishart_statistics, kl=_global_kl)
    est.elbo_ = state.bounds[-1]
    est.elbos_ = state.bounds
    return est
