"""Bayesian Gaussian mixture with the component index enumerated out.

    weights ~ Dirichlet(concentration * 1_K)
    locs_k  ~ Normal(loc_loc, loc_scale)^D                   k = 1..K
    scale   ~ LogNormal(scale_loc, scale_scale)               covariance_type="tied_spherical"
    scales_k ~ LogNormal(scale_loc, scale_scale)^D            "diag" and "full"
    corr_chol_k ~ LKJCholesky(D, lkj_concentration)           "full"
    assignment_n ~ Categorical(weights)                       enumerated
    obs_n ~ Normal(locs_{assignment_n}, covariance_{assignment_n})

The defaults of the priors are those of Pyro's GMM tutorial, so that its
worked example can be reproduced; pass your own for data on another scale.
The closed forms (``component_log_prob``, ``em_update``) are the kernels of
:mod:`zoo.mixture._gaussian`.
"""
from __future__ import annotations

import warnings

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from torch.distributions import constraints

from .._checks import as_data_tensor, check_n_components
from .._validation import Choice, Int, Real, declare
from ..base import ZooModel
from ..registry import register_model
from . import _gaussian as kernels
from ._base import ConvergenceWarning, renamed_parameter
from .gaussian_mixture import GaussianMixture

__all__ = ["EnumeratedMixture", "GaussianMixtureModel", "GaussianMixtureGuide", "gmm"]

COVARIANCE_TYPES = ("tied_spherical", "diag", "full")
# the kernels' covariance type of each: one scale for every component and feature is a
# spherical Gaussian per component whose precisions happen to be equal
_KERNEL_KIND = {"tied_spherical": "spherical", "diag": "diag", "full": "full"}


class EnumeratedMixture(ZooModel):
    """What the Pyro mixtures share: ``n_components`` components whose index, the site
    ``assignment``, is enumerated out, and the closed-form pointwise log-likelihood from
    ``component_log_prob``. Subclasses set ``n_components`` and write ``model`` and
    ``component_log_prob``."""

    def check_data(self, data):
        data = as_data_tensor(data, name="data")
        check_n_components(self.n_components, data.shape[0], name="n_components")
        return data

    def pointwise_log_likelihood(self, samples, data):
        return torch.logsumexp(self.component_log_prob(samples, data), dim=-1)

    def _data_points(self, data: torch.Tensor, seed: int) -> torch.Tensor:
        """``n_components`` distinct rows of ``data`` drawn with ``seed`` (starting locations)."""
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(data.shape[0], generator=g)[: self.n_components].to(data.device)
        return data[idx].clone()


class GaussianMixtureModel(EnumeratedMixture):
    """Gaussian mixture with Dirichlet weights and the component index enumerated out.

    Parameters
    ----------
    n_components : int, default=2
        Number of components ``K``.
    covariance_type : {'full', 'diag', 'tied_spherical'}, default='diag'
        Per-component scales and LKJ correlations (sites ``scales``, ``corr_chol``),
        per-component per-feature scales (``scales``), or one scale shared by every component
        and feature (``scale``, as in Pyro's GMM tutorial).
    concentration, loc_loc, loc_scale, scale_loc, scale_scale, lkj_concentration : float
        The priors (see the module docstring).
    K, covariance : deprecated
        The old names of ``n_components`` and ``covariance_type`` (whose old value
        ``'shared'`` is ``'tied_spherical'``).
    """


    @declare(n_components=Int(ge=1), covariance_type=Choice(*COVARIANCE_TYPES, "shared"), concentration=Real(gt=0),
             loc_loc=Real(), loc_scale=Real(gt=0), scale_loc=Real(), scale_scale=Real(gt=0),
             lkj_concentration=Real(gt=0), K=Int(ge=1), covariance=Choice(*COVARIANCE_TYPES, "shared"))
    def __init__(
        self,
        n_components: int = 2,
        *,
        covariance_type: str = "diag",
        concentration: float = 0.5,
        loc_loc: float = 0.0,
        loc_scale: float = 10.0,
        scale_loc: float = 0.0,
        scale_scale: float = 2.0,
        lkj_concentration: float = 1.0,
        K="deprecated",
        covariance="deprecated",
    ):
        super().__init__()
        owner = type(self).__name__
        # stacklevel 4: the warnings point past the declaration's wrapper, at the caller
        n_components = renamed_parameter(owner, "K", K, "n_components", n_components, 2, stacklevel=4)
        covariance_type = renamed_parameter(owner, "covariance", covariance, "covariance_type", covariance_type, "diag",
                                            stacklevel=4)
        if isinstance(covariance_type, str) and covariance_type == "shared":
            warnings.warn(f"{owner}: covariance_type 'shared' was renamed 'tied_spherical' and the old value will be "
                          "removed; pass covariance_type='tied_spherical'", FutureWarning, stacklevel=3)
            covariance_type = "tied_spherical"
        self.n_components, self.covariance_type = int(n_components), covariance_type
        for name, value in [("concentration", concentration), ("loc_loc", loc_loc), ("loc_scale", loc_scale),
                            ("scale_loc", scale_loc), ("scale_scale", scale_scale),
                            ("lkj_concentration", lkj_concentration)]:
            self.register_buffer(name, torch.tensor(float(value), dtype=torch.get_default_dtype()))

    # --- sites -----------------------------------------------------------
    @property
    def site_dims(self):
        dims = {"weights": ["component"], "locs": ["component", "feature"], "assignment": ["obs_id"]}
        if self.covariance_type == "tied_spherical":
            dims["scale"] = []
        else:
            dims["scales"] = ["component", "feature"]
        if self.covariance_type == "full":
            dims["corr_chol"] = ["component", "feature", "feature_bis"]
        return dims

    def check_data(self, data):
        data = super().check_data(data)
        if self.covariance_type == "full" and data.shape[1] < 2:
            raise ValueError("covariance_type='full' needs at least 2 features; use 'diag' for 1-D data")
        return data

    def _prior(self, name, like):
        return getattr(self, name).to(dtype=like.dtype, device=like.device)

    def model(self, data: torch.Tensor):
        N, D = data.shape
        K, cov = self.n_components, self.covariance_type
        p = lambda name: self._prior(name, data)  # noqa: E731 - priors follow the data's dtype
        weights = pyro.sample("weights", dist.Dirichlet(p("concentration").expand([K])))
        with pyro.plate("components", K):
            locs = pyro.sample("locs", dist.Normal(p("loc_loc"), p("loc_scale")).expand([D]).to_event(1))
            if cov != "tied_spherical":
                scales = pyro.sample(
                    "scales", dist.LogNormal(p("scale_loc"), p("scale_scale")).expand([D]).to_event(1)
                )
            if cov == "full":
                corr_chol = pyro.sample("corr_chol", dist.LKJCholesky(D, p("lkj_concentration")))
        if cov == "tied_spherical":
            scale = pyro.sample("scale", dist.LogNormal(p("scale_loc"), p("scale_scale")))
        with pyro.plate("data", N):
            k = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
            if cov == "tied_spherical":
                obs_dist = dist.Normal(locs[k], scale).to_event(1)
            elif cov == "diag":
                obs_dist = dist.Normal(locs[k], scales[k]).to_event(1)
            else:
                scale_tril = scales[..., :, None] * corr_chol
                obs_dist = dist.MultivariateNormal(locs[k], scale_tril=scale_tril[k])
            pyro.sample("obs", obs_dist, obs=data)

    # --- closed forms ----------------------------------------------------
    def _precision_cholesky(self, samples: dict) -> torch.Tensor:
        """The kernels' ``U`` (precision ``U U^T``) of the scale sites, batched like them."""
        if self.covariance_type == "full":
            L = samples["scales"][..., :, None] * samples["corr_chol"]  # (*S, K, D, D) covariance factor
            return kernels.precision_cholesky_from_tril(L)
        if self.covariance_type == "diag":
            return samples["scales"].reciprocal()
        return samples["scale"].reciprocal()[..., None].expand(samples["locs"].shape[:-1])

    def component_log_prob(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        """log weights_k + log N(x_n | component k), shape (*S, N, K), for samples of shape (*S, ...)."""
        return kernels.component_log_prob(data, samples["weights"].log(), samples["locs"],
                                          self._precision_cholesky(samples), _KERNEL_KIND[self.covariance_type])

    def em_update(self, resp: torch.Tensor, data: torch.Tensor, reg_covar: float = 1e-6) -> dict:
        """Closed-form maximum-likelihood M-step given responsibilities ``resp`` (N, K).

        Returns constrained site values; ``reg_covar`` is added to every variance, as in
        scikit-learn, so that a component with one point keeps a positive covariance."""
        kind, shift = _KERNEL_KIND[self.covariance_type], data.mean(0)
        stats = kernels.sufficient_statistics(kernels.design(data, kind, shift), resp, kind, [slice(None)])
        tiny = 10 * torch.finfo(data.dtype).eps
        nk, means, cov, _ = kernels.estimate_gaussian_parameters(stats, kind, reg_covar, tiny)
        return self._site_values(nk, means + shift, cov, data.dtype)

    def em_fit(self, data, *, max_iter=100, tol=1e-3, random_state=0, progress_bar=False, reg_covar=1e-6):
        """Maximum-likelihood EM of the whole model by :class:`~zoo.mixture.GaussianMixture` (``full`` and
        ``diag``), on an array, a chunk source or a data-parallel shard. Returns ``(site values,
        estimator)``."""
        if self.covariance_type == "tied_spherical":
            raise ValueError("covariance_type='tied_spherical' (one variance shared by the components) has no "
                             "streamed EM; use 'full' or 'diag', or an in-memory array")
        est = GaussianMixture(self.n_components, covariance_type=self.covariance_type, max_iter=max_iter, tol=tol,
                              reg_covar=reg_covar, random_state=random_state, progress_bar=progress_bar)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(data)
        dtype = est._fit_dtype
        nk = torch.as_tensor(est.weights_, dtype=torch.float64)
        values = self._site_values(nk, torch.as_tensor(est.means_, dtype=torch.float64),
                                   torch.as_tensor(est.covariances_, dtype=torch.float64), dtype)
        return values, est

    def _site_values(self, nk, locs, cov, dtype) -> dict:
        """The model's sites from soft counts (or weights) ``nk``, means and covariances (float64)."""
        out = {"weights": nk / nk.sum(), "locs": locs}
        if self.covariance_type == "tied_spherical":  # the components' variances pooled
            out["scale"] = ((nk * cov).sum() / nk.sum()).sqrt()
        elif self.covariance_type == "diag":
            out["scales"] = cov.sqrt()
        else:
            L = torch.linalg.cholesky(cov)
            scales = L.norm(dim=-1)
            out["scales"] = scales
            out["corr_chol"] = L / scales[..., None]
        return {name: value.to(dtype) for name, value in out.items()}

    def init_values(self, data, seed=0):
        """Uniform weights, locations at K distinct random data points, data-scaled spreads."""
        N, D = data.shape
        K = self.n_components
        spread = data.std(0, unbiased=False).clamp_min(1e-3) if N > 1 else torch.ones(D, dtype=data.dtype, device=data.device)
        values = {"weights": torch.full((K,), 1.0 / K, dtype=data.dtype, device=data.device),
                  "locs": self._data_points(data, seed)}
        if self.covariance_type == "tied_spherical":
            values["scale"] = spread.mean() / 2
        else:
            values["scales"] = (spread / 2).expand(K, D).clone()
        if self.covariance_type == "full":
            values["corr_chol"] = torch.eye(D, dtype=data.dtype, device=data.device).expand(K, D, D).clone()
        return values

    def custom_guide(self, init_values=None):
        return GaussianMixtureGuide(self, init_values)


class GaussianMixtureGuide(PyroModule):
    """Hand-written mean-field guide in the prior's own families.

    q(weights) = Dirichlet(alpha), q(locs_kd) = Normal(m, s), q(scale) = LogNormal(mu, sigma);
    the correlation factors of ``covariance_type="full"`` get a point estimate.
    Parameters are created on the first call, from ``init_values`` when given.
    """

    def __init__(self, gmm: GaussianMixtureModel, init_values=None):
        super().__init__()
        self.covariance_type = gmm.covariance_type
        self.n_components = gmm.n_components
        self._init_values = init_values
        self._ready = False

    def _setup(self, data):
        K, D = self.n_components, data.shape[1]
        kw = dict(dtype=data.dtype, device=data.device)
        init = self._init_values or {}
        w = init.get("weights", torch.full((K,), 1.0 / K, **kw))
        self.weights_concentration = PyroParam(w * 10 * K, constraint=constraints.positive)
        self.locs_loc = PyroParam(init.get("locs", data[:K]).clone())
        self.locs_scale = PyroParam(torch.full((K, D), 0.1, **kw), constraint=constraints.positive)
        if self.covariance_type == "tied_spherical":
            s = init.get("scale", data.std().clamp_min(1e-3))
            self.scale_loc = PyroParam(s.log().clone())
            self.scale_scale = PyroParam(torch.tensor(0.1, **kw), constraint=constraints.positive)
        else:
            s = init.get("scales", data.std(0).clamp_min(1e-3).expand(K, D))
            self.scales_loc = PyroParam(s.log().clone())
            self.scales_scale = PyroParam(torch.full((K, D), 0.1, **kw), constraint=constraints.positive)
        if self.covariance_type == "full":
            c = init.get("corr_chol", torch.eye(D, **kw).expand(K, D, D))
            self.corr_chol_value = PyroParam(c.clone(), constraint=constraints.corr_cholesky)
        self._ready = True

    def forward(self, data):
        if not self._ready:
            self._setup(data)
        pyro.sample("weights", dist.Dirichlet(self.weights_concentration))
        with pyro.plate("components", self.n_components):
            pyro.sample("locs", dist.Normal(self.locs_loc, self.locs_scale).to_event(1))
            if self.covariance_type != "tied_spherical":
                pyro.sample("scales", dist.LogNormal(self.scales_loc, self.scales_scale).to_event(1))
            if self.covariance_type == "full":
                pyro.sample("corr_chol", dist.Delta(self.corr_chol_value, event_dim=2))
        if self.covariance_type == "tied_spherical":
            pyro.sample("scale", dist.LogNormal(self.scale_loc, self.scale_scale))


@register_model("gmm")
def gmm(n_components: int = 2, *, covariance_type: str = "diag", **kwargs) -> GaussianMixtureModel:
    """Gaussian mixture, ``n_components`` components, ``covariance_type`` in {'full', 'diag', 'tied_spherical'}."""
    return GaussianMixtureModel(n_components, covariance_type=covariance_type, **kwargs)
