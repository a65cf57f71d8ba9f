"""Both registries, parametrised: a model or guide is tested by being registered."""
import math

import pytest
import torch

import guides
import inference
import zoo
from zoo.base import provides

SMALL_KWARGS = {
    "gmm": dict(n_components=2), "glgae": dict(K=3, D=2, E=2), "bayesian_gmm": dict(n_components=2, covariance_type="diag"),
    "vae": dict(n_features=12, latent_dim=2, hidden=(16,)), "autoencoder": dict(n_features=12, code_dim=2, hidden=(16,)),
    "stacked_autoencoder": dict(n_features=12, layer_sizes=(8, 2)), "gan": dict(n_features=2, hidden=(8,)),
}


def _binary():
    return torch.tensor(zoo.datasets.make_binary(40, n_features=12, random_state=3).data)


# Models that need other data than 40 two-dimensional blob points: name -> data factory.
SMALL_DATA = {"vae": _binary, "autoencoder": _binary, "stacked_autoencoder": _binary}


def small_data(model_name=None):
    if model_name in SMALL_DATA:
        return SMALL_DATA[model_name]()
    ds = zoo.load_dataset("blobs", n_samples=40, n_components=2, random_state=3)
    return torch.tensor(ds.data)


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'nope'.*gmm"):
        zoo.create_model("nope")


def test_unknown_guide_lists_known_names():
    with pytest.raises(ValueError, match="unknown guide 'nope'.*delta.*normal"):
        guides.make_guide("nope", zoo.create_model("gmm"))


def test_unknown_method_lists_known_names():
    with pytest.raises(ValueError, match="unknown method 'nope'.*map.*nuts.*svi"):
        inference.fit(zoo.create_model("gmm"), small_data(), method="nope")


def test_registries_list_what_the_issue_names():
    assert {"gmm", "glgae", "bayesian_gmm", "vae", "autoencoder", "normal_normal",
            "correlated_gaussian"} <= set(zoo.list_models())
    assert {"delta", "normal", "mvn", "lowrank", "laplace", "flow", "custom"} <= set(guides.list_guides())
    assert zoo.list_models("gm*") == ["gmm"]


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("gmm")(lambda **kw: None)


CASES = [(m, g) for m in zoo.list_models() for g in guides.guides_for(zoo.create_model(m, **SMALL_KWARGS.get(m, {})))]


@pytest.mark.parametrize("model_name,guide_name", CASES)
def test_every_guide_runs_svi_on_every_model(model_name, guide_name):
    model = zoo.create_model(model_name, **SMALL_KWARGS.get(model_name, {}))
    data = small_data(model_name)
    spec = guides.guide_spec(guide_name)
    method = "map" if spec.point_estimate else "svi"
    result = inference.fit(model, data, method=method, guide=guide_name, num_steps=120, lr=0.05,
                           num_samples=20, progress_bar=False, seed=1)
    losses = torch.tensor(result.losses)
    assert torch.isfinite(losses).all()
    first, last = losses[:10].mean().item(), losses[-10:].mean().item()
    assert last < first, f"{guide_name}: loss did not decrease ({first:.3f} -> {last:.3f})"
    for name, value in result.samples.items():
        assert torch.isfinite(value).all(), name
    assert math.isfinite(result.pointwise_log_likelihood().sum().item())


# A model that no guide applies to is fitted by a method of its own, found through the protocol hook it provides.
OWN_METHODS = {"adversarial_parts": "adversarial"}
GUIDELESS = [m for m in zoo.list_models() if not guides.guides_for(zoo.create_model(m, **SMALL_KWARGS.get(m, {})))]


@pytest.mark.parametrize("model_name", GUIDELESS)
def test_every_model_no_guide_applies_to_runs_a_method_of_its_own(model_name):
    model = zoo.create_model(model_name, **SMALL_KWARGS.get(model_name, {}))
    own = [method for hook, method in OWN_METHODS.items() if provides(model, hook)]
    assert own, f"no guide applies to {model_name} and it provides none of {list(OWN_METHODS)}: nothing fits it"
    for method in own:
        result = inference.fit(model, small_data(model_name), method=method, num_steps=60, num_samples=20,
                               progress_bar=False, seed=1)
        assert len(result.losses) == 60 and torch.isfinite(torch.tensor(result.losses)).all(), method
        for name, value in result.samples.items():
            assert value.shape[:2] == (1, 20) and torch.isfinite(value).all(), name
        with pytest.raises(ValueError, match="supports no guide"):
            inference.fit(model, small_data(model_name), method="svi", progress_bar=False)


def test_fit_with_vectorised_particles_lowers_the_loss_noise():
    """num_particles draws per step: the same mean loss, a smaller spread (one draw: sd sigma; 32: sigma/sqrt 32)."""
    model = zoo.create_model("normal_normal")
    data = small_data()
    spreads = {}
    for n in (1, 32):
        r = inference.fit(model, data, method="svi", guide="normal", num_steps=300, lr=0.02, num_particles=n,
                          progress_bar=False, seed=0)
        spreads[n] = torch.tensor(r.losses[-100:]).std().item()
    assert spreads[32] < spreads[1] / 2, spreads
    with pytest.raises(ValueError, match="supplies its own ELBO"):
        inference.fit(zoo.create_model("vae", **SMALL_KWARGS["vae"]), _binary(), guide="custom", num_particles=4)
