"""A generic driver for EM-type coordinate ascent on latent-class models.

One driver, many models (after scikit-learn's ``BaseMixture``): the driver owns
the outer loops -- restarts (``n_init``, the run with the best final lower bound
is kept), convergence (change of the per-sample lower bound below ``tol``),
``max_iter``, ``warm_start``, ``random_state``, the convergence warning, the
temperature schedule and a final E-step so that ``fit_predict(X)`` equals
``fit(X).predict(X)``. A model supplies the hooks below; the same hooks serve
maximum-likelihood EM (``E_q`` replaced by point estimates) and variational
Bayes CAVI (where ``_estimate_log_prob`` returns ``E_q[log p(x | z=k)]``,
``_estimate_log_weights`` returns ``E_q[log pi_k]`` and ``_compute_lower_bound``
returns the ELBO).

Hooks (``data`` is whatever ``_prepare_data`` returns; its rows are samples and
it is sliced into row chunks, so per-chunk work stays O(chunk)):

``_check_parameters(X)``
    validate hyper-parameters against the validated data tensor ``X``.
``_prepare_data(X, fitting)``
    turn the validated ``(n_samples, n_features)`` tensor into the row-wise
    representation the other hooks use (default: ``X`` itself).
``_initial_resp(data, random_state)``
    initial responsibilities ``(n_samples, n_components)`` or ``None`` when the
    model is fully initialised by user-given parameters.
``_initialize(data, resp)``
    set the parameters from initial responsibilities (or user inits).
``_estimate_log_prob(data_chunk)``
    ``(n_chunk, n_components)`` log densities ``log p(x | z=k)``.
``_estimate_log_weights()``
    ``(n_components,)`` log mixing weights.
``_m_step(data, log_resp)``
    update the parameters from the (tempered) log responsibilities.
``_em_iteration(data, temperature)`` (optional)
    a fused E+M step returning the bound; the default chains the E-step,
    ``_m_step`` and ``_compute_lower_bound``.
``_compute_lower_bound(log_resp, log_prob_norm)``
    the objective tracked for convergence; ``log_prob_norm`` is the mean over
    samples of the (tempered) log normaliser of the E-step.
``_get_parameters()`` / ``_set_parameters(params)``
    snapshot / restore the parameters (the best restart is restored).

Temperature. The E-step computes responsibilities
``r_nk ∝ (pi_k p(x_n | k)) ** (1 / T)``. ``T = 1`` is EM, ``T -> 0`` is hard
(classification) EM, where ``T = 0`` means an exact arg-max assignment. For fixed
``T`` EM is coordinate ascent on the free energy
``F_T(q, theta) = E_q[log p(x, z | theta)] + T H(q)``, whose maximum over ``q`` is
``T * logsumexp_k(log(pi_k p(x | k)) / T)`` per sample (the max over ``k`` at
``T = 0``); that per-sample mean is what ``log_prob_norm`` holds, so the bound is
non-decreasing for any fixed ``T`` and is the log-likelihood at ``T = 1``. While a
schedule is still changing ``T`` the bounds of consecutive iterations are not
comparable, so convergence is only tested between iterations run at equal ``T``.
"""
from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._checks import check_positive_int
from .. import distributed
from .._estimator import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin
from ..sources import is_source

__all__ = [
    "EMBase", "ConvergenceWarning", "TemperatureSchedule", "temperature_schedule", "tempered_log_normalize",
    "tempered_responsibilities", "exp_floor", "renamed_parameter", "EM_PARAMETER_CONSTRAINTS",
]

#: The constraints of the EM driver's own options (the estimators add theirs).
EM_PARAMETER_CONSTRAINTS: dict = {
    "tol": [Interval(Real, 0.0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "n_init": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "warm_start": ["boolean"],
    "temperature": [Interval(Real, 0.0, None, closed="left")],
    "annealing": [None, callable, tuple, list],
    "chunk_size": [None, Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
    "verbose_interval": [Interval(Integral, 1, None, closed="left")],
    "progress_bar": ["boolean"],
    **TORCH_PARAMETER_CONSTRAINTS,
}


class TemperatureSchedule:
    """``T(i)``, the temperature of (0-based) iteration ``i`` (built by :func:`temperature_schedule`;
    a plain object, so that estimators holding one pickle)."""

    def __init__(self, constant=None, callable_=None, geometric=None):
        self.constant, self.callable_, self.geometric = constant, callable_, geometric

    def __call__(self, i):
        if self.callable_ is not None:
            return _check_temperature(self.callable_(i), "annealing(i)")
        if self.geometric is not None:
            t0, ratio, steps, t1 = self.geometric
            return t0 * ratio**i if i < steps - 1 else t1
        return self.constant


def temperature_schedule(temperature=1.0, annealing=None) -> TemperatureSchedule:
    """Return ``T(i)``, the temperature of (0-based) iteration ``i``.

    Parameters
    ----------
    temperature : float >= 0
        The constant temperature used when ``annealing`` is None.
    annealing : None, callable or tuple ``(T0, T_final, n_steps)``
        ``None``: constant ``temperature``. A callable ``i -> T`` (``i`` counts
        iterations from 0 within each restart) returning a float >= 0. A tuple
        ``(T0, T_final, n_steps)``: geometric cooling from ``T0`` to ``T_final``
        (both > 0) over the first ``n_steps`` iterations, then ``T_final``
        (deterministic annealing typically uses ``T0 > 1``, ``T_final = 1``).
    """
    if annealing is None:
        return TemperatureSchedule(constant=_check_temperature(temperature, "temperature"))
    if callable(annealing):
        return TemperatureSchedule(callable_=annealing)
    if isinstance(annealing, (tuple, list)) and len(annealing) == 3:
        t0 = _check_temperature(annealing[0], "annealing T0")
        t1 = _check_temperature(annealing[1], "annealing T_final")
        steps = check_positive_int(annealing[2], "annealing n_steps")
        if t0 == 0 or t1 == 0:
            raise ValueError("a geometric annealing schedule needs T0 > 0 and T_final > 0")
        if steps == 1:
            return TemperatureSchedule(constant=t1)
        return TemperatureSchedule(geometric=(t0, (t1 / t0) ** (1.0 / (steps - 1)), steps, t1))
    raise ValueError(
        f"annealing must be None, a callable iteration -> temperature, or a tuple "
        f"(T0, T_final, n_steps); got {annealing!r}"
    )


def _check_temperature(value, name):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def exp_floor(dtype: torch.dtype) -> float:
    """Clamp for exponents before ``exp``: results below the smallest normal float
    (or underflowing to 0) take a ~10x slower path in vectorised ``exp``; a
    contribution of ``exp(floor)`` (~1e-305 in float64) changes nothing."""
    return math.log(torch.finfo(dtype).tiny) + 8.0


#: Bits per nat: ``x`` nats are ``x * LOG2E`` bits (``exp(x) = exp2(x * LOG2E)``).
LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)


def tempered_log_normalize(wlp: torch.Tensor, temperature: float, out: torch.Tensor | None = None):
    """Tempered E-step on a ``(n, K)`` block of ``log(pi_k p(x_n | k))``.

    Returns ``(norm, log_resp)``: ``norm`` (n,) is ``T * logsumexp(wlp / T)`` (the
    row max at ``T = 0``), ``log_resp`` (n, K) the log responsibilities, written
    into ``out`` when given (``out`` may be ``wlp`` itself).
    """
    if out is None:
        out = torch.empty_like(wlp)
    if temperature == 0.0:
        norm, idx = wlp.max(dim=1)
        out.fill_(-math.inf)
        out.scatter_(1, idx.unsqueeze(1), 0.0)
        return norm, out
    src = wlp
    if temperature != 1.0:
        torch.mul(wlp, 1.0 / temperature, out=out)
        src = out
    # logsumexp by hand: torch's exponentiates without a floor (slow on underflow)
    m = src.amax(dim=1, keepdim=True)
    torch.sub(src, m, out=out)
    e = out.clamp(min=exp_floor(out.dtype)).exp_()
    lse = e.sum(dim=1).log_()
    out.sub_(lse.unsqueeze(1))
    norm = lse.add_(m.squeeze(1))
    if temperature != 1.0:
        norm.mul_(temperature)
    return norm, out


def tempered_responsibilities(wlp: torch.Tensor, temperature: float, dim: int = 1, *,
                              bits: bool = False) -> torch.Tensor:
    """Tempered E-step in place: overwrite ``wlp`` (``log(pi_k p(x_n | k))``, with
    the components along ``dim``) by the responsibilities and return the per-sample
    normaliser ``T * logsumexp(wlp / T)`` (the max at ``T = 0``), in nats.

    With ``bits=True`` ``wlp`` holds the same log joint in bits (``log2``, i.e. the natural
    one times :data:`LOG2E`), as fused callers produce it directly by scaling their
    coefficients. The exponentials are taken base 2 (``exp2`` is about three times faster
    than ``exp`` in float64, as accurate): the scores are scaled by ``LOG2E / T`` in one
    pass (none for bits at ``T = 1``), whose rounding is that of the scores themselves.

    For fused E+M steps that never need the log responsibilities.
    """
    if temperature == 0.0:
        norm, idx = wlp.max(dim=dim, keepdim=True)
        wlp.zero_().scatter_(dim, idx, 1.0)
        norm = norm.squeeze(dim)
        return norm.mul_(LN2) if bits else norm
    scale = (1.0 if bits else LOG2E) / temperature
    if scale != 1.0:
        wlp.mul_(scale)
    m = wlp.amax(dim=dim, keepdim=True)
    wlp.sub_(m).clamp_(min=exp_floor(wlp.dtype) * LOG2E).exp2_()
    total = wlp.sum(dim=dim, keepdim=True)
    wlp.mul_(total.reciprocal())  # one division per sample, not per entry
    return total.log2_().add_(m).squeeze(dim).mul_(temperature * LN2)


class EMBase(TorchEstimatorMixin):
    """Mixin with the EM outer loop; see the module docstring for the hooks.

    The concrete class stores its hyper-parameters in ``__init__`` (with
    :meth:`_store_hyperparameters`); the driver reads ``n_init``, ``max_iter``,
    ``tol``, ``random_state`` and, when present, ``warm_start``, ``temperature``,
    ``annealing``, ``verbose``, ``verbose_interval``, ``progress_bar``,
    ``chunk_size``, ``device``, ``dtype``.

    Fitted attributes: ``converged_``, ``n_iter_``, ``lower_bound_`` (of the
    kept run), ``lower_bounds_`` (its per-iteration trace), ``temperature_`` (the
    temperature of the final E-step) and ``n_features_in_``.
    """

    _min_fit_samples = 1  # fewer samples is scikit-learn's "Found array with 0 sample(s)" error

    def _store_hyperparameters(self, params):
        """All that ``__init__`` does (scikit-learn's rule): store every argument under its
        own name, as given. ``params`` is ``locals()`` at the top of ``__init__``."""
        for name, value in params.items():
            if name != "self" and not name.startswith("__"):
                setattr(self, name, value)

    # ------------------------------------------------------------------ hooks
    def _check_parameters(self, X):
        pass

    def _prepare_data(self, X, fitting):
        return X

    def _initial_resp(self, data, random_state):
        raise NotImplementedError

    def _initialize(self, data, resp):
        raise NotImplementedError

    def _estimate_log_prob(self, data):
        raise NotImplementedError

    def _estimate_log_weights(self):
        raise NotImplementedError

    def _estimate_weighted_log_prob(self, data):
        """``(n, K)`` ``log p(x | k) + log pi_k``; models may fuse the two."""
        return self._estimate_log_prob(data) + self._estimate_log_weights()

    def _m_step(self, data, log_resp):
        raise NotImplementedError

    def _compute_lower_bound(self, log_resp, log_prob_norm):
        raise NotImplementedError

    def _get_parameters(self):
        raise NotImplementedError

    def _set_parameters(self, params):
        raise NotImplementedError

    def _em_iteration(self, data, temperature):
        """One E-step + M-step; returns the lower bound.

        Models may override it with a fused, chunked pass that accumulates the
        M-step's statistics while each chunk's responsibilities are in cache
        (same result, no ``(n_samples, K)`` array).
        """
        log_prob_norm, log_resp = self._e_step(data, temperature)
        self._m_step(data, log_resp)
        return self._compute_lower_bound(log_resp, log_prob_norm)

    def _converged(self, lower_bound, prev_lower_bound):
        """The stopping rule, called after each M-step (scikit-learn's rule)."""
        return abs(lower_bound - prev_lower_bound) < self.tol

    def _temperature_at(self, iteration):
        return self._schedule(iteration)

    def _chunk_rows(self, n_samples):
        """Rows per chunk; models override with a size tuned to their buffers."""
        return 4096

    # ------------------------------------------------------------ validation
    def _check_is_fitted(self):
        check_is_fitted(self)

    def _check_driver_parameters(self):
        self._validate_params()  # the class's _parameter_constraints, scikit-learn's messages
        self._schedule = temperature_schedule(getattr(self, "temperature", 1.0), getattr(self, "annealing", None))

    # ----------------------------------------------------------------- E-step
    def _chunks(self, n_samples):
        size = getattr(self, "chunk_size", None) or self._chunk_rows(n_samples)
        for start in range(0, n_samples, size):
            yield slice(start, min(start + size, n_samples))

    def _e_step(self, data, temperature):
        """Tempered E-step over row chunks.

        Returns ``(log_prob_norm, log_resp)``: the mean over samples of the
        per-sample normaliser (a float) and the ``(n_samples, K)`` log
        responsibilities.
        """
        n = data.shape[0]
        log_resp = None
        total = torch.zeros((), dtype=torch.float64, device=data.device)
        for sl in self._chunks(n):
            wlp = self._estimate_weighted_log_prob(data[sl])
            if log_resp is None:
                log_resp = torch.empty((n, wlp.shape[1]), dtype=wlp.dtype, device=wlp.device)
            norm, _ = tempered_log_normalize(wlp, temperature, out=log_resp[sl])
            total += norm.sum(dtype=torch.float64)
        return float(total) / n, log_resp

    def _labels(self, data):
        """Arg-max component of each row, chunk by chunk (no (n, K) array)."""
        chunks = self._chunks(data.shape[0])
        return torch.cat([self._estimate_weighted_log_prob(data[sl]).argmax(dim=1) for sl in chunks])

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the model with EM (``n_init`` restarts, the best bound kept).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features), or a chunk source
            A source (a memory-mapped array, a ``.npy`` path, a re-iterable of chunks: see
            :mod:`zoo.sources`) is read again on every iteration, a chunk at a time. When a
            ``torch.distributed`` group is active, ``X`` is this rank's shard of the data.
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X, labels=False)
        return self

    def fit_predict(self, X, y=None):
        """Fit the model and return the labels of ``X`` from a final E-step.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features), or a chunk source (see :meth:`fit`)
        y : ignored

        Returns
        -------
        labels : ndarray of shape (n_samples,) (of this rank's rows in a data-parallel run)
        """
        return self._fit(X, labels=True)

    def _fit(self, X, *, labels: bool):
        self._check_driver_parameters()
        warm = bool(getattr(self, "warm_start", False)) and hasattr(self, "converged_")
        streamed = is_source(X) or distributed.active()
        if streamed:
            data = self._prepare_rows(X, warm)
        else:
            X = self._validate_data(X, reset=not warm, ensure_min_samples=self._min_fit_samples)
            self._check_parameters(X)
            data = self._prepare_data(X, fitting=True)

        do_init = not warm
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        verbose = getattr(self, "verbose", 0) and distributed.is_main()
        interval = getattr(self, "verbose_interval", 10)

        best_bound, best_params, best_iter, best_trace = -math.inf, None, 0, []
        best_converged, best_temp = False, self._temperature_at(0)
        for init in range(n_init):
            if verbose:
                print(f"Initialization {init}")
            t_init = time.perf_counter()
            if do_init:
                self._initialize_parameters(data, random_state)
                bound, prev_temp = -math.inf, None
            else:
                bound, prev_temp = self.lower_bound_, self.temperature_
            trace, converged, n_iter, temp = [], False, 0, self._temperature_at(0)
            bar = self._progress(init, n_init)
            try:
                for n_iter in range(1, self.max_iter + 1):
                    temp = self._temperature_at(n_iter - 1)
                    prev_bound = bound
                    bound = float(self._em_iteration(data, temp))
                    trace.append(bound)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(lower_bound=f"{bound:.6g}", T=f"{temp:.3g}")
                    if verbose and n_iter % interval == 0:
                        print(f"  Iteration {n_iter}\t lower bound change {bound - prev_bound:.5g}")
                    if temp == prev_temp and self._converged(bound, prev_bound):
                        converged = True
                        break
                    prev_temp = temp
            finally:
                if bar is not None:
                    bar.close()
            if verbose:
                state = "converged" if converged else "did not converge"
                print(f"Initialization {state}. time {time.perf_counter() - t_init:.3f}s\t lower bound {bound:.6g}.")
            if self.max_iter == 0:
                best_params, best_iter, best_temp = self._get_parameters(), 0, temp
            elif bound > best_bound or best_bound == -math.inf:
                best_bound, best_params, best_iter = bound, self._get_parameters(), n_iter
                best_trace, best_converged, best_temp = trace, converged, temp

        if not best_converged and self.max_iter > 0 and distributed.is_main():
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, or "
                "increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_parameters(best_params)
        self.converged_ = best_converged
        self.n_iter_ = best_iter
        self.lower_bound_ = best_bound
        self.lower_bounds_ = list(best_trace)
        self.temperature_ = best_temp
        # Final E-step with the kept parameters: fit_predict(X) == fit(X).predict(X)
        # for any max_iter/tol (the kept parameters came out of an M-step). A streamed fit reads
        # the data once more only when the labels are asked for.
        found = self._labels(data) if (labels or not streamed) else None
        self._after_fit(data, found)
        return None if found is None else found.cpu().numpy()

    def _prepare_rows(self, X, warm):
        """Set up a streamed fit (a chunk source, or a shard in a data-parallel run): the
        counterpart of ``_validate_data`` + ``_check_parameters`` + ``_prepare_data`` that reads
        the data in passes. Models that support it override this."""
        raise TypeError(f"{type(self).__name__} fits in-memory arrays only, in one process")

    def _initialize_parameters(self, data, random_state):
        self._initialize(data, self._initial_resp(data, random_state))

    def _after_fit(self, data, labels):
        """Called after the final E-step with the kept parameters and labels."""

    def _progress(self, init, n_init):
        if not getattr(self, "progress_bar", False) or not distributed.is_main():
            return None
        from ..progress import progress

        desc = f"{type(self).__name__} init {init + 1}/{n_init}"
        return progress(total=self.max_iter, desc=desc)

    # ------------------------------------------------------- fitted-model API
    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        data = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        return self._labels(data).cpu().numpy()

    def predict_proba(self, X):
        """Responsibilities of the components for each sample.

        At the fitted temperature ``temperature_``: the exact posterior
        ``p(k | x)`` when it is 1, one-hot at 0.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        data = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        _, log_resp = self._e_step(data, self.temperature_)
        return log_resp.exp_().cpu().numpy()

    def score_samples(self, X):
        """Log-likelihood ``log p(x)`` of each sample (untempered).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        data = self._prepare_data(self._validate_data(X, reset=False), fitting=False)
        out = [torch.logsumexp(self._estimate_weighted_log_prob(data[sl]), dim=1) for sl in self._chunks(data.shape[0])]
        return torch.cat(out).to(torch.float64).cpu().numpy()

    def score(self, X, y=None):
        """Mean per-sample log-likelihood of ``X`` (a float)."""
        return float(np.mean(self.score_samples(X)))


# ------------------------------------------------------------ parameter plumbing
def renamed_parameter(owner: str, old: str, old_value, new: str, new_value, default, *, stacklevel: int = 3):
    """The value of a renamed parameter, scikit-learn's way: ``new_value``, or the value given
    under the old name ``old`` with a ``FutureWarning`` naming the new spelling. An old name
    left at its default is the string ``"deprecated"``; both names at once is a ``TypeError``."""
    if isinstance(old_value, str) and old_value == "deprecated":
        return new_value
    if not (new_value is default or (isinstance(new_value, (int, str)) and new_value == default)):
        raise TypeError(f"{owner} got both {new}={new_value!r} and its old name {old}={old_value!r}; pass {new} only")
    warnings.warn(f"{owner}: the parameter {old!r} was renamed {new!r} and the old name will be removed; "
                  f"pass {new}={old_value!r}", FutureWarning, stacklevel=stacklevel)
    return old_value

