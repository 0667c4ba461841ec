"""synthfaces drawing primitives: signed distances, colours, noise textures, the painter, lighting.

Everything the two renderers (``lrkit.data.synthfaces.faces`` and ``.animals``) share: signed distance fields
in local head units, colour ramps, value-noise textures defined in continuous image coordinates, ``_Painter``
(the float canvas, its head frame, anti-aliased compositing and mass balancing), yaw projection, lighting,
the final quantisation, the backdrop, and the equal-area eye shapes with their mass matching (``_matched``).

How the fine factors are kept out of the 8x8 image
--------------------------------------------------
An 8x8 average pool at 128 px averages 16x16 blocks, so a feature changes an LR pixel by (its area in that block)
x (its colour difference) / 256. The fine features are built so that swapping one class for another moves almost
no colour *mass* into or out of any block:

* classes of one factor have the same area and colour (eye openings, lips, brows, noses, whisker length, glasses
  frame length are normalised), so a swap only moves colour by a few pixels; eye shapes additionally get the
  colour sum of the reference shape restored in a thin band straddling the eye outline (``_matched``);
* features that add or remove colour are *balanced* (``_Painter.balance``): the colour a feature adds to its
  window is given back in a band right beside it -- on both sides of a glasses frame, in ~3 px flanks along each
  whisker, in a ring around an ear tip, tuft, mole or earring, over the freckled cheeks -- so its net mass over
  any region larger than ~2 px around it is zero. Balancing is clip-aware, and albedos keep headroom below white;
* iris colours differ only in hue, at equal luminance and modest chroma, over a small area;
* fur stripes/spots are zero-mean sums of waves with a ~4.4 px period that run diagonally to the pixel grid (a
  block average suppresses a diagonal wave in both directions), fade in over one period at the edges, and are
  added to the flat fur colour; no fine-grained texture is multiplied over the finished image (it would beat with
  the patterns into low frequencies).

``tests/test_synthfaces.py`` checks the result at 128 and 256 px: swapping any one fine factor to any other class
changes the 8x8 average pool of the uint8 image by at most 0.5 levels on average over its 8x8x3 values and at most
6 levels at any single value (measured worst cases over 48 images: <= 0.17 and ~5), while at 128 px it changes
>= 10 HR pixels by >= 12 levels. All geometry is defined in continuous coordinates with anti-aliased edges (signed
distance fields evaluated on the pixel grid), so the same factors at 128 and 256 px give the same picture (the
256 px image, 2x2-averaged, is within ~0.7 levels of the 128 px one on average).

Coordinates and units
---------------------
Image coordinates ``(X, Y)`` run over ``[-1, 1]`` (X to the right, Y down; pixel centres at ``(2 i + 1)/S - 1``).
A head is drawn in its own *local* frame ``(x, y)`` whose unit is the half-width of the face (about 0.5 image
units, i.e. 32 px at 128 px): ``(X, Y) = (cx', cy') + s * R(roll) (x, y)``. ``cx``/``cy`` factors are offsets in
fractions of the image side, ``yaw``/``roll``/``light_angle`` are in degrees, colours are in ``[0, 1]``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

_F32 = np.float32


# ----------------------------------------------------------------------------------------------------------------
# Small geometry: signed distances in local units (negative inside). All accept numpy arrays or scalars.
# ----------------------------------------------------------------------------------------------------------------


def _sd_circle(x, y, r):
    return np.sqrt(x * x + y * y) - r


def _sd_ellipse(x, y, a, b):
    """First-order distance to an axis-aligned ellipse: (q - 1) / |grad q| with q the ellipse radius.

    Exact on the axes and within a few per cent elsewhere for aspect ratios below ~3, which is all the
    anti-aliasing needs (the edge ramp is one pixel wide).
    """
    qx, qy = x / a, y / b
    q = np.sqrt(qx * qx + qy * qy)
    g = np.sqrt((qx / a) ** 2 + (qy / b) ** 2)
    lo, hi = (a, b) if a < b else (b, a)
    return (q - 1.0) * np.clip(q / np.maximum(g, 1e-9), lo, hi)


def _sd_segment(x, y, ax, ay, bx, by, r):
    px, py, vx, vy = x - ax, y - ay, bx - ax, by - ay
    h = np.clip((px * vx + py * vy) / (vx * vx + vy * vy), 0.0, 1.0)
    dx, dy = px - vx * h, py - vy * h
    return np.sqrt(dx * dx + dy * dy) - r


def _sd_round_box(x, y, hx, hy, r):
    qx = np.abs(x) - (hx - r)
    qy = np.abs(y) - (hy - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - r


def _rot(x, y, deg):
    """Coordinates of points (x, y) in a frame rotated by ``deg`` (clockwise on screen, y down)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return c * x + s * y, -s * x + c * y


def _smin(a, b, k):
    """Smooth union of two distance fields (polynomial smooth minimum with blend width ``k``)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _sd_graph(x, y, x0, x1, f, half_thick):
    """Distance to a stroke following the graph ``y = f(x)`` for ``x`` in ``[x0, x1]``, with round caps.

    ``f`` is vectorised; ``half_thick`` is a number or a function of the clamped ``x`` (for tapered strokes).
    The perpendicular distance uses the local slope, so curved strokes keep their thickness.
    """
    xc = np.clip(x, x0, x1)
    yc = f(xc)
    eps = 1e-3
    slope = (f(xc + eps) - f(xc - eps)) / (2 * eps)
    dy = (y - yc) / np.sqrt(1.0 + slope * slope)
    dx = x - xc
    t = half_thick(xc) if callable(half_thick) else half_thick
    return np.sqrt(dx * dx + dy * dy) - t


def _sd_lens(x, y, a, top, bottom, p_top, p_bottom):
    """Region between an upper lid ``y = -top (1 - (x/a)^2)^p_top`` and a lower one ``y = bottom (...)^p_bottom``.

    Used for eye openings and lips. Returns a distance-like field (negative inside).
    """
    u = np.clip(1.0 - (x / a) ** 2, 0.0, None)
    yu = -top * u**p_top
    yl = bottom * u**p_bottom
    d = np.maximum(yu - y, y - yl)
    # Past the corners the band collapses to a point; the horizontal distance closes it there. Vertical distances
    # overestimate the true distance where the lids are steep, hence the 0.9 (keeps the edge ramp ~1 px wide).
    return np.maximum(d, np.abs(x) - a) * 0.9


def _lens_area(a, top, bottom, p_top, p_bottom):
    """Area of ``_sd_lens``: integral of (1 - t^2)^p over [-1, 1] is sqrt(pi) Gamma(p+1) / Gamma(p+1.5)."""

    def integral(p):
        return math.sqrt(math.pi) * math.gamma(p + 1.0) / math.gamma(p + 1.5)

    return a * (top * integral(p_top) + bottom * integral(p_bottom))


def _sd_tri(x, y, a, b, c, r):
    """Rounded triangle (vertices a, b, c, any orientation): max of the edge half-plane distances, minus ``r``."""
    pts = (a, b, c)
    # Orientation sign so that inside is negative for either winding.
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    sgn = 1.0 if cross > 0 else -1.0
    d = None
    for i in range(3):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % 3]
        ex, ey = x1 - x0, y1 - y0
        n = math.hypot(ex, ey)
        # Signed distance to the edge's line, positive on the outer side.
        di = sgn * ((x - x0) * ey - (y - y0) * ex) / n
        d = di if d is None else np.maximum(d, di)
    return d - r


# ----------------------------------------------------------------------------------------------------------------
# Colour helpers
# ----------------------------------------------------------------------------------------------------------------


def _ramp(stops: Sequence[Sequence[float]], t: float) -> np.ndarray:
    """Piecewise-linear colour ramp through equally spaced ``stops`` at ``t`` in [0, 1] -> float32 [3]."""
    stops = np.asarray(stops, _F32)
    t = min(max(float(t), 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    w = t - i
    return (stops[i] * (1 - w) + stops[i + 1] * w).astype(_F32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    h = (h % 1.0) * 6.0
    i = int(h) % 6
    f = h - int(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, _F32)


def _mix(a, b, t):
    return (np.asarray(a, _F32) * (1 - t) + np.asarray(b, _F32) * t).astype(_F32)


# ----------------------------------------------------------------------------------------------------------------
# Value-noise textures, defined in continuous image coordinates so every size shows the same texture.
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _interp_taps(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse weights that sample a (cells + 1)-point lattice over [-1, 1] at the ``size`` pixel footprints.

    Returns ``idx`` int64 [size, T] and ``w`` float32 [size, T] (T taps per pixel, zero-padded). Each pixel
    averages the linear interpolant over 4 sub-pixel positions, so a lattice finer than the pixel grid is
    box-filtered instead of aliased (the same texture then looks right at 32 px and at 256 px).
    """
    sub = (np.arange(size)[:, None] + (np.arange(4)[None, :] + 0.5) / 4.0) / size  # [size, 4] in (0, 1)
    t = sub * cells
    i0 = np.clip(np.floor(t).astype(np.int64), 0, cells - 1)
    frac = t - i0
    dense = np.zeros((size, cells + 1), np.float64)
    rows = np.repeat(np.arange(size), 4)
    np.add.at(dense, (rows, i0.ravel()), (1 - frac).ravel() / 4)
    np.add.at(dense, (rows, i0.ravel() + 1), frac.ravel() / 4)
    taps = int((dense > 0).sum(axis=1).max())
    idx = np.zeros((size, taps), np.int64)
    w = np.zeros((size, taps), _F32)
    for r in range(size):
        nz = np.flatnonzero(dense[r] > 0)
        idx[r, : nz.size] = nz
        w[r, : nz.size] = dense[r, nz]
    return idx, w


def _lattice_image(lattice: np.ndarray, size: int) -> np.ndarray:
    """Resample a square lattice [L, L] (spanning the image) to [size, size], separably, without BLAS.

    (Tiny matrix products would go through a multithreaded BLAS, whose thread start-up costs more than the
    arithmetic and which competes with data-loader workers.)
    """
    idx, w = _interp_taps(size, lattice.shape[0] - 1)
    cols = (lattice[:, idx] * w[None]).sum(axis=-1)  # [L, size]: interpolate along x
    return (cols[idx] * w[..., None]).sum(axis=1)  # [size, size]: then along y


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth zero-mean unit-ish noise [size, size] from a random (cells+1)^2 lattice (bilinear, box-filtered)."""
    lattice = rng.standard_normal((cells + 1, cells + 1)).astype(_F32)
    return _lattice_image(lattice, size)


def _band_limit(period_px: float) -> float:
    """Amplitude factor for a periodic pattern of ``period_px`` pixels: fades it out below ~3 px per period."""
    return float(np.clip((period_px - 2.0) / 2.0, 0.0, 1.0))


# ----------------------------------------------------------------------------------------------------------------
# The painter: an image, its local head frame and compositing helpers
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _pixel_centres(size: int) -> np.ndarray:
    return ((np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0).astype(_F32)


class _Painter:
    """Float32 RGB canvas [S, S, 3] in [0, 1] plus the head's local coordinates.

    ``x``, ``y`` ([S, S]) are local head coordinates of every pixel centre; ``aa`` is one pixel in local units
    (the width of every anti-aliasing ramp). Small features are drawn in windows (pairs of slices) around them.
    """

    def __init__(self, size: int, cx: float, cy: float, s: float, roll: float):
        self.S = size
        self.px = 2.0 / size
        self.s, self.cx, self.cy = s, cx, cy
        self.cr, self.sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        c = _pixel_centres(size)
        dx = c[None, :] - _F32(cx)  # [1, S]
        dy = c[:, None] - _F32(cy)  # [S, 1]
        self.x = ((self.cr * dx + self.sr * dy) / s).astype(_F32)  # [S, S]
        self.y = ((-self.sr * dx + self.cr * dy) / s).astype(_F32)
        self.aa = self.px / s
        self.img = np.zeros((size, size, 3), _F32)
        self.full = (slice(0, size), slice(0, size))

    def to_image(self, lx: float, ly: float) -> tuple[float, float]:
        return self.cx + self.s * (self.cr * lx - self.sr * ly), self.cy + self.s * (self.sr * lx + self.cr * ly)

    def window(self, lx: float, ly: float, r: float):
        """Slices of the pixels within local radius ``r`` of local point (lx, ly) (a square box), or None."""
        X, Y = self.to_image(lx, ly)
        R = self.s * r
        j0 = max(0, int(math.floor((X - R + 1.0) / self.px)))
        j1 = min(self.S, int(math.ceil((X + R + 1.0) / self.px)))
        i0 = max(0, int(math.floor((Y - R + 1.0) / self.px)))
        i1 = min(self.S, int(math.ceil((Y + R + 1.0) / self.px)))
        if j0 >= j1 or i0 >= i1:
            return None
        return (slice(i0, i1), slice(j0, j1))

    def xy(self, win):
        return self.x[win], self.y[win]

    def cov(self, d, soft: float = 1.0):
        """Anti-aliased coverage of the shape with signed distance ``d``: a linear ramp ``soft`` pixels wide."""
        return np.clip(0.5 - d / (self.aa * soft), 0.0, 1.0)

    def paint(self, win, alpha, color) -> None:
        """Composite ``color`` ([3]) over the window with coverage ``alpha`` [h, w]."""
        h, w = alpha.shape
        if h * w > 1024:
            # Large layers (hair, face, clothes) cover a fraction of the frame: blend only their bounding box.
            rows = np.flatnonzero(alpha.any(axis=1))
            if rows.size == 0:
                return
            cols = np.flatnonzero(alpha.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            alpha = alpha[r0:r1, c0:c1]
            win = (slice(win[0].start + r0, win[0].start + r1), slice(win[1].start + c0, win[1].start + c1))
        tgt = self.img[win]
        tgt += alpha[..., None] * (np.asarray(color, _F32) - tgt)

    def balance(self, win, target_sum: np.ndarray, weight: np.ndarray, hi: float = 0.94) -> None:
        """Restore the window's per-channel colour sum to ``target_sum`` by adding a multiple of ``weight`` [h, w].

        With ``target_sum`` taken before a feature was drawn, this makes the feature mass-neutral: it no longer
        changes the average colour of any region that contains its window. Values are kept in ``[0, hi]`` (``hi``
        leaves headroom for the lighting and texture applied later); what clipping removes is handed on to the
        pixels of ``weight`` that are not saturated, for a few rounds.
        """
        tgt = self.img[win]  # [h, w, 3] view
        w3 = np.broadcast_to(weight[..., None], tgt.shape).astype(_F32)
        for _ in range(4):
            missing = target_sum - tgt.sum(axis=(0, 1))  # [3]
            if np.all(np.abs(missing) < 1e-3):
                break
            # Pixels that can still move in the needed direction, per channel.
            room = np.where(missing > 0, tgt < hi - 1e-4, tgt > 1e-4)
            w = w3 * room
            total = w.sum(axis=(0, 1))
            step = np.where(total > 1e-6, missing / np.maximum(total, 1e-6), 0.0).astype(_F32)
            upper = np.maximum(hi, tgt)  # never clip what was already brighter than ``hi``
            np.clip(tgt + w * step, 0.0, upper, out=tgt)

    def window_sum(self, win) -> np.ndarray:
        return self.img[win].sum(axis=(0, 1))


def _proj(x0: float, z0: float, yaw: float) -> tuple[float, float]:
    """Screen x of a head-surface point at (x0, depth z0) after turning the head by ``yaw`` degrees.

    Returns (x, foreshortening): the point's x after the turn and how much a small horizontal feature there is
    compressed (ratio of the surface's x-extent after/before the turn).
    """
    t = math.radians(yaw)
    x = x0 * math.cos(t) + z0 * math.sin(t)
    ang0 = math.atan2(x0, max(z0, 1e-3))
    fs = max(0.35, math.cos(ang0 + t)) / max(0.35, math.cos(ang0))
    return x, min(fs, 1.15)


def _lighting(p: _Painter, f: dict, head: np.ndarray, body: np.ndarray, head_a: float, head_b: float,
              head_y: float, body_ell: tuple[float, float, float]) -> np.ndarray:
    """Multiplicative shading [S, S]: wrap-around Lambert on the figure, a soft gradient on the background.

    Normals come from two ellipsoids: the head (half-axes ``head_a``, ``head_b``, centre y ``head_y``) where the
    head coverage ``head`` [S, S] is 1, the body (``body_ell`` = centre y, half-axes a, b) where only ``body`` is.
    """
    ang = math.radians(f["light_angle"])
    k = float(f["light_strength"])
    elev = math.radians(55.0)
    # Light direction in local coordinates (the light is fixed in the image, the head is rolled).
    lx_img, ly_img = math.cos(ang), math.sin(ang)
    lx = p.cr * lx_img + p.sr * ly_img
    ly = -p.sr * lx_img + p.cr * ly_img
    sx, sy, sz = math.cos(elev) * lx, math.cos(elev) * ly, math.sin(elev)

    def normals(qx, qy):
        r2 = qx * qx + qy * qy
        qz = np.sqrt(np.clip(1.0 - r2, 0.0, None))
        return qx, qy, qz

    hx, hy, hz = normals(p.x / head_a, (p.y - head_y) / head_b)
    # Turning the head (yaw) turns its surface normals about the vertical axis, so the shading moves with it.
    t = math.radians(f["yaw"])
    hx, hz = hx * math.cos(t) + hz * math.sin(t), -hx * math.sin(t) + hz * math.cos(t)
    bx, by, bz = normals(p.x / body_ell[1], (p.y - body_ell[0]) / body_ell[2])
    nx = head * hx + (1.0 - head) * bx
    ny = head * hy + (1.0 - head) * by
    nz = head * hz + (1.0 - head) * bz
    norm = np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-6
    # Wrap-around ("half Lambert") diffuse term in [0, 1]: soft, never black on the side away from the light.
    wrap = 0.5 + 0.5 * (nx * sx + ny * sy + nz * sz) / norm
    # Lit side ~1.03, far side darker (down to 1 - 0.8 k): little headroom is needed above the albedo, so light
    # features are not clipped (clipping would break the colour balance of the fine features).
    fig_shade = 1.0 + k * (wrap - 0.95) * 0.85
    bg_shade = 1.0 + 0.25 * k * (p.x * lx + p.y * ly) / 2.5
    fig = np.maximum(head, body)
    return (fig * fig_shade + (1.0 - fig) * bg_shade).astype(_F32)


def _finish(p: _Painter, shade: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shade, add a mild low-frequency brightness variation and quantize to uint8 [S, S, 3].

    Only slow variation is multiplied in here: a fine-grained texture multiplied over the fine features would mix
    with their patterns into low-frequency colour (beats) that survives the LR average. Fine grain is part of the
    skin, hair and fur layers instead, underneath the fine features.
    """
    S = p.S
    tex = 0.03 * _noise(rng, S, 16)
    img = p.img * (shade * (1.0 + tex))[..., None]
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _background(p: _Painter, f: dict, rng: np.random.Generator) -> None:
    base = _hsv(f["bg_hue"], 0.35, f["bg_value"])
    c = _pixel_centres(p.S)
    # Vertical gradient plus a slow random blotch texture: a studio backdrop, not a flat fill.
    grad = (1.0 + 0.12 * c[:, None] * np.ones((1, p.S), _F32)) * (1.0 + 0.06 * _noise(rng, p.S, 4))
    p.img[:] = base[None, None, :] * grad[..., None]


# ----------------------------------------------------------------------------------------------------------------
# Shared by both renderers: equal-area eye shapes, mass-matched feature classes
# ----------------------------------------------------------------------------------------------------------------

# Eye openings per class (half-width a, upper height, lower height, upper/lower lid exponents; local units, see
# ``_sd_lens``); ``_eye_params`` rescales the heights so every class of a variant has the area of class 0.
_EYE_SHAPES = {
    "faces": {0: (0.165, 0.095, 0.085, 0.5, 0.5), 1: (0.2, 0.085, 0.05, 0.95, 1.0), 2: (0.205, 0.05, 0.05, 0.55, 0.75)},
    "animals": {0: (0.13, 0.11, 0.11, 0.5, 0.5), 1: (0.165, 0.09, 0.08, 0.85, 0.9), 2: (0.175, 0.07, 0.07, 0.6, 0.6)},
}


def _eye_params(variant: str, cls: int) -> tuple[float, float, float, float, float]:
    a, top, bottom, pt, pb = _EYE_SHAPES[variant][cls]
    k = _lens_area(*_EYE_SHAPES[variant][0]) / _lens_area(a, top, bottom, pt, pb)
    return a, top * k, bottom * k, pt, pb


def _matched(p: _Painter, win, draw: Callable[[int], np.ndarray], cls: int, ref: int) -> None:
    """Draw class ``cls`` of a feature so that its window holds the colour mass class ``ref`` would give.

    ``draw(c)`` paints class ``c`` into ``win`` and returns the correction weight [h, w] (a band straddling the
    feature's outline). Classes are designed to have nearly equal mass already; this removes the rest, in a band
    so narrow that the correction stays within ~2 px of where the classes differ.
    """
    if cls == ref:
        draw(cls)
        return
    snapshot = p.img[win].copy()
    draw(ref)
    ref_sum = p.window_sum(win)
    p.img[win] = snapshot
    weight = draw(cls)
    p.balance(win, ref_sum, weight)
