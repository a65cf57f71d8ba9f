"""Conjugate Gaussian models with exact posteriors: references for every approximation.

    mu ~ Normal(prior_loc, prior_scale^2 I_D)
    x_n ~ MultivariateNormal(mu, Sigma)           n = 1..N, Sigma known

with Sigma = noise_scale^2 ((1 - rho) I + rho 1 1^T) (equicorrelated noise). The
posterior of mu is Gaussian with precision Lambda = I / prior_scale^2 + N Sigma^{-1}
and mean Lambda^{-1} (prior_loc / prior_scale^2 + Sigma^{-1} sum_n x_n); for large
N its correlation matrix tends to that of Sigma.

Two registered variants:

* ``normal_normal``: isotropic noise (rho = 0), a diagonal posterior;
* ``correlated_gaussian``: rho = 0.95, a strongly correlated posterior, where a
  mean-field guide underestimates every marginal spread (by sqrt(1 - rho^2) in 2-D).
"""
from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from ._checks import as_data_tensor
from ._validation import Choice, Real, declare
from .base import ZooModel
from .registry import register_model

__all__ = ["ConjugateGaussian", "normal_normal", "correlated_gaussian"]

INITS = ("data_mean", "prior")


class ConjugateGaussian(ZooModel):
    """Unknown mean vector ``mu`` (site ``"mu"``, shape (D,)) with a Normal prior and known
    Gaussian noise.

    Parameters
    ----------
    prior_loc, prior_scale : the Normal prior on every coordinate of ``mu``.
    noise_scale : marginal standard deviation of the noise.
    noise_corr : correlation rho between any two noise coordinates; for D features it must lie
        in (-1 / (D - 1), 1) so that Sigma is positive definite.
    init : where guides start ``mu``: ``"data_mean"`` (next to the posterior mean) or ``"prior"``
        (the prior median, Pyro's default: a fit then has a long way to go).
    """

    site_dims = {"mu": ["feature"]}

    @declare(prior_loc=Real(), prior_scale=Real(gt=0), noise_scale=Real(gt=0), noise_corr=Real(gt=-1, lt=1),
             init=Choice(INITS))
    def __init__(self, *, prior_loc: float = 0.0, prior_scale: float = 10.0, noise_scale: float = 1.0,
                 noise_corr: float = 0.0, init: str = "data_mean"):
        super().__init__()
        self.init = init
        self.noise_corr = float(noise_corr)
        dtype = torch.get_default_dtype()
        for name, value in [("prior_loc", prior_loc), ("prior_scale", prior_scale), ("noise_scale", noise_scale)]:
            self.register_buffer(name, torch.tensor(float(value), dtype=dtype))

    # --- shapes and data ----------------------------------------------------
    def check_data(self, data) -> torch.Tensor:
        data = as_data_tensor(data, name="data")
        D = data.shape[1]
        if D > 1 and not self.noise_corr > -1.0 / (D - 1):
            raise ValueError(f"noise_corr={self.noise_corr} makes the noise covariance singular or indefinite "
                             f"for D={D} features; it must exceed {-1.0 / (D - 1):.4g}")
        return data

    def _p(self, name, like):
        return getattr(self, name).to(dtype=like.dtype, device=like.device)

    def noise_covariance(self, D: int, like: torch.Tensor) -> torch.Tensor:
        """Sigma, shape (D, D), in ``like``'s dtype and device."""
        eye = torch.eye(D, dtype=like.dtype, device=like.device)
        corr = (1 - self.noise_corr) * eye + self.noise_corr * torch.ones_like(eye)
        return self._p("noise_scale", like) ** 2 * corr

    def _noise_tril(self, D, like):
        return torch.linalg.cholesky(self.noise_covariance(D, like))

    # --- the Pyro model -------------------------------------------------------
    def model(self, data: torch.Tensor):
        N, D = data.shape
        mu = pyro.sample("mu", dist.Normal(self._p("prior_loc", data), self._p("prior_scale", data))
                         .expand([D]).to_event(1))
        with pyro.plate("data", N):
            pyro.sample("obs", dist.MultivariateNormal(mu, scale_tril=self._noise_tril(D, data)), obs=data)

    def pointwise_log_likelihood(self, samples, data):
        """log N(x_n | mu, Sigma) for ``samples["mu"]`` of shape (*S, D): (*S, N)."""
        mu = samples["mu"]
        D = data.shape[1]
        lik = dist.MultivariateNormal(mu[..., None, :], scale_tril=self._noise_tril(D, data))
        return lik.log_prob(data)

    def init_values(self, data, seed=0):
        """``mu`` at the data mean (``init="data_mean"``), or ``None``: the prior median."""
        return {"mu": data.mean(0).clone()} if self.init == "data_mean" else None

    # --- closed forms ---------------------------------------------------------
    def exact_posterior(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (D,) and covariance (D, D) of ``mu`` given ``data`` (N, D)."""
        data = self.check_data(data)
        N, D = data.shape
        eye = torch.eye(D, dtype=data.dtype, device=data.device)
        noise_prec = torch.cholesky_inverse(self._noise_tril(D, data))
        prior_prec = eye / self._p("prior_scale", data) ** 2
        prec = prior_prec + N * noise_prec
        prec_tril = torch.linalg.cholesky(prec)
        rhs = prior_prec @ self._p("prior_loc", data).expand(D) + noise_prec @ data.sum(0)
        mean = torch.cholesky_solve(rhs[:, None], prec_tril)[:, 0]
        cov = torch.cholesky_inverse(prec_tril)
        return mean, 0.5 * (cov + cov.T)

    def exact_samples(self, data, num_samples: int, *, num_chains: int = 1, seed: int = 0) -> torch.Tensor:
        """Independent draws of ``mu`` from the exact posterior, shape (num_chains, num_samples, D)."""
        mean, cov = self.exact_posterior(data)
        g = torch.Generator(device=mean.device).manual_seed(int(seed))
        eps = torch.randn(num_chains, num_samples, mean.shape[0], generator=g, dtype=mean.dtype, device=mean.device)
        return mean + eps @ torch.linalg.cholesky(cov).T

    def log_evidence(self, data) -> torch.Tensor:
        """log p(data), a scalar: Bayes' rule p(x) = p(x | mu) p(mu) / p(mu | x) at the posterior mean."""
        data = self.check_data(data)
        mean, cov = self.exact_posterior(data)
        D = data.shape[1]
        prior = dist.Normal(self._p("prior_loc", data), self._p("prior_scale", data)).expand([D]).to_event(1)
        loglik = self.pointwise_log_likelihood({"mu": mean}, data).sum()
        return loglik + prior.log_prob(mean) - dist.MultivariateNormal(mean, covariance_matrix=cov).log_prob(mean)


@register_model("normal_normal")
def normal_normal(**kwargs) -> ConjugateGaussian:
    """Unknown mean vector, Normal prior, isotropic known noise: a diagonal exact posterior."""
    kwargs.setdefault("noise_corr", 0.0)
    return ConjugateGaussian(**kwargs)


@register_model("correlated_gaussian")
def correlated_gaussian(noise_corr: float = 0.95, **kwargs) -> ConjugateGaussian:
    """Unknown mean vector under equicorrelated noise (rho = 0.95): a strongly correlated exact posterior."""
    return ConjugateGaussian(noise_corr=noise_corr, **kwargs)
