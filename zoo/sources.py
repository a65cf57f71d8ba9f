"""Chunk sources: data read again, a chunk at a time, on every pass of a fit.

The EM-type estimators of :mod:`zoo.mixture` (and ``method="em"``/``"cavi"`` through
:func:`inference.fit`) take, besides an array, a *re-iterable source of row chunks*:

* a NumPy memory-mapped array (``np.load(path, mmap_mode="r")``, ``np.memmap``),
* a path to a ``.npy`` file (opened memory-mapped),
* any iterable of 2-D arrays or tensors that yields the same chunks again each time it is iterated:
  a list of arrays, a ``torch.utils.data.DataLoader`` (a batch that is a tuple or list contributes
  its first item), or an object of the user's whose ``__iter__`` opens a new reader,
* a :class:`ChunkSource` (e.g. :class:`ArraySource` with its own ``chunk_rows``).

A fit reads a source a few times per iteration at most and never holds more than a chunk of it, so
its memory is O(chunk x K + K D^2) whatever the number of rows. An iterator (a generator, a file
handle) is consumed by the first pass and is refused: wrap it in a class whose ``__iter__`` starts
over.

:class:`Reservoir` draws the uniform sample of rows that initialisations read in one pass.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["ChunkSource", "ArraySource", "IterableSource", "as_source", "is_source", "Reservoir",
           "open_npy", "DEFAULT_CHUNK_ROWS"]

#: rows per chunk read from an array or a file (a few MB at tens of features)
DEFAULT_CHUNK_ROWS = 65536


class ChunkSource:
    """A re-iterable source of ``(rows, n_features)`` chunks; subclasses implement :meth:`_raw_chunks`.

    Iterating yields float tensors (CPU, the source's own float dtype, or float64 for other
    types), each checked: two-dimensional, the same number of features as the first, finite.
    """

    #: rows in all, when known without a pass (None otherwise)
    n_rows: int | None = None

    def _raw_chunks(self):
        raise NotImplementedError

    def __iter__(self):
        n_features = None
        for i, chunk in enumerate(self._raw_chunks()):
            t = _as_tensor(chunk, i)
            if t.shape[0] == 0:
                continue
            if n_features is None:
                n_features = t.shape[1]
            elif t.shape[1] != n_features:
                raise ValueError(f"chunk {i} of the source has {t.shape[1]} features, the first chunk had "
                                 f"{n_features}: every chunk needs the same columns")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"Input X contains NaN or infinity (in chunk {i} of the source).")
            yield t

    def first_chunk(self) -> torch.Tensor:
        """The first non-empty chunk (for the number of features and the dtype)."""
        for t in self:
            return t
        raise ValueError("Found array with 0 sample(s) (the source yields no rows); a minimum of 1 is required.")


class ArraySource(ChunkSource):
    """Row slices of an array, a memory-mapped array or a tensor, ``chunk_rows`` at a time.

    Only the chunk being read is brought into memory (for a memory map the operating system pages
    the file in and may drop the pages again).
    """

    def __init__(self, array, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        if isinstance(array, (str, os.PathLike)):
            array = open_npy(array)
        if not isinstance(array, (np.ndarray, torch.Tensor)):
            raise TypeError(f"ArraySource needs an array, a memory map or a tensor, got {type(array).__name__}")
        if array.ndim != 2:
            raise ValueError(f"Expected 2D array, got {array.ndim}D array instead (a source's rows are samples, "
                             "its columns features)")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.array, self.chunk_rows, self.n_rows = array, int(chunk_rows), int(array.shape[0])

    def _raw_chunks(self):
        release = _page_release(self.array)
        for start in range(0, self.n_rows, self.chunk_rows):
            chunk = self.array[start:start + self.chunk_rows]
            yield chunk  # copied by the consumer before it asks for the next one
            release(chunk)

    def __repr__(self):
        kind = "memmap" if isinstance(self.array, np.memmap) else type(self.array).__name__
        return f"ArraySource({kind} of shape {tuple(self.array.shape)}, chunk_rows={self.chunk_rows})"


class IterableSource(ChunkSource):
    """The chunks of a re-iterable (a list of arrays, a ``DataLoader``, a reader whose ``__iter__``
    starts over)."""

    def __init__(self, iterable):
        if iter(iterable) is iterable:
            raise TypeError(f"a chunk source must be re-iterable: {type(iterable).__name__} is an iterator, "
                            "consumed by the first pass; pass a list of chunks, a DataLoader, or an object whose "
                            "__iter__ starts a new pass")
        self.iterable = iterable
        self.n_rows = None

    def _raw_chunks(self):
        for batch in self.iterable:
            if isinstance(batch, (tuple, list)) and batch and not np.isscalar(batch[0]) \
                    and np.ndim(batch[0]) == 2:
                batch = batch[0]  # (x, y) batches of a DataLoader
            yield batch

    def __repr__(self):
        return f"IterableSource({type(self.iterable).__name__})"


def _page_release(array):
    """For a memory map, a function that hands a chunk's pages back once it has been read
    (``madvise(MADV_DONTNEED)``: the file's pages stay in the page cache, but stop counting in this
    process's resident memory, which would otherwise grow to the size of the file over a pass);
    for anything else a no-op."""
    mm = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
        return lambda chunk: None
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):
        return lambda chunk: None
    page = mmap.PAGESIZE

    def release(chunk):
        if chunk.size == 0:
            return
        offset = chunk.ctypes.data - base
        aligned = offset - offset % page
        try:
            mm.madvise(mmap.MADV_DONTNEED, aligned, chunk.nbytes + offset - aligned)
        except (OSError, ValueError):
            pass

    return release


def open_npy(path) -> np.ndarray:
    """A ``.npy`` file opened read-only as a memory map (a clear error when it is not one)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no .npy file at {str(p)!r}")
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001  (numpy raises several types for a bad file)
        raise ValueError(f"{str(p)!r} is not a readable .npy array file ({err})") from None


def is_source(X) -> bool:
    """Whether ``X`` is read as a chunk source rather than as one in-memory array (see the module doc)."""
    if isinstance(X, (ChunkSource, np.memmap, str, os.PathLike)):
        return True
    if isinstance(X, (np.ndarray, torch.Tensor)) or not isinstance(X, Iterable):
        return False
    if hasattr(X, "__array__") or hasattr(X, "iloc") or hasattr(X, "tocsr"):  # data frames, sparse matrices
        return False
    if isinstance(X, (list, tuple)):  # a list of 2-D chunks; a list of rows is an array-like
        return len(X) > 0 and all(np.ndim(c) == 2 for c in X if not isinstance(c, (list, tuple))) \
            and not any(isinstance(c, (list, tuple)) and (len(c) == 0 or np.isscalar(c[0])) for c in X)
    return True


def as_source(X, chunk_rows: int | None = None) -> ChunkSource:
    """``X`` as a :class:`ChunkSource` (see the module doc for what is accepted)."""
    if isinstance(X, ChunkSource):
        return X
    rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows
    if isinstance(X, (str, os.PathLike)):
        return ArraySource(open_npy(X), rows)
    if isinstance(X, (np.ndarray, torch.Tensor)):
        return ArraySource(X, rows)
    if isinstance(X, Iterable):
        return IterableSource(X)
    raise TypeError(f"expected an array, a .npy path or a re-iterable of chunks, got {type(X).__name__}")


class Reservoir:
    """A uniform sample of at most ``size`` rows of the chunks given to :meth:`add`, in one pass.

    While no more than ``size`` rows have been seen the sample is every row, in order, and no random
    number is drawn: ``rng`` (a ``numpy.random.Generator``, or a callable returning one) is asked for
    only when needed. Beyond, row ``t`` (0-based) replaces a uniformly chosen row of the reservoir with
    probability ``size / (t + 1)`` (Vitter's algorithm R, vectorised per chunk).
    """

    def __init__(self, size: int, rng=None):
        self.size, self._rng, self._gen = int(size), rng, None
        self._kept, self._reservoir, self.seen = [], None, 0

    def add(self, chunk: torch.Tensor) -> None:
        m = chunk.shape[0]
        if self._reservoir is None:
            room = self.size - self.seen
            if m <= room:
                self._kept.append(chunk.clone())
                self.seen += m
                return
            self._reservoir = torch.cat(self._kept + [chunk[:room]])
            self._kept = None
            chunk, self.seen, m = chunk[room:], self.seen + room, m - room
        if self._gen is None:
            self._gen = self._rng() if callable(self._rng) else self._rng
        t = self.seen + np.arange(m)
        j = np.floor(self._gen.random(m) * (t + 1)).astype(np.int64)
        take = np.nonzero(j < self.size)[0]
        if take.size:
            # a slot drawn twice in this chunk keeps the later row, as the sequential algorithm does
            slots_rev, first_rev = np.unique(j[take][::-1], return_index=True)
            rows = take[::-1][first_rev]
            self._reservoir[torch.as_tensor(slots_rev)] = chunk[torch.as_tensor(rows)]
        self.seen += m

    @property
    def sample(self) -> torch.Tensor | None:
        """The rows kept (None before any row)."""
        if self._reservoir is not None:
            return self._reservoir
        return torch.cat(self._kept) if self._kept else None


def _as_tensor(chunk, i) -> torch.Tensor:
    if isinstance(chunk, torch.Tensor):
        t = chunk.detach()
    else:
        try:
            a = np.asarray(chunk)
        except Exception as err:  # noqa: BLE001
            raise TypeError(f"chunk {i} of the source is not an array ({type(chunk).__name__}): {err}") from None
        if a.dtype.kind not in "biuf":
            raise TypeError(f"chunk {i} of the source has dtype {a.dtype}; expected numbers")
        t = torch.from_numpy(np.array(a, dtype=a.dtype if a.dtype.kind == "f" and a.itemsize >= 4 else np.float64,
                                      copy=True))
    if t.dim() != 2:
        raise ValueError(f"Expected 2D array, got {t.dim()}D array instead (chunk {i} of the source)")
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float64)
    return t
