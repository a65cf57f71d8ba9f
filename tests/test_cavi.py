"""CAVI for the Pyro model zoo.mixture.BayesianGMM: its ELBO is the Pyro model's ELBO (Monte Carlo
through Pyro traces), the enumerated ELBO bounds it from above, CAVI against SVI with the
conjugate and the mean-field normal guides, the FitResult, the Wishart bijection, bad input."""
import math
import warnings

import numpy as np
import pyro
import pyro.poutine as poutine
import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Categorical

import guides
import inference
from inference.cavi import enumerated_elbo, fit_cavi, mean_field_elbo
from zoo.mixture import BayesianGMM, stick_breaking
from zoo.mixture.bayesian_gmm import _CholeskyVecToPD
from zoo.registry import create_model


def _blobs(n=90, seed=0, sep=5.0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=(n // 3, 2)) + c for c in ([0, 0], [sep, 0], [0, sep])])


def _cavi(cov, prior, K=3, X=None, **kw):
    m = BayesianGMM(K, covariance_type=cov, weight_concentration_prior_type=prior)
    r = fit_cavi(m, _blobs() if X is None else X, progress_bar=False, num_samples=50, tol=1e-8, max_iter=300, **kw)
    return m, r


@pytest.fixture(autouse=True)
def _clean_param_store():
    pyro.clear_param_store()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Singular sample detected")
        yield


CASES = [("full", "dirichlet_process"), ("diag", "dirichlet_distribution")]


@pytest.mark.parametrize("cov,prior", CASES)
def test_cavi_elbo_is_the_pyro_models_elbo(cov, prior):
    """E_q[log p(x, z, theta) - log q] with log p from a trace of the Pyro model (z drawn from
    q(z), theta from the conjugate guide set to CAVI's q) equals the closed-form ELBO."""
    m, r = _cavi(cov, prior)
    est, data = r.posterior_guide, r.data
    R = torch.as_tensor(est.predict_proba(data))
    closed = est.compute_elbo(data, R)
    names = [n for n in r.samples]
    vals = []
    for _ in range(100 if cov == "full" else 300):
        tg = poutine.trace(r.guide).get_trace(data)
        z = Categorical(probs=R).sample()
        values = {n: tg.nodes[n]["value"] for n in names}
        tm = poutine.trace(poutine.condition(m.model, data={**values, "assignment": z})).get_trace(data)
        log_qz = torch.log(R.gather(1, z[:, None])).sum()
        vals.append(float((tm.log_prob_sum() - tg.log_prob_sum() - log_qz).detach()))
    vals = torch.tensor(vals)
    se = float(vals.std()) / math.sqrt(len(vals))
    assert abs(float(vals.mean()) - closed) < 4 * se, (float(vals.mean()), se, closed)
    # the best q(z) (predict_proba) gives the ELBO the final iteration reached, up to the last step
    assert closed >= est.elbo_ - 1e-6 * abs(est.elbo_)


@pytest.mark.parametrize("cov,prior", CASES[:2])
def test_mean_field_and_enumerated_elbo_of_the_cavi_guide(cov, prior):
    m, r = _cavi(cov, prior)
    est, data = r.posterior_guide, r.data
    closed = est.compute_elbo(data)
    mf, mf_se = mean_field_elbo(m, r.guide, data, num_particles=150 if cov == "full" else 300)
    assert abs(mf - closed) < 4 * mf_se + 0.05, (mf, mf_se, closed)  # + the logsumexp-of-mean bias
    enum, enum_se = enumerated_elbo(m, r.guide, data, num_particles=50)
    # summing z out exactly can only tighten the bound of the same q(theta)
    assert enum > closed - 4 * enum_se


def test_cavi_beats_svi_on_the_same_model():
    """Diagonal model (fast): CAVI's ELBO is at least the mean-field ELBO of SVI's q(theta)
    for the conjugate and the normal guide, and CAVI's q(theta) also wins on the enumerated
    ELBO SVI optimises. (Full covariance: benchmarks/cavi_vs_svi.py and the slow test.)"""
    _check_cavi_vs_svi("diag", "dirichlet_distribution", num_steps=150)


def test_cavi_beats_svi_full_covariance():
    _check_cavi_vs_svi("full", "dirichlet_process", num_steps=500)


def _check_cavi_vs_svi(cov, prior, num_steps):
    X = _blobs()
    m, r = _cavi(cov, prior, X=X)
    cavi_elbo = r.posterior_guide.elbo_
    cavi_enum, _ = enumerated_elbo(m, r.guide, r.data, num_particles=50)
    for guide in ("custom", "normal"):
        s = inference.fit(m, X, method="svi", guide=guide, num_steps=num_steps, lr=0.05, progress_bar=False,
                          num_samples=5, seed=0)
        mf, mf_se = mean_field_elbo(m, s.guide, s.data, num_particles=150)
        enum, enum_se = enumerated_elbo(m, s.guide, s.data, num_particles=50)
        assert cavi_elbo >= mf - 3 * mf_se, (guide, cavi_elbo, mf, mf_se)
        assert cavi_enum >= enum - 3 * enum_se, (guide, cavi_enum, enum, enum_se)


# ------------------------------------------------------------ the FitResult
@pytest.mark.parametrize("cov,prior", CASES)
def test_fit_cavi_result(cov, prior):
    m, r = _cavi(cov, prior)
    est = r.posterior_guide
    assert r.method == "cavi" and r.num_chains == 1 and r.num_draws == 50
    np.testing.assert_allclose(r.losses, [-v for v in est.elbos_])
    assert np.all(np.diff(r.losses) <= 1e-9 * np.abs(r.losses[1:]))
    K, D = 3, 2
    assert r.samples["locs"].shape == (1, 50, K, D)
    assert r.samples["precision"].shape == ((1, 50, K, D, D) if cov == "full" else (1, 50, K, D))
    w = stick_breaking(r.samples["sticks"]) if "sticks" in r.samples else r.samples["weights"]
    # draws from q: their mean is q's mean (weights_ is normalised; Dirichlet draws already are)
    np.testing.assert_allclose(w.mean((0, 1)) / w.mean((0, 1)).sum(), est.weights_, atol=0.03)
    np.testing.assert_allclose(r.samples["locs"].mean((0, 1)), est.means_, atol=0.25)
    ll = r.pointwise_log_likelihood()
    assert ll.shape == (1, 50, 90) and bool(torch.isfinite(ll).all())


def test_registry_and_normal_guide_on_the_wishart_site():
    m = create_model("bayesian_gmm", n_components=2, n_features=2, covariance_type="full")
    X = torch.as_tensor(_blobs(n=30))
    g = guides.make_guide("normal", m, init_values=m.init_values(X))
    tr = poutine.trace(g).get_trace(X)
    prec = tr.nodes["precision"]["value"]
    assert prec.shape == (2, 2, 2)
    assert bool((torch.linalg.eigvalsh(prec) > 0).all())


def test_cholesky_bijection_jacobian_matches_autograd():
    t = _CholeskyVecToPD(3)
    x = torch.randn(6, dtype=torch.float64)
    r, c = torch.tril_indices(3, 3)
    J = jacobian(lambda v: t(v)[r, c], x)
    assert float(torch.linalg.slogdet(J)[1]) == pytest.approx(float(t.log_abs_det_jacobian(x, t(x))), rel=1e-10)
    torch.testing.assert_close(t.inv(t(x)), x)


def test_bad_input():
    with pytest.raises(ValueError, match="covariance_type"):
        BayesianGMM(2, covariance_type="tied")
    with pytest.raises(ValueError, match="weight_concentration_prior_type"):
        BayesianGMM(2, weight_concentration_prior_type="pitman_yor")
    with pytest.raises(ValueError, match="weight_concentration_prior"):
        BayesianGMM(2, weight_concentration_prior=0.0)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        BayesianGMM(2, n_features=3, degrees_of_freedom_prior=1.5)
    with pytest.raises(ValueError, match="features"):
        BayesianGMM(2, n_features=3).check_data(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        fit_cavi(BayesianGMM(2), np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 0.0]]), progress_bar=False)
    with pytest.raises(TypeError, match="conjugate"):
        fit_cavi(create_model("gmm", n_components=2), _blobs(n=30), progress_bar=False)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_cavi_on_cuda():
    m = BayesianGMM(3, covariance_type="full")
    r = fit_cavi(m, torch.as_tensor(_blobs(), device="cuda"), progress_bar=False, num_samples=10)
    assert r.samples["locs"].device.type == "cuda"
    _, ref = _cavi("full", "dirichlet_process")
    assert r.posterior_guide.elbo_ == pytest.approx(ref.posterior_guide.elbo_, rel=1e-6)


def test_fit_dispatches_method_cavi():
    """inference.fit(method="cavi") is fit_cavi with num_steps as max_iter and the same seed."""
    X = _blobs()
    m = BayesianGMM(3, covariance_type="diag")
    r = inference.fit(m, X, method="cavi", num_steps=300, tol=1e-8, num_samples=20, progress_bar=False, seed=2)
    _, direct = _cavi("diag", "dirichlet_process", X=X, seed=2)
    assert r.method == "cavi" and r.num_draws == 20
    np.testing.assert_allclose(r.losses, direct.losses, rtol=1e-10)
    assert "cavi" in inference.list_methods()
    with pytest.raises(ValueError, match="no conjugate coordinate updates"):
        inference.fit(create_model("gmm", n_components=2), X, method="cavi", progress_bar=False)


def test_mean_field_elbo_of_an_autoguide_counts_its_auxiliary_sites():
    """An autoguide draws unconstrained values at auxiliary sites; its q(theta) density lives there. The
    mean-field ELBO of its q(theta) can never exceed the enumerated ELBO of the same q(theta), nor CAVI's
    optimum, which is a coordinate-wise maximum over every q(z) q(theta)."""
    rng = np.random.default_rng(0)
    X = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])[rng.integers(3, size=150)] + rng.normal(size=(150, 2))
    m = BayesianGMM(3, covariance_type="diag", weight_concentration_prior_type="dirichlet_distribution")
    cavi = fit_cavi(m, X, max_iter=300, tol=1e-8, num_samples=10, progress_bar=False)
    svi = inference.fit(m, X, method="svi", guide="normal", num_steps=100, lr=0.05, num_samples=10,
                        progress_bar=False, seed=0)
    mf, mf_se = mean_field_elbo(m, svi.guide, svi.data, num_particles=300)
    enum, enum_se = enumerated_elbo(m, svi.guide, svi.data, num_particles=100)
    assert mf <= enum + 3 * (mf_se + enum_se), (mf, enum)
    assert mf <= cavi.posterior_guide.elbo_ + 3 * mf_se, (mf, cavi.posterior_guide.elbo_)


@pytest.mark.parametrize("cov,prior", [("full", "dirichlet_process"), ("diag", "dirichlet_distribution")])
def test_component_log_prob_is_batched_over_draws_and_matches_scipy(cov, prior):
    from scipy.stats import multivariate_normal

    m = BayesianGMM(3, covariance_type=cov, weight_concentration_prior_type=prior)
    data = torch.as_tensor(_blobs(n=30)) + 20.0
    g = m.custom_guide()
    draws = [poutine.trace(g).get_trace(data) for _ in range(4)]
    # four draws of q as a (chain, draw) = (2, 2) batch
    sites = {n: torch.stack([tr.nodes[n]["value"] for tr in draws]).detach().unflatten(0, (2, 2))
             for n in m.site_dims if n != "assignment"}
    ours = m.component_log_prob(sites, data)
    assert ours.shape == (2, 2, 30, 3)
    w = stick_breaking(sites["sticks"]) if "sticks" in sites else sites["weights"]
    prec = sites["precision"]
    cov_mats = torch.linalg.inv(prec) if cov == "full" else torch.diag_embed(1.0 / prec)
    X = data.numpy()
    for c in range(2):
        for s in range(2):
            ref = np.stack([np.log(float(w[c, s, k]))
                            + multivariate_normal(sites["locs"][c, s, k].numpy(), cov_mats[c, s, k].numpy()).logpdf(X)
                            for k in range(3)], axis=-1)
            np.testing.assert_allclose(ours[c, s].numpy(), ref, rtol=1e-10)


def test_old_parameter_names_still_work_with_a_future_warning():
    with pytest.warns(FutureWarning) as record:
        old = create_model("bayesian_gmm", K=3, D=2, covariance_type="diag")
    said = " ".join(str(w.message) for w in record)
    assert "'K' was renamed 'n_components'" in said and "'D' was renamed 'n_features'" in said
    assert (old.n_components, old.n_features) == (3, 2)
    with pytest.raises(ValueError, match="built with n_features=2"):
        old.check_data(np.zeros((5, 3)))
    with pytest.warns(FutureWarning, match="'K' was renamed 'n_components'"):
        assert BayesianGMM(K=4).n_components == 4
    with pytest.raises(TypeError, match="both n_features=3 and its old name D=2"):
        BayesianGMM(2, n_features=3, D=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        new = BayesianGMM(3, 2, covariance_type="diag")
    assert new.site_dims == old.site_dims
