"""The whole pipeline through real `dvc repro`, on a tiny profile, in a temporary git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, tiny_params

TINY = {
    "gan": {"gen_channels": 16, "disc_width": 4, "power_width": 4, "steps": 6, "eval_every": 3,
            "refine_steps": 2, "refine_eval_every": 1, "log_every": 2, "sample_batch": 32},
    "gan_eval": {"n_bootstrap": 20, "latent_paths": 2, "latent_points": 4, "slice_ells": [50, 100, 200]},
    "simulation": {"n_train": 48, "n_spectra": 2, "norm_maps": 8},
    "separation": {"base_channels": 4, "max_epochs": 2, "steps_per_epoch": 2, "batch_size": 8,
                   "val_maps": 16, "mc_passes": 8, "mc_batch": 16},
}


def _run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _make_repo(root: Path) -> dict:
    """A git + DVC repository holding the project's code, dvc.yaml and a tiny params.yaml."""
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = tiny_params()
    for section, values in TINY.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "README.md").write_text("raw maps go here\n")
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                        "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], root, env)
    _run(["git", "config", "user.email", "ci@example.org"], root, env)
    _run(["git", "config", "user.name", "ci"], root, env)
    _run(dvc + ["init", "-q"], root, env)
    _run(dvc + ["add", "-q", "data/raw"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "tiny pipeline"], root, env)
    return env


def test_tiny_pipeline_through_dvc_repro(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    env = _make_repo(root)
    dvc = [sys.executable, "-m", "dvc"]
    _run(dvc + ["repro"], root, env)

    gan = json.loads((root / "metrics" / "gan.json").read_text())
    separation = json.loads((root / "metrics" / "separation.json").read_text())
    for key in ("frechet_distance", "histogram_intersection", "baseline_gaussian", "baseline_lognormal"):
        assert key in gan
    for key in ("coverage_68", "coverage_95", "ell_max_1pct", "map_rmse_uK", "ilc"):
        assert key in separation
    assert list((root / "plots" / "gan").glob("*.png")) and list((root / "plots" / "separation").glob("*.png"))
    assert (root / "mlruns" / "mlflow.db").is_file()

    readme = root / "README.md"
    readme.write_text("# title\n<!-- results:start -->\nSTALE-RESULTS\n<!-- results:end -->\nrest\n")
    _run([sys.executable, "-m", "dustcmb", "report", "--readme", str(readme)], root, env)
    text = readme.read_text()
    assert "STALE-RESULTS" not in text and "| Fréchet distance" in text and text.endswith("rest\n")
    assert (root / "docs" / "figures" / "separation_spectra.png").is_file()
    assert (root / "docs" / "figures" / "separation_coverage.png").is_file()
    cases = root / "metrics" / "cases"
    cases.mkdir()
    for name in ("planck_varying", "noiseless_fixed"):
        (cases / f"{name}.json").write_text(json.dumps(separation))
    readme.write_text(text + "<!-- cases:start -->\nSTALE-CASES\n<!-- cases:end -->\n")
    _run([sys.executable, "-m", "dustcmb", "report", "--readme", str(readme), "--cases", str(cases)], root, env)
    text = readme.read_text()
    assert "STALE-CASES" not in text and "| Fréchet distance" in text and text.count("| planck_varying |") == 3
    assert (root / "docs" / "figures" / "separation_cases.png").is_file()
    tuned = root / "metrics" / "tuned.json"
    tuned.write_text(json.dumps(separation | {"dropout": [0.01, 0.02, 0.03, 0.04]}))
    readme.write_text(text + "<!-- tuning:start -->\nSTALE-TUNING\n<!-- tuning:end -->\n")
    _run([sys.executable, "-m", "dustcmb", "report", "--readme", str(readme), "--tuned", str(tuned)], root, env)
    text = readme.read_text()
    assert "STALE-TUNING" not in text and "| 0.01, 0.02, 0.03, 0.04 |" in text
    assert text.count(f"| {separation['ell'][0]:.0f} | ") == 2  # one per-ℓ row in each level's table

    shown = _run(dvc + ["metrics", "show"], root, env)
    assert "metrics/gan.json" in shown and "metrics/separation.json" in shown
    assert "up to date" in _run(dvc + ["repro"], root, env)

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["separation"]["mc_passes"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    status = _run(dvc + ["status"], root, env)
    stale = {line.rstrip(":") for line in status.splitlines() if line and not line.startswith((" ", "\t"))}
    assert stale == {"train_resunet", "evaluate_resunet"}
