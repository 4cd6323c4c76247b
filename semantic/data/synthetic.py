"""Procedural urban street scenes with Cityscapes trainId labels and instance maps.

Every scene is a small pinhole-camera world: a camera at 1.2–1.6 m above a flat street looks along
the road. The road, lane markings, kerbs, verges and sidewalks are evaluated per pixel on the
ground plane; building façades, hedges, walls and fences are vertical planes along both sides
(windows laid out in façade coordinates, so they converge to the vanishing point); a skyline
closes the street; vehicles are 3-D boxes (visible faces only), people, riders, bicycles,
motorcycles, trees, poles, signs and traffic lights are upright sprites, all placed in metres and
projected, drawn far to near (painter's order) so occlusion and scale follow depth. Colours vary
per scene (style, illumination, palette) and per object; textures are per class so a segmenter
has to use shape and context as well as colour.

A scene depends only on ``(seed, index)`` (``np.random.default_rng((seed, index))``), so any
index can be generated on its own, in any order, in any process.

Example:
    >>> gen = SyntheticStreetScenes(size=(64, 128), seed=0)
    >>> s = gen.scene(3)
    >>> s.image.shape, s.labels.dtype, s.instances.dtype
    ((64, 128, 3), dtype('uint8'), dtype('int32'))
    >>> len(gen.split("val"))
    10000
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from semantic.data.labels import (
    IGNORE_INDEX,
    NUM_TRAIN_CLASSES,
    TRAIN_CLASS_NAMES,
    TRAIN_PALETTE,
    TRAINID_TO_LABELID,
)
from semantic.data.scene import Scene, SceneBatch, resolve_indices, stack_scenes

TRAIN_RANGE = range(0, 1_000_000)
"""Scene indices of the synthetic training split."""
VAL_RANGE = range(1_000_000, 1_010_000)
"""Scene indices of the synthetic validation split."""
TEST_RANGE = range(1_010_000, 1_020_000)
"""Scene indices of the synthetic test split."""
SPLITS: dict[str, range] = {"train": TRAIN_RANGE, "val": VAL_RANGE, "test": TEST_RANGE}
GENERATOR_VERSION = 1
"""Bumped whenever the pixels produced for a given (seed, index) change; model cards record it."""

# trainIds
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(11, 19)

_F32 = np.float32

# Per-class texture amplitudes (grey levels): fine per-pixel noise and 2x2-blocky "leaf" noise.
_FINE_AMP = np.zeros(256, dtype=_F32)
_BLOCK_AMP = np.zeros(256, dtype=_F32)
for _cls, _fine, _block in (
    (ROAD, 5.0, 2.0),
    (SIDEWALK, 5.0, 3.0),
    (BUILDING, 4.0, 2.0),
    (WALL, 7.0, 5.0),
    (FENCE, 5.0, 2.0),
    (POLE, 2.0, 0.0),
    (LIGHT, 2.0, 0.0),
    (SIGN, 2.0, 0.0),
    (VEG, 10.0, 16.0),
    (TERRAIN, 10.0, 8.0),
    (SKY, 1.5, 0.0),
    (PERSON, 4.0, 2.0),
    (RIDER, 4.0, 2.0),
    (CAR, 3.0, 0.0),
    (TRUCK, 3.0, 1.0),
    (BUS, 3.0, 1.0),
    (TRAIN, 3.0, 1.0),
    (MOTORCYCLE, 4.0, 1.0),
    (BICYCLE, 4.0, 1.0),
    (IGNORE_INDEX, 2.0, 0.0),
):
    _FINE_AMP[_cls] = _fine
    _BLOCK_AMP[_cls] = _block

_CAR_PAINTS = np.array(
    [
        [225, 225, 228], [30, 30, 34], [150, 152, 158], [95, 98, 105], [160, 30, 30],
        [30, 55, 120], [20, 70, 45], [200, 200, 190], [120, 20, 25], [60, 90, 150],
        [190, 150, 60], [110, 110, 112], [245, 245, 245], [55, 55, 60],
    ],
    dtype=_F32,
)
_FACADES = np.array(
    [
        [214, 204, 180], [190, 182, 168], [160, 150, 140], [150, 85, 65], [180, 110, 80],
        [220, 215, 205], [140, 140, 142], [200, 170, 120], [170, 180, 190], [110, 100, 95],
        [205, 190, 150], [230, 225, 215], [120, 70, 55], [175, 160, 150],
    ],
    dtype=_F32,
)
_CLOTHES = np.array(
    [
        [20, 20, 25], [40, 45, 70], [200, 200, 200], [120, 30, 30], [60, 60, 60],
        [30, 60, 110], [150, 120, 90], [80, 100, 60], [180, 150, 40], [90, 40, 90],
        [230, 230, 235], [100, 70, 50],
    ],
    dtype=_F32,
)
_SKIN = np.array([[225, 185, 160], [190, 145, 110], [140, 100, 70], [95, 65, 45]], dtype=_F32)
_TRANSIT = np.array(
    [[230, 200, 40], [200, 40, 35], [235, 235, 235], [40, 90, 170], [40, 140, 80], [240, 140, 30]],
    dtype=_F32,
)


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in] linear-interpolation weights (align-corners) for separable upsampling."""
    pos = np.linspace(0.0, n_in - 1.0, n_out)
    lo = np.clip(np.floor(pos).astype(np.intp), 0, max(n_in - 2, 0))
    frac = pos - lo
    m = np.zeros((n_out, n_in), dtype=_F32)
    m[np.arange(n_out), lo] = 1.0 - frac
    if n_in > 1:
        m[np.arange(n_out), lo + 1] += frac
    return m


class _Canvas:
    """Label, instance and float colour buffers with convex-primitive rasterisers.

    Every primitive works on its clipped bounding box only; pixel centres sit at ``i + 0.5``.
    A region is ``(y0, y1, x0, x1, mask)`` with ``mask`` bool [y1 - y0, x1 - x0].
    """

    def __init__(self, height: int, width: int):
        self.h, self.w = height, width
        self.img = np.empty((height, width, 3), dtype=_F32)
        self.lab = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        self.inst = np.zeros((height, width), dtype=np.int32)
        self._xc = np.arange(width, dtype=_F32) + 0.5
        self._yc = np.arange(height, dtype=_F32) + 0.5

    # -- region builders -------------------------------------------------------------------------
    def _box(self, x0: float, x1: float, y0: float, y1: float):
        ix0, ix1 = max(math.floor(x0), 0), min(math.ceil(x1), self.w)
        iy0, iy1 = max(math.floor(y0), 0), min(math.ceil(y1), self.h)
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        return iy0, iy1, ix0, ix1

    def rect(self, x0: float, x1: float, y0: float, y1: float, min_px: float = 1.0):
        """Axis-aligned rectangle, widened/heightened to at least ``min_px`` around its centre."""
        if x1 - x0 < min_px:
            c = 0.5 * (x0 + x1)
            x0, x1 = c - 0.5 * min_px, c + 0.5 * min_px
        if y1 - y0 < min_px:
            c = 0.5 * (y0 + y1)
            y0, y1 = c - 0.5 * min_px, c + 0.5 * min_px
        b = self._box(round(x0), round(x1), round(y0), round(y1))
        if b is None:
            return None
        iy0, iy1, ix0, ix1 = b
        return iy0, iy1, ix0, ix1, np.ones((iy1 - iy0, ix1 - ix0), dtype=bool)

    def corners(self, a: tuple[float, float], b: tuple[float, float], min_px: float = 1.0):
        """Axis-aligned rectangle spanned by two pixel-coordinate corner points."""
        return self.rect(min(a[0], b[0]), max(a[0], b[0]), min(a[1], b[1]), max(a[1], b[1]), min_px)

    def poly(self, pts: Sequence[tuple[float, float]]):
        """Convex polygon given as pixel-coordinate vertices (scanline fill, any orientation)."""
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        b = self._box(min(xs), max(xs), min(ys), max(ys))
        if b is None:
            return None
        iy0, iy1, ix0, ix1 = b
        gy = self._yc[iy0:iy1]
        left = np.full(iy1 - iy0, np.inf, dtype=_F32)
        right = np.full(iy1 - iy0, -np.inf, dtype=_F32)
        n = len(pts)
        for i in range(n):
            ax, ay = xs[i], ys[i]
            bx, by = xs[(i + 1) % n], ys[(i + 1) % n]
            if abs(by - ay) < 1e-9:
                continue
            lo, hi = (ay, by) if ay < by else (by, ay)
            t = (gy - ay) / (by - ay)
            x = np.where((gy >= lo) & (gy <= hi), ax + t * (bx - ax), np.nan)
            left = np.fmin(left, x)
            right = np.fmax(right, x)
        gx = self._xc[ix0:ix1][None, :]
        mask = (gx >= left[:, None]) & (gx <= right[:, None])
        return iy0, iy1, ix0, ix1, mask

    def ellipse(self, cx: float, cy: float, rx: float, ry: float):
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        b = self._box(cx - rx, cx + rx, cy - ry, cy + ry)
        if b is None:
            return None
        iy0, iy1, ix0, ix1 = b
        dx = (self._xc[ix0:ix1][None, :] - cx) / rx
        dy = (self._yc[iy0:iy1][:, None] - cy) / ry
        return iy0, iy1, ix0, ix1, dx * dx + dy * dy <= 1.0

    def ring(self, cx: float, cy: float, r: float, thickness: float, squash: float = 1.0):
        """Annulus of outer radius ``r`` (x radius ``r * squash``), at least one pixel thick."""
        r = max(r, 0.5)
        rx = max(r * squash, 0.5)
        b = self._box(cx - rx, cx + rx, cy - r, cy + r)
        if b is None:
            return None
        iy0, iy1, ix0, ix1 = b
        dx = (self._xc[ix0:ix1][None, :] - cx) * (r / rx)
        dy = self._yc[iy0:iy1][:, None] - cy
        d = np.sqrt(dx * dx + dy * dy)
        return iy0, iy1, ix0, ix1, (d <= r) & (d >= r - max(thickness, 1.0))

    def segment(self, x0: float, y0: float, x1: float, y1: float, half_width: float):
        """Thick line segment (capsule), at least one pixel wide."""
        hw = max(half_width, 0.5)
        b = self._box(min(x0, x1) - hw, max(x0, x1) + hw, min(y0, y1) - hw, max(y0, y1) + hw)
        if b is None:
            return None
        iy0, iy1, ix0, ix1 = b
        gx = self._xc[ix0:ix1][None, :] - x0
        gy = self._yc[iy0:iy1][:, None] - y0
        vx, vy = x1 - x0, y1 - y0
        ll = vx * vx + vy * vy
        t = np.clip((gx * vx + gy * vy) / ll, 0.0, 1.0) if ll > 1e-9 else 0.0 * gx
        ex, ey = gx - t * vx, gy - t * vy
        return iy0, iy1, ix0, ix1, ex * ex + ey * ey <= hw * hw

    # -- painting ---------------------------------------------------------------------------------
    def darken(self, region, factor: float) -> None:
        """Darken the ground classes (road, sidewalk, terrain) inside a region: cast shadows."""
        if region is None:
            return
        iy0, iy1, ix0, ix1, mask = region
        lab = self.lab[iy0:iy1, ix0:ix1]
        m = mask & ((lab <= SIDEWALK) | (lab == TERRAIN))
        self.img[iy0:iy1, ix0:ix1][m] *= factor

    def fill(self, region, label: int, inst: int, color) -> None:
        if region is None:
            return
        iy0, iy1, ix0, ix1, mask = region
        lab = self.lab[iy0:iy1, ix0:ix1]
        lab[mask] = label
        self.inst[iy0:iy1, ix0:ix1][mask] = inst
        self.img[iy0:iy1, ix0:ix1][mask] = color


class _World:
    """The per-scene camera and random draws shared by the scene builder's drawing steps."""

    def __init__(self, cv: _Canvas, rng: np.random.Generator):
        self.cv = cv
        self.rng = rng
        h, w = cv.h, cv.w
        self.f = w * rng.uniform(0.85, 1.1)
        self.vx = w * rng.uniform(0.4, 0.6)
        self.yh = h * rng.uniform(0.36, 0.47)
        self.cam_h = rng.uniform(1.2, 1.6)
        self.near_z = 1.5
        # scale relative to the default 128x256 canvas, for sizes given in pixels
        self.px = w / 256.0

    def proj(self, x: float, y: float, z: float) -> tuple[float, float]:
        """World (x right, y up from the ground, z forward; metres) -> pixel (col, row)."""
        return self.vx + self.f * x / z, self.yh - self.f * (y - self.cam_h) / z

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z`` for a fronto-parallel object."""
        return self.f / z


def _jitter(rng: np.random.Generator, color, amount: float = 12.0) -> np.ndarray:
    """A colour with Gaussian noise per channel (kept unclipped; the final image is clipped)."""
    return (np.asarray(color, dtype=_F32) + rng.normal(0.0, amount, 3)).astype(_F32)


def _pick(rng: np.random.Generator, probs: Sequence[float]) -> int:
    """Categorical draw (much cheaper than ``Generator.choice`` for a handful of options)."""
    return bisect.bisect_right(list(itertools.accumulate(probs))[:-1], rng.random())


class SyntheticStreetScenes:
    """Deterministic generator of synthetic Cityscapes-like street scenes (19 trainId classes).

    Args:
        size: (H, W) of every scene, both multiples of 32 (64x128, 128x256, 256x512, ...).
        seed: data-set seed; scene ``i`` depends only on ``(seed, i)``.

    ``scene(i)`` returns a :class:`Scene` (image uint8 [H, W, 3], labels uint8 [H, W] with trainIds
    0..18 and 255 on the ego-vehicle bonnet that some scenes show, instances int32 [H, W]: 0 on
    stuff, ``labelId * 1000 + k`` on person, rider, car, truck, bus, train, motorcycle, bicycle).

    Example:
        >>> gen = SyntheticStreetScenes((64, 128), seed=1)
        >>> b = gen.batch([0, 1])
        >>> b.images.shape, b.labels.shape
        ((2, 64, 128, 3), (2, 64, 128))
        >>> bool((gen.scene(0).labels == b.labels[0]).all())
        True
    """

    num_classes = NUM_TRAIN_CLASSES
    class_names = TRAIN_CLASS_NAMES
    palette = TRAIN_PALETTE
    ignore_index = IGNORE_INDEX

    def __init__(self, size: tuple[int, int] = (128, 256), seed: int = 0):
        h, w = (int(v) for v in size)
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(f"size must be two positive multiples of 32, got {size}")
        self.size = (h, w)
        self.seed = int(seed)
        self._cloud_h = _interp_matrix(h, 5)
        self._cloud_w = _interp_matrix(w, 9)
        self._light_h = _interp_matrix(h, 4)
        self._light_w = _interp_matrix(w, 6)
        self._block = max(1, (2 * w) // 256)
        self._blur = np.float32(0.25 if w >= 256 else 0.1)

    # -- public API -------------------------------------------------------------------------------
    def scene(self, index: int) -> Scene:
        """Generate scene ``index`` (any non-negative int)."""
        index = int(index)
        if index < 0:
            raise IndexError(f"scene index must be >= 0, got {index}")
        rng = np.random.default_rng((self.seed, index))
        cv = _Canvas(*self.size)
        light = self._render(cv, rng)
        image = self._finish(cv, rng, light)
        return Scene(image=image, labels=cv.lab, instances=cv.inst, index=index)

    def batch(self, indices: Sequence[int] | np.ndarray) -> SceneBatch:
        """Generate and stack the scenes ``indices``: images uint8 [B, H, W, 3], ..."""
        return stack_scenes(self.scene(int(i)) for i in np.asarray(indices).reshape(-1))

    def split(self, name: str, num_images: int | None = None) -> SplitView:
        """The scenes of one split (``train``, ``val`` or ``test``), optionally the first N."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {sorted(SPLITS)}")
        rng_ = SPLITS[name]
        if num_images is not None:
            if not 0 < num_images <= len(rng_):
                raise ValueError(f"num_images must be in 1..{len(rng_)}, got {num_images}")
            rng_ = rng_[:num_images]
        return SplitView(self, rng_, name)

    # -- scene construction -----------------------------------------------------------------------
    def _render(self, cv: _Canvas, rng: np.random.Generator) -> float:
        wd = _World(cv, rng)
        style = _pick(rng, [0.5, 0.32, 0.18])  # 0 urban, 1 residential/green, 2 boulevard
        wd.style = int(style)
        wd.illum = _pick(rng, [0.45, 0.4, 0.15])  # sunny, overcast, dusk
        self._layout(wd)
        self._sky(wd)
        self._skyline(wd)
        self._ground(wd)
        if wd.end_z is not None:
            self._end_building(wd)
        for side in (-1, 1):
            self._facades(wd, side)
        for side in (-1, 1):
            self._front_barrier(wd, side)
        self._objects(wd)
        if rng.random() < 0.25:
            self._bonnet(wd)
        return wd.light

    def _layout(self, wd: _World) -> None:
        """Road cross-section (lanes, median, parking, verges, sidewalks) and façade setbacks."""
        rng = wd.rng
        lw = rng.uniform(2.9, 3.5)
        n_same = 1 + _pick(rng, [0.45, 0.4, 0.15])
        n_onc = _pick(rng, [0.15, 0.6, 0.25])
        cam_lane = int(rng.integers(0, n_same))
        median = rng.uniform(2.0, 6.0) if (wd.style == 2 and n_onc > 0) else 0.0
        same_left = -(cam_lane + 0.5) * lw + rng.uniform(-0.4, 0.4)
        park_r = 2.3 if rng.random() < 0.55 else 0.0
        park_l = 2.3 if (n_onc > 0 and rng.random() < 0.35) else 0.0
        onc_right = same_left - median
        wd.lw = lw
        wd.same_lanes = [same_left + (i + 0.5) * lw for i in range(n_same)]
        wd.onc_lanes = [onc_right - (i + 0.5) * lw for i in range(n_onc)]
        wd.road_r = same_left + n_same * lw + park_r
        wd.road_l = onc_right - n_onc * lw - park_l
        wd.park_r = (wd.road_r - park_r / 2) if park_r else None
        wd.park_l = (wd.road_l + park_l / 2) if park_l else None
        wd.median = (same_left - median, same_left) if median else None
        wd.markings = [same_left + i * lw for i in range(1, n_same)]
        wd.markings += [onc_right - i * lw for i in range(1, n_onc)]
        wd.center_line = same_left if (n_onc and not median) else None
        green = wd.style == 1
        wd.verge_r = rng.uniform(1.0, 3.0) if rng.random() < (0.5 if green else 0.15) else 0.0
        wd.verge_l = rng.uniform(1.0, 3.0) if rng.random() < (0.5 if green else 0.15) else 0.0
        wd.walk_r = rng.uniform(2.0, 5.0)
        wd.walk_l = rng.uniform(2.0, 5.0)
        wd.yard_r = rng.uniform(1.0, 6.0) if rng.random() < (0.55 if green else 0.15) else 0.0
        wd.yard_l = rng.uniform(1.0, 6.0) if rng.random() < (0.55 if green else 0.15) else 0.0
        wd.facade_r = wd.road_r + wd.verge_r + wd.walk_r + wd.yard_r
        wd.facade_l = -wd.road_l + wd.verge_l + wd.walk_l + wd.yard_l
        wd.end_z = rng.uniform(45.0, 140.0) if rng.random() < 0.3 else None
        wd.crosswalk_z = rng.uniform(7.0, 30.0) if rng.random() < 0.3 else None
        wd.tram = rng.random() < (0.8 if wd.style == 2 else 0.12)
        # trams run on the median when there is one, else in the first oncoming lane
        wd.tram_x = wd.onc_lanes[0] if wd.onc_lanes else wd.same_lanes[0] - lw
        if wd.median is not None:
            wd.tram_x = 0.5 * (wd.median[0] + wd.median[1])
        wd.shade_side = (1 if rng.random() < 0.5 else -1) if wd.illum == 0 else 0
        wd.light = {0: 1.08, 1: 0.95, 2: 0.72}[wd.illum] * rng.uniform(0.85, 1.15)

    # -- stuff ------------------------------------------------------------------------------------
    def _sky(self, wd: _World) -> None:
        cv, rng = wd.cv, wd.rng
        if wd.illum == 0:
            top, hor = _jitter(rng, [70, 125, 200], 15), _jitter(rng, [175, 205, 235], 12)
        elif wd.illum == 1:
            g = rng.uniform(150, 215)
            top, hor = _jitter(rng, [g - 10, g - 5, g + 5], 6), _jitter(rng, [g + 20] * 3, 6)
        else:
            top, hor = _jitter(rng, [60, 80, 140], 15), _jitter(rng, [235, 160, 100], 15)
        r1 = min(cv.h, math.ceil(wd.yh) + 2)  # the ground covers everything below
        t = np.clip(cv._yc[:r1] / max(wd.yh, 1.0), 0.0, 1.0)[:, None]
        grad = top[None, :] * (1 - t) + hor[None, :] * t  # [rows, 3]
        clouds = self._cloud_h[:r1] @ rng.normal(0, 1, (5, 9)).astype(_F32) @ self._cloud_w.T
        cover = {0: 0.5, 1: 1.4, 2: 0.6}[wd.illum]
        alpha = np.clip(clouds * 0.6 + cover - 0.9, 0.0, 0.85)[..., None]
        cloud_col = np.array([245, 245, 248] if wd.illum != 2 else [240, 190, 160], dtype=_F32)
        sky = grad[:, None, :] * (1 - alpha)
        sky += cloud_col * alpha
        cv.img[:r1] = sky
        cv.lab[:] = SKY

    def _skyline(self, wd: _World) -> None:
        """Distant buildings and trees along the horizon (seen through the street's end)."""
        cv, rng = wd.cv, wd.rng
        x = 0.0
        while x < cv.w:
            bw = rng.uniform(0.04, 0.2) * cv.w
            hgt = rng.uniform(0.02, 0.14) * cv.h
            veg = rng.random() < (0.45 if wd.style == 1 else 0.2)
            if veg:
                col = _jitter(rng, [70, 95, 60], 10)
                reg = cv.ellipse(x + bw / 2, wd.yh, bw / 2, hgt)
                cv.fill(reg, VEG, 0, col)
            else:
                col = _jitter(rng, [150, 155, 165] if wd.illum != 2 else [110, 100, 110], 18)
                cv.fill(cv.rect(x, x + bw, wd.yh - hgt, wd.yh + 1), BUILDING, 0, col)
            x += bw * rng.uniform(0.6, 1.1)

    def _ground(self, wd: _World) -> None:
        cv, rng = wd.cv, wd.rng
        r0 = max(math.floor(wd.yh + 0.5), 0)
        if r0 >= cv.h:
            return
        dy = np.maximum(cv._yc[r0:] - wd.yh, 1e-3)
        zg = (wd.f * wd.cam_h / dy).astype(_F32)[:, None]  # [rows, 1]
        xg = (cv._xc[None, :] - wd.vx) * zg / wd.f  # [rows, W]
        # bands across the street, left to right
        verge_cls = TERRAIN
        edges = [
            wd.road_l - wd.verge_l - wd.walk_l - wd.yard_l,
            wd.road_l - wd.verge_l - wd.walk_l,
            wd.road_l - wd.verge_l,
            wd.road_l,
            wd.road_r,
            wd.road_r + wd.verge_r,
            wd.road_r + wd.verge_r + wd.walk_r,
            wd.road_r + wd.verge_r + wd.walk_r + wd.yard_r,
        ]
        yard_cls = TERRAIN if (wd.style == 1 or rng.random() < 0.4) else SIDEWALK
        classes = np.array(
            [TERRAIN, yard_cls, SIDEWALK, verge_cls, ROAD, verge_cls, SIDEWALK, yard_cls, TERRAIN],
            dtype=np.uint8,
        )
        asphalt = _jitter(rng, [rng.uniform(70, 125)] * 3, 4) + np.array([0, 0, 4], _F32)
        paving = _jitter(
            rng, [[170, 168, 165], [150, 130, 120], [185, 180, 170], [130, 130, 135]][rng.integers(4)], 10
        )
        grass = _jitter(rng, [[100, 140, 60], [120, 135, 70], [140, 125, 80]][rng.integers(3)], 10)
        dirt = _jitter(rng, [135, 120, 95], 10)
        colors = np.stack([dirt, grass, paving, grass, asphalt, grass, paving, grass, dirt])
        if yard_cls == SIDEWALK:
            colors[1] = colors[7] = paving * 0.95
        band = np.searchsorted(np.asarray(edges, dtype=_F32), xg)
        lab = classes[band]
        col = colors[band]
        road = lab == ROAD
        if wd.median is not None:
            med = (xg > wd.median[0]) & (xg < wd.median[1])
            lab[med] = TERRAIN if not wd.tram else SIDEWALK
            col[med] = grass if not wd.tram else paving * 0.9
            road &= ~med
        # kerb stones: a light strip on the sidewalk side of the road edge
        kerb = ((xg > wd.road_r) & (xg < wd.road_r + 0.2)) | ((xg < wd.road_l) & (xg > wd.road_l - 0.2))
        kerb &= lab == SIDEWALK
        col[kerb] = paving * 1.12
        # paving joints
        walk = lab == SIDEWALK
        tile = rng.uniform(0.4, 0.8)
        joints = walk & (((xg / tile) % 1.0 < 0.07) | ((zg / tile) % 1.0 < 0.07))
        col[joints] *= 0.85
        # lane markings and tram rails (still "road")
        white = np.array([235, 235, 230], dtype=_F32) * rng.uniform(0.75, 1.0)
        dash = (zg / rng.uniform(7.0, 12.0)) % 1.0 < 0.4
        for xm in wd.markings:
            col[road & (np.abs(xg - xm) < 0.07) & dash] = white
        if wd.center_line is not None:
            yellowish = white if rng.random() < 0.8 else np.array([220, 190, 60], _F32)
            col[road & (np.abs(xg - wd.center_line) < 0.08)] = yellowish
        for xe in (wd.road_l + 0.25, wd.road_r - 0.25):
            col[road & (np.abs(xg - xe) < 0.06)] = white * 0.9
        if wd.tram:
            for rail in (-0.72, 0.72):
                rail_mask = np.abs(xg - (wd.tram_x + rail)) < 0.05
                lab[rail_mask & (lab == SIDEWALK)] = ROAD
                col[rail_mask] = col[rail_mask] * 0.6 + 40
                road |= rail_mask
        if wd.crosswalk_z is not None:
            zebra = road & (zg > wd.crosswalk_z) & (zg < wd.crosswalk_z + 4.0) & ((xg % 1.0) < 0.5)
            col[zebra] = white
        # tyre tracks: faintly darker along each lane's wheel paths
        q = np.abs(((xg - wd.same_lanes[0]) / wd.lw + 0.5) % 1.0 - 0.5) * wd.lw
        col[road & (np.abs(q - 0.8) < 0.3)] *= 0.93
        # sun shadow of the shaded side's buildings on the ground
        if wd.shade_side:
            edge = wd.shade_side * (wd.facade_r if wd.shade_side > 0 else wd.facade_l)
            reach = rng.uniform(0.3, 0.8) * (wd.road_r - wd.road_l)
            shadow = (xg - edge) * wd.shade_side > -reach
            col[shadow] *= 0.6
        cv.lab[r0:] = lab
        cv.inst[r0:] = 0
        cv.img[r0:] = col
        wd.ground_row0 = r0

    def _facade_palette(self, rng: np.random.Generator) -> np.ndarray:
        return _jitter(rng, _FACADES[rng.integers(len(_FACADES))], 14)

    def _end_building(self, wd: _World) -> None:
        """A fronto-parallel façade closing the street at ``end_z``."""
        cv, rng, z = wd.cv, wd.rng, wd.end_z
        xl, xr = -wd.facade_l - 40.0, wd.facade_r + 40.0
        hgt = rng.uniform(10.0, 30.0)
        col = self._facade_palette(rng)
        x0, ytop = wd.proj(xl, hgt, z)
        x1, ybot = wd.proj(xr, 0.0, z)
        reg = cv.rect(x0, x1, ytop, ybot)
        if reg is None:
            return
        cv.fill(reg, BUILDING, 0, col)
        iy0, iy1, ix0, ix1, _ = reg
        s = wd.scale(z)
        xs = (cv._xc[ix0:ix1] - wd.vx) / s
        ys = wd.cam_h - (cv._yc[iy0:iy1] - wd.yh) / s
        win = ((xs % 3.2) > 1.2)[None, :] & ((ys % 3.1) > 1.1)[:, None] & (ys > 3.5)[:, None]
        cv.img[iy0:iy1, ix0:ix1][win] = col * 0.45

    def _facades(self, wd: _World, side: int) -> None:
        """Segments of buildings, hedges, walls, fences and gaps along one side of the street."""
        cv, rng = wd.cv, wd.rng
        xb = wd.facade_r if side > 0 else wd.facade_l
        z_max = wd.end_z if wd.end_z is not None else rng.uniform(120.0, 250.0)
        dxs = side * (cv._xc - wd.vx)
        cols = np.nonzero(dxs > 0.25)[0]
        if cols.size == 0:
            return
        zc_all = (wd.f * xb / dxs[cols]).astype(_F32)
        p = {0: [0.72, 0.08, 0.08, 0.05, 0.07], 1: [0.42, 0.26, 0.1, 0.12, 0.1],
             2: [0.62, 0.16, 0.08, 0.06, 0.08]}[wd.style]
        shade = 0.62 if side == wd.shade_side else 1.0
        if wd.illum == 0 and side == -wd.shade_side:
            shade = 1.1
        z = 0.0
        while z < z_max:
            length = rng.uniform(8.0, 35.0)
            z1 = min(z + length, z_max)
            kind = _pick(rng, p)  # building, vegetation, wall, fence, open
            # each segment draws from its own stream, so whether it is visible (which depends on
            # the image size) does not shift the random draws of anything after it
            seg_seed = int(rng.integers(2**62))
            sel = (zc_all >= z) & (zc_all < z1)
            if sel.any():
                c = cols[sel]
                seg_rng = np.random.default_rng(seg_seed)
                self._facade_segment(wd, seg_rng, kind, c, zc_all[sel], z, z1, shade)
            z = z1

    def _front_barrier(self, wd: _World, side: int) -> None:
        """A garden wall or fence along the back of the sidewalk, in front of the façades."""
        cv, rng = wd.cv, wd.rng
        yard = wd.yard_r if side > 0 else wd.yard_l
        use = rng.random() < (0.6 if yard > 0 else 0.15)
        kind = 2 if rng.random() < 0.5 else 3
        z0 = rng.uniform(2.0, 30.0)
        z1 = z0 + rng.uniform(10.0, 60.0)
        seg_seed = int(rng.integers(2**62))
        if not use:
            return
        x_plane = (wd.facade_r if side > 0 else wd.facade_l) - yard
        dxs = side * (cv._xc - wd.vx)
        cols = np.nonzero(dxs > 0.25)[0]
        zc = (wd.f * x_plane / dxs[cols]).astype(_F32)
        sel = (zc >= z0) & (zc < z1)
        if sel.any():
            shade = 0.7 if side == wd.shade_side else 1.0
            self._facade_segment(
                wd, np.random.default_rng(seg_seed), kind, cols[sel], zc[sel], z0, z1, shade,
                backdrop=False,
            )

    def _facade_segment(self, wd, rng, kind, cols, zc, z0, z1, shade, backdrop=True) -> None:
        cv = wd.cv
        ix0, ix1 = int(cols.min()), int(cols.max()) + 1
        zc_full = np.empty(ix1 - ix0, dtype=_F32)
        zc_full[cols - ix0] = zc
        ybot = wd.yh + wd.f * wd.cam_h / zc_full  # ground line per column
        yc = cv._yc[:, None]
        # world height of every pixel on the façade plane: [H, cols]
        yw = wd.cam_h - (yc - wd.yh) * zc_full[None, :] / wd.f
        below = yc < ybot[None, :]
        region_img = cv.img[:, ix0:ix1]
        region_lab = cv.lab[:, ix0:ix1]
        region_inst = cv.inst[:, ix0:ix1]

        def paint(mask, label, color):
            region_lab[mask] = label
            region_inst[mask] = 0
            region_img[mask] = color

        def canopy(base, amp):
            period = rng.uniform(3.0, 9.0)
            phase = rng.uniform(0, 2 * np.pi)
            bumps = np.abs(np.sin(zc_full * (2 * np.pi / period) + phase))
            return base + amp * bumps + rng.uniform(-0.5, 0.5)

        veg_col = _jitter(rng, [[60, 95, 45], [80, 110, 50], [50, 80, 50]][rng.integers(3)], 10) * shade
        if kind == 0:  # building
            height = rng.uniform(6.0, 14.0) if wd.style == 1 else rng.uniform(10.0, 30.0)
            col = self._facade_palette(rng) * shade
            mask = below & (yw < height)
            paint(mask, BUILDING, col)
            floor_h = rng.uniform(2.8, 3.6)
            bay = rng.uniform(1.8, 3.5)
            win_w = rng.uniform(0.35, 0.65)
            win_h = rng.uniform(0.4, 0.65)
            ground_floor = rng.uniform(3.0, 4.5)
            u = (zc_full - z0) / bay
            ufrac = u % 1.0
            inner = (ufrac > (1 - win_w) / 2) & (ufrac < (1 + win_w) / 2) & (zc_full > z0 + 0.8)
            inner &= zc_full < z1 - 0.8
            v = (yw - ground_floor) / floor_h
            win = mask & inner[None, :] & ((v % 1.0) > 0.3) & ((v % 1.0) < 0.3 + win_h)
            win &= (yw > ground_floor) & (yw < height - 1.0)
            if wd.illum == 2 and rng.random() < 0.6:
                glass = np.array([230, 190, 110], dtype=_F32)
            else:
                glass = _jitter(rng, [55, 65, 80], 10) * shade
            iu = np.floor(u).astype(np.int64)[None, :]
            iv = np.floor(v).astype(np.int64)
            hashed = ((iu * 73856093) ^ (iv * 19349663)) % 97
            bright = (0.7 + 0.6 * (hashed[win] / 96.0)).astype(_F32)[:, None]
            region_img[win] = glass * bright
            shop = mask & (yw > 0.4) & (yw < ground_floor - 0.8) & ((u % 1.0) < 0.8)[None, :]
            if rng.random() < 0.7:
                region_img[shop] = _jitter(rng, [45, 45, 50], 12)
            ledge = mask & (yw > height - 0.6)
            region_img[ledge] = col * 0.8
        elif kind == 1:  # hedge / trees
            top = canopy(rng.uniform(2.0, 8.0), rng.uniform(1.0, 5.0))
            paint(below & (yw < top[None, :]), VEG, veg_col)
        elif kind == 2:  # wall, often with trees behind it
            wall_h = rng.uniform(1.0, 3.0) if backdrop else rng.uniform(0.7, 1.8)
            if rng.random() < 0.65 and backdrop:
                top = canopy(wall_h + rng.uniform(1.5, 6.0), rng.uniform(1.0, 3.0))
                paint(below & (yw < top[None, :]) & (yw >= wall_h), VEG, veg_col)
            wcol = _jitter(rng, [[150, 145, 135], [120, 110, 100], [170, 120, 100]][rng.integers(3)], 12)
            wmask = below & (yw < wall_h)
            paint(wmask, WALL, wcol * shade)
            region_img[wmask & (yw > wall_h - 0.15)] = wcol * shade * 1.15
        elif kind == 3:  # fence with vegetation behind
            fence_h = rng.uniform(1.0, 2.2) if backdrop else rng.uniform(0.9, 1.6)
            if rng.random() < 0.7 and backdrop:
                top = canopy(fence_h + rng.uniform(1.0, 5.0), rng.uniform(0.5, 3.0))
                paint(below & (yw < top[None, :]) & (yw >= fence_h), VEG, veg_col)
            fcol = _jitter(rng, [[90, 95, 90], [130, 100, 70], [60, 80, 60], [150, 150, 150]][rng.integers(4)], 10)
            fmask = below & (yw < fence_h)
            behind = region_img.copy()
            paint(fmask, FENCE, fcol * shade)
            pitch = rng.uniform(0.12, 0.3)
            gaps = fmask & ((zc_full / pitch) % 1.0 > 0.45)[None, :] & (yw > 0.15) & (yw < fence_h - 0.12)
            # see-through fence: blend what is behind into the gaps (still labelled fence)
            region_img[gaps] = 0.55 * behind[gaps] + 0.45 * fcol * shade
        # kind == 4: open lot, nothing on the plane

    # -- things -----------------------------------------------------------------------------------
    def _objects(self, wd: _World) -> None:
        """Place every object in metres, then draw far to near."""
        rng = wd.rng
        items: list[tuple[float, Callable[[], None]]] = []
        counters: dict[int, int] = {}

        def new_id(train_id: int) -> int:
            k = counters.get(train_id, 0)
            counters[train_id] = k + 1
            return int(TRAINID_TO_LABELID[train_id]) * 1000 + k

        def add(z: float, fn: Callable[[], None]) -> None:
            if wd.near_z < z < 160.0:
                items.append((z, fn))

        urban = wd.style != 1
        want_bus = rng.random() < 0.25
        want_truck = rng.random() < 0.35
        want_moto = rng.random() < 0.35
        # vehicles in the driving lanes
        lanes = [(x, 1) for x in wd.same_lanes] + [(x, -1) for x in wd.onc_lanes]
        for li, (xl, direction) in enumerate(lanes):
            z = rng.uniform(6.0, 14.0) if abs(xl) < wd.lw / 2 else rng.uniform(2.0, 12.0)
            count = 0
            while z < 90.0 and count < 4:
                u = rng.random()
                if want_bus and li == 0 and z < 45:
                    kind, want_bus = BUS, False
                elif want_truck and z < 50 and u < 0.3:
                    kind, want_truck = TRUCK, False
                elif want_moto and u > 0.8:
                    kind, want_moto = MOTORCYCLE, False
                elif u < 0.06:
                    kind = TRUCK
                elif u < 0.09:
                    kind = BUS
                else:
                    kind = CAR
                if rng.random() < 0.35:  # empty stretch of lane
                    z += rng.uniform(5.0, 30.0)
                    continue
                length = self._add_vehicle(wd, add, new_id, kind, xl, z, direction)
                z += length + rng.uniform(3.0, 18.0) + z * rng.uniform(0.05, 0.4)
                count += 1
        # parked cars
        for xp, direction in ((wd.park_r, 1), (wd.park_l, -1 if rng.random() < 0.6 else 1)):
            if xp is None:
                continue
            z = rng.uniform(2.0, 8.0)
            z_end = rng.uniform(20.0, 70.0)
            while z < z_end:
                kind = TRUCK if rng.random() < 0.06 else CAR
                if rng.random() < 0.3:
                    z += rng.uniform(3.0, 15.0)
                    continue
                length = self._add_vehicle(wd, add, new_id, kind, xp, z, direction, parked=True)
                z += length + rng.uniform(0.5, 2.5)
        # tram / train
        if wd.tram:
            z = rng.uniform(8.0, 45.0)
            self._add_vehicle(wd, add, new_id, TRAIN, wd.tram_x, z, 1 if rng.random() < 0.5 else -1)
        # sidewalk furniture: street lights, trees, signs, traffic lights
        for side in (-1, 1):
            kerb = wd.road_r + wd.verge_r if side > 0 else -(-wd.road_l + wd.verge_l)
            walk = wd.walk_r if side > 0 else wd.walk_l
            if rng.random() < 0.8:
                spacing = rng.uniform(18.0, 35.0)
                z = rng.uniform(3.0, spacing)
                xpole = kerb + side * 0.5
                while z < 140.0:
                    add(z, self._streetlight(wd, xpole, z, side))
                    z += spacing
            if rng.random() < (0.8 if not urban else 0.45):
                spacing = rng.uniform(7.0, 14.0)
                z = rng.uniform(2.0, spacing)
                verge = wd.verge_r if side > 0 else wd.verge_l
                xt = kerb + side * rng.uniform(0.8, 1.5) if verge == 0 else kerb - side * 0.5 * verge
                while z < 120.0:
                    if rng.random() < 0.85:
                        add(z, self._tree(wd, xt + rng.uniform(-0.2, 0.2), z))
                    z += spacing * rng.uniform(0.8, 1.2)
            for _ in range(int(rng.poisson(1.6))):
                z = rng.uniform(3.0, 45.0)
                add(z, self._sign(wd, kerb + side * rng.uniform(0.3, 0.8), z))
            # pedestrians
            n_ped = int(rng.poisson(3.5 if urban else 1.8))
            for _ in range(n_ped):
                z = 3.0 + rng.exponential(14.0)
                x = kerb + side * rng.uniform(0.3, max(walk - 0.3, 0.4))
                add(z, self._person(wd, x, z, new_id(PERSON)))
            if rng.random() < 0.35:  # parked bicycles
                z = rng.uniform(3.0, 25.0)
                for k in range(int(rng.integers(1, 6))):
                    xb = kerb + side * (walk - 0.8)
                    add(z + 0.7 * k, self._bicycle_side(wd, xb, z + 0.7 * k, new_id(BICYCLE), None))
            if rng.random() < 0.12:  # parked motorcycle
                z = rng.uniform(4.0, 30.0)
                add(z, self._motorcycle_side(wd, kerb + side * 1.0, z, new_id(MOTORCYCLE), None))
        # traffic lights at an intersection ahead
        if rng.random() < 0.65:
            z = wd.crosswalk_z + 4.5 if wd.crosswalk_z is not None else rng.uniform(10.0, 50.0)
            for side in (-1, 1):
                if rng.random() < 0.75:
                    kerb = wd.road_r + wd.verge_r if side > 0 else wd.road_l - wd.verge_l
                    add(z, self._traffic_light(wd, kerb + side * 0.4, z, side))
        # cyclists and motorcyclists at the road edge or crossing
        n_cyc = int(rng.poisson(0.9)) + (1 if rng.random() < 0.25 else 0)
        for _ in range(n_cyc):
            z = rng.uniform(4.0, 40.0)
            motor = rng.random() < 0.3
            if rng.random() < 0.5:  # crossing, seen from the side
                x = rng.uniform(wd.road_l, wd.road_r)
                bike = new_id(MOTORCYCLE if motor else BICYCLE)
                rider = new_id(RIDER)
                if motor:
                    add(z, self._motorcycle_side(wd, x, z, bike, rider))
                else:
                    add(z, self._bicycle_side(wd, x, z, bike, rider))
            else:  # riding ahead along the right edge, seen from behind
                x = wd.road_r - (2.3 if wd.park_r else 0.0) - rng.uniform(0.6, 1.2)
                kind = MOTORCYCLE if motor else BICYCLE
                add(z, self._two_wheeler_rear(wd, x, z, kind, new_id(kind), new_id(RIDER)))
        # people on the crosswalk
        if wd.crosswalk_z is not None:
            for _ in range(int(rng.poisson(2.0))):
                z = wd.crosswalk_z + rng.uniform(0.5, 3.5)
                x = rng.uniform(wd.road_l, wd.road_r)
                add(z, self._person(wd, x, z, new_id(PERSON)))
        items.sort(key=lambda t: -t[0])
        for _, fn in items:
            fn()

    # vehicles -------------------------------------------------------------------------------------
    def _add_vehicle(self, wd, add, new_id, kind, xc, z, direction, parked=False) -> float:
        """Queue one vehicle whose near end is at depth ``z``; return the lane length it uses."""
        rng = wd.rng
        z_start = z
        # big vehicles keep their distance: a bus filling the whole frame teaches little
        z_big = 12.0 if abs(xc) < wd.lw / 2 else 7.0
        if kind == CAR:
            length, width, height = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.6)
            if rng.random() < 0.15:  # van
                length, height = rng.uniform(4.8, 5.6), rng.uniform(1.9, 2.3)
        elif kind == TRUCK:
            length, width, height = rng.uniform(6.0, 10.0), 2.45, rng.uniform(2.8, 3.8)
            z = max(z, z_big)
        elif kind == BUS:
            length, width, height = rng.uniform(11.0, 13.0), 2.55, rng.uniform(2.9, 3.3)
            z = max(z, z_big)
        elif kind == TRAIN:
            length, width, height = rng.uniform(25.0, 40.0), 2.4, rng.uniform(3.3, 3.6)
        else:  # MOTORCYCLE in a lane: rider from behind
            x = xc + rng.uniform(-0.6, 0.6)
            add(z, self._two_wheeler_rear(wd, x, z, MOTORCYCLE, new_id(MOTORCYCLE), new_id(RIDER)))
            return 2.2
        x = xc + rng.uniform(-0.25, 0.25) * (0.3 if parked else 1.0)
        inst = new_id(kind)
        add(z, self._vehicle(wd, kind, x, z, length, width, height, direction, inst))
        return length + (z - z_start)

    def _box(self, wd, x0, x1, y0, y1, z0, z1, label, inst, col, shade_side=0.7, shade_top=1.1):
        """Draw the visible faces of an axis-aligned box; near face last."""
        cv = wd.cv
        if x0 > 0:
            xs = x0
        elif x1 < 0:
            xs = x1
        else:
            xs = None
        if xs is not None:
            pts = [wd.proj(xs, y0, z0), wd.proj(xs, y1, z0), wd.proj(xs, y1, z1), wd.proj(xs, y0, z1)]
            cv.fill(cv.poly(pts), label, inst, col * shade_side)
        if y1 < wd.cam_h:
            pts = [wd.proj(x0, y1, z0), wd.proj(x1, y1, z0), wd.proj(x1, y1, z1), wd.proj(x0, y1, z1)]
            cv.fill(cv.poly(pts), label, inst, np.minimum(col * shade_top, 255))
        a = wd.proj(x0, y1, z0)
        b = wd.proj(x1, y0, z0)
        cv.fill(cv.rect(a[0], b[0], a[1], b[1]), label, inst, col)
        return xs

    def _vehicle(self, wd, kind, xc, z0, length, width, height, direction, inst):
        rng = wd.rng
        if kind == CAR:
            paint = _jitter(rng, _CAR_PAINTS[rng.integers(len(_CAR_PAINTS))], 8)
        elif kind == TRUCK:
            paint = _jitter(rng, [[230, 230, 230], [200, 60, 40], [60, 90, 160], [200, 200, 190]][rng.integers(4)], 15)
        else:
            paint = _jitter(rng, _TRANSIT[rng.integers(len(_TRANSIT))], 10)
        glass = _jitter(rng, [40, 48, 58], 6)
        tyre = np.array([25, 25, 27], dtype=_F32)
        lamp = np.array([200, 30, 30], _F32) if direction > 0 else np.array([240, 240, 215], _F32)
        body_frac = rng.uniform(0.55, 0.65)
        two_part_truck = rng.random() < 0.6
        wheel_r = 0.33 if kind == CAR else 0.5

        def draw():
            cv = wd.cv
            x0, x1 = xc - width / 2, xc + width / 2
            z1 = z0 + length
            foot = [wd.proj(x0 - 0.15, 0.0, z0 - 0.3), wd.proj(x1 + 0.15, 0.0, z0 - 0.3),
                    wd.proj(x1 + 0.15, 0.0, z1), wd.proj(x0 - 0.15, 0.0, z1)]
            cv.darken(cv.poly(foot), 0.45)
            if kind == CAR:
                body_top = height * body_frac
                xs = self._box(wd, x0, x1, 0.18, body_top, z0, z1, CAR, inst, paint)
                inset = 0.12
                cz0 = z0 + length * (0.28 if direction > 0 else 0.3)
                cz1 = z1 - length * 0.28
                self._box(wd, x0 + inset, x1 - inset, body_top, height, cz0, cz1, CAR, inst,
                          glass, shade_side=1.0, shade_top=1.0)
                # roof and window pillars in body colour
                a = wd.proj(x0 + inset, height, cz0)
                b = wd.proj(x1 - inset, height - 0.08, cz0)
                cv.fill(cv.rect(a[0], b[0], a[1], b[1]), CAR, inst, paint)
                if wd.scale(z0) * 0.25 < 1.0:  # too small for details
                    return
                # wheels on the near face corners and on the visible side
                for xw in (x0 + 0.05, x1 - 0.3):
                    a = wd.proj(xw, 0.45, z0 + 0.3)
                    b = wd.proj(xw + 0.25, 0.0, z0 + 0.3)
                    cv.fill(cv.rect(a[0], b[0], a[1], b[1]), CAR, inst, tyre)
                if xs is not None:
                    for zw in (z0 + 0.8, z1 - 0.8):
                        cx, cy = wd.proj(xs, wheel_r, zw)
                        s = wd.scale(zw)
                        squash = min(1.0, abs(xs) / zw * 2.5)
                        cv.fill(cv.ellipse(cx, cy, wheel_r * s * squash, wheel_r * s), CAR, inst, tyre)
                # lamps and plate on the near face
                for xl0 in (x0 + 0.1, x1 - 0.35):
                    a = wd.proj(xl0, 0.85, z0)
                    b = wd.proj(xl0 + 0.25, 0.7, z0)
                    cv.fill(cv.rect(a[0], b[0], a[1], b[1], min_px=0.5), CAR, inst, lamp)
                a = wd.proj(xc - 0.26, 0.55, z0)
                b = wd.proj(xc + 0.26, 0.44, z0)
                cv.fill(cv.rect(a[0], b[0], a[1], b[1], min_px=0.5), CAR, inst, np.full(3, 225.0, _F32))
            else:
                label = kind
                y0 = 0.35 if kind != TRAIN else 0.3
                if kind == TRUCK and two_part_truck:
                    # cab and cargo box: the cab leads
                    cab_len = 2.2
                    if direction > 0:
                        self._box(wd, x0, x1, y0, height, z0, z1 - cab_len, label, inst, paint)
                        self._box(wd, x0 + 0.05, x1 - 0.05, y0, 2.9, z1 - cab_len, z1, label, inst,
                                  paint * 0.8)
                    else:
                        self._box(wd, x0 + 0.05, x1 - 0.05, y0, 2.9, z0, z0 + cab_len, label, inst,
                                  paint * 0.8)
                        a = wd.proj(x0 + 0.15, 2.7, z0)
                        b = wd.proj(x1 - 0.15, 1.7, z0)
                        cv.fill(cv.rect(a[0], b[0], a[1], b[1]), label, inst, glass)
                else:
                    xs = self._box(wd, x0, x1, y0, height, z0, z1, label, inst, paint)
                    if kind in (BUS, TRAIN) and xs is not None:
                        # window band along the visible side
                        pts = [wd.proj(xs, 1.2, z0 + 0.6), wd.proj(xs, height - 0.4, z0 + 0.6),
                               wd.proj(xs, height - 0.4, z1 - 0.6), wd.proj(xs, 1.2, z1 - 0.6)]
                        cv.fill(cv.poly(pts), label, inst, glass)
                    top_win = height - 0.3
                    a = wd.proj(x0 + 0.2, top_win, z0)
                    b = wd.proj(x1 - 0.2, 1.3 if direction < 0 else height * 0.55, z0)
                    if kind != TRUCK:
                        cv.fill(cv.rect(a[0], b[0], a[1], b[1]), label, inst, glass)
                for xw in (x0 + 0.05, x1 - 0.35):
                    a = wd.proj(xw, y0 + 0.2, z0 + 0.5)
                    b = wd.proj(xw + 0.3, 0.0, z0 + 0.5)
                    if kind != TRAIN:
                        cv.fill(cv.rect(a[0], b[0], a[1], b[1]), label, inst, tyre)
                for xl0 in (x0 + 0.1, x1 - 0.4):
                    a = wd.proj(xl0, 0.95, z0)
                    b = wd.proj(xl0 + 0.3, 0.75, z0)
                    cv.fill(cv.rect(a[0], b[0], a[1], b[1], min_px=0.5), label, inst, lamp)

        return draw

    # people and two-wheelers ---------------------------------------------------------------------
    def _person_colors(self, rng):
        top = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 12)
        bottom = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 12)
        skin = _SKIN[rng.integers(len(_SKIN))]
        hair = _jitter(rng, [[30, 25, 20], [90, 60, 35], [170, 140, 90], [120, 120, 120]][rng.integers(4)], 8)
        return top, bottom, skin, hair

    def _person(self, wd, x, z, inst):
        rng = wd.rng
        height = rng.uniform(1.5, 1.95) if rng.random() > 0.1 else rng.uniform(1.0, 1.4)
        stride = rng.uniform(-0.3, 0.3)
        swing = rng.uniform(-0.2, 0.2)
        top, bottom, skin, hair = self._person_colors(rng)
        bag = rng.random() < 0.25
        facing_camera = rng.random() < 0.5

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            gx, gy = wd.proj(x, 0.0, z)

            def p(u, v):  # body coordinates in metres (u right, v up) -> pixels
                return gx + u * s, gy - v * s

            cv.darken(cv.ellipse(gx, gy, 0.35 * s, 0.08 * s), 0.6)
            hip = 0.52 * height
            shoulder = 0.82 * height
            # legs
            for sgn in (-1, 1):
                foot = p(sgn * 0.08 + stride * sgn, 0.0)
                hip_pt = p(sgn * 0.08, hip)
                cv.fill(cv.segment(*hip_pt, *foot, 0.075 * s), PERSON, inst, bottom)
            # torso
            pts = [p(-0.2, shoulder), p(0.2, shoulder), p(0.16, hip - 0.05), p(-0.16, hip - 0.05)]
            cv.fill(cv.poly(pts), PERSON, inst, top)
            # arms
            for sgn in (-1, 1):
                sh = p(sgn * 0.2, shoulder - 0.04)
                hand = p(sgn * 0.24 + swing * sgn, hip - 0.02)
                cv.fill(cv.segment(*sh, *hand, 0.055 * s), PERSON, inst, top * 0.9)
                cv.fill(cv.ellipse(*hand, 0.05 * s, 0.05 * s), PERSON, inst, skin)
            if bag:
                cv.fill(cv.corners(p(0.18, hip + 0.15), p(0.34, hip - 0.15)), PERSON, inst, top * 0.5)
            # head
            cx, cy = p(0.0, height - 0.115)
            cv.fill(cv.ellipse(cx, cy, 0.09 * s, 0.115 * s), PERSON, inst, skin if facing_camera else hair)
            if facing_camera:
                cv.fill(cv.ellipse(cx, cy - 0.06 * s, 0.09 * s, 0.06 * s), PERSON, inst, hair)

        return draw

    def _rider(self, wd, s, p, inst, seat, bar, pedal, helmet, colors):
        """Seated rider: hip at ``seat``, hands at ``bar``, feet at ``pedal`` (body coords)."""
        cv = wd.cv
        top, bottom, _skin, hair = colors
        shoulder = (seat[0] + 0.45 * (bar[0] - seat[0]), seat[1] + 0.55)
        knee = (0.5 * (seat[0] + pedal[0]) + 0.12 * np.sign(bar[0] - seat[0]), 0.5 * (seat[1] + pedal[1]) + 0.12)
        cv.fill(cv.segment(*p(*seat), *p(*knee), 0.08 * s), RIDER, inst, bottom)
        cv.fill(cv.segment(*p(*knee), *p(*pedal), 0.065 * s), RIDER, inst, bottom)
        cv.fill(cv.segment(*p(*seat), *p(*shoulder), 0.15 * s), RIDER, inst, top)
        cv.fill(cv.segment(*p(*shoulder), *p(*bar), 0.05 * s), RIDER, inst, top * 0.9)
        head = p(shoulder[0] + 0.05 * np.sign(bar[0] - seat[0]), shoulder[1] + 0.2)
        col = helmet if helmet is not None else hair
        cv.fill(cv.ellipse(*head, 0.11 * s, 0.12 * s), RIDER, inst, col)

    def _bicycle_side(self, wd, x, z, inst, rider_inst):
        rng = wd.rng
        frame = _jitter(rng, [[30, 30, 30], [150, 20, 20], [30, 60, 130], [200, 200, 200]][rng.integers(4)], 10)
        d = 1.0 if rng.random() < 0.5 else -1.0
        colors = self._person_colors(rng)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            gx, gy = wd.proj(x, 0.0, z)

            def p(u, v):
                return gx + d * u * s, gy - v * s

            r = 0.34
            for u in (-0.52, 0.52):
                cx, cy = p(u, r)
                cv.fill(cv.ring(cx, cy, r * s, 0.06 * s), BICYCLE, inst, np.array([25, 25, 25], _F32))
            joints = [(-0.52, r), (0.0, 0.3), (-0.12, 0.85), (0.38, 0.82), (0.52, r)]
            for a, b in ((0, 1), (1, 2), (2, 0), (2, 3), (1, 3), (3, 4)):
                cv.fill(cv.segment(*p(*joints[a]), *p(*joints[b]), 0.025 * s), BICYCLE, inst, frame)
            cv.fill(cv.segment(*p(0.3, 1.0), *p(0.42, 0.98), 0.03 * s), BICYCLE, inst, frame * 0.5)
            cv.fill(cv.segment(*p(-0.2, 0.9), *p(-0.04, 0.9), 0.035 * s), BICYCLE, inst, frame * 0.3)
            if rider_inst is not None:
                self._rider(wd, s, p, rider_inst, (-0.12, 0.92), (0.36, 1.0), (0.05, 0.25), None, colors)

        return draw

    def _motorcycle_side(self, wd, x, z, inst, rider_inst):
        rng = wd.rng
        body = _jitter(rng, [[30, 30, 30], [170, 20, 20], [220, 220, 220], [20, 50, 140]][rng.integers(4)], 10)
        d = 1.0 if rng.random() < 0.5 else -1.0
        helmet = _jitter(rng, [[20, 20, 20], [230, 230, 230], [180, 30, 30]][rng.integers(3)], 10)
        colors = self._person_colors(rng)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            gx, gy = wd.proj(x, 0.0, z)

            def p(u, v):
                return gx + d * u * s, gy - v * s

            r = 0.31
            for u in (-0.7, 0.7):
                cx, cy = p(u, r)
                cv.fill(cv.ellipse(cx, cy, r * s, r * s), MOTORCYCLE, inst, np.array([22, 22, 24], _F32))
                cv.fill(cv.ellipse(cx, cy, 0.12 * s, 0.12 * s), MOTORCYCLE, inst, np.array([150, 150, 155], _F32))
            pts = [p(-0.55, 0.45), p(0.45, 0.4), p(0.55, 0.8), p(0.2, 0.95), p(-0.6, 0.85)]
            cv.fill(cv.poly(pts), MOTORCYCLE, inst, body)
            cv.fill(cv.segment(*p(0.45, 0.9), *p(0.7, r), 0.05 * s), MOTORCYCLE, inst, body * 0.6)
            cv.fill(cv.segment(*p(0.35, 1.05), *p(0.5, 1.05), 0.04 * s), MOTORCYCLE, inst, body * 0.4)
            if rider_inst is not None:
                self._rider(wd, s, p, rider_inst, (-0.3, 0.95), (0.42, 1.05), (0.05, 0.4), helmet, colors)

        return draw

    def _two_wheeler_rear(self, wd, x, z, kind, inst, rider_inst):
        """Bicycle or motorcycle ridden away from the camera: narrow wheel, bars, rider's back."""
        rng = wd.rng
        body = _jitter(rng, [[30, 30, 30], [150, 30, 30], [60, 60, 70]][rng.integers(3)], 10)
        helmet = _jitter(rng, [[20, 20, 20], [230, 230, 230]][rng.integers(2)], 8) if kind == MOTORCYCLE else None
        colors = self._person_colors(rng)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            gx, gy = wd.proj(x, 0.0, z)

            def p(u, v):
                return gx + u * s, gy - v * s

            if kind == MOTORCYCLE:
                cv.fill(cv.corners(p(-0.09, 0.65), p(0.09, 0.0)), kind, inst, np.array([22, 22, 24], _F32))
                cv.fill(cv.poly([p(-0.3, 0.95), p(0.3, 0.95), p(0.22, 0.45), p(-0.22, 0.45)]), kind, inst, body)
                cv.fill(cv.corners(p(-0.12, 0.8), p(0.12, 0.68)), kind, inst, np.array([200, 30, 30], _F32))
                bar = 1.05
            else:
                cv.fill(cv.corners(p(-0.025, 0.68), p(0.025, 0.0)), kind, inst, np.array([25, 25, 25], _F32))
                bar = 1.0
            cv.fill(cv.segment(*p(-0.3, bar), *p(0.3, bar), 0.025 * s), kind, inst, body * 0.5)
            top, bottom, _skin, hair = colors
            seat = 0.92 if kind == BICYCLE else 0.95
            for sgn in (-1, 1):
                cv.fill(cv.segment(*p(sgn * 0.1, seat), *p(sgn * 0.14, 0.3), 0.07 * s), RIDER, rider_inst, bottom)
            cv.fill(cv.poly([p(-0.2, seat + 0.6), p(0.2, seat + 0.6), p(0.16, seat), p(-0.16, seat)]),
                    RIDER, rider_inst, top)
            for sgn in (-1, 1):
                cv.fill(cv.segment(*p(sgn * 0.2, seat + 0.55), *p(sgn * 0.28, bar), 0.05 * s), RIDER, rider_inst, top * 0.9)
            head = helmet if helmet is not None else hair
            cv.fill(cv.ellipse(*p(0.0, seat + 0.75), 0.1 * s, 0.12 * s), RIDER, rider_inst, head)

        return draw

    # street furniture --------------------------------------------------------------------------
    def _streetlight(self, wd, x, z, side):
        rng = wd.rng
        col = _jitter(rng, [[90, 92, 95], [40, 60, 50], [130, 130, 128]][rng.integers(3)], 8)
        height = rng.uniform(6.0, 9.0)
        arm = rng.uniform(0.8, 2.2)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            a = wd.proj(x - 0.09, height, z)
            b = wd.proj(x + 0.09, 0.0, z)
            cv.fill(cv.rect(a[0], b[0], a[1], b[1]), POLE, 0, col)
            a = wd.proj(x, height, z)
            b = wd.proj(x - side * arm, height, z)
            cv.fill(cv.segment(a[0], a[1], b[0], b[1], 0.06 * s), POLE, 0, col)
            cv.fill(cv.ellipse(b[0], b[1] + 0.05 * s, 0.3 * s, 0.1 * s), POLE, 0, col * 0.8)

        return draw

    def _tree(self, wd, x, z):
        rng = wd.rng
        trunk_h = rng.uniform(1.8, 3.5)
        crown = rng.uniform(1.3, 3.0)
        leaves = _jitter(rng, [[55, 90, 40], [75, 110, 45], [45, 75, 40], [95, 115, 55]][rng.integers(4)], 10)
        if wd.shade_side and np.sign(x) == wd.shade_side:
            leaves = leaves * 0.7
        blobs = [(rng.uniform(-0.6, 0.6) * crown, rng.uniform(-0.4, 0.5) * crown,
                  crown * rng.uniform(0.6, 0.9), crown * rng.uniform(0.5, 0.8),
                  rng.uniform(0.8, 1.15)) for _ in range(4)]

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            a = wd.proj(x - 0.12, trunk_h + crown * 0.5, z)
            b = wd.proj(x + 0.12, 0.0, z)
            cv.fill(cv.rect(a[0], b[0], a[1], b[1]), VEG, 0, np.array([80, 65, 50], _F32))
            cx, cy = wd.proj(x, trunk_h + crown, z)
            for du, dv, rx, ry, k in blobs:
                cv.fill(cv.ellipse(cx + du * s, cy - dv * s, rx * s, ry * s), VEG, 0, leaves * k)

        return draw

    def _sign(self, wd, x, z):
        rng = wd.rng
        height = rng.uniform(2.2, 3.2)
        shape = int(rng.integers(4))  # circle, triangle, square, rectangle
        back = rng.random() < 0.3
        fg = [[200, 30, 30], [30, 70, 170], [230, 230, 230], [230, 190, 30]][rng.integers(4)]
        col = np.array([150, 150, 155] if back else fg, _F32)
        size = rng.uniform(0.6, 0.9)
        pole_col = _jitter(rng, [120, 122, 125], 10)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            a = wd.proj(x - 0.04, height, z)
            b = wd.proj(x + 0.04, 0.0, z)
            cv.fill(cv.rect(a[0], b[0], a[1], b[1]), POLE, 0, pole_col)
            cx, cy = wd.proj(x, height + size * 0.45, z)
            r = size * s / 2
            if shape == 0:
                reg = cv.ellipse(cx, cy, r, r)
            elif shape == 1:
                reg = cv.poly([(cx - r, cy - r * 0.8), (cx + r, cy - r * 0.8), (cx, cy + r)])
            elif shape == 2:
                reg = cv.rect(cx - r, cx + r, cy - r, cy + r)
            else:
                reg = cv.rect(cx - 1.4 * r, cx + 1.4 * r, cy - 0.7 * r, cy + 0.7 * r)
            cv.fill(reg, SIGN, 0, col)
            if not back and shape != 2:
                cv.fill(cv.ellipse(cx, cy, 0.55 * r, 0.55 * r), SIGN, 0, np.array([235, 235, 235], _F32))

        return draw

    def _traffic_light(self, wd, x, z, side):
        rng = wd.rng
        height = rng.uniform(2.8, 3.8)
        housing = _jitter(rng, [[25, 25, 28], [40, 55, 45], [200, 170, 40]][rng.integers(3)], 6)
        lit = int(rng.integers(3))
        overhead = rng.random() < 0.35
        arm = rng.uniform(3.0, 6.0)
        pole_col = _jitter(rng, [100, 100, 105], 10)

        def draw():
            cv = wd.cv
            s = wd.scale(z)
            top = 6.0 if overhead else height
            a = wd.proj(x - 0.08, top, z)
            b = wd.proj(x + 0.08, 0.0, z)
            cv.fill(cv.rect(a[0], b[0], a[1], b[1]), POLE, 0, pole_col)
            xl = x
            y_top = height + 1.0
            if overhead:
                xl = x - side * arm
                a = wd.proj(x, 5.9, z)
                b = wd.proj(xl, 5.9, z)
                cv.fill(cv.segment(a[0], a[1], b[0], b[1], 0.06 * s), POLE, 0, pole_col)
                y_top = 5.85
            a = wd.proj(xl - 0.22, y_top, z)
            b = wd.proj(xl + 0.22, y_top - 1.05, z)
            cv.fill(cv.rect(a[0], b[0], a[1], b[1]), LIGHT, 0, housing)
            lamps = ([230, 40, 30], [240, 170, 20], [40, 220, 90])
            for k in range(3):
                cx, cy = wd.proj(xl, y_top - 0.18 - 0.32 * k, z)
                col = np.array(lamps[k], _F32) if k == lit else np.array([50, 50, 50], _F32)
                cv.fill(cv.ellipse(cx, cy, 0.1 * s, 0.1 * s), LIGHT, 0, col)

        return draw

    def _bonnet(self, wd) -> None:
        """Ego-vehicle bonnet along the bottom edge, labelled ignore as in Cityscapes."""
        cv, rng = wd.cv, wd.rng
        depth = rng.uniform(0.06, 0.12) * cv.h
        bulge = rng.uniform(0.2, 0.5) * depth
        u = (cv._xc - cv.w / 2) / (cv.w / 2)
        top = cv.h - depth + bulge * u * u  # [W]
        mask = cv._yc[:, None] >= top[None, :]
        col = _jitter(rng, [[30, 30, 35], [200, 200, 205], [70, 75, 90]][rng.integers(3)], 6)
        cv.lab[mask] = IGNORE_INDEX
        cv.inst[mask] = 0
        cv.img[mask] = col

    # -- photometry ------------------------------------------------------------------------------
    def _finish(self, cv: _Canvas, rng: np.random.Generator, light: float) -> np.ndarray:
        img = cv.img
        h, w = cv.h, cv.w
        # light separable blur so edges are not perfectly aliased; weaker on small canvases,
        # where one pixel is a larger share of every object
        a = self._blur
        tmp = np.empty_like(img)
        np.add(img[:, :-2], img[:, 2:], out=tmp[:, 1:-1])
        tmp[:, 1:-1] *= a
        tmp[:, 1:-1] += (1.0 - 2.0 * a) * img[:, 1:-1]
        tmp[:, 0] = img[:, 0]
        tmp[:, -1] = img[:, -1]
        np.add(tmp[:-2], tmp[2:], out=img[1:-1])
        img[1:-1] *= a
        img[1:-1] += (1.0 - 2.0 * a) * tmp[1:-1]
        img[0] = tmp[0]
        img[-1] = tmp[-1]
        lab = cv.lab
        # texture: uniform noise (cheaper than Gaussian; sqrt(12) gives unit variance)
        tex = (rng.random((h, w), dtype=_F32) - 0.5) * (_FINE_AMP[lab] * 3.46)
        # leaf-sized blocks: 2 px at the default width, scaled with the image
        k = self._block
        block = rng.random((h // k, w // k), dtype=_F32) - 0.5
        if k > 1:
            block = np.repeat(np.repeat(block, k, axis=0), k, axis=1)
        block *= _BLOCK_AMP[lab] * 3.46
        tex += block
        # slow illumination field (vignetting, uneven light), global gain and colour cast
        field = self._light_h @ rng.normal(0.0, 0.06, (4, 6)).astype(_F32) @ self._light_w.T
        field += 1.0
        field *= np.float32(light)
        img += tex[..., None]
        img *= field[..., None]
        img *= (1.0 + rng.normal(0.0, 0.04, 3)).astype(_F32)
        out = img
        return np.clip(out, 0, 255).astype(np.uint8)


class SplitView:
    """A fixed range of scene indices of a :class:`SyntheticStreetScenes` generator.

    ``view[i]`` is ``generator.scene(range[i])``; ``view.batch(slice | indices)`` stacks scenes.
    """

    def __init__(self, generator: SyntheticStreetScenes, indices: range, name: str = ""):
        self.generator = generator
        self.indices = indices
        self.name = name
        self.num_classes = generator.num_classes
        self.class_names = generator.class_names
        self.palette = generator.palette
        self.ignore_index = generator.ignore_index

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Scene:
        (j,) = resolve_indices(i, len(self))
        return self.generator.scene(self.indices[j])

    def batch(self, selection: slice | Sequence[int] | np.ndarray) -> SceneBatch:
        return self.generator.batch([self.indices[j] for j in resolve_indices(selection, len(self))])
