"""``compare`` on every registered model and covariance type with every guide that applies, small sizes:
no crash, finite distances, and the aligned results convert to ArviZ. Scalar latent sites (the ``gmm``'s
shared ``scale`` under ``covariance_type="tied_spherical"``) go through compare, the views and
InferenceData like any other.

The reference is cheap: the exact posterior where the model has one, else one of the guides' own fits
(a FitResult; draws around the point for the autoencoders, whose only guide is a point mass); one case
runs a tiny two-chain NUTS reference on the model with a scalar site.
"""
import functools
import math
import warnings

import matplotlib.pyplot as plt
import pytest
import torch

import guides
import inference
import zoo
import zoo.conjugate  # noqa: F401  (registers the conjugate models)
from inference import views

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n, d=2):
    return torch.tensor(zoo.load_dataset("blobs", n_samples=n, n_components=2, n_features=d, random_state=0).data)


def _binary(n=6, d=4):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(0)) > 0.5).double()


# label -> (registered name, factory options, data); every covariance type of the two mixtures (and both
# weight priors of the conjugate one: its weight site is "sticks" under the Dirichlet process, "weights" else)
CASES = {
    "gmm/tied_spherical": ("gmm", dict(n_components=2, covariance_type="tied_spherical"), lambda: _blobs(16)),
    "gmm/diag": ("gmm", dict(n_components=2, covariance_type="diag"), lambda: _blobs(16)),
    "gmm/full": ("gmm", dict(n_components=2, covariance_type="full"), lambda: _blobs(16)),
    "bayesian_gmm/full": ("bayesian_gmm", dict(n_components=2, covariance_type="full"), lambda: _blobs(16)),
    "bayesian_gmm/diag": ("bayesian_gmm", dict(n_components=2, covariance_type="diag",
                                               weight_concentration_prior_type="dirichlet_distribution"),
                          lambda: _blobs(16)),
    "normal_normal": ("normal_normal", {}, lambda: _blobs(10)),
    "correlated_gaussian": ("correlated_gaussian", {}, lambda: _blobs(10)),
    "glgae": ("glgae", dict(K=2, D=2, E=2), lambda: _blobs(5)),
    "sparse_coding": ("sparse_coding", dict(n_components=3, n_features=2), lambda: _blobs(4)),
    "vae": ("vae", dict(n_features=4, latent_dim=2, hidden=(8,)), _binary),
    "autoencoder": ("autoencoder", dict(n_features=4, code_dim=2, hidden=(8,)), _binary),
    "stacked_autoencoder": ("stacked_autoencoder", dict(n_features=4, layer_sizes=(4, 2)), _binary),
}
COVARIANCE_TYPES = {"gmm": {"tied_spherical", "diag", "full"}, "bayesian_gmm": {"full", "diag"}}
SMALL = dict(num_steps=30, num_samples=10, num_particles=2, max_distance_draws=50, progress_bar=False, seed=0)


def _model(label):
    name, kwargs, _ = CASES[label]
    return zoo.create_model(name, **kwargs)


def _guides(label):
    return guides.guides_for(_model(label))


MATRIX = [(label, g) for label in CASES for g in _guides(label)]


@functools.lru_cache(maxsize=None)
def _case(label):
    """(data, reference) of a case, made once."""
    model, data = _model(label), CASES[label][2]()
    if zoo.provides(model, "exact_posterior"):
        return data, "exact"
    first = "custom" if "custom" in _guides(label) and "normal" not in _guides(label) else "normal"
    ref = inference.fit(model, data, method="svi", guide=first, num_steps=30, num_samples=10, progress_bar=False)
    if ref.num_draws < 2:  # a point-mass guide: draws around its point stand in for a posterior
        g = torch.Generator().manual_seed(0)
        return data, {k: v + 0.1 * torch.randn((1, 10) + v.shape[2:], generator=g, dtype=v.dtype)
                      for k, v in ref.samples.items()}
    return data, ref


def test_the_matrix_covers_every_model_covariance_type_and_guide():
    covered = {CASES[label][0] for label in CASES}
    guideless = {m for m in zoo.list_models() if not guides.guides_for(zoo.create_model(m))}
    assert covered | guideless == set(zoo.list_models())
    for name, types in COVARIANCE_TYPES.items():
        assert {CASES[label][1].get("covariance_type") for label in CASES if CASES[label][0] == name} == types
    assert {g for _, g in MATRIX} == set(guides.list_guides())


@pytest.mark.parametrize("label,guide", MATRIX, ids=[f"{label}-{g}" for label, g in MATRIX])
def test_compare_runs_on_every_model_covariance_type_and_guide(label, guide):
    data, reference = _case(label)
    # laplace needs the MAP optimum (a positive-definite Hessian): MAP's default stopping rule ends it there
    steps = 1000 if guide == "laplace" else SMALL["num_steps"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = inference.compare(_model(label), data, guides=[guide], reference=reference,
                                **{**SMALL, "num_steps": steps})
    row = cmp.table.loc[guide]
    assert row["rank"] == 1 and math.isfinite(row["distance"]) and math.isfinite(row["final_loss"])
    sites = cmp.sites[cmp.sites["guide"] == guide]
    assert set(sites["site"]) == set(cmp.reference.samples)
    assert sites[["mean_error", "energy"]].notna().all().all()
    for idata in cmp.to_inference_data().values():
        assert set(cmp.reference.samples) <= set(idata.posterior.data_vars)
    assert "Comparison(" in repr(cmp) and len(repr(cmp)) < 300


def test_guideless_models_are_refused_by_compare_with_a_clear_error():
    for name in zoo.list_models():
        model = zoo.create_model(name)
        if guides.guides_for(model):
            continue
        with pytest.raises(ValueError, match="do not apply to .*supports no guide"):
            inference.compare(model, torch.randn(20, 2), guides=["normal"], reference={"x": torch.zeros(1, 2)},
                              **SMALL)


def test_scalar_site_through_a_nuts_reference_the_views_and_inference_data():
    # the gmm with covariance_type="tied_spherical" has the scalar site "scale" (shape ())
    model, data = _model("gmm/tied_spherical"), _blobs(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = inference.fit(model, data, method="nuts", num_samples=10, num_warmup=10, num_chains=2,
                             jit_compile=False, nuts_init="prior", max_tree_depth=4, progress_bar=False)
        assert nuts.samples["scale"].shape == (2, 10)
        cmp = inference.compare(_model("gmm/tied_spherical"), data, guides=["delta", "normal"], reference=nuts,
                                **SMALL)
    assert {"energy[scale]", "mean_error[scale]"} <= set(cmp.table.columns)
    assert math.isfinite(cmp.table.loc["normal", "energy[scale]"])
    plt.close(cmp.plot(max_marginals=8))  # the scalar site among the marginals
    svi = cmp.results["normal"]
    idata = svi.to_inference_data(posterior_predictive=True, num_predictive_draws=2)
    assert idata.posterior["scale"].shape == (1, 10)
    for fig in (views.plot_trace(nuts, var_names=["scale", "weights"]), views.plot_posterior(svi, var_names="scale"),
                views.plot_forest({"nuts": nuts, "svi": svi}, var_names=["scale"]),
                views.plot_ppc(svi, num_pp_samples=2)):
        plt.close(fig)
    table = views.loo_compare({"nuts": nuts, "svi": svi})
    assert set(table.index) == {"nuts", "svi"}
    assert "scale" in nuts.summary().index
