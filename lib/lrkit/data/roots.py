"""Where each real dataset lives: one folder per dataset name, found under a root or given one by one.

``lrkit data download celeba_hq --root data`` makes ``data/celeba_hq/{train,val}/{female,male}`` (and ``afhq``
likewise), so ``--data-root data`` finds every dataset by its name; ``--data celeba_hq=PATH`` names a folder
directly. A config names its dataset (``cfg.dataset``); :func:`dataset_folder` turns what the user gave into that
dataset's folder, or raises :class:`DatasetMissing` with the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lrkit.errors import UserError

__all__ = ["REAL_DATASETS", "DatasetMissing", "dataset_folder", "find_datasets", "parse_data_args"]

REAL_DATASETS = ("celeba_hq", "afhq")


class DatasetMissing(UserError, FileNotFoundError):
    """A real dataset a config needs has no folder."""


def _fix(dataset: str) -> str:
    return (f"pass --data-root ROOT holding {dataset}/ (make it with `lrkit data download {dataset} --root ROOT` "
            f"on an online machine) or --data {dataset}=PATH")


def dataset_folder(dataset: str, data_root: str | Path | Mapping | None) -> Path:
    """The folder of ``dataset``. ``data_root``: a mapping ``{dataset: folder}`` (what ``lrkit reproduce``
    passes), or one folder that is either a root holding ``<dataset>/`` or the dataset's folder itself."""
    if isinstance(data_root, Mapping):
        given = data_root.get(dataset)
        if not given:
            have = ", ".join(sorted(data_root)) or "none"
            raise DatasetMissing(f"dataset {dataset!r} is needed here but no folder was given for it (given: {have}); "
                                 + _fix(dataset))
        path = Path(given)
    elif data_root:
        root = Path(data_root)
        path = root / dataset if (root / dataset).is_dir() else root
        others = [d for d in REAL_DATASETS if d != dataset and (root / d).is_dir()]
        if path == root and others:
            raise DatasetMissing(f"{root} holds {', '.join(others)}/ but no {dataset}/ folder; " + _fix(dataset))
    else:
        raise DatasetMissing(f"dataset {dataset!r} needs its folder; " + _fix(dataset)
                             + ", or use a synthfaces preset (*_smoke, *_quick)")
    if not path.is_dir():
        raise DatasetMissing(f"dataset {dataset!r}: {path} is not a folder; " + _fix(dataset))
    return path


def find_datasets(data_root: str | Path | None) -> dict[str, str]:
    """``{name: absolute folder}`` of every real dataset found as ``<data_root>/<name>/``."""
    if not data_root:
        return {}
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetMissing(f"--data-root {root} is not a folder; see `lrkit data download --help`")
    return {d: str((root / d).resolve()) for d in REAL_DATASETS if (root / d).is_dir()}


def parse_data_args(items: list[str] | None) -> dict[str, str]:
    """``["celeba_hq=PATH", ...]`` (the ``--data`` flags) -> ``{name: absolute folder}``, checked."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--data {item!r}: write NAME=PATH, e.g. --data celeba_hq=/data/celeba_hq")
        if name not in REAL_DATASETS:
            raise ValueError(f"--data {item!r}: unknown dataset {name!r}; known: {', '.join(REAL_DATASETS)}")
        if not Path(path).is_dir():
            raise DatasetMissing(f"--data {item!r}: {path} is not a folder")
        out[name] = str(Path(path).resolve())
    return out
