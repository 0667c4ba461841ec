"""``lrkit lab`` / ``make lab``: JupyterLab on ``notebooks/`` with the kit's kernel, also where everything runs as
root (most containers): Jupyter refuses to start as root without ``--allow-root``, so it is added exactly then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["lab_command", "main_lab"]


def lab_command(*, notebook_dir: str | Path, port: int = 0, ip: str = "127.0.0.1", token: str | None = None,
                open_browser: bool = True, euid: int | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """The ``jupyter lab`` command line: this interpreter's JupyterLab, ``notebook_dir`` as its root, the ``lrkit``
    kernel as the default for new notebooks, ``--allow-root`` when the effective user is root."""
    euid = os.geteuid() if euid is None else euid
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(notebook_dir).resolve()}",
           f"--ServerApp.ip={ip}", "--MappingKernelManager.default_kernel_name=lrkit"]
    if port:
        cmd.append(f"--ServerApp.port={int(port)}")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        cmd.append("--no-browser")
    if euid == 0:
        cmd.append("--allow-root")  # else: "Running as root is not recommended. Use --allow-root to bypass."
    return cmd + list(extra)


def main_lab(*, port: int = 0, ip: str = "127.0.0.1", token: str | None = None, open_browser: bool = True,
             extra: tuple[str, ...] = ()) -> int:
    from lrkit.runs.notebooks import notebook_dir
    from lrkit.runs.reproduce import ensure_kernel

    ensure_kernel()  # the lrkit kernel runs this interpreter
    cmd = lab_command(notebook_dir=notebook_dir(), port=port, ip=ip, token=token, open_browser=open_browser,
                      extra=extra)
    print("starting:", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)
