"""Frame-budget reading: only the kept frames of a video, fitted as they are decoded; numbered mask sequences."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch

from relightvid_core.errors import InputError
from relightvid_core.video_io import (
    FrameSelection,
    mask_sequence_files,
    probe_video,
    read_mask_sequence,
    read_video,
    read_video_frames,
    write_video,
)


@pytest.fixture
def numbered_clip(tmp_path):
    """12 frames of 48x32 whose red level encodes the frame number (20·k), written at 12 fps."""
    frames = np.zeros((12, 32, 48, 3), np.float32)
    frames[..., 0] = np.arange(12)[:, None, None] * 20 / 255
    return write_video(tmp_path / "clip.mp4", torch.from_numpy(frames), fps=12.0)


def _frame_numbers(frames: torch.Tensor) -> list[int]:
    return [round(v) for v in (frames[:, 16, 24, 0] * 255 / 20).tolist()]


def test_frame_selection_indices():
    assert list(FrameSelection(2, 3, 3).indices(20)) == [2, 5, 8]
    assert list(FrameSelection().indices(4)) == [0, 1, 2, 3]
    assert FrameSelection(1, 2).keeps(3) and not FrameSelection(1, 2).keeps(2) and not FrameSelection(1, 2).keeps(0)


@pytest.mark.parametrize(("skip", "stride", "limit"), [(-1, 1, None), (0, 0, None), (0, 1, 0)])
def test_frame_selection_refuses_bad_values(skip, stride, limit):
    with pytest.raises(InputError, match="skip_first_frames|frame_stride|max_frames"):
        FrameSelection(skip, stride, limit)


def test_read_video_frames_keeps_only_the_selected_frames(numbered_clip):
    frames, fps = read_video_frames(numbered_clip, FrameSelection(skip=1, stride=4, limit=2))
    assert frames.shape == (2, 32, 48, 3)
    assert _frame_numbers(frames) == [1, 5]
    assert fps == pytest.approx(3.0)  # 12 fps, one frame in four


def test_read_video_frames_fits_each_frame_and_matches_the_whole_clip_read(numbered_clip):
    calls = []

    def fit(frame):
        calls.append(tuple(frame.shape))
        return frame[:, ::2, ::2]

    frames, _fps = read_video_frames(numbered_clip, FrameSelection(limit=3), fit)
    assert calls == [(1, 32, 48, 3)] * 3 and frames.shape == (3, 16, 24, 3)
    whole, _ = read_video(numbered_clip)
    assert torch.equal(frames, whole[:3, ::2, ::2])


def test_read_video_frames_from_an_open_file(numbered_clip):
    frames, _ = read_video_frames(io.BytesIO(numbered_clip.read_bytes()), FrameSelection(skip=10))
    assert _frame_numbers(frames) == [10, 11]


def test_read_video_frames_refuses_a_selection_past_the_end(numbered_clip):
    with pytest.raises(InputError, match="no frame left after skipping 12"):
        read_video_frames(numbered_clip, FrameSelection(skip=12))


def test_probe_video(numbered_clip):
    info = probe_video(numbered_clip)
    assert (info.width, info.height, info.frame_count) == (48, 32, 12) and info.fps == pytest.approx(12.0)


def _write_masks(folder, numbers, name="{:04d}.png", value=255, alpha=None):
    folder.mkdir(exist_ok=True)
    for k in numbers:
        pixels = np.zeros((8, 10), np.uint8)
        pixels[:, : k % 10 + 1] = value
        if alpha is not None:
            pixels = np.dstack([np.full((8, 10, 3), 255, np.uint8), np.where(pixels > 0, alpha, 0).astype(np.uint8)])
        cv2.imwrite(str(folder / name.format(k)), pixels)


@pytest.mark.parametrize("spec", ["mask", "mask/%04d.png", "mask/*.png", "mask/%d.png"])
def test_mask_sequence_from_a_folder_pattern_or_glob(tmp_path, spec):
    _write_masks(tmp_path / "mask", range(5))
    (tmp_path / "mask" / "notes.txt").write_text("not a mask")
    masks = read_mask_sequence(tmp_path / spec, FrameSelection(skip=1, stride=2))
    assert masks.shape == (2, 8, 10) and masks.dtype == torch.float32
    assert [int(m[0].sum()) for m in masks] == [2, 4]  # frames 1 and 3


def test_mask_sequence_refuses_a_gap_in_one_sentence(tmp_path):
    _write_masks(tmp_path / "mask", [0, 1, 3, 4])
    with pytest.raises(InputError, match=r"lacks 1 frame\(s\) between 0 and 4 \(2\)") as caught:
        mask_sequence_files(tmp_path / "mask")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("count", "word"), [(3, "more"), (7, "fewer")])
def test_mask_sequence_refuses_surplus_or_missing_frames_against_the_video(tmp_path, count, word):
    _write_masks(tmp_path / "mask", range(5))
    with pytest.raises(InputError, match=f"holds 5 masks, {word} than the video's {count} frames"):
        read_mask_sequence(tmp_path / "mask", expected_count=count)


def test_mask_sequence_refuses_two_files_for_one_frame(tmp_path):
    _write_masks(tmp_path / "mask", range(2))
    _write_masks(tmp_path / "mask", [1], name="{:d}.png")
    with pytest.raises(InputError, match="both hold frame 1"):
        mask_sequence_files(tmp_path / "mask")


def test_mask_sequence_refuses_what_matches_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="matches no numbered image"):
        read_mask_sequence(tmp_path / "empty")
    with pytest.raises(InputError, match="neither a folder"):
        read_mask_sequence(tmp_path / "missing.png")


def test_mask_sequence_reads_cut_outs_by_their_alpha(tmp_path):
    _write_masks(tmp_path / "cutout", range(3), alpha=255)  # white everywhere, opaque only on the subject
    masks = read_mask_sequence(tmp_path / "cutout")
    assert [int(m[0].sum()) for m in masks] == [1, 2, 3]


def test_mask_sequence_reads_opaque_rgba_by_its_colour(tmp_path):
    folder = tmp_path / "opaque"
    folder.mkdir()
    pixels = np.zeros((8, 10, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[:, :4, :3] = 255
    cv2.imwrite(str(folder / "0000.png"), pixels)
    masks = read_mask_sequence(folder)
    assert int(masks[0, 0].sum()) == 4
