"""The 8 symmetries of the square (k·90° rotations, with or without a mirror flip) drawn per map.

The GAN is trained against real patches in random orientations, so the distribution it learns to
match is invariant under these symmetries; one draw per map serves both the real batches of training
(:mod:`dustcmb.gan.step`) and, with ``gan.symmetrise_samples``, the generated maps
(:mod:`dustcmb.gan.sample`).
"""

from __future__ import annotations

import torch


def random_symmetry(maps: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Each map of ``maps`` [B, ..., N, N] turned by a random k·90° and mirrored with probability 1/2."""
    quarter = torch.randint(0, 4, (len(maps),), generator=rng).to(maps.device)
    flip = (torch.rand(len(maps), generator=rng) < 0.5).to(maps.device)
    out = torch.empty_like(maps)
    for k in range(4):
        out[quarter == k] = torch.rot90(maps[quarter == k], k, dims=(-2, -1))
    return torch.where(flip.view(-1, *[1] * (maps.dim() - 1)), out.flip(-1), out)
