"""`dustcmb separation data` and the streaming sets, on 32² patches and a handful of maps."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from conftest import split_meta
from dustcmb.cli import main
from dustcmb.config import load_params
from dustcmb.errors import ConfigError, InputError
from dustcmb.simulation.sed import dust_kcmb_ratio
from dustcmb.simulation.simulator import SkySimulator
from dustcmb.simulation.store import FILES, open_datasets

NPIX, N_REAL, N_GAN, DRAWS = 32, 10, 12, 2


def lognormal_dust(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(rng.normal(np.log(0.05), 0.5, (n, NPIX, NPIX))).astype(np.float32)


def write_params(path, **simulation):
    data = {"seed": 5, "patches": {"npix": NPIX},
            "simulation": {"n_spectra": 2, "norm_maps": 4, "held_out_realisations": DRAWS, "instrument": "noiseless",
                           "beta_rms": 0.0, "temp_dust_rms_k": 0.0, **simulation}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("separation")
    patches = tmp_path / "patches"
    patches.mkdir()
    np.save(patches / "patches.npy", lognormal_dust(N_REAL, 0))
    meta = {"npix": NPIX, "size_deg": 20.0} | split_meta(0, N_REAL // 2, N_REAL // 2)
    (patches / "meta.json").write_text(json.dumps(meta))
    samples = tmp_path / "samples.npy"
    np.save(samples, lognormal_dust(N_GAN, 1))
    return tmp_path, samples, patches


@pytest.fixture(scope="module")
def built(inputs):
    """One `dustcmb separation data` run shared by the tests (camb is the slow part)."""
    tmp_path, samples, patches = inputs
    params_path = write_params(tmp_path / "params.yaml")
    return run_data(tmp_path, samples, patches, params_path), load_params(params_path)


def run_data(tmp_path, samples, patches, params, status: int = 0):
    with pytest.raises(SystemExit) as exit_info:
        main(["separation", "data", "--samples", str(samples), "--patches", str(patches),
              "--out", str(tmp_path / "separation"), "--params", str(params)])
    assert exit_info.value.code == status
    return tmp_path / "separation"


def test_data_command_and_streaming_sets(built):
    out, params = built
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    sets = open_datasets(out, params)
    held = N_REAL // 2 * DRAWS
    assert {k: len(v) for k, v in sets.items()} == {"train": N_GAN, "val": held, "test": held}
    assert not set(sets["val"].source_index) & set(sets["test"].source_index)
    # the second draw over a held-out dust map has the same dust but another CMB
    first, second = sets["test"].sample_uk(0), sets["test"].sample_uk(N_REAL // 2)
    assert not np.array_equal(first[1], second[1])

    inputs_unit, target = sets["train"][3]
    assert inputs_unit.shape == (3, NPIX, NPIX) and target.shape == (1, NPIX, NPIX)
    assert inputs_unit.dtype == target.dtype == torch.float32
    again = open_datasets(out, params)["train"][3]
    np.testing.assert_array_equal(inputs_unit.numpy(), again[0].numpy())  # deterministic per index

    channels_uk, cmb_uk = sets["val"].sample_uk(0)
    norm = sets["val"].normalisation
    np.testing.assert_allclose(norm.target_to_uk(sets["val"][0][1].numpy()[0]), cmb_uk, rtol=1e-5, atol=1e-3)
    # noiseless fixed SED: two channels give the CMB exactly (docs/science.md#multi-frequency-skies),
    # so the physics is consistent
    ratio = dust_kcmb_ratio(143.0, 1.53, 19.6)
    np.testing.assert_allclose((channels_uk[0] - ratio * channels_uk[1]) / (1 - ratio), cmb_uk, atol=0.05)
    # the same dust map in another split gets another CMB
    flat = np.full((NPIX, NPIX), 0.05, np.float32)
    simulator = sets["train"].simulator
    assert not np.allclose(simulator.observe(flat, "val", 0)[1], simulator.observe(flat, "test", 0)[1])
    # training inputs are standardised by the stored per-channel statistics
    batch = np.stack([sets["train"][i][0].numpy() for i in range(N_GAN)])
    assert np.all(np.abs(batch.mean(axis=(0, 2, 3))) < 0.5) and np.all(np.abs(batch.std(axis=(0, 2, 3)) - 1) < 0.5)


def test_planck_preset_and_beta_map(built):
    out, params = built
    bank = open_datasets(out, params)["test"].simulator.bank
    cfg = dataclasses.replace(params.simulation, instrument="planck", beta_rms=0.1)
    sim = SkySimulator(bank, cfg, NPIX, 20.0, params.seed)
    betas = np.stack([sim.beta(sim.rngs("train", i)[1]) for i in range(60)])
    assert np.sqrt(np.mean((betas - 1.53) ** 2)) == pytest.approx(0.1, rel=0.15)
    channels_uk, cmb_uk = sim.observe(lognormal_dust(1, 2)[0], "train", 0)
    assert np.isfinite(channels_uk).all() and channels_uk.shape == (3, NPIX, NPIX)


def test_temperature_map_is_independent_and_leaves_the_other_streams_alone(built):
    """T_d varies with its own rms (60 maps of 32²: rms within 15 %, the scatter of so few correlated maps)
    and its own stream: it is uncorrelated with β (|r| < 0.2), and turning it on leaves the CMB, β and
    noise of every map bit for bit the same."""
    out, params = built
    bank = open_datasets(out, params)["test"].simulator.bank
    cfg = dataclasses.replace(params.simulation, instrument="planck", beta_rms=0.1, temp_dust_rms_k=0.0)
    fixed = SkySimulator(bank, cfg, NPIX, 20.0, params.seed)
    varying = SkySimulator(bank, dataclasses.replace(cfg, temp_dust_rms_k=1.5), NPIX, 20.0, params.seed)
    temps = np.stack([varying.temp_dust_k(varying.rngs("train", i)[3]) for i in range(60)])
    betas = np.stack([varying.beta(varying.rngs("train", i)[1]) for i in range(60)])
    assert np.sqrt(np.mean((temps - cfg.temp_dust_k) ** 2)) == pytest.approx(1.5, rel=0.15)
    assert abs(np.corrcoef(temps.ravel(), betas.ravel())[0, 1]) < 0.2
    assert fixed.temp_dust_k(fixed.rngs("train", 0)[3]) == cfg.temp_dust_k
    no_dust = np.full((NPIX, NPIX), 1e-12, dtype=np.float32)
    for a, b in zip(fixed.observe(no_dust, "train", 3), varying.observe(no_dust, "train", 3)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_mismatch_option_trains_on_one_sed_and_tests_on_varying_ones(inputs, tmp_path):
    """``train_fixed_sed``: training maps are simulated with β and T_d fixed, held-out maps keep the
    variations; so the noiseless 143 − r·353 combination recovers the training CMB exactly (to 0.05 µK,
    float32 channels) but not the test CMB."""
    _, samples, patches = inputs
    params_path = write_params(tmp_path / "params.yaml", beta_rms=0.1, temp_dust_rms_k=1.5, train_fixed_sed=True)
    sets = open_datasets(run_data(tmp_path, samples, patches, params_path), load_params(params_path))
    assert sets["train"].simulator.cfg.beta_rms == 0 and sets["test"].simulator.cfg.beta_rms == 0.1
    ratio = dust_kcmb_ratio(143.0, 1.53, 19.6)
    errors = {}
    for name in ("train", "test"):
        channels_uk, cmb_uk = sets[name].sample_uk(0)
        errors[name] = np.abs((channels_uk[0] - ratio * channels_uk[1]) / (1 - ratio) - cmb_uk).max()
    assert errors["train"] < 0.05 < errors["test"]


def test_missing_samples_fails_clearly_and_writes_nothing(inputs, tmp_path, capsys):
    _, _, patches = inputs
    params_path = write_params(tmp_path / "params.yaml")
    run_data(tmp_path, tmp_path / "nope.npy", patches, params_path, status=2)
    assert "GAN sample file" in capsys.readouterr().err
    assert not (tmp_path / "separation").exists()


def test_wrong_shape_bad_pixels_and_stale_params(inputs, built):
    tmp_path, samples, _ = inputs
    out, params = built
    with pytest.raises(ConfigError, match="different simulation"):
        open_datasets(out, load_params(write_params(tmp_path / "other.yaml", beta=1.6)))
    good = np.load(samples)
    try:
        bad = good.copy()
        bad[4, 3, 3] = 0.0
        np.save(samples, bad)
        train = open_datasets(out, params)["train"]
        with pytest.raises(InputError, match="map 4"):
            train[4]
        np.save(samples, good[:, :16, :16])
        with pytest.raises(InputError, match="float32"):
            open_datasets(out, params)
    finally:
        np.save(samples, good)
