"""Typed parameters: ``params.yaml`` is read here, once, into frozen dataclasses.

The defaults below are the quick-look profile and equal ``params.yaml`` exactly (a test holds them
together), so a parameter file that gives only some keys builds the pipeline's own networks.

Every stage receives plain values taken from these objects; nothing else in the package reads the
YAML file. Unknown keys and impossible values raise :class:`ConfigError` with the offending key, so
a typo in ``params.yaml`` fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dustcmb.errors import ConfigError


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class SyntheticSkyConfig:
    """Offline stand-in for the Planck 353 GHz dust map (docs/science.md#synthetic-sky).

    ``I = (E_slab(b) + E_disk(l, b)) exp(sigma_ln g) + clouds``: a slab with a local cavity and a thin
    disk, times a log-normal-like field ``g`` (``C_ell ∝ ell**slope``) of which a share
    ``filament_fraction`` is oriented filaments, plus compact clouds (see dustcmb.sky.synthetic).
    """

    slope: float = -2.5
    sigma_ln: float = 0.6
    filament_fraction: float = 0.7
    pole_mjysr: float = 0.04
    disk_width_deg: float = 3.0
    cavity_fraction: float = 0.8
    plane_mjysr: float = 400.0
    plane_clouds: int = 1500
    cloud_index: float = 1.8
    filament_aspect: float = 12.0

    def __post_init__(self) -> None:
        _require(-4.0 <= self.slope <= -1.0, f"sky.synthetic.slope={self.slope}: use -4..-1 (dust ≈ -2.5)")
        _require(self.sigma_ln > 0, f"sky.synthetic.sigma_ln={self.sigma_ln} must be > 0")
        _require(0 <= self.filament_fraction <= 1, "sky.synthetic.filament_fraction must lie in [0, 1]")
        _require(self.pole_mjysr > 0, "sky.synthetic.pole_mjysr must be > 0 MJy/sr")
        _require(self.disk_width_deg > 0, "sky.synthetic.disk_width_deg must be > 0 deg")
        _require(0 <= self.cavity_fraction < 1, "sky.synthetic.cavity_fraction must lie in [0, 1)")
        _require(self.plane_mjysr > 0, "sky.synthetic.plane_mjysr must be > 0 MJy/sr")
        _require(self.plane_clouds >= 0, "sky.synthetic.plane_clouds must be >= 0")
        _require(self.cloud_index > 1, f"sky.synthetic.cloud_index={self.cloud_index} must be > 1")
        _require(self.filament_aspect >= 1, "sky.synthetic.filament_aspect must be >= 1")


@dataclass(frozen=True)
class SkyConfig:
    """Which 353 GHz dust map the pipeline uses and at what HEALPix resolution."""

    source: str = "synthetic"
    nside: int = 512
    smoothing_fwhm_arcmin: float = 0.0
    synthetic: SyntheticSkyConfig = field(default_factory=SyntheticSkyConfig)

    def __post_init__(self) -> None:
        _require(self.nside > 0 and (self.nside & (self.nside - 1)) == 0,
                 f"sky.nside={self.nside} must be a power of two")
        _require(self.smoothing_fwhm_arcmin >= 0, "sky.smoothing_fwhm_arcmin must be >= 0")


@dataclass(frozen=True)
class SplitConfig:
    """Which patches train, validate and test (see :mod:`dustcmb.patches.split`).

    ``val`` and ``test`` are boxes ``[lon_min, lon_max, lat_min, lat_max]`` in degrees of Galactic
    longitude (wrapping at 360) and signed latitude that hold the centres of held-out patches.
    """

    scheme: str = "regions"
    val: tuple[tuple[float, ...], ...] = ((0.0, 100.0, 0.0, 90.0), (0.0, 100.0, -90.0, 0.0))
    test: tuple[tuple[float, ...], ...] = ((180.0, 280.0, 0.0, 90.0), (180.0, 280.0, -90.0, 0.0))

    def __post_init__(self) -> None:
        _require(self.scheme in ("regions", "paper"),
                 f"patches.split.scheme={self.scheme!r}: use regions (held-out sky) or paper")
        for name in ("val", "test"):
            for box in getattr(self, name):
                _require(len(box) == 4 and -90 <= box[2] <= box[3] <= 90,
                         f"patches.split.{name} box {list(box)}: give [lon_min, lon_max, lat_min, lat_max] "
                         "in deg with -90 <= lat_min <= lat_max <= 90")
        _require(self.scheme == "paper" or (self.val and self.test),
                 "patches.split: the regions scheme needs at least one val and one test box")


@dataclass(frozen=True)
class PatchConfig:
    """The grid of flat patches (docs/science.md#patch-grid): centres every ``step_deg`` at |b| >= ``lat_min_deg``."""

    npix: int = 64
    size_deg: float = 20.0
    step_deg: float = 5.0
    lat_min_deg: float = 25.0
    mask_lat_deg: float = 15.0
    chunk: int = 64
    split: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self) -> None:
        _require(self.npix >= 8 and self.npix % 2 == 0, f"patches.npix={self.npix} must be even and >= 8")
        _require(0 < self.size_deg < 90, f"patches.size_deg={self.size_deg} must lie in (0, 90)")
        _require(0 < self.step_deg <= 90, f"patches.step_deg={self.step_deg} must lie in (0, 90]")
        _require(0 <= self.lat_min_deg <= 90, f"patches.lat_min_deg={self.lat_min_deg} must lie in [0, 90]")
        _require(self.chunk > 0, "patches.chunk must be > 0")
        _require(0 <= self.mask_lat_deg < 90, f"patches.mask_lat_deg={self.mask_lat_deg} must lie in [0, 90)")
        edge = self.lat_min_deg - self.size_deg / 2
        _require(edge >= self.mask_lat_deg - 1e-9,
                 f"patch grid crosses the excluded band: centres at |b| >= {self.lat_min_deg} deg with "
                 f"size {self.size_deg} deg reach |b| = {edge:g} deg < mask_lat_deg = "
                 f"{self.mask_lat_deg} deg; raise lat_min_deg or shrink size_deg")

    @property
    def pixel_arcmin(self) -> float:
        """Patch pixel side in arcmin."""
        return self.size_deg * 60.0 / self.npix

    @property
    def lmax(self) -> int:
        """Nyquist multipole of the patch, ``pi / pixel``."""
        return int(math.floor(180.0 / (self.size_deg / self.npix)))


# gan.selection: checkpoint scores (gan/selection.py)
SELECTIONS = ("d_F", "d_F+minkowski", "d_F+minkowski+borders", "d_F+minkowski+artefacts")
# gan.recipe: paper — none of these additions, one learning rate for all three nets (gan.lr), d_F selection
PAPER_RECIPE = {"ema_decay": 0.0, "r1_gamma": 0.0, "augment_fakes": False, "disc_roll": False, "minibatch_std": False,
                "spectral_norm": False, "power_directions": False, "power_handedness": False, "power_borders": False,
                "power_levels": False, "selection": "d_F", "gen_noise": False, "gen_fullres": False,
                "gen_bandlimit": False, "gen_crop_px": 0, "gen_crop_random": False, "gen_level_spread": False,
                "symmetrise_samples": False, "condition_latitude": False}


@dataclass(frozen=True)
class GanConfig:
    """The dust DCGAN (docs/science.md#gan-architecture): architecture widths, optimiser and the d_F stopping schedule.

    The resolution is not set here: it is the patch set's ``npix`` (a multiple of 16).
    """

    latent_dim: int = 64
    gen_channels: int = 128
    gen_padding: str = "reflect"
    gen_noise: bool = True
    gen_fullres: bool = True
    gen_noise_fullres: bool = True
    gen_bandlimit: bool = True
    gen_crop_px: int = 0
    gen_crop_random: bool = False
    gen_level_spread: bool = True
    disc_width: int = 16
    power_width: int = 32
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    label_swap: float = 0.01
    steps: int = 800
    eval_every: int = 50
    refine_steps: int = 300
    refine_eval_every: int = 5
    log_every: int = 10
    sample_batch: int = 64
    recipe: str = "custom"
    disc_lr: float = 2e-4
    ema_decay: float = 0.0
    r1_gamma: float = 0.0
    augment_fakes: bool = False
    disc_roll: bool = False
    minibatch_std: bool = False
    spectral_norm: bool = False
    power_directions: bool = True
    power_handedness: bool = True
    power_borders: bool = True
    power_levels: bool = True
    selection: str = "d_F+minkowski"
    symmetrise_samples: bool = True
    condition_latitude: bool = True

    def __post_init__(self) -> None:
        _require(self.recipe in ("paper", "custom"), f"gan.recipe={self.recipe!r}: use paper or custom")
        if self.recipe == "paper":  # the paper's training, whatever the additions say
            for name, value in PAPER_RECIPE.items() | {"disc_lr": self.lr}.items():
                object.__setattr__(self, name, value)
        _require(self.disc_lr > 0, f"gan.disc_lr={self.disc_lr} must be > 0")
        _require(0 <= self.ema_decay < 1, f"gan.ema_decay={self.ema_decay} must lie in [0, 1) (0 = off)")
        _require(self.r1_gamma >= 0, f"gan.r1_gamma={self.r1_gamma} must be >= 0 (0 = off)")
        _require(self.selection in SELECTIONS,
                 f"gan.selection={self.selection!r}: use one of {', '.join(SELECTIONS)}")
        for name in ("latent_dim", "disc_width", "power_width", "batch_size", "steps", "eval_every",
                     "refine_eval_every", "log_every", "sample_batch"):
            _require(getattr(self, name) > 0, f"gan.{name}={getattr(self, name)} must be > 0")
        _require(self.gen_channels > 0 and self.gen_channels % 8 == 0,
                 f"gan.gen_channels={self.gen_channels} must be a positive multiple of 8")
        _require(self.gen_crop_px >= 0 and self.gen_crop_px % 8 == 0,
                 f"gan.gen_crop_px={self.gen_crop_px} must be a non-negative multiple of 8 (the canvas, "
                 f"npix + 2 gen_crop_px, must stay a multiple of 16)")
        _require(self.gen_crop_px > 0 or not self.gen_crop_random,
                 "gan.gen_crop_random needs gan.gen_crop_px > 0 (a canvas wider than the patch)")
        _require(self.condition_latitude or not self.gen_level_spread,
                 "gan.gen_level_spread needs gan.condition_latitude (the latitude sets the spread)")
        _require(self.gen_padding in ("zeros", "reflect", "replicate"),
                 f"gan.gen_padding={self.gen_padding!r} must be zeros, reflect or replicate")
        _require(self.refine_steps >= 0, f"gan.refine_steps={self.refine_steps} must be >= 0")
        _require(self.lr > 0, f"gan.lr={self.lr} must be > 0")
        _require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "gan.beta1 and gan.beta2 must lie in [0, 1)")
        _require(0 <= self.label_swap < 0.5, f"gan.label_swap={self.label_swap} must lie in [0, 0.5)")


@dataclass(frozen=True)
class GanEvalConfig:
    """Judging the trained generator against the real patches and two baselines (docs/science.md#generator-statistics).

    Histograms, Minkowski thresholds and nearest-neighbour distances use the unit-domain maps
    (``[-1, 1]``); spectra use the maps in MJy/sr.
    """

    n_bootstrap: int = 1000
    hist_bins: int = 50
    n_thresholds: int = 50
    slice_ells: tuple[float, ...] = (50.0, 150.0, 400.0)
    slice_bins: int = 20
    baseline_pad: int = 2
    latent_paths: int = 8
    latent_points: int = 32
    block_nside: int = 2

    def __post_init__(self) -> None:
        for name in ("n_bootstrap", "hist_bins", "slice_bins", "baseline_pad", "latent_paths"):
            _require(getattr(self, name) >= 1, f"gan_eval.{name}={getattr(self, name)} must be >= 1")
        _require(self.n_bootstrap >= 2, f"gan_eval.n_bootstrap={self.n_bootstrap} must be >= 2")
        _require(self.n_thresholds >= 2, f"gan_eval.n_thresholds={self.n_thresholds} must be >= 2")
        _require(self.latent_points >= 2, f"gan_eval.latent_points={self.latent_points} must be >= 2")
        _require(self.block_nside >= 1 and (self.block_nside & (self.block_nside - 1)) == 0,
                 f"gan_eval.block_nside={self.block_nside} must be a power of two")
        _require(len(self.slice_ells) == 3 and all(ell > 0 for ell in self.slice_ells),
                 f"gan_eval.slice_ells={list(self.slice_ells)}: give three positive multipoles")


@dataclass(frozen=True)
class InstrumentConfig:
    """Per-channel white-noise depth and Gaussian beam, in the order of ``simulation.freqs_ghz``."""

    noise_uk_arcmin: tuple[float, ...] = (0.0, 0.0, 0.0)
    beam_fwhm_arcmin: tuple[float, ...] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _require(all(v >= 0 for v in self.noise_uk_arcmin), "simulation noise_uk_arcmin must be >= 0")
        _require(all(v >= 0 for v in self.beam_fwhm_arcmin), "simulation beam_fwhm_arcmin must be >= 0")


@dataclass(frozen=True)
class InstrumentPresets:
    """Named instrument settings; ``simulation.instrument`` picks one (docs/science.md#multi-frequency-skies)."""

    noiseless: InstrumentConfig = field(default_factory=InstrumentConfig)
    planck: InstrumentConfig = field(default_factory=lambda: InstrumentConfig(
        noise_uk_arcmin=(33.0, 154.0, 800.0), beam_fwhm_arcmin=(7.3, 4.9, 4.8)))


@dataclass(frozen=True)
class SimulationConfig:
    """Multi-frequency separation data: CMB bank, dust SED, instrument (docs/science.md#multi-frequency-skies)."""

    freqs_ghz: tuple[float, ...] = (143.0, 353.0, 545.0)
    n_train: int = 4000
    n_spectra: int = 8
    cmb_pad: int = 2
    beta: float = 1.53
    temp_dust_k: float = 19.6
    beta_rms: float = 0.1
    temp_dust_rms_k: float = 1.5
    beta_corr_deg: float = 3.0
    train_fixed_sed: bool = False
    instrument: str = "planck"
    instruments: InstrumentPresets = field(default_factory=InstrumentPresets)
    norm_maps: int = 64
    held_out_realisations: int = 48

    def __post_init__(self) -> None:
        _require(len(self.freqs_ghz) >= 1 and all(f > 0 for f in self.freqs_ghz),
                 f"simulation.freqs_ghz={self.freqs_ghz}: give one or more positive frequencies [GHz]")
        _require(self.n_train >= 1, "simulation.n_train must be >= 1")
        _require(self.n_spectra >= 1, "simulation.n_spectra must be >= 1")
        _require(self.cmb_pad >= 2, f"simulation.cmb_pad={self.cmb_pad}: use >= 2 (1 would make the "
                                    "CMB periodic across the patch edges)")
        _require(0.5 <= self.beta <= 3.0, f"simulation.beta={self.beta}: use 0.5..3 (dust ≈ 1.5)")
        _require(self.temp_dust_k > 0, "simulation.temp_dust_k must be > 0 K")
        _require(self.beta_rms >= 0, "simulation.beta_rms must be >= 0")
        _require(0 <= self.temp_dust_rms_k < self.temp_dust_k / 4,
                 f"simulation.temp_dust_rms_k={self.temp_dust_rms_k}: use 0 <= rms < temp_dust_k / 4 "
                 "(a Gaussian T_d field must stay positive)")
        _require(self.beta_corr_deg > 0, "simulation.beta_corr_deg must be > 0 deg")
        names = [f.name for f in dataclasses.fields(InstrumentPresets)]
        _require(self.instrument in names,
                 f"simulation.instrument={self.instrument!r}: use one of {', '.join(names)}")
        for name in names:
            preset = getattr(self.instruments, name)
            _require(len(preset.noise_uk_arcmin) == len(self.freqs_ghz) == len(preset.beam_fwhm_arcmin),
                     f"simulation.instruments.{name}: give one noise level and one beam per frequency "
                     f"({len(self.freqs_ghz)} in simulation.freqs_ghz)")
        _require(self.norm_maps >= 1, "simulation.norm_maps must be >= 1")
        _require(self.held_out_realisations >= 1, "simulation.held_out_realisations must be >= 1")

    @property
    def preset(self) -> InstrumentConfig:
        """The instrument setting named by ``instrument``."""
        return getattr(self.instruments, self.instrument)


@dataclass(frozen=True)
class SeparationConfig:
    """The Bayesian ResUNet (docs/science.md#bayesian-resunet): architecture, Adamax, early stopping, MC dropout.

    The depth is not set here: it follows the patch ``npix`` (``ceil(log2 npix)`` encoder blocks).
    """

    base_channels: int = 8
    dropout: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30)
    spectrum_weight: float = 1.0
    batch_size: int = 32
    lr: float = 0.002
    beta1: float = 0.9
    beta2: float = 0.999
    max_epochs: int = 40
    steps_per_epoch: int = 32
    val_maps: int = 128
    patience: int = 10
    workers: int = 1
    mc_passes: int = 25
    mc_batch: int = 100
    calibration_maps: int = 4768
    prior: str = "cilc"
    input_norm: str = "per_map"

    def __post_init__(self) -> None:
        _require(self.prior in ("none", "cilc"), f"separation.prior={self.prior!r}: use none or cilc")
        _require(self.input_norm in ("global", "per_map"),
                 f"separation.input_norm={self.input_norm!r}: use global or per_map")
        for name in ("base_channels", "batch_size", "max_epochs", "patience", "mc_passes", "mc_batch"):
            _require(getattr(self, name) > 0, f"separation.{name}={getattr(self, name)} must be > 0")
        for name in ("steps_per_epoch", "val_maps", "workers", "calibration_maps"):
            _require(getattr(self, name) >= 0, f"separation.{name}={getattr(self, name)} must be >= 0")
        _require(len(self.dropout) >= 1 and all(0 <= r < 1 for r in self.dropout),
                 f"separation.dropout={self.dropout}: give one or more rates in [0, 1)")
        _require(any(r > 0 for r in self.dropout),
                 "separation.dropout: all rates are 0, so MC dropout would give no error bars")
        _require(self.spectrum_weight >= 0, "separation.spectrum_weight must be >= 0")
        _require(self.lr > 0, f"separation.lr={self.lr} must be > 0")
        _require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
                 "separation.beta1 and separation.beta2 must lie in [0, 1)")
        _require(self.mc_passes >= 2, "separation.mc_passes must be >= 2 to give a spread")


@dataclass(frozen=True)
class TuneConfig:
    """Optuna study of the MC-dropout rates (see :mod:`dustcmb.tuning.study`)."""

    n_trials: int = 10
    max_rate_bounds: tuple[float, ...] = (0.01, 0.5)
    shape_bounds: tuple[float, ...] = (0.0, 2.0)
    target_coverage: float = 0.68
    loss_tolerance: float = 0.05
    val_maps: int = 128
    startup_trials: int = 4
    pruner_warmup_epochs: int = 5

    def __post_init__(self) -> None:
        lo, hi = self.max_rate_bounds if len(self.max_rate_bounds) == 2 else (1, 0)
        _require(0 < lo < hi < 1, f"tune.max_rate_bounds={list(self.max_rate_bounds)}: give [low, high] in (0, 1)")
        lo, hi = self.shape_bounds if len(self.shape_bounds) == 2 else (1, 0)
        _require(lo < hi, f"tune.shape_bounds={list(self.shape_bounds)}: give [low, high] with low < high")
        _require(0 < self.target_coverage < 1, "tune.target_coverage must lie in (0, 1)")
        _require(self.loss_tolerance >= 0, "tune.loss_tolerance must be >= 0")
        for name in ("n_trials", "val_maps", "startup_trials"):
            _require(getattr(self, name) >= 1, f"tune.{name}={getattr(self, name)} must be >= 1")
        _require(self.pruner_warmup_epochs >= 0, "tune.pruner_warmup_epochs must be >= 0")


@dataclass(frozen=True)
class Params:
    """All parameters of one pipeline run."""

    seed: int = 20190101
    device: str = "auto"
    sky: SkyConfig = field(default_factory=SkyConfig)
    patches: PatchConfig = field(default_factory=PatchConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    separation: SeparationConfig = field(default_factory=SeparationConfig)
    gan_eval: GanEvalConfig = field(default_factory=GanEvalConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)

    def __post_init__(self) -> None:
        _require(self.device in ("auto", "cpu", "cuda"), f"device={self.device!r}: use auto, cpu or cuda")


def _build(cls: type, data: dict, where: str):
    """Recursively build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'params'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    _require(not unknown, f"unknown parameter(s) {', '.join(where + k for k in unknown)}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}{key}")
    return cls(**kwargs)


def _coerce(hint, value, name: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value or {}, name + ".")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin in (tuple, list):
        _require(isinstance(value, (list, tuple)), f"{name} must be a list, got {value!r}")
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(inner, v, name) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read a parameter file into :class:`Params`.

    Parameters
    ----------
    path : str or Path
        YAML file; missing sections take their defaults.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found; pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    return _build(Params, data, "")
