"""A per-frame plot of a clip's metrics, drawn with Pillow (which ComfyUI ships; matplotlib it does not).

One panel per scale: the temporal metrics (warp error and luma change, 0..1 units, per pair t → t+1), then
PSNR (dB) and SSIM per frame when a reference was given. Each panel has a title, value ticks with a grid,
frame ticks and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError
from .metrics import FrameMetrics

PLOT_WIDTH = 800
MIN_PLOT_WIDTH = 400  # the longest title and legend still fit
PANEL_HEIGHT = 260
FONT_SIZE = 14
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 50, 40  # pixels around each panel's axes
TITLE_Y, LEGEND_Y = 12, 34  # centre lines of the title row and the legend row
VALUE_TICKS = 5  # about this many ticks on each value axis
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
# Colour-blind-safe hues (Okabe & Ito 2008).
COLOURS = {"warp": (0, 114, 178), "luma": (230, 159, 0), "psnr": (0, 158, 115), "ssim": (204, 121, 167)}


@dataclass(frozen=True)
class Curve:
    label: str
    frames: np.ndarray  # x positions
    values: np.ndarray  # NaN leaves a gap
    colour: tuple[int, int, int]


def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)  # Pillow's own scalable font (Pillow >= 10.1)


def _nice_ticks(low: float, high: float) -> list[float]:
    """Round tick values covering [low, high] with a step of 1, 2 or 5 × 10^k."""
    if high <= low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    raw = (high - low) / VALUE_TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    count = math.ceil((high - first) / step - 1e-9)
    return [first + i * step for i in range(count + 1)]


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = max(0, -math.floor(math.log10(step) + 1e-9))  # steps are 1, 2 or 5 × 10^k: their own digits suffice
    return f"{value:.{digits}f}"


def _frame_ticks(first: int, last: int) -> list[int]:
    span = max(1, last - first)
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if span / s <= 12)
    return list(range(first - first % step + (step if first % step else 0), last + 1, step)) or [first]


def _draw_panel(title: str, curves: Sequence[Curve], frame_count: int, width: int) -> Image.Image:
    image = Image.new("RGB", (width, PANEL_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = width - MARGIN_RIGHT, PANEL_HEIGHT - MARGIN_BOTTOM
    draw.text((left, TITLE_Y), title, fill=INK, font=font, anchor="lm")

    finite = np.concatenate([c.values[np.isfinite(c.values)] for c in curves])
    ticks = _nice_ticks(float(finite.min()), float(finite.max())) if finite.size else [0.0, 1.0]
    low, high = ticks[0], ticks[-1]
    frame_low, frame_high = 0, frame_count - 1  # every panel spans the clip's frames, so they line up

    def x_of(frame: float) -> float:
        return left + (frame - frame_low) / max(1, frame_high - frame_low) * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    for value in ticks:
        y = y_of(value)
        draw.line([(left, y), (right, y)], fill=GRID)
        label = _tick_label(value, ticks)
        draw.text((left - 6, y), label, fill=INK, font=font, anchor="rm")
    for frame in _frame_ticks(frame_low, frame_high):
        x = x_of(frame)
        draw.line([(x, bottom), (x, bottom + 4)], fill=INK)
        draw.text((x, bottom + 6), str(frame), fill=INK, font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text(((left + right) / 2, PANEL_HEIGHT - 4), "frame", fill=INK, font=font, anchor="mb")

    for curve in curves:
        points = [(x_of(f), y_of(v)) if np.isfinite(v) else None for f, v in zip(curve.frames, curve.values)]
        run: list[tuple[float, float]] = []
        for point in [*points, None]:  # a NaN or infinite value ends a run of connected points
            if point is not None:
                run.append(point)
                continue
            if len(run) > 1:
                draw.line(run, fill=curve.colour, width=2)
            for x, y in run:
                draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=curve.colour)
            run = []

    # The legend has its own row above the axes, right-aligned, so it never hides a curve or the title.
    x, y = right, LEGEND_Y
    for curve in reversed(curves):
        x -= draw.textlength(curve.label, font=font)
        draw.text((x, y), curve.label, fill=INK, font=font, anchor="lm")
        draw.line([(x - 24, y), (x - 6, y)], fill=curve.colour, width=3)
        x -= 40
    return image


def plot_frame_metrics(series: FrameMetrics, width: int = PLOT_WIDTH) -> np.ndarray:
    """The plot of :func:`metrics.frame_metrics`'s series.

    Args:
        series: per-frame metrics of one clip.
        width: image width in pixels (>= MIN_PLOT_WIDTH).

    Returns:
        (H, width, 3) float32 RGB in 0..1; H = 260 per panel (1 to 3 panels).

    Raises:
        InputError: ``width`` below ``MIN_PLOT_WIDTH`` (400).
    """
    if not (isinstance(width, int) and width >= MIN_PLOT_WIDTH):
        raise InputError(f"the plot width must be a whole number of pixels >= {MIN_PLOT_WIDTH}, got {width!r}.")
    count = len(series.luma_change) + 1
    pairs = np.arange(1, count)  # the pair (t-1, t) is drawn at frame t
    temporal = [Curve("luma change (flicker)", pairs, series.luma_change, COLOURS["luma"])]
    title = "Change from the previous frame (0..1)"
    if series.warp_error is None:
        title += "; no warp error"
    else:
        temporal.insert(0, Curve("warp error", pairs, series.warp_error, COLOURS["warp"]))
    panels = [_draw_panel(title, temporal, count, width)]
    frames = np.arange(count)
    if series.psnr is not None:
        identical = int(np.isinf(series.psnr).sum())
        title = "PSNR against the reference (dB)"
        if identical:
            title += f"; {identical} identical, not drawn"
        panels.append(_draw_panel(title, [Curve("PSNR", frames, series.psnr, COLOURS["psnr"])], count, width))
    if series.ssim is not None:
        curve = Curve("SSIM", frames, series.ssim, COLOURS["ssim"])
        panels.append(_draw_panel("SSIM against the reference", [curve], count, width))
    canvas = Image.new("RGB", (width, PANEL_HEIGHT * len(panels)), BACKGROUND)
    for row, panel in enumerate(panels):
        canvas.paste(panel, (0, row * PANEL_HEIGHT))
    return np.asarray(canvas, dtype=np.float32) / 255.0
