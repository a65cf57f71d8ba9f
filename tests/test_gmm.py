"""The enumerated Gaussian mixture against closed forms and known answers."""
import warnings

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta

import guides
import inference
import zoo
from zoo.mixture import GaussianMixture


def test_pyro_tutorial_map_with_restarts():
    """Pyro's GMM tutorial: data [0, 1, 10, 11, 12], two components, one shared scale, MAP."""
    data = torch.tensor([0.0, 1.0, 10.0, 11.0, 12.0], dtype=torch.float64)
    model = zoo.create_model("gmm", n_components=2, covariance_type="tied_spherical")
    r = inference.fit(model, data, method="map", guide="delta", num_steps=200, lr=0.1, betas=(0.8, 0.99),
                      restarts=8, progress_bar=False)
    est = {k: v[0, 0] for k, v in r.samples.items()}
    order = torch.argsort(est["locs"][:, 0])
    # weights {0.625, 0.375}: the heavier component is the 3-point cluster at 10.98
    np.testing.assert_allclose(est["weights"][order].numpy(), [0.375, 0.625], atol=5e-3)
    np.testing.assert_allclose(est["locs"][order, 0].numpy(), [0.499, 10.98], atol=5e-3)
    np.testing.assert_allclose(est["scale"].item(), 0.651, atol=5e-3)
    # MAP assignments through infer_discrete
    z = r.assignments(temperature=0)[0, 0]
    assert (z[:2] == z[0]).all() and (z[2:] == z[2]).all() and z[0] != z[2]


@pytest.mark.parametrize("covariance_type", ["tied_spherical", "diag", "full"])
def test_pointwise_log_likelihood_matches_enumerated_elbo(covariance_type):
    """Summed pointwise log-likelihood + log prior == -TraceEnum loss of a delta guide."""
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=30, random_state=2).data)
    model = zoo.create_model("gmm", n_components=3, covariance_type=covariance_type)
    init = model.init_values(data, seed=0)
    guide = guides.make_guide("delta", model, init_values=init)
    guide(data)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model.model, guide, data)
    point = {k: v for k, v in guide.median(data).items()}
    loglik = model.pointwise_log_likelihood(point, data).sum()
    # the prior part from a trace of the model at the point
    import pyro.poutine as poutine

    hidden = guides.hide_discrete(model.model)
    tr = poutine.trace(poutine.condition(hidden, data=point)).get_trace(data)
    log_prior = sum(site["fn"].log_prob(site["value"]).sum() for name, site in tr.nodes.items()
                    if site["type"] == "sample" and name in point)
    np.testing.assert_allclose(-loss, (loglik + log_prior).item(), rtol=1e-6)


def test_pointwise_log_likelihood_against_scipy():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    data = torch.tensor(rng.normal(size=(25, 2)))
    model = zoo.create_model("gmm", n_components=2, covariance_type="full")
    L = torch.linalg.cholesky(torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64))
    scales = L.norm(dim=-1)
    corr = L / scales[:, None]
    sample = {"weights": torch.tensor([0.3, 0.7], dtype=torch.float64),
              "locs": torch.tensor([[0.0, 1.0], [-1.0, 0.5]], dtype=torch.float64),
              "scales": torch.stack([scales, 2 * scales]),
              "corr_chol": torch.stack([corr, corr])}
    ours = model.pointwise_log_likelihood(sample, data).numpy()
    cov0 = (L @ L.T).numpy()
    ref = np.logaddexp(np.log(0.3) + multivariate_normal([0, 1], cov0).logpdf(data.numpy()),
                       np.log(0.7) + multivariate_normal([-1, 0.5], 4 * cov0).logpdf(data.numpy()))
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_infer_discrete_agrees_with_closed_form_responsibilities():
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=60, random_state=4).data)
    model = zoo.create_model("gmm", n_components=3)
    r = inference.fit(model, data, method="svi", guide="normal", num_steps=200, num_samples=4,
                      progress_bar=False)
    z_map = r.assignments(temperature=0)
    resp = model.component_log_prob(r.samples, data)  # (1, S, N, K)
    assert torch.equal(z_map, resp.argmax(-1))
    # temperature 1 draws follow the responsibilities: frequency over many draws
    r.samples = {k: v[:, :1].expand(1, 300, *v.shape[2:]).contiguous() for k, v in r.samples.items()}
    r._assignment_cache.clear()
    z = r.assignments(temperature=1)[0]  # (300, N)
    probs = resp[0, 0].softmax(-1)
    freq = torch.nn.functional.one_hot(z, 3).double().mean(0)
    assert (freq - probs).abs().max() < 0.12


def test_undeclared_discrete_site_is_an_error():
    import pyro
    import pyro.distributions as dist

    class Collapsing(zoo.ZooModel):
        def model(self, data):
            weights = pyro.sample("weights", dist.Dirichlet(torch.ones(2, dtype=data.dtype)))
            with pyro.plate("data", data.shape[0]):
                k = pyro.sample("assignment", dist.Categorical(weights))  # not enumerated
                pyro.sample("obs", dist.Normal(k.to(data.dtype), 1.0).to_event(1), obs=data)

    data = torch.randn(10, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"discrete latent sites \['assignment'\] that are not marked"):
        inference.fit(Collapsing(), data, method="map")
    with pytest.raises(ValueError, match="not marked for enumeration"):
        guides.check_discrete_sites(Collapsing().model, data)


def test_enumerated_site_is_hidden_from_autoguides():
    data = torch.randn(10, 2, dtype=torch.float64)
    model = zoo.create_model("gmm", n_components=2)
    guide = AutoDelta(guides.hide_discrete(model.model))
    guide(data)
    assert set(guide.median(data)) == {"weights", "locs", "scales"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_components=0), "n_components must be >= 1"),
    (dict(n_components=2, covariance_type="weird"), "unknown covariance_type 'weird'"),
    (dict(n_components=2, loc_scale=-1.0), "loc_scale must be positive"),
    (dict(n_components=2, concentration=0.0), "concentration must be positive"),
])
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.create_model("gmm", **kwargs)


def test_model_follows_device_and_dtype_of_data():
    model = zoo.create_model("gmm", n_components=2)
    data32 = torch.randn(20, 2)
    r = inference.fit(model, data32, method="map", num_steps=5, progress_bar=False)
    assert r.samples["locs"].dtype == torch.float32
    r = inference.fit(model, data32.double(), method="map", num_steps=5, progress_bar=False)
    assert r.samples["locs"].dtype == torch.float64


def _random_sites(covariance_type, batch, K=3, D=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    sites = {"weights": torch.distributions.Dirichlet(torch.ones(K, dtype=torch.float64)).sample(batch),
             "locs": torch.randn(*batch, K, D, generator=g, dtype=torch.float64) + 4.0}
    if covariance_type == "tied_spherical":
        sites["scale"] = torch.rand(*batch, generator=g, dtype=torch.float64) + 0.5
    else:
        sites["scales"] = torch.rand(*batch, K, D, generator=g, dtype=torch.float64) + 0.5
    if covariance_type == "full":
        sites["corr_chol"] = dist.LKJCholesky(D, torch.tensor(1.0)).sample(batch + (K,)).to(torch.float64)
    return sites


def _site_covariances(covariance_type, sites):
    """(..., K, D, D) covariances from the sites, by their definition in the model."""
    K, D = sites["locs"].shape[-2:]
    if covariance_type == "tied_spherical":
        return sites["scale"][..., None, None, None] ** 2 * torch.eye(D, dtype=torch.float64).expand(K, D, D)
    if covariance_type == "diag":
        return torch.diag_embed(sites["scales"] ** 2)
    L = sites["scales"][..., :, None] * sites["corr_chol"]
    return L @ L.mT


@pytest.mark.parametrize("covariance_type", ["tied_spherical", "diag", "full"])
def test_component_log_prob_is_batched_over_draws_and_matches_scipy(covariance_type):
    """The shared kernels evaluate every draw of a (chain, draw) batch at once, on data far
    from the origin (the design is centred by the data mean)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    data = torch.tensor(rng.normal(size=(30, 2)) + 4.0)
    model = zoo.create_model("gmm", n_components=3, covariance_type=covariance_type)
    sites = _random_sites(covariance_type, (2, 3))
    ours = model.component_log_prob(sites, data)
    assert ours.shape == (2, 3, 30, 3)
    cov, X = _site_covariances(covariance_type, sites), data.numpy()
    for c in range(2):
        for s in range(3):
            ref = np.stack([np.log(float(sites["weights"][c, s, k]))
                            + multivariate_normal(sites["locs"][c, s, k].numpy(), cov[c, s, k].numpy()).logpdf(X)
                            for k in range(3)], axis=-1)
            np.testing.assert_allclose(ours[c, s].numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_pyro_gmm_and_the_estimator_share_the_scores(covariance_type):
    """At the same parameters the Pyro model's log-likelihood and responsibilities are the
    estimator's score_samples and predict_proba."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2)) * 3.0
    sites = {k: v[0] for k, v in _random_sites(covariance_type, (1,), seed=3).items()}
    cov = _site_covariances(covariance_type, sites)
    prec = torch.linalg.inv(cov) if covariance_type == "full" else 1.0 / torch.diagonal(cov, dim1=-2, dim2=-1)
    est = GaussianMixture(3, covariance_type=covariance_type, max_iter=0, weights_init=sites["weights"].numpy(),
                          means_init=sites["locs"].numpy(), precisions_init=prec.numpy()).fit(X)
    model = zoo.create_model("gmm", n_components=3, covariance_type=covariance_type)
    comp = model.component_log_prob(sites, torch.tensor(X))
    np.testing.assert_allclose(torch.logsumexp(comp, -1).numpy(), est.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(comp.softmax(-1).numpy(), est.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["tied_spherical", "diag", "full"])
def test_em_update_is_the_weighted_maximum_likelihood_step(covariance_type):
    rng = np.random.default_rng(4)
    data = torch.tensor(rng.normal(size=(40, 2)) + 7.0)
    resp = torch.softmax(torch.tensor(rng.normal(size=(40, 3))), 1)
    model = zoo.create_model("gmm", n_components=3, covariance_type=covariance_type)
    out = model.em_update(resp, data, reg_covar=1e-6)
    nk = resp.sum(0)
    locs = resp.T @ data / nk[:, None]
    diff = data[:, None] - locs[None]  # (N, K, D)
    np.testing.assert_allclose(out["weights"].numpy(), (nk / 40).numpy(), rtol=1e-12)
    np.testing.assert_allclose(out["locs"].numpy(), locs.numpy(), rtol=1e-12)
    if covariance_type == "tied_spherical":
        var = (resp[..., None] * diff ** 2).sum() / (40 * 2) + 1e-6
        np.testing.assert_allclose(out["scale"].item(), var.sqrt().item(), rtol=1e-12)
        return
    cov = torch.einsum("nk,nkd,nke->kde", resp, diff, diff) / nk[:, None, None]
    cov = cov + 1e-6 * torch.eye(2, dtype=torch.float64)
    if covariance_type == "diag":
        variances = torch.diagonal(cov, dim1=-2, dim2=-1)
        np.testing.assert_allclose(out["scales"].numpy(), variances.sqrt().numpy(), rtol=1e-12)
    else:
        L = out["scales"][..., None] * out["corr_chol"]
        np.testing.assert_allclose((L @ L.mT).numpy(), cov.numpy(), rtol=1e-10)


def test_old_parameter_names_still_work_with_a_future_warning():
    with pytest.warns(FutureWarning, match="'K' was renamed 'n_components'"):
        old = zoo.create_model("gmm", K=3)
    assert old.n_components == 3 and old.covariance_type == "diag"
    with pytest.warns(FutureWarning) as record:
        old = zoo.create_model("gmm", K=2, covariance="shared")
    said = " ".join(str(w.message) for w in record)
    assert "'covariance' was renamed 'covariance_type'" in said and "'tied_spherical'" in said
    assert old.n_components == 2 and old.covariance_type == "tied_spherical"
    with pytest.warns(FutureWarning, match="'shared' was renamed 'tied_spherical'"):
        assert zoo.GaussianMixtureModel(covariance_type="shared").covariance_type == "tied_spherical"
    new = zoo.create_model("gmm", n_components=2, covariance_type="tied_spherical")
    assert old.site_dims == new.site_dims
    data = torch.tensor([[0.0], [1.0], [10.0], [11.0], [12.0]], dtype=torch.float64)
    point = new.init_values(data)
    torch.testing.assert_close(old.pointwise_log_likelihood(point, data), new.pointwise_log_likelihood(point, data))
    with pytest.raises(TypeError, match="both n_components=3 and its old name K=2"):
        zoo.create_model("gmm", n_components=3, K=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        zoo.create_model("gmm", n_components=2, covariance_type="full")  # the new names: no warning


@pytest.mark.parametrize("covariance_type", ["tied_spherical", "diag", "full"])
def test_cluster_plot_reads_the_covariances_from_the_site_names(covariance_type):
    from inference.views import _component_covariances

    sites = {k: v[0] for k, v in _random_sites(covariance_type, (1,), seed=5).items()}
    got = _component_covariances(sites, 2)
    np.testing.assert_allclose(np.stack(got), _site_covariances(covariance_type, sites).numpy(), rtol=1e-12)
