"""The StarGAN v2 trainer on tiny seeded models (CPU): presets, schedule, step-derived inputs, initialisation, which
nets each step trains, determinism, exact resume, the high-pass (FAN) path and its missing-weights error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrkit import weights as W
from lrkit.nets.fan import FAN
from lrkit.data.pools import ArrayPool
from lrkit.train.checkpoint import load_checkpoint
from lrkit.methods.stargan2.config import (
    PRESETS, Stargan2Config, get_preset, lambda_ds_at, preset_for_profile,
)
from lrkit.methods.stargan2.task import (
    Stargan2Sampler, Stargan2Task, build_nets, domain_names_for, open_training_set, random_resized_crop_flip,
    train_stargan2,
)

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py

# 32 px, full-resolution width 8, cap 16, 16 images of 2 domains, batch 4: a step takes ~0.2 s on one core.
TINY = get_preset("celebahq128_smoke").with_overrides(
    max_conv_dim=16, base_dim=8, synth_n_train=16, synth_n_val=8, batch_size=4, steps=6, ds_iter=4,
    checkpoint_every=3, sample_every=3)


def _task(cfg=TINY, **kw) -> Stargan2Task:
    return Stargan2Task(cfg, open_training_set(cfg), **kw)


def _fan(seed: int) -> FAN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FAN().eval()


# -- configuration --------------------------------------------------------------------------------------------------

def test_presets_hold_the_official_training_defaults():
    official = dict(lambda_reg=1.0, lambda_sty=1.0, lambda_ds=1.0, lambda_cyc=1.0, ds_iter=100_000, steps=100_000,
                    batch_size=8, lr=1e-4, f_lr=1e-6, beta1=0.0, beta2=0.99, weight_decay=1e-4, ema_beta=0.999,
                    latent_dim=16, style_dim=64, max_conv_dim=512, base_dim=None, seed=777, crop_prob=0.5,
                    hflip=True, precision="fp32")
    for name, size, w_hpf, dataset in (("celebahq256", 256, 1.0, "celeba_hq"), ("celebahq128", 128, 1.0, "celeba_hq"),
                                       ("afhq256", 256, 0.0, "afhq"), ("afhq128", 128, 0.0, "afhq")):
        cfg = get_preset(name)
        assert {k: getattr(cfg, k) for k in official} == official, name
        assert (cfg.img_size, cfg.w_hpf, cfg.dataset, cfg.domains) == (size, w_hpf, dataset, None)
        variant = "faces" if dataset == "celeba_hq" else "animals"
        smoke, quick = preset_for_profile(name, "smoke"), preset_for_profile(name, "quick")
        for c in (smoke, quick):
            assert (c.dataset, c.synth_variant, c.w_hpf, c.ds_iter) == ("synthfaces", variant, 0.0, c.steps)
        assert (smoke.img_size, smoke.max_conv_dim, smoke.synth_n_train, smoke.synth_n_val, smoke.ema_beta) == \
               (size // 4, 32, 128, 64, 0.95)
        assert (quick.img_size, quick.max_conv_dim, quick.base_dim, quick.synth_n_train, quick.synth_n_val) == \
               (size, 512, None, 5000, 500)
        assert quick.steps == (6000 if size <= 128 else 3000)
        assert (quick.checkpoint_every, quick.sample_every) == (1000, 1000)
        assert preset_for_profile(name, "paper") is cfg
    assert domain_names_for(get_preset("afhq256_smoke")) == ("cat", "dog", "wild")
    assert domain_names_for(get_preset("celebahq256")) == ("female", "male")
    assert len(PRESETS) == 16  # 4 paper presets, each with smoke, cpu and quick versions
    for cfg in PRESETS.values():
        assert Stargan2Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert Stargan2Config.from_dict(TINY.with_overrides(domains=("shorthair", "longhair")).to_dict()).domains == \
           ("shorthair", "longhair")
    with pytest.raises(ValueError, match="valid presets"):
        get_preset("celebahq512")
    with pytest.raises(ValueError, match="unknown Stargan2Config field"):
        TINY.with_overrides(learning_rate=1)
    with pytest.raises(ValueError, match="at least 2 distinct"):
        TINY.with_overrides(domains=("longhair",))
    with pytest.raises(ValueError, match="precision must be one of"):
        TINY.with_overrides(precision="fp16")
    with pytest.raises(ValueError, match="img_size must be a power of two"):
        TINY.with_overrides(img_size=48)


def test_lambda_ds_decays_linearly_to_zero_by_step():
    assert lambda_ds_at(0, 1.0, 100) == 1.0
    assert lambda_ds_at(50, 1.0, 100) == 0.5
    assert lambda_ds_at(25, 2.0, 100) == 1.5
    assert lambda_ds_at(100, 1.0, 100) == 0.0 and lambda_ds_at(150, 1.0, 100) == 0.0
    # The official loop subtracts lambda_ds / ds_iter after every iteration: the same values.
    lam, official = 1.0, []
    for _ in range(12):
        official.append(max(lam, 0.0))
        lam = lam - 1.0 / 10 if lam > 0 else lam
    assert [lambda_ds_at(s, 1.0, 10) for s in range(12)] == pytest.approx(official, abs=1e-12)


# -- inputs ---------------------------------------------------------------------------------------------------------

def _pool(n=12, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayPool(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def test_sampler_inputs_are_a_function_of_the_step_and_respect_domains():
    domain = np.array([0, 1, 2] * 4)
    pool = _pool()
    s = Stargan2Sampler.from_labels(domain, 3, batch_size=6, latent_dim=5, seed=7)
    a, b = s.inputs(pool, 11), Stargan2Sampler.from_labels(domain, 3, 6, 5, 7).inputs(pool, 11)
    for f in a.__dataclass_fields__:
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    c = s.inputs(pool, 12)
    assert not torch.equal(a.x_real, c.x_real) and not torch.equal(a.z_trg, c.z_trg)
    assert a.z_trg.shape == (6, 5) and not torch.equal(a.z_trg, a.z_trg2)
    same, y_org_seen = 0, set()
    for step in range(40):
        p = s.picks(step)
        assert torch.equal(torch.as_tensor(domain)[p.src], p.y_org)
        assert torch.equal(torch.as_tensor(domain)[p.ref], p.y_trg)
        assert torch.equal(torch.as_tensor(domain)[p.ref2], p.y_trg)
        same += int((p.y_trg == p.y_org).sum())
        y_org_seen |= set(p.y_org.tolist())
    assert y_org_seen == {0, 1, 2} and 0 < same < 240  # y_trg is drawn independently: it may equal y_org
    # Without augmentation the images are exactly the picked ones (sources, then the two references).
    plain = Stargan2Sampler.from_labels(domain, 3, 6, 5, 7, crop_prob=0.0, hflip=False)
    p, x = plain.picks(3), plain.inputs(pool, 3)
    assert torch.equal(x.x_real, pool.get(p.src.tolist())) and torch.equal(x.x_ref2, pool.get(p.ref2.tolist()))
    assert torch.equal(x.y_org, p.y_org) and torch.equal(x.y_trg, p.y_trg)
    with pytest.raises(ValueError, match="domains \\[1\\] have no images"):
        Stargan2Sampler.from_labels(np.zeros(4, np.int64), 2, 2, 5, 0)


def test_random_resized_crop_is_a_zoom_within_the_official_ranges():
    # A horizontal ramp x[..., j] = j: a crop of width w resized back to S is a ramp of slope w / S inside (bilinear
    # is exact on linear functions), likewise vertically; the flip reverses the slope.
    S, n = 32, 64
    j = torch.arange(S, dtype=torch.float32)
    img = torch.stack([j[None, :].expand(S, S), j[:, None].expand(S, S), torch.zeros(S, S)])[None].repeat(n, 1, 1, 1)
    out = random_resized_crop_flip(img, torch.Generator().manual_seed(0), crop_prob=1.0, hflip=True)
    zoomed = 0
    for k in range(n):
        sx = (out[k, 0, S // 2, 9] - out[k, 0, S // 2, 8]).item()  # interior slope (sign: flip)
        sy = (out[k, 1, 9, S // 2] - out[k, 1, 8, S // 2]).item()
        w, h = abs(sx) * S, sy * S
        assert round(w) == pytest.approx(w, abs=1e-3) and round(h) == pytest.approx(h, abs=1e-3)
        if (round(w), round(h)) != (S, S):
            zoomed += 1
            assert 0.8 * S * S - 2 * S <= w * h <= S * S and 0.9 - 0.07 <= w / h <= 1.1 + 0.07, (w, h)
    assert zoomed > n // 2  # most tries fit (the whole-image fallback is rare)
    flips = [(out[k, 0, S // 2, 9] - out[k, 0, S // 2, 8]).item() < 0 for k in range(n)]
    assert 0 < sum(flips) < n
    none = random_resized_crop_flip(img, torch.Generator().manual_seed(0), crop_prob=0.0, hflip=False)
    assert torch.equal(none, img)


# -- initialisation and steps -----------------------------------------------------------------------------------------

def test_ema_nets_start_from_the_default_init_and_training_nets_from_he_init():
    task = _task()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY.seed)
        fresh = build_nets(TINY)
    for name in ("G", "F", "E"):
        ema, net = getattr(task, f"{name}_ema").state_dict(), getattr(task, name).state_dict()
        for k, v in fresh[name].state_dict().items():
            assert torch.equal(ema[k], v), (name, k)
        w = [k for k in ema if k.endswith("weight") and ema[k].dim() > 1][0]
        assert not torch.equal(ema[w], net[w]), name
    # he_init_: zero biases and Kaiming-normal std sqrt(2 / fan_in) in the training nets.
    fc = task.F.shared[2]
    assert torch.all(fc.bias == 0) and fc.weight.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.05)
    opt = task.optimizers()
    assert {k: (o.param_groups[0]["lr"], o.param_groups[0]["weight_decay"], o.param_groups[0]["betas"])
            for k, o in opt.items()} == {k: (lr, 1e-4, (0.0, 0.99)) for k, lr in
                                         (("G", 1e-4), ("F", 1e-6), ("E", 1e-4), ("D", 1e-4))}


def test_each_optimizer_steps_where_the_official_solver_does_and_nothing_leaks_into_d(monkeypatch):
    task = _task(TINY.with_overrides(f_lr=1e-3))
    calls, d_after_d_steps = [], {}
    for name, opt in task.optimizers().items():
        orig = opt.step

        def step(*a, _name=name, _orig=orig, **kw):
            calls.append(_name)
            out = _orig(*a, **kw)
            if _name == "D":
                d_after_d_steps.update({k: v.clone() for k, v in task.D.state_dict().items()})
            return out

        monkeypatch.setattr(opt, "step", step)
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in task.modules().items()}
    logs = task.train_step(0)
    # D latent, D ref, then G+F+E (latent-guided), then G alone (reference-guided).
    assert calls == ["D", "D", "G", "F", "E", "G"]
    for name, module in task.modules().items():
        changed = any(not torch.equal(v, before[name][k]) for k, v in module.state_dict().items())
        assert changed, f"{name} did not change"
    # D is exactly what its second step left: the G steps did not touch it, and left no gradients in it.
    assert all(torch.equal(v, d_after_d_steps[k]) for k, v in task.D.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in task.D.parameters())
    # Only G has gradients from the last (reference-guided) step; F and E are trainable again afterwards.
    assert all(p.grad is None and p.requires_grad for m in (task.F, task.E) for p in m.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.G.parameters())
    for guide in ("latent", "ref"):
        for k in ("real", "fake", "r1"):
            assert np.isfinite(logs[f"d_{guide}_{k}"])
        for k in ("adv", "sty", "ds", "cyc"):
            assert np.isfinite(logs[f"g_{guide}_{k}"])
    assert logs["lambda_ds"] == 1.0 and task.train_step(2)["lambda_ds"] == 0.5


def test_seeded_runs_are_deterministic():
    a, b = _task(), _task()
    for step in range(2):
        assert a.train_step(step) == b.train_step(step)
    for name, m in a.modules().items():
        sb = b.modules()[name].state_dict()
        assert all(torch.equal(v, sb[k]) for k, v in m.state_dict().items()), name


def test_resume_equals_uninterrupted(tmp_path):
    train_stargan2(TINY, tmp_path / "a", progress=False)
    train_stargan2(TINY.with_overrides(steps=3), tmp_path / "b", progress=False)
    train_stargan2(TINY, tmp_path / "b", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt", task="stargan2")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "latest.pt", task="stargan2")
    assert a["step"] == b["step"] == 6
    assert sorted(a["modules"]) == ["D", "E", "E_ema", "F", "F_ema", "G", "G_ema"]
    for name in a["modules"]:
        for k, v in a["modules"][name].items():
            assert torch.equal(v, b["modules"][name][k]), (name, k)
    for name in ("G", "F", "E", "D"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    la = [json.loads(x) for x in (tmp_path / "a" / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(la) == strip(lb)
    assert [r["lambda_ds"] for r in la] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]  # ds_iter 4 < 6 steps
    assert sorted(p.name for p in (tmp_path / "a" / "samples").iterdir()) == ["step_00000003.png",
                                                                            "step_00000006.png"]
    # The checkpoint's config is a plain Stargan2Config (what inference builds the nets from).
    assert Stargan2Config.from_dict(a["config"]) == TINY.with_overrides(steps=100_000, checkpoint_every=10_000,
                                                                        sample_every=5_000)


# -- high-pass path ---------------------------------------------------------------------------------------------------

HPF = TINY.with_overrides(w_hpf=1.0, batch_size=2, steps=1, sample_every=0)


def test_high_pass_step_runs_with_fan_masks():
    # The FAN runs at 256 px: three mask sets per step (sources, then each G step's fakes), ~2 s on one core.
    fan = _fan(0)
    calls = []
    fan.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    task = _task(HPF, fan=fan)
    assert hasattr(task.G, "hpf")
    before = {k: v.clone() for k, v in task.G.state_dict().items()}
    logs = task.train_step(0)
    assert calls == [(2, 3, 256, 256)] * 3
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not torch.equal(v, before[k]) for k, v in task.G.state_dict().items())
    with pytest.raises(ValueError, match="needs the FAN"):
        _task(HPF)
    with pytest.raises(ValueError, match="w_hpf is 0"):
        _task(fan=fan)


def test_missing_wing_weights_is_one_clear_error_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    run = tmp_path / "run"
    with pytest.raises(W.WeightsUnavailable) as err:
        train_stargan2(HPF, run, progress=False)
    assert "lrkit weights fetch stargan2_wing" in str(err.value) and "--wing PATH" in str(err.value)
    with pytest.raises(FileNotFoundError, match="--wing"):
        train_stargan2(HPF, run, progress=False, wing_path=tmp_path / "nope.ckpt")
    assert not run.exists()


def test_fan_weights_are_recorded_and_a_resume_with_others_is_refused(tmp_path):
    wing_a, wing_b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    torch.save({"state_dict": _fan(1).state_dict()}, wing_a)
    torch.save({"state_dict": _fan(2).state_dict()}, wing_b)
    run = tmp_path / "run"
    train_stargan2(HPF, run, progress=False, wing_path=wing_a)
    record = json.loads((run / "fan.json").read_text())
    assert record["path"] == str(wing_a) and len(record["sha256"]) == 64
    with pytest.raises(ValueError, match="FAN weights"):
        train_stargan2(HPF.with_overrides(steps=2), run, progress=False, resume=True, wing_path=wing_b)
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 1
