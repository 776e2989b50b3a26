"""The dust DCGAN (paper Table 1, docs/science.md#gan-architecture): a generator and two discriminators.

All three are plain ``nn.Module`` s parameterised by the patch resolution ``npix`` (a multiple of 16)
and their widths, so the same code builds the paper profile (256², 512 channels at 16²) and the CPU
quick-look profile (64², a few channels). Maps are in the GAN's unit domain ``[-1, 1]`` (the scaled
natural log of the 353 GHz intensity, see :mod:`dustcmb.patches.normalise`), shape ``[B, 1, N, N]``.

BatchNorm uses ``momentum=0.1``, PyTorch's name for Keras' ``momentum=0.9`` (the authors' code).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from torch import nn

from dustcmb.gan.condition import network_input
from dustcmb.patches.cutter import lowpass_profile
from dustcmb.stats.borders import border_contrast
from dustcmb.stats.power import mode_group_power, n_bins, power_spectrum, reported_rings, wedge_halves, wedge_kinds

BN_MOMENTUM = 0.1
LEAKY_SLOPE = 0.2
UPSAMPLINGS = 4
PADDINGS = ("zeros", "reflect", "replicate")
DIRECTION_HALF_WIDTH_DEG = 15.0  # axis and diagonal wedges of the directional power feature (a third each)
# pixel quantiles of the level features: the one-point distribution from its dark to its bright tail
LEVEL_PROBS = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
LEVEL_HIDDEN = 32
SPREAD_GAIN_SCALE = 10.0  # equalised learning rate of the generator's level-spread gain (see Generator)


def _check_npix(npix: int) -> None:
    if npix < 2**UPSAMPLINGS or npix % 2**UPSAMPLINGS:
        raise ValueError(f"npix={npix} must be a positive multiple of {2**UPSAMPLINGS}")


def _check_condition(conditional: bool, condition: torch.Tensor | None) -> None:
    if conditional != (condition is not None):
        raise ValueError("a conditional network needs a condition per map, a plain one takes none")


class ConditionProjection(nn.Module):
    """The projection discriminator's conditional term for a scalar condition ``c``: ``c · (v · φ)``,
    added to the logit, with ``φ`` the features the head reads and ``c`` standardised
    (:func:`~dustcmb.gan.condition.network_input`). A plain extra input of the head would only shift
    the logit by a constant per ``c``; the product lets the discriminator ask whether these features
    belong at this latitude (Miyato & Koyama 2018)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.readout = nn.Linear(features, 1, bias=False)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return network_input(condition.to(features)) * self.readout(features).squeeze(1)


def pixel_quantiles(maps: torch.Tensor) -> torch.Tensor:
    """Quantiles :data:`LEVEL_PROBS` of each map's pixels (differentiable), ``[B, ...]`` -> ``[B, n_levels]``."""
    probs = torch.tensor(LEVEL_PROBS, dtype=maps.dtype, device=maps.device)
    return torch.quantile(maps.flatten(1), probs, dim=1).T


class NoiseInjection(nn.Module):
    """Add one map of unit Gaussian noise per sample, times a learnt strength per channel (StyleGAN's
    per-scale noise): small-scale texture that the latent vector need not encode. Strength starts at 0,
    so a fresh generator is the plain one."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.shared = False  # one noise map for the whole batch (see shared_noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 1 if self.shared else x.shape[0]
        noise = torch.randn(n, 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.strength * noise


class BandLimit(nn.Module):
    """The patches' band-limit (:func:`dustcmb.patches.cutter.lowpass_profile`: 1 up to 0.75 ℓ_Nyq, cos²
    to 0 at ℓ_Nyq, 0 in the corners of the Fourier grid beyond it) applied to maps ``[B, 1, N, N]``.

    Real patches are cut from a sky whose ln I is band-limited that way, so they carry no power above
    ℓ_Nyq, least of all in the diagonal corners of their 2-D spectrum; a generator's last convolution
    can put pixel-scale grain there. The map is filtered as its even (mirror) extension to 2N × 2N,
    which is periodic without a jump at the patch edges, so the filter cannot wrap one edge into the
    opposite one; the window is a fixed buffer (no parameters).
    """

    def __init__(self, npix: int) -> None:
        super().__init__()
        k = np.abs(np.fft.fftfreq(2 * npix, 1.0 / (2 * npix)))
        fraction = np.hypot(k[:, None], k[None, : npix + 1]) / npix  # |k| / k_Nyq on the 2N grid
        self.register_buffer("window", torch.tensor(lowpass_profile(fraction), dtype=torch.float32))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        n = maps.shape[-1]
        wide = torch.cat([maps, maps.flip(-1)], dim=-1)
        even = torch.cat([wide, wide.flip(-2)], dim=-2)
        filtered = torch.fft.irfft2(torch.fft.rfft2(even) * self.window, s=even.shape[-2:])
        return filtered[..., :n, :n]


@contextlib.contextmanager
def shared_noise(generator: nn.Module):
    """Within the block every map of one forward gets the same noise maps, so the maps of a batch
    differ only through their latent vectors (for walks along a latent path)."""
    layers = [m for m in generator.modules() if isinstance(m, NoiseInjection)]
    for layer in layers:
        layer.shared = True
    try:
        yield generator
    finally:
        for layer in layers:
            layer.shared = False


class Generator(nn.Module):
    """``z ~ N(0, 1)`` of size ``latent_dim`` -> map ``[B, 1, npix, npix]`` in ``[-1, 1]``.

    Linear -> ``(npix/16)² x channels`` -> LeakyReLU -> BatchNorm, then four blocks of bilinear x2
    upsampling and a 5x5 stride-1 convolution with ``channels/2, /4, /8`` and 1 output channels
    (LeakyReLU + BatchNorm after all but the last), then tanh. He-normal initialisation.

    Parameters
    ----------
    npix : int
        Output side in pixels (multiple of 16); 256 in the paper.
    latent_dim : int
        Size of the latent vector; 64 in the paper.
    channels : int
        Channels at the smallest scale ``npix/16``; 512 in the paper. Must be divisible by 8.
    padding : {"zeros", "reflect", "replicate"}
        How the 5x5 convolutions pad the map edges. ``zeros`` is the paper's (Keras ``same``), but the
        zero border is a fake dark rim at every scale, which the generator learns to imprint as square
        frames along the patch borders; ``reflect`` continues the sky across the edge instead and
        leaves the architecture otherwise unchanged (same weights, same shapes).
    noise : bool
        A :class:`NoiseInjection` after every convolution but the output one,
        so that the generator can place fine structure (filament edges, texture) at each scale without
        coding it in ``z``. Off in the paper. Sampling then also draws from torch's global generator.
    fullres : bool
        One more 5x5 convolution with ``channels/8`` outputs at full resolution, between the last
        upsampling and the output convolution (with noise, LeakyReLU and BatchNorm like the others).
        In the paper's stack the only full-resolution layer is the linear output convolution of
        bilinearly upsampled features, so pixel-scale texture can only be a smooth interpolation.
        Off in the paper.
    bandlimit : bool
        The output (after tanh) goes through :class:`BandLimit`, the band-limit the real patches were
        cut with. Off in the paper.
    crop_px : int
        The network draws a canvas ``crop_px`` wider on every side (``npix + 2 crop_px``, a multiple
        of 16) and returns its central ``npix × npix``. Every convolution pads at the canvas edge,
        whatever the padding mode, and at 64² its imprint reaches ~8 px in: the rms gradient of the
        outer strips differs from the interior's by 2–4 % (the frame test). Cropping leaves only
        pixels whose receptive fields the padding barely touches, the way a patch is cut from a
        larger sky. 0 (the paper) draws the map itself.
    random_crop : bool
        With ``crop_px``, return a window at a random offset of the canvas (each map its own, drawn from
        torch's global generator) instead of the central one. The canvas's statistics can then depend
        on position (its first layer gives every position of the smallest grid its own weights, and
        the padding acts at every scale) only as far as the discriminators cannot tell one window
        from another, since a map's edges fall anywhere on it: stationarity is what they reward. Off
        in the paper.
    conditional : bool
        The generator also takes each map's condition, the log slab column ``ln csc|b|`` of its
        centre (:func:`dustcmb.gan.condition.slab_log_column`), standardised
        (:func:`~dustcmb.gan.condition.network_input`), appended to ``z`` before the first layer and,
        through a learnt gain and offset that start at 0, added to the map before the tanh: to first
        order the slab makes ``ln I`` grow linearly with ``ln csc|b|``, and this gives the level that
        path directly. Dust brightness and contrast depend on latitude, so one generator can draw the
        sky of any footprint instead of the training region's mixture of latitudes. Off in the paper.
    level_spread : bool
        With ``conditional``, each map's mean pre-tanh level is also scaled by ``1 + g(c)``, a learnt
        linear function of the condition that starts at 0: a long column through many clouds averages
        them, so the patch-to-patch spread of ``ln I`` shrinks towards the plane, and this lets the
        latitude set that spread without touching the texture within a map. ``g`` is read ×
        :data:`SPREAD_GAIN_SCALE` from its parameters (an equalised learning rate): Adam moves a
        parameter by about the learning rate per step, 0.2 over the quick profile's 1100 steps at
        2e-4, and unscaled the gain reached only 0.96 at |b| = 25° against 1.16 at the pole.
    """

    def __init__(self, npix: int, latent_dim: int, channels: int, padding: str = "zeros",
                 noise: bool = False, fullres: bool = False, noise_fullres: bool = True,
                 bandlimit: bool = False, crop_px: int = 0, conditional: bool = False,
                 random_crop: bool = False, level_spread: bool = False) -> None:
        super().__init__()
        _check_npix(npix)
        if crop_px < 0 or (2 * crop_px) % 2**UPSAMPLINGS:
            raise ValueError(f"generator crop_px={crop_px} must be >= 0 and a multiple of {2**UPSAMPLINGS // 2}")
        if random_crop and not crop_px:
            raise ValueError("a generator random_crop needs crop_px > 0 (a canvas wider than the map)")
        if level_spread and not conditional:
            raise ValueError("a generator level_spread needs conditional (the latitude sets the spread)")
        if channels % 8:
            raise ValueError(f"generator channels={channels} must be divisible by 8")
        if padding not in PADDINGS:
            raise ValueError(f"generator padding={padding!r} must be one of {PADDINGS}")
        self.npix, self.latent_dim, self.channels, self.padding = npix, latent_dim, channels, padding
        self.noise, self.fullres, self.noise_fullres = noise, fullres, noise_fullres
        self.crop_px, self.conditional, self.random_crop = crop_px, conditional, random_crop
        self.base = (npix + 2 * crop_px) // 2**UPSAMPLINGS  # side of the canvas at the smallest scale
        self.project = nn.Linear(latent_dim + conditional, self.base**2 * channels)
        self.project_act = nn.Sequential(nn.LeakyReLU(LEAKY_SLOPE),
                                         nn.BatchNorm2d(channels, momentum=BN_MOMENTUM))
        widths = [channels, channels // 2, channels // 4, channels // 8] + [channels // 8] * fullres + [1]
        conv = functools.partial(nn.Conv2d, kernel_size=5, padding=2, padding_mode=padding)
        blocks = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            upsample = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if i < UPSAMPLINGS else []
            layers = [*upsample, conv(c_in, c_out)]
            if i < len(widths) - 2:
                at_fullres = i >= UPSAMPLINGS - 1
                layers += [NoiseInjection(c_out)] if noise and (noise_fullres or not at_fullres) else []
                layers += [nn.LeakyReLU(LEAKY_SLOPE), nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)]
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.bandlimit = BandLimit(npix) if bandlimit else None
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        self.level = nn.Linear(1, 1) if conditional else None  # pre-tanh map level per unit of condition
        self.spread = nn.Linear(1, 1) if level_spread else None  # gain of each map's mean level, minus 1
        for layer in (self.level, self.spread):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def canvas(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The whole drawn canvas ``[B, 1, npix + 2 crop_px, npix + 2 crop_px]`` in ``[-1, 1]``."""
        _check_condition(self.conditional, condition)
        if condition is not None:
            z = torch.cat([z, network_input(condition.to(z))[:, None]], dim=1)
        x = self.project(z).view(-1, self.channels, self.base, self.base)
        x = self.blocks(self.project_act(x))
        if self.conditional:
            c = network_input(condition.to(x))[:, None]
            if self.spread is not None:
                gain = SPREAD_GAIN_SCALE * self.spread(c)[:, :, None, None]
                x = x + gain * x.mean(dim=(2, 3), keepdim=True)
            x = x + self.level(c)[:, :, None, None]
        return torch.tanh(x)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Maps for latents ``z`` [B, latent_dim] and, if conditional, ``condition`` [B] (``ln csc|b|``)."""
        out = self.canvas(z, condition)
        if self.random_crop:
            out = random_window(out, self.npix)
        elif self.crop_px:
            out = out[..., self.crop_px:self.crop_px + self.npix, self.crop_px:self.crop_px + self.npix]
        return out if self.bandlimit is None else self.bandlimit(out)


def random_window(canvas: torch.Tensor, size: int) -> torch.Tensor:
    """A ``size × size`` window of every canvas ``[B, C, M, M]`` at its own uniform random offset
    (torch's global generator), ``[B, C, size, size]``; differentiable with respect to the canvas."""
    b, m = canvas.shape[0], canvas.shape[-1]
    offsets = torch.randint(0, m - size + 1, (b, 2), device=canvas.device)
    span = torch.arange(size, device=canvas.device)
    rows, cols = offsets[:, 0, None] + span, offsets[:, 1, None] + span  # [B, size] each
    batch = torch.arange(b, device=canvas.device)[:, None, None]
    return canvas.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class MapDiscriminator(nn.Module):
    """Map ``[B, 1, N, N]`` -> one real/fake logit per map.

    Four 5x5 stride-2 convolutions with ``width, 2 width, 4 width, 8 width`` channels, each followed by
    LeakyReLU(0.2) and BatchNorm (except the first), then flatten and a dense layer.

    Parameters
    ----------
    npix, width : int
        Map side (multiple of 16) and features of the first convolution.
    spectral_norm : bool
        Spectral normalisation of every layer instead of BatchNorm: each layer is 1-Lipschitz, which
        keeps the discriminator from winning outright on a few hundred maps.
    minibatch_std : bool
        Append the batch's mean per-feature standard deviation as one more feature map before the
        head, so the discriminator sees the diversity of a batch and a collapsed generator is visible.
    conditional : bool
        The map's standardised condition enters as a second input channel, a constant map, so the
        first convolution can weigh each pixel's level against the latitude it is drawn at.
    """

    def __init__(self, npix: int, width: int, spectral_norm: bool = False, minibatch_std: bool = False,
                 conditional: bool = False) -> None:
        super().__init__()
        _check_npix(npix)
        norm = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        widths = [1 + conditional, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [norm(nn.Conv2d(c_in, c_out, kernel_size=5, stride=2, padding=2)), nn.LeakyReLU(LEAKY_SLOPE)]
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM))
        self.features = nn.Sequential(*layers)
        self.minibatch_std = minibatch_std
        self.conditional = conditional
        self.head = norm(nn.Linear((widths[-1] + minibatch_std) * (npix // 16) ** 2, 1))

    def forward(self, maps: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        _check_condition(self.conditional, condition)
        if condition is not None:
            level = network_input(condition.to(maps))[:, None, None, None].expand_as(maps)
            maps = torch.cat([maps, level], dim=1)
        x = self.features(maps)
        if self.minibatch_std:
            spread = x.std(dim=0, unbiased=False).mean() if len(x) > 1 else x.new_zeros(())
            x = torch.cat([x, spread.expand(len(x), 1, *x.shape[-2:])], dim=1)
        return self.head(x.flatten(1)).squeeze(1)


@functools.lru_cache(maxsize=8)
def _direction_labels(npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Mode groups ``2 (ring − first) + kind`` (kind 0 axes, 1 diagonals) of the reported rings, −1
    elsewhere, and which rings have modes in both wedges."""
    k = np.abs(np.fft.fftfreq(npix, 1.0 / npix))
    ring, rings = np.rint(np.hypot(k[:, None], k[None, :])).astype(int), reported_rings(npix)
    kind = wedge_kinds(npix, DIRECTION_HALF_WIDTH_DEG)
    keep = (ring >= rings[0]) & (ring <= rings[-1]) & (kind < 2)
    labels = np.where(keep, 2 * (ring - rings[0]) + kind, -1)
    present = np.bincount(labels[keep], minlength=2 * rings.size) > 0
    return labels, present[0::2] & present[1::2]


def log_anisotropy(maps: torch.Tensor, size_deg: float) -> torch.Tensor:
    """``ln(P_axes / P_diagonals)`` per reported ring, [..., n_bins(N)]: power in the wedges around the
    axes over that around the diagonals (±15° each), 0 where a ring has no mode in one of them.

    An isotropic field reads about 0 in every ring; streaks along rows or columns read > 0 at the
    multipoles of their width, diagonal streaks < 0. Differentiable (torch in, torch out).
    """
    labels, both = _direction_labels(maps.shape[-1])
    groups = mode_group_power(maps, size_deg, labels)
    both = torch.as_tensor(both, device=maps.device)
    axes, diagonals = (torch.where(both, groups[..., kind::2], torch.ones_like(groups[..., kind::2]))
                       for kind in (0, 1))
    return torch.log(axes / diagonals)


@functools.lru_cache(maxsize=8)
def _handed_labels(npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Mode groups ``4 (ring − first) + 2 kind + half`` of the reported rings, −1 elsewhere: each wedge of
    :func:`_direction_labels` split in its two halves (:func:`~dustcmb.stats.power.wedge_halves`), and
    which rings have modes in both halves of both wedges."""
    k = np.abs(np.fft.fftfreq(npix, 1.0 / npix))
    ring, rings = np.rint(np.hypot(k[:, None], k[None, :])).astype(int), reported_rings(npix)
    kind, half = wedge_kinds(npix, DIRECTION_HALF_WIDTH_DEG), wedge_halves(npix)
    keep = (ring >= rings[0]) & (ring <= rings[-1]) & (kind < 2)
    labels = np.where(keep, 4 * (ring - rings[0]) + 2 * kind + half, -1)
    present = (np.bincount(labels[keep], minlength=4 * rings.size) > 0).reshape(rings.size, 4)
    return labels, present.all(axis=1)


def log_handedness(maps: torch.Tensor, size_deg: float) -> torch.Tensor:
    """``ln(P_x / P_y)`` and ``ln(P_diagonal / P_antidiagonal)`` per reported ring, [..., 2, n_bins(N)].

    :func:`log_anisotropy` lumps the two axes and the two diagonals, so a generator whose maps all
    lean along one diagonal reads as isotropic there. The real maps are trained on in random
    rotations and flips, whose set reads 0 on both rows; a generator that prefers one orientation
    does not. 0 where a ring lacks modes in a half. Differentiable (torch in, torch out).
    """
    labels, complete = _handed_labels(maps.shape[-1])
    groups = mode_group_power(maps, size_deg, labels)
    complete = torch.as_tensor(complete, device=maps.device)
    rows = []
    for first in (0, 2):
        a, b = (torch.where(complete, groups[..., first + h::4], torch.ones_like(groups[..., first + h::4]))
                for h in (0, 1))
        rows.append(torch.log(a / b))
    return torch.stack(rows, dim=-2)


class PowerDiscriminator(nn.Module):
    """Map ``[B, 1, N, N]`` -> logit judged on its fractional power spectrum ``C_ℓ / C̄_ℓ^real - 1``.

    The spectrum is :func:`dustcmb.stats.power_spectrum` of the unit-domain map (differentiable, its
    ``n_bins(N)`` reported bins); ``C̄^real`` is the mean over the real set, a buffer saved with the
    state dict. Three 1-D
    convolutions (``width, 2 width, 4 width`` features; kernels 5, 2, 2; stride 2) with LeakyReLU and
    BatchNorm (except after the first), then a dense layer.

    Parameters
    ----------
    npix : int
        Map side in pixels (multiple of 16).
    size_deg : float
        Patch side in degrees (sets the multipoles; the fractional spectrum does not depend on it).
    width : int
        Features of the first convolution.
    mean_cl : torch.Tensor [n_bins(npix)]
        Mean real ``C_ℓ`` of the unit-domain maps [unit² sr].
    mean_log_anisotropy : torch.Tensor [n_bins(npix)], optional
        Mean real :func:`log_anisotropy`. When given, the discriminator is *directional*: a second input
        channel holds each map's ``log_anisotropy`` minus this mean, so power that a generator puts
        along the pixel axes or diagonals (streaks) is something it can see and punish. The ring
        spectrum alone averages directions away.
    handed : bool
        Two more input channels hold each map's :func:`log_handedness` (whose mean over the
        augmented real set is 0), so a preferred orientation is visible too.
    border_moments : torch.Tensor [2, n_strips], optional
        Mean and standard deviation over the real maps of the log rms-gradient ratio of each border
        strip (:func:`dustcmb.stats.borders.border_contrast`). When given, each map's standardised
        ratios join the dense head's input: the spectrum's window tapers the borders away, so
        without them neither the frame a generator leaves nor smoothed borders reach this
        discriminator.
    level_moments : torch.Tensor [2, n_levels], optional
        Mean and standard deviation over the real maps of :func:`pixel_quantiles`. When given, each
        map's standardised quantiles, and its condition if conditional, pass through a small
        perceptron whose features join the head's input: the fractional spectrum is blind to a map's
        level and one-point distribution, and a linear head on them could only shift the level, not
        judge its spread at a latitude (too many dark maps where the sky has none).
    conditional : bool
        A :class:`ConditionProjection` of the head's input adds the map's condition to its logit.
    """

    def __init__(self, npix: int, size_deg: float, width: int, mean_cl: torch.Tensor,
                 mean_log_anisotropy: torch.Tensor | None = None, handed: bool = False,
                 border_moments: torch.Tensor | None = None, conditional: bool = False,
                 level_moments: torch.Tensor | None = None) -> None:
        super().__init__()
        _check_npix(npix)
        bins = n_bins(npix)
        if mean_cl.shape != (bins,) or not bool(torch.all(mean_cl > 0)):
            raise ValueError(f"mean_cl must be a positive vector of {bins} bins")
        self.size_deg = size_deg
        self.register_buffer("mean_cl", mean_cl.detach().clone().float())
        self.directional = mean_log_anisotropy is not None
        if self.directional:
            if mean_log_anisotropy.shape != (bins,):
                raise ValueError(f"mean_log_anisotropy must be a vector of {bins} bins")
            self.register_buffer("mean_log_anisotropy", mean_log_anisotropy.detach().clone().float())
        self.handed = handed
        widths = [1 + self.directional + 2 * handed, width, 2 * width, 4 * width]
        kernels, paddings = (5, 2, 2), (2, 0, 0)
        layers: list[nn.Module] = []
        length = bins
        for i in range(3):
            layers += [nn.Conv1d(widths[i], widths[i + 1], kernels[i], stride=2, padding=paddings[i]),
                       nn.LeakyReLU(LEAKY_SLOPE)]
            if i > 0:
                layers.append(nn.BatchNorm1d(widths[i + 1], momentum=BN_MOMENTUM))
            length = (length + 2 * paddings[i] - kernels[i]) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.borders = border_moments is not None
        extra = 0
        if self.borders:
            if border_moments.ndim != 2 or border_moments.shape[0] != 2 or not bool(torch.all(border_moments[1] > 0)):
                raise ValueError("border_moments must be [2, n_strips]: means and positive standard deviations")
            self.register_buffer("border_moments", border_moments.detach().clone().float())
            extra = border_moments.shape[1]
        self.levels = level_moments is not None
        if self.levels:
            if level_moments.shape != (2, len(LEVEL_PROBS)) or not bool(torch.all(level_moments[1] > 0)):
                raise ValueError(f"level_moments must be [2, {len(LEVEL_PROBS)}]: means and positive "
                                 "standard deviations")
            self.register_buffer("level_moments", level_moments.detach().clone().float())
            self.level_net = nn.Sequential(nn.Linear(len(LEVEL_PROBS) + conditional, LEVEL_HIDDEN),
                                           nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(LEVEL_HIDDEN, LEVEL_HIDDEN),
                                           nn.LeakyReLU(LEAKY_SLOPE))
            extra += LEVEL_HIDDEN
        self.head = nn.Linear(widths[-1] * length + extra, 1)
        self.projection = ConditionProjection(widths[-1] * length + extra) if conditional else None

    def fractional_spectrum(self, maps: torch.Tensor) -> torch.Tensor:
        """``C_ℓ / C̄_ℓ^real - 1`` of maps ``[B, 1, N, N]``, shape ``[B, 1, n_bins(N)]``."""
        _, cl = power_spectrum(maps, self.size_deg)
        return cl / self.mean_cl - 1.0

    def forward(self, maps: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        x = self.fractional_spectrum(maps)
        if self.directional:
            x = torch.cat([x, log_anisotropy(maps, self.size_deg) - self.mean_log_anisotropy], dim=1)
        if self.handed:
            x = torch.cat([x, log_handedness(maps[:, 0], self.size_deg)], dim=1)
        x = self.features(x).flatten(1)
        if self.borders:
            ratios = torch.log(border_contrast(maps[:, 0])[:, 0])
            x = torch.cat([x, (ratios - self.border_moments[0]) / self.border_moments[1]], dim=1)
        _check_condition(self.projection is not None, condition)
        if self.levels:
            levels = (pixel_quantiles(maps) - self.level_moments[0]) / self.level_moments[1]
            if condition is not None:
                levels = torch.cat([levels, network_input(condition.to(levels))[:, None]], dim=1)
            x = torch.cat([x, self.level_net(levels)], dim=1)
        logit = self.head(x).squeeze(1)
        return logit if condition is None else logit + self.projection(x, condition)
