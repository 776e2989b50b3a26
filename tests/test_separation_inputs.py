"""The ResUNet's inputs: per-map normalisation, the constrained-ILC prior channel, the correction head."""

import dataclasses

import numpy as np
import pytest
import torch

from dustcmb.config import Params, SeparationConfig, SimulationConfig
from dustcmb.errors import ConfigError
from dustcmb.separation.inputs import n_inputs, network_inputs
from dustcmb.separation.resunet import ResUNet
from dustcmb.simulation.dataset import Normalisation
from test_separation_ilc import FREQS, NPIX, SIZE, _sky

NORM = Normalisation(freqs_ghz=FREQS, input_offset_uk=(0.0, 50.0, 900.0), input_scale_uk=(100.0, 200.0, 4000.0),
                     target_offset_uk=0.0, target_scale_uk=100.0)


def _params(**separation) -> Params:
    """Noiseless, beam-free, fixed-SED physics at the test sky's geometry; the paper's inputs unless overridden."""
    separation = {"prior": "none", "input_norm": "global"} | separation
    sim = SimulationConfig(freqs_ghz=FREQS, beta=1.53, temp_dust_k=19.6, beta_rms=0.0, temp_dust_rms_k=0.0,
                           instrument="noiseless")
    base = Params()
    patches = dataclasses.replace(base.patches, npix=NPIX, size_deg=SIZE)
    return dataclasses.replace(base, simulation=sim, patches=patches,
                               separation=dataclasses.replace(base.separation, **separation))


def test_the_prior_channel_is_the_cmb_when_the_dust_sed_is_known():
    """No noise, the SED the dust was made with: the constrained ILC nulls the dust exactly, so the prior
    channel is the true CMB in target units. Measured ≈ 1e-6 of the CMB rms (float32 channels); asserted
    to 1e-4."""
    channels, cmb, *_ = _sky(3)
    x = network_inputs(channels, NORM, _params(prior="cilc"))
    assert x.shape == (3, 4, NPIX, NPIX) and x.dtype == np.float32
    np.testing.assert_allclose(NORM.target_to_uk(x[:, -1]), cmb, atol=1e-4 * cmb.std())
    np.testing.assert_allclose(x[:, :3], NORM.inputs_to_unit(channels), rtol=1e-6)


def test_per_map_normalisation_makes_bright_and_faint_maps_alike():
    """Each channel of each map has mean 0 and std 1 (float32: asserted to 1e-5), whatever its level;
    a map 10× brighter gives the same inputs."""
    channels, *_ = _sky(2)
    x = network_inputs(channels, NORM, _params(input_norm="per_map"))
    np.testing.assert_allclose(x.mean(axis=(-2, -1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(-2, -1)), 1.0, atol=1e-5)
    np.testing.assert_allclose(network_inputs(10 * channels, NORM, _params(input_norm="per_map")), x, atol=1e-5)
    assert n_inputs(3, SeparationConfig(prior="none")) == 3 and n_inputs(3, SeparationConfig(prior="cilc")) == 4


def test_an_untrained_correction_network_returns_its_prior():
    """The correction head starts at zero, so the output is the prior channel exactly, in every dropout
    mode; gradients still reach the head."""
    torch.manual_seed(0)
    net = ResUNet(NPIX, SIZE, in_channels=4, base_channels=4, dropout=(0.1, 0.2), prior_channel=True)
    x = torch.randn(2, 4, NPIX, NPIX)
    for mode in (net.train, net.eval):
        mode()
        cmb, dl = net(x)
        assert torch.equal(cmb, x[:, -1:])
    cmb.square().mean().backward()
    assert net.head.weight.grad.abs().sum() > 0
    assert ResUNet(**net.config()).prior_channel


@pytest.mark.parametrize("field, value", [("prior", "nilc"), ("input_norm", "log")])
def test_unknown_input_options_are_rejected(field, value):
    with pytest.raises(ConfigError, match=f"separation.{field}"):
        SeparationConfig(**{field: value})
