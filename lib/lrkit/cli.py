"""The ``lrkit`` command line. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lrkit.errors import UserError
from lrkit.profiles import PROFILES


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from lrkit.runs.reproduce import reproduce

    res = reproduce(profile=args.profile, only=args.only, data_root=args.data_root, jobs=args.jobs,
                    device=args.device, output_root=args.output_root, runs_dir=args.runs_dir, data=args.data,
                    overrides=args.parameters, cell_timeout=args.cell_timeout)
    width = max(len(n) for n in res.statuses)
    print(f"\nrun {res.run_id} (profile {args.profile})", file=sys.stderr)
    for name, status in res.statuses.items():
        print(f"  {name:<{width}}  {status}", file=sys.stderr)
    print(f"HTML report: {res.index_html}")
    return 0 if res.ok else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    from lrkit.runs.compare import compare_runs
    from lrkit.runs.provenance import repo_root

    res = compare_runs(args.run_a, args.run_b, Path(args.output_root or repo_root()), rtol=args.rtol, atol=args.atol)
    print(json.dumps(res.to_dict(), indent=2, default=str) if args.json else res.format(show_all=args.all))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lrkit.runs.provenance import repo_root
    from lrkit.runs.report import write_runs_index

    if args.tables:
        from lrkit.runs.artifacts import rerender_tables

        done = rerender_tables(Path(args.output_root or repo_root()), args.tables)
        print(f"re-rendered {len(done)} table(s) of paper_tables/{args.tables} from their CSVs")
        return 0
    runs = Path(args.runs_dir or repo_root() / "runs")
    index = write_runs_index(runs, rebuild=not args.no_rebuild)
    print(f"HTML index of all runs: {index}")
    if args.check:
        from lrkit.runs.browser import check_report

        bad = 0
        for run_index in [index, *sorted(runs.glob("*/index.html"), reverse=True)[: args.check]]:
            shot = run_index.parent / "screenshot.png" if run_index != index else None
            for c in check_report(run_index, screenshot=shot):
                bad += not c.ok
                print(c.problems())
        if shot is not None:  # the newest run's page links its screenshot now
            write_runs_index(runs, rebuild=not args.no_rebuild)
        return 1 if bad else 0
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from lrkit.explore.lab import main_lab

    return main_lab(port=args.port, ip=args.ip, token=args.token, open_browser=not args.no_browser)


def _cmd_data_check(args: argparse.Namespace) -> int:
    from lrkit.data.check import main_check

    return main_check(args.path, as_json=args.json)


def _cmd_data_download(args: argparse.Namespace) -> int:
    from lrkit.data.download import main_download

    return main_download(args.name, args.root)


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from lrkit.data.synthfaces import export_folder

    out = export_folder(args.variant, args.out, n_train=args.n_train, n_val=args.n_val, size=args.size,
                        seed=args.seed)
    print(out)
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from lrkit import weights as W

    if args.action == "status":
        rows = W.status()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"weights folder: {W.weights_dir()} (set LRKIT_WEIGHTS_DIR to change)")
            for r in rows:
                state = "present" if r["present"] else "MISSING"
                if r["present"]:
                    state += f", verified: {r['verified']}"
                print(f"- {r['name']}: {state}\n    file {r['file']}  {r['checksum']}\n    from {r['url']}"
                      f"\n    at {r['path']}\n    used by {r['used_by']}")
        return 0
    names = args.names or [n for n in W.WEIGHTS]
    if args.action == "path":
        for n in names:
            print(W.official_path(n))
        return 0
    failed = 0
    for n in names:  # fetch
        try:
            print(W.fetch(n))
        except (W.WeightsUnavailable, W.WeightsChecksumError) as exc:
            print(f"lrkit: error: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def _cmd_metric(args: argparse.Namespace) -> int:
    from lrkit import weights as W
    from lrkit.metrics import registry

    if args.name == "synthfaces_factors":
        from lrkit.metrics.factor_files import synthfaces_factors_files

        values, labels = synthfaces_factors_files(args.real, args.fake, split=args.split, device=args.device), \
            ["synthfaces factor probes (trained here, cached by content)"]
    else:
        spec = registry.get_metric(args.name)
        try:
            resolved = registry.resolve_weights(spec, args.weights)
        except (W.WeightsUnavailable, W.WeightsChecksumError) as exc:
            print(f"lrkit: {args.name} unavailable: {exc}", file=sys.stderr)
            return 2
        opts = {"allow_singular": True} if args.allow_singular else {}
        values = registry.compute(args.name, real=args.real, fake=args.fake, weights=args.weights,
                                  device=args.device, batch_size=args.batch_size, **opts)
        labels = [r.label for r in resolved]
    if args.json:
        print(json.dumps({"metric": args.name, "values": values, "weights": labels}, indent=2))
    else:
        for k, v in values.items():
            print(f"{k}: {v}")
        for label in labels:
            print(f"weights: {label}")
    return 0


def _metric_epilog() -> str:
    from lrkit.metrics import registry

    lines = ["metrics (a name fixes the whole protocol):"]
    lines += [f"  {m.name:<22} {m.summary} [--real: {m.real_is}]" for m in registry.METRICS.values()]
    lines.append(f"  {'synthfaces_factors':<22} identity (fine factors of the source) and faithfulness (coarse factors "
                 "of the target) read back by the synthfaces factor probes [--real: an `lrkit data synth` folder; "
                 "--fake: `lrkit translate` outputs named <target>__<source>.png]")
    return "\n".join(lines)


def _train(args: argparse.Namespace, method: str, get_preset, train_fn, **extra) -> int:
    """The ``lrkit train <method>`` commands: preset + overrides, run folder, device check, train or resume."""
    import torch

    from lrkit.runs.context import runs_root

    cfg = get_preset(args.preset)
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("precision", args.precision))
                 if v is not None}
    cfg = cfg.with_overrides(**overrides)
    run_dir = Path(args.run_dir) if args.run_dir else runs_root() / "train" / f"{method}-{cfg.preset}"
    device = args.device
    if device == "auto":
        device = "cpu" if cfg.preset.endswith("_smoke") else "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from lrkit.errors import DeviceUnavailable

        raise DeviceUnavailable(f"preset {cfg.preset!r} runs on {device!r} but no CUDA device is visible; pass "
                                "--device cpu to train it on the CPU anyway (slow), or use a *_smoke preset")
    res = train_fn(cfg, run_dir, data_root=args.data_root, device=device, resume=args.resume,
                   progress=not args.no_progress, **extra)
    print(f"trained {cfg.preset} to step {res.final_step} in {res.run_dir}")
    print(f"checkpoint: {res.checkpoint}")
    return 0


def _cmd_train_i2ilr(args: argparse.Namespace) -> int:
    from lrkit.methods.i2ilr.config import get_preset
    from lrkit.methods.i2ilr.task import train_i2ilr

    return _train(args, "i2ilr", get_preset, train_i2ilr)


def _cmd_train_stargan2(args: argparse.Namespace) -> int:
    from lrkit.methods.stargan2.config import get_preset
    from lrkit.methods.stargan2.task import train_stargan2

    return _train(args, "stargan2", get_preset, train_stargan2, wing_path=args.wing)


def _cmd_train_progan(args: argparse.Namespace) -> int:
    from lrkit.methods.progan.config import get_preset, with_n_images
    from lrkit.methods.progan.task import open_training_set, train_progan

    if args.steps is not None:
        raise ValueError("ProGAN's steps derive from its per-stage epochs and batches (lrkit.methods.progan.config); "
                         "choose a preset (e.g. sr_nam64_smoke) instead of --steps")

    def preset(name):
        cfg = get_preset(name)
        if cfg.dataset != "synthfaces":  # plan the schedule for the folder actually given
            cfg = with_n_images(cfg, len(open_training_set(cfg, args.data_root)))
        return cfg

    return _train(args, "progan", preset, train_progan)


def _cmd_train_degradation(args: argparse.Namespace) -> int:
    from lrkit.methods.srnam.config import get_preset
    from lrkit.methods.srnam.task import train_degradation

    return _train(args, "degradation", get_preset, train_degradation, lr_root=args.lr_root,
                  keep_checkpoints=args.keep_checkpoints)


def _cmd_srnam(args: argparse.Namespace) -> int:
    from lrkit.data.lr_files import read_lr_images
    from lrkit.methods.progan.latent import load_progan
    from lrkit.methods.srnam.outputs import load_degradation, redegrade, summary_line, write_outputs
    from lrkit.methods.srnam.search import SrnamSearchConfig, run_srnam

    cfg = SrnamSearchConfig(steps=args.steps, starts=args.k, noise=args.noise, seed=args.seed, chunk=args.chunk,
                            lr=args.adam_lr)
    lr_images, stems = read_lr_images(args.lr)
    gen = load_progan(args.generator, device=args.device)
    deg = load_degradation(args.degradation, device=args.device)
    result = run_srnam(gen, deg, lr_images, cfg, device=args.device)
    lr_again = redegrade(result, gen, deg, cfg, args.output, device=args.device)
    record = {"generator": f"ProGAN {gen.config.preset} step {gen.step} ({gen.path}, {gen.weights})",
              "degradation": f"{deg.config.preset} step {deg.step} ({deg.path}, sha256 {deg.sha256[:12]})"}
    records = write_outputs(result, lr_images, lr_again, stems, args.out, cfg, record, args.output)
    print(summary_line(records))
    print(f"candidates, re-degraded LR images, grid.png and results.jsonl in {args.out}")
    return 0


def _cmd_pulse(args: argparse.Namespace) -> int:
    from lrkit.methods.pulse.config import PulseConfig
    from lrkit.methods.pulse.outputs import load_generator, read_lr_images, summary_line, write_outputs
    from lrkit.methods.pulse.pulse import run_pulse

    cfg = PulseConfig(steps=args.steps, eps=args.eps, duplicates=args.duplicates, seed=args.seed,
                      downscale=args.downscale, output=args.output, chunk=args.chunk, stop_at_eps=args.stop_at_eps)
    lr_images, stems = read_lr_images(args.lr)
    gen, record = load_generator(args.generator, args.device, synthesis=args.synthesis, mapping=args.mapping,
                                 gaussian_fit=args.gaussian_fit)
    result = run_pulse(gen, lr_images, cfg, device=args.device)
    records = write_outputs(result, lr_images, stems, args.out, cfg, record)
    print(summary_line(records))
    print(f"outputs and results.jsonl in {args.out}")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    if args.method == "stargan2":
        return _translate_stargan2(args)
    if args.reference or args.domain or args.img_size is not None or args.w_hpf is not None or args.wing:
        raise ValueError("--reference/--domain/--img-size/--w-hpf/--wing belong to --method stargan2; I2I-LR takes "
                         "--source and --target")
    return _translate_i2ilr(args)


def _translate_i2ilr(args: argparse.Namespace) -> int:
    from lrkit.methods.i2ilr.inference import load_i2ilr, load_images, prepare_targets, translate
    from lrkit.fsutil import atomic_write_bytes
    from lrkit.viz import translation_grid
    from lrkit.data.ops import to_uint8
    import io
    from PIL import Image

    if not args.target:
        raise ValueError("give at least one --target IMG (an LR image or an HR image that is downscaled first)")
    from lrkit.train.shipped import resolve_checkpoint

    model = load_i2ilr(resolve_checkpoint(args.checkpoint, "i2ilr"), device=args.device)
    cfg = model.config
    sources = load_images(args.source)
    targets = prepare_targets(load_images(args.target), cfg.lr_size)
    S, T = len(sources), len(targets)
    out = translate(model.G, sources.repeat(T, 1, 1, 1), targets.repeat_interleave(S, 0))
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    u8 = to_uint8(out)
    for t in range(T):
        for s in range(S):
            name = f"{Path(args.target[t]).stem}__{Path(args.source[s]).stem}.png"
            buf = io.BytesIO()
            Image.fromarray(u8[t * S + s]).save(buf, format="PNG")
            atomic_write_bytes(outdir / name, buf.getvalue())
    grid = translation_grid(sources, targets, out.view(T, S, *out.shape[1:]))
    buf = io.BytesIO()
    Image.fromarray(to_uint8(grid)).save(buf, format="PNG")
    atomic_write_bytes(outdir / "grid.png", buf.getvalue())
    print(f"{T * S} images and grid.png written to {outdir} ({model.label})")
    return 0


def _translate_stargan2(args: argparse.Namespace) -> int:
    import torch

    from lrkit.methods.stargan2.inference import load_images_official, load_stargan2, save_image_official, translate_ref

    if args.target:
        raise ValueError("StarGAN v2 is reference-guided: give --reference IMG... (HR images of the target domain) "
                         "and --domain D, not --target")
    if not args.reference or not args.domain:
        raise ValueError("--method stargan2 needs --reference IMG... and --domain D (one domain for all references, "
                         "or one per reference; a name such as 'female' or an index)")
    from lrkit.train.shipped import resolve_checkpoint

    nets = load_stargan2(resolve_checkpoint(args.checkpoint, "stargan2"), device=args.device, img_size=args.img_size,
                         w_hpf=args.w_hpf, wing=args.wing)
    sources = load_images_official(args.source, nets.img_size)
    refs = load_images_official(args.reference, nets.img_size)
    S, R = len(sources), len(refs)
    domains = args.domain if len(args.domain) > 1 else args.domain * R
    if len(domains) != R:
        raise ValueError(f"got {len(args.domain)} --domain values for {R} references: give one, or one per reference")
    y = nets.labels(domains, R)
    # Every reference's style applied to every source (the official translate_using_reference), row r = ref r.
    out = translate_ref(nets, sources.repeat(R, 1, 1, 1), refs.repeat_interleave(S, 0), y.repeat_interleave(S, 0))
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    for r in range(R):
        for s in range(S):
            name = f"{Path(args.reference[r]).stem}__{Path(args.source[s]).stem}.png"
            save_image_official(out[r * S + s], outdir / name)
    # The official sample grid: a blank (white) cell and the sources on top, each row a reference then its outputs.
    rows = [torch.cat([torch.ones(1, *sources.shape[1:]), sources])]
    rows += [torch.cat([refs[r:r + 1], out[r * S:(r + 1) * S]]) for r in range(R)]
    save_image_official(torch.cat(rows), outdir / "grid.png", nrow=S + 1)
    print(f"{R * S} images and grid.png written to {outdir} ({nets.label})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lrkit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="execute the notebooks of a profile into a new versioned run")
    r.add_argument("--profile", default="smoke", choices=list(PROFILES))
    r.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (file stems)")
    r.add_argument("--data-root", help="a folder holding the real datasets by name: celeba_hq/, afhq/ (as "
                                       "`lrkit data download NAME --root ROOT` makes them)")
    r.add_argument("--data", action="append", metavar="NAME=PATH",
                   help="a real dataset's folder, e.g. celeba_hq=/data/celeba_hq (repeatable; wins over --data-root)")
    r.add_argument("-p", "--parameter", dest="parameters", action="append", metavar="NAME=VALUE",
                   help="a notebook parameter for every notebook that declares it, e.g. -p steps=2 -p "
                        "n_eval_targets=4 (repeatable; values are Python literals)")
    r.add_argument("--jobs", type=int, default=1,
                   help="notebooks executed in parallel (default 1); their kernels split the CPU cores "
                        "(OMP_NUM_THREADS) unless you set it")
    r.add_argument("--device", default="auto", help="auto (the profile's), cpu, cuda, cuda:N")
    r.add_argument("--output-root", help="where paper_tables/ and figures/ are written (default: the checkout)")
    r.add_argument("--runs-dir", help="where run folders are created (default: <checkout>/runs)")
    r.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                   help="seconds one cell may run before its notebook is failed (default: the profile's, "
                        "smoke 1200; 0: no limit)")
    r.set_defaults(func=_cmd_reproduce)

    c = sub.add_parser("compare", help="which numbers changed between two runs, and by how much")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--all", action="store_true", help="list unchanged numbers too")
    c.add_argument("--json", action="store_true")
    c.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for 'changed' (default 0)")
    c.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for 'changed' (default 0)")
    c.add_argument("--output-root", help="where paper_tables/ and figures/ live (default: the checkout)")
    c.set_defaults(func=_cmd_compare)

    rp = sub.add_parser("report", help="rebuild every run's index.html and runs/index.html (newest first, with "
                        "links comparing consecutive runs of a profile)")
    rp.add_argument("--runs-dir", help="the runs folder (default: <checkout>/runs)")
    rp.add_argument("--no-rebuild", action="store_true", help="leave each run's own index.html as it is")
    rp.add_argument("--check", type=int, default=0, metavar="N",
                    help="open the index and the N newest runs' pages in headless Chromium (console errors, images) "
                         "and save a screenshot with each run")
    rp.add_argument("--tables", metavar="PROFILE", help="instead: rewrite the Markdown/LaTeX/HTML of "
                    "paper_tables/PROFILE/ from their CSVs (same numbers, the current layout)")
    rp.add_argument("--output-root", help="where paper_tables/ lives (default: the checkout)")
    rp.set_defaults(func=_cmd_report)

    lb = sub.add_parser("lab", help="JupyterLab on notebooks/ with the lrkit kernel (adds --allow-root as root)")
    lb.add_argument("--port", type=int, default=0, help="port (default: JupyterLab's, 8888 or the next free one)")
    lb.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: loopback only)")
    lb.add_argument("--token", default=None, help="the access token (default: JupyterLab generates one)")
    lb.add_argument("--no-browser", action="store_true", help="do not try to open a browser")
    lb.set_defaults(func=_cmd_lab)

    d = sub.add_parser("data", help="datasets: check, download, export synthfaces")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="counts per split/domain, sizes, unreadable files, content fingerprint")
    dc.add_argument("path")
    dc.add_argument("--json", action="store_true")
    dc.set_defaults(func=_cmd_data_check)
    dd = dsub.add_parser("download", help="fetch a public dataset archive, verify it and unpack it")
    dd.add_argument("name", choices=["celeba_hq", "afhq"])
    dd.add_argument("--root", default="data", help="folder that receives <name>/{train,val}/... (default ./data)")
    dd.set_defaults(func=_cmd_data_download)
    ds = dsub.add_parser("synth", help="write synthfaces as PNG folders in the StarGAN v2 layout")
    ds.add_argument("--variant", default="faces", choices=["faces", "animals"])
    ds.add_argument("--out", required=True)
    ds.add_argument("--n-train", type=int, default=500, help="images per domain in train")
    ds.add_argument("--n-val", type=int, default=100, help="images per domain in val")
    ds.add_argument("--size", type=int, default=128)
    ds.add_argument("--seed", type=int, default=0)
    ds.set_defaults(func=_cmd_data_synth)
    m = sub.add_parser("metric", help="compute one metric on two folders of images (pairwise: paired by file name)",
                       epilog=_metric_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("name", help="metric name (listed below)")
    m.add_argument("--real", help="reference side: real set, ground truth, sources or LR targets (per metric)")
    m.add_argument("--fake", required=True, help="generated images (lpips_diversity: one sub-folder per output)")
    m.add_argument("--weights", help="use this weight file (a non-official file is reported as unverified)")
    m.add_argument("--device", default="cpu")
    m.add_argument("--batch-size", type=int, default=32)
    m.add_argument("--allow-singular", action="store_true",
                   help="Frechet distances on sets smaller than the feature dimension (flagged singular_covariance)")
    m.add_argument("--split", default="val", help="synthfaces_factors: the split of the --real export the "
                                                  "sources and targets come from (default val)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_metric)

    t = sub.add_parser("train", help="train a model from a named preset (checkpoints, resume, JSONL losses)")
    tsub = t.add_subparsers(dest="method", required=True)
    for method, helps, func in (
            ("i2ilr", ("I2I-LR (presets: lrkit.methods.i2ilr.config)",
                       "e.g. celebahq128, afhq_cat, lr16, celebahq128_smoke", "celebahq*, afhq_*, lr*"),
             _cmd_train_i2ilr),
            ("stargan2", ("StarGAN v2 baseline (presets: lrkit.methods.stargan2.config)",
                          "e.g. celebahq256, afhq128, celebahq128_smoke", "celebahq*, afhq*"),
             _cmd_train_stargan2),
            ("progan", ("ProGAN, SR-NAM's face generator (presets: lrkit.methods.progan.config)",
                        "e.g. sr_nam64 (a 64 px face folder), sr_nam64_cpu, sr_nam64_smoke", "sr_nam64"),
             _cmd_train_progan),
            ("degradation", ("SR-NAM's degradation GAN, HR 64 -> real-looking LR 16 (presets: "
                             "lrkit.methods.srnam.config)",
                             "e.g. srnam_deg (real HR and LR folders), srnam_deg_cpu, srnam_deg_smoke",
                             "srnam_deg: a 64 px face folder"),
             _cmd_train_degradation)):
        tp = tsub.add_parser(method, help=helps[0])
        tp.add_argument("--preset", required=True, help=helps[1])
        tp.add_argument("--steps", type=int, help="train up to this many steps (default: the preset's)")
        tp.add_argument("--run-dir", help=f"default: <checkout>/runs/train/{method}-<preset>")
        tp.add_argument("--resume", action="store_true", help="continue from the run dir's latest checkpoint")
        tp.add_argument("--data-root", help=f"the dataset folder for real-data presets ({helps[2]})")
        tp.add_argument("--device", default="auto", help="auto (cpu for *_smoke, else cuda), cpu, cuda, cuda:N")
        tp.add_argument("--seed", type=int)
        tp.add_argument("--precision", choices=["fp32", "bf16"])
        tp.add_argument("--no-progress", action="store_true")
        if method == "degradation":
            tp.add_argument("--lr-root", help="srnam_deg: a folder of real LR faces (e.g. 16 px Widerface crops); "
                                              "the synthfaces presets use the known synthlr-v1 process instead")
            tp.add_argument("--keep-checkpoints", type=int, default=0, metavar="N",
                            help="also keep the last N periodic snapshots checkpoints/step_*.pt (for "
                                 "benchmarks/srnam_degradation_curve.py); default: only latest.pt")
        if method == "stargan2":
            tp.add_argument("--wing", help="w_hpf > 0 (celebahq*): the FAN's wing.ckpt (default: the registered "
                                           "stargan2_wing weights)")
        tp.set_defaults(func=func)

    tr = sub.add_parser("translate", help="translate HR sources with a trained checkpoint (I2I-LR: to LR targets; "
                                          "StarGAN v2: to the style of HR references)")
    tr.add_argument("--method", default="i2ilr", choices=["i2ilr", "stargan2"])
    tr.add_argument("--checkpoint", required=True, help="an lrkit run's checkpoint, or shipped:PRESET for a "
                    "model shipped with lrkit (e.g. shipped:celebahq128_cpu); for stargan2 also an official "
                    "*_nets_ema.ckpt as released")
    tr.add_argument("--source", nargs="+", required=True, help="HR source images (the generator's HR size; stargan2 "
                                                               "resizes them as the official loader does)")
    tr.add_argument("--target", nargs="+", help="i2ilr: LR targets, or HR images (downscaled to the LR size first)")
    tr.add_argument("--reference", nargs="+", help="stargan2: reference images whose style is applied")
    tr.add_argument("--domain", nargs="+", help="stargan2: the references' domain (name or index), one or one per "
                                                "reference")
    tr.add_argument("--img-size", type=int, help="stargan2, official files: the size the model was trained at "
                                                 "(default 256)")
    tr.add_argument("--w-hpf", type=float, help="stargan2, official files: high-pass weight (1: CelebA-HQ "
                                                "(default), 0: AFHQ)")
    tr.add_argument("--wing", help="stargan2 with w_hpf > 0: the FAN's wing.ckpt when the checkpoint has no FAN "
                                   "(default: the registered stargan2_wing weights)")
    tr.add_argument("--out", required=True, help="folder for <target or reference>__<source>.png and grid.png")
    tr.add_argument("--device", default="cpu")
    tr.set_defaults(func=_cmd_translate)

    pu = sub.add_parser("pulse", help="PULSE: search a face generator for HR images that downscale to LR images")
    pu.add_argument("--generator", required=True, help="stylegan1_ffhq (PULSE's weights) or progan:CKPT (a "
                                                       "checkpoint of 'lrkit train progan')")
    pu.add_argument("--lr", nargs="+", required=True, help="LR images (square, one size dividing the generator's)")
    pu.add_argument("--out", required=True, help="folder for <lr>_<k>.png, <lr>_<k>_lr.png and results.jsonl")
    pu.add_argument("--steps", type=int, default=100)
    pu.add_argument("--eps", type=float, default=2e-3, help="success: L2 (MSE in [0, 1] units) <= eps")
    pu.add_argument("--duplicates", type=int, default=1, help="outputs per LR image, each from its own seed")
    pu.add_argument("--seed", type=int, default=0)
    pu.add_argument("--downscale", choices=["bicubic", "avgpool"], default="bicubic",
                    help="bicubic: PULSE's filter; avgpool: the I2I-LR data's operator")
    pu.add_argument("--output", choices=["last", "best"], default="last",
                    help="last: the last step's image (PULSE's); best: the lowest L2 over the steps")
    pu.add_argument("--stop-at-eps", action="store_true", help="stop each output once within eps")
    pu.add_argument("--chunk", type=int, default=16, help="outputs per forward pass (memory)")
    pu.add_argument("--synthesis", help="stylegan1_ffhq: a synthesis.pt to use (default: the registered file)")
    pu.add_argument("--mapping", help="stylegan1_ffhq: a mapping.pt to use (default: the registered file)")
    pu.add_argument("--gaussian-fit", help="stylegan1_ffhq: PULSE's gaussian_fit.pt (default: fit from the "
                                           "mapping network, cached)")
    pu.add_argument("--device", default="cpu")
    pu.set_defaults(func=_cmd_pulse)

    sn = sub.add_parser("srnam", help="SR-NAM: search a ProGAN through a degradation net for K HR faces per "
                                      "16 px LR face")
    sn.add_argument("--generator", required=True, help="a checkpoint of 'lrkit train progan' (64 px; G_ema is used)")
    sn.add_argument("--degradation", required=True, help="a checkpoint of 'lrkit train degradation'")
    sn.add_argument("--lr", nargs="+", required=True, help="16 x 16 LR face images")
    sn.add_argument("--k", type=int, default=3, help="HR candidates per input, each from its own random start")
    sn.add_argument("--out", required=True, help="folder for <lr>_<k>.png, <lr>_<k>_lr.png, grid.png, results.jsonl")
    sn.add_argument("--steps", type=int, default=250, help="Adam iterations (the paper: 250-500)")
    sn.add_argument("--adam-lr", type=float, default=1e-3,
                    help="Adam's learning rate (the paper: Adam defaults, 1e-3; the cpu profile uses 3e-2: 250 steps "
                         "at 1e-3 barely move the kit's synthfaces ProGAN latents)")
    sn.add_argument("--noise", choices=["fixed", "zero"], default="fixed",
                    help="the degradation net's noise during the search: one draw per candidate, or zero")
    sn.add_argument("--output", choices=["last", "best"], default="last",
                    help="last: the final iterate's image; best: the lowest L1 over the steps")
    sn.add_argument("--seed", type=int, default=0)
    sn.add_argument("--chunk", type=int, default=64, help="candidates per forward pass (memory)")
    sn.add_argument("--device", default="cpu")
    sn.set_defaults(func=_cmd_srnam)

    w = sub.add_parser("weights", help="pretrained weight files: status, fetch (online), path")
    w.add_argument("action", choices=["status", "fetch", "path"])
    w.add_argument("names", nargs="*", help="weight names (default: all)")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_cmd_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # Bad input or a missing asset: one clear line naming the problem and the fix. Anything else (a shape
        # error, CUDA out of memory, a KeyError inside the kit) is a bug and keeps its traceback.
        print(f"lrkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
