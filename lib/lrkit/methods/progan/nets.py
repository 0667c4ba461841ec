"""ProGAN networks (Karras et al. 2018, "Progressive Growing of GANs"), as SR-NAM's §4.1 generator uses them.

Building blocks:

* :class:`EqualizedConv2d` / :class:`EqualizedLinear`: the equalized learning rate. Weights are stored as
  N(0, 1) draws and multiplied at run time by the He constant ``sqrt(2 / fan_in)`` (``fan_in`` = inputs of one
  output: ``in_channels * k * k`` or ``in_features``); biases start at zero and are not scaled. Every layer uses
  that one constant, the PyTorch ProGAN package's choice; the original TensorFlow code uses gain 1 instead of
  sqrt(2) for toRGB and the critic's last dense layer, and sqrt(2) / 4 for the generator's first dense layer.
* :class:`PixelNorm`: ``x / sqrt(mean_c x^2 + 1e-8)`` over the channels of each pixel (each latent vector).
* :class:`MinibatchStdDev`: the critic's minibatch standard deviation, one extra feature map (group size 4).

Progressive growing: stage ``k`` (0-based, ``depth`` stages) works at ``4 * 2**k`` px, so depth 5 grows from 4 to
64 px. The width of stage ``k`` is :func:`stage_channels` ``min(fmap_base // 2**(k + 1), fmap_max)`` (Karras's
``nf``); fmap_base 8192 and fmap_max 512 give 512, 512, 512, 512, 256 for 4...64 px.

* :class:`ProganGenerator` ``G(z, depth_index, alpha)``: the raw Gaussian z [B, latent_dim] is pixel-normalised,
  a dense layer makes a 4x4 map, a 3x3 conv follows (LeakyReLU 0.2 and pixel norm after each); every later stage
  upsamples x2 (nearest) and applies two 3x3 convs (each followed by LeakyReLU 0.2 and pixel norm). Each stage has
  its own 1x1 toRGB (linear). During a fade-in (``alpha < 1``) at stage k >= 1 the output is
  ``alpha * toRGB_k(stage_k(h)) + (1 - alpha) * upsample(toRGB_{k-1}(h))`` with ``h`` the stage k-1 features;
  ``alpha = 0`` is exactly the previous stage's image, nearest-upsampled.
* :class:`ProganDiscriminator` ``D(x, depth_index, alpha)`` mirrors it: a 1x1 fromRGB per stage (LeakyReLU), per
  stage k >= 1 two 3x3 convs and a 2x2 average pool, and the final 4x4 block: minibatch stddev, 3x3 conv, 4x4
  'valid' conv (a dense layer over the 4x4 map), linear to one score (no activation: a WGAN critic). During a
  fade-in the features after stage k's block are blended with ``fromRGB_{k-1}(avgpool(x))``, so ``alpha = 0`` is
  exactly the previous-stage critic on the downsampled image.
* :class:`ProGANLatentGenerator`: a trained generator (full depth, alpha 1) as the latent generator the latent
  search takes (``lrkit.nets.latent_generator``); :func:`lrkit.methods.progan.latent.load_progan` loads one.

The networks hold no training logic (that is ``lrkit.methods.progan.task``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EqualizedConv2d", "EqualizedLinear", "PixelNorm", "MinibatchStdDev", "ProganGenerator",
           "ProganDiscriminator", "ProGANLatentGenerator", "stage_channels", "stage_size", "PIXEL_NORM_EPS",
           "MBSTD_GROUP", "LRELU_SLOPE"]

PIXEL_NORM_EPS = 1e-8
MBSTD_GROUP = 4  # the original minibatch-stddev group size
MBSTD_EPS = 1e-8  # under the square root of the group variance (the original's)
LRELU_SLOPE = 0.2
_HE_GAIN = math.sqrt(2.0)


def stage_channels(stage: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps of stage ``stage`` (0: 4x4): ``min(fmap_base // 2**(stage + 1), fmap_max)``, at least 1."""
    return max(1, min(int(fmap_base) // 2 ** (int(stage) + 1), int(fmap_max)))


def stage_size(stage: int) -> int:
    """Side in pixels of stage ``stage``: ``4 * 2**stage``."""
    return 4 * 2 ** int(stage)


class EqualizedLinear(nn.Module):
    """``y = x @ (W * scale).T + b`` with ``W ~ N(0, 1)`` stored, ``scale = gain / sqrt(in_features)`` (He: gain
    sqrt(2)), ``b`` zero-initialised and unscaled."""

    def __init__(self, in_features: int, out_features: int, gain: float = _HE_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = float(gain) / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out]
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """Stride-1 convolution with ``W ~ N(0, 1)`` stored and scaled at run time by ``gain / sqrt(in * k * k)``;
    ``padding`` defaults to 'same' for odd kernels (``k // 2``); the 4x4 critic layer passes 0 ('valid')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
                 gain: float = _HE_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = float(gain) / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2 if padding is None else int(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, H', W']
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector (dim 1) to unit mean square: ``x / sqrt(mean_c(x^2) + eps)``."""

    def __init__(self, eps: float = PIXEL_NORM_EPS) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the average over channels and pixels of the per-feature standard deviation within a
    group of samples, ``sqrt(mean_g (x - mean_g x)^2 + 1e-8)`` (biased variance over the group).

    Groups as the original: ``G = min(group_size, B)`` and sample ``b`` belongs to group ``b % (B / G)``
    (``x.reshape(G, B / G, ...)``); the group's value fills sample b's extra map. A batch that ``G`` does not
    divide is taken as one group of all B samples (the original requires divisibility; every preset's batch is a
    multiple of 4)."""

    def __init__(self, group_size: int = MBSTD_GROUP) -> None:
        super().__init__()
        self.group_size = int(group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C + 1, H, W]
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        if b % g:
            g = b
        y = x.reshape(g, b // g, c, h, w).float()
        y = y - y.mean(dim=0, keepdim=True)
        std = (y.pow(2).mean(dim=0) + MBSTD_EPS).sqrt()  # [M, C, H, W]
        s = std.mean(dim=(1, 2, 3)).to(x.dtype)  # [M]
        s = s.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)  # sample b -> group b % M
        return torch.cat([x, s], dim=1)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def _check_depth_alpha(depth_index: int, alpha: float, depth: int) -> None:
    if isinstance(depth_index, bool) or not isinstance(depth_index, int) or not 0 <= depth_index < depth:
        raise ValueError(f"depth_index must be an int in [0, {depth - 1}] (stage {depth_index!r} does not exist in "
                         f"a depth-{depth} ProGAN)")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the fade-in weight of the newest stage), got {alpha!r}")


class _GenFirst(nn.Module):
    """Stage 0: pixel norm of z, dense to C x 4 x 4, LReLU + pixel norm, 3x3 conv, LReLU + pixel norm."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = PixelNorm()
        self.dense = EqualizedLinear(latent_dim, channels * 16)
        self.conv = EqualizedConv2d(channels, channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(self.norm(z)).reshape(z.shape[0], self.channels, 4, 4)
        h = self.norm(_lrelu(h))
        return self.norm(_lrelu(self.conv(h)))


class _GenBlock(nn.Module):
    """A later stage: nearest upsample x2, two 3x3 convs, each followed by LReLU 0.2 and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.norm(_lrelu(self.conv1(h)))
        return self.norm(_lrelu(self.conv2(h)))


class ProganGenerator(nn.Module):
    """Progressive generator: ``forward(z [B, latent_dim], depth_index, alpha) -> [B, 3, S, S]`` with
    ``S = 4 * 2**depth_index`` (not clamped; the data are in [-1, 1]). ``blocks[k]`` / ``to_rgb[k]`` belong to
    stage k; a stage past ``depth_index`` is not run."""

    def __init__(self, depth: int = 5, latent_dim: int = 512, fmap_base: int = 8192, fmap_max: int = 512) -> None:
        super().__init__()
        if depth < 1 or latent_dim < 1:
            raise ValueError(f"ProganGenerator needs depth >= 1 and latent_dim >= 1, got {depth}, {latent_dim}")
        self.depth, self.latent_dim = int(depth), int(latent_dim)
        self.fmap_base, self.fmap_max = int(fmap_base), int(fmap_max)
        ch = [stage_channels(k, fmap_base, fmap_max) for k in range(depth)]
        self.channels = tuple(ch)
        self.blocks = nn.ModuleList([_GenFirst(latent_dim, ch[0])]
                                    + [_GenBlock(ch[k - 1], ch[k]) for k in range(1, depth)])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, 3, 1) for c in ch])

    @property
    def output_size(self) -> int:
        return stage_size(self.depth - 1)

    def forward(self, z: torch.Tensor, depth_index: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        k = self.depth - 1 if depth_index is None else depth_index
        _check_depth_alpha(k, alpha, self.depth)
        h = self.blocks[0](z)
        for j in range(1, k):
            h = self.blocks[j](h)
        if k == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[k](self.blocks[k](h))
        if alpha >= 1.0:
            return new
        old = F.interpolate(self.to_rgb[k - 1](h), scale_factor=2, mode="nearest")
        return alpha * new + (1.0 - alpha) * old


class _DisFirst(nn.Module):
    """Stage 0 (the critic's last block): minibatch stddev, 3x3 conv, 4x4 valid conv, linear to 1 score."""

    def __init__(self, channels: int, group_size: int = MBSTD_GROUP) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(group_size)
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.conv4 = EqualizedConv2d(channels, channels, 4, padding=0)
        self.linear = EqualizedLinear(channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [B, C, 4, 4] -> [B, 1]
        h = _lrelu(self.conv(self.mbstd(h)))
        h = _lrelu(self.conv4(h)).flatten(1)
        return self.linear(h)


class _DisBlock(nn.Module):
    """A later stage: two 3x3 convs (LReLU 0.2 after each), then a 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = _lrelu(self.conv2(_lrelu(self.conv1(h))))
        return F.avg_pool2d(h, 2)


class ProganDiscriminator(nn.Module):
    """Progressive WGAN critic: ``forward(x [B, 3, S, S], depth_index, alpha) -> scores [B, 1]``, S the stage's
    size. ``blocks[k]`` / ``from_rgb[k]`` belong to stage k (mirroring the generator's widths)."""

    def __init__(self, depth: int = 5, fmap_base: int = 8192, fmap_max: int = 512,
                 mbstd_group: int = MBSTD_GROUP) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"ProganDiscriminator needs depth >= 1, got {depth}")
        self.depth = int(depth)
        ch = [stage_channels(k, fmap_base, fmap_max) for k in range(depth)]
        self.channels = tuple(ch)
        self.blocks = nn.ModuleList([_DisFirst(ch[0], mbstd_group)]
                                    + [_DisBlock(ch[k], ch[k - 1]) for k in range(1, depth)])
        self.from_rgb = nn.ModuleList([EqualizedConv2d(3, c, 1) for c in ch])

    def forward(self, x: torch.Tensor, depth_index: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        k = self.depth - 1 if depth_index is None else depth_index
        _check_depth_alpha(k, alpha, self.depth)
        if x.shape[-1] != stage_size(k) or x.shape[-2] != stage_size(k):
            raise ValueError(f"stage {k} of the critic takes {stage_size(k)} px images, got "
                             f"{tuple(x.shape[-2:])}")
        h = _lrelu(self.from_rgb[k](x))
        if k > 0:
            h = self.blocks[k](h)
            if alpha < 1.0:
                old = _lrelu(self.from_rgb[k - 1](F.avg_pool2d(x, 2)))
                h = alpha * h + (1.0 - alpha) * old
        for j in range(k - 1, 0, -1):
            h = self.blocks[j](h)
        return self.blocks[0](h)


class ProGANLatentGenerator(nn.Module):
    """A trained :class:`ProganGenerator` as a latent generator (``lrkit.nets.latent_generator``) for the latent
    search: always the full depth at ``alpha = 1``, one latent vector of ``G.latent_dim``, no noise inputs.
    ``map_prior`` is the identity (ProGAN's input is the raw Gaussian; its pixel norm is inside ``G``)."""

    num_latents = 1

    def __init__(self, G: ProganGenerator) -> None:
        super().__init__()
        if not isinstance(G, ProganGenerator):
            raise TypeError(f"ProGANLatentGenerator wraps a ProganGenerator, got {type(G).__name__}")
        self.G = G
        self.latent_dim = int(G.latent_dim)
        self.output_size = int(G.output_size)

    def noise_shapes(self) -> list[tuple[int, ...]]:
        return []

    def map_prior(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def synthesize(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        if w.dim() != 3 or w.shape[1] != 1 or w.shape[2] != self.latent_dim:
            raise ValueError(f"ProGAN takes latents [B, 1, {self.latent_dim}], got {tuple(w.shape)}")
        if noise:
            raise ValueError("ProGAN has no noise inputs (noise_shapes() is []); pass noise=None")
        return self.G(w[:, 0], self.G.depth - 1, 1.0)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.synthesize(w)
