"""The source files a pipeline stage runs, found statically from its ``cmd`` and the code.

The command is resolved through the real Typer app to the callbacks it runs; the closure of the
``src/`` modules they import is then read with :mod:`ast`, never by importing the code under
test. The rules are stated in ``tests/test_dvc_deps.py``.
"""

from __future__ import annotations

import ast
import inspect
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import typer.main

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


@dataclass(frozen=True)
class Import:
    """One imported module under ``src/``, with the names taken from it (None: the module itself)."""

    module: str
    names: tuple[str, ...] | None


@dataclass(frozen=True)
class StageCode:
    """The files a stage runs (repo-relative POSIX paths) and the values it takes from other commands.

    ``borrowed`` holds ``(importer, Import)`` for every import of another command's CLI module made
    outside the entry module; the closure does not enter those modules, so the names must be plain
    values (option defaults), never code.
    """

    files: frozenset[str]
    borrowed: tuple[tuple[str, Import], ...]


def module_file(name: str) -> Path | None:
    """The source of module ``name`` under ``src/`` (a package's ``__init__.py``); None if not ours."""
    base = SRC.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if path.is_file():
            return path
    return None


def entry_and_args(cmd: str) -> tuple[str, list[str]]:
    """The module a stage's ``cmd`` starts in and the words passed to the command line after it.

    ``dustcmb ...`` starts in the module of the ``dustcmb`` console script of ``pyproject.toml``;
    ``python -m pkg ...`` in ``pkg.__main__``.
    """
    words = shlex.split(cmd)
    if words[0].startswith("python") and words[1:2] == ["-m"]:
        return f"{words[2]}.__main__", words[3:]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    if words[0] not in scripts:
        raise ValueError(f"cmd {cmd!r} runs neither a console script of pyproject.toml nor `python -m`")
    return scripts[words[0]].partition(":")[0], words[1:]


def _qualname(callback) -> tuple[str, str]:
    func = inspect.unwrap(callback)  # Typer wraps callbacks with functools.wraps
    return func.__module__, func.__qualname__


def command_callbacks(app: typer.Typer, args: list[str]) -> list[tuple[str, str]]:
    """``(module, qualname)`` of the callbacks ``args`` runs: each group's on the way, then the command's."""
    command, found, words = typer.main.get_command(app), [], iter(args)
    while True:
        if command.callback is not None:
            found.append(_qualname(command.callback))
        if not hasattr(command, "commands"):
            return found
        word = next(words, None)
        if word not in command.commands:
            raise ValueError(f"`{' '.join(args)}` names no command; {command.name!r} has "
                             f"{sorted(command.commands)}")
        command = command.commands[word]


def all_callbacks(app: typer.Typer) -> set[tuple[str, str]]:
    """``(module, qualname)`` of the callback of every group and command of the app."""
    found, todo = set(), [typer.main.get_command(app)]
    while todo:
        command = todo.pop()
        if command.callback is not None:
            found.add(_qualname(command.callback))
        todo.extend(getattr(command, "commands", {}).values())
    return found


class _ImportFinder(ast.NodeVisitor):
    """The imports of one module, at module level and in functions, except in the functions ``skip``."""

    def __init__(self, module: str, skip: set[str]):
        is_package = module_file(module).name == "__init__.py"
        self.package = module if is_package else module.rpartition(".")[0]
        self.skip, self.scope, self.found = skip, [], []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        if ".".join(self.scope) not in self.skip:
            self.generic_visit(node)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [Import(alias.name, None) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # level 1 is this module's package, each further level one package up
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
        submodules = [alias.name for alias in node.names if module_file(f"{base}.{alias.name}")]
        values = tuple(alias.name for alias in node.names if alias.name not in submodules)
        self.found += [Import(base, values), *(Import(f"{base}.{name}", None) for name in submodules)]


def imports(module: str, skip: set[str]) -> list[Import]:
    """The imports of ``module`` that name modules under ``src/``, outside the functions ``skip``."""
    finder = _ImportFinder(module, skip)
    finder.visit(ast.parse(module_file(module).read_text(), filename=str(module_file(module))))
    return [imp for imp in finder.found if module_file(imp.module)]


def stage_code(cmd: str, app: typer.Typer) -> StageCode:
    """The files the stage ``cmd`` runs: the import closure of its entry module and its own callbacks."""
    entry, args = entry_and_args(cmd)
    own, every = set(command_callbacks(app, args)), all_callbacks(app)
    own_modules = {module for module, _ in own}
    foreign = {module for module, _ in every} - own_modules
    seen, borrowed, todo = set(), [], [entry, *own_modules]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing runs each package's __init__
        skip = {name for owner, name in every - own if owner == module}
        for imp in imports(module, skip):
            if imp.module not in foreign:
                todo.append(imp.module)
            elif module != entry:
                borrowed.append((module, imp))
    files = frozenset(module_file(m).relative_to(REPO).as_posix() for m in seen)
    return StageCode(files, tuple(borrowed))
