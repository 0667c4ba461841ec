"""PULSE and the shared latent-search engine: hand computations, a tiny known generator, outputs and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lrkit.data.bicubic import pulse_bicubic_downscale
from lrkit.methods.pulse.config import PulseConfig, lr_multiplier
from lrkit.methods.pulse.outputs import read_lr_images, write_outputs
from lrkit.methods.pulse.pulse import geocross, run_pulse, sphere_project
from lrkit.nets.latent_generator import check_latent_generator
from lrkit.search.engine import NOT_WITHIN_EPS, WITHIN_EPS, candidate_seed


class TinyGenerator(torch.nn.Module):
    """A known generator: tanh of a fixed random linear map of the L x d latents (+ one noise map), 16 px."""

    latent_dim, num_latents, output_size = 24, 3, 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = self.num_latents * self.latent_dim
        self.A = torch.nn.Parameter(torch.randn(n, 3 * 16 * 16, generator=g) / math.sqrt(n))

    def noise_shapes(self):
        return [(1, 4, 4), (1, 8, 8)]

    def map_prior(self, z):
        return F.leaky_relu(z * 0.9 + 0.05, 0.2)

    def synthesize(self, w, noise=None):
        x = (w.flatten(1) @ self.A).view(-1, 3, 16, 16)
        if noise is not None:
            x = x + 0.05 * F.interpolate(noise[0], size=16)
        return torch.tanh(x)


def _targets(gen: TinyGenerator, n: int, seed: int = 5, lr: int = 4) -> torch.Tensor:
    """LR images the generator can make exactly (average pooling of its own outputs)."""
    with torch.no_grad():
        z = torch.randn(n, gen.num_latents, gen.latent_dim, generator=torch.Generator().manual_seed(seed))
        hr = gen.synthesize(gen.map_prior(z), [torch.zeros(n, 1, 4, 4), torch.zeros(n, 1, 8, 8)])
    return F.avg_pool2d(hr, 16 // lr)


FAST = dict(steps=60, trainable_noise=1, zero_noise=(), downscale="avgpool")


def test_geocross_equals_a_hand_computation():
    w = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]], dtype=torch.float64)  # [1, 2 latents, d = 3]
    total = 0.0
    for a in w[0]:
        for b in w[0]:
            theta = 2 * math.atan2(math.sqrt(float(((a - b) ** 2).sum()) + 1e-9),
                                   math.sqrt(float(((a + b) ** 2).sum()) + 1e-9))
            total += theta ** 2 * 3
    assert geocross(w).item() == pytest.approx(total / 4 / 8, rel=1e-9)
    # Orthogonal vectors: theta = pi / 2 for both off-diagonal pairs, ~0 on the diagonal.
    assert geocross(w).item() == pytest.approx(2 * (math.pi / 2) ** 2 * 3 / 4 / 8, rel=1e-4)
    assert geocross(torch.randn(2, 1, 5)).tolist() == [0.0, 0.0]  # one latent (ProGAN, tile_latent): no term


def test_schedule_equals_pulses_hand_values():
    m = [lr_multiplier("linear1cycledrop", 100, j) for j in range(100)]
    assert m[0] == pytest.approx(0.1) and m[45] == pytest.approx(1.0) and m[90] == pytest.approx(0.1)
    assert m[99] == pytest.approx(0.1 + 9 / 10 * (0.001 - 0.1))  # the last step is just above 0.001
    assert m[20] == pytest.approx((9 * (1 - abs(20 / 90 - 0.5) * 2) + 1) / 10)
    assert max(m) == m[45] and all(a > b for a, b in zip(m[90:], m[91:]))
    assert lr_multiplier("linear1cycle", 100, 50) == pytest.approx(1.0)
    assert lr_multiplier("fixed", 100, 7) == 1.0


def test_sphere_projection_keeps_each_vectors_initial_norm():
    g = torch.Generator().manual_seed(0)
    initial = {"z": torch.randn(3, 4, 16, generator=g), "noise0": torch.randn(3, 1, 4, 4, generator=g)}
    moved = {k: v * torch.rand(v.shape[:2] + (1,) * (v.dim() - 2), generator=g) * 5 + 0.1 * torch.randn(v.shape)
             for k, v in initial.items()}
    direction = moved["z"] / moved["z"].norm(dim=-1, keepdim=True)
    sphere_project(moved, initial)
    assert torch.allclose(moved["z"].norm(dim=-1), initial["z"].norm(dim=-1), rtol=1e-5)
    assert torch.allclose(moved["noise0"].flatten(2).norm(dim=-1), initial["noise0"].flatten(2).norm(dim=-1),
                          rtol=1e-5)
    assert torch.allclose(moved["z"] / moved["z"].norm(dim=-1, keepdim=True), direction, atol=1e-6)


def test_bicubic_downscale_equals_a_hand_built_separable_kernel():
    f, side = 2, 12
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def keys(t, a=-0.5):
        t = abs(t)
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1 if t <= 1 else (
            a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a if t < 2 else 0.0)

    k = np.array([keys((i - 2 * f + 0.5) / f) for i in range(4 * f)])
    k /= k.sum()
    pad_lo = (4 * f - f) // 2
    xp = np.pad(x[0].numpy(), ((0, 0), (pad_lo, 3 * f - pad_lo), (pad_lo, 3 * f - pad_lo)), mode="reflect")
    kk = np.outer(k, k)
    want = np.zeros((3, side // f, side // f))
    for c in range(3):
        for i in range(side // f):
            for j in range(side // f):
                want[c, i, j] = (xp[c, i * f:i * f + 4 * f, j * f:j * f + 4 * f] * kk).sum()
    got = pulse_bicubic_downscale(x, f)[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    ones = pulse_bicubic_downscale(torch.ones(1, 3, 16, 16), 4)
    assert torch.allclose(ones, torch.ones_like(ones))  # normalised kernel


def test_pulse_recovers_every_image_of_a_batch_of_four_and_duplicates_differ():
    gen = TinyGenerator()
    check_latent_generator(gen)
    targets = _targets(gen, 4)
    res = run_pulse(gen, targets, PulseConfig(**FAST, duplicates=2, chunk=8))
    assert res.last.shape == (4, 2, 3, 16, 16)
    assert res.within_eps.all(), res.best_error  # per image: every one reaches eps (PULSE's summed clamp cannot)
    assert (res.best_error <= 2e-3).all() and res.status == [[WITHIN_EPS] * 2] * 4
    assert (res.seeds[:, 0] != res.seeds[:, 1]).all()
    assert (res.last[:, 0] - res.last[:, 1]).abs().amax(dim=(1, 2, 3)).min() > 0.1  # duplicates are other images
    # The generator's own parameters were not optimised and still require grad afterwards.
    assert gen.A.requires_grad


def test_candidates_do_not_depend_on_chunking_or_on_the_number_of_duplicates():
    gen = TinyGenerator()
    targets = _targets(gen, 2)
    a = run_pulse(gen, targets, PulseConfig(**{**FAST, "steps": 10}, duplicates=3, chunk=6))
    b = run_pulse(gen, targets, PulseConfig(**{**FAST, "steps": 10}, duplicates=2, chunk=1))
    assert torch.allclose(a.last[:, :2], b.last, atol=1e-5)
    assert a.seeds[1, 1] == candidate_seed(0, 1, 1) == b.seeds[1, 1]


def test_a_search_that_cannot_reach_eps_still_writes_its_images_and_status(tmp_path):
    gen = TinyGenerator()
    targets = _targets(gen, 2)
    cfg = PulseConfig(**{**FAST, "steps": 5}, eps=1e-12, duplicates=1)
    res = run_pulse(gen, targets, cfg)
    assert not res.within_eps.any() and res.status == [[NOT_WITHIN_EPS]] * 2
    records = write_outputs(res, targets, ["a", "b"], tmp_path, cfg, {"generator": "tiny"})
    for stem in ("a", "b"):
        for suffix in ("", "_lr", "_best"):
            assert (tmp_path / f"{stem}_0{suffix}.png").is_file()
    lines = [json.loads(s) for s in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert lines == records and [r["status"] for r in lines] == [NOT_WITHIN_EPS] * 2
    assert all(r["success"] is False and r["steps"] == 5 and r["best_l2"] <= r["l2"] + 1e-12 for r in lines)
    with Image.open(tmp_path / "a_0_lr.png") as im:
        assert im.size == (4, 4)


def test_stop_at_eps_freezes_a_candidate_at_its_step():
    gen = TinyGenerator()
    targets = _targets(gen, 3)
    res = run_pulse(gen, targets, PulseConfig(**{**FAST, "steps": 80}, stop_at_eps=True))
    assert res.within_eps.all()
    assert (res.steps_run < 80).all()
    assert torch.equal(res.steps_run, res.best_step)  # stopped at the step that got within eps
    assert torch.allclose(res.last_error, res.best_error)


def test_best_policy_returns_the_lowest_error_image():
    gen = TinyGenerator()
    res = run_pulse(gen, _targets(gen, 2), PulseConfig(**{**FAST, "steps": 30}, output="best"))
    assert (res.output_error("best") <= res.output_error("last") + 1e-12).all()
    assert res.output("best") is res.best


def test_read_lr_images_rejects_mixed_sizes(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    with pytest.raises(Exception, match="one size"):
        read_lr_images([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    x, stems = read_lr_images([str(tmp_path / "a.png")])
    assert x.shape == (1, 3, 8, 8) and stems == ["a"] and x.min() == -1


def test_cli_stylegan1_offline_is_one_clear_message(tmp_path, monkeypatch, capsys):
    from lrkit.cli import main

    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rc = main(["pulse", "--generator", "stylegan1_ffhq", "--lr", str(tmp_path / "a.png"), "--out",
               str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "pulse_stylegan1_ffhq_synthesis.pt" in err and "lrkit weights fetch" in err
    assert len(err.strip().splitlines()) == 1


def test_success_is_decided_per_image_in_a_batch():
    gen = TinyGenerator()
    targets = torch.cat([_targets(gen, 3), torch.full((1, 3, 4, 4), 3.0)])  # the last is outside tanh's range
    res = run_pulse(gen, targets, PulseConfig(**FAST))
    assert res.within_eps[:, 0].tolist() == [True, True, True, False]


def test_cli_train_progan_then_pulse_end_to_end(tmp_path, capsys):
    from lrkit.cli import main
    from lrkit.data.ops import make_lr, to_uint8
    from lrkit.methods.progan.config import get_preset

    run = tmp_path / "progan"
    assert main(["train", "progan", "--preset", "sr_nam64_smoke", "--run-dir", str(run), "--device", "cpu",
                 "--no-progress"]) == 0
    ckpt = run / "checkpoints" / "latest.pt"
    assert ckpt.is_file()
    lr = make_lr(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1, 8)
    files = []
    for i, img in enumerate(lr):
        files.append(str(tmp_path / f"face{i}.png"))
        Image.fromarray(to_uint8(img)).save(files[-1])
    out = tmp_path / "out"
    assert main(["pulse", "--generator", f"progan:{ckpt}", "--lr", *files, "--out", str(out), "--steps", "12",
                 "--duplicates", "2", "--downscale", "avgpool", "--seed", "3"]) == 0
    lines = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["lr_input"], r["duplicate"]) for r in lines] == [("face0", 0), ("face0", 1), ("face1", 0),
                                                                 ("face1", 1)]
    assert all(r["steps"] == 12 and r["weights"]["generator"] == "progan" and r["seconds"] > 0 for r in lines)
    for r in lines:
        with Image.open(out / r["file"]) as im:
            assert im.size == (64, 64)
        if not r["success"]:  # a random-noise target is far from a 28-step ProGAN: the best image is kept too
            assert (out / r["file"].replace(".png", "_best.png")).is_file()
    assert "outputs within eps" in capsys.readouterr().out
    assert get_preset("sr_nam64_smoke").steps > 0
    rc = main(["train", "progan", "--preset", "sr_nam64_smoke", "--steps", "5", "--run-dir", str(tmp_path / "x")])
    assert rc == 2 and "derive" in capsys.readouterr().err
