"""The GAN recipe's moving parts (docs/science.md#gan-architecture): the three networks with their
Adam optimisers, and one training step.

:mod:`dustcmb.gan.train` runs the loop around them (data, d_F evaluations, selection, checkpoints).
Each step updates each discriminator on a batch of real maps, then separately on a batch of generated
ones (so BatchNorm never mixes the two), with a fraction of the labels swapped; then the generator
on the sum of both discriminators' losses. The recipe's additions (EMA, R1, augmented fakes, and the
architecture switches of :mod:`dustcmb.gan.models`) are switches of :class:`~dustcmb.config.GanConfig`.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F

from dustcmb.config import GanConfig
from dustcmb.gan.models import Generator, MapDiscriminator, PowerDiscriminator
from dustcmb.gan.symmetry import random_roll, random_symmetry

DISCRIMINATORS = {"map_disc": "loss_d_map", "power_disc": "loss_d_power"}  # name -> its loss key
NETS = ("generator", *DISCRIMINATORS)


@dataclasses.dataclass
class GanNets:
    """The three networks and their Adam optimisers, by the names used in checkpoints."""

    generator: Generator
    map_disc: MapDiscriminator
    power_disc: PowerDiscriminator
    opts: dict[str, torch.optim.Adam]
    ema: Generator | None = None  # moving average of the generator's weights (gan.ema_decay > 0)

    def net(self, name: str) -> torch.nn.Module:
        """The network called ``name`` (one of :data:`NETS`)."""
        return getattr(self, name)

    @property
    def sampler(self) -> Generator:
        """The generator that makes the maps: the weight average if there is one."""
        return self.generator if self.ema is None else self.ema

    def state(self) -> dict:
        """Every network's and optimiser's state dict (live references, not copies)."""
        return {"nets": {k: self.net(k).state_dict() for k in NETS},
                "opts": {k: self.opts[k].state_dict() for k in NETS},
                "ema": None if self.ema is None else self.ema.state_dict()}

    def restore(self, state: dict) -> None:
        """Load a :meth:`state` (a snapshot or a checkpoint) into the networks and optimisers."""
        for name in NETS:
            self.net(name).load_state_dict(state["nets"][name])
            self.opts[name].load_state_dict(state["opts"][name])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """``ema ← decay · ema + (1 − decay) · generator``; BatchNorm statistics are copied."""
        for average, live in zip(self.ema.parameters(), self.generator.parameters()):
            average.lerp_(live, 1.0 - decay)
        for average, live in zip(self.ema.buffers(), self.generator.buffers()):
            average.copy_(live)


def build(cfg: GanConfig, npix: int, size_deg: float, mean_cl: torch.Tensor, device: str,
          mean_log_anisotropy: torch.Tensor | None = None, border_moments: torch.Tensor | None = None,
          level_moments: torch.Tensor | None = None) -> GanNets:
    """The three networks and their Adam optimisers, on ``device`` (``mean_log_anisotropy`` is used
    when ``cfg.power_directions``, ``border_moments`` when ``cfg.power_borders``, ``level_moments`` when
    ``cfg.power_levels``)."""
    directions = mean_log_anisotropy if cfg.power_directions else None
    if cfg.power_borders and border_moments is None:
        raise ValueError("gan.power_borders needs the real maps' border_moments")
    if cfg.power_levels and level_moments is None:
        raise ValueError("gan.power_levels needs the real maps' level_moments")
    conditional = cfg.condition_latitude
    nets = {"generator": Generator(npix, cfg.latent_dim, cfg.gen_channels, cfg.gen_padding, cfg.gen_noise,
                                   cfg.gen_fullres, cfg.gen_noise_fullres, cfg.gen_bandlimit, cfg.gen_crop_px,
                                   conditional, cfg.gen_crop_random, cfg.gen_level_spread),
            "map_disc": MapDiscriminator(npix, cfg.disc_width, cfg.spectral_norm, cfg.minibatch_std, conditional),
            "power_disc": PowerDiscriminator(npix, size_deg, cfg.power_width, mean_cl, directions,
                                             cfg.power_handedness, border_moments if cfg.power_borders else None,
                                             conditional, level_moments if cfg.power_levels else None)}
    nets = {name: net.to(device) for name, net in nets.items()}
    opts = {name: torch.optim.Adam(net.parameters(), lr=cfg.lr if name == "generator" else cfg.disc_lr,
                                   betas=(cfg.beta1, cfg.beta2)) for name, net in nets.items()}
    ema = copy.deepcopy(nets["generator"]).requires_grad_(False) if cfg.ema_decay > 0 else None
    return GanNets(**nets, opts=opts, ema=ema)


def _labels(n: int, target: float, swap: float, rng: torch.Generator, device) -> torch.Tensor:
    """Target labels with a fraction ``swap`` flipped (noisy labels keep the discriminators honest)."""
    flipped = torch.rand(n, generator=rng) < swap
    return torch.where(flipped, 1.0 - target, target).to(device)


def _r1(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """R1 penalty ``E ‖∇_x D(x)‖²`` on real maps: it flattens the discriminator around the data."""
    (grad,) = torch.autograd.grad(logits.sum(), maps, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def train_step(nets: GanNets, real: torch.Tensor, z: torch.Tensor, rng: torch.Generator,
               cfg: GanConfig, condition: torch.Tensor | None = None) -> dict[str, float]:
    """One GAN step: each discriminator on real then fake maps, then the generator on both.

    With ``cfg.augment_fakes`` the generated maps get their own random symmetry of the square before
    the discriminators see them (differentiably, so the generator learns through it), like the real
    ones; ``cfg.r1_gamma`` adds ``γ/2 · R1`` to each discriminator's real-map loss. With ``cfg.disc_roll``
    the map discriminator sees every real and generated map circularly shifted by a fresh random offset
    (:func:`~dustcmb.gan.symmetry.random_roll`), in its own update and in the generator's.

    Parameters
    ----------
    real : torch.Tensor [B, 1, N, N]
        Augmented real maps in the unit domain.
    z : torch.Tensor [B, latent_dim]
        Latent vectors for this step.
    condition : torch.Tensor [B], optional
        With ``cfg.condition_latitude``, the real maps' ``ln csc|b|``: the generated maps are drawn at
        the same latitudes, and both discriminators judge every map at its own.

    Returns
    -------
    dict
        BCE losses: ``loss_d_map``, ``loss_d_power`` (mean of the real and fake updates), ``loss_g``.
    """
    fake = nets.generator(z, condition)
    if cfg.augment_fakes:
        fake = random_symmetry(fake, rng)
    losses = {}

    def seen_by(name: str, maps: torch.Tensor) -> torch.Tensor:
        return random_roll(maps, rng) if cfg.disc_roll and name == "map_disc" else maps

    for name, loss_key in DISCRIMINATORS.items():
        total = 0.0
        # Two updates, real then fake, so BatchNorm never mixes the two populations in one batch.
        for maps, target in ((seen_by(name, real).requires_grad_(cfg.r1_gamma > 0), 1.0),
                             (seen_by(name, fake.detach()), 0.0)):
            labels = _labels(len(maps), target, cfg.label_swap, rng, maps.device)
            logits = nets.net(name)(maps, condition)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            if target == 1.0 and cfg.r1_gamma > 0:
                loss = loss + 0.5 * cfg.r1_gamma * _r1(logits, maps)
            nets.opts[name].zero_grad(set_to_none=True)
            loss.backward()
            nets.opts[name].step()
            total += loss.item() / 2
        losses[loss_key] = total
    ones = torch.ones(len(z), device=z.device)
    loss_g = sum(F.binary_cross_entropy_with_logits(nets.net(name)(seen_by(name, fake), condition), ones)
                 for name in DISCRIMINATORS)
    nets.opts["generator"].zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opts["generator"].step()
    if nets.ema is not None:
        nets.update_ema(cfg.ema_decay)
    losses["loss_g"] = loss_g.item()
    return losses
