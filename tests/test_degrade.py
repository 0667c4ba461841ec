import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from lrkit.data.degrade import degrade, gaussian_blur, gaussian_noise


def test_blur_matches_scipy_away_from_borders():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ours = gaussian_blur(x, 1.5)[0].numpy()
    ref = np.stack([gaussian_filter(x[0, c].numpy().astype(np.float64), 1.5, truncate=3.0, mode="reflect")
                    for c in range(3)])
    # scipy's "reflect" repeats the edge pixel, torch's does not: compare the interior only.
    assert np.abs(ours[:, 6:-6, 6:-6] - ref[:, 6:-6, 6:-6]).max() < 1e-5
    assert torch.equal(gaussian_blur(x, 0), x)


def test_blur_preserves_constant_and_mean():
    x = torch.full((2, 3, 16, 16), 0.25)
    assert torch.allclose(gaussian_blur(x, 2.0), x, atol=1e-6)


def test_noise_std_in_grey_levels_and_seeded():
    x = torch.zeros(1, 3, 128, 128)
    y = gaussian_noise(x, 10.0, seed=3)
    assert abs(float(y.std()) * 255 / 2 - 10.0) < 0.3
    assert torch.equal(y, gaussian_noise(x, 10.0, seed=3)) and not torch.equal(y, gaussian_noise(x, 10.0, seed=4))


def test_errors():
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(x, "jpeg", 1)
    with pytest.raises(ValueError, match=">= 0"):
        degrade(x, "blur", -1)
