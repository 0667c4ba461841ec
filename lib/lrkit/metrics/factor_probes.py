"""synthfaces_factors: did a translation keep the source's identity and follow the LR target? (factor probes)

synthfaces (``lrkit.data.synthfaces``) renders every image from known factors: *coarse* ones (pose, colours,
lighting, domain) survive an 8x8 average pool, *fine* ones (eye shape, iris colour, glasses, ... ) do not. A model
that turns source ``i`` plus LR target ``i`` into an output should keep the source's fine factors (identity) and
the target's coarse factors (faithfulness to the LR image). This module trains small CNN *probes* that read every
coarse and fine factor back from an HR image, and scores outputs with them.

Probes (``Probes``)
-------------------
Three small CNNs trained together on real synthfaces HR images of the ``train`` split (torch only). Every image
is first quantized to 8 bits (what a saved PNG holds, so a tensor and its file are read the same way).

1. **coarse net**: the image average-pooled to ``COARSE_INPUT`` (32) px, six 3x3 conv+BN+ReLU layers (32 -> 16 ->
   8 px), a 4x4 average pool and an MLP with one head per coarse factor: categorical -> softmax logits
   (cross-entropy); continuous -> one value regressing the factor normalized to ``[0, 1]`` by its ``(low, high)``
   (squared error, x ``POSE_LOSS_WEIGHT`` for the pose factors); the two *circular* factors ``light_angle`` and
   ``bg_hue`` (their range is one full turn: -180 deg = +180 deg, hue 0 = hue 1) regress ``(cos, sin)`` of the
   normalized value instead, and their errors are measured around the circle.
2. **pose-normalized crop**: the head's pose (``cx``, ``cy``, ``scale``, ``roll``, ``yaw``) places every fine
   feature. synthfaces draws the head in a local frame ``(X, Y) = (2 cx, c0 + 2 cy) + s0 scale R(roll) (x, y)``
   (``s0``, ``c0``: its head size and centre offset; image coordinates in [-1, 1]) and turning the head moves the
   eyes, nose and mouth sideways by about ``YAW_SHIFT`` (0.86) ``sin(yaw)`` local units. The crop samples a fixed
   box of that frame (``CROP_BOX``, shifted by the yaw term) bilinearly, on a grid of ``r`` = max(1, size // 64)
   HR px per 64-px-equivalent px, so the same feature always lands on the same crop pixels. It is then high-passed
   (minus its ``(4 r + 1)``-px box mean, replicate padding): the fine classes differ in shape and hue, not in
   regional colour, and removing skin tone, light and background is what makes them learnable in seconds.
3. **pose refiner**: a crop taken at a wrong pose shows the features displaced; the refiner (four conv layers,
   MLP) reads the displacement back. It is trained on crops at the true pose moved uniformly by up to
   ``REFINE_JITTER`` (about the 98th percentile of the coarse net's errors) to output the move back. At test time
   the coarse net's pose is corrected ``refine_steps`` (2) times; the refined pose also replaces the coarse net's
   ``cx``, ``cy``, ``scale``, ``roll`` and ``yaw`` (it is about twice as accurate).
4. **fine net**: the crop at the refined pose, pixel-unshuffled by ``r``, five conv+BN+ReLU layers with two 2x2
   max pools, the whole feature map flattened (features have fixed places in the crop) into an MLP with one
   softmax head per fine factor. Trained on crops at the true pose moved by up to ``POSE_JITTER`` (what the
   refiner leaves: ``cx``/``cy`` +-0.012 of the side, ``scale`` +-4 %, ``roll`` +-3 deg, ``yaw`` +-4 deg).

The pose moves are the only augmentation: they are the kinds of variation the factors already have. There is no
mirroring (it would change yaw, roll and left/right).

Training (``train_probes``): AdamW (one-cycle schedule peaking at ``lr`` = 2e-3, weight decay 1e-4), batch 32,
seeded (initial weights, shuffling and pose moves from ``seed``), deterministic on the CPU for a fixed number of
torch threads. Loss = cross-entropies + 10 x squared errors of the normalized continuous factors + 4 x the
refiner's squared error. Afterwards the probes are measured on ``n_val`` real ``val`` images (``probe_accuracy``)
and the numbers are kept with them (``Probes.val_accuracy``).

Caching (``load_or_train_probes``): one file under ``lrkit.fsutil.cache_dir("probes")`` per key = sha256 of
(``PROBE_FORMAT_VERSION``, ``SYNTHFACES_VERSION``, the whole ``ProbeConfig``: variant, size, ``n_train``,
``epochs``, ``seed``, ``data_seed``, ``n_val``, widths, ..., and ``SynthSet.fingerprint()`` of the training set).
It holds the three state_dicts, the config and the val accuracies as tensors and plain data (``torch.save`` of a
dict, written through ``fsutil.atomic_open``, read with ``torch.load(weights_only=True)``; never a pickled module).
A file that cannot be read or does not match its key is retrained and replaced, with a warning.

The metric (``synthfaces_factors``)
-----------------------------------
Outputs are read by the probes of their own size, or for outputs larger than ``PROBE_MAX_SIZE`` (128 px) by the
128-px probes after an exact average pool (the fine factors are already clear at 128 px). With ``TOLERANCE`` = 0.10:

* ``identity/<f>`` for each fine factor ``f``: fraction of outputs whose predicted class equals the SOURCE's true
  class; ``identity_fine_agreement`` = their mean. ``identity_target/<f>`` and ``identity_fine_agreement_target``:
  the same against the TARGET's fine factors (a model that copies the target scores high here, and near chance on
  identity).
* ``faithful/<c>`` for each coarse factor ``c`` against the TARGET: categorical -> fraction equal; continuous ->
  fraction with ``|pred - target| <= TOLERANCE * (high - low)`` (circular factors: distance around the circle);
  ``faithful_coarse_agreement`` = mean over coarse factors. ``faithful_mae/<c>`` = mean ``|pred - target| / (high -
  low)`` of continuous ``c``; ``faithful_coarse_mae`` = their mean (range units).
* chance levels: ``chance/<f>`` = the frequency of the most common class of ``f`` among the sources (what a
  constant guess can reach), ``chance_fine`` = their mean; ``chance_fine_target`` the same over the targets.
* ``probe_min_fine_accuracy`` / ``probe_mean_fine_accuracy``: the probes' held-out accuracies on real val images
  (the metric only means something where these are high), ``probe_accuracy/<f>`` per fine factor, and
  ``probe_mean_coarse_accuracy`` (the ceiling of ``faithful_coarse_agreement``: subtle coarse factors such as
  ``face_width`` or ``light_strength`` are read within 10 % of their range only part of the time).
* ``n_images``, ``probe_size``.

A perfect translation (the target's coarse factors rendered with the source's fine ones) scores identity about
the probes' fine accuracy and faithfulness about their coarse accuracy; an output that ignores the source scores
identity about chance.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lrkit.data import synthfaces as sf
from lrkit.data.ops import downscale
from lrkit.fsutil import atomic_open, cache_dir
from lrkit.metrics.imagesource import ImageSource, iter_batches

__all__ = [
    "PROBE_FORMAT_VERSION",
    "TOLERANCE",
    "CIRCULAR_FACTORS",
    "DEFAULT_TRAINING",
    "PROBE_MAX_SIZE",
    "ProbeConfig",
    "Probes",
    "train_probes",
    "load_or_train_probes",
    "probe_cache_path",
    "probe_accuracy",
    "synthfaces_factors",
]

PROBE_FORMAT_VERSION = "1"  # bump whenever the architecture, crop or training procedure changes
TOLERANCE = 0.10  # continuous factors agree when |pred - true| <= 10 % of (high - low)
CIRCULAR_FACTORS = frozenset({"light_angle", "bg_hue"})  # ranges that are one full period
COARSE_INPUT = 32  # px: the coarse net sees the image average-pooled to this size (coarse factors survive 8x8)
PROBE_LR = 2e-3
LOSS_CONTINUOUS_WEIGHT = 10.0  # squared errors on [0, 1] targets are ~10x smaller than cross-entropies
YAW_SHIFT = 0.86  # local units the eyes, nose and mouth (depth ~0.86) move sideways per unit sin(yaw)
POSE_NAMES = ("cx", "cy", "scale", "roll", "yaw")  # the coarse factors that place the crops
POSE_LOSS_WEIGHT = 4.0  # extra weight of the pose factors in the coarse loss
# Uniform jitter (half-widths) of the true pose for the fine net's training crops -- cx, cy (fraction of the side),
# scale (relative), roll (deg), yaw (deg) -- and the larger range the refiner learns to correct (about the 98th
# percentile of the coarse net's errors).
POSE_JITTER = (0.012, 0.012, 0.04, 3.0, 4.0)
REFINE_JITTER = (0.03, 0.025, 0.08, 8.0, 14.0)
REFINE_LOSS_WEIGHT = 4.0
# Crop box in the head's local frame (x0, x1, y0, y1), local unit = the face half-width / head radius. Faces: ears
# and earrings to the sides, brows to mouth and chin marks; animals: ear tips (up to 2 units above the centre for
# pointed ears) down to the whiskers and chin. Measured from where the fine classes differ (see the report).
CROP_BOX = {"faces": (-1.6, 1.6, -0.6, 1.05), "animals": (-1.55, 1.55, -2.1, 1.15)}
# Training-set size and epochs per HR size when load_or_train_probes is not told otherwise. 64 px (the smoke
# profile): ~45 s (faces) / ~60 s (animals) on 2 CPU cores including rendering the images; 128 px: ~2.5 min on 2
# cores (seconds on a GPU). The accuracies they reach are in tests/test_factor_probes.py's header.
DEFAULT_TRAINING: dict[int, dict[str, int]] = {
    32: {"n_train": 1500, "epochs": 8},
    64: {"n_train": 1500, "epochs": 8},
    128: {"n_train": 2000, "epochs": 10},
    256: {"n_train": 2000, "epochs": 10},
}
PROBE_MAX_SIZE = 128  # synthfaces_factors reads larger outputs with the 128-px probes (exact average pool)
DEFAULT_N_VAL = 500


def _head_frame(variant: str) -> tuple[float, float]:
    """(s0, c0): the head's size in image units at scale 1 and its centre's Y offset, as synthfaces renders it."""
    if variant == "faces":
        return float(sf._FACE_S), float(sf._FACE_CY)
    return float(sf._ANIMAL_S), float(sf._ANIMAL_CY)


def _check_variant(variant: str) -> None:
    if variant not in sf.VARIANTS:
        raise ValueError(f"unknown synthfaces variant {variant!r}; valid variants are {sf.VARIANTS}")


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) not in sf.SIZES:
        raise ValueError(f"probe size must be one of the synthfaces sizes {sf.SIZES}, got {size!r}")
    return int(size)


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeConfig:
    """Everything that fixes a trained probe (all of it is part of the cache key)."""

    variant: str
    size: int
    n_train: int
    epochs: int
    seed: int = 0
    data_seed: int = 0  # synthfaces seed of the train/val images
    n_val: int = DEFAULT_N_VAL
    batch_size: int = 32
    lr: float = PROBE_LR
    coarse_width: int = 16
    fine_width: int = 24
    refiner_width: int = 16
    refine_steps: int = 2
    coarse_input: int = COARSE_INPUT

    def __post_init__(self) -> None:
        _check_variant(self.variant)
        _check_size(self.size)
        if self.coarse_input not in (16, 32) or self.coarse_input > self.size:
            raise ValueError(f"ProbeConfig.coarse_input must be 16 or 32 and <= size, got {self.coarse_input!r}")
        if isinstance(self.refine_steps, bool) or not isinstance(self.refine_steps, int) or self.refine_steps < 0:
            raise ValueError(f"ProbeConfig.refine_steps must be an integer >= 0, got {self.refine_steps!r}")
        if not float(self.lr) > 0:
            raise ValueError(f"ProbeConfig.lr must be > 0, got {self.lr!r}")
        for name in ("n_train", "epochs", "batch_size", "coarse_width", "fine_width", "refiner_width", "n_val"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
                raise ValueError(f"ProbeConfig.{name} must be an integer >= 1, got {v!r}")
        for name in ("seed", "data_seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
                raise ValueError(f"ProbeConfig.{name} must be an integer >= 0, got {v!r}")

    def as_dict(self) -> dict:
        d = asdict(self)
        return {k: (int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v)
                for k, v in d.items()}


def _specs(variant: str, group: str) -> tuple[sf.FactorSpec, ...]:
    return tuple(s for s in sf.FACTORS[variant] if s.group == group)


def _spec(variant: str, name: str) -> sf.FactorSpec:
    return next(s for s in sf.FACTORS[variant] if s.name == name)


def _out_dim(spec: sf.FactorSpec) -> int:
    if spec.kind == "categorical":
        return spec.n_classes
    return 2 if spec.name in CIRCULAR_FACTORS else 1


# ----------------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------------


def _cbr(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class _CoarseNet(nn.Module):
    """[B, 3, 32, 32] -> [B, sum of head sizes]: 32 -> 16 -> 8 px trunk, 4x4 average pool, MLP."""

    def __init__(self, n_out: int, w: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*_cbr(3, w), *_cbr(w, w), *_cbr(w, 2 * w, 2), *_cbr(2 * w, 2 * w),
                                   *_cbr(2 * w, 4 * w, 2), *_cbr(4 * w, 4 * w))
        # A 4x4 grid (not a global pool) keeps where things are: cx, cy, yaw and roll are positions.
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(4 * w * 16, 256),
                                  nn.ReLU(inplace=True), nn.Linear(256, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class _FineNet(nn.Module):
    """High-passed crop [B, 3, r h, r w] -> [B, sum of classes]: unshuffle by r, conv trunk with two 2x2 max pools,
    then the whole [4 w, h / 4, w / 4] feature map flattened into an MLP."""

    def __init__(self, n_out: int, width: int, r: int, h: int, w: int) -> None:
        super().__init__()
        c = width
        self.unshuffle = nn.PixelUnshuffle(r) if r > 1 else nn.Identity()
        self.trunk = nn.Sequential(*_cbr(3 * r * r, c), *_cbr(c, c), nn.MaxPool2d(2), *_cbr(c, 2 * c),
                                   *_cbr(2 * c, 2 * c), nn.MaxPool2d(2), *_cbr(2 * c, 4 * c))
        # Flattened, not pooled: the crop is pose-normalized, so each feature has its own place (the iris colour
        # is a colour *at the eyes*), and position-specific weights learn several times faster than a global pool.
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * c * (h // 4) * (w // 4), 256),
                                  nn.ReLU(inplace=True), nn.Linear(256, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.unshuffle(x)))


class _PoseRefiner(nn.Module):
    """High-passed crop [B, 3, r h, r w] -> [B, 5]: the pose residual (true - used) / REFINE_JITTER, per pose
    factor. Unshuffle by r, four conv layers (three stride 2), flattened into an MLP."""

    def __init__(self, width: int, r: int, h: int, w: int) -> None:
        super().__init__()
        c = width
        self.unshuffle = nn.PixelUnshuffle(r) if r > 1 else nn.Identity()
        self.trunk = nn.Sequential(*_cbr(3 * r * r, c), *_cbr(c, 2 * c, 2), *_cbr(2 * c, 4 * c, 2),
                                   *_cbr(4 * c, 4 * c, 2))
        n = 4 * c * math.ceil(h / 8) * math.ceil(w / 8)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n, 128), nn.ReLU(inplace=True), nn.Linear(128, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.unshuffle(x)))


def _jitter_pose(pose: torch.Tensor, u: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Pose [B, 5] moved by u [B, 5] (in [-1, 1]) x ``amount`` [5]; the scale is moved relatively."""
    out = pose + u * amount
    out[:, 2] = pose[:, 2] * (1.0 + u[:, 2] * amount[2])
    return out


def _crop_geometry(variant: str, size: int) -> tuple[int, int, int]:
    """(r, H, W): HR px per crop px at 64-px scale, and the crop's size in crop px (before the unshuffle: r H, r W)."""
    s0, _ = _head_frame(variant)
    x0, x1, y0, y1 = CROP_BOX[variant]
    ppu = s0 * 64 / 2  # 64-px-equivalent pixels per local unit at scale 1
    # Multiples of 4: the two 2x2 max pools then see whole blocks.
    w = int(math.ceil((x1 - x0) * ppu / 4)) * 4
    h = int(math.ceil((y1 - y0) * ppu / 4)) * 4
    return max(1, size // 64), h, w


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> the floats of their 8-bit levels (lrkit.data.ops.to_uint8's rounding)."""
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0


def _aligned_crops(x: torch.Tensor, pose: torch.Tensor, variant: str) -> torch.Tensor:
    """HR images [B, 3, S, S] and poses [B, 5] (cx, cy, scale, roll deg, yaw deg) -> high-passed crops.

    Returns [B, 3, r H, r W] (see ``_crop_geometry``): the crop box of the head's local frame, sampled bilinearly.
    grid_sample's normalized coordinates with align_corners=False are exactly synthfaces' image coordinates
    (pixel centres at (2 i + 1) / S - 1), so the affine map below is the renderer's placement of the head.
    """
    size = x.shape[-1]
    r, h, w = _crop_geometry(variant, size)
    s0, c0 = _head_frame(variant)
    x0, x1, y0, y1 = CROP_BOX[variant]
    cx, cy, scale, roll, yaw = pose.unbind(1)
    s = s0 * scale
    th = torch.deg2rad(roll)
    cr, sr = torch.cos(th), torch.sin(th)
    X0, Y0 = 2.0 * cx, c0 + 2.0 * cy
    hx, hy = (x1 - x0) / 2, (y1 - y0) / 2
    xm = (x0 + x1) / 2 + YAW_SHIFT * torch.sin(torch.deg2rad(yaw))  # [B] crop centre, local x
    ym = torch.full_like(xm, (y0 + y1) / 2)
    # (X, Y) = (X0, Y0) + s R(roll) (xm + hx u, ym + hy v) for crop coordinates (u, v) in [-1, 1].
    row0 = torch.stack([s * cr * hx, -s * sr * hy, X0 + s * (cr * xm - sr * ym)], 1)
    row1 = torch.stack([s * sr * hx, s * cr * hy, Y0 + s * (sr * xm + cr * ym)], 1)
    theta = torch.stack([row0, row1], 1).to(x.dtype)  # [B, 2, 3]
    grid = F.affine_grid(theta, [x.shape[0], 3, r * h, r * w], align_corners=False)
    crop = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # [B, 3, r h, r w]
    k = 4 * r + 1
    local_mean = F.avg_pool2d(F.pad(crop, (k // 2,) * 4, mode="replicate"), k, 1)
    return crop - local_mean


# ----------------------------------------------------------------------------------------------------------------
# Probes
# ----------------------------------------------------------------------------------------------------------------


class Probes:
    """Trained factor probes (coarse net, pose refiner, fine net) for one ``(variant, size)``; see the module
    docstring.

    ``predict(images)`` returns every coarse and fine factor in the factor's own units. ``val_accuracy`` holds the
    held-out numbers ``probe_accuracy`` measured right after training.
    """

    def __init__(self, config: ProbeConfig, val_accuracy: Mapping[str, float] | None = None,
                 train_fingerprint: str = "", train_seconds: float = float("nan")) -> None:
        self.config = config
        self.variant, self.size = config.variant, int(config.size)
        self.coarse_specs = _specs(self.variant, "coarse")
        self.fine_specs = _specs(self.variant, "fine")
        r, h, w = _crop_geometry(self.variant, self.size)
        self.coarse = _CoarseNet(sum(_out_dim(s) for s in self.coarse_specs), config.coarse_width)
        self.refiner = _PoseRefiner(config.refiner_width, r, h, w)
        self.fine = _FineNet(sum(_out_dim(s) for s in self.fine_specs), config.fine_width, r, h, w)
        # channels_last: ~1.5x faster convolutions on the CPU (oneDNN's preferred layout); same numbers.
        for net in self.nets:
            net.to(memory_format=torch.channels_last)
        self.val_accuracy: dict[str, float] = dict(val_accuracy or {})
        self.train_fingerprint = train_fingerprint
        self.train_seconds = float(train_seconds)

    def __repr__(self) -> str:
        fine = [self.val_accuracy.get(s.name) for s in self.fine_specs]
        acc = "untested" if None in fine else f"min fine val accuracy {min(fine):.3f}"
        return f"Probes(variant={self.variant!r}, size={self.size}, n_train={self.config.n_train}, {acc})"

    @property
    def nets(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.coarse, self.refiner, self.fine

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.coarse_specs + self.fine_specs)

    def to(self, device: str | torch.device) -> "Probes":
        for net in self.nets:
            net.to(device)
        return self

    def train(self, mode: bool = True) -> "Probes":
        for net in self.nets:
            net.train(mode)
        return self

    def eval(self) -> "Probes":
        return self.train(False)

    # -- state ---------------------------------------------------------------------------------------------------

    def state(self) -> dict:
        """Plain data for ``torch.save``: tensors, numbers, strings (loadable with ``weights_only=True``)."""
        return {
            "format": "lrkit-factor-probes",
            "format_version": PROBE_FORMAT_VERSION,
            "synthfaces_version": sf.SYNTHFACES_VERSION,
            "config": self.config.as_dict(),
            **{name: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
               for name, net in zip(("coarse", "refiner", "fine"), self.nets)},
            "val_accuracy": {k: float(v) for k, v in self.val_accuracy.items()},
            "train_fingerprint": self.train_fingerprint,
            "train_seconds": float(self.train_seconds),
        }

    @classmethod
    def from_state(cls, state: Mapping) -> "Probes":
        if state.get("format") != "lrkit-factor-probes" or state.get("format_version") != PROBE_FORMAT_VERSION:
            raise ValueError(f"not an lrkit factor-probe file of format version {PROBE_FORMAT_VERSION}")
        if state.get("synthfaces_version") != sf.SYNTHFACES_VERSION:
            raise ValueError(f"probes were trained on synthfaces v{state.get('synthfaces_version')}, this is "
                             f"v{sf.SYNTHFACES_VERSION}")
        config = ProbeConfig(**dict(state["config"]))
        probes = cls(config, val_accuracy=state["val_accuracy"], train_fingerprint=str(state["train_fingerprint"]),
                     train_seconds=float(state["train_seconds"]))
        for name, net in zip(("coarse", "refiner", "fine"), probes.nets):
            net.load_state_dict(state[name])
        return probes.eval()

    # -- prediction ----------------------------------------------------------------------------------------------

    def _check_images(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        if x.shape[-2] != size:
            raise ValueError(f"synthfaces probes need square images, got {tuple(x.shape[-2:])}")
        if size == self.size:
            return x
        if size > self.size and size % self.size == 0:
            return downscale(x, self.size, mode="avgpool")
        raise ValueError(f"images are {size} px but the probes were trained at {self.size} px; pass probes of "
                         f"size {size} (load_or_train_probes(variant, {size})) or images whose size is a multiple "
                         f"of {self.size}")

    def _coarse_out(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized HR images [B, 3, S, S] -> coarse head outputs [B, Dc]."""
        ci = self.config.coarse_input
        small = downscale(x, ci, mode="avgpool") if x.shape[-1] > ci else x
        return self.coarse(small.contiguous(memory_format=torch.channels_last))

    def _crops(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return _aligned_crops(x, pose, self.variant).contiguous(memory_format=torch.channels_last)

    def _refine(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """Pose [B, 5] -> pose corrected by the refiner ``config.refine_steps`` times, clamped to the factors'
        ranges."""
        amount = torch.tensor(REFINE_JITTER, dtype=pose.dtype, device=pose.device)
        lo = torch.tensor([_spec(self.variant, n).low for n in POSE_NAMES], dtype=pose.dtype, device=pose.device)
        hi = torch.tensor([_spec(self.variant, n).high for n in POSE_NAMES], dtype=pose.dtype, device=pose.device)
        for _ in range(self.config.refine_steps):
            # The refiner was trained to output -u for a crop taken at _jitter_pose(true, u); undo that move.
            r = self.refiner(self._crops(x, pose)).clamp(-1.5, 1.5)
            new = pose + r * amount
            new[:, 2] = pose[:, 2] / (1.0 - r[:, 2] * amount[2])
            pose = torch.maximum(torch.minimum(new, hi), lo)
        return pose

    def _decode_coarse(self, zc: torch.Tensor) -> dict[str, torch.Tensor]:
        """Coarse outputs -> factor values in their units (continuous ones clamped to their range)."""
        out, o = {}, 0
        for spec in self.coarse_specs:
            d = _out_dim(spec)
            z = zc[:, o:o + d]
            o += d
            if spec.kind == "categorical":
                out[spec.name] = z.argmax(1)
            else:
                if spec.name in CIRCULAR_FACTORS:
                    t = torch.remainder(torch.atan2(z[:, 1], z[:, 0]) / (2 * math.pi), 1.0)
                else:
                    t = z[:, 0].clamp(0.0, 1.0)
                out[spec.name] = spec.low + t * (spec.high - spec.low)
        return out

    def _decode_fine(self, zf: torch.Tensor) -> dict[str, torch.Tensor]:
        out, o = {}, 0
        for spec in self.fine_specs:
            out[spec.name] = zf[:, o:o + spec.n_classes].argmax(1)
            o += spec.n_classes
        return out

    @torch.no_grad()
    def predict_batch(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One batch [B, 3, S, S] in [-1, 1] -> factor name -> [B] (class indices / values in factor units)."""
        x = self._check_images(_quantize(x))
        coarse = self._decode_coarse(self._coarse_out(x))
        pose = self._refine(x, torch.stack([coarse[n] for n in POSE_NAMES], 1).to(x.dtype))
        for j, n in enumerate(POSE_NAMES):
            coarse[n] = pose[:, j]  # the refined pose is the better estimate of these coarse factors too
        return {**coarse, **self._decode_fine(self.fine(self._crops(x, pose)))}

    def predict(self, images: ImageSource, *, device: str = "cpu", batch_size: int = 64) -> dict[str, np.ndarray]:
        """Predicted factors of every image: name -> [N] (int64 class indices / float64 values in factor units).

        Images are quantized to 8 bits and, when they are a whole multiple of the probes' size, average-pooled to
        it. Coarse and fine factors only (no nuisance).
        """
        self.to(device).eval()
        parts: dict[str, list[np.ndarray]] = {n: [] for n in self.factor_names}
        for batch in iter_batches(images, batch_size, "probe images"):
            for name, v in self.predict_batch(batch.to(device)).items():
                parts[name].append(v.cpu().numpy())
        out = {}
        for spec in self.coarse_specs + self.fine_specs:
            arr = np.concatenate(parts[spec.name])
            out[spec.name] = arr.astype(np.int64) if spec.kind == "categorical" else arr.astype(np.float64)
        return out


# ----------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------


def _images_tensor(ss: sf.SynthSet) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1] (lrkit.data.ops.from_uint8's mapping)."""
    return torch.from_numpy(np.ascontiguousarray(ss.images)).permute(0, 3, 1, 2).float() * (2.0 / 255.0) - 1.0


def _targets(specs: tuple[sf.FactorSpec, ...], factors: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Categorical -> int64 class indices; continuous -> float32 normalized to [0, 1] by (low, high)."""
    out = {}
    for s in specs:
        v = np.asarray(factors[s.name])
        if s.kind == "categorical":
            out[s.name] = torch.from_numpy(v.astype(np.int64))
        else:
            out[s.name] = torch.from_numpy(((v.astype(np.float64) - s.low) / (s.high - s.low)).astype(np.float32))
    return out


def _loss(specs: tuple[sf.FactorSpec, ...], z: torch.Tensor, y: dict[str, torch.Tensor]) -> torch.Tensor:
    total, o = z.new_zeros(()), 0
    for s in specs:
        d = _out_dim(s)
        zs = z[:, o:o + d]
        o += d
        t = y[s.name]
        if s.kind == "categorical":
            total = total + F.cross_entropy(zs, t)
        elif s.name in CIRCULAR_FACTORS:
            a = 2 * math.pi * t
            total = total + LOSS_CONTINUOUS_WEIGHT * F.mse_loss(zs, torch.stack([torch.cos(a), torch.sin(a)], 1))
        else:
            # The pose places the crops: worth more than, say, the cloth hue.
            w = POSE_LOSS_WEIGHT if s.name in POSE_NAMES else 1.0
            total = total + w * LOSS_CONTINUOUS_WEIGHT * F.mse_loss(zs[:, 0], t)
    return total


def train_probes(variant: str, size: int, *, n_train: int, epochs: int, seed: int = 0, device: str = "cpu",
                 data_seed: int = 0, n_val: int = DEFAULT_N_VAL, train_set: sf.SynthSet | None = None,
                 verbose: bool = False, **options: Any) -> Probes:
    """Train the probes on ``n_train`` synthfaces ``train`` images (generated, cached) and measure them.

    Deterministic for a given ``seed`` on the CPU (same thread count). ``train_set`` passes the training images in
    directly (it must be ``generate(variant, "train", n_train, size, data_seed)``'s content; its fingerprint is
    recorded). ``options`` are further ``ProbeConfig`` fields. ``Probes.val_accuracy`` is ``probe_accuracy`` on
    ``n_val`` real val images.
    """
    config = ProbeConfig(variant, _check_size(size), n_train, epochs, seed, data_seed, n_val, **options)
    if train_set is None:
        train_set = sf.generate(variant, "train", config.n_train, config.size, config.data_seed)
    elif (train_set.variant, train_set.split, len(train_set), train_set.size) != (variant, "train", n_train, size):
        raise ValueError(f"train_set is ({train_set.variant}, {train_set.split}, n={len(train_set)}, "
                         f"{train_set.size} px), expected ({variant}, train, n={n_train}, {size} px)")
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)  # initial weights
    gen = torch.Generator().manual_seed(config.seed)  # shuffling and pose jitter
    probes = Probes(config).to(device)
    images = _images_tensor(train_set)  # [N, 3, S, S]; exact 8-bit levels already
    yc = _targets(probes.coarse_specs, train_set.factors)
    yf = _targets(probes.fine_specs, train_set.factors)
    pose = torch.from_numpy(np.stack([train_set.factors[k] for k in POSE_NAMES], 1).astype(np.float32))  # [N, 5]
    fine_jitter = torch.tensor(POSE_JITTER, dtype=torch.float32)
    refine_jitter = torch.tensor(REFINE_JITTER, dtype=torch.float32)
    params = [p for net in probes.nets for p in net.parameters()]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4)
    # Batches of a shuffled epoch; a last batch of one image is dropped (BatchNorm needs two samples per batch).
    starts = [i for i in range(0, config.n_train, config.batch_size) if config.n_train - i >= 2]
    if not starts:
        raise ValueError("train_probes needs n_train >= 2 (BatchNorm statistics)")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * len(starts),
                                                pct_start=0.15)
    probes.train()
    for epoch in range(config.epochs):
        perm = torch.randperm(config.n_train, generator=gen)
        for i in starts:
            idx = perm[i:i + config.batch_size]
            x = images[idx].to(device)
            loss = _loss(probes.coarse_specs, probes._coarse_out(x), {k: v[idx].to(device) for k, v in yc.items()})
            # Refiner: crops at the true pose moved by up to REFINE_JITTER (the coarse net's error range); it
            # learns to point back (target -u).
            u = torch.rand(len(idx), 5, generator=gen) * 2 - 1
            r = probes.refiner(probes._crops(x, _jitter_pose(pose[idx], u, refine_jitter).to(device)))
            loss = loss + REFINE_LOSS_WEIGHT * F.mse_loss(r, -u.to(device))
            # Fine net: crops at the true pose moved by up to POSE_JITTER (what is left after refinement).
            u = torch.rand(len(idx), 5, generator=gen) * 2 - 1
            zf = probes.fine(probes._crops(x, _jitter_pose(pose[idx], u, fine_jitter).to(device)))
            loss = loss + _loss(probes.fine_specs, zf, {k: v[idx].to(device) for k, v in yf.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if verbose:
            print(f"probes {variant} {size}px epoch {epoch + 1}/{config.epochs} loss {loss.item():.3f} "
                  f"{time.perf_counter() - t_start:.1f}s", flush=True)
    probes.train_seconds = time.perf_counter() - t_start
    probes.train_fingerprint = train_set.fingerprint()
    probes.eval()
    probes.val_accuracy = probe_accuracy(probes, variant, "val", config.n_val, size, seed=config.data_seed,
                                         device=device)
    return probes


# ----------------------------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------------------------


def _cache_key(config: ProbeConfig, fingerprint: str) -> str:
    payload = {"format_version": PROBE_FORMAT_VERSION, "synthfaces_version": sf.SYNTHFACES_VERSION,
               "config": config.as_dict(), "train_fingerprint": fingerprint}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def probe_cache_path(config: ProbeConfig, fingerprint: str) -> Path:
    """Where ``load_or_train_probes`` keeps the probes of ``config`` trained on the set with ``fingerprint``."""
    key = _cache_key(config, fingerprint)
    return cache_dir("probes") / f"v{PROBE_FORMAT_VERSION}_{config.variant}_s{config.size}_{key[:20]}.pt"


def _load_cached(path: Path, config: ProbeConfig, fingerprint: str) -> Probes | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("key") != _cache_key(config, fingerprint):
            raise ValueError("cache key mismatch")
        probes = Probes.from_state(state)
        if probes.config != config or probes.train_fingerprint != fingerprint:
            raise ValueError("config or training-set fingerprint mismatch")
        if any(s.name not in probes.val_accuracy for s in probes.fine_specs):
            raise ValueError("val accuracies missing")
        return probes
    except Exception as exc:  # any unreadable / foreign / truncated file is retrained, never trusted
        warnings.warn(f"probe cache file {path} is unusable ({type(exc).__name__}: {exc}); retraining",
                      RuntimeWarning, stacklevel=3)
        return None


def load_or_train_probes(variant: str, size: int, *, n_train: int | None = None, epochs: int | None = None,
                         seed: int = 0, data_seed: int = 0, n_val: int = DEFAULT_N_VAL, device: str = "cpu",
                         cache: bool = True, verbose: bool = False, **options: Any) -> Probes:
    """The probes for ``(variant, size)``: read from the cache, or trained (``train_probes``) and cached.

    ``n_train``/``epochs`` default to ``DEFAULT_TRAINING[size]`` (the profile of the probes themselves; the kit's
    run profiles do not change them, so every run of one size is scored by the same probes). The cache key
    covers the synthfaces and probe format versions, the full ``ProbeConfig`` and the training set's content
    fingerprint; a corrupt or mismatching file is retrained and replaced atomically. ``options`` are further
    ``ProbeConfig`` fields (widths, ``lr``, ...), part of the key like the rest.
    """
    _check_variant(variant)
    size = _check_size(size)
    defaults = DEFAULT_TRAINING[size]
    config = ProbeConfig(variant, size, defaults["n_train"] if n_train is None else n_train,
                         defaults["epochs"] if epochs is None else epochs, seed, data_seed, n_val, **options)
    train_set = sf.generate(variant, "train", config.n_train, size, config.data_seed)
    fingerprint = train_set.fingerprint()
    path = probe_cache_path(config, fingerprint)
    if not cache:
        return train_probes(variant, size, n_train=config.n_train, epochs=config.epochs, seed=seed, device=device,
                            data_seed=data_seed, n_val=n_val, train_set=train_set, verbose=verbose, **options)
    hit = _load_cached(path, config, fingerprint)
    if hit is not None:
        return hit.to(device)
    # Two notebooks of a batch often need the same probes at once: the first trains them, the others wait on this
    # lock and then read its file (each trained them itself before: minutes of duplicate work per size).
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
        hit = _load_cached(path, config, fingerprint)
        if hit is not None:
            return hit.to(device)
        probes = train_probes(variant, size, n_train=config.n_train, epochs=config.epochs, seed=seed,
                              device=device, data_seed=data_seed, n_val=n_val, train_set=train_set,
                              verbose=verbose, **options)
        state = probes.state()
        state["key"] = _cache_key(config, fingerprint)
        with atomic_open(path, "wb") as fh:
            torch.save(state, fh)
    return probes


# ----------------------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------------------


def _range_error(spec: sf.FactorSpec, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """|pred - true| / (high - low); around the circle for circular factors (at most 0.5 there)."""
    d = np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64)) / (spec.high - spec.low)
    if spec.name in CIRCULAR_FACTORS:
        d = np.remainder(d, 1.0)
        d = np.minimum(d, 1.0 - d)
    return d


def _agreement(spec: sf.FactorSpec, pred: np.ndarray, true: np.ndarray) -> float:
    if spec.kind == "categorical":
        return float(np.mean(np.asarray(pred) == np.asarray(true)))
    return float(np.mean(_range_error(spec, pred, true) <= TOLERANCE + 1e-12))


def probe_accuracy(probes: Probes, variant: str | None = None, split: str = "val", n: int = DEFAULT_N_VAL,
                   size: int | None = None, *, seed: int = 0, device: str = "cpu",
                   batch_size: int = 64) -> dict[str, float]:
    """Held-out accuracy of ``probes`` on ``n`` REAL synthfaces images of ``split`` (generated, cached).

    Per factor ``<name>``: categorical -> fraction of correct classes; continuous -> fraction within ``TOLERANCE``
    of the range, plus ``<name>_mae`` (mean absolute error in range units). Summaries: ``min_fine``, ``mean_fine``,
    ``mean_coarse`` and ``n``. ``size`` (default: the probes' size) renders the images at another size (a multiple
    of the probes' size is pooled down to it).
    """
    variant = probes.variant if variant is None else variant
    if variant != probes.variant:
        raise ValueError(f"probes are for variant {probes.variant!r}, not {variant!r}")
    size = probes.size if size is None else _check_size(size)
    ss = sf.generate(variant, split, n, size, seed)
    pred = probes.predict(_images_tensor(ss), device=device, batch_size=batch_size)
    out: dict[str, float] = {}
    for spec in probes.coarse_specs + probes.fine_specs:
        out[spec.name] = _agreement(spec, pred[spec.name], ss.factors[spec.name])
        if spec.kind == "continuous":
            out[spec.name + "_mae"] = float(np.mean(_range_error(spec, pred[spec.name], ss.factors[spec.name])))
    fine = [out[s.name] for s in probes.fine_specs]
    out["min_fine"] = float(min(fine))
    out["mean_fine"] = float(np.mean(fine))
    out["mean_coarse"] = float(np.mean([out[s.name] for s in probes.coarse_specs]))
    out["n"] = int(n)
    return out


def _factor_array(factors: Mapping[str, Any], spec: sf.FactorSpec, n: int, what: str) -> np.ndarray:
    if spec.name not in factors:
        raise KeyError(f"{what} has no factor {spec.name!r}; it needs every {spec.group} factor of the variant "
                       f"(e.g. SynthSet.factors or a dict of sample_factors columns)")
    v = np.asarray(factors[spec.name])
    if v.ndim != 1 or len(v) != n:
        raise ValueError(f"{what}[{spec.name!r}] has shape {v.shape} but there are {n} outputs; pass one value per "
                         f"output (source i and target i produced output i)")
    if spec.kind == "categorical":
        if not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= spec.n_classes:
            raise ValueError(f"{what}[{spec.name!r}] must hold class indices 0..{spec.n_classes - 1} of "
                             f"{spec.classes}")
    elif not np.all(np.isfinite(v.astype(np.float64))):
        raise ValueError(f"{what}[{spec.name!r}] contains NaN or Inf")
    return v


def synthfaces_factors(outputs: ImageSource, source_factors: Mapping[str, Any], target_factors: Mapping[str, Any],
                       *, variant: str = "faces", probes: Probes | None = None, size: int | None = None,
                       device: str = "cpu", batch_size: int = 64) -> dict[str, float]:
    """Identity preservation and LR faithfulness of translations, read by the factor probes (see module docstring).

    ``outputs[i]`` was produced from source ``i`` and LR target ``i`` (an image source: tensor [N, 3, H, W] in
    [-1, 1], folder, or iterable of batches). ``source_factors`` / ``target_factors`` map factor names to arrays
    ``[N]``: the true factors of source ``i`` (every fine factor is needed) and of target ``i`` (every coarse and
    fine factor), e.g. ``SynthSet.factors`` indexed by the pairs. ``probes`` default to
    ``load_or_train_probes(variant, size)`` where ``size`` defaults to the outputs' size, capped at
    ``PROBE_MAX_SIZE``; outputs that are a whole multiple of the probes' size are average-pooled to it.
    """
    _check_variant(variant)
    if probes is not None and probes.variant != variant:
        raise ValueError(f"probes are for variant {probes.variant!r} but variant={variant!r}")
    if not isinstance(source_factors, Mapping) or not isinstance(target_factors, Mapping):
        raise TypeError("source_factors and target_factors must be dicts of factor name -> array [N]")
    coarse_specs, fine_specs = _specs(variant, "coarse"), _specs(variant, "fine")

    def check_factors(n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        src = {s.name: _factor_array(source_factors, s, n, "source_factors") for s in fine_specs}
        tgt = {s.name: _factor_array(target_factors, s, n, "target_factors") for s in coarse_specs + fine_specs}
        return src, tgt

    if isinstance(outputs, torch.Tensor):
        check_factors(len(outputs))  # fail before any probe is trained or run
    if size is not None:
        size = _check_size(size)
        if probes is not None and size != probes.size:
            raise ValueError(f"size={size} but the probes given were trained at {probes.size} px")
    batches = iter_batches(outputs, batch_size, "outputs")  # single pass: iterable sources are read once
    first = next(batches)
    if probes is None:
        if size is None:
            size = min(int(first.shape[-1]), PROBE_MAX_SIZE)
        probes = load_or_train_probes(variant, size, device=device)
    probes.to(device).eval()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in probes.factor_names}
    for batch in itertools.chain([first], batches):
        for name, v in probes.predict_batch(batch.to(device)).items():
            parts[name].append(v.cpu().numpy())
    pred = {name: np.concatenate(v) for name, v in parts.items()}
    n = len(pred[fine_specs[0].name])
    src, tgt = check_factors(n)

    out: dict[str, float] = {}
    ident, ident_t, chance, chance_t = [], [], [], []
    for s in fine_specs:
        out[f"identity/{s.name}"] = _agreement(s, pred[s.name], src[s.name])
        out[f"identity_target/{s.name}"] = _agreement(s, pred[s.name], tgt[s.name])
        out[f"chance/{s.name}"] = float(np.bincount(src[s.name], minlength=s.n_classes).max() / n)
        ident.append(out[f"identity/{s.name}"])
        ident_t.append(out[f"identity_target/{s.name}"])
        chance.append(out[f"chance/{s.name}"])
        chance_t.append(float(np.bincount(tgt[s.name], minlength=s.n_classes).max() / n))
    faithful, maes = [], []
    for s in coarse_specs:
        out[f"faithful/{s.name}"] = _agreement(s, pred[s.name], tgt[s.name])
        faithful.append(out[f"faithful/{s.name}"])
        if s.kind == "continuous":
            out[f"faithful_mae/{s.name}"] = float(np.mean(_range_error(s, pred[s.name], tgt[s.name])))
            maes.append(out[f"faithful_mae/{s.name}"])
    out["identity_fine_agreement"] = float(np.mean(ident))
    out["identity_fine_agreement_target"] = float(np.mean(ident_t))
    out["faithful_coarse_agreement"] = float(np.mean(faithful))
    out["faithful_coarse_mae"] = float(np.mean(maes))
    out["chance_fine"] = float(np.mean(chance))
    out["chance_fine_target"] = float(np.mean(chance_t))
    val = probes.val_accuracy
    probe_fine = [float(val.get(s.name, float("nan"))) for s in fine_specs]
    for s, a in zip(fine_specs, probe_fine):
        out[f"probe_accuracy/{s.name}"] = a
    out["probe_min_fine_accuracy"] = float(min(probe_fine))
    out["probe_mean_fine_accuracy"] = float(np.mean(probe_fine))
    out["probe_mean_coarse_accuracy"] = float(np.mean([val.get(s.name, float("nan")) for s in coarse_specs]))
    out["n_images"] = int(n)
    out["probe_size"] = int(probes.size)
    return out
