"""ProGAN (SR-NAM's generator) on tiny seeded models (CPU): equalized layers, pixel norm, minibatch stddev, fade-in
continuity, the step-derived schedule, WGAN-GP by hand, exact resume across a growth boundary, a smoke run, and
the trained generator as a latent generator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lrkit.methods.progan.config import (
    PRESETS, SR_NAM_HR_IMAGES, ProganConfig, fade_steps, get_preset, preset_for_profile, schedule_at, stage_steps,
    total_steps, with_n_images,
)
from lrkit.methods.progan.latent import load_progan
from lrkit.methods.progan.losses import d_wgan_gp, g_wgan, gradient_penalty
from lrkit.methods.progan.nets import (
    EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, ProGANLatentGenerator, ProganDiscriminator,
    ProganGenerator, stage_channels,
)
from lrkit.methods.progan.task import (
    ProganSampler, ProganTask, open_training_set, real_images, sample_panel, train_progan,
)
from lrkit.nets.latent_generator import check_latent_generator
from lrkit.train.checkpoint import load_checkpoint
from lrkit.train.loop import LoopConfig, train

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py

# 16 px (3 stages, read from 32 px synthfaces), widths 8, latent 8, 8 images: stages of 2, 4 and 4 steps, fades of
# 2 steps in stages 1 and 2 (alpha 0.5 then 1). A step takes a few ms.
TINY = ProganConfig("tiny", dataset="synthfaces", synth_n_train=8, depth=3, latent_dim=8, fmap_base=64, fmap_max=8,
                    epochs=(1, 2, 2), batch_sizes=(4, 4, 4), ema_beta=0.5, seed=3, checkpoint_every=5,
                    sample_every=5)


def _seeded(seed: int, fn):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _same_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


# -- layers -----------------------------------------------------------------------------------------------------------

def test_equalized_layers_scale_standard_normal_weights_by_the_he_constant():
    lin = _seeded(0, lambda: EqualizedLinear(5, 3))
    with torch.no_grad():
        lin.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.randn(2, 5)
    by_hand = torch.stack([torch.stack([sum(x[b, i] * lin.weight[o, i] * math.sqrt(2 / 5) for i in range(5))
                                        + lin.bias[o] for o in range(3)]) for b in range(2)])
    torch.testing.assert_close(lin(x), by_hand)

    conv = _seeded(1, lambda: EqualizedConv2d(2, 3, 3))
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    x = torch.randn(1, 2, 4, 4)
    y = conv(x)
    assert y.shape == (1, 3, 4, 4)  # 'same' padding
    xp = F.pad(x, (1, 1, 1, 1))
    scale = math.sqrt(2 / (2 * 3 * 3))
    for o, r, c in ((0, 0, 0), (1, 2, 1), (2, 3, 3)):
        v = sum(xp[0, i, r + dr, c + dc] * conv.weight[o, i, dr, dc] * scale
                for i in range(2) for dr in range(3) for dc in range(3)) + conv.bias[o]
        torch.testing.assert_close(y[0, o, r, c], v)
    valid = EqualizedConv2d(4, 2, 4, padding=0)
    assert valid(torch.randn(3, 4, 4, 4)).shape == (3, 2, 1, 1)
    # Stored weights are the N(0, 1) draws, biases zero.
    big = _seeded(2, lambda: EqualizedConv2d(64, 64, 3))
    w = big.weight.detach()
    assert abs(float(w.std()) - 1.0) < 0.02 and abs(float(w.mean())) < 0.02
    assert not big.bias.any()


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 7, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 5, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + 1e-8))
    z = torch.randn(4, 16)
    torch.testing.assert_close(PixelNorm()(z).pow(2).mean(1), torch.ones(4))
    assert torch.equal(PixelNorm()(torch.zeros(2, 3)), torch.zeros(2, 3))  # eps keeps zeros finite


def test_minibatch_stddev_matches_a_hand_computation():
    x = torch.randn(8, 2, 3, 3)
    y = MinibatchStdDev()(x)
    assert y.shape == (8, 3, 3, 3) and torch.equal(y[:, :2], x)
    for b in range(8):
        members = [b % 2 + 2 * g for g in range(4)]  # group size 4, 2 groups: sample b is in group b % 2
        grp = x[members]
        std = torch.sqrt(((grp - grp.mean(0)) ** 2).mean(0) + 1e-8)
        torch.testing.assert_close(y[b, 2], torch.full((3, 3), float(std.mean())))
    # 6 samples (4 does not divide): one group of all; 2 samples: a group of 2.
    for n in (6, 2):
        x = torch.randn(n, 2, 2, 2)
        std = torch.sqrt(((x - x.mean(0)) ** 2).mean(0) + 1e-8).mean()
        torch.testing.assert_close(MinibatchStdDev()(x)[:, 2], torch.full((n, 2, 2), float(std)))


def test_stage_widths_follow_nf():
    assert [stage_channels(k, 8192, 512) for k in range(5)] == [512, 512, 512, 512, 256]
    assert [stage_channels(k, 1024, 128) for k in range(5)] == [128, 128, 128, 64, 32]
    G = ProganGenerator(5, 16, 8192, 512)
    assert G.channels == (512, 512, 512, 512, 256) and G.output_size == 64


# -- fade-in continuity -----------------------------------------------------------------------------------------------

def test_generator_fade_in_starts_at_the_upsampled_previous_stage():
    G = _seeded(0, lambda: ProganGenerator(depth=4, latent_dim=8, fmap_base=64, fmap_max=8))
    z = torch.randn(3, 8)
    for k in range(4):
        assert G(z, k, 1.0).shape == (3, 3, 4 * 2 ** k, 4 * 2 ** k)
    for k in (1, 2, 3):
        prev = G(z, k - 1, 1.0)
        up = F.interpolate(prev, scale_factor=2, mode="nearest")
        torch.testing.assert_close(G(z, k, 0.0), up, rtol=0, atol=0)
        new = G(z, k, 1.0)
        assert not torch.allclose(new, up)
        torch.testing.assert_close(G(z, k, 0.3), 0.3 * new + 0.7 * up)
    assert torch.equal(G(z), G(z, 3, 1.0))  # default: the full depth
    with pytest.raises(ValueError, match="depth_index"):
        G(z, 4, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        G(z, 1, 1.5)


def test_discriminator_fade_in_starts_at_the_previous_stage_on_the_downsampled_input():
    D = _seeded(1, lambda: ProganDiscriminator(depth=4, fmap_base=64, fmap_max=8))
    for k in (1, 2, 3):
        x = torch.randn(4, 3, 4 * 2 ** k, 4 * 2 ** k)
        old = D(F.avg_pool2d(x, 2), k - 1, 1.0)
        torch.testing.assert_close(D(x, k, 0.0), old, rtol=0, atol=0)
        assert D(x, k, 1.0).shape == (4, 1)
        assert not torch.allclose(D(x, k, 1.0), old)
    with pytest.raises(ValueError, match="takes 16 px"):
        D(torch.randn(4, 3, 8, 8), 2, 1.0)


def test_real_images_are_pooled_and_blended_as_progan_does():
    x = torch.randn(2, 3, 32, 32)
    x8 = F.avg_pool2d(x, 4)
    torch.testing.assert_close(real_images(x, 1, 1.0), x8)
    coarse = x8.reshape(2, 3, 4, 2, 4, 2).mean((3, 5)).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(real_images(x, 1, 0.0), coarse)
    torch.testing.assert_close(real_images(x, 1, 0.25), 0.25 * x8 + 0.75 * coarse)
    torch.testing.assert_close(real_images(x, 0, 0.25), F.avg_pool2d(x, 8))  # stage 0 never fades
    assert torch.equal(real_images(x, 3, 1.0), x)


# -- schedule ----------------------------------------------------------------------------------------------------------

def test_schedule_at_matches_hand_computed_boundaries():
    cfg = ProganConfig("t", dataset="synthfaces", synth_n_train=10, depth=3, epochs=(1, 2, 3), batch_sizes=(4, 4, 2))
    # ceil(10 / 4) = 3, ceil(20 / 4) = 5, ceil(30 / 2) = 15 steps; fades int(0.5 * 5) = 2 and int(0.5 * 15) = 7.
    assert stage_steps(cfg) == (3, 5, 15) and cfg.steps == total_steps(cfg) == 23
    assert [fade_steps(cfg, 10, k) for k in range(3)] == [0, 2, 7]
    expected = {0: (0, 1.0, 4, 0), 2: (0, 1.0, 4, 2), 3: (1, 0.5, 4, 0), 4: (1, 1.0, 4, 1), 7: (1, 1.0, 4, 4),
                8: (2, 1 / 7, 2, 0), 9: (2, 2 / 7, 2, 1), 14: (2, 1.0, 2, 6), 15: (2, 1.0, 2, 7), 22: (2, 1.0, 2, 14)}
    for step, want in expected.items():
        assert schedule_at(cfg, 10, step) == want, step
    with pytest.raises(ValueError, match="past the schedule's 23 steps"):
        schedule_at(cfg, 10, 23)
    # Another dataset size re-plans: n = 7 -> 2, 4, 11 steps.
    assert schedule_at(cfg, 7, 6) == (2, 1 / 5, 2, 0)
    no_fade = cfg.with_overrides(fade_in_fraction=0.0)
    assert all(schedule_at(no_fade, 10, s)[1] == 1.0 for s in range(23))


def test_steps_is_the_sum_of_the_stage_steps():
    for cfg in PRESETS.values():
        n = cfg.n_images
        assert cfg.steps == sum(math.ceil(e * n / b) for e, b in zip(cfg.epochs, cfg.batch_sizes)), cfg.preset
    paper = get_preset("sr_nam64")
    # 182,866 images: 28,573 + 57,146 + 57,146 + 114,292 + 571,457 steps.
    assert stage_steps(paper) == (28_573, 57_146, 57_146, 114_292, 571_457) and paper.steps == 828_614
    with pytest.raises(ValueError, match="steps is derived"):
        TINY.with_overrides(steps=11, epochs=(1, 2, 2))
    assert TINY.with_overrides(epochs=(1, 1, 1)).steps == 6  # a schedule change re-derives steps
    assert TINY.with_overrides(synth_n_train=16).steps == 20 and TINY.with_overrides(synth_n_train=16).n_images == 16
    folder = with_n_images(paper, 28_000)
    assert folder.n_images == 28_000 and folder.steps == total_steps(paper, 28_000)


def test_presets_hold_the_sr_nam_settings():
    paper = get_preset("sr_nam64")
    want = dict(dataset="celeba_hq", n_images=SR_NAM_HR_IMAGES, depth=5, latent_dim=512, fmap_base=8192,
                fmap_max=512, lr=1e-3, beta1=0.0, beta2=0.99, adam_eps=1e-8, lambda_gp=10.0, drift=0.001,
                n_critic=1, ema_beta=0.999, epochs=(10, 20, 20, 20, 50), batch_sizes=(64, 64, 64, 32, 16),
                fade_in_fraction=0.5, hflip=False)
    assert {k: getattr(paper, k) for k in want} == want
    assert list(PRESETS) == ["sr_nam64", "sr_nam64_smoke", "sr_nam64_cpu", "sr_nam64_quick"]
    for profile in ("smoke", "cpu", "quick"):
        cfg = preset_for_profile("sr_nam64", profile)
        assert cfg.preset == f"sr_nam64_{profile}"
        assert (cfg.dataset, cfg.synth_variant, cfg.depth, cfg.n_images) == ("synthfaces", "faces", 5,
                                                                            cfg.synth_n_train)
    assert preset_for_profile("sr_nam64", "paper") is paper
    assert get_preset("sr_nam64_quick").fmap_max == 512 and get_preset("sr_nam64_smoke").fmap_max == 32
    for cfg in PRESETS.values():
        assert ProganConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="per-stage schedule"):
        preset_for_profile("sr_nam64", "smoke", steps=10)
    with pytest.raises(ValueError, match="unknown ProganConfig field"):
        TINY.with_overrides(learning_rate=1)
    with pytest.raises(ValueError, match="tuple of 3 ints"):
        TINY.with_overrides(batch_sizes=(4, 4))
    with pytest.raises(ValueError, match="fewer than one batch"):
        TINY.with_overrides(synth_n_train=3)
    with pytest.raises(ValueError, match="dataset must be one of"):
        TINY.with_overrides(dataset="folder")


# -- losses ----------------------------------------------------------------------------------------------------------

def test_gradient_penalty_and_wgan_losses_match_hand_computations():
    real, fake = torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2)
    eps = torch.tensor([0.0, 0.3, 1.0]).reshape(3, 1, 1, 1)
    w = torch.randn(2, 2, 2, requires_grad=True)

    def linear(x):  # grad_x = w for every sample
        return (x * w).flatten(1).sum(1, keepdim=True) + 0.7

    gp, logs = gradient_penalty(linear, real, fake, eps)
    torch.testing.assert_close(gp, (w.detach().norm() - 1) ** 2)
    assert logs["gp_grad_norm"] == pytest.approx(float(w.detach().norm()), rel=1e-6)
    (dw,) = torch.autograd.grad(gp, w)  # the penalty trains the critic: d/dw (|w| - 1)^2
    torch.testing.assert_close(dw, 2 * (w.norm() - 1) * w / w.norm())

    def quadratic(x):  # grad_x = 2 x: the norm depends on the mix point eps real + (1 - eps) fake
        return x.pow(2).flatten(1).sum(1)

    gp, _ = gradient_penalty(quadratic, real, fake, eps)
    x_hat = eps * real + (1 - eps) * fake
    torch.testing.assert_close(gp, ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean())

    r, f = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0, 2.0])
    loss, logs = d_wgan_gp(r, f, torch.tensor(0.25), lambda_gp=10.0, drift=0.001)
    assert float(loss) == pytest.approx((1 / 3) - 2.0 + 2.5 + 0.001 * 5.0)
    assert logs["d_wdist"] == pytest.approx(2.0 - 1 / 3) and logs["d_drift"] == pytest.approx(5.0)
    assert float(g_wgan(f)[0]) == pytest.approx(-1 / 3)


# -- training ----------------------------------------------------------------------------------------------------------

def _task(cfg=TINY) -> ProganTask:
    return ProganTask(cfg, open_training_set(cfg))


def test_inputs_are_a_function_of_the_step_and_unused_layers_get_no_adam_state():
    a, b = ProganSampler(TINY), ProganSampler(TINY)
    for step in (0, 3, 9):
        assert a.indices(step) == b.indices(step)
        assert torch.equal(a.latents(step), b.latents(step)) and torch.equal(a.mixes(step), b.mixes(step))
    assert sorted(a.indices(0) + a.indices(1)) == list(range(8))  # stage 0: one epoch, each image once
    assert sorted(sum((a.indices(s) for s in range(2, 6)), [])) == sorted(list(range(8)) * 2)  # stage 1: 2 epochs
    assert a.latents(0).shape == (1, 4, 8) and not torch.equal(a.latents(0), a.latents(1))
    task = _task()
    assert task.sampler.reals(task.train_set.pool, 0).shape == (4, 3, 4, 4)
    assert task.sampler.reals(task.train_set.pool, 2).shape == (4, 3, 8, 8)
    grads_after_d_step = {}
    d_step = task.opt["D"].step

    def record(*a, **kw):
        grads_after_d_step.update({n: p.grad.clone() for n, p in task.D.named_parameters() if p.grad is not None})
        return d_step(*a, **kw)

    task.opt["D"].step = record
    logs = task.train_step(0)
    assert (logs["stage"], logs["alpha"], logs["batch_size"]) == (0.0, 1.0, 4.0)
    # The G step leaves no gradient in D (it is frozen meanwhile).
    now = {n: p.grad for n, p in task.D.named_parameters() if p.grad is not None}
    assert now.keys() == grads_after_d_step.keys() and all(torch.equal(now[n], grads_after_d_step[n]) for n in now)
    for name, net in (("G", task.G), ("D", task.D)):
        state = task.opt[name].state
        trained = [p for p in net.parameters() if p in state]
        stage0 = [*net.blocks[0].parameters(), *(net.to_rgb if name == "G" else net.from_rgb)[0].parameters()]
        assert {id(p) for p in trained} == {id(p) for p in stage0}, name


def test_n_critic_steps_run_and_logs_are_finite():
    task = _task(TINY.with_overrides(n_critic=2))
    logs = task.train_step(2)  # stage 1, alpha 0.5
    d_steps = {int(s["step"]) for s in task.opt["D"].state.values()}
    g_steps = {int(s["step"]) for s in task.opt["G"].state.values()}
    assert d_steps == {2} and g_steps == {1}
    assert logs["alpha"] == 0.5 and logs["stage"] == 1.0
    assert all(np.isfinite(v) for v in logs.values())
    assert all(p.requires_grad for p in task.D.parameters())  # unfrozen after the G step


def test_resume_equals_uninterrupted_across_a_growth_boundary(tmp_path):
    # Stage 1 runs steps 2-5 (fading at 2-3), stage 2 steps 6-9: stop at 3 (mid-fade), resume to 10.
    assert schedule_at(TINY, 8, 3)[:2] == (1, 1.0) and schedule_at(TINY, 8, 2)[:2] == (1, 0.5)
    assert schedule_at(TINY, 8, 6)[:2] == (2, 0.5)
    train_progan(TINY, tmp_path / "a", progress=False)
    train(_task(), tmp_path / "b", LoopConfig(steps=3, checkpoint_every=5, sample_every=5), progress=False)
    train_progan(TINY, tmp_path / "b", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt", task="progan")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "latest.pt", task="progan")
    assert a["step"] == b["step"] == 10
    assert sorted(a["modules"]) == ["D", "G", "G_ema"]
    for name in a["modules"]:
        _same_states(a["modules"][name], b["modules"][name])
    for name in ("G", "D"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            assert all(torch.equal(sa[i][k], sb[i][k]) for k in ("exp_avg", "exp_avg_sq", "step"))
    la = [json.loads(x) for x in (tmp_path / "a" / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(la) == strip(lb)
    assert [r["stage"] for r in la] == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert [r["alpha"] for r in la] == [1, 1, 0.5, 1, 1, 1, 0.5, 1, 1, 1]
    assert ProganConfig.from_dict(a["config"]) == TINY.with_overrides(checkpoint_every=10_000, sample_every=5_000)


def test_smoke_training_has_finite_losses_and_moves_g_ema(tmp_path):
    cfg = get_preset("sr_nam64_smoke")
    res = train_progan(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(x) for x in res.losses_path.read_text().splitlines()]
    assert len(rows) == cfg.steps == 28
    keys = ("d_loss", "d_wdist", "d_real", "d_fake", "d_drift", "gp", "g_loss")
    assert all(np.isfinite(r[k]) for r in rows for k in keys)
    assert [r["stage"] for r in rows] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 8 + [4] * 8
    ckpt = load_checkpoint(res.checkpoint, task="progan")
    initial = _task(cfg).G_ema.state_dict()
    moved = [k for k, v in ckpt["modules"]["G_ema"].items() if not torch.equal(v, initial[k])]
    assert len(moved) == len(initial)  # every stage trained, so every G_ema tensor moved
    from PIL import Image

    pngs = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert pngs == ["step_00000014.png", "step_00000028.png"]
    with Image.open(tmp_path / "run" / "samples" / pngs[-1]) as im:
        assert im.size == (4 * 64 + 5 * 2,) * 2  # 4 x 4 grid of 64 px cells, 2 px padding


def test_a_training_set_of_another_size_is_refused_with_the_fix():
    small = open_training_set(TINY.with_overrides(synth_n_train=6))
    with pytest.raises(ValueError, match=r"with_n_images\(cfg, 6\)"):
        ProganTask(TINY, small)


# -- latent generator --------------------------------------------------------------------------------------------------

def test_progan_latent_generator_and_load_progan_round_trip(tmp_path):
    cfg = TINY.with_overrides(epochs=(1, 1, 1))  # 6 steps
    res = train_progan(cfg, tmp_path / "run", progress=False)
    task = _task(cfg)
    ckpt = load_checkpoint(res.checkpoint, task="progan")
    for key in ("G", "G_ema"):
        getattr(task, key).load_state_dict(ckpt["modules"][key])
    gen = load_progan(res.checkpoint)
    check_latent_generator(gen)
    assert (gen.latent_dim, gen.num_latents, gen.output_size, gen.noise_shapes()) == (8, 1, 16, [])
    assert gen.step == 6 and gen.config == cfg.with_overrides(checkpoint_every=10_000, sample_every=5_000)
    assert not any(p.requires_grad for p in gen.parameters())
    z = torch.randn(2, 1, 8)
    assert torch.equal(gen.map_prior(z), z)
    with torch.no_grad():
        out = gen.synthesize(gen.map_prior(z))
        assert out.shape == (2, 3, 16, 16)
        assert torch.equal(out, task.G_ema.eval()(z[:, 0], 2, 1.0))
        raw = load_progan(res.checkpoint, ema=False)
        assert raw.weights == "G" and torch.equal(raw.synthesize(z), task.G(z[:, 0], 2, 1.0))
        assert not torch.equal(raw.synthesize(z), out)
    wrapped = ProGANLatentGenerator(task.G_ema)
    check_latent_generator(wrapped)
    with pytest.raises(ValueError, match=r"\[B, 1, 8\]"):
        wrapped.synthesize(torch.randn(2, 8))
    grid = sample_panel(task.G_ema, torch.randn(4, 8), 0, 1.0, 16, nrow=2)
    assert grid.shape == (3, 2 * 16 + 3 * 2, 2 * 16 + 3 * 2) and float(grid.abs().max()) <= 1.0
