"""identity_dlib on real photos: dlib's shipped detector, 68-point predictor and 128-d face descriptor."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from lrkit import weights as W
from lrkit.data.ops import from_uint8
from lrkit.fsutil import sha256_file
from lrkit.metrics import identity_dlib as I

skdata = pytest.importorskip("skimage.data")


def _face_crop(img: np.ndarray, cx: int, cy: int, side: int, out: int = 128) -> np.ndarray:
    """Square crop centred on the face (face box ~45-50 % of the side, like aligned face datasets), resized."""
    left, top = cx - side // 2, cy - side // 2
    pil = Image.fromarray(img).crop((left, top, left + side, top + side))
    return np.asarray(pil.resize((out, out), Image.BICUBIC))


def _grace() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def _center_square(img: np.ndarray, out: int = 128) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.asarray(Image.fromarray(sq).resize((out, out), Image.BICUBIC))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _blur(img: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


@pytest.fixture(scope="module")
def faces() -> dict[str, np.ndarray]:
    """Real 128 px face crops (uint8 [128, 128, 3]) and two non-face photos."""
    astro = skdata.astronaut()  # dlib box (179, 83)-(266, 170) at full size
    grace = _grace()  # dlib box (161, 137)-(376, 352)
    return {
        "astro": _face_crop(astro, 221, 122, 200),
        "astro_shift": _face_crop(astro, 227, 118, 200),  # the face moved by ~4 px at 128 px
        "grace": _face_crop(grace, 268, 240, 420),
        "coffee": _center_square(skdata.coffee()),
        "chelsea": _center_square(skdata.chelsea()),
    }


def _t(*imgs: np.ndarray) -> torch.Tensor:
    return from_uint8(np.stack(imgs))


def test_same_image_distance_zero(faces):
    x = _t(faces["astro"], faces["grace"])
    r = I.identity_dlib(x, x)
    assert r["identity_dist_source"] == pytest.approx(0.0, abs=1e-12)
    assert r["identity_match_source"] == 1.0
    assert r["face_detect_fail_rate"] == 0.0 and r["face_detect_fail_rate_source"] == 0.0
    assert r["n_pairs_used"] == 2 and r["n_images"] == 2
    assert "identity_dist_target" not in r
    assert all(isinstance(v, (float, int)) and not isinstance(v, bool) for v in r.values())


def test_perturbed_same_face_is_close(faces):
    a, g = faces["astro"], faces["grace"]
    outs = [_blur(a, 1.0), _jpeg(a, 30), faces["astro_shift"], _blur(g, 1.0), _jpeg(g, 30), np.roll(g, 3, axis=1)]
    refs = [a, a, a, g, g, g]
    d_out = I.face_descriptors(_t(*outs))
    d_ref = I.face_descriptors(_t(*refs))
    dist = np.linalg.norm(d_out - d_ref, axis=1)
    # Measured: 0.26, 0.25, ~0.05, 0.19, 0.25, ~0.05: same person by dlib's 0.6 rule, but not identical.
    assert np.all(dist < 0.45), dist
    assert np.all(dist > 0.0), dist
    r = I.identity_dlib(_t(*outs), _t(*refs))
    assert r["identity_match_source"] == 1.0
    assert r["identity_dist_source"] == pytest.approx(float(dist.mean()), abs=1e-12)


def test_different_people_are_far_and_targets_reported(faces):
    a, g = faces["astro"], faces["grace"]
    outs = _t(a, g)
    r = I.identity_dlib(outs, _t(a, g), targets=_t(g, a))
    assert r["identity_dist_source"] == pytest.approx(0.0, abs=1e-12)
    # Astronaut (Eileen Collins) vs Grace Hopper: measured 0.70 at 128 px; above dlib's 0.6 threshold.
    assert r["identity_dist_target"] > 0.6
    assert r["identity_match_target"] == 0.0
    assert r["n_pairs_used_target"] == 2 and r["face_detect_fail_rate_target"] == 0.0


def test_non_face_is_a_detector_failure_and_excluded(faces):
    outs = _t(faces["astro"], faces["coffee"], faces["chelsea"])
    srcs = _t(faces["astro"], faces["astro"], faces["astro"])
    r = I.identity_dlib(outs, srcs)
    assert r["face_detect_fail_rate"] == pytest.approx(2 / 3)
    assert r["face_detect_fail_rate_source"] == 0.0
    assert r["n_pairs_used"] == 1
    assert r["identity_dist_source"] == pytest.approx(0.0, abs=1e-12)  # only the astronaut pair counts
    d = I.face_descriptors(outs)
    assert d.shape == (3, 128) and d.dtype == np.float64
    assert np.isfinite(d[0]).all() and np.isnan(d[1:]).all()


def test_tiny_lfw_faces_all_fail_with_nan_and_warning():
    lfw = (skdata.lfw_subset()[:6] * 255).round().astype(np.uint8)  # 6 real faces, 25 x 25 grey
    x = from_uint8(np.repeat(lfw[..., None], 3, axis=-1))  # [6, 3, 25, 25]
    with pytest.warns(RuntimeWarning, match="no output/source pair"):
        r = I.identity_dlib(x, x)
    assert r["face_detect_fail_rate"] == 1.0 and r["n_pairs_used"] == 0
    assert np.isnan(r["identity_dist_source"]) and np.isnan(r["identity_match_source"])


def test_detection_rate_on_real_lfw_faces_enlarged_to_128():
    """The documented detection measurement: 100 real faces vs 100 non-faces of lfw_subset, enlarged to 128 px."""
    lfw = (skdata.lfw_subset() * 255).round().astype(np.uint8)  # [200, 25, 25]: 100 faces, then 100 non-faces
    found = []
    for patch in lfw:
        img = np.asarray(Image.fromarray(np.repeat(patch[..., None], 3, axis=-1)).resize((128, 128), Image.BICUBIC))
        found.append(I.detect_face(img, upsample=1) is not None)
    found = np.array(found)
    assert found[:100].mean() >= 0.85  # measured 0.92
    assert found[100:].mean() == 0.0  # measured 0


def test_upsample_is_needed_for_small_faces(faces):
    small = np.asarray(Image.fromarray(faces["astro"]).resize((64, 64), Image.BICUBIC))
    assert I.detect_face(small, upsample=0) is None
    assert I.detect_face(small, upsample=2) is not None
    with pytest.raises(ValueError, match="upsample"):
        I.detect_face(small, upsample=-1)


def test_sources_tensor_folder_and_iterable_agree(faces, tmp_path):
    imgs = [faces["astro"], faces["grace"], faces["coffee"]]
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"{i:02d}.png")
    x = _t(*imgs)
    d_tensor = I.face_descriptors(x, batch_size=2)
    d_folder = I.face_descriptors(tmp_path, batch_size=3)
    d_iter = I.face_descriptors(iter([x[:1], x[1:]]))
    np.testing.assert_array_equal(d_tensor, d_folder)
    np.testing.assert_array_equal(d_tensor, d_iter)
    assert d_tensor.shape == (3, 128)


def test_mismatched_counts_and_bad_inputs():
    x = torch.zeros(2, 3, 32, 32)  # blank: nothing detected, so the checks are fast
    with pytest.raises(ValueError, match="2 outputs and 1 sources"):
        I.identity_dlib(x, x[:1])
    with pytest.raises(ValueError, match="2 outputs and 1 targets"):
        I.identity_dlib(x, x, targets=x[:1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        I.identity_dlib(x * float("nan"), x)
    with pytest.raises(ValueError, match="empty"):
        I.identity_dlib(x[:0], x[:0])


def test_model_files_registered_cached_and_labelled():
    for name, locate in (("dlib_face_recognition", I.face_recognition_model_path),
                         ("dlib_shape_predictor_68", I.shape_predictor_68_path)):
        res = W.resolve(name)
        assert str(res.path) == locate() and res.verified == "package"
        assert sha256_file(res.path) == W.WEIGHTS[name].sha256  # the registry records the shipped file's digest
    labels = I.weights_labels()
    assert "verified: package" in labels["dlib_face_recognition"]
    # Models are loaded once per process.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # face_recognition_models' pkg_resources warning must not leak
        assert I._load_recognizer(None) is I._load_recognizer(None)
        assert I._load_shape_predictor(None) is I._load_shape_predictor(None)
    assert I._detector() is I._detector()


def test_override_file_that_is_not_a_dlib_model(tmp_path):
    bad = tmp_path / "not_dlib.dat"
    bad.write_bytes(b"\x00" * 64)
    assert I.dlib_weights("recognition", bad).verified is None  # would be cited as unverified weights
    with pytest.raises(ValueError, match="not a dlib face_recognition_model_v1"), \
            pytest.warns(UserWarning, match="unverified weights"):
        I.face_descriptors(torch.zeros(1, 3, 32, 32), weights=bad)
