"""Autoencoder baselines sharing the VAE's network code: deterministic, denoising and sparse
(MATH.md section 6).

As Pyro models: each datum has a code under an improper flat prior; ``obs`` is reconstructed from
the code by the decoder (Bernoulli logits for binary data, or N(g(code), 1/2 I), whose log-density is
-||x - g(code)||^2 up to a constant). The ``custom`` guide is a point mass at the encoder's output
f(x) (at f of the corrupted x for the denoising variant). A point mass under a flat prior has zero
entropy and zero log prior, so the ELBO is exactly the negative reconstruction loss, and
``inference.fit(model, x, guide="custom")`` trains the autoencoder. The sparse variant adds the penalty
``beta * sum_j KL(rho || rho_hat_j)`` (rho_hat_j: unit j's mean activation over the batch) as a
``pyro.factor``.
"""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_positive_int
from .base import ZooModel
from .glgae import FlatPrior
from ._validation import Bool, Choice, Int, Real, Sizes, declare
from .nets import ACTIVATIONS, CodeEncoder, Decoder, check_hidden
from .registry import register_model
from .vae import LIKELIHOODS, _ids, check_network_data

__all__ = ["Autoencoder", "autoencoder", "StackedAutoencoder", "stacked_autoencoder", "sparsity_penalty", "KINDS",
           "AE_LIKELIHOODS"]

KINDS = ("deterministic", "denoising", "sparse")
#: the decoders' likelihoods: the VAE's, and "cross_entropy" (Bernoulli logits against targets in
#: [0, 1], the loss of a layer that reconstructs the sigmoid codes of the layer below)
AE_LIKELIHOODS = (*LIKELIHOODS, "cross_entropy")


def sparsity_penalty(rho_hat: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) for mean activations rho_hat (..., C) in (0, 1);
    returns (...)."""
    if not 0 < rho < 1:
        raise ValueError(f"the target activation rho must be in (0, 1), got {rho}")
    r = rho_hat.clamp(1e-6, 1 - 1e-6)
    return (rho * (math.log(rho) - r.log()) + (1 - rho) * (math.log1p(-rho) - torch.log1p(-r))).sum(-1)


class AutoencoderGuide(nn.Module):
    def __init__(self, ae: "Autoencoder"):
        super().__init__()
        self.encoder = ae.encoder
        object.__setattr__(self, "ae", ae)

    def forward(self, data, subsample_size=None):
        return self.ae.guide(data, subsample_size)


class Autoencoder(ZooModel):
    """Deterministic, denoising or sparse autoencoder.

    Parameters
    ----------
    n_features : D. code_dim : C, the code size. hidden : encoder hidden sizes (the decoder mirrors them).
    kind : ``"deterministic"``, ``"denoising"`` (each input dimension zeroed with probability
        ``noise`` during training) or ``"sparse"`` (penalty ``beta * sum_j KL(rho || rho_hat_j)``).
    likelihood : ``"bernoulli"`` (cross-entropy, binary data), ``"cross_entropy"`` (the same loss for
        data in [0, 1]) or ``"gaussian"`` (squared error).
    sigmoid_code : sigmoid code units in (0, 1) (default: only for the sparse variant; linear units
        otherwise).

    Codes are linear units, sigmoid units in (0, 1) for the sparse variant. Data (N, D); latent site ``code`` (N, C) in plate ``data``.
    """

    max_posterior_draws = 1
    supports_minibatch = True
    supported_guides = ("custom",)  # as the VAE: pyro.module does not run inside an autoguide
    site_dims = {"code": ["obs_id", "unit"]}

    @property
    def supports_data_parallel(self) -> bool:
        """Only the deterministic variant runs data parallel: the denoising corruption draws its noise
        per process, and the sparsity penalty is a function of the whole batch's mean code."""
        return self.kind == "deterministic"

    @declare(n_features=Int(ge=1), code_dim=Int(ge=1), hidden=Sizes(), kind=Choice(KINDS),
             likelihood=Choice(AE_LIKELIHOODS), noise=Real(ge=0, lt=1), rho=Real(gt=0, lt=1), beta=Real(ge=0),
             activation=Choice(*ACTIVATIONS), sigmoid_code=Bool(none=True))
    def __init__(self, n_features: int, code_dim: int = 10, hidden=(200,), *, kind: str = "deterministic",
                 likelihood: str = "bernoulli", noise: float = 0.25, rho: float = 0.05, beta: float = 1.0,
                 activation: str = "relu", sigmoid_code: bool | None = None):
        super().__init__()
        self.n_features = check_positive_int(n_features, "n_features")
        self.code_dim = check_positive_int(code_dim, "code_dim")
        self.hidden = check_hidden(hidden)
        self.kind = check_choice(kind, KINDS, "kind")
        self.likelihood = check_choice(likelihood, AE_LIKELIHOODS, "likelihood")
        self.noise, self.rho, self.beta = float(noise), float(rho), float(beta)
        self.sigmoid_code = self.kind == "sparse" if sigmoid_code is None else bool(sigmoid_code)
        self.encoder = CodeEncoder(n_features, code_dim, self.hidden, activation, sigmoid=self.sigmoid_code)
        self.decoder = Decoder(code_dim, n_features, self.hidden, activation)
        uid = next(_ids)
        self._names = {k: f"ae{uid}.{k}" for k in ("encoder", "decoder")}
        self._guide = None

    @property
    def _dtype(self):
        return self.decoder.net[0].weight.dtype

    def check_data(self, data) -> torch.Tensor:
        """Validate x (N, D): finite, D features, binary for the Bernoulli decoder; the model follows a
        floating input's dtype and device."""
        x = check_network_data(self, data, "this autoencoder")
        if self.likelihood == "cross_entropy" and bool(((x < 0) | (x > 1)).any()):
            raise ValueError("data must lie in [0, 1] for likelihood='cross_entropy'; rescale it or use "
                             "likelihood='gaussian'")
        return x

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        with torch.random.fork_rng(devices=[data.device] if data.is_cuda else []):
            torch.manual_seed(seed)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """x with each entry zeroed independently with probability ``noise`` (denoising variant; others: x)."""
        if self.kind != "denoising" or self.noise == 0:
            return x
        return x * (torch.rand_like(x) >= self.noise)

    def _obs_dist(self, out):
        if self.likelihood in ("bernoulli", "cross_entropy"):
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        return dist.Normal(out, math.sqrt(0.5), validate_args=False).to_event(1)

    def model(self, data: torch.Tensor, subsample_size: int | None = None):
        pyro.module(self._names["decoder"], self.decoder)
        with pyro.plate("data", data.shape[0], subsample_size=subsample_size, device=data.device) as idx:
            x = data if subsample_size is None else data[idx]
            code = pyro.sample("code", FlatPrior(self.code_dim, x))
            pyro.sample("obs", self._obs_dist(self.decoder(code)), obs=x)
        if self.kind == "sparse" and self.beta > 0:
            pyro.factor("sparsity", -self.beta * sparsity_penalty(code.mean(-2), self.rho))

    def guide(self, data: torch.Tensor, subsample_size: int | None = None):
        pyro.module(self._names["encoder"], self.encoder)
        with pyro.plate("data", data.shape[0], subsample_size=subsample_size, device=data.device) as idx:
            x = data if subsample_size is None else data[idx]
            pyro.sample("code", dist.Delta(self.encoder(self.corrupt(x))).to_event(1))

    def custom_guide(self, init_values=None):
        if self._guide is None:
            self._guide = AutoencoderGuide(self)
        return self._guide

    def init_values(self, data, seed=0):
        return {"code": torch.full((data.shape[0], self.code_dim), 0.5, dtype=data.dtype, device=data.device)}

    # --- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x) -> torch.Tensor:
        """Codes f(x) of clean inputs, (N, C)."""
        return self.encoder(self.check_data(x))

    @torch.no_grad()
    def reconstruct(self, x) -> torch.Tensor:
        """g(f(x)): probabilities (Bernoulli) or the mean (Gaussian), (N, D)."""
        out = self.decoder(self.encoder(self.check_data(x)))
        return torch.sigmoid(out) if self.likelihood in ("bernoulli", "cross_entropy") else out

    @torch.no_grad()
    def reconstruction_error(self, x) -> torch.Tensor:
        """Per datum: cross-entropy sum_j BCE(x_j, g(f(x))_j) (Bernoulli) or ||x - g(f(x))||^2, (N,)."""
        x = self.check_data(x)
        out = self.decoder(self.encoder(x))
        if self.likelihood in ("bernoulli", "cross_entropy"):
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return (x - out).pow(2).sum(-1)

    def pointwise_log_likelihood(self, samples, data):
        """log p(x_n | code_n) per draw: samples["code"] (..., N, C) -> (..., N)."""
        return self._obs_dist(self.decoder(samples["code"].to(data))).log_prob(data)


@register_model("autoencoder")
def autoencoder(n_features: int = 64, code_dim: int = 10, hidden=(200,), **kwargs) -> Autoencoder:
    """Deterministic / denoising / sparse autoencoder (kind=...), a point-mass guide at the encoder output."""
    return Autoencoder(n_features, code_dim, hidden, **kwargs)


class StackedAutoencoder(Autoencoder):
    """A deep autoencoder trained greedily, layer by layer, then fine-tuned as a whole (MATH.md
    section 6).

    ``layer_sizes = (h_1, ..., h_L)``: the encoder maps D -> h_1 -> ... -> h_L through sigmoid units
    and the decoder mirrors it. Its stages (:meth:`layerwise_stages`) are one-hidden-layer
    autoencoders: the first reconstructs the data (``likelihood``) from h_1 sigmoid codes, stage l
    reconstructs the codes of stage l - 1 (cross-entropy against values in (0, 1)) from its own
    h_l codes. :meth:`assemble` copies stage l's encoder into the deep encoder's layer l and its
    decoder into the deep decoder's mirror layer, so that the assembled network reproduces the
    stages: decoded through the same sigmoid units. ``inference.fit(model, x, method="layerwise")``
    trains the stages one after the other, assembles and fine-tunes the whole; as an
    :class:`Autoencoder` (``guide="custom"``) it trains end to end from a random start.

    Parameters
    ----------
    n_features : D. layer_sizes : the code sizes of the layers (the last is the code of the stack).
    kind, noise, rho, beta : as :class:`Autoencoder`, for every stage and the stack.
    likelihood : the first stage's and the stack's (``"bernoulli"``, ``"cross_entropy"`` or
        ``"gaussian"``).
    """

    @declare(n_features=Int(ge=1), layer_sizes=Sizes(min_len=1), kind=Choice(KINDS), likelihood=Choice(AE_LIKELIHOODS),
             noise=Real(ge=0, lt=1), rho=Real(gt=0, lt=1), beta=Real(ge=0))
    def __init__(self, n_features: int, layer_sizes=(64, 16), *, kind: str = "deterministic",
                 likelihood: str = "bernoulli", noise: float = 0.25, rho: float = 0.05, beta: float = 1.0):
        sizes = check_hidden(layer_sizes)
        if not sizes:
            raise ValueError("layer_sizes needs at least one layer")
        super().__init__(n_features, sizes[-1], sizes[:-1], kind=kind, likelihood=likelihood, noise=noise, rho=rho,
                         beta=beta, activation="sigmoid", sigmoid_code=True)
        self.layer_sizes = sizes
        widths = (self.n_features, *sizes)
        self.stages = nn.ModuleList(
            Autoencoder(widths[i], widths[i + 1], (), kind=kind, likelihood=likelihood if i == 0 else "cross_entropy",
                        noise=noise, rho=rho, beta=beta, sigmoid_code=True)
            for i in range(len(sizes)))

    def layerwise_stages(self) -> list:
        return list(self.stages)

    @torch.no_grad()
    def assemble(self) -> None:
        encoder = [m for m in self.encoder.net if isinstance(m, nn.Linear)]
        decoder = [m for m in self.decoder.net if isinstance(m, nn.Linear)]
        n = len(self.stages)
        for i, stage in enumerate(self.stages):
            for deep, shallow in ((encoder[i], stage.encoder.net[0]), (decoder[n - 1 - i], stage.decoder.net[0])):
                deep.weight.copy_(shallow.weight)
                deep.bias.copy_(shallow.bias)
        self._assembled = True

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """Re-initialise the stack and its stages, except right after :meth:`assemble`: the next
        training (the fine-tuning) starts from the assembled weights."""
        if self.__dict__.pop("_assembled", False):
            return
        super().reset_parameters(data, seed)


@register_model("stacked_autoencoder")
def stacked_autoencoder(n_features: int = 64, layer_sizes=(64, 16), **kwargs) -> StackedAutoencoder:
    """A deep sigmoid autoencoder pre-trained layer by layer (``method="layerwise"``), then fine-tuned."""
    return StackedAutoencoder(n_features, layer_sizes, **kwargs)

