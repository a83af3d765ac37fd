"""Clip inputs that keep memory to what the output needs: a VIDEO decoded frame by frame to the target size,
the frame budget (skip, stride, cap) shared by the clip nodes, and the mask-sequence loader."""

from __future__ import annotations

import hashlib
import os

import torch

from ...relightvid_core.conditioning import apply_geometry, plan_geometry
from ...relightvid_core.errors import InputError
from ...relightvid_core.values import counted
from ...relightvid_core.video_io import (
    FrameSelection,
    mask_sequence_files,
    probe_video,
    read_mask_sequence,
    read_video_frames,
)
from .. import host

MAX_FRAMES = 100_000
EXAMPLE_SEQUENCE = "mask/%04d.png"

FRAME_BUDGET_INPUTS = {
    "skip_first_frames": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": MAX_FRAMES,
            "tooltip": "Drop this many frames from the start of the clip.",
        },
    ),
    "frame_stride": (
        "INT",
        {
            "default": 1,
            "min": 1,
            "max": 1000,
            "tooltip": "Keep one frame in this many (2 halves the frame rate).",
        },
    ),
    "max_frames": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": MAX_FRAMES,
            "tooltip": "Keep at most this many frames after skipping and striding; 0 keeps all.",
        },
    ),
}
VIDEO_INPUT = (
    "VIDEO",
    {
        "tooltip": "A clip from Load Video, used instead of images: only the frames kept by skip/stride/max are "
        "decoded, each brought to the output size at once, so memory follows the output, not the source."
    },
)


def frame_selection(skip_first_frames: int, frame_stride: int, max_frames: int) -> FrameSelection:
    """The node widgets as a :class:`FrameSelection` (``max_frames`` 0 = all)."""
    return FrameSelection(skip_first_frames, frame_stride, max_frames or None)


def images_or_video(images, video, name: str = "images") -> None:
    """Exactly one of the two clip inputs must be connected.

    Raises:
        InputError: both or neither.
    """
    if (images is None) == (video is None):
        state = "both are" if images is not None else "neither is"
        raise InputError(f"connect either {name} or video to this node; {state} connected.")


def selected_images(images: torch.Tensor, selection: FrameSelection, name: str = "images") -> torch.Tensor:
    """An IMAGE batch (F, H, W, C) cut to the kept frames (RGB, float).

    Raises:
        InputError: not an IMAGE batch, or no frame left.
    """
    if images.ndim != 4 or images.shape[-1] < 3 or images.shape[0] == 0:
        raise InputError(f"{name} must be an IMAGE batch (frames, height, width, 3); got shape {tuple(images.shape)}.")
    kept = images[list(selection.indices(images.shape[0]))]
    if kept.shape[0] == 0:
        raise InputError(f"{name} has {counted(images.shape[0], 'frame')}, none left after skipping {selection.skip}.")
    return kept[..., :3].float()


def fitted_clip(
    images,
    video,
    selection: FrameSelection,
    size_policy: str,
    width: int,
    height: int,
    name="images",
):
    """The kept frames at the output size, and the geometry plan that took them there.

    From an IMAGE batch the frames are cut and fitted; from a VIDEO each kept frame is fitted as it is decoded.

    Returns:
        (frames (T, h, w, 3) float32 in 0..1, plan).
    """
    images_or_video(images, video, name)
    if images is not None:
        frames = selected_images(images, selection, name)
        plan = plan_geometry(frames.shape[1], frames.shape[2], size_policy, width, height)
        return apply_geometry(frames, plan), plan
    plans = []

    def fit(frame: torch.Tensor) -> torch.Tensor:
        if not plans:  # every frame of a stream has the first frame's size
            plans.append(plan_geometry(frame.shape[1], frame.shape[2], size_policy, width, height))
        return apply_geometry(frame, plans[0])

    frames, _fps = read_video_frames(video.get_stream_source(), selection, fit)
    return frames, plans[0]


def sequence_path(sequence: str) -> str:
    """A folder or pattern inside ComfyUI's input folder → its absolute form.

    Raises:
        InputError: empty, absolute, or leading out of the input folder.
    """
    root = os.path.realpath(host.input_directory() or ".")
    text = sequence.strip()
    if not text or os.path.isabs(text):
        raise InputError(
            f"sequence must be a folder or pattern inside ComfyUI's input folder, e.g. {EXAMPLE_SEQUENCE!r}; got "
            f"{sequence!r}."
        )
    path = os.path.realpath(os.path.join(root, text))
    if os.path.commonpath([root, path]) != root:
        raise InputError(f"sequence {sequence!r} leads out of ComfyUI's input folder; keep the masks inside it.")
    return path


class RelightVidLoadMaskSequence:
    DESCRIPTION = (
        "Loads a numbered mask sequence from ComfyUI's input folder — a folder (mask/), a pattern "
        "(mask/%04d.png) or a glob (mask/*.png) — as a MASK, one per frame, 1 on the subject. Every number from "
        "the first to the last must be there; with a video connected, the count must equal its frame count. "
        "Cut-outs with transparency are read by their alpha; other images by their grey level."
    )
    CATEGORY = "RelightVid/inputs"
    FUNCTION = "load"
    RETURN_TYPES = ("MASK", "INT")
    RETURN_NAMES = ("mask", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The kept masks (frames, height, width), 1 = subject.",
        "Number of masks returned.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "sequence": (
                    "STRING",
                    {
                        "default": EXAMPLE_SEQUENCE,
                        "tooltip": "Inside ComfyUI/input: a folder of numbered images (mask), a printf pattern "
                        "(mask/%04d.png, the official layout 0000.png, 0001.png, ...) or a glob (mask/*.png).",
                    },
                ),
                **FRAME_BUDGET_INPUTS,
            },
            "optional": {
                "video": (
                    "VIDEO",
                    {
                        "tooltip": "The clip the masks belong to (Load Video): the sequence must hold exactly one "
                        "mask per frame of it."
                    },
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, sequence):
        try:
            mask_sequence_files(sequence_path(sequence))
        except InputError as error:
            return str(error)
        return True

    @classmethod
    def IS_CHANGED(cls, sequence, **_ignored):
        """Names and modification times of the files: an edited, added or removed mask re-runs the node."""
        try:
            files = mask_sequence_files(sequence_path(sequence))
        except InputError as error:
            return str(error)
        stamps = "\n".join(f"{path}:{os.stat(path).st_mtime_ns}" for path in files)
        return hashlib.sha256(stamps.encode()).hexdigest()

    def load(self, sequence, skip_first_frames, frame_stride, max_frames, video=None):
        selection = frame_selection(skip_first_frames, frame_stride, max_frames)
        expected = None if video is None else probe_video(video.get_stream_source()).frame_count
        masks = read_mask_sequence(sequence_path(sequence), selection, expected)
        return (masks, masks.shape[0])
