"""The package layout keeps its promises: imports point down the pipeline, and library imports have no
side effects that belong to entry points (choosing a matplotlib backend, loading MLflow for inference)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "dustcmb"
# Stage packages in pipeline order; a module may import its own stage, earlier stages and the core.
STAGES = ("sky", "patches", "gan", "simulation", "separation", "evaluation", "tuning")
ENTRY_POINTS = {"cli", "__main__"}  # the command line sits on top of everything


def _level(module: str) -> int:
    """Pipeline level of a dotted ``dustcmb`` module: -1 for the shared core, len(STAGES) for the CLI."""
    part = module.split(".")[1] if "." in module else ""
    if part in STAGES:
        return STAGES.index(part)
    return len(STAGES) if part in ENTRY_POINTS else -1


def _imports(path: Path) -> set[str]:
    """Every ``dustcmb`` module named in an import statement of ``path`` (module level and in functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dustcmb"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("dustcmb")}
    return names


def test_imports_never_point_back_up_the_pipeline():
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("dustcmb", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for target in _imports(path):
            if _level(target) > _level(module):
                backwards.append(f"{module} imports {target}")
    assert backwards == []


def test_library_imports_choose_no_backend_and_inference_needs_no_mlflow():
    """Importing every library module keeps the user's matplotlib backend; the sampler loads no MLflow."""
    modules = [".".join(("dustcmb", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
               for p in sorted(PACKAGE.rglob("*.py")) if p.stem not in ENTRY_POINTS and p.stem != "cli"]
    probe = ("import importlib, sys\n"
             "importlib.import_module('dustcmb.gan.sample')\n"
             "assert 'mlflow' not in sys.modules, 'dustcmb.gan.sample pulled in mlflow'\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             "import matplotlib\n"
             "assert matplotlib.get_backend().lower() == 'svg', matplotlib.get_backend()\n")
    env = {"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
