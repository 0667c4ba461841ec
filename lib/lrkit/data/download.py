"""``lrkit data download {celeba_hq,afhq}``: fetch, verify and unpack the public CelebA-HQ and AFHQ archives.

Source: the StarGAN v2 authors distribute both datasets as zip archives on Dropbox; their ``download.sh``
(github.com/clovaai/stargan-v2) fetches ``celeba_hq.zip`` and ``afhq.zip`` from the share links below with
``?dl=0``. We use the same links with ``?dl=1``, which makes Dropbox send the file itself instead of a preview page.

Checksums: the StarGAN v2 authors publish none for these archives, so ``DatasetArchive.sha256`` is ``None`` and
we do not make one up. Policy: the first successful download (or first use of an archive you placed by hand)
records the archive's sha256 in ``<root>/<name>.sha256`` and prints it, marked as "recorded on first download, not
verified against a published checksum"; every later unpack from an archive in ``root`` verifies against it.

Layout produced: ``<root>/<name>/{train,val}/<domain>/*.jpg`` (the archives contain a top-level ``celeba_hq/`` or
``afhq/`` folder; one common top-level folder is stripped whatever its name). Unpacking goes to a temporary
sibling folder that is renamed into place only when complete, so a failure never leaves half a dataset. Entries
with absolute paths, ``..`` components or symbolic links are refused (zip-slip) before anything is written.

Offline (no route to the host, DNS failure, timeout, HTTP error): ``DatasetUnavailable`` whose message says what
to download, where to put it, its checksum status, and to rerun the same command. ``file://`` URLs go through the
same code path as ``https://`` (used by the tests).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lrkit.errors import UserError
from lrkit.fsutil import atomic_write_text, cache_dir, sha256_file

from .folders import SPLIT_NAMES

__all__ = [
    "DatasetArchive",
    "ARCHIVES",
    "DatasetUnavailable",
    "ChecksumMismatch",
    "UnsafeArchiveError",
    "UnknownDatasetError",
    "get_archive",
    "archive_candidates",
    "recorded_sha256_path",
    "read_recorded_sha256",
    "manual_instructions",
    "verify_and_unpack",
    "download",
    "main_download",
]

_CHUNK = 1 << 20  # 1 MiB: bounded memory for multi-GB archives


@dataclass(frozen=True)
class DatasetArchive:
    """A downloadable dataset archive. ``sha256`` is ``None`` when no checksum is published (see module doc);
    ``size_hint`` is a human description of the download, ``layout_note`` what the archive unpacks to."""

    name: str
    url: str
    filename: str
    sha256: str | None
    size_hint: str
    layout_note: str


ARCHIVES: dict[str, DatasetArchive] = {
    "celeba_hq": DatasetArchive(
        name="celeba_hq",
        url="https://www.dropbox.com/s/f7pvjij2xlpff59/celeba_hq.zip?dl=1",
        filename="celeba_hq.zip",
        sha256=None,  # not published by the StarGAN v2 authors
        size_hint="CelebA-HQ as split by StarGAN v2: 30,000 face images at 1024x1024 (JPEG), several GB",
        layout_note="celeba_hq/{train,val}/{female,male}/*.jpg",
    ),
    "afhq": DatasetArchive(
        name="afhq",
        url="https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1",
        filename="afhq.zip",
        sha256=None,  # not published by the StarGAN v2 authors
        size_hint="AFHQ (v1): about 15,000 animal-face images at 512x512 (JPEG), 500 val images per domain, "
        "several GB",
        layout_note="afhq/{train,val}/{cat,dog,wild}/*.jpg",
    ),
}


class DatasetUnavailable(UserError, RuntimeError):
    """The archive could not be fetched; the message says how to install it by hand."""


class ChecksumMismatch(UserError, RuntimeError):
    """An archive's sha256 differs from the expected one; the file was renamed aside, not deleted."""


class UnsafeArchiveError(ValueError):
    """A zip entry would be written outside the destination (absolute path, ``..``, symbolic link)."""


class UnknownDatasetError(ValueError):
    """A dataset name not in ``ARCHIVES``."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def get_archive(name: str) -> DatasetArchive:
    try:
        return ARCHIVES[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; downloadable datasets: {sorted(ARCHIVES)}"
        ) from None


def archive_candidates(spec: DatasetArchive, root: str | os.PathLike) -> list[Path]:
    """Where an already downloaded archive is looked for, in order: ``root/<filename>``, then
    ``$LRKIT_CACHE_DIR/archives/<filename>`` (``~/.cache/lrkit/archives`` by default)."""
    return [Path(root) / spec.filename, cache_dir("archives") / spec.filename]


def recorded_sha256_path(root: str | os.PathLike, name: str) -> Path:
    return Path(root) / f"{name}.sha256"


def read_recorded_sha256(root: str | os.PathLike, name: str) -> str | None:
    """The sha256 recorded by an earlier download into ``root`` (``sha256sum`` format), or ``None``."""
    path = recorded_sha256_path(root, name)
    if not path.is_file():
        return None
    token = (path.read_text(encoding="utf-8").split() or [""])[0].lower()
    if not re.fullmatch(r"[0-9a-f]{64}", token):
        raise ValueError(f"{path} does not start with a sha256 hex digest; delete it to record a new one")
    return token


def _checksum_text(spec: DatasetArchive, root: Path) -> str:
    if spec.sha256:
        return f"sha256 {spec.sha256} (published; the command verifies it)"
    recorded = read_recorded_sha256(root, spec.name)
    if recorded:
        return (
            f"sha256 {recorded} (recorded by an earlier download into {root}, not a published checksum; "
            "the command verifies the file against it)"
        )
    return (
        "no sha256 is published for this archive; lrkit records the sha256 of the file you provide in "
        f"{recorded_sha256_path(root, spec.name)} and verifies later unpacks against it (you can compare it "
        "with `sha256sum` on the machine you downloaded it with)"
    )


def manual_instructions(
    spec: DatasetArchive, root: str | os.PathLike, url: str | None = None, reason: str | None = None
) -> str:
    """The one message telling a user without internet access how to install ``spec`` by hand."""
    root = Path(root).expanduser().resolve()
    cache_path = archive_candidates(spec, root)[1]
    head = f"Could not download {spec.name} ({spec.filename})"
    head += f": {reason}." if reason else "."
    return "\n".join(
        [
            head,
            "To install it by hand:",
            f"  1. Download  {url or spec.url}",
            f"     ({spec.size_hint}) on a machine with internet access.",
            f"  2. Put it at {root / spec.filename}",
            f"     (or at {cache_path}, the archive cache shared by all roots, set by $LRKIT_CACHE_DIR).",
            f"  3. Checksum: {_checksum_text(spec, root)}.",
            "  4. Rerun the same command: it finds the archive there, verifies it and unpacks it into "
            f"{root / spec.name}/{{train,val}}/<domain>/ (the archive holds {spec.layout_note}).",
        ]
    )


# ----------------------------------------------------------------------------------------------------------------
# Verification and unpacking


def _rename_aside(path: Path, actual: str) -> Path:
    aside = path.with_name(f"{path.name}.sha256-mismatch-{actual[:12]}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.sha256-mismatch-{actual[:12]}.{n}")
        n += 1
    os.replace(path, aside)
    return aside


def _check_sha256(archive: Path, expected: str | None, actual: str | None = None, source: str = "") -> str:
    """Compare ``archive``'s sha256 (``actual``, computed if not given) with ``expected``; return ``actual``.
    On mismatch the file is renamed aside (kept for inspection) and ``ChecksumMismatch`` is raised."""
    actual = actual or sha256_file(archive)
    if expected is None:
        return actual
    expected = expected.strip().lower()
    if actual != expected:
        aside = _rename_aside(archive, actual)
        raise ChecksumMismatch(
            f"sha256 mismatch for {archive}{source}: expected {expected}, actual {actual}. The file was NOT deleted: "
            f"it was renamed to {aside} for inspection. It is most likely an incomplete or different download; "
            "delete it and rerun to download again. If the archive was legitimately replaced upstream and the "
            "expected value is a recorded (not published) checksum, delete the recorded .sha256 file to record "
            "the new one."
        )
    return actual


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix permission bits live in the high 16 bits of external_attr for archives made on Unix.
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _plan_members(zf: zipfile.ZipFile, archive: Path) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Map every zip entry to its relative target path parts (top-level folder stripped), or refuse the archive."""
    unsafe: list[str] = []
    planned: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")  # archives made on Windows may use backslashes
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts or _is_symlink(info):
            unsafe.append(info.filename)
            continue
        if not parts or parts[0] == "__MACOSX" or parts[-1] == ".DS_Store" or parts[-1].startswith("._"):
            continue  # macOS zip debris, not dataset content
        planned.append((info, parts))
    if unsafe:
        raise UnsafeArchiveError(
            f"refusing to unpack {archive}: {len(unsafe)} entr{'y' if len(unsafe) == 1 else 'ies'} would be written "
            f"outside the destination (absolute path, '..' or symbolic link), e.g. {unsafe[:3]}. Nothing was "
            "extracted. This is not a genuine dataset archive: delete it and download it again."
        )
    files = [(i, p) for i, p in planned if not i.is_dir()]
    if not files:
        raise ValueError(f"{archive} contains no files; delete it and download it again")
    # Strip one common top-level folder (celeba_hq/, afhq/, or a renamed one), but never a split folder itself.
    tops = {p[0] for _, p in planned}
    if len(tops) == 1 and all(len(p) > 1 for _, p in files) and next(iter(tops)) not in SPLIT_NAMES:
        planned = [(i, p[1:]) for i, p in planned if len(p) > 1]
    return planned


def _unpack(archive: Path, dest: Path, progress: bool | None = None) -> Path:
    if dest.exists():
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # an empty leftover folder is harmless to replace
        else:
            raise FileExistsError(
                f"{dest} already exists and is not empty; remove or move it away to unpack again, or use it as is"
            )
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{archive} is not a valid zip archive ({exc}); delete it and download it again") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf:
        planned = _plan_members(zf, archive)
        # Same parent as dest, so the final rename is atomic and never crosses file systems.
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpacking-", dir=dest.parent))
        try:
            from tqdm.auto import tqdm

            with tqdm(total=len(planned), desc=f"unpacking {archive.name}", unit="file", file=sys.stderr,
                      leave=False, disable=None if progress is None else not progress) as bar:
                for info, parts in planned:
                    target = tmp.joinpath(*parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        # zipfile checks each member's CRC-32 as it is read: corruption raises BadZipFile here.
                        with zf.open(info) as src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out, _CHUNK)
                    bar.update(1)
            os.replace(tmp, dest)
        except zipfile.BadZipFile as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ValueError(
                f"{archive} is corrupt ({exc}); nothing was unpacked. Delete it and download it again"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def verify_and_unpack(
    archive_path: str | os.PathLike, sha256: str | None, dest: str | os.PathLike, *, progress: bool | None = None
) -> Path:
    """Verify ``archive_path`` against ``sha256`` (skipped if ``None``) and unpack it into ``dest``; return ``dest``.

    Raises ``ChecksumMismatch`` (file renamed aside), ``UnsafeArchiveError`` (zip-slip; nothing written),
    ``ValueError`` (not a zip / corrupt member; nothing left behind) or ``FileExistsError`` (``dest`` not empty).
    One common top-level folder in the archive is stripped, so ``afhq.zip``'s ``afhq/train/cat/x.jpg`` becomes
    ``dest/train/cat/x.jpg``.
    """
    archive = Path(archive_path)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    _check_sha256(archive, sha256)
    return _unpack(archive, Path(dest), progress)


# ----------------------------------------------------------------------------------------------------------------
# Download


def _describe_url_error(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the server ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "the connection timed out"
    return f"{type(exc).__name__}: {exc}"


_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError)


def _fetch(url: str, target: Path, timeout: float, spec: DatasetArchive, root: Path,
           progress: bool | None) -> str:
    """Stream ``url`` to ``target`` (via ``target.part``, renamed when complete); return the file's sha256."""
    from lrkit import __version__

    part = target.with_name(target.name + ".part")

    def unavailable(reason: str) -> DatasetUnavailable:
        return DatasetUnavailable(manual_instructions(spec, root, url, reason))

    request = urllib.request.Request(url, headers={"User-Agent": f"lrkit/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except _NETWORK_ERRORS as exc:
        raise unavailable(_describe_url_error(exc)) from exc
    h = hashlib.sha256()  # hash while streaming, so a multi-GB archive is not read twice
    received = 0
    try:
        with response:
            ctype = (response.headers.get("Content-Type") or "").lower()
            if "text/html" in ctype:
                raise unavailable(
                    "the server sent a web page instead of the zip archive (the share link may need a browser, "
                    "or the download quota of the link is exhausted)"
                )
            target.parent.mkdir(parents=True, exist_ok=True)  # only once the server answered: no empty root offline
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            from tqdm.auto import tqdm

            with open(part, "wb") as out, tqdm(total=total, desc=f"downloading {spec.filename}", unit="B",
                                               unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
                                               disable=None if progress is None else not progress) as bar:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except _NETWORK_ERRORS as exc:
                        raise unavailable(f"the download broke off after {received} bytes "
                                          f"({_describe_url_error(exc)})") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if total is not None and received != total:
                raise unavailable(f"the download is incomplete: {received} of {total} bytes received")
        os.replace(part, target)
    except BaseException:
        # A partial download is not an archive anyone could inspect usefully; remove it so it is not mistaken
        # for one. (Complete archives that fail verification are kept, see _check_sha256.)
        try:
            part.unlink()
        except FileNotFoundError:
            pass
        raise
    return h.hexdigest()


def download(
    name: str,
    root: str | os.PathLike,
    *,
    url: str | None = None,
    timeout: float = 30,
    keep_archive: bool = True,
    progress: bool | None = None,
) -> Path:
    """Make ``<root>/<name>/{train,val}/<domain>/`` from the public archive; return that folder.

    Order: if the folder already exists (non-empty) it is returned as is; else an archive already in
    ``archive_candidates`` is used; else it is downloaded from ``url`` (default: the registry URL; ``file://``
    works) into ``root``. The archive is verified (published sha256, else the one recorded in
    ``<root>/<name>.sha256``; with neither, its sha256 is recorded after a successful unpack and printed) and
    unpacked atomically. ``keep_archive=False`` deletes the archive after a successful unpack.

    Raises ``DatasetUnavailable`` when the download fails (message: URL, target path, checksum, rerun).
    """
    spec = get_archive(name)
    root = Path(root).expanduser().resolve()
    dest = root / spec.name
    if dest.is_dir() and any(dest.iterdir()):
        _say(f"{dest} already exists; not downloading again (check it with 'lrkit data check {dest}')")
        return dest
    expected = spec.sha256 or read_recorded_sha256(root, spec.name)
    archive = next((p for p in archive_candidates(spec, root) if p.is_file()), None)
    actual: str | None = None
    how = "first use"
    if archive is None:
        archive = root / spec.filename
        _say(f"downloading {url or spec.url} -> {archive}")
        actual = _fetch(url or spec.url, archive, timeout, spec, root, progress)
        how = "first download"
    else:
        _say(f"using the archive already at {archive}")
    actual = _check_sha256(archive, expected, actual, source=f" (from {url or spec.url})")
    _unpack(archive, dest, progress)
    if expected is None:
        # Recorded only after a successful unpack, so a broken download never becomes the reference.
        record = recorded_sha256_path(root, spec.name)
        atomic_write_text(record, f"{actual}  {spec.filename}\n")
        _say(
            f"sha256 of {archive.name}: {actual}\n"
            f"  recorded on {how}, not verified against a published checksum (none is published); "
            f"saved to {record}, later unpacks are verified against it"
        )
    if not keep_archive:
        archive.unlink()
    return dest


def main_download(name: str, root: str | os.PathLike) -> int:
    """CLI body of ``lrkit data download NAME``: 0 on success, 2 if unavailable or unknown, 1 on a bad archive."""
    try:
        dest = download(name, root)
    except UnknownDatasetError as exc:
        print(f"lrkit data download: error: {exc}", file=sys.stderr)
        return 2
    except DatasetUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ChecksumMismatch, UnsafeArchiveError, ValueError, OSError) as exc:
        print(f"lrkit data download: error: {exc}", file=sys.stderr)
        return 1
    print(f"{name} is ready in {dest} (check it with 'lrkit data check {dest}')")
    return 0
