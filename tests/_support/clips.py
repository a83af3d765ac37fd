"""Small clip files for command-line and pipeline tests: a video, its mask folder and a background video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relightvid_core.demo import procedural_background, procedural_clip
from relightvid_core.video_io import write_mask_folder
from relightvid_core.video_io import write_video

CLIP_FRAMES = 6
CLIP_SIZE = 64  # 8x8 latents: the smallest size the TINY U-Net's three downsamplings take
CLIP_FPS = 12.0  # not the official 8, so tests see that the input's rate is kept


@dataclass(frozen=True)
class ClipFiles:
    video: Path
    masks: Path
    background: Path


def write_clip(folder: Path, frames: int = CLIP_FRAMES, size: int = CLIP_SIZE, fps: float = CLIP_FPS) -> ClipFiles:
    """Write ``clip.mp4``, ``mask/0000.png …`` and ``bg.mp4`` (the background half as long) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    clip, masks = procedural_clip(frames, size)
    files = ClipFiles(folder / "clip.mp4", folder / "mask", folder / "bg.mp4")
    write_video(files.video, clip, fps)
    write_mask_folder(files.masks, masks)
    write_video(files.background, procedural_background(max(1, frames // 2), size), fps)
    return files
