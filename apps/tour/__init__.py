"""The main job (``make run`` / ``zoo tour``): the headline comparisons of the zoo on embedded data,
written as one self-contained HTML report (figures embedded as base64 PNG) plus the PNG files,
one CSV per table, a Markdown copy of the report and the InferenceData of the Old Faithful fits.

The tour is a list of sections, one module each in this package (:data:`SECTION_MODULES`, in the
tour's order). A section is one function ``fn(ctx: TourContext) -> Section`` registered with
:func:`tour_section`; it fits what it needs (with ``ctx.seed``, and smaller sizes when
``ctx.quick``), draws figures with ``ctx.figure(fig, name, caption)`` and returns a title, prose
paragraphs, tables (pandas DataFrames) and figures. What a tutorial computes too is a public
function of the section's module, which the tutorial imports. Adding a comparison to the report is
adding one such module, and its name to :data:`SECTION_MODULES`::

    @tour_section("my_comparison")
    def my_comparison(ctx):
        table = pd.DataFrame(...)
        fig, ax = plt.subplots()
        ...
        return Section("Title", ["A paragraph."], tables=[Table("caption", table)],
                       figures=[ctx.figure(fig, "my_comparison.png", "caption")])

Everything is built in a staging folder (:class:`inference.staged_output`) and moved into place
only when every section succeeded, so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import importlib
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

__all__ = ["run_tour", "tour_section", "list_sections", "TourContext", "Section", "Table", "Figure", "SECTIONS",
           "SECTION_MODULES"]


# ----------------------------------------------------------------------------- report pieces
@dataclass
class Table:
    """A captioned table; its numbers appear in the HTML and in ``<name>.csv``."""

    caption: str
    frame: pd.DataFrame
    name: str | None = None


@dataclass
class Figure:
    """A PNG written into the run folder (``name``) and embedded in the HTML (``png``: its bytes)."""

    name: str
    caption: str
    png: bytes


@dataclass
class Section:
    """What a section returns: a title, prose paragraphs (plain text; ``code`` in backticks),
    tables and figures."""

    title: str
    prose: list[str]
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    key: str = ""
    run_time: float = 0.0


@dataclass
class TourContext:
    """Handed to every section: the staging folder ``out``, the ``seed``, ``quick`` (small sizes for
    tests) and the overall progress bar (``progress.set_postfix_str`` for a status line)."""

    out: Path
    seed: int = 0
    quick: bool = False
    progress: object = None

    def figure(self, fig, name: str, caption: str) -> Figure:
        """Save ``fig`` as ``out/name`` (PNG, atomically), close it, and return it for embedding."""
        from inference.views import save_figure

        if not name.endswith(".png") or "/" in name or "\\" in name:
            raise ValueError(f"figure name must be a plain file name ending in .png, got {name!r}")
        path = self.out / name
        if path.exists():
            raise ValueError(f"figure {name!r} was already written by another section")
        save_figure(fig, path)
        return Figure(name, caption, path.read_bytes())

    def status(self, text: str) -> None:
        if self.progress is not None and hasattr(self.progress, "set_postfix_str"):
            self.progress.set_postfix_str(text)


SECTIONS: dict[str, Callable[[TourContext], Section]] = {}


def tour_section(key: str):
    """Register ``fn(ctx) -> Section`` as a tour section under ``key``; sections run in the order
    they are registered."""
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"section key must be an identifier, got {key!r}")

    def register(fn):
        if not callable(fn):
            raise TypeError(f"tour section {key!r} must be a function of the context, got {type(fn).__name__}")
        if key in SECTIONS:
            raise ValueError(f"tour section {key!r} is already registered")
        SECTIONS[key] = fn
        return fn

    return register


def list_sections() -> list[str]:
    return list(SECTIONS)


# ----------------------------------------------------------------------------- helpers of the sections
def as_numpy(t) -> np.ndarray:
    """A tensor (detached, on the CPU) or an array-like as a NumPy array."""
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def fmt_vec(a, digits=3) -> str:
    """A vector as text for a table cell: ``(0.250, 0.500)``."""
    return "(" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(a)) + ")"


# ----------------------------------------------------------------------------- running
def _versions() -> str:
    import pyro

    return f"Python {platform.python_version()}, torch {torch.__version__}, pyro {pyro.__version__}, " \
           f"numpy {np.__version__}, pandas {pd.__version__}"


def run_tour(out="runs/tour", *, quick: bool = False, progress_bar: bool = True, seed: int = 0,
             sections=None) -> Path:
    """Run the tour's sections (all, or the keys in ``sections``) and write ``report.html`` (self-contained),
    ``report.md``, the PNGs, one CSV per table and the Old Faithful InferenceData to ``out``.

    The folder is written whole or not at all. Returns ``Path(out)``.
    """
    keys = list(SECTIONS) if sections is None else list(sections)
    if not keys:
        raise ValueError("no tour sections selected")
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown tour section(s) {', '.join(map(repr, unknown))}; known: {', '.join(SECTIONS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    start = time.perf_counter()
    done: list[Section] = []
    threads = torch.get_num_threads()
    # the tour's problems are small (hundreds of points): one thread avoids OpenMP fork/join overhead,
    # which dominates such work and grows badly when the cores are shared
    torch.set_num_threads(1)
    try:
        _run_sections(out, keys, done, quick=quick, progress_bar=progress_bar, seed=seed, start=start)
    finally:
        torch.set_num_threads(threads)
    for s in done:
        print(f"{s.run_time:7.1f} s  {s.title}")
    print(f"wrote {Path(out) / 'report.html'} in {time.perf_counter() - start:.1f} s")
    return Path(out)


def _run_sections(out, keys, done, *, quick, progress_bar, seed, start):
    from zoo.progress import progress

    from inference.checkpoint import staged_output

    from ..report import _render_markdown, render_html

    with staged_output(out) as stage:
        bar = progress(keys, desc="tour", unit="section", enabled=progress_bar, leave=True)
        ctx = TourContext(out=stage, seed=int(seed), quick=bool(quick), progress=bar)
        for key in bar:
            bar.set_description(f"tour: {key}")
            t0 = time.perf_counter()
            torch.manual_seed(ctx.seed)
            section = SECTIONS[key](ctx)
            if not isinstance(section, Section):
                raise TypeError(f"tour section {key!r} returned {type(section).__name__}, not a Section")
            section.key, section.run_time = key, time.perf_counter() - t0
            for i, t in enumerate(section.tables):
                t.frame.to_csv(stage / f"{t.name or f'{key}_{i}'}.csv")
            done.append(section)
        bar.close()
        elapsed = time.perf_counter() - start
        title = "latent-zoo tour"
        meta = (f"Seed {seed}{', quick mode (small sizes)' if quick else ''}; total run time {elapsed:.1f} s. "
                f"{_versions()}.")
        (stage / "report.html").write_text(render_html(done, title=title, meta=meta), encoding="utf-8")
        (stage / "report.md").write_text(_render_markdown(done, title=title, meta=meta), encoding="utf-8")


# ----------------------------------------------------------------------------- the sections
#: the section modules of this package, in the tour's order; importing one registers its section,
#: whose key is the module's name
SECTION_MODULES = ("faithful_gmm", "kmeans_vs_em", "push_away", "bayes_vs_map_encoding", "swapping_guides",
                   "variational_em", "vae_estimators", "density_estimation", "gans")

for _name in SECTION_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
del _name
