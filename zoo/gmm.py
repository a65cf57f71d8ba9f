"""Bayesian Gaussian mixture with the component index enumerated out.

    weights ~ Dirichlet(concentration * 1_K)
    locs_k  ~ Normal(loc_loc, loc_scale)^D                   k = 1..K
    scale   ~ LogNormal(scale_loc, scale_scale)               covariance="shared"
    scales_k ~ LogNormal(scale_loc, scale_scale)^D            "diag" and "full"
    corr_chol_k ~ LKJCholesky(D, lkj_concentration)           "full"
    assignment_n ~ Categorical(weights)                       enumerated
    obs_n ~ Normal(locs_{assignment_n}, covariance_{assignment_n})

The defaults of the priors are those of Pyro's GMM tutorial, so that its
worked example can be reproduced; pass your own for data on another scale.
"""
from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from torch.distributions import constraints

from ._checks import as_data_tensor, check_choice, check_n_components, check_positive_int
from .base import ZooModel
from .registry import register_model

__all__ = ["GaussianMixtureModel", "GaussianMixtureGuide", "gmm"]

COVARIANCES = ("shared", "diag", "full")


class GaussianMixtureModel(ZooModel):
    discrete_sites = ("assignment",)
    max_plate_nesting = 1

    def __init__(
        self,
        K: int = 2,
        *,
        covariance: str = "diag",
        concentration: float = 0.5,
        loc_loc: float = 0.0,
        loc_scale: float = 10.0,
        scale_loc: float = 0.0,
        scale_scale: float = 2.0,
        lkj_concentration: float = 1.0,
    ):
        super().__init__()
        self.K = check_positive_int(K, "K")
        self.covariance = check_choice(covariance, COVARIANCES, "covariance")
        for name, value in [
            ("concentration", concentration),
            ("loc_scale", loc_scale),
            ("scale_scale", scale_scale),
            ("lkj_concentration", lkj_concentration),
        ]:
            if not float(value) > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name, value in [("concentration", concentration), ("loc_loc", loc_loc), ("loc_scale", loc_scale),
                            ("scale_loc", scale_loc), ("scale_scale", scale_scale),
                            ("lkj_concentration", lkj_concentration)]:
            self.register_buffer(name, torch.tensor(float(value), dtype=torch.get_default_dtype()))

    # --- sites -----------------------------------------------------------
    @property
    def site_dims(self):
        dims = {"weights": ["component"], "locs": ["component", "feature"], "assignment": ["obs_id"]}
        if self.covariance == "shared":
            dims["scale"] = []
        else:
            dims["scales"] = ["component", "feature"]
        if self.covariance == "full":
            dims["corr_chol"] = ["component", "feature", "feature_bis"]
        return dims

    def check_data(self, data):
        data = as_data_tensor(data, name="data")
        check_n_components(self.K, data.shape[0])
        if self.covariance == "full" and data.shape[1] < 2:
            raise ValueError("covariance='full' needs at least 2 features; use 'diag' for 1-D data")
        return data

    def _prior(self, name, like):
        return getattr(self, name).to(dtype=like.dtype, device=like.device)

    def model(self, data: torch.Tensor):
        N, D = data.shape
        K = self.K
        p = lambda name: self._prior(name, data)  # noqa: E731 - priors follow the data's dtype
        weights = pyro.sample("weights", dist.Dirichlet(p("concentration").expand([K])))
        with pyro.plate("components", K):
            locs = pyro.sample("locs", dist.Normal(p("loc_loc"), p("loc_scale")).expand([D]).to_event(1))
            if self.covariance != "shared":
                scales = pyro.sample(
                    "scales", dist.LogNormal(p("scale_loc"), p("scale_scale")).expand([D]).to_event(1)
                )
            if self.covariance == "full":
                corr_chol = pyro.sample("corr_chol", dist.LKJCholesky(D, p("lkj_concentration")))
        if self.covariance == "shared":
            scale = pyro.sample("scale", dist.LogNormal(p("scale_loc"), p("scale_scale")))
        with pyro.plate("data", N):
            k = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
            if self.covariance == "shared":
                obs_dist = dist.Normal(locs[k], scale).to_event(1)
            elif self.covariance == "diag":
                obs_dist = dist.Normal(locs[k], scales[k]).to_event(1)
            else:
                scale_tril = scales[..., :, None] * corr_chol
                obs_dist = dist.MultivariateNormal(locs[k], scale_tril=scale_tril[k])
            pyro.sample("obs", obs_dist, obs=data)

    # --- closed forms ----------------------------------------------------
    def component_log_prob(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        """log weights_k + log N(x_n | component k), shape (*S, N, K), for samples of shape (*S, ...)."""
        weights, locs = samples["weights"], samples["locs"]  # (*S, K), (*S, K, D)
        x = data[:, None, :]  # (N, 1, D)
        loc = locs[..., None, :, :]  # (*S, 1, K, D)
        if self.covariance == "full":
            scale_tril = samples["scales"][..., :, None] * samples["corr_chol"]  # (*S, K, D, D)
            lp = dist.MultivariateNormal(loc, scale_tril=scale_tril[..., None, :, :, :]).log_prob(x)
        else:
            if self.covariance == "shared":
                scale = samples["scale"][..., None, None, None]
            else:
                scale = samples["scales"][..., None, :, :]
            lp = dist.Normal(loc, scale).log_prob(x).sum(-1)
        return weights.log()[..., None, :] + lp

    def em_update(self, resp: torch.Tensor, data: torch.Tensor, reg_covar: float = 1e-6) -> dict:
        """Closed-form maximum-likelihood M-step given responsibilities ``resp`` (N, K).

        Returns constrained site values; ``reg_covar`` is added to every variance, as in
        scikit-learn, so that a component with one point keeps a positive covariance."""
        N, D = data.shape
        eps = 10 * torch.finfo(data.dtype).eps
        nk = resp.sum(0) + eps  # (K,)
        locs = (resp.T @ data) / nk[:, None]
        out = {"weights": nk / nk.sum(), "locs": locs}
        diff = data[:, None, :] - locs[None]  # (N, K, D)
        if self.covariance == "shared":
            var = (resp[..., None] * diff.pow(2)).sum() / (N * D) + reg_covar
            out["scale"] = var.sqrt()
        elif self.covariance == "diag":
            var = torch.einsum("nk,nkd->kd", resp, diff.pow(2)) / nk[:, None] + reg_covar
            out["scales"] = var.sqrt()
        else:
            cov = torch.einsum("nk,nkd,nke->kde", resp, diff, diff) / nk[:, None, None]
            cov = cov + reg_covar * torch.eye(D, dtype=data.dtype, device=data.device)
            L = torch.linalg.cholesky(cov)
            scales = L.norm(dim=-1)
            out["scales"] = scales
            out["corr_chol"] = L / scales[..., None]
        return out

    def pointwise_log_likelihood(self, samples, data):
        return torch.logsumexp(self.component_log_prob(samples, data), dim=-1)

    def init_values(self, data, seed=0):
        """Uniform weights, locations at K distinct random data points, data-scaled spreads."""
        g = torch.Generator().manual_seed(int(seed))
        N, D = data.shape
        idx = torch.randperm(N, generator=g)[: self.K].to(data.device)
        spread = data.std(0, unbiased=False).clamp_min(1e-3) if N > 1 else torch.ones(D, dtype=data.dtype, device=data.device)
        values = {"weights": torch.full((self.K,), 1.0 / self.K, dtype=data.dtype, device=data.device),
                  "locs": data[idx].clone()}
        if self.covariance == "shared":
            values["scale"] = spread.mean() / 2
        else:
            values["scales"] = (spread / 2).expand(self.K, D).clone()
        if self.covariance == "full":
            values["corr_chol"] = torch.eye(D, dtype=data.dtype, device=data.device).expand(self.K, D, D).clone()
        return values

    def custom_guide(self, init_values=None):
        return GaussianMixtureGuide(self, init_values)


class GaussianMixtureGuide(PyroModule):
    """Hand-written mean-field guide in the prior's own families.

    q(weights) = Dirichlet(alpha), q(locs_kd) = Normal(m, s), q(scale) = LogNormal(mu, sigma);
    the correlation factors of ``covariance="full"`` get a point estimate.
    Parameters are created on the first call, from ``init_values`` when given.
    """

    def __init__(self, gmm: GaussianMixtureModel, init_values=None):
        super().__init__()
        self.covariance = gmm.covariance
        self.K = gmm.K
        self._init_values = init_values
        self._ready = False

    def _setup(self, data):
        K, D = self.K, data.shape[1]
        kw = dict(dtype=data.dtype, device=data.device)
        init = self._init_values or {}
        w = init.get("weights", torch.full((K,), 1.0 / K, **kw))
        self.weights_concentration = PyroParam(w * 10 * K, constraint=constraints.positive)
        self.locs_loc = PyroParam(init.get("locs", data[:K]).clone())
        self.locs_scale = PyroParam(torch.full((K, D), 0.1, **kw), constraint=constraints.positive)
        if self.covariance == "shared":
            s = init.get("scale", data.std().clamp_min(1e-3))
            self.scale_loc = PyroParam(s.log().clone())
            self.scale_scale = PyroParam(torch.tensor(0.1, **kw), constraint=constraints.positive)
        else:
            s = init.get("scales", data.std(0).clamp_min(1e-3).expand(K, D))
            self.scales_loc = PyroParam(s.log().clone())
            self.scales_scale = PyroParam(torch.full((K, D), 0.1, **kw), constraint=constraints.positive)
        if self.covariance == "full":
            c = init.get("corr_chol", torch.eye(D, **kw).expand(K, D, D))
            self.corr_chol_value = PyroParam(c.clone(), constraint=constraints.corr_cholesky)
        self._ready = True

    def forward(self, data):
        if not self._ready:
            self._setup(data)
        pyro.sample("weights", dist.Dirichlet(self.weights_concentration))
        with pyro.plate("components", self.K):
            pyro.sample("locs", dist.Normal(self.locs_loc, self.locs_scale).to_event(1))
            if self.covariance != "shared":
                pyro.sample("scales", dist.LogNormal(self.scales_loc, self.scales_scale).to_event(1))
            if self.covariance == "full":
                pyro.sample("corr_chol", dist.Delta(self.corr_chol_value, event_dim=2))
        if self.covariance == "shared":
            pyro.sample("scale", dist.LogNormal(self.scale_loc, self.scale_scale))


@register_model("gmm")
def gmm(K: int = 2, **kwargs) -> GaussianMixtureModel:
    """Gaussian mixture, K components, ``covariance`` in {'shared', 'diag', 'full'}."""
    return GaussianMixtureModel(K, **kwargs)
