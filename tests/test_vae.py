import math

import numpy as np
import pytest
import torch

import zoo  # noqa: F401  (project Pyro settings)
import inference
from inference import elbo_for, gradient_variance
from zoo.vae import VAE, BernoulliRows, DiagNormalRows, PlainVAE, StandardNormalRows

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _digits(n_train=None, n_test=None):
    ds = zoo.load_dataset("binary_digits")
    tr, te = torch.tensor(ds.data), torch.tensor(ds.test_data)
    return tr[:n_train], te[:n_test]


@pytest.fixture(scope="module")
def trained():
    """A small VAE trained briefly on binarised digits (shared by the evaluation tests)."""
    xtr, xte = _digits(600, 200)
    model = VAE(64, 4, (32,), estimator="analytic_kl")
    inference.fit(model, xtr, guide="custom", num_steps=150, lr=1e-2, batch_size=100, progress_bar=False, seed=0)
    return model, xte


def test_gradient_variance_ordering():
    """Same model, parameters and batch: the score function's variance is orders of magnitude above
    reparam's, and the closed-form KL's is no higher than reparam's."""
    xtr, _ = _digits(32)
    torch.manual_seed(0)
    model = VAE(64, 4, (16,))
    table = gradient_variance(model, xtr, ("reparam", "analytic_kl", "score_function"), num_draws=25, burn_in=5)
    v = table["mean_variance"]
    assert v["score_function"] > 100 * v["reparam"], table  # two orders of magnitude (measured: 850-1900x)
    assert v["analytic_kl"] <= v["reparam"], table
    # all three estimate the same gradient: the means agree up to Monte Carlo error
    assert abs(table.loc["analytic_kl", "mean_grad_norm"] - table.loc["reparam", "mean_grad_norm"]) \
        < 0.1 * table.loc["reparam", "mean_grad_norm"]


def test_bounds_are_ordered(trained):
    """ELBO <= IWAE_5 <= IWAE_2000 on average over the test set. Each is a Monte Carlo estimate;
    the per-image standard error of the means is below 0.05 nat here, the gaps are larger."""
    model, xte = trained
    torch.manual_seed(1)
    elbo = model.elbo(xte, num_samples=20).mean().item()
    iwae5 = model.iwae_bound(xte, 5).mean().item()
    ll = model.log_likelihood(xte, 2000, batch_size=50, sample_batch_size=500).mean().item()
    assert elbo <= iwae5 + 0.05 <= ll + 0.1, (elbo, iwae5, ll)
    assert ll - elbo > 0.1  # the bound is not tight: a real gap, not rounding


def test_log_likelihood_matches_exact_integral():
    """Latent dimension 1: log p(x) = log int p(x|z) N(z; 0, 1) dz by quadrature on a fine grid."""
    torch.manual_seed(0)
    model = VAE(6, 1, (8,)).double()
    x = (torch.rand(5, 6, dtype=torch.float64) < 0.5).double()
    z = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    with torch.no_grad():
        lp = model.log_px_given_z(x[:, None, :], z[None, :, None]) - 0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
        exact = torch.logsumexp(lp, 1) + math.log(z[1] - z[0])
    est = model.log_likelihood(x, 20000, sample_batch_size=5000)
    assert torch.allclose(est, exact, atol=0.05), (est, exact)


def test_row_distributions_match_pyros_own():
    """The VAE's sites use lean row-wise laws; each equals the textbook Pyro law in value and gradient."""
    import pyro.distributions as dist
    from torch.distributions import kl_divergence

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64)
    x = (torch.rand(7, 5, generator=g, dtype=torch.float64) < 0.5).double()
    ref = dist.Bernoulli(logits=logits).to_event(1)
    torch.testing.assert_close(BernoulliRows(logits).log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(BernoulliRows(logits).expand((3, 7)).log_prob(x), ref.expand((3, 7)).log_prob(x))
    loc = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    raw = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    scale = torch.nn.functional.softplus(raw)
    q = DiagNormalRows(loc, scale)
    z = q.rsample()
    own = q.log_prob(z)  # reuses the draw's noise
    recomputed = dist.Normal(loc, scale).to_event(1).log_prob(z)
    torch.testing.assert_close(own, recomputed)
    for a, b, v in zip(torch.autograd.grad(own.sum(), (loc, raw), retain_graph=True, allow_unused=True),
                       torch.autograd.grad(recomputed.sum(), (loc, raw), retain_graph=True), (loc, raw)):
        torch.testing.assert_close(torch.zeros_like(v) if a is None else a, b)  # d/dloc is 0 either way
    other = torch.randn(7, 3, dtype=torch.float64)  # not its own draw: computed from the value
    torch.testing.assert_close(q.log_prob(other), dist.Normal(loc, scale).to_event(1).log_prob(other))
    p = StandardNormalRows(3, dtype=torch.float64).expand((7,))
    std = dist.Normal(torch.zeros(3, dtype=torch.float64), 1.0).to_event(1)
    torch.testing.assert_close(p.log_prob(other), std.log_prob(other))
    torch.testing.assert_close(kl_divergence(q, p), kl_divergence(dist.Normal(loc, scale).to_event(1), std))
    assert p.rsample((2,)).shape == (2, 7, 3) and p.rsample().dtype == torch.float64


def test_analytic_kl_uses_the_closed_form():
    """With a decoder that ignores z, the analytic-KL loss has no Monte Carlo part left: two evaluations
    agree, and equal reconstruction + closed-form KL; the reparam loss varies."""
    x, _ = _digits(20)
    losses, models = {}, {}
    for est in ("analytic_kl", "reparam"):
        model = models[est] = VAE(64, 3, (8,), estimator=est)
        torch.nn.init.zeros_(model.decoder.net[0].weight)  # the decoder's output no longer depends on z
        elbo = elbo_for(model)
        losses[est] = [float(elbo.loss(model.model, model.custom_guide(), x)) for _ in range(2)]
    assert losses["reparam"][0] != losses["reparam"][1]
    model = models["analytic_kl"]
    with torch.no_grad():
        loc, scale = model.encoder(x)
        kl = 0.5 * (scale ** 2 + loc ** 2 - 1 - 2 * scale.log()).sum()
        rec = model.log_px_given_z(x, torch.zeros(20, 3)).sum()
    for value in losses["analytic_kl"]:
        assert math.isclose(value, (kl - rec).item(), rel_tol=1e-6)


def test_every_estimator_trains_through_fit_with_minibatches():
    xtr, _ = _digits(256)
    for est in ("reparam", "analytic_kl", "score_function", "iwae"):
        model = VAE(64, 2, (16,), estimator=est, num_particles=3 if est == "iwae" else 1)
        res = inference.fit(model, xtr, guide="custom", num_steps=60, lr=2e-2, batch_size=64, progress_bar=False)
        losses = torch.tensor(res.losses)
        assert torch.isfinite(losses).all(), est
        assert losses[-10:].mean() < losses[:10].mean(), est
        assert res.samples["z"].shape == (1, VAE.max_posterior_draws, 256, 2)
        assert res.pointwise_log_likelihood().shape == (1, VAE.max_posterior_draws, 256)


def test_compiled_loss_matches_eager():
    xtr, _ = _digits(64)
    losses = []
    for jit in (False, True):
        model = VAE(64, 2, (16,), estimator="analytic_kl")
        res = inference.fit(model, xtr, guide="custom", num_steps=5, lr=1e-2, progress_bar=False, jit_loss=jit, seed=3)
        losses.append(res.losses[0])
    # the first loss uses the same seeded weights; with the closed-form KL only the single draw differs
    assert abs(losses[0] - losses[1]) < 0.05 * abs(losses[0])


def test_pyro_vae_matches_plain_pytorch_quality():
    """Same seed, same steps, same optimiser and batch size: test ELBOs within 1 nat per image."""
    xtr, xte = _digits()
    steps, batch, lr = 400, 128, 3e-3
    ours = VAE(64, 8, (64,), estimator="analytic_kl")
    ours.reset_parameters(xtr, seed=0)
    plain = PlainVAE.from_vae(ours)
    inference.fit(ours, xtr, guide="custom", num_steps=steps, lr=lr, batch_size=batch, progress_bar=False, seed=0)
    opt = torch.optim.Adam(plain.parameters(), lr=lr)
    torch.manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        plain.loss(xtr[torch.randperm(len(xtr))[:batch]], len(xtr)).backward()
        opt.step()
    ours_plain_nets = VAE(64, 8, (64,))
    ours_plain_nets.encoder, ours_plain_nets.decoder = plain.encoder, plain.decoder
    torch.manual_seed(5)
    a = ours.elbo(xte, num_samples=50).mean().item()
    b = ours_plain_nets.elbo(xte, num_samples=50).mean().item()
    assert abs(a - b) < 1.0, (a, b)
    assert a > -40  # trained: the untrained ELBO is about -45 nats


def test_bad_input_is_refused():
    model = VAE(64, 2, (8,))
    xtr, _ = _digits(10)
    with pytest.raises(ValueError, match="binary"):
        model.elbo(xtr * 0.5)
    with pytest.raises(ValueError, match="NaN"):
        bad = xtr.clone()
        bad[0, 0] = float("nan")
        model.log_likelihood(bad, 10)
    with pytest.raises(ValueError, match="63 features.*n_features=64"):
        model.elbo(xtr[:, :63])
    with pytest.raises(ValueError, match="unknown estimator 'nope'.*reparam"):
        VAE(64, estimator="nope")
    with pytest.raises(ValueError, match="unknown likelihood"):
        VAE(64, likelihood="poisson")
    with pytest.raises(ValueError, match="minibatches need the model's amortised 'custom' guide"):
        inference.fit(model, xtr, guide="normal", batch_size=4, num_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match="no compiled variant"):
        elbo_for(VAE(64, estimator="iwae"), jit=True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        inference.fit(model, xtr, guide="custom", batch_size=0, num_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match="num_samples"):
        model.log_likelihood(xtr, 0)


def test_gaussian_decoder_with_learned_scale_fits_real_data():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((200, 5)) * [1, 2, 3, 0.5, 1] + 1.0, dtype=torch.float32)
    model = VAE(5, 2, (16,), likelihood="gaussian", scale="learned")
    res = inference.fit(model, x, guide="custom", num_steps=80, lr=1e-2, progress_bar=False)
    assert res.losses[-1] < res.losses[0]
    # the independent-Gaussian fit is a lower bound on what the VAE can reach: log-lik per datum
    base = torch.distributions.Normal(x.mean(0), x.std(0)).log_prob(x).sum(-1).mean().item()
    assert model.log_likelihood(x, 200).mean().item() > base - 1.0


@cuda
@pytest.mark.cuda
def test_vae_on_cuda():
    xtr, _ = _digits(128)
    x = xtr.cuda()
    model = VAE(64, 2, (16,))
    res = inference.fit(model, x, guide="custom", num_steps=20, batch_size=32, progress_bar=False)
    assert res.samples["z"].is_cuda
    assert model.log_likelihood(x, 50).is_cuda
