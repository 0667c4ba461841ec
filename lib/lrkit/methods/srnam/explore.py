"""SR-NAM in the explorer: K searches (eq. 6) through the degradation net for one 16 x 16 LR face. Each ProGAN
found is paired with each degradation net found. A gallery target is made "real LR" by the known process synthlr-v1
(as the SR-NAM figures do); an uploaded 16 px image is used as it is."""

from __future__ import annotations

from functools import lru_cache

import torch

from lrkit.explore.core import Controls, ExploreInputs, MethodAdapter, MethodRun, ModelEntry
from lrkit.profiles import get_profile

__all__ = ["ADAPTER", "DEFAULT_STEPS", "DEFAULT_LR"]

DEFAULT_STEPS = 250  # the paper's lower end
DEFAULT_LR = get_profile("cpu").srnam_lr  # the search rate that works on the kit's models (lrkit.profiles)


def find(headers: dict[str, list[dict]]) -> list[ModelEntry]:
    from lrkit.methods.progan.config import ProganConfig
    from lrkit.methods.srnam.config import DegradationConfig

    out = []
    for g in headers.get("progan", []):
        pc = ProganConfig.from_dict(g["config"])
        if 4 * 2 ** (pc.depth - 1) != 64:
            continue  # the degradation net takes 64 px faces
        for d in headers.get("srnam_degradation", []):
            dc = DegradationConfig.from_dict(d["config"])
            source = g["source"] if g["source"] == d["source"] else f"{g['source']} + {d['source']}"
            out.append(ModelEntry("SR-NAM", f"ProGAN {pc.preset} + {dc.preset}", pc.dataset, pc.synth_variant,
                                  g["step"], source, 64, (16,), (g["path"], d["path"])))
    return out


@lru_cache(maxsize=4)
def _models(gpath: str, dpath: str, device: str):
    from lrkit.methods.progan.latent import load_progan
    from lrkit.methods.srnam.outputs import load_degradation

    return load_progan(gpath, device=device), load_degradation(dpath, device=device)


def make_lr(target_hr: torch.Tensor, entry: ModelEntry, seed: int) -> torch.Tensor:
    """[3, 16, 16]: the target through the known "real LR" process (its parameters drawn from ``seed``)."""
    from lrkit.data.synthetic_lr import SYNTHLR_V1, degrade_images

    lr, _ = degrade_images(target_hr[None], torch.tensor([seed]), SYNTHLR_V1, seed=seed)
    return lr[0]


def run(entry: ModelEntry, inputs: ExploreInputs, controls: Controls, *, device: str = "cpu",
        progress=None) -> MethodRun:
    from lrkit.methods.srnam.outputs import redegrade
    from lrkit.methods.srnam.search import SrnamSearchConfig, run_srnam

    gen, deg = _models(entry.paths[0], entry.paths[1], device)
    cfg = SrnamSearchConfig(steps=controls.steps or DEFAULT_STEPS, starts=controls.k, lr=DEFAULT_LR,
                            noise=controls.noise, seed=controls.seed)
    res = run_srnam(gen, deg, inputs.target_lr[None], cfg, device=device, on_step=progress)
    again = redegrade(res, gen, deg, cfg, "last", device=device)[0]
    return MethodRun(res.output("last")[0], again,
                     f"SR-NAM: Adam {cfg.steps} steps (lr {cfg.lr}), {cfg.starts} starts from seed {cfg.seed}, "
                     f"degradation noise {cfg.noise}; ProGAN G_ema step {gen.step}, degradation G_ema step {deg.step}")


ADAPTER = MethodAdapter("SR-NAM", find, run, controls=("seed", "k", "steps", "noise"), uses_source=False,
                        make_lr=make_lr,
                        prepare=lambda entry, device: _models(entry.paths[0], entry.paths[1], device))
