"""Seeds and random streams: every random draw of the pipeline starts here.

The master ``seed`` of ``params.yaml`` is combined with one fixed word per purpose (a *stream*), so
each consumer draws from an independent generator and adding a draw in one stage never shifts the
numbers of another. The stream words are part of the outputs' identity: changing one changes the
results it feeds (docs/science.md#random-streams).
"""

from __future__ import annotations

import enum
import random

import numpy as np
import torch


class Stream(enum.IntEnum):
    """The seed word of each random stream, next to the master seed."""

    GAN_BATCHES = 0  # GAN training: real-batch order, augmentation, latents, label swaps
    GAN_EVAL_LATENTS = 1  # fixed latents of the d_F evaluations during GAN training
    GAN_SAMPLES = 2  # `dustcmb gan sample`
    RESUNET_BATCHES = 3  # ResUNet training: epoch order of the training maps
    TRANSFER_ORACLE = 4  # transfer test: order and orientation of the oracle's real training maps
    GAN_SAMPLE_SYMMETRY = 5  # `dustcmb gan sample`: orientation of each map (gan.symmetrise_samples)
    GAN_EVAL_GENERATE = 10  # evaluation: the generated set
    GAN_EVAL_BASELINES = 11  # evaluation: Gaussian and log-normal baseline fields
    GAN_EVAL_LATENT_PATHS = 12  # evaluation: latent-space paths
    GAN_EVAL_HALVES = 13  # evaluation: the two real halves of the floor
    GAN_EVAL_SYMMETRY = 14  # evaluation: orientation of each generated map (gan.symmetrise_samples)
    GAN_EVAL_HELD_OUT = 15  # evaluation: training patches on the held-out rings, and the maps drawn there
    GAN_EVAL_LATITUDE = 16  # evaluation: latents of the maps drawn on each latitude ring (latitude_levels)
    GAN_EVAL_BOOTSTRAP = 20  # evaluation: bootstrap draws, + index of the set
    GAN_EVAL_INTERSECTION = 30  # evaluation: power-slice intersections, + index of the set
    VAL_TEST_SPLIT = 517  # shuffle of the real patches into validation and test
    CMB_BANK = 2015  # cosmological-parameter draws of the camb spectrum bank


def derived_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for random stream ``stream`` of master seed ``seed``."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, *words: int) -> np.random.Generator:
    """A numpy generator seeded by ``[seed, *words]`` (e.g. a stream and an epoch)."""
    return np.random.default_rng([seed, *map(int, words)])


def torch_rng(seed: int, stream: int) -> torch.Generator:
    """A CPU torch generator for random stream ``stream`` of master seed ``seed``."""
    return torch.Generator().manual_seed(derived_seed(seed, stream))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch's global generators (weight initialisation draws from these)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- third-party code may draw from the legacy global
    torch.manual_seed(seed)
