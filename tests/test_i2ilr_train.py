"""The I2I-LR trainer, losses, inference API and command line, on tiny seeded models (CPU)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit import cli
from lrkit.data.ops import make_lr, to_uint8
from lrkit.methods.i2ilr.inference import (
    load_i2ilr, prepare_targets, translate,
)
from lrkit.losses.gan import d_nonsaturating, g_nonsaturating, l1, r1_penalty
from lrkit.data.pools import ArrayPool
from lrkit.train.batches import StepSampler, batch_for_step
from lrkit.train.checkpoint import load_checkpoint
from lrkit.evaluation.translations import sample_sources_per_target
from lrkit.methods.i2ilr.config import PRESETS, I2ILRConfig, get_preset, preset_for_profile
from lrkit.methods.i2ilr.task import I2ILRTask, open_training_set, train_i2ilr

from i2ilr_tiny import TINY

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py


# -- losses -------------------------------------------------------------------------------------------------------

def test_r1_equals_hand_computation_on_a_linear_discriminator():
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = x.flatten(1) @ w  # D(x) = w . x, so dD/dx = w for every image
    loss, logs = r1_penalty(logits, x, gamma=0.5)
    assert loss.item() == pytest.approx(0.5 * 0.5 * float(w.pow(2).sum()), rel=1e-6)
    assert logs["r1"] == pytest.approx(loss.item())
    # The penalty trains D: its gradient w.r.t. w is gamma * w (d/dw of gamma/2 ||w||^2).
    w2 = w.clone().requires_grad_(True)
    x2 = x.detach().requires_grad_(True)
    loss2, _ = r1_penalty(x2.flatten(1) @ w2, x2, gamma=0.5)
    (gw,) = torch.autograd.grad(loss2, w2)
    assert torch.allclose(gw, 0.5 * w, atol=1e-6)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(logits, x.detach(), gamma=1.0)


def test_nonsaturating_losses_equal_their_log_sigmoid_forms():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7])
    loss, logs = d_nonsaturating(real, fake)
    want = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    g, _ = g_nonsaturating(fake)
    assert g.item() == pytest.approx(-torch.log(torch.sigmoid(fake)).mean().item(), rel=1e-6)
    c, logs = l1(torch.ones(2, 3), torch.zeros(2, 3), name="cyc")
    assert c.item() == 1.0 and logs == {"cyc": 1.0}
    with pytest.raises(ValueError, match="shapes differ"):
        l1(torch.ones(2, 3), torch.zeros(3, 2))


# -- presets and batches ---------------------------------------------------------------------------------------------

def test_presets_follow_the_paper():
    c128, c256 = get_preset("celebahq128"), get_preset("celebahq256")
    assert (c128.lr_g, c128.lr_d, c128.beta1, c128.beta2) == (1e-3, 4e-3, 0.0, 0.99)
    assert (c128.choices.r1_gamma, c128.batch_size, c128.ema_beta, c128.lr_size) == (0.5, 8, 0.999, 8)
    assert c128.recipe == "paper" and c128.choices.lr_diff == "paper" and not c128.choices.adv_on_cycle
    assert (c128.lambda_cyc, c256.lambda_cyc, c256.hr_size) == (1.0, 0.1, 256)
    assert c128.d_base_channels == 128 and c256.d_base_channels == 64  # 2**14 / HR
    assert [get_preset(f"lr{n}").lr_size for n in (4, 8, 16, 32)] == [4, 8, 16, 32]
    assert get_preset("afhq_dog").domains == ("dog",)
    for name in ("celebahq128", "afhq_wild", "lr32"):
        for prof in ("smoke", "cpu", "quick"):
            cfg = preset_for_profile(name, prof)
            assert cfg.dataset == "synthfaces" and cfg.preset == f"{name}_{prof}"
            assert cfg.lr_size == get_preset(name).lr_size
    assert preset_for_profile("celebahq128", "paper") is c128
    mini = preset_for_profile("celebahq128", "paper", steps=2, batch_size=2)  # the miniature's -p overrides
    assert mini == dataclasses.replace(c128, steps=2, batch_size=2)
    assert preset_for_profile("celebahq128", "smoke", batch_size=4).batch_size == 4
    assert I2ILRConfig.from_dict(c128.to_dict()) == c128
    with pytest.raises(ValueError, match="valid presets"):
        get_preset("celebahq512")
    with pytest.raises(ValueError, match="unknown I2ILRConfig field"):
        c128.with_overrides(learning_rate=1)
    with pytest.raises(ValueError, match="even"):
        c128.with_overrides(batch_size=7)
    assert len(PRESETS) == 36  # 9 paper presets, each with smoke, cpu and quick versions
    cpu128, cpu_lr32 = preset_for_profile("celebahq128", "cpu"), preset_for_profile("lr32", "cpu")
    assert (cpu128.hr_size, cpu_lr32.hr_size, cpu128.lr_projection) == (32, 64, "bounded")
    assert c128.lr_projection == "none" and preset_for_profile("celebahq128", "quick").lr_projection == "none"


def test_step_batches_are_a_function_of_the_step():
    s = StepSampler(n=10, batch_size=4, seed=3)
    first_epoch = s.indices(0) + s.indices(1) + s.indices(2)[:2]  # positions 0..9
    assert sorted(first_epoch) == list(range(10))
    assert s.indices(5) == StepSampler(10, 4, 3).indices(5)  # no hidden state
    assert s.indices(5) != StepSampler(10, 4, 4).indices(5)
    pool = ArrayPool(np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3))
    a, b = batch_for_step(pool, s, 7, True), batch_for_step(pool, s, 7, True)
    assert torch.equal(a, b)
    flips = s.flips(7)
    plain = batch_for_step(pool, s, 7, False)
    assert torch.equal(a[flips], plain[flips].flip(-1)) and torch.equal(a[~flips], plain[~flips])
    with pytest.raises(ValueError, match="fewer than one batch"):
        StepSampler(3, 4, 0)


# -- training -------------------------------------------------------------------------------------------------------

def _states(run_dir):
    ck = load_checkpoint(run_dir / "checkpoints" / "latest.pt", task="i2ilr")
    return ck


def test_resume_equals_uninterrupted(tmp_path):
    train_i2ilr(TINY, tmp_path / "a", progress=False)
    train_i2ilr(TINY.with_overrides(steps=3), tmp_path / "b", progress=False)
    train_i2ilr(TINY, tmp_path / "b", resume=True, progress=False)
    a, b = _states(tmp_path / "a"), _states(tmp_path / "b")
    assert a["step"] == b["step"] == 6
    for name in ("G", "G_ema", "D"):
        for k, v in a["modules"][name].items():
            assert torch.equal(v, b["modules"][name][k]), (name, k)
    for name in ("G", "D"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    la = [json.loads(x) for x in (tmp_path / "a" / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    drop = ("time",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in la] == \
           [{k: v for k, v in r.items() if k not in drop} for r in lb]
    assert (tmp_path / "a" / "samples").is_dir() and any((tmp_path / "a" / "samples").iterdir())


def test_ema_tracks_the_generator(tmp_path):
    cfg = TINY.with_overrides(steps=2, ema_beta=0.5)
    task = I2ILRTask(cfg, open_training_set(cfg))
    before_ema = {k: v.clone() for k, v in task.G_ema.state_dict().items()}
    task.train_step(0)
    g = task.G.state_dict()
    for k, v in task.G_ema.state_dict().items():
        if k.endswith("original") or k.endswith("weight") or k.endswith("bias"):
            assert torch.allclose(v, 0.5 * before_ema[k] + 0.5 * g[k], atol=1e-6), k


def test_training_on_a_fixed_batch_drives_the_lr_error_down():
    # 8 images = one batch, no flips: every step sees the same images; the LR error of G (unrounded, grey levels)
    # must fall by a clear margin within 150 steps -- the conditioning on the LR target works.
    cfg = TINY.with_overrides(synth_n_train=8, hflip=False, steps=150)
    task = I2ILRTask(cfg, open_training_set(cfg))
    errs = [task.train_step(s)["lr_err_grey"] for s in range(cfg.steps)]
    start, end = np.mean(errs[:5]), np.mean(errs[-10:])
    assert end < 0.5 * start, (start, end)
    # ... and the trained G's outputs, read back through the metric's own protocol, agree.
    x = task.train_set.pool.get(list(range(8)))
    src, tgt = x[:4], make_lr(x[4:], cfg.lr_size)
    from lrkit.metrics.lr_consistency import lr_consistency

    res = lr_consistency(translate(task.G, src, tgt), tgt)
    assert res["lr_error_mean"] < 0.6 * start


def test_non_finite_losses_stop_training(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of"):
        TINY.with_overrides(precision="fp16")  # precision is validated
    cfg = TINY.with_overrides(lr_g=1e30, lr_d=1e30, steps=30)
    with pytest.raises(FloatingPointError):
        train_i2ilr(cfg, tmp_path / "nan", progress=False)


# -- inference --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    d = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRKIT_CACHE_DIR", str(d / "cache"))
        train_i2ilr(TINY.with_overrides(steps=2, checkpoint_every=2), d / "run", progress=False)
    return d / "run" / "checkpoints" / "latest.pt"


def test_translate_api_and_its_errors(trained):
    model = load_i2ilr(trained)
    assert model.which == "G_ema" and model.step == 2 and not model.G.training
    torch.manual_seed(0)
    src, hr_t = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    out = translate(model.G, src, hr_t)  # HR targets are downscaled first
    assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1
    assert torch.equal(out, translate(model.G, src, make_lr(hr_t, 8)))
    assert torch.equal(prepare_targets(hr_t, 8), make_lr(hr_t, 8))
    with pytest.raises(ValueError, match="trained at 32x32"):
        translate(model.G, torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="multiple of 8"):
        translate(model.G, src[:1], torch.zeros(1, 3, 12, 12))
    with pytest.raises(ValueError, match="pairs sources and targets"):
        translate(model.G, src, make_lr(hr_t, 8)[:2])
    with pytest.raises(ValueError, match="NaN"):
        translate(model.G, src * float("nan"), make_lr(hr_t, 8))
    with pytest.raises(ValueError, match="hr_size=32"):
        load_i2ilr(trained, expect={"hr_size": 128})


def test_sources_per_target_protocol():
    idx = sample_sources_per_target(30, [0, 1, 2, -1], n_per_target=10, seed=777)
    assert idx.shape == (4, 10)
    for t in range(3):
        assert t not in idx[t] and len(set(idx[t])) == 10
    assert np.array_equal(idx, sample_sources_per_target(30, [0, 1, 2, -1], n_per_target=10, seed=777))
    with pytest.raises(ValueError, match="at least 11"):
        sample_sources_per_target(10, [0], n_per_target=10)


# -- command line --------------------------------------------------------------------------------------------------

def _png(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


def test_cli_translate_writes_every_pair_and_rejects_bad_sizes(trained, tmp_path, capsys):
    rng = np.random.default_rng(0)
    srcs = [_png(tmp_path / f"s{i}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for i in range(2)]
    tgt_lr = _png(tmp_path / "t_lr.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert cli.main(["translate", "--checkpoint", str(trained), "--source", *srcs, "--target", tgt_lr,
                     "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "t_lr__s0.png", "t_lr__s1.png"]
    # The written PNG equals the API's output for the same inputs (same batch: the CPU's convolution kernels may
    # round the last bit differently for another batch size).
    model = load_i2ilr(trained)
    from lrkit.methods.i2ilr.inference import load_images

    want = to_uint8(translate(model.G, load_images(srcs), load_images([tgt_lr] * 2)))[0]
    assert np.array_equal(np.asarray(Image.open(out / "t_lr__s0.png")), want)
    bad = _png(tmp_path / "bad.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    assert cli.main(["translate", "--checkpoint", str(trained), "--source", *srcs, "--target", bad,
                     "--out", str(tmp_path / "o2")]) == 2
    assert "multiple of 8" in capsys.readouterr().err
    assert cli.main(["translate", "--checkpoint", str(tmp_path / "nope.pt"), "--source", *srcs, "--target", tgt_lr,
                     "--out", str(tmp_path / "o3")]) == 2


def test_cli_train_and_resume(tmp_path, capsys):
    run = tmp_path / "cli_run"
    args = ["train", "i2ilr", "--preset", "celebahq128_smoke", "--steps", "2", "--run-dir", str(run),
            "--no-progress"]
    assert cli.main(args) == 0
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 2
    assert cli.main(args) == 2  # existing run without --resume: refused, nothing overwritten
    assert "resume" in capsys.readouterr().err
    assert cli.main(args[:4] + ["--steps", "3", "--run-dir", str(run), "--no-progress", "--resume"]) == 0
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 3
    assert cli.main(["train", "i2ilr", "--preset", "celebahq128", "--steps", "1", "--run-dir",
                     str(tmp_path / "real"), "--device", "cpu"]) == 2
    assert "--data-root" in capsys.readouterr().err
