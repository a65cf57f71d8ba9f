"""BayesianGaussianMixture (CAVI): per-iteration parity with scikit-learn, the full ELBO
against the dropped constants and a Monte Carlo estimate, monotone ELBO, the Dirichlet
process switching components off, and bad input / invalid priors."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import gammaln
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGM
from torch.distributions import Beta, Categorical, Dirichlet, Gamma, MultivariateNormal, Normal, Wishart

import zoo
from zoo.mixture import BayesianGaussianMixture

PRIORS = ["dirichlet_process", "dirichlet_distribution"]
COVS = ["full", "tied", "diag", "spherical"]
# scikit-learn's attribute shapes per covariance type (D features, K components)
SHAPES = {"full": lambda k, d: (k, d, d), "tied": lambda k, d: (d, d), "diag": lambda k, d: (k, d),
          "spherical": lambda k, d: (k,)}


def _blobs(n=200, seed=0, sep=6.0, d=2):
    rng = np.random.default_rng(seed)
    centres = np.eye(3, d) * sep
    return np.concatenate([rng.normal(size=(n // 3, d)) + c for c in centres])


def _dataset(name):
    if name == "iris":
        return load_iris().data, 4
    if name == "faithful":
        return zoo.load_dataset("faithful").data, 3
    return _blobs(), 4


def _fit(cls, X, k, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kw = {"init_params": "random_from_data", "random_state": 0, **kw}
        return cls(n_components=k, **kw).fit(X)


# ------------------------------------------------------------------ parity
def _parity_init(cov):
    """Initial responsibilities both libraries draw alike. Tied starts from rows that sum to 1:
    from the one-hot rows of 'random_from_data' scikit-learn's tied covariance counts the
    samples with no responsibility about the origin (its ``X.T @ X``), which depends on where
    the data lie; ours counts them about the data mean, as :class:`zoo.GaussianMixture`."""
    return "random" if cov == "tied" else "random_from_data"


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("name", ["iris", "faithful", "blobs"])
def test_lower_bound_every_iteration_matches_sklearn(name, prior, cov):
    X, k = _dataset(name)
    d = X.shape[1]
    kw = dict(covariance_type=cov, weight_concentration_prior_type=prior, max_iter=40, tol=1e-4,
              init_params=_parity_init(cov))
    ref, ours = _fit(SkBGM, X, k, **kw), _fit(BayesianGaussianMixture, X, k, **kw)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    # scikit-learn's tied bound is a (1,) array per iteration
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=1e-6, atol=0)
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(ref.lower_bound_)[0]), rel=1e-6)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-8)
    shape = SHAPES[cov](k, d)
    for name_ in ("covariances_", "precisions_", "precisions_cholesky_"):
        got, want = getattr(ours, name_), getattr(ref, name_)
        assert got.shape == want.shape == shape, name_
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9, err_msg=name_)
    np.testing.assert_allclose(ours.mean_precision_, ref.mean_precision_, rtol=1e-8)
    assert np.shape(ours.degrees_of_freedom_) == np.shape(ref.degrees_of_freedom_) == (() if cov == "tied" else (k,))
    np.testing.assert_allclose(ours.degrees_of_freedom_, ref.degrees_of_freedom_, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(ours.weight_concentration_), np.asarray(ref.weight_concentration_),
                               rtol=1e-8)
    for name_ in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_", "degrees_of_freedom_prior_",
                  "covariance_prior_"):
        got, want = getattr(ours, name_), getattr(ref, name_)
        assert np.shape(got) == np.shape(want), name_
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-7)
    Xs, ys = ours.sample(50)
    assert Xs.shape == (50, d) and ys.shape == (50,) and np.all(np.isfinite(Xs))


def test_tied_does_not_depend_on_where_the_data_lie():
    """From one-hot initial rows (random_from_data) the tied fit is translation-equivariant
    (scikit-learn's is not: see _parity_init)."""
    X, k = load_iris().data, 4
    kw = dict(covariance_type="tied", max_iter=10, tol=0)
    a = _fit(BayesianGaussianMixture, X, k, **kw)
    b = _fit(BayesianGaussianMixture, X + 50.0, k, **kw)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(b.means_ - 50.0, a.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-8)


# ------------------------------------------------- full ELBO vs sklearn's bound
def _dropped_constants(model, n, d, k, cov, prior):
    """ELBO minus scikit-learn's bound at the exact q(theta) update, from the priors alone:
    the likelihood's -ND/2 log 2pi, the Gauss prior's (D/2) log beta0 per component, the
    Wishart prior normaliser per component (tied too: its model keeps K prior Wisharts), and
    the weight prior's normaliser."""
    a0, b0 = model.weight_concentration_prior_, model.mean_precision_prior_
    nu0, psi0 = model.degrees_of_freedom_prior_, np.asarray(model.covariance_prior_)
    logdet = {"full": lambda: np.linalg.slogdet(psi0)[1], "tied": lambda: np.linalg.slogdet(psi0)[1],
              "diag": lambda: np.log(psi0).sum(), "spherical": lambda: d * np.log(psi0)}[cov]()
    # log B(W0, nu0) + D(D-1)/4 log pi with W0 = Psi0^-1
    wishart = 0.5 * nu0 * logdet - 0.5 * nu0 * d * math.log(2) - gammaln(0.5 * (nu0 - np.arange(d))).sum()
    # Beta(1, gamma0) has log normaliser log(gamma0); Dirichlet(alpha0 1_K) lgamma(K a0) - K lgamma(a0)
    weights = k * math.log(a0) if prior == "dirichlet_process" else gammaln(k * a0) - k * gammaln(a0)
    return -0.5 * n * d * math.log(2 * math.pi) + 0.5 * k * d * math.log(b0) + k * wishart + weights


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("prior", PRIORS)
def test_elbo_minus_lower_bound_is_the_dropped_constants(prior, cov):
    X, k = load_iris().data, 4
    m = _fit(BayesianGaussianMixture, X, k, covariance_type=cov, weight_concentration_prior_type=prior,
             max_iter=15, tol=0, reg_covar=0.0, weight_concentration_prior=0.7, mean_precision_prior=2.5,
             degrees_of_freedom_prior=6.5)
    const = _dropped_constants(m, *X.shape, k, cov, prior)
    diff = np.asarray(m.elbos_) - np.asarray(m.lower_bounds_)
    np.testing.assert_allclose(diff, const, rtol=1e-10)
    assert len(m.elbos_) == 15 and m.elbo_ == m.elbos_[-1]


def _mc_elbo(m, X, resp, family, cov, draws=4000, seed=0):
    """E_q[log p(x, z, theta) - log q(z, theta)] from draws of torch.distributions (tied: K
    independent draws of the one shared q(Lambda); spherical: Wisharts with scale I/psi)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X = torch.as_tensor(X)
    R = torch.as_tensor(resp)
    q = m.variational_parameters()
    S, (n, d), k = draws, X.shape, R.shape[1]
    a0, b0 = m.weight_concentration_prior_, m.mean_precision_prior_
    nu0, psi0, m0 = m.degrees_of_freedom_prior_, torch.as_tensor(m.covariance_prior_), torch.as_tensor(m.mean_prior_)
    conc = q["conc"]
    if conc.dim() == 2:
        qv, pv = Beta(conc[0], conc[1]), Beta(torch.ones(k, dtype=torch.float64), torch.full((k,), a0, dtype=torch.float64))
        v = qv.sample((S,))
        logw = torch.log(v) + torch.cat([torch.zeros(S, 1, dtype=v.dtype), torch.cumsum(torch.log1p(-v), 1)[:, :-1]], 1)
        lp, lq = pv.log_prob(v).sum(1), qv.log_prob(v).sum(1)
    else:
        qw, pw = Dirichlet(conc), Dirichlet(torch.full((k,), a0, dtype=torch.float64))
        w = qw.sample((S,))
        logw, lp, lq = w.log(), pw.log_prob(w), qw.log_prob(w)
    if family == "gamma":
        ql, pl = Gamma(0.5 * q["nu"][:, None].expand(k, d), 0.5 * q["psi"]), Gamma(0.5 * nu0, 0.5 * psi0)
        lam = ql.sample((S,))  # (S, K, D)
        lp, lq = lp + pl.log_prob(lam).sum((1, 2)), lq + ql.log_prob(lam).sum((1, 2))
        qm = Normal(q["means"], (q["beta"][:, None] * lam).rsqrt())
        mu = qm.sample()
        lp = lp + Normal(m0, (b0 * lam).rsqrt()).log_prob(mu).sum((1, 2))
        lq = lq + qm.log_prob(mu).sum((1, 2))
        comp = Normal(mu[:, None], lam[:, None].rsqrt()).log_prob(X[None, :, None]).sum(-1)  # (S, N, K)
    else:
        eye = torch.eye(d, dtype=torch.float64)
        scale = {"full": lambda p: torch.linalg.inv(p), "tied": lambda p: torch.linalg.inv(p),
                 "diag": lambda p: torch.diag_embed(1.0 / p), "spherical": lambda p: (1.0 / p)[..., None, None] * eye}
        W, W0 = scale[cov](q["psi"]).expand(k, d, d), scale[cov](psi0)
        nu = q["nu"].expand(k)
        ql, pl = Wishart(nu, covariance_matrix=W), Wishart(torch.tensor(nu0, dtype=torch.float64), covariance_matrix=W0)
        lam = ql.sample((S,))  # (S, K, D, D)
        lp, lq = lp + pl.log_prob(lam).sum(1), lq + ql.log_prob(lam).sum(1)
        qm = MultivariateNormal(q["means"], precision_matrix=q["beta"][:, None, None] * lam)
        mu = qm.sample()
        lp = lp + MultivariateNormal(m0, precision_matrix=b0 * lam).log_prob(mu).sum(1)
        lq = lq + qm.log_prob(mu).sum(1)
        comp = MultivariateNormal(mu[:, None], precision_matrix=lam[:, None]).log_prob(X[None, :, None])
    z = Categorical(probs=R).sample((S,))  # (S, N)
    picked = torch.gather(comp + logw[:, None, :], 2, z[..., None]).squeeze(-1).sum(1)
    log_qz = torch.log(torch.gather(R.expand(S, n, k), 2, z[..., None]).squeeze(-1)).sum(1)
    vals = picked + lp - lq - log_qz
    return float(vals.mean()), float(vals.std() / math.sqrt(S))


@pytest.mark.parametrize("cov,family,prior", [("full", "wishart", "dirichlet_process"),
                                              ("tied", "wishart", "dirichlet_distribution"),
                                              ("diag", "wishart", "dirichlet_distribution"),
                                              ("spherical", "wishart", "dirichlet_process"),
                                              ("diag", "gamma", "dirichlet_process")])
def test_full_elbo_matches_monte_carlo(cov, family, prior):
    X = _blobs(n=30, seed=1, sep=4.0)
    m = _fit(BayesianGaussianMixture, X, 2, covariance_type=cov, diag_family=family,
             weight_concentration_prior_type=prior, max_iter=5, tol=0, reg_covar=0.0)
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(2), size=X.shape[0])  # any q(z), not only the optimal one
    closed = m.compute_elbo(X, resp)
    est, se = _mc_elbo(m, X, resp, family, cov)
    assert abs(est - closed) < 4 * se + 1e-6 * abs(closed), (est, se, closed)
    # the optimal q(z) given q(theta) is at least as good as a random one
    assert m.compute_elbo(X) > closed


def test_full_elbo_agrees_across_types_where_the_models_coincide():
    """In D = 1 full, diag and spherical are one model; with K = 1 tied is full."""
    kw = dict(max_iter=12, tol=0, reg_covar=0.0, init_params="random", degrees_of_freedom_prior=2.5)
    X1 = _blobs(n=60, seed=6, d=1)
    fits = [_fit(BayesianGaussianMixture, X1, 3, covariance_type=c, **kw) for c in ("full", "diag", "spherical")]
    for m in fits[1:]:
        np.testing.assert_allclose(m.elbos_, fits[0].elbos_, rtol=1e-11)
        np.testing.assert_allclose(m.lower_bounds_, fits[0].lower_bounds_, rtol=1e-11)
        np.testing.assert_allclose(m.predict_proba(X1), fits[0].predict_proba(X1), atol=1e-11)
        assert m.compute_elbo(X1) == pytest.approx(fits[0].compute_elbo(X1), rel=1e-11)
    X2 = _blobs(n=60, seed=7, d=3)
    full, tied = (_fit(BayesianGaussianMixture, X2, 1, covariance_type=c, **kw) for c in ("full", "tied"))
    np.testing.assert_allclose(tied.elbos_, full.elbos_, rtol=1e-11)
    np.testing.assert_allclose(tied.lower_bounds_, full.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(tied.covariances_, full.covariances_[0], rtol=1e-11)
    resp = np.ones((X2.shape[0], 1))
    assert tied.compute_elbo(X2[:20], resp[:20]) == pytest.approx(full.compute_elbo(X2[:20], resp[:20]), rel=1e-11)


# ------------------------------------------------------------- monotone ELBO
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(15, 80), d=st.integers(1, 3), k=st.integers(1, 5),
       cov=st.sampled_from(["full", "tied", "diag", "spherical", "diag-gamma"]), prior=st.sampled_from(PRIORS))
def test_elbo_never_decreases(seed, n, d, k, cov, prior):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, size=d) + 3 * rng.integers(0, 3, size=(n, 1))
    family = "gamma" if cov == "diag-gamma" else "wishart"
    m = _fit(BayesianGaussianMixture, X, k, covariance_type=cov.split("-")[0], diag_family=family,
             weight_concentration_prior_type=prior, max_iter=20, tol=0, reg_covar=0.0)
    elbos = np.asarray(m.elbos_)
    assert np.all(np.isfinite(elbos)) and len(elbos) == 20
    # each coordinate update is an exact maximum; what is left is float64 rounding of sums of
    # O(N K) terms of size O(|ELBO|), far below 1e-9 relative
    assert np.all(np.diff(elbos) >= -1e-9 * np.maximum(1.0, np.abs(elbos[1:])))
    if family == "wishart":  # scikit-learn's bound is the ELBO minus constants: monotone too
        lbs = np.asarray(m.lower_bounds_)
        assert np.all(np.diff(lbs) >= -1e-9 * np.maximum(1.0, np.abs(elbos[1:])))


# ------------------------------------------------------------ concentration
def test_dirichlet_process_switches_off_unused_components():
    X = _blobs(n=300, seed=2, sep=10.0)
    m = _fit(BayesianGaussianMixture, X, 6, weight_concentration_prior_type="dirichlet_process",
             weight_concentration_prior=0.01, max_iter=500, tol=1e-6, init_params="kmeans")
    w = np.sort(m.weights_)
    assert np.all(w[:3] < 0.01), w
    assert np.all(w[3:] > 0.25), w
    assert len(np.unique(m.predict(X))) == 3


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,match", [
    (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
    (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
    (dict(mean_precision_prior=0.0), "mean_precision_prior"),
    (dict(mean_precision_prior=float("nan")), "mean_precision_prior"),
    (dict(degrees_of_freedom_prior=1.0), "degrees_of_freedom_prior"),  # D = 3: needs > 2
    (dict(degrees_of_freedom_prior=2.0), "'degrees_of_freedom_prior' should be greater than 2, but got 2.000"),
    (dict(covariance_prior=np.eye(2)), "The parameter 'full covariance_prior' should have the shape of"),
    (dict(covariance_prior=-np.eye(3)), "'full precision' should be symmetric, positive-definite"),
    (dict(covariance_prior=np.array([[1.0, 2.0, 0], [0, 1.0, 0], [0, 0, 1.0]])), "'full precision' should be symmetric"),
    (dict(covariance_type="diag", covariance_prior=np.array([1.0, -1.0, 1.0])), "'diag precision' should be positive"),
    (dict(covariance_type="diag", covariance_prior=np.ones(4)), "covariance_prior"),
    (dict(mean_prior=np.zeros(2)), "The parameter 'means' should have the shape of"),
    (dict(mean_prior=[0.0, np.inf, 0.0]), "mean_prior"),
    (dict(weight_concentration_prior_type="pitman_yor"), "weight_concentration_prior_type"),
    (dict(covariance_type="tied", covariance_prior=np.ones(3)), "covariance_prior"),
    (dict(covariance_type="spherical", covariance_prior=-1.0), "covariance_prior"),
    (dict(covariance_type="spherical", covariance_prior=np.ones(3)), "covariance_prior"),
    (dict(covariance_type="banana"), "covariance_type"),
    (dict(init_params="best"), "init_params"),
    (dict(diag_family="beta"), "diag_family"),
    (dict(n_components=0), "n_components"),
    (dict(n_components=50), "n_components"),
    (dict(max_iter=-1), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(reg_covar=-1.0), "reg_covar"),
])
def test_invalid_parameters_are_rejected(kw, match):
    X = _blobs(n=30, d=3)
    kw = {"n_components": 2, **kw}
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**kw).fit(X)


@pytest.mark.parametrize("X,match", [
    (np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 2.0]]), "infinity"),
    (np.zeros((0, 2)), r"0 sample\(s\)"),
    (np.zeros((2, 2, 2)), "Found array with dim 3"),
    (np.zeros((1, 2)), r"1 sample\(s\) \(shape=\(1, 2\)\) while a minimum of 2"),
])
def test_bad_data_is_rejected(X, match):
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(n_components=1).fit(X)


def test_predict_checks_features_and_fit_state():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BayesianGaussianMixture(n_components=2).predict(np.zeros((3, 2)))
    m = _fit(BayesianGaussianMixture, _blobs(n=30), 2, max_iter=5)
    with pytest.raises(ValueError, match="features"):
        m.predict(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="resp"):
        m.compute_elbo(_blobs(n=30), np.ones((30, 2)))


def test_no_information_criteria_for_the_variational_mixture():
    """BIC/AIC are maximum-likelihood criteria: the variational mixture compares elbo_ instead."""
    m = _fit(BayesianGaussianMixture, _blobs(n=30), 2, max_iter=5)
    assert np.isfinite(m.elbo_)
    for name in ("bic", "aic"):
        with pytest.raises(AttributeError):
            getattr(m, name)(_blobs(n=30))


def test_float32_and_tensor_input_agree_with_float64():
    X = _blobs(n=120, seed=3)
    a = _fit(BayesianGaussianMixture, X, 3, max_iter=20, tol=0)
    b = _fit(BayesianGaussianMixture, torch.as_tensor(X, dtype=torch.float32), 3, max_iter=20, tol=0, dtype=None)
    assert b.means_.dtype == np.float32
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cov", COVS)
def test_cuda_matches_cpu(cov):
    X = _blobs(n=300, seed=4)
    a = _fit(BayesianGaussianMixture, X, 4, covariance_type=cov, max_iter=30, tol=0)
    b = _fit(BayesianGaussianMixture, torch.as_tensor(X, device="cuda"), 4, covariance_type=cov, max_iter=30, tol=0)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(b.elbos_, a.elbos_, rtol=1e-9)


# --- seed 002's full-Bayes step: the weight concentration chosen by the evidence ----------------------------
@pytest.mark.usefixtures("one_thread")  # some forty small fits: threads cost more than they save (last in the module)
@pytest.mark.parametrize("prior", PRIORS)
def test_concentration_maximises_the_full_elbo(prior):
    """ELBO*(alpha0) = max_q ELBO(q; alpha0), CAVI to tol 1e-10 with reg_covar = 0, on 120 points from
    three blobs (separation 6), K = 8, maximised over log alpha0 by a bounded Brent search.

    * lower_bound_ leaves the weight prior's log normaliser out: elbo_ - lower_bound_ - [log Gamma(K a)
      - K log Gamma(a)] (sticks: - K log g) is the same number at every alpha0 on the grid (-186.576144),
      so only elbo_ can choose alpha0 (lower_bound_ would push it to 0: it falls monotonically here);
    * the envelope derivative alpha0 dELBO/dalpha0 at fixed q (elbo_concentration_gradient, computed
      from digammas) matches a central finite difference of ELBO* to 1e-6 relative;
    * Dirichlet: alpha0* = 0.0813, ELBO* = -599.711, three components above weight 0.01; sticks:
      gamma0* = 0.886, ELBO* = -604.851. ELBO* at the maximiser is at least its value at every grid point.
    """
    from zoo.mixture.concentration import (elbo_at_concentration, elbo_concentration_gradient,
                                           maximise_concentration, weight_prior_log_normaliser)

    X, K = zoo.load_dataset("blobs", n_samples=120, n_components=3, separation=6.0, random_state=0).data, 8
    best = maximise_concentration(X, K, weight_concentration_prior_type=prior)
    grid = np.linspace(math.log(1e-4), math.log(1e2), 9)
    elbos, offsets, lower = [], [], []
    for la in grid:
        m = elbo_at_concentration(X, math.exp(la), K, weight_concentration_prior_type=prior)
        elbos.append(m.elbo_)
        lower.append(m.lower_bound_)
        offsets.append(m.elbo_ - m.lower_bound_ - weight_prior_log_normaliser(math.exp(la), K, prior))
    print(f"\n{prior}: alpha0* {best.alpha:.4f}, ELBO* {best.elbo:.3f} ({len(best.elbos)} fits), weights "
          f"{np.round(np.sort(best.model.weights_)[::-1], 3)}; grid ELBO* {np.round(elbos, 2)}; "
          f"elbo_ - lower_bound_ - log normaliser spread {np.ptp(offsets):.1e}")
    np.testing.assert_allclose(offsets, offsets[0], rtol=0, atol=1e-6)
    assert best.elbo >= max(elbos) - 1e-9
    assert (best.model.weights_ > 0.01).sum() == 3
    if prior == "dirichlet_distribution":
        assert np.all(np.diff(lower) < 0)  # scikit-learn's bound alone would pick the smallest alpha0
    h = 1e-4
    for la in [math.log(best.alpha) - 1.0, math.log(best.alpha), math.log(best.alpha) + 1.0]:
        up, down = (elbo_at_concentration(X, math.exp(la + s * h), K, weight_concentration_prior_type=prior).elbo_
                    for s in (1, -1))
        grad = elbo_concentration_gradient(
            elbo_at_concentration(X, math.exp(la), K, weight_concentration_prior_type=prior))
        assert abs((up - down) / (2 * h) - grad) <= 1e-6 * max(1.0, abs(grad)) + 1e-6, (la, (up - down) / (2 * h), grad)
    assert abs(elbo_concentration_gradient(best.model)) < 0.05  # stationary at the maximiser, to the search's tolerance


def test_spherical_covariance_prior_accepts_a_number():
    """scikit-learn takes a float as the spherical covariance prior; so does the Gauss-Wishart prior."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    kw = dict(covariance_type="spherical", random_state=0, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = BayesianGaussianMixture(2, covariance_prior=2.0, **kw).fit(X)
        b = BayesianGaussianMixture(2, covariance_prior=np.float64(2.0), **kw).fit(X)
        c = BayesianGaussianMixture(2, covariance_prior=3.0, **kw).fit(X)
    assert float(a._prior.covariance) == 2.0 and a.lower_bound_ == b.lower_bound_ != c.lower_bound_
    with pytest.raises(ValueError, match="covariance_prior"):
        BayesianGaussianMixture(2, covariance_prior=float("nan"), **kw).fit(X)
