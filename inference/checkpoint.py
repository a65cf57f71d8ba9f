"""Atomic checkpoints: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_save", "load_checkpoint", "restore_state", "staged_output"]


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


def load_checkpoint(path, map_location=None, *, keys=()) -> dict:
    """Load a checkpoint written by :func:`atomic_save`, tensors and plain containers only.

    A ``ValueError`` that says which: no file there, a folder, a file that cannot be read, a corrupt
    or truncated file (or one that is not a checkpoint), a checkpoint that lacks the entries ``keys``
    (written by another method)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {str(path)!r} is a folder, not a checkpoint file")
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {str(path)!r}")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise ValueError(f"checkpoint {str(path)!r} could not be read: {exc.strerror or exc}") from None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch's UnpicklingError, EOFError, the zip reader's RuntimeError or OSError...
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or truncated, or not a checkpoint written by this "
                         f"project ({type(exc).__name__}); delete it or pass another path") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a checkpoint written by this "
                         "project")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {missing}: it was written by another method or program")
    return state


def restore_state(target, state, what: str, path) -> None:
    """``target.load_state_dict(state)`` (a module or an optimiser) with a ``ValueError`` that says what
    differs when the checkpoint at ``path`` was written for another model, guide or data shape."""
    if isinstance(target, torch.nn.Module) and isinstance(state, dict):
        here = target.state_dict()
        missing, unexpected = sorted(set(here) - set(state)), sorted(set(state) - set(here))
        if missing or unexpected:
            detail = "; ".join(part for part in (
                f"it lacks {_few(missing)}" if missing else "", f"it has {_few(unexpected)} not here" if unexpected
                else "") if part)
            raise ValueError(f"checkpoint {str(path)!r} was written for another {what}: the {what}'s parameters "
                             f"differ ({detail}); resume with the {what} it was written for, or pass another path")
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and isinstance(here[key], torch.Tensor) and value.shape != here[key].shape:
                raise ValueError(f"checkpoint {str(path)!r} was written for a {what} of another shape (another data "
                                 f"shape or number of components?): {key} is {tuple(value.shape)} in the checkpoint, "
                                 f"{tuple(here[key].shape)} here")
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {str(path)!r} does not fit this {what}: {first}") from None


def _few(names, n: int = 4) -> str:
    shown = ", ".join(map(repr, names[:n]))
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


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
