"""The real `lrkit reproduce` path: papermill, the lrkit kernel, nbconvert, manifest, index, history, compare."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from lrkit import cli
from lrkit.runs import notebooks as nbreg
from lrkit.runs.notebooks import NotebookSpec
from lrkit.runs.reproduce import reproduce

LRKIT = Path(sys.executable).with_name("lrkit")


def _run_cli(*args, env, timeout=600):
    return subprocess.run([str(LRKIT), *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["LRKIT_CACHE_DIR"] = str(tmp_path / "cache")
    return e


def test_smoke_batch_twice_then_compare(tmp_path, env):
    out, runs = tmp_path / "out", tmp_path / "runs"
    ids = []
    # A tiny real dataset in the StarGAN v2 layout, with one unreadable file that must be listed in the report.
    real = tmp_path / "real" / "celeba_hq"
    for split, dom in (("train", "female"), ("train", "male"), ("val", "female")):
        (real / split / dom).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((80, 80, 3), 40 * i + 20, np.uint8)).save(real / split / dom / f"{i}.png")
    (real / "train" / "male" / "broken.png").write_bytes(b"\x89PNG not really")
    # The data overview twice (the second time with the real dataset): two versions to compare.
    # (The whole smoke batch runs in the slow test below.)
    for extra in ([], ["--data-root", str(real.parent)]):
        p = _run_cli("reproduce", "--profile", "smoke", "--only", "00_data_overview", *extra, "--output-root",
                     str(out), "--runs-dir", str(runs), env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        m = re.search(r"HTML report: (\S+index\.html)", p.stdout)
        assert m, p.stdout
        index = Path(m.group(1))
        ids.append(index.parent.name)
    assert ids[0] != ids[1]
    run_dir = runs / ids[1]

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == ids[1] and manifest["profile"]["name"] == "smoke"
    assert set(manifest["git"]) == {"commit", "short", "dirty"}
    assert manifest["environment"]["packages"]["torch"].startswith("2.")
    assert manifest["environment"]["device_name"] and manifest["environment"]["python"]
    assert manifest["started"] and manifest["ended"]
    nb = manifest["notebooks"]["00_data_overview"]
    assert nb["status"] == "ok" and nb["parameters"]["profile"] == "smoke" and manifest["seed"] == 0
    assert nb["parameters"]["data"] == {"celeba_hq": str(real.resolve())} == manifest["datasets_given"]
    names = {d["name"] for d in manifest["datasets"]}
    assert "synthfaces-faces-train-64" in names and all(len(d["fingerprint"]) == 64 for d in manifest["datasets"])
    assert manifest["weights"] == []

    html = (run_dir / "notebooks" / "00_data_overview.html").read_text()
    assert "synthfaces" in html and "Traceback" not in html
    page = (run_dir / "index.html").read_text()
    assert 'href="notebooks/00_data_overview.html"' in page
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (run_dir / src).resolve().is_file(), src
    assert "data_synthfaces_faces" in page and (run_dir / "logs" / "00_data_overview.log").exists()
    assert "data_real_celeba_hq" in page and "broken.png" in page  # the skipped file is listed, never silent
    assert manifest["skipped_images"][0]["count"] == 1
    assert any(d["name"] == "celeba_hq" for d in manifest["datasets"])

    # Two runs, two versions of every artifact; the latest names the second run.
    hist = sorted((out / "paper_tables/smoke/history/data_synthfaces_faces_factors").glob("*.csv"))
    assert [h.stem for h in hist] == sorted(ids)
    assert ids[1] in (out / "paper_tables/smoke/data_synthfaces_faces_factors.md").read_text()
    assert len(list((out / "figures/smoke/history/data_synthfaces_faces").glob("*.png"))) == 2

    p = _run_cli("compare", ids[0], ids[1], "--output-root", str(out), env=env)
    assert p.returncode == 0, p.stderr
    assert f"only in {ids[1]}: smoke/data_real_celeba_hq" in p.stdout
    assert "changed" in p.stdout and ", 0 changed" in p.stdout  # synthfaces is deterministic
    assert "figure smoke/data_synthfaces_faces: identical" in p.stdout


def _write_nb(path: Path, body: str, params: str = "") -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('profile = "smoke"\ndata = {}\ndevice = "auto"\nrun_dir = ""\n'
                                  'output_root = ""\n' + params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {"name": "lrkit", "display_name": "Python (lrkit)", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_is_recorded_and_others_run(tmp_path, monkeypatch, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "bad.ipynb", 'raise ValueError("boom")')
    _write_nb(nbdir / "good.ipynb",
              "import pandas as pd\nfrom lrkit.runs.context import open_run\n"
              "ctx = open_run(run_dir, profile, notebook='good', output_root=output_root)\n"
              "ctx.save_table(pd.DataFrame({'x': [1.0]}), 'tiny', title='tiny', dataset='none')")
    monkeypatch.setattr(nbreg, "NOTEBOOKS", (NotebookSpec("bad", "bad", ("smoke",)),
                                             NotebookSpec("good", "good", ("smoke",))))
    monkeypatch.setattr(nbreg, "notebook_dir", lambda: nbdir)
    res = reproduce("smoke", jobs=2, output_root=tmp_path / "out", runs_dir=tmp_path / "runs")
    assert res.statuses == {"bad": "failed", "good": "ok"} and not res.ok
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["notebooks"]["bad"]["error"] == "ValueError: boom"
    assert (res.run_dir / "notebooks" / "bad.html").exists()  # the failed notebook is still readable
    assert "boom" in (res.run_dir / "logs" / "bad.log").read_text()
    assert (tmp_path / "out/paper_tables/smoke/tiny.csv").exists()
    assert "ValueError: boom" in res.index_html.read_text()
    # The command line exits non-zero when a notebook failed.
    rc = cli.main(["reproduce", "--only", "good", "bad", "--output-root", str(tmp_path / "out"),
                   "--runs-dir", str(tmp_path / "runs")])
    assert rc == 1
    assert "HTML report:" in capsys.readouterr().out


def test_parallel_kernels_split_the_cores(tmp_path, monkeypatch):
    """--jobs 2: each kernel gets half the cores as its thread count (never 2 x all cores), recorded in the
    manifest; a user's OMP_NUM_THREADS is kept."""
    from lrkit.runs.reproduce import kernel_threads

    assert kernel_threads(1, {}, cores=8) == {}
    assert kernel_threads(2, {}, cores=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert kernel_threads(3, {}, cores=8)["OMP_NUM_THREADS"] == "2" and kernel_threads(4, {}, cores=2)[
        "OMP_NUM_THREADS"] == "1"
    assert kernel_threads(2, {"OMP_NUM_THREADS": "7"}, cores=8) == {}
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = ("import json, os, pathlib, torch\npathlib.Path(run_dir, NAME + '.json').write_text(json.dumps("
            "[os.environ.get('OMP_NUM_THREADS'), torch.get_num_threads()]))")
    for name in ("a", "b"):
        _write_nb(nbdir / f"{name}.ipynb", body.replace("NAME", repr(name)))
    monkeypatch.setattr(nbreg, "NOTEBOOKS", (NotebookSpec("a", "a", ("smoke",)), NotebookSpec("b", "b", ("smoke",))))
    monkeypatch.setattr(nbreg, "notebook_dir", lambda: nbdir)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    res = reproduce("smoke", jobs=2, output_root=tmp_path / "out", runs_dir=tmp_path / "runs")
    assert res.ok, res.statuses
    want = kernel_threads(2)["OMP_NUM_THREADS"]
    for name in ("a", "b"):
        assert json.loads((res.run_dir / f"{name}.json").read_text()) == [want, int(want)]
    assert json.loads((res.run_dir / "manifest.json").read_text())["kernel_threads"]["OMP_NUM_THREADS"] == want


def test_bad_arguments_are_clear(tmp_path, capsys):
    assert cli.main(["reproduce", "--only", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "unknown notebook(s) ['nope']" in capsys.readouterr().err
    assert cli.main(["reproduce", "--data-root", str(tmp_path / "missing"), "--runs-dir", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_parameter_overrides_reach_the_notebooks_that_declare_them(tmp_path, monkeypatch, capsys):
    """-p NAME=VALUE goes to every notebook declaring NAME (and only those), is recorded in the manifest, and an
    unknown name is an error listing the valid ones."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = ("import json, pathlib\npathlib.Path(run_dir, NAME + '.json').write_text(json.dumps(dict(steps=steps, "
            "extra=globals().get('n_eval_targets'))))")
    _write_nb(nbdir / "a.ipynb", body.replace("NAME", "'a'"), params="steps = 0\nn_eval_targets = 0\n")
    _write_nb(nbdir / "b.ipynb", body.replace("NAME", "'b'"), params="steps = 0\n")
    monkeypatch.setattr(nbreg, "NOTEBOOKS", (NotebookSpec("a", "a", ("smoke",)), NotebookSpec("b", "b", ("smoke",))))
    monkeypatch.setattr(nbreg, "notebook_dir", lambda: nbdir)
    res = reproduce("smoke", output_root=tmp_path / "out", runs_dir=tmp_path / "runs",
                    overrides=["steps=2", "n_eval_targets=4"])
    assert res.ok, res.statuses
    assert json.loads((res.run_dir / "a.json").read_text()) == {"steps": 2, "extra": 4}
    assert json.loads((res.run_dir / "b.json").read_text()) == {"steps": 2, "extra": None}  # b does not declare it
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["overrides"] == {"steps": 2, "n_eval_targets": 4}
    assert manifest["notebooks"]["b"]["parameters"].get("n_eval_targets") is None
    assert cli.main(["reproduce", "-p", "stpes=2", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "unknown notebook parameter(s) ['stpes']" in err and "n_eval_targets, steps" in err


def test_paper_profile_missing_dataset_fails_only_its_notebooks(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for name in ("faces", "animals"):
        _write_nb(nbdir / f"{name}.ipynb", "assert data, data")
    monkeypatch.setattr(nbreg, "NOTEBOOKS", (NotebookSpec("faces", "f", ("paper",), ("celeba_hq",)),
                                             NotebookSpec("animals", "a", ("paper",), ("afhq",))))
    monkeypatch.setattr(nbreg, "notebook_dir", lambda: nbdir)
    (tmp_path / "data" / "afhq").mkdir(parents=True)
    res = reproduce("paper", data_root=str(tmp_path / "data"), output_root=tmp_path / "out",
                    runs_dir=tmp_path / "runs")
    assert res.statuses == {"faces": "failed", "animals": "ok"}
    err = json.loads((res.run_dir / "manifest.json").read_text())["notebooks"]["faces"]["error"]
    assert err.startswith("DatasetMissing: faces needs celeba_hq") and "--data celeba_hq=PATH" not in err
    assert "lrkit data download" in err and "\n" not in err


def test_notebook_datasets_match_the_specs_they_name():
    """The registry's paper-profile datasets are those of the presets each notebook's spec trains."""
    from lrkit.methods.i2ilr import fig7, figures, tables
    from lrkit.methods.i2ilr.config import get_preset

    specs = {**{n: t.presets for n, t in tables.TABLES.items()},
             **{n: tuple(p for _, p in f.panels) for n, f in figures.FIGURES.items()}, "train_i2ilr": ("celebahq128",),
             "fig7_pulse_comparison": (fig7.I2ILR_PRESET["paper"],)}
    from lrkit.methods.progan.config import get_preset as progan_preset
    from lrkit.methods.srnam import figures as srnam_figures

    # SR-NAM's notebooks read the val faces of its ProGAN's dataset (and the degradation GAN trains on the same).
    srnam = (progan_preset(srnam_figures.PROGAN_PRESET).dataset,)
    for nb in nbreg.NOTEBOOKS:
        want = tuple(dict.fromkeys(get_preset(p).dataset for p in specs.get(nb.name, ())))
        assert nb.datasets == (srnam if nb.name.startswith("srnam_") else want), nb.name


def test_batch_kernels_get_lrkit_batch_and_the_caller_keeps_its_environment(tmp_path, monkeypatch):
    """execute_one starts the kernel with LRKIT_BATCH=1 (widgets are not built in a batch: nbclient#312) and
    leaves the caller's environment as it was; lr_explorer then draws a figure instead of a widget."""
    import torch

    from lrkit import viz
    from lrkit.runs.reproduce import execute_one

    monkeypatch.delenv("LRKIT_BATCH", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os\nassert os.environ['LRKIT_BATCH'] == '1'")]
    nb.metadata["kernelspec"] = {"name": "lrkit", "display_name": "Python (lrkit)", "language": "python"}
    src = tmp_path / "env.ipynb"
    nbformat.write(nb, src)
    res = execute_one(str(src), str(tmp_path), {}, "lrkit", 0)
    assert res["status"] == "ok", res["error"]
    assert "LRKIT_BATCH" not in os.environ
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    assert type(viz.lr_explorer(images, (4, 8))).__name__ == "interactive"
    monkeypatch.setenv("LRKIT_BATCH", "1")
    fig = viz.lr_explorer(images, (4, 8))
    assert "JupyterLab only" in fig._suptitle.get_text()


def test_a_cell_past_the_cell_timeout_fails_its_notebook_with_the_fix(tmp_path, monkeypatch):
    """A cell that does not finish (a sleep standing in for a kernel that went quiet) is stopped at the cell
    timeout: the notebook fails with one line naming the timeout and --cell-timeout, the others still run, and
    the manifest records the limit; the smoke profile's default is a limit, the paper profile's none."""
    from lrkit.profiles import get_profile

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "stuck.ipynb", "import time\ntime.sleep(300)")
    _write_nb(nbdir / "quick.ipynb", "x = 1 + 1")
    monkeypatch.setattr(nbreg, "NOTEBOOKS", (NotebookSpec("stuck", "stuck", ("smoke",)),
                                             NotebookSpec("quick", "quick", ("smoke",))))
    monkeypatch.setattr(nbreg, "notebook_dir", lambda: nbdir)
    res = reproduce("smoke", output_root=tmp_path / "out", runs_dir=tmp_path / "runs", cell_timeout=3)
    assert res.statuses == {"stuck": "failed", "quick": "ok"}
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    err = manifest["notebooks"]["stuck"]["error"]
    assert err.startswith("CellTimeoutError: a cell ran past the 3 s cell timeout") and "--cell-timeout" in err
    assert manifest["cell_timeout_s"] == 3 and manifest["notebooks"]["stuck"]["seconds"] < 200  # not the 300 s
    assert get_profile("smoke").cell_timeout_s > 0 and get_profile("paper").cell_timeout_s == 0
    with pytest.raises(ValueError, match="--cell-timeout must be >= 0"):
        reproduce("smoke", output_root=tmp_path / "out", runs_dir=tmp_path / "runs", cell_timeout=-1)
