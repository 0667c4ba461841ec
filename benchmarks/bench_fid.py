"""Benchmark: lrkit's ``fid_pytorchfid`` against pytorch-fid's command line on the same two image folders.

Both run as fresh subprocesses and are timed by wall clock (start-up, model construction, image decoding, feature
extraction and the Fréchet step included), on the same folders and device, with batch size 50; lrkit's feature
cache is disabled. Reported per side: images/s = (images in both folders) / wall time, and the feature-extraction
rate alone (pytorch-fid's from its own tqdm bars, lrkit's from a timer around the extraction). The two FIDs must
agree to a relative 1e-4.

Weights: the official ``pt_inception-2015-12-05-6726825d.pth`` when present (lrkit's weights folder or
``$TORCH_HOME/hub/checkpoints``, sha256 prefix checked), else seeded random weights of the same architecture, written
to a benchmark-private ``TORCH_HOME`` (never into your real torch cache) and labelled RANDOM in the output: the
timings are then valid, the FID values meaningless.

    python benchmarks/bench_fid.py --out bench_fid.json                 # 500 + 500 synthetic 128 px PNGs, CPU
    python benchmarks/bench_fid.py --n 2000 --device cuda --out gpu.json
    python benchmarks/bench_fid.py --real DIR_A --fake DIR_B --out mine.json
    python benchmarks/bench_fid.py --folder DIR --out mine.json        # DIR's images split into two halves
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PT_FILE = "pt_inception-2015-12-05-6726825d.pth"
PT_PREFIX = "6726825d"


# ------------------------------------------------------------------------------------------------- images


def synthetic_images(folder: Path, n: int, size: int, seed: int) -> Path:
    """``n`` PNGs of ``size`` px: seeded smooth noise (16x16 upscaled + fine noise) with 1-3 random shapes."""
    import numpy as np
    from PIL import Image, ImageDraw

    stamp = folder / ".bench_manifest"
    want = f"n={n} size={size} seed={seed} v1"
    if stamp.is_file() and stamp.read_text() == want:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
        arr = np.asarray(base).astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = (int(v) for v in rng.integers(0, size - 8, 2))
            x1, y1 = x0 + int(rng.integers(8, size // 2)), y0 + int(rng.integers(8, size // 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
        im.save(folder / f"{i:05d}.png")
    stamp.write_text(want)
    return folder


def split_folder(src: Path, work: Path) -> tuple[Path, Path]:
    """Symlink ``src``'s images alternately into work/real and work/fake (flat, as pytorch-fid's CLI needs)."""
    sys.path.insert(0, str(REPO / "lib"))
    from lrkit.metrics.imagesource import list_images

    files = list_images(src)
    if len(files) < 4:
        raise SystemExit(f"--folder {src}: need at least 4 images, found {len(files)}")
    out = []
    for part, chosen in (("real", files[0::2]), ("fake", files[1::2])):
        d = work / f"split_{part}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for i, f in enumerate(chosen):
            (d / f"{i:06d}{f.suffix.lower()}").symlink_to(f.resolve())
        out.append(d)
    return out[0], out[1]


# ------------------------------------------------------------------------------------------------ weights


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def ensure_weights(work: Path) -> tuple[Path, Path, str]:
    """(TORCH_HOME for the CLI, weight file for lrkit, kind) with kind "official" or "RANDOM"."""
    candidates = []
    try:
        sys.path.insert(0, str(REPO / "lib"))
        from lrkit.weights import official_path

        candidates.append(official_path("pytorchfid_inception"))
    except Exception:  # noqa: BLE001 - the registry is optional here
        pass
    torch_home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
    candidates.append(torch_home / "hub" / "checkpoints" / PT_FILE)
    bench_home = work / "torch_home"
    target = bench_home / "hub" / "checkpoints" / PT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    for c in candidates:
        if c.is_file() and sha256(c).startswith(PT_PREFIX):
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(c.resolve())
            return bench_home, c, "official"
    if target.is_symlink():
        target.unlink()
    if not target.is_file():
        from lrkit.metrics.fid import make_random_weights

        make_random_weights("fid_pytorchfid", target, seed=0)
    return bench_home, target, "RANDOM"


# ------------------------------------------------------------------------------------------------ runners


def _tqdm_elapsed(stderr: str) -> list[float]:
    """Elapsed seconds of each finished tqdm bar ("100%|...| 10/10 [01:23<00:00, ...]"), one entry per bar.

    tqdm redraws with carriage returns and prints a finished bar's last state twice (update, then close), so the
    bars are told apart by their "0/N" start line and the last complete state of each is kept."""
    bars: list[float | None] = []
    for line in re.split(r"[\r\n]+", stderr):
        m = re.search(r"(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<", line)
        if not m:
            continue
        done, total = int(m.group(1)), int(m.group(2))
        if done == 0 or not bars:
            bars.append(None)
        if done == total:
            bars[-1] = 3600 * int(m.group(3) or 0) + 60 * int(m.group(4)) + int(m.group(5))
    return [b for b in bars if b is not None]


def run_cli(real: Path, fake: Path, device: str, batch_size: int, torch_home: Path, n_images: int) -> dict:
    env = dict(os.environ, TORCH_HOME=str(torch_home))
    if device.startswith("cuda"):
        env["NVIDIA_TF32_OVERRIDE"] = "0"  # full fp32 convolutions, as lrkit uses: same arithmetic, same FID
    cmd = [sys.executable, "-m", "pytorch_fid", str(real), str(fake), "--device", device,
           "--batch-size", str(batch_size)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_s": wall, "command": " ".join(cmd)}
    m = re.search(r"FID:\s+([-+0-9.eE]+|nan)", proc.stdout)
    elapsed = _tqdm_elapsed(proc.stderr)
    return {
        "command": " ".join(cmd),
        "wall_s": wall,
        "fid": float(m.group(1)) if m else None,
        "images_per_s": n_images / wall,
        # pytorch-fid's own rate: images over the time its two progress bars ran (1 s resolution).
        "extract_images_per_s": n_images / sum(elapsed) if len(elapsed) == 2 and sum(elapsed) > 0 else None,
        "extract_s": float(sum(elapsed)) if len(elapsed) == 2 else None,
    }


def worker(args) -> None:
    """In a fresh process: what ``fid_pytorchfid(real, fake, cache=False, allow_singular=True)`` does, through its
    public parts (``inception_stats`` per set, then ``frechet_distance``) so that each part is timed; prints JSON."""
    t_start = time.perf_counter()
    sys.path.insert(0, str(REPO / "lib"))
    import warnings

    import torch

    from lrkit.metrics import fid
    from lrkit.metrics.frechet import check_sample_size, frechet_distance
    from lrkit.weights import resolve

    label = resolve("pytorchfid_inception", args.weights).label
    stats = []
    t_extract = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "unverified weights" notice: the label goes into the JSON instead
        for src, what in ((args.real, "real images"), (args.fake, "fake images")):
            t = time.perf_counter()
            stats.append(fid.inception_stats(Path(src), "fid_pytorchfid", weights=args.weights,
                                             batch_size=args.batch_size, device=args.device, cache=False,
                                             what=what))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t_extract += time.perf_counter() - t
    (m1, s1, n1), (m2, s2, n2) = stats
    t = time.perf_counter()
    value = frechet_distance(m1, s1, m2, s2)
    t_frechet = time.perf_counter() - t
    singular = check_sample_size(n1, 2048, allow_singular=True) or check_sample_size(n2, 2048, allow_singular=True)
    print(json.dumps({"fid": value, "n": n1 + n2, "extract_s": t_extract, "frechet_s": t_frechet,
                      "in_process_s": time.perf_counter() - t_start, "singular_covariance": singular,
                      "weights": label}))


def run_lrkit(real: Path, fake: Path, device: str, batch_size: int, weights: Path, n_images: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", "--real", str(real), "--fake", str(fake),
           "--device", device, "--batch-size", str(batch_size), "--weights", str(weights)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_s": wall}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(wall_s=wall, images_per_s=n_images / wall, extract_images_per_s=n_images / res["extract_s"],
               call="fid_pytorchfid(real, fake, cache=False) as its parts: inception_stats x2 + "
                    "frechet_distance")
    return res


def summarize(runs: list[dict]) -> dict:
    """Medians over repetitions (wall time, rates), the FID of the first run, and every run as measured."""
    import statistics

    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error", "no run"), "runs": runs}
    out = dict(ok[0])
    for key in ("wall_s", "images_per_s", "extract_images_per_s", "extract_s", "frechet_s"):
        values = [r[key] for r in ok if r.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
    fids = {r.get("fid") for r in ok}
    out["fid_identical_across_runs"] = len(fids) == 1
    out["runs"] = runs
    return out


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="synthetic images per folder (default 500)")
    p.add_argument("--size", type=int, default=128, help="synthetic image size in px (default 128)")
    p.add_argument("--folder", type=Path, help="use this folder's images instead (split in two halves)")
    p.add_argument("--real", type=Path, help="use this folder as the first set (with --fake)")
    p.add_argument("--fake", type=Path, help="use this folder as the second set (with --real)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--repeat", type=int, default=1, help="timed runs per side, alternating the order (medians)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lrkit_bench_fid",
                   help="scratch folder for images and random weights")
    p.add_argument("--out", type=Path, help="write the JSON result here")
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        worker(args)
        return 0

    args.work.mkdir(parents=True, exist_ok=True)
    if args.real or args.fake:
        if not (args.real and args.fake):
            p.error("--real and --fake go together")
        real, fake = args.real, args.fake
    elif args.folder:
        real, fake = split_folder(args.folder, args.work)
    else:
        print(f"making {args.n} + {args.n} synthetic {args.size} px images in {args.work} ...", flush=True)
        real = synthetic_images(args.work / f"real_{args.n}_{args.size}", args.n, args.size, seed=1)
        fake = synthetic_images(args.work / f"fake_{args.n}_{args.size}", args.n, args.size, seed=2)
    sys.path.insert(0, str(REPO / "lib"))
    from lrkit.metrics.imagesource import list_images

    n_images = len(list_images(real)) + len(list_images(fake))
    torch_home, weight_file, kind = ensure_weights(args.work)
    print(f"weights: {kind} ({weight_file})", flush=True)

    # Alternate the order on each repetition so slow drifts in machine load hit both sides alike.
    cli_runs, our_runs = [], []
    for rep in range(args.repeat):
        order = ("cli", "lrkit") if rep % 2 == 0 else ("lrkit", "cli")
        for which in order:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            print(f"[{rep + 1}/{args.repeat}] timing {'python -m pytorch_fid' if which == 'cli' else 'lrkit'} "
                  f"(load average {load}) ...", flush=True)
            if which == "cli":
                r = run_cli(real, fake, args.device, args.batch_size, torch_home, n_images)
                cli_runs.append(r)
            else:
                r = run_lrkit(real, fake, args.device, args.batch_size, weight_file, n_images)
                our_runs.append(r)
            r["load_average_at_start"] = load
            print(f"  {r.get('wall_s', 0):.1f} s wall" + (f"  ERROR {r['error'][-300:]}" if "error" in r else ""),
                  flush=True)
    cli, ours = summarize(cli_runs), summarize(our_runs)

    import pytorch_fid
    import torch

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
        "device_name": device_name(args.device),
        "torch": torch.__version__,
        "pytorch_fid": getattr(pytorch_fid, "__version__", "?"),
        "python": platform.python_version(),
        "images": n_images,
        "image_size": args.size if not (args.folder or args.real) else None,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "weights": kind,
        "weights_note": ("official pytorch-fid Inception weights" if kind == "official" else
                         "RANDOM weights of pytorch-fid's Inception architecture: timings valid, FID values "
                         "meaningless"),
        "pytorch_fid_cli": cli,
        "lrkit": ours,
    }
    ok = "error" not in cli and "error" not in ours and cli.get("fid") is not None
    if ok:
        rel = abs(ours["fid"] - cli["fid"]) / max(abs(cli["fid"]), 1e-12)
        result.update(
            fid_rel_diff=rel,
            fids_agree=rel <= 1e-4,
            speedup_wall=cli["wall_s"] / ours["wall_s"],
            speedup_extraction=(ours["extract_images_per_s"] / cli["extract_images_per_s"]
                                if cli.get("extract_images_per_s") else None),
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if ok:
        print(f"\n{n_images} images, {result['device_name']}: pytorch-fid CLI {cli['images_per_s']:.2f} img/s "
              f"({cli['wall_s']:.1f} s), lrkit {ours['images_per_s']:.2f} img/s ({ours['wall_s']:.1f} s): "
              f"{result['speedup_wall']:.2f}x; FIDs {cli['fid']:.6g} vs {ours['fid']:.6g} "
              f"(rel. diff {result['fid_rel_diff']:.1e}, {'agree' if result['fids_agree'] else 'DISAGREE'})")
    return 0 if ok and result["fids_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
