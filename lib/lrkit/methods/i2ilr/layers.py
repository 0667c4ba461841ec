"""Building blocks of the I2I-LR networks (paper §3.2-3.3), shared by the generator and the discriminator.

Tensors are images or feature maps ``[B, C, H, W]``; images are in [-1, 1], so one 8-bit grey level is ``2/255``.

What is here and the choices behind it (facts about the public code are from Medabid1/I2I-LR,
``networks/modules.py``, ``utils.py`` and ``losses/GanLoss.py``; see also shared/REFERENCE_NOTES.md):

* :func:`sn` / :func:`sn_conv2d`: spectral normalisation through ``torch.nn.utils.parametrizations`` (the paper
  puts SN on every layer of G and D). :func:`sn_conv2d` also applies the public code's Kaiming-normal init
  (``fan_in``, ``a = 0``, zero bias). SN divides the weight by its largest singular value, so Kaiming's *scale* is
  cancelled and only the direction / spectrum shape of the initial weight survives. The init runs *before* SN is
  attached, because attaching SN runs power iterations on the weight present at that time: initialising the
  parametrization's ``original`` afterwards would leave ``u``/``v`` estimated for a different matrix.
* :func:`pono`: positional normalisation (PONO, Li et al. 2019): mean and std across channels at every pixel.
  We use the *biased* variance (divide by C) with ``eps`` inside the square root. The public code (and PONO's
  reference code) calls ``Tensor.var`` with its default, the unbiased variance (divide by C - 1): a factor
  ``sqrt(C / (C - 1))`` on the std (< 0.8 % for C >= 64), which the learned moment shortcut absorbs anyway.
* :class:`DynamicMomentShortcut`: ``concat(mean, std)`` -> SN 3x3 conv with **2** output channels -> ``beta``
  (channel 0) and ``gamma`` (channel 1), each ``[B, 1, H, W]``, broadcast over the feature channels:
  ``x * gamma + beta``. One channel is what the public generator uses (its ``MS`` class; a C-channel variant,
  ``MS_mutli``, exists there but is not used).
* :class:`SPAdaIN`: instance norm without affine, then per-pixel ``gamma``/``beta`` from two 1x1 convs on the LR
  image, bilinearly resized to the feature size (``align_corners=False``), applied as ``x_norm * gamma + beta``
  (the public code's form, *not* ``x_norm * (1 + gamma) + beta``). Differences from the public code: its two 1x1
  convs have no SN (the paper says SN everywhere, so we add it), and it upsamples with
  ``UpsamplingBilinear2d`` (``align_corners=True``) by chained factors of two; ``spectral=False`` and
  ``resize="bilinear"`` build that (``recipe="public_code"``).
* :func:`straight_through_round` and :func:`lr_difference`: the difference map of eq. 5 fed to the discriminator.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# One 8-bit grey level on the [-1, 1] scale: the paper's colour resolution r in eq. 5.
GREY_LEVEL = 2.0 / 255.0
# "public_code": Medabid1/I2I-LR rounds with round(x * 127.5 / 4) / (127.5 / 4), i.e. a step of 4 grey levels.
PUBLIC_CODE_STEP = 4.0 * GREY_LEVEL
LR_DIFF_MODES = ("paper", "public_code")

# Sizes both networks accept (powers of two). The encoder / discriminator need at least one 2x step between HR
# and LR, and the discriminator's head a 4x4 map, hence LR >= 4.
HR_SIZES = (32, 64, 128, 256)
LR_SIZES = (4, 8, 16, 32)


def sn(module: nn.Module) -> nn.Module:
    """Attach spectral normalisation (parametrization API) to the ``weight`` of a Conv2d or Linear; returns it."""
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"sn() expects an nn.Conv2d or nn.Linear, got {type(module).__name__}")
    return nn.utils.parametrizations.spectral_norm(module)


def kaiming_conv2d(in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
                   bias: bool = True) -> nn.Conv2d:
    """Kaiming-normal initialised (fan_in, a=0, zero bias) Conv2d without spectral norm; 'same' padding by
    default (the public code's plain convs, e.g. SPAdaIN's under ``recipe="public_code"``)."""
    if padding is None:
        padding = kernel_size // 2
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
    nn.init.kaiming_normal_(conv.weight, a=0.0, mode="fan_in")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def sn_conv2d(in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
              bias: bool = True) -> nn.Conv2d:
    """Kaiming-normal initialised (fan_in, a=0, zero bias) Conv2d with spectral norm; 'same' padding by default."""
    # Init before sn(): see the module docstring (power iterations at attach time see this weight).
    return sn(kaiming_conv2d(in_channels, out_channels, kernel_size, padding, bias))


def _check_4d(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be [B, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (images in [-1, 1]), got {x.dtype}")


def pono(x: torch.Tensor, eps: float = 1e-5, unbiased: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positional normalisation across channels at each pixel.

    x: [B, C, H, W] -> (x_norm [B, C, H, W], mean [B, 1, H, W], std [B, 1, H, W]), with
    ``std = sqrt(var + eps)``; ``var`` biased (divide by C) by default, unbiased (C - 1, the public code's) on
    request (see the module docstring).
    """
    _check_4d(x, "pono input")
    mean = x.mean(dim=1, keepdim=True)
    std = (x.var(dim=1, keepdim=True, correction=1 if unbiased else 0) + eps).sqrt()
    return (x - mean) / std, mean, std


class DynamicMomentShortcut(nn.Module):
    """Re-inject encoder PONO moments through a learned 3x3 conv: ``x * gamma + beta`` (paper §3.3, fig. 4b).

    beta, gamma: [B, 1, H, W] (one map each, broadcast over x's channels; see the module docstring).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = sn_conv2d(2, 2, 3)

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        for name, m in (("mean", mean), ("std", std)):
            if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] != x.shape[0] or m.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"moment shortcut: {name} must be [B, 1, H, W] = [{x.shape[0]}, 1, {x.shape[2]}, {x.shape[3]}]"
                    f" to match the features {tuple(x.shape)}, got {tuple(m.shape)}; pair decoder and encoder blocks"
                    " of the same resolution")
        beta, gamma = self.conv(torch.cat((mean, std), dim=1)).split(1, dim=1)
        return x * gamma + beta


def upsample2x(x: torch.Tensor, mode: str) -> torch.Tensor:
    """x [B, C, H, W] -> [B, C, 2H, 2W]: "nearest", or "bilinear" with align_corners=True (the public code's
    ``nn.UpsamplingBilinear2d``)."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class SPAdaIN(nn.Module):
    """Spatially adaptive instance norm conditioned on the LR image: ``IN(x) * gamma(lr) + beta(lr)``.

    x: [B, channels, H, W]; lr: [B, lr_channels, h, w], resized to H x W (``resize="nearest"``, the default
    recipe's: one bilinear resize with align_corners=False; ``"bilinear"``: the public code's chained x2 bilinear
    with align_corners=True); gamma, beta: [B, channels, H, W] from 1x1 convs (spectral-normed unless
    ``spectral=False``).
    """

    def __init__(self, channels: int, lr_channels: int = 3, spectral: bool = True, resize: str = "nearest") -> None:
        super().__init__()
        conv = sn_conv2d if spectral else kaiming_conv2d
        self.resize = resize
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.gamma_conv = conv(lr_channels, channels, 1)
        self.beta_conv = conv(lr_channels, channels, 1)

    def forward(self, x: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[0] != x.shape[0] or lr.shape[1] != self.gamma_conv.in_channels:
            raise ValueError(f"SPAdaIN: LR image must be [{x.shape[0]}, {self.gamma_conv.in_channels}, h, w] for "
                             f"features {tuple(x.shape)}, got {tuple(lr.shape)}")
        if self.resize == "bilinear":
            while lr.shape[-1] < x.shape[-1]:  # HR / LR is a power of two (check_sizes)
                lr = upsample2x(lr, "bilinear")
        if lr.shape[-2:] != x.shape[-2:]:
            lr = F.interpolate(lr, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
        return self.norm(x) * self.gamma_conv(lr) + self.beta_conv(lr)


def straight_through_round(x: torch.Tensor, step: float) -> torch.Tensor:
    """Round to the nearest multiple of ``step``; the gradient passes through unchanged (straight-through).

    Forward is exactly ``torch.round(x / step) * step`` (ties go to the even multiple: torch.round rounds half to
    even, so 0.5 step -> 0 and 1.5 step -> 2 steps). Written as ``q + (x - x.detach())`` rather than
    ``x + (q - x).detach()`` because the latter can differ from ``q`` by one ulp; ``x - x.detach()`` is exactly 0
    for finite x, and its gradient is the identity.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"straight_through_round expects a tensor, got {type(x).__name__}")
    if not step > 0:
        raise ValueError(f"rounding step must be > 0, got {step}")
    q = torch.round(x.detach() / step) * step
    return q + (x - x.detach())


def lr_difference(fake_hr: torch.Tensor, target_lr: torch.Tensor, mode: str = "paper") -> torch.Tensor:
    """Eq. 5: the LR difference map between a generated HR image and its LR target; [B, 3, lr, lr].

    DS = average pooling of ``fake_hr`` [B, 3, HR, HR] to ``target_lr``'s size [B, 3, lr, lr] (kernel HR / lr).

    * ``"paper"``: ``d = |y - ST_round(DS(G), r)| / r`` with ``r = 2/255``: units are 8-bit grey levels.
    * ``"public_code"``: what Medabid1/I2I-LR computes (``losses/GanLoss.py``): the *absolute difference* is
      rounded, with a step of 4 grey levels, and not divided by the step: ``d = ST_round(|DS(G) - y|, 4 r)``;
      units are [-1, 1] (one grey level = 2/255).

    Rounding is straight-through, so gradients reach ``fake_hr``. A real image paired with its own LR has d = 0.
    """
    if mode not in LR_DIFF_MODES:
        raise ValueError(f"unknown lr_difference mode {mode!r}; use one of {LR_DIFF_MODES}")
    _check_4d(fake_hr, "fake_hr")
    _check_4d(target_lr, "target_lr")
    if fake_hr.shape[1] != 3 or target_lr.shape[1] != 3:
        raise ValueError(f"lr_difference needs RGB images (3 channels), got fake_hr {tuple(fake_hr.shape)} and "
                         f"target_lr {tuple(target_lr.shape)}")
    if fake_hr.shape[0] != target_lr.shape[0]:
        raise ValueError(f"fake_hr and target_lr must have the same batch size, got {fake_hr.shape[0]} and "
                         f"{target_lr.shape[0]}; pair each generated image with the LR target it was made from")
    (hh, hw), (lh, lw) = fake_hr.shape[-2:], target_lr.shape[-2:]
    if hh % lh or hw % lw or hh // lh != hw // lw:
        raise ValueError(f"HR size {hh}x{hw} must be the same whole multiple of the LR size {lh}x{lw} in both "
                         "dimensions (average pooling); resize the images so that it is")
    factor = hh // lh
    ds = F.avg_pool2d(fake_hr, kernel_size=factor) if factor > 1 else fake_hr
    if mode == "paper":
        return (target_lr - straight_through_round(ds, GREY_LEVEL)).abs() / GREY_LEVEL
    return straight_through_round((ds - target_lr).abs(), PUBLIC_CODE_STEP)


def check_sizes(hr_size: int, lr_size: int) -> int:
    """Validate a network's (HR, LR) sizes; returns the number of 2x steps between them, log2(HR / LR)."""
    for name, value, valid in (("hr_size", hr_size, HR_SIZES), ("lr_size", lr_size, LR_SIZES)):
        if isinstance(value, bool) or not isinstance(value, int) or value not in valid:
            raise ValueError(f"{name} must be a power of two in [{valid[0]}, {valid[-1]}] (one of {valid}), "
                             f"got {value!r}")
    if lr_size >= hr_size:
        raise ValueError(f"lr_size ({lr_size}) must be smaller than hr_size ({hr_size})")
    return (hr_size // lr_size).bit_length() - 1


def check_widths(base_channels: int, max_channels: int) -> None:
    """Validate channel widths: positive ints with base_channels <= max_channels."""
    for name, value in (("base_channels", base_channels), ("max_channels", max_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if base_channels > max_channels:
        raise ValueError(f"base_channels ({base_channels}) must be <= max_channels ({max_channels}); raise "
                         "max_channels or lower base_channels")
