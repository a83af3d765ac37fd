"""The frame-budget path of the clip nodes (a VIDEO decoded frame by frame to the output size) and the
mask-sequence loader, against the whole-clip path and the stand-in input folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _support.comfy_fakes import clip_frames, disc_masks

from relightvid_core.video_io import read_video, write_video

BUDGET = {"skip_first_frames": 1, "frame_stride": 2, "max_frames": 3}
ALL_FRAMES = {"skip_first_frames": 0, "frame_stride": 1, "max_frames": 0}


@dataclass
class FakeVideo:
    """What the nodes use of ComfyUI's VIDEO (VideoFromFile): a stream source."""

    path: Path

    def get_stream_source(self) -> str:
        return str(self.path)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> FakeVideo:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return FakeVideo(write_video(path, clip_frames(9, 72, 120), fps=8.0))


def _foreground_settings(**overrides) -> dict:
    settings = {"size_policy": "cover", "width": 64, "height": 48, "gray": "official_128", "grow": 0}
    return {**settings, "feather": 0.0, "invert_mask": False, **ALL_FRAMES, **overrides}


def test_foreground_from_a_video_equals_the_whole_clip_path(pack, vae, video):
    decoded, _fps = read_video(video.path)
    masks = disc_masks(3, 72, 120)
    from_video = pack.node("RelightVidForeground").prepare(vae, video=video, mask=masks, **_foreground_settings(**BUDGET))
    from_images = pack.node("RelightVidForeground").prepare(
        vae, images=decoded, mask=masks, **_foreground_settings(**BUDGET)
    )
    assert from_video[0].frames.shape == (3, 48, 64, 3) and from_video[3:] == (64, 48, 3)
    torch.testing.assert_close(from_video[0].frames, from_images[0].frames, atol=1e-6, rtol=0)
    torch.testing.assert_close(from_video[2], from_images[2])


def test_fit_frames_from_a_video_keeps_the_selected_frames(pack, video):
    decoded, _fps = read_video(video.path)
    images, mask, width, height, count = pack.node("RelightVidFitFrames").fit(
        "stretch", 32, 32, **BUDGET, video=video
    )
    expected, *_ = pack.node("RelightVidFitFrames").fit("stretch", 32, 32, **ALL_FRAMES, images=decoded[1:6:2])
    assert (count, width, height) == (3, 32, 32) and mask.shape == (3, 32, 32)
    torch.testing.assert_close(images, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("connected", ["both", "neither"])
def test_clip_nodes_want_images_or_video(pack, vae, video, connected):
    clip = {"images": clip_frames(2, 64, 64), "video": video} if connected == "both" else {}
    with pytest.raises(pack.core.InputError, match=f"connect either images or video.*{connected}"):
        pack.node("RelightVidForeground").prepare(vae, **_foreground_settings(), **clip)


def test_background_video_reads_only_what_the_length_policy_uses(pack, vae, video):
    foreground, *_ = pack.node("RelightVidForeground").prepare(vae, images=clip_frames(4, 48, 64), **_foreground_settings())
    decoded, _fps = read_video(video.path)
    plates, _ = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, **ALL_FRAMES, video=video)
    expected, _ = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, **ALL_FRAMES, images=decoded)
    assert plates.frames.shape == (4, 48, 64, 3)
    torch.testing.assert_close(plates.frames, expected.frames, atol=1e-6, rtol=0)
    stretched, _ = pack.node("RelightVidBackground").fit(foreground, "stretch", "cover", False, **ALL_FRAMES, video=video)
    expected, _ = pack.node("RelightVidBackground").fit(foreground, "stretch", "cover", False, **ALL_FRAMES, images=decoded)
    torch.testing.assert_close(stretched.frames, expected.frames, atol=1e-6, rtol=0)


@pytest.fixture
def mask_folder(pack):
    folder = pack.base / "input" / "lion_mask"
    folder.mkdir()
    for k in range(9):
        pixels = np.zeros((12, 20), np.uint8)
        pixels[:, : k + 1] = 255
        cv2.imwrite(str(folder / f"{k:04d}.png"), pixels)
    yield folder
    shutil.rmtree(folder)


def test_mask_sequence_node_loads_the_kept_masks(pack, mask_folder, video):
    masks, count = pack.node("RelightVidLoadMaskSequence").load("lion_mask/%04d.png", **BUDGET, video=video)
    assert count == 3 and masks.shape == (3, 12, 20)
    assert [int(m[0].sum()) for m in masks] == [2, 4, 6]


def test_mask_sequence_node_refuses_a_count_unlike_the_video(pack, mask_folder, video):
    (mask_folder / "0008.png").unlink()
    with pytest.raises(pack.core.InputError, match="holds 8 masks, fewer than the video's 9 frames"):
        pack.node("RelightVidLoadMaskSequence").load("lion_mask", **ALL_FRAMES, video=video)


def test_mask_sequence_node_validates_at_queue_time(pack, mask_folder):
    node_class = pack.nodes["RelightVidLoadMaskSequence"]
    assert node_class.VALIDATE_INPUTS("lion_mask/*.png") is True
    assert "matches no numbered image" in node_class.VALIDATE_INPUTS("lion_mask/*.jpg")
    assert "out of ComfyUI's input folder" in node_class.VALIDATE_INPUTS("../models")
    assert "inside ComfyUI's input folder" in node_class.VALIDATE_INPUTS("/etc")


def test_mask_sequence_node_reruns_when_a_mask_changes(pack, mask_folder):
    node_class = pack.nodes["RelightVidLoadMaskSequence"]
    before = node_class.IS_CHANGED("lion_mask")
    assert node_class.IS_CHANGED("lion_mask") == before
    cv2.imwrite(str(mask_folder / "0009.png"), np.zeros((12, 20), np.uint8))
    assert node_class.IS_CHANGED("lion_mask") != before
