"""VAE estimators and autoencoder baselines on binarised 8x8 digits (fixed train/test split).

Per estimator (reparam, analytic_kl, score_function, iwae): test ELBO, the 5-sample IWAE bound and the
k-sample importance-sampled log-likelihood (k = 5000 by default). Per autoencoder baseline: test
reconstruction cross-entropy (the VAE's reconstruction term at the encoder mean is shown beside it).
With ``--compare-plain``: the plain-PyTorch VAE trained the same number of steps from the same seed.

    python benchmarks/vae_digits.py                 # full run
    python benchmarks/vae_digits.py --quick         # short smoke run

Prints a table, then one JSON line per row.
"""
from __future__ import annotations

import argparse
import json

import torch
from torch.nn import functional as F

import inference
import zoo
from zoo.autoencoders import Autoencoder
from zoo.vae import VAE, PlainVAE


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--latent", type=int, default=8)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--k", type=int, default=5000, help="samples of the log-likelihood estimate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--estimators", default="reparam,analytic_kl,score_function,iwae")
    p.add_argument("--compare-plain", action="store_true")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.k = 200, 200
    ds = zoo.load_dataset("binary_digits")
    xtr, xte = torch.tensor(ds.data), torch.tensor(ds.test_data)
    rows = []
    fit_kw = dict(guide="custom", num_steps=args.steps, lr=args.lr, batch_size=args.batch, progress_bar=False,
                  seed=args.seed)
    for est in args.estimators.split(","):
        model = VAE(64, args.latent, (args.hidden,), estimator=est, num_particles=5 if est == "iwae" else 1)
        inference.fit(model, xtr, **fit_kw)
        torch.manual_seed(args.seed)
        rec = -model.log_px_given_z(xte, model.encoder(xte)[0]).mean().item()
        rows.append({"model": f"vae/{est}", "test_elbo": model.elbo(xte, num_samples=100).mean().item(),
                     "iwae_5": model.iwae_bound(xte, 5).mean().item(),
                     f"loglik_{args.k}": model.log_likelihood(xte, args.k).mean().item(), "recon_xent": rec})
        if args.compare_plain and est in ("reparam", "analytic_kl"):
            ref = VAE(64, args.latent, (args.hidden,), estimator=est)
            ref.reset_parameters(xtr, seed=args.seed)
            plain = PlainVAE.from_vae(ref)
            opt = torch.optim.Adam(plain.parameters(), lr=args.lr)
            torch.manual_seed(args.seed)
            for _ in range(args.steps):
                opt.zero_grad()
                plain.loss(xtr[torch.randperm(len(xtr))[:args.batch]], len(xtr)).backward()
                opt.step()
            ref.encoder, ref.decoder = plain.encoder, plain.decoder
            torch.manual_seed(args.seed)
            rows.append({"model": f"plain-pytorch/{est}", "test_elbo": ref.elbo(xte, num_samples=100).mean().item(),
                         "iwae_5": ref.iwae_bound(xte, 5).mean().item(),
                         f"loglik_{args.k}": ref.log_likelihood(xte, args.k).mean().item(),
                         "recon_xent": -ref.log_px_given_z(xte, ref.encoder(xte)[0]).mean().item()})
    for kind in ("deterministic", "denoising", "sparse"):
        ae = Autoencoder(64, args.latent, (args.hidden,), kind=kind, beta=0.1)
        inference.fit(ae, xtr, **fit_kw)
        rows.append({"model": f"ae/{kind}", "recon_xent": ae.reconstruction_error(xte).mean().item()})
    p_mean = xtr.mean(0).clamp(1e-3, 1 - 1e-3)
    rows.append({"model": "data mean", "recon_xent": F.binary_cross_entropy(
        p_mean.expand_as(xte), xte, reduction="none").sum(-1).mean().item()})
    cols = ["test_elbo", "iwae_5", f"loglik_{args.k}", "recon_xent"]
    print(f"{'model':<28}" + "".join(f"{c:>14}" for c in cols) + "   (nats per test image)")
    for r in rows:
        print(f"{r['model']:<28}" + "".join(f"{r[c]:>14.3f}" if c in r else f"{'-':>14}" for c in cols))
    for r in rows:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}))
    return rows


if __name__ == "__main__":
    main()
