"""Shipped checkpoints (lrkit.train.shipped): inference copies indexed by the model cache's key, sha256-checked,
used by ensure_model instead of training; and the checkpoints that really ship with the kit."""

from __future__ import annotations

import pytest
import torch

import lrkit.train.shipped as shipped
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.methods.i2ilr.task import ensure_trained, open_training_set
from lrkit.train.checkpoint import load_checkpoint
from lrkit.train.models import model_dir

from i2ilr_tiny import TINY as _TINY

TINY = _TINY.with_overrides(steps=2, checkpoint_every=2, sample_every=0)
pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py


@pytest.fixture()
def trained(tmp_path):
    ckpt = ensure_trained(TINY, tmp_path / "runs", progress=False)
    return tmp_path, ckpt


def _name(cfg) -> str:
    return model_dir(cfg, "x", task="i2ilr", data_fingerprint=open_training_set(cfg).fingerprint).name


def test_a_shipped_copy_keeps_the_ema_generator_and_is_used_instead_of_training(trained, monkeypatch):
    tmp, ckpt = trained
    root = tmp / "shipped"
    monkeypatch.setattr(shipped, "shipped_dir", lambda: root)
    dst = shipped.ship(ckpt, _name(TINY))
    copy, full = load_checkpoint(dst), load_checkpoint(ckpt)
    assert sorted(copy["modules"]) == ["G_ema"] and copy["optimizers"] == {}
    assert (copy["config"], copy["step"], copy["data_fingerprint"]) == (full["config"], full["step"],
                                                                         full["data_fingerprint"])
    assert dst.stat().st_size < ckpt.stat().st_size / 2
    for k, v in full["modules"]["G_ema"].items():
        torch.testing.assert_close(copy["modules"]["G_ema"][k], v)
    # A fresh runs folder: the shipped model is used, nothing is trained (no model folder appears).
    fresh = tmp / "fresh"
    assert ensure_trained(TINY, fresh, progress=False) == dst
    assert not (fresh / "models").exists()
    g = load_i2ilr(dst)
    x, y = torch.rand(2, 3, TINY.hr_size, TINY.hr_size) * 2 - 1, torch.rand(2, 3, TINY.lr_size, TINY.lr_size) * 2 - 1
    torch.testing.assert_close(translate(g.G, x, y), translate(load_i2ilr(ckpt).G, x, y))
    # Another config (one more step) is not the shipped model: it trains.
    assert ensure_trained(TINY.with_overrides(steps=3), fresh, progress=False).parent.parent.parent == fresh / \
        "models" / "i2ilr"
    # LRKIT_IGNORE_SHIPPED=1 trains the shipped config here too.
    monkeypatch.setenv("LRKIT_IGNORE_SHIPPED", "1")
    assert ensure_trained(TINY, fresh, progress=False) != dst


def test_a_changed_or_missing_shipped_file_is_an_error_naming_the_fix(trained, monkeypatch):
    tmp, ckpt = trained
    root = tmp / "shipped"
    monkeypatch.setattr(shipped, "shipped_dir", lambda: root)
    dst = shipped.ship(ckpt, _name(TINY))
    data = bytearray(dst.read_bytes())
    data[-100] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(shipped.ShippedCheckpointError, match="sha256 .* reinstall lrkit"):
        ensure_trained(TINY, tmp / "fresh", progress=False)
    dst.unlink()
    with pytest.raises(shipped.ShippedCheckpointError, match="missing; reinstall lrkit"):
        shipped.find_shipped("i2ilr", _name(TINY))
    assert shipped.find_shipped("i2ilr", "other-0123456789") is None


def test_translate_takes_a_shipped_preset_by_name(trained, monkeypatch, capsys):
    from PIL import Image

    from lrkit import cli

    tmp, ckpt = trained
    root = tmp / "shipped"
    monkeypatch.setattr(shipped, "shipped_dir", lambda: root)
    dst = shipped.ship(ckpt, _name(TINY))
    assert shipped.resolve_checkpoint(f"shipped:{TINY.preset}", "i2ilr") == dst
    assert shipped.resolve_checkpoint(str(ckpt), "i2ilr") == ckpt  # a path stays a path
    with pytest.raises(shipped.ShippedCheckpointError, match=rf"\(shipped: {TINY.preset}\); pass one"):
        shipped.resolve_checkpoint("shipped:celebahq999", "i2ilr")
    src, tgt = tmp / "s.png", tmp / "t.png"
    Image.new("RGB", (TINY.hr_size, TINY.hr_size), (200, 30, 30)).save(src)
    Image.new("RGB", (TINY.lr_size, TINY.lr_size), (20, 90, 200)).save(tgt)
    assert cli.main(["translate", "--checkpoint", f"shipped:{TINY.preset}", "--source", str(src), "--target",
                     str(tgt), "--out", str(tmp / "out")]) == 0
    assert "shipped with lrkit" in capsys.readouterr().out and (tmp / "out" / "t__s.png").is_file()


def test_the_kits_index_lists_files_that_exist_with_their_sha256():
    index = shipped.shipped_index()
    total = 0
    for key, entry in index.items():
        task, name = key.split("/")
        path = shipped.find_shipped(task, name)  # raises on a wrong sha256
        assert path is not None and load_checkpoint(path, task=task)["step"] == entry["step"]
        total += entry["bytes"]
    assert total <= 25 * 2 ** 20  # the budget for shipped checkpoints
    # No unindexed file ships (it would be package data nobody checks).
    assert sorted(p.name for p in shipped.shipped_dir().glob("*.pt")) == sorted(e["file"] for e in index.values())


def test_an_evaluating_notebook_never_trains_a_model_that_should_ship(trained, monkeypatch):
    """train=False (a table under a profile with eval_models): shipped or finished in the cache, else one clear
    error naming the fixes; a miniature's steps switch back to training the profile's own presets."""
    from lrkit.profiles import get_profile, model_profile
    from lrkit.train.models import ModelNotShipped

    tmp, ckpt = trained
    monkeypatch.setattr(shipped, "shipped_dir", lambda: tmp / "shipped")
    with pytest.raises(ModelNotShipped, match="neither ships with this lrkit .* -p steps=N"):
        ensure_trained(TINY, tmp / "fresh", progress=False, train=False)
    assert ensure_trained(TINY, tmp / "runs", progress=False, train=False) == ckpt  # finished in the cache
    dst = shipped.ship(ckpt, _name(TINY))
    assert ensure_trained(TINY, tmp / "fresh", progress=False, train=False) == dst
    # A training notebook never takes the shipped copy (it has no losses): the cache's run, or trained here.
    assert ensure_trained(TINY, tmp / "runs", progress=False, use_shipped=False) == ckpt
    smoke = get_profile("smoke")
    assert model_profile(smoke) == ("cpu", False)  # the smoke tables and figures evaluate the shipped cpu models
    assert model_profile(smoke, steps=5) == ("smoke", True) and model_profile(get_profile("cpu")) == ("cpu", True)


# The shipped main model (celebahq128_cpu, 32 px, LR 8) on this test's few val images (4 targets x 4 sources,
# 8-bit outputs). Measured 2026-12-03 on the 2-core CPU: LR error 0.054 grey levels (all 16 within 2), source dependence 0.31
# (the failure the cpu profile was built to fix - outputs of one target the same whatever the source - measured
# 0.04 in the issue and 0.03-0.12 in the study's LR-difference-D arms).
SHIPPED_LR_ERROR_MAX = 0.5  # grey levels: the 8-bit rounding only (the target is 1)
SHIPPED_SOURCE_DEPENDENCE_MIN = 0.2  # output variation across sources / the sources' own variation


def test_the_shipped_cpu_i2ilr_model_fits_its_targets_and_keeps_its_source(tmp_path):
    from lrkit.methods.i2ilr.config import get_preset
    from lrkit.methods.i2ilr.evaluation import evaluate_preset
    from lrkit.methods.i2ilr.study import source_dependence

    cfg = get_preset("celebahq128_cpu")
    ckpt = ensure_trained(cfg, tmp_path / "runs", progress=False, train=False)  # ModelNotShipped if it does not ship
    assert shipped.is_shipped(ckpt)
    res = evaluate_preset(cfg, ckpt, ["lr_consistency"], n_targets=4, n_per_target=4, baseline=False)
    lr = next(r["values"] for r in res["records"]["Ours"] if r["metric"] == "lr_consistency")
    dep = source_dependence(res["sets"]["Ours"], res["val"])
    assert lr["lr_error_mean"] <= SHIPPED_LR_ERROR_MAX, lr
    assert dep["source_dependence"] >= SHIPPED_SOURCE_DEPENDENCE_MIN, dep
