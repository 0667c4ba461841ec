"""I2I-LR discriminator D(x, d) -> one logit per image (paper §3.2 eq. 6, §3.3).

StarGAN v2's discriminator without the per-domain outputs, plus the LR-difference map of eq. 5 concatenated where
the features reach the LR size. With width b (default 2**14 // HR, as in StarGAN v2 and the public I2I-LR code),
cap M, n = log2(HR / LR), m = log2(LR / 4):

    SN conv3x3 3 -> b                                                         HR
    n ResBlks, each halving the size, channels c -> min(2c, M)                HR -> LR
    concat d [B, 3, LR, LR]                                                   channels c + 3
    m ResBlks, each halving the size, channels (c [+3]) -> min(2c, M)         LR -> 4   (none when LR = 4)
    LeakyReLU(0.2) -> SN conv4x4 (valid) -> LeakyReLU(0.2) -> SN conv1x1 -> 1 4 -> 1

ResBlk (no normalisation): residual LReLU -> conv3x3 (cin -> cout) -> avg-pool 2x -> LReLU -> conv3x3 (cout -> cout);
shortcut SN 1x1 conv without bias when channels change, then avg-pool; output (shortcut + residual) / sqrt(2). The
first conv maps cin -> cout as in I2I-LR's ``ResBlk`` (StarGAN v2's maps cin -> cin and changes width in the second).

Choices and differences from the public code (facts from Medabid1/I2I-LR ``networks/networks.py``):

* The public code puts a non-downsampling ResBlk right after the concat and then log2(LR) - 3 downsampling ones, so
  at LR = 8 its 4x4 conv sees an 8x8 map and returns a 5x5 logit map. Here the features are brought to 4x4 as in
  StarGAN v2 (log2(HR) - 2 downsampling blocks in all), so D returns one logit per image; ``patch=True`` (part of
  ``recipe="public_code"``) builds the public code's layout and returns the logit map.
* Spectral norm on every conv (StarGAN v2 has none; the I2I-LR paper and code use it); Kaiming-normal init before SN.
* ``diff=None`` means the all-zero map of eq. 6 (a real image with its own LR target).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lrkit.methods.i2ilr.layers import check_sizes, check_widths, sn_conv2d


class DiscResBlk(nn.Module):
    """Residual block without normalisation: [B, cin, H, W] -> [B, cout, H/2, W/2] (or H x W when not
    ``downsample``: the public code's block right after the concat)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = sn_conv2d(in_channels, out_channels, 3)
        self.conv2 = sn_conv2d(out_channels, out_channels, 3)
        self.shortcut = sn_conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = (lambda t: F.avg_pool2d(t, 2)) if self.downsample else (lambda t: t)
        h = self.conv1(F.leaky_relu(x, 0.2))
        h = self.conv2(F.leaky_relu(pool(h), 0.2))
        s = self.shortcut(x) if self.shortcut is not None else x
        return (pool(s) + h) / math.sqrt(2.0)


class I2ILRDiscriminator(nn.Module):
    """D(x [B, 3, HR, HR], diff [B, 3, LR, LR] or None) -> logits [B] (``patch``: a logit map [B, P, P])."""

    def __init__(self, hr_size: int, lr_size: int, base_channels: int | None = None,
                 max_channels: int = 512, patch: bool = False) -> None:
        super().__init__()
        n = check_sizes(hr_size, lr_size)
        if base_channels is None:
            base_channels = 2**14 // hr_size
        check_widths(base_channels, max_channels)
        self.hr_size = hr_size
        self.lr_size = lr_size
        self.base_channels = base_channels
        self.max_channels = max_channels
        self.patch = patch

        self.from_rgb = sn_conv2d(3, base_channels, 3)
        blocks, c = [], base_channels
        for _ in range(n):
            blocks.append(DiscResBlk(c, min(2 * c, max_channels)))
            c = min(2 * c, max_channels)
        self.to_lr = nn.Sequential(*blocks)

        # After the concat the first block takes c + 3 channels; its width follows the doubling of c alone.
        blocks, c_in = [], c + 3
        if patch:
            # The public code: one block at LR, then log2(LR) - 3 halvings, so the 4x4 valid conv leaves a
            # (LR / 2**k - 3)-pixel map: 5 x 5 at LR 8 and above, 1 x 1 at LR 4.
            blocks.append(DiscResBlk(c_in, c, downsample=False))
            c_in = c
            n_down = max(0, (lr_size // 8).bit_length() - 1)
        else:
            n_down = (lr_size // 4).bit_length() - 1
        for _ in range(n_down):
            c = min(2 * c, max_channels)
            blocks.append(DiscResBlk(c_in, c))
            c_in = c
        self.to_4x4 = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), sn_conv2d(c_in, c, 4, padding=0), nn.LeakyReLU(0.2),
                                  sn_conv2d(c, 1, 1))

    def config_dict(self) -> dict[str, int]:
        """Constructor arguments (base_channels resolved); ``I2ILRDiscriminator(**d.config_dict())`` rebuilds it."""
        return {"hr_size": self.hr_size, "lr_size": self.lr_size, "base_channels": self.base_channels,
                "max_channels": self.max_channels, "patch": self.patch}

    def forward(self, x: torch.Tensor, diff: torch.Tensor | None = None) -> torch.Tensor:
        built = f"discriminator built for HR {self.hr_size} / LR {self.lr_size}"
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{built}: x must be a floating-point image tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, self.hr_size, self.hr_size):
            raise ValueError(f"{built}, got image {tuple(x.shape)}; expected [B, 3, {self.hr_size}, "
                             f"{self.hr_size}] (resize the images or build a discriminator for this size)")
        expected = (x.shape[0], 3, self.lr_size, self.lr_size)
        if diff is None:
            diff = x.new_zeros(expected)  # eq. 6: real image with its own LR target
        elif not isinstance(diff, torch.Tensor) or tuple(diff.shape) != expected:
            raise ValueError(f"{built}: diff must be [B, 3, {self.lr_size}, {self.lr_size}] = {list(expected)} "
                             f"(lrkit.methods.i2ilr.layers.lr_difference) or None for real images, got "
                             f"{tuple(getattr(diff, 'shape', ())) or type(diff).__name__}")
        h = self.to_lr(self.from_rgb(x))
        h = self.to_4x4(torch.cat((h, diff.to(h.dtype)), dim=1))
        out = self.head(h)  # [B, 1, P, P]
        return out[:, 0] if self.patch else out.view(x.shape[0])
