"""Fits of chunk sources (zoo.sources): a memory-mapped array, a .npy path, a list of chunks, a DataLoader.

Each iteration is one pass that accumulates the statistics in float64, so the result equals the in-memory
fit of the same rows to 1e-10 relative (float64, fixed iterations), whatever the chunking; the
initialisation reads a uniform reservoir sample in one pass (all rows when there are at most
``INIT_SAMPLE_ROWS``, which makes it the in-memory initialisation).
"""
import os
import warnings

import numpy as np
import pytest
import torch

from zoo.mixture import BayesianGaussianMixture, GaussianMixture, KMeans
from zoo.mixture import gaussian_mixture as gm_module
from zoo.sources import ArraySource, Reservoir, as_source, is_source

pytestmark = pytest.mark.usefixtures("one_thread")

K, D, N = 3, 4, 3000
COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=6.0, size=(K, D))
    X = centres[rng.integers(K, size=N)] + rng.normal(size=(N, D)) * rng.uniform(0.5, 2.0, size=D)
    path = tmp_path_factory.mktemp("streamed") / "x.npy"
    np.save(path, X)
    return X, str(path)


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def sources(X, path):
    mm = np.load(path, mmap_mode="r")
    sizes = [1, 700, 13, 1500, 786]  # uneven chunks, one of a single row
    cuts = np.cumsum([0] + sizes)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(X)), batch_size=512)
    return {
        "memmap, chunks smaller than the file": ArraySource(mm, chunk_rows=256),
        "npy path": path,
        "memmap": mm,
        "uneven list of chunks": [X[a:b] for a, b in zip(cuts[:-1], cuts[1:])],
        "DataLoader": loader,
    }


def params(est):
    return {n: getattr(est, n) for n in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                                         "lower_bound_", "cluster_centers_", "inertia_") if hasattr(est, n)}


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("cov", COV_TYPES)
def test_chunked_fit_equals_in_memory_fit(data, estimator, cov):
    X, path = data
    kw = dict(n_components=K, covariance_type=cov, max_iter=12, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = estimator(**kw).fit(X)
        worst = 0.0
        for name, src in sources(X, path).items():
            est = estimator(**kw).fit(src)
            assert est.n_iter_ == ref.n_iter_ == 12 and est.n_features_in_ == D
            for attr, value in params(ref).items():
                err = rel(getattr(est, attr), value)
                worst = max(worst, err)
                assert err <= 1e-10, f"{name}: {attr} differs by {err:.3g}"
    print(f"\n{estimator.__name__} {cov}: largest relative difference {worst:.2e} over 5 sources")


def test_kmeans_chunked_equals_in_memory(data):
    X, path = data
    for init in ("k-means++", "random"):
        ref = KMeans(K, init=init, n_init=3, random_state=0).fit(X)
        for name, src in sources(X, path).items():
            est = KMeans(K, init=init, n_init=3, random_state=0).fit(src)
            assert rel(est.cluster_centers_, ref.cluster_centers_) <= 1e-10, name
            assert abs(est.inertia_ - ref.inertia_) <= 1e-10 * ref.inertia_
            assert est.n_iter_ == ref.n_iter_
            np.testing.assert_array_equal(est.labels_, ref.labels_)
            assert est.labels_.dtype == np.int32


def test_fit_predict_of_a_source_labels_every_row(data):
    X, path = data
    ref = GaussianMixture(K, random_state=0).fit(X)
    labels = GaussianMixture(K, random_state=0).fit_predict(path)
    np.testing.assert_array_equal(labels, ref.predict(X))
    est = GaussianMixture(K, random_state=0).fit(path)  # predict, score on arrays after a streamed fit
    np.testing.assert_allclose(est.score(X), ref.score(X), rtol=1e-10)


def test_float32_memmap_fits_in_float32(data, tmp_path):
    X, _ = data
    p = tmp_path / "x32.npy"
    np.save(p, X.astype(np.float32))
    ref = GaussianMixture(K, max_iter=10, tol=0, random_state=0).fit(X.astype(np.float32))
    est = GaussianMixture(K, max_iter=10, tol=0, random_state=0).fit(np.load(p, mmap_mode="r"))
    assert est.means_.dtype == np.float32
    assert rel(est.means_, ref.means_) <= 1e-5


def test_warm_start_continues_from_a_source(data):
    X, path = data
    kw = dict(n_components=K, max_iter=5, tol=0, random_state=0)
    ref = GaussianMixture(**kw, warm_start=True).fit(X).fit(X)
    est = GaussianMixture(**kw, warm_start=True).fit(path).fit(path)
    assert rel(est.means_, ref.means_) <= 1e-10


def test_initialisation_from_a_reservoir_sample_when_the_data_exceed_it(data, monkeypatch):
    """With more rows than the sample, the initialisation reads 500 of them; the fit still finds the same
    optimum as the in-memory fit (well-separated data, run to convergence)."""
    rng = np.random.default_rng(2)
    X = rng.normal(scale=12.0, size=(K, D))[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    monkeypatch.setattr(gm_module, "INIT_SAMPLE_ROWS", 500)
    for estimator in (GaussianMixture, BayesianGaussianMixture):
        ref = estimator(K, max_iter=200, tol=1e-10, random_state=0).fit(X)
        est = estimator(K, max_iter=200, tol=1e-10, random_state=0).fit(ArraySource(X, 256))
        assert ref.converged_ and est.converged_
        order = np.argsort(est.means_[:, 0])
        ref_order = np.argsort(ref.means_[:, 0])
        assert rel(est.means_[order], ref.means_[ref_order]) <= 1e-6, estimator.__name__
        assert abs(est.lower_bound_ - ref.lower_bound_) <= 1e-6 * abs(ref.lower_bound_)


def test_reservoir_sample_is_uniform():
    x = torch.arange(1000.0).reshape(-1, 1)
    chunks = [x[i:i + 64] for i in range(0, 1000, 64)]
    res = Reservoir(2000)
    for c in chunks:
        res.add(c)
    assert torch.equal(res.sample, x) and res.seen == 1000  # no more rows than the reservoir: all, in order
    counts = np.zeros(1000)
    for seed in range(1000):
        res = Reservoir(100, np.random.default_rng(seed))
        for c in chunks:
            res.add(c)
        rows = res.sample[:, 0].long().numpy()
        assert len(np.unique(rows)) == 100
        counts[rows] += 1
    # each row kept with probability 0.1: 100 of 1000 draws, binomial sd 9.5; every tenth of the rows alike
    deciles = counts.reshape(10, 100).mean(1)
    assert np.all(np.abs(deciles - 100) < 4), deciles


def test_a_pass_over_a_memmap_does_not_keep_its_pages(tmp_path):
    status = "/proc/self/status"
    if not os.path.exists(status):
        pytest.skip("resident memory is read from /proc/self/status (Linux)")

    def rss_mb():
        with open(status) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    a = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float64, shape=(1_000_000, 16))
    a[:] = 1.0
    a.flush()
    del a
    mm = np.load(tmp_path / "big.npy", mmap_mode="r")  # 128 MB
    before = rss_mb()
    total = sum(float(c.sum()) for c in as_source(mm))
    assert total == 16_000_000
    assert rss_mb() - before < 48, "the pages of the file stayed resident"


def test_what_counts_as_a_source(data):
    X, path = data
    assert is_source(path) and is_source(np.load(path, mmap_mode="r")) and is_source([X[:10], X[10:]])
    assert not is_source(X) and not is_source(torch.as_tensor(X)) and not is_source(X.tolist())


def test_bad_sources_are_refused_clearly(data, tmp_path):
    X, path = data
    with pytest.raises(TypeError, match="re-iterable"):
        GaussianMixture(2).fit(iter([X[:100], X[100:]]))
    with pytest.raises(ValueError, match="features"):
        GaussianMixture(2).fit([X[:100], X[100:, :2]])
    bad = X[:100].copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit([X[:100], bad])
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(5).fit([X[:2], X[2:4]])
    with pytest.raises(ValueError, match="no .npy file"):
        GaussianMixture(2).fit(str(tmp_path / "missing.npy"))
    (tmp_path / "not.npy").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npy"):
        GaussianMixture(2).fit(str(tmp_path / "not.npy"))
    class Reader:  # re-iterable, but its chunks are rows of one feature flattened
        def __iter__(self):
            return iter([X[:10, 0], X[10:20, 0]])

    with pytest.raises(ValueError, match="Expected 2D"):
        GaussianMixture(2).fit(Reader())
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(2).fit(path, sample_weight=np.ones(N))
    est = GaussianMixture(2, random_state=0).fit(path)
    with pytest.raises(ValueError, match="expecting 4 features"):
        est.set_params(warm_start=True).fit([X[:, :3]])


# --- through inference.fit and the command line ----------------------------------------------------------
def test_fit_cavi_of_a_source_equals_the_in_memory_fit(data):
    import inference
    import zoo

    X, path = data
    kw = dict(method="cavi", num_steps=20, tol=0, progress_bar=False, num_samples=20, seed=0)
    ref = inference.fit(zoo.create_model("bayesian_gmm", n_components=K, n_features=D), X, **kw)
    res = inference.fit(zoo.create_model("bayesian_gmm", n_components=K, n_features=D), path, **kw)
    assert np.allclose(res.losses, ref.losses, rtol=1e-10, atol=0)
    for name, value in ref.samples.items():
        assert torch.allclose(res.samples[name], value, rtol=1e-8, atol=1e-10), name


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_fit_em_of_a_source_is_the_closed_form_em_of_every_row(tmp_path, cov):
    import inference
    import zoo

    rng = np.random.default_rng(2)  # well separated: both paths find the one maximum
    X = rng.normal(scale=12.0, size=(K, D))[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    path = str(tmp_path / "x.npy")
    np.save(path, X)
    res = inference.fit(zoo.create_model("gmm", n_components=K, covariance_type=cov), np.load(path, mmap_mode="r"),
                        method="em", num_steps=200, progress_bar=False)
    est = GaussianMixture(K, covariance_type=cov, max_iter=200, tol=1e-8, random_state=0).fit(X)
    locs = res.samples["locs"][0, 0].numpy()
    assert rel(locs, est.means_) <= 1e-10 and rel(res.samples["weights"][0, 0].numpy(), est.weights_) <= 1e-10
    assert res.losses[-1] == pytest.approx(-est.lower_bound_, rel=1e-12) and res.converged


def test_fit_refuses_a_source_for_the_in_memory_methods(data):
    import inference
    import zoo

    _, path = data
    with pytest.raises(ValueError, match="'em' or 'cavi'"):
        inference.fit(zoo.create_model("gmm", n_components=K), path, method="svi", guide="delta")
    with pytest.raises(ValueError, match="tied_spherical"):
        inference.fit(zoo.create_model("gmm", n_components=K, covariance_type="tied_spherical"), path, method="em",
                      progress_bar=False)
    with pytest.raises(ValueError, match="em_objective"):
        inference.fit(zoo.create_model("gmm", n_components=K), path, method="em", em_objective="map",
                      progress_bar=False)


def test_cli_fit_em_writes_the_fit_of_a_npy_file(data, tmp_path, capsys):
    import json

    from apps.cli import main

    X, path = data
    out = tmp_path / "fit"
    assert main(["fit-em", "--data", path, "--K", "3", "--max-iter", "30", "--tol", "0", "--chunk-rows", "500",
                 "--out", str(out), "--no-progress"]) == 0
    est = GaussianMixture(K, max_iter=30, tol=0, random_state=0).fit(X)
    params = np.load(out / "params.npz")
    assert rel(params["means_"], est.means_) <= 1e-10 and rel(params["covariances_"], est.covariances_) <= 1e-10
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_rows"] == N and summary["n_iter"] == 30 and summary["processes"] == 1
    assert main(["fit-em", "--data", str(tmp_path / "missing.npy"), "--K", "3", "--out", str(tmp_path / "o")]) == 2
    assert "no .npy file" in capsys.readouterr().err and not (tmp_path / "o").exists()
