"""ReparamELBO against Pyro's own Trace_ELBO / TraceMeanField_ELBO: same seed, same draws, so the same
loss and the same gradients; and the guides it must refuse."""
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

import zoo  # noqa: F401  (project Pyro settings)
from zoo.vae import VAE, ReparamELBO


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
    ours = model.make_elbo()
    assert isinstance(ours, ReparamELBO) and ours.analytic_kl == (estimator == "analytic_kl")
    reference = model.make_elbo(pyro_elbo=True)
    assert type(reference) is {"reparam": Trace_ELBO, "analytic_kl": TraceMeanField_ELBO}[estimator]
    for subsample_size in (None, 50):
        a = _loss_and_grads(ours, model.model, guide, params, x, subsample_size=subsample_size, seed=4)
        b = _loss_and_grads(reference, model.model, guide, params, x, subsample_size=subsample_size, seed=4)
        _assert_same(a, b)


def _global_and_local(data, mask=None):
    """A global latent outside the plate, a local latent and a masked observation inside it, and a
    poutine.scale with a tensor: the groups ReparamELBO forms by (scale, shape)."""
    mu = pyro.sample("mu", dist.Normal(0.0, 2.0))
    with pyro.plate("data", data.shape[0], subsample_size=8) as idx:
        z = pyro.sample("z", dist.Normal(mu, 1.0))
        with poutine.mask(mask=mask[idx] if mask is not None else None):
            pyro.sample("x", dist.Normal(z, 0.5), obs=data[idx])
    with poutine.scale(scale=torch.tensor(0.3)):
        pyro.sample("w", dist.Normal(mu, 1.0), obs=torch.tensor(0.7))


def _global_and_local_guide(data, mask=None):
    m = pyro.param("m", torch.tensor(0.2))
    s = pyro.param("s", torch.tensor(0.8), constraint=dist.constraints.positive)
    pyro.sample("mu", dist.Normal(m, s))
    with pyro.plate("data", data.shape[0], subsample_size=8) as idx:
        a = pyro.param("a", torch.zeros(data.shape[0]))
        pyro.sample("z", dist.Normal(a[idx] + 0.5 * data[idx], 0.7))


@pytest.mark.parametrize("analytic_kl", [False, True])
def test_generic_model_with_global_sites_masks_and_tensor_scales(analytic_kl, validation):
    pyro.clear_param_store()
    data = torch.randn(20)
    mask = torch.arange(20) % 3 != 0
    pyro.set_rng_seed(0)
    poutine.trace(_global_and_local_guide).get_trace(data, mask)  # create the params
    params = [pyro.param(n).unconstrained() for n in ("m", "s", "a")]
    ours = ReparamELBO(analytic_kl=analytic_kl, max_plate_nesting=1)
    reference = (TraceMeanField_ELBO if analytic_kl else Trace_ELBO)(max_plate_nesting=1)
    a = _loss_and_grads(ours, _global_and_local, _global_and_local_guide, params, data, mask, seed=2)
    b = _loss_and_grads(reference, _global_and_local, _global_and_local_guide, params, data, mask, seed=2)
    _assert_same(a, b)
    assert ours.loss(_global_and_local, _global_and_local_guide, data, mask) == pytest.approx(
        reference.loss(_global_and_local, _global_and_local_guide, data, mask), rel=0.5)  # fresh draws


def test_loss_and_grads_returns_the_loss_and_fills_gradients():
    torch.manual_seed(1)
    x = (torch.rand(40, 10) < 0.5).float()
    model = VAE(10, 2, (8,))
    elbo = model.make_elbo()
    pyro.set_rng_seed(0)
    value = elbo.loss_and_grads(model.model, model.custom_guide(), x)
    pyro.set_rng_seed(0)
    assert value == pytest.approx(elbo.loss(model.model, model.custom_guide(), x), rel=1e-6)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.encoder.parameters())


def test_params_reach_an_enclosing_trace_as_in_svi(validation):
    """SVI finds the parameters to train by tracing the loss call for param statements."""
    x = (torch.rand(30, 6) < 0.5).float()
    model = VAE(6, 2, (4,))
    with poutine.trace(param_only=True) as capture:
        model.make_elbo().differentiable_loss(model.model, model.custom_guide(), x)
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
        elbo = model.make_elbo(pyro_elbo=pyro_elbo)
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
        pyro.sample("c", dist.Bernoulli(pyro.param("p", torch.tensor(0.5), constraint=dist.constraints.unit_interval)))

    def guide_enum():
        pyro.sample("c", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})

    with pytest.raises(ValueError, match="reparameterised"):
        ReparamELBO().differentiable_loss(model, guide_nonreparam)
    with pytest.raises(ValueError, match="enumerated"):
        ReparamELBO().differentiable_loss(model, guide_enum)
    with pytest.raises(ValueError, match="no sample sites"):
        ReparamELBO().differentiable_loss(lambda: None, lambda: None)


def test_validation_checks_site_shapes_against_plates():
    def model():  # a batch of 4 outside any plate
        pyro.sample("x", dist.Normal(torch.zeros(4), 1.0), obs=torch.zeros(4))

    elbo = ReparamELBO(max_plate_nesting=1)
    with pyro.validation_enabled(True), pytest.raises(ValueError, match="invalid log_prob shape"):
        elbo.differentiable_loss(model, lambda: None)
    with pyro.validation_enabled(False):
        assert torch.isfinite(elbo.differentiable_loss(model, lambda: None))
