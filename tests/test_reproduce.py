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
from lrkit.runs.context import EVENTS_FILE
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


@pytest.fixture(scope="module")
def batch_env(tmp_path_factory):
    """One cache (synthfaces renders, factor probes, feature statistics) for the two whole-batch tests, as a user's
    machine keeps it between runs: the paper miniature reuses the smoke batch's 64 px probes."""
    e = dict(os.environ)
    e["LRKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("batch_cache"))
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


def test_whole_smoke_batch(tmp_path, batch_env):
    """Every smoke notebook through the real path (what `make reproduce` runs); metrics_sanity's numbers must make
    sense; the I2I-LR notebooks share one model per setting (train_i2ilr trains it, fig5_grid reuses it)."""
    from lrkit.methods.i2ilr.config import get_preset
    from lrkit.runs.artifacts import read_table_csv

    out, runs = tmp_path / "out", tmp_path / "runs"
    p = _run_cli("reproduce", "--profile", "smoke", "--jobs", "2", "--output-root", str(out), "--runs-dir", str(runs),
                 env=batch_env, timeout=3600)
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = Path(re.search(r"HTML report: (\S+index\.html)", p.stdout).group(1)).parent.name
    manifest = json.loads((runs / run_id / "manifest.json").read_text())
    assert {n: nb["status"] for n, nb in manifest["notebooks"].items()} == {nb.name: "ok" for nb in nbreg.NOTEBOOKS}
    assert any(w["name"] == "efficientnet_lite0" and w["verified"] for w in manifest["weights"])
    tables = out / "paper_tables" / "smoke"
    mono = read_table_csv(tables / "metrics_monotonicity.csv")
    assert set(mono["monotonic"]) <= {"yes", "unavailable"}
    rvr = (tables / "metrics_real_vs_real.csv").read_text()
    assert "fid_pytorchfid,unavailable" in rvr  # offline: reported unavailable, never replaced
    base = read_table_csv(tables / "metrics_factor_baselines.csv")
    assert base.loc["ideal", "identity_fine_agreement"] > 0.85 and base.loc["ideal", "faithful_coarse_agreement"] > 0.7
    assert base.loc["copy source", "faithful_coarse_agreement"] < 0.5
    assert base.loc["copy target", "identity_fine_agreement"] < base.loc["copy target", "chance_fine"] + 0.15
    # I2I-LR tables: every paper cell present; offline, paper-comparable metrics unavailable, offline ones numbers.
    t1 = read_table_csv(tables / "table1_celebahq_fid_lpips.csv").set_index("column", append=True)
    assert t1.loc[("Ours", "FID@128"), "status"] == "unavailable" and t1.loc[("Ours", "FID@128"), "paper"] == 15.52
    assert float(t1.loc[("Ours", "LR error (grey levels)@128"), "reproduced"]) < 60
    # StarGAN v2 is run (trained here): its row carries the paper's number, FID unavailable offline, its LR error a
    # number; the methods not run here are reported only.
    sg = t1.loc[("Stargan-v2", "FID@256")]
    assert sg["status"] == "unavailable" and sg["paper"] == 23.8
    assert float(t1.loc[("Stargan-v2", "LR error (grey levels)@256"), "reproduced"]) >= 0
    assert t1.loc[("MUNIT [16]", "FID@256"), "status"] == "reported only"
    t2 = read_table_csv(tables / "table2_density_coverage.csv").set_index("column", append=True)
    assert 0 <= float(t2.loc[("Ours", "Coverage (EffNet-Lite0)@128"), "reproduced"]) <= 1
    t4 = read_table_csv(tables / "table4_lr_resolution.csv").set_index("column", append=True)
    assert {"LR 4x4", "LR 32x32"} <= set(t4.loc["LR error (grey levels)"].index)
    for fig in ("i2ilr_fig5", "i2ilr_fig6_vs_stargan", "i2ilr_fig8_cat", "i2ilr_fig8_dog", "i2ilr_fig8_wild",
                "i2ilr_train_celebahq128_smoke_samples"):
        assert (out / "figures" / "smoke" / f"{fig}.png").exists()
    # One model per setting, trained once to the preset's steps and shared by every notebook that needs it.
    model = next(m for m in (runs / "models" / "i2ilr").iterdir() if m.name.startswith("celebahq128_smoke-"))
    losses = (model / "losses.jsonl").read_text().splitlines()
    steps = get_preset("celebahq128_smoke").steps
    assert len(losses) == steps and json.loads(losses[-1])["step"] == steps
    events = [json.loads(line) for line in (runs / run_id / EVENTS_FILE).read_text().splitlines()]
    used = {(e["notebook"], e["checkpoint"]) for e in events
            if e["kind"] == "model" and e["preset"] == "celebahq128_smoke"}
    assert {"train_i2ilr", "fig5_grid", "table1_celebahq_fid_lpips"} <= {nb for nb, _ in used}
    assert len({c for _, c in used}) == 1


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
    from lrkit.methods.i2ilr import figures, tables
    from lrkit.methods.i2ilr.config import get_preset

    specs = {**{n: t.presets for n, t in tables.TABLES.items()},
             **{n: tuple(p for _, p in f.panels) for n, f in figures.FIGURES.items()}, "train_i2ilr": ("celebahq128",)}
    for nb in nbreg.NOTEBOOKS:
        want = tuple(dict.fromkeys(get_preset(p).dataset for p in specs.get(nb.name, ())))
        assert nb.datasets == want, nb.name


def _real_tree(root: Path) -> Path:
    """synthfaces exported in the real datasets' layouts (celeba_hq/{train,val}/{female,male},
    afhq/{train,val}/{cat,dog,wild}) at 256 px (the 256 px presets need it; 128 px ones downscale), a handful of
    images per domain: enough val images for 2 targets x 10 sources per AFHQ domain."""
    from lrkit.data.synthfaces import export_folder

    faces = export_folder("faces", root / "celeba_hq", n_train=6, n_val=6, size=256, seed=0)
    for split in ("train", "val"):  # the real CelebA-HQ domain folders
        (faces / split / "longhair").rename(faces / split / "female")
        (faces / split / "shorthair").rename(faces / split / "male")
    export_folder("animals", root / "afhq", n_train=8, n_val=11, size=256, seed=0)  # one batch (8) per domain
    return root


# The paper miniature: every model 2 steps at batch 2 (paper widths and sizes), 2 LR targets, 64/32 synthfaces
# images in the data and metric notebooks, the smoke batch's 64 px factor probes (outputs at 128 px are pooled).
MINIATURE = ["-p", "steps=2", "-p", "batch_size=2", "-p", "n_eval_targets=2", "-p", "n_images=64", "-p", "n_train=64",
             "-p", "n_val=32", "-p", "probe_size=64"]


def test_paper_profile_miniature(tmp_path, batch_env):
    """Every paper-profile notebook on a tiny real-layout tree with the paper presets (paper widths and sizes) for
    two steps at batch 2: each finishes, each table names the real-layout dataset, profile paper and device cpu,
    and the StarGAN v2 baseline trained here (AFHQ) gets the miniature's steps too."""
    from lrkit.runs.artifacts import read_table_csv

    tree = _real_tree(tmp_path / "data")
    out, runs = tmp_path / "out", tmp_path / "runs"
    p = _run_cli("reproduce", "--profile", "paper", "--data-root", str(tree), "--device", "cpu", "--jobs", "2",
                 *MINIATURE, "--output-root", str(out), "--runs-dir", str(runs), env=batch_env, timeout=3600)
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = Path(re.search(r"HTML report: (\S+index\.html)", p.stdout).group(1)).parent.name
    manifest = json.loads((runs / run_id / "manifest.json").read_text())
    assert {n: nb["status"] for n, nb in manifest["notebooks"].items()} == \
        {nb.name: "ok" for nb in nbreg.NOTEBOOKS if "paper" in nb.profiles}
    assert manifest["overrides"]["steps"] == 2 and manifest["overrides"]["batch_size"] == 2
    assert manifest["datasets_given"].keys() == {"celeba_hq", "afhq"}
    for name, dataset in (("table1_celebahq_fid_lpips", "celeba_hq"), ("table3_afhq", "afhq")):
        md = (out / "paper_tables" / "paper" / f"{name}.md").read_text()
        prov = next(line for line in md.splitlines() if line.startswith("_run "))
        assert "profile paper" in prov and "device cpu" in prov and f"dataset {dataset}-train@" in prov, prov
        assert "synthfaces" not in md  # nothing hard-codes the embedded dataset
        t = read_table_csv(out / "paper_tables" / "paper" / f"{name}.csv")
        assert "reproduced" not in set(t["status"])  # 2 steps and 2 targets: the kit's own measurement
        assert "2 training steps instead of the preset's" in md and "batch 2 instead of the preset's" in md
        assert "2 of " in md
    t3 = (out / "paper_tables" / "paper" / "table3_afhq.md").read_text()
    assert "trained here (afhq128, 2 steps)" in t3
