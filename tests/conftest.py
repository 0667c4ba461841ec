"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_configure(config):
    """Every test process computes on one thread (a module may ask for more itself), and so do the processes the
    tests start: two pytest workers share 2 cores with the batch tests' kernels, and an OpenMP team of 2 waiting on
    a core busy elsewhere ran ~20x slower here (a 2-thread ProGAN training next to one notebook kernel: 0.23 ->
    5.5 s/step, 2026-12-04)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module. Tiny CPU models gain nothing from two threads, and on a shared 2-core
    machine two OpenMP threads waiting on a core busy elsewhere made such files up to ~50x slower (measured: 1.8 s
    vs 0.02 s for one 64 px generator pass). One thread also keeps training bit-reproducible."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private lrkit cache (synthfaces renders, probes, feature statistics) for one test."""
    monkeypatch.setenv("LRKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
