"""LR consistency (lrkit.metrics.lr_consistency) on hand-computed cases."""

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.data.ops import from_uint8, to_uint8
from lrkit.metrics.lr_consistency import lr_consistency, lr_errors


def _img(levels) -> torch.Tensor:
    """uint8 levels [N, H, W, 3] (or one grey plane [N, H, W], repeated on 3 channels) -> [N, 3, H, W] in [-1, 1]."""
    a = np.asarray(levels, dtype=np.uint8)
    if a.ndim == 3:
        a = np.repeat(a[..., None], 3, axis=-1)
    return from_uint8(a)


# Two 4x4 grey outputs; DS to 2x2 averages 2x2 blocks.
OUT = [
    [[10, 20, 0, 0], [30, 40, 0, 0], [100, 100, 255, 255], [100, 100, 255, 253]],  # blocks: 25, 0, 100, 254.5
    [[7, 7, 9, 9], [7, 7, 9, 9], [0, 1, 5, 5], [1, 2, 5, 5]],  # blocks: 7, 9, 1, 5
]
LR = [
    [[24, 0], [100, 254]],  # |25-24|=1, 0, 0, |254.5-254|=0.5 -> mean 1.5/4 = 0.375 (same on 3 channels)
    [[7, 12], [1, 1]],  # 0, |9-12|=3, 0, |5-1|=4 -> mean 7/4 = 1.75
]


def test_hand_computed_errors():
    out = lr_consistency(_img(OUT), _img(LR), epsilon_levels=(0.375, 1.0, 2.0))
    assert out["lr_error_mean"] == pytest.approx((0.375 + 1.75) / 2, abs=1e-12)
    assert out["lr_error_max"] == pytest.approx(1.75, abs=1e-12)
    assert out["lr_error_pixel_max"] == pytest.approx(4.0, abs=1e-12)
    assert out["lr_within_eps_0.375"] == 0.5  # <= is inclusive
    assert out["lr_within_eps_1"] == 0.5
    assert out["lr_within_eps_2"] == 1.0
    assert out["n_images"] == 2 and out["lr_size"] == 2
    err = lr_errors(_img(OUT), _img(LR))
    assert err.shape == (2, 3, 2, 2)
    assert err[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.5]]


def test_quantize_ds_rounds_the_downscaled_output_half_to_even():
    # 254.5 -> 254 (round half to even): the first image becomes |25-24| only: mean 0.25.
    err = lr_errors(_img(OUT), _img(LR), quantize_ds=True)
    assert err[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    out = lr_consistency(_img(OUT), _img(LR), quantize_ds=True)
    assert out["lr_error_mean"] == pytest.approx((0.25 + 1.75) / 2, abs=1e-12)


def test_outputs_are_quantized_to_8_bits_before_downscaling():
    x = _img([[[10, 20], [30, 40]]])  # DS -> 25
    tiny = x + 0.4 * (2 / 255)  # less than half a level above: rounds back to the same PNG
    assert lr_consistency(tiny, _img([[[25]]]))["lr_error_mean"] == 0.0
    assert lr_consistency(x + 0.6 * (2 / 255), _img([[[25]]]))["lr_error_mean"] == pytest.approx(1.0, abs=1e-12)


def test_hr_targets_are_downscaled_then_quantized():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    hr_t = from_uint8(hr)
    # An output identical to its HR target: DS(q(x)) vs q(DS(x)) differ by rounding only (< 1 level per value).
    out = lr_consistency(hr_t, hr_t, lr_size=2)
    block_means = hr.reshape(3, 2, 4, 2, 4, 3).astype(np.float64).mean(axis=(2, 4))  # [3, 2, 2, 3]
    expected = np.abs(block_means - np.round(block_means)).mean(axis=(1, 2, 3))  # np.round: half to even too
    assert out["lr_error_mean"] == pytest.approx(expected.mean(), abs=1e-12)
    assert out["lr_error_pixel_max"] <= 0.5 and out["lr_within_eps_0.5"] == 1.0
    # The same LR targets given as LR images give the same numbers.
    lr_t = from_uint8(np.round(block_means).astype(np.uint8))
    assert lr_consistency(hr_t, lr_t, lr_size=2) == out
    assert lr_consistency(hr_t, lr_t) == out  # lr_size inferred from the targets


def test_constant_hr_output_matches_exactly():
    hr = _img(np.full((2, 16, 16), 77))
    out = lr_consistency(hr, _img(np.full((2, 4, 4), 77)))
    assert out["lr_error_mean"] == out["lr_error_pixel_max"] == 0.0
    assert all(v == 1.0 for k, v in out.items() if k.startswith("lr_within_eps"))


def test_folders_and_errors(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "lr").mkdir()
    for i, (o, t) in enumerate(zip(to_uint8(_img(OUT)), to_uint8(_img(LR)), strict=True)):
        Image.fromarray(o).save(tmp_path / "out" / f"{i:03d}.png")
        Image.fromarray(t).save(tmp_path / "lr" / f"{i:03d}.png")
    assert lr_consistency(tmp_path / "out", tmp_path / "lr") == lr_consistency(_img(OUT), _img(LR))
    with pytest.raises(ValueError, match="need lr_size"):
        lr_consistency(_img(OUT), _img(OUT))
    with pytest.raises(ValueError, match="neither the LR size"):
        lr_consistency(_img(OUT), _img(LR), lr_size=1)
    with pytest.raises(ValueError, match="multiple of"):
        lr_consistency(_img(np.zeros((1, 6, 6))), _img(np.zeros((1, 4, 4))))
    with pytest.raises(ValueError, match="2 images but .* has 1"):
        lr_consistency(_img(OUT), _img(LR[:1]))
    with pytest.raises(ValueError, match="mode"):
        lr_consistency(_img(OUT), _img(LR), mode="nearest")
