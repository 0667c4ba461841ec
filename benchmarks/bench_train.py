"""Benchmark: training throughput (images/s) of I2I-LR or the StarGAN v2 baseline at a preset's size, fp32 and
bf16 autocast.

One training image = one image of the batch. An iteration is the trainer's own ``train_step``: I2I-LR's four
generator passes, D step with R1 and G step; StarGAN v2's two D steps, latent- and reference-guided G steps and
the EMA. Warm-up iterations are excluded; CUDA is synchronized around the timed block. The result JSON records
device, torch version, date and the config.

    python benchmarks/bench_train.py --method i2ilr --preset celebahq128_quick --device cuda --out i2ilr.json
    python benchmarks/bench_train.py --method stargan2 --preset celebahq256_quick --device cuda --out s2.json
    python benchmarks/bench_train.py --method i2ilr --preset celebahq128_smoke --device cpu --precision fp32
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time

import torch

from lrkit.cpu import configure_cpu
from lrkit.methods.i2ilr import config as i2ilr_config, task as i2ilr_task
from lrkit.methods.stargan2 import config as stargan2_config, task as stargan2_task

# method -> (config module, task class, training-set opener, name of the image-size field)
METHODS = {
    "i2ilr": (i2ilr_config, i2ilr_task.I2ILRTask, i2ilr_task.open_training_set, "hr_size"),
    "stargan2": (stargan2_config, stargan2_task.Stargan2Task, stargan2_task.open_training_set, "img_size"),
}


def measure(method: str, preset: str, device: str, precision: str, iters: int, warmup: int, size: int = 0) -> dict:
    configs, task_cls, open_train, size_field = METHODS[method]
    cfg = configs.get_preset(preset).with_overrides(precision=precision, **({size_field: size} if size else {}))
    configure_cpu(device)  # as the training loop does: no denormal slow path on the CPU (lrkit.cpu)
    task = task_cls(cfg, open_train(cfg), device=device)
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
    out = {"method": method, "preset": cfg.preset, "size": getattr(cfg, size_field), "batch_size": cfg.batch_size,
           "precision": precision, "iters": iters, "seconds": sec, "iters_per_s": iters / sec,
           "images_per_s": iters * cfg.batch_size / sec,
           # trained parameters per network (EMA copies excluded)
           "params": {name: sum(p.numel() for p in m.parameters()) for name, m in task.modules().items()
                      if not name.endswith("_ema")}}
    if device.startswith("cuda"):
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="i2ilr", choices=sorted(METHODS))
    ap.add_argument("--preset", default="celebahq128_quick")
    ap.add_argument("--size", type=int, default=0, help="override the preset's (HR) image size")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    dev_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or "cpu"
    res = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": a.device,
           "device_name": dev_name, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "results": [measure(a.method, a.preset, a.device, p, a.iters, a.warmup, a.size) for p in a.precision]}
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
