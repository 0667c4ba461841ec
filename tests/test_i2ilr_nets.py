"""I2I-LR networks and layers: shapes, spectral norm everywhere, layers against hand computations, eq. 5, errors.

Tiny seeded models on CPU. Spectral norm runs one power iteration per forward in train mode, so tests that compare
two forward passes (or read the normalised weights for a hand computation) put the modules in eval mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from lrkit.methods.i2ilr.discriminator import I2ILRDiscriminator
from lrkit.methods.i2ilr.generator import I2ILRGenerator, PonoResBlk, SPAdaINResBlk, project_to_lr
from lrkit.methods.i2ilr.layers import (
    GREY_LEVEL,
    LR_DIFF_MODES,
    DynamicMomentShortcut,
    SPAdaIN,
    lr_difference,
    pono,
    sn,
    straight_through_round,
)

R = 2.0 / 255.0  # one grey level on [-1, 1]
PAIRS = [(hr, lr) for hr in (32, 64, 128, 256) for lr in (4, 8, 16, 32) if lr < hr]


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def _seed(s: int = 0) -> None:
    torch.manual_seed(s)


def _widths(hr: int) -> dict[str, int]:
    return {"base_channels": 4, "max_channels": 8} if hr == 256 else {"base_channels": 8, "max_channels": 32}


# --------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("hr,lr", PAIRS)
def test_shapes_every_size_pair(hr, lr):
    _seed()
    batch = 1 if hr == 256 else 2
    g = I2ILRGenerator(hr, lr, **_widths(hr))
    d = I2ILRDiscriminator(hr, lr, **_widths(hr))
    x = torch.rand(batch, 3, hr, hr) * 2 - 1
    y = torch.rand(batch, 3, lr, lr) * 2 - 1
    with torch.no_grad():
        out = g(x, y)
        logits = d(out, lr_difference(out, y))
    assert out.shape == (batch, 3, hr, hr) and torch.isfinite(out).all()
    assert logits.shape == (batch,) and torch.isfinite(logits).all()
    # n = log2(HR / LR) downsampling blocks + 1 at LR, mirrored by the decoder.
    n = int(math.log2(hr // lr))
    assert len(g.encoder) == n + 1 and len(g.decoder) == n + 1
    assert g.hr_size == hr and g.lr_size == lr and d.hr_size == hr and d.lr_size == lr


def test_channel_plan_follows_public_code_scaled_down():
    _seed()
    # The public code's 128/8 plan (base 64, cap 512): encoder 128, 256, 512, 512 + 512; decoder 512 + 256, 128, 64,
    # 64. Here the same rules at 1/8 of the widths (base 8, cap 64) to keep the test fast.
    g = I2ILRGenerator(128, 8, base_channels=8, max_channels=64)
    assert g.from_rgb.out_channels == 8
    assert [b.conv2.out_channels for b in g.encoder] == [16, 32, 64, 64, 64]
    assert [b.downsample for b in g.encoder] == [True] * 4 + [False]
    assert [b.conv2.out_channels for b in g.decoder] == [64, 32, 16, 8, 8]
    assert [b.upsample for b in g.decoder] == [False] + [True] * 4
    d = I2ILRDiscriminator(128, 8, base_channels=16, max_channels=64)
    assert [b.conv2.out_channels for b in d.to_lr] == [32, 64, 64, 64]
    # The first block after the concat sees the 3 difference channels on top of the 64 features.
    assert d.to_4x4[0].conv1.in_channels == 64 + 3 and len(d.to_4x4) == 1
    # LR = 4: no block after the concat, the 4x4 conv takes the features + 3 difference channels.
    d4 = I2ILRDiscriminator(32, 4, base_channels=8, max_channels=16)
    assert len(d4.to_4x4) == 0 and d4.head[1].in_channels == 16 + 3


def test_default_widths_match_public_code_at_128_8():
    _seed()
    g = I2ILRGenerator(128, 8)  # base 64, cap 512 (~0.9 s to build both nets on one thread)
    assert [b.conv2.out_channels for b in g.encoder] == [128, 256, 512, 512, 512]
    assert [b.conv2.out_channels for b in g.decoder] == [512, 256, 128, 64, 64]
    d = I2ILRDiscriminator(128, 8)
    assert d.base_channels == 2**14 // 128 == d.from_rgb.out_channels
    widths = [b.conv2.out_channels for b in [*d.to_lr, *d.to_4x4]]
    assert widths == [256, 512, 512, 512, 512]


def test_config_dict_rebuilds_same_architecture_and_default_d_width_is_resolved():
    _seed()
    g = I2ILRGenerator(64, 8, base_channels=8, max_channels=32)
    assert g.config_dict() == {"hr_size": 64, "lr_size": 8, "base_channels": 8, "max_channels": 32,
                               "upsample": "nearest", "spadain_sn": True, "pono_unbiased": False,
                               "project_lr": "none"}
    g2 = I2ILRGenerator(**g.config_dict())
    assert {k: v.shape for k, v in g.state_dict().items()} == {k: v.shape for k, v in g2.state_dict().items()}
    d = I2ILRDiscriminator(256, 32, max_channels=64)
    assert d.config_dict()["base_channels"] == 2**14 // 256 == d.from_rgb.out_channels
    d2 = I2ILRDiscriminator(**d.config_dict())
    assert {k: v.shape for k, v in d.state_dict().items()} == {k: v.shape for k, v in d2.state_dict().items()}


def test_same_seed_same_networks_and_outputs():
    outs = []
    for _ in range(2):
        _seed(3)
        g = I2ILRGenerator(32, 8, base_channels=8, max_channels=16).eval()
        x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 8, 8)
        outs.append(g(x, y).detach())
    assert torch.equal(outs[0], outs[1])


# ------------------------------------------------------------------------------------------- spectral norm


@pytest.mark.parametrize("net_cls", [I2ILRGenerator, I2ILRDiscriminator])
def test_every_conv_and_linear_is_spectral_normed(net_cls):
    _seed()
    net = net_cls(64, 8, base_channels=8, max_channels=32).eval()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) > 10
    for m in layers:
        assert parametrize.is_parametrized(m, "weight"), m
        assert type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm"
        # The effective weight, as a matrix [out, in*k*k], has top singular value ~1 (power iteration converges
        # from below, so the estimate is <= sigma and the normalised norm >= 1).
        w = m.weight.detach()
        s = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()
        assert 0.999 <= s < 1.2


def test_sn_rejects_other_modules():
    with pytest.raises(TypeError, match="Conv2d or nn.Linear"):
        sn(nn.BatchNorm2d(4))
    lin = sn(nn.Linear(3, 2))
    assert parametrize.is_parametrized(lin, "weight")


# ------------------------------------------------------------------------------------------------ layers


def test_pono_matches_numpy_with_biased_variance():
    _seed()
    x = torch.randn(2, 5, 3, 4) * 3 + 1
    xn, mean, std = pono(x, eps=1e-5)
    a = x.numpy().astype(np.float64)
    m = a.mean(axis=1, keepdims=True)
    v = ((a - m) ** 2).sum(axis=1, keepdims=True) / a.shape[1]  # biased: divide by C
    s = np.sqrt(v + 1e-5)
    assert mean.shape == std.shape == (2, 1, 3, 4)
    np.testing.assert_allclose(mean.numpy(), m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std.numpy(), s, rtol=1e-5)
    np.testing.assert_allclose(xn.numpy(), (a - m) / s, rtol=1e-4, atol=1e-5)
    # The unbiased (C - 1) std would be sqrt(5/4) larger: the test can tell them apart.
    assert not np.allclose(std.numpy(), np.sqrt(v * 5 / 4 + 1e-5), rtol=1e-3)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Interpolation matrix [n_out, n_in] of bilinear resizing with align_corners=False (half-pixel centres)."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = int(np.floor(src))
        i1 = min(i0 + 1, n_in - 1)
        w = src - i0
        m[i, i0] += 1 - w
        m[i, i1] += w
    return m


def test_spadain_matches_hand_computation_with_bilinear_upsampling():
    _seed()
    layer = SPAdaIN(4).eval()
    # Non-zero biases so the test covers them (init zeroes them).
    with torch.no_grad():
        layer.gamma_conv.bias.normal_()
        layer.beta_conv.bias.normal_()
    x = torch.randn(2, 4, 6, 6) * 2 + 0.5
    lr = torch.rand(2, 3, 3, 3) * 2 - 1
    out = layer(x, lr).detach().numpy()

    a = x.numpy().astype(np.float64)
    xn = (a - a.mean(axis=(2, 3), keepdims=True)) / np.sqrt(a.var(axis=(2, 3), keepdims=True) + 1e-5)
    m = _bilinear_matrix(3, 6)
    up = np.einsum("hi,bcij,wj->bchw", m, lr.numpy().astype(np.float64), m)  # [2, 3, 6, 6]

    def conv1x1(conv):
        w = conv.weight.detach().numpy().astype(np.float64)[:, :, 0, 0]  # spectrally normalised weight
        return np.einsum("oc,bchw->bohw", w, up) + conv.bias.detach().numpy()[None, :, None, None]

    expected = xn * conv1x1(layer.gamma_conv) + conv1x1(layer.beta_conv)  # x*gamma + beta (no 1 +)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_dynamic_moment_shortcut_reinjects_statistics():
    _seed()
    ms = DynamicMomentShortcut().eval()
    with torch.no_grad():
        ms.conv.bias.copy_(torch.tensor([0.3, -0.2]))
    x = torch.randn(2, 5, 4, 4)
    mean = torch.randn(2, 1, 4, 4, requires_grad=True)
    std = (torch.rand(2, 1, 4, 4) + 0.5).requires_grad_()
    out = ms(x, mean, std)
    # Hand form: channel 0 of the 3x3 conv is beta, channel 1 gamma, both broadcast over the 5 feature channels.
    h = F.conv2d(torch.cat((mean, std), 1), ms.conv.weight, ms.conv.bias, padding=1)
    torch.testing.assert_close(out, x * h[:, 1:2] + h[:, 0:1])
    out.square().sum().backward()
    assert mean.grad.abs().sum() > 0 and std.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same resolution"):
        ms(x, mean[..., :2, :2], std)


def test_unet_moment_pairing_reverses_encoder_and_matches_resolutions():
    _seed()
    g = I2ILRGenerator(64, 8, base_channels=8, max_channels=16).eval()
    enc_moments, dec_moments = [], []
    hooks = [b.register_forward_hook(lambda mod, inp, out: enc_moments.append(out[1])) for b in g.encoder]
    for b in g.decoder:
        hooks.append(b.moments1.register_forward_hook(lambda mod, inp, out: dec_moments.append(inp[1:])))
        hooks.append(b.moments2.register_forward_hook(lambda mod, inp, out: dec_moments.append(inp[1:])))
    g(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 8, 8))
    for h in hooks:
        h.remove()
    n = len(g.encoder)
    for k in range(n):
        (mean_a, std_a), (mean_b, std_b) = enc_moments[n - 1 - k]  # A: encoder input size, B: its output size
        assert dec_moments[2 * k][0] is mean_b and dec_moments[2 * k][1] is std_b
        assert dec_moments[2 * k + 1][0] is mean_a and dec_moments[2 * k + 1][1] is std_a
    # Resolutions along the decoder: LR, LR, then doubling up to HR.
    sizes = [m[0].shape[-1] for m in dec_moments]
    assert sizes == [8, 8, 8, 16, 16, 32, 32, 64]


def test_blocks_divide_by_sqrt2_and_shortcut_changes_width():
    _seed()
    enc = PonoResBlk(4, 8, downsample=True).eval()
    y, ((ma, _), (mb, _)) = enc(torch.randn(2, 4, 8, 8))
    assert y.shape == (2, 8, 4, 4) and ma.shape[-1] == 8 and mb.shape[-1] == 4
    dec = SPAdaINResBlk(8, 4, upsample=True).eval()
    z = dec(y, torch.randn(2, 3, 2, 2), (torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)),
            (torch.randn(2, 1, 8, 8), torch.rand(2, 1, 8, 8)))
    assert z.shape == (2, 4, 8, 8)
    # Residual branch zeroed (moment shortcut gamma = beta = 0): output = nearest-upsampled shortcut / sqrt(2).
    dec.moments2.register_forward_hook(lambda mod, inp, out: torch.zeros_like(out))
    z0 = dec(y, torch.randn(2, 3, 2, 2), (torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)),
             (torch.randn(2, 1, 8, 8), torch.rand(2, 1, 8, 8)))
    expected = F.interpolate(dec.shortcut(y), scale_factor=2, mode="nearest") / math.sqrt(2)
    torch.testing.assert_close(z0, expected)


# ------------------------------------------------------------------------------- straight-through rounding


def test_straight_through_round_forward_exact_ties_to_even_and_identity_gradient():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 0.51, 3.0])
    # torch.round rounds half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2.
    assert straight_through_round(x, 1.0).tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 0.0, 1.0, 3.0]
    # Ties are exact with a binary step: 0.125 / 0.25 = 0.5 -> 0, 0.375 / 0.25 = 1.5 -> 2 steps = 0.5.
    assert straight_through_round(torch.tensor([0.125, 0.375, -0.125]), 0.25).tolist() == [0.0, 0.5, -0.0]
    _seed()
    v = (torch.rand(1000) * 2 - 1).requires_grad_()
    q = straight_through_round(v, R)
    assert torch.equal(q.detach(), torch.round(v.detach() / R) * R)  # bit-exact, not off by an ulp
    w = torch.randn(1000)
    (q * w).sum().backward()
    assert torch.equal(v.grad, w)
    with pytest.raises(ValueError, match="step"):
        straight_through_round(v, 0.0)


# ----------------------------------------------------------------------------------------- lr_difference


def _quantized_target(b=2, lr=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, 3, lr, lr, generator=g) * 1.6 - 0.8
    return torch.round(t / R) * R


def _nearest_up(y, f):
    return y.repeat_interleave(f, dim=-1).repeat_interleave(f, dim=-2)


@pytest.mark.parametrize("mode", LR_DIFF_MODES)
def test_lr_difference_zero_for_exact_upsampled_target(mode):
    y = _quantized_target()
    for f in (2, 8):
        d = lr_difference(_nearest_up(y, f), y, mode=mode)
        assert d.shape == y.shape and torch.equal(d, torch.zeros_like(y))


def test_lr_difference_hand_computation_in_grey_levels_both_modes():
    y = _quantized_target(b=1, lr=2)
    # Each 2x2 block: target + k grey levels, with zero-mean in-block detail of +-0.3 level that pooling removes.
    k = torch.tensor([[3.0, -1.0], [0.0, -7.0]]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    detail = torch.tensor([[0.3, -0.3], [-0.3, 0.3]]).repeat(2, 2) * R
    fake = (_nearest_up(y + k * R, 2) + detail).requires_grad_()
    d = lr_difference(fake, y, mode="paper")
    torch.testing.assert_close(d, k.abs(), atol=1e-3, rtol=0)  # |k| grey levels
    # public_code: |DS - y| rounded to a 4-level step, in [-1, 1] units: 3 -> 4, 1 -> 0, 0 -> 0, 7 -> 8 (no ties
    # here: a tie such as 6 / 4 = 1.5 would hinge on the last bit of the float difference).
    d_pub = lr_difference(fake, y, mode="public_code")
    torch.testing.assert_close(d_pub / GREY_LEVEL, torch.tensor([[4.0, 0.0], [0.0, 8.0]]).expand(1, 3, 2, 2),
                               atol=1e-3, rtol=0)


@pytest.mark.parametrize("mode", LR_DIFF_MODES)
def test_lr_difference_gradient_reaches_fake_hr(mode):
    _seed()
    y = _quantized_target(b=2, lr=4)
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    lr_difference(fake, y, mode=mode).sum().backward()
    # Straight-through: d(sum |ds - y| * c)/d fake = sign(ds - y) * c / f^2 at every HR pixel of the block.
    ds = F.avg_pool2d(fake.detach(), 4)
    scale = 1.0 / R if mode == "paper" else 1.0
    expected = _nearest_up(torch.sign(ds - y) * scale / 16.0, 4)
    torch.testing.assert_close(fake.grad, expected)


def test_lr_difference_rejects_bad_inputs():
    y = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="whole multiple"):
        lr_difference(torch.zeros(2, 3, 30, 30), y)
    with pytest.raises(ValueError, match="batch size"):
        lr_difference(torch.zeros(1, 3, 32, 32), y)
    with pytest.raises(ValueError, match="3 channels"):
        lr_difference(torch.zeros(2, 1, 32, 32), y)
    with pytest.raises(ValueError, match="mode"):
        lr_difference(torch.zeros(2, 3, 32, 32), y, mode="lag")
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        lr_difference(torch.zeros(3, 32, 32), y)


# -------------------------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("hr,lr", [(32, 4), (64, 16)])
def test_discriminator_real_case_and_dependence_on_diff(hr, lr):
    _seed()
    d = I2ILRDiscriminator(hr, lr, base_channels=8, max_channels=32).eval()
    x = torch.rand(2, 3, hr, hr) * 2 - 1
    zeros = torch.zeros(2, 3, lr, lr)
    assert torch.equal(d(x, None), d(x, zeros))
    diff = (torch.rand(2, 3, lr, lr) * 5).requires_grad_()
    logits = d(x, diff)
    assert (logits - d(x, zeros)).abs().min() > 1e-6
    logits.sum().backward()
    assert diff.grad.abs().sum() > 0


def test_discriminator_rejects_wrong_shapes():
    _seed()
    d = I2ILRDiscriminator(64, 8, base_channels=8, max_channels=32)
    with pytest.raises(ValueError, match="built for HR 64 / LR 8"):
        d(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="diff must be"):
        d(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="diff must be"):
        d(torch.zeros(2, 3, 64, 64), torch.zeros(1, 3, 8, 8))


# ------------------------------------------------------------------------------------------------ generator


def test_generator_depends_on_source_and_target():
    _seed()
    g = I2ILRGenerator(32, 8, base_channels=8, max_channels=16).eval()
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    y = (torch.rand(2, 3, 8, 8) * 2 - 1).requires_grad_()
    out = g(x, y)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    # Fixed target, new source: the output changes (source structure reaches the decoder).
    with torch.no_grad():
        out2 = g(torch.rand(2, 3, 32, 32) * 2 - 1, y)
        out3 = g(x, torch.rand(2, 3, 8, 8) * 2 - 1)
    assert (out2 - out).abs().mean() > 1e-3 and (out3 - out).abs().mean() > 1e-3


def test_generator_gradients_reach_every_parameter():
    _seed()
    g = I2ILRGenerator(32, 16, base_channels=8, max_channels=16)
    g(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 16)).square().mean().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("net_cls", [I2ILRGenerator, I2ILRDiscriminator])
@pytest.mark.parametrize("hr,lr,match", [
    (100, 8, "hr_size must be a power of two in \\[32, 256\\]"),
    (512, 8, "hr_size"),
    (16, 4, "hr_size"),
    (64, 2, "lr_size must be a power of two in \\[4, 32\\]"),
    (64, 64, "lr_size"),
    (32, 32, "smaller than hr_size"),
    (64.0, 8, "hr_size"),
])
def test_constructors_reject_bad_sizes(net_cls, hr, lr, match):
    with pytest.raises(ValueError, match=match):
        net_cls(hr, lr, base_channels=8, max_channels=16)


@pytest.mark.parametrize("net_cls", [I2ILRGenerator, I2ILRDiscriminator])
def test_constructors_reject_bad_widths(net_cls):
    with pytest.raises(ValueError, match="base_channels .* must be <= max_channels"):
        net_cls(64, 8, base_channels=32, max_channels=16)
    with pytest.raises(ValueError, match="positive int"):
        net_cls(64, 8, base_channels=0, max_channels=16)


def test_generator_rejects_wrong_inputs_with_clear_message():
    _seed()
    g = I2ILRGenerator(64, 8, base_channels=8, max_channels=16)
    y = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match="generator built for HR 64 / LR 8, got source 32x32"):
        g(torch.zeros(1, 3, 32, 32), y)
    with pytest.raises(ValueError, match="got target 16x16"):
        g(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="batch sizes differ"):
        g(torch.zeros(2, 3, 64, 64), y)
    with pytest.raises(ValueError, match=r"\[B, 3, 64, 64\]"):
        g(torch.zeros(1, 1, 64, 64), y)
    with pytest.raises(TypeError, match="floating-point"):
        g(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), y)


def test_projected_generator_matches_its_lr_target_exactly_and_trains():
    """project_lr: DS(G(x, y)) = y by construction, for any weights; gradients still reach every layer."""
    _seed()
    g = I2ILRGenerator(32, 8, base_channels=8, max_channels=16, project_lr=True)  # the older spelling
    assert g.project_lr == "residual"
    x, y = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    out = g(x, y)
    torch.testing.assert_close(F.avg_pool2d(out, 4), y, atol=1e-5, rtol=0)
    plain = I2ILRGenerator(32, 8, base_channels=8, max_channels=16)
    assert (F.avg_pool2d(plain(x, y), 4) - y).abs().mean() > 0.05  # without it, a random G is far off
    (out - x).abs().mean().backward()
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


def test_bounded_projection_keeps_the_lr_target_and_the_range_and_only_shrinks_detail():
    """project_lr="bounded": avg_pool(out) = target and out in [-1, 1] for any raw output, including targets at
    the range's ends; a block whose detail fits is left as "residual" makes it; the 8-bit image stays consistent."""
    _seed()
    raw = torch.randn(4, 3, 32, 32) * 2  # far outside [-1, 1]
    y = torch.rand(4, 3, 8, 8) * 2 - 1
    y[0, 0, 0, 0], y[0, 1, 0, 0], y[1, 2, 3, 3] = 1.0, -1.0, 0.999
    out = project_to_lr(raw, y, "bounded")
    torch.testing.assert_close(F.avg_pool2d(out, 4), y, atol=1e-5, rtol=0)
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    residual = project_to_lr(raw, y, "residual")
    assert residual.abs().max() > 1.5  # the unbounded one leaves the range (what a clamp then breaks)
    # Detail is only scaled (never re-shaped): out - up(y) is a non-negative multiple of residual - up(y).
    up = F.interpolate(y, scale_factor=4.0, mode="nearest")
    d_b, d_r = out - up, residual - up
    s = (d_b * d_r).sum() / (d_r * d_r).sum()
    assert 0 < s < 1
    small = torch.randn(2, 3, 32, 32) * 0.01
    y0 = torch.zeros(2, 3, 8, 8)
    torch.testing.assert_close(project_to_lr(small, y0, "bounded"), project_to_lr(small, y0, "residual"))
    # Saved as 8 bits, the image's 4 x 4 means stay within a fraction of a grey level of the (8-bit) target.
    y8 = torch.round((y + 1) * 127.5) / 127.5 - 1
    img = torch.round((project_to_lr(raw, y8, "bounded") + 1) * 127.5)
    assert (F.avg_pool2d(img, 4) - (y8 + 1) * 127.5).abs().max() <= 0.5 + 1e-4
    g = I2ILRGenerator(32, 8, base_channels=8, max_channels=16, project_lr="bounded")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    (g(x, y[:2]) - x).abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="project_lr must be one of"):
        I2ILRGenerator(32, 8, base_channels=8, max_channels=16, project_lr="clamp")
