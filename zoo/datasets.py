"""Data sets that ship with the project or with scikit-learn, and seeded
synthetic data that returns its ground truth."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ._checks import check_positive_int

__all__ = ["Dataset", "load_dataset", "list_datasets", "load_faithful", "make_blobs", "make_ring"]


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


def load_faithful() -> Dataset:
    """Old Faithful geyser: 272 eruptions, columns (eruption minutes, waiting minutes)."""
    text = resources.files("zoo.data").joinpath("faithful.csv").read_text()
    lines = text.strip().splitlines()
    names = lines[0].split(",")
    data = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return Dataset("faithful", data, None, names, description="Old Faithful geyser eruptions (Azzalini and Bowman, 1990)")


def _load_iris() -> Dataset:
    from sklearn.datasets import load_iris

    b = load_iris()
    return Dataset("iris", b.data.astype(np.float64), b.target, list(b.feature_names), description="Fisher's iris")


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    b = load_digits()
    return Dataset("digits", b.data.astype(np.float64), b.target, list(b.feature_names), description="8x8 handwritten digits")


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
    n_samples = check_positive_int(n_samples, "n_samples")
    n_components = check_positive_int(n_components, "n_components")
    n_features = check_positive_int(n_features, "n_features")
    if not (separation > 0 and scale > 0):
        raise ValueError(f"separation and scale must be positive, got {separation}, {scale}")
    rng = np.random.default_rng(random_state)
    if weights is None:
        weights = np.full(n_components, 1.0 / n_components)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_components,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be {n_components} non-negative numbers summing to 1, got {weights}")
    locs = np.empty((0, n_features))
    box = separation * n_components
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


def make_ring(n_samples: int = 400, *, n_components: int = 8, radius: float = 4.0, scale: float = 0.25,
              random_state: int = 0) -> Dataset:
    """``n_components`` isotropic Gaussians with centres evenly spaced on a circle in 2-D;
    ``truth`` holds ``locs`` (K, 2), ``scale`` and ``assignment``."""
    n_samples = check_positive_int(n_samples, "n_samples")
    n_components = check_positive_int(n_components, "n_components")
    if not (radius > 0 and scale > 0):
        raise ValueError(f"radius and scale must be positive, got {radius}, {scale}")
    rng = np.random.default_rng(random_state)
    angles = 2 * np.pi * np.arange(n_components) / n_components
    locs = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assignment = rng.integers(0, n_components, size=n_samples)
    data = locs[assignment] + scale * rng.standard_normal((n_samples, 2))
    truth = {"locs": locs, "scale": float(scale), "assignment": assignment,
             "weights": np.full(n_components, 1.0 / n_components)}
    return Dataset("ring", data, assignment, ["x0", "x1"], truth, "Gaussians on a ring")


_LOADERS = {"faithful": load_faithful, "iris": _load_iris, "digits": _load_digits, "blobs": make_blobs,
            "ring": make_ring}


def list_datasets() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a data set by name (see :func:`list_datasets`); ``blobs`` takes :func:`make_blobs` arguments."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}") from None
    return loader(**kwargs)
