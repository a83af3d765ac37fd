"""Checks of single numbers a user gives: finite, of the right kind, inside a range, named in the message.

Every library entry point and the command line's argument types use these, so a NaN, an infinity or an
absurd value is refused where it enters, in one sentence naming the setting, before any model is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes any unsigned 64-bit number
GUIDANCE_MAX = 100.0  # ComfyUI's own cfg limit; far beyond it the guided prediction overflows
EXPOSURE_STOPS = 30.0  # 2**±30: beyond this the radiance of any real map underflows or saturates


def _describe(value: object) -> str:
    return repr(value) if not isinstance(value, float) else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; ``open_low``/``open_high`` exclude that end."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.open_high and value == self.high)))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"{'<' if self.open_high else '<='} {self.high:g}"


def check_number(name: str, value: object, allowed: Range | None = None) -> float:
    """``value`` as a float if it is a finite real number inside ``allowed``.

    Raises:
        InputError: naming ``name``, the rule and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number, got {_describe(value)}.")
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {_describe(value)}.")
    if allowed is not None and not allowed.contains(value):
        raise InputError(f"{name} must be in {allowed}, got {_describe(value)}.")
    return float(value)


def check_whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a bool) in ``low..high``.

    Raises:
        InputError: naming ``name``, the range and the value.
    """
    span = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise InputError(f"{name} must be a whole number in {span}, got {_describe(value)}.")
    return value


def check_seed(name: str, value: object) -> int:
    """A noise seed: a whole number in 0..2**64−1 (what torch's generators take)."""
    return check_whole(name, value, 0, SEED_MAX)


def counted(count: int, noun: str) -> str:
    """``count`` with its noun, singular for one: ``counted(1, "frame")`` → "1 frame", else "2 frames"."""
    return f"{count} {noun}" + ("" if count == 1 else "s")
