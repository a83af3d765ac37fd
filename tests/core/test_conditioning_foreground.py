"""Foreground composites: exact values, mask handling, and the official clip reader."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from relightvid_core.conditioning import ICLIGHT_GRAY, OFFICIAL_GRAY, composite_foreground, read_official_clip
from relightvid_core.conditioning.foreground import FEATHER_SIGMAS, prepare_masks
from relightvid_core.errors import InputError
from relightvid_core.video_io import write_video


def _frames(count=2, height=8, width=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, height, width, 3, generator=generator)


def test_composite_alpha_one_keeps_frame_alpha_zero_gives_gray_half_is_midpoint():
    frames = _frames(count=3)
    masks = torch.stack([torch.ones(8, 10), torch.zeros(8, 10), torch.full((8, 10), 0.5)])
    out = composite_foreground(frames, masks)
    torch.testing.assert_close(out[0], frames[0], atol=0, rtol=0)
    assert torch.all(out[1] == torch.tensor(OFFICIAL_GRAY))
    torch.testing.assert_close(out[2], (frames[2] + OFFICIAL_GRAY) / 2, atol=1e-6, rtol=0)


def test_composite_gray_constants_are_official_128_and_iclight_127():
    assert OFFICIAL_GRAY == 128 / 255 and ICLIGHT_GRAY == 127 / 255
    out = composite_foreground(_frames(count=1), torch.zeros(1, 8, 10), gray=ICLIGHT_GRAY)
    assert torch.all(out == torch.tensor(ICLIGHT_GRAY))


def test_composite_without_mask_is_the_frames():
    frames = _frames()
    torch.testing.assert_close(composite_foreground(frames, None), frames, atol=0, rtol=0)


def test_composite_single_mask_broadcasts_and_other_size_is_resized():
    frames = _frames(count=4, height=8, width=8)
    half = torch.zeros(4, 4)
    half[:, 2:] = 1.0  # right half foreground, at half resolution
    out = composite_foreground(frames, half)
    assert out.shape == frames.shape
    torch.testing.assert_close(out[:, :, 5:], frames[:, :, 5:], atol=1e-6, rtol=0)
    assert torch.allclose(out[:, :, :3], torch.tensor(OFFICIAL_GRAY))


def test_composite_truncate_to_uint8_matches_official_arithmetic():
    frames = torch.full((1, 2, 2, 3), 201 / 255)
    masks = torch.full((1, 2, 2), 0.3)
    out = composite_foreground(frames, masks, truncate_to_uint8=True)
    expected = np.floor(np.float32(201) * np.float32(0.3) + np.float32(128) * np.float32(0.7)) / 255
    torch.testing.assert_close(out, torch.full_like(out, float(expected)), atol=1e-7, rtol=0)


def test_composite_grow_and_shrink_move_the_edge_by_that_many_pixels():
    frames = torch.ones(1, 9, 9, 3)
    mask = torch.zeros(1, 9, 9)
    mask[0, 3:6, 3:6] = 1.0
    grown = composite_foreground(frames, mask, grow=1)
    shrunk = composite_foreground(frames, mask, grow=-1)
    assert int((grown[0, :, :, 0] == 1).sum()) == 25
    assert int((shrunk[0, :, :, 0] == 1).sum()) == 1


def test_composite_feather_softens_a_hard_edge():
    frames = torch.ones(1, 16, 16, 3)
    mask = torch.zeros(1, 16, 16)
    mask[0, :, 8:] = 1.0
    out = composite_foreground(frames, mask, feather=3.0)[0, 8, :, 0]
    assert OFFICIAL_GRAY < out[7] < out[8] < 1.0
    assert out[0] == pytest.approx(OFFICIAL_GRAY) and out[15] == pytest.approx(1.0)


def test_composite_refuses_mask_count_that_is_neither_frames_nor_one():
    with pytest.raises(InputError, match=r"masks has 2 frames but frames has 3"):
        composite_foreground(_frames(count=3), torch.ones(2, 8, 10))


def test_composite_refuses_zero_frames():
    with pytest.raises(InputError, match="at least 1 frame"):
        composite_foreground(torch.zeros(0, 8, 8, 3), None)


def _write_clip(folder: Path, count: int, masks: int) -> tuple[Path, Path]:
    video = folder / "clip.mp4"
    write_video(video, torch.rand(count, 16, 16, 3, generator=torch.Generator().manual_seed(1)), fps=8)
    mask_dir = folder / "mask"
    mask_dir.mkdir()
    for k in range(masks):
        cv2.imwrite(str(mask_dir / f"{k:04d}.png"), np.full((16, 16), 255, np.uint8))
    return video, mask_dir


def test_read_official_clip_reads_frames_and_masks(tmp_path):
    video, mask_dir = _write_clip(tmp_path, count=3, masks=3)
    clip = read_official_clip(video, mask_dir)
    assert clip.frames.shape == (3, 16, 16, 3) and clip.masks.shape == (3, 16, 16)
    assert clip.fps == pytest.approx(8.0) and torch.all(clip.masks == 1.0)


def test_read_official_clip_refuses_differing_counts_naming_both(tmp_path):
    video, mask_dir = _write_clip(tmp_path, count=3, masks=2)
    with pytest.raises(InputError, match=r"holds 2 masks.*has 3 frames"):
        read_official_clip(video, mask_dir)


def test_read_official_clip_refuses_a_gap_instead_of_dropping_the_frame(tmp_path):
    video, mask_dir = _write_clip(tmp_path, count=3, masks=3)
    (mask_dir / "0001.png").rename(mask_dir / "0003.png")
    with pytest.raises(InputError, match="0001.png"):
        read_official_clip(video, mask_dir)


def test_read_official_clip_refuses_an_unreadable_mask(tmp_path):
    video, mask_dir = _write_clip(tmp_path, count=2, masks=2)
    (mask_dir / "0001.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="0001.png"):
        read_official_clip(video, mask_dir)


def test_official_assets_smoke(assets_dir):
    video, mask_dir = assets_dir / "input" / "lion.mp4", assets_dir / "mask" / "lion"
    clip = read_official_clip(video, mask_dir)
    assert clip.frames.shape == (16, 512, 512, 3) and clip.masks.shape == (16, 512, 512)
    out = composite_foreground(clip.frames, clip.masks)
    assert out.shape == clip.frames.shape and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


# Grow and feather are OpenCV's dilate/erode and GaussianBlur; scipy.ndimage (through scikit-image, in the test
# extra) is an independent implementation of both. Flat grey-scale morphology is exact; the blur differs only by
# float32 rounding (OpenCV sums in float32, scipy in float64).
FEATHER_TOLERANCE = 1e-6


def _soft_masks(count=2, height=23, width=31, seed=3):
    generator = torch.Generator().manual_seed(seed)
    masks = (torch.rand(count, height, width, generator=generator) > 0.6).float()
    masks[:, 5:12, 7:20] = torch.rand(7, 13, generator=generator)
    return masks


@pytest.mark.parametrize("grow", [1, 3, -2, -5])
def test_prepare_masks_grow_is_flat_square_morphology_as_in_scipy(grow):
    ndimage = pytest.importorskip("scipy.ndimage", reason="scipy comes with scikit-image, in the test extra")
    masks = _soft_masks()
    side = 2 * abs(grow) + 1
    operation = ndimage.grey_dilation if grow > 0 else ndimage.grey_erosion
    # Mirrored borders add only pixels already inside a flat window: the result is OpenCV's (edges left alone).
    expected = np.stack([operation(plane, size=(side, side), mode="reflect") for plane in masks.numpy()])
    out = prepare_masks(masks, 23, 31, 2, grow=grow)
    np.testing.assert_array_equal(out.numpy(), np.clip(expected, 0.0, 1.0))


@pytest.mark.parametrize("feather", [0.5, 2.0, 7.5, 30.0])
def test_prepare_masks_feather_is_a_mirrored_gaussian_as_in_scipy(feather):
    ndimage = pytest.importorskip("scipy.ndimage", reason="scipy comes with scikit-image, in the test extra")
    masks = _soft_masks()
    sigma, reach = feather / FEATHER_SIGMAS, max(1, math.ceil(feather))
    planes = masks.numpy().astype(np.float64)
    expected = np.stack([ndimage.gaussian_filter(p, sigma, mode="reflect", truncate=reach / sigma) for p in planes])
    out = prepare_masks(masks, 23, 31, 2, feather=feather)
    np.testing.assert_allclose(out.numpy(), np.clip(expected, 0.0, 1.0), rtol=0, atol=FEATHER_TOLERANCE)
