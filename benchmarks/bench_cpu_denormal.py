"""Benchmark: per-step CPU training time of the I2I-LR trainer with denormal flushing off vs on, side by side.

Two tasks with the same seed (same initial weights, same batches) train for ``--steps`` steps; step ``s`` of the
flushing-off task and step ``s`` of the flushing-on task run one after the other (order alternated every step),
so background load on a shared machine falls on both alike. Each side switches the setting in every intra-op
thread (``lrkit.cpu.set_flush_denormal``) before its step. Step 0 runs on freshly initialised weights; from step
1 on, D's first Adam update can push its fake logits low enough (below about -70; the losses' ``d_fake_logit``)
that D's backward underflows into denormal gradient maps (benchmarks/README.md: at the preset's batch 8, not at
batch 2). After every step the JSON records the step's wall time, the losses, and how many float32 values of the
parameters, gradients and Adam states are denormal (read from the bits, so the count is exact whatever the
setting).

    python benchmarks/bench_cpu_denormal.py --out bench_cpu_denormal.json        # paper widths, 128 px, batch 2
    python benchmarks/bench_cpu_denormal.py --batch 0 --steps 2 --out b8.json    # batch 8 as the preset (~15 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time

import torch

from lrkit.cpu import flushes_denormals, set_flush_denormal
from lrkit.train import i2ilr_config, i2ilr_task


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _denormals(t: torch.Tensor) -> int:
    if t.dtype != torch.float32:
        return 0
    bits = t.detach().view(torch.int32)
    return int(((bits & 0x7F800000) == 0).logical_and_((bits & 0x007FFFFF) != 0).sum())


def _census(task) -> dict[str, int]:
    """Denormal float32 values now held by the task's trained networks (EMA copies: in 'ema')."""
    out = {"params": 0, "grads": 0, "adam_states": 0, "ema": 0, "values": 0}
    for name, m in task.modules().items():
        for p in m.parameters():
            key = "ema" if name.endswith("_ema") else "params"
            out[key] += _denormals(p)
            out["values"] += p.numel() if key == "params" else 0
            if p.grad is not None:
                out["grads"] += _denormals(p.grad)
    for opt in task.optimizers().values():
        for state in opt.state.values():
            out["adam_states"] += sum(_denormals(v) for v in state.values() if isinstance(v, torch.Tensor))
    return out


def run(preset: str, size: int, steps: int, batch: int, warmup: int) -> dict:
    overrides = {"hr_size": size} if size else {}
    if batch:
        overrides["batch_size"] = batch
    cfg = i2ilr_config.get_preset(preset).with_overrides(synth_n_train=max(64, 2 * (batch or 8)), synth_n_val=8,
                                                         **overrides)
    train_set = i2ilr_task.open_training_set(cfg)
    if warmup:  # one-time costs (allocator, oneDNN primitives) would otherwise fall on whichever side runs first
        spare = i2ilr_task.I2ILRTask(cfg, train_set, device="cpu")
        set_flush_denormal(True)
        t0 = time.perf_counter()
        for s in range(warmup):
            spare.train_step(s)
        print(f"warm-up ({warmup} step(s) of a spare task): {time.perf_counter() - t0:.2f} s", flush=True)
        del spare
    sides = {flag: {"task": i2ilr_task.I2ILRTask(cfg, train_set, device="cpu"), "seconds": [], "losses": [],
                    "denormals": []} for flag in ("off", "on")}
    for step in range(steps):
        for flag in (("off", "on") if step % 2 == 0 else ("on", "off")):
            side = sides[flag]
            ok = set_flush_denormal(flag == "on")
            assert ok and flushes_denormals() == (flag == "on"), f"could not switch flushing {flag}"
            t0 = time.perf_counter()
            losses = side["task"].train_step(step)
            side["seconds"].append(round(time.perf_counter() - t0, 3))
            side["losses"].append({k: round(v, 6) for k, v in losses.items()})
            side["denormals"].append(_census(side["task"]))
            print(f"step {step} flushing {flag:3s}: {side['seconds'][-1]:8.2f} s  denormals "
                  f"{side['denormals'][-1]}", flush=True)
    set_flush_denormal(True)
    off, on = sides["off"]["seconds"], sides["on"]["seconds"]
    later_off, later_on = off[1:], on[1:]
    summary = {"step0_off_over_on": round(off[0] / on[0], 3)}
    if later_on:
        summary["later_steps_mean_off_s"] = round(sum(later_off) / len(later_off), 3)
        summary["later_steps_mean_on_s"] = round(sum(later_on) / len(later_on), 3)
        summary["later_steps_off_over_on"] = round(sum(later_off) / sum(later_on), 3)
    return {"preset": cfg.preset, "hr_size": cfg.hr_size, "lr_size": cfg.lr_size, "batch_size": cfg.batch_size,
            "widths": {"g_base": cfg.g_base, "g_max": cfg.g_max, "d_base": cfg.d_base_channels, "d_max": cfg.d_max},
            "params": {name: sum(p.numel() for p in m.parameters())
                       for name, m in sides["on"]["task"].modules().items() if not name.endswith("_ema")},
            "steps": steps, "summary": summary,
            **{f"flush_{flag}": {k: v for k, v in side.items() if k != "task"} for flag, side in sides.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="celebahq128_quick", help="I2I-LR preset (default: paper widths)")
    ap.add_argument("--size", type=int, default=0, help="override the preset's HR size (0: keep it, 128 px)")
    ap.add_argument("--batch", type=int, default=2, help="override the batch size (0: keep the preset's 8)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps of a spare task before the timed ones")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    res = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": "cpu",
           "device_name": _cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "load_average_start": [round(x, 2) for x in os.getloadavg()],
           **run(a.preset, a.size, a.steps, a.batch, a.warmup)}
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    res["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
