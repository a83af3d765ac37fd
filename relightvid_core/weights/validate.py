"""Checks that turn a wrong file into one clear sentence: the slot's expected format, and exact shapes."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..errors import WeightFormatError
from .detect import Detection, WeightFormat

SLOT_EXPECTS = {
    "base": "an SD1.5 checkpoint or U-Net (such as Realistic Vision 5.1), or a merged RelightVid U-Net",
    "iclight": "the IC-Light fbc offsets iclight_sd15_fbc.safetensors (12-channel)",
    "motion": "temporal weights (relvid_mm_sd15_fbc.pth, or AnimateDiff mm_sd_v15 / mm_sd_v15_v2)",
    "merged": "a merged RelightVid U-Net written by this pack's converter",
}
# What to do instead, for the mistakes users make most.
ADVICE = {
    WeightFormat.ICLIGHT_FC: "RelightVid needs the fbc variant, iclight_sd15_fbc.safetensors",
    WeightFormat.SDXL: "RelightVid is built on SD1.5",
    WeightFormat.SD2: "RelightVid is built on SD1.5",
    WeightFormat.DIFFUSERS_MOTION_ADAPTER: "use the original AnimateDiff .ckpt (mm_sd_v15_v2.ckpt), not the diffusers conversion",
    WeightFormat.AMBIGUOUS_MOTION: "their keys cannot tell which, and the two normalise frames differently; "
    "say which it is with --motion-variant relightvid or animatediff_v3 (Python: motion_variant=)",
}
MAX_LISTED = 3


def require_format(
    detection: Detection, allowed: Collection[WeightFormat], source_name: str, slot: str
) -> Detection:
    """Return ``detection`` if its format may go in ``slot``; otherwise raise one sentence saying why not.

    Raises:
        WeightFormatError: naming the source, what the slot expects and what the source is.
    """
    if detection.format in allowed:
        return detection
    advice = ADVICE.get(detection.format)
    raise WeightFormatError(
        f"{source_name} is {detection.format.value}, but the {slot} weights must be {SLOT_EXPECTS[slot]}"
        + (f"; {advice}." if advice else ".")
    )


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    return f"{len(keys)} ({shown}{', …' if len(keys) > MAX_LISTED else ''})"


def check_shapes(
    actual: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source_name: str, what: str
) -> None:
    """Raise unless ``actual`` has exactly the keys and shapes of ``expected``.

    Raises:
        WeightFormatError: listing the missing, unexpected and mismatched keys (first few and counts).
    """
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    mismatched = sorted(
        f"{key} {tuple(actual[key])} vs {tuple(expected[key])}"
        for key in set(actual) & set(expected)
        if tuple(actual[key]) != tuple(expected[key])
    )
    if not (missing or unexpected or mismatched):
        return
    problems = [
        f"{label} {_listing(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched))
        if keys
    ]
    raise WeightFormatError(
        f"{source_name} does not fit the {what}: " + "; ".join(problems) + " (is it for a different network?)"
    )
