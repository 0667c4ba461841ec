"""SR-NAM: the known synthetic LR process, the degradation GAN (nets, losses, training, resume), its search and the
`lrkit srnam` / `lrkit train degradation` commands, on tiny seeded models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrkit.data.synthetic_lr import PARAM_NAMES, SYNTHLR_V1, SyntheticLRProcess, degrade_images, sample_params
from lrkit.methods.srnam import losses as L
from lrkit.methods.srnam.config import get_preset
from lrkit.methods.srnam.nets import DegradationDiscriminator, DegradationGenerator
from lrkit.methods.srnam.search import SrnamSearchConfig, run_srnam

pytestmark = pytest.mark.usefixtures("one_thread")


def _hr(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 64, 64, generator=g) * 2 - 1


# -- the known process ---------------------------------------------------------------------------------------------


def test_synthlr_is_a_pure_function_of_seed_and_index():
    hr = _hr(4)
    lr, params = degrade_images(hr, [10, 11, 12, 13], seed=3)
    assert lr.shape == (4, 3, 16, 16) and params.shape == (4, len(PARAM_NAMES))
    again, p2 = degrade_images(hr[2:], [12, 13], seed=3)  # a subset degrades exactly as in the whole set
    assert torch.equal(again, lr[2:]) and np.array_equal(p2, params[2:])
    other, _ = degrade_images(hr, [10, 11, 12, 13], seed=4)
    assert not torch.equal(other, lr)
    assert torch.equal(((lr + 1) * 127.5).round(), (lr + 1) * 127.5)  # uint8 levels (went through a JPEG)
    p = sample_params(SYNTHLR_V1, range(200), seed=0)
    for col, (lo, hi) in ((0, SYNTHLR_V1.blur_sigma_hr), (7, SYNTHLR_V1.noise_std), (8, SYNTHLR_V1.jpeg_quality)):
        assert lo <= p[:, col].min() and p[:, col].max() <= hi
    assert p[:, 1:4].min() >= SYNTHLR_V1.gain[0] and p[:, 4:7].max() <= SYNTHLR_V1.offset[1]


def test_synthlr_noise_is_added_after_the_downscale():
    """With no blur, no colour cast and mild JPEG, LR - avgpool(HR) has the drawn noise std at 16 px (added before
    the 4x4 average it would be ~4x smaller)."""
    proc = SyntheticLRProcess(blur_sigma_hr=(0.0, 0.0), gain=(1.0, 1.0), offset=(0.0, 0.0), noise_std=(10.0, 10.0),
                              jpeg_quality=(95, 95))
    hr = torch.zeros(8, 3, 64, 64)
    from lrkit.data.synthetic_lr import apply_process

    params = sample_params(proc, range(8))
    lr = apply_process(hr, params, proc, noise_seeds=range(8))
    std_levels = float(lr.std()) * 127.5
    assert 7.0 < std_levels < 13.0, std_levels
    with pytest.raises(ValueError, match="degrades"):
        apply_process(torch.zeros(1, 3, 32, 32), params[:1], proc, [0])


# -- networks and losses ----------------------------------------------------------------------------------------


def test_degradation_nets_shapes_and_noise():
    torch.manual_seed(0)
    G, D = DegradationGenerator(width=8, noise_dim=100).eval(), DegradationDiscriminator(width=8)
    hr = _hr(2)
    z1, z2 = torch.randn(2, 100), torch.randn(2, 100)
    a, b = G(hr, z1), G(hr, z2)
    assert a.shape == (2, 3, 16, 16) and a.abs().max() <= 1
    assert not torch.allclose(a, b)  # the noise changes the LR image
    assert torch.equal(G(hr, z1), a)
    assert D(a).shape == (2, 1)
    with pytest.raises(ValueError, match=r"HR images \[B, 3, 64, 64\]"):
        G(torch.zeros(1, 3, 32, 32), torch.zeros(1, 100))
    with pytest.raises(ValueError, match=r"noise \[B, 100\]"):
        G(hr, torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r"LR images \[B, 3, 16, 16\]"):
        D(hr)


def test_gan_losses_by_hand():
    real, fake = torch.tensor([[0.5], [2.0]]), torch.tensor([[-0.5], [1.0]])
    loss, logs = L.d_hinge(real, fake)
    # relu(1 - real) = [0.5, 0]; relu(1 + fake) = [0.5, 2.0] -> 0.25 + 1.25
    assert float(loss) == pytest.approx(1.5) and logs["d_real"] == pytest.approx(1.25)
    loss, logs = L.d_wgan_gp(real, fake, torch.tensor(0.3), 10.0)
    assert float(loss) == pytest.approx(-(1.25 - 0.25) + 3.0) and logs["d_wdist"] == pytest.approx(1.0)
    assert float(L.g_adversarial(fake)[0]) == pytest.approx(-0.25)


def test_pixel_loss_is_l1_of_the_upscaled_output_and_vgg_adds_its_term():
    lr, hr = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    want = (torch.nn.functional.interpolate(lr, size=(64, 64), mode="bicubic", align_corners=False) - hr).abs()
    loss, logs = L.pixel_loss(lr, hr, gamma=2.0, delta=1.0, upscaler="bicubic", vgg=None)
    assert float(loss) == pytest.approx(2.0 * float(want.mean()), rel=1e-6) and "vgg" not in logs
    feats = lambda x: [x.mean(1, keepdim=True), x[:, :1]]  # any feature map list
    loss2, logs2 = L.pixel_loss(lr, hr, gamma=2.0, delta=0.5, upscaler="bicubic", vgg=feats)
    assert float(loss2) == pytest.approx(float(loss) + 0.5 * logs2["vgg"], rel=1e-6) and logs2["vgg"] > 0


# -- the search -----------------------------------------------------------------------------------------------


class _TinyGen(torch.nn.Module):
    """A fixed latent generator: z [B, 1, 8] -> 64 px images (a linear map, tanh)."""

    latent_dim, num_latents, output_size = 8, 1, 64

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = torch.nn.Parameter(torch.randn(8, 3 * 8 * 8, generator=g) * 0.5, requires_grad=False)

    def noise_shapes(self):
        return []

    def map_prior(self, z):
        return z

    def synthesize(self, w, noise=None):
        x = torch.tanh(w[:, 0] @ self.w).view(-1, 3, 8, 8)
        return torch.nn.functional.interpolate(x, size=(64, 64), mode="nearest")


def test_search_lowers_the_l1_for_every_start_and_starts_differ():
    gen = _TinyGen()
    torch.manual_seed(0)
    deg = DegradationGenerator(width=8).eval()
    with torch.no_grad():
        targets = deg(gen.synthesize(torch.randn(3, 1, 8)), torch.zeros(3, 100))
    cfg = SrnamSearchConfig(steps=60, starts=3, lr=0.05, noise="zero", chunk=4)
    res = run_srnam(gen, deg, targets, cfg)
    assert res.last.shape == (3, 3, 3, 64, 64)
    # every candidate's L1 fell below the one it started with (a 1-step search renders only the start)
    one = run_srnam(gen, deg, targets, SrnamSearchConfig(steps=1, starts=3, noise="zero", chunk=4))
    assert (res.best_error < one.best_error).all()
    assert not torch.allclose(res.last[:, 0], res.last[:, 1])  # K candidates differ
    with pytest.raises(ValueError, match="16 x 16"):
        run_srnam(gen, deg, torch.zeros(1, 3, 8, 8), cfg)


# -- training -----------------------------------------------------------------------------------------------------


def test_degradation_training_learns_and_resumes_exactly(tmp_path, tmp_cache, monkeypatch):
    from lrkit.methods.srnam.task import train_degradation
    from lrkit.train.checkpoint import load_checkpoint

    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))  # VGG-19 missing: the term is off
    cfg = get_preset("srnam_deg_smoke").with_overrides(steps=6, checkpoint_every=3)
    full = train_degradation(cfg, tmp_path / "full", progress=False)
    half = train_degradation(cfg.with_overrides(steps=3), tmp_path / "half", progress=False)
    resumed = train_degradation(cfg, tmp_path / "half", resume=True, progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for name in ("G", "D", "G_ema"):
        for k, v in a["modules"][name].items():
            assert torch.equal(v, b["modules"][name][k]), (name, k)
    assert "OFF" in a["extra"]["perceptual"] and "unavailable" in a["extra"]["perceptual"]
    rows = [json.loads(line) for line in (tmp_path / "full" / "losses.jsonl").read_text().splitlines()]
    assert {"l1", "g_adv", "d_wdist", "gp"} <= set(rows[-1]) and "vgg" not in rows[-1]
    assert half.final_step == 3


def test_real_lr_folder_is_required_for_the_paper_preset(tmp_path):
    from lrkit.data.synthfaces import export_folder
    from lrkit.methods.srnam.task import open_degradation_data

    export_folder("faces", tmp_path / "celeba_hq", n_train=2, n_val=1, size=64, seed=0)
    with pytest.raises(ValueError, match="--lr-root"):
        open_degradation_data(get_preset("srnam_deg"), data_root=tmp_path)


def test_cli_train_degradation_then_srnam_end_to_end(tmp_path, tmp_cache, capsys, monkeypatch):
    from PIL import Image

    from lrkit.cli import main
    from lrkit.data.ops import to_uint8

    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    deg_run, gan_run = tmp_path / "deg", tmp_path / "progan"
    assert main(["train", "degradation", "--preset", "srnam_deg_smoke", "--run-dir", str(deg_run), "--device", "cpu",
                 "--no-progress"]) == 0
    assert "perceptual term OFF" in capsys.readouterr().out  # said, never silent
    assert main(["train", "progan", "--preset", "sr_nam64_smoke", "--run-dir", str(gan_run), "--device", "cpu",
                 "--no-progress"]) == 0
    lr, _ = degrade_images(_hr(2, seed=5), [0, 1])
    files = []
    for i, img in enumerate(lr):
        files.append(str(tmp_path / f"face{i}.png"))
        Image.fromarray(to_uint8(img)).save(files[-1])
    out = tmp_path / "out"
    assert main(["srnam", "--generator", str(gan_run / "checkpoints/latest.pt"), "--degradation",
                 str(deg_run / "checkpoints/latest.pt"), "--lr", *files, "--k", "2", "--steps", "4",
                 "--out", str(out)]) == 0
    rows = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["input"], r["k"]) for r in rows] == [("face0", 0), ("face0", 1), ("face1", 0), ("face1", 1)]
    for r in rows:
        # the L1 written is the re-degraded file's: it matches the search's own L1 for the kept image
        assert r["l1_levels"] == pytest.approx(r["search_l1_levels"], abs=0.6) and r["steps"] == 4
        with Image.open(out / f"{r['input']}_{r['k']}.png") as im, \
                Image.open(out / f"{r['input']}_{r['k']}_lr.png") as im_lr:
            assert im.size == (64, 64) and im_lr.size == (16, 16)
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (2 + 5 * 66, 2 + 2 * 66)
    assert "re-degraded L1" in capsys.readouterr().out
    assert main(["srnam", "--generator", str(gan_run / "checkpoints/latest.pt"), "--degradation",
                 str(deg_run / "checkpoints/latest.pt"), "--lr", str(tmp_path / "nope.png"), "--out",
                 str(out)]) == 2


def test_vgg19_features_name_the_layers_as_the_sr_papers_and_are_unavailable_offline(tmp_path, monkeypatch):
    import torchvision

    from lrkit import weights as W
    from lrkit.nets.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, VGG19Features, load_vgg19_features

    assert VGG19_LAYERS["relu1_2"] == 3 and VGG19_LAYERS["relu2_2"] == 8 and VGG19_LAYERS["conv5_4"] == 34
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features
    net = VGG19Features(features, ("relu2_2", "relu1_2"))
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    a, b = net(x * 2 - 1)
    norm = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(a, features[:9](norm), atol=1e-5) and torch.allclose(b, features[:4](norm), atol=1e-5)
    a.sum().backward()
    assert x.grad is not None and not any(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        VGG19Features(features, ("relu9_9",))
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(W.WeightsUnavailable, match="lrkit weights fetch torchvision_vgg19"):
        load_vgg19_features(("relu1_2",))


def test_degradation_check_compares_with_the_known_truth(tmp_cache):
    from lrkit.methods.srnam.evaluation import degradation_check

    torch.manual_seed(3)
    rows = degradation_check(DegradationGenerator(width=8).eval(), n=16, seed=0)
    by = {r["lr_images"].split(" (")[0]: r["swd"] for r in rows}
    assert len(rows) == 4 and all(r["n"] == 16 for r in rows)
    floor = [v for k, v in by.items() if k.startswith("synthlr-v1")][0]
    assert floor < by["the same net, untrained"]  # two samples of the truth are closer than a random net to it
