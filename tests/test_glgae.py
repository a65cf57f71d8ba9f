"""GLGAE and the generative-autoencoder family of the mixture notes."""
import math

import arviz as az
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pyro.infer import TraceEnum_ELBO
import pyro.poutine as poutine

import inference
import zoo
from zoo import objectives as obj
from zoo.glgae import GLGAE

f64 = dict(dtype=torch.float64)


def _model(K, D, E, A, B, **kw):
    return GLGAE.from_parameters(torch.as_tensor(A, **f64).reshape(K, D), torch.as_tensor(B, **f64).reshape(K, E), **kw)


# --- the notes' worked example (section 2b) ----------------------------------------
def test_worked_example_absorbing_exp_norm():
    """K=2, E=1, w=(0, -1), absorbing weight exp(v^2): argmax_v u_1 = 0.13529, u_1 = 0.4314."""
    w = torch.tensor([[0.0], [-1.0]], **f64)
    v, u1 = obj.argmax_q(w, 0, "exp_norm", z0=[0.5])
    v_star = v.item()
    assert abs(v_star - 0.13529) < 1e-4
    assert abs(u1 - 0.4314) < 1e-4
    # the notes' stationarity condition 2 v exp(2 v^2 + 2 v + 1) = 1, solved by bisection
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 2 * mid * math.exp(2 * mid**2 + 2 * mid + 1) < 1 else (lo, mid)
    assert abs(lo - 0.13529) < 1e-5 and abs(v_star - lo) < 1e-4


# --- objectives ----------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 5), D=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_section1_objectives_orderings(K, D, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, D, generator=g, **f64)
    A = torch.randn(K, D, generator=g, **f64)
    w = torch.rand(K, generator=g, **f64) + 0.05
    w = w / w.sum()
    assert torch.all(obj.EOL(x, A, w) <= obj.LEOP(x, A, w) + 1e-12)  # Jensen
    torch.testing.assert_close(obj.EOP(x, A, w), obj.LEOP(x, A, w).exp())
    # LOE decodes the expected prototype: with one-hot weights it equals EOL and LEOP
    onehot = torch.zeros(K, **f64)
    onehot[0] = 1.0
    torch.testing.assert_close(obj.LOE(x, A, onehot), obj.EOL(x, A, onehot))


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 5), E=st.integers(1, 3), b=st.sampled_from([0.0, 0.5, 3.0]), seed=st.integers(0, 10_000))
def test_eol_bound_and_absorbing_mass(K, E, b, seed):
    g = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(9, E, generator=g, **f64)
    x = torch.randn(9, 2, generator=g, **f64)
    A = torch.randn(K, 2, generator=g, **f64)
    B = torch.randn(K, E, generator=g, **f64)
    kind = "constant" if b > 0 else "none"
    q = obj.log_q_given_z(z, B, kind, b).exp()
    full = obj.log_q_given_z(z, B, kind, b, with_absorbing=True).exp()
    torch.testing.assert_close(full.sum(-1), torch.ones(9, **f64))
    if b > 0:
        assert torch.all(q.sum(-1) < 1)
    else:
        torch.testing.assert_close(q.sum(-1), torch.ones(9, **f64))
        # with q a distribution, sum_k q log p <= log sum_k q p (Jensen)
        assert torch.all(obj.L2_eol_bound(z, x, A, B, kind, b) <= obj.L2(z, x, A, B, kind, b) + 1e-12)


def test_pyro_log_joint_is_L2_plus_constant():
    torch.manual_seed(0)
    x = torch.randn(12, 3, **f64)
    x[0] = 6.0  # far from the other data
    for absorbing, b in [("constant", 0.7), ("exp_norm", 0.0), ("none", 0.0)]:
        m = zoo.create_model("glgae", K=4, D=3, E=2, absorbing=absorbing, b=b)
        m.reset_parameters(x, seed=1)
        z = torch.randn(12, 2, **f64)
        z[1] = torch.tensor([16.0, -5.0], **f64)  # far from every anchor, still inside the absorbing region
        cond = poutine.condition(m.model, data={"z": z})
        log_joint = -TraceEnum_ELBO(max_plate_nesting=1).loss(cond, lambda data: None, x)
        # p(x|k) = N(A_k, I/2) = exp(-||x - A_k||^2) / pi^(D/2): the constant is -(N D / 2) log pi
        expected = m.L2(z, x).sum().item() - 12 * 3 / 2 * math.log(math.pi)
        assert abs(log_joint - expected) < 1e-9 * abs(expected)


def test_closed_form_L2_survives_where_enumeration_underflows():
    """Pyro contracts each enumerated factor after shifting it by its own maximum over k. When
    q(k|z) and p(x|k) each put their mass on a different component, 700 nats apart, the product
    underflows in the enumerated log joint; the closed-form L2 (used for encoding, coordinate
    training and the pointwise log-likelihood) stays finite."""
    x = torch.zeros(1, 1, **f64)
    m = _model(2, 1, 1, [0.0, 40.0], [0.0, 5.0], absorbing="none")
    z = torch.tensor([[120.0]], **f64)  # q puts its mass on k=2, p(x|k) on k=1
    value = m.L2(z, x).item()
    assert math.isfinite(value) and value < -1000
    assert math.isfinite(m.pointwise_log_likelihood({"z": z}, x).item())


# --- push-away and the absorbing component ----------------------------------------------
def _push_model(absorbing="none", b=0.0, logit_penalty=0.0):
    # x sits on prototype 1, whose anchor (0) is the extreme one in the +z direction. The anchors
    # are close (0 and -0.05) so that the outward gradient decays slowly, e^(-0.1 z), and the
    # drift is visible within a few thousand steps (with anchors 1 apart it decays as e^(-2z)).
    return _model(2, 1, 1, [0.0, 2.0], [0.0, -0.05], absorbing=absorbing, b=b, logit_penalty=logit_penalty)


def _norm_after(m, steps):
    x = torch.tensor([[0.0]], **f64)
    z = m.encode(x, optimizer="adam", lr=0.05, max_iter=steps, tol=0.0, z0=torch.tensor([[0.0]], **f64))
    return z.norm().item()


def test_push_away_without_absorbing_component():
    m = _push_model()
    norms = [_norm_after(m, n) for n in (200, 1000, 4000)]
    assert norms[0] < norms[1] < norms[2]
    assert norms[2] > 40  # 800 times the anchors' spread, and still growing
    x = torch.tensor([[0.0]], **f64)
    far = m.encode(x, z0=torch.tensor([[0.0]], **f64), max_iter=2000, tol=0.0)  # line-searched L-BFGS
    assert far.norm() > 100
    x = torch.tensor([[0.0]], **f64)
    # L2 keeps rising towards its supremum log p(x|k=1) = 0, attained only at infinity
    values = [m.L2(torch.tensor([[r]], **f64), x).item() for r in (1.0, 5.0, 25.0)]
    assert values[0] < values[1] < values[2] < 0


def test_additive_l2_penalty_does_not_fix_push_away():
    penalised, plain = _push_model(logit_penalty=1.0), _push_model()
    z = torch.linspace(-5, 5, 11, **f64)[:, None]
    # the penalty cancels in the softmax: q(k|z) is unchanged, and so is the ascent
    cond = poutine.condition(penalised.model, data={"z": z})
    tr = poutine.trace(cond).get_trace(torch.zeros(11, 1, **f64))
    torch.testing.assert_close(tr.nodes["k"]["fn"].probs, plain.log_q(z).exp())
    assert _norm_after(penalised, 4000) > 40


@pytest.mark.parametrize("absorbing,b", [("constant", 0.5), ("constant", 3.0), ("exp_norm", 0.0)])
def test_absorbing_component_bounds_the_map_code(absorbing, b):
    m = _push_model(absorbing, b)
    x = torch.tensor([[0.0]], **f64)
    z, info = m.encode(x, z0=torch.tensor([[3.0]], **f64), return_trace=True)
    assert info["grad_norm"].max() < 1e-5
    assert z.norm() < 1.0
    assert abs(_norm_after(m, 4000) - z.norm().item()) < 1e-3  # Adam settles at the same bounded point


# --- encoding ------------------------------------------------------------------------------
def test_gradient_encoding_reaches_a_stationary_point():
    torch.manual_seed(1)
    x = torch.randn(50, 3, **f64)
    m = zoo.create_model("glgae", K=5, D=3, E=2, b=0.5)
    m.reset_parameters(x, seed=0)
    z, info = m.encode(x, return_trace=True)
    assert info["grad_norm"].max() < 1e-5
    L = info["L2"]
    assert torch.all(L.diff() >= -1e-12)  # line-searched ascent never lowers L2


def test_fixed_point_update_measured():
    """The notes' fixed-point update is not the stationarity condition of L2 (it ignores the
    derivative of q's normaliser). Measured over 120 random configurations: L2 falls at some
    step in most of them, and the limit's gradient is rarely near zero; z stays in the convex
    hull of the anchors."""
    g = torch.Generator().manual_seed(0)
    fell, stationary = 0, 0
    n = 120
    for i in range(n):
        K, D, E = 2 + i % 4, 1 + i % 3, 1 + i % 2
        b = [0.1, 1.0, 5.0][i % 3]
        m = _model(K, D, E, torch.randn(K, D, generator=g, **f64), 1.5 * torch.randn(K, E, generator=g, **f64), b=b)
        x = torch.randn(1, D, generator=g, **f64)
        z, info = m.encode(x, method="fixed_point", max_iter=300, tol=1e-13, return_trace=True)
        fell += bool((info["L2"].diff() < -1e-12).any())
        stationary += bool(info["grad_norm"].item() < 1e-4)
        lo, hi = m.B.min(0).values, m.B.max(0).values
        assert torch.all(z >= lo - 1e-12) and torch.all(z <= hi + 1e-12)  # convex hull (bounding box)
        zg, ginfo = m.encode(x, z0=z, return_trace=True)  # the gradient method from the same point
        assert ginfo["grad_norm"].item() < 1e-5 and m.L2(zg, x).item() >= m.L2(z, x).item() - 1e-12
    assert fell > n // 2, f"L2 fell in only {fell}/{n} runs"
    assert stationary < n // 3, f"{stationary}/{n} limits were stationary"


# --- the flat-prior posterior: proper with an absorbing component ---------------------------
def _one_datum(b):
    m = _model(2, 1, 1, [0.0, 3.0], [0.0, -1.0], absorbing="constant" if b > 0 else "none", b=b)
    return m.frozen(), torch.tensor([[0.2]], **f64)


def test_posterior_is_proper_with_absorbing_component():
    m, x = _one_datum(1.0)
    r = inference.fit(m, x, method="nuts", num_samples=1500, num_warmup=500, num_chains=2,
                      nuts_init={"z": torch.tensor([[0.1]], **f64)}, progress_bar=False, seed=0)
    s = az.summary(r.to_inference_data(assignments=False), round_to="none")
    assert np.isfinite(s["sd"]).all() and (s["sd"] < 5).all()
    assert (s["r_hat"] < 1.01).all(), s["r_hat"]


def test_posterior_is_improper_without_absorbing_component():
    m, x = _one_datum(0.0)
    r = inference.fit(m, x, method="nuts", num_samples=150, num_warmup=50, num_chains=1, max_tree_depth=6,
                      nuts_init={"z": torch.tensor([[0.1]], **f64)}, progress_bar=False, seed=0)
    z = r.samples["z"][0, :, 0, 0].abs()
    assert z[-50:].mean() > z[:50].mean()  # drifting outwards
    assert z.max() > 100  # far beyond the anchors at 0 and -1


# --- training ------------------------------------------------------------------------------------
def test_coordinate_training_on_ring():
    ds = zoo.load_dataset("ring", n_samples=240, random_state=0)
    X = torch.tensor(ds.data)
    m = zoo.create_model("glgae", K=8, D=2, E=2, b=1.0)
    r = inference.fit(m, X, method="coordinate", num_steps=15, progress_bar=False, seed=0)
    objective = -np.array(r.losses)  # E_data[max_z L2] per epoch
    assert np.all(np.diff(objective) >= -1e-6), np.diff(objective).min()
    A = m.A.detach().numpy()
    d = np.linalg.norm(ds.truth["locs"][:, None] - A[None], axis=-1)
    assert d.min(1).max() < 0.3  # every ring centre has a prototype on it
    assert sorted(d.argmin(0)) == list(range(8))


def test_coordinate_training_on_digits():
    X = torch.tensor(zoo.load_dataset("digits").data[:300] / 16.0)
    m = zoo.create_model("glgae", K=10, D=64, E=2, b=1.0)
    r = inference.fit(m, X, method="coordinate", num_steps=4, progress_bar=False, seed=0)
    objective = -np.array(r.losses)
    assert np.all(np.diff(objective) >= -1e-6), np.diff(objective)


def test_svi_map_and_bayesian_training_report_per_step():
    X = torch.tensor(zoo.load_dataset("ring", n_samples=120, random_state=1).data)
    for method, guide in [("map", "delta"), ("svi", "normal")]:
        m = zoo.create_model("glgae", K=8, D=2, E=2, b=1.0)
        r = inference.fit(m, X, method=method, guide=guide, num_steps=150, lr=0.05, num_samples=10,
                          progress_bar=False)
        assert np.mean(r.losses[-10:]) < np.mean(r.losses[:10])
        assert r.samples["z"].shape[-2:] == (120, 2)


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(b=-1.0), "b must be a finite number >= 0"),
    (dict(K=0), "K must be >= 1"),
    (dict(E=0), "E must be >= 1"),
    (dict(absorbing="sink"), "unknown absorbing 'sink'"),
    (dict(scale=0.0), "scale must be positive"),
    (dict(learn_b=True, b=0.0), "learn_b needs"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.create_model("glgae", **kwargs)


def test_bad_data():
    m = zoo.create_model("glgae", K=3, D=2, E=1)
    with pytest.raises(ValueError, match="3 features but the model was built with D=2"):
        m.encode(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="contains NaN"):
        inference.fit(m, np.array([[0.0, np.nan], [1, 2], [3, 4]]), method="map")
    with pytest.raises(ValueError, match="unknown encoding method 'magic'"):
        m.encode(np.zeros((4, 2)), method="magic")


# --- Bayesian encoding: guides against the NUTS reference ----------------------------------------
def test_bayesian_encoding_guides_match_nuts():
    m = _model(3, 2, 1, [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], [0.0, 1.0, -1.0], b=1.0).frozen()
    x = torch.tensor([[0.1, 0.1], [1.8, 0.2], [0.5, 1.5]], **f64)
    ref = inference.fit(m, x, method="nuts", num_samples=1000, num_warmup=500, num_chains=2, progress_bar=False)
    mean, sd = ref.posterior_mean()["z"], ref.posterior_std()["z"]
    assert torch.isfinite(sd).all() and (sd < 2).all()
    A0, B0 = m.A.detach().clone(), m.B.detach().clone()
    for guide in ["normal", "mvn", "flow"]:
        r = inference.fit(m, x, method="svi", guide=guide, num_steps=1500, lr=0.02, num_samples=1000,
                          progress_bar=False)
        err = ((r.posterior_mean()["z"] - mean).abs() / sd).max().item()
        assert err < 0.3, f"{guide}: mean error {err:.2f} posterior sds"
        assert torch.equal(A0, m.A) and torch.equal(B0, m.B)  # a frozen model keeps its parameters


def test_learned_b_is_reset_between_fits():
    X = torch.tensor(zoo.load_dataset("ring", n_samples=60, random_state=2).data)
    m = zoo.create_model("glgae", K=4, D=2, E=2, b=1.0, learn_b=True)
    first = inference.fit(m, X, method="map", num_steps=30, progress_bar=False, seed=0)
    second = inference.fit(m, X, method="map", num_steps=30, progress_bar=False, seed=0)
    assert first.losses == second.losses


def test_frozen_and_em_misuse_are_refused():
    X = torch.tensor(zoo.load_dataset("ring", n_samples=40, random_state=2).data)
    m = zoo.create_model("glgae", K=4, D=2, E=2)
    with pytest.raises(ValueError, match="this model is frozen"):
        inference.fit(m.frozen(), X, method="coordinate", num_steps=2, progress_bar=False)
    with pytest.raises(ValueError, match="learnable module parameters"):
        inference.fit(m, X, method="em", progress_bar=False)


def test_generative_view_emission_weights_sample_and_density():
    """z uniform on a box, k ~ q(k|z) with the absorbing category: the emitted data are the mixture
    sum_k w_k N(A_k, s^2 I). Checked against the generative process itself, simulated by rejection."""
    m = _model(3, 2, 2, [0.0, 0.0, 3.0, 0.0, 0.0, 3.0], [0.0, 0.0, 1.5, 0.0, -1.0, 1.0], b=2.0, scale=0.3)
    w = m.emission_weights(3.0)
    assert abs(w.sum().item() - 1) < 1e-12 and (w > 0).all()
    g = torch.Generator().manual_seed(0)
    z = 6 * torch.rand(400_000, 2, generator=g, **f64) - 3
    k = torch.multinomial(m.log_q(z, with_absorbing=True).exp(), 1, generator=g)[:, 0]
    emitted = k[k < 3]  # the absorbing draws emit nothing
    freq = torch.bincount(emitted, minlength=3).double() / len(emitted)
    assert (freq - w).abs().max() < 0.005, (freq, w)
    # the grid and Monte Carlo integrals agree (E > 2 uses Monte Carlo)
    assert (m.emission_weights(3.0, n_grid=401) - w).abs().max() < 1e-4
    x = m.sample(20_000, 3.0, seed=1)
    assert (x.mean(0) - w @ m.A.detach()).abs().max() < 0.03
    # score_samples is a normalised density: its integral over a grid covering the prototypes is 1
    u = torch.linspace(-3, 6, 361, **f64)
    pts = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    mass = m.score_samples(pts, 3.0).exp().sum().item() * (u[1] - u[0]).item() ** 2
    assert abs(mass - 1) < 1e-6
    with pytest.raises(ValueError, match="radius"):
        m.emission_weights()  # the flat prior has no draws
