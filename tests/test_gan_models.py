"""The GAN's networks: paper Table 1 shapes at 256², a full training step at that size, symmetries."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dustcmb.config import GanConfig
from dustcmb.errors import ConfigError
from dustcmb.gan.models import (
    LEVEL_PROBS,
    SPREAD_GAIN_SCALE,
    BandLimit,
    Generator,
    MapDiscriminator,
    NoiseInjection,
    PowerDiscriminator,
    log_anisotropy,
    log_handedness,
    pixel_quantiles,
    random_window,
    shared_noise,
)
from dustcmb.gan.step import NETS, build, train_step
from dustcmb.gan.symmetry import random_symmetry
from dustcmb.stats.power import n_bins


def _output_shapes(module: nn.Sequential, x: torch.Tensor) -> list[tuple]:
    shapes = []
    for layer in module:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


def test_paper_profile_matches_table_1():
    """Paper profile: z in R^64 -> 16²x512 -> 32²x256 -> 64²x128 -> 128²x64 -> 256²x1, tanh."""
    torch.manual_seed(0)
    g = Generator(npix=256, latent_dim=64, channels=512)
    assert g.project.in_features == 64 and g.project.out_features == 16 * 16 * 512
    z = torch.randn(2, 64)
    x = g.project_act(g.project(z).view(-1, 512, 16, 16))
    assert tuple(x.shape[1:]) == (512, 16, 16)
    expected = [(256, 32, 32), (128, 64, 64), (64, 128, 128), (1, 256, 256)]
    for block, shape in zip(g.blocks, expected):
        up, conv = block[0], block[1]
        assert isinstance(up, nn.Upsample) and up.mode == "bilinear" and up.scale_factor == 2
        assert conv.kernel_size == (5, 5) and conv.stride == (1, 1)
        x = block(x)
        assert tuple(x.shape[1:]) == shape
    assert [type(m) for m in g.blocks[0][2:]] == [nn.LeakyReLU, nn.BatchNorm2d]
    assert len(g.blocks[-1]) == 2, "no activation or BatchNorm after the last convolution"
    assert all(bn.momentum == 0.1 for bn in g.modules() if isinstance(bn, nn.BatchNorm2d))
    out = g(z)
    assert out.shape == (2, 1, 256, 256) and out.abs().max() <= 1
    # He-normal: weight std ≈ sqrt(2 / fan_in) (fan_in = 512·25 for the first conv; 3 % sampling error)
    w = g.blocks[0][1].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (512 * 25)), rel=0.03)


def test_paper_discriminators_shapes():
    d = MapDiscriminator(npix=256, width=64)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    shapes = [s for s, m in zip(_output_shapes(d.features, torch.zeros(2, 1, 256, 256)), d.features)
              if isinstance(m, nn.Conv2d)]
    assert shapes == [(64, 128, 128), (128, 64, 64), (256, 32, 32), (512, 16, 16)]
    norms = [type(m) for m in d.features[:2]]
    assert norms == [nn.Conv2d, nn.LeakyReLU], "no BatchNorm after the first convolution"
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 3
    # the power discriminator reads the 94 reported bins at 256² (rings 3 … 96, below the band-limit taper)
    p = PowerDiscriminator(npix=256, size_deg=20.0, width=64, mean_cl=torch.ones(94))
    shapes = _output_shapes(p.features, torch.zeros(2, 1, 94))
    convs = [s for s, m in zip(shapes, p.features) if isinstance(m, nn.Conv1d)]
    assert convs == [(64, 47), (128, 23), (256, 11)]
    n_map = sum(x.numel() for x in d.parameters())
    n_pow = sum(x.numel() for x in p.parameters())
    assert n_pow < n_map / 10, "the power discriminator is the small one"


def test_one_training_step_at_paper_size():
    """One full GAN step at 256² (paper widths, batch 2, conditioned on latitude) runs on CPU and moves
    every network."""
    torch.manual_seed(0)
    cfg = GanConfig(latent_dim=64, gen_channels=512, disc_width=64, power_width=64, batch_size=2)
    moments, levels = torch.stack([torch.zeros(4), torch.ones(4)]), torch.stack([torch.zeros(7), torch.ones(7)])
    nets = build(cfg, 256, 20.0, torch.full((n_bins(256),), 1e-6), "cpu", torch.zeros(n_bins(256)), moments, levels)
    before = {k: [p.detach().clone() for p in nets.net(k).parameters()] for k in NETS}
    rng = torch.Generator().manual_seed(1)
    real = torch.rand(2, 1, 256, 256) * 2 - 1
    assert cfg.condition_latitude  # the default: latitude-conditioned networks
    losses = train_step(nets, real, torch.randn(2, 64), rng, cfg, torch.tensor([0.1, 0.7]))
    assert set(losses) == {"loss_d_map", "loss_d_power", "loss_g"}
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    for name in NETS:
        assert any(not torch.equal(a, b) for a, b in zip(before[name], nets.net(name).parameters())), name


def test_every_recipe_addition_trains_and_the_paper_recipe_turns_them_off():
    """One 64² step with all additions (TTUR, EMA, R1, augmented fakes, rolled maps, minibatch-std, spectral norm,
    directional power discriminator with border and level features; these need the real maps' moments)
    moves every network; the EMA generator moves by (1 − decay) of the live one's first step exactly.
    ``recipe: paper`` resets every addition and the discriminators' learning rate."""
    torch.manual_seed(0)
    cfg = GanConfig(gen_channels=32, disc_width=4, power_width=4, batch_size=4, disc_lr=4e-4, ema_decay=0.9,
                    r1_gamma=1.0, augment_fakes=True, minibatch_std=True, spectral_norm=True, power_directions=True,
                    disc_roll=True)
    borders, levels = torch.stack([torch.zeros(4), torch.ones(4)]), torch.stack([torch.zeros(7), torch.ones(7)])
    nets = build(cfg, 64, 20.0, torch.full((n_bins(64),), 1e-6), "cpu", torch.zeros(n_bins(64)), borders, levels)
    assert nets.power_disc.directional and nets.power_disc.borders and nets.power_disc.levels
    assert nets.generator.spread is not None
    with pytest.raises(ValueError, match="border_moments"):
        build(cfg, 64, 20.0, torch.full((n_bins(64),), 1e-6), "cpu", torch.zeros(n_bins(64)))
    with pytest.raises(ValueError, match="level_moments"):
        build(cfg, 64, 20.0, torch.full((n_bins(64),), 1e-6), "cpu", torch.zeros(n_bins(64)), borders)
    assert nets.opts["map_disc"].param_groups[0]["lr"] == 4e-4 and nets.opts["generator"].param_groups[0]["lr"] == 2e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in nets.map_disc.modules())
    start = [p.detach().clone() for p in nets.generator.parameters()]
    rng = torch.Generator().manual_seed(1)
    losses = train_step(nets, torch.rand(4, 1, 64, 64) * 2 - 1, torch.randn(4, 64), rng, cfg, torch.rand(4))
    assert all(math.isfinite(v) for v in losses.values())
    for a, live, average in zip(start, nets.generator.parameters(), nets.ema.parameters()):
        torch.testing.assert_close(average, a + 0.1 * (live - a))
    paper = GanConfig(recipe="paper", disc_lr=4e-4, ema_decay=0.9, r1_gamma=1.0, augment_fakes=True, disc_roll=True,
                      minibatch_std=True, spectral_norm=True, power_directions=True, selection="d_F+minkowski")
    assert paper == GanConfig(recipe="paper")
    assert paper.disc_lr == paper.lr and paper.ema_decay == 0 and not paper.spectral_norm
    assert not paper.power_levels and not paper.gen_level_spread


def test_random_roll_shifts_each_map_circularly_and_passes_gradients():
    """Every output map is its input rolled by one offset per axis (found by search over all N² offsets,
    exact equality), the offsets differ between maps, and the gradient of a sum is all ones."""
    from dustcmb.gan.symmetry import random_roll

    maps = torch.randn(6, 2, 16, 16, requires_grad=True)
    out = random_roll(maps, torch.Generator().manual_seed(3))
    offsets = set()
    for x, y in zip(maps.detach(), out.detach()):
        found = [(a, b) for a in range(16) for b in range(16) if torch.equal(torch.roll(x, (-a, -b), (-2, -1)), y)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 1
    out.sum().backward()
    assert torch.equal(maps.grad, torch.ones_like(maps))


def test_power_discriminator_sees_spectrum_only_through_gradients():
    """The fractional spectrum is 0 for maps with the mean real spectrum and passes gradients."""
    from dustcmb.stats.power import power_spectrum

    torch.manual_seed(0)
    maps = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    _, cl = power_spectrum(maps[:, 0], 20.0)
    p = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=cl[0].float())
    frac = p.fractional_spectrum(maps[:1].float())
    assert frac.shape == (1, 1, n_bins(32)) and frac.abs().max() < 1e-5
    maps = maps.float().requires_grad_(True)
    p(maps).sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0


def test_log_anisotropy_reads_zero_for_white_noise_and_sees_row_streaks():
    """White noise has the same expected power in every mode, so ln(P_axes / P_diagonals) is 0 up to
    the scatter of the mode averages: 400 maps put the mean within 4 of its standard errors in every
    ring. Adding a field constant along rows (horizontal streaks) puts its power on the k_x = 0 axis:
    every ring then reads > 0.5, a 1.6× excess (the streak field carries as much variance as the noise,
    all of it in the one k_x = 0 column of each ring, which is part of the axis wedge)."""
    rng = torch.Generator().manual_seed(1)
    noise = torch.randn(400, 32, 32, dtype=torch.float64, generator=rng)
    white = log_anisotropy(noise, 20.0)
    assert white.shape == (400, n_bins(32))
    assert torch.all(white.mean(0).abs() < 4 * white.std(0) / 400**0.5)
    streaks = noise + torch.randn(400, 32, 1, dtype=torch.float64, generator=rng).expand(-1, -1, 32)
    assert torch.all(log_anisotropy(streaks, 20.0).mean(0) > 0.5)
    assert torch.allclose(log_anisotropy(streaks.transpose(-1, -2), 20.0), log_anisotropy(streaks, 20.0))


def test_log_handedness_reads_zero_for_white_noise_and_sees_one_diagonal():
    """White noise: both rows within 4 standard errors of 0 in every ring (400 maps). A field constant
    along the diagonals i + j = c (streaks leaning one way) puts its power at k_x = k_y, in the
    diagonal half: every ring's diagonal row reads > 0.5, while :func:`log_anisotropy` would read the
    same for streaks along either diagonal. A transpose negates the axis row exactly (float64 rounding,
    asserted 1e-9); a left-right flip negates the diagonal row's set mean up to the grid's own
    asymmetry (an even grid has no centre pixel: measured 0.013 against a mean of 1.0–2.7, asserted
    0.05)."""
    rng = torch.Generator().manual_seed(2)
    noise = torch.randn(400, 32, 32, dtype=torch.float64, generator=rng)
    white = log_handedness(noise, 20.0)
    assert white.shape == (400, 2, n_bins(32))
    assert torch.all(white.mean(0).abs() < 4 * white.std(0) / 400**0.5)
    i, j = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    lines = torch.randn(400, 63, dtype=torch.float64, generator=rng)[:, i + j]
    handed = log_handedness(noise + lines, 20.0)
    assert torch.all(handed[:, 1].mean(0).abs() > 0.5), handed[:, 1].mean(0)
    flipped = log_handedness((noise + lines).flip(-1), 20.0)[:, 1].mean(0)
    torch.testing.assert_close(flipped, -handed[:, 1].mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(log_handedness(noise.transpose(-1, -2), 20.0)[:, 0], -white[:, 0], atol=1e-9, rtol=0)
    lumped = [log_anisotropy(m, 20.0).mean(0) for m in (noise + lines, (noise + lines).flip(-1))]
    torch.testing.assert_close(*lumped, atol=0.05, rtol=0)


def test_handed_power_discriminator_takes_two_more_channels():
    mean = torch.ones(n_bins(32))
    handed = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, mean_log_anisotropy=mean * 0,
                                handed=True)
    assert handed.features[0].in_channels == 4
    assert handed(torch.rand(3, 1, 32, 32) * 2 - 1).shape == (3,)


def test_directional_power_discriminator_takes_the_anisotropy_channel():
    mean = torch.ones(n_bins(32))
    plain = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean)
    directional = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean,
                                     mean_log_anisotropy=torch.zeros(n_bins(32)))
    assert plain.features[0].in_channels == 1 and directional.features[0].in_channels == 2
    maps = torch.randn(4, 1, 32, 32).requires_grad_(True)
    directional(maps).sum().backward()
    assert maps.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mean_log_anisotropy"):
        PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, mean_log_anisotropy=torch.zeros(3))


def test_border_features_let_the_power_discriminator_see_the_outer_rows():
    """The spectrum's window is 0.01 across the outermost pixel row (32²), so a plain power
    discriminator's gradient there is under 1 % of the interior's (measured 0.5–0.7 % over three
    initialisations; asserted < 2 %); with ``border_moments`` the head sees the strips' gradient
    ratios and that row gets 26–290 % (asserted > 10 %). The ratios enter standardised: the real
    maps' own moments give features of mean 0 over the set (float32 rounding, asserted 1e-4)."""
    from dustcmb.stats.borders import border_contrast

    torch.manual_seed(0)
    mean = torch.ones(n_bins(32))
    maps = torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    ratios = torch.log(border_contrast(maps[:, 0])[:, 0])
    moments = torch.stack([ratios.mean(0), ratios.std(0)])
    plain = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean)
    seeing = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, border_moments=moments)
    assert seeing.head.in_features == plain.head.in_features + 4
    features = (ratios - seeing.border_moments[0]) / seeing.border_moments[1]
    torch.testing.assert_close(features.mean(0), torch.zeros(4), atol=1e-4, rtol=0)
    for net, outer_row_sees in ((plain, False), (seeing, True)):
        x = maps[:4].clone().requires_grad_(True)
        net.eval()(x).sum().backward()
        grad = x.grad[:, 0].abs()
        outer = float(grad[:, 0, :].mean() / grad[:, 12:20, 12:20].mean())
        assert (outer > 0.1) if outer_row_sees else (outer < 0.02), outer
    with pytest.raises(ValueError, match="border_moments"):
        PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, border_moments=moments * 0)


def test_level_features_let_the_power_discriminator_see_a_map_s_level():
    """The fractional spectrum removes each map's mean, so a plain power discriminator gives the same
    logit to a map and to that map 0.3 u brighter (float32 rounding, measured 4e-9; asserted 1e-6); with
    ``level_moments`` the head also sees the pixel quantiles, which shift by exactly that offset, and the
    logit moves. The quantiles are numpy's linear-interpolation ones (float64, asserted 1e-12)."""
    torch.manual_seed(0)
    maps = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    quantiles = pixel_quantiles(maps[:, 0])
    expected = np.quantile(maps[:, 0].flatten(1).numpy(), LEVEL_PROBS, axis=1).T
    np.testing.assert_allclose(quantiles.numpy(), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(pixel_quantiles(maps[:, 0] + 0.3), quantiles + 0.3, rtol=0, atol=1e-12)
    moments = torch.stack([quantiles.mean(0), quantiles.std(0)]).float()
    mean, maps = torch.ones(n_bins(32)), maps.float()
    plain = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean).eval()
    seeing = PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, conditional=True,
                                level_moments=moments).eval()
    torch.testing.assert_close(plain(maps + 0.3), plain(maps), rtol=0, atol=1e-6)
    condition = torch.full((16,), 0.7)
    assert float((seeing(maps + 0.3, condition) - seeing(maps, condition)).abs().min()) > 1e-4
    with pytest.raises(ValueError, match="level_moments"):
        PowerDiscriminator(npix=32, size_deg=20.0, width=4, mean_cl=mean, level_moments=moments[:, :3])


def test_random_symmetry_draws_all_eight_symmetries_of_the_square():
    """Every output is one of the 8 images of its input; 400 draws hit all 8 (each has probability
    1/8, so missing one has probability < 1e-22), with or without a channel axis."""
    square = torch.arange(16, dtype=torch.float32).view(4, 4)
    images = [torch.rot90(square, k) for k in range(4)] + [torch.rot90(square, k).flip(-1) for k in range(4)]
    for maps in (square.repeat(400, 1, 1, 1), square.repeat(400, 1, 1)):
        out = random_symmetry(maps, torch.Generator().manual_seed(0)).reshape(400, 4, 4)
        hits = [next(i for i, im in enumerate(images) if torch.equal(y, im)) for y in out]
        assert sorted(set(hits)) == list(range(8))


def test_bandlimit_keeps_smooth_non_periodic_maps_and_removes_the_corners():
    """A smooth map that is not periodic (a tilt plus a parabola, 0.8 in u from edge to edge) comes
    back within 1e-3: the mirror extension keeps the filter from wrapping one edge onto the other
    (a plain periodic FFT filter rings there by 0.06). White noise keeps its power below 0.6 ℓ_Nyq
    (to 1 %) and loses ≥ 95 % of it in the Fourier-grid corners beyond ℓ_Nyq (measured 1 %: the crop
    of the filtered extension is itself not periodic, which leaks a little back)."""
    band = BandLimit(64)
    x = torch.linspace(-1, 1, 64)
    smooth = (0.5 * x[None, :] + 0.3 * x[:, None] ** 2).view(1, 1, 64, 64)
    assert (band(smooth) - smooth).abs().max() < 1e-3
    noise = torch.randn(16, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    power_in, power_out = ((torch.fft.fft2(m[:, 0]).abs() ** 2).mean(0).numpy() for m in (noise, band(noise)))
    k = np.abs(np.fft.fftfreq(64, 1 / 64))
    fraction = np.hypot(k[:, None], k[None, :]) / 32
    low, corner = fraction < 0.6, fraction > 1.05
    assert abs(power_out[low].mean() / power_in[low].mean() - 1) < 0.01
    assert power_out[corner].mean() / power_in[corner].mean() < 0.05
    generator = Generator(npix=32, latent_dim=8, channels=16, bandlimit=True)
    assert generator(torch.randn(2, 8)).shape == (2, 1, 32, 32)
    assert sum(p.numel() for p in generator.parameters()) == sum(
        p.numel() for p in Generator(npix=32, latent_dim=8, channels=16).parameters())


def test_rejects_bad_resolution():
    with pytest.raises(ValueError, match="multiple of 16"):
        Generator(npix=40, latent_dim=8, channels=16)


def test_noise_injection_starts_as_the_plain_generator_and_learns_its_strength():
    """With strengths at their initial 0 the noisy generator is the plain one (same weights, same maps);
    with strengths set, two draws for one z differ, and every strength gets a gradient."""
    torch.manual_seed(0)
    noisy = Generator(npix=32, latent_dim=8, channels=16, padding="reflect", noise=True).eval()
    injections = [m for m in noisy.modules() if isinstance(m, NoiseInjection)]
    assert len(injections) == 3  # after every convolution but the output one
    torch.manual_seed(0)  # the same initial weights: the injections draw nothing when built
    plain = Generator(npix=32, latent_dim=8, channels=16, padding="reflect").eval()
    z = torch.randn(4, 8)
    torch.testing.assert_close(noisy(z), plain(z))
    for module in injections:
        module.strength.data.fill_(0.5)
    assert (noisy(z) - noisy(z)).abs().max() > 1e-3
    noisy(z).square().mean().backward()
    assert all(float(m.strength.grad.abs().sum()) > 0 for m in injections)


def test_shared_noise_makes_a_batch_differ_only_through_z():
    """Under ``shared_noise`` one forward gives equal maps for equal latent vectors (the noise maps are
    shared by the batch) and the noise is per map again afterwards."""
    torch.manual_seed(0)
    noisy = Generator(npix=32, latent_dim=8, channels=16, padding="reflect", noise=True).eval()
    for module in noisy.modules():
        if isinstance(module, NoiseInjection):
            module.strength.data.fill_(0.5)
    z = torch.randn(1, 8).repeat(3, 1)
    with shared_noise(noisy):
        shared = noisy(z)
    torch.testing.assert_close(shared[1:], shared[:1].expand(2, -1, -1, -1))
    assert (noisy(z)[1:] - noisy(z)[:1]).abs().max() > 1e-3


def test_fullres_layer_adds_one_nonlinear_full_resolution_convolution():
    """``fullres`` inserts a c/8 -> c/8 conv (+ LeakyReLU, BatchNorm) at N² before the output conv and
    changes nothing else: the other layers keep their shapes, the output stays [B, 1, N, N] in [-1, 1]."""
    torch.manual_seed(0)
    plain = Generator(npix=32, latent_dim=8, channels=16, padding="reflect")
    full = Generator(npix=32, latent_dim=8, channels=16, padding="reflect", fullres=True, noise=True)
    assert len(full.blocks) == len(plain.blocks) + 1
    x = full.project_act(full.project(torch.randn(3, 8)).view(-1, 16, 2, 2))
    shapes = [tuple((x := block(x)).shape[1:]) for block in full.blocks]
    assert shapes == [(8, 4, 4), (4, 8, 8), (2, 16, 16), (2, 32, 32), (1, 32, 32)]
    assert not any(isinstance(m, nn.Upsample) for m in full.blocks[-1]), "the output conv stays at N²"
    assert [type(m) for m in full.blocks[3][2:]] == [NoiseInjection, nn.LeakyReLU, nn.BatchNorm2d]
    assert len(full.blocks[-1]) == 1 and full(torch.randn(3, 8)).abs().max() <= 1  # tanh after the blocks
    assert sum(isinstance(m, NoiseInjection) for m in full.modules()) == 4  # every conv but the output one



def test_coarse_noise_stops_injecting_below_half_resolution():
    """``noise_fullres=False`` keeps the noise maps of the N/8, N/4 and N/2 convolutions and drops
    those at N² (the last upsampled conv and the fullres one): the injections sit exactly where the
    feature maps are at most N/2 across."""
    torch.manual_seed(0)
    coarse = Generator(npix=32, latent_dim=8, channels=16, padding="reflect", fullres=True, noise=True,
                       noise_fullres=False)
    x = coarse.project_act(coarse.project(torch.randn(2, 8)).view(-1, 16, 2, 2))
    sides = []
    for block in coarse.blocks:
        x = block(x)
        sides += [x.shape[-1]] * sum(isinstance(m, NoiseInjection) for m in block)
    assert sides == [4, 8, 16]
    assert coarse(torch.randn(2, 8)).shape == (2, 1, 32, 32)

def test_generator_padding_option():
    """``reflect`` keeps a constant map constant up to the edges; ``zeros`` (the paper's) darkens the rim."""
    with pytest.raises(ValueError, match="padding"):
        Generator(npix=32, latent_dim=8, channels=16, padding="circular")
    for padding, border_changes in (("zeros", True), ("reflect", False)):
        conv = Generator(npix=32, latent_dim=8, channels=16, padding=padding).blocks[-1][1]
        assert conv.padding_mode == padding
        with torch.no_grad():
            conv.weight.fill_(1.0 / 25 / conv.in_channels)
            conv.bias.zero_()
            out = conv(torch.ones(1, conv.in_channels, 16, 16))[0, 0]
        assert torch.allclose(out[2:-2, 2:-2], torch.ones(12, 12))
        assert bool((out - 1).abs().max() > 0.1) == border_changes


def test_morphology_selection_distance():
    """0 for the real set itself; it grows with a morphology change the spectra cannot see: the same
    Gaussian maps with their sign flipped (a skewed histogram mirrored) move V0–V2 sideways."""
    from dustcmb.gan.selection import minkowski_distance, minkowski_moments
    from fields import gaussian_fields

    g = gaussian_fields(lambda ell: ell**-2.5, 64, 32, 20.0, seed=0)
    skewed = np.tanh(np.exp(0.8 * g / g.std()) - 1.2)  # lognormal-like tails, unit domain
    moments = minkowski_moments(skewed)
    assert minkowski_distance(moments, skewed) == 0.0
    assert minkowski_distance(moments, -skewed) > 1.0


def test_frame_selection_distance_sees_a_smoothed_outer_row():
    """0 for the real set itself. For a fresh draw of the same field, z² per statistic has mean 1 when
    the two sets' means scatter independently (observed 0.08–0.64 over five draws; these crops share
    large scales, so their means scatter less): below :data:`FRAME_DETECTED`. A frame that no
    spectrum shows is detected: the outer row copied from the next one in makes the outer strip's
    rms gradient 0.81 of the interior's, ln 0.81 = 2.3 per-map σ = 9 standard errors of the means of
    32 + 32 maps, so one of the eight statistics alone contributes 9² / 8 ≈ 10 (observed 13)."""
    from dustcmb.gan.selection import FRAME_DETECTED, frame_distance, frame_moments
    from fields import gaussian_fields

    def draw(seed):
        return np.tanh(gaussian_fields(lambda ell: ell**-2.5, 64, 32, 20.0, seed=seed))

    real = draw(0)
    moments = frame_moments(real)
    assert frame_distance(moments, len(real), real) == 0.0
    assert frame_distance(moments, len(real), draw(1)) < FRAME_DETECTED
    framed = real.copy()
    framed[:, 0], framed[:, -1] = framed[:, 1], framed[:, -2]
    framed[:, :, 0], framed[:, :, -1] = framed[:, :, 1], framed[:, :, -2]
    assert frame_distance(moments, len(real), framed) > 2 * FRAME_DETECTED


def test_grain_selection_ratio_is_near_1_for_a_fresh_sky_and_sees_faint_pixel_noise():
    """The selection's grain ratio against 128 band-limited red crops (ℓ^-3, the cutter's window, 4
    crops of each of 32 larger fields, squashed by tanh like the unit domain): exactly 1 for the set
    itself; a fresh draw reads 1.02–1.10 over five draws (the corners hold window leakage and the
    tanh's harmonics, which scatter from set to set), below :data:`GRAIN_DETECTED`; white pixel noise
    of 0.2 % of the maps' rms, invisible in any spectrum bin below 0.75 ℓ_Nyq, reads 3.0."""
    from dustcmb.gan.selection import GRAIN_DETECTED, grain_ratio
    from dustcmb.patches.cutter import lowpass_profile
    from dustcmb.stats.power import beyond_band_power

    def draw(seed, npix=64, side=256):
        k = np.fft.fftfreq(side, 1.0 / side)
        kabs = np.hypot(k[:, None], k[None, :])
        amplitude = np.where(kabs > 0, np.maximum(kabs, 1.0) ** -1.5, 0.0) * lowpass_profile(kabs / (side / 2))
        white = np.random.default_rng(seed).standard_normal((32, side, side))
        fields = np.fft.ifft2(np.fft.fft2(white) * amplitude).real
        crops = np.concatenate([fields[:, i:i + npix, j:j + npix] for i in (0, 128) for j in (0, 128)])
        return np.tanh(0.4 * crops / crops.std())

    real = draw(0)
    mean = beyond_band_power(real, 20.0).mean(axis=0)
    assert grain_ratio(mean, real, 20.0) == pytest.approx(1.0, rel=1e-12)
    assert grain_ratio(mean, draw(1), 20.0) < GRAIN_DETECTED
    grainy = real + 0.002 * real.std() * np.random.default_rng(9).standard_normal(real.shape)
    assert grain_ratio(mean, grainy, 20.0) > 2 * GRAIN_DETECTED


def test_crop_returns_the_centre_of_a_wider_canvas_beyond_the_padding():
    """``crop_px`` draws ``npix + 2 crop_px`` and returns its centre. Truth case: the last convolution with
    uniform weights and zero padding turns constant features into a constant map except within 2 px
    of the canvas edge (the padding's dark rim); cropped by 8 px, the patch is exactly constant,
    while the uncropped generator's rim is darker."""
    with pytest.raises(ValueError, match="crop_px"):
        Generator(npix=32, latent_dim=8, channels=16, crop_px=4)
    torch.manual_seed(0)
    cropped = Generator(npix=32, latent_dim=8, channels=16, crop_px=8).eval()
    assert cropped.project.out_features == 3 * 3 * 16  # canvas 48² = 3² cells of 16 px
    z = torch.randn(2, 8)
    torch.testing.assert_close(cropped(z), cropped.canvas(z)[..., 8:40, 8:40])
    for crop_px, rim_darker in ((8, False), (0, True)):
        generator = Generator(npix=32, latent_dim=8, channels=16, crop_px=crop_px).eval()
        last = generator.blocks[-1][-1]
        with torch.no_grad():
            last.weight.fill_(1.0 / 25 / last.in_channels)
            last.bias.zero_()
        generator.blocks[-1].register_forward_pre_hook(lambda _, args: (torch.ones_like(args[0]),))
        out = generator(z)[0, 0]
        interior = out[2:-2, 2:-2]
        torch.testing.assert_close(interior, torch.full_like(interior, math.tanh(1.0)))
        assert bool((out[0] < math.tanh(1.0) - 0.1).all()) == rim_darker


def test_random_crop_returns_windows_of_the_canvas_at_offsets_that_differ():
    """``random_crop`` returns, for every map, the ``npix²`` window of its canvas at some offset (found by
    search over all (2 crop_px + 1)² offsets, exact equality), the offsets differ between maps and
    reach every row and column offset, the canvas's edges included, and the gradient of a sum reaches
    exactly the window's pixels."""
    with pytest.raises(ValueError, match="random_crop"):
        Generator(npix=32, latent_dim=8, channels=16, random_crop=True)
    with pytest.raises(ConfigError, match="gen_crop_random"):
        GanConfig(gen_crop_random=True)
    torch.manual_seed(0)
    canvas = torch.randn(64, 1, 40, 40, requires_grad=True)
    out = random_window(canvas, 32)
    offsets = set()
    for x, y in zip(canvas.detach(), out.detach()):
        found = [(a, b) for a in range(9) for b in range(9) if torch.equal(x[:, a:a + 32, b:b + 32], y)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 32 and {a for a, _ in offsets} == {b for _, b in offsets} == set(range(9))
    out.sum().backward()
    assert torch.equal(canvas.grad.sum(dim=(1, 2, 3)), torch.full((64,), 32.0 * 32.0))
    generator = Generator(npix=32, latent_dim=8, channels=16, crop_px=8, random_crop=True).eval()
    assert generator(torch.randn(3, 8)).shape == (3, 1, 32, 32)


def test_level_spread_scales_each_map_s_mean_level_and_starts_as_the_plain_conditional_generator():
    """With its gain at 0 (the initialisation) a ``level_spread`` generator draws exactly the maps of the
    conditional one with the same weights; a gain of −1 sets every map's mean pre-tanh level to the
    latitude's ``level`` (0 here; the bias is read × ``SPREAD_GAIN_SCALE``), so ``atanh`` of the maps
    averages to 0 per map (float32 rounding of tanh and atanh, asserted 1e-5), while the maps still
    differ from each other."""
    with pytest.raises(ValueError, match="level_spread"):
        Generator(npix=32, latent_dim=8, channels=16, level_spread=True)
    with pytest.raises(ConfigError, match="gen_level_spread"):
        GanConfig(condition_latitude=False, gen_level_spread=True)
    torch.manual_seed(0)
    plain = Generator(npix=32, latent_dim=8, channels=16, conditional=True).eval()
    spread = Generator(npix=32, latent_dim=8, channels=16, conditional=True, level_spread=True).eval()
    spread.load_state_dict(plain.state_dict() | {k: v for k, v in spread.state_dict().items() if "spread" in k})
    z, condition = torch.randn(6, 8), torch.linspace(0.0, 0.8, 6)
    torch.testing.assert_close(spread(z, condition), plain(z, condition), rtol=0, atol=0)
    with torch.no_grad():
        spread.spread.bias.fill_(-1.0 / SPREAD_GAIN_SCALE)
        levels = torch.atanh(spread(z, condition)).mean(dim=(1, 2, 3))
    torch.testing.assert_close(levels, torch.zeros(6), rtol=0, atol=1e-5)
    assert float(plain(z, condition).std(dim=0).mean()) > 0.01
