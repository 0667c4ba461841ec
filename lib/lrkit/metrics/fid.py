"""Fréchet Inception Distance under two named protocols: ``fid_pytorchfid`` and ``fid_starganv2``.

The two differ in network, weights, resizing and normalization, so their values are not comparable with each
other; a table cites the metric by its name. Both:

* evaluate images as **8-bit images**: folders are read as stored (``PIL.Image.open(f).convert("RGB")``, as both
  reference implementations read them); a tensor or batch iterable in [-1, 1] is first rounded to 8-bit levels
  ``k = round((clamp(x, -1, 1) + 1) * 127.5)`` (the rounding of :func:`lrkit.data.ops.to_uint8`), i.e. evaluated as
  the PNG it would be saved as. So a tensor and the folder of its saved PNGs give the same FID (and share one
  feature-cache entry); both reference pipelines evaluate saved files too;
* extract 2048-d pool features in fp32 (on CUDA, TF32 is switched off for the duration), batched, in
  ``torch.inference_mode``, channels-last, with each BatchNorm folded into its convolution (the same function in one
  pass; features move by ~1e-7 relative), and no per-image work in Python beyond file decoding and PIL resizing,
  which run in a thread pool one batch ahead of the network;
* fit ``(mu, sigma)`` in float64 (:func:`lrkit.metrics.frechet.feature_stats`, pytorch-fid's ``np.mean`` /
  ``np.cov``) and report :func:`lrkit.metrics.frechet.frechet_distance` (``method="eigh"``: pytorch-fid's value to
  ~1e-15 relative on N > D statistics, 8x faster than ``scipy.linalg.sqrtm``);
* read weights only through :func:`lrkit.weights.resolve`; a non-official file is "unverified weights": a warning
  names it with its sha256, and ``return_weights=True`` returns the :class:`~lrkit.weights.ResolvedWeights`
  (``.label``) next to the result dict, whose values stay plain numbers;
* cache ``(mu, sigma, n)`` per image set (:mod:`lrkit.metrics.featcache`, keyed on content, extractor, protocol
  version and weights sha256) unless ``cache=False``;
* need more images than feature dimensions (N > 2048) for a non-singular covariance. Fewer raise a ValueError
  unless ``allow_singular=True``; the result then carries ``singular_covariance: 1.0`` (it is always present,
  ``0.0`` when both covariances are full-rank).

Folders are listed by :func:`lrkit.metrics.imagesource.list_images` (recursive, extensions .jpg .jpeg .png .bmp
.webp .tif .tiff in any case). pytorch-fid's CLI reads only the folder's top level (lower-case extensions, plus
.pgm/.ppm); StarGAN v2 reads png/jpg/jpeg/JPG recursively. Point the metrics at folders holding just the images.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from lrkit import weights as weights_mod
from lrkit.metrics.featcache import cached_stats
from lrkit.metrics.frechet import check_sample_size, feature_stats, frechet_distance
from lrkit.metrics.imagesource import ImageSource, iter_batches, list_images

__all__ = [
    "PROTOCOLS",
    "fid_pytorchfid",
    "fid_starganv2",
    "fid_starganv2_tasks",
    "inception_features",
    "inception_stats",
    "make_random_weights",
]

FEATURE_DIM = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STARGANV2_IMG_SIZE = 256  # StarGAN v2 eval loader: transforms.Resize([img_size, img_size]) first, img_size=256
INCEPTION_SIZE = 299

# extractor/version enter the feature-cache key: bump "version" whenever a protocol's preprocessing changes.
PROTOCOLS: dict[str, dict[str, object]] = {
    "fid_pytorchfid": {"extractor": "pytorchfid_InceptionV3_block3_pool3", "version": 1,
                       "weights": "pytorchfid_inception"},
    "fid_starganv2": {"extractor": "torchvision_inception_v3_avgpool_starganv2", "version": 1,
                      "weights": "torchvision_inception_v3"},
}

_MODEL_LOCK = threading.Lock()
_MODELS: OrderedDict[tuple, nn.Module] = OrderedDict()
_MAX_MODELS = 2  # an Inception is ~100 MB; keep the last two (one per protocol) for repeated calls


# ---------------------------------------------------------------------------------------------------- models


def _load_state_dict(resolved: weights_mod.ResolvedWeights) -> dict:
    try:
        state = torch.load(resolved.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise ValueError(f"could not read weight file {resolved.path} ({exc}); pass a torch state_dict file "
                         f"({weights_mod.get_spec(resolved.name).filename})") from None
    if not isinstance(state, dict):
        raise ValueError(f"weight file {resolved.path} holds a {type(state).__name__}, not a state_dict")
    return state


def _wrong_file(resolved: weights_mod.ResolvedWeights, exc: Exception) -> ValueError:
    spec = weights_mod.get_spec(resolved.name)
    return ValueError(f"weight file {resolved.path} does not fit the network of {spec.used_by[0]} "
                      f"({spec.description}; official file {spec.filename}): {str(exc).splitlines()[0]}")


def _build_pytorchfid(resolved: weights_mod.ResolvedWeights) -> nn.Module:
    """pytorch-fid's own ``InceptionV3([3], resize_input=True, normalize_input=True)`` with ``resolved``'s weights.

    Its constructor builds ``fid_inception_v3()``, which always fetches the official file through
    ``load_state_dict_from_url`` and loads it with ``load_state_dict`` (strict). We let it run unchanged except
    that, for the duration of the constructor, that loader returns the state_dict read from ``resolved.path``:
    no download, pytorch-fid's architecture and its own strict key check.
    """
    import pytorch_fid.inception as pfi

    state = _load_state_dict(resolved)

    def from_resolved_file(url, *args, **kwargs):
        if url != pfi.FID_WEIGHTS_URL:  # a pytorch-fid release that loads something else: do not guess
            raise RuntimeError(f"unexpected weight URL {url} requested by pytorch_fid.inception")
        return state

    with _MODEL_LOCK:  # the patch is process-global; no other thread may build at the same time
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = from_resolved_file
        try:
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
                                    resize_input=True, normalize_input=True)
        except RuntimeError as exc:
            if "state_dict" in str(exc) or "size mismatch" in str(exc):
                raise _wrong_file(resolved, exc) from None
            raise
        finally:
            pfi.load_state_dict_from_url = original
    return model


def _build_starganv2(resolved: weights_mod.ResolvedWeights) -> nn.Module:
    """torchvision Inception-v3 as StarGAN v2's evaluation uses it: pooled 2048-d features of ImageNet weights.

    StarGAN v2 builds ``inception_v3(pretrained=True)`` -- which sets ``transform_input=True`` -- but wraps only its
    layers (Conv2d_1a_3x3 ... Mixed_7c, AdaptiveAvgPool2d) and calls them directly, so ``Inception3.forward`` and its
    ``_transform_input`` never run. (That step re-maps an ImageNet-normalized input to the ``(x - 0.5) / 0.5``
    scaling the ported Google weights were trained with.) In StarGAN v2's protocol the ImageNet-normalized image
    therefore enters Conv2d_1a_3x3 as is, and so it does here. The official file (it includes the AuxLogits keys)
    is loaded strictly into ``inception_v3(weights=None, aux_logits=True, init_weights=False)``; then
    ``transform_input=False``, ``fc = Identity`` and the auxiliary head dropped, so ``forward`` in eval mode runs
    exactly those layers (dropout is the identity in eval) and returns the pooled features [B, 2048].
    """
    import torchvision

    state = _load_state_dict(resolved)
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise _wrong_file(resolved, exc) from None
    model.transform_input = False
    model.fc = nn.Identity()
    model.aux_logits = False
    model.AuxLogits = None
    return model


def _fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it (inference only; in place).

    All convolutions of both Inception variants sit in torchvision's ``BasicConv2d`` (conv without bias -> BN(eps=
    1e-3) -> ReLU). In eval mode BN is the affine map ``y = (x - mean) * s + beta`` with ``s = gamma /
    sqrt(var + eps)``, so ``conv_w * s`` with bias ``beta - mean * s`` computes the same function in one pass
    instead of two over every activation map (~25% faster on CPU). Scales are formed in float64 and rounded once
    to float32; features move by ~1e-7 relative, far below what the metrics resolve.
    """
    from torchvision.models.inception import BasicConv2d

    for module in model.modules():
        if not isinstance(module, BasicConv2d) or not isinstance(module.bn, nn.BatchNorm2d):
            continue
        conv, bn = module.conv, module.bn
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)  # [C_out]
        bias = bn.bias.double() - bn.running_mean.double() * scale
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        conv.weight = nn.Parameter((conv.weight.double() * scale.view(-1, 1, 1, 1)).float(), requires_grad=False)
        conv.bias = nn.Parameter(bias.float(), requires_grad=False)
        module.bn = nn.Identity()
    return model


def _get_model(protocol: str, resolved: weights_mod.ResolvedWeights, device: torch.device) -> nn.Module:
    key = (protocol, str(resolved.path), resolved.sha256, str(device))
    with _MODEL_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    build = _build_pytorchfid if protocol == "fid_pytorchfid" else _build_starganv2
    model = _fold_batchnorm(build(resolved).eval().requires_grad_(False))
    # channels-last: oneDNN (CPU) and cuDNN (GPU) run these convolutions markedly faster in NHWC layout; the
    # arithmetic is the same fp32 convolution (measured differences ~1e-7 relative).
    model = model.to(device=device, memory_format=torch.channels_last)
    with _MODEL_LOCK:
        _MODELS[key] = model
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)
    return model


@contextlib.contextmanager
def _exact_fp32(device: torch.device):
    """On CUDA, switch TF32 off for convolutions and matmuls while features are extracted (exact fp32), then
    restore the caller's settings. PyTorch's default runs fp32 convolutions in TF32 (10-bit mantissa) on Ampere
    and newer GPUs, which would make GPU features differ from CPU ones far beyond fp32 rounding."""
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    new_api = conv is not None and hasattr(conv, "fp32_precision")
    benchmark = torch.backends.cudnn.benchmark
    if new_api:  # PyTorch >= 2.9; the legacy allow_tf32 flags must not be mixed with it
        saved = (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    else:
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        if new_api:
            conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        else:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # one input size per set: pick the fastest fp32 algorithm once
        yield
    finally:
        if new_api:
            conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved
        else:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
        torch.backends.cudnn.benchmark = benchmark


# ------------------------------------------------------------------------------------------- 8-bit batches


def _levels_u8(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> uint8 levels, rounding exactly as ``lrkit.data.ops.to_uint8`` (half to even)."""
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.uint8)


def _read_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")  # both reference implementations: Image.open(f).convert('RGB')


def _resize_starganv2(im: Image.Image) -> np.ndarray:
    """StarGAN v2 eval transform on a PIL image: Resize([256, 256]) then Resize([299, 299]), both PIL bilinear.

    ``transforms.Resize`` on a PIL image calls ``img.resize((w, h), BILINEAR)`` (PIL's bilinear filter, which
    widens its support when shrinking, i.e. antialiases) and returns the image unchanged when it already has the
    size. The output stays 8-bit after each step, as in the reference. Returns [299, 299, 3] uint8.
    """
    for size in (STARGANV2_IMG_SIZE, INCEPTION_SIZE):
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _file_pytorchfid(path: Path) -> np.ndarray:
    return np.asarray(_read_rgb(path), dtype=np.uint8)  # [H, W, 3]


def _file_starganv2(path: Path) -> np.ndarray:
    return _resize_starganv2(_read_rgb(path))


def _stack_hwc(arrays: list[np.ndarray]) -> torch.Tensor:
    # [B, H, W, 3] uint8 -> permuted view [B, 3, H, W] whose memory is already channels-last (no copy).
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def _pool(n_items: int) -> ThreadPoolExecutor:
    # PIL releases the GIL while decoding and resizing, so threads overlap those with each other and with the
    # network (which runs in the main thread). On a small CPU box a couple of threads suffice.
    return ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1, n_items)))


def _u8_batches(src: ImageSource, protocol: str, batch_size: int, what: str) -> Iterator[torch.Tensor]:
    """uint8 batches [B, 3, H, W] ready for the protocol's network input step (on CPU, channels-last memory).

    fid_pytorchfid: images at their own size (the network input step resizes); all images of a set must share it.
    fid_starganv2: images already resized 256 -> 299 with PIL (any input sizes allowed, as in StarGAN v2).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(src, (str, Path)):
        yield from _folder_u8_batches(Path(src), protocol, batch_size, what)
        return
    pool = None
    try:
        for batch in iter_batches(src, batch_size, what):  # validates shape, NaN/Inf, size, emptiness
            u8 = _levels_u8(batch).cpu()
            if protocol == "fid_pytorchfid":
                yield u8.contiguous(memory_format=torch.channels_last)
                continue
            hwc = u8.permute(0, 2, 3, 1).numpy()  # [B, H, W, 3]
            pool = pool or _pool(batch_size)
            yield _stack_hwc(list(pool.map(lambda a: _resize_starganv2(Image.fromarray(a, "RGB")), hwc)))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _folder_u8_batches(folder: Path, protocol: str, batch_size: int, what: str) -> Iterator[torch.Tensor]:
    files = list_images(folder)
    load = _file_pytorchfid if protocol == "fid_pytorchfid" else _file_starganv2

    def read(path: Path) -> np.ndarray:
        try:
            return load(path)
        except Exception as exc:  # noqa: BLE001 - name the file whatever the decoder raised
            raise ValueError(f"{what}: cannot read image {path}: {exc}") from None

    chunks = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    pool = _pool(len(files))
    try:
        pending = [pool.submit(read, p) for p in chunks[0]]
        size = None
        for i in range(len(chunks)):
            # Decode the next batch in the pool while the network works on this one.
            ahead = [pool.submit(read, p) for p in chunks[i + 1]] if i + 1 < len(chunks) else []
            arrays = [f.result() for f in pending]
            if size is None:
                size = arrays[0].shape
            odd = [(p, a.shape) for p, a in zip(chunks[i], arrays) if a.shape != size]
            if odd:
                raise ValueError(
                    f"{what}: images of different sizes in {folder}: {odd[0][0].name} is {odd[0][1][1]}x"
                    f"{odd[0][1][0]} but {files[0].name} is {size[1]}x{size[0]} (W x H). {protocol} needs one size "
                    "per set; resize the images to one size first")
            yield _stack_hwc(arrays)
            pending = ahead
    finally:
        pool.shutdown(cancel_futures=True)


def _network_input(u8: torch.Tensor, protocol: str, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the float32 tensor the protocol feeds its network (on ``device``, channels-last)."""
    if device.type == "cuda":
        u8 = u8.pin_memory().to(device, non_blocking=True)
    else:
        u8 = u8.to(device)
    # torchvision ToTensor: uint8 -> float32 / 255 (pytorch-fid's and StarGAN v2's loaders both use it).
    x = u8.to(torch.float32).div_(255).contiguous(memory_format=torch.channels_last)
    if protocol == "fid_starganv2":
        # transforms.Normalize(mean, std): (x - mean) / std per channel, in float32.
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        x = x.sub_(mean).div_(std)
    # fid_pytorchfid: x stays in [0, 1]; pytorch-fid's InceptionV3.forward resizes it to 299x299 with
    # F.interpolate(mode="bilinear", align_corners=False) and maps it to 2x - 1 itself.
    return x


def inception_features(src: ImageSource, protocol: str = "fid_pytorchfid", *,
                       weights: str | os.PathLike | None = None, batch_size: int = 50,
                       device: str | torch.device = "cpu", what: str = "images") -> np.ndarray:
    """The protocol's pool features of every image of ``src``: float32 array [N, 2048] (order of the source)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; use one of {list(PROTOCOLS)}")
    resolved = weights_mod.resolve(str(PROTOCOLS[protocol]["weights"]), weights)
    return _features(src, protocol, resolved, batch_size, torch.device(device), what)


def _features(src, protocol, resolved, batch_size, device, what) -> np.ndarray:
    model = None
    feats = []
    with torch.inference_mode(), _exact_fp32(device):
        for u8 in _u8_batches(src, protocol, batch_size, what):
            if model is None:  # built on first use, so cache hits and errors in the data cost no model
                model = _get_model(protocol, resolved, device)
            out = model(_network_input(u8, protocol, device))
            out = out[0] if protocol == "fid_pytorchfid" else out  # pytorch-fid returns a list of block outputs
            feats.append(out.reshape(out.shape[0], -1))  # [B, 2048, 1, 1] or [B, 2048] -> [B, 2048]; stays on device
    return torch.cat(feats).to("cpu", torch.float32).numpy()


# ----------------------------------------------------------------------------------------------- statistics


def _check_weights(resolved: weights_mod.ResolvedWeights, metric: str) -> None:
    if resolved.verified is None:
        warnings.warn(f"{metric} uses {resolved.label}: values are not comparable with published ones",
                      UserWarning, stacklevel=4)


def _stats(src, protocol, resolved, batch_size, device, cache, what) -> tuple[np.ndarray, np.ndarray, int]:
    spec = PROTOCOLS[protocol]
    key_parts = {"extractor": spec["extractor"], "version": spec["version"], "weights_sha256": resolved.sha256}

    def compute(s):
        f = _features(s, protocol, resolved, batch_size, torch.device(device), what)
        # allow_singular here: the sample-size verdict is the caller's (it depends on its allow_singular), and
        # cached statistics must not depend on it.
        mu, sigma = feature_stats(f, allow_singular=True, what=what)
        return mu, sigma, len(f)

    if cache:
        mu, sigma, n, _hit = cached_stats(src, key_parts, compute)
    else:
        mu, sigma, n = compute(src)
    return mu, sigma, n


def inception_stats(src: ImageSource, protocol: str = "fid_pytorchfid", *,
                    weights: str | os.PathLike | None = None, batch_size: int = 50,
                    device: str | torch.device = "cpu", cache: bool = True,
                    what: str = "images") -> tuple[np.ndarray, np.ndarray, int]:
    """``(mu [2048], sigma [2048, 2048], n)`` of ``src`` under ``protocol`` (float64; cached unless cache=False)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; use one of {list(PROTOCOLS)}")
    resolved = weights_mod.resolve(str(PROTOCOLS[protocol]["weights"]), weights)
    return _stats(src, protocol, resolved, batch_size, device, cache, what)


def _fid(protocol, real, fake, weights, batch_size, device, cache, allow_singular, return_weights,
         stats_memo: dict | None = None):
    resolved = weights_mod.resolve(str(PROTOCOLS[protocol]["weights"]), weights)
    _check_weights(resolved, protocol)
    results = []
    for src, what in ((real, "real images"), (fake, "fake images")):
        memo_key = (str(Path(src).resolve()) if isinstance(src, (str, Path)) else id(src))
        if stats_memo is not None and memo_key in stats_memo:
            results.append(stats_memo[memo_key])
            continue
        st = _stats(src, protocol, resolved, batch_size, device, cache, what)
        if stats_memo is not None:
            stats_memo[memo_key] = st
        results.append(st)
    (mu1, s1, n1), (mu2, s2, n2) = results
    singular = check_sample_size(n1, mu1.shape[0], "real images", allow_singular)
    singular |= check_sample_size(n2, mu2.shape[0], "fake images", allow_singular)
    out = {
        protocol: frechet_distance(mu1, s1, mu2, s2),
        "n_real": int(n1),
        "n_fake": int(n2),
        "singular_covariance": 1.0 if singular else 0.0,
    }
    return (out, resolved) if return_weights else out


def fid_pytorchfid(real: ImageSource, fake: ImageSource, *, weights: str | os.PathLike | None = None,
                   batch_size: int = 50, device: str | torch.device = "cpu", cache: bool = True,
                   allow_singular: bool = False, return_weights: bool = False):
    """FID with pytorch-fid's protocol (pytorch-fid 0.3.0, the field's reference implementation).

    Network: pytorch-fid's ``InceptionV3([3], resize_input=True, normalize_input=True)`` -- its port of the TF
    Inception graph of 2015-12-05 (``fid_inception_v3``: FID-specific blocks, 1008 classes) -- with the weight file
    ``pt_inception-2015-12-05-6726825d.pth`` (registry name ``pytorchfid_inception``; ``weights=`` overrides).
    Features: block 3 output, the final average pool, 2048-d.
    Preprocessing: 8-bit RGB image -> float32 ``/255`` in [0, 1] -> ``F.interpolate(size=(299, 299),
    mode="bilinear", align_corners=False)`` (no antialias; applied whatever the input size, 64 and 128 px included)
    -> ``2x - 1``. Tensors in [-1, 1] are rounded to 8-bit levels first (module docstring).
    Aggregation: float64 mean and unbiased covariance per set, Fréchet distance between the two Gaussians.
    Differences from the CLI ``python -m pytorch_fid``: subfolders are included, and the Fréchet step uses the
    symmetric-eigen route (equal to ~1e-15 relative when N > 2048). With the same images the value equals
    pytorch-fid's own functions (tested to <= 1e-4 relative; measured ~1e-6 and closer).

    Returns ``{"fid_pytorchfid", "n_real", "n_fake", "singular_covariance"}``; with ``return_weights=True``
    ``(that dict, ResolvedWeights)`` -- ``.label`` says which weight file was used and whether it is verified.
    """
    return _fid("fid_pytorchfid", real, fake, weights, batch_size, device, cache, allow_singular, return_weights)


def fid_starganv2(real: ImageSource, fake: ImageSource, *, weights: str | os.PathLike | None = None,
                  batch_size: int = 50, device: str | torch.device = "cpu", cache: bool = True,
                  allow_singular: bool = False, return_weights: bool = False):
    """FID of one task with StarGAN v2's protocol (clovaai/stargan-v2, ``metrics/fid.py`` + ``get_eval_loader``).

    Network: torchvision ``inception_v3`` with its ImageNet weights (``inception_v3_google-0cc3c7bd.pth``,
    registry name ``torchvision_inception_v3``), the layers Conv2d_1a_3x3 ... Mixed_7c + adaptive average pool, eval
    mode; output the pooled 2048-d features (``fc`` replaced by the identity). ``transform_input`` is **off**:
    StarGAN v2 calls those layers directly, so torchvision's input re-mapping never runs (see ``_build_starganv2``).
    Preprocessing, per image (folders and tensors alike): 8-bit RGB PIL image -> ``Resize([256, 256])`` -> ``Resize(
    [299, 299])`` (both torchvision ``transforms.Resize`` on PIL images = PIL bilinear, 8-bit output after each) ->
    ``ToTensor`` (/255) -> ``Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])``. A tensor in
    [-1, 1] is rounded to 8-bit and converted to PIL first, exactly as if StarGAN v2 had saved it as a PNG (its
    evaluation saves every generated image and reads the files back), so tensor and folder give the same value.
    Real set: StarGAN v2 uses the **training** images of the target domain (``train_img_dir/<target domain>``),
    fake set: the images generated for the task. Aggregation: float64 mean and covariance, Fréchet distance
    (StarGAN v2 keeps the mean in float32 and has no eps retry; immaterial for N > 2048).

    Returns ``{"fid_starganv2", "n_real", "n_fake", "singular_covariance"}``; ``return_weights`` as in
    :func:`fid_pytorchfid`. Average over tasks with :func:`fid_starganv2_tasks`.
    """
    return _fid("fid_starganv2", real, fake, weights, batch_size, device, cache, allow_singular, return_weights)


def fid_starganv2_tasks(tasks: dict[str, tuple[ImageSource, ImageSource]], *,
                        weights: str | os.PathLike | None = None, batch_size: int = 50,
                        device: str | torch.device = "cpu", cache: bool = True, allow_singular: bool = False,
                        return_weights: bool = False):
    """StarGAN v2's reported FID: :func:`fid_starganv2` per task, then the plain mean over tasks.

    ``tasks`` maps a task name (StarGAN v2 names them ``<source>2<target>``, e.g. ``cat2dog``) to ``(real, fake)``,
    real being the target domain's training images. Returns ``{"fid_starganv2": mean, "fid_starganv2/<task>":
    value, ..., "n_tasks", "singular_covariance"}`` (the flag is 1.0 if any task's covariance is singular). A real
    set shared by several tasks (same folder path or same object) is processed once per call even without cache.
    """
    if not tasks:
        raise ValueError("fid_starganv2_tasks: no tasks given; pass {task_name: (real_images, fake_images)}")
    out: dict[str, float | int] = {}
    memo: dict = {}
    mean = 0.0
    singular = 0.0
    resolved = None
    for name, pair in tasks.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"task {name!r}: expected a (real, fake) pair of image sources")
        with warnings.catch_warnings():
            if resolved is not None:  # warn about unverified weights once, not once per task
                warnings.simplefilter("ignore", UserWarning)
            res, resolved = _fid("fid_starganv2", pair[0], pair[1], weights, batch_size, device, cache,
                                 allow_singular, True, stats_memo=memo)
        out[f"fid_starganv2/{name}"] = res["fid_starganv2"]
        mean += res["fid_starganv2"] / len(tasks)  # StarGAN v2: fid_mean += value / len(fid_values)
        singular = max(singular, res["singular_covariance"])
    out = {"fid_starganv2": float(mean), **out, "n_tasks": len(tasks), "singular_covariance": singular}
    return (out, resolved) if return_weights else out


# ------------------------------------------------------------------------------------- random weight files


def make_random_weights(protocol: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a seeded random state_dict of the exact architecture ``protocol`` loads to ``path``; return ``path``.

    For tests, benchmarks and offline dry runs only: passed as ``weights=path`` it runs every real code path and
    is reported as "unverified weights". Conv weights are He-normal (std sqrt(2 / fan_in)) so activations keep
    their scale through the ~90 layers; BatchNorm affine parameters and running statistics are perturbed around
    (1, 0) so the normalization arithmetic is exercised; linear layers get std 0.01.
    pytorch-fid: the ``fid_inception_v3`` layout (torchvision Inception3 with 1008 classes, no aux head, and its
    FIDInceptionA/C/E_1/E_2 blocks), i.e. the keys of ``pt_inception-2015-12-05-6726825d.pth``. StarGAN v2:
    torchvision ``inception_v3(aux_logits=True)`` with 1000 classes, the keys of ``inception_v3_google-*.pth``.
    """
    import torchvision

    if protocol == "fid_pytorchfid":
        import pytorch_fid.inception as pfi

        # The same assembly fid_inception_v3() performs before it loads its weights; a divergence from the
        # installed pytorch-fid would surface as a strict load_state_dict error when the file is used.
        net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
        net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pfi.FIDInceptionE_1(1280)
        net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    elif protocol == "fid_starganv2":
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    else:
        raise ValueError(f"unknown FID protocol {protocol!r}; use one of {list(PROTOCOLS)}")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(1 + 0.1 * torch.randn(c, generator=gen))
                module.bias.copy_(0.05 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.05 * torch.randn(c, generator=gen))
                module.running_var.copy_(1 + 0.2 * torch.rand(c, generator=gen))
            elif isinstance(module, nn.Linear):
                module.weight.copy_(0.01 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.01 * torch.randn(module.bias.shape, generator=gen))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path
