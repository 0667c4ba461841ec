"""``lrkit pulse``: which generator, reading LR images, and writing every candidate with its record.

Generators (``--generator``):

* ``stylegan1_ffhq``: PULSE's StyleGAN-1 FFHQ 1024 synthesis + mapping files from the weights registry
  (``lrkit weights fetch stylegan1_ffhq_synthesis`` / ``..._mapping`` online; offline one clear message), or given
  as files (``synthesis=`` / ``mapping=``, then unverified weights); the prior (mu, sigma) from PULSE's
  ``gaussian_fit.pt`` when given or in the weights folder (``pulse_gaussian_fit``), else fitted from the mapping network in streamed chunks and cached on disk keyed
  on the mapping file's sha256.
* ``progan:CKPT``: a ProGAN checkpoint trained by ``lrkit train progan`` (its EMA generator, full depth).

Outputs per candidate (LR image ``<stem>``, duplicate ``k``): ``<stem>_<k>.png`` (the output policy's image),
``<stem>_<k>_lr.png`` (its downscale with the search's downscaler), and when it did not get within eps also the
other policy's image (``<stem>_<k>_best.png`` or ``_last.png``), so nothing the search found is lost; one JSON line
per candidate in ``results.jsonl`` (appended: a second run into the same folder adds its lines).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrkit.data.lr_files import read_lr_images  # re-exported: lrkit pulse reads its --lr with it
from lrkit.data.ops import to_uint8
from lrkit.errors import UserError
from lrkit.fsutil import append_jsonl, atomic_open, cache_dir
from lrkit.methods.pulse.config import PulseConfig
from lrkit.methods.pulse.pulse import pulse_downscale
from lrkit.metrics.lr_consistency import lr_errors
from lrkit.search.engine import SearchResult

__all__ = ["load_generator", "read_lr_images", "write_outputs", "summary_line", "STYLEGAN_WEIGHTS"]

STYLEGAN_WEIGHTS = ("stylegan1_ffhq_synthesis", "stylegan1_ffhq_mapping")


def load_generator(spec: str, device: str = "cpu", *, synthesis: str | None = None, mapping: str | None = None,
                   gaussian_fit: str | None = None) -> tuple[object, dict]:
    """(latent generator, JSON-able record of which weights) for a ``--generator`` value."""
    if spec.startswith("progan:"):
        from lrkit.methods.progan.latent import load_progan
        from lrkit.fsutil import sha256_file

        path = Path(spec.split(":", 1)[1])
        if not path.is_file():
            raise UserError(f"--generator {spec}: no such checkpoint; train one with 'lrkit train progan --preset "
                            "NAME' and pass its checkpoints/latest.pt")
        gen = load_progan(path, device=device)
        return gen, {"generator": "progan", "checkpoint": str(path), "sha256": sha256_file(path)}
    if spec == "stylegan1_ffhq":
        return _load_stylegan(device, synthesis, mapping, gaussian_fit)
    raise UserError(f"unknown --generator {spec!r}; use stylegan1_ffhq (PULSE's) or progan:CKPT (an lrkit ProGAN)")


def _load_stylegan(device: str, synthesis: str | None, mapping: str | None, gaussian_fit: str | None):
    from lrkit import weights as W
    from lrkit.methods.stylegan1.official_files import load_stylegan1
    from lrkit.methods.stylegan1.prior import StyleGAN1LatentGenerator, fit_gaussian, load_gaussian_fit

    syn = W.resolve(STYLEGAN_WEIGHTS[0], synthesis)
    if gaussian_fit is None:  # PULSE's own fit when it is in the weights folder; else fitted from the mapping
        try:
            gaussian_fit = str(W.resolve("pulse_gaussian_fit").path)
        except W.WeightsUnavailable:
            pass
    need_mapping = gaussian_fit is None
    mp = W.resolve(STYLEGAN_WEIGHTS[1], mapping) if (need_mapping or mapping) else None
    map_net, syn_net = load_stylegan1(syn.path, mp.path if mp else None, device=device)
    record = {"generator": "stylegan1_ffhq", "synthesis": syn.label, "mapping": mp.label if mp else None}
    if gaussian_fit is not None:
        mu, sigma = load_gaussian_fit(gaussian_fit, device=device)
        record["gaussian_fit"] = str(gaussian_fit)
    else:
        cached = cache_dir("pulse") / f"gaussian_fit-{mp.sha256[:16]}.pt"
        if cached.is_file():
            mu, sigma = load_gaussian_fit(cached, device=device)
        else:
            mu, sigma = fit_gaussian(map_net, device=device)
            with atomic_open(cached, "wb") as fh:
                torch.save({"mean": mu.cpu(), "std": sigma.cpu()}, fh)
        record["gaussian_fit"] = f"fitted from the mapping network, 10^6 samples seed 0 (cached {cached})"
    return StyleGAN1LatentGenerator(map_net, syn_net, mu, sigma), record


def _png(path: Path, image: torch.Tensor) -> None:
    with atomic_open(path, "wb") as fh:
        Image.fromarray(to_uint8(image)).save(fh, format="PNG")


def write_outputs(result: SearchResult, lr_images: torch.Tensor, stems: list[str], out_dir: str | Path,
                  cfg: PulseConfig, record: dict) -> list[dict]:
    """Write every candidate's images and JSON line (module docstring); returns the records."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = result.output(cfg.output)
    main_err = result.output_error(cfg.output)
    other = "best" if cfg.output == "last" else "last"
    n, k = result.last_error.shape
    lr_size = lr_images.shape[-1]
    # The kit's LR error (grey levels, average pooling of the 8-bit output; lrkit.metrics.lr_consistency), the same
    # measure for every method of Fig. 7 whichever downscaler the search used.
    levels = lr_errors(main.flatten(0, 1), lr_images.repeat_interleave(k, 0), lr_size=lr_size).mean((1, 2, 3))
    records = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for i in range(n):
        for j in range(k):
            name = f"{stems[i]}_{j}"
            _png(out / f"{name}.png", main[i, j])
            _png(out / f"{name}_lr.png", pulse_downscale(main[i, j:j + 1], lr_size, cfg.downscale)[0])
            ok = bool(result.within_eps[i, j])
            if not ok:
                _png(out / f"{name}_{other}.png", result.output(other)[i, j])
            rec = {"time": stamp, "lr_input": stems[i], "duplicate": j, "file": f"{name}.png",
                   "seed": int(result.seeds[i, j]), "status": result.status[i][j], "success": ok,
                   "output": cfg.output, "l2": float(main_err[i, j]), "best_l2": float(result.best_error[i, j]),
                   "best_step": int(result.best_step[i, j]), "steps": int(result.steps_run[i, j]),
                   "eps": cfg.eps, "lr_error_levels": float(levels[i * k + j]), "downscale": cfg.downscale,
                   "seconds": result.seconds / (n * k), "weights": record}
            append_jsonl(out / "results.jsonl", rec)
            records.append(rec)
    return records


def summary_line(records: list[dict]) -> str:
    ok = sum(r["success"] for r in records)
    ms = 1000 * sum(r["seconds"] for r in records) / max(1, len(records))
    err = float(np.mean([r["lr_error_levels"] for r in records]))
    return f"{ok}/{len(records)} outputs within eps; mean LR error {err:.2f} grey levels; {ms:.0f} ms per output"

