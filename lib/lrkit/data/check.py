"""``lrkit data check PATH``: what a dataset folder contains, which files are broken, and a content fingerprint.

Content fingerprint (``fingerprint_folder``), exactly:

1. Take every image file that the folder's layout assigns a place (``folders.scan_folder(root).entries``: the
   files an ``ImageFolderDataset`` would consider, readable or not; misplaced and hidden files are excluded).
2. For each, form the line ``"<sha256 of the file's bytes, 64 lowercase hex> <split>/<domain>\\n"``, where
   ``split`` is ``train``/``val``/``test`` and ``domain`` the domain folder name, each ``-`` where the layout has
   no such level (``domains`` layout: ``-/<domain>``; ``flat`` layout: ``-/-``).
3. Sort the lines (as Python strings) and hash ``"lrkit-folder-fingerprint-v1\\n"`` followed by all the lines,
   UTF-8 encoded, with sha256. The fingerprint is that hex digest.

Consequences: file names, extensions, timestamps and the root's location do not matter (renaming a file keeps
the fingerprint); changing any byte of an image, adding or removing one, or moving one to another domain or split
changes it. Duplicated files count with multiplicity. Files are hashed in 1 MiB chunks (``fsutil.sha256_file``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable

from lrkit.fsutil import sha256_file

from .folders import (
    _DECODE_ERRORS,
    FolderScan,
    ImageEntry,
    describe_error,
    open_rgb,
    probe_image,
    scan_folder,
)

FINGERPRINT_VERSION = "lrkit-folder-fingerprint-v1"
NO_LEVEL = "-"  # placeholder for a missing split or domain level in labels and counts

__all__ = ["FINGERPRINT_VERSION", "DataReport", "check_dataset", "fingerprint_folder", "fingerprint_from_hashes",
           "main_check"]


def _label(entry: ImageEntry) -> str:
    return f"{entry.split or NO_LEVEL}/{entry.domain or NO_LEVEL}"


def fingerprint_from_hashes(items: Iterable[tuple[str, str]]) -> str:
    """Fingerprint from ``(file sha256 hex, "<split>/<domain>")`` pairs, as defined in the module docstring."""
    lines = sorted(f"{sha} {label}\n" for sha, label in items)
    h = hashlib.sha256()
    h.update((FINGERPRINT_VERSION + "\n").encode("utf-8"))
    for line in lines:
        # surrogateescape: folder names that are not valid UTF-8 still hash deterministically (as their bytes).
        h.update(line.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else min(8, os.cpu_count() or 1))


def _bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    # disable=None lets tqdm show the bar only when stderr is a terminal (no noise in logs or CI).
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                disable=None if progress is None else not progress)


def fingerprint_folder(root: str | os.PathLike, *, progress: bool | None = None, workers: int | None = None) -> str:
    """Content fingerprint of the dataset folder ``root`` (hashes files only; decodes nothing)."""
    scan = scan_folder(root)
    with _bar(len(scan.entries), "hashing", progress) as bar, ThreadPoolExecutor(_workers(workers)) as pool:
        hashes = []
        for sha in pool.map(lambda e: sha256_file(e.path), scan.entries):
            hashes.append(sha)
            bar.update(1)
    return fingerprint_from_hashes(zip(hashes, (_label(e) for e in scan.entries), strict=True))


@dataclass(frozen=True)
class DataReport:
    """What ``check_dataset`` found. Paths in ``unreadable`` and ``misplaced`` are relative to ``root``.

    ``counts[split][domain]`` is the number of *readable* images (``"-"`` for a level the layout lacks);
    ``sizes`` maps ``(width, height)`` in pixels to a count, ``modes`` PIL modes and ``formats`` file formats to
    counts (readable images only). ``fingerprint`` covers all ``num_files`` files (see the module docstring).
    ``full_decode`` says whether every image was fully decoded (so truncated files are caught) or only opened.
    """

    root: str
    layout: str
    num_files: int
    num_readable: int
    total_bytes: int
    counts: dict[str, dict[str, int]]
    sizes: dict[tuple[int, int], int]
    modes: dict[str, int]
    formats: dict[str, int]
    unreadable: tuple[tuple[str, str], ...]
    misplaced: tuple[str, ...]
    fingerprint: str
    full_decode: bool = True
    fingerprint_version: str = field(default=FINGERPRINT_VERSION)

    def to_dict(self) -> dict:
        """JSON-ready dict: sizes as ``{"WxH": count}``, unreadable as ``[{"path", "reason"}]``."""
        d = asdict(self)
        d["sizes"] = {f"{w}x{h}": n for (w, h), n in sorted(self.sizes.items(), key=lambda kv: (-kv[1], kv[0]))}
        d["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        d["misplaced"] = list(self.misplaced)
        return d

    def format(self, max_rows: int = 20) -> str:
        """A human-readable multi-line summary (lists are cut after ``max_rows`` entries)."""
        lines = [f"dataset: {self.root}", f"layout: {self.layout} ({_LAYOUT_HELP.get(self.layout, '')})"]
        lines.append(
            f"images: {self.num_readable} readable of {self.num_files} image files ({_human_bytes(self.total_bytes)}),"
            f" {len(self.unreadable)} unreadable, {len(self.misplaced)} misplaced"
            + ("" if self.full_decode else "  [headers only: truncated files not detected]")
        )
        rows = [(s, d, n) for s, doms in sorted(self.counts.items()) for d, n in sorted(doms.items())]
        if rows:
            w1 = max(5, *(len(s) for s, _, _ in rows))
            w2 = max(6, *(len(d) for _, d, _ in rows))
            lines.append(f"  {'split':<{w1}}  {'domain':<{w2}}  images")
            lines += [f"  {s:<{w1}}  {d:<{w2}}  {n}" for s, d, n in rows]
        if self.sizes:
            ranked = sorted(self.sizes.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{w}x{h}: {n}" for (w, h), n in ranked[:max_rows])
            extra = f", ... ({len(ranked) - max_rows} more sizes)" if len(ranked) > max_rows else ""
            lines.append(f"sizes (w x h): {shown}{extra}")
        if self.modes:
            lines.append("modes: " + ", ".join(f"{m}: {n}" for m, n in sorted(self.modes.items())))
        if self.formats:
            lines.append("formats: " + ", ".join(f"{f}: {n}" for f, n in sorted(self.formats.items())))
        lines.append(f"fingerprint: {self.fingerprint}")
        lines.append(
            f"  ({self.fingerprint_version}: sha256 over the sorted '<file sha256> <split>/<domain>' lines of the "
            f"{self.num_files} image files; unchanged by renames, changed by any content or domain change)"
        )
        for title, items in (("unreadable", [f"{p}: {r}" for p, r in self.unreadable]),
                             ("misplaced (not used by the layout)", list(self.misplaced))):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {x}" for x in items[:max_rows]]
                if len(items) > max_rows:
                    lines.append(f"  ... {len(items) - max_rows} more (use --json for the full list)")
        return "\n".join(lines)


_LAYOUT_HELP = {
    "stargan": "ROOT/{train,val}/{domain}/image",
    "domains": "ROOT/{domain}/image",
    "flat": "ROOT/image",
}


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # unreachable


def _inspect(entry: ImageEntry, full_decode: bool) -> tuple[str, int, tuple | str]:
    """(sha256, bytes, (w, h, mode, format) or a failure reason) for one file."""
    nbytes = os.path.getsize(entry.path)
    sha = sha256_file(entry.path)
    try:
        w, h, mode, fmt = probe_image(entry.path)  # the file's stored size and mode
        if full_decode:
            open_rgb(entry.path)  # full decode: the only reliable way to detect a truncated body
        return sha, nbytes, (w, h, mode, fmt)
    except _DECODE_ERRORS as exc:
        return sha, nbytes, describe_error(exc)


def check_dataset(
    root: str | os.PathLike,
    *,
    full_decode: bool = True,
    progress: bool | None = None,
    workers: int | None = None,
) -> DataReport:
    """Inspect a dataset folder: layout, readable counts per split/domain, sizes, modes, broken files, fingerprint.

    With ``full_decode=True`` (default) every image is decoded completely, which is what it takes to find
    truncated files; measured about 3 ms per 1024 px JPEG on 2 cores, so ~2 minutes for CelebA-HQ's 30k images
    (``workers`` threads, default ``min(8, cpu_count)``; PIL decodes without holding the GIL). Hashing adds about
    0.25 ms per file. ``full_decode=False`` only reads headers.
    """
    scan: FolderScan = scan_folder(root)
    counts: dict[str, dict[str, int]] = {}
    sizes: dict[tuple[int, int], int] = {}
    modes: dict[str, int] = {}
    formats: dict[str, int] = {}
    unreadable: list[tuple[str, str]] = []
    hashes: list[tuple[str, str]] = []
    total_bytes = 0
    for e in scan.entries:  # every domain folder appears in counts, even if all its files are broken
        counts.setdefault(e.split or NO_LEVEL, {}).setdefault(e.domain or NO_LEVEL, 0)
    with _bar(len(scan.entries), "checking", progress) as bar, ThreadPoolExecutor(_workers(workers)) as pool:
        results = pool.map(lambda e: _inspect(e, full_decode), scan.entries)
        for entry, (sha, nbytes, info) in zip(scan.entries, results, strict=True):
            bar.update(1)
            total_bytes += nbytes
            hashes.append((sha, _label(entry)))
            if isinstance(info, str):
                unreadable.append((entry.rel, info))
                continue
            w, h, mode, fmt = info
            counts[entry.split or NO_LEVEL][entry.domain or NO_LEVEL] += 1
            sizes[(w, h)] = sizes.get((w, h), 0) + 1
            modes[mode] = modes.get(mode, 0) + 1
            formats[fmt] = formats.get(fmt, 0) + 1
    return DataReport(
        root=str(scan.root),
        layout=scan.layout,
        num_files=len(scan.entries),
        num_readable=len(scan.entries) - len(unreadable),
        total_bytes=total_bytes,
        counts=counts,
        sizes=sizes,
        modes=modes,
        formats=formats,
        unreadable=tuple(unreadable),
        misplaced=scan.misplaced,
        fingerprint=fingerprint_from_hashes(hashes),
        full_decode=full_decode,
    )


def main_check(path: str, as_json: bool = False) -> int:
    """CLI body of ``lrkit data check PATH [--json]``: print the report; exit code 0 if at least one image is
    readable, 1 if none is, 2 if the path is not a usable folder."""
    try:
        report = check_dataset(path)
    except (OSError, ValueError) as exc:  # missing folder, a file that cannot be read, ambiguous layout
        print(f"lrkit data check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else report.format())
    if report.num_readable == 0:
        print(
            f"lrkit data check: error: no readable image in {report.root} ({report.num_files} image files found). "
            "Put images there in one of the layouts ROOT/{train,val}/{domain}/, ROOT/{domain}/ or ROOT/.",
            file=sys.stderr,
        )
        return 1
    if report.unreadable:
        print(
            f"lrkit data check: warning: {len(report.unreadable)} unreadable image file(s); datasets skip and "
            "report them, replace or delete them to silence this",
            file=sys.stderr,
        )
    return 0
