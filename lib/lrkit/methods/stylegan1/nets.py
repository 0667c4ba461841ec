"""StyleGAN-1 (FFHQ 1024) mapping and synthesis networks with exactly the state_dict layout PULSE ships.

PULSE (adamian98/pulse, ``stylegan.py``, a port of the lernapparat StyleGAN notebook) releases the FFHQ generator
as two PyTorch state_dicts, ``mapping.pt`` (its ``G_mapping``) and ``synthesis.pt`` (its ``G_synthesis``). These
modules are our own code; what they share with PULSE's is what the files and PULSE's results depend on:

* the parameter / buffer names and shapes (so the released files load with strict key matching), and
* the forward arithmetic, including the choices that differ from NVIDIA's TensorFlow original:

  - the mapping network returns one vector per sample, ``[B, 512]``: PULSE's ``G_mapping`` stops after
    ``dense7``'s activation, with no broadcast to the 18 layers and no truncation (PULSE never feeds mapping
    outputs to the synthesis net; it only uses them to fit its prior, :mod:`lrkit.methods.stylegan1.prior`);
  - the synthesis network takes ``dlatents [B, 18, 512]`` and a list of 18 noise maps ``[B or 1, 1, s_i, s_i]``,
    ``s_i = 2 ** (i // 2 + 2)`` (PULSE's ``G_synthesis.forward(dlatents_in, noise_in)``; block ``k`` reads latents
    and noise ``2k`` and ``2k + 1``), and returns the raw ``torgb`` output ``[B, 3, 1024, 1024]``, nominally in
    [-1, 1], neither clamped nor passed through a tanh;
  - layers whose *output* side is at least 128 px upsample with a transposed convolution over the 2x2 box sum of
    the 3x3 kernel (NVIDIA's "fused" upscale-conv), smaller ones with nearest-neighbour upsampling then the 3x3
    convolution. The two are not the same function of a weight (the fused path equals the other with the kernel
    spatially flipped), so which layers take which path is part of what the released weights mean: keep
    ``fused_from=128`` for PULSE's file; smaller values only let tiny test networks run that code path.

State_dict layout (blocks at sides 4, 8, ..., 1024 with 512 channels up to 32 px, then 256, 128, 64, 32, 16; see
:func:`synthesis_channels`):

* mapping (16 tensors): ``dense{0..7}.weight [512, 512]``, ``dense{0..7}.bias [512]``.
* synthesis (100 tensors at 1024 px): ``blocks.4x4.const [1, 512, 4, 4]``, ``blocks.4x4.bias [512]``,
  ``blocks.4x4.conv.{weight [512, 512, 3, 3], bias}``, then for every later block ``blocks.{r}x{r}.conv0_up.weight
  [c_out, c_in, 3, 3]``, ``.conv0_up.bias [c_out]``, ``.conv0_up.intermediate.kernel [1, 1, 3, 3]`` (the blur
  filter is a saved buffer) and ``.conv1.{weight, bias}``; every block has ``epi1`` / ``epi2`` with
  ``noise.weight [c]`` and ``style_mod.lin.weight [2c, 512]`` / ``.bias [2c]``; finally ``torgb.weight [3, 16, 1,
  1]`` and ``torgb.bias [3]``. A tiny network (``resolution=16``, ``fmap_base=64`` ...) has the same names.

Weights are stored unscaled; every layer multiplies them at run time by its equalized-learning-rate constant
(``he_std * lrmul``), as StyleGAN does, so the stored numbers are those of NVIDIA's checkpoint. The networks hold
no training logic.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["StyleGAN1Mapping", "StyleGAN1Synthesis", "synthesis_channels", "num_synthesis_layers",
           "noise_side", "FFHQ_RESOLUTION", "FFHQ_LATENT_DIM"]

FFHQ_RESOLUTION = 1024
FFHQ_LATENT_DIM = 512
_SQRT2 = math.sqrt(2.0)
_LRELU_SLOPE = 0.2  # every hidden activation of StyleGAN-1
_INSTANCE_NORM_EPS = 1e-5  # torch.nn.InstanceNorm2d's default, which PULSE's port uses
_PIXEL_NORM_EPS = 1e-8


def num_synthesis_layers(resolution: int) -> int:
    """Style / noise inputs of a synthesis net: two per resolution 4, 8, ..., ``resolution`` (18 at 1024)."""
    return 2 * int(math.log2(resolution)) - 2


def noise_side(layer: int) -> int:
    """Side of noise map ``layer`` (0-based): layers 2k and 2k+1 belong to the block at 4 * 2**k px."""
    return 2 ** (layer // 2 + 2)


def synthesis_channels(resolution: int, fmap_base: int = 8192, fmap_max: int = 512) -> dict[int, int]:
    """Feature maps of each block, ``{side: channels}``. StyleGAN's ``nf(stage) = min(fmap_base / 2**stage,
    fmap_max)`` with ``stage = log2(side) - 1``; for FFHQ 1024: 512 up to 32 px, then 256, 128, 64, 32, 16."""
    sides = [2 ** r for r in range(2, int(math.log2(resolution)) + 1)]
    return {s: min(int(fmap_base / 2.0 ** (math.log2(s) - 1)), fmap_max) for s in sides}


def _check_resolution(resolution: int) -> None:
    if resolution < 4 or 2 ** int(round(math.log2(resolution))) != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")


class EqualizedLinear(nn.Module):
    """Dense layer with StyleGAN's run-time weight scale: ``y = x @ (W * w_scale).T + b * b_scale``.

    ``weight [out, in]`` is stored unscaled; ``w_scale = gain / sqrt(in) * lrmul`` (He init moved into the forward
    pass, times the learning-rate multiplier: 0.01 in the mapping net), ``b_scale = lrmul``. Initialised as
    StyleGAN does (``N(0, 1/lrmul)``, zero bias) so a fresh net behaves like an untrained StyleGAN."""

    def __init__(self, in_features: int, out_features: int, gain: float = _SQRT2, lrmul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lrmul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.w_scale = gain / math.sqrt(in_features) * lrmul
        self.b_scale = lrmul

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out]
        return F.linear(x, self.weight * self.w_scale, self.bias * self.b_scale)


class EqualizedConv2d(nn.Module):
    """Stride-1 'same' convolution with the run-time weight scale ``gain / sqrt(in * k * k)``; bias added after.

    ``weight [out, in, k, k]``, ``bias [out]``. Used for the 3x3 convolutions after each block's first layer and
    for the final 1x1 ``torgb`` (gain 1: a linear projection to RGB)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = _SQRT2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.w_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, H, W]
        return F.conv2d(x, self.weight * self.w_scale, self.bias, padding=self.padding)


class Blur(nn.Module):
    """Depthwise 3x3 binomial low-pass ([1, 2, 1] outer itself, / 16), 'same' padding with zeros.

    The kernel is a persistent buffer ``kernel [1, 1, 3, 3]``: PULSE's file stores it (as
    ``...conv0_up.intermediate.kernel``), and the forward pass uses the stored values."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = k[:, None] * k[None, :]
        self.register_buffer("kernel", (k / k.sum())[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> same
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, -1, -1, -1), padding=self.kernel.shape[-1] // 2, groups=c)


class UpConv2d(nn.Module):
    """A block's first layer: 2x upsampling, 3x3 convolution (scale ``sqrt(2 / (in * 9))``), blur, then bias.

    Output side >= ``fused_from`` (128 for PULSE's weights): one transposed convolution, stride 2, with the 4x4
    kernel made of the four 2x2-shifted copies of the (zero-padded) 3x3 kernel summed, laid out ``[in, out, 4,
    4]`` as ``conv_transpose2d`` wants; otherwise nearest-neighbour upsampling and a 3x3 convolution. The bias is
    added after the blur in both cases. See the module docstring for why the threshold is part of the weights."""

    def __init__(self, in_channels: int, out_channels: int, fused_from: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.intermediate = Blur()  # the name is the file's: ``conv0_up.intermediate.kernel``
        self.w_scale = _SQRT2 / math.sqrt(in_channels * 9)
        self.fused_from = fused_from

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, 2H, 2W]
        w = self.weight * self.w_scale
        if 2 * min(x.shape[-2:]) >= self.fused_from:
            w = F.pad(w.transpose(0, 1), (1, 1, 1, 1))  # [in, out, 5, 5]
            w = w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]  # [in, out, 4, 4]
            x = F.conv_transpose2d(x, w, stride=2, padding=1)
        else:
            b, c, h, wd = x.shape
            x = x[:, :, :, None, :, None].expand(b, c, h, 2, wd, 2).reshape(b, c, 2 * h, 2 * wd)
            x = F.conv2d(x, w, padding=1)
        x = self.intermediate(x)
        return x + self.bias.view(1, -1, 1, 1)


class NoiseInput(nn.Module):
    """Adds a one-channel noise map, scaled per channel: ``x + weight[c] * noise``; ``weight [C]`` starts at zero.

    ``noise`` is ``[B or 1, 1, H, W]``; ``None`` draws a fresh ``N(0, 1)`` map per sample (StyleGAN's
    ``randomize_noise``). PULSE always passes its own maps, which it optimises."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.weight.view(1, -1, 1, 1) * noise


class StyleModulation(nn.Module):
    """AdaIN's second half: a dense layer (gain 1) maps the layer's latent ``[B, D]`` to ``[B, 2, C]`` = (scale,
    shift) and ``x * (1 + scale) + shift`` per channel (the +1 keeps a zero-initialised scale at identity)."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.lin = EqualizedLinear(latent_dim, 2 * channels, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # x [B, C, H, W], w [B, D]
        style = self.lin(w).view(x.shape[0], 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


class LayerEpilogue(nn.Module):
    """What follows every convolution: add noise, LeakyReLU(0.2), instance norm (no affine; eps 1e-5), style."""

    def __init__(self, channels: int, latent_dim: int) -> None:
        super().__init__()
        self.noise = NoiseInput(channels)
        self.style_mod = StyleModulation(latent_dim, channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        x = self.noise(x, noise)
        x = F.leaky_relu(x, _LRELU_SLOPE)
        x = F.instance_norm(x, eps=_INSTANCE_NORM_EPS)  # per sample and channel over H x W
        return self.style_mod(x, w)


class InputBlock(nn.Module):
    """The 4x4 block: learned constant ``const [1, C, 4, 4]`` plus ``bias [C]`` (both start at ones), epilogue,
    3x3 convolution, epilogue. Takes latents ``[B, 2, D]`` and noise maps 0 and 1 (``[., 1, 4, 4]``)."""

    def __init__(self, channels: int, latent_dim: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, channels, 4, 4))
        self.bias = nn.Parameter(torch.ones(channels))
        self.epi1 = LayerEpilogue(channels, latent_dim)
        self.conv = EqualizedConv2d(channels, channels, 3)
        self.epi2 = LayerEpilogue(channels, latent_dim)

    def forward(self, w: torch.Tensor, noise: list) -> torch.Tensor:  # w [B, 2, D] -> [B, C, 4, 4]
        x = self.const.expand(w.shape[0], -1, -1, -1) + self.bias.view(1, -1, 1, 1)
        x = self.epi1(x, w[:, 0], noise[0])
        x = self.conv(x)
        return self.epi2(x, w[:, 1], noise[1])


class SynthesisBlock(nn.Module):
    """One doubling of resolution: up-convolution + blur, epilogue, 3x3 convolution, epilogue."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int, fused_from: int) -> None:
        super().__init__()
        self.conv0_up = UpConv2d(in_channels, out_channels, fused_from)
        self.epi1 = LayerEpilogue(out_channels, latent_dim)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.epi2 = LayerEpilogue(out_channels, latent_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: list) -> torch.Tensor:
        # x [B, in, H, W], w [B, 2, D] -> [B, out, 2H, 2W]
        x = self.conv0_up(x)
        x = self.epi1(x, w[:, 0], noise[0])
        x = self.conv1(x)
        return self.epi2(x, w[:, 1], noise[1])


class StyleGAN1Mapping(nn.Module):
    """z ``[B, D]`` -> w ``[B, D]``: pixel norm of z, then 8 x (dense D->D with lrmul 0.01, LeakyReLU 0.2).

    Not broadcast to the synthesis layers (PULSE's ``G_mapping`` returns ``[B, 512]``; ``w[:, None].expand(-1,
    18, -1)`` does it). Keys ``dense{i}.weight [D, D]`` / ``dense{i}.bias [D]``. ``latent_dim`` other than 512
    only for tests."""

    def __init__(self, latent_dim: int = FFHQ_LATENT_DIM, num_layers: int = 8) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_layers = num_layers
        for i in range(num_layers):
            self.add_module(f"dense{i}", EqualizedLinear(latent_dim, latent_dim, gain=_SQRT2, lrmul=0.01))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"mapping network takes z [B, {self.latent_dim}], got {tuple(z.shape)}")
        # Pixel norm: every z onto the sphere of radius sqrt(D), whatever its scale.
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + _PIXEL_NORM_EPS)
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"dense{i}")(x), _LRELU_SLOPE)
        return x


class StyleGAN1Synthesis(nn.Module):
    """(dlatents ``[B, L, D]``, noise: list of L maps ``[B or 1, 1, s_i, s_i]`` or None) -> RGB ``[B, 3, S, S]``.

    ``L = 2 * log2(S) - 2`` (18 at 1024). ``noise=None`` (or a None entry) draws fresh noise for that layer.
    Default arguments build PULSE's FFHQ 1024 network; ``resolution`` / ``fmap_base`` / ``fmap_max`` /
    ``latent_dim`` smaller build a test network with the same key names. ``fused_from``: see the module docstring.
    """

    def __init__(self, resolution: int = FFHQ_RESOLUTION, fmap_base: int = 8192, fmap_max: int = 512,
                 latent_dim: int = FFHQ_LATENT_DIM, fused_from: int = 128) -> None:
        super().__init__()
        _check_resolution(resolution)
        self.resolution = resolution
        self.latent_dim = latent_dim
        self.num_layers = num_synthesis_layers(resolution)
        self.fmap_base, self.fmap_max, self.fused_from = fmap_base, fmap_max, fused_from
        channels = synthesis_channels(resolution, fmap_base, fmap_max)
        # torgb is registered first so that state_dict() lists the keys in the order of PULSE's file; only at the
        # final resolution (no progressive-growing heads).
        self.torgb = EqualizedConv2d(channels[resolution], 3, 1, gain=1.0)
        blocks: dict[str, nn.Module] = {}
        prev = None
        for side, c in channels.items():
            name = f"{side}x{side}"
            blocks[name] = (InputBlock(c, latent_dim) if prev is None
                            else SynthesisBlock(prev, c, latent_dim, fused_from))
            prev = c
        self.blocks = nn.ModuleDict(blocks)  # insertion order = 4x4, 8x8, ..., SxS

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """Per-sample noise shapes ``(1, s_i, s_i)`` in the order ``forward`` takes them (PULSE's ``2**(i//2+2)``)."""
        return [(1, noise_side(i), noise_side(i)) for i in range(self.num_layers)]

    def forward(self, dlatents: torch.Tensor, noise: list | tuple | None = None) -> torch.Tensor:
        if dlatents.dim() != 3 or dlatents.shape[1:] != (self.num_layers, self.latent_dim):
            raise ValueError(f"synthesis takes dlatents [B, {self.num_layers}, {self.latent_dim}], got "
                             f"{tuple(dlatents.shape)}")
        if noise is None:
            noise = [None] * self.num_layers
        elif len(noise) != self.num_layers:
            sides = [noise_side(i) for i in range(self.num_layers)]
            raise ValueError(f"synthesis takes {self.num_layers} noise maps (sides {sides}), got {len(noise)}")
        x = None
        for k, block in enumerate(self.blocks.values()):
            w, nz = dlatents[:, 2 * k:2 * k + 2], noise[2 * k:2 * k + 2]
            x = block(w, nz) if k == 0 else block(x, w, nz)
        return self.torgb(x)
