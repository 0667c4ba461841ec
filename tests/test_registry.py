"""The metric registry, batch evaluation with unavailable metrics, and `lrkit metric` on folders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit import cli
from lrkit.metrics import image_quality, registry


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))


def _imgs(seed, n=6, size=64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _folder(path, x):
    path.mkdir(parents=True)
    for i, img in enumerate(((x + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(path / f"{i:03d}.png")
    return path


def test_compute_equals_the_metric_function():
    a, b = _imgs(0), _imgs(1)
    assert registry.compute("psnr", real=a, fake=b) == pytest.approx(image_quality.psnr(b, a))
    assert registry.compute("ssim", real=a, fake=b)["ssim"] == pytest.approx(image_quality.ssim(b, a)["ssim"])


def test_every_metric_declares_a_known_protocol():
    from lrkit import weights as W

    for spec in registry.METRICS.values():
        assert spec.inputs in ("sets", "pairs", "groups") and spec.summary
        assert all(w in W.WEIGHTS for w in spec.weights)
        key, direction = registry.headline_of(spec.name)
        assert direction in ("higher", "lower")


def test_missing_weights_are_unavailable_not_replaced(tmp_path):
    a, b = _imgs(0), _imgs(1)
    out = tmp_path / "metrics.jsonl"
    recs = registry.evaluate(["psnr", "fid_pytorchfid", "lpips"], real=a, fake=b, results_file=out,
                             context={"run_id": "r1"})
    status = {r["metric"]: r["status"] for r in recs}
    assert status == {"psnr": "ok", "fid_pytorchfid": "unavailable", "lpips": "unavailable"}
    fid = next(r for r in recs if r["metric"] == "fid_pytorchfid")
    assert "pt_inception-2015-12-05-6726825d.pth" in fid["reason"] and fid["values"] == {}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["metric"] for line in lines] == ["psnr", "fid_pytorchfid", "lpips"]
    assert all(line["run_id"] == "r1" for line in lines)
    table = registry.results_table(recs)
    assert list(table.loc[table.metric == "fid_pytorchfid", "value"]) == ["unavailable"]
    assert math.isfinite(float(table.loc[(table.metric == "psnr") & (table.key == "psnr"), "value"].iloc[0]))


def test_bad_requests_are_clear():
    with pytest.raises(KeyError, match="known"):
        registry.compute("fid", real=_imgs(0), fake=_imgs(1))
    with pytest.raises(ValueError, match="needs 'fake' and 'real'"):
        registry.compute("psnr", fake=_imgs(1))
    with pytest.raises(ValueError, match="does not take option"):
        registry.compute("psnr", real=_imgs(0), fake=_imgs(1), nearest_k=3)
    x = _imgs(0)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        registry.compute("psnr", real=_imgs(1), fake=x)


def test_cli_metric_on_folders(tmp_path, capsys):
    a, b = _imgs(0), _imgs(1)
    ra, rb = _folder(tmp_path / "real", a), _folder(tmp_path / "fake", b)
    assert cli.main(["metric", "psnr", "--real", str(ra), "--fake", str(rb), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["values"]["psnr"] == pytest.approx(image_quality.psnr(b, a)["psnr"], rel=1e-9)
    assert cli.main(["metric", "fid_pytorchfid", "--real", str(ra), "--fake", str(rb)]) == 2
    assert "lrkit weights fetch pytorchfid_inception" in capsys.readouterr().err
