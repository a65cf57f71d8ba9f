"""(c) GLGAE: MAP codes drift away without an absorbing component; with one they stay put.

The one-datum experiment (its variants, the Adam path of |z|, the L-BFGS end point), the notes' worked
example and the training on the ring are public: the tutorial ``push_away_and_absorbing_component``
measures the same things with them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import inference
from zoo import objectives as obj
from zoo.datasets import make_ring
from zoo.glgae import GLGAE
from zoo.registry import create_model

from . import Section, Table, TourContext, as_numpy, tour_section

__all__ = ["push_model", "penalised_L2", "adam_path", "VARIANTS", "push_away_table", "worked_example",
           "train_on_ring", "ring_summary"]

#: the one-datum experiment's variants: label -> arguments of :func:`push_model`
VARIANTS = {
    "no absorbing (b = 0)": dict(),
    "b = 0, penalty -||z||^2 on every logit": dict(logit_penalty=1.0),
    "absorbing b = 0.5": dict(absorbing="constant", b=0.5),
    "absorbing b = 3": dict(absorbing="constant", b=3.0),
    "absorbing exp(||z||^2)": dict(absorbing="exp_norm"),
}


def push_model(absorbing="none", b=0.0, logit_penalty=0.0) -> GLGAE:
    """One datum x = 0 on prototype 1 (A = (0, 2)), whose anchor (0) is the outermost in the +z direction;
    the anchors are close (0 and -0.05), so the outward gradient decays slowly, as e^(-0.1 z)."""
    return GLGAE.from_parameters([[0.0], [2.0]], [[0.0], [-0.05]], absorbing=absorbing, b=b,
                                 logit_penalty=logit_penalty)


def penalised_L2(model: GLGAE):
    """``L2(z, x)`` computed from the model's own logits of q(k | z), the ``logit_penalty`` included
    (``model.log_q``): the penalty is computed and cancels on normalising, up to rounding.
    ``GLGAE.L2`` (and so ``encode``) leaves the penalty out."""
    def L2(z, x):
        return torch.logsumexp(model.log_q(z) + obj.log_p_x_given_k(x, model.A), dim=-1)
    return L2


def adam_path(L2, x, steps: int, lr: float = 0.05) -> np.ndarray:
    """The code z (a scalar: E = 1, one datum x (1, 1)) after every Adam step of ascent on ``L2(z, x)``
    from z = 0: (steps,)."""
    z = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr)
    path = np.empty(steps)
    for i in range(steps):
        opt.zero_grad()
        (-L2(z, x).sum()).backward()
        opt.step()
        path[i] = z.detach().item()
    return path


def push_away_table(steps: int, checkpoints=(100, 1000, 4000), status=None):
    """Every variant of :data:`VARIANTS` on the datum x = 0: |z| along ``steps`` Adam steps (at the
    ``checkpoints`` within them) and at the end point of L-BFGS from z = 0 (at most 2000 iterations),
    the gradient and L2 there and the absorbing mass q(K+1 | z). The Adam path of the penalised variant
    ascends :func:`penalised_L2`. Returns the table (index ``variant``) and |z| along Adam per variant."""
    x = torch.zeros(1, 1, dtype=torch.float64)
    rows, paths = [], {}
    for label, kw in VARIANTS.items():
        if status is not None:
            status(label)
        m = push_model(**kw)
        paths[label] = np.abs(adam_path(penalised_L2(m) if m.logit_penalty else m.L2, x, steps))
        z, info = m.encode(x, z0=torch.zeros(1, 1, dtype=torch.float64), max_iter=2000, tol=1e-10,
                           return_trace=True)
        full = m.log_q(z, with_absorbing=True).exp()[0]
        row = {"variant": label}
        row.update({f"|z| Adam {s}": paths[label][s - 1] for s in checkpoints if s <= steps})
        row.update({"|z| L-BFGS": z.abs().item(), "grad L2 at end": info["grad_norm"].item(),
                    "L2 at end": m.L2(z, x).item(), "absorbing mass q(K+1|z)": full[-1].item()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant"), paths


def worked_example() -> pd.DataFrame:
    """The notes' worked example (K = 2, E = 1, anchors w = (0, -1), absorbing weight exp(v^2)): the
    maximiser of u_1(v) = q(1 | v) and its value, measured (:func:`zoo.objectives.argmax_q` from v = 0.5)
    beside the notes' numbers."""
    w = torch.tensor([[0.0], [-1.0]], dtype=torch.float64)
    v, u1 = obj.argmax_q(w, 0, "exp_norm", z0=[0.5])
    return pd.DataFrame([{"quantity": "argmax_v u_1(v)", "measured": v.item(), "notes": 0.13529},
                         {"quantity": "u_1 at the argmax", "measured": u1, "notes": 0.4314}]).set_index("quantity")


def train_on_ring(X, *, absorbing: str, b: float, epochs: int, seed: int = 0):
    """A GLGAE (K = 8, E = 2) trained on the ring ``X`` (N, 2) by coordinate ascent
    (``inference.fit(method="coordinate")``) for ``epochs`` sweeps, and the MAP codes of ``X`` under it.
    Returns ``(model, codes (N, 2), objective)``, ``objective`` the E_data[max_z L2] after every epoch."""
    m = create_model("glgae", K=8, D=2, E=2, absorbing=absorbing, b=b)
    fit = inference.fit(m, X, method="coordinate", num_steps=epochs, progress_bar=False, seed=seed)
    codes = m.encode(X, z0=fit.samples["z"][0, 0], max_iter=200)
    return m, codes, [-loss for loss in fit.losses]


def ring_summary(model: GLGAE, codes, objective) -> dict:
    """A row for a model trained by :func:`train_on_ring`: the final E_data[max_z L2], the median and
    largest norm of the codes, and the largest anchor norm."""
    norms = codes.norm(dim=-1)
    return {"E_data[max_z L2]": objective[-1], "median |z|": norms.median().item(), "max |z|": norms.max().item(),
            "max |B_k|": model.B.norm(dim=-1).max().item()}


@tour_section("push_away")
def push_away(ctx: TourContext) -> Section:
    """(c) GLGAE: MAP codes drift away without an absorbing component; with one they stay put."""
    import matplotlib.pyplot as plt

    steps = 300 if ctx.quick else 4000
    table, paths = push_away_table(steps, status=ctx.status)
    worked = worked_example()

    # training on the ring of 8 Gaussians, with and without the absorbing component
    ring = make_ring(n_samples=60 if ctx.quick else 240, random_state=ctx.seed)
    X = torch.tensor(ring.data)
    epochs = 3 if ctx.quick else 12
    codes, ring_rows = {}, []
    for label, kw in {"b = 0": dict(absorbing="none", b=0.0), "b = 1": dict(absorbing="constant", b=1.0)}.items():
        ctx.status(f"ring {label}")
        m, z, objective = train_on_ring(X, epochs=epochs, seed=ctx.seed, **kw)
        codes[label] = (as_numpy(z), as_numpy(m.B))
        ring_rows.append({"model": label, **ring_summary(m, z, objective)})
    ring_table = pd.DataFrame(ring_rows).set_index("model")

    x = torch.zeros(1, 1, dtype=torch.float64)
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
    for label, kw in VARIANTS.items():
        if "penalty" in label:
            continue
        axes[1].plot(as_numpy(zs[:, 0]), as_numpy(push_model(**kw).L2(zs, x.expand(len(zs), 1))), label=label,
                     lw=1.3)
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
