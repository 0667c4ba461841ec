"""A run folder as `lrkit reproduce` leaves it, without executing notebooks (report and browser tests)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lrkit.runs import artifacts  # noqa: E402


def _fig(k: int):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, k])
    return fig


def reproduce_like_run(tmp_path, run_id: str, fid: float, profile: str = "smoke"):
    """A run folder as `lrkit reproduce` leaves it: notebooks of the registry wrote artifacts in batch order."""
    from lrkit.evaluation.paper_compare import with_paper
    from lrkit.runs.context import RunContext
    from lrkit.profiles import get_profile
    from lrkit.runs.reproduce import _fold_events

    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    prof = get_profile(profile)
    # the batch writes the data overview first and Table 1 later: the report must still show Table 1 first
    over = RunContext(run_id, run_dir, prof, tmp_path, "00_data_overview")
    over.save_figure(_fig(2), "data_synthfaces_faces", title="Data overview figure", dataset="d")
    t1 = RunContext(run_id, run_dir, prof, tmp_path, "table1_celebahq_fid_lpips")
    t1.save_table(with_paper({"Ours": {"FID@128": fid, "LR error (grey levels)@128": 0.05}}, "i2ilr_table1"),
                  "table1_celebahq_fid_lpips", title="I2I-LR Table 1 here", dataset="d", reference="i2ilr_table1")
    manifest = {"run_id": run_id, "kind": "reproduce", "profile": {"name": profile, "description": "x"},
                "git": {"commit": "c" * 40, "short": "ccccccc", "dirty": False},
                "environment": {"device_name": "cpu-test", "packages": {"torch": "2"}}, "started": "s", "ended": "e",
                "output_root": str(tmp_path), "overrides": {"steps": 2},
                "notebooks": {"00_data_overview": {"status": "ok", "html": "notebooks/00_data_overview.html"},
                              "table1_celebahq_fid_lpips": {"status": "ok"},
                              "fig5_grid": {"status": "failed", "error": "RuntimeError: no model",
                                            "log": "logs/fig5_grid.log"}}}
    manifest.update(_fold_events(run_dir))
    manifest["artifacts"] = artifacts.run_artifacts(tmp_path, run_id)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir, manifest
