"""The border-strip statistic: one function for numpy (evaluation) and torch (discriminator)."""

import numpy as np
import torch

import dustcmb.stats.borders as borders
from dustcmb.stats.borders import border_contrast


def test_border_contrast_in_chunks_and_batch_shapes(monkeypatch):
    """Chunks of maps (a short last one), leading batch axes and a single map give the same rows."""
    maps = np.random.default_rng(7).standard_normal((2, 5, 32, 32))
    whole = border_contrast(maps)
    monkeypatch.setattr(borders, "BORDER_CHUNK_PIXELS", 3 * 32**2)
    np.testing.assert_allclose(border_contrast(maps), whole, rtol=1e-12)
    np.testing.assert_allclose(border_contrast(maps[1, 3]), whole[1, 3], rtol=1e-12)
    assert whole.shape == (2, 5, 2, 4)


def test_torch_path_matches_numpy_and_carries_gradients_to_the_outer_row():
    """A float64 tensor gives the array path's rows to rounding (1e-12); the rows are differentiable,
    and the outermost pixel row gets a gradient from the depth-0 strip, which a windowed spectrum
    cannot give it. A linear ramp has the same gradient everywhere: ratio 1, and a level offset of
    0 by symmetry."""
    maps = np.random.default_rng(3).standard_normal((4, 24, 24))
    x = torch.tensor(maps, requires_grad=True)
    rows = border_contrast(x)
    np.testing.assert_allclose(rows.detach().numpy(), border_contrast(maps), rtol=1e-12)
    rows[:, 0, 0].sum().backward()
    assert torch.all(x.grad[:, 0, :].abs().sum(-1) > 0)
    ramp = np.add.outer(np.arange(24.0), 2 * np.arange(24.0))
    np.testing.assert_allclose(border_contrast(ramp), [[1, 1, 1, 1], [0, 0, 0, 0]], atol=1e-12)
