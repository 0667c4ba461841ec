"""Dataset archives: verification, safe unpacking, file:// downloads and the offline message (lrkit.data.download).

No test touches the network: downloads are served from local files through file:// URLs, and the offline case
uses a closed local port.
"""

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from lrkit.data import download as dl
from lrkit.data.download import (
    ChecksumMismatch,
    DatasetUnavailable,
    UnsafeArchiveError,
    download,
    main_download,
    verify_and_unpack,
)
from lrkit.data.folders import ImageFolderDataset, detect_layout


def png_bytes(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path: Path, top: str | None = "afhq", extra: dict | None = None, stored: bool = False) -> Path:
    """A StarGAN-v2-like archive: [top/]{train,val}/{cat,dog}/*.png with tiny PNGs, plus ``extra`` raw entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{top}/" if top else ""
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", method) as zf:
        if top:
            zf.writestr(prefix, b"")  # explicit directory entry, as zip tools write them
        for split, n in (("train", 2), ("val", 1)):
            for k, domain in enumerate(("cat", "dog")):
                for i in range(n):
                    zf.writestr(f"{prefix}{split}/{domain}/{domain}{i}.png", png_bytes((k * 100, i * 50, 7)))
        zf.writestr("__MACOSX/._junk", b"mac")  # macOS debris, must be ignored
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".unpacking-" in p.name] if parent.exists() else []


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("top", ["afhq", None])
def test_verify_and_unpack_success(tmp_path, top):
    archive = make_zip(tmp_path / "afhq.zip", top=top)
    dest = verify_and_unpack(archive, sha(archive), tmp_path / "data" / "afhq")
    assert dest == tmp_path / "data" / "afhq"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == [
        "train/cat/cat0.png", "train/cat/cat1.png", "train/dog/dog0.png", "train/dog/dog1.png",
        "val/cat/cat0.png", "val/dog/dog0.png",
    ]
    assert not (dest / "__MACOSX").exists()
    assert detect_layout(dest) == "stargan"
    assert ImageFolderDataset(dest, split="val", hr_size=32).domain_names == ("cat", "dog")
    assert archive.exists() and leftovers(dest.parent) == []
    with pytest.raises(FileExistsError, match="already exists"):
        verify_and_unpack(archive, None, dest)


def test_checksum_mismatch_keeps_file_aside(tmp_path):
    archive = make_zip(tmp_path / "afhq.zip")
    actual = sha(archive)
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as e:
        verify_and_unpack(archive, wrong, tmp_path / "out")
    msg = str(e.value)
    assert wrong in msg and actual in msg and "NOT deleted" in msg
    aside = list(tmp_path.glob("afhq.zip.sha256-mismatch-*"))
    assert len(aside) == 1 and sha(aside[0]) == actual and str(aside[0]) in msg
    assert not archive.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("evil", ["../evil.png", "afhq/../../evil.png", "/tmp/abs_evil.png", "C:/win_evil.png"])
def test_zip_slip_is_refused_before_writing_anything(tmp_path, evil):
    archive = make_zip(tmp_path / "afhq.zip", extra={evil: b"pwned"})
    out_parent = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError, match="Nothing was extracted"):
        verify_and_unpack(archive, None, out_parent / "afhq")
    assert not (out_parent / "afhq").exists() and leftovers(out_parent) == []
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/abs_evil.png").exists()


def test_symlink_entry_is_refused(tmp_path):
    archive = make_zip(tmp_path / "afhq.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo("afhq/train/cat/link.png")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)  # S_IFLNK
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError):
        verify_and_unpack(archive, None, tmp_path / "out")


def test_corrupt_member_leaves_no_half_dataset(tmp_path):
    archive = make_zip(tmp_path / "afhq.zip", stored=True)
    # Flip one byte inside the data of the last PNG member: its CRC-32 check fails mid-unpack.
    with zipfile.ZipFile(archive) as zf:
        last = [i for i in zf.infolist() if i.filename.endswith(".png")][-1]
    raw = bytearray(archive.read_bytes())
    name_len = int.from_bytes(raw[last.header_offset + 26:last.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[last.header_offset + 28:last.header_offset + 30], "little")
    raw[last.header_offset + 30 + name_len + extra_len + 40] ^= 0xFF
    archive.write_bytes(bytes(raw))
    out_parent = tmp_path / "data"
    with pytest.raises(ValueError, match="corrupt"):
        verify_and_unpack(archive, None, out_parent / "afhq")
    assert not (out_parent / "afhq").exists()
    assert leftovers(out_parent) == []


def test_download_via_file_url_end_to_end(tmp_path, capsys):
    source = make_zip(tmp_path / "mirror" / "afhq.zip")
    root = tmp_path / "data"
    dest = download("afhq", root, url=source.as_uri(), progress=False)
    assert dest == root.resolve() / "afhq"
    assert (dest / "train" / "dog" / "dog1.png").is_file()
    assert sha(root / "afhq.zip") == sha(source) and not (root / "afhq.zip.part").exists()
    recorded = (root / "afhq.sha256").read_text().split()
    assert recorded == [sha(source), "afhq.zip"]
    err = capsys.readouterr().err
    assert "recorded on first download, not verified against a published checksum" in err and sha(source) in err

    # Already unpacked: returned as is, nothing fetched (the bogus URL is never used).
    assert download("afhq", root, url="file:///nonexistent/afhq.zip") == dest
    # Unpacked folder gone: the kept archive is verified against the recorded checksum and unpacked again.
    import shutil

    shutil.rmtree(dest)
    assert download("afhq", root, url="file:///nonexistent/afhq.zip", progress=False) == dest
    # A changed archive no longer matches the recorded checksum.
    shutil.rmtree(dest)
    with open(root / "afhq.zip", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ChecksumMismatch, match="expected " + sha(source)):
        download("afhq", root, url="file:///nonexistent/afhq.zip")
    assert list(root.glob("afhq.zip.sha256-mismatch-*")) and not dest.exists()


def test_download_uses_archive_in_cache_dir(tmp_path):
    make_zip(tmp_path / "cache" / "archives" / "celeba_hq.zip", top="celeba_hq")
    dest = download("celeba_hq", tmp_path / "data", url="http://127.0.0.1:9/never-used.zip", progress=False)
    assert (dest / "val" / "cat" / "cat0.png").is_file()
    assert (tmp_path / "data" / "celeba_hq.sha256").is_file()


def test_offline_message(tmp_path):
    url = "http://127.0.0.1:9/x.zip"  # discard port: connection refused, no network needed
    root = tmp_path / "data"
    with pytest.raises(DatasetUnavailable) as e:
        download("celeba_hq", root, url=url, timeout=5)
    msg = str(e.value)
    assert url in msg
    assert str(root.resolve() / "celeba_hq.zip") in msg
    assert "no sha256 is published" in msg and "Rerun the same command" in msg
    assert not (root / "celeba_hq.zip.part").exists() and not (root / "celeba_hq.zip").exists()
    with pytest.raises(DatasetUnavailable, match="cannot reach"):
        download("afhq", root, url=(tmp_path / "missing.zip").as_uri())


def test_main_download_exit_codes(tmp_path, monkeypatch, capsys):
    spec = dl.ARCHIVES["afhq"]
    monkeypatch.setitem(dl.ARCHIVES, "afhq", dataclasses.replace(spec, url="http://127.0.0.1:9/afhq.zip"))
    assert main_download("afhq", str(tmp_path / "data")) == 2
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/afhq.zip" in err and str((tmp_path / "data" / "afhq.zip").resolve()) in err
    assert main_download("imagenet", str(tmp_path)) == 2
    assert "celeba_hq" in capsys.readouterr().err
    source = make_zip(tmp_path / "afhq.zip")
    monkeypatch.setitem(dl.ARCHIVES, "afhq", dataclasses.replace(spec, url=source.as_uri()))
    assert main_download("afhq", str(tmp_path / "data")) == 0
    assert "ready" in capsys.readouterr().out


def test_registry():
    for name, spec in dl.ARCHIVES.items():
        assert spec.name == name and spec.filename == f"{name}.zip"
        assert spec.url.startswith("https://www.dropbox.com/s/") and spec.url.endswith("?dl=1")
        assert spec.sha256 is None  # none published; see the module docstring
