"""The notebooks ``lrkit reproduce`` knows, and which profile batches each one belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrkit.runs.provenance import repo_root


@dataclass(frozen=True)
class NotebookSpec:
    name: str  # file stem under notebooks/
    title: str
    profiles: tuple[str, ...]  # the profile batches that run it


NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec("00_data_overview", "Data overview: synthfaces (and a real dataset) at HR and LR",
                 ("smoke", "quick", "paper")),
    NotebookSpec("metrics_sanity", "Metric sanity: real vs real, real vs degraded, factor probe accuracy",
                 ("smoke", "quick", "paper")),
)


def notebook_dir() -> Path:
    return repo_root() / "notebooks"


def select(profile: str, only: list[str] | None = None) -> list[NotebookSpec]:
    """The notebooks of a profile's batch, or exactly those named in ``only`` (any profile)."""
    if only:
        by_name = {nb.name: nb for nb in NOTEBOOKS}
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; known: {', '.join(by_name)}")
        return [by_name[n] for n in only]
    return [nb for nb in NOTEBOOKS if profile in nb.profiles]
