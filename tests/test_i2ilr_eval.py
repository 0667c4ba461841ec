"""I2I-LR evaluation: the Table-1 protocol's translation sets, scoring, model reuse, and paper-comparison tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lrkit.data.ops import make_lr, to_uint8
from lrkit.evaluation.paper_compare import UNAVAILABLE, cells_from_records, with_paper
from lrkit.evaluation.translations import U8Images, bicubic_baseline, score, translate_eval_set
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.metrics.lr_consistency import lr_consistency
from lrkit.train.checkpoint import load_checkpoint
from lrkit.methods.i2ilr.task import ensure_trained, open_training_set, open_val_set, train_i2ilr
from lrkit.train.models import ensure_model, model_dir

from i2ilr_tiny import TINY as _TINY

TINY = _TINY.with_overrides(steps=2, checkpoint_every=2, sample_every=0)
pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))  # official weights: missing here


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRKIT_CACHE_DIR", str(root / "cache"))
        ckpt = ensure_trained(TINY, root, progress=False)
    return root, ckpt


def _dir(cfg, root, fp=None):
    return model_dir(cfg, root, task="i2ilr", data_fingerprint=fp or open_training_set(cfg).fingerprint)


def test_ensure_model_trains_once_then_reuses_and_resumes(runs):
    root, ckpt = runs
    assert ckpt == _dir(TINY, root) / "checkpoints" / "latest.pt"
    mtime = ckpt.stat().st_mtime_ns
    assert ensure_trained(TINY, root, progress=False) == ckpt
    assert ckpt.stat().st_mtime_ns == mtime  # reused, not retrained
    longer = TINY.with_overrides(steps=3)
    ck3 = ensure_trained(longer, root, progress=False)
    assert ck3 != ckpt and load_checkpoint(ck3)["step"] == 3  # another config -> its own model folder
    assert _dir(TINY.with_overrides(lambda_cyc=0.1), root) != _dir(TINY, root)
    # The checkpoint records the data it was trained on.
    assert load_checkpoint(ckpt)["data_fingerprint"] == open_training_set(TINY).fingerprint


def test_a_run_that_died_before_its_first_checkpoint_is_kept_aside_and_restarted(tmp_path, capsys):
    """A kernel killed before the first checkpoint leaves config.json and losses.jsonl and nothing to resume:
    the next ensure_trained keeps those files under abandoned/ and trains (seen in a parallel batch)."""
    cfg = TINY.with_overrides(steps=1, checkpoint_every=1)
    d = _dir(cfg, tmp_path)
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"task": "i2ilr"}')
    (d / "losses.jsonl").write_text('{"step": 1}\n')
    ckpt = ensure_trained(cfg, tmp_path, progress=False)
    assert load_checkpoint(ckpt)["step"] == 1
    kept = list((d / "abandoned").iterdir())
    assert len(kept) == 1 and (kept[0] / "losses.jsonl").read_text() == '{"step": 1}\n'
    assert "stopped before its first checkpoint" in capsys.readouterr().out


def test_model_cache_keys_on_the_training_data(runs, tmp_path):
    """Same config, another dataset folder -> another model; resuming a run on other data is refused."""
    from lrkit.data.synthfaces import export_folder

    root, _ = runs
    assert _dir(TINY, root, "fp-a") != _dir(TINY, root, "fp-b")
    real = TINY.with_overrides(dataset="celeba_hq", synth_n_train=0, synth_n_val=0, steps=1, checkpoint_every=1)
    a = export_folder("faces", tmp_path / "a" / "celeba_hq", n_train=4, n_val=1, size=32, seed=0)
    b = export_folder("faces", tmp_path / "b" / "celeba_hq", n_train=5, n_val=1, size=32, seed=1)
    ck_a = ensure_trained(real, tmp_path / "runs", data_root=str(tmp_path / "a"), progress=False)
    ck_b = ensure_trained(real, tmp_path / "runs", data_root={"celeba_hq": str(b)}, progress=False)
    assert ck_a != ck_b and ck_a.is_file() and ck_b.is_file()
    assert load_checkpoint(ck_a)["data_fingerprint"] == open_training_set(real, str(a)).fingerprint
    with pytest.raises(ValueError, match="trained on other data"):
        train_i2ilr(real.with_overrides(steps=2), ck_a.parent.parent, data_root=str(b), resume=True, progress=False)


def test_translation_set_follows_the_protocol(runs):
    _, ckpt = runs
    model = load_i2ilr(ckpt)
    val = open_val_set(TINY)
    ts = translate_eval_set(lambda s, t: translate(model.G, s, t), val, 8, n_targets=3, n_per_target=10)
    assert ts.outputs.shape == (3, 10, 32, 32, 3) and ts.outputs.dtype == np.uint8
    for t in range(3):
        assert t not in ts.source_idx[t] and len(set(ts.source_idx[t])) == 10
    # Output (t=1, k=4) is G(source, LR(target)) for that pair.
    src = val.pool.get([int(ts.source_idx[1, 4])])
    tgt = make_lr(val.pool.get([1]), 8)
    assert torch.equal(ts.targets_lr[1:2], tgt)
    one = to_uint8(translate(model.G, src, tgt))[0]
    assert np.abs(one.astype(int) - ts.outputs[1, 4].astype(int)).max() <= 1  # batch-size rounding only
    b = bicubic_baseline(val, 8, 32, n_targets=3, n_per_target=10)
    assert (b.outputs == b.outputs[:, :1]).all()  # ignores the source: zero diversity
    assert np.array_equal(b.source_idx, ts.source_idx)


def test_score_matches_direct_metrics_and_marks_missing_weights(runs, tmp_path):
    _, ckpt = runs
    model = load_i2ilr(ckpt)
    val = open_val_set(TINY)
    ts = translate_eval_set(lambda s, t: translate(model.G, s, t), val, 8, n_targets=2, n_per_target=10)
    results = tmp_path / "metrics.jsonl"
    recs = score(ts, val, None, ["lr_consistency", "fid_starganv2", "lpips_diversity"], results_file=results,
                 context={"run_id": "x"})
    by = {r["metric"]: r for r in recs}
    direct = lr_consistency(torch.cat(list(U8Images(ts.flat))), ts.flat_targets_lr())
    assert by["lr_consistency"]["values"]["lr_error_mean"] == pytest.approx(direct["lr_error_mean"], rel=1e-12)
    assert by["fid_starganv2"]["status"] == "unavailable" and by["lpips_diversity"]["status"] == "unavailable"
    assert "torchvision_inception_v3" in by["fid_starganv2"]["reason"] or "inception" in by["fid_starganv2"]["reason"]
    assert len(results.read_text().splitlines()) == 3
    cells = cells_from_records(recs, {"FID": ("fid_starganv2", "fid_starganv2"),
                                      "LR": ("lr_consistency", "lr_error_mean"),
                                      "PRDC": ("prdc_vgg16", "density")}, "@32")
    assert cells["FID@32"] == UNAVAILABLE and isinstance(cells["LR@32"], float) and "PRDC@32" not in cells
    with pytest.raises(ValueError, match="ground truth"):
        score(ts, val, None, ["psnr"])


def test_with_paper_puts_each_cell_next_to_the_papers():
    cells = {"Ours": {"FID@128": 20.5, "LPIPS@128": UNAVAILABLE, "LR error@128": 1.5},
             "Stargan-v2": {"FID@128": 30.0}}
    t = with_paper(cells, "i2ilr_table1", method_names={"Stargan-v2": "Stargan-v2 [8]"},
                   reported_only_notes={"MUNIT [16]": "not run"})
    assert t.loc[("Ours", "FID@128"), "paper"] == 15.52
    assert t.loc[("Ours", "FID@128"), "reproduced"] == 20.5 and t.loc[("Ours", "FID@128"), "status"] == "reproduced"
    own = with_paper(cells, "i2ilr_table1", own_measurement=["synthfaces, not the paper's dataset"])
    assert own.loc[("Ours", "FID@128"), "status"] == "own measurement"  # a synthfaces number is not a reproduction
    assert "synthfaces" in own.loc[("Ours", "FID@128"), "note"]
    assert own.loc[("Ours", "LR error@128"), "status"] == "not in paper"
    assert t.loc[("Ours", "LPIPS@128"), "status"] == "unavailable"
    assert t.loc[("Ours", "LR error@128"), "status"] == "not in paper"
    assert math.isnan(t.loc[("Ours", "LR error@128"), "paper"])
    assert t.loc[("Stargan-v2", "FID@128"), "paper"] == 19.58
    assert t.loc[("MUNIT [16]", "FID@256"), "status"] == "reported only"
    assert "not run" in t.loc[("MUNIT [16]", "FID@256"), "note"]
    assert t.loc[("Ours", "FID@256"), "status"] == "reported only"  # the paper's 256 px value we did not run
    # Every paper cell appears exactly once.
    assert len(t[t["paper"].notna()]) == 14  # Table 1 prints 14 numbers (MUNIT/DRIT/MSGAN: 256 px only)


def test_figure_grid_layout(runs):
    from lrkit.methods.i2ilr.task import sample_panel

    _, ckpt = runs
    model = load_i2ilr(ckpt)
    val = open_val_set(TINY)
    imgs = val.pool.get(list(range(7)))
    grid = sample_panel(model.G, imgs[:4], imgs[4:], 8)
    pad, cell = 2, 34
    assert grid.shape == (3, 4 * cell + pad, 6 * cell + pad)  # 1 header row + 3 targets; LR col + 4 + real HR
    # The real HR target sits in the last column of its row, the source in the top row.
    assert torch.equal(grid[:, pad + cell: pad + cell + 32, pad + 5 * cell: pad + 5 * cell + 32], imgs[4])
    assert torch.equal(grid[:, pad: pad + 32, pad + cell: pad + cell + 32], imgs[0])
    assert (grid[:, :pad] == 1).all()


def test_reiterable_image_sets_are_cached_by_content(runs, tmp_path):
    from lrkit.metrics import featcache
    from lrkit.evaluation.translations import pool_images
    from lrkit.methods.i2ilr.task import open_training_set

    train = open_training_set(TINY)
    src = pool_images(train)
    x = torch.cat(list(src))
    assert featcache.content_key(src) == featcache.content_key(x)  # same images, same key, any container
    assert featcache.content_key(iter([x])) is None  # a one-shot iterator is never fingerprinted (it would be used up)
    # A real folder is read through its path, so its features are cached by the folder's content.
    from lrkit.data.synthfaces import export_folder
    from lrkit.data.training_sets import open_images

    root = export_folder("animals", tmp_path / "afhq", n_train=2, n_val=1, size=32, seed=0)
    real = open_images("afhq", "train", 32, domains=("cat",), data_root=str(root))
    assert pool_images(real) == str(root / "train" / "cat")
    both = open_images("afhq", "train", 32, data_root=str(root))
    assert pool_images(both) == str(root / "train")


def test_a_cell_is_reproduced_only_on_the_papers_data_and_protocol():
    from lrkit.methods.i2ilr.config import get_preset
    from lrkit.methods.i2ilr.tables import _not_reproduction

    paper = get_preset("celebahq128")
    assert _not_reproduction(paper, "paper", 0, 0, 2000, 2000, given=False) == []
    assert _not_reproduction(paper, "paper", 0, 0, 2000, 2000, given=True) == []  # a user's fully trained checkpoint
    why = _not_reproduction(paper, "paper", 2, 0, 4, 2000, given=False)
    assert why == ["2 training steps instead of the preset's", "4 of 2000 val targets"]
    assert _not_reproduction(paper, "paper", 0, 2, 2000, 2000, given=False) == ["batch 2 instead of the preset's"]
    assert "synthfaces, not the paper's dataset" in _not_reproduction(TINY, "smoke", 0, 0, 16, 24, given=False)


def test_first_images_caps_the_real_set_under_its_own_name():
    """Profile.eval_real: the set metrics' real set is the first N training images, labelled so (never passed off
    as the whole training set); domains stay balanced and factors stay aligned with the images."""
    from lrkit.data.training_sets import first_images
    from lrkit.methods.i2ilr.config import get_preset
    from lrkit.profiles import get_profile

    full = open_training_set(get_preset("celebahq128_cpu"))
    sub = first_images(full, 200)
    assert len(sub) == 200 and sub.name.endswith("-first200") and sub.fingerprint != full.fingerprint
    np.testing.assert_array_equal(sub.pool.images, full.pool.images[:200])
    np.testing.assert_array_equal(sub.domain, full.domain[:200])
    assert abs(int((sub.domain == 0).sum()) - 100) <= 1
    assert all(np.array_equal(v, full.factors[k][:200]) for k, v in sub.factors.items())
    assert first_images(full, 0) is full and first_images(full, 5000) is full
    assert get_profile("smoke").eval_real == 200 and get_profile("paper").eval_real == 0
