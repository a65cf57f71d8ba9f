"""Density estimation (MATH.md section 6): KernelDensity against scikit-learn and an exact reference,
the histogram and the count view normalised, the kNN density's sampling law and divergent integral,
and the estimators' surface (bandwidth rules, pickling, dtype, bad input, CUDA).

Run with ``-s`` to see the measured figures (worst differences, integrals)."""
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity as SkKernelDensity
from sklearn.neighbors import NearestNeighbors

from zoo.density import KERNELS, CountView, Histogram, KernelDensity, KNNDensity, count_view, select_bandwidth

COMPACT = ("tophat", "epanechnikov", "linear", "cosine")
PROFILES = {  # the radial profiles k(r), r = distance / h, written independently of the module
    "gaussian": lambda r: np.exp(-0.5 * r**2),
    "tophat": lambda r: np.where(r < 1, 1.0, 0.0),
    "epanechnikov": lambda r: np.where(r < 1, 1 - r**2, 0.0),
    "exponential": lambda r: np.exp(-r),
    "linear": lambda r: np.where(r < 1, 1 - r, 0.0),
    "cosine": lambda r: np.where(r < 1, np.cos(0.5 * np.pi * np.minimum(r, 1)), 0.0),
}


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ an exact reference
def _log_profile_integral(kernel, d):
    """log int_{R^d} k(|u|) du = log S_(d-1) int_0^inf k(r) r^(d-1) dr, by quadrature."""
    upper = 1.0 if kernel in COMPACT else 60.0
    radial, _ = integrate.quad(lambda r: PROFILES[kernel](np.array(r)) * r ** (d - 1), 0, upper, limit=200,
                               epsabs=0, epsrel=1e-13)
    log_sphere = math.log(2) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    return log_sphere + math.log(radial)


def _reference(X, Q, kernel, h, weights=None):
    """Exact float64 log density: direct differences, SciPy's logsumexp, quadrature constant."""
    r = cdist(Q, X) / h
    with np.errstate(divide="ignore"):  # the two unbounded kernels in closed form: no underflow
        log_k = {"gaussian": -0.5 * r**2, "exponential": -r}.get(kernel)
        log_k = np.log(PROFILES[kernel](r)) if log_k is None else log_k
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_sum = logsumexp(log_k + np.log(w), axis=1)
    return log_sum - math.log(w.sum()) - _log_profile_integral(kernel, X.shape[1]) - X.shape[1] * math.log(h)


def _datasets(d):
    rng = np.random.default_rng(d)
    blobs = np.r_[rng.normal(size=(150, d)), rng.normal(loc=3.0, scale=0.5, size=(100, d))]
    skewed = rng.exponential(size=(250, d))
    for X in (blobs, skewed):
        queries = np.r_[X[:25], rng.normal(scale=2.0, size=(75, d)) + X.mean(0)]  # on and off the data
        yield X, queries


def _rel(a, b):
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_kernel_density_equals_the_exact_sum_and_scikit_learn(kernel, d):
    """Ours equals the exact reference to 1e-12 everywhere (the same -inf points for compact
    kernels) and scikit-learn's rtol=0, atol=0 to 1e-10 wherever scikit-learn is exact.

    scikit-learn's tree keeps its running bounds with log-space subtractions, which leave a
    rounding floor: where the mean kernel value is below about e^-10 its 'exact' answer drifts
    (up to 10% of the log density at e^-40, and finite values where a compact kernel's sum is 0).
    Its cosine constant is wrong in even dimensions: there the two differ by that constant."""
    worst_ref = worst_sk = 0.0
    n_compared = n_finite = 0
    for X, Q in _datasets(d):
        for h in (0.4, 1.0):
            ours = KernelDensity(kernel=kernel, bandwidth=h).fit(X).score_samples(Q)
            ref = _reference(X, Q, kernel, h)
            sk = SkKernelDensity(kernel=kernel, bandwidth=h, rtol=0, atol=0).fit(X).score_samples(Q)
            np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
            fin = np.isfinite(ref)
            assert fin.any()
            worst_ref = max(worst_ref, _rel(ours[fin], ref[fin]).max())
            # log of the mean kernel value: scikit-learn is exact where it is above -10
            log_norm = _log_profile_integral(kernel, d) + d * math.log(h)
            log_mean_kernel = np.where(fin, ref + log_norm, -np.inf)
            trusted = log_mean_kernel > -10
            assert trusted.sum() >= 20
            n_compared, n_finite = n_compared + int(trusted.sum()), n_finite + int(fin.sum())
            if kernel == "cosine" and d % 2 == 0:
                # scikit-learn's constant: the polynomial part of the integration by parts only
                a, sk_radial = 2 / math.pi, 0.0
                for j in range(1, d + 1, 2):
                    sk_radial += a
                    a *= -(d - j) * (d - j - 1) * (2 / math.pi) ** 2
                sphere = 2 * math.pi ** (0.5 * d) / math.gamma(0.5 * d)
                true_radial = math.exp(_log_profile_integral("cosine", d)) / sphere
                sk = sk + math.log(sk_radial / true_radial)
            worst_sk = max(worst_sk, _rel(ours[trusted], sk[trusted]).max())
            # where our sum is exactly 0, scikit-learn returns -inf or its rounding floor
            zero = ~np.isfinite(ours)
            floor = sk[zero] + log_norm
            assert np.all(~np.isfinite(floor) | (floor < -25))
    print(f"\n{kernel:>12} d={d}: worst relative difference to the exact sum {worst_ref:.1e}, "
          f"to scikit-learn (rtol=0) {worst_sk:.1e} at {n_compared} of {n_finite} finite points")
    assert worst_ref < 1e-12
    assert worst_sk < 1e-10


def test_scikit_learn_cosine_constant_is_wrong_in_even_dimensions():
    """One training point at 0, unit bandwidth: our 2-D cosine density integrates to 1,
    scikit-learn's to 1 - 2/pi (its constant keeps only the polynomial part of the integral)."""
    X = np.zeros((1, 2))
    ours, sk = KernelDensity(kernel="cosine").fit(X), SkKernelDensity(kernel="cosine").fit(X)
    r = np.linspace(0, 1, 2001)[:-1] + 0.00025
    pts = np.c_[r, np.zeros_like(r)]
    dr = 1 / 2000
    total_ours = np.sum(np.exp(ours.score_samples(pts)) * 2 * np.pi * r) * dr
    total_sk = np.sum(np.exp(sk.score_samples(pts)) * 2 * np.pi * r) * dr
    assert total_ours == pytest.approx(1.0, abs=1e-6)
    assert total_sk == pytest.approx(1 - 2 / np.pi, abs=1e-6)
    # odd dimensions agree
    X3 = np.zeros((1, 3))
    q = np.array([[0.3, 0.1, 0.0]])
    np.testing.assert_allclose(KernelDensity(kernel="cosine").fit(X3).score_samples(q),
                               SkKernelDensity(kernel="cosine").fit(X3).score_samples(q), rtol=1e-12)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_far_queries_and_sample_weights(kernel):
    """Queries hundreds of bandwidths away (every kernel term underflows: the shifted sum) and
    sample weights with zeros, against the exact reference."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    Q = np.r_[rng.normal(size=(30, 3)), rng.normal(scale=20, size=(10, 3)) + 100]
    w = rng.uniform(0, 3, size=400)
    w[:20] = 0
    ours = KernelDensity(kernel=kernel, bandwidth=0.5).fit(X, sample_weight=w).score_samples(Q)
    ref = _reference(X, Q, kernel, 0.5, w)
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
    fin = np.isfinite(ref)
    assert _rel(ours[fin], ref[fin]).max() < 1e-12
    if kernel in ("gaussian", "exponential"):
        assert np.isfinite(ours).all() and ours[-10:].max() < -100


def test_small_blocks_stream_the_training_points(monkeypatch):
    """Blocks of 64 entries: 16 query rows (3 for the neighbours) against training chunks of 4
    points (running sums, running top-k, the shifted sum across chunks, the leave-one-out
    diagonal across blocks) give the same answers as one block."""
    from zoo import density

    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 3))
    Q = np.r_[rng.normal(size=(37, 3)), rng.normal(size=(5, 3)) * 20 + 60]
    w = rng.uniform(size=90)
    whole = {k: KernelDensity(kernel=k, bandwidth=0.6).fit(X, sample_weight=w).score_samples(Q) for k in KERNELS}
    knn = KNNDensity(n_neighbors=6).fit(X)
    knn_new, knn_loo = knn.score_samples(Q), knn.score_samples()
    grid = [0.3, 0.6, 1.2]
    cv_whole = select_bandwidth(X, grid, cv=3, return_scores=True)[2]
    monkeypatch.setattr(density, "_BLOCK", 64)
    assert density._block_shape(90, torch.device("cpu")) == (16, 4)
    for k in KERNELS:
        small = KernelDensity(kernel=k, bandwidth=0.6).fit(X, sample_weight=w).score_samples(Q)
        np.testing.assert_allclose(small, whole[k], rtol=1e-12)
    np.testing.assert_allclose(KNNDensity(n_neighbors=6).fit(X).score_samples(Q), knn_new, rtol=1e-12)
    np.testing.assert_allclose(KNNDensity(n_neighbors=6).fit(X).score_samples(), knn_loo, rtol=1e-12)
    np.testing.assert_allclose(select_bandwidth(X, grid, cv=3, return_scores=True)[2], cv_whole, rtol=1e-12)


def test_float32_follows_the_input():
    rng = np.random.default_rng(1)
    X, Q = rng.normal(size=(300, 2)), rng.normal(size=(50, 2))
    for kernel in KERNELS:
        f64 = KernelDensity(kernel=kernel, bandwidth=0.8).fit(X).score_samples(Q)
        f32 = KernelDensity(kernel=kernel, bandwidth=0.8).fit(X.astype(np.float32)).score_samples(Q.astype(np.float32))
        assert f32.dtype == np.float32 and f64.dtype == np.float64
        fin = np.isfinite(f64)
        np.testing.assert_array_equal(np.isfinite(f32), fin)
        np.testing.assert_allclose(f32[fin], f64[fin], rtol=1e-4, atol=1e-4)
    # tensors too, and the dtype parameter overrides the input's
    t32 = KernelDensity().fit(torch.as_tensor(X, dtype=torch.float32)).score_samples(torch.as_tensor(Q))
    assert t32.dtype == np.float32
    assert KernelDensity(dtype="float64").fit(X.astype(np.float32)).score_samples(Q).dtype == np.float64
    for est in (Histogram(), KNNDensity()):
        assert est.fit(X.astype(np.float32)).score_samples(Q.astype(np.float32)).dtype == np.float32


# ------------------------------------------------------------------ bandwidths
@pytest.mark.parametrize("d", [1, 3])
def test_bandwidth_rules_are_scikit_learns(d):
    n = 137
    X = np.random.default_rng(d).normal(size=(n, d))
    scott = KernelDensity(bandwidth="scott").fit(X)
    silverman = KernelDensity(bandwidth="silverman").fit(X)
    assert scott.bandwidth_ == pytest.approx(n ** (-1 / (d + 4)), rel=1e-15)
    assert silverman.bandwidth_ == pytest.approx((n * (d + 2) / 4) ** (-1 / (d + 4)), rel=1e-15)
    assert scott.bandwidth_ == SkKernelDensity(bandwidth="scott").fit(X).bandwidth_
    assert silverman.bandwidth_ == SkKernelDensity(bandwidth="silverman").fit(X).bandwidth_


def test_select_bandwidth_is_grid_search_on_held_out_log_likelihood():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(size=(120, 2)), rng.normal(loc=4, size=(80, 2))]
    grid = np.geomspace(0.1, 3, 12)
    cv = KFold(4, shuffle=True, random_state=0)
    best, g, scores = select_bandwidth(X, grid, cv=cv, return_scores=True)
    search = GridSearchCV(KernelDensity(), {"bandwidth": grid}, cv=cv).fit(X)
    np.testing.assert_allclose(scores, search.cv_results_["mean_test_score"], rtol=1e-10)
    assert best == search.best_params_["bandwidth"]
    assert 0.2 < best < 1.5
    # the default grid brackets Scott's rule scaled by the data; compact kernels work too
    default = select_bandwidth(X, kernel="epanechnikov", cv=cv)
    assert default > 0
    with pytest.raises(ValueError, match="bandwidths must be"):
        select_bandwidth(X, [0.5, -1.0])


@pytest.mark.parametrize("kernel", ["gaussian", "tophat"])
def test_sample_is_scikit_learns(kernel):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 3))
    w = rng.uniform(size=50)
    for weights in (None, w):
        ours = KernelDensity(kernel=kernel, bandwidth=0.3).fit(X, sample_weight=weights).sample(20, random_state=7)
        sk = SkKernelDensity(kernel=kernel, bandwidth=0.3).fit(X, sample_weight=weights).sample(20, random_state=7)
        np.testing.assert_allclose(ours, sk, rtol=1e-12)
    with pytest.raises(NotImplementedError):
        KernelDensity(kernel="epanechnikov").fit(X).sample()


# ------------------------------------------------------------------ histogram
def _cell_centres(hist):
    grids = np.meshgrid(*[(e[1:] + e[:-1]) / 2 for e in hist.bin_edges_], indexing="ij")
    return np.stack([g.ravel() for g in grids], 1)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_histogram_sums_to_one_over_its_cells(d, alpha):
    X = np.random.default_rng(d).normal(size=(400, d))
    hist = Histogram(bin_width="sturges", alpha=alpha).fit(X)
    total = np.exp(hist.score_samples(_cell_centres(hist))).sum() * hist.bin_volume_
    assert total == pytest.approx(1.0, rel=1e-12)
    assert hist.counts_.sum() == 400 and len(hist.occupied_bins_) == len(hist.counts_)
    assert hist.bin_volume_ == pytest.approx(np.prod(hist.bin_width_))


@pytest.mark.parametrize("d", [1, 2])
def test_histogram_integrates_to_one_on_a_grid_and_by_monte_carlo(d):
    rng = np.random.default_rng(10 + d)
    X = rng.gamma(2.0, size=(500, d))
    hist = Histogram(bin_width="fd").fit(X)
    # midpoint rule on a grid 7 times finer than the bins (aligned with the edges), over the box
    fine = [np.linspace(e[0], e[-1], 7 * (len(e) - 1) + 1) for e in hist.bin_edges_]
    mids = np.meshgrid(*[(f[1:] + f[:-1]) / 2 for f in fine], indexing="ij")
    cell = np.prod([f[1] - f[0] for f in fine])
    grid_total = np.exp(hist.score_samples(np.stack([m.ravel() for m in mids], 1))).sum() * cell
    # Monte Carlo over a box twice the size of the grid (zero density outside the grid)
    lo = np.array([e[0] for e in hist.bin_edges_]) - 0.5 * np.array([e[-1] - e[0] for e in hist.bin_edges_])
    hi = lo + 2 * np.array([e[-1] - e[0] for e in hist.bin_edges_])
    U = rng.uniform(lo, hi, size=(200_000, d))
    p = np.exp(hist.score_samples(U))
    mc, mc_se = p.mean() * np.prod(hi - lo), p.std() * np.prod(hi - lo) / math.sqrt(len(U))
    print(f"\nhistogram d={d}: grid integral {grid_total:.12f}, Monte Carlo {mc:.4f} +- {mc_se:.4f}")
    assert grid_total == pytest.approx(1.0, rel=1e-10)
    assert abs(mc - 1.0) < 4 * mc_se


@pytest.mark.parametrize("rule", ["auto", "fd", "doane", "scott", "rice", "sturges", "sqrt"])
def test_histogram_rules_are_numpys_per_dimension(rule):
    rng = np.random.default_rng(5)
    X = np.c_[rng.normal(size=300), rng.exponential(size=300), np.full(300, 2.0)]  # one constant feature
    hist = Histogram(bin_width=rule).fit(X)
    for j in range(3):
        np.testing.assert_allclose(hist.bin_edges_[j], np.histogram_bin_edges(X[:, j], bins=rule), rtol=1e-12,
                                   atol=1e-12)
    # frequency weights: the rule of the repeated sample
    w = rng.integers(0, 4, size=300)
    weighted = Histogram(bin_width=rule).fit(X, sample_weight=w)
    repeated = Histogram(bin_width=rule).fit(np.repeat(X, w, axis=0))
    for a, b in zip(weighted.bin_edges_, repeated.bin_edges_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    Q = X[:50] + 0.01
    np.testing.assert_allclose(weighted.score_samples(Q), repeated.score_samples(Q), rtol=1e-12)


def test_histogram_given_widths_empty_cells_and_sampling():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.95, 0.9], [2.0, 1.0]])
    hist = Histogram(bin_width=[0.5, 1.0]).fit(X)
    np.testing.assert_array_equal(hist.n_bins_, [4, 1])
    np.testing.assert_allclose(hist.bin_edges_[0], [0, 0.5, 1, 1.5, 2])
    log_p = hist.score_samples([[0.2, 0.5], [1.2, 0.5], [2.0, 1.0], [2.01, 0.5], [0.2, -0.01]])
    np.testing.assert_allclose(np.exp(log_p[:3]), [2 / (4 * 0.5), 0.0, 1 / (4 * 0.5)])
    assert np.isneginf(log_p[3:]).all()  # outside the grid
    smooth = Histogram(bin_width=[0.5, 1.0], alpha=1.0).fit(X)
    assert np.exp(smooth.score_samples([[1.2, 0.5]]))[0] == pytest.approx(1 / ((4 + 4) * 0.5))
    # samples land in occupied cells, in proportion to the counts
    S = hist.sample(4000, random_state=0)
    assert np.isfinite(hist.score_samples(S)).all()
    first = np.floor(S[:, 0] / 0.5).astype(int)
    np.testing.assert_allclose(np.bincount(first, minlength=4) / 4000, [0.5, 0.25, 0, 0.25], atol=0.03)
    assert smooth.sample(10, random_state=0).shape == (10, 2)


def test_count_view_is_the_binomial():
    view = count_view(40, 0.15, volume=0.2)
    k = np.arange(41)
    p = view.pmf(k)
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    assert (k * p).sum() == pytest.approx(40 * 0.15, rel=1e-12) == view.mean
    assert ((k - view.mean) ** 2 * p).sum() == pytest.approx(view.variance, rel=1e-12)
    np.testing.assert_allclose(p, stats.binom.pmf(k, 40, 0.15), rtol=1e-12)
    # the estimate K / (N V) has mean P / V and sd sqrt(P (1 - P) / N) / V
    est = view.estimate(k)
    assert (est * p).sum() == pytest.approx(view.density, rel=1e-12) == 0.15 / 0.2
    assert math.sqrt(((est - view.density) ** 2 * p).sum()) == pytest.approx(view.estimate_std, rel=1e-10)
    assert view.log_pmf(-1) == -np.inf and view.pmf(41) == 0.0 and view.pmf(2.5) == 0.0
    np.testing.assert_array_equal(count_view(5, 0.0).pmf(np.arange(6)), [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(count_view(5, 1.0).pmf(np.arange(6)), [0, 0, 0, 0, 0, 1])
    assert view.distribution.mean.item() == pytest.approx(view.mean)
    hist = Histogram().fit(np.random.default_rng(0).normal(size=(100, 1)))
    assert hist.count_view(0.1) == CountView(100, 0.1, hist.bin_volume_)
    with pytest.raises(ValueError, match="probability"):
        count_view(10, 1.5)


# ------------------------------------------------------------------ k nearest neighbours
@pytest.mark.parametrize("d", [1, 2])
def test_knn_density_of_uniform_data_has_the_stated_law(d):
    """Uniform data in [0, 1]^d, density 1. At an interior point whose k-th neighbour ball stays in
    the cube, U = V_d r_k^d ~ Beta(k, N - k + 1) exactly, so p_hat = k / (N U) has mean k / (k - 1)
    and relative sd sqrt((N - 1)(k - 1) / (N (k - 2)) - 1) (about 1 / sqrt(k - 2)). Queries are
    spaced so that their balls do not overlap (nearly independent draws)."""
    n, k = 20_000, 50
    rng = np.random.default_rng(20 + d)
    X = rng.uniform(size=(n, d))
    knn = KNNDensity(n_neighbors=k).fit(X)
    u_max = stats.beta.ppf(1 - 1e-9, k, n - k + 1)
    v_d = math.pi ** (d / 2) / math.gamma(d / 2 + 1)
    r_max = (u_max / v_d) ** (1 / d)
    axis = np.arange(r_max, 1 - r_max, 2.05 * r_max)
    Q = np.stack([g.ravel() for g in np.meshgrid(*[axis] * d, indexing="ij")], 1)
    p_hat = np.exp(knn.score_samples(Q))
    mean = k / (k - 1)
    rel_sd = math.sqrt((n - 1) * (k - 1) / (n * (k - 2)) - 1)
    se = mean * rel_sd / math.sqrt(len(Q))
    u = k / (n * p_hat)  # the ball's probability
    ks = stats.kstest(u, stats.beta(k, n - k + 1).cdf)
    print(f"\nkNN d={d}: {len(Q)} queries, mean p_hat {p_hat.mean():.4f} (law {mean:.4f} +- {se:.4f}), "
          f"relative sd {p_hat.std() / p_hat.mean():.3f} (law {rel_sd:.3f}, 1/sqrt(k-2) {1 / math.sqrt(k - 2):.3f}), "
          f"KS p-value {ks.pvalue:.2f}")
    assert len(Q) >= 100
    assert abs(p_hat.mean() - mean) < 4 * se
    assert 0.75 < (p_hat.std() / p_hat.mean()) / rel_sd < 1.25
    assert ks.pvalue > 1e-3


def _edges(fine, n_geo, halves):
    """Cell edges on a line: fine cells out to 0.75 from the centre 0.5, then geometric cells
    ending exactly at 0.5 +- half for each half in ``halves``."""
    outer, start = [], 0.75
    for half in halves:
        outer.append(np.geomspace(start, half, n_geo + 1)[1:])
        start = half
    outer = np.concatenate(outer)
    inner = np.linspace(-0.75, 0.75, int(round(1.5 / fine)) + 1)
    return 0.5 + np.concatenate([-outer[::-1], inner[1:-1], outer])


@pytest.mark.parametrize("d", [1, 2])
def test_knn_density_does_not_integrate_to_one(d):
    """Its integral over the cube is near k / (k - 1) (less a boundary deficit), and over boxes of
    half-width L around the data it grows like (k / N) d log L: p_hat ~ k / (N V_d |x|^d) far
    away, so the integral over R^d diverges."""
    n, k = 1000, 10
    X = np.random.default_rng(30 + d).uniform(size=(n, d))
    knn = KNNDensity(n_neighbors=k).fit(X)
    halves = (1.5, 10.5, 100.5)
    e = _edges(0.002 if d == 1 else 0.02, 40 if d == 1 else 20, halves)
    mid, width = (e[1:] + e[:-1]) / 2, np.diff(e)
    grids = np.meshgrid(*[mid] * d, indexing="ij")
    M = np.stack([g.ravel() for g in grids], 1)
    W = np.prod(np.meshgrid(*[width] * d, indexing="ij"), axis=0).ravel()
    mass = np.exp(knn.score_samples(M)) * W
    box = {half: mass[np.all(np.abs(M - 0.5) < half, axis=1)].sum() for half in (0.5,) + halves}
    growth, law = box[100.5] - box[10.5], k / n * d * math.log(100.5 / 10.5)
    print(f"\nkNN d={d} (N={n}, k={k}): integral over the cube {box[0.5]:.4f} (k/(k-1) = {k / (k - 1):.4f}), "
          + ", ".join(f"|x - c| < {h}: {box[h]:.4f}" for h in halves)
          + f"; growth from 10.5 to 100.5: {growth:.4f} (asymptotic law (k/N) d log(100.5/10.5) = {law:.4f})")
    assert all(np.isfinite(v) for v in box.values())
    assert 0.9 < box[0.5] < k / (k - 1) + 0.02
    assert box[0.5] < box[1.5] < box[10.5] < box[100.5] and box[1.5] > 1
    assert growth == pytest.approx(law, rel=0.1)


def test_knn_distances_and_the_leave_one_out_convention():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    Q = rng.normal(size=(40, 3))
    k = 7
    knn = KNNDensity(n_neighbors=k).fit(X)
    log_v3 = math.log(4 / 3 * math.pi)
    r_new = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(Q)[0][:, -1]
    np.testing.assert_allclose(knn.score_samples(Q), math.log(k / 300) - log_v3 - 3 * np.log(r_new), rtol=1e-12)
    # a training point passed as X counts itself (distance 0): its (k-1)-th other neighbour
    r_self = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X[:5])[0][:, -1]
    np.testing.assert_allclose(knn.score_samples(X[:5]), math.log(k / 300) - log_v3 - 3 * np.log(r_self), rtol=1e-12)
    # X=None: leave-one-out, the density of the other N - 1 points
    loo = knn.score_samples()
    for i in (0, 17, 299):
        others = KNNDensity(n_neighbors=k).fit(np.delete(X, i, axis=0))
        assert loo[i] == pytest.approx(others.score_samples(X[i : i + 1])[0], rel=1e-12)
    # a duplicate is a neighbour at distance 0 of its twin
    Xd = np.r_[X, X[:1]]
    assert KNNDensity(n_neighbors=1).fit(Xd).score_samples()[0] == np.inf


# ------------------------------------------------------------------ the estimators' surface
def _fitted():
    X = np.random.default_rng(7).normal(size=(200, 2))
    w = np.random.default_rng(8).uniform(size=200)
    return X, [KernelDensity(kernel="epanechnikov", bandwidth=0.7).fit(X, sample_weight=w),
               Histogram(bin_width="scott", alpha=0.1).fit(X, sample_weight=w), KNNDensity(n_neighbors=4).fit(X)]


def test_pickling_round_trip_and_score_is_the_sum():
    X, estimators = _fitted()
    Q = X[:30] + 0.05
    for est in estimators:
        again = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(again.score_samples(Q), est.score_samples(Q))
        assert est.score(Q) == pytest.approx(np.sum(est.score_samples(Q).astype(np.float64)))


def test_bad_input_raises_value_errors_with_scikit_learns_messages():
    X = np.random.default_rng(9).normal(size=(20, 2))
    for est in (KernelDensity(), Histogram(), KNNDensity()):
        bad_nan = X.copy()
        bad_nan[0, 0] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            type(est)().fit(bad_nan)
        with pytest.raises(ValueError, match="Input X contains infinity"):
            type(est)().fit(np.where(X > 1, np.inf, X))
        with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
            type(est)().fit(X[:, 0])
        with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 2 features"):
            type(est)().fit(X).score_samples(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="Input X contains NaN"):
            type(est)().fit(X).score_samples(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"'bandwidth' parameter of KernelDensity must be a float in the range \(0"):
        KernelDensity(bandwidth=0.0).fit(X)
    with pytest.raises(ValueError, match=r"'bandwidth' parameter .* Got -1"):
        KernelDensity(bandwidth=-1).fit(X)
    with pytest.raises(ValueError, match="'kernel' parameter of KernelDensity must be a str among"):
        KernelDensity(kernel="triangular").fit(X)
    with pytest.raises(ValueError, match="'metric' parameter of KernelDensity must be a str among {'euclidean'}"):
        KernelDensity(metric="manhattan").fit(X)
    with pytest.raises(ValueError, match="'bin_width' parameter of Histogram"):
        Histogram(bin_width="knuth").fit(X)
    with pytest.raises(ValueError, match="one per feature"):
        Histogram(bin_width=[0.5, 0.5, 0.5]).fit(X)
    with pytest.raises(ValueError, match="one per feature"):
        Histogram(bin_width=[0.5, -1.0]).fit(X)
    with pytest.raises(ValueError, match=r"bins in feature \d .* use a wider bin"):
        Histogram(bin_width=1e-9).fit(X)
    with pytest.raises(ValueError, match="Expected n_neighbors < n_samples, but n_neighbors = 20, n_samples = 20"):
        KNNDensity(n_neighbors=20).fit(X)
    with pytest.raises(ValueError, match="'n_neighbors' parameter of KNNDensity must be an int in the range"):
        KNNDensity(n_neighbors=0).fit(X)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        KernelDensity().fit(X, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        KernelDensity().fit(X).sample(0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_equal_cpu_ones():
    X, estimators = _fitted()
    Q = np.r_[X[:30] + 0.05, np.random.default_rng(1).normal(scale=3, size=(30, 2))]
    Xc, Qc = torch.as_tensor(X, device="cuda"), torch.as_tensor(Q, device="cuda")
    w = np.random.default_rng(8).uniform(size=200)
    for est in estimators + [KernelDensity(kernel=k, bandwidth=0.5) for k in KERNELS]:
        weighted = not isinstance(est, KNNDensity)
        cpu = est.fit(X, sample_weight=w) if weighted else est.fit(X)
        cpu_scores = cpu.score_samples(Q)
        gpu = clone(est)
        gpu = gpu.fit(Xc, sample_weight=torch.as_tensor(w, device="cuda")) if weighted else gpu.fit(Xc)
        assert gpu._fit_device.type == "cuda"
        gpu_scores = gpu.score_samples(Qc)
        np.testing.assert_array_equal(np.isfinite(gpu_scores), np.isfinite(cpu_scores))
        fin = np.isfinite(cpu_scores)
        np.testing.assert_allclose(gpu_scores[fin], cpu_scores[fin], rtol=1e-10, atol=1e-12)
    # a large query set on the GPU (several blocks, training points streamed)
    big = np.random.default_rng(2).normal(size=(30_000, 4))
    kde = KernelDensity(bandwidth=0.3)
    cpu = kde.fit(big[:20_000]).score_samples(big[20_000:])
    big_cuda = torch.as_tensor(big, device="cuda")
    gpu = kde.fit(big_cuda[:20_000]).score_samples(big_cuda[20_000:])
    np.testing.assert_allclose(gpu, cpu, rtol=1e-10)
