"""Time per training step: the Pyro VAE (zoo.vae.VAE through its ELBO) against a plain PyTorch VAE of
identical architecture, batch, estimator and optimiser (zoo.vae.PlainVAE), in one run.

Each step: draw a minibatch of ``--batch`` rows of the data, encoder, reparameterised draw, decoder,
Bernoulli log-likelihood from logits, KL (Monte Carlo for ``reparam``, closed form for ``analytic_kl``),
backward, Adam step. Our step runs with the model's own ELBO (``inference.elbo_for(vae)``: ReparamELBO), with
Pyro's Trace_ELBO / TraceMeanField_ELBO (``pyro_elbo=True``) and their compiled versions (``jit=True``);
blocks of every loop are interleaved in one run; medians are reported. The compiled loss is timed last,
against its own plain loop (after a JIT-compiled ELBO has run, eager steps in the same process slow down).

    python benchmarks/vae_step.py                      # 784-400-50 and the digits size, 2 threads, CPU
    python benchmarks/vae_step.py --device cuda --threads 0
    python benchmarks/vae_step.py --quick              # a short smoke run

Prints a table, then one JSON line per row: {"case", "elbo", "ours_ms", "plain_ms", "ratio"} (ratio = ours / plain).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import pyro
import torch

from inference import elbo_for
from zoo.vae import VAE, PlainVAE

SIZES = {"784-400-50": (784, 400, 50), "digits 64-128-16": (64, 128, 16)}
#: our step's variants: the model's own ELBO (ReparamELBO), Pyro's Trace_ELBO / TraceMeanField_ELBO, their
#: compiled versions
VARIANTS = {"ReparamELBO": {}, "pyro ELBO": {"pyro_elbo": True}, "pyro jit": {"jit": True}}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(D, H, L, *, batch, n_data, estimator, variants, device, steps, repeats, seed=0):
    """Median ms per step of each variant of our step (``variants``: names from ``VARIANTS``) and of the
    plain step, all timed in one interleaved run; returns ({variant: ms}, plain ms)."""
    torch.manual_seed(seed)
    data = (torch.rand(n_data, D, device=device) < 0.3).float()
    ours = VAE(D, L, (H,), estimator=estimator).to(device)
    plain = PlainVAE.from_vae(ours).to(device)
    guide = ours.custom_guide()
    opt_ours = torch.optim.Adam(list(ours.encoder.parameters()) + list(ours.decoder.parameters()), lr=1e-3)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=1e-3)

    def step_ours(elbo):
        def step():
            opt_ours.zero_grad()
            elbo.differentiable_loss(ours.model, guide, data, subsample_size=batch).backward()
            opt_ours.step()
        return step

    def step_plain():
        opt_plain.zero_grad()
        idx = torch.randperm(n_data, device=device)[:batch]
        plain.loss(data[idx], n_data).backward()
        opt_plain.step()

    loops = {v: step_ours(elbo_for(ours, **VARIANTS[v])) for v in variants}
    loops["plain"] = step_plain

    def block(fn):
        _sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        return (time.perf_counter() - t) / steps * 1e3

    for fn in loops.values():  # warm-up (and JIT compilation)
        for _ in range(max(5, steps // 4)):
            fn()
    times = {name: [] for name in loops}
    names = list(loops)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(block(loops[name]))
    med = {name: statistics.median(t) for name, t in times.items()}
    plain_ms = med.pop("plain")
    return med, plain_ms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads; 0 leaves the default")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-data", type=int, default=1024)
    p.add_argument("--steps", type=int, default=50, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=11, help="interleaved blocks per loop")
    p.add_argument("--estimators", default="reparam,analytic_kl")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="our step's ELBOs, comma-separated: " + ", ".join(VARIANTS))
    p.add_argument("--no-jit", action="store_true", help="leave out the compiled (JIT) Pyro ELBO")
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: " + ", ".join(SIZES))
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.repeats = 5, 2
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    device = torch.device(args.device)
    pyro.enable_validation(False)  # the plain loop has no distribution validation either
    for size in args.sizes.split(","):
        if size not in SIZES:
            raise SystemExit(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    variants = [v for v in args.variants.split(",") if not (args.no_jit and v == "pyro jit")]
    # the compiled loss is timed after everything else, against its own plain loop: once a JIT-compiled
    # ELBO has run in the process, every eager step there (ours and, less, the plain one) runs slower
    groups = [[v for v in variants if v != "pyro jit"], [v for v in variants if v == "pyro jit"]]
    rows = []
    for group in groups:
        if not group:
            continue
        for size in args.sizes.split(","):
            D, H, L = SIZES[size]
            for est in args.estimators.split(","):
                ours, plain = time_case(D, H, L, batch=args.batch, n_data=args.n_data, estimator=est,
                                        variants=group, device=device, steps=args.steps, repeats=args.repeats)
                for v, ms in ours.items():
                    rows.append({"case": f"{size} b{args.batch} {est} {device.type}", "elbo": v,
                                 "ours_ms": round(ms, 4), "plain_ms": round(plain, 4),
                                 "ratio": round(ms / plain, 3)})
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  {'elbo':<11}  {'ours ms':>9}  {'plain ms':>9}  {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:<{width}}  {r['elbo']:<11}  {r['ours_ms']:>9.3f}  {r['plain_ms']:>9.3f}  {r['ratio']:>6.3f}")
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
