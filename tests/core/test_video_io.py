"""Video, still and mask-folder I/O on small files written here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from relightvid_core.errors import InputError
from relightvid_core.video_io import (
    VIDEO_CONTAINERS,
    probe_video,
    read_image,
    read_mask_folder,
    read_video,
    read_video_frames,
    write_video,
)


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


# --- videos are recognised by their container, not their name ---------------------------------------------

READERS = {
    "read_video": lambda source: read_video(source)[0].shape,
    "probe_video": lambda source: probe_video(source).frame_count,
    "read_video_frames": lambda source: read_video_frames(source)[0].shape,
}


def _write_text(path):
    path.write_text("Notes about the shoot.\n" * 100)  # FFmpeg's tty demuxer renders this as a "video"
    return path


def _write_png_as_mp4(path):
    cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tofile(str(path))
    return path


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [("notes.txt", _write_text, "Tele-typewriter (tty)"), ("still.mp4", _write_png_as_mp4, "(png_pipe)")],
    ids=["text", "png_named_mp4"],
)
def test_every_video_reader_refuses_what_is_not_a_video_container(reader, name, make, needle, tmp_path):
    path = make(tmp_path / name)
    with pytest.raises(InputError, match="not a video") as caught:
        READERS[reader](path)
    assert str(path) in str(caught.value) and needle in str(caught.value)


@pytest.mark.parametrize("reader", READERS)
def test_every_video_reader_still_reads_mp4_files(reader, tmp_path):
    path = write_video(tmp_path / "clip.mp4", _gradient_clip(count=3), fps=12)
    assert READERS[reader](path) in ((3, 32, 48, 3), 3)


@pytest.mark.parametrize("reader", ["probe_video", "read_video_frames"])
def test_stream_readers_check_the_container_of_a_stream_too(reader, tmp_path):
    path = write_video(tmp_path / "clip.mp4", _gradient_clip(count=3), fps=12)
    with path.open("rb") as stream:  # what ComfyUI's VIDEO hands over
        assert READERS[reader](stream) in ((3, 32, 48, 3), 3)
    with _write_png_as_mp4(tmp_path / "still.mp4").open("rb") as stream, pytest.raises(InputError, match="png_pipe"):
        READERS[reader](stream)


def test_animated_gifs_are_clips(tmp_path):
    # The decision (VIDEO_CONTAINERS): FFmpeg decodes every frame of a GIF with its delay, as for any clip.
    frames = [Image.new("RGB", (16, 8), (60 * k, 0, 0)) for k in range(3)]
    frames[0].save(tmp_path / "loop.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    clip, fps = read_video(tmp_path / "loop.gif")
    assert clip.shape == (3, 8, 16, 3) and fps == pytest.approx(10.0)
    assert VIDEO_CONTAINERS["gif"] == "GIF"
