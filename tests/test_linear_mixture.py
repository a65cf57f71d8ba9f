"""MixtureOfLinearModels: recovery of data drawn from the model, monotone objective,
K=1 equals PCA, the least-squares W update, re-seeding and bad input."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score

from zoo.linear_mixture import MixtureOfLinearModels, least_squares_update

NOISE = 0.05


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ helpers
def _sample(d, e, k=3, n_per=150, seed=0, noise=NOISE):
    """Points on ``k`` affine ``e``-subspaces of ``R^d`` plus isotropic noise.

    Returns X (n, d), labels (n,), offsets (k, d), orthonormal bases (k, d, e).
    """
    rng = np.random.default_rng(seed)
    offsets = rng.normal(scale=3.0, size=(k, d))
    bases = np.stack([np.linalg.qr(rng.normal(size=(d, e)))[0] for _ in range(k)])
    labels = np.repeat(np.arange(k), n_per)
    codes = rng.normal(scale=2.0, size=(k * n_per, e))
    X = offsets[labels] + np.einsum("nde,ne->nd", bases[labels], codes) + noise * rng.normal(size=(k * n_per, d))
    return X, labels, offsets, bases


def _subspace_cos(A, B):
    """Cosine of the largest principal angle between span(A) and span(B), both (d, e)."""
    qa, qb = np.linalg.qr(A)[0], np.linalg.qr(B)[0]
    return np.linalg.svd(qa.T @ qb, compute_uv=False).min()


def _match(true_bases, fitted):
    """Best one-to-one matching of fitted to true subspaces; returns (pairs, cosines)."""
    cos = np.array([[_subspace_cos(t, f) for f in fitted] for t in true_bases])
    rows, cols = linear_sum_assignment(-cos)
    return list(zip(rows, cols)), cos[rows, cols]


def _residual(X, means, components, labels):
    """Total squared least-squares residual of X under the given assignment (NumPy reference)."""
    total = 0.0
    for k in np.unique(labels):
        diff = X[labels == k] - means[k]
        z = np.linalg.lstsq(components[k], diff.T, rcond=None)[0]
        total += ((diff.T - components[k] @ z) ** 2).sum()
    return total


def _non_increasing(trace):
    trace = np.asarray(trace)
    # the PCA step is an exact minimiser up to rounding in eigh
    return bool(np.all(trace[1:] <= trace[:-1] * (1 + 1e-10) + 1e-12))


# ------------------------------------------------------------------ recovery
@pytest.mark.parametrize("d,e", [(3, 1), (4, 2), (5, 1), (5, 2)])
def test_recovers_partition_subspaces_and_noise(d, e):
    X, labels, offsets, bases = _sample(d, e, seed=d + 10 * e)
    model = MixtureOfLinearModels(3, n_latent=e, random_state=0).fit(X)

    assert adjusted_rand_score(labels, model.labels_) > 0.95
    pairs, cos = _match(bases, model.components_)
    assert cos.min() > 0.99
    for t, f in pairs:
        # the fitted offset lies on the true affine subspace (up to noise)
        gap = model.means_[f] - offsets[t]
        off_plane = gap - bases[t] @ (bases[t].T @ gap)
        assert np.linalg.norm(off_plane) < 5 * NOISE
    # The residual is the noise orthogonal to the planes: no more than under the true
    # parameters, and less only by the few noise dimensions the fit absorbs (about
    # (E + 1) / n_per of it); per datum that is ~ sigma^2 (D - E) up to chi-square spread.
    true_gap = X - offsets[labels]
    true_res = true_gap - np.einsum("nde,nfe,nf->nd", bases[labels], bases[labels], true_gap)
    true_inertia = (true_res**2).sum()
    assert 0.95 * true_inertia < model.inertia_ <= true_inertia
    per_datum = model.inertia_ / len(X)
    assert per_datum == pytest.approx(NOISE**2 * (d - e), rel=0.2)
    # the reported objective is the true residual of the reported assignment
    assert model.inertia_ == pytest.approx(_residual(X, model.means_, model.components_, model.labels_), rel=1e-9)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.score(X) == pytest.approx(-per_datum, rel=1e-12)
    assert model.converged_ and model.n_iter_ == len(model.objective_)


def test_outputs_have_documented_shapes_and_are_consistent():
    X, *_ = _sample(4, 2, seed=3)
    model = MixtureOfLinearModels(3, n_latent=2, random_state=1).fit(X)
    assert model.means_.shape == (3, 4) and model.components_.shape == (3, 4, 2)
    np.testing.assert_allclose(np.einsum("kde,kdf->kef", model.components_, model.components_),
                               np.broadcast_to(np.eye(2), (3, 2, 2)), atol=1e-10)
    codes, labels, recon = model.transform(X), model.predict(X), model.reconstruct(X)
    assert codes.shape == (len(X), 2) and recon.shape == X.shape and labels.shape == (len(X),)
    np.testing.assert_allclose(model.inverse_transform(codes, labels), recon, atol=1e-10)
    assert ((X - recon) ** 2).sum() == pytest.approx(model.inertia_, rel=1e-10)
    # tensor input, same answer; same seed, same fit
    np.testing.assert_array_equal(model.predict(torch.as_tensor(X)), labels)
    again = clone(model).fit(X)
    np.testing.assert_allclose(again.means_, model.means_)
    assert again.get_params()["n_latent"] == 2


def test_float32_follows_dtype():
    X, labels, *_ = _sample(3, 1, seed=4)
    model = MixtureOfLinearModels(3, n_latent=1, dtype=torch.float32, random_state=0).fit(X)
    assert model.means_.dtype == np.float32 and model.transform(X).dtype == np.float32
    assert adjusted_rand_score(labels, model.labels_) > 0.95


# ------------------------------------------------------------------ monotone objective
def test_objective_never_increases_on_a_hard_problem():
    # many overlapping components in noise: labels keep moving for several sweeps
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 4)) * np.array([3.0, 2.0, 1.0, 0.5])
    model = MixtureOfLinearModels(6, n_latent=1, tol=0.0, n_init=3, max_iter=200, random_state=0).fit(X)
    assert model.n_iter_ > 3  # the check below is about a real trajectory
    assert _non_increasing(model.objective_)
    assert model.inertia_ <= model.objective_[-1] * (1 + 1e-12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 60),
    d=st.integers(2, 6),
    e_frac=st.floats(0.0, 0.999),
    k=st.integers(1, 5),
    grid=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_objective_never_increases_property(n, d, e_frac, k, grid, seed):
    e = 1 + int(e_frac * (d - 1))  # 1 <= e < d
    k = min(k, n)
    rng = np.random.default_rng(seed)
    # a small integer grid gives duplicate points and components that empty out
    X = rng.integers(-2, 3, size=(n, d)).astype(float) if grid else rng.standard_normal((n, d)) * rng.uniform(0.1, 5.0, d)
    model = MixtureOfLinearModels(k, n_latent=e, max_iter=30, n_init=1, tol=0.0, random_state=seed % 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is small on purpose
        model.fit(X)
    assert _non_increasing(model.objective_)
    assert np.isfinite(model.means_).all() and np.isfinite(model.components_).all()
    assert np.isfinite(model.inertia_) and model.inertia_ <= model.objective_[-1] * (1 + 1e-10) + 1e-12


# ------------------------------------------------------------------ K = 1 is PCA
@pytest.mark.parametrize("e", [1, 2, 3])
def test_single_component_equals_pca(e):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 10.0
    model = MixtureOfLinearModels(1, n_latent=e, random_state=0).fit(X)
    pca = PCA(n_components=e).fit(X)
    recon = pca.inverse_transform(pca.transform(X))
    err = ((X - recon) ** 2).sum()
    assert model.inertia_ == pytest.approx(err, rel=1e-8)
    np.testing.assert_allclose(model.reconstruct(X), recon, rtol=0, atol=1e-8 * np.abs(X).max())
    np.testing.assert_allclose(model.means_[0], pca.mean_, atol=1e-10)
    # codes equal PCA scores up to the sign of each direction
    codes, scores = model.transform(X), pca.transform(X)
    signs = np.sign((codes * scores).sum(0))
    np.testing.assert_allclose(codes * signs, scores, atol=1e-8)


# ------------------------------------------------------------------ least-squares W update
def _cluster_problem(seed=7, n=120, d=4, e=2, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    labels = np.arange(n) % k
    codes = rng.normal(size=(n, e))
    return X, labels, codes


def test_least_squares_update_matches_lstsq_and_the_normal_equations():
    X, labels, codes = _cluster_problem()
    means, W = (t.numpy() for t in least_squares_update(torch.as_tensor(X), torch.as_tensor(labels),
                                                          torch.as_tensor(codes), 3))
    for k in range(3):
        x, z = X[labels == k], codes[labels == k]
        design = np.hstack([z, np.ones((len(z), 1))])
        coef = np.linalg.lstsq(design, x, rcond=None)[0]  # (E+1, D)
        np.testing.assert_allclose(W[k], coef[:-1].T, atol=1e-10)
        np.testing.assert_allclose(means[k], coef[-1], atol=1e-10)
        # it satisfies both update formulas of the model description
        np.testing.assert_allclose(means[k], (x - z @ W[k].T).mean(0), atol=1e-10)
        w_formula = ((x - means[k]).T @ z) @ np.linalg.inv(z.T @ z)
        np.testing.assert_allclose(W[k], w_formula, atol=1e-10)


def test_least_squares_update_is_the_minimiser():
    X, labels, codes = _cluster_problem(seed=8)
    means, W = (t.numpy() for t in least_squares_update(torch.as_tensor(X), torch.as_tensor(labels),
                                                          torch.as_tensor(codes), 3))

    def cost(m, w):
        return sum(((X[labels == k] - m[k] - codes[labels == k] @ w[k].T) ** 2).sum() for k in range(3))

    best = cost(means, W)
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1e-1, 1.0):
        for _ in range(10):
            assert cost(means, W + scale * rng.normal(size=W.shape)) > best
            assert cost(means + scale * rng.normal(size=means.shape), W) > best
    # the naive rank-one "update" (x_b - mu_k) z_b^T summed without (sum z z^T)^-1 is worse
    naive = np.stack([(X[labels == k] - means[k]).T @ codes[labels == k] for k in range(3)])
    assert cost(means, naive) > best


def test_fitted_parameters_are_a_fixed_point_of_the_least_squares_update():
    X, *_ = _sample(5, 2, seed=9)
    model = MixtureOfLinearModels(3, n_latent=2, random_state=0).fit(X)
    means, W = least_squares_update(torch.as_tensor(X), torch.as_tensor(model.labels_),
                                    torch.as_tensor(model.transform(X)), 3)
    np.testing.assert_allclose(means.numpy(), model.means_, atol=1e-9)
    np.testing.assert_allclose(W.numpy(), model.components_, atol=1e-9)


# ------------------------------------------------------------------ re-seeding
def test_empty_component_is_reseeded_not_nan():
    X, labels, *_ = _sample(3, 1, seed=11)
    X = X + 50.0  # far from the origin, where an empty component would otherwise sit
    model = MixtureOfLinearModels(3, n_latent=1, n_init=1, random_state=0)
    far_means = np.array([[-1e3, 0, 0], [0, -1e3, 0], [0, 0, -1e3]], dtype=float)
    far_means[0] = X[0]  # one component near the data takes every point at the start
    init = (torch.as_tensor(far_means), torch.eye(3, dtype=torch.float64)[:, :1].expand(3, 3, 1).clone())
    model._initial_parameters = lambda *args: init
    model.fit(X)
    assert np.isfinite(model.means_).all() and np.isfinite(model.components_).all()
    assert np.bincount(model.labels_, minlength=3).min() > 0
    assert adjusted_rand_score(labels, model.labels_) > 0.95
    assert _non_increasing(model.objective_)


def test_duplicate_points_stay_finite():
    X = np.repeat(np.eye(3), 10, axis=0)  # three distinct points, five components
    model = MixtureOfLinearModels(5, n_latent=1, random_state=0).fit(X)
    assert np.isfinite(model.components_).all() and model.inertia_ == pytest.approx(0.0, abs=1e-20)


# ------------------------------------------------------------------ bad input
GOOD = np.random.default_rng(0).normal(size=(20, 3))


@pytest.mark.parametrize(
    "X,kw,match",
    [
        (np.where(np.eye(20, 3) > 0, np.nan, GOOD), {}, "Input X contains NaN"),
        (np.where(np.eye(20, 3) > 0, np.inf, GOOD), {}, "Input X contains infinity"),
        (GOOD[None], {}, "Found array with dim 3"),
        (np.empty((0, 3)), {}, r"Found array with 0 sample\(s\)"),
        (GOOD[:, 0], {}, "Reshape your data"),
        (GOOD, {"n_components": 0}, "The 'n_components' parameter of MixtureOfLinearModels must be an int in the "
                                    r"range \[1, inf\)"),
        (GOOD, {"n_components": 21}, "n_samples=20 should be >= n_components=21"),
        (GOOD, {"n_latent": 0}, "The 'n_latent' parameter"),
        (GOOD, {"n_latent": 3}, "n_latent=3 should be < n_features=3"),
        (GOOD, {"max_iter": 0}, "The 'max_iter' parameter"),
        (GOOD, {"n_init": 0}, "The 'n_init' parameter"),
        (GOOD, {"tol": -1.0}, "The 'tol' parameter"),
        (GOOD, {"tol": float("nan")}, "The 'tol' parameter"),
    ],
)
def test_bad_input_raises_value_error(X, kw, match):
    with pytest.raises(ValueError, match=match):
        MixtureOfLinearModels(**{"n_components": 2, **kw}).fit(X)


def test_bad_input_after_fit():
    model = MixtureOfLinearModels(2, random_state=0)
    with pytest.raises(NotFittedError):
        model.predict(GOOD)
    model.fit(GOOD)
    for method in (model.predict, model.transform, model.reconstruct, model.score):
        with pytest.raises(ValueError, match="X has 4 features, but MixtureOfLinearModels is expecting 3 features"):
            method(np.ones((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="labels must be integers"):
        model.inverse_transform(np.zeros((2, 1)), [0, 5])


# ------------------------------------------------------------------ CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    X, *_ = _sample(4, 2, seed=12)
    cpu = MixtureOfLinearModels(3, n_latent=2, random_state=0).fit(X)
    gpu = MixtureOfLinearModels(3, n_latent=2, random_state=0, device="cuda").fit(X)
    assert gpu._means.is_cuda
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=1e-8)
    np.testing.assert_allclose(gpu.means_, cpu.means_, atol=1e-8)
