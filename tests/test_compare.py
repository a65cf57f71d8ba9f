"""inference.compare: guides against exact and sampled references, evidence, label switching."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import inference
import zoo
import zoo.conjugate  # noqa: F401  (registers the conjugate models)
from inference.compare import align_components, compare, energy_distance, importance_log_evidence

GAUSSIAN_GUIDES = ["normal", "mvn", "lowrank"]


def _blobs(n=40, k=2, seed=3):
    return torch.tensor(zoo.load_dataset("blobs", n_samples=n, n_components=k, random_state=seed).data)


@pytest.fixture(scope="module")
def normal_normal():
    data = _blobs()
    model = zoo.create_model("normal_normal")
    # Adam leaves the location wandering around the optimum by a few hundredths of a posterior sd at
    # the end of the decay; 64 vectorised draws per step cut the gradient noise 8-fold, and 4000
    # posterior draws keep the Monte Carlo error of the mean at 0.016 sd.
    cmp = compare(model, data, guides=["delta"] + GAUSSIAN_GUIDES, reference="exact", num_steps=800, lr=0.05,
                  lr_decay=0.99, num_samples=4000, num_particles=200, progress_bar=False, seed=0,
                  fit_kwargs={"num_particles": 64})
    return model, data, cmp


def test_gaussian_guides_recover_the_exact_posterior_mean(normal_normal):
    _, _, cmp = normal_normal
    table = cmp.table
    for g in GAUSSIAN_GUIDES:
        assert table.loc[g, "mean_error[mu]"] < 0.05, g  # in posterior standard deviations
        assert table.loc[g, "sd_error[mu]"] < 0.1, g
    assert table.loc["delta", "sd_error[mu]"] == pytest.approx(1.0)  # a point has no spread
    assert table.loc["delta", "rank"] == len(GAUSSIAN_GUIDES) + 1
    assert math.isnan(table.loc["delta", "log_evidence"])
    assert set(cmp.sites["guide"]) == {"delta", *GAUSSIAN_GUIDES}


def test_importance_log_evidence_matches_the_closed_form(normal_normal):
    model, data, cmp = normal_normal
    exact = float(model.log_evidence(data))
    assert cmp.table.loc["exact", "log_evidence"] == pytest.approx(exact)
    for g in GAUSSIAN_GUIDES:
        row = cmp.table.loc[g]
        assert abs(row["log_evidence"] - exact) < 4 * row["log_evidence_se"] + 0.02, g
        assert abs(row["elbo"] - exact) < 0.05  # KL(q || p) ~ 0 for a Gaussian guide on a Gaussian posterior


def test_importance_sampling_with_the_exact_posterior_has_zero_variance():
    # with q = p(mu | x) every weight equals p(x): log evidence exact, se 0, ESS = S
    data = _blobs(20)
    model = zoo.create_model("correlated_gaussian")
    mean, cov = model.exact_posterior(data)
    import pyro
    import pyro.distributions as dist

    def exact_guide(x):
        pyro.sample("mu", dist.MultivariateNormal(mean, covariance_matrix=cov))

    ev = importance_log_evidence(model, exact_guide, data, num_particles=20)
    assert ev["log_evidence"] == pytest.approx(float(model.log_evidence(data)), abs=1e-8)
    assert ev["log_evidence_se"] < 1e-8 and ev["ess"] == pytest.approx(20)
    assert ev["elbo"] == pytest.approx(ev["log_evidence"], abs=1e-8)


def test_mvn_is_ranked_ahead_of_normal_on_a_correlated_posterior():
    data = _blobs()
    cmp = compare(zoo.create_model("correlated_gaussian"), data, guides=["normal", "mvn"], reference="exact",
                  num_steps=400, lr=0.05, num_samples=1000, num_particles=50, progress_bar=False, seed=0)
    t = cmp.table
    assert t.loc["mvn", "rank"] < t.loc["normal", "rank"]
    assert t.loc["mvn", "energy[mu]"] < t.loc["normal", "energy[mu]"]
    assert t.loc["mvn", "sd_error[mu]"] < t.loc["normal", "sd_error[mu]"]
    # mean field underestimates both marginal spreads by about sqrt(1 - rho^2) ~ 0.31
    assert t.loc["normal", "sd_error[mu]"] > 0.5
    fig = cmp.plot(max_marginals=2)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].patches) == 2  # one bar per guide for the one site
    plt.close(fig)
    idatas = cmp.to_inference_data()
    assert set(idatas) == {"normal", "mvn", "exact"}
    assert idatas["mvn"].posterior["mu"].shape == (1, 1000, 2)


def test_energy_distance_separates_laws():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g, dtype=torch.float64)
    y = torch.randn(400, 2, generator=g, dtype=torch.float64)
    same, shifted = energy_distance(x, y), energy_distance(x, y + 1.0)
    assert 0 < same < 0.05 and shifted > 0.5
    assert energy_distance(x, x) == 0.0
    # one-dimensional closed form against a point mass: 2 E|X - c| - E|X - X'| with X ~ N(0, 1), c = 0
    big = torch.randn(4000, 1, generator=g, dtype=torch.float64)
    assert energy_distance(big, torch.zeros(1, 1, dtype=torch.float64)) == pytest.approx(
        2 * math.sqrt(2 / math.pi) - 2 / math.sqrt(math.pi), abs=0.03)
    with pytest.raises(ValueError, match=r"\(n, d\) and \(m, d\)"):
        energy_distance(x, y[:, :1])


def _gmm_result(K=3, chains=2, draws=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = zoo.create_model("gmm", n_components=K, covariance_type="diag")
    data = _blobs(30, K)
    base_locs = torch.tensor([[-4.0, 0.0], [0.0, 3.0], [5.0, -2.0]], dtype=torch.float64)[:K]
    samples = {
        "weights": torch.softmax(torch.tensor([0.0, 0.5, 1.0][:K], dtype=torch.float64) + 0.05 * torch.randn(chains, draws, K, generator=g, dtype=torch.float64), -1),
        "locs": base_locs + 0.1 * torch.randn(chains, draws, K, 2, generator=g, dtype=torch.float64),
        "scales": torch.tensor([0.5, 1.0, 2.0][:K], dtype=torch.float64)[:, None].expand(K, 2)
        + 0.01 * torch.rand(chains, draws, K, 2, generator=g, dtype=torch.float64),
    }
    return inference.FitResult(model=model, data=data, method="nuts", guide_name=None, guide=None, losses=[],
                               samples=samples)


def test_alignment_undoes_a_permutation_of_the_components():
    ref = _gmm_result()
    perms = [torch.tensor([2, 0, 1]), torch.tensor([1, 2, 0])]
    permuted = {k: v.clone() for k, v in ref.samples.items()}
    for c, p in enumerate(perms):
        for name in permuted:
            permuted[name][c] = ref.samples[name][c][:, p]
    shuffled = inference.FitResult(model=ref.model, data=ref.data, method="svi", guide_name="normal", guide=None,
                                   losses=[], samples=permuted)
    aligned, found = align_components(shuffled, ref)
    for name in ref.samples:
        torch.testing.assert_close(aligned.samples[name], ref.samples[name])
    for c, p in enumerate(perms):  # component k of the aligned result is component found[c, k] of the input
        assert list(p[found[c]]) == [0, 1, 2]
    assert torch.equal(shuffled.samples["locs"], permuted["locs"])  # the input is left untouched


def test_compare_accepts_reference_samples_and_aligns_the_guides():
    ref = _gmm_result(K=2, chains=1, draws=50)
    km = zoo.KMeans(2, random_state=0).fit(ref.data.numpy())
    centres = torch.tensor(km.cluster_centers_)
    aligned_locs, perms = [], []
    for order in ([0, 1], [1, 0]):  # the same MAP fit against a reference with the labels swapped
        samples = {k: v.clone() for k, v in ref.samples.items()}
        samples["locs"] = centres[order] + 0.05 * torch.randn(1, 50, 2, 2, dtype=torch.float64)
        cmp = compare(ref.model, ref.data, guides=["delta"], reference=samples, num_steps=100, num_samples=2,
                      progress_bar=False)
        assert cmp.reference_label == "reference"
        aligned_locs.append(cmp.results["delta"].samples["locs"][0, 0])
        perms.append(cmp.permutations["delta"][0].tolist())
    # the fit is the same (same seed); its labels follow the reference's
    assert sorted(perms) == [[0, 1], [1, 0]]
    torch.testing.assert_close(aligned_locs[0], aligned_locs[1].flip(0))


def test_invalid_arguments_are_refused():
    data = _blobs(10)
    model = zoo.create_model("normal_normal")
    with pytest.raises(ValueError, match="unknown guide 'nope'.*delta"):
        compare(model, data, guides=["nope"], reference="exact")
    with pytest.raises(ValueError, match="unknown reference 'mcmc'.*nuts"):
        compare(model, data, guides=["normal"], reference="mcmc")
    with pytest.raises(ValueError, match="guides is empty"):
        compare(model, data, guides=[], reference="exact")
    with pytest.raises(ValueError, match="duplicates"):
        compare(model, data, guides=["normal", "normal"], reference="exact")
    with pytest.raises(ValueError, match="exact_posterior"):
        compare(zoo.create_model("gmm"), data, guides=["normal"], reference="exact")
    with pytest.raises(ValueError, match="not latent sites"):
        compare(model, data, guides=["normal"], reference={"theta": torch.zeros(1, 5, 2)})
    with pytest.raises(ValueError, match="num_samples must be"):
        compare(model, data, guides=["normal"], reference="exact", num_samples=0)
    with pytest.raises(ValueError, match="NaN"):
        compare(model, data.masked_fill(torch.eye(10, 2, dtype=torch.bool), float("nan")), reference="exact")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
def test_compare_on_cuda():
    data = _blobs(20).cuda()
    cmp = compare(zoo.create_model("normal_normal"), data, guides=["normal"], reference="exact", num_steps=50,
                  num_samples=50, num_particles=10, progress_bar=False)
    assert cmp.results["normal"].samples["mu"].is_cuda
    assert np.isfinite(cmp.table.loc["normal", "log_evidence"])
