import math

import pytest

from lrkit import reference


def test_keys():
    assert set(reference.keys()) >= {"i2ilr_table1", "i2ilr_table2", "i2ilr_table3", "i2ilr_table4", "divsr_table1"}


def test_transcribed_values():
    t1 = reference.load("i2ilr_table1")
    assert t1.loc["Ours", "FID@128"] == 15.52 and t1.loc["Stargan-v2 [8]", "LPIPS@256"] == 0.38
    assert math.isnan(t1.loc["MUNIT [16]", "FID@128"])  # printed as "–"
    assert list(t1.index) == ["MUNIT [16]", "DRIT [22]", "MSGAN [27]", "Stargan-v2 [8]", "Ours"]
    assert reference.load("i2ilr_table2").loc["Ours", "Coverage@256"] == 0.92
    assert reference.load("i2ilr_table3").loc["Ours", "FID@dog"] == 67.3
    t4 = reference.load("i2ilr_table4")
    assert list(t4.columns) == ["LR 4x4", "LR 8x8", "LR 16x16", "LR 32x32"] and t4.loc["LPIPS", "LR 32x32"] == 0.08
    assert reference.load("divsr_table1").loc["Ours", "PSNR"] == 21.08


def test_every_reference_has_direction():
    for key in reference.keys():
        assert set(reference.load_long(key)["better"]) <= {"higher", "lower"}


def test_unknown_key():
    with pytest.raises(KeyError, match="known"):
        reference.load("nope")
