"""swd_patch7 (ProGAN's sliced Wasserstein distance on Laplacian-pyramid patches) on small image sets."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import wasserstein_distance

from lrkit.data.degrade import gaussian_blur
from lrkit.metrics import swd

pytestmark = pytest.mark.usefixtures("one_thread")


def _set(n, seed, blur=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1
    return gaussian_blur(x, blur) if blur else x


def test_laplacian_pyramid_reconstructs_the_image():
    x = _set(2, 0)
    levels = swd.laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [16, 8]
    up = torch.nn.functional.interpolate(levels[1], scale_factor=2, mode="nearest")
    assert torch.allclose(levels[0] + up, x, atol=1e-6)


def test_swd_is_zero_for_one_set_small_within_a_distribution_and_large_across():
    a, b, blurred = _set(64, 1), _set(64, 2), _set(64, 3, blur=1.5)
    assert swd.swd_patch7(a, a)["swd"] == pytest.approx(0.0, abs=1e-9)
    same, other = swd.swd_patch7(a, b)["swd"], swd.swd_patch7(a, blurred)["swd"]
    assert other > 5 * same, (same, other)
    assert set(swd.swd_patch7(a, b)) == {"swd", "swd_16px", "swd_8px"}
    with pytest.raises(ValueError, match="one shape"):
        swd.swd_patch7(a, b[:10])


def test_on_1d_descriptors_it_is_scipys_wasserstein_distance():
    """1-D descriptors: every unit direction is +-1, so each sliced distance is the exact Wasserstein-1."""
    g = torch.Generator().manual_seed(0)
    pa, pb = torch.randn(500, 1, generator=g), torch.randn(500, 1, generator=g) * 2 + 1
    ours = swd.sliced_wasserstein(pa, pb, directions=8, repeats=2, g=torch.Generator().manual_seed(1))
    assert ours == pytest.approx(wasserstein_distance(pa[:, 0].numpy(), pb[:, 0].numpy()), rel=1e-5)
    with pytest.raises(ValueError, match="as many descriptors"):
        swd.sliced_wasserstein(pa, pb[:3], 8, 1, torch.Generator())
