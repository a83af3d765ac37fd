"""Files the library writes get the permissions the user's umask gives, never a writer's private 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from relightvid_core import save_merged_unet
from relightvid_core.contact_sheet import write_image
from relightvid_core.demo import tiny_unet, write_tiny_models
from relightvid_core.outputs import file_mode, publish
from relightvid_core.video_io import write_video

USUAL_UMASK = 0o022


@pytest.fixture
def usual_umask():
    """Run the test under umask 022 (new files 0644), restoring the process's own afterwards."""
    previous = os.umask(USUAL_UMASK)
    yield 0o644
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_mode_follows_the_umask(usual_umask):
    assert file_mode() == usual_umask


def test_a_merged_unet_gets_the_umask_mode(tmp_path, usual_umask):
    # safetensors alone writes 0600 (it renames a private temporary file onto the name given).
    path = save_merged_unet(tiny_unet(0), tmp_path / "merged.safetensors")
    assert _mode(path) == usual_umask


def test_publish_gives_every_written_file_the_umask_mode(tmp_path, usual_umask):
    tensors = {"weight": torch.zeros(2)}
    folder_target, file_target = tmp_path / "out" / "folder", tmp_path / "out" / "one.safetensors"

    def write_folder(staged):
        staged.mkdir()
        save_file(tensors, str(staged / "inside.safetensors"))

    publish([(file_target, lambda staged: save_file(tensors, str(staged))), (folder_target, write_folder)])
    assert _mode(file_target) == usual_umask
    assert _mode(folder_target / "inside.safetensors") == usual_umask


def test_tiny_model_files_get_the_umask_mode(tmp_path, usual_umask):
    write_tiny_models(tmp_path / "models")
    modes = {str(p.relative_to(tmp_path)): _mode(p) for p in (tmp_path / "models").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {usual_umask}, modes


def test_images_and_videos_get_the_umask_mode(tmp_path, usual_umask):
    image = write_image(tmp_path / "sheet.png", np.zeros((4, 4, 3), np.float32))
    video = write_video(tmp_path / "clip.mp4", torch.zeros(2, 8, 8, 3), 8.0)
    assert (_mode(image), _mode(video)) == (usual_umask, usual_umask)
