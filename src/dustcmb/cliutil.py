"""Pieces shared by every CLI command: the ``--params`` option and device selection."""

from __future__ import annotations

from pathlib import Path

import typer

from dustcmb.config import Params, load_params

PARAMS_HELP = "Parameter file (YAML) read into typed settings; see params.yaml for every key."
ParamsOption = typer.Option(Path("params.yaml"), "--params", "-p", help=PARAMS_HELP)


def load(params_path: Path) -> Params:
    """Load the parameter file; errors surface as one line through the CLI's error handler."""
    return load_params(params_path)


def resolve_device(choice: str) -> str:
    """Map ``auto|cpu|cuda`` to a torch device string, failing clearly if CUDA is absent."""
    import torch

    from dustcmb.errors import ConfigError

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    if choice not in ("cpu", "cuda"):
        raise ConfigError(f"--device {choice!r}: use auto, cpu or cuda")
    return choice
