"""SR-NAM's figures (Figs. 4-8), its landmark table and the FAN landmark metric: the shipped cpu models under a
shrunken smoke profile (2 inputs, 3 search steps), tiny seeded FANs for the metric."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lrkit.methods.srnam import figures
from lrkit.methods.srnam.outputs import candidate_grid
from lrkit.runs.artifacts import read_table_csv
from lrkit.runs.context import open_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ctx(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))  # offline: FAN, LPIPS, VGG missing
    c = open_run("", "smoke", notebook="test_srnam_figures", output_root=tmp_path / "out", runs_dir=tmp_path / "runs")
    c.profile = dataclasses.replace(c.profile, srnam_inputs=2, srnam_steps=3, srnam_pool=3, synth_n_val=24)
    return c


def test_degradation_preset_follows_the_profile_and_the_lr_folder():
    assert figures.degradation_preset("paper") == "srnam_deg_synthlr"  # real HR, synthetic LR: named so
    assert figures.degradation_preset("paper", "/data/widerface16") == "srnam_deg"
    assert figures.degradation_preset("smoke") == figures.degradation_preset("cpu", "/x") == "srnam_deg"
    from lrkit.methods.srnam.config import get_preset

    cfg = get_preset("srnam_deg_synthlr")
    assert (cfg.hr_dataset, cfg.lr_data, cfg.width, cfg.batch_size) == ("celeba_hq", "synthlr", 64, 64)


def test_candidate_grid_puts_input_candidates_and_truth_in_order():
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    hr = torch.rand(2, 3, 3, 64, 64, generator=g) * 2 - 1
    again = torch.rand(2, 3, 3, 16, 16, generator=g) * 2 - 1
    truth = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    grid = candidate_grid(lr, hr, again, truth, pad=2)
    assert grid.shape == (3, 2 + 2 * 66, 2 + 8 * 66)  # input, 3 x (HR, LR), truth

    def cell(r, c):
        return grid[:, 2 + 66 * r:66 * (r + 1), 2 + 66 * c:66 * (c + 1)]

    assert torch.equal(cell(0, 0), torch.nn.functional.interpolate(lr[:1], size=64, mode="nearest")[0])
    assert torch.equal(cell(1, 3), hr[1, 1]) and torch.equal(cell(1, 7), truth[1])
    assert torch.equal(cell(0, 6)[:, ::4, ::4], again[0, 2])
    assert candidate_grid(lr, hr, again).shape[-1] == 2 + 7 * 66  # no truth column without one


def test_fan_landmark_metric_is_eq7_on_fans_heatmaps_and_unavailable_without_weights(tmp_path, monkeypatch):
    from lrkit import weights as W
    from lrkit.metrics import registry
    from lrkit.metrics.landmarks_fan import landmark_heatmap_fan
    from lrkit.nets.fan import FAN, fan_heatmaps

    torch.manual_seed(0)
    fan = FAN().eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1, torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        ha, hb = fan_heatmaps(fan, a).numpy(), fan_heatmaps(fan, b).numpy()  # [3, 98, 64, 64]
    by_hand = np.mean([np.mean([((ha[i, n] - hb[i, n]) ** 2).sum() for n in range(98)]) for i in range(3)])
    got = landmark_heatmap_fan(a, b, fan=fan, batch_size=2)
    assert got["n_pairs"] == 3 and got["landmark_heatmap_fan"] == pytest.approx(by_hand, rel=1e-6)
    assert landmark_heatmap_fan(a, a, fan=fan)["landmark_heatmap_fan"] == 0.0
    # The file path: a wing.ckpt-like file is read and gives the same value; no file is "unavailable", never a stand-in.
    path = tmp_path / "wing.ckpt"
    torch.save({"state_dict": fan.state_dict()}, path)
    assert landmark_heatmap_fan(a, b, weights=path)["landmark_heatmap_fan"] == pytest.approx(by_hand, rel=1e-6)
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "none"))
    with pytest.raises(W.WeightsUnavailable, match="stargan2_wing"):
        landmark_heatmap_fan(a, b)
    spec = registry.get_metric("landmark_heatmap_fan")
    assert spec.weights == ("stargan2_wing",)
    with pytest.raises(ValueError, match="same number"):
        landmark_heatmap_fan(a, b[:2], fan=fan)


def test_fig4_degradation_samples_and_the_check_against_the_truth(ctx):
    fig, table = figures.fig4_degradation(ctx, progress=False)
    assert (ctx.output_root / "figures" / "smoke" / "srnam_fig4_degradation.png").is_file()
    swd = dict(zip(table["lr_images"].str.split(" \\(").str[0], table["swd"]))
    assert len(table) == 4 and (table["n"] == 24).all()
    # The shipped cpu degradation GAN is much closer to the true process than where its training started.
    assert swd["degradation GAN"] < 0.7 * swd["the same net, untrained"]
    saved = read_table_csv(ctx.output_root / "paper_tables" / "smoke" / "srnam_degradation_check.csv")
    assert len(saved) == 4
    models = [e for e in ctx.events() if e["kind"] == "model"]
    assert {e["preset"] for e in models} == {"sr_nam64_cpu", "srnam_deg_cpu"}


def test_fig5_shows_every_stage_of_the_generator(ctx):
    fig = figures.fig5_progan_growth(ctx, progress=False)
    from PIL import Image

    path = ctx.output_root / "figures" / "smoke" / "srnam_fig5_progan_growth.png"
    with Image.open(path) as im:
        assert im.size[0] > 0
    assert fig.axes[0].images[0].get_array().shape[0] == 5 * 68  # 5 stages (4 ... 64 px), one padded 64 px row each
    assert not [e for e in ctx.events() if e["kind"] == "model" and e["preset"].startswith("srnam_deg")]


def test_fig6_fig7_and_the_landmark_table(ctx):
    fig6, fig7, table = figures.fig6_fig7_grids(ctx, progress=False)
    for name in ("srnam_fig6_search", "srnam_fig7_real_lr"):
        assert (ctx.output_root / "figures" / "smoke" / f"{name}.png").is_file()
    # smoke searches at its srnam_lr (3e-2); the paper's Adam default (1e-3) gets its own row on the same inputs
    ours, paper = "SR-NAM (Adam lr 0.03)", "SR-NAM (paper's Adam lr 0.001)"
    assert list(table.index) == [ours, paper, "PULSE (same ProGAN)", "bicubic"]
    assert (table["landmark_fan"] == "unavailable").all()  # offline: never replaced by the dlib stand-in
    assert table.loc["bicubic", "diversity_efflite0"] == "n/a (one output)"
    assert float(table.loc[ours, "diversity_efflite0"]) > 0  # K different starts, different candidates
    assert table.loc[ours, "outputs"] == 6 and table.loc["bicubic", "outputs"] == 2
    for col in ("lr_l1_deg_levels", "lr_l1_bicubic_levels", "hr_l1_levels"):
        assert 0 < float(table.loc[ours, col]) < 128
    assert float(table.loc[paper, "lr_l1_deg_levels"]) != float(table.loc[ours, "lr_l1_deg_levels"])
    assert 0 <= float(table.loc[ours, "identity_fine_agreement"]) <= 1
    md = (ctx.output_root / "paper_tables" / "smoke" / "srnam_landmark_table.md").read_text()
    assert "offline stand-in" in md and "synthlr-v1" in md and "srnam_deg_cpu" in md


def test_the_table_re_degrades_every_method_like_the_search(ctx):
    """SR-NAM's row uses the noise its search used: re-degrading its candidates here equals ``redegrade``."""
    from lrkit.methods.srnam.outputs import redegrade
    from lrkit.methods.srnam.search import SrnamSearchConfig, run_srnam
    from lrkit.methods.srnam.table import _degrade_like_search

    models = figures.load_models(ctx, progress=False)
    lr = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    cfg = SrnamSearchConfig(steps=2, starts=3, seed=7)
    res = run_srnam(models.gen, models.deg, lr, cfg)
    assert torch.allclose(_degrade_like_search(models, res.output("last"), res.seeds, "cpu"),
                          redegrade(res, models.gen, models.deg, cfg), atol=1e-6)


def test_fig8_shows_the_worst_inputs_by_the_numbers(ctx):
    fig, table = figures.fig8_failures(ctx, progress=False)
    assert len(table) == 3 and list(table["rank"]) == [1, 2, 3]
    assert list(table["best_l1_levels"]) == sorted(table["best_l1_levels"], reverse=True)
    assert (table["best_l1_levels"] <= table["mean_l1_levels"] + 1e-9).all()
    assert sorted(table["input"]) == [0, 1, 2]
    assert (ctx.output_root / "figures" / "smoke" / "srnam_fig8_failures.png").is_file()


def test_degradation_curve_scores_each_snapshot(tmp_path, tmp_cache, monkeypatch):
    from lrkit.cli import main
    from lrkit.methods.srnam.evaluation import degradation_curve

    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    run = tmp_path / "deg"
    assert main(["train", "degradation", "--preset", "srnam_deg_smoke", "--run-dir", str(run), "--device", "cpu",
                 "--no-progress", "--keep-checkpoints", "5"]) == 0
    snaps = sorted((run / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in snaps] == ["step_00000006.pt", "step_00000012.pt"]  # checkpoint_every 6 of 12 steps
    rows = degradation_curve(snaps, n=8)
    assert [r["step"] for r in rows[:3]] == [0, 6, 12] and rows[0]["lr_images"] == "the same net, untrained"
    assert len(rows) == 5 and all(r["swd"] >= 0 for r in rows)
