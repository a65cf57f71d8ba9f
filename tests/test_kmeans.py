"""KMeans as hard EM (parity with scikit-learn) and the temperature limit T -> 0."""
import warnings

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import load_digits, load_iris, make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import zoo.mixture._gaussian as kernels
from zoo.mixture import GaussianMixture, KMeans


def _data(name):
    if name == "iris":
        return load_iris().data, 3
    if name == "digits":
        # integer pixels give exact distance ties, which either library may break
        # its own way (both right); a tiny jitter makes the labels well defined
        X = load_digits().data
        return X + np.random.default_rng(0).normal(scale=1e-3, size=X.shape), 10
    X, _ = make_blobs(n_samples=500, centers=5, n_features=4, cluster_std=2.5, random_state=0)
    return X, 5


@pytest.mark.parametrize("name", ["iris", "blobs", "digits"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tol", [1e-4, 1e-2])  # 1e-2 stops on the centre shift before labels settle
def test_inertia_matches_sklearn_from_same_centres(name, seed, tol):
    X, k = _data(name)
    init = X[np.random.default_rng(seed).choice(len(X), k, replace=False)]
    ref = SkKMeans(k, init=init, n_init=1, max_iter=300, tol=tol, algorithm="lloyd").fit(X)
    ours = KMeans(k, init=init, n_init=1, max_iter=300, tol=tol).fit(X)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-6, atol=1e-6)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-6)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_few_iterations_and_tol_zero_match_sklearn():
    X, k = _data("blobs")
    init = X[:k]
    for max_iter in (1, 2, 5):
        ref = SkKMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0).fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = KMeans(k, init=init, max_iter=max_iter, tol=0).fit(X)
        assert ours.n_iter_ == ref.n_iter_
        assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)


def test_lloyd_is_hard_em_on_the_bound():
    """The driver's bound is -inertia/(2n) of the centres entering each iteration."""
    X, k = _data("blobs")
    init = X[:k]
    m = KMeans(k, init=init, max_iter=300, tol=0).fit(X)
    trace = np.asarray(m.lower_bounds_)
    d2 = ((X[:, None, :] - init[None]) ** 2).sum(-1)
    assert trace[0] == pytest.approx(-0.5 * d2.min(1).mean(), rel=1e-9)
    assert trace[-1] == pytest.approx(-0.5 * m.inertia_ / len(X), rel=1e-9)
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))
    assert m.converged_  # strict convergence: labels stopped changing


def test_kmeans_plus_plus_recovers_separated_blobs_and_restarts():
    X, y = make_blobs(n_samples=600, centers=4, n_features=3, cluster_std=0.5, random_state=3)
    m = KMeans(4, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(y, m.labels_) == pytest.approx(1.0)
    np.testing.assert_array_equal(m.fit_predict(X), m.labels_)
    assert m.cluster_centers_.shape == (4, 3) and m.transform(X).shape == (600, 4)
    r = KMeans(4, init="random", random_state=0, n_init=4).fit(X)
    assert np.isfinite(r.inertia_)


def test_kmeans_and_gmm_share_the_distance_code(monkeypatch):
    calls = []
    original = kernels.spherical_coef

    def spy(*args):
        calls.append(True)
        return original(*args)

    monkeypatch.setattr(kernels, "spherical_coef", spy)
    X, k = _data("iris")
    KMeans(k, init=X[:k]).fit(X)
    n_kmeans = len(calls)
    GaussianMixture(k, covariance_type="spherical", init_params="random", random_state=0).fit(X)
    assert n_kmeans > 0 and len(calls) > n_kmeans


def test_gmm_kmeans_init_is_this_kmeans():
    X, _ = make_blobs(n_samples=300, centers=3, n_features=2, cluster_std=0.4, random_state=1)
    km = KMeans(3, n_init=1, random_state=5).fit(X)
    g = GaussianMixture(3, init_params="kmeans", max_iter=0, random_state=5).fit(X)
    order = np.argsort(g.means_[:, 0])
    np.testing.assert_allclose(g.means_[order], km.cluster_centers_[np.argsort(km.cluster_centers_[:, 0])], rtol=1e-10)


def test_kmeans_bad_input():
    X, k = _data("iris")
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(200).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0).fit(X)
    with pytest.raises(ValueError, match="should have the shape of"):
        KMeans(3, init=X[:2]).fit(X)
    with pytest.raises(ValueError, match="init"):
        KMeans(3, init="farthest").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        KMeans(3).fit(np.where(X > 7, np.nan, X))
    m = KMeans(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])


def test_kmeans_float32_and_tensor_input():
    X, k = _data("blobs")
    init = X[:k]
    a = KMeans(k, init=init).fit(X)
    b = KMeans(k, init=init, dtype=torch.float32).fit(torch.as_tensor(X, dtype=torch.float32))
    assert b.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-5)


# ----------------------------------------------------------- temperature
def test_temperature_sweep_turns_responsibilities_one_hot():
    """Fixed parameters (max_iter=0): r ∝ (pi_k p(x|k))^(1/T) sharpens to one-hot as T -> 0."""
    X, k = load_iris().data, 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(k, covariance_type="diag", random_state=0, max_iter=5).fit(X)
    inits = dict(weights_init=ref.weights_, means_init=ref.means_, precisions_init=ref.precisions_)
    # log(pi_k p(x | k)) from scikit-learn, to check our tempered E-step against
    wlp = ref._estimate_weighted_log_prob(X)
    temps = [100.0, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.0]
    sharpness = []
    for t in temps:
        m = GaussianMixture(k, covariance_type="diag", max_iter=0, temperature=t, **inits).fit(X)
        proba = m.predict_proba(X)
        if t > 0:
            np.testing.assert_allclose(proba, softmax(wlp / t, axis=1), rtol=1e-6, atol=1e-12)
        if t == 1.0:
            np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=1e-6, atol=1e-12)
        np.testing.assert_array_equal(proba.argmax(1), ref.predict(X))  # T never moves the arg-max
        sharpness.append(proba.max(1).mean())
    sharpness = np.asarray(sharpness)
    steps = np.diff(sharpness)
    # increases with 1/T, strictly until it saturates at exactly 1
    assert np.all(steps >= 0) and np.all(steps[sharpness[1:] < 1.0] > 0)
    assert sharpness[0] < 0.5 and sharpness[-2] > 0.999
    assert sharpness[-1] == 1.0  # T = 0: exactly one-hot


def test_fitted_temperature_sweep_and_hard_em():
    X, _ = make_blobs(n_samples=400, centers=3, n_features=2, cluster_std=1.5, random_state=4)
    sharp = []
    for t in [1.0, 0.3, 0.1, 0.0]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = GaussianMixture(3, covariance_type="spherical", temperature=t, random_state=0, max_iter=200).fit(X)
        trace = np.asarray(m.lower_bounds_)
        assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))  # tempered free energy ascends
        sharp.append(m.predict_proba(X).max(1).mean())
    assert np.all(np.diff(sharp) > 0) and sharp[-1] == 1.0
