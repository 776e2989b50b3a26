"""Resumable training checkpoints shared by the GAN and ResUNet trainers.

A checkpoint is a ``torch.save`` dict written atomically. It carries a ``fingerprint`` of everything
the run depends on (parameters, data), so ``--resume`` refuses a checkpoint from another setup
instead of silently mixing two runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dustcmb.errors import ConfigError, InputError
from dustcmb.storage import atomic_file


def save(path: Path, state: dict) -> None:
    """Write ``state`` (tensors, state dicts, plain values) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load(path: Path, fingerprint: dict, changed: str) -> dict:
    """Read a checkpoint for ``--resume`` and check it belongs to this run.

    Parameters
    ----------
    path : Path
        Checkpoint file.
    fingerprint : dict
        What the current run depends on; must equal the stored ``state["fingerprint"]``.
    changed : str
        What may differ, for the error message (e.g. "gan parameters or another patch set").
    """
    if not path.is_file():
        raise InputError(f"--resume: no checkpoint at {path}; run without --resume to start afresh")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["fingerprint"] != fingerprint:
        raise ConfigError(f"checkpoint {path} was made with other {changed}; run without --resume "
                          "to start afresh")
    return state
