"""Light-direction background plates, for text-driven relighting with the released fbc weights.

The released model is conditioned on a background clip (docs/official_code.md §d: text and HDR variants were never
released), so a light direction is given to it as a background that is bright on that side, as in
IC-Light's own demo (its "Left Light", "Top Light", … linear-gradient backgrounds).

Directions are angles in degrees, counter-clockwise from "right" with screen-up at 90° (the usual maths
convention on a screen): right 0, top_right 45, top 90, top_left 135, left 180, bottom_left 225,
bottom 270, bottom_right 315. ``ambient`` is a uniform plate with no direction.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..values import Range, check_number

AMBIENT = "ambient"
LIGHT_DIRECTIONS: dict[str, float] = {
    "right": 0.0,
    "top_right": 45.0,
    "top": 90.0,
    "top_left": 135.0,
    "left": 180.0,
    "bottom_left": 225.0,
    "bottom": 270.0,
    "bottom_right": 315.0,
}
PRESET_NAMES = (*LIGHT_DIRECTIONS, AMBIENT)
MAX_INTENSITY = 100.0  # far brighter than any plate can show: the result is clipped to 0..1 anyway
SOFTNESS_RANGE = Range(0.0, 1.0, open_low=True)


def _angle(direction: str | float, argument: str) -> float:
    if isinstance(direction, str):
        if direction not in LIGHT_DIRECTIONS:
            names = ", ".join(PRESET_NAMES)
            raise InputError(f"{argument} must be one of {names} or an angle in degrees, got {direction!r}.")
        return LIGHT_DIRECTIONS[direction]
    return check_number(argument, direction)


def sweep_angles(start: str | float, end: str | float | None, frames: int) -> list[float]:
    """Per-frame light angles (degrees) from ``start`` to ``end``, evenly over the clip.

    Named directions go the shorter way round (clockwise when opposite); two numbers are taken literally,
    so ``(0, 360)`` is a full turn. ``end`` None: constant.
    """
    first = _angle(start, "direction")
    if end is None or frames == 1:
        return [first] * frames
    last = _angle(end, "end_direction")
    delta = last - first
    if isinstance(start, str) or isinstance(end, str):
        delta = (delta + 180.0) % 360.0 - 180.0
    return [first + delta * k / (frames - 1) for k in range(frames)]


def _gradient(angle: float, height: int, width: int, softness: float) -> torch.Tensor:
    """(H, W) brightness in 0..1: 1 at the edge the light comes from, falling linearly to 0 over
    ``2·softness`` of the frame's normalised extent along the light direction."""
    radians = math.radians(angle)
    # Image coordinates: x to the right, y downwards, both in -1..1 at the outer pixel edges.
    dx, dy = math.cos(radians), -math.sin(radians)
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2.0 - 1.0
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2.0 - 1.0
    reach = abs(dx) + abs(dy)  # the projection's maximum, at the lit corner; normalises diagonals to -1..1
    projection = (xs[None, :] * dx + ys[:, None] * dy) / reach
    return ((projection - (1.0 - 2.0 * softness)) / (2.0 * softness)).clamp(0.0, 1.0)


def check_light(
    direction: str | float,
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    intensity: float = 1.0,
    softness: float = 1.0,
    end_direction: str | float | None = None,
) -> None:
    """Check the settings of :func:`light_plate` (names, finite numbers, ranges) without rendering.

    Raises:
        InputError: naming the setting at fault.
    """
    if direction != AMBIENT:
        _angle(direction, "direction")
    if end_direction not in (None, AMBIENT):
        _angle(end_direction, "end_direction")
    check_number("softness", softness, SOFTNESS_RANGE)
    check_number("intensity", intensity, Range(0.0, MAX_INTENSITY))
    try:
        if isinstance(color, str) or len(color) != 3:
            raise InputError("not three values")
        for value in color:
            check_number("color", value, Range(0.0, 1.0))
    except (InputError, TypeError):
        raise InputError(f"color must be three RGB values in 0..1, got {color!r}.") from None


def light_plate(
    direction: str | float,
    frames: int,
    height: int,
    width: int,
    *,
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    intensity: float = 1.0,
    softness: float = 1.0,
    end_direction: str | float | None = None,
) -> torch.Tensor:
    """Background plates lit from ``direction``, optionally sweeping to ``end_direction`` over the clip.

    Args:
        direction: a preset name (``left``, ``right``, ``top``, ``bottom``, ``top_left``, ``top_right``,
            ``bottom_left``, ``bottom_right``, ``ambient``) or an angle in degrees (module docstring).
        frames: number of frames (>= 1).
        height, width: plate size in pixels.
        color: light colour, RGB in 0..1.
        intensity: brightness multiplier (>= 0); the result is clipped to 0..1.
        softness: in (0, 1]; 1 = a linear gradient across the whole frame (IC-Light's plates),
            smaller = the light falls off sooner, leaving more of the frame dark.
        end_direction: sweep the light to this direction (name or angle) over the clip; None = fixed.

    Returns:
        (frames, height, width, 3) float32 RGB in 0..1 (IMAGE layout).

    Raises:
        InputError: an unknown name, a sweep involving ``ambient``, or an argument out of range.
    """
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}.")
    if height < 1 or width < 1:
        raise InputError(f"height and width must be positive, got {width}x{height}.")
    check_light(direction, color, intensity, softness, end_direction)
    tint = torch.tensor(color, dtype=torch.float32) * intensity
    if direction == AMBIENT or end_direction == AMBIENT:
        if end_direction not in (None, AMBIENT) or direction != AMBIENT:
            raise InputError("ambient light has no direction, so it cannot be swept; give two directions.")
        return tint.expand(frames, height, width, 3).clamp(0.0, 1.0).contiguous()
    angles = sweep_angles(direction, end_direction, frames)
    gradients = {angle: _gradient(angle, height, width, softness) for angle in set(angles)}
    plates = torch.stack([gradients[angle] for angle in angles])
    return (plates[..., None] * tint).clamp(0.0, 1.0)
