"""Where a result came from: repository root, git state, software versions and the compute device."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Packages whose versions change numbers; recorded in every manifest.
_TRACKED_PACKAGES = (
    "torch", "torchvision", "numpy", "scipy", "pandas", "pillow", "scikit-image", "matplotlib",
    "papermill", "nbconvert", "lpips", "pytorch-fid", "prdc",
)


def repo_root() -> Path:
    """The kit's checkout: the folder holding ``lib/lrkit`` (editable install), else the working directory."""
    here = Path(__file__).resolve()
    candidate = here.parents[3]  # lib/lrkit/runs/provenance.py -> checkout
    if (candidate / "lib" / "lrkit").is_dir() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd().resolve()


def git_state(root: Path | None = None) -> dict:
    """``{"commit", "short", "dirty"}`` of the checkout; "unknown" outside a git repository."""
    root = root or repo_root()

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
        short = run("rev-parse", "--short=7", "HEAD")
        # Outputs written by runs (paper_tables/, figures/) would make every second run "dirty";
        # only source changes count.
        status = run("status", "--porcelain", "--", ".", ":(exclude)paper_tables", ":(exclude)figures")
        return {"commit": commit, "short": short, "dirty": bool(status)}
    except (subprocess.SubprocessError, FileNotFoundError, OSError):
        return {"commit": "unknown", "short": "nogit", "dirty": None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict:
    """CUDA availability and the device name a result was computed on (CPU model otherwise)."""
    import torch

    info = {
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if info["cuda_available"]:
        info["device_name"] = torch.cuda.get_device_name(0)
        info["device_count"] = torch.cuda.device_count()
    else:
        info["device_name"] = f"CPU ({info['cpu']}, {info['cpu_count']} cores)"
        info["device_count"] = 0
    return info


def environment_info() -> dict:
    return {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
        **device_info(),
    }
