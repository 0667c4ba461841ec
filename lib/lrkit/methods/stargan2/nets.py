"""StarGAN v2 networks (Choi et al. 2020), state_dict-compatible with the official released ``*_nets_ema.ckpt``.

Four pure networks (no training logic): :class:`Stargan2Generator` G(x, s), :class:`MappingNetwork` F(z, y),
:class:`StyleEncoder` E(x, y) and :class:`Stargan2Discriminator` D(x, y). Images are ``[B, 3, S, S]`` in [-1, 1],
styles ``[B, style_dim]``, domain labels ``[B]`` int64 in ``[0, num_domains)``.

Why the odd-looking parts are the way they are: every module name, ``nn.Sequential`` index and layer shape below is
what the official code (github clovaai/stargan-v2, ``core/model.py``) registers, so the released state_dicts load
with ``strict=True``. The facts taken from there (our own code, not a copy):

* Width at full resolution ``b = 2**14 // img_size`` (64 at 256 px), doubled per downsampling step, capped at
  ``max_conv_dim`` (512). ``base_dim`` (not an official flag; default None = that rule) sets ``b`` directly: the
  full-resolution convs cost the same at every size under the official rule (``b * S`` is constant), so tiny CPU
  models (tests, smoke runs) need a narrower ``b``. It changes the shapes, so official files need the default.
* ``ResBlk`` (encoder, style encoder, discriminator): residual ``[IN] -> LReLU(0.2) -> conv3x3 (cin -> cin) ->
  [avgpool 2] -> [IN] -> LReLU -> conv3x3 (cin -> cout)``; shortcut ``conv1x1 (no bias, only if cin != cout) ->
  [avgpool 2]``; output ``(shortcut + residual) / sqrt(2)``. IN = InstanceNorm2d(affine=True), both over cin, only
  in the generator's encoder.
* ``AdainResBlk`` (decoder): residual ``AdaIN -> LReLU -> [nearest 2x up] -> conv3x3 (cin -> cout) -> AdaIN ->
  LReLU -> conv3x3``. AdaIN is ``(1 + gamma) * IN(x) + beta`` with ``(gamma, beta) = Linear(s)`` split in halves
  (gamma first). When ``w_hpf == 0`` the output is ``(residual + shortcut) / sqrt(2)``; when ``w_hpf > 0`` the
  official block returns the residual alone (the skip information then comes through the high-pass path), yet
  still owns its unused ``conv1x1`` -- kept so the keys match.
* Generator: ``from_rgb`` conv3x3 -> ``log2(S) - 4`` (+1 if ``w_hpf > 0``) downsampling ResBlks + 2 bottleneck
  ResBlks; decoder mirrors it; ``to_rgb`` = IN(affine) -> LReLU -> conv1x1 to 3 channels.
* High-pass path (``w_hpf > 0``, CelebA-HQ): encoder features entering a block at spatial size 32, 64 or 128 (these
  absolute sizes, as in the official code) are cached; after a decoder block whose output has one of those sizes,
  ``hpf(mask * cached)`` is added, where mask = ``masks[0]`` at 32 and ``masks[1]`` at 64/128, bilinearly resized
  (align_corners=False). ``hpf`` is a depthwise 3x3 Laplacian ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf``.
* Mapping network: 4 shared Linear+ReLU (latent -> 512 -> 512), then per domain 3 Linear+ReLU + Linear(512, style).
  The hidden width 512 is fixed in the official code (its ``--hidden_dim`` flag is never used).
* Style encoder / discriminator: conv3x3 -> ``log2(S) - 2`` downsampling ResBlks (no norm) -> LReLU -> conv4x4
  valid (4x4 -> 1x1) -> LReLU -> per-domain Linear heads (E) or one conv1x1 to ``num_domains`` (D); the label's
  output is picked.

The ``hpf.filter`` buffer: the released CelebA-HQ file predates the official commit that turned the filter into a
registered buffer (f306904, April 2021), so it has *no* ``hpf.filter`` key, and loading it into the current
official code fails (clovaai/stargan-v2 issues #103, #115, #137). Here the filter is a non-persistent buffer (a
constant derived from ``w_hpf``, moved with ``.to()``), and :class:`HighPass` accepts an ``hpf.filter`` entry when
present (files written by the newer official code) after checking it equals its own -- so both kinds of file load
with ``strict=True`` and a file made with another ``w_hpf`` is rejected.

No spectral norm anywhere (the official code has none). Parameters keep PyTorch's default init; the official
trainer re-initialises the training nets with :func:`he_init_` (its EMA copies are made before that).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Spatial sizes (absolute, as in the official generator) at which the high-pass skip connections are made.
HPF_SIZES = (32, 64, 128)
# The official mapping network's hidden width (fixed in the official code; a parameter here only so the kit's small
# CPU presets can ship their models, see Stargan2Config.mapping_hidden).
MAPPING_HIDDEN = 512


def he_init_(module: nn.Module) -> nn.Module:
    """Kaiming-normal (fan_in, ReLU gain) weights and zero biases for every Conv2d / Linear, as the official trainer
    does before training; returns ``module``. Not called by the constructors (init is a training decision)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _check_img_size(img_size: int, minimum: int, what: str) -> int:
    if not isinstance(img_size, int) or isinstance(img_size, bool):
        raise TypeError(f"{what}: img_size must be an int, got {type(img_size).__name__}")
    if img_size < minimum or img_size & (img_size - 1) or img_size > 2**14:
        raise ValueError(f"{what}: img_size must be a power of two in [{minimum}, 16384], got {img_size} "
                         f"(the official models use 256)")
    return img_size


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def _check_images(x: torch.Tensor, img_size: int, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != img_size or x.shape[3] != img_size:
        raise ValueError(f"{name} must be [B, 3, {img_size}, {img_size}] (this network's img_size), got "
                         f"{tuple(x.shape)}; resize the images or build the network with the matching img_size")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [-1, 1], got {x.dtype}")


def _check_labels(y: torch.Tensor, batch: int, num_domains: int) -> None:
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"y must be an int64 tensor of domain indices, got "
                        f"{y.dtype if isinstance(y, torch.Tensor) else type(y).__name__}")
    if y.shape != (batch,):
        raise ValueError(f"y must have shape [{batch}] (one domain per sample), got {tuple(y.shape)}")
    if batch and (int(y.min()) < 0 or int(y.max()) >= num_domains):
        raise ValueError(f"y must be in [0, {num_domains}), got values in [{int(y.min())}, {int(y.max())}]")


def _pick_domain(per_domain: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """per_domain [B, D, ...] -> the entry of each sample's own domain, [B, ...]."""
    return per_domain[torch.arange(per_domain.shape[0], device=per_domain.device), y.long()]


class ResBlk(nn.Module):
    """Pre-activation residual block (see module docstring): [B, cin, H, W] -> [B, cout, H', W'], H' = H/2 when
    ``downsample``. Keys: conv1, conv2, [norm1, norm2], [conv1x1]."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        # The width changes in the *second* conv (conv1 keeps cin), unlike I2I-LR's block.
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, 0.2))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # / sqrt(2) keeps the sum of two ~unit-variance branches at unit variance.
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: ``(1 + gamma) * IN(x) + beta``, (gamma, beta) = fc(s) [B, 2C] split in halves."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)[:, :, None, None]  # [B, 2C, 1, 1]
        gamma, beta = h.chunk(2, dim=1)
        # "1 +" makes a zero-initialised fc the identity on the normalised features.
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Decoder block: [B, cin, H, W], s [B, style] -> [B, cout, H', W'], H' = 2H when ``upsample``.
    With ``w_hpf > 0`` it returns the residual alone (official behaviour; ``conv1x1`` then exists but is unused)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int = 64, w_hpf: float = 0,
                 upsample: bool = False) -> None:
        super().__init__()
        self.w_hpf = w_hpf
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.learned_sc else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        x = F.leaky_relu(self.norm2(x, s), 0.2)
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        if self.w_hpf == 0:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    """Depthwise 3x3 Laplacian divided by ``w_hpf``: [B, C, H, W] -> [B, C, H, W] (zero padding).

    The kernel is a non-persistent buffer (not in ``state_dict``: the released CelebA-HQ file has no such key); an
    ``hpf.filter`` entry written by the newer official code is accepted if it equals this kernel."""

    def __init__(self, w_hpf: float) -> None:
        super().__init__()
        if not w_hpf > 0:
            raise ValueError(f"HighPass needs w_hpf > 0, got {w_hpf}")
        laplacian = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        self.register_buffer("filter", laplacian / w_hpf, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "filter"
        if key in state_dict:
            # Consume the optional key so strict loading does not report it as unexpected; a different kernel means
            # the file was trained with another w_hpf, which changes the network's output: refuse it.
            theirs = state_dict.pop(key)
            if theirs.shape != self.filter.shape or not torch.allclose(theirs.to(self.filter), self.filter):
                error_msgs.append(f"{key}: the file's high-pass kernel differs from this generator's (trained with "
                                  f"another w_hpf?); build the generator with the file's w_hpf")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.filter.to(x.dtype)[None, None].expand(x.shape[1], 1, 3, 3)  # [C, 1, 3, 3], one per channel
        return F.conv2d(x, kernel, padding=1, groups=x.shape[1])


class Stargan2Generator(nn.Module):
    """G(x [B, 3, S, S], s [B, style_dim], masks=None) -> [B, 3, S, S].

    ``masks``: ``(mask_face, mask_inner)``, each ``[B, 1, h, w]`` in [0, 1] (any size; resized per level), e.g. from
    :func:`lrkit.nets.fan.heatmap_masks`. Used only when the generator was built with ``w_hpf > 0``.
    """

    def __init__(self, img_size: int = 256, style_dim: int = 64, max_conv_dim: int = 512, w_hpf: float = 1,
                 base_dim: int | None = None) -> None:
        super().__init__()
        _check_img_size(img_size, 32, "Stargan2Generator")
        _check_positive(style_dim=style_dim, max_conv_dim=max_conv_dim)
        if not isinstance(w_hpf, (int, float)) or isinstance(w_hpf, bool) or w_hpf < 0:
            raise ValueError(f"w_hpf must be a number >= 0 (1 for CelebA-HQ, 0 for AFHQ), got {w_hpf!r}")
        self.img_size = img_size
        self.style_dim = style_dim
        self.w_hpf = w_hpf
        dim_in = _base_dim(img_size, base_dim)
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, 3, 1, 1, 0))
        # One more down/up level with the high-pass path (bottleneck at 8x8 instead of 16x16 for 256 px).
        repeat_num = int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0)
        decode: list[nn.Module] = []
        dim_out = dim_in
        for _ in range(repeat_num):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            decode.append(AdainResBlk(dim_out, dim_in, style_dim, w_hpf=w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck, constant size
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            decode.append(AdainResBlk(dim_out, dim_out, style_dim, w_hpf=w_hpf))
        # The decoder runs the mirror order: deepest block first (index 0 = last bottleneck block).
        for block in reversed(decode):
            self.decode.append(block)
        if w_hpf > 0:
            self.hpf = HighPass(w_hpf)

    def forward(self, x: torch.Tensor, s: torch.Tensor,
                masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        _check_images(x, self.img_size)
        if not isinstance(s, torch.Tensor) or s.shape != (x.shape[0], self.style_dim):
            raise ValueError(f"s must be [{x.shape[0]}, {self.style_dim}] (one style per image), got "
                             f"{tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__}")
        if masks is not None:
            if self.w_hpf <= 0:
                raise ValueError("masks given but this generator has w_hpf=0 (no high-pass path); build it with "
                                 "w_hpf=1 (CelebA-HQ) or pass masks=None")
            if len(masks) != 2 or any(m.dim() != 4 or m.shape[:2] != (x.shape[0], 1) for m in masks):
                raise ValueError(f"masks must be two [{x.shape[0]}, 1, h, w] tensors (face mask, inner mask)")
        h = self.from_rgb(x)
        cache: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if masks is not None and h.shape[2] in HPF_SIZES:
                cache[h.shape[2]] = h  # input of the block at this size, [B, C, size, size]
            h = block(h)
        for block in self.decode:
            h = block(h, s)
            if masks is not None and h.shape[2] in HPF_SIZES:
                size = h.shape[2]
                mask = masks[0] if size == 32 else masks[1]
                mask = F.interpolate(mask.to(h.dtype), size=size, mode="bilinear", align_corners=False)
                h = h + self.hpf(mask * cache[size])
        return self.to_rgb(h)


class MappingNetwork(nn.Module):
    """F(z [B, latent_dim], y [B]) -> style [B, style_dim] from the head of each sample's domain."""

    def __init__(self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2,
                 hidden: int = MAPPING_HIDDEN) -> None:
        super().__init__()
        _check_positive(latent_dim=latent_dim, style_dim=style_dim, num_domains=num_domains, hidden=hidden)
        self.latent_dim = latent_dim
        self.num_domains = num_domains
        hid = hidden
        shared: list[nn.Module] = [nn.Linear(latent_dim, hid), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(hid, hid), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, hid), nn.ReLU(),
                          nn.Linear(hid, hid), nn.ReLU(), nn.Linear(hid, style_dim))
            for _ in range(num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be [B, {self.latent_dim}], got "
                             f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
        _check_labels(y, z.shape[0], self.num_domains)
        h = self.shared(z)  # [B, hidden]
        # All heads run (cheap, and batch-friendly); each sample keeps its own domain's style.
        return _pick_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)  # [B, D, style] -> [B, style]


def _base_dim(img_size: int, base_dim: int | None) -> int:
    """Width at full resolution: the official ``2**14 // img_size`` unless ``base_dim`` is given."""
    if base_dim is None:
        return 2**14 // img_size
    _check_positive(base_dim=base_dim)
    return base_dim


def _down_stack_layers(img_size: int, max_conv_dim: int, base_dim: int | None = None) -> tuple[list[nn.Module], int]:
    """Shared trunk of E and D, [B, 3, S, S] -> [B, C, 1, 1], as a layer list whose indices match the official
    ``nn.Sequential`` (0 conv3x3, 1..n ResBlks, n+1 LReLU, n+2 conv4x4, n+3 LReLU); returns (layers, C)."""
    dim_in = _base_dim(img_size, base_dim)
    layers: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(img_size)) - 2):  # S -> 4
        dim_out = min(dim_in * 2, max_conv_dim)
        layers.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    layers += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]  # 4x4 -> 1x1
    return layers, dim_out


class StyleEncoder(nn.Module):
    """E(x [B, 3, S, S], y [B]) -> style [B, style_dim] from the head of each sample's domain."""

    def __init__(self, img_size: int = 256, style_dim: int = 64, num_domains: int = 2,
                 max_conv_dim: int = 512, base_dim: int | None = None) -> None:
        super().__init__()
        _check_img_size(img_size, 8, "StyleEncoder")
        _check_positive(style_dim=style_dim, num_domains=num_domains, max_conv_dim=max_conv_dim)
        self.img_size = img_size
        self.num_domains = num_domains
        layers, dim_out = _down_stack_layers(img_size, max_conv_dim, base_dim)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.img_size)
        _check_labels(y, x.shape[0], self.num_domains)
        h = self.shared(x).flatten(1)  # [B, C]
        return _pick_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)


class Stargan2Discriminator(nn.Module):
    """D(x [B, 3, S, S], y [B]) -> logits [B]: the output channel of each sample's domain."""

    def __init__(self, img_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512,
                 base_dim: int | None = None) -> None:
        super().__init__()
        _check_img_size(img_size, 8, "Stargan2Discriminator")
        _check_positive(num_domains=num_domains, max_conv_dim=max_conv_dim)
        self.img_size = img_size
        self.num_domains = num_domains
        layers, dim_out = _down_stack_layers(img_size, max_conv_dim, base_dim)
        self.main = nn.Sequential(*layers, nn.Conv2d(dim_out, num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.img_size)
        _check_labels(y, x.shape[0], self.num_domains)
        return _pick_domain(self.main(x).flatten(1), y)  # [B, D] -> [B]
