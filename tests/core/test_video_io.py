"""Video, still and mask-folder I/O on small files written here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from relightvid_core.errors import InputError
from relightvid_core.video_io import read_image, read_mask_folder, read_video, write_video


def _gradient_clip(count=4, height=32, width=48):
    """Smooth content (H.264 keeps it within a few levels) that differs per frame."""
    ys = torch.linspace(0, 1, height)[:, None, None]
    xs = torch.linspace(0, 1, width)[None, :, None]
    blue = torch.full((height, width, 1), 0.5)
    base = torch.cat([xs.expand(height, width, 1), ys.expand(height, width, 1), blue], dim=-1)
    return torch.stack([(base + k * 0.1).clamp(0, 1) for k in range(count)])


def test_write_then_read_round_trip(tmp_path):
    frames = _gradient_clip()
    path = write_video(tmp_path / "clip.mp4", frames, fps=12)
    read, fps = read_video(path)
    assert read.shape == frames.shape and read.dtype == torch.float32 and fps == pytest.approx(12)
    assert float((read - frames).abs().mean()) < 0.02


def test_read_video_max_frames(tmp_path):
    path = write_video(tmp_path / "clip.mp4", _gradient_clip(count=5), fps=8)
    assert read_video(path, max_frames=2)[0].shape[0] == 2


def test_write_pads_odd_sizes_and_leaves_no_temporary_file(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _gradient_clip(count=2, height=17, width=23), fps=8)
    assert read_video(path)[0].shape == (2, 18, 24, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous result")
    import av

    def broken_frame(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", broken_frame)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_video(path, _gradient_clip(count=2), fps=8)
    assert path.read_bytes() == b"previous result" and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_write_refuses_zero_frames(tmp_path):
    with pytest.raises(InputError, match="at least 1 frame"):
        write_video(tmp_path / "x.mp4", torch.zeros(0, 8, 8, 3), fps=8)


def test_read_video_refuses_a_file_that_is_not_a_video(tmp_path):
    (tmp_path / "fake.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="fake.mp4"):
        read_video(tmp_path / "fake.mp4")


def test_read_video_refuses_a_missing_file_naming_it(tmp_path):
    with pytest.raises(InputError, match="missing.mp4 does not exist"):
        read_video(tmp_path / "missing.mp4")


def test_read_image_8_and_16_bit_grey_and_rgba(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert torch.equal(read_image(tmp_path / "red.png")[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    cv2.imwrite(str(tmp_path / "grey16.png"), np.full((4, 5), 32768, np.uint16))
    grey = read_image(tmp_path / "grey16.png")
    assert grey.shape == (1, 4, 5, 3) and float(grey[0, 0, 0, 1]) == pytest.approx(32768 / 65535)
    cv2.imwrite(str(tmp_path / "rgba.png"), np.full((4, 5, 4), 255, np.uint8))
    assert read_image(tmp_path / "rgba.png").shape == (1, 4, 5, 3)


def test_read_image_refuses_a_file_that_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(InputError, match="notes.png is not an image"):
        read_image(tmp_path / "notes.png")


def test_read_mask_folder_values_and_count_check(tmp_path):
    for k, value in enumerate((0, 128, 255)):
        cv2.imwrite(str(tmp_path / f"{k:04d}.png"), np.full((6, 7), value, np.uint8))
    masks = read_mask_folder(tmp_path, 3)
    assert masks.shape == (3, 6, 7) and masks[:, 0, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    with pytest.raises(InputError, match=r"holds 3 masks.*has 4 frames"):
        read_mask_folder(tmp_path, 4)
    assert read_mask_folder(tmp_path, 2, allow_extra=True).shape == (2, 6, 7)


def test_read_mask_folder_refuses_masks_of_different_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "0000.png"), np.zeros((6, 7), np.uint8))
    cv2.imwrite(str(tmp_path / "0001.png"), np.zeros((6, 8), np.uint8))
    with pytest.raises(InputError, match="must all have one size"):
        read_mask_folder(tmp_path, 2)
