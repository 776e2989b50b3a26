"""The ResUNet: paper Table 2 layout at 256², depth rule, spectrum head, MC-dropout mode."""

import numpy as np
import pytest
import torch
from torch import nn

from dustcmb.separation.mc import mc_mode, mc_predict
from dustcmb.separation.resunet import Dropout, ResUNet, n_blocks
from dustcmb.simulation.dataset import Normalisation
from dustcmb.stats.power import dl_from_cl, n_bins, power_spectrum

PAPER_RATES = (0.05, 0.10, 0.20, 0.30)


def _rate(block: nn.Module) -> float:
    return next(m.p for m in block.body if isinstance(m, nn.Dropout))


def test_paper_layout_at_256():
    """8 encoder blocks 256² -> 1×1; features and rates step up every other block; decoder mirrors."""
    assert [n_blocks(n) for n in (32, 48, 64, 256)] == [5, 6, 6, 8]
    net = ResUNet(256, 20.0, base_channels=4, dropout=PAPER_RATES)
    assert len(net.encoder) == len(net.decoder) == 8
    strided = [b.body[0] if i == 0 else b.body[2] for i, b in enumerate(net.encoder)]
    assert [c.out_channels for c in strided] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) for c in strided)
    assert [_rate(b) for b in net.encoder] == [0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert not isinstance(net.encoder[0].body[0], nn.BatchNorm2d), "no BN -> ReLU before the first conv"
    assert [type(m) for m in net.encoder[1].body[:2]] == [nn.BatchNorm2d, nn.ReLU]
    assert [_rate(b) for b in net.decoder] == [_rate(b) for b in net.encoder]
    for module in net.modules():  # dropout right after every convolution except the 1×1 output head
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Conv2d):
                    assert isinstance(layers[i + 1], nn.Dropout)
    x = torch.randn(1, 3, 256, 256)
    sizes = []
    with torch.no_grad():
        net.eval()
        for block in net.encoder:
            x = block(x)
            sizes.append(x.shape[-1])
        cmb, dl = net(torch.randn(1, 3, 256, 256))
    assert sizes == [128, 64, 32, 16, 8, 4, 2, 1]
    assert cmb.shape == (1, 1, 256, 256) and dl.shape == (1, n_bins(256))


def test_spectrum_head_is_the_power_spectrum_of_the_output():
    torch.manual_seed(0)
    net = ResUNet(32, 20.0, base_channels=4).eval()
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    cmb, dl = net(x)
    ell, cl = power_spectrum(cmb[:, 0].detach().double().numpy(), 20.0)
    np.testing.assert_allclose(dl.detach().numpy(), dl_from_cl(ell, cl), rtol=1e-4)
    dl.sum().backward()  # differentiable: the spectrum loss reaches the weights and the input
    assert x.grad.abs().sum() > 0 and net.head.weight.grad.abs().sum() > 0


def test_odd_sizes_follow_the_depth_rule():
    net = ResUNet(48, 20.0, base_channels=4).eval()
    assert net(torch.randn(2, 3, 48, 48))[0].shape == (2, 1, 48, 48)


def test_mc_passes_keep_batchnorm_frozen_and_differ():
    torch.manual_seed(1)
    net = ResUNet(32, 20.0, base_channels=4)
    net.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        net(torch.randn(8, 3, 32, 32) * 2 + 1)
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    mc_mode(net)
    assert all(not m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(m.training for m in net.modules() if isinstance(m, nn.Dropout))
    norm = Normalisation((143.0, 353.0, 545.0), (0.0,) * 3, (1.0,) * 3, target_offset_uk=5.0, target_scale_uk=100.0)
    inputs = torch.randn(3, 3, 32, 32)
    pred = mc_predict(net, inputs, norm, passes=16, batch=32)
    for k, v in net.state_dict().items():
        if "running" in k:
            torch.testing.assert_close(v, stats[k], rtol=0, atol=0)
    assert pred.mean_uk.shape == pred.std_uk.shape == (3, 32, 32)
    assert pred.cl_quantiles_uk2.shape == (3, 5, n_bins(32))
    assert np.all(pred.std_uk > 0), "dropout passes must differ"
    assert np.all(np.diff(pred.cl_quantiles_uk2, axis=1) >= 0), "quantiles are ordered"
    with torch.no_grad():
        deterministic = norm.target_to_uk(net.eval()(inputs)[0][:, 0].double()).numpy()
    assert not np.allclose(pred.mean_uk, deterministic)
    # batch=1 is the sequential reference: one pass per forward
    sequential = mc_predict(net, inputs[:1], norm, passes=16, batch=1)
    assert sequential.mean_uk.shape == (1, 32, 32) and np.all(sequential.std_uk > 0)


@pytest.mark.parametrize("passes,batch", [(3, 2), (4, 64)])
def test_mc_grouping_covers_every_map(passes, batch):
    net = ResUNet(32, 20.0, base_channels=4)
    norm = Normalisation((1.0,) * 3, (0.0,) * 3, (1.0,) * 3, 0.0, 1.0)
    inputs = torch.randn(5, 3, 32, 32)
    torch.manual_seed(2)
    pred = mc_predict(net, inputs, norm, passes=passes, batch=batch)
    assert pred.mean_uk.shape == (5, 32, 32) and np.all(pred.std_uk > 0)
    torch.manual_seed(2)  # same seed -> the same dropout masks -> identical summaries on CPU
    np.testing.assert_array_equal(mc_predict(net, inputs, norm, passes=passes, batch=batch).mean_uk, pred.mean_uk)


@pytest.mark.parametrize("shape", [(400, 16, 32, 32), (3, 5, 7, 11)])  # 64-bit draws; odd size: 16-bit draws
@pytest.mark.parametrize("p", [0.05, 0.3])
def test_fast_dropout_is_bernoulli_and_unbiased(shape, p):
    """The 16-bit-threshold dropout drops a fraction p of elements (to 5σ of the binomial scatter) in
    each of the four 16-bit lanes of a 64-bit draw, so no lane's bits are biased, keeps the mean of
    its input (kept elements scaled by 1/(1 − p')), passes inputs through in eval mode, and keeps the
    input's memory layout."""
    layer = Dropout(p).train()
    x = torch.ones(shape).contiguous(memory_format=torch.channels_last)
    out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    dropped = out == 0
    n = dropped.numel()
    lanes = dropped.permute(0, 2, 3, 1).reshape(-1)
    lanes = lanes[: n // 4 * 4].view(-1, 4).double().mean(dim=0) if n % 4 == 0 else lanes.double().mean()[None]
    np.testing.assert_allclose(lanes.numpy(), p, atol=5 * np.sqrt(p * (1 - p) / (n // max(len(lanes), 1))))
    np.testing.assert_allclose(out.double().mean().item(), 1.0, atol=5 * np.sqrt(p / (1 - p) / n))
    assert torch.equal(layer.eval()(x), x)
