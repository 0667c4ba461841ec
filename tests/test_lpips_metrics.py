"""LPIPS (lrkit.metrics.lpips_metrics) against the lpips package itself, and StarGAN v2's diversity aggregation."""

import itertools
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from lrkit.data.ops import to_uint8
from lrkit.metrics.lpips_metrics import (
    load_lpips,
    lpips_distances,
    lpips_diversity,
    lpips_diversity_tasks,
    lpips_pairwise,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*unverified weights:UserWarning")


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A seeded random torchvision AlexNet saved where torch.hub looks for alexnet-owt-7be5be79.pth."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    path = torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return torch_home, path


@pytest.fixture(scope="module")
def reference(alexnet_file):
    """lpips.LPIPS(net='alex') built the package's normal way: torchvision finds the file in TORCH_HOME's cache."""
    import lpips

    torch_home, _ = alexnet_file
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("TORCH_HOME", str(torch_home))
        warnings.simplefilter("ignore", UserWarning)  # torchvision's "pretrained is deprecated"
        model = lpips.LPIPS(net="alex", verbose=False)
    return model.eval()


def _images(seed, *shape):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


def _ref_distances(reference, a, b):
    with torch.no_grad():
        return reference(a, b).flatten().double()


def test_model_is_the_package_model(alexnet_file, reference, tmp_path, monkeypatch):
    _, path = alexnet_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty: lrkit must not need torchvision's cache
    model, resolved = load_lpips(path)
    assert resolved.verified is None and "unverified weights" in resolved.label
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_pairwise_equals_lpips_package(alexnet_file, reference):
    _, path = alexnet_file
    a, b = _images(1, 7, 3, 48, 48), _images(2, 7, 3, 48, 48)
    b[0] = a[0]  # an identical pair: distance 0
    ref = _ref_distances(reference, a, b)
    with pytest.warns(UserWarning, match="unverified weights alexnet-owt-7be5be79.pth"):
        d = lpips_distances(a, b, weights=path, batch_size=3)
    assert (d - ref).abs().max() <= 1e-6
    assert d[0] == 0
    out = lpips_pairwise(a, b, weights=path, batch_size=4)
    assert out["lpips"] == pytest.approx(ref.mean().item(), abs=1e-6)
    assert out["lpips_std"] == pytest.approx(ref.std(unbiased=False).item(), abs=1e-6)
    assert out["n_pairs"] == 7


def test_pairwise_folders_pair_by_file_name(alexnet_file, tmp_path):
    _, path = alexnet_file
    a, b = _images(3, 4, 3, 40, 40), _images(4, 4, 3, 40, 40)
    for folder, imgs in (("gt", a), ("sr", b)):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(to_uint8(imgs)):
            Image.fromarray(img).save(tmp_path / folder / f"{i}.png")
    from_files = lpips_pairwise(tmp_path / "gt", tmp_path / "sr", weights=path)["lpips"]
    q = lambda x: torch.from_numpy(to_uint8(x)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    assert from_files == pytest.approx(lpips_pairwise(q(a), q(b), weights=path)["lpips"], abs=1e-6)


def _stargan_v2_batch_values(reference, outputs, source_batch):
    """StarGAN v2's loop: per source batch, the mean over the 45 pairs of the batch-mean LPIPS."""
    values = []
    for s0 in range(0, len(outputs), source_batch):
        group_of_images = [outputs[s0:s0 + source_batch, k] for k in range(outputs.shape[1])]
        with torch.no_grad():
            pair_values = [reference(group_of_images[i], group_of_images[j]).mean()
                           for i, j in itertools.combinations(range(len(group_of_images)), 2)]
        values.append(torch.mean(torch.stack(pair_values)).item())
    return values


def test_diversity_equals_stargan_v2_aggregation(alexnet_file, reference):
    _, path = alexnet_file
    outputs = _images(5, 4, 10, 3, 32, 32)  # 4 sources x 10 outputs: source batches of 3 and 1
    values = _stargan_v2_batch_values(reference, outputs, 3)
    out = lpips_diversity(outputs, source_batch_size=3, weights=path, batch_size=2)
    assert out["lpips_diversity"] == pytest.approx(float(np.array(values).mean()), abs=1e-6)
    assert (out["n_sources"], out["n_outputs"], out["n_source_batches"]) == (4, 10, 2)
    # source_batch_size=None: every source weighs the same, unlike StarGAN v2's mean of batch means where the
    # last, single-source batch weighs as much as the full one.
    per_source = lpips_diversity(outputs, source_batch_size=None, weights=path)
    assert per_source["n_source_batches"] == 1
    assert per_source["lpips_diversity"] == pytest.approx((3 * values[0] + values[1]) / 4, abs=1e-6)
    assert abs(per_source["lpips_diversity"] - out["lpips_diversity"]) > 1e-6
    # Default grouping: StarGAN v2's 32 sources per batch (here one batch).
    assert lpips_diversity(outputs, weights=path)["lpips_diversity"] == pytest.approx(
        per_source["lpips_diversity"], abs=1e-9)


def test_diversity_input_forms_agree(alexnet_file, tmp_path):
    _, path = alexnet_file
    outputs = torch.from_numpy(to_uint8(_images(6, 5 * 3, 3, 32, 32))).permute(0, 3, 1, 2).float() / 127.5 - 1
    outputs = outputs.view(5, 3, 3, 32, 32)  # 5 sources x 3 outputs, on 8-bit levels so files hold the same values
    want = lpips_diversity(outputs, source_batch_size=2, weights=path)["lpips_diversity"]
    as_list = [outputs[:, k] for k in range(3)]  # StarGAN v2's group_of_images
    as_iter = iter([outputs[:2], outputs[2:]])
    for form in (as_list, as_iter):
        got = lpips_diversity(form, source_batch_size=2, weights=path)["lpips_diversity"]
        assert got == pytest.approx(want, abs=1e-6)  # float32 network: batch composition changes the last bits
    for k in range(3):
        (tmp_path / f"{k:02d}").mkdir()
        for s, img in enumerate(to_uint8(outputs[:, k])):
            Image.fromarray(img).save(tmp_path / f"{k:02d}" / f"src{s}.png")
    from_folder = lpips_diversity(tmp_path, source_batch_size=2, weights=path, batch_size=3)
    assert from_folder["lpips_diversity"] == pytest.approx(want, abs=1e-6)
    assert from_folder["n_outputs"] == 3
    (tmp_path / "02" / "src4.png").unlink()
    with pytest.raises(ValueError, match="same file names"):
        lpips_diversity(tmp_path, weights=path)


def test_diversity_tasks_average(alexnet_file):
    _, path = alexnet_file
    tasks = {"female2male": _images(7, 2, 3, 3, 32, 32), "male2female": _images(8, 3, 3, 3, 32, 32)}
    out = lpips_diversity_tasks(tasks, weights=path)
    each = [lpips_diversity(t, weights=path)["lpips_diversity"] for t in tasks.values()]
    assert out["lpips_diversity/female2male"] == pytest.approx(each[0], abs=1e-12)
    assert out["lpips_diversity/male2female"] == pytest.approx(each[1], abs=1e-12)
    assert out["lpips_diversity"] == pytest.approx(sum(each) / 2, abs=1e-12)
    assert out["n_tasks"] == 2


def test_identical_outputs_have_zero_diversity(alexnet_file):
    _, path = alexnet_file
    one = _images(9, 4, 1, 3, 32, 32)
    assert lpips_diversity(one.expand(4, 5, 3, 32, 32), weights=path)["lpips_diversity"] == 0.0


def test_errors(alexnet_file):
    _, path = alexnet_file
    with pytest.raises(ValueError, match="at least 2 outputs"):
        lpips_diversity(_images(1, 2, 1, 3, 32, 32), weights=path)
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips_pairwise(_images(1, 2, 3, 16, 16), _images(2, 2, 3, 16, 16), weights=path)
    with pytest.raises(ValueError, match=r"\[S, K, 3, H, W\]"):
        lpips_diversity(_images(1, 2, 3, 32, 32), weights=path)
    bad = _images(1, 2, 3, 3, 32, 32)
    bad[1, 2, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        lpips_diversity(bad, weights=path)
    with pytest.raises(ValueError, match="3 images but .* has 2"):
        lpips_pairwise(_images(1, 3, 3, 32, 32), _images(2, 2, 3, 32, 32), weights=path)
    with pytest.raises(ValueError, match="tasks is empty"):
        lpips_diversity_tasks({}, weights=path)
