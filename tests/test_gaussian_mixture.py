"""GaussianMixture (EM, closed form): parity with scikit-learn, the EM driver's
contract, float32 accuracy, degenerate data and bad input."""
import math
import pathlib
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from zoo.mixture._base import temperature_schedule
from zoo.mixture import DegenerateComponentWarning, GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
FAITHFUL = pathlib.Path(__file__).resolve().parents[1] / "zoo" / "data" / "faithful.csv"


# ------------------------------------------------------------------ helpers
def _synthetic(n=300, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)) * scales[labels]


def _dataset(name):
    if name == "iris":
        return load_iris().data, 3
    if name == "faithful":  # shipped with the package: a missing file is a failure, not a skip
        return np.loadtxt(FAITHFUL, delimiter=",", skiprows=1), 2
    if name == "digits":
        return load_digits().data, 10
    return _synthetic(), 3


def _inits(X, k, cov_type, seed=0):
    """Explicit initial weights, means (random data points) and precisions (of the data)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    cov = np.cov(X.T, bias=True).reshape(d, d) + 1e-3 * np.eye(d)
    prec = np.linalg.inv(cov)
    precisions = {
        "full": np.stack([prec] * k),
        "tied": prec,
        "diag": np.tile(1.0 / np.diag(cov), (k, 1)),
        "spherical": np.full(k, 1.0 / np.diag(cov).mean()),
    }[cov_type]
    means = X[rng.choice(n, k, replace=False)]
    return dict(weights_init=np.full(k, 1.0 / k), means_init=means, precisions_init=precisions)


def _fit_both(X, k, cov_type, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        ref = SkGaussianMixture(k, covariance_type=cov_type, **kw).fit(X)
        ours = GaussianMixture(k, covariance_type=cov_type, **kw).fit(X)
    return ref, ours


def _sklearn_trace(ref):
    """Per-iteration lower bounds of a fitted scikit-learn mixture."""
    return np.asarray(ref.lower_bounds_)


# ------------------------------------------------------------------ parity
PARITY_CASES = [
    ("iris", dict(max_iter=100, tol=1e-6)),
    ("faithful", dict(max_iter=200, tol=1e-6)),
    ("synthetic", dict(max_iter=200, tol=1e-6)),
    # digits has constant pixels: reg_covar large enough for both; few iterations (64-D full)
    ("digits", dict(max_iter=6, tol=1e-6, reg_covar=1e-3)),
]


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("name,kw", PARITY_CASES, ids=[c[0] for c in PARITY_CASES])
def test_parity_with_sklearn_every_iteration(name, kw, cov_type):
    X, k = _dataset(name)
    ref, ours = _fit_both(X, k, cov_type, **_inits(X, k, cov_type), **kw)
    expected = _sklearn_trace(ref)
    got = np.asarray(ours.lower_bounds_)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-6)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-6)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_warm_start_steps_match_sklearn_steps(cov_type):
    """One iteration per fit with warm_start reproduces both traces step by step."""
    X, k = _dataset("iris")
    inits = _inits(X, k, cov_type, seed=3)
    kw = dict(covariance_type=cov_type, max_iter=1, warm_start=True, tol=1e-12, **inits)
    ref, ours = SkGaussianMixture(k, **kw), GaussianMixture(k, **kw)
    ref_steps, our_steps = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(6):
            ref_steps.append(ref.fit(X).lower_bound_)
            our_steps.append(ours.fit(X).lower_bound_)
        full = GaussianMixture(k, covariance_type=cov_type, max_iter=6, tol=0, **inits).fit(X)
    np.testing.assert_allclose(our_steps, ref_steps, rtol=1e-6)
    np.testing.assert_allclose(full.lower_bounds_, our_steps, rtol=1e-12)


# -------------------------------------------------------- monotone bound
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(20, 120),
    d=st.integers(1, 4),
    k=st.integers(1, 4),
    cov_type=st.sampled_from(COV_TYPES),
    temperature=st.sampled_from([1.0, 1.0, 0.5, 2.0]),
)
def test_bound_never_decreases(seed, n, d, k, cov_type, temperature):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, size=d) + rng.integers(0, 3, size=(n, 1))
    model = GaussianMixture(k, covariance_type=cov_type, init_params="random_from_data", max_iter=40,
                            tol=0, random_state=seed, temperature=temperature)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        model.fit(X)
    trace = np.asarray(model.lower_bounds_)
    assert np.all(np.isfinite(trace))
    # up to rounding: near a (nearly singular) optimum the bound jitters by ~1e-9
    assert np.all(np.diff(trace) >= -1e-7 * np.maximum(1.0, np.abs(trace[1:])))


# ----------------------------------------------------------- driver contract
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("max_iter", [1, 3, 100])
def test_fit_predict_equals_fit_then_predict(cov_type, max_iter):
    X = _synthetic(n=200, seed=5)
    kw = dict(covariance_type=cov_type, max_iter=max_iter, random_state=1, init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = GaussianMixture(3, **kw).fit_predict(X)
        again = GaussianMixture(3, **kw).fit(X).predict(X)
    np.testing.assert_array_equal(labels, again)


def test_convergence_warning_and_flags():
    X = _synthetic()
    with pytest.warns(ConvergenceWarning):
        m = GaussianMixture(3, max_iter=2, tol=0, random_state=0).fit(X)
    assert not m.converged_ and m.n_iter_ == 2 and len(m.lower_bounds_) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = GaussianMixture(3, max_iter=500, tol=1e-3, random_state=0).fit(X)
        assert m.converged_ and m.n_iter_ < 500
        GaussianMixture(3, max_iter=0, random_state=0).fit(X)  # init only: no warning


def test_n_init_keeps_the_best_run():
    X = _synthetic(n=150, k=4, seed=2)
    kw = dict(covariance_type="diag", init_params="random", max_iter=4, tol=0)
    stream = np.random.RandomState(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        singles = [GaussianMixture(4, random_state=stream, **kw).fit(X).lower_bound_ for _ in range(5)]
        best = GaussianMixture(4, n_init=5, random_state=np.random.RandomState(7), **kw).fit(X)
    assert len(set(np.round(singles, 8))) > 1  # the restarts really differ
    assert best.lower_bound_ == pytest.approx(max(singles), rel=1e-12)


def test_annealing_schedule_and_convergence_only_at_constant_temperature():
    sched = temperature_schedule(1.0, (8.0, 1.0, 4))
    assert [sched(i) for i in range(6)] == pytest.approx([8.0, 4.0, 2.0, 1.0, 1.0, 1.0])
    assert temperature_schedule(0.5)(10) == 0.5
    X = _synthetic()
    # a huge tol converges at the first comparable pair of iterations: those at T_final
    m = GaussianMixture(3, annealing=(8.0, 1.0, 6), tol=1e10, random_state=0).fit(X)
    assert m.converged_ and m.n_iter_ == 7 and m.temperature_ == 1.0
    m = GaussianMixture(3, annealing=lambda i: max(1.0, 4.0 - i), tol=1e10, random_state=0).fit(X)
    assert m.n_iter_ == 5 and m.temperature_ == 1.0
    for bad in [(1.0, 0.0, 3), (1.0, 2.0), "fast", (1.0, 1.0, 0)]:
        with pytest.raises((ValueError, TypeError)):
            GaussianMixture(2, annealing=bad).fit(X)


def test_chunking_does_not_change_results():
    X = _synthetic(n=257, seed=4)
    for cov_type in COV_TYPES:
        a = GaussianMixture(3, covariance_type=cov_type, random_state=0, **_inits(X, 3, cov_type)).fit(X)
        b = GaussianMixture(3, covariance_type=cov_type, random_state=0, chunk_size=7, **_inits(X, 3, cov_type)).fit(X)
        np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-10)


def test_api_surface_and_inputs():
    X = _synthetic(n=240, seed=6)
    m = GaussianMixture(3, random_state=0).fit(X)
    assert m.weights_.dtype == np.float64 and m.means_.shape == (3, 3)
    assert m.covariances_.shape == m.precisions_.shape == m.precisions_cholesky_.shape == (3, 3, 3)
    np.testing.assert_allclose(m.precisions_ @ m.covariances_, np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-8)
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert m.score(X) == pytest.approx(m.score_samples(X).mean())
    # torch input gives the same answers as NumPy input
    t = GaussianMixture(3, random_state=0).fit(torch.as_tensor(X, dtype=torch.float64))
    np.testing.assert_allclose(t.means_, m.means_)
    np.testing.assert_array_equal(m.predict(torch.as_tensor(X)), m.predict(X))
    Xs, ys = m.sample(500)
    assert Xs.shape == (500, 3) and ys.shape == (500,) and set(ys) <= {0, 1, 2}
    np.testing.assert_array_equal(m.sample(500)[0], Xs)  # random_state reproduces
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "means_")
    m.set_params(n_components=2)
    assert m.n_components == 2


def test_verbose_and_progress_bar(capsys, monkeypatch):
    import zoo.progress

    monkeypatch.setattr(zoo.progress, "LOG_INTERVAL", 0.0)  # captured stderr is no terminal: a line per update
    X = _synthetic(n=100, seed=7)
    m = GaussianMixture(2, random_state=0, verbose=2, verbose_interval=1, progress_bar=True).fit(X)
    out = capsys.readouterr()
    assert "Initialization" in out.out and "Iteration 1" in out.out
    assert "GaussianMixture init 1/1" in out.err  # the tqdm bar
    assert m.converged_


def test_float32_stays_accurate_on_offset_data():
    # far from the origin with a small spread: uncentred float32 sums lose the spread
    X32 = (_synthetic(n=2000, seed=8) * 0.01 + 1000.0).astype(np.float32)
    X64 = X32.astype(np.float64)  # the same numbers, so differences are the arithmetic's
    inits = _inits(X64, 3, "full")
    kw = dict(covariance_type="full", max_iter=20, tol=0, reg_covar=1e-9, **inits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m64 = GaussianMixture(3, **kw).fit(X64)
        m32 = GaussianMixture(3, dtype=torch.float32, **kw).fit(X32)
    assert m32.means_.dtype == np.float32
    np.testing.assert_allclose(m32.lower_bounds_, m64.lower_bounds_, rtol=1e-5)
    np.testing.assert_allclose(m32.means_, m64.means_, rtol=1e-6)
    np.testing.assert_allclose(m32.covariances_, m64.covariances_, rtol=1e-3, atol=1e-9)


# ------------------------------------------------------------ degenerate data
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_duplicates_and_single_point_component_stay_finite(cov_type):
    rng = np.random.default_rng(1)
    blob = rng.normal(size=(60, 2))
    dup = np.tile([[8.0, 8.0]], (30, 1))  # 30 copies of one point
    lone = np.array([[-30.0, 30.0]])  # one far point with its own component
    X = np.vstack([blob, dup, lone])
    means = np.array([[0.0, 0.0], [8.0, 8.0], [-30.0, 30.0]])
    # a shared ('tied') covariance does not collapse with its components: no warning there
    if cov_type == "tied":
        expect = warnings.catch_warnings()
    else:
        expect = pytest.warns(DegenerateComponentWarning, match="collapsed")
    with expect:
        if cov_type == "tied":
            warnings.simplefilter("error", DegenerateComponentWarning)
        m = GaussianMixture(3, covariance_type=cov_type, means_init=means, max_iter=50, random_state=0).fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_"):
        assert np.all(np.isfinite(getattr(m, attr)))
    assert np.all(np.isfinite(m.score_samples(X))) and np.isfinite(m.lower_bound_)
    if cov_type != "tied":
        # the collapsed components sit on the duplicates and on the lone point
        assert np.sort(m.weights_)[:2] == pytest.approx(sorted([30 / 91, 1 / 91]), rel=1e-3)
    # no regulariser at all: jitter where needed, still finite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        m0 = GaussianMixture(3, covariance_type=cov_type, means_init=means, reg_covar=0.0, max_iter=20).fit(X)
    assert np.all(np.isfinite(m0.covariances_)) and np.all(np.isfinite(m0.score_samples(X)))


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("reg_covar", [1e-6, 0.0])
def test_all_points_identical(cov_type, reg_covar):
    X = np.ones((10, 3))
    with pytest.warns(DegenerateComponentWarning):
        m = GaussianMixture(2, covariance_type=cov_type, reg_covar=reg_covar, random_state=0).fit(X)
    assert np.all(np.isfinite(m.covariances_)) and np.all(np.isfinite(m.precisions_))
    assert np.all(np.isfinite(m.score_samples(X))) and np.isfinite(m.lower_bound_)


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_value_errors():
    X = _synthetic(n=50)
    bad_X = {  # scikit-learn's messages
        "contains NaN": np.where(np.arange(150).reshape(50, 3) == 7, np.nan, X),
        "contains infinity": np.where(np.arange(150).reshape(50, 3) == 7, np.inf, X),
        "Found array with dim 3": X.reshape(5, 10, 3),
        r"0 sample\(s\)": np.empty((0, 3)),
        "Reshape your data": X[:, 0],
    }
    for word, data in bad_X.items():
        with pytest.raises(ValueError, match=word):
            GaussianMixture(2).fit(data)
        with pytest.raises(ValueError, match=word):
            GaussianMixture(2).fit(torch.as_tensor(data))
    with pytest.raises(ValueError, match="'n_components' parameter of GaussianMixture must be an int"):
        GaussianMixture(0).fit(X)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(51).fit(X)
    with pytest.raises(ValueError, match="'covariance_type' parameter"):
        GaussianMixture(2, covariance_type="banded").fit(X)
    with pytest.raises(ValueError, match="'init_params' parameter"):
        GaussianMixture(2, init_params="magic").fit(X)
    with pytest.raises(ValueError, match="'reg_covar' parameter"):
        GaussianMixture(2, reg_covar=-1.0).fit(X)
    with pytest.raises(ValueError, match="'temperature' parameter"):
        GaussianMixture(2, temperature=-1.0).fit(X)
    with pytest.raises(ValueError, match="'dtype' parameter"):
        GaussianMixture(2, dtype=torch.int32).fit(X)
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        GaussianMixture(2).predict(X)
    m = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :2])


@pytest.mark.parametrize(
    "cov_type,param,value,match",
    [
        ("full", "weights_init", np.ones(3) / 3, "The parameter 'weights' should have the shape of"),
        ("full", "weights_init", np.array([0.7, 0.7]), r"'weights' should be normalized, but got sum\(weights\) = 1.4"),
        ("full", "weights_init", np.array([1.5, -0.5]), r"'weights' should be in the range \[0, 1\]"),
        ("full", "means_init", np.zeros((2, 2)), "The parameter 'means' should have the shape of"),
        ("full", "means_init", np.full((2, 3), np.nan), "Input means_init contains NaN"),
        ("full", "precisions_init", np.stack([np.eye(3)] * 3), "'full precision' should have the shape of"),
        ("full", "precisions_init", np.stack([-np.eye(3)] * 2), "'full precision' should be symmetric, positive-definite"),
        ("full", "precisions_init", np.stack([np.triu(np.ones((3, 3)))] * 2), "should be symmetric"),
        ("tied", "precisions_init", np.eye(2), "'tied precision' should have the shape of"),
        ("diag", "precisions_init", np.ones((2, 2)), "'diag precision' should have the shape of"),
        ("diag", "precisions_init", -np.ones((2, 3)), "'diag precision' should be positive"),
        ("spherical", "precisions_init", np.ones(3), "'spherical precision' should have the shape of"),
        ("spherical", "precisions_init", np.array([1.0, 0.0]), "'spherical precision' should be positive"),
    ],
)
def test_bad_init_shapes(cov_type, param, value, match):
    X = _synthetic(n=50)
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, covariance_type=cov_type, **{param: value}).fit(X)


# ------------------------------------------------------------------ CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_cuda_matches_cpu(cov_type):
    X = _synthetic(n=500, seed=9)
    kw = dict(covariance_type=cov_type, max_iter=30, **_inits(X, 3, cov_type))
    cpu = GaussianMixture(3, **kw).fit(X)
    gpu = GaussianMixture(3, device="cuda", **kw).fit(X)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-8, atol=1e-10)
    assert math.isfinite(gpu.score(X))
