"""SR-NAM's figures (the sr_nam_paper's Figs. 4-8) from a trained ProGAN and degradation GAN.

Models (``load_models``): the ProGAN ``sr_nam64`` (``lrkit.methods.progan``) and the degradation GAN
``srnam_deg`` under the run's profile (``lrkit.profiles.model_profile``: the shipped cpu models under ``smoke``;
a miniature's ``steps`` trains the profile's presets here). Under ``paper`` without an ``lr_root`` the
degradation GAN is ``srnam_deg_synthlr`` (real HR faces, the synthetic "real LR" process: say so), with one it is
``srnam_deg`` on that folder. The search always runs the ProGAN's EMA generator through the degradation net's
EMA generator (``lrkit.methods.srnam.search``, fixed noise per candidate) with the paper's K = 3 starts.

Inputs: the HR images are the first ``profile.srnam_inputs`` val images of the ProGAN's dataset at 64 px.
"Real LR" inputs (Figs. 7-8, the landmark table) are a user's LR folder (``lr_root``, read at 16 px; no HR truth)
or, without one, those val images degraded by the known process ``synthlr-v1`` (not by the degradation GAN: the
truth is a different process than the one the search inverts, as with real photographs), named so everywhere.

* ``fig4_degradation``: per HR image, G_ema's LR for several noise vectors beside the true process's LR for
  several parameter draws (synthlr only), and ``degradation_check``'s SWD table.
* ``fig5_progan_growth``: the generator's output at each stage 4 ... 64 px with one fixed set of latents. The kit
  ships the final generator only: these are the *final* weights read through each stage's toRGB, not snapshots
  taken when each stage finished training (the paper's figure); the notes say so.
* ``fig6_fig7_grids``: Fig. 6 (HR -> degraded by the GAN -> 3 starts, each candidate with its re-degraded LR),
  Fig. 7 (real LR -> candidates -> re-degraded) and the landmark table (``lrkit.methods.srnam.table``).
* ``fig8_failures``: the ``srnam_pool`` real-LR inputs searched, the worst by best-of-K final L1 shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from lrkit.data.synthetic_lr import SYNTHLR_V1, degrade_images
from lrkit.data.training_sets import ImageSet, open_images
from lrkit.methods.progan.latent import load_progan
from lrkit.methods.progan.task import ensure_trained as ensure_progan, progan_plan, sample_panel
from lrkit.methods.srnam.config import preset_for_profile
from lrkit.methods.srnam.evaluation import VAL_OFFSET, degradation_check
from lrkit.methods.srnam.nets import HR_SIZE, LR_SIZE
from lrkit.methods.srnam.outputs import candidate_grid, load_degradation, redegrade
from lrkit.methods.srnam.search import GREY_LEVELS, SrnamSearchConfig, run_srnam
from lrkit.methods.srnam.task import ensure_degradation
from lrkit.profiles import model_profile
from lrkit.viz import show_grid

__all__ = ["SrnamModels", "load_models", "degradation_preset", "hr_inputs", "real_lr_inputs", "fig4_degradation",
           "fig5_progan_growth", "fig6_fig7_grids", "fig8_failures", "K", "PROGAN_PRESET"]

PROGAN_PRESET = "sr_nam64"  # SR-NAM's ProGAN, 64 px (lrkit.methods.progan.config)
PAPER_SEARCH_LR = SrnamSearchConfig().lr  # "Adam, default settings" (the profile's srnam_lr may differ: say so)
K = 3  # starts per LR image: the paper's Fig. 6
N_NOISE, N_TRUE = 5, 3  # Fig. 4: noise vectors per HR image; true-process draws beside them
N_FIG4_IMAGES = 4  # HR images in Fig. 4 (the paper shows one)
N_SHOW = 4  # inputs in each grid of Figs. 6-8 (the searches and tables use all profile.srnam_inputs)
N_GROWTH = 8  # latents per row of Fig. 5


@dataclass(frozen=True)
class SrnamModels:
    gen: torch.nn.Module  # ProGANLatentGenerator (G_ema, full depth)
    deg: torch.nn.Module  # DegradationGenerator (G_ema, eval)
    gen_label: str
    deg_label: str
    dataset: str  # the ProGAN's dataset: "synthfaces" or a real one

    @property
    def weights(self) -> str:
        return f"{self.gen_label}; {self.deg_label}"

    @property
    def synthlr(self) -> bool:
        return self.deg.config.lr_data == "synthlr"


def degradation_preset(profile_name: str, lr_root: str = "") -> str:
    """``srnam_deg`` (its synthfaces versions below ``paper``); under ``paper`` with no LR folder ``srnam_deg_synthlr``
    (the paper's settings on real HR faces, the synthetic "real LR" process)."""
    return "srnam_deg_synthlr" if profile_name == "paper" and not lr_root else "srnam_deg"


def load_models(ctx, *, data_root=None, lr_root: str = "", device: str = "cpu", steps: int = 0, batch_size: int = 0,
                progan_checkpoint: str = "", degradation_checkpoint: str = "", progress: bool = True,
                need_degradation: bool = True) -> SrnamModels:
    """The two networks the figures use (module docstring); checkpoints given by path are used as they are."""
    runs_root = Path(ctx.run_dir).parent
    if progan_checkpoint:
        gckpt = progan_checkpoint
    else:
        pcfg, may_train = progan_plan(PROGAN_PRESET, ctx.profile, steps, data_root)
        gckpt = ensure_progan(pcfg, runs_root, data_root=data_root, device=device, progress=progress,
                              train=may_train)
    gen = load_progan(gckpt, device=device)
    ctx.record("model", preset=gen.config.preset, checkpoint=str(gckpt))
    gen_label = f"ProGAN {gen.config.preset} step {gen.step} ({Path(gckpt).name}, G_ema)"
    deg, deg_label = None, "no degradation net"
    if need_degradation:
        if degradation_checkpoint:
            dckpt = degradation_checkpoint
        else:
            mprof, may_train = model_profile(ctx.profile, steps, batch_size)
            dcfg = preset_for_profile(degradation_preset(ctx.profile.name, lr_root), mprof, steps, batch_size)
            dckpt = ensure_degradation(dcfg, runs_root, data_root=data_root, lr_root=lr_root or None, device=device,
                                       progress=progress, train=may_train)
        deg = load_degradation(dckpt, device=device)
        ctx.record("model", preset=deg.config.preset, checkpoint=str(dckpt))
        deg_label = (f"degradation GAN {deg.config.preset} step {deg.step} ({Path(dckpt).name}, sha256 "
                     f"{deg.sha256[:12]}, G_ema; {deg.perceptual or 'VGG-19 term: not recorded'})")
    return SrnamModels(gen, deg, gen_label, deg_label, gen.config.dataset)


def hr_inputs(ctx, models: SrnamModels, n: int, data_root=None) -> tuple[ImageSet, torch.Tensor, str]:
    """(val set, its first ``n`` images [n, 3, 64, 64], dataset label) of the ProGAN's dataset."""
    val = open_images(models.dataset, "val", HR_SIZE, n=n, seed=ctx.profile.seed, data_root=data_root)
    if len(val) < 1:
        raise ValueError(f"{val.label} has no val images; SR-NAM's figures need at least one")
    n = min(n, len(val))
    label = ctx.record_dataset(f"{val.name}-val", val.fingerprint, n=len(val))
    return val, val.pool.get(list(range(n))), label


def real_lr_inputs(ctx, hr: torch.Tensor, lr_root: str = "", n: int = 0) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                                 str]:
    """("real" LR [n, 3, 16, 16], their HR truth or None, label): ``lr_root``'s first images, or ``hr`` degraded by
    ``synthlr-v1`` (module docstring)."""
    if lr_root:
        from lrkit.data.folders import ImageFolderDataset
        from lrkit.data.training_sets import _listing_fingerprint

        ds = ImageFolderDataset(lr_root, split=None, hr_size=LR_SIZE, hflip=False)
        n = min(n or len(ds), len(ds))
        label = ctx.record_dataset("lr_folder", _listing_fingerprint(ds), n=len(ds), root=str(lr_root))
        return torch.stack([ds[i]["image"] for i in range(n)]), None, f"{label} (first {n}, read at {LR_SIZE} px)"
    lr, _ = degrade_images(hr, torch.arange(len(hr)) + VAL_OFFSET, SYNTHLR_V1, seed=ctx.profile.seed)
    return lr, hr, f"the HR inputs degraded by the known process {SYNTHLR_V1.name} (seed {ctx.profile.seed})"


def _up(x: torch.Tensor, size: int = HR_SIZE) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="nearest")


def fig4_degradation(ctx, *, data_root=None, lr_root: str = "", device: str = "cpu", steps: int = 0,
                     batch_size: int = 0, degradation_checkpoint: str = "", progan_checkpoint: str = "",
                     n_val: int = 0, progress: bool = True):
    """Fig. 4 (``srnam_fig4_degradation``) and, when the truth is known, ``srnam_degradation_check`` on ``n_val``
    synthfaces val images (0: the profile's ``synth_n_val``); returns ``(figure, table or None)``."""
    from torchvision.utils import make_grid

    models = load_models(ctx, data_root=data_root, lr_root=lr_root, device=device, steps=steps,
                         batch_size=batch_size, progan_checkpoint=progan_checkpoint,
                         degradation_checkpoint=degradation_checkpoint, progress=progress)
    _, hr, label = hr_inputs(ctx, models, N_FIG4_IMAGES, data_root)
    n = len(hr)
    g = torch.Generator().manual_seed(ctx.profile.seed)
    z = torch.randn(N_NOISE, models.deg.noise_dim, generator=g)
    with torch.no_grad():
        fakes = [models.deg(hr.to(device), z[j].expand(n, -1).to(device)).clamp(-1, 1).cpu() for j in range(N_NOISE)]
    cells = []
    synth = models.synthlr  # the known process: its LR for these HR images is the truth the GAN imitates
    true = [degrade_images(hr, torch.arange(n) + VAL_OFFSET + j * n, SYNTHLR_V1, seed=ctx.profile.seed)[0]
            for j in range(N_TRUE)] if synth else []
    for i in range(n):
        cells += [hr[i]] + [_up(f[i:i + 1])[0] for f in fakes] + [_up(t[i:i + 1])[0] for t in true]
    grid = make_grid(torch.stack(cells), nrow=1 + N_NOISE + len(true), padding=2, pad_value=1.0)
    truth_note = (f"; the last {N_TRUE} columns: the true process {SYNTHLR_V1.name} with {N_TRUE} parameter draws "
                  "(what the GAN should imitate)" if synth else "; no true degradation is known for this data")
    title = (f"SR-NAM Fig. 4 layout: each row one HR image (left), then the degradation GAN's {LR_SIZE}x{LR_SIZE} "
             f"LR for {N_NOISE} noise vectors (the same {N_NOISE} in every row){truth_note}")
    fig = show_grid(grid, title)
    ctx.save_figure(fig, "srnam_fig4_degradation", title="SR-NAM Fig. 4: degradation GAN samples", dataset=label,
                    weights=models.deg_label, device=device, notes="LR images nearest-upsampled to 64 px")
    table = None
    if synth:
        n_check = n_val or ctx.profile.synth_n_val
        table = pd.DataFrame(degradation_check(models.deg, n=n_check, seed=ctx.profile.seed))
        ctx.save_table(table, "srnam_degradation_check", title="SR-NAM: degradation GAN vs the known degradation",
                       dataset=f"synthfaces-faces val (first {n_check} and next {n_check}), {SYNTHLR_V1.name}",
                       weights=models.deg_label, device=device,
                       notes=("swd_patch7 x 1e3 (lower: closer to the true LR distribution) of each row's LR images "
                              f"to the true process on the same HR images; the floor is {SYNTHLR_V1.name} on other "
                              "images"))
    return fig, table


def fig5_progan_growth(ctx, *, data_root=None, device: str = "cpu", steps: int = 0, progan_checkpoint: str = "",
                       progress: bool = True):
    """Fig. 5 (``srnam_fig5_progan_growth``): rows 4, 8, ..., 64 px of the same latents; returns the figure."""
    models = load_models(ctx, data_root=data_root, device=device, steps=steps, progan_checkpoint=progan_checkpoint,
                         progress=progress, need_degradation=False)
    G = models.gen.G
    z = torch.randn(N_GROWTH, G.latent_dim, generator=torch.Generator().manual_seed(ctx.profile.seed))
    rows = [sample_panel(G, z, stage, 1.0, size=G.output_size, nrow=N_GROWTH) for stage in range(G.depth)]
    grid = torch.cat(rows, dim=1)
    sizes = ", ".join(str(G.output_size >> (G.depth - 1 - s)) for s in range(G.depth))
    note = ("the kit keeps the final generator only: each row is the final weights read through that stage's toRGB "
            "(alpha 1), not a snapshot taken when the stage finished training, so the low rows show what the last "
            "stage's layers still make at that size")
    fig = show_grid(grid, f"SR-NAM Fig. 5 layout: rows {sizes} px (nearest-upsampled to {G.output_size}), the same "
                          f"{N_GROWTH} latents in every row (seed {ctx.profile.seed}); {note}")
    ctx.save_figure(fig, "srnam_fig5_progan_growth", title="SR-NAM Fig. 5: the progressive generator",
                    dataset=f"{models.dataset} (the ProGAN's training set)", weights=models.gen_label, device=device,
                    notes=note)
    return fig


def _search(models: SrnamModels, lr: torch.Tensor, ctx, device: str, progress: bool, steps: int,
            lr_rate: float = 0.0):
    """(SearchResult, re-degraded [N, K, 3, 16, 16], config) of SR-NAM's search on ``lr``; ``steps`` 0: the
    profile's; ``lr_rate`` 0: the profile's Adam learning rate (``srnam_lr``)."""
    cfg = SrnamSearchConfig(steps=steps or ctx.profile.srnam_steps, starts=K, seed=ctx.profile.seed,
                            lr=lr_rate or ctx.profile.srnam_lr)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(lr) * K, desc=f"SR-NAM search ({cfg.steps} steps)", unit="candidate", leave=False)
    try:
        res = run_srnam(models.gen, models.deg, lr, cfg, device=device,
                        progress=None if bar is None else lambda done, total: bar.update(done - bar.n))
    finally:
        if bar is not None:
            bar.close()
    return res, redegrade(res, models.gen, models.deg, cfg, "last", device=device), cfg


def _l1_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over the last three dims in 8-bit grey levels (inputs in [-1, 1])."""
    return (a - b).abs().mean((-3, -2, -1)) * GREY_LEVELS


def _search_note(cfg: SrnamSearchConfig, res) -> str:
    return (f"search: Adam {cfg.steps} steps (lr {cfg.lr}), K = {cfg.starts} starts per input, the degradation net "
            f"fed one fixed noise vector per candidate ({cfg.noise}), ProGAN G_ema; "
            f"{res.ms_per_output:.0f} ms per candidate")


def fig6_fig7_grids(ctx, *, data_root=None, lr_root: str = "", device: str = "cpu", steps: int = 0,
                    batch_size: int = 0, progan_checkpoint: str = "", degradation_checkpoint: str = "",
                    fan_weights: str = "", n_inputs: int = 0, search_steps: int = 0, progress: bool = True):
    """Figs. 6 (``srnam_fig6_search``) and 7 (``srnam_fig7_real_lr``) and the landmark table
    (``srnam_landmark_table``); returns ``(fig6, fig7, table)``. ``n_inputs`` / ``search_steps`` 0: the
    profile's ``srnam_inputs`` / ``srnam_steps`` (others: a miniature)."""
    from lrkit.methods.srnam.table import landmark_table

    models = load_models(ctx, data_root=data_root, lr_root=lr_root, device=device, steps=steps,
                         batch_size=batch_size, progan_checkpoint=progan_checkpoint,
                         degradation_checkpoint=degradation_checkpoint, progress=progress)
    val, hr, label = hr_inputs(ctx, models, n_inputs or ctx.profile.srnam_inputs, data_root)
    n = len(hr)
    # Fig. 6: the HR set degraded by the degradation GAN itself (noise from the profile's seed), then searched.
    z = torch.randn(n, models.deg.noise_dim, generator=torch.Generator().manual_seed(ctx.profile.seed + 6))
    with torch.no_grad():
        lr6 = models.deg(hr.to(device), z.to(device)).clamp(-1, 1).cpu()
    res6, again6, cfg = _search(models, lr6, ctx, device, progress, search_steps)
    s = min(N_SHOW, n)
    grid6 = candidate_grid(lr6[:s], res6.output("last")[:s], again6[:s], hr[:s])
    l1_6 = _l1_levels(again6, lr6[:, None])
    note6 = (f"{_search_note(cfg, res6)}; re-degraded L1 to the input: mean {float(l1_6.mean()):.2f}, max "
             f"{float(l1_6.max()):.2f} grey levels over {n} inputs x {K}")
    fig6 = show_grid(grid6, f"SR-NAM Fig. 6 layout: per row the HR image, its LR made by the degradation GAN "
                            f"(the input), then {K} starts: each HR candidate with its re-degraded LR. {note6}")
    ctx.save_figure(fig6, "srnam_fig6_search", title="SR-NAM Fig. 6: HR -> degraded -> candidates", dataset=label,
                    weights=models.weights, device=device, notes=note6)
    # Fig. 7: "real" LR inputs (a folder, or the known process on the same HR images).
    lr7, truth, lr_label = real_lr_inputs(ctx, hr, lr_root, n)
    res7, again7, _ = _search(models, lr7, ctx, device, progress, search_steps)
    s7 = min(N_SHOW, len(lr7))
    grid7 = candidate_grid(lr7[:s7], res7.output("last")[:s7], again7[:s7], None if truth is None else truth[:s7])
    l1_7 = _l1_levels(again7, lr7[:, None])
    note7 = (f"inputs: {lr_label}; {_search_note(cfg, res7)}; re-degraded L1 to the input: mean "
             f"{float(l1_7.mean()):.2f}, max {float(l1_7.max()):.2f} grey levels over {len(lr7)} inputs x {K}")
    fig7 = show_grid(grid7, f"SR-NAM Fig. 7 layout: per row the real LR input, then {K} HR candidates each with "
                            f"its re-degraded LR{'' if truth is None else ', the true HR last'}. {note7}")
    ctx.save_figure(fig7, "srnam_fig7_real_lr", title="SR-NAM Fig. 7: real LR -> candidates -> re-degraded",
                    dataset=label if truth is not None else lr_label, weights=models.weights, device=device,
                    notes=note7)
    extra = {}
    if cfg.lr != PAPER_SEARCH_LR:  # the paper's own setting beside the profile's, on the same inputs
        res_paper, _, _ = _search(models, lr7, ctx, device, progress, search_steps, PAPER_SEARCH_LR)
        extra[f"SR-NAM (paper's Adam lr {PAPER_SEARCH_LR:g})"] = res_paper
    table, tnotes = landmark_table(models, lr7, truth, res7, val=val, ctx=ctx, steps=cfg.steps, device=device,
                                   fan_weights=fan_weights or None, extra=extra,
                                   srnam_label=f"SR-NAM (Adam lr {cfg.lr:g})")
    ctx.save_table(table.reset_index(), "srnam_landmark_table",
                   title="SR-NAM: landmark error (eq. 7), LR L1 and diversity of the candidates, per method",
                   dataset=f"{label}; inputs {lr_label}", weights=models.weights, device=device, notes=tnotes)
    return fig6, fig7, table


def fig8_failures(ctx, *, data_root=None, lr_root: str = "", device: str = "cpu", steps: int = 0,
                  batch_size: int = 0, progan_checkpoint: str = "", degradation_checkpoint: str = "",
                  pool: int = 0, search_steps: int = 0, progress: bool = True):
    """Fig. 8 (``srnam_fig8_failures``) and ``srnam_failures`` (every input's best-of-K final L1, worst first);
    returns ``(figure, table)``. ``pool`` / ``search_steps`` 0: the profile's ``srnam_pool`` / ``srnam_steps``."""
    models = load_models(ctx, data_root=data_root, lr_root=lr_root, device=device, steps=steps,
                         batch_size=batch_size, progan_checkpoint=progan_checkpoint,
                         degradation_checkpoint=degradation_checkpoint, progress=progress)
    _, hr, label = hr_inputs(ctx, models, pool or ctx.profile.srnam_pool, data_root)
    lr, truth, lr_label = real_lr_inputs(ctx, hr, lr_root, len(hr))
    res, again, cfg = _search(models, lr, ctx, device, progress, search_steps)
    l1 = _l1_levels(again, lr[:, None])  # [N, K] grey levels
    best_l1, best_k = l1.min(1)
    order = torch.argsort(best_l1, descending=True)  # worst first: chosen by the numbers
    table = pd.DataFrame({"rank": range(1, len(order) + 1), "input": order.tolist(),
                          "best_l1_levels": best_l1[order].tolist(), "best_start": best_k[order].tolist(),
                          "mean_l1_levels": l1.mean(1)[order].tolist()})
    show = order[:min(N_SHOW, len(order))]
    hr_best = res.output("last")[show, best_k[show]][:, None]
    again_best = again[show, best_k[show]][:, None]
    grid = candidate_grid(lr[show], hr_best, again_best, None if truth is None else truth[show])
    note = (f"the {len(show)} of {len(lr)} inputs ({lr_label}) whose best of {K} candidates re-degrades worst "
            f"(best-of-K L1 {', '.join(f'{float(best_l1[i]):.2f}' for i in show)} grey levels; median over all "
            f"{float(best_l1.median()):.2f}); {_search_note(cfg, res)}")
    fig = show_grid(grid, f"SR-NAM Fig. 8 layout (failure cases): per row the LR input, its best candidate and "
                          f"that candidate's re-degraded LR{'' if truth is None else ', the true HR'}. {note}")
    data = label if truth is not None else lr_label
    ctx.save_figure(fig, "srnam_fig8_failures", title="SR-NAM Fig. 8: failure cases, by the numbers", dataset=data,
                    weights=models.weights, device=device, notes=note)
    ctx.save_table(table, "srnam_failures", title="SR-NAM: every input's best-of-K re-degraded L1, worst first",
                   dataset=data, weights=models.weights, device=device, notes=note)
    return fig, table
