"""Data-parallel VAE SVI: wall time and loss trace on W ranks (``torchrun``) against one process.

Every rank builds the same synthetic binary data set (``--n`` rows, ``--features`` columns: a few
latent factors switch blocks of features on, 10% of the bits flipped) and keeps its shard, the
rows split as evenly as possible (``--uneven``: rank 0 gets ``--uneven`` rows more than an even
split); one process fits the whole data set. The fit is ``inference.fit(vae, x, guide="custom",
batch_size=B)`` with the global batch B the same in both, seeded alike, so the loss traces agree up
to rounding. A warm-up fit of a few steps runs first. Rank 0 prints the seconds of the fit and per
step and writes the loss trace and the parameters to ``--out``; ``--compare A B`` prints the
largest relative difference of two traces and of the networks' parameters; a data-parallel run
also reports whether its ranks' parameters are bitwise equal.

    python benchmarks/dp_vae.py --out one.pt                                # one process, 1 thread
    torchrun --nproc-per-node 2 benchmarks/dp_vae.py --out two.pt           # two ranks, gloo
    python benchmarks/dp_vae.py --compare one.pt two.pt
    python benchmarks/dp_vae.py --dtype float32 --out one32.pt              # the same in float32
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import inference  # noqa: E402
import zoo  # noqa: E402
from zoo import distributed  # noqa: E402


def make_data(n: int, d: int, dtype, seed: int = 0, factors: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    on = torch.rand(n, factors, generator=g) < 0.5
    blocks = torch.rand(factors, d, generator=g) < 0.3
    clean = (on[:, :, None] & blocks).any(1)
    return (clean ^ (torch.rand(n, d, generator=g) < 0.1)).to(dtype)


def my_rows(n: int, uneven: int) -> slice:
    w, r = distributed.world_size(), distributed.rank()
    sizes = [n // w + (i < n % w) for i in range(w)]
    if w > 1:
        sizes[0] += uneven
        sizes[-1] -= uneven
    start = sum(sizes[:r])
    return slice(start, start + sizes[r])


def fit(x, args, num_steps):
    vae = zoo.create_model("vae", n_features=x.shape[1], latent_dim=args.latent, hidden=(args.hidden,))
    start = time.perf_counter()
    res = inference.fit(vae, x, guide="custom", batch_size=args.batch, num_steps=num_steps, lr=1e-3, seed=0,
                        progress_bar=False, num_samples=1)
    return res, vae, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--uneven", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--compare", nargs=2)
    args = p.parse_args()
    if args.compare:
        a, b = (torch.load(f, weights_only=False) for f in args.compare)
        rel = ((a["losses"] - b["losses"]).abs() / b["losses"].abs()).max().item()
        nets = [k for k in a["params"] if k != "log_scale"]  # unused by the Bernoulli VAE; rank 0's shard sets it
        diff = max((a["params"][k] - b["params"][k]).abs().max().item() for k in nets)
        print(json.dumps({"max_rel_loss_diff": rel, "max_abs_network_param_diff": diff, "steps": len(a["losses"])}))
        return
    torch.set_num_threads(args.threads)
    distributed.init_from_env("gloo")
    x = make_data(args.n, args.features, getattr(torch, args.dtype))[my_rows(args.n, args.uneven)]
    fit(x, args, 5)  # warm-up
    res, vae, seconds = fit(x, args, args.steps)
    report = {"ranks": distributed.world_size(), "rows_rank": x.shape[0], "dtype": args.dtype, "batch": args.batch,
              "steps": args.steps, "seconds": round(seconds, 3), "ms_per_step": round(1e3 * seconds / args.steps, 3),
              "final_loss": res.losses[-1]}
    if args.out:
        states = distributed.all_gather_object({k: v.detach() for k, v in vae.state_dict().items()})
        if distributed.is_main():
            same = all(torch.equal(states[0][k], s[k]) for s in states for k in states[0])
            report["params_bitwise_equal_on_ranks"] = same
            torch.save({"losses": torch.tensor(res.losses, dtype=torch.float64), "params": states[0]}, args.out)
    if distributed.is_main():
        print(json.dumps(report))
    if distributed.active():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
