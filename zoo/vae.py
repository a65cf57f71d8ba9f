"""Variational autoencoder with swappable gradient estimators.

Generative model: z_n ~ N(0, I) (latent_dim), x_n | z_n ~ Bernoulli(logits = f_theta(z_n)) for binary
data or N(f_theta(z_n), sigma^2 I) for real data (sigma fixed or learned). Inference network (the
``custom`` guide): q_phi(z_n | x_n) = N(mu(x_n), diag softplus(.)^2). Both networks are registered with
``pyro.module``; the data plate subsamples when the loss is called with ``subsample_size``.

One string picks the gradient estimator of the ELBO (MATH.md section 5):

=================  ==========================================================================
``reparam``        SGVB A: z = mu + sigma * eps, Monte Carlo estimate of the whole integrand
                   (``inference.ReparamELBO``: ``Trace_ELBO``'s estimator with less bookkeeping)
``analytic_kl``    SGVB B: KL(q || p) in closed form, only the reconstruction sampled
                   (``ReparamELBO(analytic_kl=True)``: ``TraceMeanField_ELBO``'s)
``score_function`` REINFORCE: the guide's z is drawn without reparameterisation and the gradient
                   is f(z) grad log q(z) with a baseline (``TraceGraph_ELBO``; decaying average
                   and/or a learned baseline network of x)
``iwae``           the k-sample importance-weighted bound, per datum
                   (``inference.ImportanceWeightedELBO``)
=================  ==========================================================================

The model names its estimator (``elbo_spec()``); the estimators themselves are algorithms and live in
``inference`` (``inference.elbo_for(vae)``, ``inference.make_elbo(name, pyro_elbo=True)`` for Pyro's own
classes, ``jit=True`` for their compiled variants). Evaluation: :meth:`VAE.elbo` (per datum) and
:meth:`VAE.log_likelihood`, the importance-sampled log p(x) with k samples (5000 by default, the IWAE
paper's protocol), batched over data and samples. ``inference.gradient_variance`` compares the
estimators' gradient variance.
"""
from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import torch
from pyro.params import param_with_module_name
from torch.distributions import constraints, register_kl
from torch import nn
from torch.nn import functional as F

from ._checks import as_data_tensor, check_choice, check_positive_int, is_working_float
from .base import ELBOSpec, ZooModel
from ._validation import AnyOf, Choice, Int, Real, Sizes, declare
from .nets import ACTIVATIONS, Decoder, GaussianEncoder, check_hidden
from .registry import register_model

__all__ = ["VAE", "vae", "ESTIMATORS", "BernoulliRows", "DiagNormalRows", "StandardNormalRows", "PlainVAE",
           "check_binary", "check_network_data"]

ESTIMATORS = {
    "reparam": "SGVB A: reparameterised Monte Carlo estimate of the whole ELBO (Trace_ELBO's estimator)",
    "analytic_kl": "SGVB B: closed-form KL, sampled reconstruction (TraceMeanField_ELBO's estimator)",
    "score_function": "REINFORCE with a baseline, no reparameterisation (TraceGraph_ELBO)",
    "iwae": "k-sample importance-weighted bound, per datum",
}
BASELINES = ("average", "net", "average+net", "none")
LIKELIHOODS = ("bernoulli", "gaussian")
_ids = itertools.count()
_LOG_2PI = math.log(2.0 * math.pi)


def check_binary(x: torch.Tensor, name: str = "data") -> None:
    """Raise ``ValueError`` unless every entry of ``x`` is 0 or 1 (the Bernoulli decoder's support)."""
    bad = (x != 0) & (x != 1)
    if bool(bad.any()):
        example = x[bad].flatten()[0].item()
        raise ValueError(f"{name} must be binary (0/1) for the Bernoulli decoder; found {int(bad.sum())} other "
                         f"values (e.g. {example}); binarise it (x > threshold) or use likelihood='gaussian'")


def check_network_data(model, data, what: str) -> torch.Tensor:
    """The data check of the network models (VAE, autoencoders): x (N, D) finite with ``model.n_features``
    columns, binary under a Bernoulli decoder; the model moves to a floating input's dtype and device."""
    floating = is_working_float(data)  # half precision and integers become the model's dtype
    x = as_data_tensor(data, name="data", allow_1d=False, dtype=None if floating else model._dtype)
    if x.shape[1] != model.n_features:
        raise ValueError(f"data has {x.shape[1]} features; {what} was built for n_features={model.n_features}")
    if model.likelihood == "bernoulli":
        check_binary(x)
    if x.dtype != model._dtype or x.device != model.decoder.net[0].weight.device:
        model.to(dtype=x.dtype, device=x.device)
    return x


class BernoulliRows(dist.TorchDistribution):
    """Independent Bernoulli features, one row per datum: event shape (D,), ``log_prob`` (batch,) summed over
    the features. The same law as ``Bernoulli(logits=...).to_event(1)``, with the sign applied after the
    sum (no full-size negation in the forward or backward pass of a training step)."""

    arg_constraints = {"logits": constraints.real}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, logits: torch.Tensor, validate_args=None):
        self.logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=validate_args)

    @property
    def probs(self):
        return torch.sigmoid(self.logits)

    @property
    def mean(self):
        return self.probs

    def expand(self, batch_shape, _instance=None):
        return BernoulliRows(self.logits.expand(torch.Size(batch_shape) + self.event_shape))

    def log_prob(self, value):
        logits = self.logits
        if value.shape != logits.shape:
            logits, value = torch.broadcast_tensors(logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(self.shape(sample_shape)))


class DiagNormalRows(dist.TorchDistribution):
    """N(loc, diag scale^2) with event shape (L,): ``Normal(loc, scale).to_event(1)``, whose ``log_prob`` at
    its own latest ``rsample`` reuses the standard-normal noise (log q = -eps^2/2 - log scale - log 2 pi / 2,
    summed): the same value and gradient as recomputing (z - loc) / scale, in fewer operations."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.independent(constraints.real, 1)
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args=None):
        self.loc, self.scale = loc, scale
        self._last = None
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagNormalRows(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape=torch.Size()):
        return self.rsample_from(torch.randn(self.shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device))

    def rsample_from(self, eps: torch.Tensor) -> torch.Tensor:
        """The draw loc + scale * eps for given standard-normal noise ``eps`` (the shape of a draw): how
        data-parallel SVI hands each process its rows of the noise drawn for a whole global batch."""
        z = self.loc + self.scale * eps
        self._last = (z, eps)
        return z

    def log_prob(self, value):
        last = self._last
        eps = last[1] if last is not None and value is last[0] else (value - self.loc) / self.scale
        return (-0.5 * eps.pow(2) - self.scale.log()).sum(-1) - 0.5 * self.event_shape[0] * _LOG_2PI

    def entropy(self):
        return self.scale.log().sum(-1) + 0.5 * self.event_shape[0] * (1.0 + _LOG_2PI)


class StandardNormalRows(dist.TorchDistribution):
    """The prior N(0, I_L), event shape (L,), for a batch of rows; ``dtype``/``device`` of its draws given."""

    arg_constraints = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = True

    def __init__(self, latent_dim: int, batch_shape=torch.Size(), *, dtype=None, device=None, validate_args=None):
        self.dtype, self.device = dtype, device
        super().__init__(torch.Size(batch_shape), torch.Size((latent_dim,)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return StandardNormalRows(self.event_shape[0], batch_shape, dtype=self.dtype, device=self.device)

    @property
    def mean(self):
        return torch.zeros(self.shape(), dtype=self.dtype, device=self.device)

    @property
    def variance(self):
        return torch.ones(self.shape(), dtype=self.dtype, device=self.device)

    def rsample(self, sample_shape=torch.Size()):
        return torch.randn(self.shape(sample_shape), dtype=self.dtype, device=self.device)

    def log_prob(self, value):
        return -0.5 * value.pow(2).sum(-1) - 0.5 * self.event_shape[0] * _LOG_2PI


@register_kl(DiagNormalRows, StandardNormalRows)
def _kl_diag_standard(q, p):
    return (0.5 * (q.scale.pow(2) + q.loc.pow(2) - 1.0) - q.scale.log()).sum(-1)


def _register_module(model, key: str, module: nn.Module) -> None:
    """``pyro.module(model._names[key], module)`` with the (name, parameter) list cached: the same param
    sites in the trace, without walking the module tree on every call."""
    cache = model.__dict__.setdefault("_param_sites", {})
    sites = cache.get(key)
    if sites is None:
        sites = cache[key] = [(param_with_module_name(model._names[key], n), p)
                              for n, p in module.named_parameters() if p.requires_grad]
    for name, value in sites:
        pyro.param(name, value)


class VAEGuide(nn.Module):
    """The VAE's amortised guide (its ``custom`` guide): the encoder, plus the learned baseline network
    used by the score-function estimator. Call signature as the model's: ``guide(data, subsample_size)``."""

    def __init__(self, vae: "VAE"):
        super().__init__()
        self.encoder = vae.encoder
        self.baseline_net = vae.baseline_net
        object.__setattr__(self, "vae", vae)  # not a submodule: the VAE owns the networks

    def forward(self, data, subsample_size=None):
        return self.vae.guide(data, subsample_size)


class VAE(ZooModel):
    """Variational autoencoder (Kingma and Welling) as a Pyro model/guide pair.

    Parameters
    ----------
    n_features : D, the data dimension.
    latent_dim : L, the dimension of z.
    hidden : hidden layer sizes of the encoder (the decoder mirrors them), an int or a tuple.
    likelihood : ``"bernoulli"`` (binary data, logits) or ``"gaussian"``.
    scale : the Gaussian decoder's standard deviation (fixed), or ``"learned"`` (one per feature).
    estimator : one of :data:`ESTIMATORS`.
    num_particles : Monte Carlo draws per datum and step (``iwae``: the k of the bound).
    baseline : score-function baseline, one of ``"average"`` (decaying average), ``"net"`` (a learned
        linear baseline of x), ``"average+net"``, ``"none"``.
    activation : hidden activation (``relu``, ``tanh``, ``softplus``, ``elu``).

    Data: a tensor of shape (N, D). Local latent site ``z`` of shape (N, L) in plate ``data``; observed
    site ``obs``. Module parameters: ``encoder``, ``decoder`` (and ``log_scale``, ``baseline_net``).
    """

    #: fit keeps at most this many posterior draws of the local z (N x L each) in ``FitResult.samples``
    max_posterior_draws = 10
    #: the model accepts ``subsample_size`` (minibatches through ``inference.fit(batch_size=...)``)
    supports_minibatch = True
    #: the networks are registered with ``pyro.module`` (the global param store, which the compiled
    #: loss reads); Pyro refuses that inside an autoguide under the project's module-local params
    supported_guides = ("custom",)
    site_dims = {"z": ["obs_id", "latent"]}

    @property
    def supports_data_parallel(self) -> bool:
        """Data-parallel SVI applies to the reparameterised estimators (``reparam``, ``analytic_kl``,
        ``iwae``): their loss is a sum over the rows of the data plate. The score-function estimator's
        decaying-average baseline is state of one process's minibatches."""
        return self.estimator != "score_function"

    @declare(n_features=Int(ge=1), latent_dim=Int(ge=1), hidden=Sizes(), likelihood=Choice(LIKELIHOODS),
             scale=AnyOf(Choice("learned"), Real(gt=0), what="a finite real number > 0 or 'learned'"),
             estimator=Choice(*ESTIMATORS), num_particles=Int(ge=1), baseline=Choice(BASELINES),
             activation=Choice(*ACTIVATIONS))
    def __init__(self, n_features: int, latent_dim: int = 10, hidden=(200,), *, likelihood: str = "bernoulli",
                 scale="learned", estimator: str = "reparam", num_particles: int = 1, baseline: str = "average",
                 activation: str = "relu"):
        super().__init__()
        self.n_features = check_positive_int(n_features, "n_features")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.hidden = check_hidden(hidden)
        self.likelihood = check_choice(likelihood, LIKELIHOODS, "likelihood")
        self.estimator = check_choice(estimator, ESTIMATORS, "estimator")
        self.num_particles = check_positive_int(num_particles, "num_particles")
        self.baseline = check_choice(baseline, BASELINES, "baseline")
        self.encoder = GaussianEncoder(n_features, latent_dim, self.hidden, activation)
        self.decoder = Decoder(latent_dim, n_features, self.hidden, activation)
        self.baseline_net = nn.Linear(n_features, 1)
        self.learn_scale = isinstance(scale, str)
        if self.learn_scale:
            if scale != "learned":
                raise ValueError(f"scale must be a positive number or 'learned', got {scale!r}")
            self.log_scale = nn.Parameter(torch.zeros(n_features))
        else:
            if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
                raise ValueError(f"scale must be a positive number or 'learned', got {scale!r}")
            self.register_buffer("log_scale", torch.full((n_features,), math.log(scale)))
        uid = next(_ids)
        self._names = {k: f"vae{uid}.{k}" for k in ("encoder", "decoder", "log_scale", "baseline_net")}
        self._guide = None

    # --- data ------------------------------------------------------------------------
    @property
    def _dtype(self):
        return self.decoder.net[0].weight.dtype

    def check_data(self, data) -> torch.Tensor:
        """Validate x, shape (N, D): finite, D features, binary for the Bernoulli decoder. The model
        follows a floating input's dtype and device; other inputs become the model's dtype."""
        return check_network_data(self, data, "this VAE")

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """Fresh network weights from ``seed`` (PyTorch's default initialisation); the Gaussian decoder's
        learned scale starts at the data's per-feature standard deviation."""
        with torch.random.fork_rng(devices=[data.device] if data.is_cuda else []):
            torch.manual_seed(seed)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()
        if self.learn_scale:
            with torch.no_grad():
                sd = data.std(0) if data.shape[0] > 1 else torch.ones_like(data[0])
                self.log_scale.copy_(sd.clamp_min(1e-3).log())

    # --- the Pyro model and guide ------------------------------------------------------
    def _obs_dist(self, out: torch.Tensor):
        if self.likelihood == "bernoulli":
            return BernoulliRows(out, validate_args=False)
        return dist.Normal(out, self.log_scale.exp(), validate_args=False).to_event(1)

    def _apply(self, *args, **kwargs):
        self.__dict__.pop("_param_sites", None)  # .to(), .double(), .cuda(): rebuild the cached param sites
        return super()._apply(*args, **kwargs)

    def _minibatch(self, data, idx, subsample_size):
        """data[idx], indexed once per step: the guide runs first and the model, replaying the guide's
        subsample, reuses its rows."""
        if subsample_size is None:
            return data
        cached = self.__dict__.pop("_rows", None)
        if cached is not None and cached[0] is data and cached[1] is idx:
            return cached[2]
        x = data[idx]
        self.__dict__["_rows"] = (data, idx, x)
        return x

    def model(self, data: torch.Tensor, subsample_size: int | None = None):
        """p(z) p(x | z); ``data`` (N, D), ``subsample_size`` draws a minibatch of the data plate."""
        _register_module(self, "decoder", self.decoder)  # pyro.module, with the parameter list cached
        if self.learn_scale and self.likelihood == "gaussian":
            pyro.param(self._names["log_scale"], self.log_scale)
        with pyro.plate("data", data.shape[0], subsample_size=subsample_size, device=data.device) as idx:
            x = self._minibatch(data, idx, subsample_size)
            z = pyro.sample("z", StandardNormalRows(self.latent_dim, dtype=data.dtype, device=data.device))
            pyro.sample("obs", self._obs_dist(self.decoder(z)), obs=x)

    def guide(self, data: torch.Tensor, subsample_size: int | None = None):
        """q(z | x) = N(mu(x), diag sigma(x)^2); without reparameterisation for the score-function estimator."""
        _register_module(self, "encoder", self.encoder)
        with pyro.plate("data", data.shape[0], subsample_size=subsample_size, device=data.device) as idx:
            x = self._minibatch(data, idx, subsample_size)
            loc, scale = self.encoder(x)
            score = self.estimator == "score_function"
            fn = (_NonReparamNormal(loc, scale, validate_args=False).to_event(1) if score
                  else DiagNormalRows(loc, scale, validate_args=False))
            infer = {}
            if score:
                if "average" in self.baseline:
                    infer = {"baseline": {"use_decaying_avg_baseline": True, "baseline_beta": 0.95}}
                if "net" in self.baseline:
                    _register_module(self, "baseline_net", self.baseline_net)
                    infer.setdefault("baseline", {}).update(nn_baseline=_Squeeze(self.baseline_net),
                                                            nn_baseline_input=x)
            pyro.sample("z", fn, infer=infer)

    def custom_guide(self, init_values=None):
        if self._guide is None:
            self._guide = VAEGuide(self)
        return self._guide

    def elbo_spec(self) -> ELBOSpec:
        """The gradient estimator of the ELBO (``estimator``) with ``num_particles`` draws per datum: ``reparam``
        and ``analytic_kl`` train with :class:`inference.ReparamELBO`, ``score_function`` with
        ``TraceGraph_ELBO``, ``iwae`` with :class:`inference.ImportanceWeightedELBO`
        (``inference.make_elbo``)."""
        return ELBOSpec(self.estimator, self.num_particles)

    # --- evaluation -------------------------------------------------------------------
    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over features; x (..., D) broadcast against z (..., L); returns (...)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            out, x = torch.broadcast_tensors(out, x)
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return dist.Normal(out, self.log_scale.exp()).log_prob(x).sum(-1)

    def _check_eval(self, x):
        x = self.check_data(x)
        return x

    @torch.no_grad()
    def elbo(self, x, *, num_samples: int = 1, batch_size: int = 1000) -> torch.Tensor:
        """Per-datum ELBO with the KL in closed form and the reconstruction averaged over ``num_samples``
        draws of q(z|x); x (N, D) -> (N,)."""
        x = self._check_eval(x)
        S = check_positive_int(num_samples, "num_samples")
        B = check_positive_int(batch_size, "batch_size")
        out = []
        for xb in x.split(B):
            loc, scale = self.encoder(xb)
            z = loc + scale * torch.randn((S, *loc.shape), dtype=loc.dtype, device=loc.device)
            rec = self.log_px_given_z(xb, z).mean(0)
            kl = 0.5 * (scale.pow(2) + loc.pow(2) - 1.0 - 2.0 * scale.log()).sum(-1)
            out.append(rec - kl)
        return torch.cat(out)

    @torch.no_grad()
    def log_likelihood(self, x, num_samples: int = 5000, *, batch_size: int = 100,
                       sample_batch_size: int = 500) -> torch.Tensor:
        """Importance-sampled estimate of log p(x_n) with q(z|x) as proposal (the k-sample IWAE bound,
        which tends to log p(x) as k grows): log (1/k) sum_i p(x, z_i) / q(z_i | x). Batched over
        ``batch_size`` data rows and ``sample_batch_size`` draws; x (N, D) -> (N,)."""
        x = self._check_eval(x)
        K = check_positive_int(num_samples, "num_samples")
        B = check_positive_int(batch_size, "batch_size")
        S = check_positive_int(sample_batch_size, "sample_batch_size")
        out = []
        for xb in x.split(B):
            loc, scale = self.encoder(xb)
            q = dist.Normal(loc, scale)
            chunks = []
            for start in range(0, K, S):
                s = min(S, K - start)
                eps = torch.randn((s, *loc.shape), dtype=loc.dtype, device=loc.device)
                z = loc + scale * eps
                log_w = (self.log_px_given_z(xb, z) - 0.5 * z.pow(2).sum(-1)
                         - 0.5 * self.latent_dim * math.log(2 * math.pi) - q.log_prob(z).sum(-1))
                chunks.append(torch.logsumexp(log_w, 0))
            out.append(torch.logsumexp(torch.stack(chunks), 0) - math.log(K))
        return torch.cat(out)

    def iwae_bound(self, x, k: int = 5, **kwargs) -> torch.Tensor:
        """The k-sample importance-weighted bound per datum (one draw of it), x (N, D) -> (N,)."""
        return self.log_likelihood(x, num_samples=k, **kwargs)

    def pointwise_log_likelihood(self, samples, data):
        """log p(x_n | z_n) for each posterior draw of z: samples["z"] (..., N, L) -> (..., N)."""
        return self.log_px_given_z(data, samples["z"].to(data))

    @torch.no_grad()
    def reconstruct(self, x) -> torch.Tensor:
        """Decoder mean at the encoder mean: probabilities (Bernoulli) or the Gaussian mean, (N, D)."""
        x = self._check_eval(x)
        out = self.decoder(self.encoder(x)[0])
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Draws of x from the generative model, (n, D)."""
        n = check_positive_int(n, "n")
        z = torch.randn(n, self.latent_dim, dtype=self._dtype, device=self.log_scale.device)
        return self._obs_dist(self.decoder(z)).sample()


class _NonReparamNormal(dist.Normal):
    """A Normal whose draws carry no reparameterisation gradient (``sample``, not ``rsample``), so that
    Pyro's ELBOs use the score-function estimator for it. (``has_rsample_(False)`` cannot be set on an
    ``Independent`` wrapper, hence a class.)"""

    has_rsample = False


class _Squeeze(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).squeeze(-1)


class PlainVAE(nn.Module):
    """The same VAE in plain PyTorch (no Pyro): the reference for speed and quality. Shares the
    :class:`~zoo.nets.GaussianEncoder` / :class:`~zoo.nets.Decoder` code with :class:`VAE`; with
    ``from_vae`` it starts from a copy of that VAE's weights. Bernoulli decoder only.

    ``loss(x, n_total)``: the negative ELBO of the minibatch x (B, D), scaled by n_total / B as Pyro
    scales a subsampled plate; ``estimator`` ``"reparam"`` (Monte Carlo log p(z) - log q(z)) or
    ``"analytic_kl"`` (closed-form KL).
    """

    @declare(n_features=Int(ge=1), latent_dim=Int(ge=1), hidden=Sizes(), estimator=Choice("reparam", "analytic_kl"),
             activation=Choice(*ACTIVATIONS))
    def __init__(self, n_features: int, latent_dim: int = 10, hidden=(200,), *, estimator: str = "reparam",
                 activation: str = "relu"):
        super().__init__()
        self.estimator = check_choice(estimator, ("reparam", "analytic_kl"), "estimator")
        self.encoder = GaussianEncoder(n_features, latent_dim, check_hidden(hidden), activation)
        self.decoder = Decoder(latent_dim, n_features, check_hidden(hidden), activation)

    @classmethod
    def from_vae(cls, vae: VAE, estimator: str | None = None) -> "PlainVAE":
        import copy

        if vae.likelihood != "bernoulli":
            raise ValueError("PlainVAE has the Bernoulli decoder only")
        est = vae.estimator if estimator is None else estimator
        out = cls(vae.n_features, vae.latent_dim, vae.hidden, estimator=est)
        out.encoder = copy.deepcopy(vae.encoder)
        out.decoder = copy.deepcopy(vae.decoder)
        return out

    def loss(self, x: torch.Tensor, n_total: int | None = None) -> torch.Tensor:
        loc, scale = self.encoder(x)
        eps = torch.randn_like(loc)
        z = loc + scale * eps
        rec = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        if self.estimator == "analytic_kl":
            kl = 0.5 * (scale.pow(2) + loc.pow(2) - 1.0 - 2.0 * scale.log()).sum()
        else:  # log q(z|x) - log p(z) at the draw; the 2 pi terms cancel
            kl = (0.5 * (z.pow(2) - eps.pow(2)) - scale.log()).sum()
        elbo = rec - kl
        return -elbo * ((n_total or x.shape[0]) / x.shape[0])


@register_model("vae")
def vae(n_features: int = 64, latent_dim: int = 10, hidden=(200,), **kwargs) -> VAE:
    """Variational autoencoder: N(0, I) prior, MLP decoder (Bernoulli or Gaussian), amortised Normal guide."""
    return VAE(n_features, latent_dim, hidden, **kwargs)
