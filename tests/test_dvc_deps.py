"""dvc.yaml lists, as each stage's code deps, exactly the files of ``src/`` that the stage runs.

Nothing is listed here; a stage's code is derived by ``stage_code.py``. Its ``cmd`` is resolved
through the real Typer app (``dustcmb.cli.app``) to the callbacks it runs, then the closure of
the ``src/`` modules they import is read with ``ast``: module-level imports and imports inside
functions, relative imports, submodules named by ``from package import name``, and every package
``__init__.py`` on the way.

Rule for the CLI modules. ``dustcmb/cli.py`` imports the CLI module of every command, but only the
stage's own command runs. A stage therefore depends on

* its entry module: ``dustcmb/cli.py``, the ``dustcmb`` console script (``__main__.py`` only for
  ``python -m dustcmb``), with what it imports for itself (``errors.py``);
* its *command modules*, those holding the callback of its command or of a group on its command
  path (``gan evaluate`` -> ``evaluation/cli.py``), without the bodies of the other commands'
  callbacks in them (``report``'s imports in ``evaluation/cli.py``);

and never on another command's CLI module, whoever imports it: editing one cannot change this
stage's outputs. All a CLI module may take from another command's module is option defaults, plain
values such as ``DEFAULT_PATCHES`` (checked below); those name data, which dvc.yaml tracks as data deps.

Every closure file must be covered by a dep (a directory dep covers all its files), and every
``src/`` dep may cover closure files only, so that editing a module marks exactly the stages that
run it. The last test shows this with a real DVC.
"""

from __future__ import annotations

import functools
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dustcmb.cli import app
from stage_code import REPO, SRC, StageCode, stage_code

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
CODE = SRC.relative_to(REPO).as_posix() + "/"
SHARED_MODULES = ["src/dustcmb/stats/power.py", "src/dustcmb/storage.py"]  # examples to edit


@functools.cache
def code(stage: str) -> StageCode:
    """What ``stage`` of dvc.yaml runs."""
    return stage_code(STAGES[stage]["cmd"], app)


def code_deps(stage: str) -> list[str]:
    """The deps of ``stage`` under ``src/``."""
    return [dep.rstrip("/") for dep in STAGES[stage]["deps"] if dep.startswith(CODE)]


def hashed_files(dep: str) -> set[str]:
    """The files DVC hashes for ``dep``: itself, or every file under it bar ``__pycache__`` (.dvcignore)."""
    path = REPO / dep
    if path.is_file():
        return {dep}
    return {file.relative_to(REPO).as_posix() for file in path.rglob("*")
            if file.is_file() and "__pycache__" not in file.parts}


@pytest.mark.parametrize("stage", STAGES)
def test_deps_cover_the_code_the_stage_runs(stage):
    deps = code_deps(stage)
    missing = sorted(file for file in code(stage).files
                     if not any(file == dep or file.startswith(dep + "/") for dep in deps))
    assert not missing, (f"dvc.yaml stage {stage!r} runs these files but does not list them in its deps:\n  "
                         + "\n  ".join(missing))


@pytest.mark.parametrize("stage", STAGES)
def test_deps_list_no_code_the_stage_does_not_run(stage):
    problems = []
    for dep in code_deps(stage):
        extra = sorted(hashed_files(dep) - code(stage).files)
        if not (REPO / dep).exists():
            problems.append(f"{dep} does not exist; remove it")
        elif (REPO / dep).is_file() and extra:
            problems.append(f"{dep} is not run by the stage; remove it")
        elif extra:
            problems.append(f"directory {dep} also covers {', '.join(extra)}, which the stage does not run; "
                            "list the files it needs instead")
    assert not problems, f"dvc.yaml stage {stage!r} has superfluous code deps:\n  " + "\n  ".join(problems)


def test_commands_borrow_only_values_from_other_commands():
    """The closure does not enter other commands' CLI modules, so nothing taken from them may be code."""
    problems = set()
    for stage in STAGES:
        for importer, imp in code(stage).borrowed:
            module = importlib.import_module(imp.module)
            taken = ["the module itself"] if imp.names is None else [
                name for name in imp.names if callable(getattr(module, name))]
            problems |= {f"{importer} imports {what} from {imp.module}, the CLI module of other commands; "
                         "move it to a module both can import (e.g. dustcmb.cliutil)" for what in taken}
    assert not problems, "\n".join(sorted(problems))


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _dvc(root: Path, *args: str) -> str:
    return _run([sys.executable, "-m", "dvc", *args], root)


def _stale_stages(root: Path) -> set[str]:
    return set(json.loads(_dvc(root, "status", "--json")))


def _placeholders(root: Path) -> None:
    """Small stand-ins for every non-code dep and output: a file if the name has a suffix, else a folder."""
    for stage in STAGES.values():
        paths = [dep for dep in stage["deps"] if not dep.startswith(CODE)]
        for key in ("outs", "metrics", "plots"):
            paths += [next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(key, [])]
        for path in map(Path, paths):
            target = root / (path if path.suffix else path / "placeholder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"placeholder for {path}\n")


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    """A git + DVC copy of the project whose dvc.lock records placeholder data: every stage up to date."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(SRC, root / CODE, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    _run(["git", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.org", "commit", "-qm", "code"], root)
    _dvc(root, "init", "-q")
    _placeholders(root)  # after the git commit: DVC refuses outputs that git tracks
    _dvc(root, "commit", "--force", "--quiet")  # writes dvc.lock from the files, running no stage
    assert _stale_stages(root) == set()
    return root


def _module_no_stage_runs() -> str:
    unused = {file.relative_to(REPO).as_posix() for file in SRC.rglob("*.py")} - set().union(
        *(code(stage).files for stage in STAGES))
    if not unused:
        pytest.skip("every module of src/ is run by some stage")
    return min(unused)


@pytest.mark.parametrize("edited", [*SHARED_MODULES, pytest.param(None, id="a-module-no-stage-runs")])
def test_dvc_status_marks_exactly_the_stages_running_an_edited_module(dvc_repo, edited):
    edited = edited or _module_no_stage_runs()
    path = dvc_repo / edited
    original = path.read_text()
    path.write_text(original + "# edited\n")
    try:
        stale = _stale_stages(dvc_repo)
    finally:
        path.write_text(original)
    expected = {stage for stage in STAGES if edited in code(stage).files}
    assert stale == expected, f"after editing {edited}, dvc status reports {sorted(stale)}, " \
                              f"but the stages running it are {sorted(expected)}"
