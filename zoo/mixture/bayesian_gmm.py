"""The conjugate Bayesian Gaussian mixture as a Pyro model, for CAVI and SVI side by side.

    weights ~ Dirichlet(alpha0 1_K)                                    "dirichlet_distribution"
    sticks_k ~ Beta(1, gamma0), weights_k = sticks_k prod_{j<k}(1 - sticks_j)   "dirichlet_process"
    precision_k ~ Wishart(nu0, Psi0^-1)                   (D, D)       covariance_type="full"
    precision_kd ~ Gamma(nu0/2, rate=Psi0_d/2)            (D,)         covariance_type="diag"
    locs_k | precision_k ~ N(m0, (beta0 precision_k)^-1)
    assignment_n ~ Categorical(weights)                                enumerated
    obs_n ~ N(locs_{assignment_n}, precision_{assignment_n}^-1)

Under the Dirichlet process the ``K`` sticks are the first ``K`` of an infinite
stick-breaking prior and every datum belongs to one of the first ``K`` components (the
truncated variational family of scikit-learn's ``BayesianGaussianMixture``): the weights
sum to less than 1, ``p(assignment = k) = weights_k`` exactly, which the model writes as a
categorical over the normalised weights plus the factor ``N log sum_k weights_k``.

Hyperparameters left ``None`` take scikit-learn's data-dependent defaults
(:func:`zoo.mixture.gauss_wishart.make_prior`). ``custom_guide`` is the conjugate mean-field family
(Dirichlet or Beta, Wishart or Gamma, Normal given the precision) in which CAVI
(``cavi_fit``, run by :func:`inference.cavi.fit_cavi`) is exact; any registered guide
(``normal``...) also applies, the Wishart site being mapped to ``R^{D(D+1)/2}`` through its
Cholesky factor. ``component_log_prob`` is the kernels' (:mod:`zoo.mixture._gaussian`).
"""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from pyro.ops.indexing import Vindex
from torch.distributions import biject_to, constraints, transform_to
from sklearn.utils._param_validation import validate_parameter_constraints
from torch.distributions.transforms import Transform

from .._checks import check_choice, check_positive_int
from .._validation import AnyOf, ArrayLike, Choice, Int, Real, declare
from ..registry import register_model
from . import _gaussian as kernels
from . import gauss_wishart as gw
from ._base import renamed_parameter
from .bayesian_mixture import BayesianGaussianMixture
from .gmm import EnumeratedMixture

__all__ = ["BayesianGMM", "BayesianGMMGuide", "Wishart", "stick_breaking", "bayesian_gmm"]


# ----------------------------------------------------- Wishart with a bijection
class _PrecisionMatrix(constraints._PositiveDefinite):
    """Positive-definite ``(D, D)`` matrices of a known size (so that a bijection exists)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim


class _CholeskyVecToPD(Transform):
    """``R^{D(D+1)/2} -> PD``: fill a lower triangle (log-diagonal), ``L L^T``."""

    domain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, dim: int, cache_size=0):
        super().__init__(cache_size=cache_size)
        self.dim = dim
        self.codomain = _PrecisionMatrix(dim)

    def __eq__(self, other):
        return isinstance(other, _CholeskyVecToPD) and other.dim == self.dim

    def _idx(self, device):
        return torch.tril_indices(self.dim, self.dim, device=device)

    def _call(self, x):
        d = self.dim
        r, c = self._idx(x.device)
        L = x.new_zeros(x.shape[:-1] + (d, d))
        L[..., r, c] = x
        diag = torch.diagonal(L, dim1=-2, dim2=-1)
        L = L - torch.diag_embed(diag) + torch.diag_embed(diag.exp())
        return L @ L.mT

    def _inverse(self, y):
        L = torch.linalg.cholesky(y)
        diag = torch.diagonal(L, dim1=-2, dim2=-1)
        L = L - torch.diag_embed(diag) + torch.diag_embed(diag.log())
        r, c = self._idx(y.device)
        return L[..., r, c]

    def log_abs_det_jacobian(self, x, y):
        # x -> L: prod exp(d_i); L -> L L^T: 2^D prod_i L_ii^(D - i) (0-based i)
        d = self.dim
        r, c = self._idx(x.device)
        log_diag = x[..., r == c]
        power = torch.arange(d, 0, -1, dtype=x.dtype, device=x.device) + 1.0
        return d * math.log(2.0) + (log_diag * power).sum(-1)

    def forward_shape(self, shape):
        return tuple(shape[:-1]) + (self.dim, self.dim)

    def inverse_shape(self, shape):
        return tuple(shape[:-2]) + (self.dim * (self.dim + 1) // 2,)


@biject_to.register(_PrecisionMatrix)
@transform_to.register(_PrecisionMatrix)
def _precision_bijection(constraint):
    return _CholeskyVecToPD(constraint.dim)


class Wishart(dist.Wishart):
    """``pyro.distributions.Wishart`` whose support carries its size, so that autoguides
    can map it to an unconstrained vector."""

    @constraints.dependent_property(is_discrete=False, event_dim=2)
    def support(self):
        return _PrecisionMatrix(self.event_shape[-1])

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Wishart, _instance)
        return super().expand(batch_shape, _instance=new)


def stick_breaking(sticks: torch.Tensor) -> torch.Tensor:
    """``weights_k = v_k prod_{j<k} (1 - v_j)`` along the last dim (K,)."""
    log_rest = torch.cumsum(torch.log1p(-sticks), -1)
    shifted = torch.cat([torch.zeros_like(log_rest[..., :1]), log_rest[..., :-1]], -1)
    return sticks * shifted.exp()


# ------------------------------------------------------------------ the model
class BayesianGMM(EnumeratedMixture):
    """Conjugate Bayesian Gaussian mixture (see the module docstring).

    Parameters
    ----------
    n_components : int, default=2
        Components (the truncation level under the Dirichlet process).
    n_features : int or None, default=None
        Expected number of features (checked against the data when given).
    covariance_type : {'full', 'diag'}, default='full'
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration_prior, mean_precision_prior, mean_prior, degrees_of_freedom_prior,
    covariance_prior : as :class:`~zoo.mixture.BayesianGaussianMixture` (``None``:
        scikit-learn's data-dependent default).
    K, D : deprecated
        The old names of ``n_components`` and ``n_features``.
    """


    @declare(n_components=Int(ge=1), n_features=Int(ge=1, none=True), covariance_type=Choice("full", "diag"),
             weight_concentration_prior_type=Choice(gw.WEIGHT_PRIOR_TYPES),
             weight_concentration_prior=Real(gt=0, none=True), mean_precision_prior=Real(gt=0, none=True),
             mean_prior=ArrayLike(ndim=(0, 1), none=True), degrees_of_freedom_prior=Real(gt=0, none=True),
             covariance_prior=AnyOf(Real(gt=0), ArrayLike(ndim=(1, 2)), none=True,
                                    what="a finite real number > 0 or a finite real 1-D or 2-D array"),
             K=Int(ge=1), D=Int(ge=1, none=True))
    def __init__(self, n_components: int = 2, n_features: int | None = None, *, covariance_type: str = "full",
                 weight_concentration_prior_type: str = "dirichlet_process", weight_concentration_prior=None,
                 mean_precision_prior=None, mean_prior=None, degrees_of_freedom_prior=None, covariance_prior=None,
                 K="deprecated", D="deprecated"):
        super().__init__()
        owner = type(self).__name__
        n_components = renamed_parameter(owner, "K", K, "n_components", n_components, 2, stacklevel=4)
        n_features = renamed_parameter(owner, "D", D, "n_features", n_features, None, stacklevel=4)
        self.n_components = check_positive_int(n_components, "n_components")
        self.n_features = None if n_features is None else check_positive_int(n_features, "n_features")
        self.covariance_type = check_choice(covariance_type, ("full", "diag"), "covariance_type")
        self.weight_concentration_prior_type = check_choice(
            weight_concentration_prior_type, gw.WEIGHT_PRIOR_TYPES, "weight_concentration_prior_type")
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self._prior_cache = None
        # scalar hyperparameters are checked now; array ones once D is known (check_data)
        if self.n_features is not None:
            eye = torch.eye(self.n_features, dtype=torch.float64)  # a stand-in data set with a PD covariance
            self.prior(torch.cat([eye, -eye]))
        else:
            validate_parameter_constraints(
                gw.PRIOR_PARAMETER_CONSTRAINTS,
                {k: getattr(self, k) for k in ("weight_concentration_prior", "mean_precision_prior",
                                               "degrees_of_freedom_prior", "covariance_prior", "mean_prior")},
                caller_name=owner)
        self._prior_cache = None

    @property
    def dp(self) -> bool:
        return self.weight_concentration_prior_type == "dirichlet_process"

    @property
    def site_dims(self):
        dims = {"locs": ["component", "feature"], "assignment": ["obs_id"]}
        dims["sticks" if self.dp else "weights"] = ["component"]
        dims["precision"] = ["component", "feature", "feature_bis"] if self.covariance_type == "full" \
            else ["component", "feature"]
        return dims

    def prior(self, data: torch.Tensor) -> gw.GaussianWishartPrior:
        """The validated hyperparameters for ``data`` (defaults computed from it), float64."""
        key = (data.data_ptr(), tuple(data.shape), data.device, data.dtype, getattr(data, "_version", 0))
        if self._prior_cache is not None and self._prior_cache[0] == key:
            return self._prior_cache[1]
        pr = gw.make_prior(
            data, covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior, mean_precision_prior=self.mean_precision_prior,
            mean_prior=self.mean_prior, degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=self.covariance_prior, n_components=self.n_components, diag_family="gamma")
        self._prior_cache = (key, pr)
        return pr

    def check_data(self, data):
        data = super().check_data(data)
        if self.n_features is not None and data.shape[1] != self.n_features:
            raise ValueError(f"data has {data.shape[1]} features, the model was built with "
                             f"n_features={self.n_features}")
        self.prior(data)
        return data

    def _hyper(self, data):
        pr = self.prior(data)
        t = lambda v: torch.as_tensor(v, dtype=data.dtype, device=data.device)  # noqa: E731
        return pr, t(pr.weight_concentration), t(pr.mean_precision), pr.mean.to(data), \
            t(pr.degrees_of_freedom), pr.covariance.to(data)

    def model(self, data: torch.Tensor):
        N, D = data.shape
        K = self.n_components
        pr, wc, beta0, m0, nu0, psi0 = self._hyper(data)
        with pyro.plate("components", K):
            if self.dp:
                sticks = pyro.sample("sticks", dist.Beta(torch.ones_like(wc), wc))
            if self.covariance_type == "full":
                scale = torch.cholesky_inverse(torch.linalg.cholesky(psi0))
                precision = pyro.sample("precision", Wishart(nu0.expand(K), covariance_matrix=scale.expand(K, D, D),
                                                                validate_args=False))
                locs = pyro.sample("locs", dist.MultivariateNormal(m0, precision_matrix=beta0 * precision,
                                                                        validate_args=False))
            else:
                precision = pyro.sample("precision", dist.Gamma(0.5 * nu0, 0.5 * psi0).expand([K, D]).to_event(1))
                locs = pyro.sample("locs", dist.Normal(m0, (beta0 * precision).rsqrt()).to_event(1))
        if self.dp:
            weights = stick_breaking(sticks)[..., None, :]  # batch dims as a site outside the plates
        else:
            weights = pyro.sample("weights", dist.Dirichlet(wc.expand(K)))
        # batch dims left of the data plate (vectorised particles) are kept by Vindex
        with pyro.plate("data", N):
            k = pyro.sample("assignment", dist.Categorical(weights), infer={"enumerate": "parallel"})
            loc = Vindex(locs[..., None, :, :])[..., k, :]
            if self.covariance_type == "full":
                obs_dist = dist.MultivariateNormal(loc, precision_matrix=Vindex(precision[..., None, :, :, :])[..., k, :, :],
                                                   validate_args=False)  # data checked by check_data
            else:
                obs_dist = dist.Normal(loc, Vindex(precision[..., None, :, :])[..., k, :].rsqrt()).to_event(1)
            pyro.sample("obs", obs_dist, obs=data)
            if self.dp:
                # truncation: p(assignment = k) = weights_k, not weights_k / sum(weights)
                pyro.factor("truncation", torch.log(weights.sum(-1)))

    # ------------------------------------------------------------ closed forms
    def _weights(self, samples):
        return stick_breaking(samples["sticks"]) if self.dp else samples["weights"]

    def component_log_prob(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        """``log weights_k + log N(x_n | locs_k, precision_k^-1)``, shape (*S, N, K)."""
        prec = samples["precision"]
        if self.covariance_type == "full":
            U = kernels.precision_cholesky_from_precision(prec)
        else:
            U = prec.sqrt()
        return kernels.component_log_prob(data, self._weights(samples).log(), samples["locs"], U,
                                          self.covariance_type)

    def log_prior(self, samples: dict, data: torch.Tensor) -> torch.Tensor:
        """``log p(weights or sticks) + log p(precision) + log p(locs | precision)``, shape (*S,)."""
        pr, wc, beta0, m0, nu0, psi0 = self._hyper(data)
        K, D = self.n_components, data.shape[1]
        if self.dp:
            lp = dist.Beta(torch.ones_like(wc), wc).log_prob(samples["sticks"]).sum(-1)
        else:
            lp = dist.Dirichlet(wc.expand(K)).log_prob(samples["weights"])
        prec = samples["precision"]
        if self.covariance_type == "full":
            scale = torch.cholesky_inverse(torch.linalg.cholesky(psi0))
            lp = lp + Wishart(nu0, covariance_matrix=scale, validate_args=False).log_prob(prec).sum(-1)
            lp = lp + dist.MultivariateNormal(m0, precision_matrix=beta0 * prec,
                                              validate_args=False).log_prob(samples["locs"]).sum(-1)
        else:
            lp = lp + dist.Gamma(0.5 * nu0, 0.5 * psi0).log_prob(prec).sum((-2, -1))
            lp = lp + dist.Normal(m0, (beta0 * prec).rsqrt()).log_prob(samples["locs"]).sum((-2, -1))
        return lp

    def init_values(self, data, seed=0):
        """Equal weights, locations at K random data points, the prior's precision."""
        K = self.n_components
        pr = self.prior(data)
        values = {"locs": self._data_points(data, seed)}
        if self.dp:
            values["sticks"] = 1.0 / torch.arange(K, 0, -1, dtype=data.dtype, device=data.device).clamp(min=2)
        else:
            values["weights"] = torch.full((K,), 1.0 / K, dtype=data.dtype, device=data.device)
        if self.covariance_type == "full":
            prec = torch.cholesky_inverse(torch.linalg.cholesky(pr.covariance)) * pr.degrees_of_freedom
        else:
            prec = pr.degrees_of_freedom / pr.covariance
        values["precision"] = prec.to(data).expand((K,) + prec.shape).clone()
        return values

    def custom_guide(self, init_values=None):
        return BayesianGMMGuide(self, init_values)

    def cavi_fit(self, data, *, max_iter, tol, n_init, init_params, reg_covar, random_state, progress_bar):
        """Mean-field CAVI in closed form: a :class:`~zoo.mixture.BayesianGaussianMixture` with this
        model's priors and families (``diag``: per-dimension Gammas) fitted to ``data`` (N, D).

        Returns ``(guide, estimator)``: the conjugate guide (:meth:`custom_guide`) set to the fitted
        ``q``, and the fitted estimator (``elbos_``, ``converged_``).
        """
        est = BayesianGaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior, mean_precision_prior=self.mean_precision_prior,
            mean_prior=self.mean_prior, degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=self.covariance_prior, diag_family="gamma", max_iter=max_iter, tol=tol, n_init=n_init,
            init_params=init_params, reg_covar=reg_covar, random_state=random_state, progress_bar=progress_bar)
        est.fit(data)
        return self.custom_guide().set_from_cavi(est, data if isinstance(data, torch.Tensor) else est._fit_dtype), est


class BayesianGMMGuide(PyroModule):
    """The conjugate mean-field family: ``q(weights) = Dirichlet(alpha)`` or ``q(sticks_k) =
    Beta(a_k, b_k)``; ``q(precision_k) = Wishart(df_k, scale_tril_k)`` (full) or
    ``Gamma(shape_kd, rate_kd)`` (diag); ``q(locs_k | precision_k) = N(m_k, (beta_k
    precision_k)^-1)``. Parameters are created on the first call (from ``init_values``
    when given) or set from a CAVI fit by :meth:`set_from_cavi`.
    """

    def __init__(self, model: BayesianGMM, init_values=None):
        super().__init__()
        self.n_components, self.covariance_type, self.dp = model.n_components, model.covariance_type, model.dp
        self._model = [model]  # not a submodule: the model's buffers stay the model's
        self._init_values = init_values
        self._ready = False

    def _set(self, conc, beta, means, nu, psi):
        """Set every parameter from a ``q`` in CAVI's parametrisation (float64 tensors)."""
        K = self.n_components
        if self.dp:
            self.sticks_a = PyroParam(conc[0].clone(), constraint=constraints.positive)
            self.sticks_b = PyroParam(conc[1].clone(), constraint=constraints.positive)
        else:
            self.weights_concentration = PyroParam(conc.clone(), constraint=constraints.positive)
        self.locs_loc = PyroParam(means.clone())
        self.locs_precision = PyroParam(beta.clone(), constraint=constraints.positive)
        if self.covariance_type == "full":
            d = means.shape[-1]
            self.precision_df = PyroParam(nu.clone(), constraint=constraints.greater_than(d - 1.0))
            scale = torch.cholesky_inverse(torch.linalg.cholesky(psi))
            self.precision_scale_tril = PyroParam(torch.linalg.cholesky(scale), constraint=constraints.lower_cholesky)
        else:
            self.precision_shape = PyroParam((0.5 * nu[:, None]).expand(K, psi.shape[-1]).clone(),
                                             constraint=constraints.positive)
            self.precision_rate = PyroParam(0.5 * psi.clone(), constraint=constraints.positive)
        self._ready = True

    def _setup(self, data):
        """Start from the prior updated with K equal shares of the data around ``init_values``."""
        model = self._model[0]
        pr = model.prior(data)
        K, (N, D) = self.n_components, data.shape
        init = self._init_values or model.init_values(data)
        nk = torch.full((K,), N / K, dtype=torch.float64, device=data.device)
        conc = gw.weight_update(nk, pr)
        means = init["locs"].to(torch.float64)
        sk = pr.covariance / pr.degrees_of_freedom
        sk = sk.expand((K,) + sk.shape)
        q = gw.component_update(nk, means, sk, pr)
        self._set(conc.to(data.dtype), q["beta"].to(data.dtype), means.to(data.dtype), q["nu"].to(data.dtype),
                  q["psi"].to(data.dtype))

    def set_from_cavi(self, estimator, data):
        """Copy the fitted ``q`` of a :class:`BayesianGaussianMixture` into the parameters (in the dtype of
        ``data``, a tensor or a dtype)."""
        p = estimator.variational_parameters()
        dt = data if isinstance(data, torch.dtype) else data.dtype
        self._set(p["conc"].to(dt), p["beta"].to(dt), p["means"].to(dt), p["nu"].to(dt), p["psi"].to(dt))
        return self

    def forward(self, data):
        if not self._ready:
            self._setup(data)
        K = self.n_components
        with pyro.plate("components", K):
            if self.dp:
                pyro.sample("sticks", dist.Beta(self.sticks_a, self.sticks_b))
            if self.covariance_type == "full":
                precision = pyro.sample("precision", Wishart(self.precision_df, scale_tril=self.precision_scale_tril,
                                                                validate_args=False))
                pyro.sample("locs", dist.MultivariateNormal(
                    self.locs_loc, precision_matrix=self.locs_precision[:, None, None] * precision, validate_args=False))
            else:
                precision = pyro.sample("precision", dist.Gamma(self.precision_shape, self.precision_rate).to_event(1))
                pyro.sample("locs", dist.Normal(
                    self.locs_loc, (self.locs_precision[:, None] * precision).rsqrt()).to_event(1))
        if not self.dp:
            pyro.sample("weights", dist.Dirichlet(self.weights_concentration))


@register_model("bayesian_gmm")
def bayesian_gmm(n_components: int = 2, n_features: int | None = None, *, covariance_type: str = "full",
                 **kwargs) -> BayesianGMM:
    """Conjugate Bayesian Gaussian mixture (Dirichlet or stick-breaking weights, Gauss-Wishart
    or Gauss-Gamma components), ``covariance_type`` in {'full', 'diag'}; CAVI via
    ``inference.cavi.fit_cavi``."""
    return BayesianGMM(n_components, n_features, covariance_type=covariance_type, **kwargs)
