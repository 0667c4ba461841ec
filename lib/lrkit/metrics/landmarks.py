"""SR-NAM's landmark-heatmap metric (Lioutas, SR-NAM, Sec. 4.4, eq. 7), with dlib's 68 landmarks.

The paper proposes (and does not evaluate) a metric comparing the facial landmark heatmaps of a generated HR image
with those of the original HR image::

    heatmap_metric = 1/N * sum_{n=1..N} sum_{i,j} (M^_{i,j}^n - M_{i,j}^n)^2                         (eq. 7)

where ``M^n`` is the heatmap of the n-th landmark found by a facial landmark localization algorithm on the
generated image and ``M^n`` the one found on the original HR image; ``N`` is the number of landmarks. The paper
names FAN (Bulat & Tzimiropoulos 2017, which outputs 64x64 heatmaps) only as an example ("such as"); it gives no
heatmap size or width. lrkit's protocol for the name ``landmark_heatmap``:

1. Images -> 8-bit RGB -> dlib frontal face detector (``upsample`` doublings, highest-scoring face) -> dlib's
   68-point shape predictor (``shape_predictor_68_face_landmarks.dat`` from face_recognition_models); exactly the
   detection steps of :mod:`lrkit.metrics.identity_dlib`. Landmarks are (x, y) pixel coordinates, pixel centres at
   integers (dlib returns integer points). ``N = 68``.
2. Each landmark is rendered as an unnormalized isotropic Gaussian heatmap, peak value 1 at the landmark::

       M^n_{i,j} = exp(-((j - x'_n)^2 + (i - y'_n)^2) / (2 sigma^2)),    i (row), j (column) = 0 .. R-1

   on an ``R x R`` grid (``resolution``, default 64 as FAN's heatmaps) covering the whole image; the landmark is
   mapped from image pixels to grid pixels with the pixel-centre convention ``x' = (x + 0.5) * R / W - 0.5``
   (``y'`` with ``H``), so images of different sizes are comparable. ``sigma`` is in *grid* pixels, default 2.0
   (= 1/32 of the image side: 4 px on a 128 px image). The Gaussian is not truncated (values underflow to 0).
3. Per image pair, eq. 7: the squared difference summed over the R x R grid, averaged over the 68 landmarks.
   For two landmarks ``d`` grid pixels apart (far from the border) this is ``2 pi sigma^2 (1 - exp(-d^2 /
   (4 sigma^2)))``: 0 for equal landmarks, growing with ``d`` and saturating at ``2 pi sigma^2`` (~25.1 for
   sigma 2) once ``d`` is several sigmas. Lower is better.
4. Aggregation: the mean of the per-pair values over pairs with a face detected in both images
   (``n_pairs_used`` of ``n_pairs``). ``landmark_detect_fail_rate`` is the fraction of *outputs* in which no face
   was found, ``landmark_detect_fail_rate_reference`` the same for the references (as in ``identity_dlib``).
   With no usable pair the metric is NaN (with a warning).

Outputs and references are paired by index (folders: by sorted relative path); their image sizes may differ.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from lrkit.metrics.identity_dlib import N_LANDMARKS, _check_upsample, _load_shape_predictor, detect_face
from lrkit.metrics.identity_dlib import iter_uint8_images
from lrkit.metrics.imagesource import ImageSource

DEFAULT_RESOLUTION = 64
DEFAULT_SIGMA = 2.0

__all__ = ["landmarks_68", "render_heatmaps", "heatmap_distance", "landmark_heatmap"]


def _landmarks_and_size(
    images: ImageSource, upsample: int, batch_size: int, weights: str | os.PathLike | None, what: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """([N, 68, 2] (x, y) float64 with NaN rows for failed detections, (H, W) of the source's images)."""
    upsample = _check_upsample(upsample)
    predictor = _load_shape_predictor(weights)
    pts, size = [], None
    for img in iter_uint8_images(images, batch_size, what):
        size = img.shape[:2]
        rect = detect_face(img, upsample)
        if rect is None:
            pts.append(np.full((N_LANDMARKS, 2), np.nan))
            continue
        shape = predictor(img, rect)
        pts.append(np.array([(shape.part(k).x, shape.part(k).y) for k in range(shape.num_parts)], dtype=np.float64))
    return np.stack(pts), size


def landmarks_68(
    images: ImageSource,
    *,
    upsample: int = 1,
    batch_size: int = 32,
    weights: str | os.PathLike | None = None,
) -> np.ndarray:
    """dlib's 68 facial landmarks of each image: float64 [N, 68, 2] as (x, y) in image pixels, NaN where no face.

    Detection as in :mod:`lrkit.metrics.identity_dlib` (``upsample`` doublings, highest-scoring face);
    ``weights`` overrides the shape predictor file (resolved through :mod:`lrkit.weights`).
    """
    return _landmarks_and_size(images, upsample, batch_size, weights, "images")[0]


def render_heatmaps(
    points: np.ndarray,
    size: int = DEFAULT_RESOLUTION,
    sigma: float = DEFAULT_SIGMA,
    *,
    image_size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """Gaussian heatmaps (peak 1) of landmarks: points [..., K, 2] (x, y) -> float64 [..., K, size, size].

    Without ``image_size`` the points are in heatmap-grid pixels (pixel centres at integers). With ``image_size``
    (side, or (H, W)) they are image pixels and are mapped to the grid by ``x' = (x + 0.5) * size / W - 0.5``.
    ``sigma`` is in grid pixels. A NaN point gives an all-NaN heatmap.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim < 2 or pts.shape[-1] != 2:
        raise ValueError(f"points must have shape [..., K, 2] (x, y), got {pts.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"heatmap size must be a positive integer, got {size!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive (grid pixels), got {sigma!r}")
    if image_size is not None:
        h, w = (image_size, image_size) if np.isscalar(image_size) else image_size
        pts = np.stack([(pts[..., 0] + 0.5) * size / w - 0.5, (pts[..., 1] + 0.5) * size / h - 0.5], axis=-1)
    grid = np.arange(size, dtype=np.float64)
    # Separable Gaussian: gx [..., K, size] over columns j, gy [..., K, size] over rows i; outer product -> maps.
    gx = np.exp(-((grid - pts[..., 0:1]) ** 2) / (2.0 * sigma**2))
    gy = np.exp(-((grid - pts[..., 1:2]) ** 2) / (2.0 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def heatmap_distance(
    points_a: np.ndarray,
    points_b: np.ndarray,
    *,
    image_size_a: int | tuple[int, int],
    image_size_b: int | tuple[int, int],
    resolution: int = DEFAULT_RESOLUTION,
    sigma: float = DEFAULT_SIGMA,
    chunk: int = 64,
) -> np.ndarray:
    """Eq. 7 per pair: [N, K, 2] x [N, K, 2] landmarks -> float64 [N] (NaN where either set has NaN points).

    Rendered ``chunk`` pairs at a time ([chunk, 68, R, R] float64 is ~18 MB at R=64) to bound memory.
    """
    a, b = np.asarray(points_a, dtype=np.float64), np.asarray(points_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"landmark arrays must both be [N, K, 2], got {a.shape} and {b.shape}")
    out = np.empty(len(a))
    for s in range(0, len(a), chunk):
        ha = render_heatmaps(a[s:s + chunk], resolution, sigma, image_size=image_size_a)  # [c, K, R, R]
        hb = render_heatmaps(b[s:s + chunk], resolution, sigma, image_size=image_size_b)
        # Sum over the grid (i, j), mean over the K landmarks: eq. 7.
        out[s:s + chunk] = ((ha - hb) ** 2).sum(axis=(-2, -1)).mean(axis=-1)
    return out


def landmark_heatmap(
    outputs: ImageSource,
    references: ImageSource,
    *,
    sigma: float = DEFAULT_SIGMA,
    resolution: int = DEFAULT_RESOLUTION,
    upsample: int = 1,
    batch_size: int = 32,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
) -> dict[str, float]:
    """SR-NAM's eq. 7 between each output and its paired reference (original HR image); lower is better.

    Returns ``landmark_heatmap`` (mean over the pairs with a face detected in both images), ``n_pairs_used``,
    ``n_pairs``, ``landmark_detect_fail_rate`` (fraction of outputs without a detected face) and
    ``landmark_detect_fail_rate_reference`` (the same for the references). Protocol: module docstring.
    ``device`` is accepted for a uniform metric signature; dlib runs on the CPU only.
    """
    del device
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer (heatmap side in pixels), got {resolution!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive (heatmap pixels), got {sigma!r}")
    pts_out, size_out = _landmarks_and_size(outputs, upsample, batch_size, weights, "outputs")
    pts_ref, size_ref = _landmarks_and_size(references, upsample, batch_size, weights, "references")
    if len(pts_out) != len(pts_ref):
        raise ValueError(f"landmark_heatmap pairs outputs with references by index, but there are {len(pts_out)} "
                         f"outputs and {len(pts_ref)} references; pass the same number of images in the same order")
    fail_out, fail_ref = np.isnan(pts_out).any(axis=(1, 2)), np.isnan(pts_ref).any(axis=(1, 2))  # [N] each
    ok = ~(fail_out | fail_ref)  # [N] usable pairs
    n_used = int(ok.sum())
    if n_used:
        value = float(heatmap_distance(pts_out[ok], pts_ref[ok], image_size_a=size_out, image_size_b=size_ref,
                                       resolution=resolution, sigma=sigma).mean())
    else:
        value = math.nan
        warnings.warn(
            "landmark_heatmap: no output/reference pair has a detected face in both images; the metric is NaN. "
            f"Faces must be frontal and roughly >= {80 >> _check_upsample(upsample)} px wide for upsample={upsample}; "
            "try a larger upsample for small images.",
            RuntimeWarning,
            stacklevel=2,
        )
    return {
        "landmark_heatmap": value,
        "landmark_detect_fail_rate": float(fail_out.mean()),
        "landmark_detect_fail_rate_reference": float(fail_ref.mean()),
        "n_pairs_used": n_used,
        "n_pairs": len(ok),
    }
