"""The I2I-LR paper's Fig. 7: I2I-LR vs PULSE on the same LR targets, with a table of what the grid shows.

Layout (``lrkit.viz.pulse_comparison_grid``): the LR targets across the top; PULSE's K candidates for each (one
row per duplicate); I2I-LR's outputs for R HR references (the sources, left column); the real HR targets at the
bottom (seen by neither method). Targets and references are the first T and the next R images of I2I-LR's val set.

Which generator PULSE searches: StyleGAN-1 FFHQ 1024 (PULSE's own weights) under the ``paper`` profile on
CelebA-HQ when those weights are present -- PULSE then runs at 1024 px and its bicubic filter downscales by 128x
to the 8x8 targets (the paper's setting implies this; the notebook states it) -- else the profile's ProGAN
(``lrkit.methods.progan``; on synthfaces the kit's ProGAN trained on synthfaces, shipped for ``cpu``). PULSE's
outputs are shown (and scored for the reference distances) at I2I-LR's HR size.

The table, one row per method (all on the same device, in one process):

* ``lr_error_levels``: the kit's LR error (``lrkit.metrics.lr_consistency``: 8-bit output, average pooling, mean
  absolute difference in grey levels) against the same LR targets;
* ``within_eps``: fraction of outputs with PULSE's L2 (MSE in [0, 1] units, with the downscaler PULSE ran with)
  <= its eps; for I2I-LR the same L2 of its outputs;
* ``ref_dist_efflite0``: mean distance of EfficientNet-Lite0 features (an offline stand-in named so, not a face
  identity model) between each output and the reference it was given; PULSE has none, so its row is the mean
  distance to the same references I2I-LR was given (what "no reference" looks like);
* ``diversity_efflite0``: mean pairwise feature distance between the outputs for one target (PULSE: its
  duplicates; I2I-LR: its references), averaged over targets; ``diversity_lpips`` the same with LPIPS, or
  *unavailable* when its weights are missing (offline);
* ``ms_per_output``: wall milliseconds per output image (I2I-LR: one batched forward pass, after a warm-up; PULSE:
  its whole search divided by its outputs).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lrkit.data.ops import downscale, make_lr
from lrkit.methods.i2ilr.config import preset_for_profile as i2ilr_preset_for_profile
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.methods.i2ilr.task import ensure_trained as ensure_i2ilr, open_val_set
from lrkit.methods.progan.latent import load_progan
from lrkit.methods.progan.task import progan_plan
from lrkit.methods.pulse.config import PulseConfig
from lrkit.methods.pulse.pulse import pulse_downscale, run_pulse
from lrkit.metrics.lr_consistency import lr_errors
from lrkit.profiles import model_profile
from lrkit.viz import pulse_comparison_grid, show_grid

__all__ = ["fig7_pulse_comparison", "pulse_generator", "generator_report", "comparison_table", "I2ILR_PRESET", "PROGAN_PRESET"]

# The I2I-LR preset compared: the paper's CelebA-HQ 128 px model, and its synthfaces versions (32 px under smoke/cpu:
# the cpu model that works; the 64 px celebahq256_cpu keeps its LR targets with stripe patterns that ignore the
# source, measured 2026-12-03). PULSE's 64 px outputs are average-pooled to I2I-LR's size for the grid and the
# feature distances; the timing compares each at its own size (benchmarks/bench_pulse.py times both at 64 px).
I2ILR_PRESET = {"paper": "celebahq128"}
I2ILR_PRESET_SYNTH = "celebahq128"
PROGAN_PRESET = "sr_nam64"  # SR-NAM's ProGAN (lrkit.methods.progan.config), 64 px
# The figure: 5 LR targets (the paper shows one per column), 3 HR references for I2I-LR, 3 PULSE candidates each.
N_TARGETS, N_REFERENCES, DUPLICATES = 5, 3, 3


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    if x.shape[-1] % size == 0:
        return downscale(x, size)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def pulse_generator(ctx, *, dataset: str, device: str, progan_checkpoint: str = "", steps: int = 0,
                    data_root=None, progress: bool = True):
    """(latent generator, weights label, ProGAN checkpoint or None) for the run's profile (module docstring)."""
    from lrkit import weights as W
    from lrkit.methods.pulse.outputs import load_generator

    if progan_checkpoint:
        gen, rec = load_generator(f"progan:{progan_checkpoint}", device)
        return gen, f"ProGAN {rec['checkpoint']} (sha256 {rec['sha256'][:12]})", progan_checkpoint
    if ctx.profile.name == "paper" and dataset == "celeba_hq":
        try:
            gen, rec = load_generator("stylegan1_ffhq", device)
            return gen, f"StyleGAN-1 FFHQ 1024: {rec['synthesis']}; prior {rec['gaussian_fit']}", None
        except W.WeightsUnavailable as exc:
            ctx.record("note", text=f"PULSE's StyleGAN-1 weights unavailable, using the profile's ProGAN: {exc}")
    from lrkit.methods.progan.task import ensure_trained

    cfg, may_train = progan_plan(PROGAN_PRESET, ctx.profile, steps, data_root)
    ckpt = ensure_trained(cfg, Path(ctx.run_dir).parent, data_root=data_root, device=device, progress=progress,
                          train=may_train)
    ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
    return load_progan(ckpt, device=device), f"ProGAN {cfg.preset} ({Path(ckpt).name})", str(ckpt)


def _features(images: torch.Tensor, device: str) -> np.ndarray | None:
    from lrkit.metrics.efficientnet_fd import efflite0_features

    return efflite0_features(images, device=device)


def _mean_pair_dist(feats: np.ndarray) -> float:
    """Mean L2 distance over all unordered pairs of rows (NaN for fewer than 2 rows)."""
    pairs = list(itertools.combinations(range(len(feats)), 2))
    return float(np.mean([np.linalg.norm(feats[a] - feats[b]) for a, b in pairs])) if pairs else float("nan")


def _lpips_diversity(groups: list[torch.Tensor], device: str):
    from lrkit import weights as W
    from lrkit.metrics.lpips_metrics import lpips_distances

    try:
        vals = []
        for g in groups:
            pairs = list(itertools.combinations(range(len(g)), 2))
            a = torch.stack([g[i] for i, _ in pairs])
            b = torch.stack([g[j] for _, j in pairs])
            vals.append(float(lpips_distances(a, b, device=device).mean()))
        return float(np.mean(vals))
    except W.WeightsUnavailable:
        return "unavailable"


def comparison_table(*, targets_lr: torch.Tensor, references: torch.Tensor, ours: torch.Tensor, pulse: torch.Tensor,
                     pulse_l2: torch.Tensor, pulse_cfg: PulseConfig, ms: dict[str, float], device: str,
                     lpips: bool = True) -> pd.DataFrame:
    """The Fig. 7 table (module docstring). ``ours`` [R, T, 3, H, H] and ``pulse`` [K, T, 3, S, S] (PULSE's own
    size S), ``pulse_l2`` [T, K] the search's L2 of the output images."""
    R, T = ours.shape[:2]
    K = pulse.shape[0]
    H = ours.shape[-1]
    lr_size = targets_lr.shape[-1]
    rows = {}
    ours_flat = ours.reshape(R * T, *ours.shape[2:])
    tgt_ours = targets_lr.repeat(R, 1, 1, 1)  # row r * T + t -> target t
    ours_l2 = ((pulse_downscale(ours_flat, lr_size, pulse_cfg.downscale) - tgt_ours) / 2).pow(2).mean((1, 2, 3))
    pulse_flat = pulse.reshape(K * T, *pulse.shape[2:])
    tgt_pulse = targets_lr.repeat(K, 1, 1, 1)
    pulse_small = _resize(pulse_flat, H)  # at I2I-LR's size for the feature distances
    f_ref = _features(references, device)  # [R, 1280]
    f_ours = _features(ours_flat, device).reshape(R, T, -1)
    f_pulse = _features(pulse_small, device).reshape(K, T, -1)
    rows["I2I-LR"] = {
        "lr_error_levels": float(lr_errors(ours_flat, tgt_ours, lr_size=lr_size).mean()),
        "within_eps": float((ours_l2 <= pulse_cfg.eps).double().mean()),
        "ref_dist_efflite0": float(np.mean([np.linalg.norm(f_ours[r, t] - f_ref[r]) for r in range(R)
                                            for t in range(T)])),
        "diversity_efflite0": float(np.mean([_mean_pair_dist(f_ours[:, t]) for t in range(T)])),
        "diversity_lpips": _lpips_diversity([ours[:, t] for t in range(T)], device) if lpips else "not run",
        "ms_per_output": ms["I2I-LR"], "outputs": R * T,
    }
    rows["PULSE"] = {
        "lr_error_levels": float(lr_errors(pulse_flat, tgt_pulse, lr_size=lr_size).mean()),
        "within_eps": float((pulse_l2 <= pulse_cfg.eps).double().mean()),
        "ref_dist_efflite0": float(np.mean([np.linalg.norm(f_pulse[k, t] - f_ref[r]) for r in range(R)
                                            for k in range(K) for t in range(T)])),
        "diversity_efflite0": float(np.mean([_mean_pair_dist(f_pulse[:, t]) for t in range(T)])),
        "diversity_lpips": _lpips_diversity([pulse_small[t::T] for t in range(T)], device) if lpips else "not run",
        "ms_per_output": ms["PULSE"], "outputs": K * T,
    }
    df = pd.DataFrame(rows).T
    df.index.name = "method"
    return df


def fig7_pulse_comparison(ctx, *, data_root=None, device: str = "cpu", n_targets: int = 0, n_references: int = 0,
                          duplicates: int = 0, pulse_steps: int = 100, pulse_downscale_mode: str = "avgpool",
                          steps: int = 0, checkpoints: dict | None = None, progan_checkpoint: str = "",
                          lpips: bool = True, progress: bool = True):
    """Draw and save Fig. 7 (``i2ilr_fig7_pulse``) and its table (``i2ilr_fig7_pulse_table``); returns
    ``(figure, table)``. ``steps`` > 0: a miniature (the models trained that many steps here). Sizes 0: the
    figure's (``N_TARGETS``, ``N_REFERENCES``, ``DUPLICATES``)."""
    n_targets, n_references, duplicates = n_targets or N_TARGETS, n_references or N_REFERENCES, duplicates or DUPLICATES
    mprof, may_train = model_profile(ctx.profile, steps)
    name = I2ILR_PRESET.get(ctx.profile.name, I2ILR_PRESET_SYNTH)
    given = (checkpoints or {}).get(name)
    cfg = i2ilr_preset_for_profile(name, ctx.profile.name if given else mprof, steps)
    ckpt = given or ensure_i2ilr(cfg, Path(ctx.run_dir).parent, data_root=data_root, device=device,
                                 progress=progress, train=may_train)
    ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
    model = load_i2ilr(ckpt, device=device, expect={"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})
    val = open_val_set(cfg, data_root, n=max(cfg.synth_n_val, n_targets + n_references))
    if len(val) < n_targets + n_references:
        raise ValueError(f"the val set {val.label} has {len(val)} images; Fig. 7 needs {n_targets + n_references}")
    data_label = ctx.record_dataset(val.name + "-val", val.fingerprint, n=len(val))
    imgs = val.pool.get(list(range(n_targets + n_references)))
    hr_targets, references = imgs[:n_targets], imgs[n_targets:]
    targets_lr = make_lr(hr_targets, cfg.lr_size)

    gen, gen_label, progan_ckpt = pulse_generator(ctx, dataset=cfg.dataset, device=device, progan_checkpoint=progan_checkpoint,
                                     steps=steps, data_root=data_root, progress=progress)
    pulse_cfg = PulseConfig(steps=pulse_steps, duplicates=duplicates, downscale=pulse_downscale_mode,
                            seed=ctx.profile.seed)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # warm-up: the first optimizer imports torch._dynamo
    res = run_pulse(gen, targets_lr, pulse_cfg, device=device)
    pulse = res.output(pulse_cfg.output).transpose(0, 1)  # [K, T, 3, S, S]

    R, T = n_references, n_targets
    src = references.repeat_interleave(T, 0)  # row r * T + t: reference r, target t
    tgt = targets_lr.repeat(R, 1, 1, 1)
    translate(model.G, src[:1], tgt[:1])  # warm-up pass (allocations) before timing
    t0 = time.perf_counter()
    ours = translate(model.G, src, tgt, batch_size=32).view(R, T, *references.shape[1:])
    ms = {"I2I-LR": 1000 * (time.perf_counter() - t0) / (R * T), "PULSE": res.ms_per_output}

    table = comparison_table(targets_lr=targets_lr, references=references, ours=ours, pulse=pulse,
                             pulse_l2=res.output_error(pulse_cfg.output), pulse_cfg=pulse_cfg, ms=ms, device=device,
                             lpips=lpips)
    H = references.shape[-1]
    grid = pulse_comparison_grid(targets_lr, _resize(pulse.flatten(0, 1), H).view(duplicates, T, 3, H, H),
                                 references, ours, hr_targets)
    weights = f"I2I-LR {cfg.preset} ({model.label}); PULSE on {gen_label}"
    size_note = (f"PULSE searched at {gen.output_size} px ({pulse_cfg.steps} steps, eps {pulse_cfg.eps}, "
                 f"downscaler {pulse_cfg.downscale}: {gen.output_size // cfg.lr_size}x to the {cfg.lr_size}x"
                 f"{cfg.lr_size} targets, made by average pooling as the I2I-LR data), shown at {H} px")
    title = (f"Fig. 7 layout: {cfg.lr_size}x{cfg.lr_size} LR targets on top; PULSE's {duplicates} candidates; "
             f"I2I-LR given each HR reference (left); real HR at the bottom (seen by neither). {size_note}")
    fig = show_grid(grid, title)
    ctx.save_figure(fig, "i2ilr_fig7_pulse", title="I2I-LR Fig. 7: I2I-LR vs PULSE", dataset=data_label,
                    weights=weights, device=device, notes=size_note)
    ctx.save_table(table.reset_index(), "i2ilr_fig7_pulse_table", title="I2I-LR Fig. 7: I2I-LR vs PULSE, measured",
                   dataset=data_label, weights=weights, device=device,
                   notes=(f"{size_note}. ms_per_output on {ctx.device_name}, same process. ref_dist and diversity "
                          "use EfficientNet-Lite0 features (an offline stand-in, not a face-identity model); "
                          "PULSE has no reference: its ref_dist is to the references I2I-LR was given."))
    if progan_ckpt is not None:
        generator_report(ctx, progan_ckpt, device=device, data_root=data_root)
    return fig, table


def generator_report(ctx, checkpoint: str, *, device: str = "cpu", data_root=None):
    """The ProGAN PULSE searched: a sample grid (``progan_samples``) and its offline FD next to an untrained
    generator's and real vs real (``progan_check``), on the profile's ``eval_real`` images (0: up to 1,000)."""
    from torchvision.utils import make_grid

    from lrkit.methods.progan.evaluation import generator_check

    gen = load_progan(checkpoint, device=device)
    # generator_check caps n at half the training set (one pass over the data, not two).
    table, samples = generator_check(checkpoint, n=ctx.profile.eval_real or 1000, device=device, data_root=data_root)
    n = int(table["n"].iloc[0])
    from lrkit.fsutil import sha256_file

    label = f"ProGAN {gen.config.preset} step {gen.step} ({Path(checkpoint).name}, sha256 {sha256_file(checkpoint)[:12]})"
    fig = show_grid(make_grid(samples[:32], nrow=8, padding=2, pad_value=1.0),
                    f"{label}: 32 samples (EMA generator, z ~ N(0, I) seed 0)")
    dataset = f"{gen.config.dataset} train (first {n} and next {n})"
    ctx.save_figure(fig, "progan_samples", title="ProGAN (PULSE's generator here): samples", dataset=dataset,
                    weights=label, device=device)
    ctx.save_table(table, "progan_check", title="ProGAN: Fréchet distance (EfficientNet-Lite0) to its training images",
                   dataset=dataset, weights=label, device=device,
                   notes="fd_efficientnet_lite0 is an offline stand-in, not FID; small sets: singular covariances")
    return table
