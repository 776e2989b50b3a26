"""Every map figure is drawn north up: one figure function of each family, checked on the rendered pixels.

The input maps are +1 along their first rows (row 0 = the northern edge, as patches are stored) and −1
along their last rows. After rendering with Agg, the top strip of every image panel must show the
colour of the high end of its colour scale and the bottom strip the low end.
"""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from dustcmb.evaluation.gan_plots import samples_figure
from dustcmb.evaluation.separation_plots import maps_figure
from dustcmb.gan.train import grid_figure

matplotlib.use("Agg")
NPIX = 16


def north_bright(n: int = 3) -> np.ndarray:
    """[n, NPIX, NPIX] maps: +1 in the northern quarter, −1 in the southern quarter, a ramp between."""
    column = np.clip(np.linspace(2.0, -2.0, NPIX), -1.0, 1.0)
    return np.broadcast_to(column[:, None], (n, NPIX, NPIX)).copy()


def assert_north_up(fig) -> int:
    """Assert the orientation of every image panel of ``fig``; returns how many were checked."""
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    height = rgb.shape[0]
    checked = 0
    for ax in fig.axes:
        for image in ax.get_images():
            x0, y0, x1, y1 = ax.get_window_extent().extents
            cols = slice(int(x0) + 2, int(x1) - 2)
            span = y1 - y0
            top = rgb[int(height - y1 + 0.05 * span):int(height - y1 + 0.15 * span), cols].mean(axis=(0, 1))
            bottom = rgb[int(height - y0 - 0.15 * span):int(height - y0 - 0.05 * span), cols].mean(axis=(0, 1))
            data = np.asarray(image.get_array())
            high = np.array(image.cmap(image.norm(data.max()))[:3])
            low = np.array(image.cmap(image.norm(data.min()))[:3])
            assert np.linalg.norm(top - high) < np.linalg.norm(top - low), ax.get_title()
            assert np.linalg.norm(bottom - low) < np.linalg.norm(bottom - high), ax.get_title()
            checked += 1
    plt.close(fig)
    return checked


def test_gan_training_grid_is_north_up():
    assert assert_north_up(grid_figure(north_bright(), north_bright(), n=2)) == 4


def test_gan_evaluation_samples_are_north_up():
    maps = north_bright(6)
    sets = [SimpleNamespace(unit=maps, label="real"), SimpleNamespace(unit=maps, label="GAN")]
    figures = {"meta": {"size_deg": 20.0, "npix": NPIX}, "synthetic": True, "nn": {"real": np.zeros(6)}}
    assert assert_north_up(samples_figure(sets, figures)) == 12


def test_separation_maps_are_north_up():
    cmb = north_bright(1)[0]
    example = {"channels_uk": north_bright(3), "cmb_uk": cmb, "mean_uk": 2 * cmb, "std_uk": cmb + 2}
    assert assert_north_up(maps_figure([example], (143.0, 353.0, 545.0))) == 7
