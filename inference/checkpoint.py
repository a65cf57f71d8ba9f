"""Atomic checkpoints: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_save", "load_checkpoint", "staged_output"]


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


class staged_output:
    """Context manager: build a run's files in a staging folder beside ``out``; on success the
    staging folder replaces ``out`` (an earlier run there is removed), on any error it is removed,
    so that ``out`` never holds a partial run or a mix of two runs."""

    def __init__(self, out):
        self.out = Path(out)

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.staging-", dir=self.out.parent))
        return self.stage

    def __exit__(self, exc_type, exc, tb):
        import shutil

        try:
            if exc_type is None:
                if self.out.exists() and not self.out.is_dir():
                    raise ValueError(f"output path {str(self.out)!r} exists and is not a folder")
                old = None
                if self.out.exists():  # swap whole folders: no mix of an old run and a new one
                    old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
                    os.replace(self.out, old / self.out.name)
                os.replace(self.stage, self.out)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            if self.stage.exists():
                shutil.rmtree(self.stage, ignore_errors=True)
        return False
