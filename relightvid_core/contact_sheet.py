"""Contact sheets: a few frames of several clips side by side in one image, one clip per row.

Used to eyeball a relighting run at a glance (rows input | background | output). Frames are sampled
evenly across the clip, first and last included; rows are separated by a thin dark gap and may carry a
label in a column on the left.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .optional import require
from .outputs import check_destination, publish

DEFAULT_SHEET_FRAMES = 4
MAX_SHEET_FRAMES = 64
# Suffixes OpenCV encodes in every build (the format follows the suffix).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
GAP = 2  # pixels between tiles
GAP_VALUE = 0.1  # dark gray between tiles and behind labels
LABEL_FONT = "FONT_HERSHEY_SIMPLEX"  # an OpenCV font
LABEL_SCALE = 0.4
LABEL_MARGIN = 4  # pixels around a label's text


def sheet_indices(count: int, columns: int) -> list[int]:
    """``columns`` frame indices spread evenly over ``count`` frames, first and last included
    (every frame when the clip is shorter)."""
    if count < 1 or columns < 1:
        raise InputError(f"a contact sheet needs at least 1 frame and 1 column, got {count} frames, {columns} columns.")
    if count <= columns:
        return list(range(count))
    if columns == 1:
        return [0]
    return [round(i * (count - 1) / (columns - 1)) for i in range(columns)]


def _label_column(labels: Sequence[str], tile_height: int) -> np.ndarray:
    """(rows·(tile_height + GAP) − GAP, width, 3) column with each label centred on its row."""
    cv2 = require("cv2", "labelling contact sheets")
    font = getattr(cv2, LABEL_FONT)
    sizes = [cv2.getTextSize(label, font, LABEL_SCALE, 1)[0] for label in labels]
    width = max(w for w, _ in sizes) + 2 * LABEL_MARGIN
    # OpenCV draws text on 8-bit images only.
    column = np.full((len(labels) * (tile_height + GAP) - GAP, width, 3), round(GAP_VALUE * 255), np.uint8)
    for row, (label, (_, text_height)) in enumerate(zip(labels, sizes, strict=True)):
        baseline_y = row * (tile_height + GAP) + (tile_height + text_height) // 2
        cv2.putText(column, label, (LABEL_MARGIN, baseline_y), font, LABEL_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return column.astype(np.float32) / 255.0


def contact_sheet(
    rows: Sequence[torch.Tensor],
    columns: int = DEFAULT_SHEET_FRAMES,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile ``columns`` evenly spaced frames of every clip, one clip per row.

    Args:
        rows: clips of one frame count and size, each (T, H, W, 3) float RGB in 0..1.
        columns: frames per row (default 4).
        labels: one text per row, drawn in a column on the left; None: no labels.

    Returns:
        (rows·(H+2) − 2, [label column +] columns·(W+2) − 2, 3) float32 RGB in 0..1.

    Raises:
        InputError: no rows, clips of different shapes, or a label count other than the row count.
    """
    if not rows:
        raise InputError("a contact sheet needs at least one clip.")
    shapes = {tuple(row.shape) for row in rows}
    if len(shapes) != 1 or rows[0].ndim != 4 or rows[0].shape[-1] != 3:
        raise InputError(f"contact sheet clips must all be (T, H, W, 3) of one shape, got {sorted(shapes)}.")
    if labels is not None and len(labels) != len(rows):
        raise InputError(f"{len(labels)} labels given for {len(rows)} contact sheet rows.")
    count, height, width = rows[0].shape[:3]
    indices = sheet_indices(count, columns)
    gap_column = np.full((height, GAP, 3), GAP_VALUE, np.float32)
    gap_row = None
    tiles = []
    for row in rows:
        frames = row[indices].detach().to("cpu", torch.float32).clamp(0.0, 1.0).numpy()
        strip = np.concatenate([part for frame in frames for part in (frame, gap_column)][:-1], axis=1)
        if gap_row is None:
            gap_row = np.full((GAP, strip.shape[1], 3), GAP_VALUE, np.float32)
        tiles += [strip, gap_row]
    sheet = np.concatenate(tiles[:-1], axis=0)
    if labels is not None:
        sheet = np.concatenate([_label_column(labels, height), sheet], axis=1)
    return sheet


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) RGB image in 0..1 as 8-bit, atomically, creating missing folders.

    The format follows the suffix (one of :data:`IMAGE_SUFFIXES`; ``.png`` recommended). The file is written
    through :func:`~relightvid_core.outputs.publish`: under a temporary name, then renamed, with the mode the
    umask gives; a failure leaves nothing behind.

    Raises:
        InputError: the path is a folder, has another suffix, cannot be written (a file in the way of a
            folder, no permission), OpenCV cannot encode it, or the image holds NaN or infinite values.
    """
    path = check_destination(path, "image", IMAGE_SUFFIXES)
    if not np.isfinite(np.asarray(image, np.float32)).all():
        raise InputError(f"the image for {path} contains NaN or infinite values; nothing was written.")
    cv2 = require("cv2", "writing images")
    pixels = np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)
    try:
        ok, encoded = cv2.imencode(path.suffix, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    except cv2.error as error:
        raise InputError(f"cannot write {path}: OpenCV does not encode {path.suffix!r} images; use .png.") from error
    if not ok:
        raise InputError(f"cannot write {path}: OpenCV failed to encode it; use .png.")
    try:
        publish([(path, lambda staged: staged.write_bytes(encoded.tobytes()))])
    except OSError as error:  # the folder changed since the check, or the disk is full
        raise InputError(f"the image {path} cannot be written ({error.strerror or error}).") from error
    return path
