"""The estimators as drop-ins for scikit-learn's: its own estimator checks, pickling and joblib,
model selection with parallel workers, and dtype following the input."""
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from zoo.linear_mixture import MixtureOfLinearModels
from zoo.mixture import BayesianGaussianMixture, GaussianMixture, KMeans, expected_failed_checks
from zoo.density import Histogram, KernelDensity, KNNDensity
from zoo.sparse_coding import DictionaryLearning, SparseCoder

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n=240, d=3, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(dtype)


# --------------------------------------------------------------- scikit-learn's checks
def _all_estimators():
    """One of every estimator with scikit-learn's surface (a fixed coder with a dictionary of width 3,
    the width of most of the checks' data, as scikit-learn checks its own SparseCoder)."""
    coder = SparseCoder(np.random.default_rng(0).normal(size=(5, 3)))
    return [GaussianMixture(), BayesianGaussianMixture(), KMeans(), MixtureOfLinearModels(), DictionaryLearning(),
            coder, KernelDensity(), Histogram(), KNNDensity()]


@parametrize_with_checks(_all_estimators(), expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_expected_failures_name_real_checks_and_give_reasons():
    from sklearn.utils.estimator_checks import estimator_checks_generator

    for est in _all_estimators():
        names = {getattr(check, "func", check).__name__ for _, check in estimator_checks_generator(est)}
        for check, reason in expected_failed_checks(est).items():
            assert check in names, check  # a check that exists, so its expected failure can be seen
            assert len(reason) > 20


# ---------------------------------------------------------------------- pickling
def _fitted():
    X = _blobs()
    out = []
    for cov in COV_TYPES:
        out.append(GaussianMixture(3, covariance_type=cov, random_state=0).fit(X))
        if cov in BayesianGaussianMixture._covariance_types:
            out.append(BayesianGaussianMixture(n_components=4, covariance_type=cov, random_state=0).fit(X))
    out.append(KMeans(3, random_state=0).fit(X))
    out.append(MixtureOfLinearModels(3, n_latent=1, random_state=0).fit(X))
    return X, out


def _predictions(est, X):
    out = {"predict": est.predict(X)}
    for method in ("predict_proba", "score_samples", "transform"):
        if hasattr(est, method):
            out[method] = getattr(est, method)(X)
    return out


def test_fitted_estimators_round_trip_through_pickle_and_joblib(tmp_path):
    X, models = _fitted()
    for i, est in enumerate(models):
        expected = _predictions(est, X)
        path = tmp_path / f"model{i}.joblib"
        joblib.dump(est, path)
        for back in (pickle.loads(pickle.dumps(est)), joblib.load(path)):
            assert type(back) is type(est) and back.get_params() == est.get_params()
            got = _predictions(back, X)
            for name, value in expected.items():
                np.testing.assert_array_equal(got[name], value, err_msg=f"{type(est).__name__}.{name}")


def test_unfitted_estimators_round_trip():
    for est in (GaussianMixture(2, covariance_type="diag", temperature=0.5), KMeans(4),
                BayesianGaussianMixture(3),
                MixtureOfLinearModels(2), GaussianMixture(2, annealing=(4.0, 1.0, 10))):
        back = pickle.loads(pickle.dumps(est))
        assert back.get_params() == est.get_params()


def test_a_fit_with_an_annealing_schedule_pickles():
    X = _blobs()
    est = GaussianMixture(3, annealing=(4.0, 1.0, 5), random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_tensors_of_a_device_that_is_absent_load_on_the_cpu():
    """An estimator fitted on CUDA, loaded where CUDA is absent: its tensors come back on the CPU.
    The state is the one pickled (tensors already on the CPU) with the CUDA device it records."""
    X, models = _fitted()
    for est in models:
        state = est.__getstate__()
        assert all(not t.is_cuda for t in _tensors(state))
        state["_fit_device"] = torch.device("cuda", 7)  # no such device here
        back = type(est).__new__(type(est))
        back.__setstate__(state)
        assert back._fit_device.type == "cpu" or torch.cuda.device_count() > 7
        np.testing.assert_array_equal(back.predict(X), est.predict(X))


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_estimators_fitted_on_cuda_round_trip():
    X = _blobs()
    for est in (GaussianMixture(3, device="cuda", random_state=0), KMeans(3, device="cuda", random_state=0),
                BayesianGaussianMixture(n_components=3, device="cuda", random_state=0),
                MixtureOfLinearModels(3, device="cuda", random_state=0)):
        est.fit(X)
        back = pickle.loads(pickle.dumps(est))
        assert back._fit_device.type == "cuda"
        np.testing.assert_array_equal(back.predict(X), est.predict(X))


# -------------------------------------------------------------- model selection
def test_grid_search_with_two_workers_picks_what_sklearn_picks():
    X = load_iris().data
    grid = {"n_components": [1, 2, 3, 4], "covariance_type": COV_TYPES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GridSearchCV(GaussianMixture(random_state=0, n_init=3, max_iter=200), grid, cv=3, n_jobs=2).fit(X)
        ref = GridSearchCV(SkGaussianMixture(random_state=0, n_init=3, max_iter=200), grid, cv=3, n_jobs=2).fit(X)
    assert ours.best_params_ == ref.best_params_
    assert ours.best_score_ == pytest.approx(ref.best_score_, rel=1e-3)
    assert isinstance(ours.best_estimator_, GaussianMixture)


# ------------------------------------------------------------------------ dtype
@pytest.mark.parametrize("make", [
    lambda: GaussianMixture(3, random_state=0), lambda: BayesianGaussianMixture(n_components=3, random_state=0),
    lambda: KMeans(3, random_state=0), lambda: MixtureOfLinearModels(3, random_state=0)],
    ids=["GaussianMixture", "BayesianGaussianMixture", "KMeans", "MixtureOfLinearModels"])
def test_dtype_follows_the_input(make):
    X64 = _blobs()
    cases = {np.float32: X64.astype(np.float32), np.float64: X64, "int": np.rint(X64 * 10).astype(np.int64)}
    for expected, X in cases.items():
        est = make().fit(X)
        want = np.float64 if expected == "int" else expected
        arrays = {name: value for name, value in vars(est).items()
                  if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f"}
        assert arrays, type(est).__name__
        for name, value in arrays.items():
            if name not in ("lower_bounds_", "objective_"):  # traces of floats
                assert value.dtype == want, (name, value.dtype, expected)
        assert est._fit_dtype == (torch.float32 if want == np.float32 else torch.float64)
        # a float32 tensor stays float32 too
    t = torch.as_tensor(X64, dtype=torch.float32)
    assert make().fit(t)._fit_dtype == torch.float32


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_float32_parity_with_sklearn(cov_type):
    """float32 data, the same initial parameters: scikit-learn's lower bound per iteration to 1e-4."""
    X = _blobs(n=600, d=4, seed=3, dtype=np.float32)
    rng = np.random.default_rng(1)
    k, d = 3, X.shape[1]
    cov = np.cov(X.T.astype(np.float64), bias=True) + 1e-3 * np.eye(d)
    prec = np.linalg.inv(cov)
    precisions = {"full": np.stack([prec] * k), "tied": prec, "diag": np.tile(1 / np.diag(cov), (k, 1)),
                  "spherical": np.full(k, 1 / np.diag(cov).mean())}[cov_type]
    inits = dict(weights_init=np.full(k, 1 / k, dtype=np.float32), means_init=X[rng.choice(len(X), k, replace=False)],
                 precisions_init=precisions.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(k, covariance_type=cov_type, max_iter=30, tol=0, **inits).fit(X)
        ours = GaussianMixture(k, covariance_type=cov_type, max_iter=30, tol=0, **inits).fit(X)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-4)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(ours, name).dtype == np.float32, name
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-3, atol=1e-3)


def test_a_float32_weights_init_that_sums_to_one_in_float32_is_accepted():
    X = _blobs(dtype=np.float32)
    w = np.array([0.1, 0.3, 0.6], dtype=np.float32)
    assert abs(float(w.astype(np.float64).sum()) - 1.0) > 1e-8  # 1.0000000373 in float64, 1 in float32
    GaussianMixture(3, weights_init=w, random_state=0).fit(X)
    SkGaussianMixture(3, weights_init=w, random_state=0).fit(X)  # the same rule as scikit-learn's


def test_bayesian_mixture_float32_matches_sklearn_float64_to_1e4():
    X = _blobs(n=400, seed=5)
    kw = dict(n_components=3, covariance_type="full", max_iter=20, tol=0, random_state=0, init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkBayesianGaussianMixture(**kw).fit(X)
        ours = BayesianGaussianMixture(**kw).fit(X.astype(np.float32))
    assert ours.means_.dtype == np.float32
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-4)
