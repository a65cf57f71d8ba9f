"""Data sets that ship with the project or with scikit-learn, and seeded
synthetic data that returns its ground truth."""
from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ._validation import AnyOf, ArrayLike, FilePath, InstanceOf, Int, RandomState, Real, declare

_SEED = RandomState()

__all__ = ["Dataset", "load_dataset", "list_datasets", "load_faithful", "make_blobs", "make_ring", "make_grid",
           "mode_coverage", "load_binary_digits", "make_binary", "load_mnist_idx"]


@dataclass
class Dataset:
    """A data matrix ``data`` of shape ``(n_samples, n_features)`` with optional
    labels ``target`` of shape ``(n_samples,)`` and, for synthetic data, the
    generating parameters in ``truth``."""

    name: str
    data: np.ndarray
    target: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    description: str = ""
    #: a held-out split, when the data set has one (``binary_digits``): (n_test, n_features), (n_test,)
    test_data: np.ndarray | None = None
    test_target: np.ndarray | None = None


@declare()
def load_faithful() -> Dataset:
    """Old Faithful geyser: 272 eruptions, columns (eruption minutes, waiting minutes)."""
    text = resources.files("zoo.data").joinpath("faithful.csv").read_text()
    lines = text.strip().splitlines()
    names = lines[0].split(",")
    data = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return Dataset("faithful", data, None, names, description="Old Faithful geyser eruptions (Azzalini and Bowman, 1990)")


@declare()
def _load_iris() -> Dataset:
    from sklearn.datasets import load_iris

    b = load_iris()
    return Dataset("iris", b.data.astype(np.float64), b.target, list(b.feature_names), description="Fisher's iris")


@declare()
def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    b = load_digits()
    return Dataset("digits", b.data.astype(np.float64), b.target, list(b.feature_names), description="8x8 handwritten digits")


@declare(n_samples=Int(ge=1), n_components=Int(ge=1), n_features=Int(ge=1), separation=Real(gt=0),
         scale=Real(gt=0), weights=ArrayLike(ndim=1, none=True), random_state=_SEED)
def make_blobs(
    n_samples: int = 300,
    *,
    n_components: int = 3,
    n_features: int = 2,
    separation: float = 6.0,
    scale: float = 1.0,
    weights=None,
    random_state: int = 0,
) -> Dataset:
    """Draw from a Gaussian mixture with isotropic components and return the truth.

    Means are drawn uniformly in a box of side ``separation * n_components`` and
    kept at least ``separation`` apart. ``truth`` holds ``weights`` (K,),
    ``locs`` (K, D), ``scale`` and the true ``assignment`` (N,).
    """
    _check_extent(n_components * n_features, separation=separation, scale=scale)
    box = separation * n_components
    rng = np.random.default_rng(random_state)
    if weights is None:
        weights = np.full(n_components, 1.0 / n_components)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_components,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be {n_components} non-negative numbers summing to 1, got {weights}")
    locs = np.empty((0, n_features))
    for _ in range(10_000):
        cand = rng.uniform(-box / 2, box / 2, size=n_features)
        if len(locs) == 0 or np.min(np.linalg.norm(locs - cand, axis=1)) >= separation:
            locs = np.vstack([locs, cand])
            if len(locs) == n_components:
                break
    else:  # pragma: no cover - the box is large enough for any K
        raise RuntimeError("could not place well-separated means")
    assignment = rng.choice(n_components, size=n_samples, p=weights)
    data = locs[assignment] + scale * rng.standard_normal((n_samples, n_features))
    truth = {"weights": weights, "locs": locs, "scale": float(scale), "assignment": assignment}
    return Dataset("blobs", data, assignment, [f"x{i}" for i in range(n_features)], truth, "seeded Gaussian blobs")


@declare(n_samples=Int(ge=1), n_components=Int(ge=1), radius=Real(gt=0), scale=Real(gt=0), random_state=_SEED)
def make_ring(n_samples: int = 400, *, n_components: int = 8, radius: float = 4.0, scale: float = 0.25,
              random_state: int = 0) -> Dataset:
    """``n_components`` isotropic Gaussians with centres evenly spaced on a circle in 2-D;
    ``truth`` holds ``locs`` (K, 2), ``scale`` and ``assignment``."""
    _check_extent(radius=radius, scale=scale)
    rng = np.random.default_rng(random_state)
    angles = 2 * np.pi * np.arange(n_components) / n_components
    locs = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assignment = rng.integers(0, n_components, size=n_samples)
    data = locs[assignment] + scale * rng.standard_normal((n_samples, 2))
    truth = {"locs": locs, "scale": float(scale), "assignment": assignment,
             "weights": np.full(n_components, 1.0 / n_components)}
    return Dataset("ring", data, assignment, ["x0", "x1"], truth, "Gaussians on a ring")


@declare(n_samples=Int(ge=1), n_per_side=Int(ge=1), spacing=Real(gt=0), scale=Real(gt=0), random_state=_SEED)
def make_grid(n_samples: int = 400, *, n_per_side: int = 5, spacing: float = 2.0, scale: float = 0.05,
              random_state: int = 0) -> Dataset:
    """``n_per_side ** 2`` isotropic Gaussians with centres on a square grid in 2-D, centred on the
    origin (the "grid of 25" of the GAN literature with the defaults); ``truth`` as :func:`make_ring`'s."""
    _check_extent(n_per_side, spacing=spacing, scale=scale)
    rng = np.random.default_rng(random_state)
    ticks = spacing * (np.arange(n_per_side) - (n_per_side - 1) / 2)
    locs = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)
    k = locs.shape[0]
    assignment = rng.integers(0, k, size=n_samples)
    data = locs[assignment] + scale * rng.standard_normal((n_samples, 2))
    truth = {"locs": locs, "scale": float(scale), "assignment": assignment, "weights": np.full(k, 1.0 / k)}
    return Dataset("grid", data, assignment, ["x0", "x1"], truth, "Gaussians on a square grid")


@declare(scale=Real(gt=0), n_sigma=Real(gt=0), min_fraction=Real(gt=0, le=1))
def mode_coverage(samples, locs, scale: float, *, n_sigma: float = 3.0, min_fraction: float = 0.008) -> dict:
    """How well ``samples`` (S, D) of a generative model cover the modes ``locs`` (K, D) of an
    isotropic mixture with standard deviation ``scale``, by the usual metrics of the mode-collapse
    benchmarks: each sample is assigned to its nearest mode and is *high quality* when it lies within
    ``n_sigma`` standard deviations of it; a mode is *covered* when at least ``min_fraction`` of the
    samples are high-quality samples of it (20 of 2500 by default, PacGAN's rule).

    Returns ``{"modes": covered modes (int), "high_quality": fraction of high-quality samples,
    "counts": high-quality samples per mode (K,)}``.
    """
    x = np.asarray(samples, dtype=np.float64)
    centres = np.asarray(locs, dtype=np.float64)
    if x.ndim != 2 or centres.ndim != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(f"samples must be (S, D) and locs (K, D) with the same D, got shapes {x.shape} and "
                         f"{centres.shape}")
    if x.shape[0] == 0:
        raise ValueError("samples is empty")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or infinity")
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    good = np.sqrt(d2[np.arange(x.shape[0]), nearest]) <= n_sigma * scale
    counts = np.bincount(nearest[good], minlength=centres.shape[0])
    return {"modes": int((counts >= min_fraction * x.shape[0]).sum()), "high_quality": float(good.mean()),
            "counts": counts}


@declare(threshold=Real(ge=0, lt=16), test_size=Real(gt=0, lt=1),
         random_state=AnyOf(Int(ge=0, lt=2 ** 32), InstanceOf(np.random.RandomState), none=True,
                            what="an integer seed in [0, 2**32) or a numpy.random.RandomState"))
def load_binary_digits(*, threshold: float = 8.0, test_size: float = 0.25, random_state: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits binarised (pixel > ``threshold`` of 16 -> 1), float32, with a fixed,
    seeded, label-stratified train/test split: ``data`` (n_train, 64), ``test_data`` (n_test, 64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    b = load_digits()
    x = (b.data > threshold).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, b.target, test_size=test_size, random_state=random_state,
                                          stratify=b.target)
    return Dataset("binary_digits", xtr, ytr, list(b.feature_names), description="8x8 digits, binarised",
                   test_data=xte, test_target=yte)


@declare(n_samples=Int(ge=1), n_features=Int(ge=1), latent_dim=Int(ge=1), n_test=Int(ge=0), random_state=_SEED)
def make_binary(n_samples: int = 500, *, n_features: int = 20, latent_dim: int = 2, n_test: int = 0,
                random_state: int = 0) -> Dataset:
    """Binary data from a small latent-variable model: z ~ N(0, I_L), x_j ~ Bernoulli(sigmoid(W z + b)_j)
    with seeded W (n_features, L) of scale 3 and b ~ N(0, 1). float32; ``truth`` holds ``W``, ``b`` and
    ``z``; ``n_test`` extra draws go to ``test_data``."""
    rng = np.random.default_rng(random_state)
    W = 3.0 * rng.standard_normal((n_features, latent_dim))
    b = rng.standard_normal(n_features)
    z = rng.standard_normal((n_samples + n_test, latent_dim))
    p = 1.0 / (1.0 + np.exp(-(z @ W.T + b)))
    x = (rng.random(p.shape) < p).astype(np.float32)
    return Dataset("binary", x[:n_samples], None, [f"x{i}" for i in range(n_features)],
                   {"W": W, "b": b, "z": z[:n_samples]}, "binary data from a logistic latent model",
                   test_data=x[n_samples:] if n_test else None)


def _check_extent(factor=1, **values) -> None:
    """The data of a generator stay finite: its scales (``values``) times ``factor`` (its sizes) and a
    margin of 40 standard deviations do not overflow float64."""
    if not math.isfinite(float(sum(values.values())) * factor * 40):
        given = ", ".join(f"{k}={v:g}" for k, v in values.items())
        raise ValueError(f"{given}: too large, the data would overflow float64")


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@declare(path=FilePath(noun="IDX file"))
def load_mnist_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzip-compressed or raw) into an array of its stored shape,
    e.g. (60000, 28, 28) uint8 images or (60000,) uint8 labels. The header is checked: two zero bytes,
    a known type code, the rank, and a payload of exactly the declared size; a bad file raises ValueError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path.name}: the file could not be read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path.name}: a corrupt gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path.name}: not an IDX file (the magic number must start with two zero bytes)")
    code, rank = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: unknown IDX type code 0x{code:02x}; known: "
                         f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}")
    if rank < 1 or len(raw) < 4 + 4 * rank:
        raise ValueError(f"{path.name}: a truncated IDX header (rank {rank})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot overflow
    payload = raw[4 + 4 * rank:]
    if len(payload) != expected:
        raise ValueError(f"{path.name}: the header declares shape {shape} of {dtype} ({expected} bytes) but the "
                         f"file holds {len(payload)} bytes of data")
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


_LOADERS = {"faithful": load_faithful, "iris": _load_iris, "digits": _load_digits, "blobs": make_blobs,
            "ring": make_ring, "grid": make_grid, "binary_digits": load_binary_digits, "binary": make_binary}


def list_datasets() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a data set by name (see :func:`list_datasets`); ``blobs`` takes :func:`make_blobs` arguments."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {name!r} ({type(name).__name__}); known datasets: "
                        f"{', '.join(list_datasets())}")
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}") from None
    return loader(**kwargs)
