"""The latitude condition: the slab column against its formula, ring matching, and conditional networks."""

import json

import numpy as np
import pytest
import torch

from dustcmb.config import GanConfig
from dustcmb.errors import InputError
from dustcmb.evaluation.gan import latitude_levels
from dustcmb.gan.condition import network_input, same_latitude_rows, slab_log_column
from dustcmb.gan.models import Generator, MapDiscriminator, PowerDiscriminator
from dustcmb.gan.sample import load_generator, sample_to_npy
from dustcmb.gan.step import build, train_step
from dustcmb.stats.power import n_bins


def test_slab_log_column_is_ln_csc_of_the_latitude():
    """ln csc|b|: exactly 0 at either pole, ln 2 at ±30° (csc 30° = 2), the same in both hemispheres;
    float32 rounding is the only tolerance (1e-7 relative)."""
    values = slab_log_column([90.0, -90.0, 30.0, -30.0, 25.0])
    np.testing.assert_allclose(values, [0, 0, np.log(2), np.log(2), -np.log(np.sin(np.radians(25)))],
                               rtol=1e-6, atol=1e-7)
    for bad in ([0.0], [91.0]):
        with pytest.raises(InputError, match="0 < |b| <= 90"):
            slab_log_column(bad)


def test_same_latitude_rows_draw_only_from_the_target_ring():
    """Every drawn source row lies on its target's |b| ring (either hemisphere), ``per_target`` rows
    per target in target order, and a target without a ring is a clear error."""
    source = np.array([30.0, -30.0, 35.0, 40.0, -40.0, 60.0])
    target = np.array([-30.0, 40.0, 35.0])
    rows = same_latitude_rows(source, target, 3, np.random.default_rng(0))
    assert rows.shape == (9,)
    np.testing.assert_array_equal(np.abs(source[rows]), np.repeat(np.abs(target), 3))
    with pytest.raises(InputError, match="|b| = 45"):
        same_latitude_rows(source, [45.0], 1, np.random.default_rng(0))


def test_network_input_is_centred_at_45_degrees():
    """The networks' input is 0 at |b| = 45° (ln csc 45° = ln 2 / 2) and grows by 1 per 0.25 of ln csc|b|."""
    np.testing.assert_allclose(network_input(slab_log_column([45.0, 30.0])), [0.0, 2 * np.log(2)], atol=1e-6)


def test_conditional_networks_read_the_condition_and_refuse_to_go_without():
    """The same latents at two latitudes give two maps, and the generator's level path shifts a map
    by exactly gain · Δc before the tanh; the conditional discriminators' logits move with the
    condition (the power one through its projection alone: a zero readout removes the dependence); a
    plain network refuses a condition and a conditional one its absence. One step trains them all."""
    torch.manual_seed(0)
    z, low, high = torch.randn(3, 8), torch.full((3,), 0.8), torch.zeros(3)
    generator = Generator(32, 8, 16, conditional=True).eval()
    assert not torch.allclose(generator(z, low), generator(z, high))
    torch.nn.init.zeros_(generator.project.weight[:, -1])  # the condition reaches the map only by the level path
    torch.nn.init.constant_(generator.level.weight, 0.5)
    shift = torch.atanh(generator(z, low)) - torch.atanh(generator(z, high))
    torch.testing.assert_close(shift, torch.full_like(shift, 0.5 * 0.8 / 0.25), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="needs a condition"):
        generator(z)
    with pytest.raises(ValueError, match="takes none"):
        Generator(32, 8, 16)(z, low)
    maps = torch.rand(3, 1, 32, 32) * 2 - 1
    map_disc = MapDiscriminator(32, 4, conditional=True).eval()
    power_disc = PowerDiscriminator(32, 20.0, 4, torch.full((n_bins(32),), 1e-3), conditional=True).eval()
    for disc in (map_disc, power_disc):
        assert not torch.allclose(disc(maps, low), disc(maps, high))
        with pytest.raises(ValueError, match="needs a condition"):
            disc(maps)
    torch.nn.init.zeros_(power_disc.projection.readout.weight)
    torch.testing.assert_close(power_disc(maps, low), power_disc(maps, high))
    cfg = GanConfig(gen_channels=16, disc_width=4, power_width=4, batch_size=4, condition_latitude=True)
    nets = build(cfg, 32, 20.0, torch.full((n_bins(32),), 1e-3), "cpu", torch.zeros(n_bins(32)),
                 torch.stack([torch.zeros(4), torch.ones(4)]), torch.stack([torch.zeros(7), torch.ones(7)]))
    before = nets.power_disc.projection.readout.weight.detach().clone()
    losses = train_step(nets, maps[:, :, :, :].repeat(2, 1, 1, 1)[:4], torch.randn(4, 64), torch.Generator(),
                        cfg, torch.tensor([0.1, 0.2, 0.5, 0.8]))
    assert all(np.isfinite(list(losses.values())))
    assert not torch.equal(before, nets.power_disc.projection.readout.weight)
    assert GanConfig(recipe="paper", condition_latitude=True).condition_latitude is False


def test_conditional_sampling_draws_the_grids_latitudes(tmp_path):
    """``gan sample`` with a conditional generator draws each map at one of the config's grid latitudes:
    seeded, and a grid of other latitudes gives other maps from the same seed."""
    torch.manual_seed(0)
    model = tmp_path / "gan"
    model.mkdir()
    torch.save(Generator(32, 8, 16, conditional=True).state_dict(), model / "generator.pt")
    config = {"npix": 32, "size_deg": 20.0, "latent_dim": 8, "gen_channels": 16, "log_min": -4.0,
              "log_max": 1.0, "condition_latitude": True, "condition_values": [0.0, 0.3, 0.8]}
    (model / "config.json").write_text(json.dumps(config))
    assert load_generator(model)[0].conditional
    first = np.load(sample_to_npy(model, 5, tmp_path / "a.npy", seed=3))
    np.testing.assert_array_equal(first, np.load(sample_to_npy(model, 5, tmp_path / "b.npy", seed=3)))
    (model / "config.json").write_text(json.dumps(config | {"condition_values": [2.0, 2.5, 3.0]}))
    assert not np.allclose(first, np.load(sample_to_npy(model, 5, tmp_path / "c.npy", seed=3)))


def test_latitude_levels_follow_the_condition_only_in_a_conditional_generator():
    """Per ring, a plain generator's mean level is the same (the same latents at every ring: its maps
    ignore latitude), a conditional one with a level gain rises towards the plane; the real column is
    the mean of the real maps on each ring, and the error is the largest gap."""
    torch.manual_seed(0)
    lat = np.array([30.0, 30.0, 60.0, 60.0, 90.0])
    real = np.stack([np.full((32, 32), v, np.float32) for v in (0.2, 0.4, -0.1, -0.3, -0.5)])
    config = {"latent_dim": 8}
    plain = latitude_levels(Generator(32, 8, 16).eval(), config, real, lat, 64, seed=0, per_ring=4)
    assert plain["ring_lat_deg"] == [30.0, 60.0, 90.0]
    np.testing.assert_allclose(plain["real_mean_u"], [0.3, -0.2, -0.5], atol=1e-6)
    np.testing.assert_allclose(plain["gan_mean_u"], plain["gan_mean_u"][0], atol=1e-6)
    generator = Generator(32, 8, 16, conditional=True).eval()
    torch.nn.init.constant_(generator.level.weight, 1.0)
    levels = latitude_levels(generator, config | {"condition_latitude": True}, real, lat, 64, seed=0, per_ring=4)
    assert levels["gan_mean_u"][0] > levels["gan_mean_u"][1] > levels["gan_mean_u"][2]
    gaps = np.abs(np.subtract(levels["gan_mean_u"], levels["real_mean_u"]))
    assert levels["max_abs_error"] == pytest.approx(gaps.max())
