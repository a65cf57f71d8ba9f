"""What a tutorial in ``tutorials/`` sets up first: its mode from the environment (``SMOKE=1``: small
sizes; ``TUTORIAL_OUT=DIR``: save the figures there), every random seed, and a ``show`` that keeps a
figure as a PNG in that folder (written atomically) and closes it."""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import torch

from inference.views import keep_figure

__all__ = ["Tutorial", "setup"]


@dataclass(frozen=True)
class Tutorial:
    smoke: bool
    out: Path | None
    seed: int

    def show(self, fig, name: str) -> None:
        """Save ``fig`` as ``name``.png in ``TUTORIAL_OUT`` when it is set; close it."""
        keep_figure(fig, name, self.out)


def setup(seed: int = 0, *, quiet: bool = True) -> Tutorial:
    """Read ``SMOKE`` and ``TUTORIAL_OUT``, seed Python, NumPy, torch and Pyro with ``seed`` and (``quiet``)
    silence warnings."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    pyro.set_rng_seed(seed)
    if quiet:
        warnings.filterwarnings("ignore")
    out = os.environ.get("TUTORIAL_OUT")
    return Tutorial(os.environ.get("SMOKE") == "1", Path(out) if out else None, seed)
