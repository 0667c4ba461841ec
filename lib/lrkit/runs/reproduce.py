"""``lrkit reproduce``: execute the notebooks of a profile with papermill into a new, versioned run.

Each run gets ``runs/<run_id>/`` with the executed notebooks, their HTML (nbconvert), one log per notebook, the
notebooks' records (``events.jsonl``), ``manifest.json`` and ``index.html``. A notebook that fails is recorded with
its error and the others still run; the manifest is rewritten atomically after every notebook, so a crash leaves
an honest partial record.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import datetime as dt
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from lrkit.data.roots import find_datasets, parse_data_args
from lrkit.fsutil import atomic_write_json, read_jsonl, sha256_file
from lrkit.profiles import get_profile, profile_dict
from lrkit.runs import notebooks as nbreg
from lrkit.runs.context import BATCH_ENV, EVENTS_FILE, MANIFEST_FILE
from lrkit.runs.provenance import environment_info, git_state, repo_root
from lrkit.runs.runid import create_run_dir

KERNEL_NAME = "lrkit"


@dataclass(frozen=True)
class ReproduceResult:
    run_id: str
    run_dir: Path
    index_html: Path
    statuses: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(s == "ok" for s in self.statuses.values())


def ensure_kernel() -> str:
    """Make sure the ``lrkit`` Jupyter kernel runs *this* interpreter (the venv's), installing it if needed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="Python (lrkit)", prefix=sys.prefix)
    return KERNEL_NAME


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def execute_one(src: str, run_dir: str, parameters: dict, kernel: str, position: int,
                cell_timeout: int = 0) -> dict:
    """Execute one notebook; never raises (the error is the result). Runs in a worker process when jobs > 1.
    ``cell_timeout`` > 0: seconds a cell may run before it is stopped and the notebook failed (0: no limit)."""
    import nbformat
    import papermill as pm

    name = Path(src).stem
    out_nb = Path(run_dir) / "notebooks" / f"{name}.ipynb"
    out_html = out_nb.with_suffix(".html")
    log_path = Path(run_dir) / "logs" / f"{name}.log"
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result = {"name": name, "status": "ok", "error": None, "started": _now(),
              "parameters": parameters, "notebook": str(out_nb.relative_to(run_dir)),
              "log": str(log_path.relative_to(run_dir))}
    t0 = time.monotonic()
    # The kernels papermill starts inherit this: widgets are not built in a batch (lrkit.viz.lr_explorer).
    previous = os.environ.get(BATCH_ENV)
    os.environ[BATCH_ENV] = "1"
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            pm.execute_notebook(
                src, str(out_nb), parameters=parameters, kernel_name=kernel,
                progress_bar={"desc": name, "position": position, "leave": True},
                stdout_file=log, stderr_file=log, cwd=str(Path(src).parent),
                execution_timeout=int(cell_timeout) if cell_timeout else None,
            )
        except Exception as exc:  # papermill's execution error or a kernel failure: record it, keep going
            result["status"] = "failed"
            ename = getattr(exc, "ename", type(exc).__name__)
            evalue = getattr(exc, "evalue", str(exc))
            if type(exc).__name__ == "CellTimeoutError":  # nbclient's: one line with the fix
                ename, evalue = "CellTimeoutError", (f"a cell ran past the {int(cell_timeout)} s cell timeout and "
                                                     "was stopped; pass --cell-timeout SECONDS (0: none) if it "
                                                     "needs longer")
            result["error"] = f"{ename}: {evalue}"
            log.write("\n--- lrkit: notebook failed ---\n" + "".join(traceback.format_exception(exc)))
        finally:
            if previous is None:
                os.environ.pop(BATCH_ENV, None)
            else:
                os.environ[BATCH_ENV] = previous
    result["seconds"] = round(time.monotonic() - t0, 2)
    result["ended"] = _now()
    if out_nb.exists():  # papermill writes the partial notebook even on failure: convert it too
        try:
            html, _ = offline_html_exporter().from_notebook_node(nbformat.read(out_nb, as_version=4))
            out_html.write_text(html, encoding="utf-8")
            result["html"] = str(out_html.relative_to(run_dir))
        except Exception as exc:
            result["html_error"] = f"{type(exc).__name__}: {exc}"
    return result


def offline_html_exporter():
    """nbconvert's JupyterLab HTML export through the kit's ``lrkit_offline`` template (``runs/templates``): the
    same page without the CDN scripts (require.js, MathJax, widget renderer) that fail offline."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lrkit_offline",
                        extra_template_basedirs=[str(Path(__file__).with_name("templates"))])


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_threads(jobs: int, environ=None, cores: int | None = None) -> dict[str, str]:
    """The thread-count variables the kernels of ``jobs`` parallel notebooks get: the machine's cores split among
    them (at least one each), so that two notebooks on a 2-core machine do not run four compute threads. Empty
    for one job, or when the user set ``OMP_NUM_THREADS`` (theirs is kept)."""
    environ = os.environ if environ is None else environ
    if jobs <= 1 or "OMP_NUM_THREADS" in environ:
        return {}
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = str(max(1, cores // jobs))
    return {k: n for k in THREAD_VARS}


def _worker_init(env: dict[str, str]) -> None:
    os.environ.update(env)  # inherited by the kernels papermill starts from this worker


def _fold_events(run_dir: Path) -> dict:
    """Dataset fingerprints, weight hashes and skipped images the notebooks recorded, deduplicated."""
    datasets, weights, skipped = {}, {}, []
    for ev in read_jsonl(run_dir / EVENTS_FILE):
        if ev["kind"] == "dataset":
            datasets[f"{ev['name']}:{ev['fingerprint']}"] = {
                k: v for k, v in ev.items() if k not in ("kind", "time")
            }
        elif ev["kind"] == "weights":
            weights[f"{ev['name']}:{ev['sha256']}"] = {k: v for k, v in ev.items() if k not in ("kind", "time")}
        elif ev["kind"] == "skipped_images":
            skipped.append({k: v for k, v in ev.items() if k not in ("kind", "time")})
    return {"datasets": list(datasets.values()), "weights": list(weights.values()), "skipped_images": skipped}


def parse_overrides(items: list[str] | None) -> dict[str, object]:
    """``["steps=2", "n_eval_targets=4", 'preset="lr16"']`` (``-p NAME=VALUE``, papermill's convention) -> a dict;
    a value is read as a Python literal (numbers, strings, lists, dicts, True/None) and otherwise kept as text."""
    out: dict[str, object] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"-p {item!r}: write NAME=VALUE, e.g. -p steps=2")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out


# Parameters reproduce itself sets in every notebook: not for -p.
_RUN_PARAMETERS = ("profile", "data", "device", "run_dir", "output_root")


def _overrides_per_notebook(specs, overrides: dict[str, object], declared: dict[str, dict]) -> dict[str, dict]:
    """Each notebook's share of the overrides (those it declares); a name no selected notebook declares is an
    error listing the valid ones."""
    valid = sorted({p for params in declared.values() for p in params} - set(_RUN_PARAMETERS))
    bad = sorted(n for n in overrides if n not in valid)
    if bad:
        raise ValueError(f"unknown notebook parameter(s) {bad} for -p; the selected notebooks declare: "
                         f"{', '.join(valid)} (profile, data, device, run_dir and output_root are set by reproduce)")
    return {s.name: {k: v for k, v in overrides.items() if k in declared[s.name]} for s in specs}


def _missing_datasets(spec, profile: str, data: dict[str, str]) -> str | None:
    """The one-line error of a paper-profile notebook whose real dataset was not given, else None."""
    missing = [d for d in spec.datasets if d not in data] if profile == "paper" else []
    if not missing:
        return None
    return (f"DatasetMissing: {spec.name} needs {', '.join(missing)} under the paper profile; pass --data-root ROOT "
            f"holding {'/, '.join(missing)}/ (`lrkit data download NAME --root ROOT`) or --data NAME=PATH")


def reproduce(profile: str = "smoke", only: list[str] | None = None, data_root: str | None = None,
              jobs: int = 1, device: str = "auto", output_root: Path | None = None,
              runs_dir: Path | None = None, data: list[str] | None = None,
              overrides: list[str] | dict | None = None, cell_timeout: int | None = None) -> ReproduceResult:
    """Run the profile's notebooks into a new run folder; see the module docstring.

    ``data_root``: a folder holding ``celeba_hq/`` and/or ``afhq/``; ``data``: ``["NAME=PATH", ...]`` for
    datasets elsewhere (these win). ``overrides``: ``-p NAME=VALUE`` items (or a dict) passed to every notebook
    that declares NAME. Under the paper profile a notebook whose dataset is missing fails alone, with one line.
    ``cell_timeout``: seconds a cell may run (None: the profile's ``cell_timeout_s``; 0: no limit).
    """
    from lrkit.runs.report import write_index

    prof = get_profile(profile)
    specs = nbreg.select(profile, only)
    if not specs:
        raise ValueError(f"profile {profile!r} has no notebooks to run")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    cell_timeout = prof.cell_timeout_s if cell_timeout is None else int(cell_timeout)
    if cell_timeout < 0:
        raise ValueError(f"--cell-timeout must be >= 0 seconds (0: no limit), got {cell_timeout}")
    datasets = {**find_datasets(data_root), **parse_data_args(data)}
    if data_root and not datasets:
        raise FileNotFoundError(f"--data-root {data_root} holds no celeba_hq/ or afhq/ folder; make them with "
                                "`lrkit data download celeba_hq --root ROOT`, or name a folder with --data NAME=PATH")
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    declared = {s.name: nbreg.notebook_parameters(s.name) for s in specs}
    per_notebook = _overrides_per_notebook(specs, extra, declared)
    root = repo_root()
    output_root = Path(output_root or root).resolve()
    runs_dir = Path(runs_dir or root / "runs")
    git = git_state(root)
    run_id, run_dir = create_run_dir(runs_dir, git["short"])
    kernel = ensure_kernel()

    sources = {s.name: nbreg.notebook_dir() / f"{s.name}.ipynb" for s in specs}
    params = {
        s.name: {"profile": profile, **({"data": datasets} if "data" in declared[s.name] else {}), "device": device,
                 "run_dir": str(run_dir), "output_root": str(output_root), **per_notebook[s.name]}
        for s in specs
    }
    manifest = {
        "run_id": run_id, "kind": "reproduce", "profile": profile_dict(prof), "git": git,
        "environment": environment_info(), "started": _now(), "ended": None, "jobs": jobs,
        "kernel_threads": kernel_threads(jobs), "cell_timeout_s": cell_timeout,
        "datasets_given": datasets, "overrides": extra,
        "seed": prof.seed,
        "notebooks": {s.name: {"status": "pending", "parameters": params[s.name],
                               "source_sha256": sha256_file(sources[s.name])} for s in specs},
        "output_root": str(output_root),
    }
    manifest_path = run_dir / MANIFEST_FILE
    atomic_write_json(manifest_path, manifest)

    def finish(res: dict) -> None:
        manifest["notebooks"][res["name"]].update(res)
        manifest.update(_fold_events(run_dir))
        atomic_write_json(manifest_path, manifest)

    missing = {s.name: _missing_datasets(s, profile, datasets) for s in specs}
    for name, error in missing.items():
        if error:
            finish({"name": name, "status": "failed", "error": error, "started": _now(), "ended": _now(),
                    "seconds": 0.0})
    runnable = [s for s in specs if not missing[s.name]]
    if jobs == 1:
        for i, s in enumerate(runnable):
            finish(execute_one(str(sources[s.name]), str(run_dir), params[s.name], kernel, i, cell_timeout))
    else:
        # Separate processes: each notebook's kernel, progress bar and log are independent; the kernels share the
        # cores (kernel_threads).
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_worker_init, initargs=(manifest["kernel_threads"],)) as pool:
            futs = [pool.submit(execute_one, str(sources[s.name]), str(run_dir), params[s.name], kernel, i,
                                cell_timeout)
                    for i, s in enumerate(runnable)]
            for fut in cf.as_completed(futs):
                finish(fut.result())

    manifest["ended"] = _now()
    manifest.update(_fold_events(run_dir))
    from lrkit.runs.artifacts import run_artifacts

    manifest["artifacts"] = run_artifacts(output_root, run_id)
    atomic_write_json(manifest_path, manifest)
    index = write_index(run_dir, manifest)
    return ReproduceResult(run_id, run_dir, index,
                           {name: nb["status"] for name, nb in manifest["notebooks"].items()})
