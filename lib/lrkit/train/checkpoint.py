"""Checkpoints: one self-describing dict of plain tensors and containers, plus the RNG state.

Format (``format_version`` 1), written with ``torch.save`` through ``fsutil.atomic_open`` (a crash leaves the
previous file intact)::

    {"format": "lrkit-checkpoint", "format_version": 1,
     "task": str,                      # which trainer wrote it, e.g. "i2ilr"
     "config": dict,                   # the task's config, JSON-normalised (tuples -> lists): must match on load
     "step": int,                      # completed training steps
     "modules": {name: state_dict}, "optimizers": {name: state_dict},
     "rng": {"python": ..., "numpy": ..., "torch": ByteTensor, "cuda": [ByteTensor per device]},
     "meta": dict,                     # JSON-able: time, git commit, torch version, device
     "extra": dict,                    # caller's small extras (tensors / plain containers only)
     "data_fingerprint": str | None}   # content fingerprint of the training data (must match on resume)

No module or arbitrary object is ever pickled, so ``torch.load(path, weights_only=True)`` reads every checkpoint
(and refuses anything that could run code). RNG states are converted to that vocabulary: python's ``random``
state to lists of ints, numpy's key array to an int64 tensor.

``load_checkpoint`` checks that a file is one of ours and belongs to the expected task and config;
``restore`` loads the states strictly, checking every key and shape *before* touching any module, so a mismatch
raises one error listing everything and leaves the modules unchanged.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import random
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from lrkit.fsutil import atomic_open
from lrkit.statedict import state_diff

__all__ = [
    "FORMAT", "FORMAT_VERSION", "capture_rng", "restore_rng", "config_differences",
    "save_checkpoint", "load_checkpoint", "checkpoint_step", "restore",
]

FORMAT = "lrkit-checkpoint"
FORMAT_VERSION = 1

_MISSING = object()


# ----------------------------------------------------------------------------------------------------- RNG


def capture_rng() -> dict:
    """The global RNG states (python ``random``, numpy global, torch CPU, every CUDA device) as plain data."""
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss_next": gauss_next},
        # MT19937 keys are uint32; int64 holds them exactly and every torch build supports it.
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": [s.cpu() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: Mapping) -> None:
    """Set the global RNGs from ``capture_rng()`` output (also after a save/load round trip)."""
    try:
        py, npy, cpu, cuda = state["python"], state["numpy"], state["torch"], state.get("cuda", [])
        random.setstate((int(py["version"]), tuple(int(v) for v in py["state"]), py["gauss_next"]))
        keys = np.asarray(torch.as_tensor(npy["keys"]).cpu().numpy(), dtype=np.uint32)
        np.random.set_state((npy["kind"], keys, int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"])))
        torch.set_rng_state(torch.as_tensor(cpu).cpu())
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"restore_rng: not an RNG state captured by capture_rng() ({type(err).__name__}: {err})"
        ) from err
    if not cuda:
        return
    if not torch.cuda.is_available():
        # Resuming a GPU run on CPU is legitimate; it just cannot be bit-identical.
        warnings.warn("the checkpoint holds CUDA RNG states but CUDA is not available; they were not restored",
                      stacklevel=2)
        return
    n = torch.cuda.device_count()
    if len(cuda) != n:
        warnings.warn(f"the checkpoint holds CUDA RNG states for {len(cuda)} device(s), this machine has {n}; "
                      f"restored the first {min(n, len(cuda))}", stacklevel=2)
    for i, s in enumerate(cuda[:n]):
        torch.cuda.set_rng_state(torch.as_tensor(s).cpu(), device=i)


# ------------------------------------------------------------------------------------------------ helpers


def _json_normalised(obj: Any, what: str) -> Any:
    """``obj`` after a JSON round trip (tuples -> lists), so a saved config compares equal to a fresh one."""
    try:
        return json.loads(json.dumps(obj, sort_keys=True, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be JSON-serialisable (plain dicts, lists, str, numbers, bool, None): {err}; "
                        "convert paths to str and dataclasses with dataclasses.asdict") from err


def _check_plain(obj: Any, where: str) -> None:
    """Refuse what ``torch.load(weights_only=True)`` could not read back (checked at save time, not at load)."""
    # Exact types: subclasses (e.g. torch.__version__, a TorchVersion str) are refused by the weights_only loader.
    if obj is None or type(obj) in (bool, int, float, str, bytes) or isinstance(obj, torch.Tensor):
        return
    if type(obj) is dict:
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}; checkpoints hold only tensors and plain containers/"
                    "scalars (so weights_only loading works); convert it first")


@functools.lru_cache(maxsize=1)
def _process_meta() -> dict:
    # Cached: the code that runs is the code imported at start, and git/device queries cost subprocess calls.
    from lrkit.runs.provenance import device_info, git_state

    git = git_state()
    return {"git_commit": git["commit"], "git_dirty": git["dirty"], "torch": str(torch.__version__),
            "device": device_info()["device_name"]}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "<root>": d}


def _same(a: Any, b: Any) -> bool:
    # NaN == NaN for config purposes (a config may legitimately hold NaN as "unset").
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not in a config
        return type(a) is type(b) and a == b
    return a == b


def config_differences(saved: Mapping, requested: Mapping) -> list[str]:
    """``"key: checkpoint=X, requested=Y"`` for every differing (dotted) key of two JSON-able configs."""
    fa, fb = _flatten(_json_normalised(dict(saved), "config")), _flatten(_json_normalised(dict(requested), "config"))
    lines = []
    for key in sorted(set(fa) | set(fb)):
        a, b = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if a is _MISSING or b is _MISSING or not _same(a, b):
            show = lambda v: "<missing>" if v is _MISSING else json.dumps(v)  # noqa: E731
            lines.append(f"{key}: checkpoint={show(a)}, requested={show(b)}")
    return lines


# ---------------------------------------------------------------------------------------------- save/load


def save_checkpoint(
    path: str | os.PathLike,
    *,
    task: str,
    config: Mapping,
    step: int,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    extra: Mapping | None = None,
    data_fingerprint: str | None = None,
) -> Path:
    """Write a checkpoint of ``modules``/``optimizers`` and the current global RNG state atomically; returns path.

    ``config`` must be JSON-able (it is compared on load). ``extra`` holds small caller data (tensors and plain
    containers/scalars only).
    """
    if not isinstance(task, str) or not task:
        raise ValueError(f"save_checkpoint: task must be a non-empty str naming the trainer, got {task!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"save_checkpoint: step must be an int >= 0 (completed steps), got {step!r}")
    if not isinstance(config, Mapping):
        raise TypeError(f"save_checkpoint: config must be a dict, got {type(config).__name__}")
    for kind, objs, cls in (("modules", modules, nn.Module), ("optimizers", optimizers, torch.optim.Optimizer)):
        if not isinstance(objs, Mapping):
            raise TypeError(f"save_checkpoint: {kind} must be a dict name -> {cls.__name__}, got {type(objs).__name__}")
        for name, obj in objs.items():
            if not isinstance(name, str) or not isinstance(obj, cls):
                raise TypeError(f"save_checkpoint: {kind}[{name!r}] is a {type(obj).__name__}, expected {cls.__name__}"
                                " (pass the object itself, not its state_dict)")
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    now = _dt.datetime.now(_dt.timezone.utc)
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task,
        "config": _json_normalised(dict(config), "config"),
        "step": int(step),
        "modules": {name: m.state_dict() for name, m in modules.items()},
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "rng": capture_rng(),
        "meta": {"time": now.isoformat(timespec="seconds"), "unix_time": now.timestamp(), **_process_meta()},
        "extra": extra,
        "data_fingerprint": data_fingerprint,
    }
    _check_plain(ckpt["meta"], "meta")
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(ckpt, fh)
    return path


def _looks_like_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_checkpoint(
    path: str | os.PathLike,
    *,
    task: str | None = None,
    config: Mapping | None = None,
    map_location: Any = "cpu",
    data_fingerprint: str | None = None,
    mmap: bool = False,
) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (``weights_only=True``) and check task and config.

    ``task``/``config``: when given, must equal the checkpoint's (config compared after JSON normalisation).
    Raises FileNotFoundError when the file is missing, ValueError for anything that is not an lrkit checkpoint of
    this task and config. ``data_fingerprint``: when given, a checkpoint that records another training set's
    fingerprint is refused (resuming on other data would silently mix two datasets). ``mmap``: map the file
    instead of reading it (cheap when only ``step`` or ``config`` is needed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path (a run keeps it in checkpoints/latest.pt)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except OSError:
        raise  # permissions, I/O: not a format problem
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError/RuntimeError/KeyError/... on foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"{path} is not an lrkit checkpoint: torch.load(weights_only=True) cannot read it "
            f"({type(err).__name__}: {first[:200]}). lrkit checkpoints contain tensors and plain data only; "
            "a pickled module or another program's file cannot be resumed from"
        ) from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = ("it looks like a raw state_dict (e.g. released weights): load it into a module with "
                "module.load_state_dict(torch.load(path, weights_only=True))" if _looks_like_state_dict(obj)
                else f"it holds a {type(obj).__name__}" + (f" with keys {sorted(map(str, obj))[:8]}"
                                                           if isinstance(obj, dict) else ""))
        raise ValueError(f"{path} is not an lrkit checkpoint (no format={FORMAT!r} entry); {hint}")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format_version {version!r}; this lrkit reads up to "
                         f"{FORMAT_VERSION}: update lrkit")
    missing = [k for k in ("task", "config", "step", "modules", "optimizers", "rng") if k not in obj]
    if missing:
        raise ValueError(f"{path} is a damaged lrkit checkpoint: entries {missing} are missing")
    if task is not None and obj["task"] != task:
        raise ValueError(f"{path} is a checkpoint of task {obj['task']!r}, not {task!r}; "
                         f"use the {obj['task']!r} trainer or another run directory")
    if config is not None:
        diff = config_differences(obj["config"], config)
        if diff:
            raise ValueError(
                f"{path} was written with a different config ({len(diff)} key(s) differ):\n  "
                + "\n  ".join(diff)
                + "\npass the matching preset / sizes (the checkpoint's config is in its 'config' entry and in the "
                "run's config.json), or start a new run directory"
            )
    saved_fp = obj.get("data_fingerprint")
    if data_fingerprint is not None and saved_fp is not None and saved_fp != data_fingerprint:
        raise ValueError(
            f"{path} was trained on other data (fingerprint {saved_fp[:20]}...) than this run reads "
            f"({data_fingerprint[:20]}...): resume with the dataset folder it was trained on, or start a new run "
            "directory for this data")
    return obj


def checkpoint_step(path: str | os.PathLike, *, task: str | None = None) -> int:
    """The completed steps of a checkpoint, read through a memory map (the tensors are not loaded)."""
    return int(load_checkpoint(path, task=task, mmap=True)["step"])


def restore(
    ckpt: Mapping,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    rng: bool = True,
) -> int:
    """Load a checkpoint's states into ``modules``/``optimizers`` (strict) and, if ``rng``, the global RNGs.

    Every name, key and shape is checked first; on any mismatch one ValueError lists all of them and nothing is
    loaded. Returns the checkpoint's step.
    """
    problems: list[str] = []
    saved_mods, saved_opts = ckpt.get("modules", {}), ckpt.get("optimizers", {})
    for kind, saved, given in (("module", saved_mods, modules), ("optimizer", saved_opts, optimizers)):
        for name in sorted(set(saved) - set(given)):
            problems.append(f"{kind} {name!r} is in the checkpoint but was not passed")
        for name in sorted(set(given) - set(saved)):
            problems.append(f"{kind} {name!r} is not in the checkpoint")
    for name in sorted(set(saved_mods) & set(modules)):
        diff = state_diff(modules[name].state_dict(), saved_mods[name])
        problems += [f"module {name!r}: missing key {k!r}" for k in sorted(diff.missing)]
        problems += [f"module {name!r}: unexpected key {k!r}" for k in sorted(diff.unexpected)]
        problems += [f"module {name!r}: {k!r} has shape {have} in the checkpoint, {want} in the module"
                     for k, have, want in sorted(diff.shapes)]
    for name in sorted(set(saved_opts) & set(optimizers)):
        groups, saved_groups = optimizers[name].param_groups, saved_opts[name].get("param_groups", [])
        if len(groups) != len(saved_groups):
            problems.append(f"optimizer {name!r}: {len(saved_groups)} param group(s) in the checkpoint, "
                            f"{len(groups)} in the optimizer")
        else:
            for i, (g, sg) in enumerate(zip(groups, saved_groups)):
                if len(g["params"]) != len(sg["params"]):
                    problems.append(f"optimizer {name!r}: group {i} has {len(sg['params'])} parameters in the "
                                    f"checkpoint, {len(g['params'])} in the optimizer")
    if problems:
        raise ValueError(
            f"the checkpoint does not fit the given networks/optimizers ({len(problems)} problem(s)):\n  "
            + "\n  ".join(problems)
            + "\nbuild the networks with the checkpoint's config (same preset / sizes)"
        )
    for name, module in modules.items():
        module.load_state_dict(saved_mods[name], strict=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(saved_opts[name])
    if rng:
        restore_rng(ckpt["rng"])
    return int(ckpt["step"])
