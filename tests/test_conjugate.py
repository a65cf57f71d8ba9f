"""Conjugate Gaussian models: closed forms against independent Gaussian conditioning."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import zoo
from zoo.conjugate import ConjugateGaussian



def cuda(test):
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))

f64 = dict(dtype=torch.float64)


def _joint_conditioning(model, x):
    """Posterior of mu and log p(x) from the joint Gaussian of (mu, vec x): Schur complements."""
    N, D = x.shape
    m0, s0 = float(model.prior_loc), float(model.prior_scale)
    sigma = model.noise_covariance(D, x).numpy()
    prior = s0**2 * np.eye(D)
    c_xx = np.kron(np.ones((N, N)), prior) + np.kron(np.eye(N), sigma)  # vec x = (x_1, ..., x_N)
    c_mx = np.tile(prior, (1, N))
    v = x.numpy().reshape(-1) - m0
    gain = np.linalg.solve(c_xx, c_mx.T).T
    mean = m0 + gain @ v
    cov = prior - gain @ c_mx.T
    log_z = multivariate_normal(np.full(N * D, m0), c_xx).logpdf(x.numpy().reshape(-1))
    return mean, cov, log_z


@pytest.mark.parametrize("name,kwargs", [("normal_normal", {}), ("correlated_gaussian", {}),
                                         ("normal_normal", dict(prior_loc=1.0, prior_scale=0.7, noise_scale=2.0)),
                                         ("correlated_gaussian", dict(noise_corr=-0.3, prior_scale=1.5))])
def test_exact_posterior_and_evidence_match_joint_gaussian_conditioning(name, kwargs):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 3, generator=g, **f64) * 1.5 + 0.5
    model = zoo.create_model(name, **kwargs)
    mean, cov = model.exact_posterior(x)
    ref_mean, ref_cov, ref_log_z = _joint_conditioning(model, x)
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cov.numpy(), ref_cov, rtol=1e-9, atol=1e-12)
    assert math.isclose(float(model.log_evidence(x)), ref_log_z, rel_tol=1e-10)


def test_pointwise_log_likelihood_matches_scipy():
    model = zoo.create_model("correlated_gaussian")
    x = torch.randn(5, 2, **f64)
    mu = torch.randn(4, 2, **f64)
    ll = model.pointwise_log_likelihood({"mu": mu}, x)
    assert ll.shape == (4, 5)
    sigma = model.noise_covariance(2, x).numpy()
    expected = np.stack([multivariate_normal(m.numpy(), sigma).logpdf(x.numpy()) for m in mu])
    np.testing.assert_allclose(ll.numpy(), expected, rtol=1e-10)


def test_correlated_model_has_a_strongly_correlated_posterior():
    x = torch.tensor(zoo.load_dataset("blobs", n_samples=40, n_components=2, random_state=3).data)
    _, cov = zoo.create_model("correlated_gaussian").exact_posterior(x)
    corr = cov[0, 1] / (cov[0, 0] * cov[1, 1]).sqrt()
    assert corr > 0.94
    _, cov = zoo.create_model("normal_normal").exact_posterior(x)
    assert float(cov[0, 1]) == 0.0


def test_exact_samples_have_the_exact_moments():
    x = torch.randn(30, 2, **f64)
    model = zoo.create_model("correlated_gaussian")
    mean, cov = model.exact_posterior(x)
    s = model.exact_samples(x, 20000, num_chains=2, seed=1)
    assert s.shape == (2, 20000, 2)
    flat = s.reshape(-1, 2)
    se = cov.diagonal().sqrt() / math.sqrt(flat.shape[0])
    assert ((flat.mean(0) - mean).abs() < 4 * se).all()
    torch.testing.assert_close(torch.cov(flat.T), cov, rtol=0.05, atol=0.0)


def test_dtype_follows_the_data():
    x = torch.randn(10, 2, dtype=torch.float32)
    model = zoo.create_model("normal_normal")
    mean, cov = model.exact_posterior(x)
    assert mean.dtype == cov.dtype == model.log_evidence(x).dtype == torch.float32


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match=r"noise_corr must (lie|be) in \(-1, 1\)"):
        ConjugateGaussian(noise_corr=1.0)
    with pytest.raises(ValueError, match="unknown init 'zero'.*data_mean.*prior"):
        ConjugateGaussian(init="zero")
    with pytest.raises(ValueError, match="prior_scale must be positive"):
        ConjugateGaussian(prior_scale=0.0)
    with pytest.raises(ValueError, match="noise_scale must be a finite number"):
        ConjugateGaussian(noise_scale=float("nan"))
    with pytest.raises(ValueError, match="singular or indefinite for D=3"):
        zoo.create_model("correlated_gaussian", noise_corr=-0.6).exact_posterior(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        zoo.create_model("normal_normal").log_evidence(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="empty"):
        zoo.create_model("normal_normal").exact_posterior(torch.zeros(0, 2))


@cuda
def test_closed_forms_on_cuda():
    x = torch.randn(20, 2, device="cuda", **f64)
    model = zoo.create_model("correlated_gaussian").to("cuda")
    mean, cov = model.exact_posterior(x)
    assert mean.is_cuda and cov.is_cuda
    cpu = zoo.create_model("correlated_gaussian")
    torch.testing.assert_close(model.log_evidence(x).cpu(), cpu.log_evidence(x.cpu()))
    assert model.exact_samples(x, 10).is_cuda
