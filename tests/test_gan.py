"""The GAN of MATH.md section 6, its claims measured: the optimal discriminator, V(D*, G) = 2 JS - 2 log 2, the
vanishing minimax gradient, the non-saturating loss as reverse KL - 2 JS (Arjovsky and Bottou 2017, Thm 2.5),
and the adversarial fit (``method="adversarial"``). The claims b-d are quadrature in float64, no training;
``pytest -s`` prints the measured figures."""
import math

import mpmath
import numpy as np
import pyro
import pytest
import torch
from scipy import integrate, stats
from torch import nn

import inference
import zoo
from zoo.base import AdversarialParts, provides
from zoo.gan import (GAN, GENERATOR_LOSSES, discriminator_loss, gan_value, generator_loss, js_divergence, kl_divergence,
                     optimal_discriminator_logit)

pytestmark = pytest.mark.usefixtures("one_thread")

LOG2 = math.log(2.0)
F64 = torch.float64


def normal_logpdf(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def kl_normal(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) in closed form."""
    return math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


#: x grid of the quadratures: +-60 holds every density below to 1e-300, a step of 0.005 makes the trapezoid rule
#: spectrally accurate for these smooth integrands
X = torch.linspace(-60.0, 60.0, 24001, dtype=F64)
#: the noise grid of the generator expectations E_z f(G(z)), z ~ N(0, 1) (mass beyond +-40: 1e-350)
Z = torch.linspace(-40.0, 40.0, 16001, dtype=F64)
PHI = normal_logpdf(Z, 0.0, 1.0).exp()


def expect_over_noise(values):
    """E_z values(z) by the trapezoid rule on :data:`Z`."""
    return torch.trapezoid(PHI * values, Z)


# --- the functions -----------------------------------------------------------------------------------
def test_losses_are_the_log_space_formulas():
    real = torch.tensor([[-3.0, 0.5, 40.0], [1.0, -50.0, 2.0]], dtype=F64)
    fake = torch.tensor([[0.2, -1.0], [60.0, -3.0]], dtype=F64)
    mpmath.mp.dps = 50  # the reference in 50 digits: 1 - sigmoid(60) = 9e-27 is 0 in float64

    def log_d(t):
        return [[float(mpmath.log(1 / (1 + mpmath.exp(-mpmath.mpf(v))))) for v in row] for row in t.tolist()]

    def log_1m_d(t):
        return [[float(mpmath.log(1 - 1 / (1 + mpmath.exp(-mpmath.mpf(v))))) for v in row] for row in t.tolist()]

    mean = lambda rows: torch.tensor([sum(r) / len(r) for r in rows], dtype=F64)  # noqa: E731
    torch.testing.assert_close(discriminator_loss(real, fake), -(mean(log_d(real)) + mean(log_1m_d(fake))),
                               rtol=1e-14, atol=0)
    torch.testing.assert_close(generator_loss(fake, "minimax"), mean(log_1m_d(fake)), rtol=1e-14, atol=0)
    torch.testing.assert_close(generator_loss(fake, "non_saturating"), -mean(log_d(fake)), rtol=1e-14, atol=0)
    naive = (1 - torch.sigmoid(fake)).log().mean(-1)
    assert math.isinf(naive[1].item())  # what the log-space form avoids
    assert GENERATOR_LOSSES == ("minimax", "non_saturating")
    with pytest.raises(ValueError, match="unknown generator_loss 'wasserstein'; known: 'minimax', 'non_saturating'"):
        generator_loss(fake, "wasserstein")
    # dtype and device follow the input
    assert generator_loss(fake.float(), "minimax").dtype == torch.float32


def test_quadrature_handles_vanishing_densities_with_finite_gradients():
    x = torch.linspace(-1.0, 2.0, 301, dtype=F64)
    # uniform densities on [0, 1] and [0.5, 1.5]: zero (log -inf) off their supports
    log_p = torch.where((x >= 0) & (x <= 1), 0.0, -math.inf).to(F64).requires_grad_()
    log_q = torch.where((x >= 0.5) & (x <= 1.5), 0.0, -math.inf).to(F64).requires_grad_()
    js = js_divergence(log_p, log_q, x)
    # half of each mass is shared (m = p), half is alone (m = p/2): JS = log 2 / 2
    assert abs(js.item() - LOG2 / 2) < 0.01
    js.backward()
    assert torch.isfinite(log_p.grad).all() and torch.isfinite(log_q.grad).all()
    assert math.isinf(kl_divergence(log_p.detach(), log_q.detach(), x).item())  # q misses part of p's support
    logit = optimal_discriminator_logit(log_p.detach(), log_q.detach())
    assert logit[0] == 0 and logit[x.tolist().index(0.25)] == math.inf  # no NaN where both vanish
    # batched over leading dims
    batch = js_divergence(torch.stack([normal_logpdf(X, 0, 1), normal_logpdf(X, 1, 1)]), normal_logpdf(X, 0, 1), X)
    assert batch.shape == (2,) and batch[0].abs() < 1e-15
    with pytest.raises(ValueError, match="strictly increasing"):
        js_divergence(normal_logpdf(X, 0, 1), normal_logpdf(X, 1, 1), X.flip(0))
    with pytest.raises(ValueError, match="grid's 24001 points"):
        kl_divergence(normal_logpdf(X, 0, 1)[:-1], normal_logpdf(X, 1, 1)[:-1], X)


# --- a. the optimal discriminator ----------------------------------------------------------------------
class Shift(nn.Module):
    """x = z + 1: a generator with no trainable parameters, p_g = N(1, 1) known."""

    def forward(self, z):
        return z + 1.0


def test_trained_discriminator_approaches_the_optimal_one():
    """Data N(0, 1), generator N(1, 1) fixed: D* = p_r / (p_r + p_g) = sigmoid(1/2 - x).

    Limits, measured over 5 data seeds (this seed: the first): the sampling error of 4000 draws alone (a
    logistic regression a + b x, D*'s own family, fitted to the draws against the exact p_g) leaves
    max |D - D*| <= 0.006 on [-2, 3]; the trained MLP's last SGD iterate 0.011-0.029. 0.05 is 1.7 times the
    worst of those and a sixteenth of D*'s own range over the grid (0.92 - 0.08); the D* of another p_g,
    N(0.5, 1), is 0.15 away. V(D*) - V(D) = int (p_r + p_g) KL(Bern(D*) || Bern(D)) >= 0 pointwise;
    measured 1.5e-4 to 1.5e-3. The discriminator's loss averages -V(D) over minibatches: within 0.008 of
    -V(D*).
    """
    data = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    model = GAN(1, noise_dim=1, hidden=(16,), generator=Shift())
    result = inference.fit(model, data, method="adversarial", num_steps=1000, batch_size=1024, lr=1e-2,
                           progress_bar=False, seed=0)
    assert not any(p.requires_grad for p in model.generator.parameters())
    grid = torch.linspace(-2.0, 3.0, 501, dtype=F64)
    d_star = torch.sigmoid(optimal_discriminator_logit(normal_logpdf(grid, 0, 1), normal_logpdf(grid, 1, 1)))
    torch.testing.assert_close(d_star, torch.sigmoid(0.5 - grid), rtol=1e-12, atol=0)
    gap = (model.discriminate(grid[:, None]) - d_star).abs().max().item()
    other = (torch.sigmoid(0.25 - 0.5 * grid) - d_star).abs().max().item()  # D* of p_g = N(0.5, 1)
    log_r, log_g = normal_logpdf(X, 0, 1), normal_logpdf(X, 1, 1)
    v_trained = gan_value(log_r, log_g, model.discriminate(X[:, None], logits=True), X).item()
    v_star = gan_value(log_r, log_g, optimal_discriminator_logit(log_r, log_g), X).item()
    print(f"\n[a] max |D - D*| on [-2, 3]: {gap:.4f} (D* of N(0.5, 1): {other:.3f}); V(D) = {v_trained:.6f}, "
          f"V(D*) = {v_star:.6f}, V(D*) - V(D) = {v_star - v_trained:.2e}; final discriminator loss "
          f"{np.mean(result.discriminator_losses[-100:]):.4f} (-V(D*) = {-v_star:.4f})")
    assert gap < 0.05 and other > 0.1
    assert v_trained <= v_star and v_star - v_trained < 5e-3
    # the discriminator loss estimates -V(D) on its minibatches
    assert abs(np.mean(result.discriminator_losses[-100:]) + v_star) < 0.02


# --- b. V(D*, G) = 2 JS - 2 log 2 ---------------------------------------------------------------------
PAIRS = [(0, 1, 0, 1), (0, 1, 1, 1), (0, 1, 0.5, 2), (-1, 0.5, 2, 1.5), (0, 1, 3, 0.3), (0, 1, 10, 1), (0, 1, 40, 1)]


def _js_scipy(m1, s1, m2, s2):
    """JS by adaptive quadrature (QUADPACK), independent of the trapezoid rule and the log-space form."""
    def f(t):
        p, q = stats.norm.pdf(t, m1, s1), stats.norm.pdf(t, m2, s2)
        m = 0.5 * (p + q)
        return 0.5 * ((p * math.log(p / m) if p > 0 else 0.0) + (q * math.log(q / m) if q > 0 else 0.0))
    return integrate.quad(f, -60, 60, points=sorted({m1, m2}), limit=500, epsabs=1e-14, epsrel=1e-12)[0]


@pytest.mark.parametrize("m1,s1,m2,s2", PAIRS)
def test_value_at_the_optimal_discriminator_is_twice_js_minus_2_log_2(m1, s1, m2, s2):
    log_r, log_g = normal_logpdf(X, m1, s1), normal_logpdf(X, m2, s2)
    v = gan_value(log_r, log_g, optimal_discriminator_logit(log_r, log_g), X).item()
    js = js_divergence(log_r, log_g, X).item()
    js_ref = _js_scipy(m1, s1, m2, s2)
    kl, kl_ref = kl_divergence(log_r, log_g, X).item(), kl_normal(m1, s1, m2, s2)
    print(f"\n[b] N({m1},{s1}^2) vs N({m2},{s2}^2): |V(D*) - (2 JS - 2 log 2)| = {abs(v - (2 * js - 2 * LOG2)):.1e}, "
          f"against QUADPACK's JS {abs(v - (2 * js_ref - 2 * LOG2)):.1e}; JS = {js:.10f}, |JS - QUADPACK| = "
          f"{abs(js - js_ref):.1e}; |KL - closed form| = {abs(kl - kl_ref):.1e} (KL = {kl_ref:.6g})")
    assert abs(v - (2 * js - 2 * LOG2)) < 1e-10
    assert abs(v - (2 * js_ref - 2 * LOG2)) < 1e-10
    assert abs(js - js_ref) < 1e-11
    assert abs(kl - kl_ref) < 1e-10 * max(1.0, kl_ref)
    assert -1e-15 <= js <= LOG2 + 1e-15
    # V at any other discriminator is lower: D* is the maximiser
    assert gan_value(log_r, log_g, optimal_discriminator_logit(log_r, log_g) + 0.3, X).item() < v


def test_js_is_zero_for_equal_distributions_and_tends_to_log_2_as_they_separate():
    separations = [0.0, 0.5, 1, 2, 4, 8, 10, 20, 40]
    js = [js_divergence(normal_logpdf(X, 0, 1), normal_logpdf(X, d, 1), X).item() for d in separations]
    print("\n[b] log 2 - JS(N(0,1) || N(d,1)): " + ", ".join(f"d={d}: {LOG2 - j:.2e}" for d, j in zip(separations, js)))
    assert js[0] == 0.0
    assert all(a < b for a, b in zip(js[:6], js[1:6]))  # strictly increasing while float64 resolves it
    assert LOG2 - js[6] < 1e-6 and LOG2 - js[-1] < 1e-15


# --- c. the vanishing minimax gradient ----------------------------------------------------------------
S = 1.5  # p_r = N(0, S^2), generator x = S z + theta


def _generator_gradient(theta0: float, kind: str) -> float:
    """d/dtheta E_z loss(D*(S z + theta)) at theta0, D held at D* for theta0 (not differentiated)."""
    theta = torch.tensor(theta0, dtype=F64, requires_grad=True)
    x = S * Z + theta
    logit = optimal_discriminator_logit(normal_logpdf(x, 0.0, S), normal_logpdf(x, theta0, S))
    loss = expect_over_noise(generator_loss(logit[:, None], kind))  # one draw per noise point
    return torch.autograd.grad(loss, theta)[0].item()


def _two_js(theta: float) -> float:
    return 2 * js_divergence(normal_logpdf(X, 0.0, S), normal_logpdf(X, theta, S), X).item()


def test_minimax_gradient_vanishes_as_the_distributions_separate_and_the_non_saturating_one_does_not():
    separations = [0.5, 1, 2, 4, 8, 10, 15, 20]
    minimax = [_generator_gradient(r * S, "minimax") for r in separations]
    saturating = [_generator_gradient(r * S, "non_saturating") for r in separations]
    print("\n[c] |d/dtheta generator loss| at D*, by separation theta/s (minimax | non-saturating):")
    for r, a, b in zip(separations, minimax, saturating):
        print(f"    {r:4}: {abs(a):.3e} | {abs(b):.3e}")
    assert all(g > 0 for g in minimax + saturating)  # both push theta towards the data
    peak = minimax.index(max(minimax))
    assert all(a > b for a, b in zip(minimax[peak:], minimax[peak + 1:]))  # decays past its peak
    assert minimax[separations.index(10)] < 1e-5 and minimax[-1] < 1e-20
    assert minimax[separations.index(10)] / saturating[separations.index(10)] < 1e-6
    assert all(a < b for a, b in zip(saturating, saturating[1:]))  # grows
    # per draw the two gradients are sigmoid(+-logit) theta / s^2: they sum to theta / s^2, so as D*(G(z)) -> 0
    # the non-saturating one tends to theta / s^2, linear in the separation, and the minimax one to 0
    for r, a, b in zip(separations, minimax, saturating):
        assert abs(a + b - r / S) < 1e-10 * (r / S)


@pytest.mark.parametrize("separation", [0.5, 1, 2, 4, 8, 10])
def test_minimax_gradient_at_the_optimal_discriminator_is_the_gradient_of_twice_js(separation):
    """The envelope argument: dV(D*_theta, theta)/dtheta = dV/dtheta at D fixed, since dV/dD = 0 at D*; and
    V(D*_theta, theta) = 2 JS - 2 log 2. Central differences of 2 JS by quadrature, step 1e-4 s."""
    theta, h = separation * S, 1e-4 * S
    grad = _generator_gradient(theta, "minimax")
    fd = (_two_js(theta + h) - _two_js(theta - h)) / (2 * h)
    print(f"\n[c] separation {separation}: minimax gradient {grad:.6e}, d(2 JS)/dtheta {fd:.6e}, relative gap "
          f"{abs(grad - fd) / abs(fd):.1e}")
    assert abs(grad - fd) < 1e-6 * abs(fd)


# --- d. the non-saturating loss: reverse KL - 2 JS ----------------------------------------------------
CASES_D = [((0.0, 1.0), (1.0, 0.0)), ((0.3, 1.2), (-0.5, math.log(0.6))), ((0.0, 1.0), (3.0, 0.5)),
           ((1.0, 0.5), (0.0, math.log(2.0)))]


def _reverse_kl_minus_2js(mean, log_scale, real):
    mr, sr = real
    sg = math.exp(log_scale)
    js = js_divergence(normal_logpdf(X, mr, sr), normal_logpdf(X, mean, sg), X).item()
    return kl_normal(mean, sg, mr, sr) - 2 * js


@pytest.mark.parametrize("real,theta0", CASES_D)
def test_non_saturating_gradient_is_that_of_reverse_kl_minus_twice_js(real, theta0):
    """Arjovsky and Bottou (2017), Thm 2.5: E_z[-grad log D*(G_theta(z))] at theta0 = grad [KL(p_g || p_r) -
    2 JS(p_r || p_g)] at theta0, D* of theta0 held fixed. theta = (mean, log scale) of p_g; the KL in closed
    form, JS by quadrature, the gradient by central differences (step 1e-5)."""
    mr, sr = real
    theta = torch.tensor(theta0, dtype=F64, requires_grad=True)
    x = theta[0] + theta[1].exp() * Z
    logit = optimal_discriminator_logit(normal_logpdf(x, mr, sr), normal_logpdf(x, theta0[0], math.exp(theta0[1])))
    grad = torch.autograd.grad(expect_over_noise(generator_loss(logit[:, None], "non_saturating")), theta)[0]
    h = 1e-5
    fd = torch.tensor([(_reverse_kl_minus_2js(*(np.asarray(theta0) + e), real)
                        - _reverse_kl_minus_2js(*(np.asarray(theta0) - e), real)) / (2 * h)
                       for e in (np.array([h, 0.0]), np.array([0.0, h]))], dtype=F64)
    rel = ((grad - fd).norm() / fd.norm()).item()
    print(f"\n[d] p_r = N({mr}, {sr}^2), theta0 = ({theta0[0]:.3g}, {theta0[1]:.3g}): non-saturating gradient "
          f"{[round(v, 8) for v in grad.tolist()]}, grad(KL(g||r) - 2 JS) {[round(v, 8) for v in fd.tolist()]}, "
          f"relative gap {rel:.1e}")
    assert rel < 1e-6


def test_the_non_saturating_objective_prefers_a_collapsed_generator():
    """p_r: two modes at +-3 (sd 0.5). A generator on one mode against the moment-matched Gaussian: the
    non-saturating loss's objective KL(p_g || p_r) - 2 JS prefers the collapsed one, maximum likelihood
    (KL(p_r || p_g)) the covering one."""
    log_r = torch.logaddexp(normal_logpdf(X, -3, 0.5), normal_logpdf(X, 3, 0.5)) - LOG2
    scores = {}
    for name, log_g in (("one mode", normal_logpdf(X, 3, 0.5)), ("covering", normal_logpdf(X, 0, math.sqrt(9.25)))):
        scores[name] = (kl_divergence(log_g, log_r, X).item() - 2 * js_divergence(log_r, log_g, X).item(),
                        kl_divergence(log_r, log_g, X).item())
    print("\n[d] KL(g||r) - 2 JS | KL(r||g): " + "; ".join(f"{k}: {a:.4f} | {b:.4f}" for k, (a, b) in scores.items()))
    assert scores["one mode"][0] < scores["covering"][0] - 1
    assert scores["covering"][1] < scores["one mode"][1] - 1
    assert abs(kl_divergence(normal_logpdf(X, 3, 0.5), log_r, X).item() - LOG2) < 1e-6  # one mode: KL = log 2


# --- e. the model and the fit -------------------------------------------------------------------------
def _ring():
    return torch.tensor(zoo.load_dataset("ring").data)


def _fit(data, **kw):
    model = kw.pop("model", None) or GAN(2, 2, (16, 16), generator_loss=kw.pop("generator_loss", "non_saturating"))
    options = dict(method="adversarial", num_steps=200, batch_size=64, lr=2e-3, progress_bar=False, seed=0,
                   num_samples=50)
    options.update(kw)
    return model, inference.fit(model, data, **options)


@pytest.mark.parametrize("kind", GENERATOR_LOSSES)
def test_fit_on_the_ring(kind):
    data = _ring()
    model, r = _fit(data, generator_loss=kind, num_steps=300)
    assert r.method == "adversarial" and r.guide is None and r.guide_name is None
    assert len(r.losses) == 300 and len(r.discriminator_losses) == 300
    assert np.isfinite(r.losses).all() and np.isfinite(r.discriminator_losses).all()
    assert r.samples["x"].shape == (1, 50, 2) and r.samples["x"].dtype == F64
    assert r.num_chains == 1 and r.num_draws == 50
    # the minimax loss is E log(1 - D) < 0, the non-saturating -E log D > 0
    assert all((v < 0) if kind == "minimax" else (v > 0) for v in r.losses)
    spread = r.samples["x"][0].std(0)
    print(f"\n[e] {kind}: last discriminator loss (mean of 50) {np.mean(r.discriminator_losses[-50:]):.3f}, "
          f"generator loss {np.mean(r.losses[-50:]):.3f}; draws' sd {spread.tolist()} (data {data.std(0).tolist()})")
    assert (spread > 0.5).all()  # the generator has moved off its initial near-constant output
    with pytest.raises(ValueError, match="no likelihood"):
        r.pointwise_log_likelihood()


def test_same_seed_same_fit_and_another_seed_another():
    data = _ring()
    _, a = _fit(data)
    _, b = _fit(data)
    _, c = _fit(data, seed=1)
    assert a.losses == b.losses and a.discriminator_losses == b.discriminator_losses
    assert torch.equal(a.samples["x"], b.samples["x"])
    assert a.losses != c.losses


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    data = _ring()
    model_full, full = _fit(data, d_steps=2)
    ck = tmp_path / "gan.pt"
    _fit(data, d_steps=2, num_steps=120, checkpoint=ck, checkpoint_every=50)
    state = inference.load_checkpoint(ck)
    assert state["step"] == 120 and len(state["discriminator_losses"]) == 120 and not list(tmp_path.glob("*.tmp"))
    model_resumed, resumed = _fit(data, d_steps=2, checkpoint=ck, checkpoint_every=50, resume=True)
    assert resumed.losses == full.losses and resumed.discriminator_losses == full.discriminator_losses
    assert torch.equal(resumed.samples["x"], full.samples["x"])
    for (k, v), (k2, v2) in zip(model_full.state_dict().items(), model_resumed.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    # resume without a checkpoint file yet starts afresh: the same as a plain run
    _, fresh = _fit(data, d_steps=2, checkpoint=tmp_path / "new.pt", resume=True)
    assert fresh.losses == full.losses


def test_the_model_and_its_protocol():
    model = zoo.create_model("gan", hidden=(8,))
    assert isinstance(model, GAN) and provides(model, "adversarial_parts") and model.supported_guides == ()
    assert {h for h in zoo.HOOKS if provides(model, h)} == {"adversarial_parts"}
    x = _ring()
    data = model.check_data(x)
    assert data.dtype == F64 and model.generator[0].weight.dtype == F64  # the model follows the data
    trace = pyro.poutine.trace(model.model).get_trace(data)
    assert trace.nodes["z"]["value"].shape == (400, 2) and trace.nodes["x"]["value"].shape == (400, 2)
    torch.testing.assert_close(trace.nodes["x"]["value"], model.generator(trace.nodes["z"]["value"]))
    parts = model.adversarial_parts()
    assert isinstance(parts, AdversarialParts) and parts.generator is model.generator
    loss_d, loss_g = parts.discriminator_loss(data[:10]), parts.generator_loss(7)
    assert loss_d.shape == () and loss_g.shape == () and loss_g.requires_grad
    assert model.sample(5).shape == (5, 2) and not model.sample(5).requires_grad
    d = model.discriminate(data[:9])
    assert d.shape == (9,) and ((d > 0) & (d < 1)).all()
    # reset_parameters: the same weights from a seed, others from another
    model.reset_parameters(data, seed=3)
    w = model.discriminator[0].weight.clone()
    model.reset_parameters(data, seed=4)
    assert not torch.equal(w, model.discriminator[0].weight)
    model.reset_parameters(data, seed=3)
    assert torch.equal(w, model.discriminator[0].weight)
    with pytest.raises(ValueError, match="no likelihood"):
        model.pointwise_log_likelihood({}, data)


def test_bad_inputs_are_refused_clearly(tmp_path):
    data = _ring()
    with pytest.raises(ValueError, match="unknown generator_loss 'wasserstein'; known: 'minimax', 'non_saturating'"):
        GAN(2, generator_loss="wasserstein")
    with pytest.raises(ValueError, match="n_features must be >= 1"):
        GAN(0)
    with pytest.raises(TypeError, match="generator must be a torch.nn.Module"):
        GAN(2, generator=lambda z: z)
    with pytest.raises(ValueError, match="data has 2 features; this GAN was built for n_features=3"):
        inference.fit(GAN(3), data, method="adversarial")
    with pytest.raises(ValueError, match="must be 2-D"):
        GAN(1).check_data(torch.randn(10))
    with pytest.raises(ValueError, match="contains NaN"):
        GAN(2).check_data(torch.full((3, 2), math.nan))
    with pytest.raises(ValueError, match="the generator maps noise"):
        inference.fit(GAN(3, noise_dim=2, generator=nn.Identity()), torch.randn(10, 3), method="adversarial")
    with pytest.raises(ValueError, match="d_steps must be a positive integer, got 0"):
        _fit(data, d_steps=0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        _fit(data, lr=-1.0)
    with pytest.raises(ValueError, match="betas must be two numbers"):
        _fit(data, betas=(0.5, 1.5))
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        _fit(data, resume=True)
    with pytest.raises(ValueError, match="GaussianMixtureModel has no generator and discriminator.*'svi', 'map' or "
                                         "'nuts'"):
        inference.fit(zoo.create_model("gmm"), data, method="adversarial")
    for method in ("svi", "map"):
        with pytest.raises(ValueError, match=f"GAN supports no guide, so method '{method}' does not apply.*"
                                             "method='adversarial'"):
            inference.fit(GAN(2), data, method=method)
    with pytest.raises(ValueError, match="NUTS has nothing to condition on; fit it with method='adversarial'"):
        inference.fit(GAN(2), data, method="nuts")
    with pytest.raises(ValueError, match="neither the generator nor the discriminator has trainable parameters"):
        inference.fit(GAN(1, 1, generator=Shift(), discriminator=Shift()), torch.randn(10, 1), method="adversarial")

    class NaNDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.w * x.sum(-1, keepdim=True) * math.nan

    with pytest.raises(FloatingPointError, match="non-finite at step 0"):
        inference.fit(GAN(2, discriminator=NaNDiscriminator()), data, method="adversarial", progress_bar=False)
