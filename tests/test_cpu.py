"""lrkit.cpu: denormal floats flushed to zero on the CPU, by configure_cpu and by the training loop (CPU, fast)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrkit import cpu
from lrkit.cpu import configure_cpu, flushes_denormals
from lrkit.methods.i2ilr.task import I2ILRTask, open_training_set
from lrkit.train.loop import LoopConfig, train

from i2ilr_tiny import TINY

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py

TINY_NORMAL = torch.finfo(torch.float32).tiny  # 1.18e-38, the smallest normal float32


def _bits(t: torch.Tensor) -> list[int]:
    # Integer view: a float comparison would itself read denormals as zero while flushing is on.
    return t.view(torch.int32).tolist()


@pytest.fixture(autouse=True)
def flushing_off():
    """Each test starts with flushing off; afterwards the process gets back the state it had before (the setting
    is process-global and other tests' training runs may have turned it on)."""
    before = flushes_denormals()
    assert cpu.set_flush_denormal(False)
    yield
    cpu.set_flush_denormal(before)
    assert flushes_denormals() == before


def test_configure_cpu_flushes_denormal_results_and_inputs_to_zero():
    kept = torch.tensor([1e-30]) * 1e-10  # a normal times a normal, landing in the denormal range
    assert 0 < kept.item() < TINY_NORMAL and _bits(kept) != [0]  # off: the denormal result is kept
    small = torch.tensor([1e-37])  # normal: must survive flushing unchanged
    assert configure_cpu("cpu") is True
    assert flushes_denormals()
    assert _bits(torch.tensor([1e-30]) * 1e-10) == [0]  # results flushed (FTZ)
    assert _bits(kept + 0.0) == [0]  # a denormal input reads as zero (DAZ)
    assert _bits(small * 1.0) == _bits(small) and (small * 2.0).item() == pytest.approx(2e-37, rel=1e-6)
    assert configure_cpu(torch.device("cpu")) is True  # idempotent, takes a torch.device


_THREADS_CHECK = """
import torch
from lrkit import cpu
from lrkit.cpu import configure_cpu, flushes_denormals

if cpu._libgomp() is None:
    raise SystemExit(3)  # torch's OpenMP runtime here is not libgomp
bits = lambda t: t.view(torch.int32).tolist()
torch.set_num_threads(2)
assert cpu.set_flush_denormal(False)
# A large elementwise op with flushing off starts the second OpenMP worker with it off.
big = torch.full((4 * cpu._GRAIN,), 1e-30) * 1e-10
assert all(b != 0 for b in bits(big[:: cpu._GRAIN]))
torch.set_flush_denormal(True)  # torch's own call: this thread only
assert not flushes_denormals()  # the worker's half of the probe stays denormal
assert configure_cpu("cpu") is True and flushes_denormals()
assert not any(bits(torch.full((4 * cpu._GRAIN,), 1e-30) * 1e-10))
assert cpu.set_flush_denormal(False) and not flushes_denormals()  # and off again in every thread
"""


def test_configure_cpu_reaches_intra_op_threads_already_started():
    """In a fresh interpreter (its main thread, its own OpenMP pool): a test runner's worker process has a thread
    history of its own (other tests' teams of other sizes), which this check must not depend on."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", _THREADS_CHECK], capture_output=True, text=True, timeout=120)
    if p.returncode == 3:
        pytest.skip("torch's OpenMP runtime here is not libgomp")
    assert p.returncode == 0, p.stderr


def test_configure_cpu_leaves_cuda_alone():
    for device in ("cuda", "cuda:0", torch.device("cuda", 1)):
        assert configure_cpu(device) is False
    assert not flushes_denormals()
    assert _bits(torch.tensor([1e-30]) * 1e-10) != [0]


def test_training_loop_turns_flushing_on_for_a_cpu_task(tmp_path):
    cfg = TINY.with_overrides(steps=1, checkpoint_every=1, sample_every=0)
    task = I2ILRTask(cfg, open_training_set(cfg), device="cpu")
    assert not flushes_denormals()
    result = train(task, tmp_path / "run", LoopConfig(steps=1, checkpoint_every=1, sample_every=0), progress=False)
    assert result.final_step == 1
    assert flushes_denormals()


class _MetaTask:
    """A task whose only parameters live on the meta device (no CPU kernels): the loop must not touch flushing."""

    name = "meta"

    def __init__(self) -> None:
        self.net = nn.Linear(2, 2, device="meta")

    def config_dict(self) -> dict:
        return {}

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {}

    def train_step(self, step: int) -> dict:
        raise AssertionError("not reached: the run has 0 steps")

    def sample_grid(self, step: int) -> torch.Tensor:
        raise AssertionError("not reached")


def test_training_loop_leaves_flushing_alone_without_cpu_parameters(tmp_path):
    train(_MetaTask(), tmp_path / "run", LoopConfig(steps=0, checkpoint_every=1, sample_every=0), progress=False)
    assert not flushes_denormals()


def test_torchs_libgomp_is_found_through_a_symlinked_venv(tmp_path, monkeypatch):
    """scikit-learn loads a second libgomp; torch's must still be the one driven, also when torch's path goes
    through a symlink (/proc/self/maps holds resolved paths). Seen: a symlinked venv picked sklearn's at random."""
    import os

    pytest.importorskip("sklearn")
    import sklearn.utils  # noqa: F401 - loads scikit_learn.libs/libgomp-*.so

    if cpu._libgomp() is None:
        pytest.skip("torch's OpenMP runtime here is not libgomp")
    real_pkg = os.path.dirname(torch.__file__)
    link = tmp_path / "venv_link"
    link.symlink_to(os.path.dirname(real_pkg))
    monkeypatch.setattr(torch, "__file__", str(link / "torch" / "__init__.py"))
    for _ in range(5):
        lib = cpu._libgomp()
        assert lib is not None and os.path.realpath(lib._name).startswith(os.path.realpath(real_pkg)), lib._name
