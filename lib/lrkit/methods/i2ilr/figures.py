"""The I2I-LR paper's Figs 5, 6 and 8 as data (one ``FigureSpec`` each) and the functions that draw them.

* Fig. 5 / Fig. 8 (``grid``): HR sources across the top, LR targets down the side, G_ema's translations inside
  and the real HR target (never seen by the model) on the right; Fig. 8 has one panel per AFHQ domain model.
* Fig. 6 (``versus``): the same sources for I2I-LR (given the LR targets) and StarGAN v2 (given the targets' HR
  images as references, in their own domain).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrkit.data.ops import make_lr
from lrkit.methods.i2ilr.config import preset_for_profile
from lrkit.profiles import model_profile
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.methods.i2ilr.task import ensure_trained, open_val_set, sample_panel
from lrkit.viz import show_grid, versus_grid

__all__ = ["FigureSpec", "FIGURES", "get_figure", "make_figure", "figure_grid", "figure_vs_stargan", "training_report"]


@dataclass(frozen=True)
class FigureSpec:
    name: str  # notebook stem
    kind: str  # "grid" (Figs 5, 8) or "versus" (Fig. 6)
    title: str
    panels: tuple[tuple[str, str], ...]  # (artifact name, I2I-LR paper preset): one figure each
    n_sources: int
    n_targets: int
    stargan_preset: str = ""  # "versus": the StarGAN v2 paper preset compared


FIGURES: dict[str, FigureSpec] = {f.name: f for f in (
    FigureSpec("fig5_grid", "grid", "I2I-LR Fig. 5: sources x LR targets", (("i2ilr_fig5", "celebahq128"),),
               n_sources=5, n_targets=4),
    FigureSpec("fig6_vs_stargan", "versus", "I2I-LR Fig. 6: I2I-LR (LR targets) vs StarGAN v2 (HR references)",
               (("i2ilr_fig6_vs_stargan", "celebahq128"),), n_sources=3, n_targets=5, stargan_preset="celebahq128"),
    FigureSpec("fig8_afhq", "grid", "I2I-LR Fig. 8: AFHQ", (("i2ilr_fig8_cat", "afhq_cat"),
               ("i2ilr_fig8_dog", "afhq_dog"), ("i2ilr_fig8_wild", "afhq_wild")), n_sources=4, n_targets=3),
)}


def get_figure(name: str) -> FigureSpec:
    try:
        return FIGURES[name]
    except KeyError:
        raise ValueError(f"unknown I2I-LR figure {name!r}; known: {', '.join(FIGURES)}") from None


def _model(ctx, preset: str, *, steps: int, batch_size: int, data_root, device: str, checkpoints: dict | None,
           progress: bool):
    given = (checkpoints or {}).get(preset)
    # Under smoke the figures show the shipped cpu models (profiles.Profile.eval_models), never train them.
    mprof, may_train = (ctx.profile.name, True) if given else model_profile(ctx.profile, steps, batch_size)
    cfg = preset_for_profile(preset, mprof, steps, batch_size)
    ckpt = given or ensure_trained(cfg, Path(ctx.run_dir).parent, data_root=data_root, device=device,
                                   progress=progress, train=may_train)
    ctx.record("model", preset=cfg.preset, checkpoint=str(ckpt))
    return cfg, load_i2ilr(ckpt, device=device, expect={"hr_size": cfg.hr_size, "lr_size": cfg.lr_size})


def _val_images(ctx, cfg, n: int, data_root):
    val = open_val_set(cfg, data_root, n=max(cfg.synth_n_val, n))
    if len(val) < n:
        raise ValueError(f"the val set {val.label} has {len(val)} images; the figure needs {n}")
    return val.pool.get(list(range(n))), val, ctx.record_dataset(val.name + "-val", val.fingerprint, n=len(val))


def figure_grid(ctx, preset: str, *, n_sources: int = 5, n_targets: int = 4, data_root=None, device: str = "cpu",
                checkpoints: dict | None = None, steps: int = 0, batch_size: int = 0, progress: bool = True):
    """The Fig. 5 layout for I2I-LR paper preset ``preset`` under the run's profile (the first ``n_sources`` val
    images as sources, the next ``n_targets`` as targets). Returns ``(figure, info)``."""
    cfg, model = _model(ctx, preset, steps=steps, batch_size=batch_size, data_root=data_root, device=device,
                        checkpoints=checkpoints, progress=progress)
    imgs, _, label = _val_images(ctx, cfg, n_sources + n_targets, data_root)
    grid = sample_panel(model.G, imgs[:n_sources], imgs[n_sources:], cfg.lr_size)
    title = (f"I2I-LR {cfg.preset} ({model.label}): sources across the top, {cfg.lr_size}x{cfg.lr_size} LR targets "
             f"down the side, real HR target on the right")
    return show_grid(grid, title), {"dataset": label, "weights": model.label, "config": cfg}


def figure_vs_stargan(ctx, preset: str, stargan_preset: str, *, n_sources: int = 3, n_targets: int = 5,
                      data_root=None, device: str = "cpu", checkpoints: dict | None = None,
                      stargan_checkpoints: dict | None = None, steps: int = 0, batch_size: int = 0,
                      progress: bool = True):
    """The Fig. 6 layout: LR targets on top, their HR images (StarGAN v2's references) at the bottom, and for each
    source a row of I2I-LR outputs then a row of StarGAN v2 outputs. Where StarGAN v2 cannot be had (its weights,
    e.g. the FAN's wing.ckpt, are missing) its rows stay blank (white) and the title says why. Returns
    ``(figure, info)``."""
    import torch

    from lrkit import weights as W
    from lrkit.methods.stargan2.baseline import load_baseline
    from lrkit.methods.stargan2.inference import translate_ref

    cfg, model = _model(ctx, preset, steps=steps, batch_size=batch_size, data_root=data_root, device=device,
                        checkpoints=checkpoints, progress=progress)
    try:
        mprof, may_train = model_profile(ctx.profile, steps, batch_size)
        nets, s_ckpt, source = load_baseline(stargan_preset, cfg.hr_size, profile=mprof, may_train=may_train,
                                             runs_root=Path(ctx.run_dir).parent, checkpoints=stargan_checkpoints,
                                             data_root=data_root, device=device, progress=progress, steps=steps,
                                             batch_size=batch_size)
        ctx.record("model", preset=stargan_preset, checkpoint=str(s_ckpt), source=source)
    except W.WeightsUnavailable as exc:
        nets, source = None, f"unavailable: {str(exc).splitlines()[0][:200]}"
    imgs, val, label = _val_images(ctx, cfg, n_sources + n_targets, data_root)
    S, T = n_sources, n_targets
    src, refs = imgs[:S], imgs[S:]
    lr = make_lr(refs, cfg.lr_size)
    ref_domains = [val.domain_names[int(val.domain[i])] for i in range(S, S + T)]
    ours = translate(model.G, src.repeat_interleave(T, 0), lr.repeat(S, 1, 1, 1)).view(S, T, *src.shape[1:])
    theirs = (translate_ref(nets, src.repeat_interleave(T, 0), refs.repeat(S, 1, 1, 1), ref_domains * S)
              if nets is not None else torch.ones(S * T, *src.shape[1:]))  # blank: StarGAN v2 unavailable
    grid = versus_grid(src, lr, refs, ours, theirs.view(S, T, *src.shape[1:]))
    s_label = f"{nets.label}, {source}" if nets is not None else f"StarGAN v2 {source}; its rows are blank"
    title = (f"Fig. 6 layout: LR targets on top, the same targets' HR images (StarGAN v2's references) at the "
             f"bottom; for each source (left) I2I-LR {cfg.preset} ({model.label}) then StarGAN v2 ({s_label})")
    return show_grid(grid, title), {"dataset": label, "weights": f"{model.label}; StarGAN v2 ({s_label})",
                                    "grid": grid, "outputs": {"ours": ours, "stargan": theirs if nets else None}}


def make_figure(ctx, name: str, *, data_root=None, device: str = "cpu", n_sources: int = 0, n_targets: int = 0,
                steps: int = 0, batch_size: int = 0, checkpoints: dict | None = None,
                stargan_checkpoints: dict | None = None, progress: bool = True) -> list:
    """Draw and save every panel of figure spec ``name`` (sizes: the spec's unless given); returns the figures."""
    spec = get_figure(name)
    n_s, n_t = n_sources or spec.n_sources, n_targets or spec.n_targets
    figs = []
    for artifact, preset in spec.panels:
        if spec.kind == "versus":
            fig, info = figure_vs_stargan(ctx, preset, spec.stargan_preset, n_sources=n_s, n_targets=n_t,
                                          data_root=data_root, device=device, checkpoints=checkpoints,
                                          stargan_checkpoints=stargan_checkpoints, steps=steps,
                                          batch_size=batch_size, progress=progress)
        else:
            fig, info = figure_grid(ctx, preset, n_sources=n_s, n_targets=n_t, data_root=data_root, device=device,
                                    checkpoints=checkpoints, steps=steps, batch_size=batch_size,
                                    progress=progress)
        title = spec.title if len(spec.panels) == 1 else f"{spec.title} ({artifact.rsplit('_', 1)[-1]})"
        ctx.save_figure(fig, artifact, title=title, dataset=info["dataset"], weights=info["weights"], device=device)
        figs.append(fig)
    return figs


def training_report(ctx, preset: str, *, steps: int = 0, batch_size: int = 0, data_root=None,
                    device: str = "cpu", progress: bool = True):
    """Train (or reuse/resume) paper preset ``preset`` under the run's profile, then save its loss curves and a
    Fig. 5-layout sample grid of G_ema. Returns ``(config, checkpoint path)``."""
    from lrkit import viz

    cfg = preset_for_profile(preset, ctx.profile.name, steps, batch_size)
    # Never the shipped copy: this notebook shows the training run itself (its losses live in the model cache).
    ckpt = ensure_trained(cfg, Path(ctx.run_dir).parent, data_root=data_root, device=device, progress=progress,
                          use_shipped=False)
    fig = viz.loss_curves(ckpt.parent.parent / "losses.jsonl", title=f"I2I-LR {cfg.preset} training losses")
    ctx.save_figure(fig, f"i2ilr_train_{cfg.preset}_losses", title=f"I2I-LR {cfg.preset}: training losses",
                    dataset=cfg.dataset, weights=str(ckpt), device=device)
    fig, info = figure_grid(ctx, preset, data_root=data_root, device=device, checkpoints={preset: str(ckpt)},
                            steps=steps, batch_size=batch_size, progress=progress)
    ctx.save_figure(fig, f"i2ilr_train_{cfg.preset}_samples", title=f"I2I-LR {cfg.preset}: samples",
                    dataset=info["dataset"], weights=info["weights"], device=device)
    return cfg, ckpt
