"""Size policies: one plan, computed from a source size, applied identically to frames, masks and backgrounds.

A :class:`GeometryPlan` is resize → place a window of the output size over the resized image (centred)
→ crop where the window lies inside, pad where it sticks out. Every policy is such a plan, so the same
pixel of a foreground, its mask and anything else of that source size lands in the same output pixel.

Policies (``width``/``height`` are the target; any aspect ratio, independent of the source's):

============== ===================================================================================
center_crop    the official one (docs/official_code.md §c): no resize; centre crop to the target, padding
               with ``fill`` (black in the official code) where the source is smaller
cover          resize keeping aspect until the target is covered, then centre crop
contain        resize keeping aspect until the source fits inside, then pad (letterbox)
stretch        resize to the target exactly (aspect not kept)
multiple_of_64 fit the source inside the target box (default: the source's own size), round each side
               to the nearest multiple of 64 (at least 64), then cover that size (aspect kept, at most
               32 px cropped per side pair)
============== ===================================================================================

Output sizes are multiples of 8 (the SD VAE's latent grid): targets must be, and ``multiple_of_64``
produces multiples of 64.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError

# torchvision CenterCrop(512) in the official loaders (docs/official_code.md §c).
OFFICIAL_SIZE = 512
# The SD VAE downsamples by 8, so pixel sizes must be multiples of 8 to give whole latents.
LATENT_FACTOR = 8
SNAP_64 = 64


class SizePolicy(str, enum.Enum):
    """How a source of any size becomes the output size; see the module docstring."""

    CENTER_CROP = "center_crop"
    COVER = "cover"
    CONTAIN = "contain"
    STRETCH = "stretch"
    MULTIPLE_OF_64 = "multiple_of_64"


@dataclass(frozen=True)
class GeometryPlan:
    """Resize ``source_size`` to ``resized_size``, then take the ``output_size`` window at
    (``window_top``, ``window_left``) of the resized image; negative offsets mean padding.

    All sizes are (height, width) in pixels.
    """

    source_size: tuple[int, int]
    resized_size: tuple[int, int]
    window_top: int
    window_left: int
    output_size: tuple[int, int]

    def source_to_output(self, y: float, x: float) -> tuple[float, float]:
        """Output coordinates (row, column; pixel centres at integers) of source pixel (``y``, ``x``)."""
        (source_h, source_w), (resized_h, resized_w) = self.source_size, self.resized_size
        out_y = (y + 0.5) * resized_h / source_h - 0.5 - self.window_top
        out_x = (x + 0.5) * resized_w / source_w - 0.5 - self.window_left
        return out_y, out_x


def _centre_offset(size: int, out: int) -> int:
    """Window offset along one axis, as torchvision's CenterCrop places it.

    Larger sources are cropped at ``int(round((size - out) / 2))`` (Python's round: halves to even);
    smaller ones are padded with ``(out - size) // 2`` before and the rest after.
    """
    if size >= out:
        return int(round((size - out) / 2.0))
    return -((out - size) // 2)


def _check_target(width: int, height: int, multiple: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if value < multiple or value % multiple:
            raise InputError(
                f"{name} must be a positive multiple of {multiple} (the latent grid), got {value}; "
                f"try {max(multiple, round(value / multiple) * multiple)}."
            )


def plan_geometry(
    source_height: int,
    source_width: int,
    policy: SizePolicy | str = SizePolicy.CENTER_CROP,
    width: int | None = None,
    height: int | None = None,
) -> GeometryPlan:
    """Compute the plan that brings a ``source_height`` x ``source_width`` image to the target size.

    Args:
        source_height, source_width: the source size in pixels (>= 1).
        policy: a :class:`SizePolicy` or its value (default: the official ``center_crop``).
        width, height: the target size, multiples of 8; default 512 (the official crop). For
            ``multiple_of_64`` they are the box to fit in (any size) and default to the source's size.

    Returns:
        The :class:`GeometryPlan`; its ``output_size`` is (height, width).

    Raises:
        InputError: an unknown policy, a source size < 1, or a target that is not a positive multiple of 8.
    """
    try:
        policy = SizePolicy(policy)
    except ValueError as error:
        names = ", ".join(p.value for p in SizePolicy)
        raise InputError(f"policy must be one of {names}, got {policy!r}.") from error
    if source_height < 1 or source_width < 1:
        raise InputError(f"the source must be at least 1x1 pixels, got {source_width}x{source_height}.")
    source = (source_height, source_width)

    if policy is SizePolicy.MULTIPLE_OF_64:
        box_w = source_width if width is None else width
        box_h = source_height if height is None else height
        if box_w < 1 or box_h < 1:
            raise InputError(f"width and height must be positive, got {box_w}x{box_h}.")
        scale = min(box_w / source_width, box_h / source_height)
        height = max(SNAP_64, round(source_height * scale / SNAP_64) * SNAP_64)
        width = max(SNAP_64, round(source_width * scale / SNAP_64) * SNAP_64)
        policy = SizePolicy.COVER
    else:
        width = OFFICIAL_SIZE if width is None else width
        height = OFFICIAL_SIZE if height is None else height
        _check_target(width, height, LATENT_FACTOR)

    if policy is SizePolicy.CENTER_CROP:
        resized = source
    elif policy is SizePolicy.STRETCH:
        resized = (height, width)
    elif policy is SizePolicy.COVER:
        scale = max(height / source_height, width / source_width)
        # max(): rounding must never leave the resized image a pixel short of covering the target.
        resized = (max(height, round(source_height * scale)), max(width, round(source_width * scale)))
    else:  # CONTAIN
        scale = min(height / source_height, width / source_width)
        resized = (
            min(height, max(1, round(source_height * scale))),
            min(width, max(1, round(source_width * scale))),
        )
    return GeometryPlan(
        source_size=source,
        resized_size=resized,
        window_top=_centre_offset(resized[0], height),
        window_left=_centre_offset(resized[1], width),
        output_size=(height, width),
    )


def _window(size: int, offset: int, out: int) -> tuple[int, int, int, int]:
    """(first, last) rows kept from the resized image, and padding before/after, along one axis."""
    first, last = max(0, offset), min(size, offset + out)
    before = max(0, -offset)
    return first, last, before, out - before - (last - first)


def apply_geometry(tensor: torch.Tensor, plan: GeometryPlan, fill: float = 0.0) -> torch.Tensor:
    """Apply ``plan`` to a clip or mask sequence.

    Resizing is bilinear with antialiasing (area-like when shrinking); padding uses ``fill``.

    Args:
        tensor: (T, H, W, C) frames or (T, H, W) masks, float, with (H, W) = ``plan.source_size``.
        plan: from :func:`plan_geometry`.
        fill: value of padded pixels (0.0 = black, the official choice; 0.0 = background for masks).

    Returns:
        The same layout at ``plan.output_size``, same dtype and device.

    Raises:
        InputError: the tensor is not 3-D/4-D or its size differs from the plan's source size.
    """
    if tensor.ndim not in (3, 4):
        raise InputError(f"expected (T, H, W, C) frames or (T, H, W) masks, got shape {tuple(tensor.shape)}.")
    if tuple(tensor.shape[1:3]) != plan.source_size:
        raise InputError(
            f"the tensor is {tensor.shape[1]}x{tensor.shape[2]} (HxW), but the plan was made for "
            f"{plan.source_size[0]}x{plan.source_size[1]}; compute a plan from this tensor's own size."
        )
    is_mask = tensor.ndim == 3
    channels_first = (tensor[:, None] if is_mask else tensor.permute(0, 3, 1, 2)).float()
    if plan.resized_size != plan.source_size:
        channels_first = F.interpolate(
            channels_first, size=plan.resized_size, mode="bilinear", align_corners=False, antialias=True
        )
    top, bottom, pad_top, pad_bottom = _window(plan.resized_size[0], plan.window_top, plan.output_size[0])
    left, right, pad_left, pad_right = _window(plan.resized_size[1], plan.window_left, plan.output_size[1])
    channels_first = channels_first[:, :, top:bottom, left:right]
    if pad_top or pad_bottom or pad_left or pad_right:
        channels_first = F.pad(channels_first, (pad_left, pad_right, pad_top, pad_bottom), value=fill)
    out = channels_first[:, 0] if is_mask else channels_first.permute(0, 2, 3, 1)
    return out.to(tensor.dtype).contiguous()


def fit_to_size(
    tensor: torch.Tensor,
    policy: SizePolicy | str = SizePolicy.CENTER_CROP,
    width: int | None = None,
    height: int | None = None,
    fill: float = 0.0,
) -> torch.Tensor:
    """Plan from ``tensor``'s own size and apply: (T, H, W, C) or (T, H, W) → the target size.

    See :func:`plan_geometry` and :func:`apply_geometry` for the arguments.
    """
    if tensor.ndim not in (3, 4):
        raise InputError(f"expected (T, H, W, C) frames or (T, H, W) masks, got shape {tuple(tensor.shape)}.")
    plan = plan_geometry(tensor.shape[1], tensor.shape[2], policy, width, height)
    return apply_geometry(tensor, plan, fill)
