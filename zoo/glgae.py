"""GLGAE: Gaussian-latent generative autoencoder.

Generative view: q(x, k, z) = q(z) q(k | z) p(x | k) with a flat q(z) (improper, or
uniform on a box), K real components plus an absorbing category that emits no
data (see :mod:`zoo.objectives`). As a Pyro model, each datum has a local latent
``z`` (E-dim) under the flat prior, a component ``k`` enumerated out, and ``x``
observed with log p(x | k) = log N(x; A_k, scale^2 I) (the notes' exp(-||x - A_k||^2)
is the default scale sqrt(1/2), up to the constant (D/2) log pi). Prototypes ``A``
(K x D), anchors ``B`` (K x E) and, when learned, the absorbing weight ``b`` are
module parameters, point-estimated by SVI or by the coordinate updates.

Encoding x means argmax_z L2(z, x) (MAP under the flat prior); Bayesian encoding
keeps p(z | x) ∝ sum_k q(k|z) p(x|k), which is proper only with an absorbing
component (b > 0 or the exp(||z||^2) variant).
"""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from . import objectives as obj
from ._checks import as_data_tensor, check_choice, check_n_components, check_positive_int
from ._validation import Bool, Choice, Int, Real, Seed, declare
from .base import CoordinateFit, ZooModel
from .registry import register_model

__all__ = ["GLGAE", "glgae", "AmortisedEncoder", "FlatPrior"]


class FlatPrior(dist.ImproperUniform):
    """The improper flat prior on R^E. An improper density has no draws; ``sample`` returns the
    origin as a feasible placeholder so that the model can be traced (site discovery, guide
    set-up). Inference never uses it as a draw: guides and NUTS supply z."""

    def __init__(self, event_dim_size: int, like: torch.Tensor):
        super().__init__(dist.constraints.real, (), (event_dim_size,))
        self._like = like

    def expand(self, batch_shape, _instance=None):
        new = FlatPrior(self.event_shape[0], self._like)
        dist.ImproperUniform.__init__(new, dist.constraints.real, torch.Size(batch_shape), self.event_shape)
        return new

    def sample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        return torch.zeros(shape, dtype=self._like.dtype, device=self._like.device)

    def log_prob(self, value):
        return torch.zeros(value.shape[: value.dim() - 1], dtype=value.dtype, device=value.device)


class GLGAE(ZooModel):
    """K components, D observed features, E latent dimensions.

    Parameters
    ----------
    absorbing : ``"constant"`` (weight ``b``), ``"exp_norm"`` (weight exp(||z||^2)) or ``"none"``.
    b : the constant absorbing weight, ``b >= 0`` (``b = 0`` is no absorbing component).
    learn_b : learn ``b`` (kept positive) along with A and B.
    scale : observation standard deviation; sqrt(1/2) is the notes' p(x|k) = exp(-||x - A_k||^2).
    prior_radius : ``None`` for the improper flat prior on z, else uniform on [-r, r]^E.
    logit_penalty : lambda >= 0 of an additive penalty -lambda ||z||^2 on every logit of q(k|z)
        (one of the fixes the notes tried; it cancels in the softmax and changes nothing).
    distance : ``"sq_euclidean"`` (the notes' -||B_k - z||^2 logits) or ``"l1"`` (-||B_k - z||_1, the
        notes' "attempt one" against push-away: it stops the drift but caps q(k|z) below 1 and leaves
        flat directions; see :func:`zoo.objectives.l1_confidence_cap`). The fixed-point encoder needs
        the squared distance.
    """

    @declare(K=Int(ge=1), D=Int(ge=1), E=Int(ge=1), absorbing=Choice(obj.ABSORBING),
             b=Real(ge=0, what="a finite number >= 0"), learn_b=Bool(), scale=Real(gt=0),
             prior_radius=Real(gt=0, none=True), logit_penalty=Real(ge=0), distance=Choice(obj.DISTANCES),
             seed=Seed())
    def __init__(self, K: int = 8, D: int = 2, E: int = 2, *, absorbing: str = "constant", b: float = 1.0,
                 learn_b: bool = False, scale: float = math.sqrt(0.5), prior_radius: float | None = None,
                 logit_penalty: float = 0.0, distance: str = "sq_euclidean", seed: int = 0):
        super().__init__()
        self.K, self.D, self.E, self.absorbing = int(K), int(D), int(E), absorbing
        self.distance = distance
        if learn_b and (absorbing != "constant" or b == 0):
            raise ValueError("learn_b needs absorbing='constant' and a starting b > 0")
        self.learn_b, self.scale = bool(learn_b), float(scale)
        self.prior_radius = None if prior_radius is None else float(prior_radius)
        self.logit_penalty = float(logit_penalty)
        g = torch.Generator().manual_seed(seed)
        dtype = torch.get_default_dtype()
        self.A = nn.Parameter(torch.randn(self.K, self.D, generator=g, dtype=dtype))
        self.B = nn.Parameter(torch.randn(self.K, self.E, generator=g, dtype=dtype))
        self._b_init = float(b)
        if learn_b:
            self.log_b = nn.Parameter(torch.tensor(math.log(b), dtype=dtype))
        else:
            self.register_buffer("b_fixed", torch.tensor(float(b), dtype=dtype))

    # --- parameters and shapes --------------------------------------------
    @property
    def b(self) -> torch.Tensor:
        return self.log_b.exp() if self.learn_b else self.b_fixed

    @property
    def site_dims(self):
        return {"z": ["obs_id", "latent"]}

    def check_data(self, data):
        data = as_data_tensor(data, name="data")
        if not getattr(self, "_frozen", False):  # training places the K prototypes on data points
            check_n_components(self.K, data.shape[0])
        if data.shape[1] != self.D:
            raise ValueError(f"data has {data.shape[1]} features but the model was built with D={self.D}")
        return data

    @classmethod
    def from_parameters(cls, A, B, **kwargs) -> "GLGAE":
        """A GLGAE with the given prototypes ``A`` (K, D) and anchors ``B`` (K, E), float64; ``kwargs`` as
        the constructor's (``absorbing``, ``b``...)."""
        A, B = torch.as_tensor(A, dtype=torch.float64), torch.as_tensor(B, dtype=torch.float64)
        if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[0]:
            raise ValueError(f"A must be (K, D) and B (K, E) with the same K, got {tuple(A.shape)} and {tuple(B.shape)}")
        model = cls(A.shape[0], A.shape[1], B.shape[1], **kwargs)
        with torch.no_grad():
            model.A.data, model.B.data = A.clone(), B.clone()
        return model.double()

    @torch.no_grad()
    def grid_posterior(self, x, grid) -> torch.Tensor:
        """The exact flat-prior posterior p(z | x) ∝ exp L2(z, x) on the points of a uniform ``grid``
        (G, E): the probability of each grid cell, (N, G) for x (N, D) (divide by the cell volume for a
        density). Proper only with an absorbing component; the grid must cover the posterior's mass."""
        x = self.check_features(x)
        grid = torch.as_tensor(grid, dtype=x.dtype, device=x.device)
        if grid.dim() == 1:
            grid = grid[:, None]
        logp = self.L2(grid[None, :, :], x[:, None, :])  # (N, G)
        return torch.softmax(logp, -1)

    @torch.no_grad()
    def emission_weights(self, radius: float | None = None, *, n_grid: int = 201, num_samples: int = 200_000,
                         seed: int = 0) -> torch.Tensor:
        """The generative view's component weights, (K,): with z uniform on the box [-r, r]^E and k drawn
        from q(k|z) (the absorbing category included), the data a draw emits come from the mixture
        sum_k w_k N(A_k, scale^2 I) with w_k = ∫ q(k|z) dz / ∫ sum_j q(j|z) dz (the absorbing draws
        emit nothing). The integrals are taken on a midpoint grid of ``n_grid`` points per axis for
        E <= 2, by Monte Carlo with ``num_samples`` uniform draws above. ``radius`` defaults to
        ``prior_radius``; the improper flat prior has no draws, so one of the two is needed."""
        r = self.prior_radius if radius is None else radius
        if r is None or not (isinstance(r, (int, float)) and math.isfinite(r) and r > 0):
            raise ValueError(f"radius must be a finite positive number (the flat prior has no draws), got {r!r}")
        dtype, device = self.B.dtype, self.B.device
        if self.E <= 2:
            n = check_positive_int(n_grid, "n_grid")
            ticks = r * ((torch.arange(n, dtype=dtype, device=device) + 0.5) * 2 / n - 1)
            z = torch.stack(torch.meshgrid(*([ticks] * self.E), indexing="ij"), -1).reshape(-1, self.E)
        else:
            g = torch.Generator().manual_seed(int(seed))
            u = torch.rand(check_positive_int(num_samples, "num_samples"), self.E, generator=g, dtype=dtype)
            z = (2 * u - 1).to(device) * r
        mass = self.log_q(z).exp().mean(0)  # ∫ q(k|z) dz / volume, (K,)
        return mass / mass.sum()

    @torch.no_grad()
    def sample(self, n: int, radius: float | None = None, *, seed: int | None = None) -> torch.Tensor:
        """``n`` draws (n, D) of the data the generative view emits (see :meth:`emission_weights`)."""
        n = check_positive_int(n, "n")
        w = self.emission_weights(radius)
        g = torch.Generator(device=w.device)
        g.manual_seed(int(seed) if seed is not None else int(torch.randint(2**31, ())))
        k = torch.multinomial(w, n, replacement=True, generator=g)
        eps = torch.randn(n, self.D, generator=g, dtype=w.dtype, device=w.device)
        return self.A.detach()[k] + self.scale * eps

    @torch.no_grad()
    def score_samples(self, x, radius: float | None = None) -> torch.Tensor:
        """log p(x | a draw emits) of every row of ``x`` (N, D) under the generative view on the box of
        ``radius`` (the normalised Gaussian densities, see :meth:`emission_weights`), shape (N,)."""
        x = self.check_features(x)
        log_w = self.emission_weights(radius).log()
        return torch.logsumexp(log_w + obj.log_p_x_given_k(x, self.A, self.scale), -1)

    @torch.no_grad()
    def log_code_evidence(self, x, axes, *, chunk: int = 64) -> torch.Tensor:
        """log ∫ exp L2(z, x) dz of every row of ``x`` (N, D), (N,): the log evidence of x under the
        flat prior on z with density 1 per unit volume (the notes' q(z) ∝ 1), by the rectangle rule on
        the grid spanned by ``axes`` (E uniform 1-D tensors; the grid must hold the posterior's mass).
        Finite only with an absorbing component. Under the proper uniform prior on [-r, r]^E
        (``prior_radius=r``) the log evidence is this, over the box, minus E log(2r)."""
        x = self.check_features(x)
        axes = [torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in axes]
        if len(axes) != self.E:
            raise ValueError(f"need {self.E} axes for {self.E}-dimensional codes, got {len(axes)}")
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.E)
        log_cell = sum(math.log(float(a[1] - a[0])) for a in axes)
        # chunks of rows: the (rows, G, K) terms of L2 stay a few tens of MB
        out = [torch.logsumexp(self.L2(grid, x[i : i + chunk, None, :]), -1) for i in range(0, x.shape[0], chunk)]
        return torch.cat(out) + log_cell

    def frozen(self) -> "GLGAE":
        """A copy whose A, B and b stay fixed under ``inference.fit``: Bayesian encoding of new data
        with a trained model (``inference.fit(model.frozen(), x, method="svi", guide="mvn")``)."""
        import copy

        twin = copy.deepcopy(self)
        for p in twin.parameters():
            p.requires_grad_(False)
        twin._frozen = True
        return twin

    def reset_parameters(self, data: torch.Tensor, seed: int = 0) -> None:
        """Prototypes by k-means++ seeding (D^2 sampling) on the data; anchors at the prototypes'
        projection on their top-E principal directions, scaled to a root-mean-square norm of 2, so
        that q(k|z) starts with the geometry of p(x|k). Nothing for a :meth:`frozen` model."""
        if getattr(self, "_frozen", False):
            return
        g = torch.Generator().manual_seed(int(seed))
        x = data.detach().cpu()
        idx = [int(torch.randint(x.shape[0], (1,), generator=g))]
        d2 = (x - x[idx[0]]).pow(2).sum(-1)
        for _ in range(1, self.K):
            nxt = int(torch.multinomial(d2 / d2.sum(), 1, generator=g)) if d2.sum() > 0 else int(
                torch.randint(x.shape[0], (1,), generator=g))
            idx.append(nxt)
            d2 = torch.minimum(d2, (x - x[nxt]).pow(2).sum(-1))
        A = x[idx].clone()
        centred = A - A.mean(0)
        if self.K > 1 and centred.abs().sum() > 0:
            _, _, V = torch.linalg.svd(centred, full_matrices=False)
            B = centred @ V[: self.E].T
            if B.shape[1] < self.E:  # fewer informative directions than latent dimensions
                B = torch.cat([B, torch.zeros(self.K, self.E - B.shape[1], dtype=B.dtype)], dim=1)
        else:
            B = torch.randn(self.K, self.E, generator=g, dtype=A.dtype)
        B = B + 0.01 * torch.randn(self.K, self.E, generator=g, dtype=A.dtype)  # break exact ties
        B = 2 * B / B.pow(2).sum(-1).mean().sqrt().clamp_min(1e-12)
        with torch.no_grad():
            self.A.data = A.to(dtype=data.dtype, device=data.device)
            self.B.data = B.to(dtype=data.dtype, device=data.device)
            if self.learn_b:
                self.log_b.data = torch.tensor(math.log(self._b_init), dtype=data.dtype, device=data.device)
        self.to(dtype=data.dtype, device=data.device)

    # --- the objective ---------------------------------------------------------
    def log_q(self, z, *, with_absorbing=False):
        """log q(k | z): (..., K), or (..., K + 1) with the absorbing category last (``logit_penalty``
        applied to every logit)."""
        return obj.log_q_given_z(z, self.B, self.absorbing, self.b, with_absorbing=with_absorbing,
                                 logit_penalty=self.logit_penalty, distance=self.distance)

    def L2(self, z, x, *, normalised: bool = False):
        """L2(z, x) = log sum_k q(k|z) p(x|k), shape (...). The notes' unnormalised p(x|k) unless
        ``normalised`` (the Gaussian density with ``scale``). The ``logit_penalty`` cancels in q(k|z) and is
        left out here (the MAP code's objective); :meth:`log_q` and the Pyro model compute it."""
        scale = self.scale if normalised else None
        if not normalised and not math.isclose(self.scale, math.sqrt(0.5)):
            scale_term = -0.5 * obj.sq_dist(x, self.A) / self.scale**2
            log_q = obj.log_q_given_z(z, self.B, self.absorbing, self.b, distance=self.distance)
            return torch.logsumexp(log_q + scale_term, dim=-1)
        return obj.L2(z, x, self.A, self.B, self.absorbing, self.b, scale, distance=self.distance)

    def log_norm_constant(self) -> float:
        """log N(x; A_k, scale^2 I) minus the unnormalised -||x - A_k||^2 / (2 scale^2)."""
        return -self.D * math.log(self.scale) - 0.5 * self.D * math.log(2 * math.pi)

    # --- the Pyro model ----------------------------------------------------------
    def _z_prior(self, like):
        if self.prior_radius is None:
            return FlatPrior(self.E, like)
        r = torch.tensor(float(self.prior_radius), dtype=like.dtype, device=like.device)
        return dist.Uniform(-r, r).expand([self.E]).to_event(1)

    def model(self, data: torch.Tensor):
        """The absorbing category emits no data. Its mass enters as the factor ``absorbing`` =
        log sum_k q(k|z), the probability that z's component is a real one, and ``k`` ranges over
        the K real components with probabilities q(k|z) / sum_j q(j|z). This is the joint of
        enumerating K + 1 categories with p(x | absorbing) = 0, written so that enumeration never
        multiplies an underflowed q(k|z) by that zero (Pyro shifts each factor by its own maximum
        over k before exponentiating)."""
        N = data.shape[0]
        with pyro.plate("data", N):
            z = pyro.sample("z", self._z_prior(data))
            real = self.log_q(z, with_absorbing=True)[..., : self.K]  # (N, K); the absorbing category is last
            pyro.factor("absorbing", torch.logsumexp(real, -1))
            k = pyro.sample("k", dist.Categorical(logits=real), infer={"enumerate": "parallel"})
            scale = torch.as_tensor(self.scale, dtype=data.dtype, device=data.device)
            pyro.sample("obs", dist.Normal(self.A[k], scale).to_event(1), obs=data)

    def pointwise_log_likelihood(self, samples, data):
        return self.L2(samples["z"], data, normalised=True)

    def init_values(self, data, seed=0):
        """Each datum's z starts at the anchor of its nearest prototype."""
        nearest = obj.sq_dist(data, self.A.detach()).argmin(-1)
        z = self.B.detach()[nearest].clone()
        if self.prior_radius is not None:  # start inside the prior's box
            z = z.clamp(-0.9 * self.prior_radius, 0.9 * self.prior_radius)
        return {"z": z}

    def custom_guide(self, init_values=None):
        return AmortisedEncoder(self)

    # --- encoding ----------------------------------------------------------------
    def encode(self, x, method: str = "gradient", *, z0=None, optimizer: str = "lbfgs", max_iter: int = 500,
               lr: float = 0.05, tol: float = 1e-9, return_trace: bool = False):
        """MAP code argmax_z L2(z, x) of every row of ``x`` (N, D) -> z (N, E).

        ``method="gradient"``: ascent on L2 (``optimizer="lbfgs"`` with a strong-Wolfe line search, or
        ``"adam"`` with step ``lr``), batched: the rows' objectives are independent, so their sum is
        maximised at once. Stops when the largest per-row gradient norm is below ``tol``.

        ``method="fixed_point"``: the notes' update z <- sum_k r_k B_k / sum_k r_k with
        r_k = p(x|k) q(k|z). It comes from setting the derivative of L2 to zero while
        differentiating only the numerator exp(-||B_k - z||^2) of q(k|z), not its normaliser
        (the absorbing weight plus the sum over components). The true stationarity condition has
        the extra term -q(k|z) * d log(normaliser)/dz; the update keeps z inside the convex hull of
        the anchors B_k, but its fixed points are in general not stationary points of L2 and a step
        can lower L2 (both are measured in the tests).

        With ``return_trace`` also returns a dict with the per-iteration mean L2 (``"L2"``) and the
        final per-row gradient norms (``"grad_norm"``).
        """
        x = self.check_features(x)
        method = check_choice(method, ("gradient", "fixed_point"), "encoding method")
        if method == "fixed_point" and self.distance != "sq_euclidean":
            raise ValueError("the fixed-point update is derived for the squared distance; use method='gradient'")
        z = (self.init_values(x)["z"] if z0 is None else torch.as_tensor(z0, dtype=x.dtype, device=x.device)).clone()
        trace = []
        params = [p for p in self.parameters() if p.requires_grad]
        for p in params:  # encoding moves z only; a frozen model's parameters stay frozen
            p.requires_grad_(False)
        try:
            if method == "fixed_point":
                for _ in range(max_iter):
                    with torch.no_grad():
                        trace.append(self.L2(z, x).mean().item())
                        log_px = -0.5 * obj.sq_dist(x, self.A) / self.scale**2
                        r = (self.log_q(z) + log_px).softmax(-1)
                        z_new = r @ self.B
                        done = (z_new - z).norm(dim=-1).max().item() < tol
                        z = z_new
                    if done:
                        break
            else:
                z = self._ascend(z, x, optimizer, max_iter, lr, tol, trace)
        finally:
            for p in params:
                p.requires_grad_(True)
        if not return_trace:
            return z.detach()
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.L2(zz, x).sum(), zz)
        trace_t = torch.tensor(trace + [self.L2(z, x).mean().item()], dtype=torch.float64)
        return z.detach(), {"L2": trace_t, "grad_norm": g.norm(dim=-1)}

    def _ascend(self, z, x, optimizer, max_iter, lr, tol, trace):
        z = z.detach().clone().requires_grad_(True)
        if optimizer == "adam":
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(max_iter):
                opt.zero_grad()
                loss = -self.L2(z, x).sum()
                loss.backward()
                trace.append(-loss.item() / x.shape[0])
                if z.grad.norm(dim=-1).max().item() < tol:
                    break
                opt.step()
            return z.detach()
        if optimizer != "lbfgs":
            raise ValueError(f"unknown optimizer {optimizer!r}; known: 'adam', 'lbfgs'")
        opt = torch.optim.LBFGS([z], lr=1.0, max_iter=20, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=tol, tolerance_change=0.0)

        def closure():
            opt.zero_grad()
            loss = -self.L2(z, x).sum()
            loss.backward()
            return loss

        for _ in range(max(1, max_iter // 20)):
            loss = opt.step(closure)
            trace.append(-float(loss.detach()) / x.shape[0])
            with torch.enable_grad():
                opt.zero_grad()
                (-self.L2(z, x).sum()).backward()
            if z.grad.norm(dim=-1).max().item() < tol:
                break
        return z.detach()

    def check_features(self, x) -> torch.Tensor:
        x = as_data_tensor(x, name="x")
        if x.shape[1] != self.D:
            raise ValueError(f"x has {x.shape[1]} features but the model was built with D={self.D}")
        return x.to(dtype=self.A.dtype, device=self.A.device)

    # --- EM-style coordinate training -------------------------------------------
    def coordinate_fit(self, data, *, num_steps: int = 50, encode_iter: int = 200, b_steps: int = 20,
                       tol: float | None = None, seed: int = 0, progress_bar: bool = True):
        """Alternate (1) MAP-encoding every datum, starting from its previous code, and (2) updating
        the parameters with the codes fixed: A by its exact EM step (responsibility-weighted means),
        then B (and log b when learned) by L-BFGS on sum_b L2. Each half-step can only raise
        sum_b L2(z_b, x_b), so the per-epoch E_data[max_z L2] rises (up to the encoder's tolerance).
        Returns a :class:`~zoo.base.CoordinateFit`: ``losses`` = -E_data[max_z L2] per epoch, ``samples["z"]``
        the codes (N, E)."""
        from .progress import progress

        if getattr(self, "_frozen", False):
            raise ValueError("coordinate training updates A and B; this model is frozen (see GLGAE.frozen)")
        data = self.check_data(data)
        z = self.init_values(data)["z"]
        losses, converged = [], False
        for _ in progress(range(num_steps), desc="glgae/coordinate", enabled=progress_bar):
            z = self.encode(data, z0=z, max_iter=encode_iter)
            with torch.no_grad():
                value = self.L2(z, data).mean().item()
            losses.append(-value)
            if tol is not None and len(losses) > 1 and abs(losses[-2] - losses[-1]) < tol:
                converged = True
                break
            self._update_parameters(z, data, b_steps)
        return CoordinateFit(losses=losses, samples={"z": z}, converged=converged)

    def _update_parameters(self, z, data, b_steps):
        with torch.no_grad():  # exact EM step for A: weighted means under r_bk ∝ q(k|z_b) p(x_b|k)
            r = (self.log_q(z) + obj.log_p_x_given_k(data, self.A, self.scale)).softmax(-1)
            nk = r.sum(0)
            keep = nk > 1e-12
            A_new = (r.T @ data) / nk.clamp_min(1e-12)[:, None]
            self.A.data[keep] = A_new[keep]
        params = [self.B] + ([self.log_b] if self.learn_b else [])
        opt = torch.optim.LBFGS(params, max_iter=b_steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = -self.L2(z, data).sum()
            loss.backward()
            return loss

        self.A.requires_grad_(False)
        try:
            opt.step(closure)
        finally:
            self.A.requires_grad_(True)


class AmortisedEncoder(pyro.nn.PyroModule):
    """Amortised Bayesian encoder: an MLP maps x to the mean and softplus scale of a diagonal
    Normal q(z | x) (the model's ``custom`` guide)."""

    def __init__(self, glgae: GLGAE, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(glgae.D, hidden), nn.Tanh(), nn.Linear(hidden, 2 * glgae.E))
        self.E = glgae.E
        self.to(dtype=glgae.A.dtype, device=glgae.A.device)

    def forward(self, data):
        self.net.to(dtype=data.dtype, device=data.device)
        out = self.net(data)
        loc, scale = out[..., : self.E], nn.functional.softplus(out[..., self.E:]) + 1e-4
        with pyro.plate("data", data.shape[0]):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))


@register_model("glgae")
def glgae(K: int = 8, D: int = 2, E: int = 2, **kwargs) -> GLGAE:
    """Gaussian-latent generative autoencoder: q(z) q(k|z) p(x|k), flat prior, absorbing component."""
    return GLGAE(K, D, E, **kwargs)
