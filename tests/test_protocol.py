"""The model protocol (zoo.base) and the method registry (inference.methods): written down, asked,
dispatched."""
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import inference
import zoo
from inference import methods
from zoo.base import HOOKS, PyroModel, ZooModel, provides


def test_every_hook_is_documented_and_asked_with_provides():
    for hook in HOOKS:
        assert f"``{hook}(" in zoo.base.__doc__, hook
    expected = {
        "gmm": {"em_update", "em_fit", "component_log_prob"},
        "bayesian_gmm": {"cavi_fit", "component_log_prob", "log_prior"},
        "glgae": {"coordinate_fit"},
        "normal_normal": {"exact_posterior", "log_evidence"},
        "vae": set(),
        "gan": {"adversarial_parts"},
    }
    for name, hooks in expected.items():
        model = zoo.create_model(name)
        assert {h for h in HOOKS if provides(model, h)} == hooks, name
    assert not any(provides(PyroModel(lambda data: None), h) for h in HOOKS)
    with pytest.raises(ValueError, match="unknown hook 'make_elbo'"):
        provides(zoo.create_model("gmm"), "make_elbo")


def test_a_subclass_that_declares_nothing_has_its_discrete_sites_found():
    class Mixture(ZooModel):
        def model(self, data):
            w = pyro.sample("w", dist.Dirichlet(torch.ones(2)))
            locs = pyro.sample("locs", dist.Normal(torch.tensor([-2.0, 2.0]), 1.0).to_event(1))
            with pyro.plate("data", len(data)):
                k = pyro.sample("k", dist.Categorical(w), infer={"enumerate": "parallel"})
                pyro.sample("obs", dist.Normal(locs[k], 1.0), obs=data)

    x = np.concatenate([np.full(5, -2.0), np.full(5, 2.0)])  # float64 NumPy data, float32 constants in the model
    r = inference.fit(Mixture(), x, method="map", num_steps=100, progress_bar=False)
    z = r.assignments(temperature=0)[0, 0]
    assert r.data.dtype == torch.float32 and z.shape == (10,)
    assert (z[:5] == z[0]).all() and (z[5:] == z[5]).all() and z[0] != z[5]
    idata = r.to_inference_data()
    assert idata.log_likelihood["obs"].dims == ("chain", "draw", "obs_id")


def test_options_are_declared_and_checked():
    for name in inference.list_methods():
        spec = inference.method_spec(name)
        assert {"seed", "progress_bar"} <= set(spec.options), name
    assert inference.method_spec("svi").takes_guide and not inference.method_spec("nuts").takes_guide
    with pytest.raises(TypeError, match=r"method 'svi' does not take the option\(s\) 'num_warmup'; its options: "
                                        r"num_steps, lr"):
        inference.fit(zoo.create_model("normal_normal"), torch.randn(10, 2), method="svi", num_warmup=10)
    with pytest.raises(ValueError, match="unknown method 'nope'; known methods: adversarial, cavi, coordinate, em, "
                                         "layerwise, map, nuts, svi"):
        inference.method_spec("nope")


def test_a_new_method_registers_and_dispatches():
    calls = []

    def run(model, data, *, method, scale: float = 1.0, seed: int = 0, progress_bar: bool = True):
        calls.append((method, scale))
        return inference.FitResult(model=model, data=data, method=method, guide_name=None, guide=None, losses=[],
                                   samples={"mu": torch.zeros(1, 1, data.shape[1])})

    methods.register_method("noop", description="returns the origin")(run)
    try:
        r = inference.fit(zoo.create_model("normal_normal"), torch.randn(5, 2), method="noop", scale=2.0)
        assert calls == [("noop", 2.0)] and r.method == "noop" and "noop" in inference.list_methods()
        with pytest.raises(ValueError, match="already registered"):
            methods.register_method("noop", description="again")(run)
        with pytest.raises(TypeError, match="need defaults"):
            methods.register_method("bad", description="")(lambda model, data, *, method, x: None)
    finally:
        methods._METHODS.pop("noop", None)
        methods.METHODS.pop("noop", None)
