"""The StarGAN v2 baseline next to I2I-LR: lrkit checkpoints through inference and the command line, the
shared model cache, the Stargan-v2 table row from its own protocol on the same val set, and the Fig. 6 grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.cli import main
from lrkit.methods.i2ilr import tables as i2ilr_tables
from lrkit.methods.i2ilr.evaluation import evaluate_preset
from lrkit.methods.i2ilr.figures import figure_vs_stargan
from lrkit.methods.i2ilr.task import ensure_trained
from lrkit.methods.stargan2.task import ensure_trained as ensure_stargan2, open_training_set as s2_train_set
from lrkit.train.models import model_dir
from lrkit.evaluation.paper_compare import UNAVAILABLE, cells_from_records, with_paper
from lrkit.methods.stargan2.baseline import evaluate_baseline
from lrkit.methods.stargan2.inference import load_stargan2, translate_ref
from lrkit.runs.context import open_run
from lrkit.train.checkpoint import load_checkpoint
from lrkit.methods.stargan2.config import get_preset as s2_preset
from lrkit.viz import versus_grid

from i2ilr_tiny import TINY as _I2ILR_TINY

I2ILR = _I2ILR_TINY.with_overrides(steps=2, checkpoint_every=2, sample_every=0)
STARGAN = s2_preset("celebahq128_smoke").with_overrides(
    max_conv_dim=16, base_dim=8, synth_n_train=16, synth_n_val=8, batch_size=4, steps=2, ds_iter=2,
    checkpoint_every=2, sample_every=0)
pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))


@pytest.fixture(scope="module")
def models(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRKIT_CACHE_DIR", str(root / "cache"))
        ours = ensure_trained(I2ILR, root, progress=False)
        theirs = ensure_stargan2(STARGAN, root, progress=False)
    return root, ours, theirs


def test_ensure_model_keeps_stargan_models_apart(models):
    root, ours, theirs = models
    fp = s2_train_set(STARGAN).fingerprint
    assert theirs == model_dir(STARGAN, root, task="stargan2", data_fingerprint=fp) / "checkpoints" / "latest.pt"
    assert "stargan2" in theirs.parts and "i2ilr" in ours.parts
    assert load_checkpoint(theirs, task="stargan2")["step"] == 2
    mtime = theirs.stat().st_mtime_ns
    assert ensure_stargan2(STARGAN, root, progress=False) == theirs and theirs.stat().st_mtime_ns == mtime


def test_lrkit_checkpoint_loads_its_ema_nets_and_config(models):
    _, _, ckpt = models
    nets = load_stargan2(ckpt)
    state = load_checkpoint(ckpt)["modules"]
    for net, key in ((nets.G, "G_ema"), (nets.F, "F_ema"), (nets.E, "E_ema")):
        for k, v in net.state_dict().items():
            torch.testing.assert_close(v, state[key][k], rtol=0, atol=0)
    assert nets.domain_names == ("longhair", "shorthair") and nets.img_size == 32 and nets.fan is None
    assert "celebahq128_smoke@step2" in nets.label
    with pytest.raises(ValueError, match="drop --img-size 64"):
        load_stargan2(ckpt, img_size=64)


def test_cli_trains_and_translates_with_an_lrkit_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "stargan2", "--preset", "celebahq128_smoke", "--steps", "1", "--run-dir", str(run),
                 "--device", "cpu", "--no-progress"]) == 0
    assert main(["train", "stargan2", "--preset", "celebahq128_smoke", "--steps", "1", "--run-dir", str(run),
                 "--device", "cpu", "--no-progress"]) == 2  # refuses to overwrite without --resume
    assert "resume" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    for name in ("s", "r"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    assert main(["translate", "--method", "stargan2", "--checkpoint", str(run / "checkpoints" / "latest.pt"),
                 "--source", str(tmp_path / "s.png"), "--reference", str(tmp_path / "r.png"), "--domain",
                 "shorthair", "--out", str(out)]) == 0
    assert np.asarray(Image.open(out / "r__s.png")).shape == (32, 32, 3)


def test_stargan_row_uses_its_protocol_on_the_same_val_set(models):
    root, ours, theirs = models
    res = evaluate_preset(I2ILR, ours, ["lr_consistency", "lpips_diversity"], n_targets=4, baseline=False)
    base = evaluate_baseline("celebahq128", None, res["val"], res["train"], ["lr_consistency", "lpips_diversity"],
                             hr_size=I2ILR.hr_size, lr_size=I2ILR.lr_size, dataset=I2ILR.dataset,
                             profile="smoke", runs_root=root, n_sources=4, checkpoints={"celebahq128": str(theirs)})
    assert base["source"] == "given checkpoint"
    assert set(base["per_task"]) == {"shorthair2longhair", "longhair2shorthair"}
    for t in base["sets"]:
        assert t.translations.outputs.shape[:2] == (4, 10)  # 4 sources per task, 10 outputs each
        assert (res["val"].domain[t.translations.target_idx] ==
                res["val"].domain_names.index(t.target_domain)).all()
    lr = next(r for r in base["records"] if r["metric"] == "lr_consistency")
    per = [next(r for r in recs if r["metric"] == "lr_consistency")["values"]["lr_error_mean"]
           for recs in base["per_task"].values()]
    assert lr["values"]["lr_error_mean"] == pytest.approx(np.mean(per))
    cells = {"Ours": cells_from_records(res["records"]["Ours"], i2ilr_tables.PAPER_COLUMNS, "@128"),
             "Stargan-v2": cells_from_records(base["records"], i2ilr_tables.PAPER_COLUMNS, "@128")}
    table = with_paper(cells, "i2ilr_table1", method_names={"Stargan-v2": "Stargan-v2 [8]"})
    row = table.loc[("Stargan-v2", "LPIPS@128")]
    assert row["reproduced"] == UNAVAILABLE and row["status"] == UNAVAILABLE  # AlexNet weights missing here
    assert row["paper"] == pytest.approx(0.22)  # next to the paper's Stargan-v2 value
    assert ("Stargan-v2 [8]", "LPIPS@128") not in table.index  # no separate "reported only" duplicate


def test_versus_grid_layout():
    S, T, H = 2, 3, 8
    src, lr, refs = torch.rand(S, 3, H, H), torch.rand(T, 3, 2, 2), torch.rand(T, 3, H, H)
    ours, theirs = torch.rand(S, T, 3, H, H), torch.rand(S, T, 3, H, H)
    g = versus_grid(src, lr, refs, ours, theirs, pad=1)
    cell = H + 1
    assert g.shape == (3, (2 * S + 2) * cell + 1, (T + 1) * cell + 1)

    def at(r, c):
        return g[:, 1 + r * cell: 1 + r * cell + H, 1 + c * cell: 1 + c * cell + H]

    assert torch.equal(at(1, 0), src[0]) and torch.equal(at(3, 0), src[1])
    assert torch.equal(at(1, 2), ours[0, 1]) and torch.equal(at(2, 2), theirs[0, 1])
    assert torch.equal(at(4, 1), theirs[1, 0]) and torch.equal(at(5, 3), refs[2])
    with pytest.raises(ValueError, match="theirs must be"):
        versus_grid(src, lr, refs, ours, theirs[:, :2])


def test_figure_vs_stargan_feeds_each_method_its_own_target(models, tmp_path):
    _, ours, theirs = models
    ctx = open_run("", "smoke", notebook="fig6_vs_stargan", output_root=tmp_path / "out", runs_dir=tmp_path / "r")
    fig, info = figure_vs_stargan(ctx, I2ILR.preset, STARGAN.preset, n_sources=2, n_targets=3,
                                  checkpoints={I2ILR.preset: str(ours)}, stargan_checkpoints={STARGAN.preset: str(theirs)})
    from lrkit.methods.i2ilr.task import open_val_set

    val = open_val_set(I2ILR, n=max(I2ILR.synth_n_val, 5))
    nets = load_stargan2(theirs)
    src, refs = val.pool.get([0, 1]), val.pool.get([2, 3, 4])
    doms = [val.domain_names[int(val.domain[i])] for i in (2, 3, 4)]
    want = translate_ref(nets, src[1:2].repeat(3, 1, 1, 1), refs, doms)  # source 1 with each HR reference
    torch.testing.assert_close(info["outputs"]["stargan"].view(2, 3, 3, 32, 32)[1], want)
    assert "StarGAN v2" in info["weights"] and fig is not None
