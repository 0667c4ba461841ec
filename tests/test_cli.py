"""The command line: one line for user errors, a traceback for bugs, every metric listed and reachable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit import cli

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    assert cli.main(["metric", "nope", "--fake", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrkit: error: unknown metric 'nope'") and err.count("\n") == 1
    assert cli.main(["weights", "fetch", "nope"]) == 2
    assert "unknown weight file 'nope'" in capsys.readouterr().err

    def shape_bug(args):  # what a bug inside the kit looks like: a torch shape error, or a KeyError
        torch.zeros(2, 3) @ torch.zeros(2, 3)

    monkeypatch.setattr(cli, "_cmd_data_check", shape_bug)
    with pytest.raises(RuntimeError, match="cannot be multiplied|mat1 and mat2"):
        cli.main(["data", "check", "x"])
    monkeypatch.setattr(cli, "_cmd_data_check", lambda args: {}["missing"])
    with pytest.raises(KeyError):
        cli.main(["data", "check", "x"])


def test_metric_help_lists_every_metric(capsys):
    from lrkit.metrics.registry import METRICS

    with pytest.raises(SystemExit):
        cli.main(["metric", "--help"])
    out = capsys.readouterr().out
    for name in [*METRICS, "synthfaces_factors"]:
        assert name in out, name
    assert "--allow-singular" in out


def _folder(path, images):
    path.mkdir(parents=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(path / f"{i:03d}.png")
    return path


def test_allow_singular_flag_reaches_the_frechet_distance(tmp_path, capsys):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    real, fake = _folder(tmp_path / "r", imgs[:3]), _folder(tmp_path / "f", imgs[3:])
    args = ["metric", "fd_efficientnet_lite0", "--real", str(real), "--fake", str(fake), "--json"]
    assert cli.main(args) == 2
    assert "allow-singular" in capsys.readouterr().err  # its own error names the flag that exists
    assert cli.main(args + ["--allow-singular"]) == 0
    assert '"singular_covariance": 1.0' in capsys.readouterr().out


def test_synthfaces_factors_from_translate_outputs(tmp_path, capsys, monkeypatch):
    """`lrkit metric synthfaces_factors` on files: copying the source keeps identity, copying the target does not."""
    import shutil

    from lrkit.data.synthfaces import export_folder
    from lrkit.metrics import factor_probes

    root = export_folder("faces", tmp_path / "synth", n_train=1, n_val=4, size=32, seed=0)
    val = sorted((root / "val").rglob("*.png"))
    src, tgt = val[:4], val[4:]
    for name, pick in (("copy_source", 0), ("copy_target", 1)):
        out = tmp_path / name
        out.mkdir()
        for s, t in zip(src, tgt):
            shutil.copy([s, t][pick], out / f"{t.stem}__{s.stem}.png")
    # Small probes so the test takes seconds (the command trains the default ones, 1,500 images x 8 epochs).
    monkeypatch.setitem(factor_probes.DEFAULT_TRAINING, 32, {"n_train": 512, "epochs": 6})
    got = {}
    for name in ("copy_source", "copy_target"):
        assert cli.main(["metric", "synthfaces_factors", "--real", str(root), "--fake", str(tmp_path / name),
                         "--json"]) == 0
        import json

        got[name] = json.loads(capsys.readouterr().out)["values"]
    assert got["copy_source"]["identity_fine_agreement"] > got["copy_target"]["identity_fine_agreement"]
    (tmp_path / "bad").mkdir()
    shutil.copy(src[0], tmp_path / "bad" / "x.png")
    assert cli.main(["metric", "synthfaces_factors", "--real", str(root), "--fake", str(tmp_path / "bad")]) == 2
    assert "<target>__<source>.png" in capsys.readouterr().err
