"""Downscaling and quantization: how low-resolution (LR) targets are made from high-resolution (HR) images.

Conventions used throughout lrkit:

* image tensors are ``float32`` in ``[-1, 1]``, laid out ``[N, C, H, W]`` (a single image may be ``[C, H, W]``);
* numpy images are ``uint8`` in ``[0, 255]``, laid out ``[H, W, C]`` (a batch is ``[N, H, W, C]``);
* the two are related by ``x = a / 127.5 - 1`` (so 8-bit level ``k`` is the float ``k * 2/255 - 1``).

The papers this kit reproduces (I2I-LR, LAG, DivSR, SR-NAM) define the downscaling operator DS as exact average
pooling by an integer factor, HR 32-256 px to LR 4-32 px. ``downscale(..., mode="avgpool")`` is that operator;
``mode="bicubic"`` (antialiased bicubic interpolation) is provided as an option for ablations only.

``quantize`` rounds to the values an 8-bit PNG would store. It is a plain forward operation: its gradient is zero
almost everywhere, as rounding's is. Models that need to differentiate through quantization (a straight-through
estimator) implement that themselves; it does not belong in a data operator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

VALID_HR_SIZES = (32, 64, 128, 256)
VALID_LR_SIZES = (4, 8, 16, 32)
DOWNSCALE_MODES = ("avgpool", "bicubic")

__all__ = [
    "VALID_HR_SIZES",
    "VALID_LR_SIZES",
    "DOWNSCALE_MODES",
    "validate_sizes",
    "downscale",
    "quantize",
    "to_uint8",
    "from_uint8",
    "make_lr",
]


def validate_sizes(hr_size: int, lr_size: int) -> None:
    """Raise ``ValueError`` unless ``hr_size`` and ``lr_size`` are sizes the papers use and ``lr_size < hr_size``.

    Valid HR sizes are ``VALID_HR_SIZES`` (32, 64, 128, 256 px) and valid LR sizes ``VALID_LR_SIZES`` (4, 8, 16,
    32 px). Every valid LR size divides every valid HR size, so average pooling by ``hr_size // lr_size`` is exact.
    """
    problems = []
    # bool is an int subclass; True/False as a size is always a caller mistake.
    if isinstance(hr_size, bool) or not isinstance(hr_size, (int, np.integer)) or hr_size not in VALID_HR_SIZES:
        problems.append(f"hr_size={hr_size!r} is not one of the valid HR sizes {VALID_HR_SIZES}")
    if isinstance(lr_size, bool) or not isinstance(lr_size, (int, np.integer)) or lr_size not in VALID_LR_SIZES:
        problems.append(f"lr_size={lr_size!r} is not one of the valid LR sizes {VALID_LR_SIZES}")
    if not problems and lr_size >= hr_size:
        problems.append(f"lr_size={lr_size} must be smaller than hr_size={hr_size}")
    if problems:
        raise ValueError(
            "invalid image sizes: " + "; ".join(problems) + f". Choose hr_size from {VALID_HR_SIZES} and lr_size "
            f"from {VALID_LR_SIZES} with lr_size < hr_size (e.g. hr_size=128, lr_size=16)."
        )


def _as_batch(x: torch.Tensor, what: str) -> tuple[torch.Tensor, bool]:
    """Return ``(x as [N, C, H, W], whether a batch dimension was added)``; reject other ranks and integer dtypes."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{what} expects a torch.Tensor, got {type(x).__name__}; convert numpy images with from_uint8"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{what} expects a floating-point tensor in [-1, 1], got dtype {x.dtype}; "
            "convert uint8 images with lrkit.data.ops.from_uint8"
        )
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() == 4:
        return x, False
    raise ValueError(f"{what} expects a [N, C, H, W] or [C, H, W] tensor, got shape {tuple(x.shape)}")


def downscale(x: torch.Tensor, lr_size: int, mode: str = "avgpool") -> torch.Tensor:
    """Downscale square images ``x`` ([N, C, H, W] or [C, H, W], H == W) to ``lr_size`` x ``lr_size``.

    ``mode="avgpool"``: the papers' DS operator. Each LR pixel is the exact mean of the ``f x f`` HR block it
    covers, ``f = H // lr_size``; ``H`` must be a multiple of ``lr_size``.
    ``mode="bicubic"``: ``F.interpolate(mode="bicubic", antialias=True, align_corners=False)``. Its output can
    overshoot ``[-1, 1]`` slightly near edges (bicubic weights are partly negative).

    Both modes are differentiable and keep the input's rank, dtype and device.
    """
    if mode not in DOWNSCALE_MODES:
        raise ValueError(f"unknown downscale mode {mode!r}; use one of {DOWNSCALE_MODES}")
    xb, added = _as_batch(x, "downscale")
    n, c, h, w = xb.shape
    if h != w:
        raise ValueError(
            f"downscale expects square images, got H={h}, W={w}; centre-crop to a square first "
            "(lrkit.data.folders does this when loading)"
        )
    if isinstance(lr_size, bool) or not isinstance(lr_size, (int, np.integer)) or lr_size < 1:
        raise ValueError(f"lr_size must be a positive integer, got {lr_size!r}")
    lr_size = int(lr_size)
    if lr_size > h:
        raise ValueError(f"lr_size={lr_size} is larger than the image ({h}x{w}); downscale only reduces size")
    if mode == "avgpool":
        if h % lr_size:
            raise ValueError(
                f"avgpool downscaling needs the image size to be a multiple of lr_size: {h} is not a multiple of "
                f"{lr_size}. Resize the HR image to a multiple of {lr_size} (valid HR sizes: {VALID_HR_SIZES}) "
                "or use mode='bicubic'"
            )
        f = h // lr_size
        # [N, C, lr, f, lr, f]: axis 3 runs over the rows and axis 5 over the columns of one f x f block.
        y = xb.reshape(n, c, lr_size, f, lr_size, f).mean(dim=(3, 5))
    else:
        y = F.interpolate(xb, size=(lr_size, lr_size), mode="bicubic", antialias=True, align_corners=False)
    return y.squeeze(0) if added else y


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer from 1 to 16, got {bits!r}")
    return int(bits)


def _to_levels(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer level index (as float) in ``[0, 2**bits - 1]`` nearest to each value of ``x`` (clamped to [-1, 1])."""
    top = float(2**bits - 1)  # 255 for 8 bits
    # torch.round rounds halves to even. to_uint8 goes through this same function (and from_uint8 through
    # _from_levels), so quantize(x) == from_uint8(to_uint8(x)) bit for bit, ties included.
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * (top / 2.0))


def _from_levels(k: torch.Tensor, bits: int) -> torch.Tensor:
    top = float(2**bits - 1)
    return k / (top / 2.0) - 1.0


def quantize(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round ``x`` (values in [-1, 1]; values outside are clamped) to the nearest of ``2**bits`` evenly spaced levels.

    The levels are ``k * 2 / (2**bits - 1) - 1`` for ``k = 0 .. 2**bits - 1``; for 8 bits the step is 2/255 and the
    result is exactly the float that ``from_uint8(to_uint8(x))`` gives, i.e. what an 8-bit PNG would store.
    Idempotent. The gradient is that of rounding (zero almost everywhere): no straight-through trick here.
    Shape, dtype and device are preserved.
    """
    bits = _check_bits(bits)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"quantize expects a floating-point torch.Tensor, got {getattr(x, 'dtype', type(x))}")
    return _from_levels(_to_levels(x, bits), bits).to(x.dtype)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Convert a [-1, 1] float tensor to uint8 numpy: [C, H, W] -> [H, W, C], [N, C, H, W] -> [N, H, W, C].

    Values are clamped to [-1, 1] and rounded to the nearest 8-bit level, consistently with ``quantize``.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"to_uint8 expects a floating-point torch.Tensor in [-1, 1], got {getattr(x, 'dtype', type(x))}"
        )
    if x.dim() not in (3, 4):
        raise ValueError(f"to_uint8 expects [C, H, W] or [N, C, H, W], got shape {tuple(x.shape)}")
    k = _to_levels(x.detach().to("cpu", torch.float32), 8).to(torch.uint8)
    k = k.permute(1, 2, 0) if k.dim() == 3 else k.permute(0, 2, 3, 1)
    return np.ascontiguousarray(k.numpy())


def from_uint8(a: np.ndarray) -> torch.Tensor:
    """Convert uint8 numpy images to float32 tensors in [-1, 1].

    ``[H, W, C] -> [C, H, W]``, ``[N, H, W, C] -> [N, C, H, W]``, and a grayscale ``[H, W] -> [1, H, W]``.
    Level ``k`` maps to ``k * 2/255 - 1`` exactly as ``quantize`` computes it, so ``to_uint8(from_uint8(a)) == a``.
    """
    a = np.asarray(a)
    if a.dtype != np.uint8:
        raise TypeError(f"from_uint8 expects a uint8 array, got {a.dtype}; scale to 0..255 and cast to uint8 first")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim not in (3, 4):
        raise ValueError(f"from_uint8 expects [H, W], [H, W, C] or [N, H, W, C], got shape {a.shape}")
    if not a.flags.writeable:  # e.g. np.asarray(PIL image); torch warns about sharing read-only memory
        a = a.copy()
    t = torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32)
    t = t.permute(2, 0, 1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    return _from_levels(t.contiguous(), 8)


def make_lr(
    hr: torch.Tensor, lr_size: int, mode: str = "avgpool", quantize_8bit: bool = True
) -> torch.Tensor:
    """The LR conditioning image made on the fly from ``hr`` ([N, C, H, W] or [C, H, W] in [-1, 1]).

    ``downscale(hr, lr_size, mode)`` followed, by default, by 8-bit ``quantize`` so that the LR target is exactly
    what a stored 8-bit LR PNG would contain (the papers' LR images are saved images). With
    ``quantize_8bit=False`` the LR image is left continuous (still differentiable); bicubic output is then clamped
    to [-1, 1] so the value-range convention holds.
    """
    y = downscale(hr, lr_size, mode)
    if quantize_8bit:
        return quantize(y, 8)
    if mode == "bicubic":
        y = y.clamp(-1.0, 1.0)
    return y
