"""Sparse coding and dictionary learning (MATH.md section 6, seed 003).

Layout. A dictionary ``A`` has shape ``(n_components, n_features)``: one atom per *row*, as
scikit-learn's ``components_``. Codes ``Z`` have shape ``(n_samples, n_components)`` and the
reconstruction of ``X`` is ``Z @ A``. (The note writes ``x = A z`` with atoms as the columns of
``A``; its ``A`` is our ``A.T``.)

Objective, exactly as the note's (no factor 1/2)::

    L(A, Z) = sum_n ( ||x_n - z_n A||^2 + eta * rho(z_n) )  [+ ridge / 2 * ||A||_F^2]

with the penalties ``rho(z) = sum_i r(z_i)`` (:data:`PENALTIES`):

* ``"l1"``:  r(z) = |z|
* ``"log"``: r(z) = log(1 + z^2)         (a Cauchy prior)
* ``"exp"``: r(z) = -exp(-z^2)           (bounded: no proper prior)

The note's code step reads ``||x - A z||^2 - eta rho(z)``: a slip; the sign is ``+``.

Relation to scikit-learn. ``sklearn.decomposition.sparse_encode(X, A, algorithm="lasso_cd",
alpha=alpha)`` minimises ``0.5 ||x - z A||^2 + alpha ||z||_1`` per sample: half of ours with
``eta = 2 alpha``. So ``alpha = eta / 2`` gives the same codes, and scikit-learn's objective is
half of ours (``tests/test_sparse_coding.py`` checks both). scikit-learn's
``DictionaryLearning(alpha=...)`` likewise minimises ``0.5 ||X - Z A||_F^2 + alpha ||Z||_1,1``
with atoms in the unit ball: ``DictionaryLearning(eta=2 * alpha, penalty="l1")`` here.

The code step (fixed ``A``), :func:`sparse_encode`, batched over samples in torch on the data's
device and dtype (a sample stops at its own tolerance, so its codes do not depend on the batch):

* ``"fista"`` (every penalty; the default): monotone accelerated proximal gradient (Beck &
  Teboulle's MFISTA, with a momentum restart whenever a step is refused) with step ``1 / Lip``.
  For l1 the proximal step is soft thresholding and ``Lip = 2 ||A||_2^2``; ``log`` and ``exp``
  are smooth, with ``r''`` in ``[-1/4, 2]`` and ``[-4 e^{-3/2}, 2]``, so the whole objective has a
  ``Lip = 2 ||A||_2^2 + 2 eta`` Lipschitz gradient and a plain gradient step of ``1 / Lip`` from
  the kept point never increases it (the descent lemma).
* ``"cd"`` (l1 only): cyclic coordinate descent, every coordinate minimised exactly,
  ``z_k = S(r_k . a_k, eta / 2) / ||a_k||^2`` with ``S`` soft thresholding and ``r_k`` the
  residual without atom ``k`` (what scikit-learn's ``lasso_cd`` does per sample). It zigzags, and
  needs many sweeps, when atoms are strongly correlated.

Both are monotone: no sample's objective ends above its value at the start. For l1 the problem is
convex and both reach its minimum. ``log`` and ``exp`` are *non-convex*: the answer is a
stationary point (a local minimum in practice) reached from the given start (zeros by default),
and another start may give another one.

The dictionary step (fixed ``Z``), :func:`dictionary_step`: the note's ridge least squares
``min_A ||X - Z A||_F^2 + ridge / 2 ||A||_F^2``, solved exactly
(``A = (Z^T Z + ridge/2 I)^+ Z^T X``) when atoms are free (``atom_constraint=None``); with
``atom_constraint="unit_ball"`` (scikit-learn's constraint ``||a_k|| <= 1``) one sweep of block
coordinate descent over the atoms, each atom set to its exact constrained minimiser: in ``a_k``
the objective is ``(||z_k||^2 + ridge/2) ||a_k - c_k||^2 + const`` (isotropic), so the minimiser
over the ball is the projection of ``c_k = z_k^T R_k / (||z_k||^2 + ridge/2)``. An atom that no
sample uses costs nothing wherever it points (without ridge): it is re-seeded at the direction of
the worst-fitted residual, which leaves the objective unchanged and gives the next code step a
use for it.

Alternating the two steps never increases ``L`` (:class:`DictionaryLearning` records it per
iteration in ``objective_`` and keeps the previous dictionary when rounding would raise it).
Without the unit ball and without ridge, l1 is scale-degenerate (atoms grow, codes shrink):
use one of the two.

The Pyro model ``sparse_coding`` (:class:`SparseCodingModel`): for a fixed dictionary ``A``::

    z_nk ~ Laplace(0, b)    (prior="laplace")   or   Cauchy(0, s)   (prior="cauchy")
    x_n  ~ Normal(z_n A, sigma^2 I)

Its negative log joint in ``z`` is, up to constants,
``||x_n - z_n A||^2 / (2 sigma^2) + sum_k |z_nk| / b`` (Laplace: -log density = |z|/b + log 2b).
Multiplying by ``2 sigma^2``: ``||x_n - z_n A||^2 + (2 sigma^2 / b) ||z_n||_1``, so the MAP codes
are the l1 code step's answer with ``eta = 2 sigma^2 / b`` (``alpha = sigma^2 / b`` in
scikit-learn's convention). For the Cauchy prior, -log density = log(1 + (z/s)^2) + const, so the
MAP minimises ``||x_n - z_n A||^2 + 2 sigma^2 sum_k log(1 + (z_nk / s)^2)``: with ``s = 1`` the
``log`` code step with ``eta = 2 sigma^2``; otherwise the same problem in the codes ``z / s`` and
the dictionary ``s A`` (:meth:`SparseCodingModel.map_codes` does the change of variables).
``inference.fit(model, X, method="map")`` reaches the same codes by Adam, slowly: it hovers at
about the learning rate around the exact zeros. The posterior under either prior has no exact
zeros at all; :func:`mass_away_from_zero` measures how much of it lies away from the MAP's zeros.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._checks import as_data_tensor, check_choice, check_positive_int
from ._estimator import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin, resolve_dtype, to_numpy, validate_tensor
from ._validation import ArrayLike, Choice, Int, Real as RealNumber, Seed, check_device, declare
from .base import ZooModel
from .registry import register_model

__all__ = [
    "PENALTIES", "ALGORITHMS", "penalty_value", "objective", "sparse_encode", "dictionary_step",
    "DictionaryLearning", "SparseCoder", "SparseCodingModel", "sparse_coding", "mass_away_from_zero",
    "MassAwayFromZero",
]

#: penalty name -> r(z), the per-entry term of rho
PENALTIES = ("l1", "log", "exp")
#: code-step solvers: "fista" (every penalty, the default) and "cd" (l1 only)
ALGORITHMS = ("fista", "cd")


# ----------------------------------------------------------------- penalties and objective
def penalty_value(codes: torch.Tensor, penalty: str) -> torch.Tensor:
    """``rho(z)`` of every row of ``codes`` (..., n_components): shape (...,)."""
    if penalty == "l1":
        return codes.abs().sum(-1)
    if penalty == "log":
        return torch.log1p(codes * codes).sum(-1)
    if penalty == "exp":
        return -torch.exp(-codes * codes).sum(-1)
    raise ValueError(f"unknown penalty {penalty!r}; known: {', '.join(map(repr, PENALTIES))}")


def _penalty_grad(codes, penalty):
    """d rho / dz for the smooth penalties."""
    if penalty == "log":
        return 2 * codes / (1 + codes * codes)
    return 2 * codes * torch.exp(-codes * codes)  # exp


def _objective(X, Z, A, penalty, eta):
    r = X - Z @ A
    return (r * r).sum(-1) + eta * penalty_value(Z, penalty)


def objective(X, codes, dictionary, *, penalty: str = "l1", eta: float = 1.0) -> torch.Tensor:
    """Per-sample objective ``||x_n - z_n A||^2 + eta rho(z_n)``, shape (n_samples,), in ``X``'s
    dtype and device (scikit-learn's ``0.5 ||x - z A||^2 + alpha ||z||_1`` is half of it with
    ``alpha = eta / 2``)."""
    X, A = _check_pair(X, dictionary)
    Z = _check_codes(codes, X, A)
    return _objective(X, Z, A, _check_penalty(penalty), _check_eta(eta))


# ----------------------------------------------------------------- input checks of the functions
def _check_penalty(penalty):
    return check_choice(penalty, PENALTIES, "penalty")


def _check_eta(eta):
    if isinstance(eta, bool) or not isinstance(eta, (int, float, np.floating, np.integer)) or not math.isfinite(eta) \
            or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    return float(eta)


def _check_pair(X, dictionary):
    """``X`` (n, D) as a finite tensor (its dtype and device; float64 for non-float input) and the
    dictionary (K, D) in the same dtype and device."""
    X = as_data_tensor(X, name="X", allow_1d=False)
    A = as_data_tensor(dictionary, name="dictionary", allow_1d=False, dtype=X.dtype, device=X.device)
    if A.shape[1] != X.shape[1]:
        raise ValueError(f"the dictionary has {A.shape[1]} features (shape {tuple(A.shape)}) but X has "
                         f"{X.shape[1]} (shape {tuple(X.shape)}); atoms are the rows of a (n_components, "
                         "n_features) dictionary")
    return X, A


def _check_codes(codes, X, A, name="codes"):
    Z = as_data_tensor(codes, name=name, allow_1d=False, dtype=X.dtype, device=X.device)
    if tuple(Z.shape) != (X.shape[0], A.shape[0]):
        raise ValueError(f"{name} must have shape (n_samples, n_components) = {(X.shape[0], A.shape[0])}, "
                         f"got {tuple(Z.shape)}")
    return Z


# ----------------------------------------------------------------- the code step
def _soft(v, thr):
    return torch.sign(v) * torch.clamp(v.abs() - thr, min=0)


def _converged(change, codes, tol):
    """Per sample: the largest update is at most ``tol`` times the largest code (all-zero codes
    that did not move count as converged)."""
    return change <= tol * codes.abs().amax(-1)


def _cd_l1(X, A, eta, Z, max_iter, tol):
    """Cyclic coordinate descent for the l1 code step, batched over samples. A sample stops when
    its own updates fall below ``tol`` (so its codes do not depend on the other rows)."""
    G = A @ A.T  # (K, K)
    C = X @ A.T  # (n, K): x . a_k
    diag = G.diagonal()
    used = [k for k in range(A.shape[0]) if float(diag[k]) > 0]
    Z = Z.clone()
    Z[:, diag <= 0] = 0  # a zero atom explains nothing: its code is the penalty's minimiser
    thr = eta / 2
    rows = torch.arange(X.shape[0], device=X.device)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        z, c = Z[rows], C[rows]
        B = c - z @ G  # (m, K): r . a_k with r the current residual
        change = torch.zeros(len(rows), dtype=X.dtype, device=X.device)
        for k in used:
            old = z[:, k].clone()
            new = _soft(B[:, k] + old * diag[k], thr) / diag[k]
            delta = new - old
            z[:, k] = new
            B -= delta[:, None] * G[k]
            change = torch.maximum(change, delta.abs())
        Z[rows] = z
        rows = rows[~_converged(change, z, tol)]
        if len(rows) == 0:
            break
    return Z, n_iter


def _fista(X, A, penalty, eta, Z, max_iter, tol):
    """Monotone FISTA (MFISTA) with a momentum restart when a step is refused, batched over samples;
    the proximal step is soft thresholding for l1, the identity for the smooth penalties."""
    smooth = penalty != "l1"
    G = A @ A.T
    lip = 2 * float(torch.linalg.eigvalsh(G)[-1].clamp_min(0)) + (2 * eta if smooth else 0.0)
    if lip == 0:  # a zero dictionary and no smooth penalty: the l1 penalty alone, minimised at 0
        return torch.zeros_like(Z), 1
    step = 1.0 / lip
    z_all, f_all = Z.clone(), _objective(X, Z, A, penalty, eta)
    rows = torch.arange(X.shape[0], device=X.device)
    x, z, fz = X, z_all, f_all.clone()
    y, t = z.clone(), torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        grad = 2 * (y @ A - x) @ A.T
        if smooth:
            grad = grad + eta * _penalty_grad(y, penalty)
        u = y - step * grad
        if not smooth:
            u = _soft(u, eta * step)
        fu = _objective(x, u, A, penalty, eta)
        accept = fu <= fz
        restarted = (y == z).all(-1)  # y is the kept point: a small step there means it is stationary
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        z_new = torch.where(accept[:, None], u, z)
        y_new = z_new + ((t - 1) / t_new) * (z_new - z) + (t / t_new) * (u - z_new)
        y_new = torch.where(accept[:, None], y_new, z_new)  # refused: restart from the kept point
        t = torch.where(accept[:, None], t_new, torch.ones_like(t))
        # done: a small accepted step, or a refused step from the kept point itself, which in exact
        # arithmetic cannot raise the objective (descent lemma): the objective's rounding stops it there
        done = (accept & _converged((u - y).abs().amax(-1), u, tol)) | (restarted & ~accept)
        z, fz, y = z_new, torch.where(accept, fu, fz), y_new
        if bool(done.any()):  # write the finished rows back and go on with the others
            z_all[rows[done]], f_all[rows[done]] = z[done], fz[done]
            keep = ~done
            rows, x, z, fz, y, t = rows[keep], x[keep], z[keep], fz[keep], y[keep], t[keep]
            if len(rows) == 0:
                break
    z_all[rows] = z
    return z_all, n_iter


def sparse_encode(X, dictionary, *, penalty: str = "l1", eta: float = 1.0, algorithm: str = "fista", init=None,
                  max_iter: int = 1000, tol: float = 1e-6, return_n_iter: bool = False):
    """The code step: ``argmin_z ||x_n - z A||^2 + eta rho(z)`` for every row of ``X``.

    Parameters
    ----------
    X : tensor or array-like (n_samples, n_features). Its device and dtype are the computation's
        (float64 for non-float input).
    dictionary : (n_components, n_features), one atom per row (scikit-learn's ``components_``).
    penalty : ``"l1"``, ``"log"`` or ``"exp"`` (see the module docstring).
    eta : the penalty's weight, >= 0 (scikit-learn's ``alpha`` is ``eta / 2`` for l1).
    algorithm : ``"fista"`` (any penalty) or ``"cd"`` (coordinate descent, l1 only: exact
        coordinate minimisations, but slow on strongly correlated atoms, where it zigzags).
    init : starting codes (n_samples, n_components); zeros by default. For ``log`` and ``exp``
        (non-convex) the answer is a local minimum reached from here.
    max_iter : sweeps (cd) or iterations (fista).
    tol : a sample stops when its largest code update is at most ``tol`` times its largest code.
    return_n_iter : also return the number of sweeps/iterations run.

    Returns
    -------
    codes : tensor (n_samples, n_components), never with a larger objective than ``init``.
    n_iter : int, with ``return_n_iter``.
    """
    X, A = _check_pair(X, dictionary)
    penalty, eta = _check_penalty(penalty), _check_eta(eta)
    algorithm = check_choice(algorithm, ALGORITHMS, "algorithm")
    if algorithm == "cd" and penalty != "l1":
        raise ValueError(f"algorithm 'cd' solves the l1 penalty only; use 'fista' for penalty {penalty!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    Z0 = X.new_zeros((X.shape[0], A.shape[0])) if init is None else _check_codes(init, X, A, name="init")
    if algorithm == "cd":
        Z, n_iter = _cd_l1(X, A, eta, Z0, max_iter, float(tol))
    else:
        Z, n_iter = _fista(X, A, penalty, eta, Z0, max_iter, float(tol))
    # never end above the start (coordinate descent is monotone up to rounding)
    worse = _objective(X, Z, A, penalty, eta) > _objective(X, Z0, A, penalty, eta)
    Z = torch.where(worse[:, None], Z0, Z) + 0.0  # + 0.0: soft thresholding's -0.0 become 0.0
    return (Z, n_iter) if return_n_iter else Z


# ----------------------------------------------------------------- the dictionary step
def _reseed_unused(X, Z, A, unused):
    """Unused atoms (all their codes zero) point at the worst-fitted residuals, unit norm: the
    objective does not change (their codes are zero) and the next code step can use them."""
    if not bool(unused.any()):
        return A
    R = X - Z @ A
    res = (R * R).sum(1)
    idx = unused.nonzero().flatten()
    worst = torch.argsort(res, descending=True)[: len(idx)]
    for k, n in zip(idx.tolist(), worst.tolist()):
        norm = R[n].norm()
        if float(norm) > 0:
            A[k] = R[n] / norm
    return A


def dictionary_step(X, codes, dictionary, *, ridge: float = 0.0, atom_constraint: str | None = "unit_ball"):
    """The dictionary step: ``argmin_A ||X - Z A||_F^2 + ridge / 2 ||A||_F^2`` for fixed codes.

    ``atom_constraint=None``: the exact ridge least-squares solution
    ``(Z^T Z + ridge/2 I)^+ Z^T X``. ``"unit_ball"``: every atom kept in ``||a_k|| <= 1``, one sweep
    of exact block minimisations over the atoms (starting from ``dictionary``). Without ridge,
    unused atoms are re-seeded at the worst-fitted residuals (the objective is unchanged).
    Returns the new dictionary (n_components, n_features) in ``X``'s dtype and device."""
    X, A = _check_pair(X, dictionary)
    Z = _check_codes(codes, X, A)
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if atom_constraint not in ("unit_ball", None):
        raise ValueError(f"unknown atom_constraint {atom_constraint!r}; known: 'unit_ball', None")
    return _dictionary_step(X, Z, A, float(ridge), atom_constraint)


def _dictionary_step(X, Z, A, ridge, atom_constraint):
    sq = (Z * Z).sum(0)  # (K,)
    if atom_constraint is None:
        gram = Z.T @ Z + (ridge / 2) * torch.eye(Z.shape[1], dtype=Z.dtype, device=Z.device)
        if ridge > 0:  # positive definite
            A_new = torch.linalg.solve(gram, Z.T @ X)
        else:  # possibly singular (unused atoms): the minimum-norm solution of the normal equations
            A_new = torch.linalg.pinv(gram, hermitian=True) @ (Z.T @ X)
    else:
        A_new = A.clone()
        R = X - Z @ A_new
        for k in range(A.shape[0]):
            s = float(sq[k]) + ridge / 2
            if s == 0:  # unused and no ridge: any atom is optimal
                continue
            zk = Z[:, k]
            R += zk[:, None] * A_new[k]
            c = (zk @ R) / s
            A_new[k] = c / torch.clamp(c.norm(), min=1.0)
            R -= zk[:, None] * A_new[k]
    if ridge == 0:
        A_new = _reseed_unused(X, Z, A_new, sq == 0)
    return A_new


def _total(X, Z, A, penalty, eta, ridge):
    """The full objective L(A, Z), accumulated in float64 (per-sample terms in X's dtype)."""
    per_sample = _objective(X, Z, A, penalty, eta).double()
    return float(per_sample.sum() + (ridge / 2) * (A.double() ** 2).sum())


# ----------------------------------------------------------------- estimators
_CODE_CONSTRAINTS = {
    "penalty": [StrOptions(set(PENALTIES))],
    "eta": [Interval(Real, 0, None, closed="left")],
    "code_algorithm": [StrOptions(set(ALGORITHMS))],
    "code_max_iter": [Interval(Integral, 1, None, closed="left")],
    "code_tol": [Interval(Real, 0, None, closed="left")],
}


def _check_code_options(est):
    if est.code_algorithm == "cd" and est.penalty != "l1":
        raise ValueError(f"code_algorithm='cd' solves the l1 penalty only; use 'fista' for "
                         f"penalty={est.penalty!r}")


class DictionaryLearning(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimatorMixin, BaseEstimator):
    """Sparse coding with a learned dictionary (see the module docstring): minimises

        L(A, Z) = sum_n ||x_n - z_n A||^2 + eta rho(z_n) + ridge / 2 ||A||_F^2

    by alternating the code step (:func:`sparse_encode`, warm-started) and the dictionary step
    (:func:`dictionary_step`). Overcomplete dictionaries (``n_components > n_features``) are allowed.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of atoms ``K``; ``None``: ``n_features``.
    penalty : {"l1", "log", "exp"}, default="l1"
        ``rho``: sum |z|, sum log(1 + z^2) or sum -exp(-z^2). ``log`` and ``exp`` are non-convex
        (local minima).
    eta : float >= 0, default=1.0
        The penalty's weight. scikit-learn's ``DictionaryLearning(alpha=...)`` is ``eta = 2 alpha``
        under ``penalty="l1"``.
    ridge : float >= 0, default=0.0
        ``lambda`` of the note's dictionary step ``+ lambda / 2 ||A||_F^2``.
    atom_constraint : {"unit_ball"} or None, default="unit_ball"
        ``"unit_ball"``: every atom has norm <= 1 (scikit-learn's constraint); ``None``: free atoms
        (then use ``ridge > 0``: with neither, the l1 objective is scale-degenerate).
    max_iter : int, default=1000
        Alternations (code step + dictionary step); alternating minimisation is slow near the end
        (hundreds of alternations to a relative change of 1e-6 are common).
    tol : float, default=1e-6
        Stop when the objective falls by at most ``tol`` times its value.
    code_algorithm : {"fista", "cd"}, default="fista"
        The code step's solver (:func:`sparse_encode`; ``"cd"``: l1 only).
    code_max_iter, code_tol : the code step's iterations and tolerance (see :func:`sparse_encode`).
    n_init : int, default=1
        Restarts from different initial dictionaries; the run with the lowest final objective is
        kept (the problem is non-convex in (A, Z) for every penalty).
    init : {"data", "random"}, default="data"
        Initial atoms when ``dict_init`` is None: randomly chosen samples (random directions for the
        atoms beyond n_samples) or Gaussian directions; scaled to unit norm.
    dict_init : array-like (n_components, n_features) or None
        Initial dictionary (used as given).
    random_state : int, RandomState or None
    device : str or torch.device, default=None
        Where to compute; ``None`` follows the input (CPU for NumPy input).
    dtype : None, 'float32', 'float64' (or the NumPy / torch type), default=None
        ``None`` follows the input (float32 stays float32, anything else becomes float64).

    Attributes
    ----------
    components_ : ndarray (n_components, n_features), the atoms (rows)
    n_iter_ : int, alternations run (of the kept restart)
    objective_ : ndarray (n_iter_,), ``L(A, Z)`` after every alternation of the kept restart
        (non-increasing)
    error_ : ndarray (n_iter_,), the same values (scikit-learn's name; scikit-learn's cost is half
        of ours for l1 with ``alpha = eta / 2``)
    converged_ : bool
    n_features_in_ : int

    ``transform`` codes new data from zero codes; ``fit_transform(X)`` is ``fit(X).transform(X)``.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        **_CODE_CONSTRAINTS,
        "ridge": [Interval(Real, 0, None, closed="left")],
        "atom_constraint": [StrOptions({"unit_ball"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"data", "random"})],
        "dict_init": ["array-like", None],
        "random_state": ["random_state"],
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, n_components=None, *, penalty="l1", eta=1.0, ridge=0.0, atom_constraint="unit_ball",
                 max_iter=1000, tol=1e-6, code_algorithm="fista", code_max_iter=1000, code_tol=1e-6, n_init=1,
                 init="data", dict_init=None, random_state=None, device=None, dtype=None):
        self.n_components = n_components
        self.penalty = penalty
        self.eta = eta
        self.ridge = ridge
        self.atom_constraint = atom_constraint
        self.max_iter = max_iter
        self.tol = tol
        self.code_algorithm = code_algorithm
        self.code_max_iter = code_max_iter
        self.code_tol = code_tol
        self.n_init = n_init
        self.init = init
        self.dict_init = dict_init
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _initial_dictionary(self, X, k, rng):
        n, d = X.shape
        if self.dict_init is not None:
            A = check_array(self.dict_init.detach().cpu().numpy() if isinstance(self.dict_init, torch.Tensor)
                            else self.dict_init, dtype=np.float64, input_name="dict_init")
            if A.shape != (k, d):
                raise ValueError(f"dict_init must have shape (n_components, n_features) = {(k, d)}, got {A.shape}")
            return torch.as_tensor(A, dtype=X.dtype, device=X.device)
        A = torch.as_tensor(rng.standard_normal((k, d)), dtype=X.dtype, device=X.device)
        if self.init == "data":
            m = min(n, k)
            idx = torch.as_tensor(rng.choice(n, size=m, replace=False), device=X.device)
            A[:m] = X[idx]
        norms = A.norm(dim=1, keepdim=True)
        zero = norms[:, 0] == 0  # a zero sample: a random direction instead
        if bool(zero.any()):
            A[zero] = torch.as_tensor(rng.standard_normal((int(zero.sum()), d)), dtype=X.dtype, device=X.device)
            norms = A.norm(dim=1, keepdim=True)
        return A / norms

    def _code(self, X, A, init=None):
        return sparse_encode(X, A, penalty=self.penalty, eta=float(self.eta), algorithm=self.code_algorithm,
                             init=init, max_iter=self.code_max_iter, tol=float(self.code_tol))

    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` (n_samples, n_features); returns ``self``."""
        self._validate_params()
        _check_code_options(self)
        X = self._validate_data(X, reset=True)
        d = X.shape[1]
        k = d if self.n_components is None else self.n_components
        rng = check_random_state(self.random_state)
        penalty, eta, ridge = self.penalty, float(self.eta), float(self.ridge)
        best = None
        for _ in range(self.n_init):
            run = self._single_run(X, self._initial_dictionary(X, k, rng), penalty, eta, ridge)
            if best is None or run[1][-1] < best[1][-1]:
                best = run
        A, objective, converged = best
        if not converged:
            warnings.warn(f"DictionaryLearning did not converge in max_iter={self.max_iter} alternations; "
                          "increase max_iter or tol", ConvergenceWarning, stacklevel=2)
        self._components = A
        self.components_ = to_numpy(A, X.dtype)
        self.objective_ = np.asarray(objective, dtype=np.float64)
        self.error_ = self.objective_.copy()
        self.n_iter_ = len(objective)
        self.converged_ = converged
        return self

    def _single_run(self, X, A, penalty, eta, ridge):
        """Alternate from the dictionary ``A``: (dictionary, objective after every alternation, converged)."""
        Z = X.new_zeros((X.shape[0], A.shape[0]))
        objective, converged = [], False
        for _ in range(self.max_iter):
            Z = self._code(X, A, init=Z)
            before = _total(X, Z, A, penalty, eta, ridge)
            A_new = _dictionary_step(X, Z, A, ridge, self.atom_constraint)
            after = _total(X, Z, A_new, penalty, eta, ridge)
            if after <= before:  # both steps are exact minimisers: only rounding could raise it
                A = A_new
            else:
                after = before
            previous = objective[-1] if objective else None
            objective.append(after)
            if previous is not None and previous - after <= float(self.tol) * abs(previous):
                converged = True
                break
        return A, objective, converged

    def transform(self, X):
        """Codes (n_samples, n_components) of ``X`` under the learned dictionary, from zero codes."""
        X = self._validate_data(X, reset=False)
        return to_numpy(self._code(X, self._components.to(X)), X.dtype)

    def inverse_transform(self, X):
        """Reconstructions ``Z @ components_`` (n_samples, n_features) from codes ``X``
        (n_samples, n_components)."""
        check_is_fitted(self)
        return _inverse(X, self._components, self._fit_dtype)


def _inverse(codes, A, dtype):
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    Z = check_array(codes, dtype=[np.float64, np.float32], input_name="X")
    if Z.shape[1] != A.shape[0]:
        raise ValueError("The number of components in the code is different from the number of components in "
                         f"the dictionary. Expected {A.shape[0]}, got {Z.shape[1]}.")
    out = torch.as_tensor(Z, device=A.device).to(A.dtype) @ A
    return to_numpy(out, dtype)


class SparseCoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimatorMixin, BaseEstimator):
    """Sparse codes under a fixed dictionary (scikit-learn's ``SparseCoder`` with this module's
    penalties and scaling): ``transform(X)`` solves ``min_z ||x - z A||^2 + eta rho(z)`` per row.

    Stateless: ``fit`` only validates, and ``transform`` works without it. The computation follows
    each input's dtype (or ``dtype``) and device (or ``device``).

    Parameters
    ----------
    dictionary : array-like or tensor (n_components, n_features), atoms as rows
    penalty, eta, code_algorithm, code_max_iter, code_tol : as :class:`DictionaryLearning`
        (scikit-learn's ``transform_alpha`` is ``eta / 2`` for l1).
    device, dtype : as :class:`DictionaryLearning`.

    Attributes
    ----------
    n_components_ : int
    n_features_in_ : int (after ``fit``)
    """

    # The dictionary fixes n_features; these checks feed data with another number of features to the
    # (5, 3) dictionary scikit-learn's check suite builds a SparseCoder with. Each passes with the
    # dictionary scikit-learn gives its own SparseCoder for that check (PER_ESTIMATOR_CHECK_PARAMS).
    _expected_failed_checks = {name: "the fixed (5, 3) dictionary takes 3 features and the check passes data with "
                                     "another number; it passes with a dictionary of the check's width, as "
                                     "scikit-learn's own SparseCoder does"
                               for name in ("check_estimators_overwrite_params", "check_estimators_fit_returns_self",
                                            "check_readonly_memmap_input", "check_n_features_in_after_fitting",
                                            "check_positive_only_tag_during_fit", "check_estimators_dtypes",
                                            "check_dtype_object", "check_transformers_unfitted_stateless",
                                            "check_fit2d_1sample", "check_fit2d_1feature", "check_fit_idempotent",
                                            "check_fit_check_is_fitted", "check_n_features_in")}
    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        **_CODE_CONSTRAINTS,
        **TORCH_PARAMETER_CONSTRAINTS,
    }

    def __init__(self, dictionary, *, penalty="l1", eta=1.0, code_algorithm="fista", code_max_iter=1000,
                 code_tol=1e-6, device=None, dtype=None):
        self.dictionary = dictionary
        self.penalty = penalty
        self.eta = eta
        self.code_algorithm = code_algorithm
        self.code_max_iter = code_max_iter
        self.code_tol = code_tol
        self.device = device
        self.dtype = dtype

    def __sklearn_is_fitted__(self):
        return True  # stateless

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def n_components_(self):
        return np.shape(self.dictionary)[0]

    @property
    def _n_features_out(self):
        return self.n_components_

    def _input(self, X, reset):
        device = check_device(self.device)
        # transform before fit: validate on a copy, so that transforming never fits the coder
        target = self if reset or hasattr(self, "n_features_in_") else copy.copy(self)
        X = validate_tensor(target, X, reset=reset or target is not self, dtype=resolve_dtype(self.dtype),
                            device=device)
        A = self._dictionary(X)
        if X.shape[1] != A.shape[1]:
            raise ValueError(f"Dictionary and X have different numbers of features:dictionary.shape: "
                             f"{tuple(A.shape)} X.shape: {tuple(X.shape)}")
        return X, A

    def _dictionary(self, like):
        value = self.dictionary
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        A = check_array(value, dtype=[np.float64, np.float32], input_name="dictionary")
        return torch.as_tensor(A, device=like.device).to(like.dtype)

    def fit(self, X, y=None):
        """Validate the parameters and ``X`` (its number of features must be the dictionary's)."""
        self._validate_params()
        _check_code_options(self)
        self._input(X, reset=True)
        return self

    def transform(self, X, y=None):
        """Codes (n_samples, n_components) of ``X`` from zero codes, in ``X``'s dtype."""
        self._validate_params()
        _check_code_options(self)
        X, A = self._input(X, reset=False)
        Z = sparse_encode(X, A, penalty=self.penalty, eta=float(self.eta), algorithm=self.code_algorithm,
                          max_iter=self.code_max_iter, tol=float(self.code_tol))
        return to_numpy(Z, X.dtype)

    def inverse_transform(self, X):
        """Reconstructions ``Z @ dictionary`` (n_samples, n_features) from codes ``X``."""
        Z = check_array(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X,
                        dtype=[np.float64, np.float32], input_name="X")
        A = self._dictionary(torch.empty(0, dtype=torch.float64))
        dtype = torch.float32 if Z.dtype == np.float32 else torch.float64
        return _inverse(Z, A, dtype)


# ----------------------------------------------------------------- the Pyro model
PRIORS = ("laplace", "cauchy")


class SparseCodingModel(ZooModel):
    """Sparse coding as a Pyro model with a fixed dictionary (see the module docstring)::

        z_nk ~ Laplace(0, prior_scale)  or  Cauchy(0, prior_scale)      (site "z", (N, K))
        x_n  ~ Normal(z_n A, noise_scale^2 I)                           (site "obs", (N, D))

    in the data plate ``"data"``. Its MAP codes are the code step's answer with penalty
    :attr:`penalty` and weight :attr:`eta` (``2 sigma^2 / b`` for Laplace, ``2 sigma^2`` for
    Cauchy with scale 1); :meth:`map_codes` computes them exactly.

    Parameters
    ----------
    dictionary : array-like or tensor (n_components, n_features), atoms as rows; kept fixed (a
        buffer, float64, used in the data's dtype and device). ``None``: ``n_components`` seeded
        Gaussian atoms of unit norm in ``n_features`` dimensions.
    prior : ``"laplace"`` (the l1 penalty) or ``"cauchy"`` (the log penalty).
    noise_scale : sigma > 0.
    prior_scale : the Laplace ``b`` or the Cauchy ``s``, > 0.

    The ``laplace`` guide needs a positive definite Hessian of the negative log joint; under the
    Laplace prior it is ``A A^T / sigma^2`` (the prior has no curvature), singular for an
    overcomplete dictionary, so the guide is not offered then (:attr:`supported_guides`).
    """

    @declare(dictionary=ArrayLike(ndim=2, none=True), n_components=Int(ge=1), n_features=Int(ge=1),
             prior=Choice(PRIORS), noise_scale=RealNumber(gt=0, what="a finite number > 0"),
             prior_scale=RealNumber(gt=0, what="a finite number > 0"), seed=Seed())
    def __init__(self, dictionary=None, *, n_components: int = 4, n_features: int = 2, prior: str = "laplace",
                 noise_scale: float = 1.0, prior_scale: float = 1.0, seed: int = 0):
        super().__init__()
        self.prior = check_choice(prior, PRIORS, "prior")
        self.noise_scale, self.prior_scale = float(noise_scale), float(prior_scale)
        if dictionary is None:
            k, d = check_positive_int(n_components, "n_components"), check_positive_int(n_features, "n_features")
            g = torch.Generator().manual_seed(int(seed))
            A = torch.randn(k, d, generator=g, dtype=torch.float64)
            A = A / A.norm(dim=1, keepdim=True)
        else:
            if isinstance(dictionary, torch.Tensor):
                dictionary = dictionary.detach().cpu()
            A = as_data_tensor(dictionary, name="dictionary", allow_1d=False, dtype=torch.float64, device="cpu")
        self.register_buffer("dictionary", A.clone())

    @property
    def n_components(self) -> int:
        return self.dictionary.shape[0]

    @property
    def n_features(self) -> int:
        return self.dictionary.shape[1]

    @property
    def site_dims(self):
        return {"z": ["obs_id", "atom"]}

    @property
    def supported_guides(self):
        if self.prior == "laplace" and self.n_components > self.n_features:
            return ("delta", "normal", "mvn", "lowrank", "flow")
        return None

    @property
    def penalty(self) -> str:
        """The code step's penalty whose minimiser is this model's MAP."""
        return "l1" if self.prior == "laplace" else "log"

    @property
    def eta(self) -> float:
        """The code step's weight: ``2 sigma^2 / b`` (Laplace), ``2 sigma^2`` (Cauchy, in the codes
        ``z / s`` and the dictionary ``s A``)."""
        two_var = 2 * self.noise_scale ** 2
        return two_var / self.prior_scale if self.prior == "laplace" else two_var

    def check_data(self, data) -> torch.Tensor:
        data = as_data_tensor(data, name="data", allow_1d=self.n_features == 1)
        if data.shape[1] != self.n_features:
            raise ValueError(f"data has {data.shape[1]} features but the dictionary has {self.n_features} "
                             f"(shape {tuple(self.dictionary.shape)})")
        return data

    def _A(self, like):
        return self.dictionary.to(dtype=like.dtype, device=like.device)

    def _code_prior(self, like):
        loc = torch.zeros((), dtype=like.dtype, device=like.device)
        scale = torch.as_tensor(self.prior_scale, dtype=like.dtype, device=like.device)
        return dist.Laplace(loc, scale) if self.prior == "laplace" else dist.Cauchy(loc, scale)

    def model(self, data: torch.Tensor):
        A = self._A(data)
        sigma = torch.as_tensor(self.noise_scale, dtype=data.dtype, device=data.device)
        with pyro.plate("data", data.shape[0]):
            z = pyro.sample("z", self._code_prior(data).expand([A.shape[0]]).to_event(1))
            pyro.sample("obs", dist.Normal(z @ A, sigma).to_event(1), obs=data)

    def pointwise_log_likelihood(self, samples, data):
        """log N(x_n | z_n A, sigma^2 I) for ``samples["z"]`` of shape (*S, N, K): (*S, N)."""
        z = samples["z"]
        sigma = torch.as_tensor(self.noise_scale, dtype=data.dtype, device=data.device)
        return dist.Normal(z @ self._A(data), sigma).log_prob(data).sum(-1)

    def map_codes(self, data, **options) -> torch.Tensor:
        """The MAP codes (N, K) by the code step (:func:`sparse_encode` with :attr:`penalty` and
        :attr:`eta`; ``options``: ``algorithm``, ``max_iter``, ``tol``, ``init``). Exact for the Laplace
        prior (convex); a local optimum from zero codes (or ``init``) for the Cauchy prior."""
        data = self.check_data(data)
        A = self._A(data)
        if self.prior == "laplace":
            return sparse_encode(data, A, penalty="l1", eta=self.eta, **options)
        s = self.prior_scale
        if options.get("init") is not None:
            options["init"] = torch.as_tensor(options["init"]).to(data) / s
        return s * sparse_encode(data, s * A, penalty="log", eta=self.eta, **options)


@register_model("sparse_coding")
def sparse_coding(dictionary=None, *, n_components: int = 4, n_features: int = 2, **kwargs) -> SparseCodingModel:
    """Sparse coding with a fixed dictionary: x_n ~ N(z_n A, sigma^2 I), Laplace (l1) or Cauchy (log) codes."""
    return SparseCodingModel(dictionary, n_components=n_components, n_features=n_features, **kwargs)


# ----------------------------------------------------------------- posterior mass away from the MAP's zeros
@dataclass
class MassAwayFromZero:
    """What :func:`mass_away_from_zero` measures.

    probability : tensor (N, K), P(|z_nk| > threshold) under the draws for the entries that are
        zero at the MAP, NaN elsewhere.
    mean : the mean of those probabilities (NaN when the MAP has no zero).
    threshold : the absolute threshold used.
    n_zero, n_entries : zero entries of the MAP, and all entries.
    """

    probability: torch.Tensor
    mean: float
    threshold: float
    n_zero: int
    n_entries: int


def mass_away_from_zero(samples, map_codes, threshold: float = 0.1, *, relative: bool = True,
                        zero_tol: float = 0.0) -> MassAwayFromZero:
    """How much posterior mass lies away from the MAP's exact zeros.

    For every code entry that is zero at the MAP (``|z_MAP| <= zero_tol``), the fraction of
    posterior draws with ``|z| > threshold``; the threshold is ``threshold * max |z_MAP|`` when
    ``relative`` (default: a tenth of the largest MAP code), else ``threshold`` itself.

    Parameters
    ----------
    samples : tensor (..., N, K), posterior draws of the codes (leading dims: chains, draws).
    map_codes : tensor (N, K), the MAP codes (e.g. :meth:`SparseCodingModel.map_codes`, which has
        exact zeros; an Adam MAP has none).
    """
    samples = torch.as_tensor(samples)
    map_codes = torch.as_tensor(map_codes).to(samples)
    if samples.dim() < 2 or tuple(samples.shape[-2:]) != tuple(map_codes.shape):
        raise ValueError(f"samples must have shape (..., N, K) with (N, K) = {tuple(map_codes.shape)}, got "
                         f"{tuple(samples.shape)}")
    if not (threshold >= 0 and zero_tol >= 0):
        raise ValueError(f"threshold and zero_tol must be >= 0, got {threshold!r} and {zero_tol!r}")
    thr = float(threshold) * float(map_codes.abs().max()) if relative else float(threshold)
    draws = samples.reshape((-1,) + tuple(map_codes.shape))
    away = (draws.abs() > thr).to(samples.dtype).mean(0)
    zero = map_codes.abs() <= zero_tol
    prob = torch.where(zero, away, torch.full_like(away, float("nan")))
    n_zero = int(zero.sum())
    mean = float(away[zero].mean()) if n_zero else float("nan")
    return MassAwayFromZero(prob, mean, thr, n_zero, map_codes.numel())
