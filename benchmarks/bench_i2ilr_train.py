"""Benchmark: I2I-LR training throughput (images/s) at a preset's size, fp32 and bf16 autocast.

One training image = one image of the batch; an iteration does the paper's four generator passes, the D step with
R1 and the G step (``I2ILRTask.train_step``, the code the trainer runs). Warm-up iterations are excluded; CUDA is
synchronized around the timed block. The result JSON records device, torch version, date and the config.

    python benchmarks/bench_i2ilr_train.py --preset celebahq128_quick --device cuda --out bench_train.json
    python benchmarks/bench_i2ilr_train.py --preset celebahq128_smoke --device cpu --precision fp32
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time

import torch

from lrkit.train.i2ilr_config import get_preset
from lrkit.train.i2ilr_task import I2ILRTask, open_training_set


def measure(preset: str, device: str, precision: str, iters: int, warmup: int, hr_size: int = 0) -> dict:
    cfg = get_preset(preset).with_overrides(precision=precision, **({"hr_size": hr_size} if hr_size else {}))
    task = I2ILRTask(cfg, open_training_set(cfg), device=device)
    for s in range(warmup):
        task.train_step(s)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for s in range(warmup, warmup + iters):
        task.train_step(s)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    out = {"preset": cfg.preset, "hr_size": cfg.hr_size, "lr_size": cfg.lr_size, "batch_size": cfg.batch_size,
           "precision": precision, "iters": iters, "seconds": sec, "iters_per_s": iters / sec,
           "images_per_s": iters * cfg.batch_size / sec,
           "g_params": sum(p.numel() for p in task.G.parameters()),
           "d_params": sum(p.numel() for p in task.D.parameters())}
    if device.startswith("cuda"):
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="celebahq128_quick")
    ap.add_argument("--hr-size", type=int, default=0, help="override the preset's HR size")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    dev_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or "cpu"
    res = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": a.device,
           "device_name": dev_name, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "results": [measure(a.preset, a.device, p, a.iters, a.warmup, a.hr_size) for p in a.precision]}
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
