"""StarGAN v2's reference-guided protocol: task order, fresh reference batches from the target domain, outputs
equal to the model's, per-task scoring averaged over tasks, unavailable metrics stay unavailable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrkit.data.ops import from_uint8, make_lr
from lrkit.data.training_sets import open_images
from lrkit.methods.stargan2.evaluation import (aggregate_tasks, cross_domain_tasks, reference_guided_sets,
                                           same_domain_tasks, score_reference_guided)
from lrkit.evaluation.translations import U8Images
from lrkit.methods.stargan2.inference import Stargan2Nets, translate_ref
from lrkit.metrics.lr_consistency import lr_consistency
from lrkit.methods.stargan2.nets import MappingNetwork, Stargan2Generator, StyleEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

S = 32


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    G, F, E = (Stargan2Generator(S, 64, 16, 0, base_dim=8), MappingNetwork(16, 64, 2),
               StyleEncoder(S, 64, 2, 16, base_dim=8))
    return Stargan2Nets(G.eval(), F.eval(), E.eval(), None, S, 0.0, 16, ("longhair", "shorthair"), "tiny.ckpt",
                        "lrkit checkpoint", 0)


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    import os

    os.environ.setdefault("LRKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return open_images("synthfaces", "val", S, n=24, seed=0, synth_variant="faces")


def test_task_lists_follow_the_official_order():
    assert cross_domain_tasks(["female", "male"]) == [("male", "female"), ("female", "male")]
    assert cross_domain_tasks(["cat", "dog", "wild"])[:2] == [("dog", "cat"), ("wild", "cat")]
    assert len(cross_domain_tasks(["cat", "dog", "wild"])) == 6
    assert same_domain_tasks(["cat", "dog"]) == [("cat", "cat"), ("dog", "dog")]


def test_protocol_fresh_references_of_the_target_domain(nets, val):
    tasks = reference_guided_sets(nets, val, cross_domain_tasks(val.domain_names), n_outs=3, batch_size=5)
    assert [t.name for t in tasks] == ["shorthair2longhair", "longhair2shorthair"]
    for t in tasks:
        ts = t.translations
        src_dom = val.domain_names.index(t.source_domain)
        trg_dom = val.domain_names.index(t.target_domain)
        n_src = int((val.domain == src_dom).sum())
        assert ts.outputs.shape == (n_src, 3, S, S, 3) and ts.outputs.dtype == np.uint8
        assert (val.domain[ts.source_idx] == src_dom).all()
        assert (val.domain[ts.target_idx] == trg_dom).all()  # every reference from the target domain
        # Within a source batch, the K outputs use K different reference batches (fresh references each).
        first = ts.target_idx[:5]  # [5, K]
        assert len({tuple(first[:, k]) for k in range(3)}) == 3
        assert all(len(set(first[:, k])) == 5 for k in range(3))  # a batch has distinct references
        # An output is exactly the model's translation of its (source, reference) pair.
        i, k = 2, 1
        want = translate_ref(nets, val.pool.get([int(ts.source_idx[i, k])]), val.pool.get([int(ts.target_idx[i, k])]),
                             t.target_domain)
        np.testing.assert_allclose(from_uint8(ts.outputs[i, k][None]).numpy(), want.numpy(), atol=1 / 127.5 + 1e-6)
        assert ts.targets_lr.shape == (n_src * 3, 3, 8, 8)
    again = reference_guided_sets(nets, val, cross_domain_tasks(val.domain_names), n_outs=3, batch_size=5)
    np.testing.assert_array_equal(again[0].translations.target_idx, tasks[0].translations.target_idx)
    np.testing.assert_array_equal(again[1].translations.outputs, tasks[1].translations.outputs)


def test_same_domain_tasks_and_small_reference_sets(nets, val):
    tasks = reference_guided_sets(nets, val, [("longhair", "longhair")], n_outs=2, batch_size=64, n_sources=4)
    ts = tasks[0].translations
    assert ts.outputs.shape[:2] == (4, 2)
    assert (val.domain[ts.target_idx] == 0).all() and (val.domain[ts.source_idx] == 0).all()
    with pytest.raises(ValueError, match="not in the val set"):
        reference_guided_sets(nets, val, [("cat", "longhair")])
    with pytest.raises(ValueError, match="unknown domain 'cat'"):
        reference_guided_sets(nets, open_images("synthfaces", "val", S, n=6, seed=0, synth_variant="animals"),
                              [("cat", "cat")])


def test_scores_are_per_task_then_averaged(nets, val):
    tasks = reference_guided_sets(nets, val, cross_domain_tasks(val.domain_names), n_outs=2, batch_size=6)
    agg, per_task = score_reference_guided(tasks, val, {d: None for d in val.domain_names},
                                           ["lr_consistency", "lpips_diversity"])
    lr = next(r for r in agg if r["metric"] == "lr_consistency")
    by_hand = [lr_consistency(U8Images(t.translations.flat), t.translations.targets_lr)["lr_error_mean"]
               for t in tasks]
    assert lr["values"]["lr_error_mean"] == pytest.approx(np.mean(by_hand), rel=1e-9)
    assert set(lr["tasks"]) == {"shorthair2longhair", "longhair2shorthair"}
    # StarGAN v2 is not asked to fit the reference's LR image: its error is large (grey levels).
    assert lr["values"]["lr_error_mean"] > 5
    lp = next(r for r in agg if r["metric"] == "lpips_diversity")
    assert lp["status"] != "ok"  # AlexNet weights are not installed here: unavailable, never substituted
    assert all(r["task"] in per_task for recs in per_task.values() for r in recs)


def test_aggregate_means_over_tasks_and_unavailable_wins():
    ok = lambda v: {"metric": "m", "status": "ok", "values": {"x": v, "flag": True, "name": "a"}, "weights": ["w"]}
    agg = aggregate_tasks({"a2b": [ok(1.0)], "b2a": [ok(3.0)]})
    assert agg[0]["values"] == {"x": 2.0} and agg[0]["tasks"] == {"a2b": ok(1.0)["values"], "b2a": ok(3.0)["values"]}
    bad = {"metric": "m", "status": "unavailable", "values": {}, "reason": "weights missing"}
    agg = aggregate_tasks({"a2b": [ok(1.0)], "b2a": [bad]})
    assert agg[0]["status"] == "unavailable" and agg[0]["reason"] == "weights missing"


def test_translation_set_per_output_targets(nets, val):
    ts = reference_guided_sets(nets, val, [("longhair", "shorthair")], n_outs=2, batch_size=4, n_sources=4,
                               lr_size=4)[0].translations
    np.testing.assert_array_equal(ts.flat_target_idx(), ts.target_idx.reshape(-1))
    torch.testing.assert_close(ts.flat_targets_lr(), make_lr(val.pool.get(ts.target_idx.reshape(-1).tolist()), 4))
