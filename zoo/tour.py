"""The main job (``make run`` / ``zoo tour``): the headline comparisons of the zoo on embedded data,
written as one self-contained HTML report (figures embedded as base64 PNG) plus the PNG files,
one CSV per table, a Markdown copy of the report and the InferenceData of the Old Faithful fits.

The tour is a list of sections. A section is one function ``fn(ctx: TourContext) -> Section``
registered with :func:`tour_section`; it fits what it needs (with ``ctx.seed``, and smaller sizes
when ``ctx.quick``), draws figures with ``ctx.figure(fig, name, caption)`` and returns a title,
prose paragraphs, tables (pandas DataFrames) and figures. Adding a comparison to the report is
adding one such function::

    @tour_section("my_comparison")
    def my_comparison(ctx):
        table = pd.DataFrame(...)
        fig, ax = plt.subplots()
        ...
        return Section("Title", ["A paragraph."], tables=[Table("caption", table)],
                       figures=[ctx.figure(fig, "my_comparison.png", "caption")])

Everything is built in a staging folder (:class:`inference.staged_output`) and moved into place
only when every section succeeded, so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import base64
import html
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

__all__ = ["run_tour", "tour_section", "list_sections", "TourContext", "Section", "Table", "Figure",
           "render_html", "SECTIONS"]


# ----------------------------------------------------------------------------- report pieces
@dataclass
class Table:
    """A captioned table; its numbers appear in the HTML and in ``<name>.csv``."""

    caption: str
    frame: pd.DataFrame
    name: str | None = None


@dataclass
class Figure:
    """A PNG written into the run folder (``name``) and embedded in the HTML (``png``: its bytes)."""

    name: str
    caption: str
    png: bytes


@dataclass
class Section:
    """What a section returns: a title, prose paragraphs (plain text; ``code`` in backticks),
    tables and figures."""

    title: str
    prose: list[str]
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    key: str = ""
    run_time: float = 0.0


@dataclass
class TourContext:
    """Handed to every section: the staging folder ``out``, the ``seed``, ``quick`` (small sizes for
    tests) and the overall progress bar (``progress.set_postfix_str`` for a status line)."""

    out: Path
    seed: int = 0
    quick: bool = False
    progress: object = None

    def figure(self, fig, name: str, caption: str) -> Figure:
        """Save ``fig`` as ``out/name`` (PNG, atomically), close it, and return it for embedding."""
        from inference.views import save_figure

        if not name.endswith(".png") or "/" in name or "\\" in name:
            raise ValueError(f"figure name must be a plain file name ending in .png, got {name!r}")
        path = self.out / name
        if path.exists():
            raise ValueError(f"figure {name!r} was already written by another section")
        save_figure(fig, path)
        return Figure(name, caption, path.read_bytes())

    def status(self, text: str) -> None:
        if self.progress is not None and hasattr(self.progress, "set_postfix_str"):
            self.progress.set_postfix_str(text)


SECTIONS: dict[str, Callable[[TourContext], Section]] = {}


def tour_section(key: str):
    """Register ``fn(ctx) -> Section`` as a tour section under ``key``; sections run in the order
    they are registered."""
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"section key must be an identifier, got {key!r}")

    def register(fn):
        if not callable(fn):
            raise TypeError(f"tour section {key!r} must be a function of the context, got {type(fn).__name__}")
        if key in SECTIONS:
            raise ValueError(f"tour section {key!r} is already registered")
        SECTIONS[key] = fn
        return fn

    return register


def list_sections() -> list[str]:
    return list(SECTIONS)


# ----------------------------------------------------------------------------- helpers
def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _fmt_vec(a, digits=3) -> str:
    return "(" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(a)) + ")"


# ============================================================================= sections
@tour_section("faithful_gmm")
def faithful_gmm(ctx: TourContext) -> Section:
    """(a) Old Faithful, two full-covariance components: MAP vs mean-field SVI vs NUTS."""
    import matplotlib.pyplot as plt

    import inference
    from inference.views import plot_clusters, plot_losses, plot_trace
    from inference.report import summary_table

    from .datasets import load_faithful
    from .registry import create_model

    ds = load_faithful()
    raw = torch.tensor(ds.data)
    mean, std = raw.mean(0), raw.std(0)
    data = (raw - mean) / std
    unscale = (mean.numpy(), std.numpy())
    steps, restarts = (40, 1) if ctx.quick else (600, 5)
    draws, warmup, depth = (20, 20, 3) if ctx.quick else (400, 300, 10)
    common = dict(seed=ctx.seed, progress_bar=False)
    fits = {}
    ctx.status("MAP")
    fits["MAP (delta)"] = inference.fit(create_model("gmm", n_components=2, covariance_type="full"), data, method="map",
                                        guide="delta", num_steps=steps, lr=0.05, restarts=restarts, **common)
    ctx.status("SVI")
    fits["SVI (normal)"] = inference.fit(create_model("gmm", n_components=2, covariance_type="full"), data, method="svi",
                                         guide="normal", num_steps=steps, lr=0.05, restarts=restarts, num_samples=draws,
                                         **common)
    ctx.status("NUTS")
    fits["NUTS"] = inference.fit(create_model("gmm", n_components=2, covariance_type="full"), data, method="nuts",
                                 num_samples=draws, num_warmup=warmup, num_chains=2,
                                 nuts_init=fits["MAP (delta)"], max_tree_depth=depth, **common)
    table = summary_table(fits, unscale=unscale)
    table.to_csv(ctx.out / "summary.csv")
    for label, r in fits.items():
        r.to_inference_data().to_netcdf(str(ctx.out / f"posterior_{label.split()[0].lower()}.nc"))

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True, sharey=True)
    for ax, (label, r) in zip(axes, fits.items()):
        plot_clusters(r, ax, title=label, unscale=unscale, feature_names=ds.feature_names)
    figures = [ctx.figure(fig, "clusters.png", "Each eruption coloured by its MAP component under each fit; "
                          "posterior-mean components drawn as 2-sd ellipses.")]
    figures.append(ctx.figure(plot_losses({k: v for k, v in fits.items() if v.losses}).figure, "loss.png",
                              "Loss traces of the best MAP and SVI restarts."))
    figures.append(ctx.figure(plot_trace(fits["NUTS"], var_names=["locs", "weights"]), "trace.png", "NUTS traces of the locations and weights "
                              "(two chains, standardised units)."))
    prose = [
        "272 eruptions of Old Faithful (eruption minutes, waiting minutes), standardised for fitting and "
        "reported in the original units. The model is a two-component Gaussian mixture with Dirichlet weights "
        "and LKJ-Cholesky covariances; the component index is summed out by enumeration in every fit.",
        f"MAP uses a `delta` guide (best of {restarts} initialisations), SVI a mean-field `normal` guide, and "
        f"NUTS two chains of {draws} draws after {warmup} warm-up steps, started at the MAP fit: the reference "
        "posterior. The three agree on the locations and weights because the two clusters are well separated: "
        "the posterior is narrow and close to Gaussian. `elpd_loo` (PSIS-LOO) needs draws, so the MAP row has "
        "none; `max_r_hat` needs several chains.",
    ]
    return Section("Old Faithful: MAP, mean-field SVI and NUTS", prose,
                   [Table("Summary of the three fits (run time, final loss, mean log-likelihood per datum at the "
                          "posterior mean, PSIS-LOO, largest r_hat, posterior means).", table, "summary")],
                   figures)


def _mixture_data(seed: int, n: int):
    """Three overlapping 2-D Gaussians of unequal size and shape: a broad one and two compact ones."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.25, 0.25])
    means = np.array([[0.0, 0.0], [4.0, 0.5], [2.5, 4.0]])
    covs = np.array([[[4.0, 0.0], [0.0, 4.0]], [[0.3, 0.0], [0.0, 0.3]], [[1.2, 0.9], [0.9, 1.2]]])
    z = rng.choice(3, size=n, p=weights)
    L = np.linalg.cholesky(covs)
    x = means[z] + np.einsum("nij,nj->ni", L[z], rng.standard_normal((n, 2)))
    return x, z, weights, means


def _entropy(resp: np.ndarray) -> np.ndarray:
    r = np.clip(resp, 1e-300, 1.0)
    return -(resp * np.log(r)).sum(1)


@tour_section("kmeans_vs_em")
def kmeans_vs_em(ctx: TourContext) -> Section:
    """(b) k-means (hard, fixed spherical variance) vs EM (soft), and tempered EM from T = 0 to T = 2."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from .mixture import GaussianMixture, KMeans

    n = 300 if ctx.quick else 900
    X, truth, true_w, _ = _mixture_data(ctx.seed, n)
    temps = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0]
    rows, fitted = [], {}
    km = KMeans(3, n_init=5, random_state=ctx.seed).fit(X)
    counts = np.bincount(km.labels_, minlength=3) / n
    rows.append({"fit": "k-means", "T": 0.0, "loglik_per_datum": np.nan, "ARI": adjusted_rand_score(truth, km.labels_),
                 "mean_entropy": 0.0, "uncertain_frac": 0.0, "weights": _fmt_vec(np.sort(counts), 2)})
    for T in temps:
        ctx.status(f"T={T}")
        gm = GaussianMixture(3, covariance_type="full", temperature=T, n_init=3, max_iter=300, tol=1e-6,
                             random_state=ctx.seed).fit(X)
        fitted[T] = gm
        # responsibilities of the fitted parameters at T = 1 (the exact posterior p(k | x)):
        exact = GaussianMixture(3, covariance_type="full", max_iter=0, weights_init=gm.weights_,
                                means_init=gm.means_, precisions_init=gm.precisions_).fit(X).predict_proba(X)
        rows.append({"fit": "hard EM" if T == 0 else f"tempered EM", "T": T, "loglik_per_datum": gm.score(X),
                     "ARI": adjusted_rand_score(truth, gm.predict(X)),
                     "mean_entropy": float(_entropy(gm.predict_proba(X)).mean()),
                     "uncertain_frac": float((exact.max(1) < 0.9).mean()),
                     "weights": _fmt_vec(np.sort(gm.weights_), 2)})
    sk = SkGaussianMixture(3, covariance_type="full", n_init=3, max_iter=300, tol=1e-6, random_state=ctx.seed).fit(X)
    rows.append({"fit": "scikit-learn EM", "T": 1.0, "loglik_per_datum": sk.score(X),
                 "ARI": adjusted_rand_score(truth, sk.predict(X)), "mean_entropy": float(_entropy(sk.predict_proba(X)).mean()),
                 "uncertain_frac": float((sk.predict_proba(X).max(1) < 0.9).mean()),
                 "weights": _fmt_vec(np.sort(sk.weights_), 2)})
    table = pd.DataFrame(rows).set_index("fit")

    # the temperature of the E-step alone: one fitted model, responsibilities at several T
    em = fitted[1.0]
    log_joint = np.log(em.predict_proba(X)) + em.score_samples(X)[:, None]  # log pi_k N(x | k)
    sweep_T = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    sweep = []
    for T in sweep_T:
        logits = log_joint / T
        r = np.exp(logits - logits.max(1, keepdims=True))
        r /= r.sum(1, keepdims=True)
        sweep.append(_entropy(r).mean())

    colors = np.array([[0.85, 0.2, 0.2], [0.2, 0.45, 0.85], [0.2, 0.7, 0.3]])
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    axes[0].scatter(X[:, 0], X[:, 1], c=colors[km.labels_], s=6)
    axes[0].plot(*km.cluster_centers_.T, "kx", ms=9)
    axes[0].set_title(f"k-means (ARI {table.loc['k-means', 'ARI']:.2f})")
    hard = fitted[0.0]
    axes[1].scatter(X[:, 0], X[:, 1], c=colors[hard.predict(X)], s=6)
    axes[1].plot(*hard.means_.T, "kx", ms=9)
    axes[1].set_title(f"hard EM, T = 0 (ARI {adjusted_rand_score(truth, hard.predict(X)):.2f})")
    soft = np.clip(em.predict_proba(X) @ colors, 0, 1)
    axes[2].scatter(X[:, 0], X[:, 1], c=soft, s=6)
    axes[2].plot(*em.means_.T, "kx", ms=9)
    axes[2].set_title("EM, T = 1: colour mixes p(k | x)")
    axes[3].plot(sweep_T, sweep, "o-")
    axes[3].axhline(math.log(3), color="0.6", ls="--", lw=1)
    axes[3].set_xscale("log")
    axes[3].set_xlabel("temperature T")
    axes[3].set_ylabel("mean entropy of responsibilities (nats)")
    axes[3].set_title("E-step at temperature T (EM fit)")
    for ax in axes[:3]:
        ax.set_aspect("equal", adjustable="datalim")
    figures = [ctx.figure(fig, "kmeans_vs_em.png", "Left to right: k-means labels, hard-EM labels, EM "
                          "responsibilities as mixed colours, and the entropy of the tempered E-step "
                          "r_nk ∝ (pi_k N(x_n | k))^(1/T) of the EM fit (dashed: log 3, uniform).")]
    prose = [
        f"{n} points from three overlapping Gaussians: a broad one (weight 0.5) and two compact ones. EM's "
        "E-step is the exact posterior over each point's component; at temperature T it becomes "
        "r_nk ∝ (pi_k N(x_n | k))^(1/T), so T = 1 is EM and T → 0 puts all mass on the arg-max (hard EM, "
        "the MAP assignment). k-means is hard EM with equal weights and one fixed spherical variance.",
        "The table fits at each temperature. Hard assignments throw away the overlap: hard EM and k-means "
        "carve the broad component into pieces, shrink its weight and lower the log-likelihood per datum "
        "(computed untempered for every row). `uncertain_frac` is the fraction of points whose exact posterior "
        "p(k | x) under the fitted parameters has no component above 0.9: that is the uncertainty a hard "
        "assignment hides. The scikit-learn row is an independent check of the T = 1 fit. Above T = 1 the "
        "tempered E-step can be so flat that the components merge into one (equal weights, uniform "
        "responsibilities, entropy log 3): the phase transition that deterministic annealing cools through.",
    ]
    return Section("k-means, hard EM and soft EM: the temperature of the E-step", prose,
                   [Table(f"Fits at each temperature (true weights {_fmt_vec(np.sort(true_w), 2)}; "
                          "ARI against the true components).", table, "kmeans_vs_em")], figures)


def _push_model(absorbing="none", b=0.0, logit_penalty=0.0):
    """One datum x = 0 on prototype 1, whose anchor (0) is the outermost in the +z direction; the
    anchors are close (0 and -0.05), so the outward gradient decays slowly, as e^(-0.1 z)."""
    from .glgae import GLGAE

    m = GLGAE(2, 1, 1, absorbing=absorbing, b=b, logit_penalty=logit_penalty)
    with torch.no_grad():
        m.A.data = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
        m.B.data = torch.tensor([[0.0], [-0.05]], dtype=torch.float64)
    return m


def _penalised_L2(model, lam):
    """L2 of a model without absorbing component, with -lam ||z||^2 added to every logit of q(k | z)."""
    def L2(z, x):
        logits = -(z.unsqueeze(-2) - model.B).pow(2).sum(-1) - lam * z.pow(2).sum(-1, keepdim=True)
        log_q = logits - torch.logsumexp(logits, -1, keepdim=True)
        return torch.logsumexp(log_q - (x.unsqueeze(-2) - model.A).pow(2).sum(-1), -1)
    return L2


def _adam_path(L2, x, steps, lr=0.05):
    """|z| after every Adam step of ascent on L2(z, x) from z = 0."""
    z = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr)
    path = np.empty(steps)
    for i in range(steps):
        opt.zero_grad()
        (-L2(z, x).sum()).backward()
        opt.step()
        path[i] = z.detach().abs().item()
    return path


@tour_section("push_away")
def push_away(ctx: TourContext) -> Section:
    """(c) GLGAE: MAP codes drift away without an absorbing component; with one they stay put."""
    import matplotlib.pyplot as plt

    import inference

    from . import objectives as obj
    from .datasets import make_ring
    from .registry import create_model

    steps = 300 if ctx.quick else 4000
    checkpoints = [s for s in (100, 1000, 4000) if s <= steps]
    variants = {
        "no absorbing (b = 0)": dict(),
        "b = 0, penalty -||z||^2 on every logit": dict(logit_penalty=1.0),
        "absorbing b = 0.5": dict(absorbing="constant", b=0.5),
        "absorbing b = 3": dict(absorbing="constant", b=3.0),
        "absorbing exp(||z||^2)": dict(absorbing="exp_norm"),
    }
    x = torch.zeros(1, 1, dtype=torch.float64)
    rows, paths = [], {}
    for label, kw in variants.items():
        ctx.status(label)
        m = _push_model(**kw)
        L2 = _penalised_L2(m, kw["logit_penalty"]) if "logit_penalty" in kw else m.L2
        paths[label] = _adam_path(L2, x, steps)
        z, info = m.encode(x, z0=torch.zeros(1, 1, dtype=torch.float64), max_iter=2000, tol=1e-10,
                           return_trace=True)  # (the penalty cancels: encoding ignores it)
        full = m.log_q(z, with_absorbing=True).exp()[0]
        row = {"variant": label}
        row.update({f"|z| Adam {s}": paths[label][s - 1] for s in checkpoints})
        row.update({"|z| L-BFGS": z.abs().item(), "grad L2 at end": info["grad_norm"].item(),
                    "L2 at end": m.L2(z, x).item(), "absorbing mass q(K+1|z)": full[-1].item()})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("variant")

    # the notes' worked example: K = 2, E = 1, anchors (0, -1), absorbing weight exp(v^2)
    w = torch.tensor([[0.0], [-1.0]], dtype=torch.float64)
    v = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([v], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-14)

    def closure():
        opt.zero_grad()
        loss = -obj.log_q_given_z(v, w, "exp_norm")[..., 0].sum()
        loss.backward()
        return loss

    opt.step(closure)
    u1 = obj.log_q_given_z(v.detach(), w, "exp_norm")[0, 0].exp().item()
    worked = pd.DataFrame([{"quantity": "argmax_v u_1(v)", "measured": v.item(), "notes": 0.13529},
                           {"quantity": "u_1 at the argmax", "measured": u1, "notes": 0.4314}]).set_index("quantity")

    # training on the ring of 8 Gaussians, with and without the absorbing component
    ring = make_ring(n_samples=60 if ctx.quick else 240, random_state=ctx.seed)
    X = torch.tensor(ring.data)
    epochs = 3 if ctx.quick else 12
    codes, ring_rows = {}, []
    for label, kw in {"b = 0": dict(absorbing="none", b=0.0), "b = 1": dict(absorbing="constant", b=1.0)}.items():
        ctx.status(f"ring {label}")
        m = create_model("glgae", K=8, D=2, E=2, **kw)
        m.reset_parameters(X, seed=ctx.seed)  # as inference.fit(method="coordinate") does
        r = m.coordinate_fit(X, num_steps=epochs, encode_iter=100 if ctx.quick else 200, progress_bar=False,
                             seed=ctx.seed)
        z = m.encode(X, z0=r.samples["z"], max_iter=200)  # coordinate_fit returns the codes (N, E)
        norms = z.norm(dim=-1)
        codes[label] = (_np(z), _np(m.B))
        ring_rows.append({"model": label, "E_data[max_z L2]": -r.losses[-1],
                          "median |z|": norms.median().item(), "max |z|": norms.max().item(),
                          "max |B_k|": m.B.norm(dim=-1).max().item()})
    ring_table = pd.DataFrame(ring_rows).set_index("model")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for label, path in paths.items():
        axes[0].plot(np.arange(1, steps + 1), path, label=label, lw=1.3, ls="--" if "penalty" in label else "-")
    axes[0].set_xscale("log")
    axes[0].set_yscale("symlog", linthresh=0.1)
    axes[0].set_xlabel("Adam step")
    axes[0].set_ylabel("|z|")
    axes[0].set_title("MAP ascent on L2(z, x) from z = 0")
    axes[0].legend(fontsize=7)
    zs = torch.linspace(-3, 60, 800, dtype=torch.float64)[:, None]
    for label, kw in variants.items():
        if "penalty" in label:
            continue
        axes[1].plot(_np(zs[:, 0]), _np(_push_model(**kw).L2(zs, x.expand(len(zs), 1))), label=label, lw=1.3)
    axes[1].set_ylim(-4, 0.2)
    axes[1].set_xlabel("z")
    axes[1].set_ylabel("L2(z, x = 0)")
    axes[1].set_title("The objective: supremum at infinity when b = 0")
    axes[1].legend(fontsize=7)
    for label, (z, B) in codes.items():
        axes[2].plot(np.sort(np.linalg.norm(z, axis=1)), label=f"codes |z_n|, {label}", lw=1.5)
        axes[2].axhline(np.linalg.norm(B, axis=1).max(), ls="--", lw=1, color=axes[2].lines[-1].get_color(),
                        label=f"largest anchor |B_k|, {label}")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("datum (sorted)")
    axes[2].set_ylabel("|z|")
    axes[2].set_title("Ring of 8 Gaussians: MAP codes after training")
    axes[2].legend(fontsize=7)
    figures = [ctx.figure(fig, "push_away.png", "Left: |z| along Adam ascent for each variant (log steps). "
                          "Middle: L2(z, x) along z. Right: the norms of the codes of the 8-Gaussian ring "
                          "after coordinate training, with and without the absorbing component (dashed: the "
                          "largest anchor norm).")]
    prose = [
        "GLGAE encodes x by z = argmax_z L2(z, x), L2 = log sum_k q(k | z) p(x | k), with "
        "q(k | z) = exp(-||B_k - z||^2) / (a(z) + sum_j exp(-||B_j - z||^2)). Without an absorbing weight "
        "(a = 0) q is a softmax, a ratio: moving z away from every anchor, past the anchor of x's own "
        "prototype, makes that component's share tend to 1, so L2 keeps rising towards log p(x | k) and the "
        "MAP code runs off to infinity (push-away). Adding the same penalty -||z||^2 to every logit changes "
        "nothing: it cancels in the ratio.",
        "An absorbing component that takes mass but emits no data (a constant weight b, or exp(||z||^2)) "
        "makes q(k | z) → 0 far from the anchors, so L2 has a finite maximum: L-BFGS stops there with a zero "
        "gradient, and Adam settles at the same point. The worked example of the notes is reproduced below. "
        "On the ring, training without the absorbing component leaves codes far out; with b = 1 they stay "
        "among the anchors.",
    ]
    return Section("GLGAE: push-away and the absorbing component", prose,
                   [Table("One datum x = 0 on prototype 1 (anchors 0 and -0.05): |z| along Adam (lr 0.05) and at "
                          "the L-BFGS end point.", table, "push_away"),
                    Table("The notes' worked example (K = 2, E = 1, w = (0, -1), absorbing exp(v^2)).", worked,
                          "push_away_worked_example"),
                    Table(f"Coordinate training on the ring ({len(X)} points, K = 8, E = 2, {epochs} epochs).",
                          ring_table, "push_away_ring")],
                   figures)


def _posterior_on_grid(model, x, grid):
    """Normalised flat-prior posterior p(z | x) ∝ exp L2(z, x) on a 1-D grid: (n_x, n_grid) densities."""
    with torch.no_grad():
        logp = model.L2(grid[None, :, None], x[:, None, :])  # (n_x, n_grid)
        logp = logp - torch.logsumexp(logp, -1, keepdim=True)
    dz = float(grid[1] - grid[0])
    return (logp.exp() / dz).numpy()


@tour_section("bayes_vs_map_encoding")
def bayes_vs_map_encoding(ctx: TourContext) -> Section:
    """(d) GLGAE: the MAP code against the exact posterior over z (quadrature on a grid)."""
    import matplotlib.pyplot as plt

    import inference

    from .datasets import make_ring
    from .glgae import GLGAE
    from .registry import create_model

    # 1-D: prototypes at -1.5 and 1.5, anchors at -2 and 2, absorbing weight b = 1
    m = GLGAE(2, 1, 1, absorbing="constant", b=1.0)
    with torch.no_grad():
        m.A.data = torch.tensor([[-1.5], [1.5]], dtype=torch.float64)
        m.B.data = torch.tensor([[-2.0], [2.0]], dtype=torch.float64)
    picks = [-1.5, -0.6, -0.2, 0.0, 0.2, 0.6, 1.5]
    sweep = np.linspace(-2.5, 2.5, 61 if ctx.quick else 201)
    xs = torch.tensor(np.unique(np.concatenate([sweep, picks])), dtype=torch.float64)[:, None]
    grid = torch.linspace(-7, 7, 1401 if ctx.quick else 4001, dtype=torch.float64)
    dens = _posterior_on_grid(m, xs, grid)
    g = grid.numpy()
    dz = g[1] - g[0]
    post_mean = (dens * g).sum(1) * dz
    post_sd = np.sqrt(np.maximum((dens * g**2).sum(1) * dz - post_mean**2, 0))
    z_map = _np(m.encode(xs))[:, 0]  # L-BFGS from the anchor of the nearest prototype
    rows = []
    for xv in picks:
        i = int(np.flatnonzero(xs[:, 0].numpy() == xv)[0])
        x1 = xs[i : i + 1]
        with torch.no_grad():
            zg = torch.tensor(g)[:, None]
            r = (m.log_q(zg) - (x1 - m.A[:, 0]).pow(2)).softmax(-1)  # p(k | z, x) on the grid
        p_k2 = float((dens[i] * r[:, 1].numpy()).sum() * dz)
        rows.append({"x": xv, "MAP z": z_map[i], "posterior mode": g[np.argmax(dens[i])],
                     "posterior mean": post_mean[i], "posterior sd": post_sd[i],
                     "P(z > 0 | x)": float(dens[i][g > 0].sum() * dz), "P(k = 2 | x)": p_k2})
    table = pd.DataFrame(rows).set_index("x")

    # 2-D: a GLGAE trained on the ring; the posterior over z of three data points
    ring = make_ring(n_samples=240, random_state=ctx.seed)  # a few seconds; small runs can merge two clusters
    X = torch.tensor(ring.data)
    ctx.status("ring")
    gl = create_model("glgae", K=8, D=2, E=2, b=1.0)
    inference.fit(gl, X, method="coordinate", num_steps=12, progress_bar=False, seed=ctx.seed)
    gl = gl.frozen()
    locs = ring.truth["locs"]
    probes = {"on a cluster": locs[0], "between two clusters": (locs[0] + locs[1]) / 2, "at the centre": 0 * locs[0]}
    Bn = _np(gl.B)
    lim = float(np.abs(Bn).max() + 3.0)
    n_grid = 121 if ctx.quick else 241
    axis = torch.linspace(-lim, lim, n_grid, dtype=torch.float64)
    Z = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    cell = float(axis[1] - axis[0]) ** 2
    rows2, panels = [], []
    for name, p in probes.items():
        x = torch.tensor(p, dtype=torch.float64)[None]
        with torch.no_grad():
            logp = gl.L2(Z, x.expand(len(Z), 2))
        w = torch.softmax(logp, 0).numpy()
        zn = Z.numpy()
        mean = w @ zn
        cov = (zn - mean).T @ ((zn - mean) * w[:, None])
        zm = _np(gl.encode(x))[0]
        near = float(w[np.linalg.norm(zn - zm, axis=1) < 1.0].sum())
        rows2.append({"datum": name, "MAP z": _fmt_vec(zm, 2), "posterior mean": _fmt_vec(mean, 2),
                      "posterior sd (sqrt trace cov)": float(np.sqrt(np.trace(cov))),
                      "P(||z - MAP z|| < 1 | x)": near})
        panels.append((name, (w / cell).reshape(n_grid, n_grid), zm, mean))
    table2 = pd.DataFrame(rows2).set_index("datum")

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    ax = axes[0]
    ax.pcolormesh(xs[:, 0].numpy(), g, dens.T, shading="auto", cmap="Greys", vmax=np.quantile(dens, 0.995))
    ax.plot(xs[:, 0], z_map, "r-", lw=1.8, label="MAP z")
    ax.plot(xs[:, 0], post_mean, "b-", lw=1.5, label="posterior mean")
    ax.fill_between(xs[:, 0].numpy(), post_mean - 2 * post_sd, post_mean + 2 * post_sd, color="b", alpha=0.12,
                    label="mean ± 2 sd")
    ax.set_xlabel("datum x")
    ax.set_ylabel("code z")
    ax.set_ylim(-5, 5)
    ax.set_title("1-D GLGAE: p(z | x) (grey), MAP and mean")
    ax.legend(fontsize=7, loc="upper left")
    for ax, (name, density, zm, mean) in zip(axes[1:], panels):
        ax.imshow(density, origin="lower", extent=[-lim, lim, -lim, lim], cmap="Greys")
        ax.plot(Bn[:, 0], Bn[:, 1], "g^", ms=6, label="anchors B_k")
        ax.plot(*zm, "r*", ms=13, label="MAP z")
        ax.plot(*mean, "bo", ms=6, label="posterior mean")
        ax.set_title(f"ring GLGAE, datum {name}")
        ax.legend(fontsize=7, loc="lower left")
    figures = [ctx.figure(fig, "bayes_vs_map_encoding.png", "Left: a 1-D GLGAE (prototypes ±1.5, anchors ±2, "
                          "b = 1); the grey image is p(z | x) for every x, the red line the MAP code. Right: "
                          "the posterior over the 2-D code of three data points under a GLGAE trained on the "
                          "ring, with the MAP code (red star).")]
    prose = [
        "With an absorbing component the flat-prior posterior p(z | x) ∝ sum_k q(k | z) p(x | k) is proper, "
        "so Bayesian encoding keeps all of it instead of its arg-max. Here it is computed exactly, by "
        "quadrature on a grid (1-D and 2-D codes), and set against the MAP code from batched L-BFGS.",
        "Away from the boundary the two agree: the posterior is a single bump and the MAP code sits at its "
        "mode. Near the boundary between two prototypes the posterior has a mode near each anchor; the MAP "
        "code picks one (it jumps at the boundary) and reports no uncertainty, while the posterior mean moves "
        "smoothly through 0 and its standard deviation peaks. The same holds in 2-D for a datum between two "
        "ring clusters, and a datum at the centre of the ring spreads its posterior over every anchor.",
    ]
    return Section("Bayesian vs MAP encoding (GLGAE)", prose,
                   [Table("1-D GLGAE: MAP code against the exact posterior over z.", table, "bayes_vs_map_1d"),
                    Table("Ring GLGAE (K = 8, E = 2, b = 1): the posterior over the code of three data points.",
                          table2, "bayes_vs_map_ring")],
                   figures)


@tour_section("swapping_guides")
def swapping_guides(ctx: TourContext) -> Section:
    """(e) Guides swapped by one word against the exact posterior of a correlated Gaussian model."""
    from inference.compare import compare

    from .datasets import make_blobs
    from .registry import create_model

    data = torch.tensor(make_blobs(40, n_components=2, random_state=3).data)
    guides_ = ["delta", "normal", "mvn", "lowrank"] + ([] if ctx.quick else ["flow"])
    ctx.status("compare guides")
    model = create_model("correlated_gaussian")
    cmp = compare(model, data, guides=guides_, reference="exact", num_steps=100 if ctx.quick else 800,
                  lr=0.05, lr_decay=0.99, num_samples=500 if ctx.quick else 2000, num_particles=100 if ctx.quick else 500,
                  progress_bar=False, seed=ctx.seed, fit_kwargs={"num_particles": 4 if ctx.quick else 32})
    cols = ["method", "elbo", "log_evidence", "log_evidence_se", "run_time", "mean_error[mu]", "sd_error[mu]",
            "energy[mu]", "rank"]
    table = cmp.table[cols]
    figures = [ctx.figure(cmp.plot(max_marginals=2), "swapping_guides.png",
                          "Left: energy distance of each guide's draws to the exact posterior (log scale). "
                          "Right: the two marginals of mu, every guide against the exact posterior (grey).")]
    rho = model.noise_corr
    prose = [
        f"The unknown mean of {len(data)} two-dimensional points under noise with correlation {rho}: the exact "
        "posterior is a Gaussian with the same strong correlation, and the log evidence is known in closed form. "
        "Each guide is one word to `inference.compare`, which fits it, draws from it and sets it against the "
        "exact posterior: error of the mean and of the standard deviation (in posterior sds), energy distance, "
        "the ELBO and an importance-sampled log evidence with the guide as proposal.",
        "The mean-field `normal` guide finds the mean but cannot tilt: its marginals are too narrow by about "
        "sqrt(1 - rho^2), so it ranks behind the full-rank `mvn` (and the rank-one-plus-diagonal `lowrank`). "
        "The point estimate (`delta`) has no spread at all. Where the guide's family holds the posterior, the "
        "ELBO meets the log evidence.",
    ]
    return Section("Swapping guides against an exact posterior", prose,
                   [Table("Guides against the exact posterior of `correlated_gaussian` (errors in posterior sds).",
                          table, "swapping_guides")], figures)


@tour_section("variational_em")
def variational_em(ctx: TourContext) -> Section:
    """(f) CAVI for the Bayesian mixture: scikit-learn's bound iteration by iteration, and against SVI."""
    import time as _time

    import matplotlib.pyplot as plt
    from sklearn.mixture import BayesianGaussianMixture as SkBGM

    import inference
    from inference.cavi import fit_cavi, mean_field_elbo

    from .mixture import BayesianGaussianMixture, BayesianGMM

    rng = np.random.default_rng(ctx.seed)
    n = 150 if ctx.quick else 600
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = centres[rng.integers(3, size=n)] + rng.normal(size=(n, 2))
    common = dict(n_components=6, covariance_type="full", weight_concentration_prior=0.01, max_iter=300, tol=1e-6,
                  init_params="random_from_data", random_state=ctx.seed)
    rows, fits = [], {}
    for prior in ("dirichlet_process", "dirichlet_distribution"):
        ctx.status(f"CAVI {prior}")
        t0 = _time.perf_counter()
        ours = BayesianGaussianMixture(weight_concentration_prior_type=prior, **common).fit(X)
        t_ours = _time.perf_counter() - t0
        t0 = _time.perf_counter()
        ref = SkBGM(weight_concentration_prior_type=prior, **common).fit(X)
        t_ref = _time.perf_counter() - t0
        fits[prior] = (ours, ref)
        m = min(len(ours.lower_bounds_), len(ref.lower_bounds_))
        gap = np.max(np.abs(np.asarray(ours.lower_bounds_[:m]) - ref.lower_bounds_[:m]) / np.abs(ref.lower_bounds_[:m]))
        w = np.sort(ours.weights_)[::-1]
        rows.append({"prior": prior, "iterations": ours.n_iter_, "sklearn_iterations": ref.n_iter_,
                     "lower_bound": ours.lower_bound_, "sklearn_lower_bound": ref.lower_bound_,
                     "max_rel_gap_per_iter": gap, "elbo (full)": ours.elbo_, "time_s": t_ours, "sklearn_time_s": t_ref,
                     "weights of the 3 unused": _fmt_vec(w[3:], 4)})
    parity = pd.DataFrame(rows).set_index("prior")

    ctx.status("CAVI vs SVI")
    model = BayesianGMM(3, covariance_type="diag", weight_concentration_prior_type="dirichlet_distribution")
    Xs = X[: 150 if ctx.quick else 300]
    t0 = _time.perf_counter()
    cavi = fit_cavi(model, Xs, max_iter=500, tol=1e-8, num_samples=20, progress_bar=False, seed=ctx.seed)
    t_cavi = _time.perf_counter() - t0
    particles = 50 if ctx.quick else 300
    svi_rows = [{"fit": "CAVI", "steps": len(cavi.losses), "time_s": t_cavi,
                 "mean_field_elbo": mean_field_elbo(model, cavi.guide, cavi.data, num_particles=particles)[0]}]
    for guide in ("custom", "normal"):
        ctx.status(f"SVI {guide}")
        t0 = _time.perf_counter()
        svi = inference.fit(model, Xs, method="svi", guide=guide, num_steps=100 if ctx.quick else 1000, lr=0.05,
                            num_samples=20, progress_bar=False, seed=ctx.seed)
        svi_rows.append({"fit": f"SVI ({guide} guide)", "steps": len(svi.losses), "time_s": _time.perf_counter() - t0,
                         "mean_field_elbo": mean_field_elbo(model, svi.guide, svi.data, num_particles=particles)[0]})
    versus = pd.DataFrame(svi_rows).set_index("fit")

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    ours, ref = fits["dirichlet_process"]
    axes[0].plot(np.arange(1, len(ref.lower_bounds_) + 1), ref.lower_bounds_, "o", ms=6, mfc="none", label="scikit-learn")
    axes[0].plot(np.arange(1, len(ours.lower_bounds_) + 1), ours.lower_bounds_, ".-", label="zoo (CAVI)")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("lower_bound_ (scikit-learn's definition)")
    axes[0].set_title("Dirichlet-process prior: the same bound every iteration")
    axes[0].legend()
    width = 0.4
    for i, (prior, (m, _)) in enumerate(fits.items()):
        axes[1].bar(np.arange(6) + (i - 0.5) * width, np.sort(m.weights_)[::-1], width, label=prior)
    axes[1].set_xlabel("component (sorted)")
    axes[1].set_ylabel("posterior-mean weight")
    axes[1].set_title("Six components for three clusters")
    axes[1].legend()
    fig.tight_layout()
    figures = [ctx.figure(fig, "variational_em.png", "Left: the bound after every CAVI iteration, ours and "
                          "scikit-learn's from the same initial responsibilities. Right: the fitted weights under "
                          "the two weight priors (concentration 0.01).")]
    prose = [
        f"{n} points from three well-separated Gaussians, fitted with six components by mean-field variational "
        "Bayes: coordinate ascent on the ELBO, every factor of q set in closed form (`zoo.BayesianGaussianMixture`). "
        "Started from the same responsibilities, its bound matches scikit-learn's `BayesianGaussianMixture` "
        "after every iteration (`max_rel_gap_per_iter`); `elbo_` adds back the constants scikit-learn drops. "
        "Under the Dirichlet-process (stick-breaking) prior the surplus components are switched off.",
        "The same model is a Pyro model (`zoo.create_model(\"bayesian_gmm\")`): `inference.fit(method=\"cavi\")` "
        "runs the closed-form updates, and SVI fits it by gradient steps with the conjugate-family guide "
        "(`custom`) or the mean-field `normal` guide. The table scores every fit by the same Monte Carlo "
        "mean-field ELBO: CAVI reaches a higher bound in a fraction of the time.",
    ]
    return Section("Variational EM (CAVI) against scikit-learn and SVI", prose,
                   [Table("CAVI against scikit-learn (same priors, same initial responsibilities, full covariances).",
                          parity, "variational_em_parity"),
                    Table(f"CAVI against SVI on the Pyro model (K = 3, diagonal precisions, N = {len(Xs)}); "
                          f"mean-field ELBO from {particles} draws of q.", versus, "variational_em_svi")], figures)


@tour_section("vae_estimators")
def vae_estimators(ctx: TourContext) -> Section:
    """(g) The VAE's gradient estimators: variance at fixed parameters, and the bounds each reaches."""
    import matplotlib.pyplot as plt

    import inference

    from .datasets import load_binary_digits
    from inference import gradient_variance

    from .vae import VAE

    ds = load_binary_digits()
    xtr, xte = torch.tensor(ds.data), torch.tensor(ds.test_data)
    latent, hidden = 8, (64,)
    ctx.status("gradient variance")
    torch.manual_seed(ctx.seed)
    probe = VAE(64, latent, hidden)
    var = gradient_variance(probe, xtr[:64], ("reparam", "analytic_kl", "score_function", "iwae"),
                            num_draws=10 if ctx.quick else 200, burn_in=3 if ctx.quick else 20, seed=ctx.seed)
    probe.baseline = "none"  # plain REINFORCE: the same score-function estimator without a control variate
    bare = gradient_variance(probe, xtr[:64], ("score_function",), num_draws=10 if ctx.quick else 200,
                             burn_in=0, seed=ctx.seed).rename(index={"score_function": "score_function, no baseline"})
    var = pd.concat([var, bare])
    var["relative_to_reparam"] = var["mean_variance"] / var.loc["reparam", "mean_variance"]
    steps, k = (30, 100) if ctx.quick else (1500, 2000)
    rows = []
    for est in ("reparam", "analytic_kl", "score_function", "iwae"):
        ctx.status(f"VAE {est}")
        m = VAE(64, latent, hidden, estimator=est, num_particles=5 if est == "iwae" else 1)
        inference.fit(m, xtr, guide="custom", num_steps=steps, lr=3e-3, batch_size=128, progress_bar=False, seed=ctx.seed)
        torch.manual_seed(ctx.seed)
        rows.append({"estimator": est, "test_elbo": m.elbo(xte, num_samples=20).mean().item(),
                     "iwae_5": m.iwae_bound(xte, 5).mean().item(), f"loglik_{k}": m.log_likelihood(xte, k).mean().item()})
    bounds = pd.DataFrame(rows).set_index("estimator")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar([i.replace(", ", "\n") for i in var.index], var["mean_variance"], color="tab:blue")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("mean variance of the encoder gradient")
    axes[0].set_title("Gradient variance, same parameters and batch")
    x = np.arange(len(bounds))
    for i, col in enumerate(bounds.columns):
        axes[1].bar(x + (i - 1) * 0.27, bounds[col], 0.27, label=col)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(bounds.index)
    lo = float(bounds.to_numpy().min())
    axes[1].set_ylim(lo - 1.0, float(bounds.to_numpy().max()) + 0.5)
    axes[1].set_ylabel("nats per test image")
    axes[1].set_title("Test bounds after training")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    figures = [ctx.figure(fig, "vae_estimators.png", "Left: variance of each estimator's gradient with respect to "
                          "the encoder (log scale). Right: test ELBO, 5-sample IWAE bound and the importance-sampled "
                          "log-likelihood reached by each estimator.")]
    prose = [
        "A VAE on binarised 8 x 8 digits (64-64-8, Bernoulli decoder). The estimator of the ELBO's gradient is "
        "one string: `reparam` (z = mu + sigma eps), `analytic_kl` (the KL term in closed form), "
        "`score_function` (REINFORCE with a baseline, no reparameterisation) and `iwae` (the 5-sample "
        "importance-weighted bound).",
        "At the same parameters and batch the score function's gradient is orders of magnitude noisier than the "
        "reparameterised ones; its decaying-average baseline (per datum, here of a fixed batch) removes much of "
        "that, and the closed-form KL removes part of the reparameterised estimator's noise. After the same "
        f"number of steps ({steps}) every row reads ELBO <= IWAE_5 <= log-likelihood estimate ({k} importance "
        "samples): the gap is what a bound costs.",
    ]
    return Section("VAE gradient estimators", prose,
                   [Table("Gradient variance per estimator (encoder parameters, 64 images).", var, "vae_variance"),
                    Table("Test bounds per estimator (nats per image).", bounds, "vae_bounds")], figures)


# ============================================================================= rendering
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f1f1f1; } caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; } code { background: #f4f4f4; padding: 0 3px; }
.meta { color: #666; font-size: 0.9em; } nav li { margin: 0.15em 0; }
"""


def _inline(text: str) -> str:
    """Escape prose and turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _table_html(t: Table) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return "—"
            return f"{v:.5g}" if 1e-3 <= abs(v) < 1e6 or v == 0 else f"{v:.3e}"
        return str(v)

    body = t.frame.to_html(border=0, na_rep="—", float_format=fmt, escape=True)
    end = body.index(">") + 1  # after the opening <table ...>
    return f"{body[:end]}<caption>{_inline(t.caption)}</caption>{body[end:]}"


def render_html(sections: list[Section], *, title: str, meta: str) -> str:
    """A self-contained HTML page: every figure embedded as a base64 PNG ``data:`` URI."""
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>", f"<p class=\"meta\">{_inline(meta)}</p>", "<nav><ol>"]
    out += [f"<li><a href=\"#{s.key}\">{html.escape(s.title)}</a></li>" for s in sections]
    out.append("</ol></nav>")
    for s in sections:
        out.append(f"<section id=\"{s.key}\"><h2>{html.escape(s.title)}</h2>")
        out += [f"<p>{_inline(p)}</p>" for p in s.prose]
        out += [_table_html(t) for t in s.tables]
        for f in s.figures:
            data = base64.b64encode(f.png).decode("ascii")
            out.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(f.name)}\">"
                       f"<figcaption>{_inline(f.caption)} (<code>{html.escape(f.name)}</code>)</figcaption></figure>")
        out.append(f"<p class=\"meta\">Section run time {s.run_time:.1f} s.</p></section>")
    out.append("</body></html>")
    return "\n".join(out)


def _render_markdown(sections: list[Section], *, title: str, meta: str) -> str:
    lines = [f"# {title}", "", meta, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.prose:
            lines += [p, ""]
        for t in s.tables:
            lines += [f"*{t.caption}*", "", "```", t.frame.to_string(), "```", ""]
        for f in s.figures:
            lines += [f"![{f.name}]({f.name})", "", f.caption, ""]
    return "\n".join(lines)


def _versions() -> str:
    import pyro

    return f"Python {platform.python_version()}, torch {torch.__version__}, pyro {pyro.__version__}, " \
           f"numpy {np.__version__}, pandas {pd.__version__}"


def run_tour(out="runs/tour", *, quick: bool = False, progress_bar: bool = True, seed: int = 0,
             sections=None) -> Path:
    """Run the tour's sections (all, or the keys in ``sections``) and write ``report.html`` (self-contained),
    ``report.md``, the PNGs, one CSV per table and the Old Faithful InferenceData to ``out``.

    The folder is written whole or not at all. Returns ``Path(out)``.
    """
    import inference  # noqa: F401  (Pyro settings)

    keys = list(SECTIONS) if sections is None else list(sections)
    if not keys:
        raise ValueError("no tour sections selected")
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown tour section(s) {', '.join(map(repr, unknown))}; known: {', '.join(SECTIONS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    start = time.perf_counter()
    done: list[Section] = []
    threads = torch.get_num_threads()
    # the tour's problems are small (hundreds of points): one thread avoids OpenMP fork/join overhead,
    # which dominates such work and grows badly when the cores are shared
    torch.set_num_threads(1)
    try:
        _run_sections(out, keys, done, quick=quick, progress_bar=progress_bar, seed=seed, start=start)
    finally:
        torch.set_num_threads(threads)
    for s in done:
        print(f"{s.run_time:7.1f} s  {s.title}")
    print(f"wrote {Path(out) / 'report.html'} in {time.perf_counter() - start:.1f} s")
    return Path(out)


def _run_sections(out, keys, done, *, quick, progress_bar, seed, start):
    from tqdm.auto import tqdm

    from inference.checkpoint import staged_output

    with staged_output(out) as stage:
        bar = tqdm(keys, desc="tour", unit="section", disable=not progress_bar)
        ctx = TourContext(out=stage, seed=int(seed), quick=bool(quick), progress=bar)
        for key in bar:
            bar.set_description(f"tour: {key}")
            t0 = time.perf_counter()
            torch.manual_seed(ctx.seed)
            section = SECTIONS[key](ctx)
            if not isinstance(section, Section):
                raise TypeError(f"tour section {key!r} returned {type(section).__name__}, not a Section")
            section.key, section.run_time = key, time.perf_counter() - t0
            for i, t in enumerate(section.tables):
                t.frame.to_csv(stage / f"{t.name or f'{key}_{i}'}.csv")
            done.append(section)
        bar.close()
        elapsed = time.perf_counter() - start
        title = "latent-zoo tour"
        meta = (f"Seed {seed}{', quick mode (small sizes)' if quick else ''}; total run time {elapsed:.1f} s. "
                f"{_versions()}.")
        (stage / "report.html").write_text(render_html(done, title=title, meta=meta), encoding="utf-8")
        (stage / "report.md").write_text(_render_markdown(done, title=title, meta=meta), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    run_tour()
