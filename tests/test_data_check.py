"""`lrkit data check`: counts, sizes, unreadable files and the content fingerprint (lrkit.data.check)."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lrkit.data.check import FINGERPRINT_VERSION, DataReport, check_dataset, fingerprint_folder, main_check


def solid(path: Path, color=(10, 20, 30), size=(32, 32), mode="RGB", fmt=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ds"
    solid(root / "train" / "female" / "a.png", (1, 1, 1))
    solid(root / "train" / "female" / "b.jpg", (2, 2, 2), size=(48, 32), fmt="JPEG")
    solid(root / "train" / "male" / "c.png", 3, mode="L")
    solid(root / "val" / "male" / "d.png", (4, 4, 4))
    (root / "val" / "female").mkdir(parents=True)
    (root / "val" / "female" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    solid(root / "train" / "stray.png")  # not inside a domain folder
    return root


def test_report_counts_sizes_and_unreadable(tree):
    rep = check_dataset(tree)
    assert isinstance(rep, DataReport) and rep.layout == "stargan"
    assert rep.num_files == 5 and rep.num_readable == 4
    assert rep.counts == {"train": {"female": 2, "male": 1}, "val": {"female": 0, "male": 1}}
    assert rep.sizes == {(32, 32): 3, (48, 32): 1}
    assert rep.modes == {"RGB": 3, "L": 1} and rep.formats == {"PNG": 3, "JPEG": 1}
    assert [p for p, _ in rep.unreadable] == ["val/female/broken.png"]
    assert rep.misplaced == ("train/stray.png",)
    d = rep.to_dict()
    json.dumps(d)  # JSON-ready
    assert d["sizes"] == {"32x32": 3, "48x32": 1}
    assert d["unreadable"][0]["path"] == "val/female/broken.png"
    text = rep.format()
    for needle in ("stargan", "female", "48x32: 1", "broken.png", "stray.png", rep.fingerprint):
        assert needle in text
    with pytest.raises(AttributeError):
        rep.layout = "flat"  # frozen


def test_fingerprint_definition_and_invariances(tree, tmp_path):
    fp = fingerprint_folder(tree)
    assert fp == check_dataset(tree).fingerprint
    # Recompute from the documented definition.
    lines = []
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).parts
        if p.is_file() and len(rel) == 3:
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()} {rel[0]}/{rel[1]}\n")
    expected = hashlib.sha256((FINGERPRINT_VERSION + "\n" + "".join(sorted(lines))).encode()).hexdigest()
    assert fp == expected

    # Renaming a file (even its extension) and moving the whole folder keep the fingerprint.
    (tree / "train" / "female" / "a.png").rename(tree / "train" / "female" / "zzz_renamed.PNG")
    moved = tmp_path / "elsewhere"
    shutil.move(str(tree), moved)
    assert fingerprint_folder(moved) == fp

    # Moving an image to another domain changes it.
    (moved / "train" / "female" / "zzz_renamed.PNG").rename(moved / "train" / "male" / "zzz_renamed.PNG")
    fp_moved = fingerprint_folder(moved)
    assert fp_moved != fp
    (moved / "train" / "male" / "zzz_renamed.PNG").rename(moved / "train" / "female" / "zzz_renamed.PNG")
    assert fingerprint_folder(moved) == fp

    # Changing a single byte changes it.
    target = moved / "val" / "male" / "d.png"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    assert fingerprint_folder(moved) not in (fp, fp_moved)


def test_flat_folder_and_main_check(tmp_path, capsys):
    flat = tmp_path / "flat"
    for i in range(3):
        solid(flat / f"{i}.png", (i, i, i), size=(40, 40))
    assert main_check(str(flat), as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layout"] == "flat" and out["counts"] == {"-": {"-": 3}} and out["sizes"] == {"40x40": 3}
    assert main_check(str(flat), as_json=False) == 0
    assert "fingerprint" in capsys.readouterr().out

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main_check(str(empty), as_json=False) == 1
    assert "no readable image" in capsys.readouterr().err
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"")
    assert main_check(str(only_bad), as_json=False) == 1
    assert main_check(str(tmp_path / "missing"), as_json=False) == 2
    assert "does not exist" in capsys.readouterr().err


def test_truncated_file_needs_full_decode(tmp_path):
    import io

    import numpy as np

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    solid(tmp_path / "ok.png")
    assert check_dataset(tmp_path, full_decode=False).num_readable == 2
    rep = check_dataset(tmp_path)
    assert rep.num_readable == 1 and "truncated" in rep.unreadable[0][1]
