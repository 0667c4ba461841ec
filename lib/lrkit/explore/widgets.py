"""The interactive explorer (``notebooks/explore.ipynb``): pick a model, an input and the controls; see the outputs.

``Explorer`` holds ipywidgets and plain methods: every callback is a method that can be driven headless (set a
widget's ``value``, call ``run_button.click()``), which is how the tests drive it. Fast methods (I2I-LR, StarGAN v2)
re-run when an input changes; searches (PULSE, SR-NAM) run on "Run" with a live progress bar. "Save panel" writes
the current panel as PNG + PDF with its JSON sidecar (the numbers in it) into the run's versioned figures.

Under ``lrkit reproduce`` (no live kernel to talk to: ``LRKIT_BATCH``) ``open_explorer`` renders a static panel for
each method's default selection instead, so the run's HTML report shows images rather than dead widgets.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Sequence

from lrkit.data.ops import make_lr
from lrkit.explore.core import Controls, ExploreInputs, ModelEntry, Panel, image_from_upload, make_panel, \
    panel_figure
from lrkit.explore.registry import adapter, find_models
from lrkit.runs.context import BATCH_ENV

__all__ = ["Explorer", "open_explorer", "static_panels", "default_entry", "open_gallery", "select_inputs", "save_panel"]

GALLERY = 16  # gallery images per model (the val split's first ones)


def _uploaded(value) -> tuple[bytes, str] | None:
    """(bytes, file name) of a FileUpload's newest file (ipywidgets 8: a tuple of dicts), or None."""
    if not value:
        return None
    item = value[-1]
    return bytes(item["content"]), str(item.get("name", "upload"))


def _has_data(data, dataset: str) -> bool:
    """Whether ``data`` ({name: folder} or a root folder, as the notebooks take it) holds ``dataset``."""
    if isinstance(data, dict):
        return dataset in data
    return bool(data) and (Path(data) / dataset).is_dir()


def default_entry(entries: list[ModelEntry], method: str, data=None) -> ModelEntry | None:
    """A method's default model: one trained on a real dataset given in ``data`` (e.g. the paper profile's
    CelebA-HQ), else a faces model of the kit's own data (shipped ones are listed first), else its first."""
    mine = [e for e in entries if e.method == method]
    real = [e for e in mine if e.dataset != "synthfaces" and _has_data(data, e.dataset) and not e.domain]
    faces = [e for e in mine if e.dataset == "synthfaces" and e.variant == "faces" and not e.domain]
    return (real or faces or mine or [None])[0]


class Explorer:
    def __init__(self, ctx, *, runs_dir: str | Path | None = None, checkpoints: Sequence[str] = (), data=None,
                 device: str = "cpu", steps: int = 0):
        import ipywidgets as W

        self.ctx, self.data, self.device = ctx, data or None, device
        self.entries, self.unreadable = find_models(runs_dir, checkpoints)
        if not self.entries:
            raise FileNotFoundError("the explorer found no model: no shipped checkpoint, none under runs/, none "
                                    "given; train one (`lrkit train i2ilr --preset celebahq128_smoke`) or pass "
                                    "checkpoints=[...]")
        self.default_steps = steps
        self._galleries: dict[tuple, object] = {}
        self.panel: Panel | None = None
        self.saved: list[dict] = []
        self._box = None  # the widget tree, built once (widget())
        self._busy = False  # set while on_method rearranges the controls
        style = {"description_width": "initial"}
        first = default_entry(self.entries, self.entries[0].method, self.data)
        self.method = W.Dropdown(options=[(e.label, i) for i, e in enumerate(self.entries)],
                                 value=self.entries.index(first),
                                 description="model", layout=W.Layout(width="95%"), style=style)
        self.source_index = W.IntSlider(0, 0, GALLERY - 1, description="source #", continuous_update=False)
        self.target_index = W.IntSlider(1, 0, GALLERY - 1, description="target #", continuous_update=False)
        self.source_upload = W.FileUpload(accept="image/*", multiple=False, description="upload source")
        self.target_upload = W.FileUpload(accept="image/*", multiple=False, description="upload target")
        self.clear_uploads = W.Button(description="use the gallery")
        self.lr_size = W.Dropdown(options=[8], description="LR size")
        self.seed = W.IntText(0, description="seed / z")
        self.noise_std = W.FloatSlider(1.0, min=0.0, max=2.0, step=0.1, description="z scale",
                                       continuous_update=False)
        self.k = W.IntSlider(3, 1, 8, description="K samples", continuous_update=False)
        self.steps = W.IntSlider(steps or 100, 1, 1000, description="search steps", continuous_update=False)
        self.noise = W.Dropdown(options=["fixed", "zero"], value="fixed", description="deg. noise")
        self.probes = W.Checkbox(False, description="factor probes (synthfaces; trained once, then cached)",
                                 style=style, layout=W.Layout(width="auto"))
        self.run_button = W.Button(description="Run", button_style="primary")
        self.save_button = W.Button(description="Save panel", disabled=True)
        self.progress = W.IntProgress(0, 0, 1, description="search")
        self.message = W.HTML()
        self.numbers = W.HTML()
        self.gallery_out = W.Output()
        self.output = W.Output()
        self._controls = {"lr_size": self.lr_size, "seed": self.seed, "noise_std": self.noise_std, "k": self.k,
                          "steps": self.steps, "noise": self.noise}
        self.method.observe(lambda _: self.on_method(), names="value")
        for w in (self.source_index, self.target_index, self.source_upload, self.target_upload):
            w.observe(lambda _: self.on_input(), names="value")
        self.lr_size.observe(lambda _: self.on_lr_size(), names="value")
        for w in (self.seed, self.noise_std, self.probes):  # StarGAN v2's z, the probes: a new panel
            w.observe(lambda _: self.on_input(), names="value")
        self.clear_uploads.on_click(lambda _: self.on_clear_uploads())
        self.run_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        if self.unreadable:
            self.message.value = "<br>".join(f"skipped {html.escape(u['path'])}: {html.escape(u['error'])}"
                                             for u in self.unreadable)
        self.on_method()

    # -- state --------------------------------------------------------------------------------------------
    @property
    def entry(self) -> ModelEntry:
        return self.entries[self.method.value]

    @property
    def adapter(self):
        return adapter(self.entry.method)

    def controls(self) -> Controls:
        return Controls(lr_size=int(self.lr_size.value), seed=int(self.seed.value), k=int(self.k.value),
                        steps=int(self.steps.value), noise=self.noise.value, noise_std=float(self.noise_std.value),
                        probes=bool(self.probes.value))

    def gallery(self, entry: ModelEntry | None = None):
        """The val images the pickers index (``open_gallery``), cached per model kind."""
        e = entry or self.entry
        key = (e.dataset, e.variant, e.hr_size, e.domain)
        if key not in self._galleries:
            self._galleries[key] = open_gallery(e, self.data, self.ctx.profile.seed)
        return self._galleries[key]

    def inputs(self) -> ExploreInputs:
        """The current input: gallery picks, or the uploaded files (cropped/resized, with a message saying so)."""
        return select_inputs(self.adapter, self.entry, self.gallery(), self.source_index.value,
                             self.target_index.value, int(self.lr_size.value), int(self.seed.value),
                             _uploaded(self.source_upload.value), _uploaded(self.target_upload.value))

    # -- callbacks ----------------------------------------------------------------------------------------
    def siblings(self) -> list[ModelEntry]:
        """Models of the same method, data and size: the LR-size picker switches among them (I2I-LR lr4 ... lr32)."""
        e = self.entry
        return [x for x in self.entries if (x.method, x.dataset, x.variant, x.domain, x.hr_size)
                == (e.method, e.dataset, e.variant, e.domain, e.hr_size)]

    def on_method(self) -> None:
        e, a = self.entry, self.adapter
        self._busy = True  # the widget changes below must not each start a run
        try:
            one = len(e.lr_sizes) == 1
            sizes = sorted({s for x in self.siblings() for s in x.lr_sizes}) if one else list(e.lr_sizes)
            self.lr_size.options = sizes
            self.lr_size.value = e.lr_sizes[0] if one else (8 if 8 in sizes else sizes[0])
            for name, w in self._controls.items():
                w.layout.display = "" if (name in a.controls or (name == "lr_size" and len(sizes) > 1)) else "none"
            for w in (self.source_index, self.source_upload):
                w.layout.display = "" if a.uses_source else "none"
            if "steps" in a.controls and not self.default_steps:
                from lrkit.methods.pulse.explore import DEFAULT_STEPS as PULSE_STEPS
                from lrkit.methods.srnam.explore import DEFAULT_STEPS as SRNAM_STEPS

                self.steps.value = SRNAM_STEPS if e.method == "SR-NAM" else PULSE_STEPS
            self.progress.layout.display = "" if "steps" in a.controls else "none"
        finally:
            self._busy = False
        self.show_gallery()
        self.on_input()

    def on_lr_size(self) -> None:
        """A model with one LR size: switch to its sibling trained for the size picked; else a new input."""
        if self._busy:
            return
        e = self.entry
        if len(e.lr_sizes) == 1 and self.lr_size.value not in e.lr_sizes:
            sib = next(x for x in self.siblings() if self.lr_size.value in x.lr_sizes)
            self.method.value = self.entries.index(sib)  # on_method runs it
            return
        self.on_input()

    def on_input(self) -> None:
        """Fast methods re-run at once; searches wait for "Run"."""
        if self._busy:
            return
        if "steps" not in self.adapter.controls:
            self.run()
        else:
            self.message.value = "press Run to search"

    def on_clear_uploads(self) -> None:
        for w in (self.source_upload, self.target_upload):
            w.value = ()
        self.on_input()

    def show_gallery(self) -> None:
        from IPython.display import display

        import matplotlib.pyplot as plt

        from lrkit.data.ops import to_uint8

        gal = self.gallery()
        imgs = to_uint8(gal.pool.get(list(range(min(GALLERY, len(gal))))))
        self.gallery_out.clear_output(wait=True)
        with self.gallery_out:
            fig, axes = plt.subplots(1, len(imgs), figsize=(0.75 * len(imgs), 1.0), squeeze=False)
            for i, ax in enumerate(axes[0]):
                ax.imshow(imgs[i])
                ax.set_title(f"#{i}", fontsize=7)
                ax.axis("off")
            fig.suptitle(f"gallery: {gal.name} val", fontsize=8)
            display(fig)
            _close(fig)

    def run(self) -> Panel | None:
        """Run the current selection; errors become the message line (a bad upload, missing weights), the last
        good panel stays."""
        from IPython.display import display

        from lrkit.errors import UserError

        self.progress.value, self.progress.max = 0, 1

        def progress(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(total, 1), done

        try:
            inp = self.inputs()
            panel = make_panel(self.adapter, self.entry, inp, self.controls(), device=self.device, progress=progress)
        except (UserError, ValueError, FileNotFoundError) as exc:  # the user's input or a missing file: one line
            self.message.value = f"<b style='color:#c00'>{html.escape(str(exc).splitlines()[0])}</b>"
            return None
        self.panel = panel
        self.progress.value = self.progress.max
        self.message.value = html.escape(f"{panel.inputs.label} · {panel.run.notes}")
        self.numbers.value = _numbers_html(panel.numbers)
        self.output.clear_output(wait=True)
        with self.output:
            fig = panel_figure(panel)
            display(fig)
            _close(fig)
        self.save_button.disabled = False
        return panel

    def save(self) -> dict:
        """The current panel as a versioned figure of the run (PNG, PDF, JSON sidecar with the numbers)."""
        if self.panel is None:
            raise ValueError("nothing to save yet: run a model first")
        meta = save_panel(self.ctx, self.panel, self.device)
        self.saved.append(meta)
        self.message.value = html.escape(f"saved {meta['files']['png']}")
        return meta

    def _ipython_display_(self) -> None:  # a notebook cell ending in the explorer shows its widgets
        from IPython.display import display

        display(self.widget())

    def widget(self):
        import ipywidgets as W

        if self._box is not None:
            return self._box

        c = self._controls
        self._box = W.VBox([
            self.method,
            W.HBox([W.VBox([self.source_index, self.source_upload]), W.VBox([self.target_index, self.target_upload]),
                    self.clear_uploads]),
            W.HBox([c["lr_size"], c["seed"], c["noise_std"]]), W.HBox([c["k"], c["steps"], c["noise"]]),
            W.HBox([self.probes, self.run_button, self.save_button, self.progress]),
            self.message, self.numbers, self.output, self.gallery_out])
        return self._box


def open_gallery(entry: ModelEntry, data, seed: int):
    """The val images of the model's dataset when ``data`` names it, else synthfaces (the model's variant and
    domain, its size): ``GALLERY`` of them."""
    from lrkit.data.training_sets import open_images

    domains = [entry.domain] if entry.domain else None
    if entry.dataset != "synthfaces" and data:
        return open_images(entry.dataset, "val", entry.hr_size, data_root=data, domains=domains)
    return open_images("synthfaces", "val", entry.hr_size, n=GALLERY, seed=seed, synth_variant=entry.variant,
                       domains=domains)


def _is_lr_upload(data: bytes, lr_size: int) -> bool:
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as im:
            return im.size == (lr_size, lr_size)
    except OSError:
        return False


def select_inputs(adapter, entry: ModelEntry, gal, source_index: int, target_index: int, lr_size: int, seed: int,
                  source_upload: tuple[bytes, str] | None = None,
                  target_upload: tuple[bytes, str] | None = None) -> ExploreInputs:
    """One input from gallery indices or uploaded files ((bytes, name)). An uploaded target of exactly the LR size
    is the LR target itself; any other upload is center-cropped and resized to the model's size, and said so."""
    notes = []

    def pick(upload, index: int, what: str):
        """(image [3, S, S], its factors or None) from an upload or the gallery, noted."""
        if upload:
            img, note = image_from_upload(upload[0], entry.hr_size, upload[1])
            notes.append(f"{what} {note}")
            return img, None
        i = index % len(gal)
        notes.append(f"{what} {gal.name} val #{i}")
        return gal.pool.get([i])[0], None if gal.factors is None else {k: v[i] for k, v in gal.factors.items()}

    src, src_f = pick(source_upload, source_index, "source") if adapter.uses_source else (None, None)
    tgt_hr = tgt_f = None
    if target_upload and _is_lr_upload(target_upload[0], lr_size):
        target_lr, note = image_from_upload(target_upload[0], lr_size, target_upload[1])
        notes.append(f"LR target {note}")
    else:
        tgt_hr, tgt_f = pick(target_upload, target_index, "target")
        target_lr = (adapter.make_lr(tgt_hr, entry, seed) if adapter.make_lr is not None
                     else make_lr(tgt_hr[None], lr_size)[0])
    return ExploreInputs(target_lr, src, tgt_hr, src_f, tgt_f, "; ".join(notes))


def save_panel(ctx, panel: Panel, device: str) -> dict:
    """``panel`` as the run's versioned figure ``explore_<method>_<preset>`` (PNG, PDF; JSON sidecar whose notes
    hold the run notes, the controls and the numbers)."""
    p = panel
    name = "explore_" + re.sub(r"[^a-z0-9]+", "_", f"{p.entry.method} {p.entry.preset}".lower()).strip("_")
    fig = panel_figure(p)
    try:
        return ctx.save_figure(fig, name, title=f"Explorer: {p.entry.label}", dataset=p.inputs.label,
                               weights=" + ".join(p.entry.paths), device=device,
                               notes=json.dumps({"run": p.run.notes, "controls": p.controls.__dict__,
                                                 "numbers": p.numbers}, default=str))
    finally:
        _close(fig)


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _numbers_html(numbers: dict) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

    rows = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td><td>{fmt(v)}</td></tr>"
                   for k, v in numbers.items())
    return f"<table>{rows}</table>"


def static_panels(ctx, *, runs_dir=None, checkpoints: Sequence[str] = (), data=None, device: str = "cpu",
                  steps: int = 0) -> list[Panel]:
    """Each method's default model on the default input (source #0, target #1, seed 0, K 3, the profile's
    ``explore_steps`` for searches), saved as versioned figures and shown: what the batch's HTML report holds. No
    widget is built (a widget cell can hang a papermill kernel: nbclient#312)."""
    from IPython.display import display

    from lrkit.errors import UserError

    entries, unreadable = find_models(runs_dir, checkpoints)
    for u in unreadable:
        print(f"skipped {u['path']}: {u['error']}")
    controls = Controls(steps=steps or ctx.profile.explore_steps)
    panels = []
    for method in dict.fromkeys(e.method for e in entries):
        first = default_entry(entries, method, data)
        a = adapter(method)
        for entry in [first] + [e for e in entries if e.method == method and e is not first][:2]:
            lr_size = 8 if 8 in entry.lr_sizes else entry.lr_sizes[0]
            try:
                inp = select_inputs(a, entry, open_gallery(entry, data, ctx.profile.seed), 0, 1, lr_size, 0)
                panel = make_panel(a, entry, inp, controls, device=device)
            except (UserError, ValueError, FileNotFoundError) as exc:
                print(f"not shown: {entry.label}: {str(exc).splitlines()[0]}")
                continue
            meta = save_panel(ctx, panel, device)
            fig = panel_figure(panel)
            display(fig)
            _close(fig)
            print(f"{entry.label}: {panel.run.notes}; saved {meta['files']['png']}; " + "; ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in panel.numbers.items()))
            panels.append(panel)
            break
    return panels


def open_explorer(ctx, *, runs_dir=None, checkpoints: Sequence[str] = (), data=None, device: str = "cpu",
                  steps: int = 0):
    """The explorer widget in a live kernel; under ``lrkit reproduce`` (``LRKIT_BATCH``) the static panels."""
    runs_dir = runs_dir if runs_dir is not None else Path(ctx.run_dir).parent  # the runs folder this run is in
    if os.environ.get(BATCH_ENV) == "1":  # shown by static_panels; None keeps the cell from printing the panels
        static_panels(ctx, runs_dir=runs_dir, checkpoints=checkpoints, data=data, device=device, steps=steps)
        return None
    return Explorer(ctx, runs_dir=runs_dir, checkpoints=checkpoints, data=data, device=device, steps=steps)
