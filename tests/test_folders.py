"""Real-image folder datasets (lrkit.data.folders), on tiny trees built with PIL."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.data.folders import (
    ImageFolderDataset,
    ImageTooSmallError,
    NoImagesError,
    detect_layout,
    load_image,
    scan_folder,
    to_rgb,
)
from lrkit.data.ops import from_uint8


def solid(path: Path, color=(10, 20, 30), size=(32, 32), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def noise_bytes(fmt: str, size=64, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def expected_image(rgb) -> torch.Tensor:
    return from_uint8(np.full((1, 1, 3), rgb, dtype=np.uint8)).expand(3, 32, 32)


@pytest.fixture
def stargan_tree(tmp_path):
    root = tmp_path / "afhq"
    for split, n in (("train", 2), ("val", 1)):
        for domain, color in (("dog", (0, 255, 0)), ("cat", (255, 0, 0)), ("wild", (0, 0, 255))):
            for i in range(n):
                solid(root / split / domain / f"{domain}{i}.png", color)
    return root


def test_stargan_layout_labels_and_items(stargan_tree):
    assert detect_layout(stargan_tree) == "stargan"
    ds = ImageFolderDataset(stargan_tree, hr_size=32)  # split=None means train
    assert ds.split == "train" and ds.layout == "stargan"
    assert ds.domain_names == ("cat", "dog", "wild")  # alphabetical -> labels 0, 1, 2
    assert len(ds) == 6 and ds.targets == [0, 0, 1, 1, 2, 2]
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["domain"] == 0 and item["path"].endswith("train/cat/cat0.png")
    assert torch.equal(item["image"], expected_image((255, 0, 0)))
    assert ds[-1]["domain"] == 2
    val = ImageFolderDataset(stargan_tree, split="val", domains=["wild", "cat"], hr_size=32)
    assert val.domain_names == ("cat", "wild") and val.targets == [0, 1]
    assert ImageFolderDataset(stargan_tree, domains="dog", hr_size=32).targets == [0, 0]
    rep = ds.report()
    assert rep["counts"] == {"cat": 2, "dog": 2, "wild": 2} and rep["num_skipped"] == 0


def test_labels_agree_across_splits_and_missing_domain_is_reported(stargan_tree):
    for f in (stargan_tree / "val" / "dog").iterdir():
        f.unlink()
    with pytest.raises(NoImagesError, match=r"val/dog.*domains=\['cat', 'wild'\]"):
        ImageFolderDataset(stargan_tree, split="val", hr_size=32)
    val = ImageFolderDataset(stargan_tree, split="val", domains=["cat", "wild"], hr_size=32)
    assert val.domain_names == ("cat", "wild")


def test_unknown_split_and_domain_list_the_available_ones(stargan_tree):
    with pytest.raises(ValueError, match=r"available splits: \['train', 'val'\]"):
        ImageFolderDataset(stargan_tree, split="test", hr_size=32)
    with pytest.raises(ValueError, match=r"available domains.*\['cat', 'dog', 'wild'\]"):
        ImageFolderDataset(stargan_tree, domains=["horse"], hr_size=32)


def test_domains_and_flat_layouts(tmp_path):
    dom = tmp_path / "dom"
    solid(dom / "b" / "x.png", (1, 2, 3))
    solid(dom / "a" / "y.jpg", (200, 200, 200), fmt="JPEG")
    solid(dom / "a" / "z.bmp", (5, 5, 5))
    (dom / "a" / "notes.txt").write_text("not an image")
    assert detect_layout(dom) == "domains"
    ds = ImageFolderDataset(dom, hr_size=32)
    assert ds.domain_names == ("a", "b") and ds.targets == [0, 0, 1]
    with pytest.raises(ValueError, match="no split folders"):
        ImageFolderDataset(dom, split="train", hr_size=32)

    flat = tmp_path / "flat"
    for i in range(3):
        solid(flat / f"img{i}.PNG", (i, i, i))
    solid(flat / "deep" / "deeper" / "lost.png")  # nowhere in the flat layout: reported as misplaced
    assert detect_layout(flat) == "flat"
    ds = ImageFolderDataset(flat, hr_size=32)
    assert ds.domain_names == ("all",) and ds.targets == [0, 0, 0]
    assert ds.report()["misplaced"] == ["deep/deeper/lost.png"]
    with pytest.raises(ValueError, match="no domain subfolders"):
        ImageFolderDataset(flat, domains=["x"], hr_size=32)


def test_ambiguous_layout_is_an_error(tmp_path):
    solid(tmp_path / "a.png")
    solid(tmp_path / "sub" / "b.png")
    with pytest.raises(ValueError, match="ambiguous"):
        detect_layout(tmp_path)


def test_mode_conversions():
    assert to_rgb(Image.new("L", (2, 2), 100)).getpixel((0, 0)) == (100, 100, 100)
    assert to_rgb(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    # Alpha is composited on white: transparent -> white, opaque -> the colour itself.
    assert to_rgb(Image.new("RGBA", (2, 2), (10, 20, 30, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("RGBA", (2, 2), (10, 20, 30, 255))).getpixel((0, 0)) == (10, 20, 30)
    half = to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 128))).getpixel((0, 0))
    assert all(abs(c - 127) <= 1 for c in half)  # 255 * (1 - 128/255)
    assert to_rgb(Image.new("LA", (2, 2), (50, 0))).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 40, 50, 60] + [0] * 762)
    assert to_rgb(pal).getpixel((0, 0)) == (40, 50, 60)
    pal.info["transparency"] = 1  # palette entry 1 fully transparent
    assert to_rgb(pal).getpixel((0, 0)) == (255, 255, 255)
    # 16-bit grey: v -> round(v * 255 / 65535), i.e. 257 * k -> k; PIL's convert("L") would clip instead.
    a16 = np.array([[0, 257 * 7, 257 * 200, 65535]], dtype=np.uint16)
    assert to_rgb(Image.fromarray(a16)).mode == "RGB"
    assert np.asarray(to_rgb(Image.fromarray(a16)))[0, :, 0].tolist() == [0, 7, 200, 255]
    a32 = Image.fromarray(np.array([[257 * 9, 70000, -5]], dtype=np.int32))
    assert a32.mode == "I" and np.asarray(to_rgb(a32))[0, :, 0].tolist() == [9, 255, 0]
    cmyk = to_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0)))
    assert cmyk.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_png_through_the_dataset(tmp_path):
    root = tmp_path / "g16"
    root.mkdir()
    Image.fromarray(np.full((32, 32), 257 * 200, dtype=np.uint16)).save(root / "g.png")
    solid(root / "rgba.png", (10, 20, 30, 0), mode="RGBA")
    ds = ImageFolderDataset(root, hr_size=32)
    assert torch.equal(ds[0]["image"], expected_image((200, 200, 200)))
    assert torch.equal(ds[1]["image"], expected_image((255, 255, 255)))


def test_centre_crop_and_resize(tmp_path):
    # 64x32 landscape: columns 0-15 red, 16-47 green, 48-63 blue; the centre 32x32 square is all green.
    a = np.zeros((32, 64, 3), dtype=np.uint8)
    a[:, :16, 0] = 255
    a[:, 16:48, 1] = 255
    a[:, 48:, 2] = 255
    Image.fromarray(a).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 32)
    assert out.shape == (32, 32, 3) and (out == [0, 255, 0]).all()
    # Portrait 40x80 with the centre 40x40 grey: cropped, then resized to 32 (constant stays constant).
    b = np.zeros((80, 40, 3), dtype=np.uint8)
    b[20:60] = 90
    Image.fromarray(b).save(tmp_path / "tall.png")
    out = load_image(tmp_path / "tall.png", 32)
    assert out.shape == (32, 32, 3) and (out == 90).all()
    # Downsizing is antialiased: a fine 1-px checkerboard averages to mid-grey instead of aliasing.
    checker = ((np.indices((128, 128)).sum(0) % 2) * 255).astype(np.uint8)
    Image.fromarray(checker).save(tmp_path / "checker.png")
    out = load_image(tmp_path / "checker.png", 32).astype(int)
    assert abs(out.mean() - 127.5) < 2 and out.std() < 4


def test_too_small_error_and_allow_upscale(tmp_path):
    root = tmp_path / "small"
    solid(root / "ok.png", size=(64, 64))
    solid(root / "tiny.png", size=(20, 16))
    with pytest.raises(ImageTooSmallError) as e:
        ImageFolderDataset(root, hr_size=32)
    msg = str(e.value)
    assert "tiny.png" in msg and "20x16" in msg and "allow_upscale=True" in msg
    ds = ImageFolderDataset(root, hr_size=32, allow_upscale=True)
    assert len(ds) == 2 and ds[1]["image"].shape == (3, 32, 32)
    # check="none" defers the size check to loading time, with the same error.
    lazy = ImageFolderDataset(root, hr_size=32, check="none")
    with pytest.raises(ImageTooSmallError, match="allow_upscale=True"):
        lazy[1]


@pytest.fixture
def tree_with_bad_files(tmp_path):
    root = tmp_path / "bad"
    for i in range(3):
        solid(root / "train" / "cat" / f"c{i}.png", (i, 0, 0))
    solid(root / "train" / "dog" / "d0.png", (0, 9, 0))
    (root / "train" / "cat" / "empty.png").write_bytes(b"")
    (root / "train" / "cat" / "garbage.jpg").write_bytes(b"this is not an image at all\n" * 20)
    good_jpeg = noise_bytes("JPEG")
    (root / "train" / "cat" / "c1_trunc.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    return root


def test_bad_files_skipped_counted_and_listed(tree_with_bad_files, tmp_path):
    root = tree_with_bad_files
    ds = ImageFolderDataset(root, hr_size=32, skip_log=tmp_path / "skips.jsonl")
    # Header check at construction: zero-byte and garbage files are skipped; the truncated JPEG's header is fine.
    reasons = dict((Path(p).name, r) for p, r in ds.skipped)
    assert set(reasons) == {"empty.png", "garbage.jpg"}
    assert "0 bytes" in reasons["empty.png"] and "not an image" in reasons["garbage.jpg"]
    assert len(ds) == 5  # c0, c1, c1_trunc, c2, d0 (sorted by path)
    names = [Path(p).name for p, _ in ds.samples]
    assert names == ["c0.png", "c1.png", "c1_trunc.jpg", "c2.png", "d0.png"]
    # Loading the truncated file records it and deterministically substitutes the next image of the same domain.
    item = ds[2]
    assert Path(item["path"]).name == "c2.png" and item["domain"] == 0
    assert ds[2]["path"] == item["path"]
    reasons = dict((Path(p).name, r) for p, r in ds.skipped)
    assert "truncated" in reasons["c1_trunc.jpg"]
    rep = ds.report()
    assert rep["num_skipped"] == 3 and rep["counts"] == {"cat": 3, "dog": 1}
    assert {Path(s["path"]).name for s in rep["skipped"]} == {"empty.png", "garbage.jpg", "c1_trunc.jpg"}
    # A full check finds the truncated file at construction.
    full = ImageFolderDataset(root, hr_size=32, check="full")
    assert len(full) == 4 and len(full.skipped) == 3


def test_bad_file_found_in_dataloader_worker_is_reported(tree_with_bad_files):
    ds = ImageFolderDataset(tree_with_bad_files, hr_size=32)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=1)
    batch = next(iter(loader))
    assert batch["image"].shape == (5, 3, 32, 32)
    assert any(Path(p).name == "c1_trunc.jpg" for p, _ in ds.skipped)


def test_hflip_flips_some_samples(tmp_path):
    a = np.zeros((32, 32, 3), dtype=np.uint8)
    a[:, 16:] = 255
    Image.fromarray(a).save(tmp_path / "half.png")
    ds = ImageFolderDataset(tmp_path, hr_size=32, hflip=True)
    torch.manual_seed(0)
    left_values = {float(ds[0]["image"][0, 0, 0]) for _ in range(20)}
    assert left_values == {-1.0, 1.0}


def test_empty_and_all_bad_folders_are_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NoImagesError, match=str(empty)):
        ImageFolderDataset(empty)
    bad = tmp_path / "allbad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"")
    with pytest.raises(NoImagesError, match="no readable image") as e:
        ImageFolderDataset(bad)
    assert str(bad) in str(e.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    # Images directly in ROOT/train instead of ROOT/train/<domain>/ are not silently used.
    solid(tmp_path / "mis" / "train" / "x.png")
    with pytest.raises(NoImagesError, match="elsewhere in the tree"):
        ImageFolderDataset(tmp_path / "mis")


def test_scan_ignores_hidden_and_macos_debris(tmp_path):
    solid(tmp_path / "train" / "cat" / "a.png")
    solid(tmp_path / "train" / "cat" / "._a.png")
    solid(tmp_path / "__MACOSX" / "train" / "cat" / "a.png")
    scan = scan_folder(tmp_path)
    assert [e.rel for e in scan.entries] == ["train/cat/a.png"] and scan.misplaced == ()
