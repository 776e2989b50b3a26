"""GAN evaluation: the `gan evaluate` stage end to end on a tiny patch set, baselines, memorisation."""

import dataclasses
import json

import matplotlib.image
import mlflow
import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli, split_meta
from dustcmb.config import load_params
from dustcmb.evaluation.baselines import gaussian_baseline, lognormal_baseline
from dustcmb.evaluation.gan import EXPERIMENT, build_sets
from dustcmb.evaluation.gan_scores import nearest_neighbour_distances
from dustcmb.gan.condition import slab_log_column
from dustcmb.gan.models import Generator, NoiseInjection
from dustcmb.patches.normalise import log_range, to_unit
from dustcmb.patches.store import write_patches
from dustcmb.stats.power import power_spectrum
from dustcmb.tracking import configure
from fields import gaussian_fields

IN_BAND = ("minkowski_v0_in_band", "minkowski_v1_in_band", "minkowski_v2_in_band", "anisotropy_in_band",
           "border_in_band")
REQUIRED = ("frechet_distance", "histogram_intersection", "histogram_intersection_std", "nearest_neighbour_ratio",
            "grain_power_ratio", *IN_BAND)
FIGURES = ("samples", "pixel_pdf", "spectra", "power_slices", "minkowski", "anisotropy", "border", "memorisation")


def save_generator(out, meta: dict, latent_dim: int = 8, channels: int = 16, noise: bool = False,
                   conditional: bool = False) -> None:
    """An untrained generator in the format `dustcmb gan train` writes (state dict + config.json); with
    ``noise``, noise injection at unit strength, so its maps depend on the global torch generator; with
    ``conditional``, conditioned on the latitude, the patch grid's as its condition values."""
    out.mkdir(parents=True)
    torch.manual_seed(0)
    generator = Generator(int(meta["npix"]), latent_dim, channels, noise=noise, conditional=conditional)
    for layer in generator.modules():
        if isinstance(layer, NoiseInjection):
            torch.nn.init.ones_(layer.strength)
    torch.save(generator.state_dict(), out / "generator.pt")
    config = {key: meta[key] for key in ("npix", "size_deg", "log_min", "log_max")}
    config |= {"latent_dim": latent_dim, "gen_channels": channels, "seed": 0, "best_d_F": 1.0, "best_step": 0,
               "initial_d_F": 1.0, "steps": 0, "n_real": 1, "train_seconds": 0.0, "mlflow_run_id": None,
               "gen_noise": noise, "condition_latitude": conditional,
               "condition_values": slab_log_column(meta["lat_deg"]).tolist() if conditional else None}
    (out / "config.json").write_text(json.dumps(config))


def test_the_generated_set_is_the_same_in_every_run(tmp_path, params_file, tiny_patches):
    """A generator with noise maps draws them from the global torch generator: whatever ran before
    in the process, the evaluation's generated set is the same, bit for bit."""
    meta = json.loads((tiny_patches / "meta.json").read_text())
    save_generator(tmp_path / "model", meta, noise=True)
    params = load_params(params_file)
    params = dataclasses.replace(params, gan_eval=dataclasses.replace(params.gan_eval, slice_ells=(40.0, 100.0, 200.0)))
    sets = []
    for draws in (0, 5):
        torch.randn(draws)  # a different global-generator state before each evaluation
        sets.append(build_sets(params, tiny_patches, tmp_path / "model", "cpu")[0][1].unit)
    np.testing.assert_array_equal(*sets)
    assert sets[0].std() > 0


def test_held_out_sets_are_drawn_on_the_held_out_latitude_rings(tmp_path, params_file, tiny_patches):
    """Against the 194 held-out patches every set is judged at their latitudes: the training patches
    and both baselines (made map by map from them) are the same rows, two per held-out patch from its
    own |b| ring; a conditional generator draws its own 388 maps at those latitudes, and they are not
    its training-region set (another latitude mixture and other latents)."""
    meta = json.loads((tiny_patches / "meta.json").read_text())
    save_generator(tmp_path / "model", meta, conditional=True)
    params = load_params(params_file)
    params = dataclasses.replace(params, gan_eval=dataclasses.replace(params.gan_eval, slice_ells=(40.0, 100.0, 200.0)))
    sets, context = build_sets(params, tiny_patches, tmp_path / "model", "cpu")
    judged, lat = context["held_out_sets"], np.abs(np.asarray(meta["lat_deg"]))
    train = np.flatnonzero(np.asarray(meta["split"]) == "train")
    held = np.flatnonzero(np.isin(meta["split"], ["val", "test"]))
    assert [s.name for s in judged] == [s.name for s in sets] and all(len(s.unit) == 388 for s in judged)
    rows = [int(np.flatnonzero((sets[0].unit == m).all(axis=(1, 2)))[0]) for m in judged[0].unit]
    np.testing.assert_array_equal(lat[train][rows], np.repeat(lat[held], 2))
    for baseline in (2, 3):
        np.testing.assert_array_equal(judged[baseline].unit, sets[baseline].unit[rows])
    assert not np.allclose(judged[1].unit[:len(sets[1].unit)], sets[1].unit[:388])


def lognormal_maps(n: int, npix: int, seed: int) -> np.ndarray:
    """Dust-like maps in MJy/sr: exp of a Gaussian field with C_ℓ ∝ ℓ^-2.5 (docs/science.md#synthetic-sky)."""
    g = gaussian_fields(lambda ell: ell**-2.5, n, npix, 20.0, seed)
    return (0.1 * np.exp(0.6 * g / g.std())).astype(np.float32)


def test_evaluate_stage(tmp_path, params_file, tiny_patches, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    params = yaml.safe_load(params_file.read_text())
    params["gan_eval"] |= {"n_bootstrap": 50, "slice_ells": [40.0, 100.0, 200.0], "latent_paths": 2,
                           "latent_points": 4}
    params_file.write_text(yaml.safe_dump(params))
    meta = json.loads((tiny_patches / "meta.json").read_text())
    save_generator(tmp_path / "model", meta)
    metrics_path, plots = tmp_path / "metrics/gan.json", tmp_path / "plots/gan"
    assert run_cli("gan", "evaluate", "--params", params_file, "--patches", tiny_patches, "--model",
                   tmp_path / "model", "--metrics", metrics_path, "--plots", plots, "--device", "cpu") == 0

    metrics = json.loads(metrics_path.read_text())
    for row in (metrics, metrics["baseline_gaussian"], metrics["baseline_lognormal"]):
        assert set(REQUIRED) <= set(row)
        assert row["frechet_distance"] >= 0 and row["nearest_neighbour_ratio"] > 0 and row["grain_power_ratio"] > 0
        assert 0 <= row["histogram_intersection"] <= 1 and row["histogram_intersection_std"] >= 0
        assert all(0 <= row[key] <= 1 for key in IN_BAND)
        assert len(row["power_slices"]) == 3
    # The log-normal baseline has the real pooled pixel values by construction, so only the bootstrap
    # moves it: the real set is resampled by sky region (28 regions here), which costs ~10 % of overlap.
    assert metrics["baseline_lognormal"]["histogram_intersection"] > 0.85
    # The real set against itself, both sides resampled by region, loses a little more (measured 0.883
    # against the log-normal's 0.913, whose maps are resampled one by one): the intersection's ceiling.
    real_self = metrics["histogram_intersection_real"]
    assert 0.8 < real_self < metrics["baseline_lognormal"]["histogram_intersection"] + 0.02
    assert metrics["latent_step_ratio"] > 0 and metrics["sky_source"] == "synthetic"
    assert metrics["n_real"] == metrics["n_generated"] == 474 and metrics["held_out"]["n_real"] == 194
    assert set(IN_BAND) <= set(metrics["in_band_calibration"]) and metrics["frechet_floor"] > 0
    assert all(0 <= value <= 1 for value in metrics["in_band_calibration"].values())
    assert set(REQUIRED) <= set(metrics["held_out"]["gan"])
    held = metrics["held_out"]
    assert held["latitude_matched"] and held["n_compared"] == 388 and not metrics["condition_latitude"]
    levels = metrics["latitude_levels"]  # 25°, 30°, …, 90°: every ring of the grid has training patches
    assert levels["ring_lat_deg"] == list(np.arange(25.0, 91.0, 5.0)) and levels["max_abs_error"] > 0
    assert np.all(np.diff(levels["real_mean_u"]) < 0)  # the synthetic slab: fainter towards the pole

    for name in FIGURES:
        path = plots / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
        assert matplotlib.image.imread(path)[..., :3].std() > 0.05, f"{name}.png looks blank"

    configure(tmp_path)
    (run,) = mlflow.search_runs([mlflow.get_experiment_by_name(EXPERIMENT).experiment_id], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["histogram_intersection"] == pytest.approx(metrics["histogram_intersection"])
    assert run.data.metrics["baseline_gaussian.frechet_distance"] == pytest.approx(
        metrics["baseline_gaussian"]["frechet_distance"])


def test_mismatched_generator_fails_early(tmp_path, params_file):
    maps = lognormal_maps(4, 32, seed=1)
    log_min, log_max = log_range(maps)
    meta = {"lon_deg": [0.0] * 4, "lat_deg": [60.0] * 4, "size_deg": 20.0, "npix": 32, "pixel_arcmin": 37.5,
            "log_min": log_min, "log_max": log_max} | split_meta(2, 1, 1)
    write_patches(tmp_path / "patches", maps, meta)
    save_generator(tmp_path / "model", meta | {"npix": 16})
    code = run_cli("gan", "evaluate", "--params", params_file, "--patches", tmp_path / "patches", "--model",
                   tmp_path / "model", "--metrics", tmp_path / "gan.json", "--plots", tmp_path / "plots")
    assert code == 2
    assert not (tmp_path / "gan.json").exists() and not (tmp_path / "plots").exists()


def test_baselines_match_what_they_claim_in_the_scored_domain():
    """Per-map spectra, means and variances follow the real maps; the log-normal's pooled PDF is exact.

    The real maps' contrast varies by 2.5× across the set, like patches across latitude. In the unit
    domain the baselines' mean log10 C_ℓ sits on the real one (each bin within 0.08 dex: the mean of
    96 maps with 8–60 modes per ring, plus a second draw of each map's sampling noise), and their
    per-map spread of log10 C_ℓ is the real one to 40 %. A single mean spectrum for all maps would
    give a spread near 0.1 dex against the real ~0.35 dex here.
    """
    contrast = np.linspace(0.4, 1.0, 96)[:, None, None]
    real = (0.05 * (lognormal_maps(96, 32, seed=2) / 0.05) ** contrast).astype(np.float32)
    log_min, log_max = log_range(real)
    real_unit = to_unit(real, log_min, log_max)
    rng = np.random.default_rng(3)
    _, cl_real = power_spectrum(real_unit, 20.0)
    for build in (gaussian_baseline, lognormal_baseline):
        unit, mjysr = build(real_unit, 20.0, 2, log_min, log_max, rng)
        _, cl = power_spectrum(unit, 20.0)
        assert np.abs(np.log10(cl).mean(0) - np.log10(cl_real).mean(0)).max() < 0.08, build.__name__
        spread, real_spread = np.log10(cl).std(0)[5], np.log10(cl_real).std(0)[5]
        assert abs(spread / real_spread - 1) < 0.4, (build.__name__, spread, real_spread)
        assert (mjysr > 0).all()
    gauss, _ = gaussian_baseline(real_unit, 20.0, 2, log_min, log_max, rng)
    np.testing.assert_allclose(gauss.mean(axis=(1, 2)), real_unit.mean(axis=(1, 2)), atol=1e-5)
    # variance: the super-patch scales are rescaled per map, ignoring their small covariance with the rest
    ratio = gauss.std(axis=(1, 2)) / real_unit.std(axis=(1, 2))
    assert abs(np.median(ratio) - 1) < 0.03 and np.abs(ratio - 1).max() < 0.2
    unit, _ = lognormal_baseline(real_unit, 20.0, 2, log_min, log_max, rng)
    np.testing.assert_array_equal(np.sort(unit, axis=None), np.sort(real_unit, axis=None))


def test_nearest_neighbour_detects_rotated_copies():
    maps = lognormal_maps(80, 32, seed=4)
    real, fresh = to_unit(maps[:40], *log_range(maps)), to_unit(maps[40:], *log_range(maps))
    copies = np.rot90(real, 1, axes=(1, 2)).copy()
    real_nn = nearest_neighbour_distances(real, real, "cpu", leave_one_out=True)
    assert np.median(nearest_neighbour_distances(copies, real, "cpu")) / np.median(real_nn) < 1e-3
    assert 0.7 < np.median(nearest_neighbour_distances(fresh, real, "cpu")) / np.median(real_nn) < 1.5
