"""Border strips of square maps against their interior: the frame statistic.

A generator's convolutions pad the map's edges and its discriminators see the edges differently from
the interior (the spectrum's window tapers them away), so a generated map can carry a frame, an
outer strip rougher, smoother, brighter or fainter than the rest, that no spectrum shows. In strips
at depths 0, 1, 2–3 and 4–7 px from the nearest edge, :func:`border_contrast` gives the rms
gradient over that of the interior (≥ 8 px in) and the mean level minus the interior's. It works on
the pixels, is invariant under the 8 rotations and flips of a map, and is differentiable: the
evaluation's frame test and the power discriminator's border features are this one function
(docs/science.md#generator-statistics).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

BORDER_DEPTHS_PX = (1, 2, 4, 8)  # outer limit of each strip [px]; the interior lies beyond the last
BORDER_CHUNK_PIXELS = 2**22  # map pixels per chunk of a numpy call (64 maps of 256², ~32 MB per copy)


@functools.lru_cache(maxsize=8)
def _strip_averages(size: int) -> np.ndarray:
    """[size², n_strips + 1]: averages over each strip of a size × size grid, the interior last.

    An element's strip is set by its distance to the nearest edge (0 for the outer row).
    """
    edge = np.arange(size)
    depth = np.minimum.outer(np.minimum(edge, edge[::-1]), np.minimum(edge, edge[::-1]))
    strip = np.searchsorted(BORDER_DEPTHS_PX, depth, side="right").ravel()  # interior: len(BORDER_DEPTHS_PX)
    members = np.eye(len(BORDER_DEPTHS_PX) + 1)[strip]
    return members / members.sum(0)


def _contrast(m: torch.Tensor) -> torch.Tensor:
    """:func:`border_contrast` of maps ``[B, N, N]`` (torch, differentiable), ``[B, 2, n_strips]``."""
    npix = m.shape[-1]
    gx = 0.5 * (m[:, :-1, 1:] - m[:, :-1, :-1] + m[:, 1:, 1:] - m[:, 1:, :-1])
    gy = 0.5 * (m[:, 1:, :-1] - m[:, :-1, :-1] + m[:, 1:, 1:] - m[:, :-1, 1:])
    cells = torch.as_tensor(_strip_averages(npix - 1), dtype=m.dtype, device=m.device)
    pixels = torch.as_tensor(_strip_averages(npix), dtype=m.dtype, device=m.device)
    grad = (gx**2 + gy**2).reshape(len(m), -1) @ cells
    level = m.reshape(len(m), -1) @ pixels
    return torch.stack([torch.sqrt(grad[:, :-1] / grad[:, -1:]), level[:, :-1] - level[:, -1:]], dim=1)


def border_contrast(maps):
    """Gradient rms and mean level of border strips against the interior, in pixel space.

    The gradient of a 2 × 2 cell is the mean of its two differences along each axis, so every cell
    lies inside the map; cells and pixels are assigned to strips by their distance to the nearest
    edge (a cell by its outer pixel row).

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor [..., N, N]
        Maps (N > 2 · the deepest strip). A tensor keeps its dtype and autograd graph; an array is
        computed in float64, in chunks of :data:`BORDER_CHUNK_PIXELS`.

    Returns
    -------
    numpy.ndarray or torch.Tensor [..., 2, n_strips]
        Row 0: rms gradient in the strip / rms gradient of the interior [1]; row 1: mean of the
        strip − mean of the interior [map unit]. 1 and 0 for a stationary field.
    """
    shape = tuple(maps.shape)
    npix = shape[-1]
    if len(shape) < 2 or shape[-2] != npix or npix <= 2 * BORDER_DEPTHS_PX[-1] + 1:
        raise ValueError(f"border_contrast needs square maps wider than {2 * BORDER_DEPTHS_PX[-1] + 1} px "
                         f"(an interior beyond the strips), got shape {shape}")
    out_shape = (*shape[:-2], 2, len(BORDER_DEPTHS_PX))
    if isinstance(maps, torch.Tensor):
        return _contrast(maps.reshape(-1, npix, npix)).reshape(out_shape)
    flat = np.reshape(maps, (-1, npix, npix))
    chunk = max(1, BORDER_CHUNK_PIXELS // npix**2)  # float64 copies of a chunk only, not of the set
    out = np.empty((len(flat), 2, len(BORDER_DEPTHS_PX)))
    for start in range(0, len(flat), chunk):
        m = torch.from_numpy(np.asarray(flat[start : start + chunk], dtype=np.float64))
        out[start : start + chunk] = _contrast(m).numpy()
    return out.reshape(out_shape)
