"""Fixtures of the reliability suite: tiny model folders, small clips, a watched workspace per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from _support.clips import ClipFiles, write_clip
from _support.reliability import Workspace, assert_refused, run_cli, tree

from relightvid_core import TINY
from relightvid_core.demo import write_tiny_models
from relightvid_core.model_files import MERGED_NAME, convert_to_merged


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A complete models folder: tiny official-format files (TINY shape) and their merged U-Net."""
    folder = tmp_path_factory.mktemp("models")
    files = write_tiny_models(folder)
    convert_to_merged(files, folder / MERGED_NAME, dtype=torch.float32, config=TINY)
    return folder


@pytest.fixture(scope="session")
def session_clip(tmp_path_factory) -> ClipFiles:
    return write_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def workspace(tmp_path, tiny_models, session_clip) -> Workspace:
    """Private copies of the clip and the models (a test may damage them), and an empty output folder."""
    inputs = tmp_path / "inputs"
    shutil.copytree(session_clip.video.parent, inputs / "clip")
    shutil.copytree(tiny_models, inputs / "models")
    clip = ClipFiles(*(inputs / "clip" / path.relative_to(session_clip.video.parent) for path in
                       (session_clip.video, session_clip.masks, session_clip.background)))  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    return Workspace(tmp_path, clip, inputs / "models", out)


@pytest.fixture
def refused(workspace, capsys):
    """Run the command, check that it is refused (:func:`assert_refused`), that nothing was added to or
    changed in the workspace (inputs and outputs alike) and return the error line."""

    def check(argv: list[str], *needles: str, listing: bool = False) -> str:
        before = tree(workspace.root)
        message = assert_refused(run_cli(argv, capsys), *needles, listing=listing)
        assert tree(workspace.root) == before
        return message

    return check
