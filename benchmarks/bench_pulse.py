"""Benchmark: PULSE batched vs one image at a time, and I2I-LR's forward pass vs PULSE, per output image.

Both measured side by side in one process on one device, same generator, same steps:

* PULSE batched: ``--images`` LR targets x ``--starts`` duplicates in one search (``chunk`` = all of them);
* PULSE one at a time: the first ``--single`` of those candidates, each as its own search of batch 1 (PULSE's
  own way: one image per call), timed in total; outputs/s = candidates / seconds;
* I2I-LR: the shipped 64 px model (``celebahq256_cpu``) translating the same targets with as many HR references
  as PULSE makes outputs, one batched forward pass (after a warm-up), and one output per call.

The LR targets are synthfaces val images average-pooled to 8x8 (the I2I-LR data). The generator is a ProGAN
checkpoint (``--generator progan:CKPT``; default the shipped/cached ``sr_nam64_cpu`` from ``--runs``).

    python benchmarks/bench_pulse.py --out bench_pulse.json
    python benchmarks/bench_pulse.py --images 64 --starts 4 --device cuda --out gpu.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time

import torch

from lrkit.cpu import configure_cpu
from lrkit.data.ops import make_lr
from lrkit.methods.i2ilr.config import get_preset as i2ilr_preset
from lrkit.methods.i2ilr.inference import load_i2ilr, translate
from lrkit.methods.i2ilr.task import open_val_set
from lrkit.methods.progan.config import get_preset as progan_preset
from lrkit.methods.progan.latent import load_progan
from lrkit.methods.progan.task import ensure_trained
from lrkit.methods.pulse.config import PulseConfig
from lrkit.methods.pulse.pulse import run_pulse
from lrkit.train.shipped import resolve_checkpoint


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="", help="progan:CKPT (default: sr_nam64_cpu from the model cache)")
    ap.add_argument("--runs", default="runs", help="model cache root for the default ProGAN")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--single", type=int, default=8, help="candidates run one at a time")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    configure_cpu(args.device)

    if args.generator:
        ckpt = args.generator.split(":", 1)[1]
    else:
        ckpt = ensure_trained(progan_preset("sr_nam64_cpu"), args.runs, device=args.device, train=False)
    gen = load_progan(ckpt, device=args.device)
    i2i_cfg = i2ilr_preset("celebahq256_cpu")
    model = load_i2ilr(resolve_checkpoint("shipped:celebahq256_cpu", "i2ilr"), device=args.device)
    n, k = args.images, args.starts
    val = open_val_set(i2i_cfg, n=max(i2i_cfg.synth_n_val, n + n * k))
    imgs = val.pool.get(list(range(n + n * k)))
    targets = make_lr(imgs[:n], i2i_cfg.lr_size)
    refs = imgs[n:]  # one HR reference per PULSE output
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo: not timed
    load = os.getloadavg()

    cfg = PulseConfig(steps=args.steps, duplicates=k, chunk=n * k, downscale="avgpool")
    run_pulse(gen, targets[:1], PulseConfig(steps=2, downscale="avgpool"), device=args.device)  # warm-up
    _sync(args.device)
    batched = run_pulse(gen, targets, cfg, device=args.device)
    single_cfg = PulseConfig(steps=args.steps, duplicates=1, chunk=1, downscale="avgpool")
    t0 = time.perf_counter()
    for c in range(args.single):
        run_pulse(gen, targets[c // k: c // k + 1], single_cfg.with_overrides(seed=c), device=args.device)
    _sync(args.device)
    single_s = time.perf_counter() - t0

    src, tgt = refs, targets.repeat_interleave(k, 0)
    translate(model.G, src[:2], tgt[:2])
    _sync(args.device)
    t0 = time.perf_counter()
    translate(model.G, src, tgt, batch_size=len(src))
    _sync(args.device)
    i2i_batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in range(args.single):
        translate(model.G, src[c:c + 1], tgt[c:c + 1])
    _sync(args.device)
    i2i_single_s = time.perf_counter() - t0

    res = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__, "load_average_at_start": load,
        "generator": str(ckpt), "generator_size": gen.output_size, "i2ilr": "celebahq256_cpu (shipped, 64 px)",
        "steps": args.steps, "images": n, "starts": k, "single_candidates": args.single,
        "pulse_batched_outputs_per_s": n * k / batched.seconds,
        "pulse_single_outputs_per_s": args.single / single_s,
        "pulse_batched_ms_per_output": batched.ms_per_output,
        "pulse_single_ms_per_output": 1000 * single_s / args.single,
        "i2ilr_batched_ms_per_output": 1000 * i2i_batched_s / len(src),
        "i2ilr_single_ms_per_output": 1000 * i2i_single_s / args.single,
        "pulse_within_eps": float(batched.within_eps.double().mean()),
    }
    res["batched_speedup"] = res["pulse_batched_outputs_per_s"] / res["pulse_single_outputs_per_s"]
    res["i2ilr_vs_pulse_batched"] = res["pulse_batched_ms_per_output"] / res["i2ilr_batched_ms_per_output"]
    res["i2ilr_vs_pulse_single"] = res["pulse_single_ms_per_output"] / res["i2ilr_single_ms_per_output"]
    print(json.dumps(res, indent=1))
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
