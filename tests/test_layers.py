"""The layers run one way: zoo (models, data, their maths) <- guides <- inference <- apps (tour, CLI).

Every package imports first in a fresh interpreter; no module imports a layer above its own (read
from the source, imports inside functions included); ``inference`` reads models only through the
documented protocol (no ``hasattr``/``getattr`` probing of a model)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["zoo", "guides", "inference", "apps"]  # bottom to top


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_imports_first_in_a_fresh_interpreter(package, tmp_path):
    proc = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_importing_zoo_loads_no_upper_layer(tmp_path):
    code = "import sys, zoo; print(sorted(m for m in ('guides', 'inference', 'apps') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    """Top-level package names that ``path`` imports, anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    """``file imports package`` for every import of a layer above the file's own."""
    bad = []
    for i, layer in enumerate(LAYERS):
        above = set(LAYERS[i + 1:])
        for path in sorted((root / layer).rglob("*.py")):
            for name in sorted(_imports(path) & above):
                bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_layering_check_catches_an_upward_import(tmp_path):
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
        (tmp_path / layer / "__init__.py").write_text("")
    (tmp_path / "zoo" / "model.py").write_text("def f():\n    from inference import fit\n")
    (tmp_path / "inference" / "x.py").write_text("import apps.cli\n")
    assert upward_imports(tmp_path) == ["zoo/model.py imports inference", "inference/x.py imports apps"]


def test_inference_reads_models_only_through_the_protocol():
    """No ``hasattr(model, ...)`` / ``getattr(model, ...)``: optional hooks are asked with
    ``zoo.base.provides``, attributes are the protocol's own."""
    probes = []
    for path in sorted((ROOT / "inference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr"):
                target = node.args[0] if node.args else None
                text = ast.unparse(target) if target is not None else ""
                if text == "model" or text.endswith(".model") or text.startswith("model."):
                    probes.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert probes == []
