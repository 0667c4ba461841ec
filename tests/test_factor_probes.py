"""Tests of the synthfaces factor probes and the synthfaces_factors metric (lrkit.metrics.factor_probes).

The probes are trained once per module on a small set (800 images x 5 epochs at 64 px, ~20 s on one core), which
reads the fine factors clearly above chance but below the default probes' accuracy; every score below is therefore
compared with what these probes themselves reach on real images (``val_accuracy``), not with fixed high numbers.
The default probes (1500 x 8) are checked in the slow test.

The key check is the ideal translation: the target's coarse factors rendered with the source's fine factors (what
a perfect model conditioned on the target's LR image would output) must score high on identity AND faithfulness,
while copying the source or the target fails one of the two.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.data import synthfaces as sf
from lrkit.data.ops import downscale
from lrkit.metrics import factor_probes as fp

SIZE = 64
N_TRAIN, EPOCHS, N_VAL = 800, 5, 200


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def probes(tmp_path_factory, one_thread):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRKIT_CACHE_DIR", str(tmp_path_factory.mktemp("probe_cache")))
        return fp.load_or_train_probes("faces", SIZE, n_train=N_TRAIN, epochs=EPOCHS, n_val=N_VAL)


@pytest.fixture(scope="module")
def val_set(tmp_path_factory):
    # The probes' own val images (the first N_VAL of the val split): never seen in training.
    return sf.generate("faces", "val", N_VAL, SIZE, 0, cache=False)


def images_of(arr: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() * (2.0 / 255.0) - 1.0


def take(factors: dict, idx) -> dict:
    return {k: np.asarray(v)[idx] for k, v in factors.items()}


def fine_names(variant="faces"):
    return sf.factor_names(variant, "fine")


def coarse_names(variant="faces"):
    return sf.factor_names(variant, "coarse")


# ---------------------------------------------------------------------------------------------------------------
# Probe quality
# ---------------------------------------------------------------------------------------------------------------


def test_small_probes_read_fine_factors_clearly_above_chance(probes):
    acc = probes.val_accuracy
    fine = [acc[n] for n in fine_names()]
    # Chance is 1/3 (three equally likely classes).
    assert min(fine) >= 0.45, acc
    assert np.mean(fine) >= 0.7, acc
    # The pose is what places the crops: it must be read well.
    for n in ("yaw", "roll", "cy"):
        assert acc[n] >= 0.8, (n, acc[n])
    assert acc["min_fine"] == pytest.approx(min(fine))
    assert acc["n"] == N_VAL
    for n in coarse_names():
        spec = next(s for s in sf.FACTORS["faces"] if s.name == n)
        if spec.kind == "continuous":
            assert 0.0 <= acc[n + "_mae"] <= 0.5
    assert "texture_seed" not in acc


def test_probe_accuracy_is_the_recorded_val_accuracy(probes):
    again = fp.probe_accuracy(probes, "faces", "val", N_VAL, SIZE)
    for n in fine_names() + coarse_names():
        assert again[n] == pytest.approx(probes.val_accuracy[n], abs=1e-9)
    with pytest.raises(ValueError, match="variant"):
        fp.probe_accuracy(probes, "animals")


# ---------------------------------------------------------------------------------------------------------------
# The metric on real images
# ---------------------------------------------------------------------------------------------------------------


def test_outputs_equal_to_sources(probes, val_set):
    x = images_of(val_set.images)
    r = fp.synthfaces_factors(x, val_set.factors, val_set.factors, probes=probes)
    # The same images the val accuracy was measured on: identity == the probes' accuracy per factor.
    for n in fine_names():
        assert r[f"identity/{n}"] == pytest.approx(probes.val_accuracy[n], abs=0.011)
        assert r[f"identity_target/{n}"] == r[f"identity/{n}"]
        assert r[f"probe_accuracy/{n}"] == probes.val_accuracy[n]
    for n in coarse_names():
        assert r[f"faithful/{n}"] == pytest.approx(probes.val_accuracy[n], abs=0.011)
    assert r["faithful_coarse_agreement"] == pytest.approx(r["probe_mean_coarse_accuracy"], abs=0.011)
    assert r["identity_fine_agreement"] >= r["chance_fine"] + 0.3
    assert r["n_images"] == N_VAL and r["probe_size"] == SIZE
    assert all(isinstance(v, (float, int)) and not isinstance(v, bool) for v in r.values())


def test_outputs_equal_to_targets_are_faithful_but_keep_no_identity(probes, val_set):
    src, tgt = np.arange(0, 100), np.arange(100, 200)
    x = images_of(val_set.images[tgt])
    r = fp.synthfaces_factors(x, take(val_set.factors, src), take(val_set.factors, tgt), probes=probes)
    fine_acc = np.mean([probes.val_accuracy[n] for n in fine_names()])
    assert r["identity_fine_agreement_target"] >= fine_acc - 0.1
    # Source and target fine factors are independent: agreement with the source is chance (1/3, 7 factors x 100).
    assert abs(r["identity_fine_agreement"] - 1 / 3) <= 0.1
    assert r["identity_fine_agreement"] <= r["chance_fine"] + 0.05
    assert r["faithful_coarse_agreement"] >= r["probe_mean_coarse_accuracy"] - 0.1


def ideal_translations(ss: sf.SynthSet, src, tgt) -> np.ndarray:
    """The target's coarse factors rendered with the source's fine factors (and the source's texture seed)."""
    out = []
    for i, j in zip(src, tgt):
        f = ss.factors_of(int(j))
        s = ss.factors_of(int(i))
        for n in fine_names() + ("texture_seed",):
            f[n] = s[n]
        out.append(sf.render(f, SIZE, "faces"))
    return np.stack(out)


def test_ideal_translation_scores_high_on_identity_and_faithfulness(probes, val_set):
    src, tgt = np.arange(0, 100), np.arange(100, 200)
    sfac, tfac = take(val_set.factors, src), take(val_set.factors, tgt)
    ideal = fp.synthfaces_factors(images_of(ideal_translations(val_set, src, tgt)), sfac, tfac, probes=probes)
    copy_src = fp.synthfaces_factors(images_of(val_set.images[src]), sfac, tfac, probes=probes)
    copy_tgt = fp.synthfaces_factors(images_of(val_set.images[tgt]), sfac, tfac, probes=probes)
    fine_acc = ideal["probe_mean_fine_accuracy"]
    # Identity as high as the probes can read it, and far above chance.
    assert ideal["identity_fine_agreement"] >= fine_acc - 0.08, (ideal, fine_acc)
    assert ideal["identity_fine_agreement"] >= ideal["chance_fine"] + 0.3
    assert ideal["identity_fine_agreement_target"] <= ideal["chance_fine_target"] + 0.05
    # Faithful to the target as far as the probes read coarse factors.
    assert ideal["faithful_coarse_agreement"] >= ideal["probe_mean_coarse_accuracy"] - 0.08
    assert ideal["faithful_coarse_mae"] <= copy_src["faithful_coarse_mae"] / 2
    # Each copy fails one side; the ideal translation wins on both.
    assert ideal["identity_fine_agreement"] >= copy_tgt["identity_fine_agreement"] + 0.25
    assert ideal["faithful_coarse_agreement"] >= copy_src["faithful_coarse_agreement"] + 0.25
    assert copy_src["identity_fine_agreement"] >= ideal["identity_fine_agreement"] - 0.05


def test_folder_iterable_and_larger_outputs_score_like_the_tensor(probes, val_set, tmp_path):
    idx = np.arange(24)
    imgs, fac = val_set.images[idx], take(val_set.factors, idx)
    ref = fp.synthfaces_factors(images_of(imgs), fac, fac, probes=probes, batch_size=10)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"{i:03d}.png")
    from_folder = fp.synthfaces_factors(tmp_path, fac, fac, probes=probes)
    x = images_of(imgs)
    from_iter = fp.synthfaces_factors(iter([x[:7], x[7:]]), fac, fac, probes=probes)
    # Off by a fraction of an 8-bit level: quantized to the same levels before the probes.
    nudged = fp.synthfaces_factors((x + 0.3 / 255).clamp(-1, 1), fac, fac, probes=probes)
    for other in (from_folder, from_iter, nudged):
        assert other.keys() == ref.keys()
        assert all(other[k] == pytest.approx(ref[k], abs=1e-6) for k in ref)
    # 128-px outputs are average-pooled to the 64-px probes (each 2x2 block of a 64-px image repeated is the image).
    big = fp.synthfaces_factors(x.repeat_interleave(2, -1).repeat_interleave(2, -2), fac, fac, probes=probes)
    assert all(big[k] == pytest.approx(ref[k], abs=1e-6) for k in ref)


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


def test_errors(probes, val_set):
    x = images_of(val_set.images[:8])
    fac = take(val_set.factors, np.arange(8))
    short = take(val_set.factors, np.arange(7))
    with pytest.raises(ValueError, match="8 outputs"):
        fp.synthfaces_factors(x, short, fac, probes=probes)
    with pytest.raises(ValueError, match="8 outputs"):
        fp.synthfaces_factors(x, fac, short, probes=probes)
    with pytest.raises(ValueError, match="8 outputs"):  # a single-pass iterable: checked after reading it
        fp.synthfaces_factors(iter([x[:4], x[4:]]), short, fac, probes=probes)
    missing = {k: v for k, v in fac.items() if k != "eye_shape"}
    with pytest.raises(KeyError, match="eye_shape"):
        fp.synthfaces_factors(x, missing, fac, probes=probes)
    bad = dict(fac, glasses=np.full(8, 5))
    with pytest.raises(ValueError, match="class indices"):
        fp.synthfaces_factors(x, bad, fac, probes=probes)
    with pytest.raises(ValueError, match="unknown synthfaces variant"):
        fp.synthfaces_factors(x, fac, fac, variant="cats", probes=probes)
    with pytest.raises(ValueError, match="variant"):
        fp.synthfaces_factors(x, fac, fac, variant="animals", probes=probes)
    with pytest.raises(ValueError, match="64 px"):
        fp.synthfaces_factors(downscale(x, 32), fac, fac, probes=probes)
    with pytest.raises(ValueError, match="trained at 64"):
        fp.synthfaces_factors(x, fac, fac, probes=probes, size=128)
    with pytest.raises(ValueError, match="NaN"):
        fp.synthfaces_factors(x * float("nan"), fac, fac, probes=probes)
    with pytest.raises(ValueError, match="empty"):
        fp.synthfaces_factors(iter([]), fac, fac, probes=probes)
    with pytest.raises(ValueError, match="unknown synthfaces variant"):
        fp.train_probes("cats", SIZE, n_train=8, epochs=1)
    with pytest.raises(ValueError, match="unknown synthfaces variant"):
        fp.load_or_train_probes("cats", SIZE, n_train=8, epochs=1)
    with pytest.raises(ValueError, match="size"):
        fp.load_or_train_probes("faces", 48, n_train=8, epochs=1)
    with pytest.raises(ValueError, match="n_train"):
        fp.ProbeConfig("faces", SIZE, 0, 1)


# ---------------------------------------------------------------------------------------------------------------
# Training: determinism, cache
# ---------------------------------------------------------------------------------------------------------------

TINY = dict(n_train=32, epochs=1, n_val=16)


def states_equal(a: fp.Probes, b: fp.Probes) -> bool:
    sa, sb = a.state(), b.state()
    for net in ("coarse", "refiner", "fine"):
        if sa[net].keys() != sb[net].keys():
            return False
        if not all(torch.equal(sa[net][k], sb[net][k]) for k in sa[net]):
            return False
    return sa["val_accuracy"] == sb["val_accuracy"] and sa["config"] == sb["config"]


def test_training_is_deterministic():
    a = fp.train_probes("animals", SIZE, n_train=32, epochs=2, n_val=16, seed=3)
    b = fp.train_probes("animals", SIZE, n_train=32, epochs=2, n_val=16, seed=3)
    c = fp.train_probes("animals", SIZE, n_train=32, epochs=2, n_val=16, seed=4)
    assert states_equal(a, b)
    assert not states_equal(a, c)
    assert set(a.val_accuracy) >= set(sf.factor_names("animals", "fine"))


def test_cache_hit_miss_and_corruption(monkeypatch):
    import warnings

    first = fp.load_or_train_probes("faces", SIZE, **TINY)
    config = fp.ProbeConfig("faces", SIZE, TINY["n_train"], TINY["epochs"], n_val=TINY["n_val"])
    path = fp.probe_cache_path(config, sf.generate("faces", "train", TINY["n_train"], SIZE).fingerprint())
    assert path.exists() and path.parent.name == "probes"
    # The file is plain data: loadable without unpickling any code.
    state = torch.load(path, weights_only=True)
    assert set(state) >= {"coarse", "refiner", "fine", "config", "val_accuracy", "train_fingerprint", "key"}
    assert state["config"]["n_train"] == TINY["n_train"]

    real_train = fp.train_probes
    calls = []

    def counting_train(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fp, "train_probes", counting_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a hit warns about nothing
        hit = fp.load_or_train_probes("faces", SIZE, **TINY)
    assert calls == [] and states_equal(hit, first)

    # Another seed (or n_train, epochs, ...) is another key: a miss, trained and stored beside the first.
    other = fp.load_or_train_probes("faces", SIZE, seed=1, **TINY)
    assert calls == [1] and not states_equal(other, first)
    assert len(list(path.parent.glob("*.pt"))) == 2

    # A corrupt file (garbage, or truncated) is retrained with a warning and replaced atomically.
    for damage in (b"not a torch file", path.read_bytes()[:1000]):
        path.write_bytes(damage)
        with pytest.warns(RuntimeWarning, match="unusable"):
            again = fp.load_or_train_probes("faces", SIZE, **TINY)
        assert states_equal(again, first)
        assert torch.load(path, weights_only=True)["key"] == state["key"]
    assert calls == [1, 0, 0]
    assert not list(path.parent.glob(".*.tmp"))

    # A valid file that belongs to another key is not trusted either.
    other_path = fp.probe_cache_path(fp.ProbeConfig("faces", SIZE, TINY["n_train"], TINY["epochs"], seed=1,
                                                    n_val=TINY["n_val"]), state["train_fingerprint"])
    path.write_bytes(other_path.read_bytes())
    with pytest.warns(RuntimeWarning, match="key"):
        fp.load_or_train_probes("faces", SIZE, **TINY)
    assert calls == [1, 0, 0, 0]


# ---------------------------------------------------------------------------------------------------------------
# The default probes (slow: ~45-60 s of training on 2 cores per variant)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_probes_faces_64():
    torch.set_num_threads(2)
    try:
        probes = fp.load_or_train_probes("faces", SIZE)
    finally:
        torch.set_num_threads(1)
    acc = probes.val_accuracy
    fine = [acc[n] for n in fine_names()]
    assert min(fine) >= 0.8, acc
    assert sum(a >= 0.9 for a in fine) >= 5, acc
    val = sf.generate("faces", "val", 200, SIZE, 0)
    src, tgt = np.arange(0, 100), np.arange(100, 200)
    r = fp.synthfaces_factors(images_of(ideal_translations(val, src, tgt)), take(val.factors, src),
                              take(val.factors, tgt), probes=probes)
    assert r["identity_fine_agreement"] >= 0.88
    assert r["faithful_coarse_agreement"] >= r["probe_mean_coarse_accuracy"] - 0.05


def test_two_callers_at_once_train_the_probes_once(monkeypatch):
    """Two notebooks of a batch asking for the same probes: one trains, the other waits on the lock and reads its
    file."""
    import threading

    real_train = fp.train_probes
    calls = []

    def slow_counting_train(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        time.sleep(0.5)  # long enough for the other caller to arrive while this one trains
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fp, "train_probes", slow_counting_train)
    got = []
    threads = [threading.Thread(target=lambda: got.append(fp.load_or_train_probes("faces", SIZE, seed=2, **TINY)))
               for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert calls == [2] and len(got) == 2 and states_equal(got[0], got[1])
