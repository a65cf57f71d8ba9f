"""Command line: ``zoo list``, ``zoo fit MODEL ...``, ``zoo tour``."""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _parse_model_args(pairs):
    """``KEY=VALUE`` pairs as keyword arguments: a Python literal (``3``, ``0.5``, ``(64, 16)``, ``None``), a
    number spelled as ``float`` reads it (``inf``, ``nan``: then refused by the model as not finite), else
    the string itself (``covariance_type=full``)."""
    kwargs = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"model argument {pair!r} must look like KEY=VALUE")
        key, value = pair.split("=", 1)
        if not key.isidentifier():
            raise ValueError(f"model argument {pair!r}: {key!r} is not a parameter name")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            kwargs[key] = float(value) if _is_number(value) else value
    return kwargs


def _components_keyword(model_name: str) -> str:
    """The factory's name for its number of components: ``n_components`` (the mixtures, as
    scikit-learn) or ``K`` (the other models)."""
    import inspect

    from zoo import registry

    factory = registry._MODELS.get(model_name)
    if factory is not None and "n_components" in inspect.signature(factory).parameters:
        return "n_components"
    return "K"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_data(name: str):
    """A registered data set name, or a path to a CSV file of numbers (a header row is skipped).

    A file that is a folder, cannot be read, is empty, holds a header and no rows, or holds something
    other than numbers is a ``ValueError`` that says which."""
    import warnings

    from zoo import datasets

    path = Path(name)
    if path.suffix == ".csv" or path.exists():
        if path.is_dir():
            raise ValueError(f"--data {name!r} is a folder; give a data set name (zoo list) or a CSV file")
        if not path.exists():
            raise ValueError(f"data file {name!r} does not exist")
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise ValueError(f"data file {name!r} is not a text CSV file") from None
        except OSError as exc:
            raise ValueError(f"data file {name!r} could not be read: {exc.strerror or exc}") from None
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError(f"data file {name!r} is empty")
        first = lines[0]
        has_header = not all(_is_number(field) for field in first.strip().split(","))
        if has_header and len(lines) == 1:
            raise ValueError(f"data file {name!r} holds one line, read as a header ({first.strip()[:60]!r}), and no "
                             "rows of numbers")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the file's own problems are told below, once
                arr = np.loadtxt(path, delimiter=",", skiprows=1 if has_header else 0, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"data file {name!r} is not a CSV file of numbers: {exc}") from None
        names = first.strip().split(",") if has_header else [f"x{i}" for i in range(arr.shape[1])]
        return datasets.Dataset(path.stem, arr, None, names)
    return datasets.load_dataset(name)


def _summary(doc) -> str:
    """A docstring's first paragraph on one line: a description is never cut mid-sentence."""
    lines = []
    for line in (doc or "").strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines)


def cmd_list(args) -> int:
    import guides
    import inference
    from zoo import datasets, registry

    models, guide_names, methods = registry.list_models(), guides.list_guides(), inference.list_methods()
    width = max(map(len, models + guide_names + methods))
    print("models:")
    for name in models:
        print(f"  {name:{width}s}  {_summary(registry._MODELS[name].__doc__)}")
    print("guides:")
    for name in guide_names:
        print(f"  {name:{width}s}  {guides.guide_spec(name).description}")
    print("methods:")
    for name in methods:
        print(f"  {name:{width}s}  {inference.method_spec(name).description}")
    print("datasets:")
    for name in datasets.list_datasets():
        print(f"  {name}")
    return 0


def cmd_fit(args) -> int:
    import torch

    import inference
    from inference.views import plot_clusters, plot_losses, plot_trace, save_figure
    from zoo.registry import create_model

    from .report import summary_table

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out!r} exists and is not a folder")
    spec = inference.method_spec(args.method)
    given = dict(num_steps=args.steps, lr=args.lr, restarts=args.restarts, seed=args.seed,
                 num_samples=args.num_samples, num_warmup=args.num_warmup, num_chains=args.num_chains,
                 progress_bar=not args.no_progress)
    options = {k: v for k, v in given.items() if k in spec.options}  # the flags this method reads
    for key, value in options.items():  # each flag against the method's declaration, before any work
        try:
            spec.check_options({key: value})
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{_FLAGS.get(key, key)}: {exc}") from None
    ds = load_data(args.data)
    data = ds.data
    model_kwargs = _parse_model_args(args.model_arg)
    if args.K is not None:
        model_kwargs[_components_keyword(args.model)] = args.K
    model = create_model(args.model, **model_kwargs)
    tensor = model.check_data(torch.as_tensor(np.asarray(data, dtype=np.float64)))  # validate before writing
    unscale = None
    if args.standardize:
        mean, std = tensor.mean(0), tensor.std(0).clamp_min(1e-12)
        tensor = (tensor - mean) / std
        unscale = (mean.numpy(), std.numpy())
    result = inference.fit(model, tensor, method=args.method, guide=args.guide, **options)
    table = summary_table({f"{args.method}" + (f"/{result.guide_name}" if result.guide_name else ""): result},
                          unscale=unscale)
    print(table.to_string())
    with inference.staged_output(args.out) as stage:
        table.to_csv(stage / "summary.csv")
        result.to_inference_data().to_netcdf(str(stage / "posterior.nc"))
        if result.losses:
            save_figure(plot_losses({args.method: result}).figure, stage / "loss.png")
        if tensor.shape[1] >= 2 and "locs" in result.samples:  # mixture models
            save_figure(plot_clusters(result, unscale=unscale, feature_names=ds.feature_names).figure,
                        stage / "clusters.png")
        if result.method == "nuts":
            names = [n for n in ("locs", "weights") if n in result.samples] or list(result.samples)[:2]
            save_figure(plot_trace(result, var_names=names), stage / "trace.png")
    print(f"wrote {args.out}")
    return 0


def cmd_fit_em(args) -> int:
    """EM (or CAVI with --bayesian) of a Gaussian mixture on a .npy file read a chunk at a time; under
    torchrun each rank reads its share of the rows (or its own file, with {rank} in --data)."""
    import json
    import time

    from inference import staged_output
    from zoo import distributed
    from zoo.mixture import BayesianGaussianMixture, GaussianMixture
    from zoo.sources import ArraySource, open_npy

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out!r} exists and is not a folder")
    distributed.init_from_env(args.backend)
    rank, world = distributed.rank(), distributed.world_size()
    per_rank = "{rank}" in args.data
    array = open_npy(args.data.replace("{rank}", str(rank)) if per_rank else args.data)
    if array.ndim != 2:
        raise ValueError(f"--data: expected a 2-D array (rows are samples), got shape {array.shape}")
    if world > 1 and not per_rank:  # contiguous shares of the rows, nothing repeated or dropped
        bounds = np.linspace(0, array.shape[0], world + 1).astype(np.int64)
        array = array[bounds[rank]:bounds[rank + 1]]
    estimator = (BayesianGaussianMixture if args.bayesian else GaussianMixture)(
        n_components=args.K, covariance_type=args.covariance_type, max_iter=args.max_iter, tol=args.tol,
        random_state=args.seed, device=args.device, progress_bar=not args.no_progress)
    start = time.perf_counter()
    estimator.fit(ArraySource(array, args.chunk_rows))
    seconds = time.perf_counter() - start
    if not distributed.is_main():
        return 0
    summary = {"data": args.data, "n_rows": int(estimator._n_rows_fitted), "n_features": int(estimator.n_features_in_),
               "n_components": args.K, "covariance_type": args.covariance_type, "bayesian": bool(args.bayesian),
               "processes": world, "n_iter": int(estimator.n_iter_), "converged": bool(estimator.converged_),
               "lower_bound": float(estimator.lower_bound_), "seconds": round(seconds, 3),
               "rows_per_second": round(estimator._n_rows_fitted * estimator.n_iter_ / seconds, 1)}
    params = {n: getattr(estimator, n) for n in ("weights_", "means_", "covariances_", "precisions_cholesky_")}
    with staged_output(args.out) as stage:
        np.savez(stage / "params.npz", **params)
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    print(f"wrote {args.out}")
    return 0


#: the flag of each method option that `zoo fit` sets
_FLAGS = {"num_steps": "--steps", "lr": "--lr", "restarts": "--restarts", "seed": "--seed",
          "num_samples": "--num-samples", "num_warmup": "--num-warmup", "num_chains": "--num-chains"}


def cmd_tour(args) -> int:
    from .tour import SECTIONS, run_tour

    if args.list:
        for key, fn in SECTIONS.items():
            print(f"  {key:24s} {_summary(fn.__doc__)}")
        return 0
    run_tour(args.out, quick=args.quick, progress_bar=not args.no_progress, seed=args.seed, sections=args.section)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag told on one line (and where to find the usage), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="zoo", description="Latent-variable models as Pyro model/guide pairs.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models, guides, methods and data sets")
    f = sub.add_parser("fit", help="fit a model and write a summary, figures and the InferenceData")
    f.add_argument("model")
    f.add_argument("--data", required=True, help="a data set name (zoo list) or a CSV path")
    f.add_argument("--method", default="map")
    f.add_argument("--guide", default=None)
    f.add_argument("--K", type=int, default=None, help="number of components (n_components of the mixtures)")
    f.add_argument("--model-arg", "-p", action="append", metavar="KEY=VALUE", help="model factory argument")
    f.add_argument("--steps", type=int, default=1000)
    f.add_argument("--lr", type=float, default=0.05)
    f.add_argument("--restarts", type=int, default=3)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--num-samples", type=int, default=500)
    f.add_argument("--num-warmup", type=int, default=500)
    f.add_argument("--num-chains", type=int, default=2)
    f.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                   help="fit on standardised data, report in the original units (default on)")
    f.add_argument("--out", required=True)
    f.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("fit-em", help="EM of a Gaussian mixture on a .npy file read a chunk at a time (works under "
                                      "torchrun: the ranks share the rows)")
    e.add_argument("--data", required=True, help="a .npy file of shape (rows, features); with {rank} in it, each "
                   "rank's own file")
    e.add_argument("--K", type=int, required=True, help="number of components")
    e.add_argument("--covariance-type", default="full", choices=("full", "tied", "diag", "spherical"))
    e.add_argument("--bayesian", action="store_true", help="variational Bayes (CAVI), BayesianGaussianMixture")
    e.add_argument("--max-iter", type=int, default=100)
    e.add_argument("--tol", type=float, default=1e-3)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--chunk-rows", type=int, default=65536, help="rows read at a time")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    e.add_argument("--backend", default=None, choices=("gloo", "nccl"),
                   help="torch.distributed backend under torchrun (default: nccl with CUDA, else gloo)")
    e.add_argument("--out", required=True, help="folder for params.npz and summary.json (rank 0 writes it)")
    e.add_argument("--no-progress", action="store_true")
    t = sub.add_parser("tour", help="the main job: the headline comparisons, written as a self-contained HTML report")
    t.add_argument("--out", default="runs/tour")
    t.add_argument("--quick", action="store_true", help="small sizes, fewer steps and draws (for tests)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--section", action="append", metavar="KEY",
                   help="run only this section (repeatable; default: all, see `zoo tour --list`)")
    t.add_argument("--list", action="store_true", help="list the sections and exit")
    t.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command line writes figures to files; it never opens a window
    args = build_parser().parse_args(argv)
    handlers = {"list": cmd_list, "fit": cmd_fit, "fit-em": cmd_fit_em, "tour": cmd_tour}
    try:
        return handlers[args.command](args)
    except (ValueError, TypeError, FloatingPointError, OSError) as exc:
        # one line: the message's first line (a library's long message keeps only its head)
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"zoo {args.command}: error: {lines[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
