"""SR-NAM's landmark table: the metric the paper proposes (eq. 7) and never computed, per method.

Methods, all on the same "real" LR inputs [N, 3, 16, 16] and scored against their true HR images:

* ``SR-NAM``: its K candidates (the search through the degradation net, ``lrkit.methods.srnam.search``);
* ``PULSE (same ProGAN)``: PULSE's search (``lrkit.methods.pulse``) on the same ProGAN with K duplicates, the
  profile's steps, bicubic downscaling (PULSE's own: it assumes the LR image is a bicubic downscale);
* ``bicubic``: the LR image upscaled 4x (one output per input; no diversity).

Columns (each a named protocol; means over every output):

* ``landmark_fan``: eq. 7 on the FAN's own 98 heatmaps (``lrkit.metrics.landmarks_fan``; StarGAN v2's ``wing``
  weights), *unavailable* without them; ``landmark_dlib``: eq. 7 with dlib's 68 landmarks rendered as Gaussians
  (``lrkit.metrics.landmarks``, an offline stand-in named so; upsample 2 for 64 px faces), with
  ``landmark_dlib_pairs`` (pairs with a face found in both images / all pairs);
* ``lr_l1_deg_levels``: |Deg(output) - input| in grey levels through the degradation GAN, every method's k-th
  output given the noise SR-NAM's k-th start used (SR-NAM's own objective); ``lr_l1_bicubic_levels``: the same
  with a bicubic 4x downscale instead (PULSE's objective);
* ``hr_l1_levels``: |output - true HR| in grey levels;
* ``diversity_efflite0``: mean pairwise distance of EfficientNet-Lite0 features among one input's K outputs (an
  offline stand-in, not a face-identity model), averaged over inputs; ``diversity_lpips``: StarGAN v2's LPIPS
  diversity protocol, *unavailable* without the LPIPS weights;
* synthfaces only: ``identity_fine_agreement`` / ``faithful_coarse_agreement``: the factor probes
  (``lrkit.metrics.factor_probes``) reading the outputs, scored against the true HR image's factors;
* ``ms_per_output``: wall milliseconds per output on this device (same process).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lrkit import weights as W
from lrkit.methods.pulse.config import PulseConfig
from lrkit.methods.pulse.pulse import run_pulse
from lrkit.methods.srnam.nets import HR_SIZE, LR_SIZE
from lrkit.methods.srnam.search import GREY_LEVELS, SrnamProblem, SrnamSearchConfig

__all__ = ["landmark_table", "method_scores", "DLIB_UPSAMPLE"]

DLIB_UPSAMPLE = 2  # dlib's detector needs ~80 px faces: doubling twice finds most 64 px synthfaces faces (7/8)


@torch.no_grad()
def _degrade_like_search(models, outputs: torch.Tensor, seeds: torch.Tensor, device: str) -> torch.Tensor:
    """[N, k, 3, 16, 16]: outputs [N, k, 3, 64, 64] through the degradation net with the noise SR-NAM's search drew
    for (input, start) from ``seeds`` [N, >= k]."""
    n, k = outputs.shape[:2]
    problem = SrnamProblem(models.gen, models.deg, SrnamSearchConfig())
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds[:, :k].flatten().tolist()]
    _, fixed = problem.init(gens, torch.device(device))
    lr = models.deg(outputs.flatten(0, 1).to(device), fixed["deg_noise"]).clamp(-1, 1).cpu()
    return lr.reshape(n, k, *lr.shape[1:])


def _diversity_efflite0(outputs: torch.Tensor, device: str) -> float:
    from lrkit.metrics.efficientnet_fd import efflite0_features

    n, k = outputs.shape[:2]
    if k < 2:
        return float("nan")
    f = torch.as_tensor(efflite0_features(outputs.flatten(0, 1), device=device)).double().view(n, k, -1)
    return float(np.mean([float(torch.pdist(f[i]).mean()) for i in range(n)]))


def _or_unavailable(fn):
    try:
        return fn()
    except W.WeightsUnavailable:
        return "unavailable"


def method_scores(models, outputs: torch.Tensor, lr: torch.Tensor, truth: torch.Tensor | None, seeds: torch.Tensor,
                  *, factors: dict | None = None, variant: str | None = None, fan_weights=None,
                  device: str = "cpu") -> dict:
    """One row of the table (module docstring) for ``outputs`` [N, k, 3, 64, 64] of inputs ``lr`` [N, 3, 16, 16]
    with true HR ``truth`` [N, 3, 64, 64] (None: a real LR folder, the truth columns are "no ground truth")."""
    from lrkit.metrics.landmarks import landmark_heatmap
    from lrkit.metrics.landmarks_fan import landmark_heatmap_fan
    from lrkit.metrics.lpips_metrics import lpips_diversity

    n, k = outputs.shape[:2]
    flat = outputs.flatten(0, 1)
    lr_k = lr[:, None].expand(n, k, *lr.shape[1:])
    deg_lr = _degrade_like_search(models, outputs, seeds, device)
    bic_lr = F.interpolate(flat, size=(LR_SIZE, LR_SIZE), mode="bicubic", align_corners=False,
                           antialias=True).clamp(-1, 1).view(n, k, *lr.shape[1:])
    row = {"lr_l1_deg_levels": float((deg_lr - lr_k).abs().mean()) * GREY_LEVELS,
           "lr_l1_bicubic_levels": float((bic_lr - lr_k).abs().mean()) * GREY_LEVELS,
           "diversity_efflite0": _diversity_efflite0(outputs, device) if k > 1 else "n/a (one output)",
           "diversity_lpips": (_or_unavailable(lambda: lpips_diversity(outputs, device=device)["lpips_diversity"])
                               if k > 1 else "n/a (one output)")}
    if truth is None:
        row.update({c: "no ground truth" for c in ("landmark_fan", "landmark_dlib", "hr_l1_levels")})
        return row
    ref = truth.repeat_interleave(k, 0)  # row i * k + j -> truth i
    row["hr_l1_levels"] = float((flat - ref).abs().mean()) * GREY_LEVELS
    row["landmark_fan"] = _or_unavailable(
        lambda: landmark_heatmap_fan(flat, ref, weights=fan_weights, device=device)["landmark_heatmap_fan"])
    dl = landmark_heatmap(flat, ref, upsample=DLIB_UPSAMPLE)
    row["landmark_dlib"] = dl["landmark_heatmap"]
    row["landmark_dlib_pairs"] = f"{dl['n_pairs_used']}/{dl['n_pairs']}"
    if factors is not None:
        from lrkit.metrics.factor_probes import synthfaces_factors

        f = {name: np.repeat(np.asarray(v)[:n], k) for name, v in factors.items()}
        probe = synthfaces_factors(flat, f, f, variant=variant, size=HR_SIZE, device=device)
        row["identity_fine_agreement"] = probe["identity_fine_agreement"]
        row["faithful_coarse_agreement"] = probe["faithful_coarse_agreement"]
        row["chance_fine"] = probe["chance_fine"]
    return row


def landmark_table(models, lr: torch.Tensor, truth: torch.Tensor | None, result, *, val, ctx, steps: int,
                   device: str = "cpu", fan_weights=None, extra: dict | None = None,
                   srnam_label: str = "SR-NAM") -> tuple[pd.DataFrame, str]:
    """(the table, its notes) for SR-NAM's search ``result`` on ``lr`` (module docstring), in row ``srnam_label``;
    ``extra``: more SR-NAM searches on the same inputs, row name -> SearchResult (e.g. the paper's learning rate);
    PULSE (``steps``, as SR-NAM's search) and bicubic are run here on the same inputs."""
    k = result.seeds.shape[1]
    factors = val.factors if (truth is not None and val.factors is not None) else None
    kw = dict(factors=factors, variant=val.variant, fan_weights=fan_weights, device=device)
    pulse_cfg = PulseConfig(steps=steps, duplicates=k, downscale="bicubic", seed=ctx.profile.seed)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # warm-up: the first optimizer imports torch._dynamo
    pulse = run_pulse(models.gen, lr, pulse_cfg, device=device)
    t0 = time.perf_counter()
    bicubic = F.interpolate(lr, size=(HR_SIZE, HR_SIZE), mode="bicubic", align_corners=False).clamp(-1, 1)[:, None]
    bicubic_ms = 1000 * (time.perf_counter() - t0) / len(lr)
    rows = {}
    runs = [(srnam_label, result.output("last"), result.ms_per_output)]
    runs += [(name, res.output("last"), res.ms_per_output) for name, res in (extra or {}).items()]
    runs += [("PULSE (same ProGAN)", pulse.output(pulse_cfg.output), pulse.ms_per_output),
             ("bicubic", bicubic, bicubic_ms)]
    for name, outputs, ms in runs:
        rows[name] = {**method_scores(models, outputs, lr, truth, result.seeds, **kw), "ms_per_output": ms,
                      "outputs": int(outputs.shape[0] * outputs.shape[1])}
    df = pd.DataFrame(rows).T
    df.index.name = "method"
    notes = (f"{len(lr)} inputs; SR-NAM and PULSE: {k} outputs each, {steps} steps; landmark_fan: "
             "eq. 7 on the FAN's 98 heatmaps (StarGAN v2's wing weights; unavailable without them); landmark_dlib: "
             f"eq. 7 with dlib's 68 landmarks (an offline stand-in; upsample {DLIB_UPSAMPLE}), lower is better; "
             "lr_l1_deg: through the degradation GAN (SR-NAM's objective), lr_l1_bicubic: bicubic 4x downscale "
             "(PULSE's); diversity_efflite0: EfficientNet-Lite0 features (an offline stand-in); "
             f"ms_per_output on {ctx.device_name}")
    return df, notes
