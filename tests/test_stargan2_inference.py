"""StarGAN v2 inference: official-file loading (with and without the FAN), reference- and latent-guided synthesis,
and `lrkit translate --method stargan2` against a direct chain of the networks, image for image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.cli import main
from lrkit.methods.stargan2.inference import load_images_official, load_stargan2, translate_latent, translate_ref
from lrkit.methods.stargan2.nets import MappingNetwork, Stargan2Generator, StyleEncoder
from lrkit.methods.stargan2.official_files import save_nets_ema_like_official
from lrkit.nets.fan import FAN, heatmap_masks

pytestmark = pytest.mark.usefixtures("one_thread")

S, MAXC = 32, 16  # tiny models: 32 px, widths capped at 16


def _nets(w_hpf: float, num_domains: int, seed: int = 0, fan: bool = False) -> dict:
    torch.manual_seed(seed)
    nets = {"generator": Stargan2Generator(S, 64, MAXC, w_hpf), "mapping_network": MappingNetwork(16, 64, num_domains),
            "style_encoder": StyleEncoder(S, 64, num_domains, MAXC)}
    if fan:
        nets["fan"] = FAN().eval()
    return nets


def _png(path, seed: int, size: int = 48) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def afhq_like(tmp_path):
    """An official-layout nets_ema file of a 3-domain, w_hpf 0 model (the AFHQ release's settings, tiny)."""
    nets = _nets(0, 3)
    path = tmp_path / "100000_nets_ema.ckpt"
    save_nets_ema_like_official(path, nets)
    return path, nets


def test_cli_reference_guided_equals_the_network_chain(afhq_like, tmp_path, capsys):
    path, nets = afhq_like
    srcs = [_png(tmp_path / f"src{i}.png", i) for i in range(2)]
    refs = [_png(tmp_path / f"ref{i}.png", 10 + i) for i in range(3)]
    out = tmp_path / "out"
    rc = main(["translate", "--method", "stargan2", "--checkpoint", str(path), "--source", *srcs, "--reference",
               *refs, "--domain", "dog", "wild", "0", "--img-size", str(S), "--w-hpf", "0", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    # The official chain: test-loader transforms, E(ref, y), G(src, s), denormalise, 8-bit as save_image writes.
    x_src = load_images_official(srcs, S)
    x_ref = load_images_official(refs, S)
    assert x_src.shape == (2, 3, S, S)
    G, E = nets["generator"].eval(), nets["style_encoder"].eval()
    for r, dom in enumerate([1, 2, 0]):
        with torch.no_grad():
            s = E(x_ref[r:r + 1].repeat(2, 1, 1, 1), torch.tensor([dom, dom]))
            fake = G(x_src, s)
        want = ((fake + 1) / 2).clamp(0, 1).mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        for k in range(2):
            got = np.asarray(Image.open(out / f"ref{r}__src{k}.png")).astype(int)
            # The CLI batches every (reference, source) pair at once, this chain two at a time: float sums in
            # another order may move a value across a rounding boundary (seen once: 1 of 3,072 values by 1 level).
            diff = np.abs(got - want[k].numpy().astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.005, (diff.max(), (diff > 0).mean())
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (4 * S, 3 * S, 3)  # (1 + refs) rows x (1 + sources) columns, no padding
    assert (grid[:S, :S] == 255).all()  # the blank corner
    np.testing.assert_array_equal(grid[S:2 * S, S:2 * S], np.asarray(Image.open(out / "ref0__src0.png")))


def test_official_file_with_a_fan_uses_it_and_masks_come_from_the_sources(tmp_path):
    nets = _nets(1, 2, seed=3, fan=True)
    path = tmp_path / "celeba_like_nets_ema.ckpt"
    save_nets_ema_like_official(path, nets)
    loaded = load_stargan2(path, img_size=S, w_hpf=1)
    assert loaded.fan is not None and "stored in nets_ema" in loaded.fan_source
    assert loaded.domain_names == ("female", "male")
    torch.manual_seed(1)
    src, ref = torch.rand(2, 3, S, S) * 2 - 1, torch.rand(2, 3, S, S) * 2 - 1
    got = translate_ref(loaded, src, ref, "male")
    G, E, fan = nets["generator"].eval(), nets["style_encoder"].eval(), nets["fan"].eval()
    with torch.no_grad():
        want = G(src, E(ref, torch.tensor([1, 1])), masks=heatmap_masks(fan, src)).clamp(-1, 1)
        without_masks = G(src, E(ref, torch.tensor([1, 1])), masks=None)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert (got - without_masks.clamp(-1, 1)).abs().max() > 1e-4  # the high-pass path is really used


def test_w_hpf_model_without_a_fan_needs_wing(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    nets = _nets(1, 2, seed=4)
    path = tmp_path / "nets_ema.ckpt"
    save_nets_ema_like_official(path, nets)
    with pytest.raises(RuntimeError, match="lrkit weights fetch stargan2_wing"):
        load_stargan2(path, img_size=S, w_hpf=1)
    fan = FAN()
    wing = tmp_path / "my_wing.ckpt"
    torch.save({"state_dict": fan.state_dict()}, wing)
    loaded = load_stargan2(path, img_size=S, w_hpf=1, wing=str(wing))
    assert loaded.fan is not None and "unverified" in loaded.fan_source
    torch.testing.assert_close(loaded.fan.state_dict()["conv1.conv.weight"], fan.state_dict()["conv1.conv.weight"])


def test_wrong_flags_for_an_official_file_are_clear_errors(afhq_like):
    path, _ = afhq_like
    with pytest.raises(ValueError, match="w_hpf"):
        load_stargan2(path, img_size=S, w_hpf=1, wing="unused")
    with pytest.raises(ValueError, match="img_size"):
        load_stargan2(path, img_size=64, w_hpf=0)
    with pytest.raises(FileNotFoundError, match="no StarGAN v2 checkpoint"):
        load_stargan2(path.parent / "nope.ckpt")


def test_latent_guided_is_seeded_and_equals_the_mapping_chain(afhq_like):
    path, nets = afhq_like
    loaded = load_stargan2(path, img_size=S, w_hpf=0)
    assert loaded.domain_names == ("cat", "dog", "wild") and loaded.latent_dim == 16
    src = torch.rand(3, 3, S, S) * 2 - 1
    a = translate_latent(loaded, src, ["cat", "dog", 2], seed=5)
    b = translate_latent(loaded, src, ["cat", "dog", 2], seed=5)
    c = translate_latent(loaded, src, ["cat", "dog", 2], seed=6)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-4
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = nets["generator"](src, nets["mapping_network"](z, torch.tensor([0, 1, 2]))).clamp(-1, 1)
    torch.testing.assert_close(a, want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"z must be \[3, 16\]"):
        translate_latent(loaded, src, "cat", z=torch.zeros(2, 16))


def test_domains_and_sizes_are_checked(afhq_like):
    path, _ = afhq_like
    loaded = load_stargan2(path, img_size=S, w_hpf=0)
    x = torch.zeros(2, 3, S, S)
    with pytest.raises(ValueError, match="unknown domain 'horse'"):
        translate_ref(loaded, x, x, "horse")
    with pytest.raises(ValueError, match="out of range"):
        translate_ref(loaded, x, x, 3)
    with pytest.raises(ValueError, match="3 target domains for 2 images"):
        translate_ref(loaded, x, x, ["cat", "dog", "wild"])
    with pytest.raises(ValueError, match="works at 32x32"):
        translate_ref(loaded, torch.zeros(2, 3, 64, 64), x, "cat")
    with pytest.raises(ValueError, match="pairs sources and references"):
        translate_ref(loaded, x, x[:1], "cat")


def test_cli_flags_belong_to_their_method(afhq_like, tmp_path, capsys):
    path, _ = afhq_like
    src = _png(tmp_path / "s.png", 0)
    assert main(["translate", "--method", "stargan2", "--checkpoint", str(path), "--source", src, "--target", src,
                 "--out", str(tmp_path / "o")]) == 2
    assert "reference-guided" in capsys.readouterr().err
    assert main(["translate", "--method", "stargan2", "--checkpoint", str(path), "--source", src, "--reference",
                 src, "--domain", "cat", "dog", "--img-size", str(S), "--w-hpf", "0", "--out",
                 str(tmp_path / "o")]) == 2
    assert "2 --domain values for 1 references" in capsys.readouterr().err
    assert main(["translate", "--checkpoint", str(path), "--source", src, "--reference", src, "--out",
                 str(tmp_path / "o")]) == 2
    assert "belong to --method stargan2" in capsys.readouterr().err
