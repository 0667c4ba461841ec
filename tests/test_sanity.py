"""Metric sanity sweep: distances grow monotonically with degradation; missing weights show as unavailable."""

from __future__ import annotations

import pytest

from lrkit.data import synthfaces
from lrkit.data.ops import from_uint8
from lrkit.metrics.sanity import degradation_sweep, monotonicity, sweep_figure


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_sweep_on_synthfaces_is_monotonic():
    x = from_uint8(synthfaces.generate("faces", "val", 8, 64, seed=0).images)
    sweep = degradation_sweep(x, ["psnr", "ssim", "lr_consistency", "lpips"],
                              {"blur": [0.0, 0.7, 1.5, 3.0], "noise": [0.0, 4.0, 12.0, 32.0]}, lr_size=8)
    mono = monotonicity(sweep)
    for metric in ("psnr", "ssim", "lr_consistency"):
        for kind in ("blur", "noise"):
            assert mono.loc[(metric, kind), "monotonic"] == "yes", mono.loc[(metric, kind), "values"]
    assert mono.loc[("lpips", "blur"), "monotonic"] == "unavailable"
    clean = sweep[(sweep.strength == 0) & (sweep.metric == "lr_consistency")]["value"]
    # Clean images match their own (8-bit rounded) LR up to that rounding: at most half a grey level.
    assert (clean <= 0.5).all()
    fig = sweep_figure(sweep, "t")
    assert len(fig.axes) == 3  # lpips (unavailable) gets no panel
