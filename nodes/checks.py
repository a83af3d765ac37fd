"""Checks of widget values, shared by queue-time validation (``VALIDATE_INPUTS``) and node entry.

When a prompt is queued ComfyUI checks a widget's type, its min/max and a combo's list itself, but not for
the inputs a ``VALIDATE_INPUTS`` names, never a NaN (it compares false with every bound, and ComfyUI's JSON
parser accepts ``NaN``), and never a step; a node called directly (tests, other packs) gets no check at all.
Each function here gives one sentence naming the input, or None when the value is fine.

ComfyUI files a ``VALIDATE_INPUTS`` message under every input the method names. A node whose checks read
one input names that input; a node whose checks read several widgets, or has FLOAT widgets (for NaN), names
only the hidden :data:`NODE_ID` input and reads its widgets from the prompt being queued
(:func:`queued_problem`), so each problem is filed once. Either way the first problem only is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..relightvid_core.errors import InputError
from . import host

NUMBER_KINDS = ("INT", "FLOAT")
# The hidden input (the node's id) of the nodes checked through queued_problem; ComfyUI shows a problem as
# "Custom validation failed for node: settings - <the sentence>".
NODE_ID = "settings"
HIDDEN_NODE_ID = {NODE_ID: "UNIQUE_ID"}


def declared_inputs(node_class) -> dict[str, tuple]:
    """name → ComfyUI spec (type or combo list, options) of every required and optional input of the node."""
    declared = node_class.INPUT_TYPES()
    return {**declared.get("required", {}), **declared.get("optional", {})}


def numeric_inputs(node_class, declared: Mapping[str, tuple] | None = None) -> dict[str, tuple[str, dict]]:
    """name → (INT or FLOAT, widget options) of every numeric widget the node declares (``declared``: its
    :func:`declared_inputs`, when the caller already has them)."""
    declared = declared_inputs(node_class) if declared is None else declared
    return {
        name: (spec[0], spec[1] if len(spec) > 1 else {}) for name, spec in declared.items() if spec[0] in NUMBER_KINDS
    }


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


def multiple_problem(name: str, value: object, factor: int, unit: str) -> str | None:
    """``value`` must be a multiple of ``factor`` (None, a linked input, passes)."""
    if isinstance(value, int) and value % factor:
        return f"{name} must be a multiple of {factor} {unit}; got {value}."
    return None


def _refused_by_comfyui(value: object, spec: tuple) -> bool:
    """True for what ComfyUI's own queue-time checks file under the input: a value outside a combo's list, a
    number it could not convert, or one outside min/max (NaN passes those)."""
    kind, options = spec[0], spec[1] if len(spec) > 1 else {}
    if isinstance(kind, list):
        return value not in kind
    if kind not in NUMBER_KINDS:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    low, high = options.get("min"), options.get("max")
    return (low is not None and value < low) or (high is not None and value > high)


def queued_problem(
    node_class, node_id: object, own_problem: Callable[..., str | None] | None = None, *names: str
) -> str | bool:
    """``VALIDATE_INPUTS`` of a node that names only :data:`NODE_ID`: its widgets in the prompt being queued.

    Every numeric widget must be a finite number, then ``own_problem(*values of names)`` must be None (a
    linked input, or a value ComfyUI refuses itself, is passed as None). True when the prompt is not being
    queued through POST /prompt: the node then checks at entry.
    """
    queued = host.queued_widget_values(node_id, node_class.__name__)
    if queued is None:
        return True
    declared = declared_inputs(node_class)
    values = {
        name: value
        for name, value in queued.items()
        if name in declared and not _refused_by_comfyui(value, declared[name])
    }
    number_problems = (
        number_problem(name, values[name], kind, options)
        for name, (kind, options) in numeric_inputs(node_class, declared).items()
        if name in values
    )
    own = own_problem(*(values.get(name) for name in names)) if own_problem is not None else None
    return first_problem(*number_problems, own)


def first_problem(*problems: str | None) -> str | bool:
    """What ``VALIDATE_INPUTS`` returns: the first problem, or True when there is none."""
    return next((problem for problem in problems if problem is not None), True)


def every_problem(*problems: str | None) -> str | bool:
    """What ``VALIDATE_INPUTS`` returns when each problem is about another input (a node's model files): all
    of them, one sentence each, so every missing file is named once in one refusal; True when there is none."""
    found = [problem for problem in problems if problem is not None]
    return " ".join(found) if found else True


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


def check(problem: str | bool | None) -> None:
    """At node entry: raise a problem a queue-time check would have reported, for callers that skip it.

    Raises:
        InputError: ``problem`` is a message (True or None: no problem).
    """
    if isinstance(problem, str):
        raise InputError(problem)
