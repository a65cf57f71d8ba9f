"""Per-datum objectives of the mixture notes, as batched, log-space, autograd-safe functions.

Shapes: ``x`` (..., D), ``z`` (..., E), prototypes ``A`` (K, D), latent anchors
``B`` (K, E), mixture weights ``weights`` (..., K). Leading dimensions broadcast.

GLGAE (Gaussian-latent generative autoencoder):

    log p(x | k) = -||x - A_k||^2                       (unnormalised; variance 1/2)
    q(k | z)     = exp(-||B_k - z||^2) / (a(z) + sum_j exp(-||B_j - z||^2))
    L2(z, x)     = log sum_k q(k | z) p(x | k)

where the absorbing weight a(z) is ``0`` (no absorbing component), a constant
``b > 0``, or ``exp(||z||^2)`` (the variant of the notes' section 2b). The
absorbing category emits no data, so sum_k q(k|z) < 1 when a(z) > 0. The distance
in q(k | z) is the squared Euclidean one unless ``distance="l1"`` (the notes' "attempt
one" against push-away: -||B_k - z||_1 in the logits).

The notes' other claims about these objectives, each with the function that measures it:

* seed 000's L1 = log E_{p(k|x)} p(x|k) and its Jensen bound (:func:`L1`, :func:`L1_lower_bound`);
* the exact gap L2 - EOL = KL(q || r) without absorbing mass, and the bound that holds with it
  (:func:`L2_eol_bound`, :func:`L2_normalised_eol_bound`);
* seed 001's EOL bound on the code and its fixed-point step (:func:`eol_code_bound`,
  :func:`eol_fixed_point_step`);
* the L1-distance cap on q(k | z) (:func:`l1_confidence_cap`).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "sq_dist", "l1_dist", "code_dist", "log_absorbing_weight", "log_q_given_z", "argmax_q", "log_p_x_given_k",
    "L2", "L2_eol_bound", "L2_normalised_eol_bound", "log_p_k_given_x", "L1", "L1_lower_bound", "kl_categorical",
    "eol_code_bound", "eol_fixed_point_step", "l1_confidence_cap", "EOP", "LEOP", "EOL", "LOE", "ABSORBING",
    "DISTANCES",
]

#: kinds of absorbing weight a(z): none (a = 0), a constant b, exp(||z||^2)
ABSORBING = ("none", "constant", "exp_norm")
#: distances between a code and an anchor in q(k | z): squared Euclidean (the notes' default) or L1
DISTANCES = ("sq_euclidean", "l1")


def sq_dist(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """||u - c_k||^2 for every centre: (..., F) x (K, F) -> (..., K)."""
    return (u.unsqueeze(-2) - centres).pow(2).sum(-1)


def l1_dist(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """||u - c_k||_1 for every centre: (..., F) x (K, F) -> (..., K)."""
    return (u.unsqueeze(-2) - centres).abs().sum(-1)


def code_dist(u: torch.Tensor, centres: torch.Tensor, distance: str = "sq_euclidean") -> torch.Tensor:
    """The distance of q(k | z), (..., F) x (K, F) -> (..., K): ``"sq_euclidean"`` or ``"l1"``."""
    if distance == "sq_euclidean":
        return sq_dist(u, centres)
    if distance == "l1":
        return l1_dist(u, centres)
    raise ValueError(f"unknown distance {distance!r}; known: {', '.join(map(repr, DISTANCES))}")


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
                  logit_penalty: float = 0.0, distance: str = "sq_euclidean"):
    """log q(k | z) for the K real components, shape (..., K); with ``with_absorbing`` the absorbing
    category's log-probability is appended as entry K (shape (..., K + 1)). ``logit_penalty`` lambda adds
    -lambda ||z||^2 to every logit, the absorbing one included: one of the notes' attempted fixes of
    push-away, which cancels on normalising (computed, not assumed). ``distance="l1"`` puts
    -||B_k - z||_1 in the logits instead of -||B_k - z||^2 (another attempted fix: see
    :func:`l1_confidence_cap`)."""
    logits = -code_dist(z, B, distance)
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


def L2(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None, *,
       distance: str = "sq_euclidean"):
    """L2(z, x) = log sum_k q(k|z) p(x|k), shape (...)."""
    return torch.logsumexp(log_q_given_z(z, B, absorbing, b, distance=distance) + log_p_x_given_k(x, A, scale),
                           dim=-1)


def L2_eol_bound(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None, *,
                 distance: str = "sq_euclidean"):
    """EOL = sum_k q(k|z) log p(x|k), shape (...).

    Without absorbing mass (q sums to 1) it is Jensen's lower bound of L2, and the gap is exactly
    L2 - EOL = KL(q || r) with r_k = q_k p_k / sum_j q_j p_j, the posterior over k given z and x. With
    absorbing mass (s = sum_k q_k < 1) it is *not* a lower bound of L2: it shrinks the negative
    log p(x|k) by s, and exceeds L2 in most configurations (measured in the tests); the bound that
    holds then is :func:`L2_normalised_eol_bound`."""
    q = log_q_given_z(z, B, absorbing, b, distance=distance).exp()
    return (q * log_p_x_given_k(x, A, scale)).sum(-1)


def L2_normalised_eol_bound(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None, *,
                            distance: str = "sq_euclidean"):
    """log s + EOL / s <= L2, shape (...), with s = sum_k q(k|z) the real components' mass.

    Jensen's inequality applied to the normalised q_k / s: L2 = log s + log sum_k (q_k / s) p_k
    >= log s + sum_k (q_k / s) log p_k. It holds for every absorbing weight and equals
    :func:`L2_eol_bound` when s = 1."""
    log_q = log_q_given_z(z, B, absorbing, b, distance=distance)
    log_s = torch.logsumexp(log_q, -1)
    w = (log_q - log_s.unsqueeze(-1)).exp()
    return log_s + (w * log_p_x_given_k(x, A, scale)).sum(-1)


def kl_categorical(log_q, log_r):
    """KL(q || r) = sum_k q_k (log q_k - log r_k) of two categorical distributions given by their
    log-probabilities (..., K) -> (...); terms with q_k = 0 count 0."""
    q = log_q.exp()
    return torch.where(q > 0, q * (log_q - log_r), torch.zeros_like(q)).sum(-1)


# --- seed 000: L1 and its Jensen bound --------------------------------------------------
def log_p_k_given_x(x, A, scale: float | None = None):
    """log p(k | x) = log p(x|k) - log sum_j p(x|j) under equal component weights, shape (..., K)."""
    log_p = log_p_x_given_k(x, A, scale)
    return log_p - torch.logsumexp(log_p, -1, keepdim=True)


def L1(x, A, scale: float | None = None):
    """Seed 000's L1(x) = log E_{p(k|x)} p(x|k) = log sum_k p(k|x) p(x|k), shape (...). It does not
    depend on a code: L1 = log(sum_k p_k^2 / sum_k p_k) <= log max_k p_k."""
    log_p = log_p_x_given_k(x, A, scale)
    return torch.logsumexp(log_p_k_given_x(x, A, scale) + log_p, -1)


def L1_lower_bound(z, x, A, B, scale: float | None = None, *, distance: str = "sq_euclidean"):
    """E_q[log p(x|k)] - KL(q(k|z) || p(k|x)) <= L1(x), shape (...), for the code distribution
    q(k|z) without absorbing mass (a distribution over the K components).

    Jensen's inequality on L1 = log sum_k q_k [p(k|x) p(x|k) / q_k]. The note writes "+ KL" (a sign
    slip) and then drops the KL to conclude L1 >= E_q[log p(x|k)]; both fail in general (measured in
    the tests: E_q[log p(x|k)] can reach log max_k p(x|k) >= L1)."""
    log_q = log_q_given_z(z, B, "none", distance=distance)
    e_log_p = (log_q.exp() * log_p_x_given_k(x, A, scale)).sum(-1)
    return e_log_p - kl_categorical(log_q, log_p_k_given_x(x, A, scale))


# --- seed 001: the EOL bound on the code and its fixed-point step ------------------------
def eol_code_bound(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None):
    """Seed 001's "EOL" bound on the code, shape (...):

        bound(z) = log sum_k p(x|k) + sum_k a_k log q(k|z),   a_k = p(x|k) / sum_j p(x|j),

    Jensen's inequality on L2(z) = log sum_k p(x|k) + log sum_k a_k q(k|z) with the weights a_k,
    which sum to 1 whatever the absorbing weight: bound <= L2 for every absorbing weight."""
    log_p = log_p_x_given_k(x, A, scale)
    log_sum = torch.logsumexp(log_p, -1)
    a = (log_p - log_sum.unsqueeze(-1)).exp()
    return log_sum + (a * log_q_given_z(z, B, absorbing, b)).sum(-1)


def eol_fixed_point_step(z, x, A, B, absorbing: str = "constant", b=0.0, scale: float | None = None):
    """The note's E-step for the code: z <- sum_k (a_k - q_k) B_k / sum_k (a_k - q_k).

    a_k = p(k|x) as in :func:`eol_code_bound` and q_k = q(k|z). Returns ``(z_new (..., E),
    denominator (...))``. The denominator is 1 - sum_k q_k, the absorbing mass. The gradient of the
    bound is 2 [sum_k (a_k - q_k) B_k - c z] with c the absorbing mass for a constant weight b (so a
    fixed point of the step is a stationary point of the bound), twice the absorbing mass for
    a(z) = exp(||z||^2) (so a fixed point is not one, unless z = 0), and 0 without absorbing
    component. There the denominator is 1 - 1 = 0 identically: the step divides rounding noise by
    rounding noise, while the bound's stationarity condition, sum_k (a_k - q_k) B_k = 0, says nothing
    the step can use. Whether the iteration raises the bound, converges, and where, is measured in the
    tests."""
    a = log_p_k_given_x(x, A, scale).exp()
    q = log_q_given_z(z, B, absorbing, b).exp()
    diff = a - q
    denom = diff.sum(-1)
    # einsum, not @: B may carry the leading dimensions of z (a batch of configurations)
    return torch.einsum("...k,...ke->...e", diff, B) / denom.unsqueeze(-1), denom


def l1_confidence_cap(B, k: int = 0) -> float:
    """The largest q(k | z) that the L1 distance allows without absorbing mass:
    1 / (1 + sum_{j != k} exp(-||B_k - B_j||_1)).

    By the triangle inequality ||z - B_j||_1 - ||z - B_k||_1 <= ||B_k - B_j||_1, so every ratio
    q_k / q_j is at most exp(||B_k - B_j||_1). Every inequality is tight at z = B_k, so the cap is
    the maximum; where B_k lies on an L1 geodesic from z to every other anchor (in 1-D: every z beyond
    an extreme anchor) it is reached on an unbounded flat region, and MAP ascent stops anywhere in it."""
    B = torch.as_tensor(B)
    d = (B - B[k]).abs().sum(-1)
    others = torch.cat([d[:k], d[k + 1:]])
    return 1.0 / (1.0 + torch.exp(-others).sum().item())


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
