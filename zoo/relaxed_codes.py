"""Relaxed assignment codes (seed 001): a one-hot code per datum replaced by softargmax(beta u_b).

The note relaxes the hard assignment of each datum x_b to a component into a differentiable code,

    J(u, m) = sum_b log sum_k softmax(beta u_b)_k p(x_b | k, m),

and maximises it jointly over free code logits u (N x K) and the parameters m, raising beta during
the optimisation so that the codes end one-hot. Here p(x | k, m) = N(x; m_k, s^2 I): Gaussian
components with a fixed shared spherical variance, the model whose hard EM is k-means.

What the relaxation optimises: for fixed m and any distribution w over k, sum_k w_k p_k <= max_k p_k,
with equality only when w is one-hot on the arg-max. So at every beta the supremum over free u is
the classification likelihood sum_b max_k log p(x_b | k, m) (:func:`classification_log_likelihood`),
approached as the codes become one-hot, and the joint supremum over (u, m) is k-means' objective. beta
changes only the path: Adam's step does not depend on the scale of a gradient, so the logits beta u
move by about beta x (the codes' learning rate) per step, and a constant beta is the same run as
beta = 1 with that many times the learning rate (measured in the tests). Unlike hard EM, which
re-assigns every datum at every iteration, a code that has become one-hot has a vanishing gradient
and stays where it is; a beta that is large early freezes the first assignments (measured too).

Shapes: data ``x`` (N, D); ``means`` (..., K, D) with any leading batch dimensions, each an
independent run; codes ``u`` (..., N, K).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

__all__ = ["component_log_prob", "relaxed_log_likelihood", "classification_log_likelihood",
           "mixture_log_likelihood", "beta_schedule", "fit_relaxed_codes", "RelaxedFit"]


def component_log_prob(x, means, scale: float = 1.0):
    """log N(x_b; m_k, scale^2 I) for every datum and component: (N, D) x (..., K, D) -> (..., N, K)."""
    D = x.shape[-1]
    d2 = (x.unsqueeze(-2) - means.unsqueeze(-3)).pow(2).sum(-1)
    return -0.5 * d2 / scale**2 - D * math.log(scale) - 0.5 * D * math.log(2 * math.pi)


def relaxed_log_likelihood(u, x, means, beta, scale: float = 1.0):
    """log sum_k softmax(beta u_b)_k N(x_b; m_k, scale^2 I) per datum, (..., N). ``beta`` is a number or
    a tensor broadcasting over the leading dimensions (...)."""
    beta = torch.as_tensor(beta, dtype=u.dtype, device=u.device)
    logits = beta.reshape(beta.shape + (1, 1)) * u
    return torch.logsumexp(torch.log_softmax(logits, -1) + component_log_prob(x, means, scale), -1)


def classification_log_likelihood(x, means, scale: float = 1.0):
    """max_k log N(x_b; m_k, scale^2 I) per datum, (..., N): the hard-assignment (classification)
    likelihood, the supremum of :func:`relaxed_log_likelihood` over free codes at any beta. Its sum is
    k-means' objective, -inertia / (2 scale^2), up to a constant."""
    return component_log_prob(x, means, scale).max(-1).values


def mixture_log_likelihood(x, means, scale: float = 1.0):
    """log (1/K) sum_k N(x_b; m_k, scale^2 I) per datum, (..., N): the log-likelihood of the equal-weight
    mixture with the same components (what EM on that model would maximise)."""
    K = means.shape[-2]
    return torch.logsumexp(component_log_prob(x, means, scale), -1) - math.log(K)


def beta_schedule(beta, num_steps: int, *, dtype=torch.float64) -> torch.Tensor:
    """beta at every step, (num_steps, ...): a number or tensor (constant), a pair ``(beta0, beta1)``
    (geometric from beta0 to beta1; either may be a tensor, one value per run) or a callable
    ``step -> beta``."""
    if callable(beta):
        return torch.stack([torch.as_tensor(beta(i), dtype=dtype) for i in range(num_steps)])
    if isinstance(beta, (tuple, list)):
        if len(beta) != 2:
            raise ValueError(f"a beta schedule (beta0, beta1) has two entries, got {beta!r}")
        b0, b1 = (torch.as_tensor(b, dtype=dtype) for b in beta)
        if bool((b0 <= 0).any()) or bool((b1 <= 0).any()):
            raise ValueError("a geometric beta schedule needs beta0 > 0 and beta1 > 0")
        t = torch.linspace(0.0, 1.0, num_steps, dtype=dtype).reshape((num_steps,) + (1,) * max(b0.dim(), b1.dim()))
        return b0 * (b1 / b0) ** t
    b = torch.as_tensor(beta, dtype=dtype)
    return b.expand((num_steps,) + b.shape).clone()


class RelaxedFit(NamedTuple):
    """What :func:`fit_relaxed_codes` returns. ``u`` (..., N, K): code logits; ``weights`` (..., N, K):
    softmax(beta u) at the last beta; ``means`` (..., K, D); ``betas`` (num_steps, ...); ``objective``
    (num_steps, ...): the mean per datum of J before each step."""

    u: torch.Tensor
    weights: torch.Tensor
    means: torch.Tensor
    betas: torch.Tensor
    objective: torch.Tensor

    def onehot_fraction(self, threshold: float = 0.99) -> torch.Tensor:
        """The fraction of codes whose largest weight is above ``threshold``, (...)."""
        return (self.weights.max(-1).values > threshold).to(self.weights.dtype).mean(-1)

    @property
    def labels(self) -> torch.Tensor:
        """The arg-max of every code, (..., N)."""
        return self.weights.argmax(-1)


def fit_relaxed_codes(x, means_init, *, scale: float = 1.0, beta: float | tuple | Callable = (1.0, 30.0),
                      num_steps: int = 500, lr_codes: float = 0.1, lr_means: float = 0.05,
                      u_init=None) -> RelaxedFit:
    """Maximise J(u, m) (:func:`relaxed_log_likelihood`, summed over the data) jointly over the code
    logits u and the means m by Adam, with beta following :func:`beta_schedule`.

    ``means_init`` (..., K, D): a batch of independent runs (one Adam over all of them: the objective
    is their sum, and Adam's steps are per coordinate, so the runs do not interact). ``u_init``
    defaults to zeros (uniform codes: the first step is then EM's gradient on the equal-weight
    mixture). ``beta`` may hold one value per run.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    m = torch.as_tensor(means_init, dtype=x.dtype).clone().requires_grad_(True)
    batch, K, N = m.shape[:-2], m.shape[-2], x.shape[0]
    u = (torch.zeros(batch + (N, K), dtype=x.dtype) if u_init is None
         else torch.as_tensor(u_init, dtype=x.dtype).expand(batch + (N, K)).clone()).requires_grad_(True)
    betas = beta_schedule(beta, num_steps, dtype=x.dtype)
    if betas.dim() - 1 > len(batch):
        raise ValueError(f"beta has shape {tuple(betas.shape[1:])} but the runs' batch shape is {tuple(batch)}")
    betas = betas.reshape((num_steps,) + (1,) * (len(batch) - betas.dim() + 1) + betas.shape[1:])
    betas = betas.expand((num_steps,) + batch)  # one beta per run and step
    opt = torch.optim.Adam([{"params": [u], "lr": lr_codes}, {"params": [m], "lr": lr_means}])
    objective = torch.empty((num_steps,) + batch, dtype=x.dtype)
    for i in range(num_steps):
        opt.zero_grad()
        J = relaxed_log_likelihood(u, x, m, betas[i], scale)  # (..., N)
        objective[i] = J.detach().mean(-1)
        (-J.sum()).backward()
        opt.step()
    with torch.no_grad():
        b = betas[-1].reshape(batch + (1, 1))
        weights = torch.softmax(b * u, -1)
    return RelaxedFit(u.detach(), weights, m.detach(), betas, objective)
