"""fd_efficientnet_lite0: the shipped ImageNet EfficientNet-Lite0 is real, and the Fréchet distance behaves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from lrkit import weights as W
from lrkit.data.ops import from_uint8
from lrkit.fsutil import sha256_file
from lrkit.metrics import efficientnet_fd as E
from lrkit.metrics.frechet import feature_stats, frechet_distance

skdata = pytest.importorskip("skimage.data")

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUP_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


def _square(img: np.ndarray, out: int | None = None) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return sq if out is None else np.asarray(Image.fromarray(sq).resize((out, out), Image.BICUBIC))


@pytest.fixture(scope="module")
def real_set() -> torch.Tensor:
    """16 real photos at 96 px: two seeded random square crops (60-90 % of the short side) of 8 skimage images."""
    rng = np.random.default_rng(0)
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket(), skdata.cat(),
              skdata.immunohistochemistry(), skdata.hubble_deep_field(), skdata.retina()[..., :3]]
    crops = []
    for im in photos:
        h, w = im.shape[:2]
        for _ in range(2):
            s = int(min(h, w) * rng.uniform(0.6, 0.9))
            top, left = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            crops.append(np.asarray(Image.fromarray(im[top:top + s, left:left + s]).resize((96, 96), Image.BICUBIC)))
    return from_uint8(np.stack(crops))  # [16, 3, 96, 96]


@pytest.fixture(scope="module")
def real_feats(real_set) -> np.ndarray:
    return E.efflite0_features(real_set, batch_size=8)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


def _fd(f_real: np.ndarray, f_fake: np.ndarray) -> float:
    # 16 samples of 1280-d features: singular covariances, fine for comparing degradations of one set.
    return frechet_distance(*feature_stats(f_real, allow_singular=True), *feature_stats(f_fake, allow_singular=True))


def test_shipped_weights_are_registered_and_verified():
    res = E.efflite0_weights()
    assert res.verified == "package" and str(res.path) == E.shipped_weights_path()
    spec = W.WEIGHTS["efficientnet_lite0"]
    assert sha256_file(res.path) == spec.sha256
    assert spec.sha256.startswith(spec.sha256_prefix) and spec.sha256_prefix in spec.filename
    assert "efficientnet_lite0" in res.label and "verified: package" in res.label


def test_weights_are_real_imagenet_classifier():
    """A cat photo's top-5 classes include a cat class; a coffee photo's include a cup class."""
    x = from_uint8(np.stack([_square(skdata.chelsea(), 256), _square(skdata.coffee(), 256)]))
    logits = E.efflite0_logits(x)
    assert logits.shape == (2, 1000)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert set(top5[0]) & CAT_CLASSES, top5[0]  # measured: 285, 282, 281, 287, 728
    assert set(top5[1]) & CUP_CLASSES, top5[1]  # measured: 967, 968, 925, 504, 809
    assert top5[0, 0] in CAT_CLASSES and top5[1, 0] in CUP_CLASSES


def test_preprocess_protocol():
    x = torch.linspace(-1, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    y = E.efflite0_preprocess(x)
    assert y.shape == (1, 3, 224, 224)
    # 8-bit value v -> (v - 127) / 128: black -> -127/128, white -> 1.
    flat = E.efflite0_preprocess(torch.full((1, 3, 224, 224), -1.0))
    assert torch.allclose(flat, torch.full_like(flat, -127 / 128))
    white = E.efflite0_preprocess(torch.ones(1, 3, 224, 224))
    assert torch.allclose(white, torch.ones_like(white))


def test_features_shape_determinism_and_sources(real_set, real_feats, tmp_path):
    assert real_feats.shape == (16, E.FEATURE_DIM) and real_feats.dtype == np.float64
    assert np.isfinite(real_feats).all() and (real_feats >= 0).all() and (real_feats <= 6).all()  # ReLU6 means
    sub = real_set[:4]
    again = E.efflite0_features(sub, batch_size=8)
    np.testing.assert_array_equal(again, real_feats[:4])  # same batches -> bit-identical
    other_batches = E.efflite0_features(sub, batch_size=3)
    np.testing.assert_allclose(other_batches, real_feats[:4], rtol=0, atol=1e-4)
    for i, img in enumerate(sub):
        Image.fromarray(((img.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(tmp_path / f"{i}.png")
    np.testing.assert_array_equal(E.efflite0_features(tmp_path, batch_size=8), real_feats[:4])  # same 8-bit input
    assert E.prdc_efflite0_features(sub, batch_size=8).shape == (4, 1280)


def test_fd_of_a_set_with_itself_is_zero_small_n_rule_and_cache(real_set, real_feats, monkeypatch):
    # N <= D (16 <= 1280) is refused as lrkit.metrics.frechet refuses it, naming the fix ...
    with pytest.raises(ValueError, match="D=1280"):
        E.fd_efficientnet_lite0(real_set, real_set, batch_size=8)
    with pytest.raises(ValueError, match="too few"):
        E.fd_efficientnet_lite0(real_set[:1], real_set[:1], allow_singular=True, cache=False)
    # ... after the features were made: their statistics are in the (content-keyed) cache, and the allowed rerun
    # embeds nothing.
    calls = []
    run = E._run
    monkeypatch.setattr(E, "_run", lambda *a, **k: calls.append(1) or run(*a, **k))
    r, used = E.fd_efficientnet_lite0(real_set, real_set, batch_size=8, allow_singular=True, return_weights=True)
    assert calls == []
    assert used.verified == "package" and used.sha256 == W.WEIGHTS["efficientnet_lite0"].sha256
    assert set(r) == {"fd_efficientnet_lite0", "n_real", "n_fake", "singular_covariance"}
    assert r["n_real"] == 16 and r["n_fake"] == 16 and r["singular_covariance"] == 1.0
    # FD(X, X) = 0 up to the rounding of the square root of a singular covariance (measured ~1e-4 against a
    # scale, tr(sigma), of ~1e2: relative ~1e-6).
    scale = float(np.trace(np.cov(real_feats, rowvar=False)))
    assert abs(r["fd_efficientnet_lite0"]) < 1e-5 * scale


def test_fd_grows_monotonically_with_blur(real_set, real_feats):
    values = []
    for sigma in (0.5, 1.5, 4.0):
        blurred = TF.gaussian_blur(real_set, kernel_size=2 * round(3 * sigma) + 1, sigma=sigma)
        values.append(_fd(real_feats, E.efflite0_features(blurred, batch_size=8)))
    assert all(b > a for a, b in zip(values, values[1:])), values  # measured ~12, ~150, 353
    assert values[0] > 0


@pytest.mark.slow
def test_fd_grows_monotonically_with_noise(real_set, real_feats):
    g = torch.Generator().manual_seed(0)
    values = []
    for std in (0.05, 0.1, 0.2, 0.4):
        noisy = (real_set + std * torch.randn(real_set.shape, generator=g)).clamp(-1, 1)
        values.append(_fd(real_feats, E.efflite0_features(noisy, batch_size=8)))
    assert all(b > a for a, b in zip(values, values[1:])), values  # measured ~75, 139, 210, 291


def test_override_weights_are_unverified_and_used(tmp_path, real_set):
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    f = tmp_path / "random-lite0.pth"
    torch.save(EfficientNet.from_name("efficientnet-lite0").state_dict(), f)
    res = E.efflite0_weights(f)
    assert res.verified is None and res.label.startswith("unverified weights")
    feats = E.efflite0_features(real_set[:1], weights=f)
    assert feats.shape == (1, 1280)
    assert not np.allclose(feats, E.efflite0_features(real_set[:1]))
    # The metric warns before doing any work (here it then stops: 1 sample is too few for a covariance).
    with pytest.warns(UserWarning, match="unverified weights"), pytest.raises(ValueError, match="too few"):
        E.fd_efficientnet_lite0(real_set[:1], real_set[:1], weights=f, allow_singular=True, cache=False)
    bad = tmp_path / "vgg-ish.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state_dict"):
        E.efflite0_features(real_set[:1], weights=bad)


def test_model_is_cached_per_process():
    assert E.load_efflite0() is E.load_efflite0()
    assert not E.load_efflite0().training


def test_bad_inputs(real_set):
    with pytest.raises(ValueError, match="empty"):
        E.efflite0_features(real_set[:0])
    with pytest.raises(ValueError, match="NaN or Inf"):
        E.efflite0_features(real_set[:1] * float("inf"))
    with pytest.raises(ValueError, match="batch_size"):
        E.efflite0_features(real_set[:1], batch_size=0)
