"""One latent-search engine: many LR targets x K random starts optimised at once, each candidate on its own.

PULSE (Menon et al. 2020) and SR-NAM's search (eq. 6) both look for generator inputs whose output, downscaled,
matches an LR image. What differs between them is a :class:`SearchProblem`: which variables exist and how they
start, how an output is rendered, the per-candidate loss and data error, and what happens after each optimiser
step (PULSE projects onto spheres). This module does the rest, the same for every method:

* candidates: target ``i`` x start ``k`` for ``i < N``, ``k < K``, flattened image-major (``c = i * K + k``); each
  starts from its own seed ``(seed, i, k)`` (:func:`candidate_seed`), so a candidate's start does not depend on
  ``K``, on the chunking or on which other images are in the run (PULSE re-seeds once per call, which makes all its
  duplicates identical);
* memory: at most ``chunk`` candidates are in one forward/backward pass (chunks run one after the other);
* per-candidate loss: the optimised objective is the *sum* of the candidates' losses, and a generator has no
  interaction between batch rows, so each candidate's gradient is its own loss's (PULSE's batch-summed clamp made
  every candidate depend on the others' success);
* per-candidate convergence: a candidate whose data error is ``<= eps`` is *within eps*; with ``stop_at_eps`` it
  stops there (its variables are no longer changed, it keeps the image of that step) and a chunk ends when all its
  candidates have stopped; without it every candidate runs all ``steps`` (PULSE);
* every candidate is returned, with its last image, its best image (lowest data error over the steps), both
  errors, the step of the best, the steps it ran and its status -- also when it never got within eps.

Devices: whatever device the problem's generator lives on (CPU or CUDA); results come back on the CPU.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

__all__ = ["SearchProblem", "SearchResult", "latent_search", "candidate_seed", "WITHIN_EPS", "NOT_WITHIN_EPS"]

WITHIN_EPS, NOT_WITHIN_EPS = "within eps", "not within eps"


class SearchProblem(Protocol):
    def init(self, generators: list[torch.Generator], device: torch.device) -> tuple[dict, dict]:
        """(trainable, fixed) tensors with one leading row per candidate, drawn from that candidate's generator."""
        ...

    def render(self, trainable: dict, fixed: dict) -> torch.Tensor:
        """The candidates' HR outputs [n, 3, S, S] in [-1, 1] (differentiable in ``trainable``)."""
        ...

    def losses(self, trainable: dict, hr: torch.Tensor, targets: torch.Tensor,
               step: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(loss [n] to minimise, data error [n] compared with eps, {name: [n]} logged terms) for the ``targets``
        [n, 3, s, s] of the candidates."""
        ...

    def after_step(self, trainable: dict, initial: dict) -> None:
        """In-place, without gradients, after every optimiser step (e.g. a sphere projection); may do nothing."""
        ...


@dataclass
class SearchResult:
    """Every candidate of a search, rows ``[N, K]`` (target, start); images on the CPU in [-1, 1]."""

    last: torch.Tensor  # [N, K, 3, S, S] image of the last step each candidate ran
    best: torch.Tensor  # [N, K, 3, S, S] image of its lowest data error
    last_error: torch.Tensor  # [N, K] data error of ``last``
    best_error: torch.Tensor  # [N, K]
    best_step: torch.Tensor  # [N, K] 1-based step that produced ``best``
    steps_run: torch.Tensor  # [N, K] steps the candidate ran (< steps when it stopped within eps)
    seeds: torch.Tensor  # [N, K] the seed each candidate started from
    eps: float
    seconds: float  # wall time of the whole search (all chunks)
    history: list[dict] = field(default_factory=list)  # per chunk and step: mean of each logged term

    @property
    def within_eps(self) -> torch.Tensor:
        """[N, K] bool: reached eps at some step (PULSE's success test: its minimum loss over the steps)."""
        return self.best_error <= self.eps

    @property
    def status(self) -> list[list[str]]:
        return [[WITHIN_EPS if ok else NOT_WITHIN_EPS for ok in row] for row in self.within_eps.tolist()]

    @property
    def ms_per_output(self) -> float:
        return 1000.0 * self.seconds / max(1, self.last_error.numel())

    def output(self, policy: str) -> torch.Tensor:
        """The images a caller keeps: ``"last"`` (PULSE's) or ``"best"``."""
        if policy not in ("last", "best"):
            raise ValueError(f"output policy must be 'last' or 'best', got {policy!r}")
        return self.last if policy == "last" else self.best

    def output_error(self, policy: str) -> torch.Tensor:
        return self.last_error if self.output(policy) is self.last else self.best_error


def candidate_seed(seed: int, image: int, start: int) -> int:
    """A 63-bit seed for candidate (image, start) of a run seeded ``seed`` (sha256, so neighbours are unrelated)."""
    digest = hashlib.sha256(f"lrkit-search:{int(seed)}:{int(image)}:{int(start)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


def _rows(d: dict, idx: torch.Tensor) -> dict:
    return {k: v[idx] for k, v in d.items()}


def latent_search(problem: SearchProblem, targets: torch.Tensor, *, starts: int, steps: int,
                  make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
                  lr_multiplier: Callable[[int], float], eps: float, seed: int = 0, chunk: int = 64,
                  stop_at_eps: bool = False, device: str | torch.device = "cpu",
                  progress: Callable[[int, int], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None) -> SearchResult:
    """Search ``starts`` candidates for each of the ``targets`` [N, 3, s, s] (in [-1, 1]) for ``steps`` steps.

    ``make_optimizer(params)`` builds the optimiser over one chunk's trainable tensors; ``lr_multiplier(j)``
    scales every group's initial lr at 0-based step ``j`` (a function of the step: PULSE's LambdaLR). ``progress``
    is called with (candidates done, candidates in all) after each chunk; ``on_step`` with (steps done, steps in all)
    after every step of every chunk (a live progress bar: a chunk can take minutes)."""
    if targets.dim() != 4 or targets.shape[1] != 3:
        raise ValueError(f"targets must be [N, 3, s, s], got {tuple(targets.shape)}")
    for name, value, low in (("starts", starts, 1), ("steps", steps, 1), ("chunk", chunk, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    device = torch.device(device)
    n_img = targets.shape[0]
    total = n_img * starts
    seeds = torch.tensor([candidate_seed(seed, c // starts, c % starts) for c in range(total)], dtype=torch.int64)
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in ("last", "best", "last_error", "best_error", "best_step",
                                                            "steps_run")}
    history: list[dict] = []
    t0 = time.perf_counter()
    n_chunks = -(-total // chunk)
    for lo in range(0, total, chunk):
        idx = torch.arange(lo, min(lo + chunk, total))
        tick = None if on_step is None else (lambda j, c=lo // chunk: on_step(c * steps + j, n_chunks * steps))
        res = _search_chunk(problem, targets[idx // starts].to(device), seeds[idx], steps=steps,
                            make_optimizer=make_optimizer, lr_multiplier=lr_multiplier, eps=eps,
                            stop_at_eps=stop_at_eps, device=device, tick=tick)
        for k in outs:
            outs[k].append(res[k])
        history.extend({"chunk": lo // chunk, **h} for h in res["history"])
        if progress is not None:
            progress(int(idx[-1]) + 1, total)
    seconds = time.perf_counter() - t0
    cat = {k: torch.cat(v).reshape(n_img, starts, *v[0].shape[1:]) for k, v in outs.items()}
    return SearchResult(seeds=seeds.reshape(n_img, starts), eps=float(eps), seconds=seconds, history=history, **cat)


def _search_chunk(problem: SearchProblem, targets: torch.Tensor, seeds: torch.Tensor, *, steps: int,
                  make_optimizer, lr_multiplier, eps: float, stop_at_eps: bool, device: torch.device,
                  tick: Callable[[int], None] | None = None) -> dict:
    n = targets.shape[0]
    gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    trainable, fixed = problem.init(gens, device)
    for v in trainable.values():
        v.requires_grad_(True)
    params = list(trainable.values())
    initial = {k: v.detach().clone() for k, v in trainable.items()}
    opt = make_optimizer(params)
    base_lrs = [g["lr"] for g in opt.param_groups]

    best_error = torch.full((n,), math.inf, dtype=torch.float64)
    best_step = torch.zeros(n, dtype=torch.int64)
    steps_run = torch.zeros(n, dtype=torch.int64)
    last_error = torch.full((n,), math.inf, dtype=torch.float64)
    active = torch.ones(n, dtype=torch.bool)  # candidates still being optimised
    best_img: torch.Tensor | None = None
    last_img: torch.Tensor | None = None
    history = []
    for j in range(steps):
        mult = float(lr_multiplier(j))
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * mult
        opt.zero_grad(set_to_none=True)
        hr = problem.render(trainable, fixed)
        loss, error, logs = problem.losses(trainable, hr, targets, j)
        err = error.detach().double().cpu()
        img = hr.detach().float().cpu()
        if best_img is None:
            best_img, last_img = img.clone(), img.clone()
        act = active.clone()
        # The image of this step is the output of the variables before this step's update (PULSE's order).
        last_img[act] = img[act]
        last_error[act] = err[act]
        steps_run[act] = j + 1
        better = act & (err < best_error)
        best_img[better] = img[better]
        best_error[better] = err[better]
        best_step[better] = j + 1
        history.append({"step": j + 1, "lr_multiplier": mult, "active": int(act.sum()),
                        **{k: float(v.detach().float()[act.to(v.device)].mean()) for k, v in logs.items()}})
        if tick is not None:
            tick(j + 1)
        if stop_at_eps:
            active &= ~(err <= eps)
            if not active.any():
                break
        if j == steps - 1:
            break  # the last step's image is the output: its update would never be rendered
        frozen = ~active
        keep = {k: v.detach()[frozen.to(v.device)].clone() for k, v in trainable.items()} if frozen.any() else None
        (loss * active.to(loss.device, loss.dtype)).sum().backward()
        opt.step()
        with torch.no_grad():
            problem.after_step(trainable, initial)
            if keep is not None:  # a stopped candidate keeps its variables (its momentum would still move them)
                for k, v in trainable.items():
                    v[frozen.to(v.device)] = keep[k]
    return {"last": last_img, "best": best_img, "last_error": last_error, "best_error": best_error,
            "best_step": best_step, "steps_run": steps_run, "history": history}
