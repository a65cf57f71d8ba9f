"""The tutorials in ``tutorials/``: every one is listed here, runs in smoke mode (``SMOKE=1``) as a plain
Python script and writes its figures, and reads as a notebook (jupytext percent format)."""
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS_DIR = ROOT / "tutorials"

# Every tutorial, by file stem. A tutorial that is not listed fails test_every_tutorial_is_listed.
TUTORIALS = [
    "bayes_vs_map_encoding",
    "swapping_guides",
    "inspecting_posteriors",
    "push_away_and_absorbing_component",
    "vae_gradient_estimators",
    "variational_em",
    "density_estimation",
    "sparse_coding",
    "gans_and_mode_collapse",
]
SMOKE_TIMEOUT_S = 300  # each runs in well under 20 s on a quiet machine; the margin is for shared CPUs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_tutorial_is_listed():
    found = sorted(p.stem for p in TUTORIALS_DIR.glob("*.py"))
    unlisted = sorted(set(found) - set(TUTORIALS))
    missing = sorted(set(TUTORIALS) - set(found))
    assert not unlisted, f"tutorials not listed in tests/test_tutorials.py: {unlisted}"
    assert not missing, f"listed tutorials without a file in tutorials/: {missing}"
    assert len(TUTORIALS) == len(set(TUTORIALS))


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs_in_smoke_mode(name, tmp_path):
    script = TUTORIALS_DIR / f"{name}.py"
    assert script.exists(), f"tutorials/{name}.py is missing"
    figures = tmp_path / "figures"
    figures.mkdir()
    # one intra-op thread: the tests run one worker per core, and a second thread per tutorial only
    # oversubscribes them (OpenMP's spinning threads then slow every process down many times)
    env = dict(os.environ, SMOKE="1", TUTORIAL_OUT=str(figures), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SMOKE_TIMEOUT_S)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    pngs = sorted(figures.glob("*.png"))
    assert pngs, f"{name} wrote no figure to TUTORIAL_OUT"
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC, png.name
    # figures are written atomically: no temporary files are left behind
    assert sorted(p.name for p in figures.iterdir()) == [p.name for p in pngs]
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]  # nothing written to the working directory


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_is_a_notebook(name):
    script = TUTORIALS_DIR / f"{name}.py"
    assert script.exists(), f"tutorials/{name}.py is missing"
    nb = jupytext.read(script)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, kinds
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# ")
    assert nb.metadata["kernelspec"]["language"] == "python"
    text = script.read_text(encoding="utf-8")
    shared = "from apps.tutorial import setup" in text  # reads SMOKE and TUTORIAL_OUT, seeds everything
    assert shared or 'os.environ.get("SMOKE") == "1"' in text, "a tutorial has a smoke mode"
    assert "TUTORIAL_OUT" in text, "a tutorial saves its figures only where TUTORIAL_OUT says"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "seed" in code.lower(), "a tutorial sets its seed"
    assert "__version__" in nb.cells[-1].source, "a tutorial ends with the versions it ran on"
