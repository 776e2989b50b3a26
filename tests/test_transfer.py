"""`dustcmb transfer`: the ResUNet trained on GAN dust against the same one trained on real dust."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import N_GAN, NPIX, lognormal_dust, run_cli, separation_params, split_meta
from dustcmb.evaluation.gan_scores import symmetries
from dustcmb.evaluation.transfer import oracle_dust

N_TRAIN, N_HELD = 6, 4  # real patches: train region, and each of val and test


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A region-split patch set, 'GAN' samples, the pipeline's separation data and a trained ResUNet."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    patches = tmp_path / "patches"
    patches.mkdir()
    np.save(patches / "patches.npy", lognormal_dust(N_TRAIN + 2 * N_HELD, 0))
    meta = {"npix": NPIX, "size_deg": 20.0} | split_meta(N_TRAIN, N_HELD, N_HELD)
    (patches / "meta.json").write_text(json.dumps(meta))
    params = separation_params(tmp_path / "params.yaml", val_maps=2)
    data = yaml.safe_load(params.read_text())
    data["simulation"]["n_train"] = N_GAN
    params.write_text(yaml.safe_dump(data))
    np.save(tmp_path / "samples.npy", lognormal_dust(N_GAN, 1))
    return tmp_path, patches, params


def _pipeline(root, patches, params, samples):
    """`dustcmb separation data` + `train` on ``samples``, as `dvc repro` runs them."""
    data, model = root / "data", root / "model"
    assert run_cli("separation", "data", "--samples", samples, "--patches", patches, "--out", data,
                   "--params", params) == 0
    assert run_cli("separation", "train", "--data", data, "--out", model, "--checkpoints", root / "ckpt",
                   "--params", params) == 0
    return data, model


def test_oracle_dust_is_the_train_region_in_its_eight_orientations(setup):
    _, patches, _ = setup
    real = np.load(patches / "patches.npy")
    dust = oracle_dust(patches, 8 * N_TRAIN + 5, seed=3)
    train_views = symmetries(real[:N_TRAIN]).reshape(8 * N_TRAIN, NPIX, NPIX)
    matches = [np.flatnonzero((train_views == d).all(axis=(1, 2))) for d in dust]
    assert all(m.size >= 1 for m in matches), "every oracle map is an orientation of a training patch"
    first = [int(m[0]) for m in matches[:8 * N_TRAIN]]
    assert sorted(first) == list(range(8 * N_TRAIN)), "each orientation once before any repeats"
    held = real[N_TRAIN:]
    assert not any((symmetries(held).reshape(-1, NPIX, NPIX) == d).all(axis=(1, 2)).any() for d in dust)
    np.testing.assert_array_equal(dust, oracle_dust(patches, 8 * N_TRAIN + 5, seed=3))


def test_transfer_of_a_real_dust_training_set_is_exactly_one(setup, capsys):
    """The exactly solvable case: when the 'GAN' samples are the oracle's own dust file, the two
    trainings are identical on one machine, so every ratio is 1 to rounding."""
    root, patches, params = setup
    out, readme = root / "transfer", root / "README.md"
    readme.write_text("intro\n<!-- transfer:start -->\nold\n<!-- transfer:end -->\ntail\n")
    out.mkdir()
    from dustcmb.config import load_params

    np.save(out / "oracle_dust.npy", oracle_dust(patches, N_GAN, load_params(params).seed))
    data, model = _pipeline(root, patches, params, out / "oracle_dust.npy")
    assert run_cli("transfer", "--out", out, "--patches", patches, "--gan-data", data, "--gan-model", model,
                   "--readme", readme, "--params", params) == 0
    result = json.loads((out / "transfer.json").read_text())
    for key in ("transfer_rmse_ratio", "transfer_rmse_nomono_ratio", "transfer_residual_power_ratio",
                "transfer_spectrum_error_ratio"):
        assert result[key] == pytest.approx(1.0, abs=1e-9), key
    assert result["gan"]["n_test"] == N_HELD  # held_out_realisations: 1
    assert (out / "figures" / "transfer.png").is_file()
    text = readme.read_text()
    assert "old" not in text and "transfer_rmse_ratio` 1.00" in text and text.endswith("tail\n")


def test_transfer_scores_match_the_pipeline_evaluation_and_resume(setup):
    root, patches, params = setup
    data, model = _pipeline(root, patches, params, root / "samples.npy")
    metrics = root / "separation.json"
    assert run_cli("separation", "evaluate", "--data", data, "--model", model, "--metrics", metrics,
                   "--plots", root / "plots", "--params", params) == 0
    out = root / "transfer"
    args = ["transfer", "--out", out, "--patches", patches, "--gan-data", data, "--gan-model", model,
            "--params", params]
    assert run_cli(*args) == 0
    result = json.loads((out / "transfer.json").read_text())
    pipeline = json.loads(metrics.read_text())
    assert result["gan"]["resunet"]["map_rmse_uK"] == pytest.approx(pipeline["map_rmse_uK"], rel=1e-6)
    gan, oracle = result["gan"]["resunet"], result["oracle"]["resunet"]
    assert result["transfer_rmse_ratio"] == pytest.approx(gan["map_rmse_uK"] / oracle["map_rmse_uK"])
    assert result["gan"]["cilc"] == result["oracle"]["cilc"], "the same test items for both runs"

    weights = (out / "model" / "resunet.pt").stat().st_mtime_ns
    assert run_cli(*args) == 0
    assert (out / "model" / "resunet.pt").stat().st_mtime_ns == weights, "a finished oracle is not retrained"


def test_transfer_refuses_an_overlapping_split(setup, capsys):
    root, patches, params = setup
    meta = json.loads((patches / "meta.json").read_text()) | {"split_scheme": "paper"}
    (patches / "meta.json").write_text(json.dumps(meta))
    assert run_cli("transfer", "--out", root / "transfer", "--patches", patches, "--params", params) == 2
    assert "overlaps the training sky" in capsys.readouterr().err
    assert not (root / "transfer").exists()


def test_a_resume_from_other_inputs_fails_instead_of_reusing_a_stale_oracle(setup, capsys):
    """A changed split moves the oracle's early stopping and test items, so a resume must not reuse it."""
    root, patches, params = setup
    out = root / "transfer"
    (out / "model").mkdir(parents=True)
    args = ("transfer", "--out", out, "--patches", patches, "--gan-data", root / "data", "--gan-model",
            root / "model", "--params", params)
    assert run_cli(*args) != 0
    assert "without a record of its inputs" in capsys.readouterr().err
    (out / "model").rmdir()
    from dustcmb.config import load_params
    from dustcmb.evaluation.transfer import oracle_inputs

    (out / "inputs.json").write_text(json.dumps(oracle_inputs(load_params(params), patches)))
    meta = json.loads((patches / "meta.json").read_text())
    meta["split"][N_TRAIN], meta["split"][-1] = "test", "val"  # one val and one test patch change sides
    (patches / "meta.json").write_text(json.dumps(meta))
    assert run_cli(*args) != 0
    assert "made from other patches or parameters" in capsys.readouterr().err
