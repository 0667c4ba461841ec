"""The FAN face-landmark network ("wing") that StarGAN v2 uses for CelebA-HQ masks, and the heatmap -> mask step.

Shared (``lrkit.nets``): StarGAN v2's masks and SR-NAM's landmark metric (``lrkit.metrics.landmarks_fan``) both
run it.

StarGAN v2's CelebA-HQ generator (``w_hpf = 1``) adds high-pass filtered encoder features back in the decoder, gated
by two soft face masks. The masks come from a pretrained 98-landmark (WFLW) FAN from Adaptive Wing Loss (Wang et
al. 2019), released by the StarGAN v2 authors as ``wing.ckpt``. This module rebuilds that network with identical
state_dict keys and computes the masks. Facts from github clovaai/stargan-v2 ``core/wing.py`` (our own code):

* Input ``[B, 3, 256, 256]`` in [0, 1] (the coordinate channels are built for exactly 256 / 64 px). Output:
  heatmaps ``[B, 99, 64, 64]`` (98 landmarks + 1 boundary channel).
* CoordConv: the input gets 3 extra channels -- row coordinate, column coordinate (both linear in [-1, 1]) and
  their radius divided by its maximum -- before the conv. The stem is a 7x7 stride-2 CoordConv (3+3 -> 64); the
  hourglass' 1x1 CoordConv sees 256+3 channels (its boundary channels are never used with one stack).
* ConvBlock(cin, cout): three BN-ReLU-conv3x3 (no bias) steps with widths cout/2, cout/4, cout/4, concatenated
  (= cout), plus the input (through BN-ReLU-conv1x1 when cin != cout).
* One hourglass of depth 4 (avg-pool down, nearest up), then ``top_m_0`` ConvBlock, conv1x1 ``conv_last0`` + BN
  ``bn_end0`` + ReLU, conv1x1 ``l0`` to 99 channels.
* ``wing.ckpt`` is a dict whose ``'state_dict'`` entry holds the weights (``FAN.load_pretrained_weights``), loaded
  non-strictly there: only keys the model has are taken.

Masks (:func:`heatmap_masks`, the official ``get_heatmap`` + ``preprocess``): resize the image to 256, map to
[0, 1], run FAN, drop the boundary channel, upsample the 98 heatmaps to 256 (bilinear, align_corners=True); zero
values < 0.1; min-max normalise each heatmap; shift some landmark groups vertically and sharpen them with a power
(chin, brows, nostrils, lips, nose, eyes: the table below); drop the outer face-line, eyebrow-edge and lip-corner
heatmaps; sum into ``mask_face`` and, without chin, lips and brows, into ``mask_inner``; clamp to [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from lrkit.statedict import as_state_dict, load_tensor_file

FAN_INPUT_SIZE = 256
NUM_LANDMARKS = 98

# WFLW-98 landmark index ranges [start, end) used by the mask recipe.
CHIN = (8, 25)  # the jaw line without its 8 outermost points on each side
EYEBROWS = (33, 51)
EYEBROW_EDGES = (33, 46)  # used as two single indices (both ends dropped)
NOSE = (51, 55)
NOSTRILS = (55, 60)
EYES = (60, 76)
LIP_EDGES = (76, 82)  # used as two single indices (mouth corners dropped)
LIP_UPPER = (77, 82)
LIP_LOWER = (83, 88)
LIP_INNER = (88, 96)
# (range, vertical shift in px at 256 (+ = up), power): shift then raise to the power (sharper, smaller blobs).
_PART_OPS = ((CHIN, 0, 3), (EYEBROWS, -7, 2), (NOSTRILS, 8, 4), (LIP_UPPER, -8, 4), (LIP_LOWER, 8, 4),
             (LIP_INNER, -2, 3))


class CoordConv(nn.Module):
    """Concat (row, col, radius) coordinate maps, then conv: [B, C, H, W] -> conv([B, C + 3, H, W]).

    The maps are fixed for ``size`` x ``size`` inputs (non-persistent buffer: not in the checkpoint). The conv is
    the ``conv`` child so the key is ``<name>.conv.weight`` as in the official file."""

    def __init__(self, size: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        lin = torch.arange(size, dtype=torch.float32) / (size - 1) * 2 - 1  # [-1, 1]
        rows = lin[:, None].expand(size, size)
        cols = lin[None, :].expand(size, size)
        radius = torch.sqrt(rows**2 + cols**2)
        coords = torch.stack([rows, cols, radius / radius.max()])  # [3, size, size]
        self.register_buffer("coords", coords[None], persistent=False)
        self.size = size
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"CoordConv built for {self.size}x{self.size} inputs, got {tuple(x.shape[-2:])}; "
                             f"FAN takes [B, 3, {FAN_INPUT_SIZE}, {FAN_INPUT_SIZE}] images")
        coords = self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)
        return self.conv(torch.cat([x, coords], dim=1))


class ConvBlock(nn.Module):
    """[B, cin, H, W] -> [B, cout, H, W]; see module docstring."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if in_planes != out_planes:
            # Indices 0 (BN), 1 (ReLU), 2 (conv) as in the official Sequential.
            self.downsample = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(),
                                            nn.Conv2d(in_planes, out_planes, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + residual


class HourGlass(nn.Module):
    """Hourglass of ``depth`` levels on 256 channels at 64x64: [B, 256, 64, 64] -> [B, 256, 64, 64].

    Children are named ``b1_<level>``, ``b2_<level>``, ``b3_<level>`` and ``b2_plus_1`` (deepest level), registered
    in the official order, after the 1x1 ``coordconv``."""

    def __init__(self, depth: int = 4, features: int = 256, size: int = 64) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(size, features, features, kernel_size=1)
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self._modules[f"b1_{level}"](x)  # full-resolution branch
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


class FAN(nn.Module):
    """FAN(x [B, 3, 256, 256] in [0, 1]) -> heatmaps [B, 99, 64, 64] (98 landmarks + boundary).

    Key-compatible with the official ``wing.ckpt`` (see :func:`lrkit.methods.stargan2.official_files.load_official_wing`).
    Use in ``eval()`` mode: the BatchNorm statistics are the pretrained ones."""

    def __init__(self, num_landmarks: int = NUM_LANDMARKS) -> None:
        super().__init__()
        self.num_landmarks = num_landmarks
        self.conv1 = CoordConv(FAN_INPUT_SIZE, 3, 64, kernel_size=7, stride=2, padding=3)  # 256 -> 128
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        self.m0 = HourGlass(depth=4, features=256, size=FAN_INPUT_SIZE // 4)
        self.top_m_0 = ConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1, 1, 0)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, num_landmarks + 1, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1:] != (3, FAN_INPUT_SIZE, FAN_INPUT_SIZE):
            raise ValueError(f"FAN takes [B, 3, {FAN_INPUT_SIZE}, {FAN_INPUT_SIZE}] images in [0, 1], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}; "
                             f"use heatmap_masks() for other sizes")
        h = F.relu(self.bn1(self.conv1(x)))  # [B, 64, 128, 128]
        h = F.avg_pool2d(self.conv2(h), 2, stride=2)  # [B, 128, 64, 64]
        h = self.conv4(self.conv3(h))  # [B, 256, 64, 64]
        h = self.top_m_0(self.m0(h))
        h = F.relu(self.bn_end0(self.conv_last0(h)))
        return self.l0(h)  # [B, 99, 64, 64]


def _shift_up(x: torch.Tensor, n: int) -> torch.Tensor:
    """Cyclic vertical shift of [B, C, H, W] by n rows (n > 0: content moves up; rows wrap, as in the official
    permutation-based ``shift``)."""
    return torch.roll(x, shifts=-n, dims=2)


def masks_from_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """98 landmark heatmaps [B, 98, H, W] (H = 256 for the official recipe) -> (mask_face, mask_inner), each
    [B, 1, H, W] in [0, 1]. Pure tensor function (no FAN), so it is testable by hand."""
    if heatmaps.dim() != 4 or heatmaps.shape[1] != NUM_LANDMARKS:
        raise ValueError(f"heatmaps must be [B, {NUM_LANDMARKS}, H, W], got {tuple(heatmaps.shape)}")
    b, c, h, w = heatmaps.shape
    x = torch.where(heatmaps < 0.1, torch.zeros_like(heatmaps), heatmaps)  # drop weak responses
    flat = x.reshape(b, c, h * w)
    lo = flat.min(dim=2, keepdim=True).values
    hi = flat.max(dim=2, keepdim=True).values
    x = ((flat - lo) / (hi - lo + 1e-6)).reshape(b, c, h, w)  # each heatmap min-max normalised to [0, 1)
    sw = h // 256  # shifts are in pixels at 256 px
    x = x.clone()
    for (start, end), shift, power in _PART_OPS:
        x[:, start:end] = _shift_up(x[:, start:end], shift * sw) ** power
    dropped = (list(range(0, CHIN[0])) + list(range(CHIN[1], 33))
               + [EYEBROW_EDGES[0], EYEBROW_EDGES[1], LIP_EDGES[0], LIP_EDGES[1]])
    x[:, dropped] = 0
    # Nose: the official code skips its first point (bridge top) and moves the rest 4 px up.
    x[:, NOSE[0] + 1:NOSE[1]] = _shift_up(x[:, NOSE[0] + 1:NOSE[1]], 4 * sw)
    # Eyes: a sharpened copy 8 px down plus a soft copy 24 px down (unscaled by sw in the official code).
    eyes = x[:, EYES[0]:EYES[1]]
    x[:, EYES[0]:EYES[1]] = _shift_up(eyes, -8) ** 3 + _shift_up(eyes, -24)
    inner = x.clone()
    inner[:, CHIN[0]:CHIN[1]] = 0
    inner[:, LIP_EDGES[0]:LIP_INNER[1]] = 0
    inner[:, EYEBROWS[0]:EYEBROWS[1]] = 0
    mask_face = torch.nan_to_num(x.sum(dim=1, keepdim=True), nan=0.0).clamp(0, 1)
    mask_inner = torch.nan_to_num(inner.sum(dim=1, keepdim=True), nan=0.0).clamp(0, 1)
    return mask_face, mask_inner


@torch.no_grad()
def fan_heatmaps(fan: FAN, x: torch.Tensor) -> torch.Tensor:
    """Images [B, 3, S, S] in [-1, 1] -> FAN's 98 landmark heatmaps [B, 98, 64, 64] (resized to 256 px bilinear,
    mapped to [0, 1], the boundary channel dropped): the official ``get_heatmap`` before its upsampling."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be [B, 3, H, W] images in [-1, 1], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    x = F.interpolate(x, size=FAN_INPUT_SIZE, mode="bilinear", align_corners=False)
    return fan(x * 0.5 + 0.5)[:, :-1]


def heatmap_masks(fan: FAN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, 3, S, S] in [-1, 1] -> (mask_face, mask_inner), each [B, 1, 256, 256] in [0, 1]: the ``masks``
    argument of :class:`lrkit.methods.stargan2.nets.Stargan2Generator` (the official ``fan.get_heatmap(x)``)."""
    heat = fan_heatmaps(fan, x)  # [B, 98, 64, 64]
    heat = F.interpolate(heat, scale_factor=FAN_INPUT_SIZE // heat.shape[2], mode="bilinear", align_corners=True)
    return masks_from_heatmaps(heat)


def load_wing(path: str | os.PathLike) -> FAN:
    """Read the official ``wing.ckpt`` into a :class:`FAN` (eval mode, CPU).

    Like the official loader, keys of the file that FAN does not have are ignored (and BatchNorm
    ``num_batches_tracked`` counters may be absent: they do not affect eval-mode output); every other FAN key must
    be present with the right shape, else one ValueError lists the problems.
    """
    obj = load_tensor_file(path, "wing.ckpt (FAN landmark network)")
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path} is not the official wing.ckpt: expected a dict with a 'state_dict' entry, got "
                         f"{keys}")
    sd = as_state_dict(obj["state_dict"], f"{path}['state_dict']")
    fan = FAN()
    own = fan.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    shapes = [f"{k} {tuple(sd[k].shape)} in file vs {tuple(own[k].shape)} here" for k in own
              if k in sd and sd[k].shape != own[k].shape]
    if missing or shapes:
        raise ValueError(f"{path} does not fit the FAN (98 landmarks) of StarGAN v2: missing keys {missing}, "
                         f"shape mismatches {shapes}")
    own.update({k: v for k, v in sd.items() if k in own})
    fan.load_state_dict(own, strict=True)
    return fan.eval()
