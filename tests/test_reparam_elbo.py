"""ReparamELBO against Pyro's own Trace_ELBO / TraceMeanField_ELBO: same seed, same draws, so the same
loss and the same gradients; and the guides it must refuse."""
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

import zoo  # noqa: F401  (project Pyro settings)
from inference import ReparamELBO, elbo_for
from zoo.vae import VAE


def _loss_and_grads(elbo, model, guide, params, *args, seed=0, **kwargs):
    for p in params:
        p.grad = None
    pyro.set_rng_seed(seed)
    loss = elbo.differentiable_loss(model, guide, *args, **kwargs)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in params]


def _assert_same(a, b, rtol=1e-5):
    (la, ga), (lb, gb) = a, b
    assert la == pytest.approx(lb, rel=rtol)
    assert len(ga) == len(gb)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=rtol, atol=1e-5 * max(1.0, y.abs().max().item()))


@pytest.fixture(params=[True, False], ids=["validated", "unvalidated"])
def validation(request):
    """Both code paths: Pyro's traces under validation, the light site recorder without."""
    with pyro.validation_enabled(request.param):
        yield request.param


@pytest.mark.parametrize("estimator", ["reparam", "analytic_kl"])
@pytest.mark.parametrize("num_particles", [1, 3])
def test_vae_loss_and_gradients_equal_pyros(estimator, num_particles, validation):
    torch.manual_seed(0)
    x = (torch.rand(300, 20) < 0.4).float()
    model = VAE(20, 3, (16,), estimator=estimator, num_particles=num_particles)
    guide = model.custom_guide()
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    ours = elbo_for(model)
    assert isinstance(ours, ReparamELBO) and ours.analytic_kl == (estimator == "analytic_kl")
    reference = elbo_for(model, pyro_elbo=True)
    assert type(reference) is {"reparam": Trace_ELBO, "analytic_kl": TraceMeanField_ELBO}[estimator]
    for subsample_size in (None, 50):
        a = _loss_and_grads(ours, model.model, guide, params, x, subsample_size=subsample_size, seed=4)
        b = _loss_and_grads(reference, model.model, guide, params, x, subsample_size=subsample_size, seed=4)
        _assert_same(a, b)


C = dist.constraints
OBS = torch.linspace(-1.5, 2.0, 24).reshape(6, 4)


def _loc_scale(name, shape=()):
    return (pyro.param(f"{name}_loc", torch.full(shape, 0.1)),
            pyro.param(f"{name}_scale", torch.full(shape, 0.8), constraint=C.positive))


def plates_model():
    """A global latent; nested plates with explicit dims and a masked observation; a second plate of the
    same size under a per-datum tensor scale."""
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    with pyro.plate("rows", 6, dim=-2), pyro.plate("cols", 4, dim=-1):
        z = pyro.sample("z", dist.Normal(a, 1.0))
        with poutine.mask(mask=OBS > 0):
            pyro.sample("x", dist.Normal(z, 0.5), obs=OBS)
    with pyro.plate("other", 6, dim=-1), poutine.scale(scale=torch.linspace(0.2, 2.0, 6)):
        y = pyro.sample("y", dist.Normal(a, 1.0))
        pyro.sample("y_obs", dist.Normal(y, 1.0), obs=OBS[:, 0])


def plates_guide():
    pyro.sample("a", dist.Normal(*_loc_scale("a")))
    with pyro.plate("rows", 6, dim=-2), pyro.plate("cols", 4, dim=-1):
        pyro.sample("z", dist.Normal(*_loc_scale("z", (6, 4))))
    with pyro.plate("other", 6, dim=-1), poutine.scale(scale=torch.linspace(0.2, 2.0, 6)):
        pyro.sample("y", dist.Normal(*_loc_scale("y", (6,))))


def subsample_model():
    with pyro.plate("data", 6, subsample_size=3) as idx:
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=OBS[idx, 0])


def subsample_guide():
    """An auxiliary site the model does not have; the subsample indices pick the guide's parameters."""
    with pyro.plate("data", 6, subsample_size=3) as idx:
        loc, scale = _loc_scale("u", (6,))
        u = pyro.sample("u", dist.Normal(loc[idx], scale[idx]), infer={"is_auxiliary": True})
        pyro.sample("z", dist.Normal(u, 0.5))


def positive_model():
    with pyro.plate("data", 6):
        r = pyro.sample("r", dist.Gamma(2.0, 1.0))
        pyro.sample("x", dist.Normal(0.0, r), obs=OBS[:, 0])


def lognormal_guide():  # no closed-form KL(LogNormal || Gamma): the Monte Carlo fallback
    with pyro.plate("data", 6):
        pyro.sample("r", dist.LogNormal(*_loc_scale("r", (6,))))


def delta_guide():
    with pyro.plate("data", 6):
        pyro.sample("r", dist.Delta(pyro.param("r_point", torch.ones(6), constraint=C.positive)))


def scalar_model():
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    pyro.sample("x", dist.Normal(a, 1.0), obs=torch.tensor(0.4))


def factor_guide():  # an observed guide site (a Jacobian-like term)
    loc, scale = _loc_scale("a")
    a = pyro.sample("a", dist.Normal(loc, scale))
    pyro.factor("jacobian", 0.3 * a + loc, has_rsample=True)


def obs_mask_model():
    with pyro.plate("data", 6):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=OBS[:, 0], obs_mask=torch.tensor([1, 0, 1, 1, 0, 1]).bool())


def obs_mask_guide():
    with pyro.plate("data", 6):
        pyro.sample("z", dist.Normal(*_loc_scale("z", (6,))))
        pyro.sample("x_unobserved", dist.Normal(*_loc_scale("x", (6,))))


CASES = {
    "plates": (plates_model, plates_guide, {"max_plate_nesting": 2}),
    "vectorized particles": (plates_model, plates_guide,
                             {"max_plate_nesting": 2, "num_particles": 3, "vectorize_particles": True}),
    "sequential particles": (plates_model, plates_guide, {"max_plate_nesting": 2, "num_particles": 3}),
    "subsample and auxiliary site": (subsample_model, subsample_guide, {"max_plate_nesting": 1}),
    "no closed-form KL": (positive_model, lognormal_guide, {"max_plate_nesting": 1}),
    "delta guide": (positive_model, delta_guide, {"max_plate_nesting": 1}),
    "guide factor": (scalar_model, factor_guide, {}),
    "obs_mask": (obs_mask_model, obs_mask_guide, {"max_plate_nesting": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("analytic_kl", [False, True], ids=["mc", "analytic_kl"])
def test_generic_models_equal_pyros(case, analytic_kl, validation):
    model, guide, kw = CASES[case]
    pyro.clear_param_store()
    poutine.trace(guide).get_trace()  # create the parameters
    params = [p.unconstrained() for p in pyro.get_param_store().values()]
    ours = ReparamELBO(analytic_kl=analytic_kl, **kw)
    reference = (TraceMeanField_ELBO if analytic_kl else Trace_ELBO)(**kw)
    _assert_same(_loss_and_grads(ours, model, guide, params, seed=2),
                 _loss_and_grads(reference, model, guide, params, seed=2))
    for method in ("loss", "loss_and_grads"):  # same draws, same value
        values = []
        for elbo in (ours, reference):
            pyro.set_rng_seed(5)
            values.append(getattr(elbo, method)(model, guide))
        assert values[0] == pytest.approx(values[1], rel=1e-5), method


def test_a_model_latent_missing_from_the_guide_falls_back_to_monte_carlo():
    """TraceMeanField_ELBO stops with a KeyError there; ReparamELBO counts the model's own draw, as
    Trace_ELBO does: loss = KL(q(z) || p(z)) - log p(w) - log p(x | z, w)."""
    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        w = pyro.sample("w", dist.Normal(0.0, 1.0))  # not in the guide
        pyro.sample("x", dist.Normal(z + w, 1.0), obs=torch.tensor(0.5))

    def guide():
        pyro.sample("z", dist.Normal(*_loc_scale("z")))

    pyro.clear_param_store()
    with pyro.validation_enabled(False):
        pyro.set_rng_seed(1)
        loss = ReparamELBO(analytic_kl=True).loss(model, guide)
        pyro.set_rng_seed(1)
        guide_trace = poutine.trace(guide).get_trace()
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace()
    q, p = guide_trace.nodes["z"]["fn"], model_trace.nodes["z"]["fn"]
    w, x = model_trace.nodes["w"], model_trace.nodes["x"]
    expected = torch.distributions.kl_divergence(q, p) - w["fn"].log_prob(w["value"]) - x["fn"].log_prob(x["value"])
    assert loss == pytest.approx(expected.item(), rel=1e-6)


def test_params_reach_an_enclosing_trace_as_in_svi(validation):
    """SVI finds the parameters to train by tracing the loss call for param statements."""
    x = (torch.rand(30, 6) < 0.5).float()
    model = VAE(6, 2, (4,))
    with poutine.trace(param_only=True) as capture:
        elbo_for(model).differentiable_loss(model.model, model.custom_guide(), x)
    seen = {site["value"].unconstrained() for site in capture.trace.nodes.values()}
    assert seen == set(model.encoder.parameters()) | set(model.decoder.parameters())


def test_svi_steps_match_trace_elbo(validation):
    """pyro.infer.SVI with either loss, same initial weights and seed: the same losses step after step."""
    x = (torch.rand(200, 12, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    runs = []
    for pyro_elbo in (False, True):
        pyro.clear_param_store()
        torch.manual_seed(0)
        model = VAE(12, 2, (16,))
        elbo = elbo_for(model, pyro_elbo=pyro_elbo)
        svi = pyro.infer.SVI(model.model, model.custom_guide(), pyro.optim.Adam({"lr": 0.02}), elbo)
        pyro.set_rng_seed(1)
        runs.append([svi.step(x, 50) for _ in range(30)])
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)
    assert min(runs[0][-5:]) < runs[0][0]


def test_duplicate_and_replayed_observed_sites_are_refused():
    def twice():
        pyro.sample("a", dist.Normal(0.0, 1.0))
        pyro.sample("a", dist.Normal(0.0, 1.0))

    def observed_in_guide():
        pyro.sample("a", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    def latent_in_model():
        pyro.sample("a", dist.Normal(0.0, 1.0))

    with pyro.validation_enabled(False):
        with pytest.raises(RuntimeError, match="Multiple sample sites"):
            ReparamELBO().differentiable_loss(twice, lambda: None)
        with pytest.raises(RuntimeError, match="must be sampled"):
            ReparamELBO().differentiable_loss(latent_in_model, observed_in_guide)


def test_non_reparameterised_and_enumerated_guide_sites_are_refused():
    def model():
        pyro.sample("c", dist.Bernoulli(0.3))

    def guide_nonreparam():
        pyro.sample("c", dist.Bernoulli(pyro.param("p", torch.tensor(0.5), constraint=C.unit_interval)))

    def guide_enum():
        pyro.sample("c", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})

    with pytest.raises(ValueError, match="reparameterised"):
        ReparamELBO().differentiable_loss(model, guide_nonreparam)
    with pytest.raises(ValueError, match="enumerated"):
        ReparamELBO().differentiable_loss(model, guide_enum)
    with pytest.raises(ValueError, match="no sample sites"):
        ReparamELBO().differentiable_loss(lambda: None, lambda: None)


@pytest.mark.parametrize("analytic_kl", [False, True], ids=["mc", "analytic_kl"])
def test_validation_checks_site_shapes_against_plates(analytic_kl):
    def model():  # a latent batch of 4 outside any plate (under analytic_kl, a site of the closed-form KL)
        a = pyro.sample("a", dist.Normal(torch.zeros(4), 1.0))
        pyro.sample("x", dist.Normal(a.sum(), 1.0), obs=torch.tensor(0.0))

    def guide():
        pyro.sample("a", dist.Normal(torch.zeros(4), 1.0))

    elbo = ReparamELBO(max_plate_nesting=1, analytic_kl=analytic_kl)
    with pyro.validation_enabled(True), pytest.raises(ValueError, match="invalid log_prob shape"):
        elbo.differentiable_loss(model, guide)
    with pyro.validation_enabled(False):
        assert torch.isfinite(elbo.differentiable_loss(model, guide))


def test_step_benchmark_runs_and_reports_every_variant(capsys):
    """The benchmark script's smoke run: a row and a JSON line per ELBO variant (timings are not asserted)."""
    import importlib.util
    import json
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "vae_step.py"
    spec = importlib.util.spec_from_file_location("vae_step", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pyro.validation_enabled(True):  # the script turns validation off; restore it for the other tests
        rows = bench.main(["--quick", "--no-jit", "--threads", "0", "--sizes", "digits 64-128-16",
                           "--estimators", "reparam"])
    assert [r["elbo"] for r in rows] == ["ReparamELBO", "pyro ELBO"]
    for r in rows:
        assert r["ours_ms"] > 0 and r["plain_ms"] > 0
        assert r["ratio"] == pytest.approx(r["ours_ms"] / r["plain_ms"], abs=2e-3)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines == rows
