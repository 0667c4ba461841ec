"""The data overview notebook's real-dataset section: each real dataset given, checked, recorded and shown."""

from __future__ import annotations

from collections.abc import Mapping

from lrkit.data.roots import find_datasets

__all__ = ["real_datasets_overview"]


def real_datasets_overview(ctx, data, *, n_show: int, lr_sizes, seed: int = 0) -> list[str]:
    """For every real dataset in ``data`` (``{name: folder}``, or a root holding ``celeba_hq/`` / ``afhq/``):
    the ``lrkit data check`` report, its content fingerprint in the run's record, its unreadable files in the
    report, and an HR/LR figure. Returns the dataset labels (empty, with a printed line, when none is given)."""
    from lrkit import viz
    from lrkit.data.check import check_dataset
    from lrkit.data.sampling import open_real, sample_batch

    folders = dict(data) if isinstance(data, Mapping) else find_datasets(data)
    if not folders:
        print("no real dataset given (data = {}): real-dataset section skipped")
    labels = []
    for name, folder in folders.items():
        report = check_dataset(folder)
        print(report.format())
        label = ctx.record_dataset(name, report.fingerprint, layout=report.layout, path=str(folder))
        real = open_real(folder, ctx.profile.hr_size)
        ctx.record_skipped(label, real.skipped)
        batch = sample_batch(real, n_show, seed=seed)
        fig = viz.hr_lr_grid(batch["image"], lr_sizes, title=f"{name}: {folder}")
        ctx.save_figure(fig, f"data_real_{name}", title=f"{name}: HR and LR versions", dataset=label)
        labels.append(label)
    return labels
