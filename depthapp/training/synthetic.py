"""Procedural stereo pairs with exact ground truth, so a network can be trained with nothing
downloaded.

A scene is a stack of textured planar surfaces: a slanted background plane that covers every
pixel and a random number of objects (rectangles, discs, smooth blobs, slanted patches) at
random disparities. Each surface is described in *left-image* coordinates by

    disparity  d(x, y) = a + b (x - cx) + c (y - cy)     (a plane in disparity space)
    support    mask(x, y)                                  (a continuous shape)
    texture    t(x, y) -> RGB                              (a continuous procedural function)

The left view shows, at every pixel, the surface with the largest disparity there (z-buffer).
The right view is rendered exactly, not warped: right pixel ``xr`` sees the point of surface S
whose left coordinate solves ``xr = x - d_S(x, y)``, i.e. ``x = (xr + a - b cx + c (y - cy)) /
(1 - b)``; the mask and the texture are evaluated there, and the z-buffer again keeps the largest
disparity. A left pixel is *occluded* when the right view shows another surface at ``x - d``
(or ``x - d`` leaves the image).

Textures are continuous functions (fractal value noise with Catmull-Rom interpolation, stripes,
soft checkers, smooth gradients, mixed and mapped between two random colours), so both views
sample one and the same signal at their own coordinates. Photometric changes (gain, bias, gamma,
noise; per view) come last. Everything is a pure function of the seed. numpy only, no IO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

import numpy as np

Seed = Union[int, Sequence[int]]


@dataclass(frozen=True)
class SyntheticConfig:
    """What scenes look like.

    Attributes:
        height, width: image size in pixels.
        max_disparity: the largest ground-truth disparity produced (exclusive); a network with
            ``D`` disparity levels needs ``max_disparity <= D - 1``.
        min_disparity: the smallest disparity of the background plane.
        objects: inclusive range of the number of objects in front of the background.
        max_slant: largest ``|b|`` and ``|c|`` of a plane (disparity change per pixel).
        photometric: apply random per-view gain, bias, gamma and noise (off: both views see
            exactly the same radiance, as the consistency tests need).
        textureless_fraction: share of surfaces with almost no texture (smooth gradients), so a
            network learns to fill in from context.
    """

    height: int = 256
    width: int = 512
    max_disparity: float = 64.0
    min_disparity: float = 0.0
    objects: tuple[int, int] = (4, 14)
    max_slant: float = 0.25
    photometric: bool = True
    textureless_fraction: float = 0.1

    def __post_init__(self):
        if self.height < 8 or self.width < 8:
            raise ValueError(f"synthetic images must be at least 8x8, got {self.width}x{self.height}")
        if not 0 <= self.min_disparity < self.max_disparity:
            raise ValueError(f"need 0 <= min_disparity < max_disparity, got "
                             f"{self.min_disparity}, {self.max_disparity}")
        if not 0 <= self.max_slant < 0.9:
            raise ValueError(f"max_slant must be in [0, 0.9), got {self.max_slant}")
        if self.objects[0] < 0 or self.objects[1] < self.objects[0]:
            raise ValueError(f"objects must be a range (low, high), got {self.objects}")


@dataclass
class SyntheticSample:
    """One rendered pair.

    Attributes:
        left, right: ``(H, W, 3)`` float32 RGB in [0, 1].
        disparity: ``(H, W)`` float32 exact disparity of the left view, defined everywhere.
        occluded: ``(H, W)`` bool, left pixels whose point the right view does not show
            (hidden behind a nearer surface, or outside the right image).
        right_disparity: ``(H, W)`` float32 exact disparity of the right view (right ``x``
            matches left ``x + d``).
        left_surface, right_surface: ``(H, W)`` int16 index of the visible surface.
    """

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    occluded: np.ndarray
    right_disparity: np.ndarray
    left_surface: np.ndarray
    right_surface: np.ndarray

    def to_pair(self, name: str = "synthetic"):
        """A :class:`~depthapp.data.StereoPair` (uint8 images, dense GT)."""
        from ..data import StereoPair

        return StereoPair(left=to_uint8(self.left), right=to_uint8(self.right), name=name,
                          gt_disparity=self.disparity.copy())


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- interpolation

def _catmull_rom_weights(fraction: np.ndarray) -> tuple[np.ndarray, ...]:
    t = fraction
    t2, t3 = t * t, t * t * t
    return (0.5 * (-t3 + 2 * t2 - t), 0.5 * (3 * t3 - 5 * t2 + 2),
            0.5 * (-3 * t3 + 4 * t2 + t), 0.5 * (t3 - t2))


def catmull_rom(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample the periodic ``(Gh, Gw)`` ``grid`` at continuous grid coordinates ``u`` (column)
    and ``v`` (row), C1-continuous; ``u`` and ``v`` have any (equal) shape."""
    gh, gw = grid.shape
    iu = np.floor(u)
    iv = np.floor(v)
    wu = _catmull_rom_weights((u - iu).astype(np.float32))
    wv = _catmull_rom_weights((v - iv).astype(np.float32))
    iu = iu.astype(np.int64)
    iv = iv.astype(np.int64)
    cols = [(iu + k - 1) % gw for k in range(4)]
    result = np.zeros(u.shape, dtype=np.float32)
    for j in range(4):
        rows = (iv + j - 1) % gh
        row = wu[0] * grid[rows, cols[0]]
        for k in range(1, 4):
            row += wu[k] * grid[rows, cols[k]]
        result += wv[j] * row
    return result


# ----------------------------------------------------------------------------- textures

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class _Texture:
    """A continuous RGB function of left-image coordinates."""

    def __init__(self, rng: np.random.Generator, textureless: bool):
        self.components = []
        if textureless:
            self.components.append(("gradient", self._gradient(rng), 1.0))
            self.contrast = rng.uniform(0.05, 0.25)
        else:
            kinds = ["noise", "noise", "stripes", "checker", "gradient"]
            count = int(rng.integers(1, 3))
            for kind in rng.choice(kinds, size=count, replace=False):
                maker = getattr(self, f"_{kind}")
                self.components.append((str(kind), maker(rng), float(rng.uniform(0.5, 1.0))))
            if not any(kind == "noise" for kind, _, _ in self.components) and rng.random() < 0.7:
                # Fine noise on top of regular patterns keeps them from being ambiguous.
                self.components.append(("noise", self._noise(rng, finest=1.5, octaves=2), 0.3))
            self.contrast = rng.uniform(0.6, 1.3)
        self.colour0 = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        self.colour1 = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        for _ in range(8):  # two colours of clearly different brightness
            if abs(float((self.colour1 - self.colour0) @ _LUMA)) >= 0.35:
                break
            self.colour1 = rng.uniform(0.0, 1.0, size=3).astype(np.float32)

    @staticmethod
    def _noise(rng, finest: Optional[float] = None, octaves: Optional[int] = None):
        finest = float(rng.uniform(1.5, 4.0)) if finest is None else finest
        octaves = int(rng.integers(2, 5)) if octaves is None else octaves
        layers = []
        for octave in range(octaves):
            cell = finest * 2.0 ** octave
            grid = rng.standard_normal((64, 64)).astype(np.float32)
            layers.append((cell, grid, 0.5 ** (0.5 * octave)))
        return layers, float(rng.uniform(0, 2 * np.pi))

    @staticmethod
    def _stripes(rng):
        period = float(rng.uniform(4.0, 24.0))
        angle = float(rng.uniform(0, np.pi))
        return period, angle, float(rng.uniform(0, 2 * np.pi))

    @staticmethod
    def _checker(rng):
        size = float(rng.uniform(4.0, 24.0))
        angle = float(rng.uniform(0, np.pi / 2))
        return size, angle, rng.uniform(0, size, size=2)

    @staticmethod
    def _gradient(rng):
        angle = float(rng.uniform(0, 2 * np.pi))
        scale = float(rng.uniform(100.0, 600.0))
        return angle, scale, float(rng.uniform(0, 1))

    def intensity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Scalar texture in roughly [0, 1] at left coordinates ``x``, ``y`` (same shapes)."""
        total = np.zeros(x.shape, dtype=np.float32)
        weight_sum = 0.0
        for kind, params, weight in self.components:
            if kind == "noise":
                layers, rotation = params
                # Rotate the lattice so noise has no preferred axis.
                cos, sin = np.cos(rotation), np.sin(rotation)
                u0, v0 = cos * x - sin * y, sin * x + cos * y
                value = np.zeros(x.shape, dtype=np.float32)
                power = 0.0
                for cell, grid, amplitude in layers:
                    value += amplitude * catmull_rom(grid, u0 / cell, v0 / cell)
                    power += amplitude ** 2
                # Interpolated unit-variance noise has a standard deviation of about 0.7.
                value = 0.5 + 0.3 * value / (0.7 * np.sqrt(power))
            elif kind == "stripes":
                period, angle, phase = params
                value = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * x + np.sin(angle) * y) / period + phase)
            elif kind == "checker":
                size, angle, offset = params
                u = np.cos(angle) * x + np.sin(angle) * y + offset[0]
                v = -np.sin(angle) * x + np.cos(angle) * y + offset[1]
                # tanh of a product of sines: a checkerboard with soft (band-limited) edges.
                value = 0.5 + 0.5 * np.tanh(3.0 * np.sin(np.pi * u / size) * np.sin(np.pi * v / size))
            else:
                angle, scale, phase = params
                value = 0.5 + 0.5 * np.sin((np.cos(angle) * x + np.sin(angle) * y) / scale + phase)
            total += weight * value.astype(np.float32)
            weight_sum += weight
        return total / weight_sum

    def rgb(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(N, 3)`` colours at points ``x``, ``y`` of shape ``(N,)``."""
        t = self.intensity(x, y)
        t = 0.5 + self.contrast * (t - 0.5)
        return self.colour0[None, :] + np.clip(t, 0, 1)[:, None] * (self.colour1 - self.colour0)[None, :]


# ----------------------------------------------------------------------------- surfaces

class _Surface:
    """A planar surface in disparity space with a continuous support and texture."""

    def __init__(self, a: float, b: float, c: float, cx: float, cy: float, shape: str,
                 shape_params, texture: _Texture, extent: Optional[tuple[float, float]] = None):
        self.a, self.b, self.c, self.cx, self.cy = a, b, c, cx, cy
        self.shape = shape
        self.shape_params = shape_params
        self.texture = texture
        # Half width and height of a box around (cx, cy) that holds the support (None: unbounded).
        self.extent = extent

    def bounds(self, height: int, width: int, right_view: bool) -> tuple[slice, slice]:
        """Rows and columns of the view that can show this surface."""
        if self.extent is None:
            return slice(0, height), slice(0, width)
        half_w, half_h = self.extent
        x0, x1 = self.cx - half_w, self.cx + half_w
        if right_view:  # xr = x - d, with d taken at the box's corners (d is planar)
            ds = [self.disparity(x, y) for x in (x0, x1) for y in (self.cy - half_h, self.cy + half_h)]
            x0, x1 = x0 - max(ds), x1 - min(ds)
        rows = slice(int(np.clip(np.floor(self.cy - half_h), 0, height)),
                     int(np.clip(np.ceil(self.cy + half_h) + 1, 0, height)))
        cols = slice(int(np.clip(np.floor(x0) - 1, 0, width)), int(np.clip(np.ceil(x1) + 2, 0, width)))
        return rows, cols

    def disparity(self, x, y):
        return self.a + self.b * (x - self.cx) + self.c * (y - self.cy)

    def left_x_from_right(self, xr, y):
        """Solve ``xr = x - d(x, y)`` for the left coordinate ``x``."""
        return (xr + self.a - self.b * self.cx + self.c * (y - self.cy)) / (1.0 - self.b)

    def mask(self, x, y) -> np.ndarray:
        if self.shape == "full":
            return np.ones(x.shape, dtype=bool)
        if self.shape == "rect":
            x0, y0, half_w, half_h, angle = self.shape_params
            cos, sin = np.cos(angle), np.sin(angle)
            u = cos * (x - x0) + sin * (y - y0)
            v = -sin * (x - x0) + cos * (y - y0)
            return (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
        if self.shape == "disc":
            x0, y0, rx, ry = self.shape_params
            return ((x - x0) / rx) ** 2 + ((y - y0) / ry) ** 2 <= 1.0
        x0, y0, radius, grid, cell = self.shape_params  # blob
        r2 = ((x - x0) ** 2 + (y - y0) ** 2) / radius ** 2
        field = 1.0 - r2 + 0.45 * catmull_rom(grid, (x - x0) / cell, (y - y0) / cell)
        return (field > 0) & (r2 < 2.25)


def _random_plane(rng, centre_disparity: float, low: float, high: float, max_slant: float,
                  half_w: float, half_h: float) -> tuple[float, float]:
    """Slopes ``(b, c)`` so the plane stays in ``[low, high]`` over a ``2 half_w x 2 half_h``
    region around its centre."""
    b, c = rng.uniform(-max_slant, max_slant, size=2)
    reach = abs(b) * half_w + abs(c) * half_h
    room = min(centre_disparity - low, high - centre_disparity)
    if reach > room:
        scale = max(room, 0.0) / reach
        b, c = b * scale, c * scale
    return float(b), float(c)


def _scene(rng: np.random.Generator, config: SyntheticConfig) -> list[_Surface]:
    h, w = config.height, config.width
    low, high = config.min_disparity, config.max_disparity * 0.999
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    surfaces = []

    # Background: mostly far, slanted like a ground plane or a wall.
    background_high = low + (high - low) * rng.uniform(0.15, 0.6)
    centre = float(rng.uniform(low, background_high))
    b, c = _random_plane(rng, centre, low, background_high, config.max_slant, w / 2, h / 2)
    surfaces.append(_Surface(centre, b, c, cx, cy, "full", None,
                             _Texture(rng, rng.random() < config.textureless_fraction / 2)))

    count = int(rng.integers(config.objects[0], config.objects[1] + 1))
    for _ in range(count):
        x0 = float(rng.uniform(-0.1 * w, 1.1 * w))
        y0 = float(rng.uniform(-0.1 * h, 1.1 * h))
        size = float(np.exp(rng.uniform(np.log(0.04), np.log(0.35))) * min(h, w) * 1.5)
        shape = str(rng.choice(["rect", "rect", "disc", "blob", "blob", "bar"]))
        if shape == "bar":
            # Thin structures (poles, wires, spokes): 1-5 px wide, long, any direction.
            params = (x0, y0, float(rng.uniform(0.5, 2.5)), size * rng.uniform(0.8, 2.0),
                      float(rng.uniform(0, np.pi)))
            shape = "rect"
            half_w = half_h = float(np.hypot(params[2], params[3]))
        elif shape == "rect":
            params = (x0, y0, size * rng.uniform(0.3, 1.0), size * rng.uniform(0.3, 1.0),
                      float(rng.uniform(0, np.pi)) if rng.random() < 0.5 else 0.0)
            half_w = half_h = float(np.hypot(params[2], params[3]))
        elif shape == "disc":
            params = (x0, y0, size * rng.uniform(0.3, 1.0), size * rng.uniform(0.3, 1.0))
            half_w, half_h = params[2], params[3]
        else:
            radius = size * rng.uniform(0.4, 1.0)
            params = (x0, y0, radius, rng.standard_normal((16, 16)).astype(np.float32),
                      radius / rng.uniform(1.0, 3.0))
            half_w = half_h = 1.5 * radius
        background_here = surfaces[0].disparity(x0, y0)
        # Objects stand in front of the background more often than not, nearer ones rarer.
        a = float(low + (high - low) * rng.beta(1.3, 1.8))
        if rng.random() < 0.8:
            a = float(rng.uniform(min(background_here, high), high))
        slant = config.max_slant * (1.0 if rng.random() < 0.4 else 0.2)
        b, c = _random_plane(rng, a, low, high, slant, half_w, half_h)
        texture = _Texture(rng, rng.random() < config.textureless_fraction)
        surfaces.append(_Surface(a, b, c, x0, y0, shape, params, texture, (half_w, half_h)))
    return surfaces


def _render(surfaces: list[_Surface], height: int, width: int, right_view: bool):
    """Z-buffer the surfaces in one view: colour ``(H, W, 3)``, disparity, surface index."""
    best = np.full((height, width), -np.inf)
    index = np.full((height, width), -1, dtype=np.int16)
    windows = []
    for i, surface in enumerate(surfaces):
        rows, cols = surface.bounds(height, width, right_view)
        ys, xs = np.mgrid[rows, cols].astype(np.float64)
        x = surface.left_x_from_right(xs, ys) if right_view else xs
        windows.append((rows, cols, x, ys))
        if x.size == 0:
            continue
        d = surface.disparity(x, ys)
        covered = surface.mask(x, ys) & (d > best[rows, cols])
        best[rows, cols][covered] = d[covered]
        index[rows, cols][covered] = i
    colour = np.zeros((height, width, 3), dtype=np.float32)
    for i, surface in enumerate(surfaces):
        rows, cols, x, ys = windows[i]
        where = index[rows, cols] == i
        if where.any():
            colour[rows, cols][where] = surface.texture.rgb(x[where], ys[where])
    return colour, best.astype(np.float32), index


def _photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Per-view camera differences: per-channel gain, bias, gamma, sensor noise."""
    gain = rng.uniform(0.8, 1.2) * rng.uniform(0.95, 1.05, size=3)
    bias = rng.uniform(-0.05, 0.05)
    gamma = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    noise = rng.uniform(0.0, 0.015)
    image = np.clip(image * gain.astype(np.float32) + np.float32(bias), 0.0, 1.0) ** np.float32(gamma)
    image = image + rng.standard_normal(image.shape).astype(np.float32) * np.float32(noise)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def generate(seed: Seed, config: Optional[SyntheticConfig] = None, **overrides) -> SyntheticSample:
    """Render one stereo pair; the same ``seed`` (an int or a tuple of ints) gives the same pair.

    ``overrides`` replace fields of ``config`` (``generate(3, height=64, width=128)``).
    """
    config = config or SyntheticConfig()
    if overrides:
        config = replace(config, **overrides)
    seed_sequence = np.random.SeedSequence(list(seed) if isinstance(seed, (tuple, list)) else int(seed))
    scene_rng, left_rng, right_rng = (np.random.default_rng(s) for s in seed_sequence.spawn(3))
    surfaces = _scene(scene_rng, config)
    h, w = config.height, config.width
    left, disparity, left_surface = _render(surfaces, h, w, right_view=False)
    right, right_disparity, right_surface = _render(surfaces, h, w, right_view=True)

    # Visible in the right view only if both right pixels around x - d show the same surface.
    xr = np.arange(w, dtype=np.float32)[None, :] - disparity
    inside = (xr >= 0) & (xr <= w - 1)
    lo = np.clip(np.floor(xr), 0, w - 1).astype(np.int64)
    hi = np.clip(lo + 1, 0, w - 1)
    rows = np.arange(h)[:, None]
    visible = inside & (right_surface[rows, lo] == left_surface) & (right_surface[rows, hi] == left_surface)

    if config.photometric:
        left, right = _photometric(left_rng, left), _photometric(right_rng, right)
    return SyntheticSample(left=left, right=right, disparity=disparity, occluded=~visible,
                           right_disparity=right_disparity, left_surface=left_surface,
                           right_surface=right_surface)


__all__ = ["SyntheticConfig", "SyntheticSample", "catmull_rom", "generate", "to_uint8"]
