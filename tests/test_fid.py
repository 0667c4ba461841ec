"""FID (pytorch-fid and StarGAN v2 protocols), the Fréchet distance and the feature-statistics cache.

No real weights exist offline: both Inception variants get seeded random weights of their exact architectures.
pytorch-fid loads its file itself from ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`` (set to a
tmp folder), lrkit gets the same file as ``weights=`` ("unverified weights"). Images are few and small (8 per
side), so covariances are singular (N < 2048) and ``allow_singular=True`` is used wherever a FID is computed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit import weights as weights_mod
from lrkit.data.ops import to_uint8
from lrkit.metrics import featcache, fid
from lrkit.metrics.frechet import check_sample_size, feature_stats, frechet_distance

PT_FILE = "pt_inception-2015-12-05-6726825d.pth"
TV_FILE = "inception_v3_google-0cc3c7bd.pth"
N_SIDE = 8


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def wdir(tmp_path_factory) -> Path:
    """Random weight files; the pytorch-fid one where torch.hub looks when TORCH_HOME is this folder."""
    root = tmp_path_factory.mktemp("torch_home")
    fid.make_random_weights("fid_pytorchfid", root / "hub" / "checkpoints" / PT_FILE, seed=1)
    fid.make_random_weights("fid_starganv2", root / TV_FILE, seed=2)
    return root


@pytest.fixture(scope="module")
def pt_weights(wdir) -> Path:
    return wdir / "hub" / "checkpoints" / PT_FILE


@pytest.fixture(scope="module")
def tv_weights(wdir) -> Path:
    return wdir / TV_FILE


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, wdir):
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))  # official copies never found
    monkeypatch.setenv("TORCH_HOME", str(wdir))
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message=".*unverified weights.*")


def make_images(n: int, size: int, seed: int) -> np.ndarray:
    """[n, size, size, 3] uint8: smooth random colour fields (8x8 upscaled) with one random rectangle each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        field = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
        a = np.array(field)
        x0, y0 = rng.integers(0, size // 2, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        a[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3, dtype=np.uint8)
        out.append(a)
    return np.stack(out)


def save_folder(arr: np.ndarray, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arr):
        Image.fromarray(a).save(folder / f"{i:03d}.png")
    return folder


def as_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ------------------------------------------------------------------------------------------------ pytorch-fid


@pytest.fixture(scope="module")
def pytorchfid_model(wdir):
    """pytorch-fid's own InceptionV3([3]); its weights come through torch.hub from $TORCH_HOME (= wdir)."""
    from pytorch_fid.inception import InceptionV3

    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(wdir))
    try:
        return InceptionV3([3]).eval()
    finally:
        mp.undo()


@pytest.mark.parametrize("size", [64, 128])
def test_pytorchfid_equals_reference(size, tmp_path, pt_weights, pytorchfid_model):
    from pytorch_fid.fid_score import calculate_activation_statistics

    real_u8, fake_u8 = make_images(N_SIDE, size, 10 + size), make_images(N_SIDE, size, 20 + size)
    real_dir = save_folder(real_u8, tmp_path / "real")
    fake_dir = save_folder(fake_u8, tmp_path / "fake")

    # Reference: pytorch-fid's own model and statistics on the files.
    ref_model = pytorchfid_model
    files = lambda d: sorted(d.glob("*.png"))  # noqa: E731
    m_r, s_r = calculate_activation_statistics(files(real_dir), ref_model, batch_size=N_SIDE, device="cpu",
                                               num_workers=0)
    m_f, s_f = calculate_activation_statistics(files(fake_dir), ref_model, batch_size=N_SIDE, device="cpu",
                                               num_workers=0)

    # lrkit: real from the folder, fake from the tensor those PNGs were written from (same 8-bit content).
    fake = as_tensor(fake_u8)
    mu_r, sig_r, n_r = fid.inception_stats(real_dir, "fid_pytorchfid", weights=pt_weights, batch_size=5)
    mu_f, sig_f, n_f = fid.inception_stats(fake, "fid_pytorchfid", weights=pt_weights, batch_size=5)
    assert (n_r, n_f) == (N_SIDE, N_SIDE)
    scale = max(np.abs(m_r).max(), np.abs(s_r).max())
    for ours, ref in ((mu_r, m_r), (sig_r, s_r), (mu_f, m_f), (sig_f, s_f)):
        assert np.abs(ours - ref).max() <= 1e-5 * scale

    # The FID (statistics now cached) against the same Fréchet computation on pytorch-fid's statistics.
    with pytest.warns(UserWarning, match="unverified weights"):
        res, rw = fid.fid_pytorchfid(real_dir, fake, weights=pt_weights, allow_singular=True, return_weights=True)
    assert rel(res["fid_pytorchfid"], frechet_distance(m_r, s_r, m_f, s_f)) <= 1e-4
    assert res["singular_covariance"] == 1.0 and res["n_real"] == res["n_fake"] == N_SIDE
    assert set(res) == {"fid_pytorchfid", "n_real", "n_fake", "singular_covariance"}
    assert all(type(v) in (float, int) for v in res.values())
    # Which weights were used is reported: here a non-official file, named with its full sha256.
    assert rw.verified is None and rw.label.startswith("unverified weights") and rw.sha256 in rw.label


@pytest.mark.slow
def test_pytorchfid_equals_calculate_fid_given_paths(tmp_path, pt_weights):
    """End to end against pytorch-fid's own path API, including its sqrtm-based Fréchet step (~1-2 min)."""
    from pytorch_fid.fid_score import calculate_fid_given_paths

    real_dir = save_folder(make_images(N_SIDE, 64, 1), tmp_path / "real")
    fake_dir = save_folder(make_images(N_SIDE, 64, 2), tmp_path / "fake")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_fid_given_paths([str(real_dir), str(fake_dir)], N_SIDE, "cpu", 2048, num_workers=0)
    ours = fid.fid_pytorchfid(real_dir, fake_dir, weights=pt_weights, allow_singular=True)["fid_pytorchfid"]
    assert rel(ours, float(ref)) <= 1e-4


# ------------------------------------------------------------------------------------------------ StarGAN v2


def starganv2_reference_features(folder: Path, weight_file: Path) -> np.ndarray:
    """Straightforward reimplementation: PIL loading, transforms.Resize 256 then 299, ToTensor, ImageNet Normalize,
    torchvision inception_v3's layers called in sequence (as StarGAN v2's metrics/fid.py wraps them)."""
    import torchvision
    from torchvision import transforms

    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    net.load_state_dict(torch.load(weight_file, weights_only=True))
    layers = torch.nn.Sequential(
        net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2),
        net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2),
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
        net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1)),
    ).eval()
    tf = transforms.Compose([
        transforms.Resize([256, 256]), transforms.Resize([299, 299]), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])
    with torch.no_grad():
        return layers(x).flatten(1).numpy()


def test_starganv2_equals_reimplementation(tmp_path, tv_weights):
    real_u8, fake_u8 = make_images(6, 96, 3), make_images(6, 96, 4)
    real_dir = save_folder(real_u8, tmp_path / "real")
    fake_dir = save_folder(fake_u8, tmp_path / "fake")
    ref_r = starganv2_reference_features(real_dir, tv_weights)
    ref_f = starganv2_reference_features(fake_dir, tv_weights)
    ours_r = fid.inception_features(real_dir, "fid_starganv2", weights=tv_weights, batch_size=4)
    ours_f = fid.inception_features(as_tensor(fake_u8), "fid_starganv2", weights=tv_weights, batch_size=4)
    scale = np.abs(ref_r).max()
    assert np.abs(ours_r - ref_r).max() <= 1e-5 * scale
    assert np.abs(ours_f - ref_f).max() <= 1e-5 * scale

    # StarGAN v2's reported number: per-task FID, then the mean. FID(a, b) and FID(b, a) are the same quantity.
    tasks = {"a2b": (real_dir, fake_dir), "b2a": (fake_dir, real_dir)}
    out, rw = fid.fid_starganv2_tasks(tasks, weights=tv_weights, allow_singular=True, return_weights=True)
    assert set(out) == {"fid_starganv2", "fid_starganv2/a2b", "fid_starganv2/b2a", "n_tasks",
                        "singular_covariance"}
    m_r, s_r = feature_stats(ref_r.astype(np.float64), allow_singular=True)
    m_f, s_f = feature_stats(ref_f.astype(np.float64), allow_singular=True)
    assert rel(out["fid_starganv2/a2b"], frechet_distance(m_r, s_r, m_f, s_f)) <= 1e-4
    assert rel(out["fid_starganv2/b2a"], out["fid_starganv2/a2b"]) <= 1e-6
    assert out["fid_starganv2"] == pytest.approx((out["fid_starganv2/a2b"] + out["fid_starganv2/b2a"]) / 2)
    assert out["n_tasks"] == 2 and out["singular_covariance"] == 1.0
    assert rw.verified is None and "unverified weights" in rw.label


def test_starganv2_accepts_mixed_sizes_like_the_reference(tmp_path, tv_weights):
    folder = tmp_path / "mixed"
    save_folder(make_images(2, 64, 5), folder)
    Image.fromarray(make_images(1, 300, 6)[0]).save(folder / "big.png")
    ref = starganv2_reference_features(folder, tv_weights)
    ours = fid.inception_features(folder, "fid_starganv2", weights=tv_weights)
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()


# ------------------------------------------------------------------------------------------------ Fréchet


def random_stats(rng, n, d, shift=0.0):
    x = np.maximum(rng.normal(size=(n, d)), 0) + shift  # ReLU-like features, as pool3 activations are
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def test_frechet_equals_pytorchfid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    for n, d in ((300, 64), (40, 16), (500, 128)):
        m1, s1 = random_stats(rng, n, d)
        m2, s2 = random_stats(rng, n, d, shift=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its sqrtm(disp=False) on SciPy >= 1.16
            ref = float(calculate_frechet_distance(m1, s1, m2, s2))
        assert frechet_distance(m1, s1, m2, s2, method="sqrtm") == ref  # same numerics, bit for bit
        assert rel(frechet_distance(m1, s1, m2, s2), ref) <= 1e-10  # default eigh route
        assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_singular_statistics_stay_finite():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(1)
    m1, s1 = random_stats(rng, 10, 48)  # rank 9 covariances
    m2, s2 = random_stats(rng, 12, 48, shift=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = float(calculate_frechet_distance(m1, s1, m2, s2))
    assert rel(frechet_distance(m1, s1, m2, s2), ref) <= 1e-4


def test_frechet_errors():
    rng = np.random.default_rng(2)
    m, s = random_stats(rng, 50, 8)
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(m, s, m[:4], s[:4, :4])
    bad = s.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(m, bad, m, s)
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(m, s, m, -s, method="sqrtm")  # what pytorch-fid reports as a bare 'Imaginary component'
    with pytest.raises(ValueError, match="positive semidefinite"):
        frechet_distance(m, s, m, -s)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(m, s, m, s, method="svd")


def test_feature_stats_and_sample_size():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 5)).astype(np.float32)
    mu, sigma = feature_stats(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_array_equal(mu, np.mean(x.astype(np.float64), axis=0))
    np.testing.assert_array_equal(sigma, np.cov(x.astype(np.float64), rowvar=False))
    with pytest.raises(ValueError, match="too few"):
        feature_stats(x[:1])
    with pytest.raises(ValueError, match=r"N=4 .*D=5.*singular"):
        feature_stats(x[:4])
    assert feature_stats(x[:4], allow_singular=True)[1].shape == (5, 5)
    x[3, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        feature_stats(x)
    with pytest.raises(ValueError, match="empty"):
        feature_stats(np.zeros((0, 5)))
    assert check_sample_size(2049, 2048) is False
    with pytest.raises(ValueError, match="2049"):
        check_sample_size(2048, 2048)
    assert check_sample_size(2048, 2048, allow_singular=True) is True


# ------------------------------------------------------------------------------------------------ errors


def test_input_errors(tmp_path, pt_weights, tv_weights):
    good = as_tensor(make_images(3, 32, 7))
    nan = good.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        fid.fid_pytorchfid(good, nan, weights=pt_weights, allow_singular=True)
    with pytest.raises(ValueError, match="empty"):
        fid.fid_pytorchfid(good, good[:0], weights=pt_weights, allow_singular=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        fid.fid_pytorchfid(tmp_path / "empty", good, weights=pt_weights)
    mixed = save_folder(make_images(2, 32, 8), tmp_path / "mixed")
    Image.fromarray(make_images(1, 48, 9)[0]).save(mixed / "zz.png")
    with pytest.raises(ValueError, match="different sizes"):
        fid.fid_pytorchfid(mixed, good, weights=pt_weights, allow_singular=True)
    with pytest.raises(ValueError, match="too few"):
        fid.fid_pytorchfid(good[:1], good, weights=pt_weights, allow_singular=True, cache=False)
    with pytest.raises(ValueError, match=r"N=3 .*D=2048"):
        fid.fid_pytorchfid(good, good, weights=pt_weights)
    with pytest.raises(ValueError, match="does not fit"):  # a torchvision Inception file for pytorch-fid's network
        fid.fid_pytorchfid(good, good, weights=tv_weights, allow_singular=True)


def test_official_weights_missing_is_a_clear_error():
    good = as_tensor(make_images(3, 32, 7))
    with pytest.raises(weights_mod.WeightsUnavailable, match=PT_FILE):
        fid.fid_pytorchfid(good, good)
    with pytest.raises(weights_mod.WeightsUnavailable, match=TV_FILE):
        fid.fid_starganv2(good, good)


# ------------------------------------------------------------------------------------------------ cache


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, src):
        self.calls += 1
        x = src if isinstance(src, torch.Tensor) else torch.cat(list(src))
        f = x.flatten(1).double().numpy()[:, :6]
        return f.mean(0), np.cov(f, rowvar=False), len(f)


KEY = {"extractor": "test", "version": 1, "weights_sha256": "ab" * 32}


def test_cache_hit_miss_content_change_and_corruption(tmp_path):
    x = as_tensor(make_images(4, 16, 12))
    fn = Counter()
    mu, sigma, n, hit = featcache.cached_stats(x, KEY, fn)
    assert (hit, fn.calls, n) == (False, 1, 4)
    mu2, sigma2, n2, hit = featcache.cached_stats(x.clone(), KEY, fn)
    assert hit and fn.calls == 1 and n2 == 4
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)

    changed = x.clone()
    changed[2, 1, 5, 5] += 2 / 255  # one pixel, one 8-bit level
    assert featcache.cached_stats(changed, KEY, fn)[3] is False and fn.calls == 2
    for part, value in (("version", 2), ("weights_sha256", "cd" * 32), ("extractor", "other")):
        assert featcache.cached_stats(x, {**KEY, part: value}, fn)[3] is False
    assert fn.calls == 5

    # A corrupt entry (truncated / garbage) is recomputed and rewritten.
    entries = sorted((tmp_path / "cache" / "features").glob("*.npz"))
    assert len(entries) == 5 and not list((tmp_path / "cache" / "features").glob("*.tmp"))
    for e in entries:
        e.write_bytes(e.read_bytes()[:100])
    assert featcache.cached_stats(x, KEY, fn)[3] is False and fn.calls == 6
    assert featcache.cached_stats(x, KEY, fn)[3] is True and fn.calls == 6
    for e in (tmp_path / "cache" / "features").glob("*.npz"):
        e.write_bytes(b"not an npz")
    assert featcache.cached_stats(x, KEY, fn)[3] is False and fn.calls == 7


def test_cache_folders_iterables_and_keys(tmp_path):
    folder = save_folder(make_images(3, 16, 13), tmp_path / "imgs")
    fn = Counter()

    def from_folder(src):
        from lrkit.metrics.imagesource import materialize
        return fn(materialize(src))

    assert featcache.cached_stats(folder, KEY, from_folder)[3] is False
    assert featcache.cached_stats(str(folder), KEY, from_folder)[3] is True
    a = np.array(Image.open(folder / "001.png"))
    a[0, 0, 0] ^= 1  # one pixel, one level
    Image.fromarray(a).save(folder / "001.png")
    assert featcache.cached_stats(folder, KEY, from_folder)[3] is False
    (folder / "001.png").rename(folder / "009.png")
    assert featcache.cached_stats(folder, KEY, from_folder)[3] is False
    assert fn.calls == 3

    batches = [as_tensor(make_images(2, 16, 14))]
    assert featcache.cached_stats(iter(batches), KEY, fn)[3] is False
    assert featcache.cached_stats(iter(batches), KEY, fn)[3] is False  # iterables are never cached
    with pytest.raises(ValueError, match="weights_sha256"):
        featcache.cached_stats(folder, {"extractor": "x", "version": 1}, fn)


def test_fid_uses_the_cache(tmp_path, pt_weights, monkeypatch):
    real = as_tensor(make_images(3, 32, 15))
    fake_dir = save_folder(make_images(3, 32, 16), tmp_path / "fake")
    first = [fid.inception_stats(src, weights=pt_weights) for src in (real, fake_dir)]
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 2

    def no_model(*args, **kwargs):
        raise AssertionError("the network ran although the set was cached")

    monkeypatch.setattr(fid, "_get_model", no_model)
    for src, (mu, sigma, n) in zip((real, fake_dir), first):
        mu2, sigma2, n2 = fid.inception_stats(src, weights=pt_weights)
        np.testing.assert_array_equal(mu2, mu)
        np.testing.assert_array_equal(sigma2, sigma)
        assert n2 == n == 3
    with pytest.raises(AssertionError, match="network ran"):
        fid.inception_stats(real, weights=pt_weights, cache=False)
    with pytest.raises(AssertionError, match="network ran"):  # other weights: another cache entry
        fid.inception_stats(real, weights=_copy_with_change(pt_weights, tmp_path / "other.pth"))


def _copy_with_change(src: Path, dst: Path) -> Path:
    state = torch.load(src, weights_only=True)
    state["fc.bias"] = state["fc.bias"] + 1  # unused by the features, but a different file (and sha256)
    torch.save(state, dst)
    return dst


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("protocol", ["fid_pytorchfid", "fid_starganv2"])
def test_cuda_features_match_cpu(protocol, pt_weights, tv_weights):
    w = pt_weights if protocol == "fid_pytorchfid" else tv_weights
    x = as_tensor(make_images(4, 64, 17))
    cpu = fid.inception_features(x, protocol, weights=w)
    gpu = fid.inception_features(x, protocol, weights=w, device="cuda")
    assert np.abs(gpu - cpu).max() <= 1e-4 * np.abs(cpu).max()
