"""The I2I-LR training study: why a small-scale G ignores its source, measured arm by arm (issue: the `cpu` profile).

An *arm* is one training setting: a base config (32 px synthfaces faces, LR 8, small widths, the paper's recipe)
plus named overrides with a one-line why. Every arm is trained through the model cache (``ensure_trained``: reused
when its config and data are unchanged) and diagnosed on the val split with the kit's own measurements:

* LR consistency (``lr_consistency``): mean error in grey levels and the share of outputs within eps = 2;
* source dependence (:func:`source_dependence`): how much the outputs for one LR target vary with the source,
  as a share of how much those sources themselves vary (0: the source is ignored, G is an up-sampler);
* factor identity / faithfulness on synthfaces (``synthfaces_factors``) and chance;
* the loss balance at the end of training (``losses.jsonl``, mean of the last tenth): D's real and fake logits
  (saturation), G's adversarial loss vs ``lambda_cyc`` x cycle L1, R1.

``train_arms`` trains arms in parallel processes (one thread each: at these sizes two 1-thread trainings do more
work per second on 2 cores than one 2-thread training). The notebook ``i2ilr_training_study`` shows the table, the
curves side by side and one sample grid per arm.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrkit.fsutil import read_jsonl
from lrkit.methods.i2ilr.config import I2ILRConfig, get_preset

__all__ = ["Arm", "ARMS", "STUDY_BASE", "STUDY_BASES", "study_base", "arms_table", "arm_config", "train_arms",
           "source_dependence", "loss_balance", "diagnose", "study_table", "curves_figure", "grids_figure", "run_study"]

# Per profile. cpu: the setting where G was seen to ignore the source (32 px faces, 1,000 train images, widths
# 16/64, batch 8, EMA 0.99, the paper's recipe); 1,500 steps, ~11 minutes on one core. smoke: the same study in
# CI seconds (tiny widths, 20 steps: plumbing, not evidence).
STUDY_BASES: dict[str, I2ILRConfig] = {
    "cpu": get_preset("celebahq128_smoke").with_overrides(
        preset="study", g_base=16, g_max=64, d_base=16, d_max=64, synth_n_train=1000, synth_n_val=200,
        batch_size=8, ema_beta=0.99, steps=1500, checkpoint_every=500, sample_every=500),
    "smoke": get_preset("celebahq128_smoke").with_overrides(
        preset="study_smoke", synth_n_train=64, synth_n_val=32, steps=20, checkpoint_every=20, sample_every=0),
}
STUDY_BASE = STUDY_BASES["cpu"]


def study_base(profile: str) -> I2ILRConfig:
    try:
        return STUDY_BASES[profile]
    except KeyError:
        raise ValueError(f"the I2I-LR training study runs under the profiles {tuple(STUDY_BASES)} (a CPU study), "
                         f"not {profile!r}") from None


@dataclass(frozen=True)
class Arm:
    name: str
    why: str  # the hypothesis the arm tests, one line
    overrides: tuple[tuple[str, object], ...] = ()


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("paper", "the paper's recipe at small scale (the setting where G was seen to ignore the source)"),
    Arm("public_code", "the public training script's loop and nets whole (recipe='public_code')",
        (("recipe", "public_code"),)),
    Arm("cyc10", "the cycle term weighs too little next to a saturated adversarial term: lambda_cyc 10",
        (("lambda_cyc", 10.0),)),
    Arm("cyc10_lrd1e-3", "and D learns too fast (TTUR 4x): lambda_cyc 10 with lr_d = lr_g = 1e-3",
        (("lambda_cyc", 10.0), ("lr_d", 1e-3))),
    Arm("no_adv", "diagnostic: the cycle alone (no adversarial term): can this G carry the source at all?",
        (("lambda_adv", 0.0),)),
    Arm("projection", "the D separates fakes by the difference map alone: make DS(G) = LR by construction "
        "(generator.project_lr), so D must judge the image and the cycle keeps the source",
        (("lr_projection", "residual"),)),
    Arm("bounded", "the residual projection's output leaves [-1, 1] and the saved image's clamp breaks DS(G) = LR: "
        "also shrink each LR block's detail to stay in range (project_lr='bounded')",
        (("lr_projection", "bounded"),)),
    Arm("bounded_cyc10", "bounded, and the cycle (what keeps the source) weighs more: lambda_cyc 10",
        (("lr_projection", "bounded"), ("lambda_cyc", 10.0))),
    Arm("bounded_lrd1e-3", "bounded, and D (which still tells fakes apart by their artifacts) learns as fast as G",
        (("lr_projection", "bounded"), ("lr_d", 1e-3))),
    Arm("bounded_3k", "bounded, twice the steps (3,000): is the source still being learned at 1,500?",
        (("lr_projection", "bounded"), ("steps", 3000))),
    Arm("public_diff", "only the public code's difference map (4-level rounding, no division by r)",
        (("lr_diff", "public_code"),)),
    Arm("r1_10", "D saturates on the difference map: a stronger R1 (gamma 10 on the logits)",
        (("r1_gamma", 10.0),)),
)}


def arm_config(arm: Arm | str, base: I2ILRConfig = STUDY_BASE, steps: int = 0) -> I2ILRConfig:
    """The config of an arm: ``base`` with the arm's overrides, named ``study_<arm>`` (``steps`` > 0: instead of
    the base's)."""
    arm = ARMS[arm] if isinstance(arm, str) else arm
    cfg = base.with_overrides(preset=f"{base.preset}_{arm.name}", **dict(arm.overrides))
    return cfg.with_overrides(steps=int(steps)) if steps else cfg


def _train_one(cfg_dict: dict, runs_root: str, device: str) -> str:
    import torch

    from lrkit.methods.i2ilr.task import ensure_trained

    torch.set_num_threads(1)
    cfg = I2ILRConfig.from_dict(cfg_dict)
    return str(ensure_trained(cfg, runs_root, device=device, progress=False))


def train_arms(configs: list[I2ILRConfig], runs_root: str | Path, *, jobs: int = 2, device: str = "cpu"
               ) -> dict[str, Path]:
    """Train (or reuse / resume from the model cache) every config; ``jobs`` in parallel processes on the CPU.
    Returns preset -> checkpoint."""
    if jobs <= 1 or device != "cpu":
        return {c.preset: Path(_train_one(c.to_dict(), str(runs_root), device)) for c in configs}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futs = {c.preset: pool.submit(_train_one, c.to_dict(), str(runs_root), device) for c in configs}
        return {name: Path(f.result()) for name, f in futs.items()}


def source_dependence(ts, val) -> dict[str, float]:
    """How much a translation set's outputs for one LR target vary with the source (I2I-LR grouping: each group
    is one target with K sources), in 8-bit grey levels, and as a share of how much those K sources vary.

    ``output_variation``: mean over targets, pixels and channels of ``|o_k - mean_k o_k|``; ``source_variation``:
    the same of the K source images; ``source_dependence`` = their ratio (0: every output of a row is the same
    image whatever the source).
    """
    if ts.target_idx.ndim != 1:
        raise ValueError(f"{ts.method}: source_dependence needs groups of one target with several sources")
    out = ts.outputs.astype(np.float32)  # [T, K, H, W, 3]
    src = np.stack([np.asarray((val.pool.get(list(row)).numpy() + 1) * 127.5) for row in ts.source_idx])
    src = src.transpose(0, 1, 3, 4, 2)  # [T, K, 3, H, W] -> [T, K, H, W, 3]
    o_var = float(np.abs(out - out.mean(axis=1, keepdims=True)).mean())
    s_var = float(np.abs(src - src.mean(axis=1, keepdims=True)).mean())
    return {"output_variation": o_var, "source_variation": s_var, "source_dependence": o_var / max(s_var, 1e-8)}


def loss_balance(losses_jsonl: str | Path, tail: float = 0.1) -> dict[str, float]:
    """Mean of each logged value over the last ``tail`` of training (e.g. D's logits: saturation)."""
    rows = read_jsonl(losses_jsonl)
    if not rows:
        raise ValueError(f"{losses_jsonl} holds no loss records")
    last = rows[-max(1, int(len(rows) * tail)):]
    keys = [k for k in last[0] if k != "step" and isinstance(last[0][k], (int, float))]
    return {k: float(np.mean([r[k] for r in last])) for k in keys}


def diagnose(cfg: I2ILRConfig, checkpoint: str | Path, *, n_targets: int = 20, probes=None,
             device: str = "cpu") -> dict[str, float]:
    """The study's numbers for one trained arm (module docstring); G_ema on the val split, 10 sources a target."""
    from lrkit.methods.i2ilr.evaluation import evaluate_preset

    res = evaluate_preset(cfg, checkpoint, ["lr_consistency", "synthfaces_factors"], n_targets=n_targets,
                          device=device, probes=probes)
    out: dict[str, float] = {}
    for method, key in (("Ours", ""), ("Bicubic-upsampled LR target", "bicubic_")):
        for rec in res["records"][method]:
            v = rec["values"]
            if rec["metric"] == "lr_consistency":
                out[f"{key}lr_error"] = v["lr_error_mean"]
                out[f"{key}lr_within_eps_2"] = v["lr_within_eps_2"]
            else:
                out[f"{key}identity_fine"] = v["identity_fine_agreement"]
                out[f"{key}faithful_coarse"] = v["faithful_coarse_agreement"]
                out["identity_chance"] = v["chance_fine"]
        out.update({f"{key}{k}": v for k, v in source_dependence(res["sets"][method], res["val"]).items()})
    losses = Path(checkpoint).parent.parent / "losses.jsonl"
    bal = loss_balance(losses)
    out.update({f"end_{k}": bal[k] for k in ("d_real_logit", "d_fake_logit", "g_adv", "cyc", "r1", "lr_err_grey")
                if k in bal})
    out["end_cyc_weighted"] = cfg.lambda_cyc * bal.get("cyc", float("nan"))
    return out


def study_table(configs: list[I2ILRConfig], checkpoints: dict[str, Path], *, n_targets: int = 20,
                device: str = "cpu", base: I2ILRConfig = STUDY_BASE):
    """One row per arm (its diagnostics), plus the arm's overrides against the base as text."""
    import pandas as pd

    from lrkit.metrics.factor_probes import load_or_train_probes

    rows = {}
    probes = None
    for cfg in configs:
        if probes is None:
            probes = load_or_train_probes(cfg.synth_variant, cfg.hr_size, device=device)
        d = diagnose(cfg, checkpoints[cfg.preset], n_targets=n_targets, probes=probes, device=device)
        ref = dataclasses.asdict(base)
        changed = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "preset" and ref.get(k) != v}
        rows[cfg.preset] = {"changes": ", ".join(f"{k}={v}" for k, v in changed.items()) or "(base)", **d}
    return pd.DataFrame.from_dict(rows, orient="index")


CURVE_KEYS = ("d_real_logit", "d_fake_logit", "g_adv", "cyc", "lr_err_grey")


def curves_figure(checkpoints: dict[str, Path], keys: tuple[str, ...] = CURVE_KEYS, smooth: int = 25):
    """Training curves of every arm side by side: one panel per logged value, one line per arm (moving mean of
    ``smooth`` steps)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 2.8), squeeze=False)
    for name, ckpt in checkpoints.items():
        rows = read_jsonl(Path(ckpt).parent.parent / "losses.jsonl")
        steps = np.array([r["step"] for r in rows])
        w = max(1, min(smooth, len(rows)))  # a run shorter than the window: the mean of what there is
        for ax, k in zip(axes[0], keys):
            if k not in rows[0]:
                continue
            v = np.convolve([r[k] for r in rows], np.ones(w) / w, mode="valid")
            ax.plot(steps[w - 1:], v, lw=0.9, label=name.removeprefix("study_"))
            ax.set_title(k, fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def grids_figure(configs: list[I2ILRConfig], checkpoints: dict[str, Path], *, n: int = 4, device: str = "cpu"):
    """One Fig. 5-layout panel per arm (the same val sources and targets for every arm), stacked vertically."""
    import matplotlib.pyplot as plt

    from lrkit.methods.i2ilr.inference import load_i2ilr
    from lrkit.methods.i2ilr.task import open_val_set, sample_panel

    fig, axes = plt.subplots(len(configs), 1, figsize=(1.2 * (n + 2), 1.25 * (n + 1) * len(configs)),
                             squeeze=False)
    for ax, cfg in zip(axes[:, 0], configs):
        model = load_i2ilr(checkpoints[cfg.preset], device=device)
        imgs = open_val_set(cfg).pool.get(list(range(2 * n)))
        grid = sample_panel(model.G, imgs[:n], imgs[n:], cfg.lr_size)  # [3, H, W] in [-1, 1]
        ax.imshow(((grid.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1), interpolation="nearest")
        ax.set_title(f"{cfg.preset.removeprefix('study_')} ({model.label})", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def arms_table(arms: list[str]):
    """The arms a study runs: name, hypothesis, overrides (a notebook shows it before training)."""
    import pandas as pd

    return pd.DataFrame({"why": [ARMS[a].why for a in arms],
                         "overrides": [", ".join(f"{k}={v}" for k, v in ARMS[a].overrides) or "(base)"
                                       for a in arms]}, index=list(arms))


def run_study(ctx, arms: list[str], *, steps: int = 0, n_targets: int = 20, jobs: int = 2, device: str = "cpu"):
    """Train every arm (model cache) on the run profile's study base, diagnose it, and save the study's table,
    curves and grids into the run. Returns ``(table, curves figure, grids figure)``."""
    base = study_base(ctx.profile.name)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown study arm(s) {unknown}; known: {', '.join(ARMS)}")
    configs = [arm_config(a, base, steps=steps) for a in arms]
    runs_root = Path(ctx.run_dir).parent
    ckpts = train_arms(configs, runs_root, jobs=jobs, device=device)
    for cfg in configs:
        ctx.record("model", preset=cfg.preset, checkpoint=str(ckpts[cfg.preset]))
    table = study_table(configs, ckpts, n_targets=n_targets, device=device, base=base)
    from lrkit.methods.i2ilr.task import open_training_set

    train = open_training_set(configs[0])
    data = ctx.record_dataset(train.name + "-train", train.fingerprint, n=len(train))
    whys = "; ".join(f"{a}: {ARMS[a].why}" for a in arms)
    ctx.save_table(table, "i2ilr_training_study", title="I2I-LR training study (G_ema on the val split)",
                   dataset=data, weights=", ".join(f"{k}@{Path(v).name}" for k, v in ckpts.items()), device=device,
                   notes=f"Base: {base.preset} at {base.hr_size} px, LR {base.lr_size}, widths G "
                         f"{base.g_base}/{base.g_max} D {base.d_base}/{base.d_max}, "
                         f"{'/'.join(str(n) for n in sorted({c.steps for c in configs}))} steps, batch "
                         f"{base.batch_size}, EMA {base.ema_beta}; {n_targets} val targets x 10 "
                         f"sources. Arms: {whys}.")
    curves = curves_figure(ckpts)
    ctx.save_figure(curves, "i2ilr_training_study_curves", title="I2I-LR training study: curves per arm",
                    dataset=data, device=device)
    grids = grids_figure(configs, ckpts, device=device)
    ctx.save_figure(grids, "i2ilr_training_study_grids", title="I2I-LR training study: one grid per arm (G_ema)",
                    dataset=data, device=device)
    return table, curves, grids
