"""StarGAN v2 networks, FAN masks and the official-checkpoint reader (tiny CPU models; 256 px only on the meta
device for the parameter counts)."""

from __future__ import annotations

import math

import pytest
import torch

from lrkit.methods.stargan2.nets import MappingNetwork, Stargan2Discriminator, Stargan2Generator, StyleEncoder
from lrkit.methods.stargan2.official_files import load_official_nets_ema, load_official_wing, save_nets_ema_like_official
from lrkit.nets.fan import FAN, heatmap_masks, masks_from_heatmaps

pytestmark = pytest.mark.usefixtures("one_thread")

# Tiny settings for everything that runs: 64 px, widths capped at 32, style 8.
S, MAXC, STYLE, LATENT = 64, 32, 8, 16


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- parameter counts of the released models ---------------------------------------------------------------------
# CelebA-HQ (img 256, w_hpf 1, 2 domains): the official code prints these at start-up ("Number of parameters of
# generator: 43467395" ... in the log quoted in clovaai/stargan-v2 issue #152, run with the released settings).
# AFHQ (img 256, w_hpf 0, 3 domains): no printed log found; computed from the architecture (same code path, one
# encoder/decoder level less, one more domain head) and cross-checked against the official core/model.py classes.
CELEBA_HQ = {"generator": 43_467_395, "mapping_network": 2_438_272, "style_encoder": 20_916_928,
             "discriminator": 20_852_290}
AFHQ = {"generator": 33_892_995, "mapping_network": 3_259_072, "style_encoder": 20_949_760,
        "discriminator": 20_852_803}
FAN_PARAMS = 6_333_603  # "Number of parameters of fan" in the same issue #152 log


@pytest.mark.parametrize(("w_hpf", "domains", "expected"), [(1, 2, CELEBA_HQ), (0, 3, AFHQ)])
def test_parameter_counts_match_released_models(w_hpf, domains, expected):
    with torch.device("meta"):  # no memory, no init: only the shapes matter here
        nets = {"generator": Stargan2Generator(256, 64, 512, w_hpf),
                "mapping_network": MappingNetwork(16, 64, domains),
                "style_encoder": StyleEncoder(256, 64, domains, 512),
                "discriminator": Stargan2Discriminator(256, domains, 512)}
    assert {k: n_params(v) for k, v in nets.items()} == expected
    # The generator's encoder depth is what tells the two released files apart (7 vs 6 blocks incl. bottleneck).
    assert len(nets["generator"].encode) == (7 if w_hpf else 6)


def test_fan_parameter_count_and_forward_shape():
    torch.manual_seed(0)
    fan = FAN().eval()
    assert n_params(fan) == FAN_PARAMS
    with torch.no_grad():
        out = fan(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 99, 64, 64) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="256"):
        fan(torch.rand(1, 3, 128, 128))


# --- forward behaviour -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "w_hpf"), [(32, 0), (32, 1), (64, 0), (64, 1)])
def test_generator_shape_and_style_dependence(size, w_hpf):
    torch.manual_seed(0)
    g = Stargan2Generator(size, STYLE, MAXC, w_hpf)
    x = torch.randn(2, 3, size, size)
    s = torch.randn(2, STYLE, requires_grad=True)
    out = g(x, s)
    assert out.shape == (2, 3, size, size)
    # Changing only the style changes the image; gradients reach the style code.
    assert not torch.allclose(out, g(x, torch.randn(2, STYLE)), atol=1e-4)
    out.square().mean().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_mapping_network_uses_the_domain_head():
    torch.manual_seed(0)
    m = MappingNetwork(LATENT, STYLE, num_domains=3)
    z = torch.randn(4, LATENT)
    y = torch.tensor([0, 2, 1, 2])
    out = m(z, y)
    assert out.shape == (4, STYLE)
    h = m.shared(z)
    by_hand = torch.stack([m.unshared[int(d)](h[i]) for i, d in enumerate(y)])
    torch.testing.assert_close(out, by_hand)
    assert not torch.allclose(m(z, torch.zeros(4, dtype=torch.long)), m(z, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        m(z, torch.tensor([0, 1, 2, 3]))


def test_mapping_network_width_follows_the_config():
    from lrkit.methods.stargan2.config import get_preset
    from lrkit.methods.stargan2.task import build_nets

    narrow = MappingNetwork(LATENT, STYLE, num_domains=2, hidden=32)
    assert narrow.shared[0].out_features == 32
    assert narrow(torch.randn(3, LATENT), torch.tensor([0, 1, 1])).shape == (3, STYLE)
    # The paper and smoke presets keep the official 512-wide F; the cpu presets' narrower F is what lets them ship.
    assert build_nets(get_preset("celebahq128"))["F"].shared[0].out_features == 512
    assert build_nets(get_preset("celebahq128_smoke"))["F"].shared[0].out_features == 512
    f_cpu = build_nets(get_preset("celebahq128_cpu"))["F"]
    assert f_cpu.shared[0].out_features == 128 and sum(p.numel() for p in f_cpu.parameters()) < 200_000
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        MappingNetwork(LATENT, STYLE, 2, hidden=0)


def test_style_encoder_and_discriminator_pick_the_domain_output():
    torch.manual_seed(0)
    e = StyleEncoder(S, STYLE, 3, MAXC)
    d = Stargan2Discriminator(S, 3, MAXC)
    x = torch.randn(3, 3, S, S)
    y = torch.tensor([2, 0, 1])
    h = e.shared(x).flatten(1)  # [3, C]: the 4x4 valid conv leaves 1x1
    torch.testing.assert_close(e(x, y), torch.stack([e.unshared[int(k)](h[i]) for i, k in enumerate(y)]))
    assert not torch.allclose(e(x, y), e(x, torch.tensor([0, 1, 2])))
    logits_all = d.main(x).flatten(1)  # [3, num_domains]
    out = d(x, y)
    assert out.shape == (3,)
    torch.testing.assert_close(out, logits_all[torch.arange(3), y])
    with pytest.raises(ValueError, match=r"\[B, 3, 64, 64\]"):
        d(torch.randn(3, 3, 32, 32), y)


def test_high_pass_path_runs_with_fan_masks():
    torch.manual_seed(0)
    fan = FAN().eval()
    x = torch.rand(2, 3, S, S) * 2 - 1
    masks = heatmap_masks(fan, x)
    assert [tuple(m.shape) for m in masks] == [(2, 1, 256, 256)] * 2
    assert all(((m >= 0) & (m <= 1)).all() for m in masks)
    g = Stargan2Generator(S, STYLE, MAXC, w_hpf=1)
    s = torch.randn(2, STYLE)
    with_masks, without = g(x, s, masks), g(x, s)
    assert torch.isfinite(with_masks).all()
    assert not torch.allclose(with_masks, without, atol=1e-5)  # the skip path adds something
    # Zero masks switch the high-pass path off exactly.
    zeros = (torch.zeros(2, 1, 256, 256), torch.zeros(2, 1, 256, 256))
    torch.testing.assert_close(g(x, s, zeros), without)
    with pytest.raises(ValueError, match="w_hpf=0"):
        Stargan2Generator(S, STYLE, MAXC, w_hpf=0)(x, s, masks)


def test_high_pass_filter_is_the_scaled_laplacian():
    g = Stargan2Generator(32, STYLE, MAXC, w_hpf=2)
    x = torch.zeros(1, 2, 5, 5)
    x[0, 1, 2, 2] = 1.0  # an impulse in channel 1
    out = g.hpf(x)
    expected = torch.full((3, 3), -0.5)
    expected[1, 1] = 4.0  # [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / 2, flipped = itself
    torch.testing.assert_close(out[0, 1, 1:4, 1:4], expected)
    assert out[0, 0].abs().sum() == 0 and out[0, 1].sum().abs() < 1e-6  # depthwise; a Laplacian sums to zero


def test_masks_from_heatmaps_by_hand():
    heat = torch.zeros(1, 98, 256, 256)
    heat[0, 96, 100, 120] = 1.0  # left eye centre: kept in both masks, unshifted
    heat[0, 10, 200, 128] = 1.0  # chin point: face mask only
    heat[0, 52, 150, 128] = 0.8  # nose point: moved 4 px up, kept in both
    heat[0, 0, 50, 50] = 1.0  # outer face line: dropped
    heat[0, 40, 60, 60] = 0.05  # below the 0.1 threshold: dropped before normalisation
    face, inner = masks_from_heatmaps(heat)
    peak = 1 / (1 + 1e-6)  # min-max normalisation with eps 1e-6, then clamp
    expected_face = torch.zeros(256, 256)
    expected_face[100, 120] = peak
    expected_face[200, 128] = peak**3  # chin heatmaps are cubed
    expected_face[146, 128] = peak
    expected_inner = expected_face.clone()
    expected_inner[200, 128] = 0
    torch.testing.assert_close(face[0, 0], expected_face)
    torch.testing.assert_close(inner[0, 0], expected_inner)


# --- official checkpoint files ---------------------------------------------------------------------------------------
def tiny_nets(domains: int = 3, w_hpf: float = 1, seed: int = 0) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    return {"generator": Stargan2Generator(S, STYLE, MAXC, w_hpf),
            "mapping_network": MappingNetwork(LATENT, STYLE, domains),
            "style_encoder": StyleEncoder(S, STYLE, domains, MAXC)}


def load_tiny(path, **kw):
    return load_official_nets_ema(path, img_size=S, style_dim=STYLE, latent_dim=LATENT, max_conv_dim=MAXC, **kw)


def test_round_trip_gives_identical_state_and_outputs(tmp_path):
    nets = tiny_nets()
    path = tmp_path / "100000_nets_ema.ckpt"
    save_nets_ema_like_official(path, nets)
    raw = torch.load(path, weights_only=True)
    assert sorted(raw) == ["generator", "mapping_network", "style_encoder"]
    assert "hpf.filter" not in raw["generator"]  # like the released CelebA-HQ file
    loaded = load_tiny(path, w_hpf=1)  # num_domains inferred: 3
    assert loaded["mapping_network"].num_domains == 3
    for name, module in nets.items():
        mine, theirs = module.state_dict(), loaded[name].state_dict()
        assert list(mine) == list(theirs)
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        assert not loaded[name].training
    x, z, y = torch.randn(2, 3, S, S), torch.randn(2, LATENT), torch.tensor([2, 1])
    with torch.no_grad():
        s = nets["mapping_network"](z, y)
        assert torch.equal(loaded["mapping_network"](z, y), s)
        assert torch.equal(loaded["style_encoder"](x, y), nets["style_encoder"](x, y))
        assert torch.equal(loaded["generator"](x, s), nets["generator"](x, s))


def test_file_with_fan_and_hpf_filter_entries_loads(tmp_path):
    # The CelebA-HQ file carries the FAN under "fan"; files from the newer official code have "hpf.filter".
    nets = tiny_nets()
    path = tmp_path / "nets_ema.ckpt"
    save_nets_ema_like_official(path, {**nets, "fan": torch.nn.Linear(1, 1)})
    raw = torch.load(path, weights_only=True)
    raw["generator"]["hpf.filter"] = nets["generator"].hpf.filter.clone()
    torch.save(raw, path)
    loaded = load_tiny(path, w_hpf=1)
    assert torch.equal(loaded["generator"].encode[0].conv1.weight, nets["generator"].encode[0].conv1.weight)
    # A kernel of another w_hpf is refused (it would change every output).
    raw["generator"]["hpf.filter"] = raw["generator"]["hpf.filter"] / 2
    torch.save(raw, path)
    with pytest.raises(ValueError, match="hpf.filter"):
        load_tiny(path, w_hpf=1)


def test_bad_files_raise_one_error_listing_the_keys(tmp_path):
    nets = tiny_nets()
    path = tmp_path / "bad.ckpt"
    save_nets_ema_like_official(path, nets)
    raw = torch.load(path, weights_only=True)
    del raw["generator"]["decode.0.conv1.weight"]
    raw["style_encoder"]["extra.weight"] = torch.zeros(1)
    raw["mapping_network"]["shared.0.weight"] = torch.zeros(512, LATENT + 1)
    torch.save(raw, path)
    with pytest.raises(ValueError) as info:
        load_tiny(path, w_hpf=1)
    msg = str(info.value)
    for fragment in ("generator: missing keys ['decode.0.conv1.weight']", "style_encoder: unexpected keys "
                     "['extra.weight']", "shared.0.weight (512, 17) in file vs (512, 16) here", "Likely cause"):
        assert fragment in msg


def test_wrong_w_hpf_is_named_as_the_likely_cause(tmp_path):
    path = tmp_path / "afhq_like.ckpt"
    save_nets_ema_like_official(path, tiny_nets(w_hpf=0))
    with pytest.raises(ValueError, match=r"4 encoder blocks.*builds 5: try w_hpf=0"):
        load_tiny(path, w_hpf=1)
    assert len(load_tiny(path, w_hpf=0)["generator"].encode) == 4  # 64 px: 2 down + 2 bottleneck


def test_non_checkpoint_files_are_refused_clearly(tmp_path):
    html = tmp_path / "html.ckpt"
    html.write_text("<html>Dropbox</html>")
    with pytest.raises(ValueError, match="is an HTML page"):
        load_tiny(html)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_tiny(truncated)
    with pytest.raises(FileNotFoundError):
        load_tiny(tmp_path / "absent.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save({"g_ema": {}}, other)
    with pytest.raises(ValueError, match="missing .*'generator'"):
        load_tiny(other)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"generator": torch.nn.Linear(1, 1)}, pickled)  # a whole module: needs unsafe unpickling
    with pytest.raises(ValueError, match="weights_only"):
        load_tiny(pickled)
    training = tmp_path / "100000_nets.ckpt"
    torch.save({"discriminator": {}, **{k: {} for k in ("generator", "mapping_network", "style_encoder")}}, training)
    with pytest.raises(ValueError, match="_nets_ema.ckpt"):
        load_tiny(training)


def test_wing_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    fan = FAN()
    with torch.no_grad():  # non-default BN statistics, so loading them is observable
        for m in fan.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    sd = {k: v for k, v in fan.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "wing.ckpt"
    torch.save({"state_dict": {**sd, "unused.head.weight": torch.zeros(2)}}, path)  # extra keys are ignored
    loaded = load_official_wing(path)
    assert not loaded.training
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in sd.items())
    del sd["l0.weight"]
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ValueError, match="l0.weight"):
        load_official_wing(path)
    torch.save(sd, path)
    with pytest.raises(ValueError, match="'state_dict' entry"):
        load_official_wing(path)


def test_generator_rejects_bad_configuration():
    with pytest.raises(ValueError, match="power of two"):
        Stargan2Generator(48)
    with pytest.raises(ValueError, match="w_hpf"):
        Stargan2Generator(32, w_hpf=-1)
    assert math.isclose(Stargan2Generator(32, STYLE, MAXC, w_hpf=1).hpf.filter[1, 1].item(), 8.0)


def test_base_dim_narrows_only_the_full_resolution_width():
    from lrkit.methods.stargan2.nets import Stargan2Discriminator, Stargan2Generator, StyleEncoder

    official = Stargan2Generator(32, 64, 16, 0)
    assert official.from_rgb.out_channels == 2**14 // 32  # the official rule ignores the cap at full resolution
    narrow = Stargan2Generator(32, 64, 16, 0, base_dim=8)
    assert narrow.from_rgb.out_channels == 8 and narrow.to_rgb[-1].in_channels == 8
    assert StyleEncoder(32, 64, 2, 16, base_dim=4).shared[0].out_channels == 4
    assert Stargan2Discriminator(32, 2, 16, base_dim=4).main[0].out_channels == 4
    x = torch.zeros(1, 3, 32, 32)
    assert narrow(x, torch.zeros(1, 64)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="base_dim"):
        Stargan2Generator(32, 64, 16, 0, base_dim=0)
