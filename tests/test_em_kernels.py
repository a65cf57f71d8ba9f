"""The per-chunk EM kernels of zoo.mixture._gaussian against plain reference formulas."""
import math

import numpy as np
import pytest
import torch

from zoo.mixture import _gaussian as K
from zoo.mixture._base import LOG2E, tempered_responsibilities

KINDS = ("full", "tied", "diag", "spherical")


def _problem(kind, n=300, d=5, k=4, seed=0, dtype=torch.float64, spread=1.0):
    """A centred design, parameters and E-step coefficients for ``kind``."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * 2.0
    shift = X.mean(0)
    means = torch.randn(k, d, generator=g, dtype=torch.float64) * 2.0 - shift
    if kind == "full":
        A = torch.randn(k, d, d, generator=g, dtype=torch.float64)
        cov = (A @ A.mT / d + torch.eye(d, dtype=torch.float64)) * spread
        L = torch.linalg.cholesky(cov)
        U = K.precision_cholesky_from_tril(L)
    elif kind == "tied":
        A = torch.randn(d, d, generator=g, dtype=torch.float64)
        U = K.precision_cholesky_from_tril(torch.linalg.cholesky(A @ A.T / d + torch.eye(d, dtype=torch.float64)))
    elif kind == "diag":
        U = torch.rand(k, d, generator=g, dtype=torch.float64) + 0.5
    else:
        U = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    const = K.log_gaussian_const(U, kind, d) + torch.log(torch.full((k,), 1.0 / k, dtype=torch.float64))
    if kind == "tied":
        const = const.expand(k)
    coef = K.coefficients(kind, means, U, const, dtype=dtype)
    Z = K.design(X.to(dtype), kind, shift)
    return X - shift, Z, means, U, const, coef


def _reference_scores(x, means, U, const, kind):
    """``const_k - |(x - mu_k) U_k|^2 / 2`` component by component, (K, n)."""
    out = []
    for j in range(means.shape[0]):
        diff = x - means[j]
        if kind == "full":
            y = diff @ U[j]
        elif kind == "tied":
            y = diff @ U
        elif kind == "diag":
            y = diff * U[j]
        else:
            y = diff * U[j]
        out.append(const[j] - 0.5 * (y * y).sum(1))
    return torch.stack(out)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13, 16, 31, 32, 33])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_packed_design_holds_every_distinct_product_once(d, dtype):
    z = torch.randn(37, d + 1, dtype=dtype)
    z[:, -1] = 1.0
    rows, cols, index = K._pair_layout(d + 1)
    assert len(rows) == K.packed_size(d + 1) == (d + 1) * (d + 2) // 2
    assert bool((rows <= cols).all())
    pairs = set(zip(rows.tolist(), cols.tolist()))
    assert len(pairs) == len(rows)  # no pair twice
    q = K.packed_design(z, K.Workspace())
    torch.testing.assert_close(q, (z[:, rows] * z[:, cols]).T, rtol=0, atol=0)
    # the map back to the symmetric matrix
    full = (z[:, :, None] * z[:, None, :]).sum(0)
    torch.testing.assert_close(q.sum(1)[index], full, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("d", [1, 2, 4, 7, 32, 33])
def test_product_plan_needs_few_products(d):
    plan = K._product_plan(d)
    assert len(plan) <= d
    if d == 32:
        assert len(plan) == 6


def test_packed_scores_match_the_exact_route():
    x, Z, means, U, const, coef = _problem("full", n=500, d=6, k=5)
    assert "Bt" in coef and "bits" in coef
    packed = K.log_prob_scores(Z, coef, "full")
    exact = K.log_prob_scores(Z, {k: v for k, v in coef.items() if k not in ("Bt", "bits")}, "full")
    ref = _reference_scores(x, means, U, const, "full")
    torch.testing.assert_close(packed, ref, rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(exact, ref, rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(coef["bits"], coef["Bt"] * LOG2E, rtol=0, atol=0)


def test_the_accuracy_guard_keeps_the_exact_route_for_narrow_components_far_out():
    x, Z, means, U, const, coef = _problem("full", d=4, k=3)
    assert K.packed_scores_accurate(means, U)
    assert not K.packed_scores_accurate(means + 1e4, U)  # far from the data mean
    assert not K.packed_scores_accurate(means, U * 1e4)  # very narrow
    far = K.coefficients("full", means + 1e4, U, const)
    assert "Bt" not in far and "bits" not in far
    assert "Bt" not in K.coefficients("full", means, U, const, dtype=torch.float32)  # float32: exact
    batched = K.coefficients("full", means.expand(2, -1, -1), U.expand(2, -1, -1, -1), const.expand(2, -1))
    assert "Bt" not in batched


@pytest.mark.parametrize("kind", KINDS)
def test_statistics_match_their_definition(kind):
    x, Z, means, U, const, coef = _problem(kind, n=200, d=4, k=3)
    R = torch.rand(3, 200, dtype=torch.float64)
    acc = K.new_stats(kind, 3, Z.shape[1], Z.device)
    for sl in (slice(0, 77), slice(77, 200)):
        K.accumulate_stats(acc, Z[sl], R[:, sl], kind, K.Workspace())
    stats = K.finish_stats(acc, kind, 3)
    if kind == "full":
        want = torch.einsum("kn,ni,nj->kij", R, Z, Z)
    elif kind == "diag":  # design [x, 1], statistics of [x*x, x, 1]
        assert Z.shape[1] == 5 and stats.shape == (3, 9)
        want = R @ torch.cat([Z[:, :4] ** 2, Z], 1)
    else:
        want = R @ Z
    torch.testing.assert_close(stats, want, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0, 0.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_em_chunk_matches_the_unfused_step(kind, temperature, dtype):
    x, Z, means, U, const, coef = _problem(kind, n=400, d=5, k=4, dtype=dtype)
    ref = _reference_scores(x, means, U, const, kind)  # (K, n), float64
    if temperature == 0.0:
        norm_ref = ref.max(0).values
        R = torch.zeros_like(ref).scatter_(0, ref.argmax(0, keepdim=True), 1.0)
    else:
        norm_ref = temperature * torch.logsumexp(ref / temperature, 0)
        R = torch.softmax(ref / temperature, 0)
    Z64 = Z.to(torch.float64)
    if kind == "diag":
        Z64 = torch.cat([Z64[:, :-1] ** 2, Z64], 1)
    stats_ref = torch.einsum("kn,ni,nj->kij", R, Z64, Z64) if kind == "full" else R @ Z64
    ws = K.Workspace()
    acc = K.new_stats(kind, 4, Z.shape[1], Z.device)
    total = sum(K.em_chunk(acc, Z[sl], coef, kind, temperature, ws) for sl in (slice(0, 150), slice(150, 400)))
    tol = dict(rtol=1e-10, atol=1e-9) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-3)
    torch.testing.assert_close(total, norm_ref.sum(), **tol)
    torch.testing.assert_close(K.finish_stats(acc, kind, 4), stats_ref, **tol)


@pytest.mark.parametrize("temperature", [1.0, 0.3, 0.0])
def test_responsibilities_from_bits_equal_those_from_nats(temperature):
    s = torch.randn(6, 50, dtype=torch.float64) * 30
    s[:, 0] = -5000.0  # a sample far from everything: the maximum keeps it finite
    a, b = s.clone(), s * LOG2E
    na = tempered_responsibilities(a, temperature, dim=0)
    nb = tempered_responsibilities(b, temperature, dim=0, bits=True)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-300)
    torch.testing.assert_close(na, nb, rtol=1e-13, atol=0)
    if temperature:
        torch.testing.assert_close(na, temperature * torch.logsumexp(s / temperature, 0), rtol=1e-14, atol=0)
        assert torch.allclose(a.sum(0), torch.ones(50, dtype=torch.float64))


def test_chunk_rows_cover_each_kind():
    for kind in KINDS:
        rows = K.chunk_rows(kind, 32, 32)
        assert rows >= 256
    assert K.chunk_rows("full", 32, 32) * K.packed_size(33) <= 1 << 20
    assert math.isclose(K.chunk_rows("diag", 32, 32), (1 << 18) / 32)
    np.testing.assert_equal(K.components_first("full"), True)


@pytest.mark.parametrize("kind", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_em_chunk_in_sub_blocks_matches_the_whole_chunk(kind, dtype, monkeypatch):
    x, Z, means, U, const, coef = _problem(kind, n=1100, d=5, k=4, dtype=dtype)
    monkeypatch.setattr(K, "_SUB_BLOCK", 1024)  # 256-row sub-blocks: 4 of them and a tail of 76 rows
    assert K.sub_block_rows(kind, 4, "cpu") == 256 and K.sub_block_rows(kind, 4, "meta") == 0
    assert K.sub_block_rows("full", 4, "cpu") == 0
    acc = K.new_stats(kind, 4, Z.shape[1], Z.device)
    total = K.em_chunk(acc, Z, coef, kind, 0.7, K.Workspace())
    monkeypatch.setattr(K, "_SUB_BLOCK", 1 << 30)  # one block
    ref_acc = K.new_stats(kind, 4, Z.shape[1], Z.device)
    ref_total = K.em_chunk(ref_acc, Z, coef, kind, 0.7, K.Workspace())
    tol = dict(rtol=1e-12, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(total, ref_total, **tol)
    torch.testing.assert_close(acc, ref_acc, **tol)
