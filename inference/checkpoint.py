"""Atomic checkpoints: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_save", "load_checkpoint"]


def atomic_save(obj, path) -> Path:
    """``torch.save`` ``obj`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path, map_location=None) -> dict:
    """Load a checkpoint written by :func:`atomic_save`, tensors and plain containers only."""
    return torch.load(path, map_location=map_location, weights_only=True)
