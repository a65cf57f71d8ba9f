"""EM, CAVI and k-means data parallel on torch.distributed: two gloo processes on the loopback address,
each passing its own shard (uneven: 1001 and 999 rows) to the same fit.

Must hold: the fitted parameters are bitwise identical on both ranks, and equal to one process fitting
all 2000 rows in memory to 1e-10 relative (float64, fixed iterations, well-separated data), for
GaussianMixture and BayesianGaussianMixture with every covariance type and for KMeans; the labels of the
shards are the single process's labels. The shards come as in-memory arrays, as lists of chunks and as
each rank's own .npy file.
"""
import numpy as np
import pytest

from dist_em_jobs import COV_TYPES, fit_all
from distributed_harness import run_ranks

K, D, N, SHARDS, ITERS = 3, 4, 2000, [1001, 999], 15


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(K, D))
    X = centres[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    tmp = tmp_path_factory.mktemp("dist-em")
    paths = []
    for r, start in enumerate(np.cumsum([0] + SHARDS[:-1])):
        paths.append(str(tmp / f"shard{r}.npy"))
        np.save(paths[-1], X[start:start + SHARDS[r]])
    ranks = run_ranks("dist_em_jobs:fit_variants", 2, tmp, timeout=500, X=X, K=K, max_iter=ITERS,
                      shard_rows=SHARDS, paths=paths)
    single = fit_all(X, K, ITERS, shard_rows=[N])
    return ranks, single


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``zoo fit-em`` on one .npy file on two ranks: each reads its contiguous share of the rows."""
    rng = np.random.default_rng(3)
    X = rng.normal(scale=6.0, size=(K, D))[rng.integers(K, size=N + 1)] + rng.normal(size=(N + 1, D))
    tmp = tmp_path_factory.mktemp("dist-cli")
    np.save(tmp / "x.npy", X)
    argv = ["fit-em", "--data", str(tmp / "x.npy"), "--K", str(K), "--max-iter", "20", "--tol", "0",
            "--chunk-rows", "300", "--out", str(tmp / "fit"), "--no-progress"]
    ranks = run_ranks("dist_em_jobs:cli_and_refusals", 2, tmp, timeout=300, argv=argv, X=X)
    return X, tmp, ranks


NAMES = [f"gmm-{c}" for c in COV_TYPES] + [f"bgmm-{c}" for c in COV_TYPES] + ["kmeans"]


@pytest.mark.parametrize("variant", ["arrays", "chunks", "files"])
def test_ranks_agree_bitwise_and_with_one_process(runs, variant):
    ranks, single = runs
    r0, r1 = ranks[0][variant], ranks[1][variant]
    assert (r0["rank"], r1["rank"], r0["world_size"]) == (0, 1, 2)
    worst = 0.0
    for name in NAMES:
        assert r0[name].keys() == single[name].keys()
        for attr, ref in single[name].items():
            assert np.array_equal(r0[name][attr], r1[name][attr]), f"{name}.{attr} differs between the ranks"
            err = np.max(np.abs(r0[name][attr] - ref)) / max(np.max(np.abs(ref)), 1e-300)
            worst = max(worst, err)
            assert err <= 1e-10, f"{variant} {name}.{attr}: relative difference {err:.3g} from one process"
    print(f"\n{variant}: bitwise equal ranks; largest relative difference from one process {worst:.2e}")


@pytest.mark.parametrize("variant", ["arrays", "chunks", "files"])
def test_shard_labels_are_the_single_process_labels(runs, variant):
    ranks, single = runs
    for key in ("kmeans-labels", "gmm-labels"):
        assert len(ranks[0][variant][key]) == SHARDS[0] and len(ranks[1][variant][key]) == SHARDS[1]
        both = np.concatenate([ranks[0][variant][key], ranks[1][variant][key]])
        np.testing.assert_array_equal(both, single[key])


def test_cli_fit_em_under_two_ranks_writes_once_the_fit_of_all_rows(cli_run):
    import json

    from zoo.mixture import GaussianMixture

    X, tmp, ranks = cli_run
    assert [r["code"] for r in ranks] == [0, 0]
    summary = json.loads((tmp / "fit" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["n_rows"] == N + 1
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("fit")) == ["fit"]  # one output, rank 0's
    est = GaussianMixture(K, max_iter=20, tol=0, random_state=0).fit(X)
    params = np.load(tmp / "fit" / "params.npz")
    for name in ("weights_", "means_", "covariances_"):
        ref = getattr(est, name)
        assert np.max(np.abs(params[name] - ref)) / np.max(np.abs(ref)) <= 1e-10, name


def test_single_process_methods_are_refused_in_a_group(cli_run):
    _, _, ranks = cli_run
    for r in ranks:
        assert r["refusal"] is not None and "'nuts' runs in one process" in r["refusal"]
