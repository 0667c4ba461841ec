"""Tests of the synthfaces procedural dataset (lrkit.data.synthfaces).

The central property is the split of factors into *coarse* ones (visible in an 8x8 average-pooled image) and
*fine* ones (identity details that are not). It is checked on the 8x8 average pool of the uint8 images, computed
here with plain numpy (reshape + mean), in 8-bit levels:

* swapping any one fine factor to any other class changes the pooled image by at most ``FINE_MEAN`` levels on
  average (over the 8x8x3 values) and ``FINE_MAX`` levels at any single value, at 128 and 256 px;
* a meaningful change of a coarse factor changes it by at least ``COARSE_MEAN`` levels on average.
"""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.data import synthfaces as sf
from lrkit.data.synthfaces import dataset as sf_dataset

FINE_MEAN = 0.5  # levels, mean |diff| over the 8x8x3 pooled values (measured worst case ~0.15)
FINE_MAX = 6.0  # levels, worst single pooled value (measured worst case ~5.0, irises)
COARSE_MEAN = 8.0  # levels, mean |diff| averaged over the test images


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


def pool8(img: np.ndarray) -> np.ndarray:
    """[S, S, 3] uint8 -> [8, 8, 3] float64 average pool (exact: S is a multiple of 8)."""
    s = img.shape[0]
    b = s // 8
    return img.astype(np.float64).reshape(8, b, 8, b, 3).mean(axis=(1, 3))


def pool(img: np.ndarray, k: int) -> np.ndarray:
    s = img.shape[0] // k
    return img.astype(np.float64).reshape(s, k, s, k, 3).mean(axis=(1, 3))


# ---------------------------------------------------------------------------------------------------------------
# Specs and sampling
# ---------------------------------------------------------------------------------------------------------------


def test_factor_specs_are_consistent():
    assert sf.VARIANTS == ("faces", "animals")
    assert sf.DOMAINS == {"faces": ("longhair", "shorthair"), "animals": ("cat", "dog", "wild")}
    for variant in sf.VARIANTS:
        specs = sf.FACTORS[variant]
        names = [s.name for s in specs]
        assert len(names) == len(set(names))
        assert names[0] == "domain" and specs[0].group == "coarse" and specs[0].classes == sf.DOMAINS[variant]
        for s in specs:
            assert s.group in ("coarse", "fine", "nuisance")
            assert s.kind in ("categorical", "continuous", "seed")
            if s.group == "fine":
                assert s.kind == "categorical" and 2 <= s.n_classes <= 4
            if s.kind == "continuous":
                assert s.low < s.high
        assert len(sf.factor_names(variant, "fine")) >= 6
        assert sf.factor_names(variant, "nuisance") == ("texture_seed",)
    assert set(sf.factor_names("faces", "fine")) == {
        "eye_shape", "iris_color", "eyebrow", "glasses", "mouth", "skin_marks", "earring"}
    assert set(sf.factor_names("animals", "fine")) == {
        "eye_shape", "iris_color", "nose_shape", "whiskers", "fur_detail", "ear_tip"}


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_sample_factors_deterministic_typed_and_in_range(variant):
    f = sf.sample_factors(variant, 3, "train", 17)
    assert f == sf.sample_factors(variant, 3, "train", 17)
    assert list(f) == list(sf.factor_names(variant))
    for spec in sf.FACTORS[variant]:
        v = f[spec.name]
        if spec.kind == "continuous":
            assert type(v) is float and spec.low <= v <= spec.high
        else:
            assert type(v) is int and spec.low <= v <= spec.high
    # Every coordinate of the stream matters.
    others = [sf.sample_factors(variant, 4, "train", 17), sf.sample_factors(variant, 3, "val", 17),
              sf.sample_factors(variant, 3, "train", 18)]
    for g in others:
        assert g["texture_seed"] != f["texture_seed"] and g["yaw"] != f["yaw"]


def test_train_and_val_streams_do_not_overlap():
    train = {sf.sample_factors("faces", 0, "train", i)["texture_seed"] for i in range(300)}
    val = {sf.sample_factors("faces", 0, "val", i)["texture_seed"] for i in range(300)}
    assert not train & val


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_domains_exactly_balanced_and_fine_classes_roughly_balanced(variant):
    k = len(sf.DOMAINS[variant])
    n = 120 * k
    rows = [sf.sample_factors(variant, 0, "train", i) for i in range(n)]
    dom = np.array([r["domain"] for r in rows])
    # Every prefix whose length is a multiple of the number of domains is exactly balanced...
    for m in (k, 5 * k, n):
        assert np.bincount(dom[:m], minlength=k).tolist() == [m // k] * k
    # ... but the order is not a fixed cycle.
    assert len({tuple(dom[i:i + k]) for i in range(0, n, k)}) > 1
    for spec in sf.FACTORS[variant]:
        if spec.group != "fine":
            continue
        freq = np.bincount([r[spec.name] for r in rows], minlength=spec.n_classes) / n
        expected = 1.0 / spec.n_classes
        assert np.all(np.abs(freq - expected) < 0.35 * expected), (spec.name, freq)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sf.VARIANTS)
@pytest.mark.parametrize("size", sf.SIZES)
def test_render_shape_dtype_and_determinism(variant, size):
    f = sf.sample_factors(variant, 0, "train", 5)
    img = sf.render(f, size, variant)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert np.array_equal(img, sf.render(dict(f), size, variant))
    assert img.std() > 10  # not a flat fill


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_same_factors_at_128_and_256_give_the_same_picture(variant):
    for i in range(3):
        f = sf.sample_factors(variant, 1, "train", i)
        a = sf.render(f, 128, variant).astype(np.float64)
        b = pool(sf.render(f, 256, variant), 2)
        assert np.abs(a - b).mean() < 1.5  # measured <= 0.7 levels
        assert np.abs(pool8(a) - pool8(b)).max() < 2.0  # their 8x8 versions agree (measured <= 0.8)


def _fine_lr_changes(variant: str, size: int, indices) -> dict[str, tuple[float, float]]:
    """For each fine factor: (worst mean |diff|, worst max |diff|) of the 8x8 pool over images and classes."""
    out = {}
    for i in indices:
        f = sf.sample_factors(variant, 11, "val", i)
        base = pool8(sf.render(f, size, variant))
        for spec in sf.FACTORS[variant]:
            if spec.group != "fine":
                continue
            for c in range(spec.n_classes):
                if c == f[spec.name]:
                    continue
                g = dict(f)
                g[spec.name] = c
                d = np.abs(pool8(sf.render(g, size, variant)) - base)
                m, x = out.get(spec.name, (0.0, 0.0))
                out[spec.name] = (max(m, d.mean()), max(x, d.max()))
    return out


@pytest.mark.parametrize("variant", sf.VARIANTS)
@pytest.mark.parametrize("size,indices", [(128, range(6)), (256, range(6, 9))])
def test_fine_factors_do_not_survive_8x8_average_pooling(variant, size, indices):
    changes = _fine_lr_changes(variant, size, indices)
    assert set(changes) == set(sf.factor_names(variant, "fine"))
    for name, (mean, worst) in changes.items():
        assert mean <= FINE_MEAN, f"{variant} {size}px fine factor {name}: mean LR change {mean:.2f} levels"
        assert worst <= FINE_MAX, f"{variant} {size}px fine factor {name}: max LR change {worst:.2f} levels"


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_fine_factors_are_visible_at_high_resolution(variant):
    """The same swaps that leave the 8x8 image alone do change the 128 px image (a classifier can see them)."""
    for i in range(2):
        _check_visible(variant, sf.sample_factors(variant, 11, "val", i))


def _check_visible(variant, f):
    base = sf.render(f, 128, variant).astype(np.float64)
    for spec in sf.FACTORS[variant]:
        if spec.group != "fine":
            continue
        for c in range(spec.n_classes):
            if c == f[spec.name]:
                continue
            g = dict(f)
            g[spec.name] = c
            d = np.abs(sf.render(g, 128, variant).astype(np.float64) - base).max(axis=-1)
            # At least 10 pixels change by a clearly visible amount (12 levels or more in some channel).
            assert (d >= 12).sum() >= 10, (spec.name, c, int((d >= 12).sum()))


def _coarse_change(variant: str, spec: sf.FactorSpec, f: dict) -> tuple[dict, dict]:
    a, b = dict(f), dict(f)
    if spec.kind == "categorical":
        b[spec.name] = (f[spec.name] + 1) % spec.n_classes
    elif spec.name in ("bg_hue", "cloth_hue", "light_angle"):  # circular: go half way round
        span = spec.high - spec.low
        b[spec.name] = spec.low + (f[spec.name] - spec.low + span / 2) % span
        if spec.name == "light_angle":
            a["light_strength"] = b["light_strength"] = 0.6
    else:  # from one end of the range to the other
        a[spec.name], b[spec.name] = spec.low, spec.high
    return a, b


COARSE_TESTED = {
    "faces": ("domain", "yaw", "roll", "cx", "cy", "scale", "skin_tone", "hair_color", "bg_hue", "bg_value",
              "light_angle", "light_strength"),
    "animals": ("domain", "yaw", "roll", "cx", "scale", "fur_tone", "bg_hue", "bg_value", "light_angle",
                "light_strength"),
}


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_coarse_factors_survive_8x8_average_pooling(variant):
    specs = {s.name: s for s in sf.FACTORS[variant]}
    for name in COARSE_TESTED[variant]:
        assert specs[name].group == "coarse"
        changes = []
        for i in range(4):
            a, b = _coarse_change(variant, specs[name], sf.sample_factors(variant, 5, "train", i))
            changes.append(np.abs(pool8(sf.render(a, 128, variant)) - pool8(sf.render(b, 128, variant))).mean())
        assert np.mean(changes) >= COARSE_MEAN, f"{variant} coarse factor {name}: mean LR change {changes}"


def test_coarse_factors_survive_at_256():
    f = sf.sample_factors("faces", 5, "train", 0)
    for name in ("yaw", "cx", "skin_tone"):
        a, b = _coarse_change("faces", next(s for s in sf.FACTORS["faces"] if s.name == name), f)
        assert np.abs(pool8(sf.render(a, 256, "faces")) - pool8(sf.render(b, 256, "faces"))).mean() >= COARSE_MEAN


def test_render_validates_factors():
    f = sf.sample_factors("faces", 0, "train", 0)
    g = dict(f)
    del g["glasses"]
    with pytest.raises(KeyError, match="glasses"):
        sf.render(g, 64, "faces")
    g = dict(f, glasses=3)
    with pytest.raises(ValueError, match="glasses"):
        sf.render(g, 64, "faces")


# ---------------------------------------------------------------------------------------------------------------
# Sets and the cache
# ---------------------------------------------------------------------------------------------------------------


def test_generate_is_deterministic_and_depends_on_seed_and_split():
    a = sf.generate("faces", "train", 4, 32, seed=0, cache=False)
    b = sf.generate("faces", "train", 4, 32, seed=0, cache=False)
    assert a.images.tobytes() == b.images.tobytes() and a.fingerprint() == b.fingerprint()
    c = sf.generate("faces", "train", 4, 32, seed=1, cache=False)
    d = sf.generate("faces", "val", 4, 32, seed=0, cache=False)
    for other in (c, d):
        assert other.fingerprint() != a.fingerprint()
        assert not np.array_equal(other.images, a.images)
    assert a.images.shape == (4, 32, 32, 3) and a.images.dtype == np.uint8
    assert a.domain.dtype == np.int64 and a.domain.shape == (4,)
    assert np.array_equal(a.domain, a.factors["domain"])
    assert (a.variant, a.split, a.size, a.seed, len(a)) == ("faces", "train", 32, 0, 4)


def test_subsets_are_prefixes():
    small = sf.generate("animals", "train", 3, 32, seed=2, cache=False)
    big = sf.generate("animals", "train", 7, 32, seed=2, cache=False)
    assert np.array_equal(big.images[:3], small.images)
    for k, v in small.factors.items():
        assert np.array_equal(big.factors[k][:3], v)


@pytest.mark.parametrize("variant", sf.VARIANTS)
def test_stored_factors_reproduce_the_images(variant):
    ss = sf.generate(variant, "val", 5, 64, seed=4)
    for i in range(len(ss)):
        f = sf.sample_factors(variant, 4, "val", i)
        assert ss.factors_of(i) == f
        assert np.array_equal(sf.render(f, 64, variant), ss.images[i])
    for spec in sf.FACTORS[variant]:
        assert ss.factors[spec.name].dtype == (np.float64 if spec.kind == "continuous" else np.int64)


def test_cache_round_trip(monkeypatch):
    first = sf.generate("faces", "train", 5, 32, seed=3)
    path = sf.cache_path("faces", "train", 5, 32, 3)
    assert path.exists() and path.parent == sf.cache_dir("synthfaces")
    assert sf.SYNTHFACES_VERSION in path.name

    def no_render(*args, **kwargs):
        raise AssertionError("render() called although the set is cached")

    monkeypatch.setattr(sf_dataset, "render", no_render)  # the name generate() looks up
    second = sf.generate("faces", "train", 5, 32, seed=3)
    assert second.images.tobytes() == first.images.tobytes()
    assert second.fingerprint() == first.fingerprint()
    for k in first.factors:
        assert np.array_equal(first.factors[k], second.factors[k])
        assert first.factors[k].dtype == second.factors[k].dtype


def _corrupt_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_garbage(path):
    path.write_bytes(b"this is not an npz file")


def _corrupt_content(path):
    # A well-formed npz whose image bytes no longer match the stored content hash.
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["images"] = arrays["images"].copy()
    arrays["images"][0, 0, 0, 0] ^= 1
    np.savez(path, **arrays)
    assert zipfile.is_zipfile(path)


def _corrupt_empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_garbage, _corrupt_content, _corrupt_empty])
def test_corrupt_cache_is_regenerated(corrupt):
    good = sf.generate("animals", "val", 3, 32, seed=1)
    path = sf.cache_path("animals", "val", 3, 32, 1)
    corrupt(path)
    again = sf.generate("animals", "val", 3, 32, seed=1)
    assert again.fingerprint() == good.fingerprint()
    assert again.images.tobytes() == good.images.tobytes()
    # ... and the bad file was replaced by a good one.
    with np.load(path) as z:
        assert np.array_equal(z["images"], good.images)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_fingerprint_is_content_based():
    a = sf.generate("faces", "val", 3, 32, seed=0, cache=False)
    b = sf.SynthSet(a.images.copy(), {k: v.copy() for k, v in a.factors.items()}, a.domain.copy(), "faces", "val",
                    32, 0)
    assert b.fingerprint() == a.fingerprint()
    images = a.images.copy()
    images[1, 5, 5, 1] ^= 4
    c = sf.SynthSet(images, a.factors, a.domain, "faces", "val", 32, 0)
    assert c.fingerprint() != a.fingerprint()
    factors = dict(a.factors, yaw=a.factors["yaw"] + 1e-9)
    d = sf.SynthSet(a.images, factors, a.domain, "faces", "val", 32, 0)
    assert d.fingerprint() != a.fingerprint()


# ---------------------------------------------------------------------------------------------------------------
# Dataset and export
# ---------------------------------------------------------------------------------------------------------------


def test_dataset_items():
    ds = sf.SynthFacesDataset("faces", "train", n=3, size=32, seed=0)
    assert len(ds) == 6 and ds.domain_names == ("longhair", "shorthair")
    labels = []
    for i in range(len(ds)):
        item = ds[i]
        img = item["image"]
        assert img.shape == (3, 32, 32) and img.dtype == torch.float32
        assert -1.0 <= float(img.min()) and float(img.max()) <= 1.0
        assert item["factors"] == sf.sample_factors("faces", 0, "train", item["index"])
        assert item["domain"] == item["factors"]["domain"]
        expected = sf.render(item["factors"], 32, "faces")
        back = np.rint((img.permute(1, 2, 0).numpy() + 1.0) * 127.5).astype(np.uint8)
        assert np.array_equal(back, expected)
        labels.append(item["domain"])
    assert sorted(labels) == [0, 0, 0, 1, 1, 1]
    assert isinstance(ds.fingerprint, str) and len(ds.fingerprint) == 64
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_dataset_domain_subset_and_hflip():
    ds = sf.SynthFacesDataset("animals", "val", n=2, size=32, seed=0, domains=["wild", "cat"])
    assert ds.domain_names == ("cat", "wild")  # DOMAINS order, labels 0/1
    assert len(ds) == 4
    for i in range(len(ds)):
        item = ds[i]
        assert ds.domain_names[item["domain"]] == sf.DOMAINS["animals"][item["factors"]["domain"]]
    full = sf.SynthFacesDataset("animals", "val", n=2, size=32, seed=0)
    assert full.fingerprint != ds.fingerprint
    flipping = sf.SynthFacesDataset("animals", "val", n=2, size=32, seed=0, domains=["wild", "cat"], hflip=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        item = flipping[0]
        ref = ds[0]["image"]
        if item["flipped"]:
            assert torch.equal(item["image"], ref.flip(-1))
        else:
            assert torch.equal(item["image"], ref)
        seen.add(item["flipped"])
    assert seen == {True, False}


def test_export_folder_layout_and_factors_csv(tmp_path):
    root = sf.export_folder("animals", tmp_path / "synth", n_train=2, n_val=1, size=32, seed=0)
    assert root == tmp_path / "synth"
    for split, per_domain in (("train", 2), ("val", 1)):
        for d in sf.DOMAINS["animals"]:
            files = sorted((root / split / d).glob("*.png"))
            assert len(files) == per_domain
            for p in files:
                assert len(p.stem) == 6 and p.stem.isdigit()
    rows = sf.read_factors_csv(root / "factors.csv", "animals")
    assert len(rows) == 3 * 2 + 3 * 1
    for row in rows:
        f = sf.sample_factors("animals", 0, row["split"], row["index"])
        assert row["factors"] == f  # exact, floats included
        assert row["file"] == f"{row['split']}/{sf.DOMAINS['animals'][f['domain']]}/{row['index']:06d}.png"
        img = np.asarray(Image.open(root / row["file"]).convert("RGB"))
        assert np.array_equal(img, sf.render(f, 32, "animals"))
    with open(root / "factors.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:4] == ["split", "domain", "file", "index"]
    assert set(header[4:]) == set(sf.factor_names("animals")) - {"domain"}


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sf.sample_factors("cars", 0, "train", 0), r"unknown synthfaces variant 'cars'.*faces.*animals"),
        (lambda: sf.sample_factors("faces", 0, "test", 0), r"unknown synthfaces split 'test'.*train.*val"),
        (lambda: sf.sample_factors("faces", -1, "train", 0), r"seed must be an integer >= 0"),
        (lambda: sf.generate("faces", "train", 0, 64), r"n must be an integer >= 1"),
        (lambda: sf.generate("faces", "train", 2, 100), r"power of two in 32..256.*got 100"),
        (lambda: sf.generate("faces", "train", 2, 512), r"power of two in 32..256.*got 512"),
        (lambda: sf.generate("faces", "train", 2, 16), r"power of two in 32..256.*got 16"),
        (lambda: sf.render(sf.sample_factors("faces", 0, "train", 0), True, "faces"), r"power of two"),
        (lambda: sf.render({}, 64, "dogs"), r"unknown synthfaces variant 'dogs'"),
        (lambda: sf.SynthFacesDataset("faces", domains=["female"]),
         r"unknown domain 'female'.*'longhair', 'shorthair'"),
        (lambda: sf.SynthFacesDataset("animals", domains=[]), r"must not be empty.*'cat', 'dog', 'wild'"),
        (lambda: sf.export_folder("faces", "unused", n_train=0, n_val=1, size=32), r"n_train must be"),
    ],
)
def test_errors_name_the_valid_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()
