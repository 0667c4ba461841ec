"""`make lab` (`lrkit lab`): a real JupyterLab server on a free loopback port, as the user CI runs as (root here),
listing the lrkit kernel, executing explore.ipynb through that server's own kernel, then stopped (by its PID)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from lrkit.explore.lab import lab_command

ROOT = Path(__file__).resolve().parents[1]
LRKIT = Path(sys.executable).with_name("lrkit")


def test_root_gets_allow_root_and_others_do_not():
    as_root = lab_command(notebook_dir=ROOT / "notebooks", euid=0, open_browser=False, port=8999, token="t")
    as_user = lab_command(notebook_dir=ROOT / "notebooks", euid=1000)
    assert "--allow-root" in as_root and "--allow-root" not in as_user
    assert "--MappingKernelManager.default_kernel_name=lrkit" in as_user
    assert f"--ServerApp.root_dir={(ROOT / 'notebooks').resolve()}" in as_user
    assert {"--no-browser", "--ServerApp.port=8999", "--IdentityProvider.token=t"} <= set(as_root)
    assert "lrkit lab" in (ROOT / "Makefile").read_text()  # make lab goes through this command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


async def _execute(ws_url: str, cells: list[str], timeout: float) -> list[dict]:
    """Each cell through the kernel's websocket (Jupyter's JSON message protocol): its reply status, its error if
    any, and the data it displayed."""
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(ws_url)
    session = uuid.uuid4().hex
    results = []
    try:
        for code in cells:
            msg_id = uuid.uuid4().hex
            conn.write_message(json.dumps({
                "header": {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            res = {"status": None, "error": None, "data": [], "result": None}
            deadline = time.monotonic() + timeout
            idle = False  # iopub's "idle" for this request: every output it made has arrived (the shell's reply
            # may come first: the two channels share the websocket but are not ordered with each other)
            while res["status"] is None or not idle:
                raw = await asyncio.wait_for(conn.read_message(), timeout=max(1.0, deadline - time.monotonic()))
                if raw is None:
                    raise RuntimeError("the kernel's websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "error":
                    res["error"] = f"{msg['content']['ename']}: {msg['content']['evalue']}"
                elif kind in ("execute_result", "display_data"):
                    res["data"].append(msg["content"]["data"])
                    if kind == "execute_result":
                        res["result"] = msg["content"]["data"]
                elif kind == "execute_reply":
                    res["status"] = msg["content"]["status"]
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
            results.append(res)
    finally:
        conn.close()
    return results


def test_lab_serves_the_kit_kernel_and_runs_the_explorer(tmp_path):
    from lrkit.runs.context import open_run

    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop("LRKIT_BATCH", None)  # a live kernel: the explorer builds its widgets
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([str(LRKIT), "lab", "--port", str(port), "--token", token, "--no-browser"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"lab did not answer (exit {proc.poll()}):\n{(tmp_path / 'lab.log').read_text()}")
                time.sleep(0.5)
        specs = _get(f"{base}/api/kernelspecs?token={token}")
        assert "lrkit" in specs["kernelspecs"] and specs["default"] == "lrkit"
        assert Path(specs["kernelspecs"]["lrkit"]["spec"]["argv"][0]).resolve() == Path(sys.executable).resolve()
        kernel = _get(f"{base}/api/kernels?token={token}", "POST", {"name": "lrkit"})
        run = open_run("", "smoke", notebook="explore", output_root=tmp_path / "out", runs_dir=tmp_path / "runs")
        nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        inject = f"run_dir = {str(run.run_dir)!r}\noutput_root = {str(tmp_path / 'out')!r}\nsearch_steps = 2"
        check = ("explorer.method.value = [e.method for e in explorer.entries].index('PULSE')\n"
                 "explorer.k.value = 2\nexplorer.run_button.click()\nexplorer.panel.run.outputs.shape[0], "
                 "explorer.progress.value")
        ws = f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels?token={token}"
        results = asyncio.run(_execute(ws, [code[0], inject, *code[1:], check], timeout=300))
        for r in results:
            assert r["status"] == "ok", r["error"]
        shown = results[-2]["data"]  # the notebook's last cell displays the explorer: a widget view
        assert any("application/vnd.jupyter.widget-view+json" in d for d in shown), shown
        assert results[-1]["result"]["text/plain"] == "(2, 2)"  # K outputs, 2 search steps ticked live
        _get(f"{base}/api/kernels/{kernel['id']}?token={token}", "DELETE")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, by PID
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert proc.returncode is not None
