"""I2I-LR generator G(source_hr, target_lr) -> HR image (paper §3.3, figs. 3-4).

U-shaped network; n = log2(HR / LR). Channel plan with base b and cap M (b = 64, M = 512 in the paper's code):

    from_rgb      SN conv3x3  3 -> b                                          HR
    encoder       n Pono ResBlks, each halving the size, channels c -> min(2c, M)   HR -> LR
                  + 1 Pono ResBlk at LR, same channels
    decoder       1 SPAdaIN ResBlk at LR, same channels
                  n SPAdaIN ResBlks, each doubling the size, channels c -> max(c // 2, b)   LR -> HR
    to_rgb        InstanceNorm(affine) -> LeakyReLU(0.2) -> SN conv1x1 -> 3      HR

Encoder Pono ResBlk (fig. 4a), residual branch:
    IN(affine) -> LReLU -> conv3x3 -> PONO [stats A, at the input size] -> avg-pool 2x (if downsampling)
    -> IN(affine) -> LReLU -> conv3x3 -> PONO [stats B, at the output size];
shortcut: SN 1x1 conv without bias (only when channels change) -> avg-pool; output (shortcut + residual) / sqrt(2).
PONO removes each pixel's channel mean/std from the features and hands (mean, std) to the decoder.

Decoder SPAdaIN ResBlk (fig. 4b), residual branch:
    SPAdaIN(lr) -> LReLU -> conv3x3 -> moment shortcut(stats at the input size) -> nearest upsample 2x
    -> SPAdaIN(lr) -> LReLU -> conv3x3 -> moment shortcut(stats at the output size);
shortcut: SN 1x1 conv without bias (when channels change) -> nearest upsample; output divided by sqrt(2).

U-Net pairing (as in the public code, Medabid1/I2I-LR ``networks/networks.py``): decoder block k consumes the stats
of encoder block (n - k), i.e. the encoder's list in reverse. Its first moment shortcut uses the encoder block's
stats B (taken at the encoder block's output size = this block's input size), its second uses stats A (the encoder
block's input size = this block's output size), so every shortcut sees moments of its own resolution.

Choices and differences from the public code (facts from Medabid1/I2I-LR):

* No tanh on the output: the public generator ends with the 1x1 conv; outputs are not clamped.
* Upsampling is nearest (StarGAN v2's choice, as the task asks); the public code uses bilinear with
  ``align_corners=True`` (``nn.UpsamplingBilinear2d``) in the decoder blocks and the LR-image resizing
  (``upsample="bilinear"``, part of ``recipe="public_code"``, with ``spadain_sn=False`` and ``pono_unbiased``).
* The encoder's first block goes b -> 2b, later blocks double up to M; the public code hard-codes 64 -> 128 and
  sizes the non-downsampling block from the *next* doubling, which breaks when log2(HR / LR) < 3 and the cap is not
  reached; here that block always keeps the channels it receives.
* Spectral norm on every conv, including SPAdaIN's 1x1 convs (plain convs in the public code).
* Kaiming-normal init (fan_in, a = 0, zero biases) of every conv before SN is attached; InstanceNorm affine
  parameters keep PyTorch's (1, 0). Under SN only the direction of the initial weights matters (see layers.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lrkit.methods.i2ilr.layers import (
    DynamicMomentShortcut, SPAdaIN, check_sizes, check_widths, pono, sn_conv2d, upsample2x,
)

UPSAMPLE_MODES = ("nearest", "bilinear")
# Output layers that make DS(G) equal the LR target (not in the paper; a study arm and the cpu presets):
# "residual" adds the nearest-upsampled LR residual (the output may leave [-1, 1], and the clamp of a saved image
# then breaks the equality), "bounded" also shrinks each LR block's detail just enough to stay in [-1, 1].
LR_PROJECTIONS = ("none", "residual", "bounded")


def project_to_lr(out: torch.Tensor, target_lr: torch.Tensor, mode: str) -> torch.Tensor:
    """Make avg_pool(out) equal ``target_lr`` ([B, 3, LR, LR] in [-1, 1]) by construction; out [B, 3, HR, HR].

    "residual": out + nearest_up(target - avg_pool(out)) (avg_pool(nearest_up(r)) = r). "bounded": write that as
    up(target) + d, where d has zero mean in every LR block, and scale d per block and channel by the largest
    s <= 1 that keeps up(target) + s * d inside [-1, 1] (s >= 0 exists since |target| <= 1): the block mean
    stays the target and no pixel needs clamping, so a saved 8-bit image is LR-consistent up to rounding.
    """
    if mode == "none":
        return out
    if mode not in LR_PROJECTIONS:
        raise ValueError(f"project_lr must be one of {LR_PROJECTIONS}, got {mode!r}")
    f = out.shape[-1] // target_lr.shape[-1]
    up = F.interpolate(target_lr, scale_factor=float(f), mode="nearest")
    d = out - F.interpolate(F.avg_pool2d(out, f), scale_factor=float(f), mode="nearest")
    if mode == "residual":
        return up + d
    # Per pixel, the largest scale that keeps it in range: (1 - t) / d above, (-1 - t) / d below, none if d = 0.
    room = torch.where(d > 0, (1 - up) / d.clamp_min(1e-12), torch.where(d < 0, (-1 - up) / d.clamp_max(-1e-12),
                                                                          torch.ones_like(d)))
    s = (-F.max_pool2d(-room, f)).clamp(0.0, 1.0)  # min over each f x f block, [B, 3, LR, LR]
    return up + F.interpolate(s, scale_factor=float(f), mode="nearest") * d

# (mean, std) maps [B, 1, H, W] produced by one PONO.
Moments = tuple[torch.Tensor, torch.Tensor]


class PonoResBlk(nn.Module):
    """Encoder block; forward(x [B, cin, H, W]) -> (y [B, cout, H', W'], (moments at H x W, moments at H' x W'))."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, pono_unbiased: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.pono_unbiased = pono_unbiased
        self.norm1 = nn.InstanceNorm2d(in_channels, affine=True)
        self.conv1 = sn_conv2d(in_channels, out_channels, 3)
        self.norm2 = nn.InstanceNorm2d(out_channels, affine=True)
        self.conv2 = sn_conv2d(out_channels, out_channels, 3)
        self.shortcut = sn_conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[Moments, Moments]]:
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        h, mean_in, std_in = pono(h, unbiased=self.pono_unbiased)
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        h, mean_out, std_out = pono(h, unbiased=self.pono_unbiased)
        s = self.shortcut(x) if self.shortcut is not None else x
        if self.downsample:
            s = F.avg_pool2d(s, 2)
        # /sqrt(2): the sum of two roughly unit-variance branches keeps unit variance.
        return (s + h) / math.sqrt(2.0), ((mean_in, std_in), (mean_out, std_out))


class SPAdaINResBlk(nn.Module):
    """Decoder block; forward(x [B, cin, H, W], lr [B, 3, h, w], moments at H x W, moments at H' x W') -> y."""

    def __init__(self, in_channels: int, out_channels: int, upsample: bool, mode: str = "nearest",
                 spadain_sn: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.mode = mode  # "nearest" or "bilinear" (align_corners=True), see I2ILRGenerator
        self.norm1 = SPAdaIN(in_channels, spectral=spadain_sn, resize=mode)
        self.conv1 = sn_conv2d(in_channels, out_channels, 3)
        self.moments1 = DynamicMomentShortcut()
        self.norm2 = SPAdaIN(out_channels, spectral=spadain_sn, resize=mode)
        self.conv2 = sn_conv2d(out_channels, out_channels, 3)
        self.moments2 = DynamicMomentShortcut()
        self.shortcut = sn_conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, lr: torch.Tensor, moments_in: Moments, moments_out: Moments) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(self.norm1(x, lr), 0.2))
        h = self.moments1(h, *moments_in)
        if self.upsample:
            h = upsample2x(h, self.mode)
        h = self.conv2(F.leaky_relu(self.norm2(h, lr), 0.2))
        h = self.moments2(h, *moments_out)
        s = self.shortcut(x) if self.shortcut is not None else x
        if self.upsample:
            s = upsample2x(s, self.mode)
        return (s + h) / math.sqrt(2.0)


class I2ILRGenerator(nn.Module):
    """G(source_hr [B, 3, HR, HR], target_lr [B, 3, LR, LR]) -> [B, 3, HR, HR]; inputs in [-1, 1], output unbounded."""

    def __init__(self, hr_size: int, lr_size: int, base_channels: int = 64, max_channels: int = 512,
                 upsample: str = "nearest", spadain_sn: bool = True, pono_unbiased: bool = False,
                 project_lr: str | bool = "none") -> None:
        super().__init__()
        n = check_sizes(hr_size, lr_size)
        check_widths(base_channels, max_channels)
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.hr_size = hr_size
        self.lr_size = lr_size
        self.base_channels = base_channels
        self.max_channels = max_channels
        # The public code's choices (recipe "public_code"): bilinear upsampling, plain SPAdaIN convs, unbiased PONO.
        self.upsample, self.spadain_sn, self.pono_unbiased = upsample, spadain_sn, pono_unbiased
        # Not in the paper: an output layer that makes DS(G) equal the LR target by construction (see forward).
        # (A bool is the older spelling: True meant "residual".)
        project_lr = {True: "residual", False: "none"}.get(project_lr, project_lr)
        if project_lr not in LR_PROJECTIONS:
            raise ValueError(f"project_lr must be one of {LR_PROJECTIONS}, got {project_lr!r}")
        self.project_lr = project_lr

        self.from_rgb = sn_conv2d(3, base_channels, 3)
        encoder, c = [], base_channels
        for _ in range(n):
            c_out = min(2 * c, max_channels)
            encoder.append(PonoResBlk(c, c_out, downsample=True, pono_unbiased=pono_unbiased))
            c = c_out
        encoder.append(PonoResBlk(c, c, downsample=False, pono_unbiased=pono_unbiased))
        self.encoder = nn.ModuleList(encoder)

        decoder = [SPAdaINResBlk(c, c, upsample=False, mode=upsample, spadain_sn=spadain_sn)]
        for _ in range(n):
            c_out = max(c // 2, base_channels)
            decoder.append(SPAdaINResBlk(c, c_out, upsample=True, mode=upsample, spadain_sn=spadain_sn))
            c = c_out
        self.decoder = nn.ModuleList(decoder)

        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(c, affine=True), nn.LeakyReLU(0.2), sn_conv2d(c, 3, 1))

    def config_dict(self) -> dict:
        """Constructor arguments; ``I2ILRGenerator(**g.config_dict())`` builds the same architecture."""
        return {"hr_size": self.hr_size, "lr_size": self.lr_size, "base_channels": self.base_channels,
                "max_channels": self.max_channels, "upsample": self.upsample, "spadain_sn": self.spadain_sn,
                "pono_unbiased": self.pono_unbiased, "project_lr": self.project_lr}

    def _check_inputs(self, source_hr: torch.Tensor, target_lr: torch.Tensor) -> None:
        built = f"generator built for HR {self.hr_size} / LR {self.lr_size}"
        for name, t, size in (("source", source_hr, self.hr_size), ("target", target_lr, self.lr_size)):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"{built}: {name} must be a floating-point tensor in [-1, 1], got "
                                f"{getattr(t, 'dtype', type(t).__name__)}")
            if t.dim() != 4 or t.shape[1] != 3:
                raise ValueError(f"{built}: {name} must be [B, 3, {size}, {size}], got {tuple(t.shape)}")
            if tuple(t.shape[-2:]) != (size, size):
                raise ValueError(f"{built}, got {name} {t.shape[-2]}x{t.shape[-1]}; resize the {name} to "
                                 f"{size}x{size} or build a generator for these sizes")
        if source_hr.shape[0] != target_lr.shape[0]:
            raise ValueError(f"{built}: source and target batch sizes differ ({source_hr.shape[0]} vs "
                             f"{target_lr.shape[0]}); give one LR target per source image")

    def forward(self, source_hr: torch.Tensor, target_lr: torch.Tensor) -> torch.Tensor:
        self._check_inputs(source_hr, target_lr)
        h = self.from_rgb(source_hr)
        moments: list[tuple[Moments, Moments]] = []
        for block in self.encoder:
            h, m = block(h)
            moments.append(m)
        # U-Net pairing: last encoder block <-> first decoder block. Encoder (A at its input size, B at its output
        # size) maps to the decoder's (output size, input size), hence the swap.
        for block, (m_a, m_b) in zip(self.decoder, reversed(moments)):
            h = block(h, target_lr, moments_in=m_b, moments_out=m_a)
        out = self.to_rgb(h)
        # Not in the paper (project_lr): only the part of the image an LR downscale cannot see is left to the
        # network; [B, 3, HR, HR].
        out = project_to_lr(out, target_lr, self.project_lr)
        return out
