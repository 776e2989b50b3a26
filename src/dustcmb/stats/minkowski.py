"""Minkowski functionals of the excursion sets ``{u > ν}`` of 2-D maps (docs/science.md#generator-statistics).

Returned as densities per unit area, with the pixel side as the unit of length:
``V0`` = area fraction, ``V1`` = boundary length / (4 A) [1/px], ``V2`` = Euler characteristic / A
[1/px²]. For a Gaussian field they follow Tomita's formulas (see ``tests/test_stats_minkowski.py``).

Estimator
---------
Each map is read as a continuous surface sampled at the pixel centres: every 2x2 cell of centres is
split into four triangles that share the cell centre, where the surface takes the mean of the four
corners (the bilinear value), and the surface is linear on each triangle. The functionals are those of
this piecewise-linear (PL) surface:

- ``V0``: trapezoid-rule area of ``{u > ν}`` (pixel fraction, edge pixels weighted ½, corners ¼).
- ``V1``: exact length of the PL level line. In a triangle with sorted vertex values ``a ≤ b ≤ c`` the
  chord length is a tent in ``ν`` (0 at ``a`` and ``c``, peak ``|∇u| / (2 (c − a))`` px at ``b``), so
  all thresholds follow from per-triangle breakpoints without looping over thresholds.
- ``V2``: Euler characteristic of the PL excursion set, which retracts onto the full sub-complex of its
  vertices above ``ν``: χ = vertices − edges + triangles. Per cell this reduces to pixel vertices, grid
  edges and full cells plus −1 for a saddle cell (diagonal corners above, the other two not) whose
  centre lies above ``ν``: the mean of the corners decides saddles symmetrically in ``u → −u``.

Every count is a sum over mesh elements of ``[min over the element's vertices > ν]``, so one pass of
``searchsorted`` and histograms gives all thresholds at once; the cost barely depends on their number.

Bias: the PL surface reproduces locally linear fields exactly (no 4/π digitisation bias of pixel
counting), so the bias is second order in pixel / correlation length: chords shorten curved contours and
sub-pixel extrema or saddles are missed. Against Tomita's formulas on 64 Gaussian fields of 256² (|ν| ≤
2.5), white noise smoothed with σ = 4 px deviates by at most 0.6 % (V1) and 1.8 % (V2) of the peak
amplitudes, within ~2 standard errors; with σ = 2 px V1 falls 1.6 % of its peak low (−9 % of the local
value at |ν| = 2.5) and V2 deviates 2.6 %. Maps with power up to the pixel scale are biased more; compare
sets of maps with the same estimator and resolution.

Boundaries: patches are not periodic (default). Only cells inside the window of pixel centres are used
(area ``A = (H − 1)(W − 1)`` px²) and V0/V2 weight shared boundary elements by the fraction of their
neighbouring cells inside the window (½ on edges, ¼ at corners), which makes V2 an unbiased density
estimator free of the window-edge term of the kinematic formula (a plain count of components and holes
cut by the window is not). ``periodic=True`` wraps the map instead (area ``H W``).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from dustcmb.errors import InputError

_LANES = 8  # interleaved copies of every histogram, see _lane_index
_CPU_BLOCK = 2**15  # elements per tensor op on CPU, see _blocking
_DEVICE_BLOCK = 2**22  # elements per tensor op on accelerators
_FLOOR = 1e-300  # denominator floor: finite quotients of values <= ~1e3, exactly 0 where the numerator is


def minkowski(maps, thresholds, *, periodic: bool = False, progress: bool = False):
    """Area, boundary-length and Euler-characteristic densities of ``{u > ν}`` at every threshold.

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor, shape [..., H, W]
        Real maps, H, W ≥ 2, finite (any unit; thresholds in the same unit).
    thresholds : array_like [n_thresholds]
        Levels ``ν`` in map units, any order.
    periodic : bool
        Treat each map as a torus (default False: patches are windows of the sky).
    progress : bool
        Show a progress bar over blocks of maps.

    Returns
    -------
    v0, v1, v2 : each [..., n_thresholds], float64
        ``V0`` (dimensionless), ``V1`` [1/px], ``V2`` [1/px²]; numpy for numpy input, torch on the
        input's device for torch input (not differentiable).
    """
    is_torch = isinstance(maps, torch.Tensor)
    u = maps.detach() if is_torch else torch.from_numpy(_numeric(maps))  # float64 per block, not here
    nu, order = _check(u, thresholds)
    height, width = u.shape[-2:]
    flat = u.reshape(-1, height, width)
    nu = torch.as_tensor(nu[order], dtype=torch.float64, device=u.device)
    area = height * width if periodic else (height - 1) * (width - 1)  # px²
    scale = torch.tensor([area, 4.0 * area, area], dtype=torch.float64, device=u.device)[:, None, None]
    out = torch.empty(3, flat.shape[0], nu.numel(), dtype=torch.float64, device=u.device)
    maps_per_block, rows_per_strip, workers = _blocking(height + periodic, width + periodic, u.device)

    def run(start: int) -> None:
        block = flat[start : start + maps_per_block].to(torch.float64)
        if periodic:
            block = torch.cat([block, block[:, :1]], dim=1)
            block = torch.cat([block, block[:, :, :1]], dim=2)
        # Strips sharing a boundary row add up exactly: shared elements carry half weight in each.
        strips = range(0, block.shape[1] - 1, rows_per_strip)
        sums = sum(_sums(block[:, r : r + rows_per_strip + 1], nu) for r in strips)
        out[:, start : start + maps_per_block] = sums / scale  # V1 = length / (4 A)

    starts = range(0, flat.shape[0], maps_per_block)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in tqdm(pool.map(run, starts), total=len(starts), disable=not progress, desc="Minkowski", unit="block"):
            pass
    out[..., torch.as_tensor(order, device=u.device)] = out.clone()
    out = out.reshape(3, *u.shape[:-2], nu.numel())
    v0, v1, v2 = out if is_torch else out.cpu().numpy()
    return v0, v1, v2


def _blocking(height: int, width: int, device: torch.device) -> tuple[int, int, int]:
    """Maps per block, cell rows per strip and worker threads.

    On CPU every tensor op stays below torch's parallel grain (32768 elements), so it runs on one
    thread with cache-sized temporaries that the allocator reuses; blocks run on a pool of
    ``torch.get_num_threads()`` threads instead. Many small ops inside OpenMP regions stall badly when
    the cores are shared (spin-waiting threads), and large temporaries cost page faults on every op.
    """
    if device.type != "cpu":
        return max(1, _DEVICE_BLOCK // (height * width)), height - 1, 1
    if height * width <= _CPU_BLOCK:
        return _CPU_BLOCK // (height * width), height - 1, torch.get_num_threads()
    n_strips = -(-(height - 1) // max(1, _CPU_BLOCK // width - 1))
    return 1, -(-(height - 1) // n_strips), torch.get_num_threads()


def _numeric(maps) -> np.ndarray:
    """A numpy array torch can wrap: float32/float64 kept as they are, anything else as float64."""
    array = np.asarray(maps)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    return np.ascontiguousarray(array)


def _check(u: torch.Tensor, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Validate maps and thresholds; return the thresholds and their ascending order."""
    if u.ndim < 2 or min(u.shape[-2:]) < 2:
        raise InputError(f"minkowski needs maps [..., H, W] with H, W >= 2, got shape {tuple(u.shape)}")
    if u.is_complex() or not (bool(torch.isfinite(u.amax())) and bool(torch.isfinite(u.amin()))):
        raise InputError("minkowski needs real, finite maps: replace NaN/inf pixels first")
    nu = np.asarray(thresholds, dtype=np.float64)
    if nu.ndim != 1 or nu.size == 0 or not np.isfinite(nu).all():
        raise InputError(f"thresholds must be a non-empty 1-D array of finite levels, got shape {nu.shape}")
    return nu, np.argsort(nu, kind="stable")


def _sums(u: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
    """Area [px²], level length [px] and Euler characteristic [3, B, T] of windows u [B, H, W] (float64).

    Boundary rows and columns of the window carry half weight (corners a quarter) in area and χ.
    """
    height, width = u.shape[-2:]
    k = _bucket(u, nu)  # thresholds below each pixel: pixel above ν_j  <=>  j < k
    centre = ((u[:, :-1, :-1] + u[:, 1:, 1:]) + (u[:, :-1, 1:] + u[:, 1:, :-1])) / 4.0
    k_centre = _bucket(centre, nu)
    w_row = _edge_weights(height, u)
    w_col = _edge_weights(width, u)
    area = _count_above(k, w_row[:, None] * w_col[None, :], nu.numel())
    length = _level_length(u, centre, k, k_centre, nu)
    return torch.stack([area, length, _euler(k, k_centre, w_row, w_col, nu.numel())])


def _bucket(x: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
    """Number of thresholds strictly below each value (``searchsorted``, side left), int64.

    Evenly spaced thresholds (the usual ``linspace``) use ``ceil((x − ν_0) / Δν)``, exact except for
    values within round-off of a threshold, which get the binary search: several times faster.
    """
    n = nu.numel()
    step = (nu[-1] - nu[0]) / max(n - 1, 1)
    grid = nu[0] + step * torch.arange(n, dtype=nu.dtype, device=nu.device)
    if n < 2 or step <= 0 or (nu - grid).abs().max() > 1e-9 * step:
        return torch.searchsorted(nu, x)
    position = (x - nu[0]) / step
    bucket = position.ceil().clamp_(0, n).long()
    near = (position - position.round()).abs_() < 1e-6
    if near.any():
        bucket[near] = torch.searchsorted(nu, x[near])
    return bucket


def _edge_weights(n: int, like: torch.Tensor) -> torch.Tensor:
    """Fraction of window cells around each grid line: ½ for the two boundary lines, else 1."""
    w = torch.ones(n, dtype=torch.float64, device=like.device)
    w[[0, -1]] = 0.5
    return w


def _histogram(k: torch.Tensor, weight: torch.Tensor, n_thresholds: int) -> torch.Tensor:
    """Sum of ``weight`` per bucket index: [B, T+1] from k [B, ...] and weight broadcastable to k."""
    index = _lane_index(k, n_thresholds + 1)
    hist = torch.zeros(k.shape[0], _LANES * (n_thresholds + 1), dtype=torch.float64, device=k.device)
    hist.scatter_add_(1, index, weight.expand(k.shape).reshape(index.shape))
    return _merge_lanes(hist)


def _lane_index(k: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Index [B, M] into ``_LANES`` interleaved copies of an ``n_bins`` histogram.

    Neighbouring pixels mostly share a bin, and a run of adds to one address serialises: spreading
    consecutive elements over separate copies makes the scatter several times faster.
    """
    flat = k.flatten(1)
    return flat + _lane_offsets(flat.shape[1], n_bins, k.device)


@functools.lru_cache(maxsize=16)
def _lane_offsets(m: int, n_bins: int, device: torch.device) -> torch.Tensor:
    return (torch.arange(m, device=device) % _LANES * n_bins)[None]


def _merge_lanes(hist: torch.Tensor) -> torch.Tensor:
    """Sum the interleaved copies: [..., LANES * n_bins] -> [..., n_bins]."""
    return hist.unflatten(-1, (_LANES, -1)).sum(-2)


def _count_above(k: torch.Tensor, weight: torch.Tensor, n_thresholds: int) -> torch.Tensor:
    """Σ weight · [element above ν_j] = Σ over elements with k > j, for every j: [B, T]."""
    return _tail_sum(_histogram(k, weight, n_thresholds))


def _tail_sum(hist: torch.Tensor) -> torch.Tensor:
    """From a histogram over k ∈ [0, T], the sums over k > j for j ∈ [0, T)."""
    return hist.flip(-1).cumsum(-1).flip(-1)[:, 1:]


def _euler(k, k_centre, w_row, w_col, n_thresholds: int) -> torch.Tensor:
    """Window-weighted Euler characteristic [B, T]: vertices − edges + cells − saddles."""
    k_h = torch.minimum(k[:, :, :-1], k[:, :, 1:])  # horizontal grid edges, weight of their row
    k_v = torch.minimum(k[:, :-1, :], k[:, 1:, :])  # vertical grid edges, weight of their column
    k_cell = torch.minimum(k_h[:, :-1, :], k_h[:, 1:, :])
    one = torch.ones((), dtype=torch.float64, device=k.device)
    hist = _histogram(k, w_row[:, None] * w_col[None, :], n_thresholds)
    hist -= _histogram(k_h, w_row[:, None], n_thresholds)
    hist -= _histogram(k_v, w_col[None, :], n_thresholds)
    hist += _histogram(k_cell, one, n_thresholds)
    # Saddle with diagonal (p, q) above and (r, s) not: max(r, s) <= ν < min(p, q, centre).
    k00, k11, k10, k01 = k[:, :-1, :-1], k[:, 1:, 1:], k[:, :-1, 1:], k[:, 1:, :-1]
    for (p, q), (r, s) in (((k00, k11), (k10, k01)), ((k10, k01), (k00, k11))):
        low = torch.maximum(r, s)
        high = torch.maximum(torch.minimum(torch.minimum(p, q), k_centre), low)
        hist += _histogram(low, one, n_thresholds)  # saddle active for low <= j < high: −1 there
        hist -= _histogram(high, one, n_thresholds)
    return _tail_sum(hist)


def _level_length(u, centre, k, k_centre, nu) -> torch.Tensor:
    """Total length [px] of the PL level line at each threshold: [B, T].

    A triangle with sorted vertex values ``a ≤ b ≤ c`` has chord ``peak·ramp(a, b) − peak·ramp(b, c)``
    with ``ramp(x0, x1) = clip((ν − x0) / (x1 − x0), 0, 1)``. Each ramp is a step of its weight at
    ``x1`` plus, where a threshold falls inside it, ``s (ν − x0)`` on ``[x0, x1)``: histograms over
    the bucket index collect the constant parts and the slopes ``s``, and their running sums give
    length_j = constant_j + ν_j slope_j.
    """
    n_bins = nu.numel() + 1
    hist = torch.zeros(2, 2, u.shape[0], _LANES * n_bins, dtype=torch.float64, device=u.device)
    (add_const, add_slope), (sub_const, sub_slope) = hist  # added and subtracted contributions
    for edge, k_edge, cells in (
        ((u[:, :, :-1], u[:, :, 1:]), (k[:, :, :-1], k[:, :, 1:]), (np.s_[:, :-1, :], np.s_[:, 1:, :])),
        ((u[:, :-1, :], u[:, 1:, :]), (k[:, :-1, :], k[:, 1:, :]), (np.s_[:, :, :-1], np.s_[:, :, 1:])),
    ):
        half_diff_sq, half_sum = ((edge[1] - edge[0]) / 2.0).square_(), (edge[1] + edge[0]) / 2.0
        lo, hi = torch.minimum(*edge), torch.maximum(*edge)
        k_lo, k_hi = torch.minimum(*k_edge), torch.maximum(*k_edge)
        for cell in cells:  # the triangle (edge, centre) in each of the two cells along the edge
            a, b, c = _sort3(lo[cell], hi[cell], centre)
            ka, kb, kc = _sort3(k_lo[cell], k_hi[cell], k_centre)  # bucketing is monotone in the value
            ka_lane, kb_lane, kc_lane = (_lane_index(x, n_bins) for x in (ka, kb, kc))
            # |∇u| on a triangle of base 1 px and height ½ px is hypot(Δu_edge, 2 (u_centre − ū_edge)) / 2.
            grad = (centre - half_sum[cell]).square_().add_(half_diff_sq[cell]).sqrt_()
            peak = grad.div_((c - a).clamp_min_(_FLOOR))  # chord at ν = b (area ¼ px²), 0 if flat
            rise = (peak / (b - a)).masked_fill_(ka >= kb, 0.0)  # slopes only where a threshold is inside
            fall = (peak / (c - b)).masked_fill_(kb >= kc, 0.0)
            rise_a, fall_b = rise * a, fall * b
            step_c = peak + fall_b
            for h, idx, val in (
                (add_slope, ka_lane, rise), (sub_slope, kb_lane, rise + fall), (add_slope, kc_lane, fall),
                (sub_const, ka_lane, rise_a), (add_const, kb_lane, step_c + rise_a), (sub_const, kc_lane, step_c),
            ):
                h.scatter_add_(1, idx, val.flatten(1))
    const, slope = _merge_lanes(hist[0] - hist[1]).cumsum(-1)[..., :-1]
    return const + nu * slope


def _sort3(x, y_hi, z):
    """Element-wise (min, median, max) of ``x <= y_hi`` and ``z``."""
    return torch.minimum(x, z), torch.maximum(x, torch.minimum(y_hi, z)), torch.maximum(y_hi, z)
