"""SR-NAM's degradation GAN (§3.2, after Bulat et al. 2018's High-to-Low network): HR 64 px + noise -> LR 16 px.

Generator (``DegradationGenerator``): the noise z [B, noise_dim] (100 in the paper) goes through one fully connected
layer to one 64 x 64 map, concatenated to the HR image as a fourth channel; a 3 x 3 convolution, then 12 residual
blocks in 6 groups of 2: the first four groups each end in a 2 x 2 average pool (64 -> 32 -> 16 -> 8 -> 4, "the
resolution is dropped 4 times"), the last two each end in a pixel shuffle x 2 (4 -> 8 -> 16); a final BN-ReLU-conv
to RGB and tanh. The paper names no widths or pooling kind: ``width`` channels throughout (64, ResNet's first
stage) and average pooling (a degradation blurs; max pooling would pick bright pixels).

Residual blocks (ResNet, pre-activation): ``x + conv(relu(bn(conv(relu(bn(x))))))``; the generator's have batch
norm, the critic's none ("6 residual blocks without any batch normalization").

Critic (``DegradationDiscriminator``): a 3 x 3 convolution from RGB, 6 residual blocks, a 2 x 2 max pool after
each of the last two (16 -> 8 -> 4), ReLU and one fully connected layer to a score [B, 1].

Networks hold no training logic; the losses are in ``lrkit.methods.srnam.losses``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DegradationGenerator", "DegradationDiscriminator", "ResBlock", "HR_SIZE", "LR_SIZE"]

HR_SIZE, LR_SIZE = 64, 16  # SR-NAM's sizes (and Widerface's LR faces)
N_GROUPS, BLOCKS_PER_GROUP, N_POOLS = 6, 2, 4  # 12 blocks in 6 groups; 4 poolings, then 2 pixel shuffles


class ResBlock(nn.Module):
    """Pre-activation residual block [B, c_in, H, W] -> [B, c_out, H, W]; a 1 x 1 convolution on the skip path
    when the widths differ. ``norm``: batch norm before each ReLU (the generator's), or none (the critic's)."""

    def __init__(self, c_in: int, c_out: int, norm: bool) -> None:
        super().__init__()
        self.n1 = nn.BatchNorm2d(c_in) if norm else nn.Identity()
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.n2 = nn.BatchNorm2d(c_out) if norm else nn.Identity()
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.relu(self.n1(x)))
        h = self.c2(F.relu(self.n2(h)))
        return self.skip(x) + h


class DegradationGenerator(nn.Module):
    """``forward(hr [B, 3, 64, 64], z [B, noise_dim]) -> lr [B, 3, 16, 16]`` in [-1, 1] (module docstring)."""

    def __init__(self, width: int = 64, noise_dim: int = 100) -> None:
        super().__init__()
        if width < 1 or noise_dim < 1:
            raise ValueError(f"DegradationGenerator needs width >= 1 and noise_dim >= 1, got {width}, {noise_dim}")
        self.width, self.noise_dim = int(width), int(noise_dim)
        self.noise_fc = nn.Linear(noise_dim, HR_SIZE * HR_SIZE)  # z -> one 64 x 64 channel
        self.conv_in = nn.Conv2d(4, width, 3, padding=1)
        self.groups = nn.ModuleList([
            nn.Sequential(*[ResBlock(width, width, norm=True) for _ in range(BLOCKS_PER_GROUP)])
            for _ in range(N_GROUPS)])
        # Pixel shuffle x 2 divides the channels by 4: a 3 x 3 conv to 4 x width before each.
        self.up = nn.ModuleList([nn.Conv2d(width, 4 * width, 3, padding=1) for _ in range(N_GROUPS - N_POOLS)])
        self.norm_out = nn.BatchNorm2d(width)
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, hr: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if hr.ndim != 4 or hr.shape[1:] != (3, HR_SIZE, HR_SIZE):
            raise ValueError(f"DegradationGenerator takes HR images [B, 3, {HR_SIZE}, {HR_SIZE}], got "
                             f"{tuple(hr.shape)}")
        if z.shape != (hr.shape[0], self.noise_dim):
            raise ValueError(f"DegradationGenerator takes noise [B, {self.noise_dim}] with B = {hr.shape[0]}, got "
                             f"{tuple(z.shape)}")
        noise_map = self.noise_fc(z).view(-1, 1, HR_SIZE, HR_SIZE)
        h = self.conv_in(torch.cat([hr, noise_map], dim=1))  # [B, width, 64, 64]
        for k, group in enumerate(self.groups):
            h = group(h)
            if k < N_POOLS:
                h = F.avg_pool2d(h, 2)  # 64 -> 32 -> 16 -> 8 -> 4
            else:
                h = F.pixel_shuffle(self.up[k - N_POOLS](h), 2)  # 4 -> 8 -> 16
        return torch.tanh(self.conv_out(F.relu(self.norm_out(h))))


class DegradationDiscriminator(nn.Module):
    """``forward(lr [B, 3, 16, 16]) -> scores [B, 1]`` (raw: hinge or Wasserstein critic values)."""

    def __init__(self, width: int = 64, n_blocks: int = 6) -> None:
        super().__init__()
        if width < 1 or n_blocks < 2:
            raise ValueError(f"DegradationDiscriminator needs width >= 1 and n_blocks >= 2, got {width}, {n_blocks}")
        self.width, self.n_blocks = int(width), int(n_blocks)
        self.conv_in = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(width, width, norm=False) for _ in range(n_blocks)])
        self.fc = nn.Linear(width * (LR_SIZE // 4) ** 2, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4 or lr.shape[1:] != (3, LR_SIZE, LR_SIZE):
            raise ValueError(f"DegradationDiscriminator takes LR images [B, 3, {LR_SIZE}, {LR_SIZE}], got "
                             f"{tuple(lr.shape)}")
        h = self.conv_in(lr)
        for k, block in enumerate(self.blocks):
            h = block(h)
            if k >= self.n_blocks - 2:
                h = F.max_pool2d(h, 2)  # the last two blocks: 16 -> 8 -> 4
        return self.fc(F.relu(h).flatten(1))
