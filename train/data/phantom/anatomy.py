"""Hearts of the phantom: shape primitives and one arrangement of them per NED-12 view.

Anatomy space: the probe (sector apex) sits at ``(0, 0)``, ``x`` runs to the right of the image,
``y`` runs down into the body, and ``y = 1`` is the deepest point at zoom 1. A view is a tuple of
primitives drawn in three layers: walls (bright myocardium), cavities (dark blood), details
(valve leaflets, papillary muscles, pericardium). Every primitive is drawn for all frames at
once: positions are ``(H, W)`` grids, cycle drives are ``(T, 1, 1)``, the canvas is ``(T, H, W)``.

Some views share one anatomy and differ only in the direction time runs (``VIEWS[name].reversed``);
they are listed in ``MOTION_ONLY_PAIRS``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echoweave.train.data.phantom.cycle import CycleState

WALL, CAVITY, DETAIL = 0, 1, 2


@dataclass(frozen=True)
class Levels:
    """Echogenicity of each tissue before speckle (0 = anechoic, 1 = brightest)."""

    tissue: float = 0.22
    wall: float = 0.62
    blood: float = 0.03
    leaflet: float = 0.85
    pericardium: float = 0.95

    @classmethod
    def for_difficulty(cls, difficulty: float) -> "Levels":
        """Harder phantoms have murkier blood and duller walls and leaflets (less contrast)."""
        d = float(np.clip(difficulty, 0.0, 1.0))
        return cls(tissue=0.22 + 0.05 * d, wall=0.62 - 0.17 * d, blood=0.03 + 0.12 * d,
                   leaflet=0.85 - 0.3 * d, pericardium=0.95 - 0.25 * d)


def _soft_inside(q: np.ndarray, radius: np.ndarray | float, px: float) -> np.ndarray:
    """Anti-aliased inside-ness from the normalised ellipse radius ``q`` (1 on the outline).

    ``(q - 1) * radius`` approximates the signed distance to the outline; a one-pixel ramp makes
    sub-pixel motion visible instead of jumping a whole pixel at a time.
    """
    return np.clip(0.5 - (q - 1.0) * (radius / px), 0.0, 1.0)


def _box(near: np.ndarray):
    """Row and column slices bounding the True pixels of ``near`` (``None`` when there are none).

    Shapes are drawn only inside their box: most primitives cover a small part of the image, and
    the ``(T, h, w)`` work is what costs.
    """
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _rotated(X, Y, cx, cy, angle_deg):
    """Static ``(H, W)`` offsets from ``(cx, cy)`` in the ellipse's own axes."""
    a = np.deg2rad(angle_deg)
    c, s = float(np.cos(a)), float(np.sin(a))  # Python floats keep the arrays float32
    dx, dy = X - cx, Y - cy
    return dx * c + dy * s, -dx * s + dy * c, (c, s)


@dataclass(frozen=True)
class Chamber:
    """A blood pool with a muscular wall; ``squeeze`` > 0 shrinks it with its drive, < 0 swells it."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    wall: float = 0.035
    squeeze: float = 0.2
    drive: str = "contraction"
    shift: tuple[float, float] = (0.0, 0.0)  # where the centre moves at full drive (base descends to apex)

    def _geometry(self, X, Y, cyc, px, cache):
        key = id(self)
        if key not in cache:
            u0, v0, (c, s) = _rotated(X, Y, self.cx, self.cy, self.angle)
            du, dv = self.shift[0] * c + self.shift[1] * s, -self.shift[0] * s + self.shift[1] * c
            grow = 1.0 + abs(self.squeeze)
            reach_x = self.rx * grow + 1.6 * self.wall + abs(du) + 2 * px
            reach_y = self.ry * grow + 1.6 * self.wall + abs(dv) + 2 * px
            box = _box((u0 / reach_x) ** 2 + (v0 / reach_y) ** 2 <= 1.0)
            if box is None:
                cache[key] = None
                return None
            k = cyc[self.drive]  # (T, 1, 1)
            u, v = u0[box] - du * k, v0[box] - dv * k  # (T, h, w)
            scale = 1.0 - self.squeeze * k
            # Walls thicken as the cavity shrinks (roughly constant muscle volume).
            wall = self.wall * (1.0 + 0.6 * max(self.squeeze, 0.0) * k)
            cache[key] = (box, u, v, self.rx * scale, self.ry * scale, wall)
        return cache[key]

    def draw(self, layer, E, X, Y, cyc, px, lv: Levels, cache: dict):
        if layer == DETAIL:
            return
        geo = self._geometry(X, Y, cyc, px, cache)
        if geo is None:
            return
        box, u, v, rx, ry, wall = geo
        sub = E[(slice(None), *box)]  # a view: writes land in E
        if layer == WALL:
            q = np.sqrt((u / (rx + wall)) ** 2 + (v / (ry + wall)) ** 2)
            np.maximum(sub, lv.wall * _soft_inside(q, np.minimum(rx, ry) + wall, px), out=sub)
        else:
            q = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
            inside = _soft_inside(q, np.minimum(rx, ry), px)
            sub *= 1.0 - inside
            sub += lv.blood * inside


@dataclass(frozen=True)
class Leaflet:
    """A valve leaflet: a bright bar hinged at ``(hx, hy)`` swinging from ``closed`` to ``open`` degrees."""

    hx: float
    hy: float
    length: float
    closed: float
    open: float
    drive: str = "av"
    width: float = 0.014
    shift: tuple[float, float] = (0.0, 0.0)  # hinge displacement at full drive (the annulus moves)

    def draw(self, layer, E, X, Y, cyc, px, lv: Levels, cache: dict):
        if layer != DETAIL:
            return
        rx, ry = X - self.hx, Y - self.hy
        reach = self.length + self.width + abs(self.shift[0]) + abs(self.shift[1]) + 2 * px
        box = _box(rx**2 + ry**2 <= reach**2)
        if box is None:
            return
        k = cyc[self.drive]  # (T, 1, 1)
        rx, ry = rx[box] - self.shift[0] * k, ry[box] - self.shift[1] * k  # (T, h, w)
        ang = np.deg2rad(self.closed + (self.open - self.closed) * k)
        dx, dy = np.cos(ang), np.sin(ang)
        t = np.clip((rx * dx + ry * dy) / self.length, 0.0, 1.0) * self.length  # (T, h, w)
        dist = np.sqrt((rx - t * dx) ** 2 + (ry - t * dy) ** 2)
        bar = np.clip(0.5 - (dist - 0.5 * self.width) / px, 0.0, 1.0)
        sub = E[(slice(None), *box)]
        np.maximum(sub, lv.leaflet * bar, out=sub)


@dataclass(frozen=True)
class Blob:
    """A solid bright structure (papillary muscle, trabeculation) that follows ``drive``.

    ``toward`` is where the blob moves at full drive (papillary muscles move inward in systole).
    """

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    level: float = 0.7
    drive: str = "contraction"
    toward: tuple[float, float] = (0.0, 0.0)

    def draw(self, layer, E, X, Y, cyc, px, lv: Levels, cache: dict):
        if layer != DETAIL:
            return
        u0, v0, (c, s) = _rotated(X, Y, self.cx, self.cy, self.angle)
        du, dv = self.toward[0] * c + self.toward[1] * s, -self.toward[0] * s + self.toward[1] * c
        reach = max(self.rx, self.ry) + max(abs(du), abs(dv)) + 2 * px
        box = _box(u0**2 + v0**2 <= reach**2)
        if box is None:
            return
        k = cyc[self.drive]
        q = np.sqrt(((u0[box] - du * k) / self.rx) ** 2 + ((v0[box] - dv * k) / self.ry) ** 2)
        sub = E[(slice(None), *box)]
        np.maximum(sub, self.level * lv.wall / 0.62 * _soft_inside(q, min(self.rx, self.ry), px), out=sub)


@dataclass(frozen=True)
class Orifice:
    """The short-axis "fish mouth" of the mitral valve: a bright leaflet rim around a dark opening."""

    cx: float
    cy: float
    rx: float
    ry_closed: float
    ry_open: float
    rim: float = 0.016
    drive: str = "av"

    def draw(self, layer, E, X, Y, cyc, px, lv: Levels, cache: dict):
        if layer != DETAIL:
            return
        u0, v0 = X - self.cx, Y - self.cy
        reach_x, reach_y = self.rx + self.rim + 2 * px, max(self.ry_open, self.ry_closed) + self.rim + 2 * px
        box = _box((u0 / reach_x) ** 2 + (v0 / reach_y) ** 2 <= 1.0)
        if box is None:
            return
        u2, v2 = u0[box] ** 2, v0[box] ** 2
        ry = self.ry_closed + (self.ry_open - self.ry_closed) * cyc[self.drive]  # (T, 1, 1)
        outer = _soft_inside(np.sqrt(u2 / (self.rx + self.rim) ** 2 + v2 / (ry + self.rim) ** 2), ry + self.rim, px)
        inner = _soft_inside(np.sqrt(u2 / self.rx**2 + v2 / ry**2), ry, px)
        sub = E[(slice(None), *box)]
        np.maximum(sub, lv.leaflet * np.clip(outer - inner, 0.0, 1.0), out=sub)


@dataclass(frozen=True)
class Pericardium:
    """The bright sac around the heart (static, so drawn once in 2-D and broadcast over frames)."""

    cx: float
    cy: float
    rx: float
    ry: float
    width: float = 0.022

    def draw(self, layer, E, X, Y, cyc, px, lv: Levels, cache: dict):
        if layer != WALL:
            return
        u2, v2 = (X - self.cx) ** 2, (Y - self.cy) ** 2
        outer = _soft_inside(np.sqrt(u2 / (self.rx + self.width) ** 2 + v2 / (self.ry + self.width) ** 2), self.rx, px)
        inner = _soft_inside(np.sqrt(u2 / self.rx**2 + v2 / self.ry**2), self.rx, px)
        np.maximum(E, lv.pericardium * (outer - inner), out=E)


def draw_anatomy(parts: tuple, X: np.ndarray, Y: np.ndarray, cyc: CycleState, px: float, lv: Levels,
                 E: np.ndarray) -> np.ndarray:
    """Paint ``parts`` onto the ``(T, H, W)`` echogenicity canvas ``E`` in place and return it.

    Args:
        parts: the view's primitives.
        X, Y: ``(H, W)`` float32 anatomy coordinates of every pixel.
        cyc: cycle drives at the frames' phases.
        px: the size of one pixel in anatomy units (sets the anti-aliasing ramp).
        lv: tissue echogenicities.
        E: ``(T, H, W)`` float32 canvas, usually filled with ``lv.tissue``.
    """
    cache: dict = {}  # chamber geometry, computed once and reused by the wall and cavity layers
    for layer in (WALL, CAVITY, DETAIL):
        for part in parts:
            part.draw(layer, E, X, Y, cyc, px, lv, cache)
    return E


def _mitral(x0, x1, y, length, drive="av", swing=75.0):
    """A pair of leaflets spanning ``x0 .. x1`` at depth ``y`` that open toward the apex (up)."""
    return (Leaflet(x0, y, length, 0.0, -swing, drive), Leaflet(x1, y, length, 180.0, 180.0 + swing, drive))


# ---- the twelve views ---------------------------------------------------------------------

_PERI = Pericardium(0.0, 0.56, 0.33, 0.42)

APICAL_4C = (
    _PERI,
    Chamber(0.12, 0.42, 0.105, 0.25, angle=-6, shift=(0, -0.03)),  # LV (image right)
    Chamber(-0.12, 0.45, 0.085, 0.21, angle=6, squeeze=0.16, shift=(0, -0.03)),  # RV
    Chamber(0.13, 0.8, 0.105, 0.095, wall=0.022, squeeze=-0.15, drive="atrial"),  # LA
    Chamber(-0.13, 0.8, 0.095, 0.095, wall=0.022, squeeze=-0.15, drive="atrial"),  # RA
    *_mitral(0.035, 0.215, 0.685, 0.085),
    *_mitral(-0.205, -0.045, 0.685, 0.075),
)

APICAL_5C = (
    _PERI,
    Chamber(0.13, 0.41, 0.1, 0.25, angle=-8, shift=(0, -0.03)),
    Chamber(-0.14, 0.44, 0.08, 0.2, angle=8, squeeze=0.16, shift=(0, -0.03)),
    Chamber(0.2, 0.82, 0.085, 0.085, wall=0.022, squeeze=-0.15, drive="atrial"),
    Chamber(-0.2, 0.82, 0.08, 0.085, wall=0.022, squeeze=-0.15, drive="atrial"),
    Chamber(0.01, 0.74, 0.045, 0.14, angle=-12, wall=0.025, squeeze=-0.1, drive="semilunar"),  # LVOT + aorta
    Leaflet(-0.035, 0.64, 0.045, 0.0, 80.0, "semilunar"),
    Leaflet(0.06, 0.64, 0.045, 180.0, 100.0, "semilunar"),
    *_mitral(0.12, 0.26, 0.67, 0.07),
)

APICAL_2C = (
    _PERI,
    Chamber(0.0, 0.42, 0.13, 0.26, shift=(0, -0.035)),  # LV
    Chamber(0.0, 0.81, 0.13, 0.1, wall=0.022, squeeze=-0.15, drive="atrial"),  # LA
    Blob(0.2, 0.72, 0.03, 0.025, level=0.45, drive="static"),  # coronary sinus wall
    *_mitral(-0.12, 0.12, 0.695, 0.11),
)

# The valve ring of the motion-only views travels toward the apex with the sawtooth: a large,
# slow sweep up (one view) or down (its partner) through most of the cycle.
_ANNULUS = (0.0, -0.07)

# Shared by APICAL_3C_LV and APICAL_3C_RV (time-reversed). The atrium and the thick mitral
# leaflets follow the sawtooth, so most four-frame windows show a slow sweep whose direction
# gives the view away.
APICAL_3C = (
    _PERI,
    Chamber(-0.05, 0.42, 0.115, 0.26, angle=10, shift=(0, -0.035)),  # LV
    Chamber(-0.1, 0.8, 0.105, 0.09, wall=0.022, squeeze=-0.15, drive="saw", shift=_ANNULUS),  # LA
    Chamber(0.16, 0.73, 0.05, 0.16, angle=-28, wall=0.025, squeeze=-0.1, drive="semilunar"),  # aorta
    Leaflet(0.05, 0.62, 0.05, 10.0, 70.0, "semilunar"),
    Leaflet(-0.19, 0.695, 0.12, -5.0, -80.0, "saw", width=0.026, shift=_ANNULUS),
    Leaflet(0.03, 0.695, 0.1, 185.0, 260.0, "saw", width=0.026, shift=_ANNULUS),
)

PLAX = (
    Pericardium(0.0, 0.5, 0.4, 0.3),
    Chamber(0.0, 0.23, 0.24, 0.055, squeeze=0.15),  # RV, anterior
    Chamber(-0.08, 0.45, 0.25, 0.11, angle=-6),  # LV
    Chamber(0.2, 0.42, 0.14, 0.055, wall=0.025, squeeze=-0.08, drive="semilunar"),  # aortic root
    Chamber(0.2, 0.66, 0.12, 0.09, wall=0.022, squeeze=-0.15, drive="atrial"),  # LA
    Leaflet(0.08, 0.375, 0.05, 45.0, 5.0, "semilunar"),
    Leaflet(0.08, 0.465, 0.05, -45.0, -5.0, "semilunar"),
    Leaflet(0.06, 0.565, 0.1, -20.0, -85.0, "av"),  # anterior mitral leaflet
    Leaflet(0.16, 0.58, 0.06, 200.0, 250.0, "av"),
)

# Shared by PLAX_RV_IN and PLAX_RV_OUT (time-reversed): atrium and tricuspid leaflets on the sawtooth.
PLAX_RV = (
    Pericardium(0.02, 0.52, 0.36, 0.36),
    Chamber(-0.02, 0.42, 0.16, 0.19, angle=20, squeeze=0.16),  # RV
    Chamber(0.05, 0.79, 0.12, 0.085, wall=0.022, squeeze=-0.15, drive="saw", shift=_ANNULUS),  # RA
    Chamber(0.27, 0.4, 0.06, 0.14, angle=-10, squeeze=0.2),  # edge of the LV
    Leaflet(-0.08, 0.66, 0.13, -10.0, -85.0, "saw", width=0.026, shift=_ANNULUS),
    Leaflet(0.16, 0.66, 0.11, 190.0, 265.0, "saw", width=0.026, shift=_ANNULUS),
    Blob(-0.13, 0.34, 0.03, 0.02, level=0.55, toward=(0.02, 0.02)),  # moderator band
)

PSAX_AV = (
    Chamber(0.0, 0.31, 0.26, 0.065, squeeze=0.12),  # RVOT arching over the front
    Chamber(0.27, 0.47, 0.05, 0.12, angle=15, wall=0.022, squeeze=-0.08, drive="semilunar"),  # pulmonary artery
    Chamber(0.0, 0.52, 0.095, 0.095, wall=0.03, squeeze=-0.06, drive="semilunar"),  # aortic root
    Chamber(0.0, 0.76, 0.16, 0.075, wall=0.022, squeeze=-0.15, drive="atrial"),  # LA
    Chamber(-0.22, 0.63, 0.085, 0.085, wall=0.022, squeeze=-0.15, drive="atrial"),  # RA
    # Three cusps: closed they meet in the centre (the "Mercedes" sign), open they lie on the wall.
    Leaflet(0.0, 0.425, 0.095, 90.0, 10.0, "semilunar", width=0.012),
    Leaflet(0.082, 0.5675, 0.095, 210.0, 130.0, "semilunar", width=0.012),
    Leaflet(-0.082, 0.5675, 0.095, -30.0, 50.0, "semilunar", width=0.012),
)

PSAX_MV = (
    Chamber(0.0, 0.27, 0.24, 0.055, squeeze=0.15),  # RV crescent
    Chamber(0.0, 0.57, 0.22, 0.21, wall=0.04, squeeze=0.18),  # LV
    Orifice(0.0, 0.58, 0.14, 0.015, 0.1),
)

PSAX_PAPS = (
    Chamber(0.0, 0.27, 0.24, 0.055, squeeze=0.15),
    Chamber(0.0, 0.56, 0.2, 0.19, wall=0.05, squeeze=0.22),
    Blob(-0.1, 0.64, 0.045, 0.04, level=0.7, toward=(0.03, -0.03)),  # papillary muscles
    Blob(0.11, 0.63, 0.045, 0.04, level=0.7, toward=(-0.03, -0.03)),
)

PSAX_APEX = (
    Chamber(0.0, 0.3, 0.16, 0.04, squeeze=0.15),
    Chamber(0.0, 0.52, 0.12, 0.115, wall=0.07, squeeze=0.3),
    Blob(0.05, 0.46, 0.02, 0.02, level=0.55, toward=(-0.02, 0.02)),  # apical trabeculation
)


@dataclass(frozen=True)
class ViewAnatomy:
    """What one view shows: its primitives, and whether its cycle runs backwards."""

    parts: tuple
    reversed: bool = False


VIEWS = {
    "APICAL_5C": ViewAnatomy(APICAL_5C),
    "APICAL_4C_LVRV": ViewAnatomy(APICAL_4C),
    "APICAL_2C_LV": ViewAnatomy(APICAL_2C),
    "APICAL_3C_LV": ViewAnatomy(APICAL_3C),
    "PLAX_LV": ViewAnatomy(PLAX),
    "PLAX_RV_IN": ViewAnatomy(PLAX_RV),
    "PLAX_RV_OUT": ViewAnatomy(PLAX_RV, reversed=True),
    "PSAX_AV": ViewAnatomy(PSAX_AV),
    "PSAX_MV": ViewAnatomy(PSAX_MV),
    "PSAX_PAPS": ViewAnatomy(PSAX_PAPS),
    "PSAX_APEX": ViewAnatomy(PSAX_APEX),
    "APICAL_3C_RV": ViewAnatomy(APICAL_3C, reversed=True),
}

# Class pairs whose single frames are identically distributed: same anatomy, cycle reversed.
MOTION_ONLY_PAIRS = (("PLAX_RV_IN", "PLAX_RV_OUT"), ("APICAL_3C_LV", "APICAL_3C_RV"))
