"""The GAN recipe ablation command: variants × seeds, resume without retraining, mean ± std, README table."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli
from dustcmb.config import load_params
from dustcmb.errors import InputError
from dustcmb.evaluation.ablation import FIGURES, REFERENCES, VARIANTS, run_ablation, summarise, variant_params

TINY_GAN = dict(latent_dim=8, gen_channels=16, disc_width=4, power_width=4, batch_size=8, steps=12, eval_every=4,
                refine_steps=2, refine_eval_every=1, log_every=2, sample_batch=64)
TINY_EVAL = dict(n_bootstrap=20, slice_ells=[40.0, 100.0, 200.0], latent_paths=2, latent_points=3)


@pytest.fixture
def one_thread():
    """Tiny networks run faster on one thread; the setting is restored, because later tests compare
    in-process arithmetic with subprocesses that use torch's default thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_variants_override_only_the_recipe_and_seed(params_file):
    params = load_params(params_file)
    paper = variant_params(params, "paper", 2)
    assert paper.seed == params.seed + 2 and paper.gan.disc_lr == paper.gan.lr and paper.gan.ema_decay == 0
    every = variant_params(params, "all", 0)
    for key, value in VARIANTS["all"].items():
        assert getattr(every.gan, key) == value
    assert every.patches == params.patches and every.separation == params.separation
    # one addition alone means every other one off, whatever the parameter file turns on by default
    loaded = dataclasses.replace(params, gan=dataclasses.replace(params.gan, gen_noise=True, r1_gamma=1.0))
    alone = variant_params(loaded, "ema", 0).gan
    assert alone.ema_decay == VARIANTS["ema"]["ema_decay"] and not alone.gen_noise and alone.r1_gamma == 0


def test_a_first_seed_past_the_seed_count_is_refused_before_any_training(tmp_path, params_file):
    # `--seeds 1 --first-seed 2` would run nothing and then report an empty folder
    with pytest.raises(InputError, match="--seeds 3 --first-seed 2"):
        run_ablation(load_params(params_file), tmp_path / "patches", tmp_path / "runs", ["paper"], 1, first_seed=2)
    assert not (tmp_path / "runs").exists()


def test_ablation_runs_resumes_and_summarises(tmp_path, params_file, tiny_patches, monkeypatch, one_thread):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    params = yaml.safe_load(params_file.read_text())
    params["gan"] |= TINY_GAN
    params["gan_eval"] |= TINY_EVAL
    params_file.write_text(yaml.safe_dump(params))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ablation:start -->\nold\n<!-- ablation:end -->\nend\n")
    out = tmp_path / "ablation"
    args = ("ablate", "--params", params_file, "--patches", tiny_patches, "--out", out, "--variants", "paper,ema",
            "--device", "cpu", "--readme", readme)
    assert run_cli(*args, "--seeds", "2") == 0

    generators = sorted(out.glob("*/seed*/model/generator.pt"))
    assert len(generators) == 4 and all((g.parents[1] / "plots" / "samples.png").is_file() for g in generators)
    written = {g: g.stat().st_mtime_ns for g in generators}
    summary = json.loads((out / "summary.json").read_text())
    runs = [json.loads((out / "ema" / f"seed{k}" / "gan.json").read_text()) for k in range(2)]
    d_f = [r["held_out"]["gan"]["frechet_distance"] for r in runs]
    row = summary["held_out"]["variants"]["ema"]["frechet_distance"]
    assert row["mean"] == np.mean(d_f) and np.isclose(row["std"], np.std(d_f, ddof=1))
    assert d_f[0] != d_f[1]  # another seed is another trajectory
    assert summary["held_out"]["references"]["real"]["n_seeds"] == 4
    assert summary["train"]["variants"]["ema"]["frechet_distance"]["mean"] == np.mean([r["frechet_distance"]
                                                                                       for r in runs])

    # a second call with one more seed trains only the new runs and keeps the finished ones
    assert run_cli(*args, "--seeds", "3") == 0
    assert all(g.stat().st_mtime_ns == t for g, t in written.items())
    assert json.loads((out / "summary.json").read_text())["train"]["variants"]["paper"]["n_seeds"] == 3
    text = readme.read_text()
    assert "old" not in text and "| ema | 3 |" in text and text.endswith("<!-- ablation:end -->\nend\n")

    bad = ("ablate", "--params", params_file, "--patches", tiny_patches, "--out", tmp_path / "bad", "--variants",
           "paper,nonsense", "--seeds", "1", "--device", "cpu")
    assert run_cli(*bad) == 2 and not (tmp_path / "bad").exists()  # a clear error before any training


def _fake_run(value: float, missing: str | None = None) -> dict:
    """A gan.json with every figure at ``value``, less the figure ``missing`` in every reference set."""
    scores = {key: value for key in FIGURES}
    ref = {key: v for key, v in scores.items() if key != missing}
    sets = {name: dict(ref) for name in REFERENCES} | {"gan": dict(scores)}
    return scores | {name: dict(ref) for name in REFERENCES} | {"held_out": sets, "frechet_floor": value,
                                                                "best_step": 1}


def test_reference_rows_pool_only_runs_of_the_current_evaluation():
    """Reference rows pool runs across variants, but not runs scored before a figure existed: their
    baselines were built another way, and mixing them would blur the row."""
    old = _fake_run(10.0, missing="grain_power_ratio")
    summary = summarise({"paper": [old, _fake_run(1.0)], "ema": [_fake_run(3.0)]})
    ref = summary["held_out"]["references"]["baseline_gaussian"]
    assert ref["n_seeds"] == 2 and ref["frechet_distance"]["mean"] == 2.0
    assert summary["train"]["variants"]["paper"]["frechet_distance"]["mean"] == 5.5  # variant rows keep all
    only_old = summarise({"paper": [old]})["held_out"]["references"]["real"]
    assert only_old["n_seeds"] == 1 and np.isnan(only_old["grain_power_ratio"]["mean"])
