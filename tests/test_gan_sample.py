"""``dustcmb gan sample``: MJy/sr maps, seed-determinism, bounded memory, clear errors."""

import json
import tracemalloc

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dustcmb.cli import app
from dustcmb.errors import InputError
from dustcmb.gan.models import Generator
from dustcmb.gan.sample import load_generator, sample_to_npy

LOG_MIN, LOG_MAX = np.log(0.01), np.log(2.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks on a shared 2-core machine run faster (and steadier) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model_dir(path, npix=32, latent=8, channels=16):
    """A generator folder as ``gan train`` writes it (untrained weights: sampling does not care)."""
    torch.manual_seed(0)
    path.mkdir(parents=True)
    torch.save(Generator(npix, latent, channels).state_dict(), path / "generator.pt")
    config = {"npix": npix, "size_deg": 20.0, "latent_dim": latent, "gen_channels": channels,
              "log_min": LOG_MIN, "log_max": LOG_MAX}
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_same_seed_same_maps(tmp_path):
    model = _model_dir(tmp_path / "gan")
    a = np.load(sample_to_npy(model, 70, tmp_path / "a.npy", seed=3, batch=32))
    b = np.load(sample_to_npy(model, 70, tmp_path / "b.npy", seed=3, batch=32))
    c = np.load(sample_to_npy(model, 70, tmp_path / "c.npy", seed=4, batch=32))
    assert a.shape == (70, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    # tanh output in [-1, 1] maps into the stored intensity range [exp(log_min), exp(log_max)] MJy/sr
    assert a.min() >= np.exp(LOG_MIN) * (1 - 1e-6) and a.max() <= np.exp(LOG_MAX) * (1 + 1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.npy", "c.npy", "gan"], "no temp files"


def test_symmetrised_samples_are_the_same_maps_in_random_orientations(tmp_path):
    """``symmetrise=True`` turns each map of the same seed into one of its 8 orientations, reproducibly,
    and over 200 maps into more than one (a shared orientation is what it removes)."""
    model = _model_dir(tmp_path / "gan")
    plain = np.load(sample_to_npy(model, 200, tmp_path / "a.npy", seed=3, batch=64))
    turned = np.load(sample_to_npy(model, 200, tmp_path / "b.npy", seed=3, batch=64, symmetrise=True))
    again = np.load(sample_to_npy(model, 200, tmp_path / "c.npy", seed=3, batch=64, symmetrise=True))
    assert np.array_equal(turned, again)
    orientations = []
    for p, t in zip(plain, turned):
        images = [np.rot90(p, k) for k in range(4)] + [np.rot90(p, k)[:, ::-1] for k in range(4)]
        orientations.append(next(i for i, im in enumerate(images) if np.array_equal(t, im)))
    assert len(set(orientations)) == 8


def test_maps_match_the_generator(tmp_path):
    """Sampling is the generator in eval mode followed by the inverse of the unit transform."""
    model = _model_dir(tmp_path / "gan")
    maps = np.load(sample_to_npy(model, 5, tmp_path / "s.npy", seed=1, batch=2))
    generator, config = load_generator(model)
    assert not generator.training
    unit = 2 * (np.log(maps.astype(np.float64)) - LOG_MIN) / (LOG_MAX - LOG_MIN) - 1
    assert np.abs(unit).max() <= 1 + 1e-5
    z = torch.randn(5, 8)
    assert generator(z).shape == (5, 1, 32, 32) and config["npix"] == 32


def test_10000_maps_stream_with_bounded_memory(tmp_path):
    """10 000 maps at 64² (164 MB) are written with a peak of Python-heap memory of a few batches."""
    model = _model_dir(tmp_path / "gan", npix=64, latent=8, channels=8)
    tracemalloc.start()
    out = sample_to_npy(model, 10_000, tmp_path / "big.npy", seed=0, batch=256)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = 10_000 * 64 * 64 * 4
    batch_float64 = 256 * 64 * 64 * 8
    assert out.stat().st_size > size
    # a few float64 batches (log, exp, cast in from_unit), independent of the number of maps
    assert peak < 3 * batch_float64 < size / 5, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB output"
    maps = np.load(out, mmap_mode="r")
    assert maps.shape == (10_000, 64, 64) and np.isfinite(maps[-1]).all() and maps[-1].min() > 0


def test_cli_sample(tmp_path):
    model = _model_dir(tmp_path / "gan")
    params = tmp_path / "params.yaml"
    params.write_text("seed: 5\ndevice: cpu\n")
    out = tmp_path / "samples" / "s.npy"
    args = ["gan", "sample", "-n", "3", "--out", str(out), "--model", str(model), "--params", str(params)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first = np.load(out)
    assert CliRunner().invoke(app, args + ["--seed", "5"]).exit_code == 0
    assert first.shape == (3, 32, 32) and np.array_equal(first, np.load(out)), "default seed = params seed"


def test_missing_model_fails_clearly(tmp_path):
    with pytest.raises(InputError, match="gan train"):
        sample_to_npy(tmp_path / "nowhere", 3, tmp_path / "s.npy", seed=0)
    with pytest.raises(InputError, match="at least one"):
        sample_to_npy(_model_dir(tmp_path / "gan"), 0, tmp_path / "s.npy", seed=0)
    assert not (tmp_path / "s.npy").exists()
