"""The house rules of the package layout: shared layers never import a method; methods import each other only
in the one declared direction."""

from __future__ import annotations

import ast
from pathlib import Path

import lrkit

LIB = Path(lrkit.__file__).parent
SHARED = ("data", "metrics", "train", "runs", "evaluation", "losses", "nets", "search", "weights.py", "profiles.py", "errors.py",
          "viz.py", "cpu.py", "fsutil.py", "statedict.py", "reference.py",
          "explore/core.py")  # the explorer's model-free part; explore/registry.py lists the methods' adapters
# importer method -> methods it may import (as baselines of its paper's tables/figures)
ALLOWED = {"i2ilr": {"stargan2", "pulse", "progan"}, "stargan2": set(), "progan": set(), "stylegan1": set(),
           "pulse": {"progan", "stylegan1"}, "srnam": {"progan", "pulse"}}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _files(entry: str) -> list[Path]:
    p = LIB / entry
    return [p] if p.is_file() else sorted(p.rglob("*.py"))


def test_shared_layers_never_import_a_method():
    bad = [(str(f.relative_to(LIB)), m) for e in SHARED for f in _files(e) for m in _imports(f)
           if m.startswith("lrkit.methods")]
    assert not bad, bad


def test_methods_import_each_other_in_one_direction_only():
    methods = sorted(p.name for p in (LIB / "methods").iterdir() if (p / "__init__.py").is_file())
    assert set(methods) == set(ALLOWED), "a new method package: declare what it may import in ALLOWED"
    for method in methods:
        for f in sorted((LIB / "methods" / method).rglob("*.py")):
            used = {m.split(".")[2] for m in _imports(f) if m.startswith("lrkit.methods.")}
            assert used <= ALLOWED[method] | {method}, (str(f.relative_to(LIB)), used)


def test_every_method_package_says_which_paper_and_notebooks():
    for init in sorted((LIB / "methods").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "paper" in doc.lower() and "Notebooks:" in doc, init
