"""CPU floating-point settings that every trainer and sampler run on the CPU should have.

Denormal (subnormal) float32 numbers, below ~1.2e-38, go through a slow microcode path on x86 CPUs (and are
slow on many others): a kernel fed many of them runs ~10x slower. A GAN makes them right after its first Adam
update: I2I-LR's discriminator, moved by ~lr_d in every weight, then scores the fakes at logits of about -68 to
-88 (paper widths, 128 px, batch 8), the fake term's loss gradient sigmoid(logit) / N is ~4e-31 to 8e-40, and
the backward pass through D underflows into denormal gradient maps (measured: 25-37 M denormal values in one D
backward, which took 261-328 s instead of 22-25 s; the weights, gradients and Adam moments held none). A user
measured the whole run on 2 threads: 48 s for step 0 and 490 s for step 1; with flushing on, 40, 47 and 41 s.
Flushing denormals to zero (flush-to-zero for results, denormals-are-zero for inputs) changes values only below
~1.2e-38, some thirty orders of magnitude under anything the models compute with (Adam's eps is 1e-8), so
training and sampling are unchanged for every practical purpose. CUDA GPUs handle denormals at full speed, so
``configure_cpu`` does nothing for them.

The setting is a per-thread CPU register (MXCSR on x86). ``torch.set_flush_denormal`` sets it only in the calling
thread; threads created later inherit it, but the intra-op OpenMP workers that torch already started keep theirs
(measured: with 2 threads, half of a large elementwise result stayed denormal). ``set_flush_denormal`` below
therefore also runs the call once in each thread of the OpenMP team when torch's runtime is GNU OpenMP (libgomp,
the runtime of the Linux wheels), and ``flushes_denormals`` checks the result with a probe spread over all the
intra-op threads. Only the current ``torch.get_num_threads()`` team is reached: workers created later inherit
the setting, but idle ones kept from a larger thread count earlier keep theirs until the next call.

Restoring: the setting is left on. torch has no getter for it, and nothing in this kit wants denormals back:
whatever runs on the CPU after training in the same process (sampling, evaluation, a second run) profits from the
same setting. A caller that needs the previous state can read it with ``flushes_denormals()`` before and set it
back with ``set_flush_denormal(previous)``.

This module is the shared layer: it imports torch only, never a method's module.
"""

from __future__ import annotations

import ctypes
import os
import threading

import torch

__all__ = ["configure_cpu", "set_flush_denormal", "flushes_denormals"]

# at::internal::GRAIN_SIZE: elementwise kernels give each intra-op thread at least this many elements.
_GRAIN = 32768


def flushes_denormals() -> bool:
    """Whether every intra-op CPU thread (up to ``torch.get_num_threads()``) now flushes denormals to zero.

    The probe multiplies normal float32 numbers (1e-30 * 1e-10) into the denormal range in one chunk per thread
    and reads the result bits as integers (a float comparison would itself treat denormals as zero)."""
    n = max(1, torch.get_num_threads()) * _GRAIN
    product = torch.full((n,), 1e-30, dtype=torch.float32) * 1e-10
    return not bool((product.view(torch.int32) != 0).any())


def _libgomp() -> ctypes.CDLL | None:
    """torch's GNU OpenMP runtime as already loaded in this process (Linux), else None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "libgomp" in line and "/" in line}
    except OSError:
        return None
    # /proc/self/maps holds resolved paths: resolve torch's too (a venv reached through a symlink), else another
    # loaded libgomp (e.g. the system one, pulled in by another extension) could be taken for torch's.
    torch_lib = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    for path in sorted(paths, key=lambda p: (not p.startswith(torch_lib), p)):  # torch's own copy first
        try:
            lib = ctypes.CDLL(path)
            if hasattr(lib, "GOMP_parallel"):
                return lib
        except OSError:
            continue
    return None


_TEAM_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _in_every_omp_thread(on: bool) -> None:
    """Call ``torch.set_flush_denormal(on)`` in each thread of the calling thread's OpenMP team."""
    lib = _libgomp()
    if lib is None:
        return
    lock = threading.Lock()
    errors: list[BaseException] = []

    @_TEAM_FN
    def body(_data) -> None:  # runs in each team thread; ctypes takes the GIL for it
        try:
            torch.set_flush_denormal(on)
        except BaseException as err:  # an exception must not unwind through C frames
            with lock:
                errors.append(err)

    # void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags). ctypes releases
    # the GIL for the call, so the workers can take it in turn.
    lib.GOMP_parallel.argtypes = [_TEAM_FN, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    lib.GOMP_parallel.restype = None
    lib.GOMP_parallel(body, None, max(1, torch.get_num_threads()), 0)
    if errors:
        raise errors[0]


def set_flush_denormal(on: bool) -> bool:
    """Turn flushing of denormals on or off in this thread and in torch's intra-op threads; returns whether the
    probe now sees the requested state in all of them (False also where the CPU cannot flush)."""
    if not torch.set_flush_denormal(on):  # False: this CPU cannot flush (and nothing was changed)
        return False
    if flushes_denormals() != on:
        _in_every_omp_thread(on)
    return flushes_denormals() == on


def configure_cpu(device: str | torch.device) -> bool:
    """Prepare the CPU for training or sampling on ``device``: on a CPU device, flush denormal floats to zero
    (see the module docstring for why, and why the setting is not restored). Returns whether flushing is on; for
    any other device (CUDA) nothing is done and False is returned."""
    if torch.device(device).type != "cpu":
        return False
    return set_flush_denormal(True)
