"""inference.views: ArviZ figures over FitResult, posterior predictive draws, LOO across K."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import inference
import zoo
import zoo.conjugate  # noqa: F401  (registers the conjugate models)
from inference import views



@pytest.fixture(scope="module")
def exact_fit():
    """Two chains of exact posterior draws of the correlated Gaussian model, as a FitResult."""
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=30, n_components=2, random_state=1).data)
    model = zoo.create_model("correlated_gaussian")
    samples = {"mu": model.exact_samples(data, 200, num_chains=2, seed=0)}
    return inference.FitResult(model=model, data=data, method="exact", guide_name=None, guide=None, losses=[],
                               samples=samples, seed=0)


def test_trace_and_rank_plots_have_one_row_per_site(exact_fit):
    fig = views.plot_trace(exact_fit)
    assert len(fig.axes) == 2  # (density, draws) for the one site
    assert len(fig.axes[1].get_lines()) == 4  # 2 chains x 2 elements (compact)
    plt.close(fig)
    fig = views.plot_trace(exact_fit, kind="rank_bars")
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown kind 'bars'.*rank_bars"):
        views.plot_trace(exact_fit, kind="bars")
    with pytest.raises(ValueError, match=r"unknown var_names \['nope'\].*mu"):
        views.plot_trace(exact_fit, var_names=["nope"])


def test_posterior_plot_has_one_axis_per_element(exact_fit):
    fig = views.plot_posterior(exact_fit, var_names="mu")
    assert len(fig.axes) == 2
    plt.close(fig)


def test_forest_plot_aligns_and_shows_every_fit(exact_fit):
    other = inference.FitResult(model=exact_fit.model, data=exact_fit.data, method="svi", guide_name="normal",
                                guide=None, losses=[], samples={"mu": exact_fit.samples["mu"][:1] + 0.01})
    fig = views.plot_forest({"exact": exact_fit, "shifted": other})
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 2  # one row per element of mu
    assert len(ax.get_lines()) == 4  # one interval per element and fit
    plt.close(fig)
    with pytest.raises(ValueError, match="non-empty dict"):
        views.plot_forest({})


def test_posterior_predictive_has_the_observed_shape_and_the_model_spread(exact_fit):
    pp = exact_fit.posterior_predictive(num_draws=50, seed=0)
    assert set(pp) == {"obs"}
    assert pp["obs"].shape == (2, 50, *exact_fit.data.shape)
    # replicated data given mu are N(mu, Sigma): their residuals have the noise covariance
    resid = (pp["obs"] - exact_fit.samples["mu"][:, :50, None, :]).reshape(-1, 2)
    torch.testing.assert_close(torch.cov(resid.T), exact_fit.model.noise_covariance(2, resid), atol=0.06, rtol=0)
    idata = exact_fit.to_inference_data(posterior_predictive=True, num_predictive_draws=20)
    assert idata.posterior_predictive["obs"].shape == (2, 20, *exact_fit.data.shape)
    assert idata.posterior_predictive["obs"].dims == ("chain", "draw", "obs_id", "feature")
    fig = views.plot_ppc(exact_fit, num_pp_samples=20)
    assert len(fig.axes) == 2  # one per feature
    assert len(fig.axes[0].get_lines()) >= 20  # the replicated densities, the observed and the mean
    plt.close(fig)
    with pytest.raises(ValueError, match="feature must be an integer in"):
        views.plot_ppc(exact_fit, feature=5)


def test_posterior_predictive_of_a_mixture_draws_new_components():
    model = zoo.create_model("gmm", n_components=2, covariance_type="tied_spherical")
    data = torch.tensor([[-5.0, 0.0]] * 5 + [[5.0, 0.0]] * 5, dtype=torch.float64)
    samples = {"weights": torch.tensor([0.5, 0.5], dtype=torch.float64).expand(1, 40, 2),
               "locs": torch.tensor([[-5.0, 0.0], [5.0, 0.0]], dtype=torch.float64).expand(1, 40, 2, 2),
               "scale": torch.full((1, 40), 0.1, dtype=torch.float64)}
    r = inference.FitResult(model=model, data=data, method="nuts", guide_name=None, guide=None, losses=[],
                            samples=samples)
    x = r.posterior_predictive()["obs"]
    assert x.shape == (1, 40, 10, 2)
    left = (x[..., 0] < 0).double().mean()
    assert 0.4 < float(left) < 0.6  # each replicated datum picks a component by the weights
    assert float((x[..., 0].abs() - 5).abs().max()) < 1.0


@pytest.fixture(scope="module")
def fits_by_K():
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=90, n_components=3, random_state=0).data)
    return {f"K={K}": inference.fit(zoo.create_model("gmm", n_components=K, covariance_type="tied_spherical"), data, method="svi",
                                    guide="normal", num_steps=150, lr=0.05, restarts=3, num_samples=100,
                                    progress_bar=False, seed=0) for K in (1, 2, 3)}


def test_loo_picks_three_components_on_three_clusters(fits_by_K):
    table = views.loo_compare(fits_by_K)
    assert table.index[0] == "K=3"
    assert {"elpd_loo", "p_loo", "elpd_diff", "weight", "dse"} <= set(table.columns)
    # K=3 wins by many standard errors
    assert table.loc["K=2", "elpd_diff"] > 4 * table.loc["K=2", "dse"]
    fig = views.plot_loo_compare(table)
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="at least two"):
        views.loo_compare({"K=3": fits_by_K["K=3"]})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
def test_posterior_predictive_on_cuda(exact_fit):
    data = exact_fit.data.cuda()
    model = zoo.create_model("correlated_gaussian").to("cuda")
    r = inference.FitResult(model=model, data=data, method="exact", guide_name=None, guide=None, losses=[],
                            samples={"mu": exact_fit.samples["mu"].cuda()})
    assert r.posterior_predictive(num_draws=3)["obs"].is_cuda
    assert np.isfinite(r.to_inference_data(posterior_predictive=True, num_predictive_draws=3)
                       .posterior_predictive["obs"].values).all()
