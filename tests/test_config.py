"""Parameters: one set of defaults, and clear errors for bad keys."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import REPO
from dustcmb.config import Params, load_params
from dustcmb.errors import ConfigError


def _differences(a, b, prefix: str = "") -> list[str]:
    """Dotted names of every field where two parameter dataclasses differ."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            out += _differences(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append(f"{prefix}{f.name}: params.yaml {x!r} vs default {y!r}")
    return out


def test_params_yaml_equals_the_built_in_defaults():
    """A partial parameter file must build the pipeline's own networks, so the two cannot drift."""
    assert _differences(load_params(REPO / "params.yaml"), Params()) == []


def test_unknown_key_names_the_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("gan:\n  stepz: 3\n")
    with pytest.raises(ConfigError, match="gan.stepz"):
        load_params(path)
