"""StyleGAN-1 as PULSE ships it: exact state_dict layout, loading its files, the prior fit, the search adaptor.

The literal key lists below are written down from reading PULSE's ``stylegan.py`` (adamian98/pulse at 40cacb97):
``G_mapping`` is an ``nn.Sequential`` of ``pixel_norm``, ``dense0``..``dense7`` (+ parameter-free activations);
``G_synthesis`` registers ``torgb`` before ``blocks`` (an ``nn.ModuleDict`` "4x4".."1024x1024"), the 4x4 block has
``const``/``bias``/``epi1``/``conv``/``epi2``, later blocks ``conv0_up`` (with the blur buffer
``intermediate.kernel``)/``epi1``/``conv1``/``epi2``; each epilogue ``noise.weight`` and ``style_mod.lin``.
"""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from lrkit.errors import UserError
from lrkit.methods.stylegan1.nets import (StyleGAN1Mapping, StyleGAN1Synthesis, UpConv2d, noise_side,
                                         num_synthesis_layers, synthesis_channels)
from lrkit.methods.stylegan1.official_files import (MAPPING_FILENAME, SYNTHESIS_FILENAME, StyleGAN1FileError,
                                                    StyleGAN1FileMissing, load_stylegan1, write_official_layout)
from lrkit.methods.stylegan1.prior import (StyleGAN1LatentGenerator, fit_gaussian, load_gaussian_fit,
                                           save_gaussian_fit)
from lrkit.nets.latent_generator import LatentGenerator, check_latent_generator

pytestmark = pytest.mark.usefixtures("one_thread")

# PULSE's mapping.pt: 8 dense layers of 512, weight [out, in] and bias.
PULSE_MAPPING_KEYS = [(f"dense{i}.{p}", (512, 512) if p == "weight" else (512,))
                      for i in range(8) for p in ("weight", "bias")]

# PULSE's synthesis.pt (FFHQ 1024), every key in state_dict order with its shape.
PULSE_SYNTHESIS_KEYS = [
    ("torgb.weight", (3, 16, 1, 1)),
    ("torgb.bias", (3,)),
    ("blocks.4x4.const", (1, 512, 4, 4)),
    ("blocks.4x4.bias", (512,)),
    ("blocks.4x4.epi1.noise.weight", (512,)),
    ("blocks.4x4.epi1.style_mod.lin.weight", (1024, 512)),
    ("blocks.4x4.epi1.style_mod.lin.bias", (1024,)),
    ("blocks.4x4.conv.weight", (512, 512, 3, 3)),
    ("blocks.4x4.conv.bias", (512,)),
    ("blocks.4x4.epi2.noise.weight", (512,)),
    ("blocks.4x4.epi2.style_mod.lin.weight", (1024, 512)),
    ("blocks.4x4.epi2.style_mod.lin.bias", (1024,)),
    ("blocks.8x8.conv0_up.weight", (512, 512, 3, 3)),
    ("blocks.8x8.conv0_up.bias", (512,)),
    ("blocks.8x8.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.8x8.epi1.noise.weight", (512,)),
    ("blocks.8x8.epi1.style_mod.lin.weight", (1024, 512)),
    ("blocks.8x8.epi1.style_mod.lin.bias", (1024,)),
    ("blocks.8x8.conv1.weight", (512, 512, 3, 3)),
    ("blocks.8x8.conv1.bias", (512,)),
    ("blocks.8x8.epi2.noise.weight", (512,)),
    ("blocks.8x8.epi2.style_mod.lin.weight", (1024, 512)),
    ("blocks.8x8.epi2.style_mod.lin.bias", (1024,)),
    ("blocks.16x16.conv0_up.weight", (512, 512, 3, 3)),
    ("blocks.16x16.conv0_up.bias", (512,)),
    ("blocks.16x16.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.16x16.epi1.noise.weight", (512,)),
    ("blocks.16x16.epi1.style_mod.lin.weight", (1024, 512)),
    ("blocks.16x16.epi1.style_mod.lin.bias", (1024,)),
    ("blocks.16x16.conv1.weight", (512, 512, 3, 3)),
    ("blocks.16x16.conv1.bias", (512,)),
    ("blocks.16x16.epi2.noise.weight", (512,)),
    ("blocks.16x16.epi2.style_mod.lin.weight", (1024, 512)),
    ("blocks.16x16.epi2.style_mod.lin.bias", (1024,)),
    ("blocks.32x32.conv0_up.weight", (512, 512, 3, 3)),
    ("blocks.32x32.conv0_up.bias", (512,)),
    ("blocks.32x32.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.32x32.epi1.noise.weight", (512,)),
    ("blocks.32x32.epi1.style_mod.lin.weight", (1024, 512)),
    ("blocks.32x32.epi1.style_mod.lin.bias", (1024,)),
    ("blocks.32x32.conv1.weight", (512, 512, 3, 3)),
    ("blocks.32x32.conv1.bias", (512,)),
    ("blocks.32x32.epi2.noise.weight", (512,)),
    ("blocks.32x32.epi2.style_mod.lin.weight", (1024, 512)),
    ("blocks.32x32.epi2.style_mod.lin.bias", (1024,)),
    ("blocks.64x64.conv0_up.weight", (256, 512, 3, 3)),
    ("blocks.64x64.conv0_up.bias", (256,)),
    ("blocks.64x64.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.64x64.epi1.noise.weight", (256,)),
    ("blocks.64x64.epi1.style_mod.lin.weight", (512, 512)),
    ("blocks.64x64.epi1.style_mod.lin.bias", (512,)),
    ("blocks.64x64.conv1.weight", (256, 256, 3, 3)),
    ("blocks.64x64.conv1.bias", (256,)),
    ("blocks.64x64.epi2.noise.weight", (256,)),
    ("blocks.64x64.epi2.style_mod.lin.weight", (512, 512)),
    ("blocks.64x64.epi2.style_mod.lin.bias", (512,)),
    ("blocks.128x128.conv0_up.weight", (128, 256, 3, 3)),
    ("blocks.128x128.conv0_up.bias", (128,)),
    ("blocks.128x128.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.128x128.epi1.noise.weight", (128,)),
    ("blocks.128x128.epi1.style_mod.lin.weight", (256, 512)),
    ("blocks.128x128.epi1.style_mod.lin.bias", (256,)),
    ("blocks.128x128.conv1.weight", (128, 128, 3, 3)),
    ("blocks.128x128.conv1.bias", (128,)),
    ("blocks.128x128.epi2.noise.weight", (128,)),
    ("blocks.128x128.epi2.style_mod.lin.weight", (256, 512)),
    ("blocks.128x128.epi2.style_mod.lin.bias", (256,)),
    ("blocks.256x256.conv0_up.weight", (64, 128, 3, 3)),
    ("blocks.256x256.conv0_up.bias", (64,)),
    ("blocks.256x256.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.256x256.epi1.noise.weight", (64,)),
    ("blocks.256x256.epi1.style_mod.lin.weight", (128, 512)),
    ("blocks.256x256.epi1.style_mod.lin.bias", (128,)),
    ("blocks.256x256.conv1.weight", (64, 64, 3, 3)),
    ("blocks.256x256.conv1.bias", (64,)),
    ("blocks.256x256.epi2.noise.weight", (64,)),
    ("blocks.256x256.epi2.style_mod.lin.weight", (128, 512)),
    ("blocks.256x256.epi2.style_mod.lin.bias", (128,)),
    ("blocks.512x512.conv0_up.weight", (32, 64, 3, 3)),
    ("blocks.512x512.conv0_up.bias", (32,)),
    ("blocks.512x512.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.512x512.epi1.noise.weight", (32,)),
    ("blocks.512x512.epi1.style_mod.lin.weight", (64, 512)),
    ("blocks.512x512.epi1.style_mod.lin.bias", (64,)),
    ("blocks.512x512.conv1.weight", (32, 32, 3, 3)),
    ("blocks.512x512.conv1.bias", (32,)),
    ("blocks.512x512.epi2.noise.weight", (32,)),
    ("blocks.512x512.epi2.style_mod.lin.weight", (64, 512)),
    ("blocks.512x512.epi2.style_mod.lin.bias", (64,)),
    ("blocks.1024x1024.conv0_up.weight", (16, 32, 3, 3)),
    ("blocks.1024x1024.conv0_up.bias", (16,)),
    ("blocks.1024x1024.conv0_up.intermediate.kernel", (1, 1, 3, 3)),
    ("blocks.1024x1024.epi1.noise.weight", (16,)),
    ("blocks.1024x1024.epi1.style_mod.lin.weight", (32, 512)),
    ("blocks.1024x1024.epi1.style_mod.lin.bias", (32,)),
    ("blocks.1024x1024.conv1.weight", (16, 16, 3, 3)),
    ("blocks.1024x1024.conv1.bias", (16,)),
    ("blocks.1024x1024.epi2.noise.weight", (16,)),
    ("blocks.1024x1024.epi2.style_mod.lin.weight", (32, 512)),
    ("blocks.1024x1024.epi2.style_mod.lin.bias", (32,)),
]

# A tiny network: 32 px (8 style layers), channels 32, 32, 16, 8; latent width 16. Same key names.
TINY = dict(resolution=32, fmap_base=128, fmap_max=32, latent_dim=16)


def tiny_nets(seed: int = 0, **kw) -> tuple[StyleGAN1Mapping, StyleGAN1Synthesis]:
    """Tiny mapping + synthesis with every parameter perturbed (noise weights and style biases start at zero in a
    fresh net, which would hide mistakes in the noise / style paths)."""
    torch.manual_seed(seed)
    cfg = {**TINY, **kw}
    mapping = StyleGAN1Mapping(cfg["latent_dim"])
    synthesis = StyleGAN1Synthesis(**cfg)
    with torch.no_grad():
        for p in synthesis.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return mapping, synthesis


def tiny_noise(batch: int, n_layers: int, requires_grad: bool = False) -> list[torch.Tensor]:
    return [torch.randn(batch, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2), requires_grad=requires_grad)
            for i in range(n_layers)]


def save_as_if_on_cuda(obj, path) -> None:
    """torch.save ``obj`` with every storage tagged ``cuda:0``, as PULSE's files are, on a machine without CUDA:
    the legacy format pickles each storage's location string, which is patched from 'cpu' to 'cuda:0'."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False, pickle_protocol=2)
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
    data = buf.getvalue()
    assert cpu in data
    path.write_bytes(data.replace(cpu, cuda))


# ---------------------------------------------------------------------------------------------- layout


def test_ffhq_modules_have_pulse_keys_and_shapes():
    mapping = {k: tuple(v.shape) for k, v in StyleGAN1Mapping().state_dict().items()}
    synthesis = {k: tuple(v.shape) for k, v in StyleGAN1Synthesis().state_dict().items()}
    assert list(mapping.items()) == PULSE_MAPPING_KEYS
    assert len(PULSE_SYNTHESIS_KEYS) == 100 and len(PULSE_MAPPING_KEYS) == 16
    assert list(synthesis.items()) == PULSE_SYNTHESIS_KEYS  # names, shapes and order
    assert synthesis["blocks.1024x1024.conv0_up.weight"] == (16, 32, 3, 3)
    assert synthesis["blocks.64x64.conv0_up.weight"] == (256, 512, 3, 3)
    assert synthesis["blocks.4x4.epi1.style_mod.lin.weight"] == (1024, 512)
    assert synthesis_channels(1024) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                                        1024: 16}


def test_tiny_network_uses_the_same_key_pattern():
    tiny = list(StyleGAN1Synthesis(**TINY).state_dict())
    kept = [k for k, _ in PULSE_SYNTHESIS_KEYS if not k.startswith("blocks.")
            or k.split(".")[1] in ("4x4", "8x8", "16x16", "32x32")]
    assert tiny == kept
    assert list(StyleGAN1Mapping(16).state_dict()) == [k for k, _ in PULSE_MAPPING_KEYS]


def test_noise_shapes_and_layer_count():
    syn = StyleGAN1Synthesis(**TINY)
    assert syn.num_layers == 8
    assert syn.noise_shapes() == [(1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)) for i in range(8)]
    full = [(1, s, s) for s in (4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024)]
    assert num_synthesis_layers(1024) == 18
    assert [(1, noise_side(i), noise_side(i)) for i in range(18)] == full


# ---------------------------------------------------------------------------------------------- forward


def test_mapping_returns_one_vector_per_sample_and_pixel_norms_z():
    mapping, _ = tiny_nets()
    z = torch.randn(5, 16)
    w = mapping(z)
    assert w.shape == (5, 16)  # PULSE's G_mapping: no broadcast to the synthesis layers
    torch.testing.assert_close(mapping(3.0 * z), w)  # pixel norm: the scale of z does not matter


def test_synthesis_forward_shapes_noise_and_styles():
    _, syn = tiny_nets()
    w = torch.randn(2, 8, 16)
    noise = tiny_noise(2, 8)
    with torch.no_grad():
        x = syn(w, noise)
        assert x.shape == (2, 3, 32, 32)
        torch.testing.assert_close(syn(w, noise), x)  # deterministic with given noise
        assert not torch.allclose(syn(w, None), x)  # None: fresh noise per call
        # Each block reads latents 2k, 2k+1: changing the last latent changes the output.
        w2 = w.clone()
        w2[:, 7] += 1.0
        assert not torch.allclose(syn(w2, noise), x)
        # A batch-1 noise map broadcasts over the batch.
        one = [n[:1] for n in noise]
        torch.testing.assert_close(syn(w, one)[1], syn(w[1:], one)[0])
    with pytest.raises(ValueError, match="dlatents"):
        syn(torch.randn(2, 7, 16), noise)
    with pytest.raises(ValueError, match="noise maps"):
        syn(w, noise[:-1])


def _fill(module, seed, scale):
    """Every tensor of the state_dict (in its order) from one seeded generator; the blur kernel stays."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in module.state_dict().items():
            if not k.endswith("intermediate.kernel"):
                v.copy_(scale * torch.randn(v.shape, generator=g))


def test_outputs_equal_those_of_pulses_code():
    # Reference numbers computed by running PULSE's own stylegan.py (G_synthesis(resolution=128, fmap_base=256,
    # fmap_max=8, dlatent_size=16) and G_mapping()) on the weights and inputs drawn below: 128 px, so the last
    # block takes PULSE's fused up-convolution, every other block the plain one.
    syn, mapping = StyleGAN1Synthesis(128, 256, 8, 16), StyleGAN1Mapping()
    _fill(syn, 1, 0.5)
    _fill(mapping, 2, 100.0)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(2, 12, 16, generator=g)
    noise = [torch.randn(2, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2), generator=g) for i in range(12)]
    z = torch.randn(2, 512, generator=g)
    with torch.no_grad():
        x, m = syn(w, noise), mapping(z)
    assert x.shape == (2, 3, 128, 128) and m.shape == (2, 512)
    close = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x.double().mean().item(), 0.12478923262898046, **close)
    torch.testing.assert_close(x.double().std().item(), 0.5175522433279832, **close)
    torch.testing.assert_close(x[0, :, 5, 7].tolist(), [-0.020796675235033035, -0.2170589417219162,
                                                        0.24087212979793549], **close)
    torch.testing.assert_close(x[1, 2, 100, 64].item(), -0.6989421844482422, **close)
    torch.testing.assert_close(x[1, 1, 127, 0].item(), 0.05709392949938774, **close)
    torch.testing.assert_close(m.double().mean().item(), 1.1163763874767252, **close)
    torch.testing.assert_close(m.double().std().item(), 2.2420042170101118, **close)
    torch.testing.assert_close(m[0, :3].tolist(), [-2.1142261028289795, -0.4560792148113251,
                                                   1.2881451845169067], **close)
    torch.testing.assert_close(m[1, 511].item(), -0.4700964093208313, **close)


def test_upconv_fused_path_is_the_flipped_kernel_of_the_plain_path():
    # PULSE's fused transposed convolution (outputs >= 128 px) = nearest upsampling + conv with the kernel flipped
    # in space; the plain path = nearest upsampling + conv. Both then blur and add the bias.
    torch.manual_seed(0)
    fused, plain = UpConv2d(4, 5, fused_from=2), UpConv2d(4, 5, fused_from=10 ** 6)
    plain.load_state_dict(fused.state_dict())
    with torch.no_grad():
        fused.bias.normal_()
        plain.bias.copy_(fused.bias)
        x = torch.randn(2, 4, 8, 8)
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        w = plain.weight * plain.w_scale
        blur = plain.intermediate
        bias = plain.bias.view(1, -1, 1, 1)
        torch.testing.assert_close(plain(x), blur(F.conv2d(up, w, padding=1)) + bias)
        torch.testing.assert_close(fused(x), blur(F.conv2d(up, w.flip(-1, -2), padding=1)) + bias,
                                   atol=1e-5, rtol=1e-5)
        assert not torch.allclose(fused(x), plain(x), atol=1e-3)
    assert fused.intermediate.kernel.shape == (1, 1, 3, 3)
    torch.testing.assert_close(fused.intermediate.kernel.sum(), torch.tensor(1.0))


# ---------------------------------------------------------------------------------------------- files


def test_loader_round_trips_files_in_the_official_layout(tmp_path):
    mapping, syn = tiny_nets()
    syn_path, map_path = write_official_layout(mapping, syn, tmp_path)
    assert (syn_path.name, map_path.name) == (SYNTHESIS_FILENAME, MAPPING_FILENAME) == ("synthesis.pt",
                                                                                         "mapping.pt")
    # The file is a bare state_dict, as PULSE's (load_state_dict(torch.load(f))).
    assert list(torch.load(syn_path, weights_only=True)) == list(syn.state_dict())
    m2, s2 = load_stylegan1(syn_path, map_path, device="cpu", **TINY)
    assert not m2.training and not s2.training
    for a, b in ((mapping, m2), (syn, s2)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    w, noise = torch.randn(1, 8, 16), tiny_noise(1, 8)
    with torch.no_grad():
        torch.testing.assert_close(s2(w, noise), syn(w, noise), rtol=0, atol=0)
    none_map, s3 = load_stylegan1(syn_path, None, **TINY)  # mapping not needed when the prior comes from a file
    assert none_map is None and isinstance(s3, StyleGAN1Synthesis)


def test_loader_reads_files_whose_tensors_are_on_cuda(tmp_path):
    mapping, syn = tiny_nets()
    save_as_if_on_cuda(syn.state_dict(), tmp_path / "synthesis.pt")
    save_as_if_on_cuda(mapping.state_dict(), tmp_path / "mapping.pt")
    if not torch.cuda.is_available():  # what PULSE's own torch.load(f) does on a CPU machine
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "synthesis.pt", weights_only=True)
    m2, s2 = load_stylegan1(tmp_path / "synthesis.pt", tmp_path / "mapping.pt", device="cpu", **TINY)
    assert all(v.device.type == "cpu" for v in s2.state_dict().values())
    assert torch.equal(s2.blocks["8x8"].conv0_up.weight, syn.blocks["8x8"].conv0_up.weight)
    assert torch.equal(m2.dense7.weight, mapping.dense7.weight)


def _rewrite(path, edit):
    sd = torch.load(path, weights_only=True)
    edit(sd)
    torch.save(sd, path)


def test_renamed_key_and_wrong_shape_give_one_clear_error(tmp_path):
    mapping, syn = tiny_nets()
    syn_path, map_path = write_official_layout(mapping, syn, tmp_path)

    def rename(sd):
        sd["blocks.8x8.conv1.weights"] = sd.pop("blocks.8x8.conv1.weight")
        sd["torgb.bias"] = torch.zeros(4)

    _rewrite(syn_path, rename)
    with pytest.raises(StyleGAN1FileError) as info:
        load_stylegan1(syn_path, map_path, **TINY)
    msg = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)
    assert "1 missing key(s) [blocks.8x8.conv1.weight]" in msg
    assert "1 unexpected key(s) [blocks.8x8.conv1.weights]" in msg
    assert "1 shape mismatch(es) [torgb.bias (4,) in file vs (3,) here]" in msg


def test_errors_name_the_likely_cause(tmp_path):
    mapping, syn = tiny_nets()
    syn_path, map_path = write_official_layout(mapping, syn, tmp_path)
    with pytest.raises(StyleGAN1FileError, match="swapped"):  # the two files given the wrong way round
        load_stylegan1(map_path, syn_path, **TINY)
    with pytest.raises(StyleGAN1FileError, match=r"up to 32x32: a network of resolution 32, not 1024") as info:
        load_stylegan1(syn_path)  # FFHQ defaults against a 32 px file
    msg = str(info.value)
    assert "missing key(s) [" in msg and "more)" in msg  # the first few, then a count
    html = tmp_path / "page.pt"
    html.write_bytes(b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>")
    with pytest.raises(StyleGAN1FileError, match="HTML page"):
        load_stylegan1(html, **TINY)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(syn_path.read_bytes()[:1000])
    with pytest.raises(StyleGAN1FileError, match="download completed"):
        load_stylegan1(truncated, **TINY)
    pickled = tmp_path / "obj.pt"
    torch.save({"net": syn}, pickled)  # a whole pickled module, not a state_dict
    with pytest.raises(StyleGAN1FileError, match="not a plain tensor file"):
        load_stylegan1(pickled, **TINY)
    with pytest.raises(StyleGAN1FileMissing):
        load_stylegan1(tmp_path / "nope.pt", **TINY)


# ---------------------------------------------------------------------------------------------- prior


def _fit_all_at_once(mapping, n, seed=0):
    """PULSE's computation: all n draws at once, mean and (unbiased) std of LeakyReLU(5)(mapping(z))."""
    z = torch.randn(n, mapping.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = torch.nn.LeakyReLU(5)(mapping(z)).double()
    return out.mean(0), out.std(0)


def test_fit_gaussian_streamed_equals_all_at_once_for_any_chunk():
    # Width 12: a row is not a whole number of the CPU sampler's 16-value blocks, so a chunk of one row would
    # draw other numbers than one big draw; fit_gaussian must round its chunks (to 16 rows).
    torch.manual_seed(0)
    mapping = StyleGAN1Mapping(12)
    n = 1000  # not a multiple of any chunk below
    mu_ref, sd_ref = _fit_all_at_once(mapping, n)
    fits = [fit_gaussian(mapping, n_samples=n, chunk=c, seed=0) for c in (1, 16, 100, 333, 1000, 4096)]
    for mu, sd in fits:
        assert mu.shape == sd.shape == (12,) and mu.dtype == torch.float32
        torch.testing.assert_close(mu.double(), mu_ref, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(sd.double(), sd_ref, atol=2e-6, rtol=1e-5)
    mu_other, _ = fit_gaussian(mapping, n_samples=n, chunk=100, seed=1)
    assert not torch.allclose(mu_other, fits[0][0])  # the seed matters
    assert mapping.training  # the mode of the caller's module is left as it was


def test_load_gaussian_fit_reads_pulse_format(tmp_path):
    mu, sigma = torch.randn(512), torch.rand(512) + 0.1
    save_as_if_on_cuda({"mean": mu, "std": sigma}, tmp_path / "gaussian_fit.pt")  # as PULSE's file: cuda:0
    m2, s2 = load_gaussian_fit(tmp_path / "gaussian_fit.pt", device="cpu")
    assert torch.equal(m2, mu) and torch.equal(s2, sigma) and m2.device.type == "cpu"
    save_gaussian_fit(mu, sigma, tmp_path / "ours.pt")
    assert set(torch.load(tmp_path / "ours.pt", weights_only=True)) == {"mean", "std"}
    torch.save({"mu": mu, "sigma": sigma}, tmp_path / "bad.pt")
    with pytest.raises(StyleGAN1FileError, match="'mean' and 'std'"):
        load_gaussian_fit(tmp_path / "bad.pt")
    torch.save({"mean": mu, "std": -sigma}, tmp_path / "neg.pt")
    with pytest.raises(StyleGAN1FileError, match="std <= 0"):
        load_gaussian_fit(tmp_path / "neg.pt")


# ---------------------------------------------------------------------------------------------- adaptor


def test_adaptor_is_a_latent_generator():
    mapping, syn = tiny_nets()
    mu, sigma = fit_gaussian(mapping, n_samples=256, chunk=64)
    gen = StyleGAN1LatentGenerator(mapping, syn, mu, sigma)
    check_latent_generator(gen)
    assert isinstance(gen, LatentGenerator)
    assert (gen.latent_dim, gen.num_latents, gen.output_size) == (16, 8, 32)
    assert gen.noise_shapes() == [(1, 4, 4), (1, 4, 4), (1, 8, 8), (1, 8, 8), (1, 16, 16), (1, 16, 16),
                                  (1, 32, 32), (1, 32, 32)]
    z = torch.randn(2, 8, 16)
    torch.testing.assert_close(gen.map_prior(z), F.leaky_relu(z * sigma + mu, 0.2))
    check_latent_generator(StyleGAN1LatentGenerator(None, syn, mu, sigma))  # no mapping: prior from a file
    with pytest.raises(ValueError, match=r"\[16\]"):
        StyleGAN1LatentGenerator(None, syn, mu[:4], sigma[:4])


@pytest.mark.parametrize("fused_from", [128, 8])  # 8: the tiny net also runs the fused up-convolution
def test_gradients_reach_latents_and_noise_not_weights(fused_from):
    mapping, syn = tiny_nets(fused_from=fused_from)
    gen = StyleGAN1LatentGenerator(mapping, syn, torch.zeros(16), torch.ones(16))
    z = torch.randn(2, 8, 16, requires_grad=True)
    noise = tiny_noise(2, 8, requires_grad=True)
    out = gen.synthesize(gen.map_prior(z), noise)
    assert out.shape == (2, 3, 32, 32)
    out.square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    for i, n in enumerate(noise):
        assert n.grad is not None and n.grad.abs().sum() > 0, f"no gradient to noise map {i}"
    assert all(not p.requires_grad for p in gen.parameters())  # frozen, as PULSE freezes its synthesis net
