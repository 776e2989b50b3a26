"""The `sky` and `patches` commands end to end: outputs, determinism, normalisation, bad input."""

from __future__ import annotations

import json

import healpy as hp
import numpy as np
import pytest
import yaml
from astropy.io import fits

from conftest import run_cli
from dustcmb.patches.normalise import from_unit, to_unit
from dustcmb.patches.store import load_patches
from dustcmb.simulation.sed import dust_ukcmb
from dustcmb.sky.synthetic import synthetic_dust_map
from dustcmb.units import kcmb_to_mjysr


def test_patch_set_contents(tiny_patches):
    patches, meta = load_patches(tiny_patches)
    assert patches.dtype == np.float32 and patches.shape == (1034, 32, 32)
    assert meta["npix"] == 32 and meta["size_deg"] == 20.0 and meta["pixel_arcmin"] == 37.5
    assert len(meta["lon_deg"]) == len(meta["lat_deg"]) == 1034
    assert np.all(patches > 0)
    train = patches[np.asarray(meta["split"]) == "train"]  # the unit domain is set by the training sky
    assert np.log(train.min()) == pytest.approx(meta["log_min"])
    assert np.log(train.max()) == pytest.approx(meta["log_max"])
    assert meta["split_counts"] == {"train": 474, "val": 102, "test": 92, "dropped": 366}
    assert (tiny_patches.parent / "plots" / "splits.png").is_file()


def test_normalisation_round_trips_to_float32_precision(tiny_patches):
    """MJy/sr -> [-1, 1] -> MJy/sr. A float32 u carries ~6e-8 absolute error, i.e. ~1e-7 × (ln range)
    relative in I; 1e-6 relative is a few float32 ulps."""
    patches, meta = load_patches(tiny_patches)
    train = patches[np.asarray(meta["split"]) == "train"]
    unit = to_unit(train, meta["log_min"], meta["log_max"])
    assert unit.min() == pytest.approx(-1.0, abs=1e-6) and unit.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(from_unit(unit, meta["log_min"], meta["log_max"]), train, rtol=1e-6)


def test_same_seed_gives_bit_identical_sky_and_patches(tmp_path, params_file, tiny_patches):
    sky = tmp_path / "again.fits"
    out = tmp_path / "again"
    assert run_cli("sky", "--params", params_file, "--out", sky) == 0
    assert run_cli("patches", "--params", params_file, "--map", sky, "--out", out,
                   "--plots", tmp_path / "plots-again") == 0
    np.testing.assert_array_equal(hp.read_map(sky), hp.read_map(tmp_path / "sky.fits"))
    np.testing.assert_array_equal(np.load(out / "patches.npy"), np.load(tiny_patches / "patches.npy"))
    assert json.loads((out / "meta.json").read_text())["split"] == json.loads(
        (tiny_patches / "meta.json").read_text())["split"]
    other = synthetic_dust_map(64, seed=1)
    assert not np.array_equal(other, synthetic_dust_map(64, seed=2))


def test_synthetic_sky_is_dust_like():
    """Positive, skewed (non-Gaussian), brighter towards the plane, C_ℓ slope near -2.5."""
    nside = 128
    sky = synthetic_dust_map(nside, seed=3)
    _, lat = hp.pix2ang(nside, np.arange(sky.size), lonlat=True)
    high = np.abs(lat) > 60
    assert sky.min() > 0
    assert 0.01 < np.median(sky[high]) < 1.0
    assert np.median(sky[np.abs(lat) < 20]) > 2 * np.median(sky[high])
    centred = sky[high] - sky[high].mean()
    assert np.mean(centred**3) / np.std(centred) ** 3 > 0.5
    cl = hp.anafast(sky, lmax=300)
    ell = np.arange(cl.size)
    fit = (ell > 20) & (ell < 300)
    slope = np.polyfit(np.log(ell[fit]), np.log(cl[fit]), 1)[0]
    assert -2.9 < slope < -2.1


def _expect_error(capsys, *args) -> str:
    capsys.readouterr()
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # progress bars may precede it on stderr
    assert last.startswith("error: ") and err.count("error:") == 1 and "Traceback" not in err
    return last


def test_missing_and_corrupt_inputs_fail_cleanly(tmp_path, params_file, capsys):
    out = tmp_path / "out.fits"
    assert "not found" in _expect_error(capsys, "sky", "--params", params_file, "--source",
                                        tmp_path / "absent.fits", "--out", out)
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((10, 10))).writeto(image)
    assert "not a readable HEALPix map" in _expect_error(
        capsys, "sky", "--params", params_file, "--source", image, "--out", out)
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"not a fits file at all")
    _expect_error(capsys, "patches", "--params", params_file, "--map", garbage,
                  "--out", tmp_path / "p")
    assert not out.exists() and not (tmp_path / "p").exists()


def _write_map(path, values, unit="MJy/sr", coord="G"):
    hp.write_map(path, values, coord=coord, column_units=unit, overwrite=True, dtype=np.float64)


def test_bad_pixels_fail_cleanly(tmp_path, params_file, capsys):
    sky = synthetic_dust_map(128, seed=1)
    with_unseen = sky.copy()
    with_unseen[100] = hp.UNSEEN
    _write_map(tmp_path / "unseen.fits", with_unseen)
    assert "UNSEEN" in _expect_error(capsys, "sky", "--params", params_file, "--source",
                                     tmp_path / "unseen.fits", "--out", tmp_path / "o.fits")
    with_nan = sky.copy()
    with_nan[5000] = np.nan
    _write_map(tmp_path / "nan.fits", with_nan)
    assert "NaN" in _expect_error(capsys, "patches", "--params", params_file, "--map",
                                  tmp_path / "nan.fits", "--out", tmp_path / "p1")
    negative = sky - np.median(sky)  # an offset-subtracted map: negative at high latitude
    _write_map(tmp_path / "neg.fits", negative)
    assert "<= 0" in _expect_error(capsys, "patches", "--params", params_file, "--map",
                                   tmp_path / "neg.fits", "--out", tmp_path / "p2")
    assert not any((tmp_path / name).exists() for name in ("o.fits", "p1", "p2"))


def test_real_map_units_and_ordering_are_converted(tmp_path, params_file):
    """A NESTED map in K_CMB becomes the RING map in MJy/sr, and the SED takes it back to the same K_CMB.

    One monochromatic convention both ways (dB/dT at 353 GHz = 296.65 MJy/sr per K_CMB, checked here to
    0.01 MJy/sr against the value computed from the Planck law): the round trip is exact to float32.
    """
    assert float(kcmb_to_mjysr(353.0)) == pytest.approx(296.65, abs=0.01)
    sky = synthetic_dust_map(128, seed=1)
    sky_kcmb = sky / kcmb_to_mjysr(353.0)
    hp.write_map(tmp_path / "kcmb.fits", hp.reorder(sky_kcmb, r2n=True), nest=True, coord="G",
                 column_units="K_CMB", dtype=np.float64)
    assert run_cli("sky", "--params", params_file, "--source", tmp_path / "kcmb.fits",
                   "--out", tmp_path / "o.fits") == 0
    ingested_mjysr = hp.read_map(tmp_path / "o.fits")
    np.testing.assert_allclose(ingested_mjysr, sky, rtol=1e-6)
    back_ukcmb = dust_ukcmb(ingested_mjysr, 353.0, beta=1.53, temp_dust_k=19.6)
    np.testing.assert_allclose(back_ukcmb * 1e-6, sky_kcmb, rtol=1e-6)


def test_impossible_geometry_fails_cleanly(tmp_path, params_file, capsys):
    sky = tmp_path / "sky.fits"
    assert run_cli("sky", "--params", params_file, "--out", sky) == 0
    assert "too low" in _expect_error(capsys, "patches", "--params", params_file, "--map", sky,
                                      "--npix", 256, "--out", tmp_path / "p")
    crossing = yaml.safe_load(params_file.read_text())
    crossing["patches"]["lat_min_deg"] = 20.0
    bad_params = tmp_path / "crossing.yaml"
    bad_params.write_text(yaml.safe_dump(crossing))
    assert "excluded band" in _expect_error(capsys, "patches", "--params", bad_params, "--map", sky,
                                            "--out", tmp_path / "p")
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"patches": {"npixx": 32}}))
    assert "unknown parameter" in _expect_error(capsys, "patches", "--params", typo, "--map", sky)
    assert not (tmp_path / "p").exists()


def test_meta_records_the_lowest_sampled_latitude(tiny_patches):
    meta = json.loads((tiny_patches / "meta.json").read_text())
    assert 14.8 < meta["min_abs_lat_deg"] < 15.2
