"""The degradation GAN's distance to the known degradation as training went on (issue 13's proof on the cpu profile).

Scores every snapshot ``checkpoints/step_*.pt`` of one ``srnam_degradation`` training run (train it with snapshots
kept, e.g. ``lrkit train degradation --preset srnam_deg_cpu --keep-checkpoints 10``) with
``lrkit.methods.srnam.evaluation.degradation_curve`` and saves the table ``srnam_degradation_curve`` (CSV, Markdown,
JSON, with provenance) under ``paper_tables/<profile>/`` of a new run::

    .venv/bin/python benchmarks/srnam_degradation_curve.py RUN_DIR [--n 500] [--profile cpu]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from lrkit.methods.srnam.evaluation import degradation_curve
from lrkit.runs.context import open_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="an lrkit train degradation run folder (with checkpoints/step_*.pt)")
    ap.add_argument("--n", type=int, default=500, help="val HR images scored (and as many others for the floor)")
    ap.add_argument("--profile", default="cpu", help="the profile folder the table goes to")
    ap.add_argument("--output-root", default="", help="where paper_tables/ lives (default: the checkout)")
    args = ap.parse_args()
    snaps = sorted(p for p in (args.run_dir / "checkpoints").glob("step_*.pt") if re.match(r"step_\d+\.pt$", p.name))
    if not snaps:
        raise SystemExit(f"{args.run_dir}/checkpoints has no step_*.pt snapshots: train with --keep-checkpoints N")
    rows = degradation_curve(snaps, n=args.n)
    ctx = open_run("", args.profile, notebook="benchmarks/srnam_degradation_curve", output_root=args.output_root)
    df = pd.DataFrame(rows)
    df["checkpoint"] = df["checkpoint"].map(lambda p: Path(p).name if p else "")
    print(df.to_string(index=False))
    ctx.save_table(df, "srnam_degradation_curve", title="SR-NAM: degradation GAN vs the known degradation, by step",
                   dataset=f"synthfaces-faces val (first {args.n} and next {args.n}), synthlr-v1",
                   weights=f"snapshots of {args.run_dir.name}", device="cpu",
                   notes="swd_patch7 x 1e3 of G_ema's LR (one noise draw per image) to the true process on the same "
                         "HR images; step 0 is the same net untrained; the last two rows are references")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
