"""Bad input gets a ValueError that names the problem."""
import numpy as np
import pytest
import torch

import inference
import zoo


@pytest.mark.parametrize("data,match", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "contains NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "contains infinity"),
    (np.zeros((2, 3, 4)), "must be 1-D or 2-D.*3-D"),
    (np.float64(3.0), "must be 1-D or 2-D.*0-D"),
    (np.zeros((0, 2)), "is empty"),
    (np.zeros((5, 0)), "0 features"),
])
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        inference.fit(zoo.create_model("gmm", n_components=2), data, method="map", progress_bar=False)


def test_more_components_than_points():
    with pytest.raises(ValueError, match="n_components=5 components is more than the n_samples=3"):
        inference.fit(zoo.create_model("gmm", n_components=5), np.zeros((3, 2)), method="map")


def test_non_numeric_data():
    with pytest.raises(TypeError, match="must hold numbers"):
        inference.fit(zoo.create_model("gmm"), np.array([["a", "b"], ["c", "d"]]), method="map")


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="map", guide="normal"), "needs a point-estimate guide"),
    (dict(num_steps=0), "num_steps must be a positive integer"),
    (dict(lr=-1.0), "lr must be positive"),
    (dict(resume=True), "resume=True needs a checkpoint"),
    (dict(restart_select="best"), "unknown restart_select"),
    (dict(num_particles=0), "num_particles must be a positive integer"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        inference.fit(zoo.create_model("gmm"), np.random.default_rng(0).normal(size=(10, 2)), **kwargs)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known datasets: binary, binary_digits, blobs, digits, faithful, grid, iris, ring"):
        zoo.load_dataset("nope")


def test_full_covariance_needs_two_features():
    with pytest.raises(ValueError, match="at least 2 features"):
        inference.fit(zoo.create_model("gmm", covariance_type="full"), np.arange(6.0), method="map")


def test_torch_input_accepted():
    r = inference.fit(zoo.create_model("gmm"), torch.randn(12, 2), method="map", num_steps=3, progress_bar=False)
    assert r.samples["locs"].shape == (1, 1, 2, 2)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(method="nuts", max_tree_depth=0), ValueError, "max_tree_depth must be a positive integer"),
    (dict(method="nuts", target_accept_prob=1.5), ValueError, "target_accept_prob must be in"),
    (dict(method="nuts", nuts_init={"nope": 1.0}), ValueError, r"nuts_init names \['nope'\]"),
    (dict(method="map", seed=1.5), TypeError, "seed must be an integer"),
    (dict(method="em", checkpoint="x.pt"), TypeError, "method 'em' does not take the option.*'checkpoint'"),
    (dict(method="nuts", num_steps=10), TypeError, "method 'nuts' does not take.*num_steps.*its options: num_samples"),
    (dict(method="nuts", guide="normal"), TypeError, "method 'nuts' takes no guide"),
])
def test_bad_method_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        inference.fit(zoo.create_model("gmm"), np.random.default_rng(0).normal(size=(10, 2)), **kwargs)
