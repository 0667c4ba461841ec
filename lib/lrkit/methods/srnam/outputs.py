"""``lrkit srnam``'s files: load the two trained networks, run the search, write every candidate.

Per LR input ``<stem>`` and start ``k``: ``<stem>_<k>.png`` (the HR candidate, 64 px), ``<stem>_<k>_lr.png`` (that
candidate degraded again by the degradation net with the noise it was searched with, 16 px), one JSON line in
``results.jsonl`` (L1 of the re-degraded image to the input in grey levels, for the kept and the best step, the
seed, steps) and ``grid.png``: per input a row of the input LR, then each candidate's HR and re-degraded LR
(LR images nearest-upsampled to 64 px). Nothing already in the folder is overwritten except these names.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from lrkit.data.ops import to_uint8
from lrkit.fsutil import append_jsonl, atomic_open, sha256_file
from lrkit.methods.srnam.nets import DegradationGenerator
from lrkit.methods.srnam.search import GREY_LEVELS, SrnamProblem, SrnamSearchConfig
from lrkit.search.engine import SearchResult

__all__ = ["load_degradation", "redegrade", "candidate_grid", "write_outputs", "summary_line"]


def load_degradation(checkpoint_path: str | Path, device: str = "cpu", ema: bool = True) -> DegradationGenerator:
    """The degradation generator of an ``lrkit train degradation`` checkpoint (``G_ema`` by default), frozen, in
    eval mode; ``.config``, ``.step``, ``.path``, ``.sha256`` and ``.perceptual`` (the run's note) for reports."""
    from lrkit.cpu import configure_cpu
    from lrkit.methods.srnam.config import DegradationConfig
    from lrkit.methods.srnam.task import TASK
    from lrkit.train.checkpoint import load_checkpoint

    path = Path(checkpoint_path)
    ckpt = load_checkpoint(path, task=TASK)
    cfg = DegradationConfig.from_dict(ckpt["config"])
    key = "G_ema" if ema else "G"
    if key not in ckpt["modules"]:
        raise ValueError(f"{path} has no {key!r} weights (it holds {sorted(ckpt['modules'])})")
    with torch.random.fork_rng(devices=[]):
        G = DegradationGenerator(cfg.width, cfg.noise_dim)
    G.load_state_dict(ckpt["modules"][key])
    configure_cpu(device)
    G = G.to(device).eval().requires_grad_(False)
    G.config, G.step, G.path, G.sha256 = cfg, int(ckpt["step"]), str(path), sha256_file(path)
    G.perceptual = ckpt.get("extra", {}).get("perceptual", "")
    return G


@torch.no_grad()
def redegrade(result: SearchResult, generator, degradation, cfg: SrnamSearchConfig, policy: str = "last",
              device: str = "cpu") -> torch.Tensor:
    """[N, K, 3, 16, 16]: each kept candidate degraded again with the noise its search used (drawn again from its
    seed exactly as the search drew it)."""
    problem = SrnamProblem(generator, degradation, cfg)
    seeds = result.seeds.flatten().tolist()
    _, fixed = problem.init([torch.Generator().manual_seed(int(s)) for s in seeds], torch.device(device))
    hr = result.output(policy).flatten(0, 1).to(device)
    lr = degradation(hr, fixed["deg_noise"]).clamp(-1, 1).cpu()
    return lr.reshape(*result.seeds.shape, *lr.shape[1:])


def _png(path: Path, image: torch.Tensor) -> None:
    with atomic_open(path, "wb") as fh:
        Image.fromarray(to_uint8(image)).save(fh, format="PNG")


def candidate_grid(lr_images: torch.Tensor, hr: torch.Tensor, redegraded: torch.Tensor,
                   truth: torch.Tensor | None = None, pad: int = 2) -> torch.Tensor:
    """One grid [3, H, W]: per input a row of the input LR, then each candidate's HR and re-degraded LR (LR images
    nearest-upsampled to the HR size), then the true HR when given. ``lr_images`` [N, 3, 16, 16], ``hr``
    [N, K, 3, S, S], ``redegraded`` [N, K, 3, 16, 16], ``truth`` [N, 3, S, S]."""
    from torchvision.utils import make_grid

    n, k = hr.shape[:2]
    size = hr.shape[-2:]
    up = torch.nn.functional.interpolate
    cells = []
    for i in range(n):
        cells.append(up(lr_images[i:i + 1], size=size, mode="nearest")[0])
        for j in range(k):
            cells += [hr[i, j], up(redegraded[i, j][None], size=size, mode="nearest")[0]]
        if truth is not None:
            cells.append(truth[i])
    ncol = 1 + 2 * k + (truth is not None)
    return make_grid(torch.stack(cells).clamp(-1, 1), nrow=ncol, padding=pad, pad_value=1.0)


def write_outputs(result: SearchResult, lr_images: torch.Tensor, redegraded: torch.Tensor, stems: list[str],
                  out_dir: str | Path, cfg: SrnamSearchConfig, record: dict, policy: str = "last") -> list[dict]:
    """Every candidate's files and JSON line (module docstring); returns the records."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hr = result.output(policy)
    n, k = result.seeds.shape
    records = []
    for i, stem in enumerate(stems):
        for j in range(k):
            _png(out / f"{stem}_{j}.png", hr[i, j])
            _png(out / f"{stem}_{j}_lr.png", redegraded[i, j])
            l1 = float((redegraded[i, j] - lr_images[i]).abs().mean()) * GREY_LEVELS
            rec = {"input": stem, "k": j, "seed": int(result.seeds[i, j]), "output": policy,
                   "l1_levels": l1, "search_l1_levels": float(result.output_error(policy)[i, j]) * GREY_LEVELS,
                   "best_l1_levels": float(result.best_error[i, j]) * GREY_LEVELS,
                   "best_step": int(result.best_step[i, j]), "steps": int(result.steps_run[i, j]),
                   "noise": cfg.noise, "seconds_per_candidate": result.seconds / max(1, n * k), **record}
            append_jsonl(out / "results.jsonl", rec)
            records.append(rec)
    _png(out / "grid.png", candidate_grid(lr_images, hr, redegraded))
    return records


def summary_line(records: list[dict]) -> str:
    import numpy as np

    l1 = [r["l1_levels"] for r in records]
    inputs = len({r["input"] for r in records})
    return (f"SR-NAM: {inputs} input(s) x {len(records) // max(1, inputs)} candidate(s); re-degraded L1 to the input "
            f"{np.mean(l1):.2f} grey levels on average (min {np.min(l1):.2f}, max {np.max(l1):.2f})")
