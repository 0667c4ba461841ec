"""I2I-LR Fig. 7 (vs PULSE): the grid layout, and the figure + table end to end on the shipped 32 px I2I-LR model
and a smoke ProGAN trained here."""

from __future__ import annotations

import pytest
import torch

from lrkit.methods.i2ilr import fig7
from lrkit.methods.progan.task import progan_plan
from lrkit.runs.artifacts import read_table_csv
from lrkit.runs.context import open_run
from lrkit.train.shipped import resolve_checkpoint
from lrkit.viz import pulse_comparison_grid


def test_pulse_comparison_grid_layout():
    g = torch.Generator().manual_seed(0)
    T, K, R, H, pad = 3, 2, 2, 8, 2
    lr = torch.rand(T, 3, 2, 2, generator=g) * 2 - 1
    pulse = torch.rand(K, T, 3, H, H, generator=g) * 2 - 1
    refs = torch.rand(R, 3, H, H, generator=g) * 2 - 1
    ours = torch.rand(R, T, 3, H, H, generator=g) * 2 - 1
    hr = torch.rand(T, 3, H, H, generator=g) * 2 - 1
    grid = pulse_comparison_grid(lr, pulse, refs, ours, hr, pad=pad)
    cell = H + pad
    assert grid.shape == (3, (K + R + 2) * cell + pad, (T + 1) * cell + pad)

    def at(r, c):
        return grid[:, pad + r * cell: pad + r * cell + H, pad + c * cell: pad + c * cell + H]

    assert torch.equal(at(0, 1), torch.nn.functional.interpolate(lr[:1], size=(H, H), mode="nearest")[0])
    assert torch.equal(at(2, 3), pulse[1, 2]) and torch.equal(at(K + 1, 0), refs[0])
    assert torch.equal(at(K + 2, 2), ours[1, 1]) and torch.equal(at(K + R + 1, 3), hr[2])
    assert torch.equal(at(1, 0), torch.ones(3, H, H))  # PULSE rows have no reference
    with pytest.raises(ValueError, match="expected pulse"):
        pulse_comparison_grid(lr, pulse[:, :2], refs, ours, hr)


def test_fig7_end_to_end_on_the_shipped_i2ilr_and_a_smoke_progan(tmp_path, tmp_cache):
    from lrkit.methods.progan.config import get_preset
    from lrkit.methods.progan.task import train_progan

    res = train_progan(get_preset("sr_nam64_smoke"), tmp_path / "progan", progress=False)
    ctx = open_run("", "smoke", notebook="fig7_pulse_comparison", output_root=tmp_path / "out",
                   runs_dir=tmp_path / "runs")
    i2ilr = str(resolve_checkpoint("shipped:celebahq128_cpu", "i2ilr"))
    fig, table = fig7.fig7_pulse_comparison(ctx, n_targets=2, n_references=2, duplicates=2, pulse_steps=8,
                                            checkpoints={"celebahq128": i2ilr}, progan_checkpoint=str(res.checkpoint),
                                            progress=False)
    assert list(table.index) == ["I2I-LR", "PULSE"]
    assert table.loc["I2I-LR", "outputs"] == 4 and table.loc["PULSE", "outputs"] == 4
    for method in table.index:
        assert 0 <= float(table.loc[method, "within_eps"]) <= 1
        assert float(table.loc[method, "lr_error_levels"]) >= 0 and float(table.loc[method, "ms_per_output"]) > 0
        assert float(table.loc[method, "diversity_efflite0"]) > 0
        assert table.loc[method, "diversity_lpips"] == "unavailable"  # offline: no AlexNet weights, never replaced
    # PULSE (8 steps) costs far more per output than one forward pass.
    assert float(table.loc["PULSE", "ms_per_output"]) > float(table.loc["I2I-LR", "ms_per_output"])
    saved = read_table_csv(tmp_path / "out" / "paper_tables" / "smoke" / "i2ilr_fig7_pulse_table.csv")
    assert set(saved["method"]) == {"I2I-LR", "PULSE"}
    md = (tmp_path / "out" / "paper_tables" / "smoke" / "i2ilr_fig7_pulse_table.md").read_text()
    assert "PULSE searched at 64 px" in md and "shown at 32 px" in md and "ProGAN" in md and "avgpool" in md
    assert (tmp_path / "out" / "figures" / "smoke" / "i2ilr_fig7_pulse.png").is_file()
    # The ProGAN PULSE searched: samples and its FD next to an untrained generator's and real vs real.
    check = read_table_csv(tmp_path / "out" / "paper_tables" / "smoke" / "progan_check.csv")
    assert len(check) == 3 and check["generator"].str.contains("untrained").any()
    assert (tmp_path / "out" / "figures" / "smoke" / "progan_samples.png").is_file()


def test_progan_plan_fits_a_handful_of_real_images(tmp_path):
    """The paper-profile miniature (``steps`` > 0) on a real-layout folder of 12 images: one epoch per stage and
    batches cut to the images given (the paper's 64 would not fit); without ``steps`` the paper batches stay and
    too few images is the one clear error."""
    from lrkit.data.synthfaces import export_folder
    from lrkit.profiles import get_profile

    export_folder("faces", tmp_path / "celeba_hq", n_train=6, n_val=2, size=64, seed=0)
    cfg, may_train = progan_plan(fig7.PROGAN_PRESET, get_profile("paper"), steps=2, data_root=tmp_path)
    assert may_train and cfg.dataset == "celeba_hq" and cfg.n_images == 12
    assert cfg.epochs == (1,) * cfg.depth and max(cfg.batch_sizes) <= 12
    assert cfg.steps == sum(-(-12 // b) for b in cfg.batch_sizes)  # one pass over the 12 images per stage
    with pytest.raises(ValueError, match="fewer than one batch"):
        progan_plan(fig7.PROGAN_PRESET, get_profile("paper"), steps=0, data_root=tmp_path)
