"""Valid input that used to crash (issue 16): tensors that require grad, half-precision data.

The dtype rule, the same at every entry point: the zoo computes in float32 or float64 only. Half
precision (float16, bfloat16) is read like integer input, converted to the dtype that entry point gives
any non-float32/64 input: float64 for the estimators (scikit-learn's rule) and for the zoo's own Pyro
models, the network's dtype for the network models (VAE, autoencoders, GAN), torch's default dtype for
a user's Pyro model (as NumPy input). A tensor that requires grad is used detached.
"""
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import inference
import zoo
import zoo.conjugate  # noqa: F401  (registers the conjugate models)

pytestmark = pytest.mark.usefixtures("one_thread")

HALF = [torch.float16, torch.bfloat16]


def _iris(dtype=torch.float64):
    return torch.tensor(zoo.load_dataset("iris").data, dtype=dtype)


def _estimators():
    return [zoo.GaussianMixture(3, random_state=0), zoo.BayesianGaussianMixture(n_components=3, random_state=0),
            zoo.KMeans(3, random_state=0, n_init=1)]


def _attributes(est):
    names = ["means_", "weights_", "covariances_"] if hasattr(est, "means_") else ["cluster_centers_", "inertia_"]
    return {n: getattr(est, n) for n in names}


# --- tensors that require grad --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_estimators_use_a_tensor_that_requires_grad_detached(dtype):
    X = _iris(dtype)
    Xg = X.clone().requires_grad_(True)
    for est, plain in zip(_estimators(), _estimators()):
        est.fit(Xg)
        plain.fit(X)
        for name, value in _attributes(est).items():
            np.testing.assert_array_equal(value, _attributes(plain)[name], err_msg=name)
        np.testing.assert_array_equal(est.predict(Xg), plain.predict(X))
        assert est.score(Xg) == plain.score(X)
        if hasattr(est, "predict_proba"):
            np.testing.assert_array_equal(est.predict_proba(Xg), plain.predict_proba(X))
        else:
            np.testing.assert_array_equal(est.transform(Xg), plain.transform(X))
            np.testing.assert_array_equal(est.fit_predict(Xg), plain.fit_predict(X))
    assert Xg.grad is None


def test_fit_uses_data_that_requires_grad_detached():
    X = _iris()[:40, :2].requires_grad_(True)
    em = inference.fit("gmm", X, method="em", progress_bar=False)  # used to fail: out=... and autograd
    assert not em.data.requires_grad and em.losses
    map_fit = inference.fit("gmm", X, method="map", num_steps=20, progress_bar=False)
    assert not map_fit.data.requires_grad
    assert X.grad is None


# --- half precision ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", HALF)
def test_fit_computes_half_precision_data_of_a_zoo_model_in_float64(dtype):
    X = _iris()[:30, :2]
    for name in ["gmm", "bayesian_gmm", "normal_normal"]:  # "dirichlet" / "cholesky" not implemented for 'Half'
        r = inference.fit(name, X.to(dtype), method="map", num_steps=20, progress_bar=False, seed=0)
        same = inference.fit(name, X.to(dtype).to(torch.float64), method="map", num_steps=20, progress_bar=False,
                             seed=0)
        assert r.data.dtype == torch.float64, name
        assert r.losses == same.losses, name
    em = inference.fit("gmm", X.to(dtype), method="em", progress_bar=False)
    assert em.data.dtype == torch.float64


def test_numpy_float16_data_is_computed_in_float64():
    X = zoo.load_dataset("iris").data[:30, :2].astype(np.float16)
    r = inference.fit("gmm", X, method="em", progress_bar=False)
    assert r.data.dtype == torch.float64


@pytest.mark.parametrize("dtype", HALF)
def test_a_users_model_gets_half_precision_data_in_torchs_default_dtype(dtype):
    def model(data):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(data)):
            pyro.sample("obs", dist.Normal(mu, 1.0), obs=data)

    data = torch.linspace(-1, 1, 10).to(dtype)
    r = inference.fit(model, data, method="map", num_steps=20, progress_bar=False)
    assert r.data.dtype == torch.get_default_dtype()
    assert r.samples["mu"].dtype == torch.get_default_dtype()


@pytest.mark.parametrize("dtype", HALF)
def test_network_models_get_half_precision_data_in_their_own_dtype(dtype):
    X = (torch.rand(8, 4, generator=torch.Generator().manual_seed(0)) > 0.5).to(dtype)
    for name, kwargs in [("vae", dict(n_features=4, latent_dim=2, hidden=(8,))),
                         ("autoencoder", dict(n_features=4, code_dim=2, hidden=(8,)))]:
        model = zoo.create_model(name, **kwargs)
        r = inference.fit(model, X, guide="custom", num_steps=5, progress_bar=False)
        assert r.data.dtype == torch.float32, name
    gan = zoo.create_model("gan", n_features=4)
    assert gan.check_data(X).dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF)
def test_estimators_compute_half_precision_in_float64_like_fit(dtype):
    X = _iris(dtype)
    for est, plain in zip(_estimators(), _estimators()):
        est.fit(X)
        plain.fit(X.to(torch.float64))
        for name, value in _attributes(est).items():
            assert np.asarray(value).dtype == np.float64, name
            np.testing.assert_array_equal(value, _attributes(plain)[name], err_msg=name)
    gm = zoo.GaussianMixture(3, random_state=0).fit(X.numpy() if dtype == torch.float16 else X)
    assert gm.means_.dtype == np.float64


def test_a_half_precision_dtype_parameter_is_refused_by_the_estimators():
    with pytest.raises(ValueError, match="dtype"):
        zoo.GaussianMixture(2, dtype="float16").fit(_iris())
