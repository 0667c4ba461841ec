"""PRDC (lrkit.metrics.prdc_metrics) against the authors' prdc package, in bounded memory, and the VGG16 fc2 path."""

import contextlib
import io
import tracemalloc

import numpy as np
import prdc
import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.transforms.v2 import functional as TF

from lrkit.metrics.prdc_metrics import prdc_from_features, prdc_vgg16, vgg16_fc2_features

KEYS = ("precision", "recall", "density", "coverage")


def _ref(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        return {key: float(v) for key, v in prdc.compute_prdc(real, fake, k).items()}


def _assert_same(ours, ref):
    for key in KEYS:
        assert abs(ours[key] - ref[key]) <= 1e-9, (key, ours[key], ref[key])


def _exact_prdc(real, fake, k):
    """The definitions with distances from explicit differences: copies are at exactly 0, equal pairs tie exactly."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def dist(x, y):
        return np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))

    r = np.partition(dist(real, real), k, axis=1)[:, k]
    s = np.partition(dist(fake, fake), k, axis=1)[:, k]
    d = dist(real, fake)
    inside = d < r[:, None]
    return {"precision": inside.any(0).mean(), "recall": (d < s[None, :]).any(1).mean(),
            "density": inside.sum(0).mean() / k, "coverage": (d.min(1) < r).mean()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, m, dim, k", [(40, 40, 8, 5), (57, 23, 16, 3), (15, 90, 64, 1), (120, 80, 4, 2)])
def test_equals_prdc_on_random_features(n, m, dim, k, dtype):
    rng = np.random.default_rng(n * 1000 + m)
    real = rng.normal(size=(n, dim)).astype(dtype)
    fake = (rng.normal(size=(m, dim)) * 1.2 + 0.3).astype(dtype)
    ref = _ref(real, fake, k)
    for chunk in (None, 7, 16, max(n, m) - 1):
        _assert_same(prdc_from_features(real, fake, nearest_k=k, chunk_size=chunk), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_equals_prdc_with_ties_and_duplicates_on_a_grid(seed, dtype):
    # Small integer coordinates: many duplicated points (within and across sets) and many exactly equal
    # distances; every distance is exact in floating point, so prdc's answer is well defined.
    rng = np.random.default_rng(seed)
    n, m, dim, k = 60 + 7 * seed, 45, 3 + seed, 1 + seed
    real = rng.integers(0, 3, size=(n, dim)).astype(dtype)
    fake = rng.integers(0, 3, size=(m, dim)).astype(dtype)
    assert len(np.unique(real, axis=0)) < n  # duplicates present
    ref = _ref(real, fake, k)
    for chunk in (None, 5, 16):
        _assert_same(prdc_from_features(real, fake, nearest_k=k, chunk_size=chunk), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_prdc_when_fakes_copy_real_points(dtype):
    # Fakes that are copies of real points tie exactly with the real k-NN radii (strict '<': not inside).
    rng = np.random.default_rng(11)
    real = rng.normal(size=(70, 32)).astype(dtype)
    fake = np.concatenate([real[rng.permutation(70)[:40]], rng.normal(size=(30, 32))]).astype(dtype)
    ref = _ref(real, fake, 3)
    for chunk in (None, 9, 32):
        _assert_same(prdc_from_features(real, fake, nearest_k=3, chunk_size=chunk), ref)
    # Identical sets: every fake is a real point.
    _assert_same(prdc_from_features(real, real.copy(), nearest_k=3, chunk_size=16), _ref(real, real.copy(), 3))


def test_real_valued_duplicates_follow_exact_arithmetic_whatever_the_chunks():
    # Copies of real-valued vectors: prdc (scikit-learn + BLAS) puts them at ~1e-7 instead of 0, and its result
    # then depends on rounding (it changes with scikit-learn's n_jobs). Ours is the exact-arithmetic answer.
    rng = np.random.default_rng(5)
    for trial in range(6):
        base = rng.normal(size=(15, 24))
        real = base[rng.integers(0, 15, 50)]
        fake = base[rng.integers(0, 15, 40)] if trial % 2 else rng.normal(size=(40, 24))
        exact = _exact_prdc(real, fake, 3)
        for chunk in (None, 4, 13):
            _assert_same(prdc_from_features(real, fake, nearest_k=3, chunk_size=chunk), exact)
        _assert_same(prdc_from_features(real.astype(np.float32), fake.astype(np.float32), 3, 8), exact)


def test_memory_stays_bounded_for_10k_samples():
    rng = np.random.default_rng(0)
    n, m = 10000, 1000
    real = rng.normal(size=(n, 16))
    fake = rng.normal(size=(m, 16)) + 0.1
    tracemalloc.start()
    try:
        out = prdc_from_features(real, fake, nearest_k=5, chunk_size=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * n * 8 / 4, f"peak {peak / 1e6:.0f} MB; a full N x N float64 matrix is {n * n * 8 / 1e6:.0f} MB"
    assert out["n_real"] == n and out["n_fake"] == m
    assert 0 < out["precision"] <= 1 and 0 < out["coverage"] <= 1


def test_input_errors():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    with pytest.raises(ValueError, match="at least 6"):
        prdc_from_features(real[:5], fake, nearest_k=5)
    with pytest.raises(ValueError, match="dimensions"):
        prdc_from_features(real, fake[:, :3], nearest_k=2)
    bad = fake.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prdc_from_features(real, bad, nearest_k=2)
    with pytest.raises(ValueError, match="nearest_k"):
        prdc_from_features(real, fake, nearest_k=0)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        prdc_from_features(real[0], fake, nearest_k=2)
    torch_out = prdc_from_features(torch.from_numpy(real), torch.from_numpy(fake), nearest_k=2)
    _assert_same(torch_out, _ref(real, fake, 2))


# ---- VGG16 fc2 features with seeded random weights (the official file cannot be downloaded here) ----

@pytest.fixture(scope="module")
def vgg16_random(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.vgg16().eval()  # the exact architecture of vgg16-397923af.pth, random weights
    path = tmp_path_factory.mktemp("weights") / "vgg16-397923af.pth"
    torch.save(model.state_dict(), path)
    return path, model


def _direct_fc2(model, images):
    """torchvision's own pieces: transforms.v2 resize/normalize and a feature extractor at classifier.4 (fc2's
    ReLU)."""
    extractor = create_feature_extractor(model, {"classifier.4": "fc2"})
    x = (images + 1) / 2
    x = TF.resize(x, [224, 224], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    x = TF.normalize(x, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    with torch.no_grad():
        return extractor(x)["fc2"].numpy()


def test_vgg16_fc2_features_and_prdc_vgg16(vgg16_random):
    path, model = vgg16_random
    g = torch.Generator().manual_seed(3)
    real = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    fake = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    direct = _direct_fc2(model, torch.cat([real, fake]))  # [6, 4096]
    assert (direct >= 0).all() and (direct > 0).any()  # post-ReLU, not all dead
    with pytest.warns(UserWarning, match="unverified weights vgg16-397923af.pth"):
        feats = vgg16_fc2_features(real[1:], weights=path, batch_size=1)
    assert feats.shape == (2, 4096) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, direct[1:3], rtol=1e-5, atol=1e-6 * np.abs(direct).max())
    with pytest.warns(UserWarning, match="unverified"):
        out = prdc_vgg16(real, fake, nearest_k=1, weights=path, batch_size=2)
    _assert_same(out, _ref(direct[:3], direct[3:], 1))
