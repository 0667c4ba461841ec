"""The explorer, driven headless: its widgets' values set and its buttons clicked as a user would, on the shipped
cpu models (I2I-LR, StarGAN v2, PULSE and SR-NAM on the shipped ProGAN and degradation net) with tiny searches."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lrkit.explore import Explorer, find_models, static_panels
from lrkit.explore.core import image_from_upload
from lrkit.runs.context import open_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ctx(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    return open_run("", "smoke", notebook="explore", output_root=tmp_path / "out", runs_dir=tmp_path / "runs")


def _png(w: int, h: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _upload(data: bytes, name: str) -> tuple[dict, ...]:
    return ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
             "last_modified": dt.datetime(2026, 12, 8, tzinfo=dt.timezone.utc)},)


def _select(ex: Explorer, method: str, preset_part: str = "") -> None:
    ex.method.value = next(i for i, e in enumerate(ex.entries) if e.method == method and preset_part in e.preset)


def test_every_method_is_found_with_preset_data_and_step(tmp_path):
    runs = tmp_path / "runs"
    cached = runs / "models" / "i2ilr" / "celebahq128_cpu-x" / "checkpoints" / "latest.pt"
    cached.parent.mkdir(parents=True)
    from lrkit.train.shipped import shipped_dir

    shutil.copy(shipped_dir() / "i2ilr-celebahq128_cpu.pt", cached)
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    entries, unreadable = find_models(runs, [str(bad)])
    methods = {e.method for e in entries}
    assert methods == {"I2I-LR", "StarGAN v2", "PULSE", "SR-NAM"}
    i2i = [e for e in entries if e.preset == "celebahq128_cpu" and e.method == "I2I-LR"]
    assert {e.source for e in i2i} == {"shipped", "model cache"}
    assert all(e.step == 2000 and e.hr_size == 32 and e.lr_sizes == (8,) and e.dataset == "synthfaces" for e in i2i)
    assert next(e for e in entries if e.preset == "afhq_cat_cpu").domain == "cat"
    pulse = next(e for e in entries if e.method == "PULSE")
    assert pulse.lr_sizes == (4, 8, 16, 32) and pulse.step == 8125
    assert unreadable[0]["path"] == str(bad.resolve()) and "not an lrkit checkpoint" in unreadable[0]["error"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_models(runs, [str(tmp_path / "missing.pt")])


def test_uploads_are_cropped_and_resized_with_a_message():
    x, msg = image_from_upload(_png(50, 40), 32, "a.png")
    assert x.shape == (3, 32, 32) and -1 <= float(x.min()) and float(x.max()) <= 1
    assert "center-cropped from 50x40 to 40x40" in msg and "resized from 40 to 32 px" in msg
    with pytest.raises(ValueError, match="b.txt is not an image"):
        image_from_upload(b"hello", 32, "b.txt")


def test_i2ilr_reruns_live_when_the_inputs_change(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent)
    assert ex.entry.preset == "celebahq128_cpu"  # the default: the shipped faces model
    first = ex.panel
    assert first is not None and first.run.outputs.shape == (1, 3, 32, 32)
    # the shipped model keeps its LR target (measured 0.05 grey levels on the val split)
    assert first.numbers["LR error (grey levels, mean over outputs)"] < 1
    assert "LR error" in ex.numbers.value and "ms per output" in ex.numbers.value
    ex.source_index.value = 5  # a callback, no button: the panel follows
    assert ex.panel is not first and "val #5" in ex.panel.inputs.label
    assert not torch.equal(ex.panel.run.outputs, first.run.outputs)  # another source, another output
    assert torch.equal(ex.panel.inputs.target_lr, first.inputs.target_lr)  # same target
    # hidden controls: I2I-LR has no seed, K or steps
    assert ex.k.layout.display == "none" and ex.steps.layout.display == "none"


def test_the_lr_size_picker_switches_to_the_model_of_that_size(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent)
    _select(ex, "I2I-LR", "lr8_cpu")
    assert list(ex.lr_size.options) == [4, 8, 16, 32] and ex.lr_size.layout.display == ""  # Table 4's models
    ex.lr_size.value = 16
    assert ex.entry.preset == "lr16_cpu" and ex.panel.entry.preset == "lr16_cpu"
    assert ex.panel.inputs.target_lr.shape == (3, 16, 16) and ex.panel.run.outputs.shape == (1, 3, 64, 64)
    _select(ex, "I2I-LR", "celebahq128_cpu")  # the only 32 px faces model: nothing to switch to
    assert list(ex.lr_size.options) == [8] and ex.lr_size.layout.display == "none"


def test_an_uploaded_source_and_a_bad_upload(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent)
    ex.source_upload.value = _upload(_png(60, 48), "me.png")
    assert "me.png: center-cropped from 60x48 to 48x48; resized from 48 to 32 px" in ex.panel.inputs.label
    good = ex.panel
    ex.source_upload.value = _upload(b"GIF? no", "broken.png")
    assert "broken.png is not an image" in ex.message.value and ex.panel is good  # the last good panel stays
    ex.clear_uploads.click()
    assert "val #0" in ex.panel.inputs.label


def test_pulse_and_srnam_search_on_run_with_progress_and_k(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent, steps=3)
    _select(ex, "PULSE")
    assert ex.steps.layout.display == "" and ex.k.layout.display == ""
    assert ex.lr_size.options == (4, 8, 16, 32) and ex.lr_size.value == 8
    assert "press Run" in ex.message.value  # searches wait for the button
    ex.k.value, ex.lr_size.value = 2, 16
    ex.run_button.click()
    p = ex.panel
    assert p.entry.method == "PULSE" and p.run.outputs.shape == (2, 3, 64, 64) and p.run.downscaled.shape[-1] == 16
    assert ex.progress.value == ex.progress.max == 3  # live: one tick per search step
    assert len(p.numbers["LR error per output"]) == 2 and p.numbers["diversity (mean pairwise L1 between outputs, "
                                                                    "grey levels)"] > 0
    _select(ex, "SR-NAM")
    assert ex.lr_size.layout.display == "none" and ex.noise.layout.display == ""
    ex.k.value, ex.noise.value = 2, "zero"
    ex.run_button.click()
    p = ex.panel
    assert p.entry.method == "SR-NAM" and p.run.outputs.shape == (2, 3, 64, 64)
    assert p.inputs.target_lr.shape == (3, 16, 16) and "noise zero" in p.run.notes


def test_stargan_uses_the_target_as_reference(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent)
    _select(ex, "StarGAN v2", "afhq128")
    p = ex.panel
    assert p is not None and "reference-guided" in p.run.notes and p.inputs.target_hr is not None
    assert p.numbers["LR error (grey levels, mean over outputs)"] > 5  # it does not fit the LR target


def test_save_writes_a_versioned_panel_with_its_numbers(ctx):
    ex = Explorer(ctx, runs_dir=ctx.run_dir.parent)
    assert ex.save_button.disabled is False
    ex.save_button.click()
    meta = ex.saved[-1]
    png = ctx.output_root / meta["files"]["png"]
    assert png.is_file() and png.parent.name == "explore_i2i_lr_celebahq128_cpu"
    side = json.loads((ctx.output_root / "figures" / "smoke" / "explore_i2i_lr_celebahq128_cpu.json").read_text())
    assert side["run_id"] == ctx.run_id and "LR error" in json.loads(side["notes"])["numbers"].__str__()


def test_static_panels_draw_every_method_without_widgets(ctx, monkeypatch):
    import ipywidgets

    built = []
    monkeypatch.setattr(ipywidgets.Widget, "open", lambda self: built.append(type(self).__name__))
    ctx.profile = type(ctx.profile)(**{**ctx.profile.__dict__, "explore_steps": 2})
    panels = static_panels(ctx, runs_dir=ctx.run_dir.parent)
    assert [p.entry.method for p in panels] == ["I2I-LR", "StarGAN v2", "PULSE", "SR-NAM"]
    assert not built  # a widget in a batch kernel can hang papermill (nbclient#312)
    for p in panels:
        name = f"explore_{p.entry.method.lower().replace('-', '_').replace(' ', '_')}"
        assert any(f.name.startswith(name) for f in (ctx.output_root / "figures" / "smoke").glob("*.png"))


def test_the_engine_ticks_every_step_of_every_chunk():
    from lrkit.search.engine import latent_search

    class Line:  # a 1-parameter "generator": the image is the latent times ones
        def init(self, gens, device):
            return {"z": torch.stack([torch.randn(1, generator=g) for g in gens])}, {}

        def render(self, trainable, fixed):
            return trainable["z"][:, :, None, None].expand(-1, 3, 4, 4)

        def losses(self, trainable, hr, targets, step):
            e = (hr - targets).pow(2).mean((1, 2, 3))
            return e, e, {"l2": e}

        def after_step(self, trainable, initial):
            return None

    ticks = []
    latent_search(Line(), torch.zeros(2, 3, 4, 4), starts=3, steps=4, chunk=4, eps=0.0, lr_multiplier=lambda j: 1.0,
                  make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1), on_step=lambda d, t: ticks.append((d, t)))
    assert ticks == [(d, 8) for d in range(1, 9)]  # 6 candidates in 2 chunks of <= 4, 4 steps each


def test_released_weights_in_the_cache_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("LRKIT_WEIGHTS_DIR", str(tmp_path / "w"))
    from lrkit import weights as W

    assert not [e for e in find_models(None)[0] if e.source == "official weights"]
    for name in ("stargan2_afhq", "stylegan1_ffhq_synthesis", "stylegan1_ffhq_mapping"):
        W.official_path(name).parent.mkdir(parents=True, exist_ok=True)
        W.official_path(name).write_bytes(b"placeholder: only its presence is read here")
    official = [e for e in find_models(None)[0] if e.source == "official weights"]
    assert {(e.method, e.preset, e.hr_size) for e in official} == {("StarGAN v2", "official afhq", 256),
                                                                   ("PULSE", "StyleGAN-1 FFHQ", 1024)}


def test_factor_probes_read_the_outputs(ctx):
    from lrkit.explore.core import Controls, make_panel
    from lrkit.explore.registry import adapter
    from lrkit.explore.widgets import open_gallery, select_inputs
    from lrkit.metrics.factor_probes import train_probes

    probes = train_probes("faces", 32, n_train=64, epochs=1, n_val=16)  # tiny: the plumbing, not the accuracy
    entries, _ = find_models(None)
    for method in ("I2I-LR", "PULSE"):
        a, e = adapter(method), next(x for x in entries if x.method == method and x.variant == "faces")
        inp = select_inputs(a, e, open_gallery(e, None, 0), 0, 1, 8, 0)
        p = make_panel(a, e, inp, Controls(k=2, steps=2, probes=True), probes=probes if e.hr_size == 32 else
                       train_probes("faces", 64, n_train=32, epochs=1, n_val=16))
        values = {k: v for k, v in p.numbers.items() if "agreement" in k or "chance" in k}
        assert all(0 <= v <= 1 for v in values.values())
        if method == "I2I-LR":  # a translation: fine factors against the source, with the no-skill level
            assert set(values) == {"identity to the source (fine factors), agreement",
                                   "faithfulness to the LR target (coarse factors), agreement",
                                   "chance (the target's fine factors vs the source's)"}
        else:  # super-resolution: against the true HR image, no "chance" (it would compare the target to itself)
            assert set(values) == {"fine factors of the true HR image, agreement",
                                   "faithfulness to the LR target (coarse factors), agreement"}


def test_the_default_model_follows_the_data_given(tmp_path):
    from lrkit.explore.core import ModelEntry
    from lrkit.explore.widgets import default_entry

    def e(preset, dataset, variant="faces", domain=""):
        return ModelEntry("I2I-LR", preset, dataset, variant, 1, "model cache", 128, (8,), (preset,), domain)

    entries = [e("afhq_cat", "synthfaces", "animals", "cat"), e("celebahq128_cpu", "synthfaces"),
               e("celebahq128", "celeba_hq")]
    assert default_entry(entries, "I2I-LR").preset == "celebahq128_cpu"  # no real data: the kit's faces
    assert default_entry(entries, "I2I-LR", {"celeba_hq": "/data/celeba_hq"}).preset == "celebahq128"
    (tmp_path / "celeba_hq").mkdir()
    assert default_entry(entries, "I2I-LR", str(tmp_path)).preset == "celebahq128"  # a root holding it
    assert default_entry(entries, "PULSE") is None
