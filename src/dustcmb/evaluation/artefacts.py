"""Artefact statistics of square maps: diagonal streaks (power anisotropy); pointers to grain and frames.

Both are per-map rows, so the evaluation bootstraps their set means like every other statistic
(docs/science.md#generator-statistics). The anisotropy wedges are permuted by the 8 rotations and
flips of a map, so a statistically isotropic set (the
real sky, or any set in random orientations) reads the same in the two axis wedges and in the two
diagonal ones.

* :func:`anisotropy`: in a few bands of the reported rings of :mod:`dustcmb.stats.power`, the power
  in four wedges, around the ``k_x`` axis, the ``k_y`` axis, the diagonal ``k_x = k_y`` and the
  anti-diagonal ``k_x = −k_y``, over the power an isotropic map with the same ring spectrum would put
  there. A streak along a direction puts power at right angles to it in ``k``, so streaks along
  rows raise the ``k_y`` wedge and streaks leaning one way the diagonal or the anti-diagonal one.
  The two axes and the two diagonals are kept apart: a generator whose maps all lean the same way
  would read as isotropic if they were lumped. The modes are the estimator's own prewhitened,
  windowed ones.
* the grain test's statistic, :func:`dustcmb.stats.power.beyond_band_power` (the power above the
  reported rings over that of the top anisotropy band), lives in :mod:`dustcmb.stats.power` because
  checkpoint selection uses it too. The sky is band-limited when patches are cut, so real maps have
  almost none there; a generator can put pixel-scale grain there that no spectrum, d_F or streak
  test sees, and that the eye sees at once.
* the frame test's statistic, :func:`dustcmb.stats.borders.border_contrast`, is shared with the
  power discriminator and lives in :mod:`dustcmb.stats.borders`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dustcmb.stats.power import anisotropy_bands, mode_group_power, reported_rings, wedge_halves, wedge_kinds

WEDGE_HALF_WIDTH_DEG = 15.0  # each wedge spans ±15° about its direction: a third of the modes each
WEDGES = ("k_x axis", "k_y axis", "diagonal k_x = k_y", "anti-diagonal k_x = −k_y")
GROUPS = len(WEDGES) + 1  # mode groups per ring: the wedges, then the modes between them


def band_ell_edges(npix: int, size_deg: float) -> np.ndarray:
    """Multipole range ``2π(first − ½)/L … 2π(last + ½)/L`` of each anisotropy band's modes, [n_bands, 2]."""
    return (anisotropy_bands(npix) + [-0.5, 0.5]) * 360.0 / size_deg


@dataclasses.dataclass(frozen=True)
class _WedgeLayout:
    """Mode groups ring × direction of an N × N grid, and the matrices that turn their powers into ratios.

    Attributes
    ----------
    labels : numpy.ndarray [N, N]
        Group ``GROUPS (ring − first ring) + wedge`` of each full-plane mode (wedge as in ``WEDGES``,
        ``GROUPS − 1`` between them), −1 outside the reported rings: the input of
        :func:`dustcmb.stats.power.mode_group_power`.
    ring_mean : numpy.ndarray [n_groups, n_rings]
        Averages the group powers of each ring (mode count / ring count): the ring spectrum.
    interpolation : numpy.ndarray [n_rings, n_radii]
        Weights of ``log C`` of the rings at each distinct mode radius ``|k|``: linear in ``log |k|``
        between the rings' mean radii, extrapolated beyond the first and last.
    group_mean : numpy.ndarray [n_radii, n_groups]
        Averages over each group's modes of a function of ``|k|``.
    wedge_sum : numpy.ndarray [n_groups, n_bands · len(WEDGES)]
        Mode counts of the groups in each (band, wedge) bin: sums group means over the bin's modes.
    """

    labels: np.ndarray
    ring_mean: np.ndarray
    interpolation: np.ndarray
    group_mean: np.ndarray
    wedge_sum: np.ndarray


@functools.lru_cache(maxsize=8)
def _wedge_layout(npix: int) -> _WedgeLayout:
    """The :class:`_WedgeLayout` of ``npix`` × ``npix`` maps."""
    k = np.abs(np.fft.fftfreq(npix, 1.0 / npix))
    k2 = (k[:, None] ** 2 + k[None, :] ** 2).astype(np.int64)
    ring, rings = np.rint(np.sqrt(k2)).astype(np.int64), reported_rings(npix)
    kind = wedge_kinds(npix, WEDGE_HALF_WIDTH_DEG)
    wedge = np.where(kind < 2, 2 * kind + wedge_halves(npix), GROUPS - 1)
    keep = (ring >= rings[0]) & (ring <= rings[-1])
    labels = np.where(keep, GROUPS * (ring - rings[0]) + wedge, -1)
    radii, at_radius = np.unique(k2[keep], return_inverse=True)
    members = np.zeros((GROUPS * rings.size, radii.size))  # modes of each group at each radius
    np.add.at(members, (labels[keep], at_radius), 1.0)
    counts = members.sum(1)
    group_ring, group_kind = np.divmod(np.arange(counts.size), GROUPS)
    ring_mean = (group_ring[:, None] == np.arange(rings.size)) * counts[:, None]
    ring_mean /= ring_mean.sum(0)
    group_mean = (members / counts[:, None]).T
    mean_radius = (np.sqrt(radii) @ group_mean) @ ring_mean
    n_wedges = len(WEDGES)
    bin_index = n_wedges * np.searchsorted(anisotropy_bands(npix)[:, 1], rings[group_ring]) + group_kind
    wedge_sum = (bin_index[:, None] == np.arange(n_wedges * anisotropy_bands(npix).shape[0])) * counts[:, None]
    return _WedgeLayout(labels, ring_mean, _log_interpolation(mean_radius, np.sqrt(radii)), group_mean,
                        wedge_sum * (group_kind < n_wedges)[:, None])


def _log_interpolation(nodes: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Weights [n_nodes, n_at] of linear interpolation in ``log x`` between increasing ``nodes``."""
    j = np.clip(np.searchsorted(nodes, at) - 1, 0, nodes.size - 2)
    t = (np.log(at) - np.log(nodes[j])) / (np.log(nodes[j + 1]) - np.log(nodes[j]))
    weights = np.zeros((nodes.size, at.size))
    weights[j, np.arange(at.size)] = 1.0 - t
    weights[j + 1, np.arange(at.size)] = t
    return weights


def anisotropy(maps: np.ndarray, size_deg: float) -> np.ndarray:
    """Power in the two axis and the two diagonal wedges of each band over the isotropic expectation.

    The isotropic expectation of a mode is the map's own ring spectrum interpolated (log–log) at the
    mode's ``|k|``: the wedges of a band hold modes of different radii on the pixel grid (the
    diagonal modes of ring 3 all sit at ``|k|`` = 2.83), which for a red spectrum would otherwise read
    as anisotropy.

    Parameters
    ----------
    maps : numpy.ndarray [..., N, N]
        Maps in any unit (the ratio has none).
    size_deg : float
        Patch side [deg].

    Returns
    -------
    numpy.ndarray [..., n_bands, len(WEDGES)]
        ``Σ_wedge C(k) / Σ_wedge C_iso(|k|)`` for each wedge of ``WEDGES`` in each band of
        :func:`anisotropy_bands`; 1 for an isotropic field.
    """
    layout = _wedge_layout(maps.shape[-1])
    groups = mode_group_power(maps, size_deg, layout.labels)
    log_ring = np.log(np.maximum(groups @ layout.ring_mean, np.finfo(float).tiny))
    isotropic = np.exp(log_ring @ layout.interpolation) @ layout.group_mean
    ratio = (groups @ layout.wedge_sum) / np.maximum(isotropic @ layout.wedge_sum, np.finfo(float).tiny)
    return ratio.reshape(*ratio.shape[:-1], -1, len(WEDGES))


def isotropic_average(rows: np.ndarray) -> np.ndarray:
    """:func:`anisotropy` rows [..., n_bands, 4] averaged over the 8 rotations and flips of each map.

    The symmetries only permute the wedges (a transpose swaps the two axes, exactly; a flip the two
    diagonals, to ~1 %, since an even grid has no centre pixel), so the average puts the mean of the
    two axis wedges in both and the mean of the two diagonal ones in both: what the set would read
    in random orientations.
    """
    axes = rows[..., 0:2].mean(axis=-1, keepdims=True)
    diagonals = rows[..., 2:4].mean(axis=-1, keepdims=True)
    return np.concatenate([axes, axes, diagonals, diagonals], axis=-1)
