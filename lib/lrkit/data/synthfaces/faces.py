"""synthfaces face renderer (variant ``"faces"``): ``_render_face`` and its fine identity features.

Drawing primitives and the rules that keep fine features out of the 8x8 image are in
``lrkit.data.synthfaces.painter``; the factors are listed in ``lrkit.data.synthfaces.factors``.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.data.synthfaces.painter import (
    _F32,
    _Painter,
    _background,
    _band_limit,
    _eye_params,
    _finish,
    _hsv,
    _lens_area,
    _lighting,
    _matched,
    _mix,
    _noise,
    _proj,
    _ramp,
    _sd_circle,
    _sd_ellipse,
    _sd_graph,
    _sd_lens,
    _sd_round_box,
    _sd_segment,
    _smin,
)

_FACE_S = 0.5  # face half-width in image units at scale 1 (32 px at 128 px)
_FACE_CY = 0.06  # the face centre sits slightly below the image centre, hair above it

_SKIN_RAMP = ((0.92, 0.78, 0.68), (0.90, 0.70, 0.56), (0.76, 0.55, 0.40), (0.56, 0.38, 0.26), (0.38, 0.25, 0.17))
_HAIR_RAMP = ((0.07, 0.06, 0.06), (0.24, 0.15, 0.09), (0.50, 0.25, 0.12), (0.80, 0.64, 0.38), (0.90, 0.87, 0.78))
# Iris palette: about equal luminance, different hue, modest chroma. A swap changes a channel by at most 0.22
# over a visible iris of ~15 px at 128 px, i.e. under 5 levels of one LR pixel even when a whole iris sits in
# one 16x16 block.
_FACE_IRIS = ((0.44, 0.29, 0.20), (0.27, 0.35, 0.42), (0.28, 0.40, 0.20))


def _face_sd(x, y, f: dict, shift: float):
    """Face outline: a cranium ellipse smoothly joined to a narrower jaw; both swing towards the turn (yaw)."""
    fw = f["face_width"]
    chin_shift = 0.45 * shift
    cran = _sd_ellipse(x - 0.1 * shift, y + 0.15, 1.0 * fw, 1.1)
    jaw = _sd_ellipse(x - chin_shift, y - 0.32, 0.80 * fw, 1.0)
    return _smin(cran, jaw, 0.25)


def _render_face(f: dict, size: int) -> np.ndarray:
    s = _FACE_S * f["scale"]
    p = _Painter(size, f["cx"] * 2.0, _FACE_CY + f["cy"] * 2.0, s, f["roll"])
    tseed = int(f["texture_seed"])
    rng_tex = np.random.default_rng([tseed, 1])
    rng_marks = np.random.default_rng([tseed, 2])
    yaw = f["yaw"]
    long_hair = int(f["domain"]) == 0
    skin = _ramp(_SKIN_RAMP, f["skin_tone"])
    hair = _ramp(_HAIR_RAMP, f["hair_color"])
    cloth = _hsv(f["cloth_hue"], 0.55, 0.55)
    fw = f["face_width"]
    t = math.radians(yaw)
    shift = math.sin(t)  # features on the front of the head move by ~z * sin(yaw)
    chin_shift = 0.45 * shift
    x, y = p.x, p.y
    S = p.S
    fg = np.zeros((S, S), _F32)  # coverage of head surfaces (face, ears, hair cap), for the lighting
    bd = np.zeros((S, S), _F32)  # coverage of body surfaces (neck, shoulders, long hair behind them)

    _background(p, f, rng_tex)

    # Hair strand texture: zero-mean vertical streaks (fine), band-limited so small sizes do not alias.
    strands = _noise(rng_tex, S, 48) * _band_limit(S / 48 * 2)

    # Long hair behind the head and shoulders: [S, S] distance fields in local units.
    back_x = -0.25 * shift
    if long_hair:
        top = _sd_ellipse(x - back_x, y + 0.15, 1.38 * fw, 1.5)
        wave = 0.06 * np.sin(x * 9.0 + 0.7 * (tseed % 7))
        fall = _sd_round_box(x - back_x, y - 1.1 - wave, 1.38 * fw, 1.3, 0.45)
        d_back = _smin(top, fall, 0.3)
        a = p.cov(d_back, 1.5)
        p.paint(p.full, a, hair * 0.8)
        p.img *= (1.0 + 0.10 * strands * a)[..., None]
        bd = np.maximum(bd, a)

    # Shoulders (clothing) and neck.
    d_sh = _sd_ellipse(x - 0.3 * chin_shift, y - 2.2, 2.4, 1.0)
    a = p.cov(d_sh, 1.5)
    p.paint(p.full, a, cloth)
    bd = np.maximum(bd, a)
    if long_hair:  # hair falls in front of the shoulders, on both sides of the neck
        for side in (-1, 1):
            lock = _sd_round_box(x - back_x - side * 1.05 * fw, y - 1.35 - 0.4 * wave, 0.33, 0.95, 0.28)
            a = p.cov(lock, 1.5)
            p.paint(p.full, a, hair * 0.85)
            p.img *= (1.0 + 0.10 * strands * a)[..., None]
    d_neck = _sd_round_box(x - 0.6 * chin_shift, y - 1.0, 0.44 * fw, 0.45, 0.15)
    a = p.cov(d_neck)
    p.paint(p.full, a, skin * 0.82)
    bd = np.maximum(bd, a)

    # Ears (behind the face outline; the far ear slides behind the head as it turns).
    ear_pts = []
    for side in (-1, 1):
        ex = side * 0.97 * fw * math.cos(t) - 0.3 * shift
        ey = 0.0
        win = p.window(ex, ey, 0.35)
        if win is None:
            ear_pts.append((ex, ey, 0.0))
            continue
        wx, wy = p.xy(win)
        d = _sd_ellipse(wx - ex, wy - ey, 0.15, 0.27)
        p.paint(win, p.cov(d), skin * 0.93)
        inner = _sd_ellipse(wx - ex - side * 0.02, wy - ey + 0.02, 0.07, 0.16)
        p.paint(win, p.cov(inner, 2.0) * 0.5, skin * 0.72)
        fg[win] = np.maximum(fg[win], p.cov(d))
        ear_pts.append((ex, ey, 1.0))

    # Face.
    d_face = _face_sd(x, y, f, shift)
    a_face = p.cov(d_face)
    p.paint(p.full, a_face, skin)
    fg = np.maximum(fg, a_face)
    # Skin micro-texture (fine, zero-mean), under the fine features.
    p.img *= (1.0 + 0.025 * _noise(rng_tex, S, 64) * _band_limit(S / 64 * 2) * a_face)[..., None]

    # Coarse facial structure shared by all fine classes: eye sockets, nose shadow, lips area, chin shadow.
    eyes = []
    for side in (-1, 1):
        ex, fs = _proj(side * 0.40, 0.86, yaw)
        eyes.append((side, ex, -0.08, fs))
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.45)
        if win is None:
            continue
        wx, wy = p.xy(win)
        sock = np.exp(-(((wx - ex) / (0.27 * fs)) ** 2 + ((wy - ey + 0.03) / 0.17) ** 2))
        p.img[win] *= (1.0 - 0.24 * sock * a_face[win])[..., None]
    nx, _ = _proj(0.0, 1.05, yaw)
    win = p.window(nx, 0.2, 0.4)
    if win is not None:
        wx, wy = p.xy(win)
        ridge = np.exp(-(((wx - nx - 0.07) / 0.06) ** 2) - ((wy - 0.12) / 0.22) ** 2)
        tipsh = np.exp(-(((wx - nx) / 0.16) ** 2) - ((wy - 0.36) / 0.06) ** 2)
        p.img[win] *= (1.0 - (0.10 * ridge + 0.16 * tipsh) * a_face[win])[..., None]
        for side in (-1, 1):
            d = _sd_ellipse(wx - nx - side * 0.075, wy - 0.33, 0.04, 0.025)
            p.paint(win, p.cov(d, 1.5) * 0.6, skin * 0.45)
    mx, mfs = _proj(0.0, 0.92, yaw)
    my = 0.62
    win = p.window(mx, my, 0.5)
    if win is not None:
        wx, wy = p.xy(win)
        lipzone = np.exp(-(((wx - mx) / (0.3 * mfs)) ** 2) - ((wy - my) / 0.12) ** 2)
        p.img[win] *= (1.0 - 0.06 * lipzone * a_face[win])[..., None]
    win = p.window(chin_shift, 1.25, 0.9)
    if win is not None:
        wx, wy = p.xy(win)
        under = np.clip((wy - 1.05) / 0.3, 0, 1) * np.exp(-(((wx - chin_shift) / 0.55) ** 2))
        p.img[win] *= (1.0 - 0.22 * under * (1.0 - a_face[win]) * (wy < 1.7))[..., None]

    # ---- fine identity features ----
    _face_marks(p, f, rng_marks, a_face, skin, shift)
    _face_eyes(p, f, eyes, skin)
    _face_brows(p, f, eyes, skin, hair)
    _face_mouth(p, f, mx, my, mfs, skin)
    _face_glasses(p, f, eyes, skin)

    # Front hair: a cap over the cranium with a hairline across the forehead (sideburns for short hair).
    cap = _sd_ellipse(x - back_x * 0.6, y + 0.22, 1.1 * fw, 1.18)
    hl_x = x - 0.9 * shift
    hairline = y - (-0.62 + 0.22 * (hl_x / fw) ** 2 + 0.05 * np.sin(hl_x * 5.0 + tseed % 5))
    # Hair covers the temples where |x| exceeds a boundary that moves outwards further down the face (a curtain
    # for long hair, short sideburns for short hair).
    yy = np.clip(y + 0.35, 0.0, None)
    x_side = 0.66 * fw + (1.0 if long_hair else 4.0) * yy * yy
    sides = x_side - np.abs(hl_x)
    d_hair = np.maximum(cap, np.minimum(hairline, sides))
    a = p.cov(d_hair, 1.3)
    p.paint(p.full, a, hair)
    p.img *= (1.0 + 0.12 * strands * a)[..., None]
    fg = np.maximum(fg, a)

    _face_earrings(p, f, ear_pts, shift)

    shade = _lighting(p, f, fg, bd, 1.25 * fw, 1.45, -0.1, (2.2, 2.6, 1.3))
    return _finish(p, shade, rng_tex)


def _face_eyes(p: _Painter, f: dict, eyes, skin) -> None:
    iris_c = np.asarray(_FACE_IRIS[int(f["iris_color"])], _F32)
    for side, ex, ey, fs in eyes:
        win = p.window(ex, ey, 0.3)
        if win is None:
            continue
        wx, wy = p.xy(win)

        def draw(cls: int, side=side, ex=ex, ey=ey, fs=fs, wx=wx, wy=wy) -> np.ndarray:
            a0, top, bottom, pt, pb = _eye_params("faces", cls)
            tilt = 0.035 if cls == 1 else 0.0  # almond eyes sweep up at the outer corner
            a = a0 * fs
            u = wx - ex
            v = wy - ey + tilt * side * u / a
            d_open = _sd_lens(u, v, a, top, bottom, pt, pb)
            a_open = p.cov(d_open)
            p.paint(win, a_open, _mix(skin, (0.95, 0.93, 0.9), 0.75))
            # Iris, pupil and a catchlight, clipped to the opening.
            ix = ex + 0.01 * side * fs
            d_iris = _sd_ellipse(wx - ix, wy - ey, 0.075 * fs, 0.075)
            p.paint(win, p.cov(d_iris) * a_open, iris_c)
            p.paint(win, p.cov(_sd_circle(wx - ix, wy - ey, 0.03)) * a_open, (0.05, 0.04, 0.04))
            p.paint(win, p.cov(_sd_circle(wx - ix - 0.025, wy - ey + 0.03, 0.013)) * a_open, (1.0, 1.0, 1.0))
            # Upper lid line (lashes).
            d_lid = _sd_graph(u, v, -a, a, lambda q: -top * np.clip(1 - (q / a) ** 2, 0, None) ** pt, 0.02)
            p.paint(win, p.cov(d_lid), skin * 0.3)
            return np.clip(1.0 - np.abs(d_open) / 0.05, 0.0, 1.0)

        _matched(p, win, draw, int(f["eye_shape"]), 0)


def _face_brows(p: _Painter, f: dict, eyes, skin, hair) -> None:
    cls = int(f["eyebrow"])
    # Brows are always clearly darker than the skin, even with platinum hair.
    color = np.minimum(_mix(skin, hair, 0.6), skin) * 0.6
    for side, ex, ey, fs in eyes:
        L = 0.22 * fs
        by = ey - 0.27
        win = p.window(ex, by, 0.35)
        if win is None:
            continue
        wx, wy = p.xy(win)
        # u runs from the inner end (-1) to the outer end (+1) of the brow.
        if cls == 0:
            def curve(q, L=L):
                return 0.025 * (q / L)
        elif cls == 1:
            def curve(q, L=L):
                return -0.065 * (1 - (q / L) ** 2) + 0.035
        else:
            def curve(q, L=L):
                u = q / L
                return -0.06 * (1 - np.sqrt((u - 0.35) ** 2 + 0.02) / 1.36) + 0.03

        def thick(q, L=L):
            return 0.032 - 0.012 * (q / L)

        u = (wx - ex) * side
        d = _sd_graph(u, wy - by, -L, L, curve, thick)
        p.paint(win, p.cov(d) * 0.9, color)


def _face_mouth(p: _Painter, f: dict, mx, my, mfs, skin) -> None:
    cls = int(f["mouth"])
    # (half-width, upper lip, lower lip, corner lift); lip heights are rescaled so every class has the same area.
    a, top, bottom, curve_k = {0: (0.27, 0.06, 0.08, 0.0), 1: (0.30, 0.05, 0.065, 0.1),
                               2: (0.19, 0.085, 0.11, -0.035)}[cls]
    k = _lens_area(0.27, 0.06, 0.08, 0.6, 0.6) / _lens_area(a, top, bottom, 0.6, 0.6)
    top, bottom = top * k, bottom * k
    a *= mfs
    lip = _mix(skin, (0.72, 0.26, 0.3), 0.55)
    win = p.window(mx, my, 0.45)
    if win is None:
        return
    wx, wy = p.xy(win)
    u = wx - mx
    # A smile lifts the corners: the whole lip shape follows y = -k (u/a)^2.
    v = wy - my + curve_k * (np.clip(u / a, -1, 1) ** 2)
    d = _sd_lens(u, v, a, top, bottom, 0.6, 0.6)
    p.paint(win, p.cov(d), lip)
    d_line = _sd_graph(u, v, -a * 0.95, a * 0.95, lambda q: 0.0 * q, 0.016)
    p.paint(win, p.cov(d_line), lip * 0.45)


def _face_marks(p: _Painter, f: dict, rng: np.random.Generator, a_face, skin, shift) -> None:
    """Freckles (balanced by a faint lightening of the freckled band) or one mole (balanced by a halo)."""
    cls = int(f["skin_marks"])
    # Draw the positions for every class from the same stream, so the texture seed alone fixes them.
    pts = rng.uniform(-1, 1, size=(40, 2))
    radii = rng.uniform(0.018, 0.032, size=40)
    mole_pos = [(-0.45, 0.35), (0.45, 0.35), (0.25, 0.5), (-0.2, 0.85)][int(rng.integers(4))]
    if cls == 0:
        return
    cxf = 0.95 * shift
    if cls == 1:
        win = p.window(cxf, 0.2, 0.8)
        if win is None:
            return
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        keep = (pts[:, 0] ** 2 + (pts[:, 1] * 2.2) ** 2) < 1.0
        col = skin * np.asarray((0.62, 0.52, 0.48), _F32)
        acc = np.zeros(wx.shape, _F32)
        for (px_, py_), r in zip(pts[keep], radii[keep]):
            fx, fy = cxf + 0.62 * px_, 0.2 + 0.28 * py_
            acc = np.maximum(acc, p.cov(_sd_circle(wx - fx, wy - fy, r)))
        acc *= a_face[win]
        p.paint(win, acc * 0.8, col)
        # Balance: lighten the freckled band by exactly the colour the freckles removed.
        band = np.exp(-(((wx - cxf) / 0.55) ** 2) - ((wy - 0.2) / 0.25) ** 2) * a_face[win]
        p.balance(win, before, band)
    else:
        mx_, my_ = cxf * (1.0 + 0.1 * mole_pos[0]) + mole_pos[0], mole_pos[1]
        win = p.window(mx_, my_, 0.15)
        if win is None:
            return
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        d = _sd_circle(wx - mx_, wy - my_, 0.05)
        p.paint(win, p.cov(d) * a_face[win], skin * np.asarray((0.32, 0.24, 0.22), _F32))
        halo = np.exp(-np.clip(d, 0, None) ** 2 / 0.004) * (d > 0) * a_face[win]
        p.balance(win, before, halo)


def _face_glasses(p: _Painter, f: dict, eyes, skin) -> None:
    """Thin dark frames (round or square, equal frame length). Each rim is balanced by faint highlights right
    beside it, the bridge by a small highlight on the nose ridge under it, so the glasses add ~no colour to any
    region larger than a few pixels around the frame."""
    cls = int(f["glasses"])
    if cls == 0:
        return
    half_w = 0.012  # frame half-thickness in local units: the frame is ~0.8 px wide at 128 px
    hx, hy, rr = 0.25, 0.19, 0.07
    perim_sq = 4 * (hx + hy) - (8 - 2 * math.pi) * rr
    # Round lenses are ellipses (R, 0.8 R) whose perimeter (Ramanujan) matches the square frame's: equal ink.
    R = perim_sq / (math.pi * (3 * 1.8 - math.sqrt((3 + 0.8) * (1 + 3 * 0.8))))
    half_x = R if cls == 1 else hx
    ly_off = 0.01
    inner = []
    for side, ex, ey, fs in eyes:
        lx, ly = ex, ey + ly_off
        win = p.window(lx + side * 0.04, ly, half_x * fs + 0.12)
        if win is None:
            continue
        wx, wy = p.xy(win)
        u = (wx - lx) / fs
        v = wy - ly
        d_lens = _sd_ellipse(u, v, R, R * 0.8) if cls == 1 else _sd_round_box(u, v, hx, hy, rr)
        before = p.window_sum(win)
        d_rim = np.abs(d_lens) - half_w
        outer_x = lx + side * half_x * fs
        d_temple = _sd_segment(wx, wy, outer_x, ly - 0.04, outer_x + side * 0.09, ly - 0.05, half_w)
        a_frame = p.cov(np.minimum(d_rim, d_temple))
        p.img[win] *= (1.0 - 0.5 * a_frame)[..., None]  # the frame halves the brightness of what is under it
        # Balance with faint highlights in ~1.5 px bands on both sides of the rim (glass edge inside, skin sheen
        # outside): the dark ink is sandwiched between its compensation, so an LR block boundary running along
        # an edge splits off at most half of that edge's ink.
        band = np.clip(1.0 - (np.abs(d_lens) - half_w) / 0.05, 0.0, 1.0) * (1.0 - a_frame)
        p.balance(win, before, band)
        inner.append((lx - side * half_x * fs, ly - 0.05))
    if len(inner) == 2:
        (x0, y0), (x1, y1) = inner
        mid_x, mid_y = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        win = p.window(mid_x, mid_y, 0.5 * abs(x1 - x0) + 0.1)
        if win is not None:
            wx, wy = p.xy(win)
            before = p.window_sum(win)
            d = np.minimum(_sd_segment(wx, wy, x0, y0, mid_x, mid_y - 0.025, half_w),
                           _sd_segment(wx, wy, mid_x, mid_y - 0.025, x1, y1, half_w))
            a = p.cov(d)
            p.img[win] *= (1.0 - 0.5 * a)[..., None]
            glint = np.exp(-(((wx - mid_x) / 0.07) ** 2) - ((wy - mid_y - 0.06) / 0.06) ** 2) * (1.0 - a)
            p.balance(win, before, glint)


def _face_earrings(p: _Painter, f: dict, ear_pts, shift) -> None:
    cls = int(f["earring"])
    if cls == 0:
        return
    gold = np.asarray((0.93, 0.78, 0.35), _F32)
    for ex, ey, vis in ear_pts:
        if vis <= 0:
            continue
        lx, ly = ex, ey + 0.25
        # A lobe that has turned behind the face shows no earring.
        vis = float(np.clip(_face_sd(lx, ly, f, shift) / 0.06, 0.0, 1.0))
        if vis <= 0:
            continue
        win = p.window(lx, ly + 0.08, 0.2)
        if win is None:
            continue
        wx, wy = p.xy(win)
        before = p.window_sum(win)
        if cls == 1:
            d = _sd_circle(wx - lx, wy - ly, 0.042)
        else:
            d = np.abs(_sd_circle(wx - lx, wy - ly - 0.085, 0.075)) - 0.014
        # Gold with a thin dark outline: it stands out on light skin (outline) and on deep skin (gold).
        outline = 0.014
        p.img[win] *= (1.0 - 0.65 * p.cov(d - outline) * vis)[..., None]
        p.paint(win, p.cov(d) * vis, gold)
        p.paint(win, p.cov(_sd_circle(wx - lx + 0.012, wy - ly + 0.012, 0.012)) * (vis * (cls == 1)), (1, 1, 0.95))
        beyond = np.clip(d - outline, 0.0, None)
        halo = np.exp(-beyond**2 / 0.003) * (d > outline)
        p.balance(win, before, halo)
