"""What a notebook holds while it runs: the run it belongs to, where its outputs go, what it recorded.

``lrkit reproduce`` creates the run folder and passes ``run_dir`` to each notebook; a notebook opened by hand in
JupyterLab (``run_dir = ""``) gets a fresh interactive run of its own, so its outputs are versioned the same way.
Everything a notebook learns about its inputs (dataset fingerprints, weight hashes, skipped images) is appended
to ``events.jsonl`` in the run folder; ``reproduce`` folds those into the manifest and the HTML index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lrkit.fsutil import append_jsonl, atomic_write_json, read_jsonl
from lrkit.profiles import Profile, get_profile, profile_dict
from lrkit.runs import artifacts
from lrkit.runs.provenance import device_info, environment_info, git_state, repo_root
from lrkit.runs.runid import create_run_dir

EVENTS_FILE = "events.jsonl"
MANIFEST_FILE = "manifest.json"
BATCH_ENV = "LRKIT_BATCH"  # "1" in the kernels lrkit reproduce starts: no widgets are built (lrkit.viz.lr_explorer)


@dataclass
class RunContext:
    run_id: str
    run_dir: Path
    profile: Profile
    output_root: Path  # where paper_tables/ and figures/ live
    notebook: str = ""
    device_name: str = field(default_factory=lambda: device_info()["device_name"])

    # -- records -------------------------------------------------------------------------------------------
    def record(self, kind: str, **data) -> None:
        append_jsonl(
            self.run_dir / EVENTS_FILE,
            {"kind": kind, "notebook": self.notebook, "time": _now(), **data},
        )

    def record_dataset(self, name: str, fingerprint: str, **info) -> str:
        """Record a dataset this notebook read by its content fingerprint (never by path alone).

        Returns the label tables and figures should cite: ``name@<first 12 hex digits of the fingerprint>``.
        """
        self.record("dataset", name=name, fingerprint=fingerprint, **info)
        return f"{name}@{fingerprint[:12]}"

    def record_weights(self, name: str, path: str, sha256: str, verified: bool) -> None:
        self.record("weights", name=name, path=str(path), sha256=sha256, verified=verified)

    def record_metric_weights(self, records: list[dict]) -> None:
        """The weight files behind metric records (``lrkit.metrics.registry.evaluate``), for the manifest."""
        for rec in records:
            for w in rec.get("weights_files", []):
                self.record_weights(w["name"], w["path"], w["sha256"], w["verified"])

    def record_skipped(self, dataset: str, skipped: list) -> None:
        """Unreadable images a loader skipped; listed in the run's report so nothing is dropped silently."""
        self.record("skipped_images", dataset=dataset, count=len(skipped), files=[list(s) for s in skipped])

    def events(self) -> list[dict]:
        return read_jsonl(self.run_dir / EVENTS_FILE)

    # -- artifacts -----------------------------------------------------------------------------------------
    def save_table(self, df: pd.DataFrame, name: str, *, title: str, dataset: str, weights: str = "none",
                   device: str | None = None, reference: str | None = None, notes: str = "") -> dict:
        meta = artifacts.save_table(
            df, name, root=self.output_root, run_id=self.run_id, profile=self.profile.name, title=title,
            dataset=dataset, weights=weights, device=device or self.device_name, reference=reference, notes=notes,
        )
        self.record("artifact", artifact_kind="table", name=name, files=meta["files"])
        return meta

    def save_figure(self, fig, name: str, *, title: str, dataset: str, weights: str = "none",
                    device: str | None = None, notes: str = "") -> dict:
        meta = artifacts.save_figure(
            fig, name, root=self.output_root, run_id=self.run_id, profile=self.profile.name, title=title,
            dataset=dataset, weights=weights, device=device or self.device_name, notes=notes,
        )
        self.record("artifact", artifact_kind="figure", name=name, files=meta["files"])
        return meta


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def runs_root() -> Path:
    return repo_root() / "runs"


def open_run(run_dir: str | Path | None = None, profile: str = "smoke", notebook: str = "",
             output_root: str | Path | None = None, runs_dir: str | Path | None = None) -> RunContext:
    """The context of the run a notebook belongs to; a new interactive run when ``run_dir`` is empty."""
    prof = get_profile(profile)
    out = Path(output_root) if output_root else repo_root()
    if run_dir:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder {run_dir} does not exist; leave run_dir empty for a new run")
        return RunContext(run_dir.name, run_dir, prof, out, notebook)
    git = git_state()
    run_id, path = create_run_dir(Path(runs_dir) if runs_dir else runs_root(), git["short"])
    atomic_write_json(
        path / MANIFEST_FILE,
        {
            "run_id": run_id,
            "kind": "interactive",
            "notebook": notebook,
            "profile": profile_dict(prof),
            "git": git,
            "environment": environment_info(),
            "started": _now(),
        },
    )
    return RunContext(run_id, path, prof, out, notebook)
