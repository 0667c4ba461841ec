"""PSNR / SSIM (lrkit.metrics.image_quality) against scikit-image, image by image."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lrkit.data.ops import to_uint8
from lrkit.metrics.image_quality import (
    iter_paired_batches,
    psnr,
    psnr_per_image,
    rebatch,
    ssim,
    ssim_per_image,
    to_pixel_scale,
)

SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def _pair(seed: int, n: int = 4, h: int = 32, w: int = 40, noise: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    b = (a + noise * torch.randn(n, 3, h, w, generator=g)).clamp(-1, 1)
    return a, b


def _structured(n: int = 3, size: int = 48):
    """Gradients, a checkerboard and a disc, each paired with a shifted, brightened, blurred copy."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    grad = torch.stack([xx, yy, (xx + yy) / 2])
    check = ((torch.arange(size)[:, None] // 4 + torch.arange(size)[None, :] // 4) % 2).float() * 1.6 - 0.8
    disc = ((xx ** 2 + yy ** 2) < 0.4).float() * 1.8 - 0.9
    a = torch.stack([grad, check.expand(3, -1, -1), torch.stack([disc, -disc, disc * 0.5])])[:n]
    b = torch.roll(a, shifts=(1, 2), dims=(2, 3)) * 0.9 + 0.05
    b = torch.nn.functional.avg_pool2d(b, 3, stride=1, padding=1, count_include_pad=False)
    return a, b


def _sk_rgb(a: torch.Tensor, b: torch.Tensor):
    ua, ub = to_uint8(a).astype(np.float64), to_uint8(b).astype(np.float64)  # [N, H, W, 3] 8-bit values
    p = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(ua, ub, strict=True)]
    s = [structural_similarity(x, y, channel_axis=-1, **SK_SSIM) for x, y in zip(ua, ub, strict=True)]
    return np.array(p), np.array(s)


def _sk_y(a: torch.Tensor, b: torch.Tensor):
    # BT.601 luma of the 8-bit RGB values, written out here independently of the module.
    ua, ub = to_uint8(a).astype(np.float64), to_uint8(b).astype(np.float64)
    ya = 16 + (65.481 * ua[..., 0] + 128.553 * ua[..., 1] + 24.966 * ua[..., 2]) / 255
    yb = 16 + (65.481 * ub[..., 0] + 128.553 * ub[..., 1] + 24.966 * ub[..., 2]) / 255
    p = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(ya, yb, strict=True)]
    s = [structural_similarity(x, y, **SK_SSIM) for x, y in zip(ya, yb, strict=True)]
    return np.array(p), np.array(s)


@pytest.mark.parametrize("make", [lambda: _pair(0), lambda: _pair(1, n=3, h=11, w=11, noise=0.5),
                                  lambda: _pair(2, n=2, h=64, w=23, noise=0.02), _structured])
def test_rgb_equals_skimage_per_image(make):
    a, b = make()
    p_ref, s_ref = _sk_rgb(a, b)
    p, s = psnr_per_image(a, b).numpy(), ssim_per_image(a, b).numpy()
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s, s_ref, rtol=0, atol=1e-6)
    assert psnr(a, b)["psnr"] == pytest.approx(p_ref.mean(), abs=1e-6)
    assert ssim(a, b)["ssim"] == pytest.approx(s_ref.mean(), abs=1e-6)


@pytest.mark.parametrize("make", [lambda: _pair(3), _structured])
def test_y_channel_equals_skimage_per_image(make):
    a, b = make()
    p_ref, s_ref = _sk_y(a, b)
    np.testing.assert_allclose(psnr_per_image(a, b, channel="y").numpy(), p_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ssim_per_image(a, b, channel="y").numpy(), s_ref, rtol=0, atol=1e-6)
    assert ssim(a, b, channel="y")["ssim"] == pytest.approx(s_ref.mean(), abs=1e-6)


def test_unquantized_and_cropped_conventions_equal_skimage():
    a, b = _pair(4, n=2, h=40, w=40)
    # quantize=False: the continuous values (x + 1) * 127.5.
    fa = ((a.double() + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    fb = ((b.double() + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    p_ref = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(fa, fb, strict=True)]
    s_ref = [structural_similarity(x, y, channel_axis=-1, **SK_SSIM) for x, y in zip(fa, fb, strict=True)]
    np.testing.assert_allclose(psnr_per_image(a, b, quantize=False).numpy(), p_ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ssim_per_image(a, b, quantize=False).numpy(), s_ref, atol=1e-6, rtol=0)
    # crop_border=4: the SR convention of cropping `scale` pixels at every edge.
    ua, ub = to_uint8(a).astype(np.float64)[:, 4:-4, 4:-4], to_uint8(b).astype(np.float64)[:, 4:-4, 4:-4]
    p_ref = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(ua, ub, strict=True)]
    s_ref = [structural_similarity(x, y, channel_axis=-1, **SK_SSIM) for x, y in zip(ua, ub, strict=True)]
    np.testing.assert_allclose(psnr_per_image(a, b, crop_border=4).numpy(), p_ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ssim_per_image(a, b, crop_border=4).numpy(), s_ref, atol=1e-6, rtol=0)


def test_quantization_makes_tensors_score_like_their_8bit_files():
    a, b = _pair(5, n=2)
    a8 = torch.from_numpy(to_uint8(a)).permute(0, 3, 1, 2).double() / 127.5 - 1  # what the PNG decodes to
    assert torch.equal(psnr_per_image(a, b), psnr_per_image(a8, b))
    assert torch.equal(to_pixel_scale(a), to_pixel_scale(a8))


def test_identical_images_give_inf_psnr_and_ssim_one():
    a, b = _pair(6, n=3)
    b = b.clone()
    b[1] = a[1]
    p = psnr_per_image(a, b)
    assert math.isinf(p[1]) and p[1] > 0 and torch.isfinite(p[[0, 2]]).all()
    out = psnr(a, b)
    assert out["psnr"] == math.inf and out["psnr_n_identical"] == 1 and out["n_images"] == 3
    assert ssim_per_image(a, a).numpy() == pytest.approx(1.0, abs=1e-12)
    assert psnr(a, a)["psnr_n_identical"] == 3


def test_errors_name_the_problem():
    a, b = _pair(7, n=2)
    with pytest.raises(ValueError, match="same size"):
        psnr(a, b[:, :, :16])
    with pytest.raises(ValueError, match="same shape"):
        ssim_per_image(a, b[:, :, :16])
    with pytest.raises(ValueError, match="2 images but .* has 1"):
        ssim(a, b[:1])
    with pytest.raises(ValueError, match="too small"):
        ssim_per_image(a[:, :, :10, :10], b[:, :, :10, :10])
    with pytest.raises(ValueError, match="channel"):
        psnr(a, b, channel="lab")
    bad = b.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        psnr(a, bad)
    with pytest.raises(ValueError, match="removes the whole"):
        psnr_per_image(a, b, crop_border=16)


def _save(folder, images, names):
    folder.mkdir()
    for img, name in zip(to_uint8(images), names, strict=True):
        Image.fromarray(img).save(folder / name)


def test_folders_pair_by_name_and_match_tensors(tmp_path):
    a, b = _pair(8, n=5)
    names = [f"img{i}.png" for i in range(5)]
    _save(tmp_path / "gt", a, names)
    _save(tmp_path / "out", b, names)
    from_tensors = psnr(a, b)["psnr"], ssim(a, b)["ssim"]
    from_folders = psnr(tmp_path / "gt", tmp_path / "out", batch_size=2)["psnr"], \
        ssim(tmp_path / "gt", tmp_path / "out", batch_size=3)["ssim"]
    assert from_folders == pytest.approx(from_tensors, abs=1e-12)
    (tmp_path / "out" / "img4.png").rename(tmp_path / "out" / "other.png")
    with pytest.raises(ValueError, match="only in .*img4.*other"):
        psnr(tmp_path / "gt", tmp_path / "out")


def test_iterables_with_unequal_batches_are_realigned():
    a, b = _pair(9, n=7)
    it_a = [a[:2], a[2:7]]
    it_b = [b[:5], b[5:6], b[6:]]
    assert ssim(it_a, it_b, batch_size=3)["ssim"] == pytest.approx(ssim(a, b)["ssim"], abs=1e-12)
    chunks = list(rebatch(iter([a[:2], a[2:3], a[3:7]]), 3))
    assert [len(c) for c in chunks] == [3, 3, 1] and torch.equal(torch.cat(chunks), a)
    pairs = list(iter_paired_batches(a, b, 4))
    assert [len(x) for x, _ in pairs] == [4, 3]
