"""The one training-loop skeleton: run folder, loss log, sample PNGs, checkpoints and exact resume.

A trainer implements ``TrainTask`` (its networks, optimizers, one ``train_step(step)`` and one
``sample_grid(step)``); ``train`` does everything else, identically for every model:

    run_dir/
      config.json                  task config + loop config + provenance (written at start; resumes appended)
      losses.jsonl                 {"step": k, "time": s, **losses} every ``log_every`` steps (k = completed steps,
                                   1-based; s = training seconds summed over all sessions of the run)
      checkpoints/latest.pt        every ``checkpoint_every`` steps and at the end
      checkpoints/step_00001000.pt snapshots (only when ``keep_checkpoints`` > 0; the oldest are deleted)
      samples/step_00001000.png    ``sample_grid`` every ``sample_every`` steps and at the end

Exact resume (bit-identical on CPU): the checkpoint holds the modules, optimizers, completed step and the global
RNG states; the task must derive its batches and schedules from ``step`` (never from how many times it was
called). Sampling runs with the RNG state saved and restored around it, so whether and when samples are drawn
never changes training randomness. On resume, loss records past the checkpoint (written after it, before a crash)
are dropped so the log has no duplicates.

Failure handling: a non-finite loss stops the run *before* anything of that step is written (the last good
checkpoint stays); any other exception propagates and leaves the last checkpoint; Ctrl-C writes a checkpoint at
the last completed step and re-raises. The first Ctrl-C is held until the running step finishes (so the
checkpoint never holds a half-applied step); a second Ctrl-C aborts at once without writing.

CPU: when any of the task's parameters live on the CPU, ``train`` first flushes denormal floats to zero for the
process (``lrkit.cpu.configure_cpu``; otherwise they can make steps after the first update ~10x slower).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from lrkit.cpu import configure_cpu
from lrkit.data.ops import to_uint8
from lrkit.fsutil import append_jsonl, atomic_open, atomic_write_json, atomic_write_text, read_jsonl
from lrkit.train.checkpoint import capture_rng, load_checkpoint, restore, restore_rng, save_checkpoint

__all__ = ["LoopConfig", "TrainTask", "TrainResult", "NonFiniteLossError", "train"]

_SNAPSHOT = re.compile(r"^step_(\d{8,})\.pt$")
_RESERVED = ("step", "time")  # keys of every losses.jsonl record besides the losses


@dataclass(frozen=True)
class LoopConfig:
    steps: int  # total steps (iterations) of the run
    checkpoint_every: int  # also always at the end
    sample_every: int  # sample grid PNG every N steps (0 = never); also at the end
    log_every: int = 1  # JSONL loss record cadence
    keep_checkpoints: int = 0  # periodic snapshots kept besides latest (0 = only latest.pt)

    def __post_init__(self) -> None:
        minimum = {"steps": 0, "checkpoint_every": 1, "sample_every": 0, "log_every": 1, "keep_checkpoints": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"LoopConfig.{name} must be an int >= {low}, got {value!r}")


@runtime_checkable
class TrainTask(Protocol):
    name: str

    def config_dict(self) -> dict: ...  # JSON-able; saved; must match on resume

    def modules(self) -> dict[str, nn.Module]: ...  # everything with state (incl. EMA copies)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(self, step: int) -> dict[str, float]: ...  # one iteration at global 0-based index `step`;
    # the task derives its data batch/schedules from step

    def sample_grid(self, step: int) -> torch.Tensor: ...  # [3, H, W] in [-1, 1]; step = completed steps


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    final_step: int  # completed steps of the run (== loop.steps unless it was already past them)
    checkpoint: Path  # checkpoints/latest.pt
    losses_path: Path
    seconds: float  # wall time of this call's training (not of earlier sessions)
    steps_per_second: float  # steps of this call / seconds (0 when no step ran)


class NonFiniteLossError(FloatingPointError):
    """A loss came back NaN or infinite; the run stopped before writing anything of that step."""


class _InterruptGuard:
    """Hold the first SIGINT until the running step ends; a second one aborts at once (``_ForcedInterrupt``).

    Only installed in the main thread (Python delivers signals there and nowhere else).
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.pending:
            raise _ForcedInterrupt
        self.pending = True

    def __enter__(self) -> "_InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _ForcedInterrupt(KeyboardInterrupt):
    pass


def _check_task(task) -> None:
    missing = [m for m in ("config_dict", "modules", "optimizers", "train_step", "sample_grid")
               if not callable(getattr(task, m, None))]
    if missing or not isinstance(getattr(task, "name", None), str) or not task.name:
        raise TypeError(f"train expects a TrainTask (a non-empty str `name` and methods config_dict, modules, "
                        f"optimizers, train_step, sample_grid); {type(task).__name__} lacks "
                        f"{missing or ['name']}")


def _finite_losses(losses, step: int, task_name: str, last_checkpoint: str) -> dict[str, float]:
    """Validate one ``train_step`` result; ``step`` is the 1-based number of the step that produced it."""
    if not isinstance(losses, dict):
        raise TypeError(f"{task_name}.train_step must return a dict name -> float, got {type(losses).__name__}")
    out: dict[str, float] = {}
    for name, value in losses.items():
        if not isinstance(name, str) or name in _RESERVED:
            raise ValueError(f"{task_name}.train_step returned the loss name {name!r}; names must be str and not "
                             f"{list(_RESERVED)} (those are added by the loop)")
        try:
            value = float(value)  # also takes 0-dim tensors
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{task_name}.train_step: loss {name!r} is a {type(value).__name__}, not a number "
                            "(return floats, e.g. loss.item())") from err
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"{task_name}: loss {name!r} is {value} at step {step}; the run stopped without writing that step "
                f"({last_checkpoint}). The run is deterministic, so resuming unchanged repeats this step: lower the "
                "learning rates or check the data in a new run"
            )
        out[name] = value
    return out


def _save_png(grid, path: Path, task_name: str) -> None:
    if not isinstance(grid, torch.Tensor) or not grid.is_floating_point() or grid.dim() != 3 or grid.shape[0] != 3:
        what = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
        raise ValueError(f"{task_name}.sample_grid must return a float tensor [3, H, W] in [-1, 1], got {what}")
    with atomic_open(path, "wb") as fh:
        Image.fromarray(to_uint8(grid)).save(fh, format="PNG")


def _snapshots(ckpt_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in ckpt_dir.glob("step_*.pt") if (m := _SNAPSHOT.match(p.name))]
    return sorted(found)


def _drop_records_after(losses_path: Path, step: int) -> int:
    """Rewrite losses.jsonl without records past ``step`` (written after the checkpoint); returns how many."""
    records = read_jsonl(losses_path)
    kept = [r for r in records if int(r.get("step", 0)) <= step]
    if len(kept) != len(records):
        atomic_write_text(losses_path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in kept))
    return len(records) - len(kept)


def _provenance() -> dict:
    from lrkit.runs.provenance import environment_info, git_state

    return {"git": git_state(), "environment": environment_info()}


def _trains_on_cpu(task: TrainTask) -> bool:
    """Whether any of the task's parameters or buffers live on the CPU (where its steps then run CPU kernels)."""
    return any(t.device.type == "cpu" for m in task.modules().values()
               for t in (*m.parameters(), *m.buffers()))


def train(task: TrainTask, run_dir, loop: LoopConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run ``task`` for ``loop.steps`` steps in ``run_dir`` (see the module docstring for the layout).

    ``resume=False`` needs a run folder without a run in it (never overwrites work); ``resume=True`` continues
    from ``checkpoints/latest.pt``, whose task name and config must match ``task``.
    """
    _check_task(task)
    if not isinstance(loop, LoopConfig):
        raise TypeError(f"train: loop must be a LoopConfig, got {type(loop).__name__}")
    if _trains_on_cpu(task):
        configure_cpu("cpu")  # flush denormals, which made CPU GAN steps ~10x slower after step 0 (lrkit.cpu)
    run_dir = Path(run_dir)
    ckpt_dir, samples_dir = run_dir / "checkpoints", run_dir / "samples"
    latest, losses_path, config_path = ckpt_dir / "latest.pt", run_dir / "losses.jsonl", run_dir / "config.json"
    task_config = task.config_dict()
    if not isinstance(task_config, dict):
        raise TypeError(f"{task.name}.config_dict() must return a dict, got {type(task_config).__name__}")
    try:
        json.dumps(task_config)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{task.name}.config_dict() must be JSON-serialisable: {err}") from err

    # Optional: the content fingerprint of the task's training data, recorded in every checkpoint and checked on
    # resume (another dataset folder must not continue this run).
    data_fp = getattr(task, "data_fingerprint", None)
    start, train_seconds = 0, 0.0
    if resume:
        if not latest.is_file():
            raise FileNotFoundError(f"cannot resume: {latest} does not exist; drop --resume to start a new run "
                                    f"in {run_dir}")
        ckpt = load_checkpoint(latest, task=task.name, config=task_config, data_fingerprint=data_fp)
        start = restore(ckpt, task.modules(), task.optimizers(), rng=True)
        train_seconds = float(ckpt.get("extra", {}).get("train_seconds", 0.0))
        del ckpt  # the states now live in the modules; free the copy
        _drop_records_after(losses_path, start)
        if loop.steps <= start:
            return TrainResult(run_dir, start, latest, losses_path, 0.0, 0.0)
        record = json.loads(config_path.read_text()) if config_path.is_file() else {"task": task.name,
                                                                                    "task_config": task_config}
        record.setdefault("resumes", []).append({"from_step": start, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                                 "loop": dataclasses.asdict(loop), **_provenance()})
        atomic_write_json(config_path, record)
    else:
        existing = [p for p in (latest, losses_path, config_path) if p.exists()]
        if existing:
            raise FileExistsError(
                f"{run_dir} already holds a run ({', '.join(str(p.relative_to(run_dir)) for p in existing)} exist; "
                + ("it has a checkpoint): pass --resume to continue it, or choose another run directory"
                   if latest.exists() else "but no checkpoint to resume from): choose another run directory, or "
                   "delete this one to start over")
                + ". Nothing was overwritten."
            )
        atomic_write_json(config_path, {"task": task.name, "task_config": task_config,
                                        "loop": dataclasses.asdict(loop),
                                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **_provenance()})

    step = start  # completed steps
    last_ckpt = start if resume else None
    t0 = time.perf_counter()

    def elapsed() -> float:
        return train_seconds + (time.perf_counter() - t0)

    def checkpoint(snapshot: bool) -> None:
        nonlocal last_ckpt
        save_checkpoint(latest, task=task.name, config=task_config, step=step, modules=task.modules(),
                        optimizers=task.optimizers(), data_fingerprint=data_fp,
                        extra={**(task.extra_state() if callable(getattr(task, "extra_state", None)) else {}),
                               "train_seconds": elapsed()})  # optional task notes (e.g. a loss term left off)
        last_ckpt = step
        if snapshot and loop.keep_checkpoints > 0:
            # Copy rather than serialise twice; latest.pt was just replaced atomically, so it is complete.
            with open(latest, "rb") as src, atomic_open(ckpt_dir / f"step_{step:08d}.pt", "wb") as dst:
                shutil.copyfileobj(src, dst)
            for _, old in _snapshots(ckpt_dir)[:-loop.keep_checkpoints]:
                old.unlink(missing_ok=True)

    def sample() -> None:
        rng = capture_rng()  # sampling may draw random codes; it must not shift the training streams
        try:
            with torch.no_grad():
                grid = task.sample_grid(step)
            _save_png(grid, samples_dir / f"step_{step:08d}.png", task.name)
        finally:
            restore_rng(rng)

    bar = tqdm(total=loop.steps, initial=start, disable=not progress, desc=task.name, unit="it", dynamic_ncols=True)
    try:
        with _InterruptGuard() as guard:
            try:
                while step < loop.steps:
                    where = (f"{latest} still holds step {last_ckpt}" if last_ckpt is not None
                             else "no checkpoint was written yet")
                    losses = _finite_losses(task.train_step(step), step + 1, task.name, where)
                    step += 1
                    if step % loop.log_every == 0 or step == loop.steps:
                        append_jsonl(losses_path, {"step": step, "time": round(elapsed(), 4), **losses})
                    if loop.sample_every and (step % loop.sample_every == 0 or step == loop.steps):
                        sample()
                    if step % loop.checkpoint_every == 0 or step == loop.steps:
                        checkpoint(snapshot=True)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]}, refresh=False)
                    if guard.pending:
                        raise KeyboardInterrupt
            except _ForcedInterrupt:
                raise  # second Ctrl-C: the step may be half-applied; keep the last checkpoint
            except KeyboardInterrupt:
                if step != last_ckpt:
                    checkpoint(snapshot=False)
                bar.write(f"interrupted: checkpoint at step {step} in {latest}; continue with --resume")
                raise
    finally:
        bar.close()

    seconds = time.perf_counter() - t0
    done = step - start
    return TrainResult(run_dir, step, latest, losses_path, seconds, done / seconds if seconds > 0 else 0.0)
