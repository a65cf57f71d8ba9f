"""Atomic checkpoints: write to a temporary file beside the target, then rename. Staged output folders.

What these write gets the user's usual permissions (mode 0666 for files and 0777 for folders, less the
umask), not the private 0600 / 0700 of ``tempfile``.
"""
from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

import torch

__all__ = ["atomic_save", "load_checkpoint", "restore_state", "staged_output"]


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return mask


def atomic_save(obj, path) -> Path:
    """``torch.save`` ``obj`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's file is private (0600): give it the usual mode
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


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def _new_folder(parent: Path, prefix: str) -> Path:
    """A fresh folder ``parent/prefix<random>`` created with mode 0777 less the umask (``mkdtemp`` makes 0700)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a fresh folder {prefix}* in {str(parent)!r}")


class staged_output:
    """Context manager: build a run's files in a staging folder beside ``out``; on success the
    staging folder replaces ``out`` (an earlier run there is removed), on any error it is removed,
    so that ``out`` never holds a partial run or a mix of two runs.

    The folders get the user's usual permissions (0777 less the umask). A staging folder is named
    ``.NAME.staging-PID-XXXXXXXX`` after the process that writes it; a run killed before it could clean up
    (``kill -9``, a power cut) leaves it behind, and the next run of the same output removes every
    ``.NAME.staging-*`` and ``.NAME.old-*`` folder whose process is gone (a folder of a process still
    running, e.g. a concurrent run, is left alone; one without a process id, from an older version, is
    removed).
    """

    def __init__(self, out):
        self.out = Path(out)

    def _remove_stale(self) -> list[Path]:
        pattern = re.compile(rf"^\.{re.escape(self.out.name)}\.(?:staging|old)-(?:(\d+)-)?[^/]*$")
        removed = []
        for path in self.out.parent.glob(f".{glob.escape(self.out.name)}.*"):
            m = pattern.match(path.name)
            if m is None or not path.is_dir() or path.is_symlink():
                continue
            pid = m.group(1)
            if pid is not None and (int(pid) == os.getpid() or _pid_alive(int(pid))):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.removed = self._remove_stale()
        self.stage = _new_folder(self.out.parent, f".{self.out.name}.staging-{os.getpid()}-")
        return self.stage

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self.out.exists() and not self.out.is_dir():
                    raise ValueError(f"output path {str(self.out)!r} exists and is not a folder")
                old = None
                if self.out.exists():  # swap whole folders: no mix of an old run and a new one
                    old = _new_folder(self.out.parent, f".{self.out.name}.old-{os.getpid()}-")
                    os.replace(self.out, old / self.out.name)
                os.replace(self.stage, self.out)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            if self.stage.exists():
                shutil.rmtree(self.stage, ignore_errors=True)
        return False
