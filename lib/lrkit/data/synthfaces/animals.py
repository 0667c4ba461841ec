"""synthfaces animal renderer (variant ``"animals"``: cat, dog, wild): ``_render_animal`` and its fine features.

Drawing primitives and the rules that keep fine features out of the 8x8 image are in
``lrkit.data.synthfaces.painter``; the factors are listed in ``lrkit.data.synthfaces.factors``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from lrkit.data.synthfaces.painter import (
    _F32,
    _Painter,
    _background,
    _band_limit,
    _eye_params,
    _finish,
    _lattice_image,
    _lighting,
    _matched,
    _mix,
    _noise,
    _pixel_centres,
    _proj,
    _ramp,
    _rot,
    _sd_circle,
    _sd_ellipse,
    _sd_graph,
    _sd_lens,
    _sd_segment,
    _sd_tri,
    _smin,
)

_ANIMAL_S = 0.46  # head radius in image units at scale 1
_ANIMAL_CY = 0.1

_FUR_RAMP = ((0.88, 0.81, 0.68), (0.86, 0.54, 0.24), (0.66, 0.50, 0.33), (0.55, 0.55, 0.56), (0.34, 0.23, 0.15),
             (0.13, 0.12, 0.12))
# Iris palette: about equal luminance, different hue, modest chroma. A swap changes a channel by at most 0.16
# over a visible iris of ~20 px at 128 px, i.e. under 5 levels of one LR pixel even when a whole iris sits in
# one 16x16 block.
_ANIMAL_IRIS = ((0.67, 0.52, 0.30), (0.52, 0.62, 0.33), (0.51, 0.56, 0.46))


class _Ear(NamedTuple):
    side: int  # -1 = image left, +1 = image right
    tip_x: float  # tip position, local units
    tip_y: float
    direction: float  # -1: the tip points up (pointed, round ears), +1: down (floppy ears)
    win: tuple  # window the ear's distance field was computed on
    sd: np.ndarray  # the ear's signed distance [h, w] on ``win``


def _head_sd(x, y, dom: int, shift: float):
    """Animal head: a round cranium joined to wide cheeks; the cheeks swing towards the turn (yaw)."""
    cran = _sd_circle(x + 0.05 * shift, y + 0.1, 1.0)
    cheeks = _sd_ellipse(x - 0.3 * shift, y - 0.3, 1.12 if dom != 1 else 1.0, 0.78)
    return _smin(cran, cheeks, 0.3)


def _render_animal(f: dict, size: int) -> np.ndarray:
    s = _ANIMAL_S * f["scale"]
    p = _Painter(size, f["cx"] * 2.0, _ANIMAL_CY + f["cy"] * 2.0, s, f["roll"])
    tseed = int(f["texture_seed"])
    rng_tex = np.random.default_rng([tseed, 1])
    rng_fur = np.random.default_rng([tseed, 3])
    yaw = f["yaw"]
    dom = int(f["domain"])
    fur = _ramp(_FUR_RAMP, f["fur_tone"])
    light = _mix(fur, (0.9, 0.88, 0.84), 0.25 + 0.7 * f["marking"])
    t = math.radians(yaw)
    shift = math.sin(t)
    es = (1.2, 1.25, 1.05)[dom]  # ear size per domain (ear family)
    x, y = p.x, p.y
    S = p.S
    fg = np.zeros((S, S), _F32)  # head surfaces (lighting)
    bd = np.zeros((S, S), _F32)  # body surfaces (lighting)
    _background(p, f, rng_tex)
    fur_tex = _noise(rng_tex, S, 48) * _band_limit(S / 48 * 2)

    # Body / chest below the head.
    d_body = _sd_ellipse(x - 0.2 * shift, y - 2.1, 1.35, 1.25)
    a = p.cov(d_body, 1.5)
    p.paint(p.full, a, fur * 0.9)
    p.paint(p.full, 0.6 * a * np.exp(-((x - 0.3 * shift) / 0.45) ** 2 - ((y - 1.2) / 0.7) ** 2), light * 0.95)
    bd = np.maximum(bd, a)

    if dom == 2:  # wild: a shaggy mane around the head
        ang = np.arctan2(y, x)
        jag = 0.07 * np.sin(ang * 15.0 + tseed % 11) + 0.05 * np.sin(ang * 7.0 + tseed % 13)
        d_mane = _sd_circle(x + 0.15 * shift, y - 0.05, 1.5 + jag)
        a = p.cov(d_mane, 1.5)
        p.paint(p.full, a, _mix(fur, (0.3, 0.2, 0.12), 0.35))
        p.img *= (1.0 + 0.15 * fur_tex * a)[..., None]
        fg = np.maximum(fg, a)

    # Ears (their tips carry the fine ear-tip detail).
    ears: list[_Ear] = []
    ear_col = fur * (0.6 if dom == 1 else 0.95)
    inner_col = _mix(fur, (0.85, 0.55, 0.55), 0.55)
    for side in (-1, 1):
        ox = side * 0.62 * math.cos(t) - 0.3 * shift
        if dom == 0:  # pointed
            tip = (ox + side * 0.18 * es, -1.5 * es + 0.02)
            win = p.window(ox, -0.95, 0.75 * es)
            if win is None:
                continue
            wx, wy = p.xy(win)
            d = _sd_tri(wx, wy, (ox - 0.38 * es, -0.55), (ox + 0.38 * es, -0.55), tip, 0.05)
            p.paint(win, p.cov(d), ear_col)
            di = _sd_tri(wx, wy, (ox - 0.22 * es, -0.62), (ox + 0.22 * es, -0.62),
                         (tip[0] - side * 0.03, tip[1] + 0.2 * es), 0.04)
            p.paint(win, p.cov(di, 2.0), inner_col)
            ears.append(_Ear(side, tip[0], tip[1], -1.0, win, d))
        elif dom == 1:  # floppy
            cx_, cy_ = side * 0.98 * math.cos(t) - 0.3 * shift, 0.05
            win = p.window(cx_, cy_, 0.8 * es + 0.2)
            if win is None:
                continue
            wx, wy = p.xy(win)
            ru, rv = _rot(wx - cx_, wy - cy_, -side * 12.0)
            d = _sd_ellipse(ru, rv, 0.32 * es, 0.68 * es)
            # Floppy ears hang over the sides of the head, so they are painted after it (below).
            ears.append(_Ear(side, cx_ + side * 0.68 * es * math.sin(math.radians(12)),
                             cy_ + 0.68 * es * math.cos(math.radians(12)), 1.0, win, d))
            continue
        else:  # round
            c = (ox + side * 0.1, -0.86)
            win = p.window(c[0], c[1], 0.4 * es)
            if win is None:
                continue
            wx, wy = p.xy(win)
            d = _sd_circle(wx - c[0], wy - c[1], 0.3 * es)
            p.paint(win, p.cov(d), ear_col)
            p.paint(win, p.cov(_sd_circle(wx - c[0], wy - c[1] + 0.02, 0.17 * es), 2.0), fur * 0.45)
            ears.append(_Ear(side, c[0] + side * 0.05, c[1] - 0.3 * es, -1.0, win, d))
        fg[win] = np.maximum(fg[win], p.cov(d))

    if dom == 1:  # a floppy ear on the far side of a turned head hangs behind it
        for ear in ears:
            if ear.side * shift > 0.2:
                a = p.cov(ear.sd)
                p.paint(ear.win, a, ear_col)
                fg[ear.win] = np.maximum(fg[ear.win], a)
    d_head = _head_sd(x, y, dom, shift)
    a_head = p.cov(d_head)
    p.paint(p.full, a_head, fur)
    fg = np.maximum(fg, a_head)
    p.img *= (1.0 + 0.09 * fur_tex * a_head)[..., None]

    # Muzzle (domain family) and lighter chin.
    mx, mfs = _proj(0.0, 1.15, yaw)
    soft_muzzle = np.zeros((S, S), _F32)  # where the muzzle hides the fur pattern (soft, for the fine detail)
    muzzle = {0: (0.42, 0.36, 0.28), 1: (0.52, 0.58, 0.5), 2: (0.5, 0.62, 0.42)}[dom]
    my = muzzle[0]
    win = p.window(mx, my, 0.8)
    if win is not None:
        wx, wy = p.xy(win)
        if dom == 0:
            d = np.minimum(_sd_ellipse(wx - mx - 0.15, wy - my, 0.2, 0.17), _sd_ellipse(wx - mx + 0.15, wy - my, 0.2,
                                                                                          0.17))
            d = np.minimum(d, _sd_ellipse(wx - mx, wy - my - 0.17, 0.15, 0.12))
        else:
            d = _sd_ellipse(wx - mx, wy - my, muzzle[1], muzzle[2])
        p.paint(win, p.cov(d, 2.0), light)
        soft_muzzle[win] = np.clip(1.0 - d / 0.12, 0.0, 1.0)
        # Mouth line under the nose (coarse, the same for every fine class).
        d_m = _sd_graph(wx - mx, wy - my - 0.07, -0.15, 0.15, lambda q: 0.25 * q * q, 0.014)
        p.paint(win, p.cov(d_m), fur * 0.35)
    # Fine fur detail: a zero-mean periodic pattern that fades in over ~1 period inside the head outline and
    # fades out towards the muzzle, so no edge cuts a stripe off sharply (a cut leaves a partial period, whose
    # mean does not vanish).
    fade = np.clip(-d_head / 0.12, 0.0, 1.0) * (1.0 - soft_muzzle)
    _animal_fur_detail(p, f, rng_fur, fade, shift, fur)
    # Eye patches (coarse darker area around the eyes).
    eyes = []
    for side in (-1, 1):
        ex, fs = _proj(side * 0.42, 0.85, yaw)
        eyes.append((side, ex, -0.12, fs))
        win = p.window(ex, -0.12, 0.4)
        if win is not None:
            wx, wy = p.xy(win)
            g = np.exp(-(((wx - ex) / (0.24 * fs)) ** 2) - ((wy + 0.12) / 0.18) ** 2)
            p.img[win] *= (1.0 - 0.15 * g * a_head[win])[..., None]

    if dom == 1:  # floppy ears hang over the sides of the head
        for ear in ears:
            if ear.side * shift > 0.2:
                continue  # drawn behind the head above
            win, a = ear.win, p.cov(ear.sd)
            p.paint(win, a, ear_col)
            fg[win] = np.maximum(fg[win], a)

    _animal_eyes(p, f, eyes, fur)
    _animal_nose(p, f, mx, my, mfs, dom)
    _animal_whiskers(p, f, mx, my, mfs, light)
    _animal_ear_tips(p, f, ears)

    shade = _lighting(p, f, fg, bd, 1.2, 1.2, 0.0, (2.1, 1.6, 1.5))
    return _finish(p, shade, rng_tex)


def _animal_fur_detail(p: _Painter, f: dict, rng: np.random.Generator, mask, shift, fur) -> None:
    """Stripes or spots as a zero-mean modulation of the head's fur (period ~4.4 px at 128 px).

    Every wave runs diagonally (30-60 degrees from the image axes, whatever the roll): the average of a diagonal
    wave over a square LR block is attenuated in both directions (a product of two small sinc factors), whereas
    an axis-aligned wave would only be attenuated once, by ~period / (pi * block). A slow random warp keeps the
    pattern from looking machine-made without moving its energy to low frequencies.
    """
    cls = int(f["fur_detail"])
    phase = rng.uniform(0, 2 * math.pi, size=6)
    warp_lattice = rng.standard_normal((2, 7, 7)).astype(_F32)
    if cls == 0:
        return
    period = 0.15  # local units
    amp = 0.16 * _band_limit(period * p.s / p.px)
    warp_u = 0.04 * _lattice_image(warp_lattice[0], p.S)
    warp_v = 0.04 * _lattice_image(warp_lattice[1], p.S)
    # Diagonal coordinates in the *image* frame (so head roll cannot align the waves with the LR grid).
    c = _pixel_centres(p.S)
    X, Y = c[None, :] - _F32(p.cx), c[:, None] - _F32(p.cy)
    u = (X + Y) * (0.7071 / p.s) + warp_u
    v = (X - Y) * (0.7071 / p.s) + warp_v
    k = 2 * math.pi / period
    if cls == 1:
        # Chevron stripes (tabby-like V marks): a diagonal wave in u on one side of the face, in v on the other.
        side = np.clip((p.x - 0.9 * shift) / 0.05, -1.0, 1.0)
        wave = 0.5 * (1 + side) * np.sin(k * u + phase[0]) + 0.5 * (1 - side) * np.sin(k * v + phase[1])
        pat = np.tanh(1.5 * wave) / math.tanh(1.5)  # odd in the wave: stays zero-mean, stripes get crisper
    else:
        # Irregular spots: four waves at 33, 57, 123 and 147 degrees, summed. No nonlinearity: products of waves
        # would contain difference frequencies, i.e. slow variation that survives the LR average.
        X, Y = (u + v) * 0.7071, (u - v) * 0.7071  # back to image-aligned axes (still scaled by 1/s)
        pat = 0.0
        for j, deg in enumerate((33.0, 57.0, 123.0, 147.0)):
            c_, s_ = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            pat = pat + np.cos(k * (X * c_ + Y * s_) + phase[2 + j])
        pat = 0.45 * pat
    # Added relative to the flat fur colour, not multiplied into the textured image: a product with the fur noise
    # would create beat frequencies near zero, i.e. colour that survives the LR average.
    # On very dark fur the pattern is scaled as if the fur were a dark grey, so it stays visible.
    p.img -= (amp * pat * mask)[..., None] * np.maximum(fur, 0.3)


def _animal_eyes(p: _Painter, f: dict, eyes, fur) -> None:
    iris_c = np.asarray(_ANIMAL_IRIS[int(f["iris_color"])], _F32)
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.3)
        if win is None:
            continue
        wx, wy = p.xy(win)

        def draw(cls: int, side=side, ex=ex, ey=ey, fs=fs, wx=wx, wy=wy) -> np.ndarray:
            a0, top, bottom, pt, pb = _eye_params("animals", cls)
            tilt = 0.05 if cls == 1 else 0.0
            a = a0 * fs
            u = wx - ex
            v = wy - ey + tilt * side * u / a
            d_open = _sd_lens(u, v, a, top, bottom, pt, pb)
            # Dark rim around the eye, then the iris fills the opening.
            p.paint(win, p.cov(d_open - 0.025), fur * 0.25)
            a_open = p.cov(d_open)
            p.paint(win, a_open, iris_c)
            # A wide pupil leaves a ring of iris (~20 px at 128 px): the colour reads clearly, its mass is small.
            d_pupil = _sd_ellipse(wx - ex, wy - ey, 0.065 * fs, 0.088)
            p.paint(win, p.cov(d_pupil) * a_open, (0.04, 0.03, 0.03))
            p.paint(win, p.cov(_sd_circle(wx - ex - 0.03, wy - ey + 0.035, 0.014)) * a_open, (1.0, 1.0, 1.0))
            return np.clip(1.0 - np.abs(d_open - 0.0125) / 0.05, 0.0, 1.0)

        _matched(p, win, draw, int(f["eye_shape"]), 0)


def _nose_sd(u, v, cls: int):
    if cls == 0:
        return _sd_tri(u, v, (-0.12, -0.05), (0.12, -0.05), (0.0, 0.09), 0.025)
    if cls == 1:
        d = np.minimum(_sd_circle(u + 0.055, v + 0.005, 0.065), _sd_circle(u - 0.055, v + 0.005, 0.065))
        return np.minimum(d, _sd_tri(u, v, (-0.1, 0.02), (0.1, 0.02), (0.0, 0.1), 0.0))
    return _sd_ellipse(u, v - 0.01, 0.125, 0.07)


@lru_cache(maxsize=None)
def _nose_scale(cls: int) -> float:
    """Linear scale that gives nose class ``cls`` the area of class 0 (areas measured on a fine grid)."""
    g = np.linspace(-0.25, 0.25, 501)
    u, v = np.meshgrid(g, g)
    area = [float((_nose_sd(u, v, c) < 0).mean()) for c in (0, cls)]
    return math.sqrt(area[0] / area[1])


def _animal_nose(p: _Painter, f: dict, mx, my, mfs, dom) -> None:
    cls = int(f["nose_shape"])
    k = (1.25 if dom == 1 else 1.0) * _nose_scale(cls)
    ny = my - 0.1
    win = p.window(mx, ny, 0.3 * k)
    if win is None:
        return
    wx, wy = p.xy(win)
    u, v = (wx - mx) / (k * mfs), (wy - ny) / k
    d = _nose_sd(u, v, cls) * k
    a = p.cov(d)
    p.paint(win, a, (0.3, 0.2, 0.2))
    p.paint(win, p.cov(_sd_ellipse(u + 0.03, v + 0.02, 0.03, 0.015) * k) * a, (0.62, 0.5, 0.5))


def _animal_whiskers(p: _Painter, f: dict, mx, my, mfs, light) -> None:
    """Whiskers that contrast with the fur under them, balanced by wide faint flanks of the opposite sign.

    On a light muzzle they are darker lines (multiplicative, so they never clip), on a dark one lighter lines
    (lifted by at most 1.2x the local brightness); the choice depends only on the (coarse) muzzle colour, never
    on the whisker class. Either way the flanks, ~3 px on each side, give back exactly the colour
    the lines took or added (``balance``), at an amplitude ~10x smaller than the lines'.
    """
    cls = int(f["whiskers"])
    n, length, bend = {0: (3, 0.75, 0.0), 1: (5, 0.45, 0.0), 2: (3, 0.75, 0.5)}[cls]
    length *= mfs ** 0.5
    half = 0.01
    for side in (-1, 1):
        rx, ry = mx + side * 0.2 * mfs, my + 0.03
        win = p.window(rx + side * 0.4, ry, 0.6)
        if win is None:
            continue
        wx, wy = p.xy(win)
        u = (wx - rx) * side
        before = p.window_sum(win)
        dmin = np.full(wx.shape, 10.0, _F32)
        # Roots ~1 px apart so the whiskers do not merge into a blob where they start.
        for slope, off in zip(np.linspace(-0.22, 0.18, n), np.linspace(-0.015 * (n - 1), 0.015 * (n - 1), n)):
            def curve(q, slope=slope, off=off):
                return off + slope * q - bend * q * q
            dmin = np.minimum(dmin, _sd_graph(u, wy - ry, 0.0, length, curve, 0.0))
        core = p.cov(dmin - half)
        under = p.img[win]
        if float(np.mean(light)) > 0.42:
            under *= (1.0 - 0.5 * core)[..., None]
        else:
            lift = np.minimum(np.asarray((0.9, 0.89, 0.85), _F32) - under, 1.2 * under)
            under += (core * 0.9)[..., None] * np.maximum(lift, 0.0)
        flank = np.clip(1.0 - (dmin - half) / 0.1, 0.0, 1.0) * (1.0 - core)
        p.balance(win, before, flank)


def _animal_ear_tips(p: _Painter, f: dict, ears: list[_Ear]) -> None:
    """Dark ear tips or dark tufts, each balanced by a paler band around it (a sandwich, ~2 px wide)."""
    cls = int(f["ear_tip"])
    if cls == 0:
        return
    for ear in ears:
        tx, ty, diry, win, d_ear = ear.tip_x, ear.tip_y, ear.direction, ear.win, ear.sd
        w2 = p.window(tx, ty + 0.05 * diry, 0.35)
        if w2 is None:
            continue
        wx, wy = p.xy(w2)
        ear_a = p.cov(_recompute_ear(w2, win, d_ear))
        before = p.window_sum(w2)
        if cls == 1:
            dist = np.sqrt((wx - tx) ** 2 + (wy - ty) ** 2)
            d = dist - 0.12
            a = ear_a * p.cov(d)
            p.img[w2] *= (1.0 - 0.55 * a)[..., None]
            weight = np.clip(1.0 - np.abs(d - 0.04) / 0.04, 0.0, 1.0) * (1.0 - a) * (0.1 + 0.9 * ear_a)
        else:
            d = np.full(wx.shape, 10.0, _F32)
            for k in (-1, 0, 1):
                ax = tx + 0.035 * k
                d = np.minimum(d, _sd_segment(wx, wy, ax, ty - 0.03 * diry, ax + 0.05 * k, ty + 0.17 * diry, 0.0))
            a = p.cov(d - 0.01)
            p.img[w2] *= (1.0 - 0.6 * a)[..., None]
            weight = np.clip(1.0 - np.abs(d - 0.04) / 0.03, 0.0, 1.0) * (1.0 - a)
        p.balance(w2, before, weight)


def _recompute_ear(w2, win, d_ear):
    """The ear's distance field on window ``w2`` (it was computed on the ear's own window ``win``)."""
    out = np.full((w2[0].stop - w2[0].start, w2[1].stop - w2[1].start), 10.0, _F32)
    i0 = max(w2[0].start, win[0].start)
    i1 = min(w2[0].stop, win[0].stop)
    j0 = max(w2[1].start, win[1].start)
    j1 = min(w2[1].stop, win[1].stop)
    if i0 < i1 and j0 < j1:
        out[i0 - w2[0].start:i1 - w2[0].start, j0 - w2[1].start:j1 - w2[1].start] = d_ear[
            i0 - win[0].start:i1 - win[0].start, j0 - win[1].start:j1 - win[1].start]
    return out
