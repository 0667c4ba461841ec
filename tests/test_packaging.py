"""The kit's shape: pins agree between the two install routes, notebooks follow the conventions."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _req_name(req: str) -> str:
    return re.split(r"[=<>!~\[ ]", req, maxsplit=1)[0].lower()


def test_top_level_layout():
    for name in ("notebooks", "lib", "paper_tables", "figures", "tests", "environment.yml", "README.md",
                 "Makefile", "pyproject.toml", ".ci/run", ".gitignore"):
        assert (ROOT / name).exists(), name


def test_environment_yml_agrees_with_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = deps["dependencies"] + deps["optional-dependencies"]["test"]
    text = (ROOT / "environment.yml").read_text()
    conda = [m.strip() for m in re.findall(r"^\s+- (\S.*)$", text, flags=re.M)]
    pip_section = text.split("- pip:", 1)[1]
    pip_items = [m.strip() for m in re.findall(r"^\s+- (\S.*)$", pip_section, flags=re.M)]
    conda_pip = {_req_name(r): r for r in pip_items if not r.startswith("-e")}
    pyproj = {_req_name(r): r for r in pip_reqs}
    assert conda_pip == pyproj
    assert "python=3.11" in conda
    assert pyproj["torch"] == "torch==2.14.1" and pyproj["torchvision"] == "torchvision==0.29.1"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path: Path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    # Outputs stripped in git.
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name} was committed with outputs; clear them before committing"
    # The first code cell is the papermill parameters cell, literals only.
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), f"{path.name}: first code cell not tagged"
    tree = ast.parse("".join(code[0]["source"]))
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        ast.literal_eval(node.value)  # raises if not a literal
    names = {n.targets[0].id for n in tree.body}
    assert {"profile", "device", "run_dir", "output_root"} <= names
    # Thin driver: no function/class definitions, loops or branches in any cell.
    for cell in code:
        src = "".join(cell["source"])
        for node in ast.walk(ast.parse(src)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                                         ast.For, ast.While, ast.If, ast.IfExp)), \
                f"{path.name}: {type(node).__name__} in a cell"
    assert nb["metadata"]["kernelspec"]["name"] == "lrkit"


def test_notebook_registry_matches_files():
    from lrkit.runs.notebooks import NOTEBOOKS as REG

    assert sorted(nb.name for nb in REG) == sorted(p.stem for p in NOTEBOOKS)
