"""Per-datum objectives of the mixture notes, as batched, log-space, autograd-safe functions.

Shapes: ``x`` (..., D), ``z`` (..., E), prototypes ``A`` (K, D), latent anchors
``B`` (K, E), mixture weights ``weights`` (..., K). Leading dimensions broadcast.

GLGAE (Gaussian-latent generative autoencoder):

    log p(x | k) = -||x - A_k||^2                       (unnormalised; variance 1/2)
    q(k | z)     = exp(-||B_k - z||^2) / (a(z) + sum_j exp(-||B_j - z||^2))
    L2(z, x)     = log sum_k q(k | z) p(x | k)

where the absorbing weight a(z) is ``0`` (no absorbing component), a constant
``b > 0``, or ``exp(||z||^2)`` (the variant of the notes' section 2b). The
absorbing category emits no data, so sum_k q(k|z) < 1 when a(z) > 0.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "sq_dist", "log_absorbing_weight", "log_q_given_z", "argmax_q", "log_p_x_given_k", "L2", "L2_eol_bound",
    "EOP", "LEOP", "EOL", "LOE", "ABSORBING",
]

#: kinds of absorbing weight a(z): none (a = 0), a constant b, exp(||z||^2)
ABSORBING = ("none", "constant", "exp_norm")


def sq_dist(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """||u - c_k||^2 for every centre: (..., F) x (K, F) -> (..., K)."""
    return (u.unsqueeze(-2) - centres).pow(2).sum(-1)


def log_absorbing_weight(z: torch.Tensor, absorbing: str = "constant", b=0.0) -> torch.Tensor:
    """log a(z), shape (...): -inf for none (or b = 0), log b for constant, ||z||^2 for exp_norm."""
    if absorbing == "none":
        return torch.full(z.shape[:-1], -math.inf, dtype=z.dtype, device=z.device)
    if absorbing == "constant":
        b = torch.as_tensor(b, dtype=z.dtype, device=z.device)
        return torch.log(b).expand(z.shape[:-1])
    if absorbing == "exp_norm":
        return z.pow(2).sum(-1)
    raise ValueError(f"unknown absorbing {absorbing!r}; known: {', '.join(map(repr, ABSORBING))}")


def log_q_given_z(z, B, absorbing: str = "constant", b=0.0, *, with_absorbing: bool = False,
                  logit_penalty: float = 0.0):
    """log q(k | z) for the K real components, shape (..., K); with ``with_absorbing`` the absorbing
    category's log-probability is appended as entry K (shape (..., K + 1)). ``logit_penalty`` lambda adds
    -lambda ||z||^2 to every logit, the absorbing one included: one of the notes' attempted fixes of
    push-away, which cancels on normalising (computed, not assumed)."""
    logits = -sq_dist(z, B)
    log_a = log_absorbing_weight(z, absorbing, b).unsqueeze(-1)
    full = torch.cat([logits, log_a], dim=-1)
    if logit_penalty:
        full = full - logit_penalty * z.pow(2).sum(-1, keepdim=True)
    log_q = full - torch.logsumexp(full, dim=-1, keepdim=True)
    return log_q if with_absorbing else log_q[..., :-1]


def argmax_q(B, k: int = 0, absorbing: str = "exp_norm", b=0.0, z0=None) -> tuple[torch.Tensor, float]:
    """The code z maximising q(k | z) (finite only with an absorbing component), by L-BFGS from ``z0``
    (default: the anchor B_k plus 0.5). Returns (z (E,), q(k | z)). The notes' worked example is
    ``argmax_q(torch.tensor([[0.0], [-1.0]]))``: z = 0.13529, q = 0.4314."""
    B = torch.as_tensor(B)
    z = (B[k] + 0.5 if z0 is None else torch.as_tensor(z0, dtype=B.dtype)).detach().clone()[None]
    z.requires_grad_(True)
    opt = torch.optim.LBFGS([z], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-14)

    def closure():
        opt.zero_grad()
        loss = -log_q_given_z(z, B, absorbing, b)[..., k].sum()
        loss.backward()
        return loss

    opt.step(closure)
    z = z.detach()[0]
    return z, log_q_given_z(z, B, absorbing, b)[k].exp().item()


def log_p_x_given_k(x, A, scale: float | None = None):
    """log p(x | k), shape (..., K). ``scale=None`` is the notes' unnormalised -||x - A_k||^2; a number
    gives the normalised Gaussian log N(x; A_k, scale^2 I)."""
    d2 = sq_dist(x, A)
    if scale is None:
        return -d2
    D = x.shape[-1]
    return -0.5 * d2 / scale**2 - D * math.log(scale) - 0.5 * D * math.log(2 * math.pi)


def L2(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None):
    """L2(z, x) = log sum_k q(k|z) p(x|k), shape (...)."""
    return torch.logsumexp(log_q_given_z(z, B, absorbing, b) + log_p_x_given_k(x, A, scale), dim=-1)


def L2_eol_bound(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None):
    """The Jensen lower bound sum_k q(k|z) log p(x|k) of L2 (exact when q has no absorbing mass and
    is one-hot); with absorbing mass it is a bound of log(sum_k q_k p_k) only up to the missing mass."""
    q = log_q_given_z(z, B, absorbing, b).exp()
    return (q * log_p_x_given_k(x, A, scale)).sum(-1)


# --- mixture objectives of section 1, with component weights p(c_k) --------------------
def EOP(x, A, weights, scale: float | None = None):
    """Expectation of probability: sum_k p(c_k) p(x|c_k), shape (...)."""
    return LEOP(x, A, weights, scale).exp()


def LEOP(x, A, weights, scale: float | None = None):
    """Log of the expected probability (the log-likelihood): log sum_k p(c_k) p(x|c_k)."""
    return torch.logsumexp(torch.log(weights) + log_p_x_given_k(x, A, scale), dim=-1)


def EOL(x, A, weights, scale: float | None = None):
    """Expected log-likelihood: sum_k p(c_k) log p(x|c_k) <= LEOP (Jensen)."""
    return (weights * log_p_x_given_k(x, A, scale)).sum(-1)


def LOE(x, A, weights):
    """Log of the decoded expectation: -||x - sum_k p(c_k) A_k||^2."""
    return -(x - weights @ A).pow(2).sum(-1)
