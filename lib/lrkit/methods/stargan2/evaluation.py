"""StarGAN v2's reference-guided evaluation protocol, for the Stargan-v2 rows of the I2I-LR tables.

The protocol (clovaai/stargan-v2 ``metrics/eval.py``; facts in REFERENCE_NOTES):

* Tasks: for every target domain t (outer loop, sorted domain order), every other domain s is a source domain
  ("s2t"). The I2I-LR paper's Table 3 uses same-domain tasks instead ("cat2cat": sources and references from the
  same AFHQ domain); ``same_domain_tasks`` builds those.
* Sources: the val images of s in batches of ``batch_size`` (32). Each source batch gets ``n_outs`` (10) outputs,
  each made with a *fresh* batch of references: the val images of t, shuffled, in batches of ``batch_size`` with
  the last incomplete batch dropped, cycled (re-shuffled) when exhausted; a reference batch larger than the source
  batch is cut to it. Seed 777.
* LPIPS diversity: the mean LPIPS over the 45 pairs of a source's 10 outputs, averaged over sources, then over
  tasks. (The official code averages per source *batch*, so a smaller last batch weighs a little more there; with
  full batches the two are equal.)
* FID (``fid_starganv2``): per task, the task's outputs against the TRAIN images of the target domain; the table
  value is the mean over tasks. Every other set metric (pytorch-fid FID, PRDC, the offline Fréchet distances) is
  computed the same way, per task then averaged, so the rows of one table are comparable.

Outputs are kept as uint8 (``to_uint8`` rounds halves to even where the official ``save_image`` rounds them up:
the two differ only on exact ties). The offline metrics read the reference as the "target": faithfulness is
agreement of the output's coarse factors with the *reference's*, identity with the source's fine factors, and
``lr_consistency`` measures how far the output is from the reference's LR image -- what I2I-LR is asked to match,
and StarGAN v2 is not (the point of the paper's Fig. 6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrkit.data.ops import make_lr, to_uint8
from lrkit.data.training_sets import ImageSet
from lrkit.evaluation.translations import EVAL_SEED, TranslationSet, score

__all__ = ["RefGuidedTask", "cross_domain_tasks", "same_domain_tasks", "reference_guided_sets",
           "score_reference_guided", "aggregate_tasks"]


@dataclass
class RefGuidedTask:
    name: str  # "<source>2<target>", as the official task names
    source_domain: str
    target_domain: str
    translations: TranslationSet  # outputs [N, K]; target_idx [N, K] = the references' val indices


def cross_domain_tasks(domains) -> list[tuple[str, str]]:
    """The official task list: for each target domain, every other domain as the source."""
    domains = list(domains)
    return [(s, t) for t in domains for s in domains if s != t]


def same_domain_tasks(domains) -> list[tuple[str, str]]:
    """I2I-LR Table 3: source and reference from the same domain."""
    return [(d, d) for d in domains]


def _indices_of(val: ImageSet, name: str) -> np.ndarray:
    if name not in val.domain_names:
        raise ValueError(f"domain {name!r} is not in the val set (it has {list(val.domain_names)})")
    return np.flatnonzero(val.domain == val.domain_names.index(name))


def reference_guided_sets(nets, val: ImageSet, tasks: list[tuple[str, str]], *, n_outs: int = 10,
                          batch_size: int = 32, seed: int = EVAL_SEED, n_sources: int = 0,
                          lr_size: int = 8) -> list[RefGuidedTask]:
    """Run the protocol with ``nets`` (a :class:`lrkit.methods.stargan2.inference.Stargan2Nets`) on ``val``.

    ``tasks``: (source domain, target domain) names, present in both ``val.domain_names`` and the model's domains.
    ``n_sources``: at most this many sources per task (0 = all val images of the source domain). ``lr_size``: the LR
    size of the references kept for the LR-consistency metric.
    """
    from lrkit.methods.stargan2.inference import translate_ref

    if val.domain is None or not val.domain_names:
        raise ValueError("reference-guided evaluation needs a val set with domain labels")
    val_size = val.pool.get([0]).shape[-1]
    if val_size != nets.img_size:
        raise ValueError(f"val images are {val_size} px but the StarGAN v2 model works at "
                         f"{nets.img_size} px: open the val set at the model's size")
    rng = np.random.default_rng(seed)
    out = []
    for src_name, trg_name in tasks:
        y = nets.domain_index(trg_name)  # the model's index of the target domain
        src_all = _indices_of(val, src_name)
        if n_sources:
            src_all = src_all[:n_sources]
        ref_pool = _indices_of(val, trg_name)
        # Fewer references than a batch: shrink the batch so drop_last still leaves one (the official loader
        # would yield nothing and fail).
        B = min(batch_size, len(ref_pool))
        ref_batches: list[np.ndarray] = []

        def next_refs() -> np.ndarray:
            if not ref_batches:  # a new epoch of the shuffled, drop_last reference loader
                perm = rng.permutation(ref_pool)
                ref_batches.extend(perm[i:i + B] for i in range(0, len(perm) - B + 1, B))
            return ref_batches.pop(0)

        outputs, refs_idx = [], []
        for i in range(0, len(src_all), B):
            src_idx = src_all[i:i + B]
            x_src = val.pool.get(src_idx.tolist())
            group, group_refs = [], []
            for _ in range(n_outs):
                ref_idx = next_refs()[:len(src_idx)]
                x_ref = val.pool.get(ref_idx.tolist())
                group.append(to_uint8(translate_ref(nets, x_src, x_ref, [y] * len(src_idx), batch_size=B)))
                group_refs.append(ref_idx)
            outputs.append(np.stack(group, axis=1))  # [b, K, H, W, 3]
            refs_idx.append(np.stack(group_refs, axis=1))  # [b, K]
        outputs_a = np.concatenate(outputs)
        refs_a = np.concatenate(refs_idx)
        src_a = np.repeat(src_all[:, None], n_outs, axis=1)
        refs_lr = make_lr(val.pool.get(refs_a.reshape(-1).tolist()), lr_size) if lr_size else None
        ts = TranslationSet("Stargan-v2", outputs_a, src_a, refs_a, refs_lr,
                            info={"task": f"{src_name}2{trg_name}", "protocol": "reference-guided"})
        out.append(RefGuidedTask(f"{src_name}2{trg_name}", src_name, trg_name, ts))
    return out


def aggregate_tasks(per_task: dict[str, list[dict]]) -> list[dict]:
    """One record per metric: the mean over tasks of every numeric value (the official averaging), with the
    per-task values kept under ``"tasks"``. A metric unavailable in any task is unavailable overall."""
    out = []
    names = list(dict.fromkeys(r["metric"] for recs in per_task.values() for r in recs))
    for name in names:
        recs = {task: r for task, rs in per_task.items() for r in rs if r["metric"] == name}
        first = next(iter(recs.values()))
        if any(r["status"] != "ok" for r in recs.values()):
            bad = next(r for r in recs.values() if r["status"] != "ok")
            out.append({**bad, "tasks": sorted(recs)})
            continue
        keys = [k for k, v in first["values"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        values = {k: float(np.mean([r["values"][k] for r in recs.values()])) for k in keys
                  if all(k in r["values"] and isinstance(r["values"][k], (int, float)) for r in recs.values())}
        out.append({**first, "values": values, "tasks": {t: r["values"] for t, r in recs.items()},
                    "weights": list(dict.fromkeys(w for r in recs.values() for w in r.get("weights", [])))})
    return out


def score_reference_guided(tasks: list[RefGuidedTask], val: ImageSet, real_by_domain: dict, metrics: list[str], *,
                           device: str = "cpu", results_file=None, context: dict | None = None, probes=None,
                           allow_singular: bool = False) -> tuple[list[dict], dict[str, list[dict]]]:
    """Score every task (set metrics against ``real_by_domain[target domain]``, the TRAIN images of that domain)
    and average over tasks. Returns ``(aggregated records, {task: records})``; per-task records go to
    ``results_file`` with a ``task`` field."""
    per_task: dict[str, list[dict]] = {}
    for t in tasks:
        if t.target_domain not in real_by_domain:
            raise ValueError(f"no real set for target domain {t.target_domain!r} (have {sorted(real_by_domain)})")
        ctx = {**(context or {}), "task": t.name, "protocol": "stargan2-reference-guided"}
        per_task[t.name] = score(t.translations, val, real_by_domain[t.target_domain], metrics, device=device,
                                 results_file=results_file, context=ctx, probes=probes,
                                 allow_singular=allow_singular)
    return aggregate_tasks(per_task), per_task
