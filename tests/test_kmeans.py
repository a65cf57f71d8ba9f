"""KMeans as a drop-in for scikit-learn's: the same iterations from the same centres, its
parameters, messages and warnings; and the temperature limit T -> 0 of the Gaussian mixture."""
import pickle
import re
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
from zoo.mixture import GaussianMixture, KMeans, kmeans_plusplus


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(name):
    # Integer pixels and one-decimal measurements give exact distance ties (in decimal), which
    # each library breaks by its own rounding (both right); a tiny jitter makes the labels well
    # defined.
    if name == "iris":
        X = load_iris().data
        return X + np.random.default_rng(0).normal(scale=1e-6, size=X.shape), 3
    if name == "digits":
        X = load_digits().data
        return X + np.random.default_rng(0).normal(scale=1e-3, size=X.shape), 10
    X, _ = make_blobs(n_samples=500, centers=5, n_features=4, cluster_std=2.5, random_state=0)
    return X, 5


def _fit_both(X, init, sample_weight=None, **params):
    """scikit-learn's Lloyd and ours from the same initial centres."""
    k = len(init)
    ref = SkKMeans(k, init=init, n_init=1, algorithm="lloyd", **params).fit(X, sample_weight=sample_weight)
    ours = KMeans(k, init=init, n_init=1, **params).fit(X, sample_weight=sample_weight)
    return ref, ours


def _assert_same_run(ours, ref, *, rel=1e-12, centres_rtol=1e-12):
    """Labels and n_iter_ equal; inertia and centres to rounding (the sums run in another order;
    a centre of duplicates is their sum times 1/weight, so an inertia of 0 may come out as 1e-31)."""
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=rel, abs=1e-25)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=centres_rtol, atol=centres_rtol)


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", ["iris", "blobs", "digits"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tol", [1e-4, 1e-2])  # 1e-2 stops on the centre shift before labels settle
def test_same_run_as_sklearn_from_same_centres(name, seed, tol):
    X, k = _data(name)
    init = X[np.random.default_rng(seed).choice(len(X), k, replace=False)]
    ref, ours = _fit_both(X, init, tol=tol)
    _assert_same_run(ours, ref, centres_rtol=1e-10)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-10, atol=1e-10)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.labels_.dtype == ref.labels_.dtype == np.int32


@pytest.mark.parametrize("kind", ["integer", "float"])
def test_same_run_as_sklearn_with_sample_weight(kind):
    X, k = _data("blobs")
    rng = np.random.default_rng(3)
    sw = rng.integers(0, 5, len(X)) if kind == "integer" else rng.uniform(0.1, 3.0, len(X))
    init = X[rng.choice(len(X), k, replace=False)]
    ref, ours = _fit_both(X, init, sample_weight=sw)
    _assert_same_run(ours, ref, centres_rtol=1e-10)
    assert ours.score(X, sample_weight=sw) == pytest.approx(ref.score(X, sample_weight=sw), rel=1e-12)
    # integer weights are repeated samples
    if kind == "integer":
        rep = KMeans(k, init=init).fit(np.repeat(X, sw, axis=0))
        assert rep.inertia_ == pytest.approx(ours.inertia_, rel=1e-12)
        np.testing.assert_allclose(rep.cluster_centers_, ours.cluster_centers_, rtol=1e-12)


def test_few_iterations_and_tol_zero_match_sklearn():
    X, k = _data("blobs")
    for max_iter in (1, 2, 5):
        ref, ours = _fit_both(X, X[:k], max_iter=max_iter, tol=0)
        _assert_same_run(ours, ref)


def test_float32_data_same_run_as_sklearn():
    X, k = _data("blobs")
    X32 = X.astype(np.float32)
    init = X32[np.random.default_rng(1).choice(len(X), k, replace=False)]
    ref, ours = _fit_both(X32, init)
    assert ours.cluster_centers_.dtype == ref.cluster_centers_.dtype == np.float32
    # scikit-learn sums (and rounds) in float32; we accumulate in float64
    _assert_same_run(ours, ref, rel=1e-5, centres_rtol=1e-5)
    t = ours.transform(X32)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, ref.transform(X32), rtol=1e-5, atol=1e-5)
    tensor = KMeans(k, init=torch.as_tensor(init)).fit(torch.as_tensor(X32))
    np.testing.assert_array_equal(tensor.labels_, ours.labels_)
    assert tensor.cluster_centers_.dtype == np.float32 and tensor.inertia_ == ours.inertia_


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
@pytest.mark.parametrize("max_iter", [1, 2, 300])
def test_duplicate_points_same_run_as_sklearn(max_iter):
    """Exact duplicates; the clusters that start empty are relocated onto tied far points."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 3))
    X = np.repeat(base, rng.integers(1, 5, 30), axis=0)
    X = np.vstack([X, np.repeat([[9.0, 9.0, 9.0]], 4, axis=0)])  # four equally far points
    init = np.vstack([X[:2], [[100.0, 100.0, 100.0]], [[-100.0, 0.0, 0.0]], [[0.0, -100.0, 0.0]]])
    ref, ours = _fit_both(X, init, max_iter=max_iter)
    _assert_same_run(ours, ref)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
@pytest.mark.parametrize("max_iter", [1, 2, 300])
def test_ties_between_far_points_resolve_as_sklearn(max_iter):
    """Two empty clusters, four equally far duplicates weighing 1, 2, 4 and 8: which two move
    (and so what their old cluster keeps) is numpy's argpartition's choice, here the ones
    weighing 2 and 1 (a stable sort would move 8 and 4, torch.topk 8 and 1). Powers of two
    keep every centre of duplicates exact, so the later ties are exact too."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(30, 3))
    X = np.vstack([np.repeat(base, rng.integers(1, 4, 30), axis=0), np.repeat([[9.0, 9.0, 9.0]], 4, axis=0)])
    sw = np.ones(len(X))
    sw[-4:] = [1, 2, 4, 8]
    order = rng.permutation(len(X))
    X, sw = X[order], sw[order]
    init = np.vstack([X[:2], [[100.0, 100.0, 100.0]], [[-100.0, 0.0, 0.0]]])
    ref, ours = _fit_both(X, init, sample_weight=sw, max_iter=max_iter)
    _assert_same_run(ours, ref)


def test_empty_cluster_relocated_as_sklearn():
    X, _ = _data("iris")
    init = np.vstack([X[[0, 60]], [[50.0, 50.0, 50.0, 50.0]], [[-40.0, 0.0, 0.0, 0.0]]])
    ref, ours = _fit_both(X, init, max_iter=1)
    _assert_same_run(ours, ref)
    # both far centres moved onto the two points farthest from their assigned centres ...
    d = ((X[:, None, :] - init[None, :2]) ** 2).sum(-1)
    far = np.argsort(d.min(1))[::-1][:2]
    np.testing.assert_allclose(ours.cluster_centers_[2:], X[far], rtol=1e-12)
    # ... and out of the cluster they were assigned to (their weight left its sums)
    labels0 = d.argmin(1)
    keep = np.ones(len(X), bool)
    keep[far] = False
    old = labels0[far[0]]
    np.testing.assert_allclose(ours.cluster_centers_[old], X[keep & (labels0 == old)].mean(0), rtol=1e-12)
    ref, ours = _fit_both(X, init)
    _assert_same_run(ours, ref)


def test_cluster_left_empty_as_sklearn():
    """All points on their centres and one cluster empty: nothing to relocate. scikit-learn
    (and so we) give the empty cluster the heaviest cluster's row as its averaging loop finds
    it: the weighted sum, not yet the mean, when the heaviest cluster comes later (here
    [-2.4, -2.4], away from the data)."""
    X = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0], [5.0, 5.0]])
    msg = "Number of distinct clusters (3) found smaller than n_clusters (4). Possibly due to duplicate points in X."
    for init in ([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [5.0, 5.0]]):
        for max_iter in (1, 300):
            with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
                ref, ours = _fit_both(X, np.array(init), max_iter=max_iter)
            _assert_same_run(ours, ref)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
@pytest.mark.parametrize("position", ["last", "first"])
@pytest.mark.parametrize("max_iter", [1, 2, 300])
def test_zero_weight_clusters_as_sklearn(position, max_iter):
    """A cluster of zero-weight points is empty; the farthest point weighs 0 too, so moving it
    leaves the cluster empty and it takes the heaviest cluster's row (its mean after it, its
    sum before it, as scikit-learn's loop)."""
    X, _ = make_blobs(200, centers=3, n_features=2, random_state=0)
    X = np.vstack([X, [[50.0, 50.0]], np.full((5, 2), -20.0) + np.arange(5)[:, None] * 0.1])
    sw = np.ones(len(X))
    sw[200:] = 0.0
    init = [X[0], X[1], X[2]]
    init.insert(len(init) if position == "last" else 0, [-20.0, -20.0])
    ref, ours = _fit_both(X, np.array(init), sample_weight=sw, max_iter=max_iter)
    _assert_same_run(ours, ref, centres_rtol=1e-10)


def test_a_repeated_centre_never_wins_its_ties():
    """Equal centres tie everywhere and the first wins, as in scikit-learn's loop; a matrix
    product need not give equal rows equal results (here, 11 centres: it does not)."""
    X, _ = make_blobs(586, centers=7, n_features=10, random_state=55)
    km = KMeans(11, random_state=0).fit(X)
    km.cluster_centers_[8] = km.cluster_centers_[1]
    labels = km.predict(X)
    np.testing.assert_array_equal(labels, ((X[:, None] - km.cluster_centers_[None]) ** 2).sum(-1).argmin(1))
    assert np.any(labels == 1) and not np.any(labels == 8)


def test_fixed_point_stops_after_one_iteration():
    X, k = _data("blobs")
    centres = KMeans(k, init=X[:k]).fit(X).cluster_centers_
    ref, ours = _fit_both(X, centres)
    assert ours.n_iter_ == ref.n_iter_ == 1
    _assert_same_run(ours, ref)


def test_inertia_never_increases_with_iterations():
    """Lloyd's promise: each iteration (assignment, then means) lowers the inertia or keeps it."""
    X, k = _data("blobs")
    inertia = [KMeans(k, init=X[:k], max_iter=m, tol=0).fit(X).inertia_ for m in range(1, 15)]
    assert np.all(np.diff(inertia) <= 1e-12 * np.abs(inertia[1:]))
    assert inertia[-1] < inertia[0]


@pytest.mark.parametrize("init", ["random", "callable"])
def test_restarts_keep_sklearns_best_run(init):
    """'random' and a callable draw as scikit-learn's (n_init='auto': 10 runs), so the kept
    run is the same."""
    X, k = _data("blobs")
    if init == "callable":
        def init(X, n_clusters, random_state):
            return X[random_state.permutation(len(X))[:n_clusters]] + 0.5
    ref = SkKMeans(k, init=init, random_state=7).fit(X)
    ours = KMeans(k, init=init, random_state=7).fit(X)
    _assert_same_run(ours, ref, centres_rtol=1e-10)


def test_callable_init_gets_the_centred_data_in_its_own_type():
    X, k = _data("iris")
    seen = []

    def init(data, n_clusters, random_state):
        seen.append(data)
        return data[:n_clusters] * 1.0  # a copy: scikit-learn iterates in the returned array's memory

    KMeans(k, init=init, n_init=1).fit(X)
    KMeans(k, init=init, n_init=1).fit(torch.as_tensor(X))
    assert isinstance(seen[0], np.ndarray) and isinstance(seen[1], torch.Tensor)
    np.testing.assert_allclose(seen[0], X - X.mean(0), atol=1e-12)
    ref = SkKMeans(k, init=init, n_init=1).fit(X)
    np.testing.assert_allclose(seen[1].numpy(), seen[2], atol=1e-12)  # scikit-learn passes the same
    np.testing.assert_array_equal(KMeans(k, init=init, n_init=1).fit(X).labels_, ref.labels_)


@pytest.mark.parametrize("init", ["k-means++", "random", "array", "callable"])
def test_n_init_auto_as_sklearn(init, capsys):
    X, k = _data("iris")
    init = {"array": X[:k], "callable": lambda X, n, random_state: X[:n] * 1.0}.get(init, init)
    SkKMeans(k, init=init, verbose=1, random_state=0).fit(X)
    expected = capsys.readouterr().out.count("Initialization complete")
    KMeans(k, init=init, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    runs = 10 if callable(init) or isinstance(init, str) and init == "random" else 1
    assert out.count("Initialization complete") == expected == runs
    assert "Iteration 0, inertia" in out and "Converged at iteration" in out


# ------------------------------------------------------------------ surface
def test_transform_is_exactly_zero_on_the_centres():
    X, k = _data("blobs")
    for data in (X, X.astype(np.float32)):
        km = KMeans(k, random_state=0).fit(data)
        d = km.transform(km.cluster_centers_)
        assert np.all(np.diag(d) == 0.0) and np.all(d[~np.eye(k, dtype=bool)] > 0)
        ref = SkKMeans(k, init=km.cluster_centers_, n_init=1).fit(data)
        np.testing.assert_allclose(d, ref.transform(km.cluster_centers_), rtol=1e-5, atol=1e-5)  # its diagonal: 1e-6


def test_fit_transform_fit_predict_and_feature_names():
    X, k = _data("blobs")
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    a = KMeans(k, random_state=0).fit_transform(X, sample_weight=sw)
    km = KMeans(k, random_state=0).fit(X, sample_weight=sw)
    np.testing.assert_array_equal(a, km.transform(X))
    np.testing.assert_array_equal(KMeans(k, random_state=0).fit_predict(X, sample_weight=sw), km.labels_)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    ref = SkKMeans(k, random_state=0).fit(X)
    np.testing.assert_array_equal(km.get_feature_names_out(), ref.get_feature_names_out())
    assert km.__sklearn_tags__().estimator_type == "clusterer" and km.__sklearn_tags__().transformer_tags


def test_score_is_the_opposite_of_sklearns_weighted_inertia():
    X, k = _data("iris")
    km = KMeans(k, random_state=0).fit(X)
    ref = SkKMeans(k, init=km.cluster_centers_, n_init=1, max_iter=1).fit(X)
    ref.cluster_centers_ = km.cluster_centers_
    sw = np.random.default_rng(1).uniform(0.0, 2.0, len(X))
    assert km.score(X) == pytest.approx(ref.score(X), rel=1e-12)
    assert km.score(X[:40], sample_weight=sw[:40]) == pytest.approx(ref.score(X[:40], sample_weight=sw[:40]), rel=1e-12)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-12)


def test_kmeans_plus_plus_recovers_separated_blobs_and_restarts():
    X, y = make_blobs(n_samples=600, centers=4, n_features=3, cluster_std=0.5, random_state=3)
    m = KMeans(4, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(y, m.labels_) == pytest.approx(1.0)
    np.testing.assert_array_equal(m.fit_predict(X), m.labels_)
    assert m.cluster_centers_.shape == (4, 3) and m.transform(X).shape == (600, 4)
    r = KMeans(4, init="random", random_state=0, n_init=4).fit(X)
    assert np.isfinite(r.inertia_)


def test_kmeans_plus_plus_takes_sample_weight():
    X, _ = _data("iris")
    sw = np.zeros(len(X))
    sw[100:] = 1.0  # only the last class may seed
    for seed in range(5):
        _, idx = kmeans_plusplus(X, 3, sample_weight=sw, random_state=seed)
        assert np.all(idx >= 100)
    km = KMeans(3, random_state=0).fit(X, sample_weight=sw)
    assert np.all(np.isin(np.unique(km.labels_[100:]), np.arange(3)))
    with pytest.raises(ValueError, match=re.escape("n_samples=150 should be >= n_clusters=151.")):
        kmeans_plusplus(X, 151)


def test_pickle_and_tensor_input():
    X, k = _data("blobs")
    km = KMeans(k, random_state=0).fit(torch.as_tensor(X))
    back = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(back.predict(X), km.labels_)
    np.testing.assert_array_equal(back.transform(torch.as_tensor(X)), km.transform(X))


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


# ------------------------------------------------------------------ messages and warnings
_X = load_iris().data


@pytest.mark.parametrize("params,fit", [
    (dict(n_clusters=0), {}),
    (dict(n_clusters=2.5), {}),
    (dict(init="farthest"), {}),
    (dict(n_init=0), {}),
    (dict(n_init="always"), {}),
    (dict(max_iter=0), {}),
    (dict(tol=-1.0), {}),
    (dict(verbose=-1), {}),
    (dict(random_state="seed"), {}),
    (dict(copy_x="yes"), {}),
    (dict(algorithm="full"), {}),
    (dict(n_clusters=200), {}),
    (dict(n_clusters=3, init=_X[:2]), {}),
    (dict(n_clusters=3, init=_X[:3, :2]), {}),
    (dict(n_clusters=3, init=lambda X, n, random_state: X[:2]), {}),
    (dict(n_clusters=3), dict(sample_weight=np.ones(7))),
    (dict(n_clusters=3), dict(sample_weight=np.ones((150, 2)))),
    (dict(n_clusters=3), dict(sample_weight=np.zeros(150))),
    (dict(n_clusters=3), dict(X=np.where(_X > 7, np.nan, _X))),
    (dict(n_clusters=3), dict(X=_X[:, 0])),
])
def test_bad_input_raises_sklearns_message(params, fit):
    fit = {"X": _X, **fit}
    with pytest.raises(Exception) as ref:
        SkKMeans(**params).fit(**fit)
    with pytest.raises(type(ref.value), match=re.escape(str(ref.value))):
        KMeans(**params).fit(**fit)


def test_bad_input_after_fitting_raises_sklearns_message():
    ours, ref = KMeans(3, random_state=0).fit(_X), SkKMeans(3, random_state=0).fit(_X)
    for method in ("predict", "transform", "score"):
        with pytest.raises(ValueError) as expected:
            getattr(ref, method)(_X[:, :3])
        with pytest.raises(ValueError, match=re.escape(str(expected.value))):
            getattr(ours, method)(_X[:, :3])


def test_explicit_centres_with_restarts_warn_and_run_once():
    msg = "Explicit initial center position passed: performing only one init in KMeans instead of n_init=10."
    with pytest.warns(RuntimeWarning, match=re.escape(msg)):
        SkKMeans(3, init=_X[:3], n_init=10).fit(_X)
    with pytest.warns(RuntimeWarning, match=re.escape(msg)):
        ours = KMeans(3, init=_X[:3], n_init=10).fit(_X)
    assert ours.n_iter_ == SkKMeans(3, init=_X[:3], n_init=1).fit(_X).n_iter_


def test_fewer_distinct_points_than_clusters_warns():
    X = np.array([[0.0, 0.0]] * 4 + [[3.0, 1.0]] * 3)
    msg = ("Number of distinct clusters (2) found smaller than n_clusters (3). Possibly due to duplicate points "
           "in X.")
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
        ref = SkKMeans(3, init=X[[0, 1, 4]], n_init=1).fit(X)
    with pytest.warns(ConvergenceWarning, match=re.escape(msg)):
        ours = KMeans(3, init=X[[0, 1, 4]]).fit(X)
    _assert_same_run(ours, ref)


def test_elkan_runs_lloyd():
    X, k = _data("blobs")
    a = KMeans(k, init=X[:k], algorithm="elkan").fit(X)
    b = KMeans(k, init=X[:k]).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    with pytest.warns(RuntimeWarning, match="algorithm='elkan' doesn't make sense for a single cluster"):
        KMeans(1, algorithm="elkan").fit(X)


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
