"""Checks of widget values, shared by queue-time validation (``VALIDATE_INPUTS``) and node entry.

ComfyUI checks a widget's min/max when a prompt is queued, but not for the inputs a ``VALIDATE_INPUTS``
names, never a NaN (it compares false with every bound, and ComfyUI's JSON parser accepts ``NaN`` and
``Infinity``), and never a step; a node called directly (tests, other packs) gets no check at all. Each
function here gives one sentence naming the input, or None when the value is fine.

ComfyUI files a ``VALIDATE_INPUTS`` message under every input the method takes, so each node's method takes
only the inputs its own checks read, and returns the first problem only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..relightvid_core.errors import InputError

NUMBER_KINDS = ("INT", "FLOAT")


def numeric_inputs(node_class) -> dict[str, tuple[str, dict]]:
    """name → (INT or FLOAT, widget options) of every numeric widget the node declares."""
    declared = node_class.INPUT_TYPES()
    found = {}
    for section in ("required", "optional"):
        for name, spec in declared.get(section, {}).items():
            kind, options = spec[0], spec[1] if len(spec) > 1 else {}
            if kind in NUMBER_KINDS:
                found[name] = (kind, options)
    return found


def number_problem(name: str, value: object, kind: str, options: Mapping) -> str | None:
    """What is wrong with ``value`` for a numeric widget (its type, finiteness, min/max), or None."""
    if kind == "INT" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name} must be a whole number; got {value!r}."
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number; got {value!r}."
    if not math.isfinite(value):
        return f"{name} must be a finite number; got {value}."
    low, high = options.get("min"), options.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"{name} must be in {low}..{high}; got {value}."
    return None


def widget_problem(node_class, name: str, value: object) -> str | None:
    """:func:`number_problem` for the node's widget ``name``; None for a linked input (None at queue time)."""
    if value is None:
        return None
    kind, options = numeric_inputs(node_class)[name]
    return number_problem(name, value, kind, options)


def multiple_problem(name: str, value: object, factor: int, unit: str) -> str | None:
    """``value`` must be a multiple of ``factor`` (None, a linked input, passes)."""
    if isinstance(value, int) and value % factor:
        return f"{name} must be a multiple of {factor} {unit}; got {value}."
    return None


def first_problem(*problems: str | None) -> str | bool:
    """What ``VALIDATE_INPUTS`` returns: the first problem, or True when there is none."""
    return next((problem for problem in problems if problem is not None), True)


def check_numbers(node_class, arguments: Mapping[str, object]) -> None:
    """At node entry: every numeric widget among ``arguments`` is finite and in range.

    Raises:
        InputError: the first value that is not, naming its input.
    """
    for name, (kind, options) in numeric_inputs(node_class).items():
        if name in arguments:
            problem = number_problem(name, arguments[name], kind, options)
            if problem is not None:
                raise InputError(problem)


def check(problem: str | bool) -> None:
    """At node entry: raise what ``VALIDATE_INPUTS`` would have returned, for callers that skip it.

    Raises:
        InputError: ``problem`` is a message.
    """
    if problem is not True:
        raise InputError(problem)
