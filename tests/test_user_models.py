"""A user's own Pyro models, never registered, through fit, compare, the views and ArviZ.

Each model here is a plain function ``model(data)`` written as a Pyro user writes it (float32
constants, data of shape (N,), ``pyro.markov``, an improper ordered prior); its structure is found
by tracing. The checks are against independent references: a closed-form posterior, NUTS in plain
Pyro, NUTS on a hand-written forward-algorithm marginal, the zoo's own closed forms, and the Stan
reference posterior of posteriordb's ``low_dim_gauss_mix``.
"""
import json
import math
from pathlib import Path

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions import constraints
from pyro.infer import MCMC, NUTS

import guides
import inference
import zoo
from zoo.base import PyroModel, ZooModel, as_model

POSTERIORDB = Path(__file__).resolve().parent / "data" / "posteriordb" / "low_dim_gauss_mix"


# --- models as a user writes them -----------------------------------------------------------------
SIGMA, PRIOR_SD = 1.0, 10.0


def normal_mean(data):
    """mu ~ N(0, 10), x_n ~ N(mu, 1): data of shape (N,)."""
    mu = pyro.sample("mu", dist.Normal(0.0, PRIOR_SD))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(mu, SIGMA), obs=data)


class NormalMean(ZooModel):
    """The same model through the subclass route, declaring nothing."""

    def model(self, data):
        normal_mean(data)


K = 2


@pyro.infer.config_enumerate
def tutorial_gmm(data):
    """Pyro's GMM tutorial model, verbatim but for the name."""
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * torch.ones(K)))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with pyro.plate("components", K):
        locs = pyro.sample("locs", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(data)):
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


TUTORIAL_DATA = [0.0, 1.0, 10.0, 11.0, 12.0]


def low_dim_gauss_mix(y):
    """posteriordb's low_dim_gauss_mix (Stan) in Pyro: ordered mu ~ normal(0, 2), sigma ~ half-normal(0, 2),
    theta ~ beta(5, 5), y_n ~ theta N(mu_1, sigma_1) + (1 - theta) N(mu_2, sigma_2)."""
    mu = pyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    pyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = pyro.sample("theta", dist.Beta(5.0, 5.0))
    with pyro.plate("data", len(y)):
        z = pyro.sample("z", dist.Categorical(torch.stack([theta, 1 - theta], -1)), infer={"enumerate": "parallel"})
        pyro.sample("y", dist.Normal(mu[z], sigma[z]), obs=y)


def _hmm_priors():
    trans = pyro.sample("trans", dist.Dirichlet(torch.tensor([[4.0, 1.0], [1.0, 4.0]])).to_event(1))
    locs = pyro.sample("locs", dist.Normal(torch.tensor([-1.0, 1.0]), 1.0).to_event(1))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 1.0))
    return trans, locs, scale


def hmm(y):
    """Two hidden states, Gaussian emissions, the chain written with pyro.markov and enumerated."""
    trans, locs, scale = _hmm_priors()
    x = 0
    for t in pyro.markov(range(len(y))):
        x = pyro.sample(f"x_{t}", dist.Categorical(trans[x]), infer={"enumerate": "parallel"})
        pyro.sample(f"y_{t}", dist.Normal(locs[x], scale), obs=y[t])


def hmm_marginal(y):
    """The same HMM with the chain summed out by hand (the forward algorithm): the reference."""
    trans, locs, scale = _hmm_priors()
    log_trans = trans.log()
    log_alpha = log_trans[0] + dist.Normal(locs, scale).log_prob(y[0])
    for t in range(1, len(y)):
        log_alpha = torch.logsumexp(log_alpha[:, None] + log_trans, 0) + dist.Normal(locs, scale).log_prob(y[t])
    pyro.factor("loglik", torch.logsumexp(log_alpha, 0))


def _hmm_data(T=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    trans, locs = torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([-1.0, 1.5])
    x, ys = 0, []
    for _ in range(T):
        x = int(torch.multinomial(trans[x], 1, generator=g))
        ys.append(locs[x] + 0.6 * torch.randn((), generator=g))
    return torch.stack(ys)


# --- structure found by tracing -----------------------------------------------------------------
def test_the_structure_of_a_plain_model_is_found_by_tracing():
    data = torch.tensor(TUTORIAL_DATA)
    m = as_model(tutorial_gmm)
    assert isinstance(m, PyroModel)
    sites = m.sites(data)
    assert list(sites.latent) == ["weights", "scale", "locs"]
    assert sites.discrete == ("assignment",) and sites.observed_names == ["obs"]
    assert sites.max_plate_nesting == 1 and sites.data_plate == "data"
    h = as_model(hmm).sites(_hmm_data(5))
    assert h.discrete == tuple(f"x_{t}" for t in range(5)) and h.data_plate is None and h.max_plate_nesting == 0
    assert as_model(low_dim_gauss_mix).sites(torch.randn(7)).factors == ("mu_prior",)


def test_data_keep_their_shape_and_become_the_default_dtype():
    m = as_model(normal_mean)
    x = m.check_data(np.arange(5.0))  # float64 NumPy input meets float32 constants in the model
    assert x.shape == (5,) and x.dtype == torch.get_default_dtype()
    t = torch.arange(4.0, dtype=torch.float64)
    assert m.check_data(t) is t
    assert NormalMean().check_data(np.arange(3.0)).shape == (3,)
    with pytest.raises(ValueError, match="contains NaN"):
        m.check_data([1.0, float("nan")])
    with pytest.raises(ValueError, match="is empty"):
        m.check_data(np.zeros(0))
    with pytest.raises(TypeError, match="must hold numbers"):
        m.check_data(["a", "b"])


def test_generic_pointwise_log_likelihood_equals_the_closed_forms():
    """The traced log p(x_n | theta) with the assignment summed out, against each zoo model's own formula."""
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=25, random_state=2).data)
    for cov in ("tied_spherical", "diag", "full"):
        m = zoo.create_model("gmm", n_components=3, covariance_type=cov)
        init = m.init_values(data)
        draws = {k: torch.stack([v, v]) for k, v in init.items()}
        draws["locs"] = draws["locs"] + torch.tensor([0.0, 0.3], dtype=data.dtype)[:, None, None]
        closed = m.pointwise_log_likelihood(draws, data)
        traced = ZooModel.pointwise_log_likelihood(m, draws, data)
        torch.testing.assert_close(traced, closed, rtol=1e-10, atol=1e-10)
    gl = zoo.create_model("glgae", K=3, D=2, E=2, b=0.5)
    gl.reset_parameters(data)
    z = {"z": torch.randn(2, 25, 2, dtype=data.dtype)}
    torch.testing.assert_close(ZooModel.pointwise_log_likelihood(gl, z, data), gl.pointwise_log_likelihood(z, data))
    bg = zoo.create_model("bayesian_gmm", n_components=3, covariance_type="diag")
    bg.check_data(data)
    init = {k: v[None] for k, v in bg.init_values(data).items()}
    torch.testing.assert_close(ZooModel.pointwise_log_likelihood(bg, init, data), bg.pointwise_log_likelihood(init, data))


# --- fitting a user's model ----------------------------------------------------------------------
def _closed_form_sd(n):
    return 1.0 / math.sqrt(1.0 / PRIOR_SD**2 + n / SIGMA**2)


@pytest.mark.parametrize("route", ["function", "subclass"])
def test_one_dimensional_data_are_not_reshaped(route):
    """x of shape (N,): the posterior sd of mu through fit equals the closed form and plain Pyro's NUTS on the
    same model (a reshaping to (N, 1) would count the likelihood N times: an sd sqrt(N) = 7 times too small)."""
    g = torch.Generator().manual_seed(1)
    x = 2.0 + torch.randn(50, generator=g)
    model = normal_mean if route == "function" else NormalMean()
    ours = inference.fit(model, x, method="nuts", num_samples=2000, num_warmup=300, num_chains=1, seed=3,
                         progress_bar=False)
    pyro.set_rng_seed(3)
    plain = MCMC(NUTS(normal_mean), num_samples=2000, warmup_steps=300, disable_progbar=True)
    plain.run(x)
    sd_ours, sd_plain = ours.posterior_std()["mu"].item(), plain.get_samples()["mu"].std().item()
    exact = _closed_form_sd(len(x))
    assert sd_ours == pytest.approx(sd_plain, rel=0.05)
    assert sd_ours == pytest.approx(exact, rel=0.05)
    idata = ours.to_inference_data()
    assert idata.observed_data["obs"].dims == ("obs_id",) and idata.log_likelihood["obs"].shape == (1, 2000, 50)


def test_pyro_tutorial_gmm_through_every_method():
    """As the tutorial does it: the guide starts from uniform weights, half the data's spread and locations at
    random data points, best of 8 seeded starts; then EM and NUTS on the same function."""
    data = torch.tensor(TUTORIAL_DATA)

    def init_loc_fn(site):  # the tutorial's initialisation, drawn anew for every restart's seed
        if site["name"] == "weights":
            return torch.ones(K) / K
        if site["name"] == "scale":
            return (data.var() / 2).sqrt()
        return data[torch.multinomial(torch.ones(len(data)) / len(data), K)]

    r = inference.fit(tutorial_gmm, data, method="map", num_steps=200, lr=0.1, betas=(0.8, 0.99), restarts=8,
                      guide_kwargs={"init_loc_fn": init_loc_fn}, progress_bar=False)
    est = {k: v[0, 0] for k, v in r.samples.items()}
    order = torch.argsort(est["locs"])
    np.testing.assert_allclose(est["weights"][order].numpy(), [0.375, 0.625], atol=5e-3)
    np.testing.assert_allclose(est["locs"][order].numpy(), [0.499, 10.98], atol=5e-3)
    np.testing.assert_allclose(est["scale"].item(), 0.651, atol=5e-3)
    z = r.assignments(temperature=0)[0, 0]
    assert (z[:2] == z[0]).all() and (z[2:] == z[2]).all() and z[0] != z[2]
    em = inference.fit(tutorial_gmm, data, method="em", num_steps=200, m_step="gradient", progress_bar=False)
    assert np.all(np.diff(em.losses) <= 1e-6)
    nuts = inference.fit(tutorial_gmm, data, method="nuts", num_samples=100, num_warmup=100, num_chains=1,
                         progress_bar=False)
    idata = nuts.to_inference_data()
    assert idata.posterior["assignment"].shape == (1, 100, 5)
    assert np.isfinite(idata.log_likelihood["obs"].values).all()


def test_a_users_own_guide_with_pyro_params():
    """A plain guide function with pyro.param statements (the global param store) is trained."""
    pyro.clear_param_store()

    def guide(data):
        loc = pyro.param("mu_loc", torch.tensor(0.0))
        scale = pyro.param("mu_scale", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("mu", dist.Normal(loc, scale))

    g = torch.Generator().manual_seed(0)
    x = 3.0 + torch.randn(40, generator=g)
    r = inference.fit(normal_mean, x, method="svi", guide=guide, num_steps=1500, lr=0.05, lr_decay=0.998,
                      num_samples=2000, progress_bar=False)
    assert r.guide_name == "guide"
    n = len(x)
    post_mean = x.sum().item() / (n + SIGMA**2 / PRIOR_SD**2)
    assert pyro.param("mu_loc").item() == pytest.approx(post_mean, abs=0.05)
    assert pyro.param("mu_scale").item() == pytest.approx(_closed_form_sd(n), rel=0.15)
    with pytest.raises(ValueError, match="restarts build a fresh guide"):
        inference.fit(normal_mean, x, method="svi", guide=guide, restarts=2, progress_bar=False)


def test_an_unenumerated_discrete_site_gets_the_zoo_error():
    def collapsing(data):
        w = pyro.sample("w", dist.Dirichlet(torch.ones(2)))
        with pyro.plate("data", len(data)):
            k = pyro.sample("k", dist.Categorical(w))
            pyro.sample("obs", dist.Normal(k.float(), 1.0), obs=data)

    with pytest.raises(ValueError, match=r"discrete latent sites \['k'\] that are not marked for enumeration"):
        inference.fit(collapsing, torch.randn(6), method="svi")
    with pytest.raises(TypeError, match="must be a Pyro model"):
        inference.fit(42, torch.randn(6))


# --- a hidden Markov model -----------------------------------------------------------------------
def test_the_enumerated_hmm_is_the_forward_algorithm_at_any_parameters():
    """log p(y, theta) of the pyro.markov model with the chain summed out by enumeration equals the
    hand-written forward recursion, at random parameter values."""
    from pyro.infer import TraceEnum_ELBO

    y = _hmm_data(12)
    g = torch.Generator().manual_seed(5)
    for _ in range(5):
        theta = {"trans": torch.distributions.Dirichlet(torch.ones(2, 2)).sample(),
                 "locs": torch.randn(2, generator=g), "scale": torch.rand((), generator=g) + 0.3}
        joint = [-TraceEnum_ELBO(max_plate_nesting=0).loss(pyro.poutine.condition(m, data=theta), lambda y: None, y)
                 for m in (hmm, hmm_marginal)]
        assert joint[0] == pytest.approx(joint[1], rel=1e-5)


def _hmm_nuts(y, num_samples, num_warmup, num_chains, seed=0, reference_samples=None, reference_chains=None):
    """NUTS on the enumerated model and on the hand-written marginal (cheaper per step, so it can afford more
    draws), both started at a MAP fit of the marginal, with a tree depth of at most 6."""
    start = inference.fit(hmm_marginal, y, method="map", num_steps=300, progress_bar=False, seed=seed)
    kw = dict(num_warmup=num_warmup, nuts_init=start, max_tree_depth=6, jit_compile=False, progress_bar=False,
              seed=seed)
    enum = inference.fit(hmm, y, method="nuts", num_samples=num_samples, num_chains=num_chains, **kw)
    ref = inference.fit(hmm_marginal, y, method="nuts", num_samples=reference_samples or num_samples,
                        num_chains=reference_chains or num_chains, **kw)
    errors = {name: ((enum.posterior_mean()[name] - ref.posterior_mean()[name]).abs()
                     / ref.posterior_std()[name]).max().item() for name in ("trans", "locs", "scale")}
    return enum, ref, errors


def test_hmm_with_pyro_markov_fits_by_nuts_and_svi():
    """NUTS with the chain enumerated against NUTS on the forward-algorithm marginal, on a short sequence and
    short chains (a guard against gross errors; each step of the enumerated potential costs ~10 ms here).
    The 0.2-sd comparison runs at full size in `make test-slow` (test_hmm_full_size)."""
    y = _hmm_data(10)
    enum, ref, errors = _hmm_nuts(y, num_samples=250, num_warmup=100, num_chains=1)
    assert max(errors.values()) < 0.5, errors
    ll = enum.pointwise_log_likelihood()  # a model without a data plate: one "datum", the whole sequence
    assert ll.shape == (1, 250, 1) and torch.isfinite(ll).all()
    z = enum.assignments(temperature=0, num_draws=2, site="x_3")
    assert z.shape == (1, 2) and set(z.unique().tolist()) <= {0, 1}
    svi = inference.fit(hmm, y, method="svi", guide="normal", num_steps=400, lr=0.05, progress_bar=False, seed=0)
    assert np.mean(svi.losses[-20:]) < np.mean(svi.losses[:20])
    err = ((svi.posterior_mean()["locs"] - ref.posterior_mean()["locs"]).abs() / ref.posterior_std()["locs"]).max()
    assert err < 1.0


@pytest.mark.slow
def test_hmm_full_size():
    """T = 20, two chains of 1000 draws each for both models: posterior means within 0.2 posterior sds."""
    enum, ref, errors = _hmm_nuts(_hmm_data(20), num_samples=1000, num_warmup=500, num_chains=2)
    print(f"\nHMM, T = 20, 2 x 1000 draws: largest error of a posterior mean in posterior sds "
          f"{ {k: round(v, 3) for k, v in errors.items()} }; NUTS {enum.run_time:.0f} s (enumerated), "
          f"{ref.run_time:.0f} s (marginal)")
    assert max(errors.values()) < 0.2, errors


# --- posteriordb: a model nobody here wrote ------------------------------------------------------
def _posteriordb():
    y = torch.tensor(json.loads((POSTERIORDB / "data.json").read_text())["y"])
    ref = json.loads((POSTERIORDB / "reference_summary.json").read_text())["parameters"]
    return y, ref


def _summary(result):
    m, s = result.posterior_mean(), result.posterior_std()
    return {"mu[1]": (m["mu"][0], s["mu"][0]), "mu[2]": (m["mu"][1], s["mu"][1]),
            "sigma[1]": (m["sigma"][0], s["sigma"][0]), "sigma[2]": (m["sigma"][1], s["sigma"][1]),
            "theta": (m["theta"], s["theta"])}


def test_posteriordb_low_dim_gauss_mix_nuts_matches_the_stan_reference():
    """All 1000 points: NUTS through fit against Stan's reference draws (10 chains x 1000)."""
    y, ref = _posteriordb()
    r = inference.fit(low_dim_gauss_mix, y, method="nuts", num_samples=500, num_warmup=300, num_chains=2,
                      progress_bar=False)
    for name, (mean, sd) in _summary(r).items():
        assert abs(mean.item() - ref[name]["mean"]) < 0.2 * ref[name]["sd"], name
        assert sd.item() == pytest.approx(ref[name]["sd"], rel=0.2), name
    loo = az.loo(r.to_inference_data())
    assert np.isfinite(loo.elpd_loo) and (loo.pareto_k.values < 0.7).all()


def test_posteriordb_guides_ranked_against_nuts_on_a_subsample():
    """A subsample of 250 points: compare ranks the guides against NUTS on the same subsample; the mvn guide's
    means are within 0.3 posterior sds."""
    y, _ = _posteriordb()
    sub = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:250]]
    cmp = inference.compare(low_dim_gauss_mix, sub, guides=["delta", "normal", "mvn"], reference="nuts",
                            num_steps=2000, lr=0.05, lr_decay=0.999, num_samples=500, num_particles=200,
                            progress_bar=False, reference_kwargs=dict(num_samples=400, num_warmup=300, num_chains=1))
    table = cmp.table
    assert set(table.loc[["delta", "normal", "mvn"], "rank"]) == {1, 2, 3}
    assert table.loc["mvn", "rank"] < table.loc["delta", "rank"]
    assert max(table.loc["mvn", f"mean_error[{s}]"] for s in ("mu", "sigma", "theta")) < 0.3
    assert np.isfinite(table.loc["mvn", "log_evidence"])


@pytest.mark.slow
def test_posteriordb_guides_at_full_size():
    """All 1000 points: the mvn guide against the Stan reference, and compare's ranking against NUTS."""
    y, ref = _posteriordb()
    q = inference.fit(low_dim_gauss_mix, y, method="svi", guide="mvn", num_steps=5000, lr=0.05, lr_decay=0.9994,
                      num_samples=4000, progress_bar=False)
    errors = {name: abs(mean.item() - ref[name]["mean"]) / ref[name]["sd"] for name, (mean, _) in _summary(q).items()}
    print(f"\nlow_dim_gauss_mix, mvn guide (5000 steps): mean errors in reference sds "
          f"{ {k: round(v, 3) for k, v in errors.items()} }")
    assert max(errors.values()) < 0.3, errors
    cmp = inference.compare(low_dim_gauss_mix, y, guides=["delta", "normal", "mvn"], reference="nuts",
                            num_steps=3000, lr=0.05, lr_decay=0.999, num_samples=1000, num_particles=500,
                            progress_bar=False, reference_kwargs=dict(num_samples=500, num_warmup=300, num_chains=2))
    print(cmp.table[["rank", "distance", "elbo", "log_evidence", "run_time"]].round(3).to_string())
    assert cmp.table.loc["mvn", "rank"] < cmp.table.loc["delta", "rank"]


def test_views_of_a_users_model():
    """The ArviZ views on a user's model with 1-D data: posterior predictive check, trace, LOO comparison."""
    import matplotlib.pyplot as plt

    from inference import views

    g = torch.Generator().manual_seed(2)
    x = 1.0 + torch.randn(30, generator=g)
    fits = {f"seed {s}": inference.fit(normal_mean, x, method="svi", guide="normal", num_steps=300, num_samples=50,
                                       progress_bar=False, seed=s) for s in (0, 1)}
    r = fits["seed 0"]
    for fig in (views.plot_ppc(r, num_pp_samples=20), views.plot_trace(r, var_names=["mu"])):
        assert len(fig.axes) >= 1
        plt.close(fig)
    pp = r.posterior_predictive(num_draws=5)
    assert pp["obs"].shape == (1, 5, 30)
    table = views.loo_compare(fits)
    assert set(table.index) == set(fits) and np.isfinite(table["elpd_loo"]).all()
    with pytest.raises(ValueError, match="no feature axis"):
        views.plot_ppc(r, feature=0)
