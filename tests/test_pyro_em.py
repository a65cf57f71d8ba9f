"""EM for any Pyro model with an enumerated site (method="em"), against the closed-form path."""
import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

import inference
import zoo


def _standardised(name, **kw):
    X = zoo.load_dataset(name, **kw).data
    return (X - X.mean(0)) / X.std(0)


@pytest.mark.parametrize("dataset", ["faithful", "blobs"])
@pytest.mark.parametrize("covariance", ["full", "diag"])
@pytest.mark.parametrize("m_step", ["gradient", "closed_form"])
def test_generic_em_reaches_the_closed_form_optimum(dataset, covariance, m_step):
    X = _standardised(dataset) if dataset == "faithful" else _standardised("blobs", n_samples=200, random_state=3)
    K = 2 if dataset == "faithful" else 3
    reference = GaussianMixture(K, covariance_type=covariance, tol=1e-10, max_iter=2000, n_init=5,
                                random_state=0).fit(X)
    model = zoo.create_model("gmm", n_components=K, covariance_type=covariance)
    r = inference.fit(model, torch.tensor(X), method="em", m_step=m_step, num_steps=500, progress_bar=False)
    assert r.converged
    ours = model.pointwise_log_likelihood({k: v[0, 0] for k, v in r.samples.items()}, torch.tensor(X)).mean()
    assert abs(ours.item() - reference.score(X)) < 1e-4
    assert abs(-r.losses[-1] - reference.score(X)) < 1e-4


def test_em_objective_never_decreases():
    X = torch.tensor(_standardised("iris"))
    r = inference.fit(zoo.create_model("gmm", n_components=3, covariance_type="diag"), X, method="em", m_step="gradient",
                      num_steps=60, tol=0.0, progress_bar=False, seed=2)
    losses = np.array(r.losses)
    assert len(losses) > 10
    assert np.all(np.diff(losses) <= 1e-9), np.diff(losses).max()


def test_map_objective_beats_the_ml_point_on_the_log_joint():
    """EM with objective="map" maximises log p(x, theta): its optimum scores at least the ML point."""
    X = torch.tensor(_standardised("faithful"))
    model = zoo.create_model("gmm", n_components=2, covariance_type="diag")
    ml = inference.fit(model, X, method="em", num_steps=300, progress_bar=False)
    mp = inference.fit(model, X, method="em", em_objective="map", num_steps=300, progress_bar=False)
    from inference.pyro_em import log_joint

    assert log_joint(model, mp.posterior_mean(), X) >= log_joint(model, ml.posterior_mean(), X) - 1e-9
    # and the ML point has the higher likelihood
    ll = lambda r: model.pointwise_log_likelihood(r.posterior_mean(), X).sum().item()  # noqa: E731
    assert ll(ml) >= ll(mp) - 1e-9


@pytest.mark.parametrize("kwargs,match", [
    (dict(em_objective="nope"), "unknown em.objective 'nope'"),
    (dict(m_step="nope"), "unknown m_step 'nope'"),
    (dict(em_objective="map", m_step="closed_form"), "no closed-form M-step for objective 'map'"),
])
def test_em_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        inference.fit(zoo.create_model("gmm"), torch.randn(20, 2), method="em", **kwargs)
