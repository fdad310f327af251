"""The sample picture the style thumbnails are rendered on.

No photo ships with stylekit (the project carries no third-party images), so the default sample
is a landscape drawn here with numpy: sky, sun, two mountain ranges, a lake with ripples and a
shore of trees. It has what makes a style visible: smooth gradients, hard edges, flat areas and
fine texture. ``stylekit web --sample PHOTO`` uses a photo of your own instead.
"""

from __future__ import annotations

import numpy as np


def _ridge(x: np.ndarray, base: float, waves: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """Height of a mountain silhouette (fraction of the image height) at each column."""
    y = np.full_like(x, base)
    for amplitude, frequency, phase in waves:
        y += amplitude * np.sin(2 * np.pi * frequency * x + phase)
    return y


def landscape(size: int = 224) -> np.ndarray:
    """A ``size`` x ``size`` RGB landscape as an HxWx3 uint8 array (deterministic)."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = yy / h, xx / w
    horizon = 0.62

    # Sky: deep blue at the top to warm orange at the horizon.
    t = np.clip(y / horizon, 0, 1)[..., None]
    top, low = np.array([38, 70, 140.0]), np.array([250, 170, 95.0])
    img = top * (1 - t) ** 1.3 + low * (1 - (1 - t) ** 1.3)

    # Sun with a soft glow.
    d = np.hypot(x - 0.7, y - 0.42)
    glow = np.exp(-((d / 0.16) ** 2))[..., None]
    img = img * (1 - 0.55 * glow) + np.array([255, 225, 150.0]) * 0.55 * glow
    img[d < 0.075] = (255, 240, 200)

    # Two ranges: a pale far one and a dark near one, each shaded by height.
    far = _ridge(x[0], 0.47, ((0.05, 1.3, 0.4), (0.02, 4.1, 1.7), (0.008, 11.0, 0.3)))
    near = _ridge(x[0], 0.55, ((0.045, 0.9, 2.2), (0.02, 3.3, 0.1), (0.01, 9.0, 2.9)))
    for ridge, color in ((far, (120, 110, 150.0)), (near, (55, 75, 70.0))):
        mask = (y > ridge[None, :]) & (y < horizon)
        shade = np.clip((y - ridge[None, :]) / 0.15, 0, 1)[..., None]
        rock = np.array(color) * (1.1 - 0.35 * shade)
        img = np.where(mask[..., None], rock, img)

    # Lake: the sky mirrored, darkened, broken by horizontal ripples.
    below = y >= horizon
    mirror_row = np.clip((2 * horizon - y) * h, 0, h - 1).astype(int)
    ripple = (np.sin(xx * 0.35 + yy * 1.7) * np.sin(yy * 0.9) * (y - horizon) * 18).astype(int)
    src_col = np.clip(xx.astype(int) + ripple, 0, w - 1)
    reflected = img[mirror_row, src_col] * 0.7 + np.array([10, 30, 60.0]) * 0.3
    img = np.where(below[..., None], reflected, img)

    # Shore: a strip of dark trees along the horizon.
    for cx in np.linspace(0.03, 0.97, 14):
        height = 0.06 + 0.04 * np.sin(cx * 23.0) ** 2
        width = height * 0.35
        # A triangle: widest at the shore line, a point at the top.
        spread = width * (y - horizon + height) / height
        tree = (y < horizon) & (y > horizon - height) & (np.abs(x - cx) < spread)
        img[tree] = (25, 45, 30)
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    return out
