"""Downscaling and quantization operators (lrkit.data.ops)."""

import numpy as np
import pytest
import torch

from lrkit.data.ops import (
    VALID_HR_SIZES,
    VALID_LR_SIZES,
    downscale,
    from_uint8,
    make_lr,
    quantize,
    to_uint8,
    validate_sizes,
)


def _loop_avgpool(x: torch.Tensor, lr: int) -> torch.Tensor:
    """Reference DS: explicit loops over LR pixels, each the mean of its f x f HR block."""
    n, c, h, w = x.shape
    f = h // lr
    out = torch.empty(n, c, lr, lr, dtype=torch.float64)
    for b in range(n):
        for ch in range(c):
            for i in range(lr):
                for j in range(lr):
                    block = x[b, ch, i * f:(i + 1) * f, j * f:(j + 1) * f].double()
                    out[b, ch, i, j] = block.sum() / (f * f)
    return out


def test_avgpool_matches_hand_computation_on_known_tensor():
    # 4x4 single-channel image with values 0..15; 2x2 blocks average to known numbers.
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    y = downscale(x, 2)
    expected = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])  # e.g. (0 + 1 + 4 + 5) / 4 = 2.5
    assert torch.equal(y, expected)
    assert torch.equal(downscale(x, 1), torch.tensor([[[[7.5]]]]))


def test_avgpool_matches_loops_on_random_batch_and_keeps_rank():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    for lr in (4, 8, 16, 32):
        y = downscale(x, lr)
        assert y.shape == (2, 3, lr, lr)
        torch.testing.assert_close(y.double(), _loop_avgpool(x, lr), atol=1e-6, rtol=0)
    single = downscale(x[0], 8)
    assert single.shape == (3, 8, 8)
    torch.testing.assert_close(single, downscale(x, 8)[0])


def test_downscale_is_differentiable():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    downscale(x, 4).sum().backward()
    # Each HR pixel contributes 1/16 to exactly one LR pixel.
    torch.testing.assert_close(x.grad, torch.full_like(x, 1 / 16))
    xb = torch.rand(1, 3, 16, 16, requires_grad=True)
    downscale(xb, 4, mode="bicubic").sum().backward()
    assert xb.grad is not None and torch.isfinite(xb.grad).all()


def test_bicubic_option_shape():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = downscale(x, 8, mode="bicubic")
    assert y.shape == (2, 3, 8, 8) and y.dtype == torch.float32
    # A constant image stays constant under (antialiased) bicubic.
    torch.testing.assert_close(downscale(torch.full((1, 3, 64, 64), 0.3), 8, "bicubic"), torch.full((1, 3, 8, 8), 0.3))


def test_downscale_errors():
    with pytest.raises(ValueError, match="square"):
        downscale(torch.zeros(1, 3, 32, 16), 4)
    with pytest.raises(ValueError, match="multiple"):
        downscale(torch.zeros(1, 3, 30, 30), 4)
    with pytest.raises(ValueError, match="mode"):
        downscale(torch.zeros(1, 3, 32, 32), 4, mode="nearest")
    with pytest.raises(ValueError, match="larger"):
        downscale(torch.zeros(1, 3, 8, 8), 16)
    with pytest.raises(TypeError, match="from_uint8"):
        downscale(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 4)


def test_validate_sizes():
    for hr in VALID_HR_SIZES:
        for lr in VALID_LR_SIZES:
            if lr < hr:
                validate_sizes(hr, lr)
    with pytest.raises(ValueError) as e:
        validate_sizes(100, 8)
    assert "100" in str(e.value) and "(32, 64, 128, 256)" in str(e.value)
    with pytest.raises(ValueError) as e:
        validate_sizes(128, 12)
    assert "(4, 8, 16, 32)" in str(e.value)
    with pytest.raises(ValueError, match="smaller than hr_size"):
        validate_sizes(32, 32)


def test_quantize_lands_on_8bit_grid_and_is_idempotent():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 16, 16, generator=g) * 2.2 - 1.1  # includes out-of-range values, which are clamped
    q = quantize(x)
    k = (q.double() + 1) * 127.5
    assert torch.allclose(k, k.round(), atol=1e-4)  # on the k * 2/255 - 1 grid
    assert q.min() >= -1 and q.max() <= 1
    assert torch.equal(quantize(q), q)
    # Nearest level: the error is at most half a step.
    assert (q - x.clamp(-1, 1)).abs().max() <= 1 / 255 + 1e-6
    # Known values: -1, 1 and the level just above -1.
    assert torch.equal(quantize(torch.tensor([-1.0, 1.0, -1 + 2 / 255 * 0.6])),
                       torch.tensor([-1.0, 1.0, 2 / 255 - 1.0]))
    assert quantize(torch.tensor([0.3]), bits=1).tolist() == [1.0]


def test_uint8_round_trip_and_consistency_with_quantize():
    a = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)  # every level, HWC
    t = from_uint8(a)
    assert t.shape == (3, 16, 16) and t.dtype == torch.float32
    assert t.min() == -1 and t.max() == 1
    assert np.array_equal(to_uint8(t), a)
    assert torch.equal(quantize(t), t)
    batch = np.stack([a, a[::-1]])  # NHWC
    tb = from_uint8(batch)
    assert tb.shape == (2, 3, 16, 16)
    assert np.array_equal(to_uint8(tb), batch)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(from_uint8(to_uint8(x)), quantize(x))
    with pytest.raises(TypeError, match="uint8"):
        from_uint8(a.astype(np.float32))


def test_make_lr():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    lr = make_lr(x, 8)
    assert lr.shape == (2, 3, 8, 8)
    assert torch.equal(lr, quantize(downscale(x, 8)))
    assert torch.equal(make_lr(x, 8, quantize_8bit=False), downscale(x, 8))
    lr_bic = make_lr(x, 8, mode="bicubic", quantize_8bit=False)
    assert lr_bic.min() >= -1 and lr_bic.max() <= 1
