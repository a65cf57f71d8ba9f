"""Generative adversarial network (Goodfellow et al. 2014) and the mathematics of its game (MATH.md section 6).

A generator G maps noise z ~ N(0, I) to x = G(z), which defines p_g implicitly: there is no likelihood.
A discriminator D(x) = sigmoid(logit(x)) is trained to tell data from generator draws by maximising

    V(D, G) = E_{p_r} log D(x) + E_{p_g} log(1 - D(x)),

whose maximiser for a fixed G is D*(x) = p_r(x) / (p_r(x) + p_g(x)), the logit log p_r - log p_g
(:func:`optimal_discriminator_logit`). At D*, V(D*, G) = 2 JS(p_r || p_g) - 2 log 2, so a generator
minimising V at the optimal discriminator minimises the Jensen-Shannon divergence; its gradient with D
held at D* is the gradient of 2 JS (the envelope argument), which vanishes when p_r and p_g barely
overlap. The non-saturating generator loss -E_{p_g} log D(G(z)) keeps a gradient there; at D* its
gradient is that of KL(p_g || p_r) - 2 JS(p_r || p_g) (Arjovsky and Bottou 2017, Theorem 2.5), a
reverse KL that puts no cost on the modes of p_r the generator misses: mode collapse.

Every function is written in log space (log D = -softplus(-logit), log(1 - D) = -softplus(logit)), is
batched over leading dims and follows its inputs' dtype and device. The quadrature functions integrate
log densities given on a 1-D grid (trapezoid rule), with 0 log 0 = 0 where a density vanishes (log density
-inf) and finite gradients there.

:class:`GAN` is the Pyro model (noise, then a deterministic site ``x``) with the protocol hook
``adversarial_parts``; ``inference.fit(gan, x, method="adversarial")`` trains it.
"""
from __future__ import annotations

import math

import pyro
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import as_data_tensor, check_choice, check_positive_int, is_working_float
from .base import AdversarialParts, ZooModel
from ._validation import Choice, InstanceOf, Int, Sizes, declare
from .nets import ACTIVATIONS, check_hidden, mlp
from .registry import register_model
from .vae import StandardNormalRows

__all__ = ["GAN", "gan", "GENERATOR_LOSSES", "discriminator_loss", "generator_loss", "optimal_discriminator_logit",
           "js_divergence", "kl_divergence", "gan_value"]

#: the generator's losses: ``minimax`` E_{p_g} log(1 - D) (the game's own, to minimise) and
#: ``non_saturating`` -E_{p_g} log D (the same fixed point, a gradient where D rejects the draws)
GENERATOR_LOSSES = ("minimax", "non_saturating")
_LOG2 = math.log(2.0)


# --- the losses -------------------------------------------------------------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-(E_real log D + E_fake log(1 - D)), the negated value of the game, D = sigmoid(logit).

    ``real_logits`` (..., N) and ``fake_logits`` (..., M): the discriminator's logits on N data and M
    generator draws; the means run over the last dim, so the result is (...). Written with softplus,
    -log D = softplus(-logit) and -log(1 - D) = softplus(logit): exact where D saturates.
    """
    return F.softplus(-real_logits).mean(-1) + F.softplus(fake_logits).mean(-1)


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's loss on the discriminator's logits at M generator draws, (..., M) -> (...).

    ``kind="minimax"``: E log(1 - D(G(z))) = -E softplus(logit), the game's value term to minimise;
    ``kind="non_saturating"``: -E log D(G(z)) = E softplus(-logit).
    """
    check_choice(kind, GENERATOR_LOSSES, "generator_loss")
    if kind == "minimax":
        return -F.softplus(fake_logits).mean(-1)
    return F.softplus(-fake_logits).mean(-1)


def optimal_discriminator_logit(log_p_r: torch.Tensor, log_p_g: torch.Tensor) -> torch.Tensor:
    """The logit of D* = p_r / (p_r + p_g): log p_r - log p_g, elementwise (broadcast).

    Where both densities vanish every D is optimal; the logit is 0 there (D = 1/2) rather than NaN.
    """
    log_p_r, log_p_g = torch.broadcast_tensors(log_p_r, log_p_g)
    both_zero = (log_p_r == -math.inf) & (log_p_g == -math.inf)
    zero = torch.zeros_like(log_p_r)
    return torch.where(both_zero, zero, log_p_r) - torch.where(both_zero, zero, log_p_g)


# --- quadrature --------------------------------------------------------------------------------------
def _grid(grid, *log_densities) -> torch.Tensor:
    """``grid`` as a strictly increasing 1-D tensor matching the last dim of every log density."""
    like = log_densities[0]
    if not like.is_floating_point():
        raise TypeError(f"log densities must be floating tensors, got dtype {like.dtype}")
    g = torch.as_tensor(grid, dtype=like.dtype, device=like.device)
    if g.dim() != 1 or g.shape[0] < 2:
        raise ValueError(f"grid must be 1-D with at least 2 points, got shape {tuple(g.shape)}")
    if not bool((g[1:] > g[:-1]).all()) or not bool(torch.isfinite(g).all()):
        raise ValueError("grid must be finite and strictly increasing")
    for t in log_densities:
        if t.shape[-1:] != g.shape:
            raise ValueError(f"log densities must have the grid's {g.shape[0]} points in their last dim, "
                             f"got shape {tuple(t.shape)}")
    return g


def _weighted(log_w: torch.Tensor, f) -> torch.Tensor:
    """exp(log_w) * f(safe log_w, live), and exactly 0 where the weight is 0 (log_w = -inf), with finite
    gradients there: ``f`` only ever sees finite weights (the double-where pattern)."""
    live = log_w > -math.inf
    safe = torch.where(live, log_w, torch.zeros_like(log_w))
    return torch.where(live, safe.exp() * f(safe, live), torch.zeros_like(safe))


def _masked(t: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    return torch.where(live, t, torch.zeros_like(t))


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor, grid) -> torch.Tensor:
    """KL(p || q) = int p (log p - log q) dx by the trapezoid rule; log densities (..., G) on ``grid`` (G,)
    -> (...). Infinite where q vanishes on p's support."""
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    g = _grid(grid, log_p, log_q)
    integrand = _weighted(log_p, lambda lp, live: lp - _masked(log_q, live))
    return torch.trapezoid(integrand, g, dim=-1)


def js_divergence(log_p: torch.Tensor, log_q: torch.Tensor, grid) -> torch.Tensor:
    """JS(p || q) = KL(p || m)/2 + KL(q || m)/2, m = (p + q)/2, by the trapezoid rule; log densities
    (..., G) on ``grid`` (G,) -> (...), in [0, log 2].

    Computed as log(p/m) = log 2 - softplus(log q - log p): no density ratio is formed, and the
    integrand stays finite where either density underflows.
    """
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    g = _grid(grid, log_p, log_q)
    p_part = _weighted(log_p, lambda lp, live: _LOG2 - F.softplus(_masked(log_q, live) - lp))
    q_part = _weighted(log_q, lambda lq, live: _LOG2 - F.softplus(_masked(log_p, live) - lq))
    return 0.5 * torch.trapezoid(p_part + q_part, g, dim=-1)


def gan_value(log_p_r: torch.Tensor, log_p_g: torch.Tensor, d_logit: torch.Tensor, grid) -> torch.Tensor:
    """V(D, G) = E_{p_r} log D + E_{p_g} log(1 - D) by the trapezoid rule, D = sigmoid(``d_logit``);
    every argument (..., G) on ``grid`` (G,) -> (...). At most 2 JS(p_r || p_g) - 2 log 2, reached
    at the logit of :func:`optimal_discriminator_logit`."""
    log_p_r, log_p_g, d_logit = torch.broadcast_tensors(log_p_r, log_p_g, d_logit)
    g = _grid(grid, log_p_r, log_p_g, d_logit)
    real = _weighted(log_p_r, lambda lp, live: -F.softplus(-_masked(d_logit, live)))
    fake = _weighted(log_p_g, lambda lp, live: -F.softplus(_masked(d_logit, live)))
    return torch.trapezoid(real + fake, g, dim=-1)


# --- the model ---------------------------------------------------------------------------------------
class GAN(ZooModel):
    """Generative adversarial network: x = G(z), z ~ N(0, I_noise_dim), against a discriminator D.

    Parameters
    ----------
    n_features : D, the data dimension.
    noise_dim : the dimension of the generator's noise z.
    hidden : hidden layer sizes of both MLPs (an int or a tuple): G is noise_dim -> hidden -> D and the
        discriminator D -> hidden -> 1 logit.
    generator_loss : one of :data:`GENERATOR_LOSSES`.
    activation : the MLPs' hidden activation (``relu``, ``tanh``, ``softplus``, ``elu``, ``sigmoid``).
    generator, discriminator : your own ``nn.Module`` instead of an MLP: the generator maps (B, noise_dim)
        noise to (B, D) draws, the discriminator (B, D) data to (B, 1) or (B,) logits. A module without
        trainable parameters stays fixed (e.g. a known p_g, to train the discriminator alone).

    The Pyro model has no likelihood: in plate ``data`` the noise ``z`` (N, noise_dim) is sampled and
    ``x = G(z)`` (N, D) is a deterministic site. It is trained with ``inference.fit(model, x,
    method="adversarial")`` through the hook :meth:`adversarial_parts`; no guide applies.
    """

    supported_guides = ()  # nothing to infer: the fit is a game, not a posterior

    @declare(n_features=Int(ge=1), noise_dim=Int(ge=1), hidden=Sizes(), generator_loss=Choice(GENERATOR_LOSSES),
             activation=Choice(*ACTIVATIONS), generator=InstanceOf(nn.Module, what="a torch.nn.Module", none=True),
             discriminator=InstanceOf(nn.Module, what="a torch.nn.Module", none=True))
    def __init__(self, n_features: int, noise_dim: int = 2, hidden=(64, 64), *, generator_loss: str = "non_saturating",
                 activation: str = "relu", generator: nn.Module | None = None,
                 discriminator: nn.Module | None = None):
        super().__init__()
        self.n_features = check_positive_int(n_features, "n_features")
        self.noise_dim = check_positive_int(noise_dim, "noise_dim")
        self.hidden = check_hidden(hidden)
        self.generator_loss = check_choice(generator_loss, GENERATOR_LOSSES, "generator_loss")
        self.activation = check_choice(activation, ACTIVATIONS, "activation")
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if net is not None and not isinstance(net, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module or None, got {type(net).__name__}")
        self.generator = generator if generator is not None else mlp(
            (self.noise_dim, *self.hidden, self.n_features), self.activation)
        self.discriminator = discriminator if discriminator is not None else mlp(
            (self.n_features, *self.hidden, 1), self.activation)
        # dtype and device of the noise: a user's generator may hold no tensor at all to read them from
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def _dtype(self) -> torch.dtype:
        return self._anchor.dtype

    @property
    def _device(self) -> torch.device:
        return self._anchor.device

    # --- data ------------------------------------------------------------------------------------
    def check_data(self, data) -> torch.Tensor:
        """x (N, D): finite, 2-D, ``n_features`` columns. A floating tensor keeps its dtype and device and
        the model follows it; other input becomes the model's dtype."""
        floating = is_working_float(data)  # half precision and integers become the model's dtype
        x = as_data_tensor(data, name="data", allow_1d=False, dtype=None if floating else self._dtype)
        if x.shape[1] != self.n_features:
            raise ValueError(f"data has {x.shape[1]} features; this GAN was built for n_features={self.n_features}")
        if x.dtype != self._dtype or x.device != self._device:
            self.to(dtype=x.dtype, device=x.device)
        return x

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """Fresh weights for both networks from ``seed`` (each submodule's own ``reset_parameters``: PyTorch's
        default initialisation), then the networks move to the data's dtype and device."""
        dtype = data.dtype if data.is_floating_point() else self._dtype
        # initialised on the CPU in the data's dtype: one seed gives the same networks on every device
        self.to(dtype=dtype, device="cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for net in (self.generator, self.discriminator):
                for m in net.modules():
                    reset = getattr(m, "reset_parameters", None)
                    if callable(reset):
                        reset()
        self.to(device=data.device)

    # --- the networks ----------------------------------------------------------------------------
    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, dtype=self._dtype, device=self._device)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        x = self.generator(z)
        if x.shape != (*z.shape[:-1], self.n_features):
            raise ValueError(f"the generator maps noise {tuple(z.shape)} to {tuple(x.shape)}; expected "
                             f"{(*z.shape[:-1], self.n_features)}")
        return x

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.discriminator(x)
        if out.dim() == x.dim() and out.shape[-1] == 1:
            out = out.squeeze(-1)
        if out.shape != x.shape[:-1]:
            raise ValueError(f"the discriminator maps {tuple(x.shape)} to {tuple(out.shape)}; expected "
                             f"{tuple(x.shape[:-1])} or {(*x.shape[:-1], 1)} logits")
        return out

    # --- the Pyro model --------------------------------------------------------------------------
    def model(self, data: torch.Tensor):
        """z ~ N(0, I) (N, noise_dim) and the deterministic x = G(z) (N, D): an implicit model, no likelihood."""
        with pyro.plate("data", data.shape[0], device=data.device):
            z = pyro.sample("z", StandardNormalRows(self.noise_dim, dtype=data.dtype, device=data.device))
            pyro.deterministic("x", self._generate(z), event_dim=1)

    def pointwise_log_likelihood(self, samples, data):
        raise ValueError("a GAN has no likelihood: p_g is implicit (x = G(z)); compare its draws (sample) with the "
                         "data instead, e.g. by a two-sample test or a density estimate")

    def adversarial_parts(self) -> AdversarialParts:
        """The generator, the discriminator and their losses (see :class:`zoo.base.AdversarialParts`):
        :func:`discriminator_loss` on a data batch and as many fresh draws, and :func:`generator_loss` of
        the model's ``generator_loss`` kind on fresh draws."""
        return AdversarialParts(self.generator, self.discriminator, self._discriminator_loss,
                                self._generator_loss, self.sample)

    def _discriminator_loss(self, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the fakes are data to the discriminator: no graph back to G
            fake = self._generate(self._noise(real.shape[0]))
        return discriminator_loss(self._logits(real), self._logits(fake))

    def _generator_loss(self, batch_size: int) -> torch.Tensor:
        return generator_loss(self._logits(self._generate(self._noise(batch_size))), self.generator_loss)

    # --- draws and evaluation --------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` draws x = G(z) of the generator, (n, D), in the model's dtype and device (no graph)."""
        return self._generate(self._noise(check_positive_int(n, "n")))

    @torch.no_grad()
    def discriminate(self, x, *, logits: bool = False) -> torch.Tensor:
        """D(x) in (0, 1) for x (N, D), shape (N,): the discriminator's probability that x is data
        (its logit with ``logits=True``); no graph."""
        x = as_data_tensor(x, name="x", allow_1d=False, dtype=self._dtype, device=self._device)
        if x.shape[1] != self.n_features:
            raise ValueError(f"x has {x.shape[1]} features; this GAN was built for n_features={self.n_features}")
        out = self._logits(x)
        return out if logits else torch.sigmoid(out)


@register_model("gan")
def gan(n_features: int = 2, noise_dim: int = 2, hidden=(64, 64), **kwargs) -> GAN:
    """Generative adversarial network: an MLP generator of N(0, I) noise against an MLP discriminator."""
    return GAN(n_features, noise_dim, hidden, **kwargs)
