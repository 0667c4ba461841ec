"""PULSE's settings (Menon et al. 2020; the public ``run.py`` defaults, see REFERENCE_NOTES) as one frozen config.

Faithful by default: 100 steps of Adam (lr 0.4, default betas) over the 18 x 512 latents and the first 5 noise
maps, each tensor rescaled to its own initial norm after every step, PULSE's ``linear1cycledrop`` schedule, loss
``100 * L2 + 0.05 * GEOCROSS`` with L2 clamped below at eps = 2e-3, the bicubic downscaler, the last step's image
as the output. What is not PULSE's is named so: ``output="best"``, ``stop_at_eps``, ``downscale="avgpool"``,
per-image success and per-duplicate seeds (the engine's, always on: PULSE's behaviour there is a bug).
"""

from __future__ import annotations

from dataclasses import dataclass

from lrkit.train.presets import ConfigIO

__all__ = ["PulseConfig", "SCHEDULES", "DOWNSCALES", "OUTPUTS", "lr_multiplier"]

SCHEDULES = ("fixed", "linear1cycle", "linear1cycledrop")
DOWNSCALES = ("bicubic", "avgpool")
OUTPUTS = ("last", "best")


@dataclass(frozen=True)
class PulseConfig(ConfigIO):
    steps: int = 100
    lr: float = 0.4  # Adam's lr before the schedule's multiplier
    schedule: str = "linear1cycledrop"
    eps: float = 2e-3  # on L2 = per-image MSE of the downscaled output vs the LR image, both in [0, 1]
    l2_weight: float = 100.0
    geocross_weight: float = 0.05
    tile_latent: bool = False  # one latent vector repeated for every layer (GEOCROSS is then 0)
    trainable_noise: int = 5  # noise maps 0..N-1 are optimised (PULSE's noise_type "trainable")
    zero_noise: tuple[int, ...] = (17,)  # noise maps set to zero (PULSE's bad_noise_layers "17")
    downscale: str = "bicubic"  # PULSE's filter; "avgpool" = the I2I-LR data's DS operator
    output: str = "last"  # "last" = PULSE's (the last step's image); "best" = the lowest L2 over the steps
    stop_at_eps: bool = False  # stop a candidate once within eps (PULSE runs every step)
    duplicates: int = 1  # candidates per LR image, each from its own seed
    seed: int = 0
    chunk: int = 16  # candidates per forward pass (memory bound; StyleGAN-1 at 1024 px: ~1 GB of activations each)

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("duplicates", 1), ("chunk", 1), ("trainable_noise", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"PulseConfig.{name} must be an int >= {low}, got {value!r}")
        for name, allowed in (("schedule", SCHEDULES), ("downscale", DOWNSCALES), ("output", OUTPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PulseConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.eps > 0 or not self.lr > 0:
            raise ValueError(f"PulseConfig eps and lr must be > 0, got eps={self.eps}, lr={self.lr}")
        object.__setattr__(self, "zero_noise", tuple(int(i) for i in self.zero_noise))


def lr_multiplier(schedule: str, steps: int, j: int) -> float:
    """PULSE's learning-rate multiplier at 0-based step ``j`` of ``steps`` (its LambdaLR functions).

    ``linear1cycle``: 0.1 -> 1 at the middle -> 0.1 at the end. ``linear1cycledrop``: the same cycle over the first
    90 % of the steps (1 at 45 %), then linearly from 0.1 at 90 % towards 0.001 at the last step."""
    if schedule == "fixed":
        return 1.0
    if schedule == "linear1cycle":
        return (9 * (1 - abs(j / steps - 0.5) * 2) + 1) / 10
    if schedule == "linear1cycledrop":
        cycle = 0.9 * steps
        if j < cycle:
            return (9 * (1 - abs(j / cycle - 0.5) * 2) + 1) / 10
        return 0.1 + (j - cycle) / (0.1 * steps) * (0.001 - 0.1)
    raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
