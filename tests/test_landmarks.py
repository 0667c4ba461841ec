"""SR-NAM's landmark-heatmap metric (eq. 7) with dlib's 68 landmarks, on real photos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from lrkit.data.ops import from_uint8
from lrkit.metrics import landmarks as L

skdata = pytest.importorskip("skimage.data")


def _crop(img: np.ndarray, cx: int, cy: int, side: int, out: int = 128) -> np.ndarray:
    left, top = cx - side // 2, cy - side // 2
    return np.asarray(Image.fromarray(img).crop((left, top, left + side, top + side)).resize((out, out), Image.BICUBIC))


@pytest.fixture(scope="module")
def astro() -> np.ndarray:
    return skdata.astronaut()  # the face: dlib box (179, 83)-(266, 170)


def _astro_face(astro: np.ndarray, dx: int = 0, out: int = 128) -> np.ndarray:
    """128 px face crop (face ~45 % of the side); ``dx`` moves the crop window right, so the face moves left."""
    return _crop(astro, 221 + dx, 122, 200, out)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

def test_heatmap_peak_at_landmark():
    pts = np.array([[[20.0, 30.0], [5.0, 60.0]]])  # [N=1, K=2, (x, y)] in grid pixels
    h = L.render_heatmaps(pts, 64, 2.0)
    assert h.shape == (1, 2, 64, 64) and h.dtype == np.float64
    assert np.unravel_index(h[0, 0].argmax(), (64, 64)) == (30, 20)  # (row = y, column = x)
    assert np.unravel_index(h[0, 1].argmax(), (64, 64)) == (60, 5)
    assert h[0, 0, 30, 20] == 1.0 and h.max() == 1.0
    # Exact Gaussian values: one pixel away -> exp(-1 / (2 sigma^2)).
    assert h[0, 0, 30, 21] == pytest.approx(math.exp(-1 / 8), rel=1e-12)
    assert h[0, 0, 28, 20] == pytest.approx(math.exp(-4 / 8), rel=1e-12)


def test_image_to_grid_mapping_uses_pixel_centres():
    # 128 px image -> 64 grid: x' = (x + 0.5) / 2 - 0.5; x = 40.5 (between pixels 40 and 41) -> 20.0.
    h = L.render_heatmaps(np.array([[40.5, 60.5]]), 64, 1.0, image_size=128)
    assert h.shape == (1, 64, 64)
    assert np.unravel_index(h[0].argmax(), (64, 64)) == (30, 20) and h[0, 30, 20] == pytest.approx(1.0)
    # Non-square images: (H, W).
    h2 = L.render_heatmaps(np.array([[40.5, 30.25]]), 64, 1.0, image_size=(64, 128))
    assert np.unravel_index(h2[0].argmax(), (64, 64)) == (30, 20)
    # A NaN landmark gives a NaN heatmap, never a silent zero.
    assert np.isnan(L.render_heatmaps(np.array([[np.nan, np.nan]]), 8, 1.0)).all()


def test_pair_distance_matches_closed_form():
    # Far from the border, eq. 7 for one landmark d grid px apart = 2 pi sigma^2 (1 - exp(-d^2 / (4 sigma^2))).
    sigma = 2.0
    for d in (0.0, 0.5, 1.0, 3.0, 8.0):
        a = np.full((1, 68, 2), 30.0)
        b = a.copy()
        b[..., 0] += d
        got = L.heatmap_distance(a, b, image_size_a=64, image_size_b=64, resolution=64, sigma=sigma)
        want = 2 * math.pi * sigma**2 * (1 - math.exp(-d * d / (4 * sigma**2)))
        assert got.shape == (1,)
        assert got[0] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_render_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        L.render_heatmaps(np.zeros((3, 3)), 64, 2.0)
    with pytest.raises(ValueError, match="sigma"):
        L.render_heatmaps(np.zeros((1, 2)), 64, 0.0)
    with pytest.raises(ValueError, match="size"):
        L.render_heatmaps(np.zeros((1, 2)), 0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# dlib landmarks and the metric
# ---------------------------------------------------------------------------------------------------------------

def test_landmarks_68_on_a_real_face(astro):
    x = from_uint8(np.stack([_astro_face(astro), _crop(skdata.coffee(), 300, 200, 400)]))
    pts = L.landmarks_68(x)
    assert pts.shape == (2, 68, 2) and pts.dtype == np.float64
    face = pts[0]
    assert np.isfinite(face).all() and (face >= 0).all() and (face < 128).all()
    # iBUG-68 layout: 36-41 is the eye on the image's left, 42-47 the other; nose tip 30 between them and below;
    # mouth (48-67) below the nose; jaw 0-16 runs from image-left to image-right.
    left_eye, right_eye = face[36:42].mean(0), face[42:48].mean(0)
    assert left_eye[0] < face[30, 0] < right_eye[0]
    assert face[30, 1] > max(left_eye[1], right_eye[1])
    assert face[48:68, 1].mean() > face[30, 1]
    assert face[0, 0] < face[16, 0]
    assert np.isnan(pts[1]).all()  # the coffee cup: no face


def test_identical_is_zero_and_shift_grows_monotonically(astro):
    ref = from_uint8(_astro_face(astro)[None])
    r0 = L.landmark_heatmap(ref, ref)
    assert r0 == {"landmark_heatmap": 0.0, "landmark_detect_fail_rate": 0.0, "landmark_detect_fail_rate_reference": 0.0,
                  "n_pairs_used": 1, "n_pairs": 1}
    shifts = [0, 3, 6, 12, 24]  # crop-window px at 200 px = 0, 1.9, 3.8, 7.7, 15.4 px at 128 px
    values = [L.landmark_heatmap(from_uint8(_astro_face(astro, dx)[None]), ref)["landmark_heatmap"]
              for dx in shifts]
    assert values[0] == 0.0
    assert all(b > a for a, b in zip(values, values[1:])), values  # measured 0, 1.5, 5.5, 15.3, 24.5
    assert values[-1] <= 2 * math.pi * L.DEFAULT_SIGMA**2 + 1e-9  # the saturation bound of eq. 7


def test_sizes_may_differ_landmarks_are_normalised(astro):
    # The same face at 256 px (output) and 128 px (reference): same landmarks up to resampling, small value,
    # far below what a 4 px shift at 128 px gives.
    out = from_uint8(_astro_face(astro, out=256)[None])
    ref = from_uint8(_astro_face(astro)[None])
    same = L.landmark_heatmap(out, ref)["landmark_heatmap"]
    moved = L.landmark_heatmap(from_uint8(_astro_face(astro, 6)[None]), ref)["landmark_heatmap"]
    assert same < 0.5 * moved


def test_failure_path(astro):
    face = _astro_face(astro)
    cup = _crop(skdata.coffee(), 300, 200, 400)
    r = L.landmark_heatmap(from_uint8(np.stack([face, cup, face, cup])), from_uint8(np.stack([face, face, cup, cup])))
    assert r["landmark_detect_fail_rate"] == 0.5 and r["landmark_detect_fail_rate_reference"] == 0.5
    assert r["n_pairs_used"] == 1 and r["n_pairs"] == 4
    assert r["landmark_heatmap"] == 0.0
    lfw = (skdata.lfw_subset()[:4] * 255).round().astype(np.uint8)  # 25 px real faces: too small for dlib
    tiny = from_uint8(np.repeat(lfw[..., None], 3, axis=-1))
    with pytest.warns(RuntimeWarning, match="no output/reference pair"):
        r = L.landmark_heatmap(tiny, tiny)
    assert math.isnan(r["landmark_heatmap"]) and r["landmark_detect_fail_rate"] == 1.0 and r["n_pairs_used"] == 0


def test_bad_arguments():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    t = from_uint8(x)
    with pytest.raises(ValueError, match="2 outputs and 1 references"):
        L.landmark_heatmap(t, t[:1])
    with pytest.raises(ValueError, match="resolution"):
        L.landmark_heatmap(t, t, resolution=0)
    with pytest.raises(ValueError, match="sigma"):
        L.landmark_heatmap(t, t, sigma=-1.0)
    with pytest.raises(ValueError, match="upsample"):
        L.landmarks_68(t, upsample=7)
