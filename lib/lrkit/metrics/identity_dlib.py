"""Face identity preservation measured with dlib's 128-d face descriptor (works offline: the models ship in pip).

Metric ``identity_dlib`` (protocol fixed by the name):

1. Images ([N, 3, H, W] in [-1, 1]) are rounded to 8-bit RGB (``lrkit.data.ops.to_uint8``), so a tensor and the
   PNG folder it was saved to give identical numbers.
2. Face detection: ``dlib.get_frontal_face_detector()`` (HOG + linear SVM, 80x80 px sliding window), run with
   ``upsample`` doublings of the image and dlib's default threshold 0. If several faces are found, the detection
   with the highest detector score is used. Why ``upsample=1`` by default: the window only fires on faces of about
   80 px and larger, so at ``upsample=0`` the detector misses the ~60 px faces of 128 px aligned crops (FFHQ /
   CelebA-HQ style, face box about half the image). Each doubling halves the smallest detectable face (~40 px at
   1, ~20 px at 2) and costs ~4x detector time. Measured here on real photos (astronaut and Grace Hopper, cropped
   so the face box is ~45-50 % of the side, bicubic resize): detected at 128 px with upsample 0, 1 and 2; at 64 px
   only with upsample >= 1; at 48 px only with upsample 2; at 32 px not reliably at all. On
   ``skimage.data.lfw_subset()`` (100 real faces, 25 px grey, tightly cropped) bicubically enlarged to 128 px:
   92/100 detected at upsample 0, 1 and 2; enlarged to 64 px: 12/100 at upsample 0, 92/100 at upsample 1; the
   100 non-face patches of that set: 0 false detections. Use ``upsample=2`` for 64 px outputs.
3. 68 landmarks: ``dlib.shape_predictor`` with face_recognition_models' ``shape_predictor_68_face_landmarks.dat``
   (the iBUG-300W predictor), on the chosen detection box.
4. Descriptor: ``dlib.face_recognition_model_v1`` (``dlib_face_recognition_resnet_model_v1.dat``, a ResNet that
   maps a 150x150 aligned face chip to a 128-d vector); ``compute_face_descriptor(img, shape)`` with dlib's
   defaults: chip padding 0.25, no jittering.
5. Distance: Euclidean distance between the 128-d descriptors of an output and its paired source (and its paired
   real target, when given). dlib's face-verification threshold is 0.6 (distance < 0.6 = same person; 99.38 % on
   LFW according to dlib), hence ``identity_match_*``.
6. Aggregation: means over the pairs in which a face was found in *both* images; pairs with a failed detection
   are excluded and counted (``n_pairs_used``). ``face_detect_fail_rate`` is the fraction of *outputs* (the
   generator's images) in which no face was found; the reference sets' rates are reported separately
   (``face_detect_fail_rate_source`` / ``_target``). When no pair is usable the distances are NaN (with a
   warning) rather than an error, so a table still shows the failure rate.

Images are paired by index (folders: by sorted relative path); outputs and references may have different sizes.
dlib runs on the CPU only (``dlib.DLIB_USE_CUDA`` is False for the pip wheel); expect ~0.2 s per image on one core.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Iterator

import numpy as np

from lrkit import weights as W
from lrkit.data.ops import to_uint8
from lrkit.metrics.imagesource import ImageSource, iter_batches

DLIB_MATCH_THRESHOLD = 0.6  # dlib's documented same-person threshold for this descriptor
DESCRIPTOR_DIM = 128
N_LANDMARKS = 68

__all__ = [
    "DLIB_MATCH_THRESHOLD",
    "shape_predictor_68_path",
    "face_recognition_model_path",
    "dlib_weights",
    "detect_face",
    "iter_uint8_images",
    "face_descriptors",
    "identity_dlib",
    "weights_labels",
]


# ----------------------------------------------------------------------------------------------------------------
# Model files (registered in lrkit.weights as dlib_shape_predictor_68 / dlib_face_recognition)
# ----------------------------------------------------------------------------------------------------------------

def _frm_location(function_name: str) -> str:
    # face_recognition_models 0.3.0 imports pkg_resources at import time, which newer setuptools flag with a
    # deprecation warning; the warning is about that package, not about anything a user of lrkit can change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition_models
    return getattr(face_recognition_models, function_name)()


def shape_predictor_68_path() -> str:
    """Path of ``shape_predictor_68_face_landmarks.dat`` shipped by ``face_recognition_models``."""
    return _frm_location("pose_predictor_model_location")


def face_recognition_model_path() -> str:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` shipped by ``face_recognition_models``."""
    return _frm_location("face_recognition_model_location")


def dlib_weights(which: str, override: str | os.PathLike | None = None) -> W.ResolvedWeights:
    """Resolve a dlib model file through the weight registry (``which``: "shape_predictor" or "recognition").

    The returned object's ``.label`` is how results should cite the file ("unverified weights ..." for an override
    whose sha256 is not the shipped one).
    """
    names = {"shape_predictor": "dlib_shape_predictor_68", "recognition": "dlib_face_recognition"}
    if which not in names:
        raise ValueError(f"unknown dlib model {which!r}; use one of {sorted(names)}")
    return W.resolve(names[which], override)


@functools.lru_cache(maxsize=1)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=4)
def _shape_predictor(path: str):
    import dlib

    try:
        return dlib.shape_predictor(path)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a dlib shape_predictor model file ({exc})") from None


@functools.lru_cache(maxsize=4)
def _recognizer(path: str):
    import dlib

    try:
        return dlib.face_recognition_model_v1(path)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a dlib face_recognition_model_v1 file ({exc})") from None


def _resolved_path(which: str, override: str | os.PathLike | None) -> str:
    res = dlib_weights(which, override)
    if res.verified is None:
        warnings.warn(f"dlib {which} model: using {res.label}; values are not comparable with those of the shipped "
                      "face_recognition_models files", UserWarning, stacklevel=4)
    return str(res.path)


def _load_shape_predictor(override: str | os.PathLike | None):
    return _shape_predictor(_resolved_path("shape_predictor", override))


def _load_recognizer(override: str | os.PathLike | None):
    return _recognizer(_resolved_path("recognition", override))


# ----------------------------------------------------------------------------------------------------------------
# Detection and image iteration
# ----------------------------------------------------------------------------------------------------------------

def _check_upsample(upsample: int) -> int:
    if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) or not 0 <= upsample <= 4:
        raise ValueError(f"upsample must be an integer from 0 to 4 (dlib detector image doublings), got {upsample!r}")
    return int(upsample)


def detect_face(image: np.ndarray, upsample: int = 1):
    """The highest-scoring frontal face in one uint8 RGB image [H, W, 3] as a ``dlib.rectangle``, or None."""
    upsample = _check_upsample(upsample)
    rects, scores, _ = _detector().run(np.ascontiguousarray(image), upsample, 0.0)
    if len(rects) == 0:
        return None
    return rects[int(np.argmax(scores))]


def iter_uint8_images(src: ImageSource, batch_size: int = 32, what: str = "images") -> Iterator[np.ndarray]:
    """Yield each image of a source as a contiguous uint8 RGB array [H, W, 3] (one pass over the source)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for batch in iter_batches(src, batch_size, what):
        for img in to_uint8(batch):  # [B, H, W, 3] uint8
            yield np.ascontiguousarray(img)


# ----------------------------------------------------------------------------------------------------------------
# Descriptors and the metric
# ----------------------------------------------------------------------------------------------------------------

def face_descriptors(
    images: ImageSource,
    *,
    upsample: int = 1,
    batch_size: int = 32,
    weights: str | os.PathLike | None = None,
    predictor_weights: str | os.PathLike | None = None,
    what: str = "images",
) -> np.ndarray:
    """dlib 128-d face descriptors, float64 [N, 128]; a row is all-NaN where no face was detected.

    Steps 1-4 of the module's protocol. ``weights`` overrides the recognition model file, ``predictor_weights``
    the 68-point shape predictor file (both resolved through :mod:`lrkit.weights`).
    """
    upsample = _check_upsample(upsample)
    predictor = _load_shape_predictor(predictor_weights)
    recognizer = _load_recognizer(weights)
    rows = []
    for img in iter_uint8_images(images, batch_size, what):
        rect = detect_face(img, upsample)
        if rect is None:
            rows.append(np.full(DESCRIPTOR_DIM, np.nan))
            continue
        shape = predictor(img, rect)
        rows.append(np.asarray(recognizer.compute_face_descriptor(img, shape), dtype=np.float64))
    return np.stack(rows)


def _pair_stats(out_desc: np.ndarray, ref_desc: np.ndarray) -> tuple[float, float, int]:
    """(mean distance, fraction under the threshold, number of usable pairs) of two [N, 128] descriptor arrays."""
    ok = ~(np.isnan(out_desc).any(1) | np.isnan(ref_desc).any(1))  # [N] both faces found
    n = int(ok.sum())
    if n == 0:
        return math.nan, math.nan, 0
    dist = np.linalg.norm(out_desc[ok] - ref_desc[ok], axis=1)  # [n]
    return float(dist.mean()), float((dist < DLIB_MATCH_THRESHOLD).mean()), n


def _fail_rate(desc: np.ndarray) -> float:
    return float(np.isnan(desc).any(1).mean())


def identity_dlib(
    outputs: ImageSource,
    sources: ImageSource,
    targets: ImageSource | None = None,
    *,
    upsample: int = 1,
    batch_size: int = 32,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
    predictor_weights: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Identity preservation of ``outputs`` w.r.t. paired ``sources`` (and real ``targets``) by dlib descriptors.

    Returns (see the module docstring for the exact protocol):

    * ``identity_dist_source``: mean descriptor distance output <-> source over usable pairs (lower = same person);
    * ``identity_match_source``: fraction of usable pairs with distance < 0.6 (dlib's same-person threshold);
    * ``identity_dist_target`` / ``identity_match_target`` / ``n_pairs_used_target``: the same against ``targets``
      (only when given);
    * ``face_detect_fail_rate``: fraction of outputs without a detected face;
      ``face_detect_fail_rate_source`` (``_target``): the same for the references;
    * ``n_pairs_used``: output/source pairs with a face in both; ``n_images``: number of outputs.

    ``device`` is accepted for a uniform metric signature; dlib's pip build runs on the CPU only.
    """
    del device  # uniform metric signature; dlib's pip build runs on the CPU only
    out_d = face_descriptors(outputs, upsample=upsample, batch_size=batch_size, weights=weights,
                             predictor_weights=predictor_weights, what="outputs")
    src_d = face_descriptors(sources, upsample=upsample, batch_size=batch_size, weights=weights,
                             predictor_weights=predictor_weights, what="sources")
    if len(src_d) != len(out_d):
        raise ValueError(f"identity_dlib pairs outputs with sources by index, but there are {len(out_d)} outputs "
                         f"and {len(src_d)} sources; pass the same number of images in the same order")
    dist, match, n = _pair_stats(out_d, src_d)
    result: dict[str, float] = {
        "identity_dist_source": dist,
        "identity_match_source": match,
        "face_detect_fail_rate": _fail_rate(out_d),
        "face_detect_fail_rate_source": _fail_rate(src_d),
        "n_pairs_used": n,
        "n_images": len(out_d),
    }
    if targets is not None:
        tgt_d = face_descriptors(targets, upsample=upsample, batch_size=batch_size, weights=weights,
                                 predictor_weights=predictor_weights, what="targets")
        if len(tgt_d) != len(out_d):
            raise ValueError(f"identity_dlib pairs outputs with targets by index, but there are {len(out_d)} "
                             f"outputs and {len(tgt_d)} targets; pass the same number of images in the same order")
        dist_t, match_t, n_t = _pair_stats(out_d, tgt_d)
        result.update({
            "identity_dist_target": dist_t,
            "identity_match_target": match_t,
            "face_detect_fail_rate_target": _fail_rate(tgt_d),
            "n_pairs_used_target": n_t,
        })
    if n == 0:
        warnings.warn(
            f"identity_dlib: no output/source pair has a detected face in both images (output failure rate "
            f"{result['face_detect_fail_rate']:.2f}, source failure rate {result['face_detect_fail_rate_source']:.2f}"
            f"); distances are NaN. Faces must be frontal and roughly >= {80 >> upsample} px wide for "
            f"upsample={upsample}; try a larger upsample for small images.",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def weights_labels(weights: str | os.PathLike | None = None,
                   predictor_weights: str | os.PathLike | None = None) -> dict[str, str]:
    """How results cite the two dlib model files (for run manifests): registry name -> ``ResolvedWeights.label``."""
    return {
        "dlib_face_recognition": dlib_weights("recognition", weights).label,
        "dlib_shape_predictor_68": dlib_weights("shape_predictor", predictor_weights).label,
    }
