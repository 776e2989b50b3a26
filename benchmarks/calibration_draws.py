"""Calibrated coverage of the pipeline's ResUNet with more CMB + noise draws per held-out dust map.

Items are draw-major (item ``i`` is draw ``i // n_maps`` of map ``i % n_maps``), so the first
``separation.val_maps`` validation items, the ones early stopping scored, stay the same and the
trained model is reused as it is: only the calibration set (every later validation item) and the
test set grow. Prints the calibration error and per-bin range of each width on all test items,
and of the reported width on the pipeline's own test items with the larger calibration set.
Compare with ``benchmarks/conformal_floor.py`` for the same counts. Needs ``dvc repro`` first.

    python benchmarks/calibration_draws.py --draws 12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dustcmb.config import load_params
from dustcmb.evaluation.separation import calibration_metrics, collect, dust_channel, fit_calibration, load_checked
from dustcmb.simulation.dataset import SeparationDataset
from dustcmb.simulation.store import open_datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=12, help="CMB + noise draws per val/test dust map")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    data_dir, channel = Path("data/separation"), dust_channel(params)
    sets = open_datasets(data_dir, params)
    model, _ = load_checked(Path("models/separation"), data_dir, sets["test"], params, "cpu")
    spectra = {}
    for name in ("val", "test"):
        d = sets[name]
        more = SeparationDataset(d.dust, d.source_index, d.split, d.simulator, d.normalisation, args.draws)
        torch.manual_seed(params.seed)  # as in evaluate_resunet: the first items get the pipeline's masks
        spectra[name] = collect(model, more, params, None, params.separation.val_maps if name == "val" else 0)
    fitted = fit_calibration(spectra["val"], channel)
    test, n_own = spectra["test"], len(sets["test"])
    print(f"{len(spectra['val']['cl_true'])} calibration items, {len(test['cl_true'])} test items")
    for section, scores in calibration_metrics(test, fitted, channel).items():
        if section != "centred":
            print(f"  {section}: error 68 % {scores['calibration_error_68']:.4f}, 95 % "
                  f"{scores['calibration_error_95']:.4f}; per bin {np.min(scores['coverage_68_per_ell']):.2f}-"
                  f"{np.max(scores['coverage_68_per_ell']):.2f} / {np.min(scores['coverage_95_per_ell']):.2f}-"
                  f"{np.max(scores['coverage_95_per_ell']):.2f}")
    own = {k: v[:n_own] if isinstance(v, np.ndarray) and len(v) == len(test["cl_true"]) else v for k, v in test.items()}
    scores = calibration_metrics(own, fitted, channel)["calibrated"]
    print(f"  calibrated, the pipeline's {n_own} test items: error 68 % {scores['calibration_error_68']:.4f}, "
          f"95 % {scores['calibration_error_95']:.4f}")


if __name__ == "__main__":
    main()
