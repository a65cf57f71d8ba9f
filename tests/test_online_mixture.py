"""Streaming mixtures: online EM (``GaussianMixture.partial_fit``) and stochastic VI
(``BayesianGaussianMixture.partial_fit``), see :mod:`zoo.mixture.online`.

What they promise: one pass over a million rows lands within 1% (in held-out log-likelihood per
sample) of the batch fit of the same rows; how the pass is cut matters little; one update with
``rho = 1`` is exactly one batch EM step / CAVI update on its chunk, and with ``rho < 1`` it is the
convex combination of statistics / natural parameters (checked against NumPy from the public
attributes); the step sizes are the documented schedule. Run with ``-s`` for the figures.
"""
import copy
import pickle
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from zoo.mixture import BayesianGaussianMixture, GaussianMixture
from zoo.mixture.online import block_step_size, step_size

pytestmark = pytest.mark.usefixtures("one_thread")

K, D = 5, 6
COV_TYPES = ["full", "tied", "diag", "spherical"]


def _truth():
    """Five components in six dimensions, centres 5 apart along the axes (7 between any two),
    random covariances of scale about 1, unequal weights."""
    rng = np.random.default_rng(0)
    centres = 5.0 * np.eye(K, D)
    a = 0.3 * rng.normal(size=(K, D, D)) + np.eye(D)
    covariances = np.einsum("kij,klj->kil", a, a)
    weights = rng.dirichlet(np.full(K, 5.0))
    return weights, centres, covariances


WEIGHTS, CENTRES, COVARIANCES = _truth()


def draw(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(K, size=n, p=WEIGHTS)
    chol = np.linalg.cholesky(COVARIANCES)
    return CENTRES[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, D)))


def true_score(X):
    """Mean log-likelihood of ``X`` under the generating mixture."""
    chol = np.linalg.cholesky(COVARIANCES)
    out = []
    for w, mu, L in zip(WEIGHTS, CENTRES, chol):
        y = np.linalg.solve(L, (X - mu).T)
        out.append(np.log(w) - np.log(np.diag(L)).sum() - 0.5 * D * np.log(2 * np.pi) - 0.5 * (y * y).sum(0))
    return float(np.logaddexp.reduce(np.stack(out), axis=0).mean())


def stream(est, X, sizes):
    for chunk in np.split(X, np.cumsum(sizes)[:-1]):
        est.partial_fit(chunk)
    return est


def quiet_fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


# ------------------------------------------------------------------ one pass against batch
N_PASS, CHUNK = 10**6, 2000


@pytest.fixture(scope="module")
def million():
    return draw(N_PASS, 1), draw(200_000, 2)


@pytest.mark.parametrize("model", ["GaussianMixture", "BayesianGaussianMixture"])
def test_one_pass_over_a_million_rows_is_within_1pct_of_the_batch_fit(million, model):
    X, held_out = million
    if model == "GaussianMixture":
        make, algos = (lambda: GaussianMixture(K, random_state=0)), ("batch EM", "online EM")
    else:
        make, algos = (lambda: BayesianGaussianMixture(n_components=K, random_state=0, total_samples=N_PASS)), \
            ("batch CAVI", "SVI")
    t0 = time.perf_counter()
    batch = quiet_fit(make(), X)
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    online = stream(make(), X, [CHUNK] * (N_PASS // CHUNK))
    t_online = time.perf_counter() - t0
    s_batch, s_online, s_true = batch.score(held_out), online.score(held_out), true_score(held_out)
    gap = (s_batch - s_online) / abs(s_batch)
    print(f"\n{model}, {N_PASS} rows (D={D}, K={K}), held-out log-likelihood per sample: {algos[0]} {s_batch:.6f} "
          f"({batch.n_iter_} iterations, {t_batch:.1f}s), {algos[1]} {s_online:.6f} (one pass in chunks of {CHUNK}, "
          f"{t_online:.1f}s), truth {s_true:.6f}; relative gap {gap:.2e}")
    assert abs(gap) < 0.01
    assert online.n_iter_ == N_PASS // CHUNK and online.n_samples_seen_ == N_PASS


# ------------------------------------------------------------------ how a pass is cut
@pytest.mark.parametrize("model", ["GaussianMixture", "BayesianGaussianMixture"])
def test_chunks_of_random_sizes_give_what_equal_chunks_give(model):
    n = 200_000
    X, held_out = draw(n, 3), draw(100_000, 4)
    if model == "GaussianMixture":
        make = lambda: GaussianMixture(K, random_state=0)  # noqa: E731
    else:
        make = lambda: BayesianGaussianMixture(n_components=K, random_state=0, total_samples=n)  # noqa: E731
    equal = stream(make(), X, [2000] * (n // 2000))
    # the first chunk initialises (a fit on it): the same one, so that only the cutting differs
    sizes = [2000]
    rng = np.random.default_rng(5)
    while sum(sizes) < n:
        sizes.append(min(int(rng.integers(100, 5001)), n - sum(sizes)))
    random = stream(make(), X, sizes)
    assert random.n_samples_seen_ == n and random.n_iter_ == len(sizes)
    s_equal, s_random = equal.score(held_out), random.score(held_out)
    rel = abs(s_equal - s_random) / abs(s_equal)
    order_e, order_r = equal.means_.argmax(1), random.means_.argmax(1)
    assert sorted(order_e) == sorted(order_r) == list(range(K))  # every true component found
    shift = np.abs(equal.means_[np.argsort(order_e)] - random.means_[np.argsort(order_r)]).max()
    print(f"\n{model}: {n} rows in {len(sizes)} chunks of 100..5000 rows vs {n // 2000} of 2000: held-out "
          f"{s_random:.6f} vs {s_equal:.6f} (relative {rel:.1e}), means differ by at most {shift:.4f}")
    assert rel < 1e-3
    assert shift < 0.05


def test_a_chunk_of_three_reference_blocks_is_three_calls():
    X = draw(5000, 6)
    one = GaussianMixture(K, random_state=0).partial_fit(X[:1000])
    three = copy.deepcopy(one)
    one.partial_fit(X[1000:4000])
    for s in (1000, 2000, 3000):
        three.partial_fit(X[s:s + 1000])
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(one, name), getattr(three, name), rtol=1e-12, atol=1e-12)
    assert one.step_size_ == three.step_size_ == step_size(3, 10.0, 0.7)


# ------------------------------------------------------------------ the schedule
def test_the_step_sizes_are_the_documented_schedule():
    X = draw(12_000, 7)
    est = GaussianMixture(K, random_state=0, learning_decay=0.6, learning_offset=4.0)
    steps = []
    for c in range(12):
        est.partial_fit(X[1000 * c:1000 * (c + 1)])
        steps.append(est.step_size_)
    assert steps[0] == 1.0  # the starting chunk
    np.testing.assert_allclose(steps[1:], (np.arange(1, 12) + 4.0) ** -0.6, rtol=1e-14)
    # a half chunk counts half an update: two halves weigh what one whole chunk weighs
    est.partial_fit(X[:500])
    first = est.step_size_
    assert first == pytest.approx(1 - (1 - (12 + 4.0) ** -0.6) ** 0.5, rel=1e-12)
    est.partial_fit(X[500:1000])
    assert 1 - (1 - first) * (1 - est.step_size_) == pytest.approx((12 + 4.0) ** -0.6, rel=1e-12)


def test_block_steps_compose():
    rng = np.random.default_rng(8)
    for _ in range(200):
        t0, u1, u2 = rng.uniform(0, 30), rng.uniform(0.01, 3), rng.uniform(0.01, 3)
        decay, offset = rng.uniform(0.51, 1.0), rng.uniform(0, 20)
        a, b = block_step_size(t0, u1, offset, decay), block_step_size(t0 + u1, u2, offset, decay)
        assert 1 - (1 - a) * (1 - b) == pytest.approx(block_step_size(t0, u1 + u2, offset, decay), rel=1e-12)
    assert block_step_size(0.0, 1.0, 0.0, 0.7) == 1.0  # offset 0: the first update replaces the statistics
    assert block_step_size(5.0, 1.0, 10.0, 0.7) == pytest.approx(16.0 ** -0.7, rel=1e-14)


# ------------------------------------------------------------------ the first call
@pytest.mark.parametrize("cov", COV_TYPES)
def test_the_first_call_is_fit_on_its_chunk(cov):
    X = draw(1500, 9)
    est = GaussianMixture(K, covariance_type=cov, random_state=0).partial_fit(X)
    ref = GaussianMixture(K, covariance_type=cov, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(est, name), getattr(ref, name), rtol=1e-10, atol=1e-10, err_msg=name)
    assert est.n_iter_ == 1 and est.n_samples_seen_ == 1500 and est.step_size_ == 1.0 and not est.converged_
    assert est.lower_bound_ == pytest.approx(ref.score(X), rel=1e-10)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_the_first_call_takes_the_given_initial_parameters():
    X = draw(800, 10)
    rng = np.random.default_rng(11)
    inits = dict(weights_init=np.full(K, 1.0 / K), means_init=CENTRES + 0.1 * rng.normal(size=(K, D)),
                 precisions_init=np.linalg.inv(COVARIANCES))
    est = GaussianMixture(K, max_iter=0, **inits).partial_fit(X)
    np.testing.assert_allclose(est.weights_, inits["weights_init"], rtol=1e-10)
    np.testing.assert_allclose(est.means_, inits["means_init"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(est.precisions_, inits["precisions_init"], rtol=1e-8)


def test_svi_starts_from_cavi_on_the_first_chunk_scaled_to_total_samples():
    X = draw(1000, 12)
    kw = dict(n_components=K, random_state=0, tol=1e-8, max_iter=500)
    ref = BayesianGaussianMixture(**kw).fit(X)
    same = BayesianGaussianMixture(total_samples=1000, **kw).partial_fit(X)
    for name in ("means_", "covariances_", "mean_precision_", "degrees_of_freedom_", "weights_"):
        np.testing.assert_allclose(getattr(same, name), getattr(ref, name), rtol=1e-10, err_msg=name)
    # the ELBO estimate on the chunk itself is the full ELBO with the optimal q(z) (fit reports it
    # with the responsibilities of its last E-step, no larger)
    assert ref.elbo_ - 1e-9 <= same.elbo_ == pytest.approx(ref.elbo_, rel=1e-6)
    big = BayesianGaussianMixture(total_samples=10_000, **kw).partial_fit(X)
    beta0, nu0 = ref.mean_precision_prior_, ref.degrees_of_freedom_prior_
    np.testing.assert_allclose(big.mean_precision_ - beta0, 10 * (ref.mean_precision_ - beta0), rtol=1e-10)
    np.testing.assert_allclose(big.degrees_of_freedom_ - nu0, 10 * (ref.degrees_of_freedom_ - nu0), rtol=1e-10)


# ------------------------------------------------------------------ the updates themselves
@pytest.mark.parametrize("cov", COV_TYPES)
def test_online_em_with_rho_one_is_one_batch_em_step(cov):
    A, B = draw(1000, 13), draw(1000, 14)
    est = GaussianMixture(K, covariance_type=cov, random_state=0, learning_offset=0.0).partial_fit(A)
    ref = copy.deepcopy(est).set_params(warm_start=True, max_iter=1)
    quiet_fit(ref, B)  # one EM iteration on B from the same parameters (and shift)
    est.partial_fit(B)
    assert est.step_size_ == 1.0
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(est, name), getattr(ref, name), rtol=1e-11, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_svi_with_rho_one_and_total_samples_the_chunk_is_one_cavi_update(cov):
    A, B = draw(1000, 15), draw(1000, 16)
    est = BayesianGaussianMixture(n_components=K, covariance_type=cov, random_state=0, learning_offset=0.0,
                                  total_samples=1000).partial_fit(A)
    ref = copy.deepcopy(est)
    # the driver's own CAVI iteration on B from the same q (a warm-started fit would rebuild the
    # prior's data-dependent defaults from B)
    Z = ref._prepare_data(ref._validate_data(B, reset=False), fitting=False)
    if cov == "tied":
        ref._scatter = ref._gram(Z)
    ref._em_iteration(Z, 1.0)
    ref._publish()
    est.partial_fit(B)
    assert est.step_size_ == 1.0
    for name in ("weights_", "means_", "covariances_", "mean_precision_", "degrees_of_freedom_",
                 "weight_concentration_"):
        np.testing.assert_allclose(np.asarray(getattr(est, name)), np.asarray(getattr(ref, name)), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_online_em_moves_the_statistics_by_rho():
    """``s <- (1 - rho) s + rho s_hat`` recomputed in NumPy from the public attributes."""
    A, B = draw(1000, 17), draw(700, 18)
    reg = 1e-6
    est = GaussianMixture(K, random_state=0, learning_decay=1.0, learning_offset=1.0, reg_covar=reg).partial_fit(A)
    w, mu, cov = est.weights_, est.means_, est.covariances_
    r = est.predict_proba(B)  # the responsibilities of the E-step at these parameters
    rho = 1 - (1 - 0.5) ** 0.7
    n = (1 - rho) * w + rho * r.mean(0)
    s1 = (1 - rho) * w[:, None] * mu + rho * r.T @ B / len(B)
    s2 = (1 - rho) * w[:, None, None] * (cov - reg * np.eye(D) + mu[:, :, None] * mu[:, None, :]) \
        + rho * np.einsum("nk,ni,nj->kij", r, B, B) / len(B)
    means = s1 / n[:, None]
    covs = s2 / n[:, None, None] - means[:, :, None] * means[:, None, :] + reg * np.eye(D)
    est.partial_fit(B)
    assert est.step_size_ == pytest.approx(rho, rel=1e-14)
    np.testing.assert_allclose(est.weights_, n / n.sum(), rtol=1e-9)
    np.testing.assert_allclose(est.means_, means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(est.covariances_, covs, rtol=1e-8, atol=1e-9)


def test_svi_moves_the_natural_parameters_by_rho():
    """``lambda <- (1 - rho) lambda + rho lambda_hat`` in NumPy from the public attributes, with
    ``lambda_hat`` the CAVI update if all ``total_samples`` rows looked like the chunk."""
    A, B = draw(1000, 19), draw(1000, 20)
    reg, n_total = 1e-6, 4000
    est = BayesianGaussianMixture(n_components=K, random_state=0, learning_decay=1.0, learning_offset=1.0,
                                  reg_covar=reg, total_samples=n_total).partial_fit(A)

    def natural(beta, m, nu, psi):
        return beta, beta[:, None] * m, nu, psi + beta[:, None, None] * m[:, :, None] * m[:, None, :]

    before = natural(est.mean_precision_, est.means_, est.degrees_of_freedom_,
                     est.covariances_ * est.degrees_of_freedom_[:, None, None])
    sticks = np.stack(est.weight_concentration_)
    r = est.predict_proba(B)  # the local step under the current q
    scale = n_total / len(B)
    nk, s1, s2 = scale * r.sum(0), scale * r.T @ B, scale * np.einsum("nk,ni,nj->kij", r, B, B)
    beta0, m0, nu0, psi0 = (est.mean_precision_prior_, est.mean_prior_, est.degrees_of_freedom_prior_,
                            est.covariance_prior_)
    hat = (beta0 + nk, beta0 * m0 + s1, nu0 + nk,
           psi0 + beta0 * np.outer(m0, m0) + s2 + reg * nk[:, None, None] * np.eye(D))
    tail = np.cumsum(nk[::-1])[::-1] - nk
    sticks_hat = np.stack([1 + nk, est.weight_concentration_prior_ + tail])
    rho = 0.5
    beta, bm, nu, second = ((1 - rho) * a + rho * b for a, b in zip(before, hat))
    est.partial_fit(B)
    assert est.step_size_ == rho
    means = bm / beta[:, None]
    np.testing.assert_allclose(est.mean_precision_, beta, rtol=1e-10)
    np.testing.assert_allclose(est.degrees_of_freedom_, nu, rtol=1e-10)
    np.testing.assert_allclose(est.means_, means, rtol=1e-9, atol=1e-9)
    psi = second - beta[:, None, None] * means[:, :, None] * means[:, None, :]
    np.testing.assert_allclose(est.covariances_ * nu[:, None, None], psi, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.stack(est.weight_concentration_), (1 - rho) * sticks + rho * sticks_hat,
                               rtol=1e-10)


# ------------------------------------------------------------------ the stream's life
@pytest.mark.parametrize("make", [lambda: GaussianMixture(K, random_state=0),
                                  lambda: BayesianGaussianMixture(n_components=K, random_state=0)],
                         ids=["GaussianMixture", "BayesianGaussianMixture"])
def test_a_stream_pickles_mid_way_and_fit_ends_it(make):
    X = draw(4000, 21)
    est = make().partial_fit(X[:1000]).partial_fit(X[1000:2000])
    back = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[2000:3000])
    back.partial_fit(X[2000:3000])
    np.testing.assert_array_equal(back.means_, est.means_)
    np.testing.assert_array_equal(back.covariances_, est.covariances_)
    assert back.n_iter_ == est.n_iter_ == 3 and back.step_size_ == est.step_size_
    quiet_fit(est, X)  # a fit starts afresh; partial_fit then continues from it
    est.partial_fit(X[3000:])
    assert est.n_iter_ == 1 and est.n_samples_seen_ == 1000 and est.step_size_ == step_size(1, 10.0, 0.7)
    score = est.score(X)
    assert np.isfinite(score) and score > true_score(X) - 0.1


def test_float32_and_tensor_chunks():
    X = draw(3000, 22).astype(np.float32)
    est = GaussianMixture(K, random_state=0).partial_fit(X[:1000]).partial_fit(torch.as_tensor(X[1000:]))
    assert est.means_.dtype == np.float32 and est._fit_dtype == torch.float32
    assert est.score(X) == pytest.approx(GaussianMixture(K, random_state=0).fit(X).score(X), abs=0.05)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_a_stream_on_cuda_matches_the_cpu(cls):
    X = draw(6000, 25)
    kw = dict(random_state=0, init_params="random_from_data", tol=0, max_iter=30)  # the same start on both
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpu = stream(cls(K, **kw), X, [2000, 1500, 2500])
        gpu = stream(cls(K, device="cuda", **kw), X, [2000, 1500, 2500])
    assert gpu._fit_device.type == "cuda"
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-8, atol=1e-8, err_msg=name)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("make", [lambda: GaussianMixture(K, random_state=0),
                                  lambda: BayesianGaussianMixture(n_components=K, random_state=0)],
                         ids=["GaussianMixture", "BayesianGaussianMixture"])
def test_bad_chunks_are_refused(make):
    X = draw(2000, 23)
    name = type(make()).__name__
    with pytest.raises(ValueError, match="Input X contains NaN"):
        make().partial_fit(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X))
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        make().partial_fit(X[:3])
    est = make().partial_fit(X[:1000])
    before = est.means_.copy()
    with pytest.raises(ValueError, match=f"X has {D - 1} features, but {name} is expecting {D} features as input"):
        est.partial_fit(X[1000:, :-1])
    bad = X[1000:].copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.partial_fit(bad)
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        est.partial_fit(X[:0])
    np.testing.assert_array_equal(est.means_, before)  # refused chunks change nothing
    est.partial_fit(X[1000:1001])  # one row is a chunk


@pytest.mark.parametrize("params", [dict(learning_decay=0.5), dict(learning_decay=1.2), dict(learning_decay="0.7"),
                                    dict(learning_offset=-1.0), dict(total_samples=0)])
def test_bad_schedules_are_refused(params):
    X = draw(500, 24)
    name = next(iter(params))
    makers = [BayesianGaussianMixture] if name == "total_samples" else [GaussianMixture, BayesianGaussianMixture]
    for cls in makers:
        with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of {cls.__name__} must be"):
            cls(n_components=2, **params).partial_fit(X)
