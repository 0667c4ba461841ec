"""What the trainers' frozen configs share: JSON round trip, checked overrides and the named-preset lookup.

A config class inherits :class:`ConfigIO`; its module builds ``PRESETS`` with :func:`expand_presets` (each paper
preset plus its ``_smoke`` / ``_cpu`` / ``_quick`` synthfaces versions) and answers ``preset_for_profile`` with
:func:`profile_preset`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

__all__ = ["ConfigIO", "expand_presets", "lookup", "profile_preset", "PROFILE_SUFFIX", "SYNTH_SUFFIXES"]

PROFILE_SUFFIX = {"smoke": "_smoke", "cpu": "_cpu", "quick": "_quick", "paper": ""}
SYNTH_SUFFIXES = tuple(s[1:] for s in PROFILE_SUFFIX.values() if s)  # the synthfaces versions of a paper preset


class ConfigIO:
    """Mixin for frozen config dataclasses (configs hold scalars, None and tuples only)."""

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists); ``from_dict(to_dict())`` equals the config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; this checkpoint or file was written by "
                             "another lrkit version")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def with_overrides(self, **kw):
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(kw) - known)
        if bad:
            raise ValueError(f"unknown {type(self).__name__} field(s) {bad}; valid: {sorted(known)}")
        return dataclasses.replace(self, **kw)


def expand_presets(paper: dict, synth: Callable[[object, str], object]) -> dict:
    """The paper presets followed by ``synth(cfg, suffix)`` of each for every ``SYNTH_SUFFIXES``."""
    out = dict(paper)
    for cfg in paper.values():
        for suffix in SYNTH_SUFFIXES:
            s = synth(cfg, suffix)
            out[s.preset] = s
    return out


def lookup(presets: dict, name: str, what: str):
    try:
        return presets[name]
    except KeyError:
        raise ValueError(f"unknown {what} preset {name!r}; valid presets: {', '.join(presets)}") from None


def profile_preset(presets: dict, name: str, profile: str, steps: int, what: str, batch_size: int = 0):
    """The preset a notebook runs for paper preset ``name`` under a run profile: ``<name>_smoke`` (smoke),
    ``<name>_cpu`` (cpu), ``<name>_quick`` (quick), ``<name>`` (paper); a name with a suffix is taken as is. ``steps`` > 0 replaces the
    preset's number of steps and ``batch_size`` > 0 its batch (a miniature: the notebooks' ``-p steps=N
    -p batch_size=B``; tables say so in their notes)."""
    if name.endswith(tuple("_" + s for s in SYNTH_SUFFIXES)):
        cfg = lookup(presets, name, what)
    else:
        suffix = PROFILE_SUFFIX.get(profile)
        if suffix is None:
            raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILE_SUFFIX)}")
        cfg = lookup(presets, name + suffix, what)
    changes = {k: int(v) for k, v in (("steps", steps), ("batch_size", batch_size)) if v}
    return cfg.with_overrides(**changes) if changes else cfg
