"""Gaussian mixture kernels: one set of functions per covariance type, shared by every mixture.

After scikit-learn's ``sklearn/mixture/_gaussian_mixture.py``, written so that everything is a
few large matrix products per row chunk:

* **Design.** The data are centred once and turned into per-sample rows ``z_n``
  (:func:`design`): ``[x, 1]`` for full/tied/diag, ``[|x|^2, x, 1]`` for spherical and k-means.
  Per row chunk the kernels form what the scores and statistics are linear in
  (:func:`chunk_products`): for diag ``[x*x, x, 1]`` (:func:`expanded_design`), for full the
  ``(D+1)(D+2)/2`` distinct products ``z_i z_j`` (:func:`packed_design`), for the others ``z``.
* **E-step coefficients** (:func:`coefficients`) from the means, the precision Cholesky factor
  ``U`` and a per-component constant ``c_k``, such that the scores
  ``s_nk = c_k - (x_n - mu_k)^T U_k U_k^T (x_n - mu_k) / 2`` are one product
  (:func:`log_prob_scores`) with the chunk's products: for diag/spherical the
  ``|x|^2 - 2 x.mu + |mu|^2`` expansion with the precisions folded in, for full the same
  expansion of the quadratic form on the packed products (half the multiply-adds of
  ``(x - mu_k) U_k`` for every component, and no (n, K D) block), kept where it is accurate
  (:func:`packed_scores_accurate`; otherwise, and for float32, one GEMM
  ``[x, 1] @ [[U_1 ... U_K], [-mu_1 U_1 ... -mu_K U_K]]`` gives ``(x - mu_k) U_k`` for every
  component at once and the Mahalanobis term is its squared norm per ``D``-block); for tied a
  whitening product. With ``c_k = log pi_k + log|U_k| - D/2 log 2pi`` (:func:`log_gaussian_const`)
  the scores are ``log pi_k + log N(x_n | mu_k, (U_k U_k^T)^-1)``; CAVI passes its own constants.
  The coefficients are batched over leading sample dimensions (not tied).
* **Sufficient statistics** ``R @ products.T`` per chunk -- for full the distinct entries of
  ``sum_n r_nk z_n z_n^T`` -- accumulated over row chunks in float64 (:func:`accumulate_stats`,
  :func:`sufficient_statistics`; :func:`finish_stats` unpacks them), and the moments they give
  (:func:`estimate_moments`). :func:`em_chunk` fuses scores, responsibilities and statistics
  per chunk.
* **Maximum-likelihood M-step** (:func:`estimate_gaussian_parameters`) and the precision
  Cholesky factor with jitter where a covariance is not positive definite
  (:func:`compute_precision_cholesky`).

Users: :class:`~zoo.mixture.GaussianMixture` and :class:`~zoo.mixture.BayesianGaussianMixture`
(all of it, through their common base), :class:`~zoo.mixture.KMeans` and
:func:`~zoo.mixture.kmeans_plusplus` (the spherical design and distances), the Pyro models
``gmm`` (:func:`component_log_prob`, and ``em_update`` through the statistics and the M-step) and
``bayesian_gmm`` (:func:`component_log_prob`).

Shapes: ``U`` is upper triangular with precision ``U U^T`` (scikit-learn's
``precisions_cholesky_``): (..., K, D, D) full, (D, D) tied, (..., K, D) diag (``1/sigma``),
(..., K) spherical. Scores and responsibilities of a chunk are laid out (K, n) -- components
first (:func:`components_first`).
"""
from __future__ import annotations

import functools
import math

import torch

from ._base import LOG2E, exp_floor, tempered_responsibilities

__all__ = [
    "COVARIANCE_TYPES", "design", "design_width", "design_x", "components_first", "chunk_rows", "Workspace",
    "precision_cholesky_from_tril", "precision_cholesky_from_precision", "compute_precision_cholesky",
    "log_det_cholesky", "log_gaussian_const", "spherical_coef", "coefficients", "log_prob_scores",
    "weighted_log_prob", "spherical_scores", "sq_distances", "new_stats", "accumulate_stats", "finish_stats",
    "packed_size", "packed_design", "packed_scores_accurate", "packed_coefficients", "expanded_design",
    "chunk_products", "stats_width", "sub_block_rows",
    "sufficient_statistics", "em_chunk", "estimate_moments", "add_reg_covar", "estimate_gaussian_parameters",
    "expected_scores", "component_log_prob",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
LOG_2PI = math.log(2.0 * math.pi)
STAT = torch.float64  # dtype of parameters and accumulated statistics
# Chunk sizes: big enough that each op is a large parallel region (under CPU
# contention every OpenMP fork/join can cost a time slice), small enough that a
# chunk's blocks stay in cache between the products and the passes over them.
_FULL_BLOCK = 1 << 20  # elements of the (P (P + 1) / 2, chunk) packed design of the full case
_SMALL_BLOCK = 1 << 18  # elements of the (K, chunk) blocks of the other cases (diag, spherical: in sub-blocks)
_SUB_BLOCK = 1 << 15  # elements of the (K, rows) scores of a sub-block (diag, spherical; CPU)


# ----------------------------------------------------------------- designs
def design(X: torch.Tensor, kind: str, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample design rows ``(n, P)`` of ``X - shift`` for ``X`` (n, D) (see the module doc).

    Written in place into one ``(n, P)`` allocation (no ``(n, D)`` temporaries).
    """
    n, d = X.shape
    Z = X.new_empty((n, design_width(kind, d)))
    xc = design_x(Z, kind, d)
    if shift is None:
        xc.copy_(X)
    else:
        torch.sub(X, shift.to(X.dtype), out=xc)
    Z[:, -1] = 1.0
    if kind not in ("full", "tied", "diag"):  # spherical and k-means: |x|^2 in column 0
        step = max(1, (1 << 20) // d)
        for s in range(0, n, step):
            x = xc[s : s + step]
            torch.sum(x * x, dim=1, out=Z[s : s + step, 0])
    return Z


def design_width(kind: str, d: int) -> int:
    """Columns ``P`` of the design rows of ``D`` features."""
    return d + 1 if kind in ("full", "tied", "diag") else d + 2


def design_x(Z: torch.Tensor, kind: str, d: int) -> torch.Tensor:
    """The centred data ``(n, D)`` inside a design (a view)."""
    if kind in ("full", "tied", "diag"):
        return Z[:, :d]
    return Z[:, 1 : d + 1]


def expanded_design(z: torch.Tensor, ws: Workspace | None = None) -> torch.Tensor:
    """``(n, 2D+1)`` rows ``[x*x, x, 1]`` of diag design rows ``z = [x, 1]`` (n, D+1): what the
    diag scores and statistics are linear in, formed per chunk (in cache) rather than stored:
    half the design's memory (at N=100k, D=32, writing a fresh 52 MB design cost about 17 ms a
    fit, page faults mostly, where the 26 MB one is recycled by the allocator; the expansion
    per chunk costs about as much as reading the wider rows)."""
    n, p = z.shape
    d = p - 1
    e = ws.get("expanded", (n, 2 * d + 1), z) if ws is not None else z.new_empty((n, 2 * d + 1))
    e[:, d:].copy_(z)
    torch.mul(z[:, :d], z[:, :d], out=e[:, :d])
    return e


def chunk_products(z: torch.Tensor, kind: str, ws: Workspace | None = None) -> torch.Tensor:
    """``(Q, n)``: the per-sample quantities that a chunk's scores (``A @ products`` for
    coefficients ``A`` (K, Q)) and statistics (``R @ products.T``) are linear in: full the
    :func:`packed_design`, diag the :func:`expanded_design` (a transposed view), the other kinds
    the design rows themselves (transposed)."""
    if kind == "full":
        return packed_design(z, ws)
    if kind == "diag":
        return expanded_design(z, ws).T
    return z.T


def stats_width(kind: str, p: int) -> int:
    """Columns of a component's statistics for design rows of ``p`` columns: full the
    ``p (p + 1) / 2`` distinct entries of ``z z^T``, diag ``2 p - 1`` (``[x*x, x, 1]``), the
    other kinds ``p``."""
    return packed_size(p) if kind == "full" else 2 * p - 1 if kind == "diag" else p


# ------------------------------------------------ packed symmetric products
def packed_size(p: int) -> int:
    """Rows of the packed design of ``p``-column design rows: ``p (p + 1) / 2``."""
    return p * (p + 1) // 2


@functools.lru_cache(maxsize=None)
def _product_plan(d: int) -> tuple:
    """How :func:`packed_design` forms the ``d (d + 1) / 2`` products ``x_i x_j`` (``i <= j``) of
    ``d`` rows in few large elementwise products (each a Python-level call, so their number
    matters for small chunks): a tuple of blocks ``(batch, stride, a, a_len, b, b_len)``, each the
    ``batch`` outer products of rows ``[a, a + a_len)`` with rows ``[b, b + b_len)``, shifted by
    ``t * stride`` for ``t < batch``, written one after the other.

    The first ``r`` rows are peeled one block each (row ``i`` times rows ``[i, d)``); the other
    ``d - r = 2^m c`` (``c`` odd) are halved ``m`` times, the cross products of all halves of one
    level forming one block, and the ``2^m`` remaining triangles of ``c`` rows take ``c`` blocks
    (row by row, batched over the triangles); ``r`` minimises the count, ``r + m + c``
    (6 blocks for ``d = 32`` where row by row takes 32)."""
    def cost(r):
        rest = d - r
        if rest == 0:
            return r, 0, 0
        m = (rest & -rest).bit_length() - 1
        return r + m + (rest >> m), m, rest >> m
    r = min(range(d + 1), key=lambda r: (cost(r)[0], r))
    _, m, c = cost(r)
    plan = [(1, 0, i, 1, i, d - i) for i in range(r)]
    size = d - r
    for level in range(m):
        seg = size >> level
        plan.append((1 << level, seg, r, seg // 2, r + seg // 2, seg // 2))
    for i in range(c):
        plan.append((1 << m, c, r + i, 1, r + i, c - i))
    return tuple(plan)


@functools.lru_cache(maxsize=None)
def _pair_layout(p: int):
    """The order of the packed design of ``p``-column rows ``z = [x, 1]`` (``d = p - 1``): the
    products ``x_i x_j`` (``i <= j``) in the order of :func:`_product_plan`, then ``z`` itself
    (its products with the trailing 1). Returns ``(rows, cols, index)``: the pair
    ``(rows[c], cols[c])`` behind packed row ``c``, and the symmetric (p, p) map from a pair to
    its packed row (CPU tensors)."""
    d = p - 1
    pairs = [(a + t * stride + i, b + t * stride + j)
             for batch, stride, a, a_len, b, b_len in _product_plan(d)
             for t in range(batch) for i in range(a_len) for j in range(b_len)]
    pairs += [(i, d) for i in range(p)]
    rows = torch.tensor([a for a, _ in pairs], dtype=torch.long)
    cols = torch.tensor([b for _, b in pairs], dtype=torch.long)
    index = torch.full((p, p), -1, dtype=torch.long)
    where = torch.arange(len(pairs))
    index[rows, cols] = where
    index[cols, rows] = where
    assert len(pairs) == packed_size(p) and bool((index >= 0).all()), "the product plan misses a pair"
    return rows, cols, index


def packed_design(z: torch.Tensor, ws: Workspace | None = None) -> torch.Tensor:
    """The distinct products ``z_i z_j`` of full/tied design rows ``z`` (n, p) (last column 1),
    ``(p (p + 1) / 2, n)`` in the order of :func:`_pair_layout`: products first, so that each
    piece is written contiguously and the products that use it read it as a plain or transposed
    matrix. Any symmetric quadratic form in ``z`` is then one (1 x p(p+1)/2) row times it, and
    ``sum_n r_nk z_n z_n^T`` for all ``k`` one ``R @ packed.T``: about half the multiply-adds of
    the full outer products."""
    n, p = z.shape
    m = packed_size(p)
    q = ws.get("packed", (m, n), z) if ws is not None else z.new_empty((m, n))
    zt = q[m - p :]  # z itself: the products with the trailing 1
    zt.copy_(z.T)
    o = 0
    for batch, stride, a, a_len, b, b_len in _product_plan(p - 1):
        left = zt[a:].as_strided((batch, a_len, 1, n), (stride * n, n, 0, 1))
        right = zt[b:].as_strided((batch, 1, b_len, n), (stride * n, 0, n, 1))
        size = batch * a_len * b_len
        torch.mul(left, right, out=q[o : o + size].view(batch, a_len, b_len, n))
        o += size
    return q


def components_first(kind: str) -> bool:
    """Whether a chunk's scores and responsibilities are laid out (K, n): the narrow
    (n x P) @ (P x K) products run markedly faster as (K x P) @ (P x n). True for every kind
    (the full kind's exact route computes (n, K) and hands out its transposed view)."""
    return True


def chunk_rows(kind: str, k: int, d: int) -> int:
    """Rows per chunk: full, the packed design of a chunk stays about ``2**20`` elements; the
    other kinds, the (K, chunk) scores about ``2**18`` (cut into sub-blocks of ``2**15`` for
    diag and spherical on the CPU, see :func:`em_chunk`). Measured with N=100k, D=K=32 on two
    cores: larger chunks spill the caches, smaller ones make the products less efficient and
    multiply the calls."""
    if kind == "full":
        return max(256, _FULL_BLOCK // packed_size(d + 1))
    return max(1024, _SMALL_BLOCK // k)


class Workspace:
    """Reused scratch buffers: fresh large allocations per chunk cost page faults."""

    def __init__(self):
        self._bufs = {}

    def get(self, name, shape, like: torch.Tensor) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(numel, dtype=like.dtype, device=like.device)
            self._bufs[name] = buf
        return buf[:numel].view(shape)

    def clear(self):
        self._bufs.clear()

    def __getstate__(self):  # scratch space: a pickled estimator carries none
        return {"_bufs": {}}


# ------------------------------------------------------ precision Cholesky
def precision_cholesky_from_tril(L: torch.Tensor) -> torch.Tensor:
    """Upper ``U = L^-T`` with ``U U^T = (L L^T)^-1``, for lower Cholesky factors ``L``
    (..., D, D) of covariances."""
    eye = torch.eye(L.shape[-1], dtype=L.dtype, device=L.device).expand_as(L)
    return torch.linalg.solve_triangular(L, eye, upper=False).mT


def precision_cholesky_from_precision(P: torch.Tensor) -> torch.Tensor:
    """Upper ``U`` with ``U U^T = P`` for precision matrices (..., D, D): the Cholesky factor of
    the index-reversed matrix, reversed."""
    return torch.linalg.cholesky(P.flip(-1, -2)).flip(-1, -2)


def compute_precision_cholesky(cov: torch.Tensor, kind: str, reg: float):
    """``(cov, U, jitter)``: the covariances (with jitter added where one was not positive
    definite), the upper ``U`` with ``cov^-1 = U U^T`` and whether jitter was needed.

    ``cov`` is (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical (float64).
    """
    jitter = False
    if kind in ("full", "tied"):
        batch = cov if kind == "full" else cov[None]
        L, info = torch.linalg.cholesky_ex(batch)
        if bool((info != 0).any()):
            jitter = True
            batch = batch.clone()
            scale = torch.diagonal(batch, dim1=-2, dim2=-1).abs().mean(-1)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            eps = max(reg, float(torch.finfo(STAT).eps))
            eye = torch.eye(cov.shape[-1], dtype=STAT, device=cov.device)
            for step in range(40):  # growing jitter, only on the failing matrices
                bad = info != 0
                if not bool(bad.any()):
                    break
                amount = (eps * 10.0 ** (step / 2)) * scale[bad]
                batch[bad] = batch[bad] + amount[:, None, None] * eye
                L, info = torch.linalg.cholesky_ex(batch)
            if bool((info != 0).any()):
                raise ValueError("a covariance matrix could not be made positive definite; check the data")
        U = precision_cholesky_from_tril(L)
        if kind == "tied":
            U, batch = U[0], batch[0]
        return batch, U, jitter
    floor = max(reg, float(torch.finfo(STAT).eps))
    bad = ~(cov > 0)
    if bool(bad.any()):
        jitter = True
        cov = torch.where(bad, torch.full_like(cov, floor), cov)
    return cov, cov.rsqrt(), jitter


def log_det_cholesky(U: torch.Tensor, kind: str, d: int) -> torch.Tensor:
    """``log|U| = log det(precision) / 2`` per component: (..., K) (tied: a scalar)."""
    if kind in ("full", "tied"):
        return torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(-1)
    if kind == "diag":
        return torch.log(U).sum(-1)
    return d * torch.log(U)


def log_gaussian_const(U: torch.Tensor, kind: str, d: int) -> torch.Tensor:
    """``log|U| - D/2 log 2pi``: the Gaussian log-density at its mean, per component."""
    return log_det_cholesky(U, kind, d) - 0.5 * d * LOG_2PI


# ------------------------------------------------------ E-step coefficients
def spherical_coef(means: torch.Tensor, precisions: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """``(..., D+2, K)`` matrix ``A`` with ``[|x|^2, x, 1] @ A = const_k - lam_k |x - mu_k|^2 / 2``.

    ``means`` (..., K, D), ``precisions`` (..., K) the ``lam_k``, ``const`` (..., K); this is the
    distance code shared by the spherical Gaussian mixture, k-means and k-means++.
    """
    *batch, k, d = means.shape
    A = means.new_empty((*batch, d + 2, k))
    A[..., 0, :] = -0.5 * precisions
    A[..., 1 : d + 1, :] = (means * precisions[..., None]).mT
    A[..., d + 1, :] = const - 0.5 * precisions * (means * means).sum(-1)
    return A


def coefficients(kind: str, means: torch.Tensor, prec_chol: torch.Tensor, const: torch.Tensor,
                 dtype: torch.dtype | None = None) -> dict:
    """The E-step coefficients of the scores ``s_nk = const_k - (x_n - mu_k)^T U_k U_k^T (x_n - mu_k) / 2``.

    Parameters
    ----------
    means : (..., K, D), in the coordinates of the design (centred by the same shift).
    prec_chol : ``U`` (see the module doc).
    const : (..., K) per-component constants.
    dtype : of the coefficients (default: that of ``means``), the dtype of the design.

    Returns
    -------
    dict: full ``W`` (..., D+1, K D) (scaled by ``sqrt(1/2)``) and ``const`` (..., K), plus
    ``Bt`` (K, (D+1)(D+2)/2), the scores on the :func:`packed_design`, for float64 coefficients
    without batch dimensions where the expansion stays accurate (:func:`packed_scores_accurate`);
    tied ``Ut`` (D, D), ``M`` (K, D), ``const`` (K,); diag and spherical ``At`` (..., K, P).
    Where the scores are one plain product (``At``, ``Bt``, no batch dimensions) ``bits`` holds
    that matrix times ``LOG2E``: the scores in bits, for :func:`em_chunk`.
    """
    dtype = means.dtype if dtype is None else dtype
    *batch, k, d = means.shape
    U, mu = prec_chol, means
    if kind == "full":
        W = mu.new_empty((*batch, d + 1, k * d))
        W[..., :d, :] = U.transpose(-3, -2).reshape(*batch, d, k * d)
        W[..., d, :] = -torch.einsum("...kd,...kde->...ke", mu, U).reshape(*batch, k * d)
        W.mul_(math.sqrt(0.5))  # so that the squared norms come out halved
        coef = {"W": W.to(dtype), "const": const.to(dtype)}
        if not batch and dtype == STAT and W.dtype == STAT and packed_scores_accurate(mu, U):
            Bt = packed_coefficients(W, const)
            coef.update(Bt=Bt, bits=Bt * LOG2E)
        return coef
    if kind == "tied":
        M = mu @ U
        return {"Ut": U.mT.contiguous().to(dtype), "M": M.to(dtype), "const": (const - 0.5 * (M * M).sum(-1)).to(dtype)}
    if kind == "diag":
        lam = U * U
        A = mu.new_empty((*batch, 2 * d + 1, k))
        A[..., :d, :] = -0.5 * lam.mT
        A[..., d : 2 * d, :] = (mu * lam).mT
        A[..., 2 * d, :] = const - 0.5 * (mu * mu * lam).sum(-1)
    else:
        A = spherical_coef(mu, U * U, const)
    coef = {"At": A.mT.contiguous().to(dtype)}
    if not batch:
        coef["bits"] = (A.mT * LOG2E).contiguous().to(dtype)
    return coef


#: Largest rounding error accepted in the packed scores (nats; a relative error of the responsibilities).
_PACKED_TOL = 1e-10


def packed_scores_accurate(means: torch.Tensor, prec_chol: torch.Tensor) -> bool:
    """Whether the full scores may be evaluated on the :func:`packed_design`, i.e. expanded as
    ``x^T P x - 2 mu^T P x + mu^T P mu`` (``P = U U^T``), in float64 within rounding.

    The expansion's rounding error grows like ``eps |P| |x|^2`` instead of with the score
    itself, and near component ``k`` (where its responsibilities are not negligible) a point has
    ``|x|^2 ~ |mu_k|^2 + tr(Sigma_k)``; far from every component both routes err alike. So the
    exact route (:func:`log_prob_scores` with ``W``) is kept unless
    ``eps |U_k|_F^2 (1 + |mu_k|^2 + |U_k^-1|_F^2) <= 1e-10`` for every component: an absolute
    error of the log densities, i.e. a relative error of the responsibilities, of that order.
    The data are centred, so this holds unless components are very narrow next to their
    distance from the data mean (or a covariance is nearly singular).
    """
    U = prec_chol.to(STAT)
    eye = torch.eye(U.shape[-1], dtype=STAT, device=U.device).expand_as(U)
    inv = torch.linalg.solve_triangular(U, eye, upper=True)
    growth = U.square().sum((-2, -1)) * (1.0 + means.to(STAT).square().sum(-1) + inv.square().sum((-2, -1)))
    return bool(torch.finfo(STAT).eps * growth.max() <= _PACKED_TOL)


def packed_coefficients(W: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """``Bt`` (K, (D+1)(D+2)/2): the full scores as ``Bt @`` :func:`packed_design`.

    The score of component ``k`` is the quadratic form ``z^T G_k z`` of the design row
    ``z = [x, 1]`` with ``G_k = const_k e e^T - W_k W_k^T`` (``W_k`` the (D+1, D) block of
    ``W``, ``e`` the last unit vector); a product ``z_i z_j`` with ``i != j`` stands once in the
    packed design for both ``G_ij`` and ``G_ji``, so its coefficient is doubled."""
    p, k = W.shape[0], const.shape[-1]
    d = p - 1
    blocks = W.view(p, k, d).transpose(0, 1)  # (K, D+1, D)
    G = torch.bmm(blocks, blocks.mT).neg_()
    G[:, d, d] += const
    rows, cols, _ = _pair_layout(p)
    Bt = G[:, rows.to(W.device), cols.to(W.device)]
    Bt[:, (rows != cols).to(W.device)] *= 2.0
    return Bt.contiguous()


def log_prob_scores(z: torch.Tensor, coef: dict, kind: str, ws: Workspace | None = None, *,
                    products: torch.Tensor | None = None, scratch: bool = False) -> torch.Tensor:
    """The scores of design rows ``z`` (n, P) for :func:`coefficients` ``coef``: (..., K, n) when
    :func:`components_first` (a transposed view for the exact full route), else (..., n, K).

    ``ws`` holds the chunk's scratch; ``products`` is :func:`chunk_products` of ``z`` when the
    caller has it. With ``scratch`` (and ``ws``) the scores of one plain product (diag,
    spherical, packed full) are written into ``ws`` (valid until its next use) instead of a new
    block per chunk."""
    if kind == "tied":
        d = coef["Ut"].shape[-1]
        y = coef["Ut"] @ z[:, :d].T  # whitened data (D, n)
        out = torch.addmm(coef["const"][:, None], coef["M"], y)
        return out.sub_(0.5 * (y * y).sum(0))
    A = coef.get("Bt") if kind == "full" else coef["At"]
    if A is not None:  # one plain product
        if products is None:
            products = chunk_products(z, kind, ws)
        if scratch and ws is not None and A.dim() == 2:
            return torch.mm(A, products, out=ws.get("scores", (A.shape[0], z.shape[0]), z))
        return A @ products
    W, const = coef["W"], coef["const"]
    k = const.shape[-1]
    d = W.shape[-1] // k
    if ws is not None and W.dim() == 2:
        y = torch.mm(z, W, out=ws.get("block", (z.shape[0], k * d), z))
    else:
        y = torch.matmul(z, W)
    # (x - mu_k) U_k / sqrt(2) for all k; squared norms per D-block: one read pass, no square pass
    sq = torch.linalg.vector_norm(y.view(*y.shape[:-1], k, d), dim=-1).square_()
    return torch.sub(const.unsqueeze(-2), sq).mT


def weighted_log_prob(z: torch.Tensor, coef: dict, kind: str, ws: Workspace | None = None) -> torch.Tensor:
    """The scores as a new contiguous (..., n, K), whatever the layout of the kind: the callers
    reduce along K (arg-max, log-sum-exp), which is several times faster over contiguous rows
    than over a transposed view, more than paying for the copy (the (K, n) product itself goes
    to ``ws``'s scratch)."""
    s = log_prob_scores(z, coef, kind, ws, scratch=True)
    return (s.mT if components_first(kind) else s).contiguous()


def spherical_scores(Z: torch.Tensor, means, precisions, const) -> torch.Tensor:
    """``(n, K)`` scores ``const_k - lam_k |x_n - mu_k|^2 / 2`` from a spherical design."""
    return Z @ spherical_coef(means, precisions, const).to(Z.dtype)


def sq_distances(Z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``(n, K)`` squared Euclidean distances (clamped at 0) from a spherical design."""
    ones = centers.new_ones(centers.shape[0])
    return spherical_scores(Z, centers, ones, torch.zeros_like(ones)).mul_(-2.0).clamp_(min=0.0)


# ----------------------------------------------------------- statistics
def new_stats(kind: str, k: int, p: int, device) -> torch.Tensor:
    """A zero accumulator (float64) for design rows of ``p`` columns: (K, :func:`stats_width`),
    for full the distinct entries of each ``sum_n r_nk z_n z_n^T`` (see :func:`packed_design`)."""
    return torch.zeros((k, stats_width(kind, p)), dtype=STAT, device=device)


def accumulate_stats(acc: torch.Tensor, z: torch.Tensor, resp: torch.Tensor, kind: str,
                     ws: Workspace | None = None, *, products: torch.Tensor | None = None) -> None:
    """Add a chunk's statistics with ``resp`` (K, n) (laid out as :func:`components_first`): one
    product ``R @ products.T`` with the :func:`chunk_products` of ``z`` (``products``, when the
    caller has it): full ``sum_n r_nk z_n z_n^T`` (its distinct entries), diag
    ``sum_n r_nk [x*x, x, 1]``, the other kinds ``R z``."""
    if products is None:
        products = chunk_products(z, kind, ws)
    if acc.dtype == z.dtype:
        acc.addmm_(resp, products.T)
    else:  # float32 data: products per chunk, sums in float64
        acc += torch.mm(resp, products.T).to(STAT)


def finish_stats(acc: torch.Tensor, kind: str, k: int) -> torch.Tensor:
    """full: ``(K, P, P)`` blocks ``sum_n r_nk z_n z_n^T``; others: ``(K, P)`` ``sum_n r_nk z_n``."""
    if kind == "full":
        p = int(round((math.sqrt(8 * acc.shape[1] + 1) - 1) / 2))
        index = _pair_layout(p)[2].to(acc.device)
        return acc[:, index]
    return acc


def em_chunk(acc: torch.Tensor, z: torch.Tensor, coef: dict, kind: str, temperature: float,
             ws: Workspace | None = None) -> torch.Tensor:
    """One chunk of a fused EM (or CAVI) iteration: the scores of the design rows ``z`` for the
    coefficients ``coef``, turned into (tempered) responsibilities and added to the statistics
    ``acc`` while they are in cache. Returns the chunk's sum of per-sample log normalisers
    (a float64 scalar tensor).

    Where the scores are one plain product (diag, spherical, full on the packed design) they
    are computed in bits with ``coef["bits"]`` into reused scratch, so that the responsibilities
    need no scaling pass before their (base-2) exponentials. On the CPU the narrow kinds (diag,
    spherical) cut the chunk into sub-blocks of :func:`sub_block_rows` rows, batched through
    both products (see :func:`_em_sub_blocks`)."""
    A = coef.get("bits")
    n = z.shape[0]
    sub = sub_block_rows(kind, A.shape[0], z.device) if A is not None and A.dim() == 2 else 0
    if sub and n >= 2 * sub:
        head = n - n % sub
        total = _em_sub_blocks(acc, z[:head], A, kind, temperature, ws, head // sub)
        if head < n:
            total = total + em_chunk(acc, z[head:], coef, kind, temperature, ws)
        return total
    products = chunk_products(z, kind, ws) if kind != "tied" else None
    if A is not None:
        if ws is not None:
            resp = torch.mm(A, products, out=ws.get("scores", (A.shape[0], n), z))
        else:
            resp = A @ products
    else:
        resp = log_prob_scores(z, coef, kind, ws, products=products)
    norm = tempered_responsibilities(resp, temperature, dim=0, bits=A is not None)
    accumulate_stats(acc, z, resp, kind, ws, products=products)
    return norm.sum(dtype=STAT)


def sub_block_rows(kind: str, k: int, device) -> int:
    """Rows of the sub-blocks of :func:`em_chunk` (0: none): diag and spherical on the CPU, with
    (K, rows) scores of about ``2**15`` elements."""
    if kind not in ("diag", "spherical") or torch.device(device).type != "cpu":
        return 0
    return max(256, _SUB_BLOCK // k)


def _em_sub_blocks(acc: torch.Tensor, z: torch.Tensor, A: torch.Tensor, kind: str, temperature: float,
                   ws: Workspace | None, blocks: int) -> torch.Tensor:
    """:func:`em_chunk` of the plain-product kinds on ``blocks`` equal sub-blocks of ``z`` at once:
    both products are batched matrix products over the sub-blocks (``(B, K, Q) @ (B, Q, rows)``
    and ``(B, K, rows) @ (B, rows, Q)``) and the statistics of the sub-blocks are summed. Measured
    about 10% faster than one thin product over the whole chunk (N=100k, D=K=32, two cores):
    small independent products keep their operands in one core's cache, where BLAS splits one
    thin product across the cores inside every call."""
    n = z.shape[0]
    k, q = A.shape
    products = chunk_products(z, kind, ws).unflatten(1, (blocks, n // blocks)).transpose(0, 1)  # (B, Q, rows)
    out = ws.get("scores", (blocks, k, n // blocks), z) if ws is not None else None
    resp = torch.bmm(A.expand(blocks, k, q), products, out=out)
    norm = tempered_responsibilities(resp, temperature, dim=1, bits=True)
    part = torch.bmm(resp, products.mT).sum(0)
    acc += part if part.dtype == acc.dtype else part.to(STAT)
    return norm.sum(dtype=STAT)


def sufficient_statistics(Z: torch.Tensor, R: torch.Tensor, kind: str, chunks, *, is_log: bool = False,
                          ws: Workspace | None = None) -> torch.Tensor:
    """Statistics of ``(n, K)`` responsibilities ``R`` (or log responsibilities) of the design
    rows ``Z``, accumulated over the row slices ``chunks``."""
    k = R.shape[1]
    acc, floor = new_stats(kind, k, Z.shape[1], Z.device), exp_floor(Z.dtype)
    for sl in chunks:
        r = R[sl]
        if is_log:
            r = torch.clamp(r, min=floor).exp_()
        accumulate_stats(acc, Z[sl], r.T if components_first(kind) else r, kind, ws)
    return finish_stats(acc, kind, k)


# ------------------------------------------------------------- M-step
def estimate_moments(stats: torch.Tensor, kind: str, tiny: float, scatter: torch.Tensor | None = None):
    """Soft counts ``nk`` (K,) (plus ``tiny``, as scikit-learn: no 0/0 for empty components),
    means (K, D) and covariances without regulariser, from the statistics: (K, D, D) full and
    (D, D) tied (symmetrised; tied needs ``scatter = sum_n z_n z_n^T`` of the centred data),
    (K, D) diag, (K,) spherical."""
    p = stats.shape[-1]
    if kind == "full":
        d = p - 1
        nk, sx = stats[:, d, d] + tiny, stats[:, :d, d]
    elif kind == "tied":
        d = p - 1
        nk, sx = stats[:, d] + tiny, stats[:, :d]
    elif kind == "diag":
        d = (p - 1) // 2
        nk, sx = stats[:, 2 * d] + tiny, stats[:, d : 2 * d]
    else:
        d = p - 2
        nk, sx = stats[:, d + 1] + tiny, stats[:, 1 : d + 1]
    means = sx / nk[:, None]
    if kind == "full":
        cov = stats[:, :d, :d] / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        cov = 0.5 * (cov + cov.mT)
    elif kind == "tied":
        cov = (scatter - (means.T * nk) @ means) / nk.sum()
        cov = 0.5 * (cov + cov.T)
    elif kind == "diag":
        cov = stats[:, :d] / nk[:, None] - means * means
    else:
        cov = (stats[:, 0] / nk - (means * means).sum(1)) / d
    return nk, means, cov


def add_reg_covar(cov: torch.Tensor, kind: str, reg: float) -> torch.Tensor:
    """``cov`` with ``reg`` added to every variance (a new tensor)."""
    if kind in ("full", "tied"):
        out = cov.clone()
        out.diagonal(dim1=-2, dim2=-1).add_(reg)
        return out
    return cov + reg


def estimate_gaussian_parameters(stats: torch.Tensor, kind: str, reg_covar: float, tiny: float,
                                 scatter: torch.Tensor | None = None):
    """The maximum-likelihood M-step: ``(nk, means, covariances, raw)`` with ``reg_covar`` added to
    the variances and ``raw`` (K,) the mean unregularised variance of each component (of the
    shared covariance for tied), which tells a collapsed component."""
    nk, means, cov = estimate_moments(stats, kind, tiny, scatter)
    if kind == "full":
        raw = torch.diagonal(cov, dim1=-2, dim2=-1).mean(1)
    elif kind == "tied":
        raw = torch.diagonal(cov).mean().expand(nk.shape[0])
    elif kind == "diag":
        raw = cov.mean(1)
    else:
        raw = cov
    return nk, means, add_reg_covar(cov, kind, reg_covar), raw


def expected_scores(stats: torch.Tensor, kind: str, means: torch.Tensor, prec_chol: torch.Tensor,
                    const: torch.Tensor, scatter: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_nk r_nk s_nk`` for the scores ``s_nk = const_k - (x_n - m_k)^T P_k (x_n - m_k) / 2``
    (``P_k = U_k U_k^T``) of the responsibilities behind ``stats``, from the statistics alone;
    tied also needs ``scatter = sum_n z_n z_n^T`` of the centred data (the rows of the
    responsibilities sum to 1, so ``sum_nk r_nk x_n^T P x_n = tr(P scatter)``)."""
    U, m = prec_chol, means
    if kind in ("full", "tied"):
        d = stats.shape[-1] - 1
        P = U @ U.mT
        if kind == "full":
            n, sx, sxx = stats[:, d, d], stats[:, :d, d], stats[:, :d, :d]
            Pm = torch.einsum("kde,ke->kd", P, m)
            second = (P * sxx).sum()
        else:
            n, sx = stats[:, d], stats[:, :d]
            Pm = m @ P
            second = (P * scatter).sum()
        quad = second - 2.0 * (Pm * sx).sum() + (n * (Pm * m).sum(1)).sum()
    elif kind == "diag":
        d = (stats.shape[-1] - 1) // 2
        n, sx, sxx = stats[:, 2 * d], stats[:, d : 2 * d], stats[:, :d]
        P = U * U
        quad = (P * (sxx - 2.0 * m * sx + n[:, None] * m * m)).sum(1)
    else:
        d = stats.shape[-1] - 2
        n, sx, sxx = stats[:, d + 1], stats[:, 1 : d + 1], stats[:, 0]
        quad = U * U * (sxx - 2.0 * (m * sx).sum(1) + n * (m * m).sum(1))
    return (const * n).sum() - 0.5 * quad.sum()


def component_log_prob(X: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, prec_chol: torch.Tensor,
                       kind: str) -> torch.Tensor:
    """``log pi_k + log N(x_n | mu_k, (U_k U_k^T)^-1)``, (..., n, K), for data ``X`` (n, D) and
    parameters batched over leading sample dimensions (``log_weights`` (..., K), ``means``
    (..., K, D), ``prec_chol`` ``U``; full, diag or spherical): the coefficients evaluated on the
    design of ``X`` centred by its mean (the expansions stay accurate away from the origin)."""
    shift = X.mean(0)
    const = log_gaussian_const(prec_chol, kind, X.shape[1]) + log_weights
    coef = coefficients(kind, means - shift, prec_chol, const)
    return weighted_log_prob(design(X, kind, shift), coef, kind)
