"""Background conditioning: fit a background clip or still to the foreground's frame count and size.

The official loader takes the first 16 frames of the background video, centre-cropped to 512, and fails
when it is shorter (docs/official_code.md §c). Here any length is matched by a :class:`LengthPolicy`, and any size or
aspect ratio by a :mod:`geometry` size policy: a background is never refused for its shape.
"""

from __future__ import annotations

import enum
import logging

import torch

from ..errors import InputError
from ..values import counted
from .geometry import SizePolicy, apply_geometry, plan_geometry

logger = logging.getLogger(__name__)


class LengthPolicy(str, enum.Enum):
    """How ``n`` background frames become ``count`` frames (see :func:`background_indices`)."""

    LOOP = "loop"
    PING_PONG = "ping_pong"
    HOLD = "hold"
    TRIM = "trim"
    STRETCH = "stretch"


def background_indices(
    source_count: int, count: int, policy: LengthPolicy | str = LengthPolicy.LOOP
) -> list[int]:
    """Which source frame fills each of ``count`` output frames.

    ``loop``: 0, 1, …, n−1, 0, 1, …; ``ping_pong``: 0, 1, …, n−1, n−2, …, 1, 0, 1, … (ends not repeated);
    ``hold``: 0, 1, …, n−1, n−1, …; ``trim``: the first ``count`` frames (the source must be at least that
    long); ``stretch``: ``round(i·(n−1)/(count−1))``, spreading the whole source evenly over the output
    (frames repeat or are skipped, never blended). A single source frame (a still) is repeated under every policy.
    With ``n >= count``, every policy but ``stretch`` gives the first ``count`` frames.

    Raises:
        InputError: an unknown policy, counts < 1, or ``trim`` of a source shorter than ``count``
            (both counts named).
    """
    try:
        policy = LengthPolicy(policy)
    except ValueError as error:
        names = ", ".join(p.value for p in LengthPolicy)
        raise InputError(f"length policy must be one of {names}, got {policy!r}.") from error
    if source_count < 1:
        raise InputError(f"the background must hold at least 1 frame, got {source_count}.")
    if count < 1:
        raise InputError(f"count must be at least 1 frame, got {count}.")
    if source_count == 1:
        return [0] * count
    if policy is LengthPolicy.LOOP:
        return [i % source_count for i in range(count)]
    if policy is LengthPolicy.PING_PONG:
        period = 2 * source_count - 2
        return [min(i % period, period - i % period) for i in range(count)]
    if policy is LengthPolicy.HOLD:
        return [min(i, source_count - 1) for i in range(count)]
    if policy is LengthPolicy.TRIM:
        if source_count < count:
            raise InputError(
                f"length policy 'trim' only shortens: the background has {counted(source_count, 'frame')} but the foreground "
                f"has {count}; use loop, ping_pong, hold or stretch."
            )
        return list(range(count))
    if count == 1:
        return [0]
    return [round(i * (source_count - 1) / (count - 1)) for i in range(count)]


def no_background(count: int, height: int, width: int) -> torch.Tensor:
    """All-black frames standing for "no background".

    Training encoded an all-black background video as an all-zero *latent* (docs/official_code.md §d), so "no
    background" is a condition the model knows. Note that VAE-encoding these black frames does **not**
    give zeros; to reproduce the trained condition, use a zero background latent (e.g.
    ``vae.encode_frames(..., black_as_zero=True)``).

    Returns:
        (count, height, width, 3) float32 zeros.
    """
    if count < 1:
        raise InputError(f"count must be at least 1 frame, got {count}.")
    return torch.zeros(count, height, width, 3)


def fit_background(
    frames: torch.Tensor | None,
    count: int,
    height: int,
    width: int,
    length: LengthPolicy | str = LengthPolicy.LOOP,
    size_policy: SizePolicy | str = SizePolicy.COVER,
    flip: bool = False,
) -> torch.Tensor:
    """Match a background clip or still to the foreground: ``count`` frames of ``height`` x ``width``.

    Args:
        frames: (n, H, W, 3) float RGB in 0..1 (n = 1: a still, repeated); any size and aspect ratio.
            None: no background, see :func:`no_background`.
        count: the foreground's frame count.
        height, width: the foreground's output size (multiples of 8).
        length: a :class:`LengthPolicy` (default ``loop``).
        size_policy: a :class:`SizePolicy`, applied to the background alone (default ``cover``, which fills
            the frame; the official ``center_crop`` gives the same result on its 512x512 assets).
        flip: mirror left-right (moves a key light to the other side).

    Returns:
        (count, height, width, 3) float32 in 0..1, on ``frames``' device.

    Raises:
        InputError: a wrong layout, 0 frames, or a policy that cannot give ``count`` frames.
    """
    if frames is None:
        return no_background(count, height, width)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"background must be (T, H, W, 3) RGB in 0..1, got shape {tuple(frames.shape)}.")
    indices = torch.tensor(background_indices(frames.shape[0], count, length), device=frames.device)
    # Resize only the distinct source frames used, then gather: loops and holds cost no extra resizing.
    used, order = torch.unique(indices, return_inverse=True)
    plan = plan_geometry(frames.shape[1], frames.shape[2], size_policy, width, height)
    if plan.output_size != (height, width):
        raise InputError(
            f"size policy {SizePolicy(size_policy).value!r} gives {plan.output_size[1]}x{plan.output_size[0]}, "
            f"not the foreground's {width}x{height}; use center_crop, cover, contain or stretch for backgrounds."
        )
    fitted = apply_geometry(frames[used].float(), plan)[order]
    if flip:
        fitted = torch.flip(fitted, dims=(2,))
    logger.debug("background: %d source frames → %d frames (%s)", frames.shape[0], count, LengthPolicy(length).value)
    return fitted.clamp(0.0, 1.0)
