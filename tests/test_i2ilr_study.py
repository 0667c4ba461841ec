"""The I2I-LR training study's measurements (source dependence, loss balance) and its smoke run (CPU, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrkit.data.ops import to_uint8
from lrkit.evaluation.translations import TranslationSet
from lrkit.methods.i2ilr import study

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py


class _Pool:
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def get(self, idx):
        return self.images[list(idx)]


class _Val:
    def __init__(self, images):
        self.pool = _Pool(images)


def _set(outputs: torch.Tensor, source_idx: np.ndarray) -> TranslationSet:
    u8 = to_uint8(outputs.flatten(0, 1)).reshape(*outputs.shape[:2], *outputs.shape[3:], 3)
    return TranslationSet("m", u8, source_idx, np.arange(outputs.shape[0]), None)


def test_source_dependence_is_zero_for_an_upsampler_and_one_for_a_copy():
    torch.manual_seed(0)
    val = _Val(torch.rand(12, 3, 8, 8) * 2 - 1)
    src = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 0]])
    copy = torch.stack([val.pool.get(row) for row in src])  # outputs = sources: the source fully used
    same = copy[:, :1].repeat(1, 4, 1, 1, 1)  # every output of a row the same image: the source ignored
    assert study.source_dependence(_set(copy, src), val)["source_dependence"] == pytest.approx(1.0, abs=0.01)
    d = study.source_dependence(_set(same, src), val)
    assert d["source_dependence"] == 0.0 and d["output_variation"] == 0.0 and d["source_variation"] > 20


def test_loss_balance_averages_the_last_tenth(tmp_path):
    p = tmp_path / "losses.jsonl"
    p.write_text("".join(json.dumps({"step": i + 1, "d_fake_logit": float(i), "note": "x"}) + "\n"
                         for i in range(20)))
    assert study.loss_balance(p) == {"d_fake_logit": 18.5}  # steps 19 and 20 (values 18, 19)


def test_arms_are_named_changes_of_the_profile_base():
    base = study.study_base("smoke")
    cfg = study.arm_config("cyc10_lrd1e-3", base)
    assert (cfg.lambda_cyc, cfg.lr_d, cfg.preset) == (10.0, 1e-3, "study_smoke_cyc10_lrd1e-3")
    assert study.arm_config("public_code", base).choices.d_patch
    assert study.arm_config("paper", base, steps=3).steps == 3
    with pytest.raises(ValueError, match="under the profiles"):
        study.study_base("paper")


def test_smoke_study_trains_diagnoses_and_saves(tmp_path, monkeypatch):
    import functools

    from lrkit.metrics import factor_probes
    from lrkit.runs.context import open_run

    # Tiny probes (the real ones take ~40 s to train in this test's fresh cache): the plumbing is under test.
    monkeypatch.setattr(factor_probes, "load_or_train_probes",
                        functools.partial(factor_probes.load_or_train_probes, n_train=64, epochs=1, n_val=32))

    ctx = open_run("", "smoke", notebook="i2ilr_training_study", output_root=tmp_path / "out",
                   runs_dir=tmp_path / "runs")
    table, curves, grids = study.run_study(ctx, ["paper", "public_code"], steps=4, n_targets=2, jobs=1)
    assert list(table.index) == ["study_smoke_paper", "study_smoke_public_code"]
    assert table.loc["study_smoke_public_code", "changes"].startswith("recipe=public_code")
    for col in ("lr_error", "lr_within_eps_2", "source_dependence", "identity_fine", "bicubic_source_dependence",
                "end_d_fake_logit", "end_cyc_weighted"):
        assert np.isfinite(table[col].astype(float)).all(), col
    assert (table["bicubic_source_dependence"] == 0).all()  # the copy-target baseline ignores the source
    assert (tmp_path / "out/paper_tables/smoke/i2ilr_training_study.csv").exists()
    assert (tmp_path / "out/figures/smoke/i2ilr_training_study_grids.png").exists()
    with pytest.raises(ValueError, match="unknown study arm"):
        study.run_study(ctx, ["nope"])
