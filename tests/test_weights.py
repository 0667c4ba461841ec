"""The weight registry: clear offline failures, verification, unverified overrides, fetch via the real path."""

from __future__ import annotations

import hashlib

import pytest

from lrkit import weights as W


@pytest.fixture(autouse=True)
def wdir(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path / "weights"


def _spec(monkeypatch, tmp_path, data: bytes, full: bool = True) -> W.WeightSpec:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    spec = W.WeightSpec("toy", "toy-weights.pth", src.as_uri(), digest if full else None, digest[:8], ("toy",),
                        "a toy file")
    monkeypatch.setitem(W.WEIGHTS, "toy", spec)
    return spec


def test_missing_official_file_names_file_place_and_checksum(wdir):
    with pytest.raises(W.WeightsUnavailable) as exc:
        W.resolve("pytorchfid_inception")
    msg = str(exc.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg
    assert str(wdir / "pt_inception-2015-12-05-6726825d.pth") in msg
    assert "6726825d" in msg and "lrkit weights fetch pytorchfid_inception" in msg


def test_override_with_other_weights_is_unverified(tmp_path):
    f = tmp_path / "random.pth"
    f.write_bytes(b"not the official weights")
    r = W.resolve("torchvision_vgg16", override=f)
    assert r.verified is None and r.sha256 == hashlib.sha256(b"not the official weights").hexdigest()
    assert r.label.startswith("unverified weights random.pth") and r.sha256 in r.label
    with pytest.raises(FileNotFoundError, match="no such file"):
        W.resolve("torchvision_vgg16", override=tmp_path / "missing.pth")


def test_fetch_verifies_and_resolve_accepts(monkeypatch, tmp_path, wdir):
    _spec(monkeypatch, tmp_path, b"weights-bytes" * 1000)
    path = W.fetch("toy", progress=False)
    assert path == wdir / "toy-weights.pth" and path.read_bytes() == b"weights-bytes" * 1000
    r = W.resolve("toy")
    assert r.verified == "sha256" and "verified: sha256" in r.label
    # Prefix-only verification when no full digest is published.
    _spec(monkeypatch, tmp_path, b"weights-bytes" * 1000, full=False)
    assert W.resolve("toy").verified == "sha256-prefix"


def test_tampered_file_at_official_place_is_refused(monkeypatch, tmp_path, wdir):
    _spec(monkeypatch, tmp_path, b"good")
    wdir.mkdir(parents=True, exist_ok=True)
    (wdir / "toy-weights.pth").write_bytes(b"evil")
    with pytest.raises(W.WeightsChecksumError, match="--weights"):
        W.resolve("toy")


def test_fetch_checksum_mismatch_keeps_file_aside(monkeypatch, tmp_path, wdir):
    spec = _spec(monkeypatch, tmp_path, b"good")
    (tmp_path / "src.bin").write_bytes(b"corrupted in transit")
    with pytest.raises(W.WeightsChecksumError, match="kept at"):
        W.fetch("toy", progress=False)
    assert not (wdir / spec.filename).exists()
    assert list(wdir.glob("toy-weights.pth.sha256-mismatch-*"))


def test_fetch_offline_is_one_clear_message(monkeypatch, tmp_path, wdir):
    _spec(monkeypatch, tmp_path, b"good")
    with pytest.raises(W.WeightsUnavailable, match="download failed") as exc:
        W.fetch("toy", url="http://127.0.0.1:9/toy.pth", progress=False, timeout=5)
    assert str(wdir / "toy-weights.pth") in str(exc.value)
    assert not list(wdir.glob("*.part"))


def test_status_lists_every_file(monkeypatch, tmp_path):
    _spec(monkeypatch, tmp_path, b"good")
    W.fetch("toy", progress=False)
    rows = {r["name"]: r for r in W.status()}
    assert set(W.WEIGHTS) == set(rows)
    assert rows["toy"]["present"] and rows["toy"]["verified"] == "sha256"
    assert not rows["pytorchfid_inception"]["present"]
    assert rows["torchvision_vgg16"]["url"].endswith("vgg16-397923af.pth")


def test_unknown_name():
    with pytest.raises(KeyError, match="known"):
        W.resolve("nope")


def test_package_shipped_weights_are_checked(monkeypatch, tmp_path):
    r = W.resolve("efficientnet_lite0")
    assert r.verified == "package" and r.sha256 == W.WEIGHTS["efficientnet_lite0"].sha256
    bad = W.WEIGHTS["efficientnet_lite0"].__class__(**{**W.WEIGHTS["efficientnet_lite0"].__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(W.WEIGHTS, "efficientnet_lite0", bad)
    with pytest.raises(W.WeightsChecksumError, match="reinstall"):
        W.resolve("efficientnet_lite0")


def test_unpublished_digest_is_recorded_at_first_download_then_checked(monkeypatch, tmp_path, wdir):
    src = tmp_path / "ckpt.bin"
    src.write_bytes(b"first copy")
    spec = W.WEIGHTS["stargan2_wing"].__class__(**{**W.WEIGHTS["stargan2_wing"].__dict__, "url": src.as_uri()})
    monkeypatch.setitem(W.WEIGHTS, "stargan2_wing", spec)
    assert spec.unpublished and "no sha256 is published" in spec.checksum_text()
    with pytest.raises(W.WeightsUnavailable, match="stargan2_wing.ckpt"):
        W.resolve("stargan2_wing")
    path = W.fetch("stargan2_wing", progress=False)
    digest = hashlib.sha256(b"first copy").hexdigest()
    assert W.recorded_digest_path(spec).read_text().split()[0] == digest
    r = W.resolve("stargan2_wing")
    assert r.verified == "recorded" and "verified: recorded" in r.label and r.path == path
    path.write_bytes(b"replaced later")  # a changed file is refused, never trusted silently
    with pytest.raises(W.WeightsChecksumError, match="recorded"):
        W.resolve("stargan2_wing")
    # An empty prefix must not verify arbitrary files: an override of other bytes is unverified.
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"something else")
    assert W.resolve("stargan2_wing", override=other).verified is None
    # Two StarGAN v2 checkpoints share the official file name; locally they do not.
    assert len({W.WEIGHTS[n].filename for n in ("stargan2_celeba_hq", "stargan2_afhq", "stargan2_wing")}) == 3
