"""The one profile table every notebook and command reads.

A profile fixes how big a run is; a notebook never invents its own sizes. ``smoke`` is what CI and
``make reproduce`` run on a 2-core CPU in minutes (tiny models, synthfaces: plumbing); ``cpu`` trains models
meant to work on the same 2-core CPU in tens of minutes each (hours for the batch, in the background); ``quick``
fits one GPU at <= 10 minutes per notebook; ``paper`` is the papers' exact settings on the real datasets.
Profiles are frozen: derive a variant with ``dataclasses.replace``, never mutate one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device: str  # "cpu" or "cuda": what the profile is sized for (see resolve_device)
    dataset: str  # default dataset: "synthfaces" (embedded, procedural) or a real one ("celeba_hq", "afhq")
    hr_size: int  # HR side in pixels
    lr_size: int  # LR side in pixels (the papers' main setting is 8)
    overview_lr_sizes: tuple[int, ...]  # LR sizes shown by the data overview
    synth_n_train: int  # synthfaces images in the train split, all domains together (generate()'s n)
    synth_n_val: int  # synthfaces images in the val split, all domains together
    batch_size: int
    eval_targets: int  # LR targets per table evaluation (the first N val images; 0 = every val image, the papers')
    seed: int = 0
    minutes_per_notebook: float = 10.0  # budget the profile is designed for (documentation, checked by benchmarks)
    # The profile whose presets the notebooks that only evaluate (tables, figures) use, "" = this one's; those
    # models must ship with the kit (lrkit.train.shipped): such a notebook never trains them.
    eval_models: str = ""
    # Real images per set metric (FD, PRDC): the first N of the training set, 0 = all of it (the papers'). The
    # features of 1,000 real images cost ~2.5 min per protocol on one core, for 40 fakes in a smoke table.
    eval_real: int = 0
    # Seconds one notebook cell may run before `lrkit reproduce` stops it and fails the notebook (0: no limit). A
    # cell whose kernel went quiet without answering (nbclient#312, seen twice here) would otherwise hold the batch
    # until CI's own limit; a real training cell of the cpu/quick/paper profiles may run for hours.
    cell_timeout_s: int = 0
    # SR-NAM's notebooks (lrkit.methods.srnam.figures): LR inputs per grid and table (each searched with the paper's
    # K = 3 starts), Adam steps of each search (the paper: 250-500), inputs searched for the failure figure (Fig. 8
    # shows the worst of them by final L1).
    srnam_inputs: int = 8
    srnam_steps: int = 250
    srnam_pool: int = 32
    # Adam's learning rate in SR-NAM's search. The paper: "Adam, default settings" (1e-3). On the kit's synthfaces
    # ProGAN 250 such steps barely move the latents (re-degraded L1 29.8 grey levels on 6 inputs x 3 starts; 14.6
    # at 1e-2, 12.6 at 3e-2, 11.7 at 1e-1; 2-core CPU, 2026-12-08), so cpu and smoke search at 3e-2 and the
    # landmark table adds the paper's 1e-3 as its own row.
    srnam_lr: float = 1e-3
    # The explorer's search steps (PULSE, SR-NAM) for the static panels a batch renders (notebooks/explore.ipynb);
    # interactively the slider starts there too.
    explore_steps: int = 100


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="smoke",
            description="CPU, whole batch in minutes on 2 cores: tiny models on synthfaces at 64 px",
            device="cpu",
            dataset="synthfaces",
            hr_size=64,
            lr_size=8,
            overview_lr_sizes=(4, 8, 16, 32),
            synth_n_train=64,
            synth_n_val=32,
            batch_size=8,
            eval_targets=4,  # 4 targets x 10 sources: the protocol's shape in CI minutes (8 cost ~1 min more)
            minutes_per_notebook=5.0,
            # A few hundred CPU steps give noise; the tables and figures evaluate the shipped cpu models instead
            # (train_i2ilr and a miniature's -p steps=N still train the smoke presets here).
            eval_models="cpu",
            eval_real=200,  # of the cpu models' 1,000 train images: the batch's minutes (40 fakes per setting)
            cell_timeout_s=1200,  # its slowest cell took ~3 min on 2 busy cores (2026-12-03); 20 min means a hang
            srnam_inputs=4,  # x 3 starts, 60 steps: the search's shape in CI seconds (the cpu profile runs 250)
            srnam_steps=60,
            srnam_pool=8,
            srnam_lr=3e-2,
            explore_steps=20,  # CI seconds: two searches of 3 candidates
        ),
        Profile(
            name="cpu",
            description="CPU, tens of minutes per model on 2 cores: models meant to work, on synthfaces at 32/64 "
                        "px (the whole batch takes hours: run it in the background, never in CI)",
            device="cpu",
            dataset="synthfaces",
            hr_size=32,
            lr_size=8,
            overview_lr_sizes=(4, 8, 16, 32),
            synth_n_train=1000,
            synth_n_val=200,
            batch_size=8,
            eval_targets=25,  # 25 targets x 10 sources per evaluation (the val split has 200 images; the whole batch
            # evaluates 16 settings, its Fréchet features ~0.05 s an image on one core)
            minutes_per_notebook=60.0,
            srnam_inputs=12,
            srnam_steps=250,
            srnam_pool=48,
            srnam_lr=3e-2,
        ),
        Profile(
            name="quick",
            description="one GPU, <= 10 minutes per notebook: small models on synthfaces at 128 px",
            device="cuda",
            dataset="synthfaces",
            hr_size=128,
            lr_size=8,
            overview_lr_sizes=(4, 8, 16, 32),
            synth_n_train=2000,
            synth_n_val=500,
            batch_size=8,
            eval_targets=500,
            minutes_per_notebook=10.0,
            srnam_inputs=32,
            srnam_steps=500,
            srnam_pool=500,
        ),
        Profile(
            name="paper",
            description="the papers' exact settings on the real datasets (CelebA-HQ / AFHQ), GPU",
            device="cuda",
            dataset="celeba_hq",
            hr_size=128,
            lr_size=8,
            overview_lr_sizes=(4, 8, 16, 32),
            synth_n_train=10000,
            synth_n_val=1000,
            batch_size=8,
            eval_targets=0,
            minutes_per_notebook=float("inf"),
            srnam_inputs=32,
            srnam_steps=500,
            srnam_pool=1000,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The named profile; an unknown name is an error listing the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None


def resolve_device(requested: str, profile: Profile) -> str:
    """Turn a notebook's ``device`` parameter ("auto", "cpu", "cuda", "cuda:1") into a torch device string.

    "auto" takes the profile's device; asking for CUDA where there is none is an error with the fix,
    never a silent fall-back to the CPU (a quick-profile timing on a CPU would be meaningless).
    """
    import torch

    from lrkit.errors import DeviceUnavailable

    device = profile.device if requested in ("", "auto", None) else requested
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"profile {profile.name!r} wants device {device!r} but no CUDA device is visible; "
            "run with --profile smoke, or pass device='cpu' explicitly to run the same settings on the CPU"
        )
    return device


def model_profile(profile: Profile, steps: int = 0, batch_size: int = 0) -> tuple[str, bool]:
    """``(profile whose presets a table or figure evaluates, whether it may train them here)``: the profile's
    ``eval_models`` (shipped, never trained) unless a miniature's ``steps`` / ``batch_size`` asks to train."""
    if profile.eval_models and not (steps or batch_size):
        return profile.eval_models, False
    return profile.name, True


def profile_dict(profile: Profile) -> dict:
    return dataclasses.asdict(profile)
