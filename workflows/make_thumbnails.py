"""Write the Templates browser's thumbnails, ``example_workflows/<name>.jpg``, from procedural pictures.

    python workflows/make_thumbnails.py

ComfyUI's frontend (1.27) shows a custom node pack's template ``<name>.json`` with the picture
``<name>.jpg`` beside it. Every picture here is drawn from code — a procedural subject and its mask, and the
lighting each template uses made by the pack's own functions (light plates, HDR plates from a procedural sky) —
so no licensed asset is involved. Each thumbnail shows the template's title, the subject as the model sees it,
the lighting, and a strip saying what changes over the clip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import specs

from relightvid_core.conditioning import composite_foreground, env_map_plates, light_plate

SIZE = 512
TILE = 200
STRIP_FRAMES = 5
BACKDROP = (0.11, 0.12, 0.14)
TEXT = (235, 235, 235)
QUALITY = 90
TITLES = {
    "relightvid_background_video": ("Background video", "subject + lighting clip"),
    "relightvid_light_preset": ("Light preset", "a light direction + prompt"),
    "relightvid_hdr_map": ("HDR map", "a panning environment map"),
    "relightvid_long_video_windows": ("Long clips", "16-frame windows, any length"),
    "relightvid_iie": ("IIE ensemble", "five foreground brightnesses"),
    "relightvid_ksampler": ("KSampler", "any sampler on the MODEL"),
    "relightvid_custom_sampling": ("Custom sampling", "3-way guidance, official DDPM"),
    "relightvid_controlnet": ("ControlNet", "edges of each frame guide it"),
}


def subject(height: int, width: int, turn: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A shaded bust (head and shoulders) and its mask: (1, H, W, 3) and (1, H, W) in 0..1."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = xs / width - 0.5 - turn, ys / height
    head = ((x / 0.16) ** 2 + ((y - 0.38) / 0.2) ** 2) < 1
    shoulders = ((x / 0.38) ** 2 + ((y - 1.0) / 0.32) ** 2) < 1
    mask = (head | shoulders).astype(np.float32)
    shade = np.clip(0.55 + 0.9 * (0.15 - x) * 1.4 - 0.2 * y, 0.15, 1.0)
    colour = np.stack([0.85 * shade, 0.62 * shade, 0.48 * shade], axis=-1)
    colour[shoulders & ~head] *= np.array([0.45, 0.55, 0.8], np.float32)
    return torch.from_numpy(colour)[None], torch.from_numpy(mask)[None]


def stage_lights(frames: int, height: int, width: int) -> torch.Tensor:
    """A dark stage swept by two coloured beams: (frames, H, W, 3)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = xs / width, ys / height
    plates = []
    for t in range(frames):
        phase = t / max(1, frames - 1)
        plate = np.full((height, width, 3), 0.04, np.float32)
        for origin, colour, swing in ((0.2, (1.0, 0.35, 0.7), 0.35), (0.8, (0.3, 0.6, 1.0), -0.35)):
            centre = origin + swing * (phase - 0.5) * y
            beam = np.exp(-(((x - centre) / (0.05 + 0.12 * y)) ** 2)) * (0.4 + 0.6 * y)
            plate += beam[..., None] * np.array(colour, np.float32)
        plates.append(np.clip(plate, 0, 1))
    return torch.from_numpy(np.stack(plates))


def sky_map() -> torch.Tensor:
    """An equirectangular sky, 128x256: blue above an orange horizon, a dark ground and a bright sun."""
    ys, xs = np.mgrid[0:128, 0:256].astype(np.float32)
    elevation = 0.5 - ys / 128
    sky = np.where(elevation[..., None] > 0, (0.25, 0.45, 0.9), (0.08, 0.07, 0.06)).astype(np.float32)
    horizon = np.exp(-((elevation / 0.08) ** 2))[..., None] * np.array((1.2, 0.6, 0.25), np.float32)
    sun = np.exp(-(((xs - 150) ** 2 + (ys - 50) ** 2) / 18.0))[..., None] * 60.0
    return torch.from_numpy(sky + horizon + sun)


def lighting(name: str, frames: int, height: int, width: int) -> torch.Tensor:
    """The lighting plates the template feeds the model: (frames, H, W, 3)."""
    if name == "relightvid_light_preset":
        return light_plate("left", frames, height, width, color=(1.0, 0.89, 0.75), end_direction="top_right")
    if name == "relightvid_hdr_map":
        return env_map_plates(sky_map(), frames, height, width, yaw=-60.0, yaw_speed=30.0, exposure=-1.0)
    if name == "relightvid_long_video_windows":
        return light_plate("top", frames, height, width, color=(0.95, 0.95, 1.0))
    return stage_lights(frames, height, width)


def _tile(image: torch.Tensor, size: int) -> np.ndarray:
    pixels = (image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float, thickness: int) -> None:
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_DUPLEX, scale, TEXT, thickness, cv2.LINE_AA)


def _strip(name: str, width: int) -> list[np.ndarray]:
    """The bottom row: lighting over time, or the five IIE brightnesses, or windows over a long clip."""
    size = (width - (STRIP_FRAMES - 1) * 6) // STRIP_FRAMES
    frames, masks = subject(size, size)
    if name == "relightvid_iie":
        return [_tile(composite_foreground(frames * k, masks)[0], size) for k in (0.5, 0.75, 1.0, 1.25, 1.5)]
    if name == "relightvid_controlnet":  # the Canny hints of a turning subject, one per frame
        turns = np.linspace(-0.12, 0.12, STRIP_FRAMES)
        tiles = [_tile(composite_foreground(*subject(size, size, turn))[0], size) for turn in turns]
        return [cv2.cvtColor(cv2.Canny(tile, 60, 160), cv2.COLOR_GRAY2RGB) for tile in tiles]
    plates = lighting(name, STRIP_FRAMES, size, size)
    return [_tile(plates[t] * 0.6 + composite_foreground(frames, masks)[0] * 0.4, size) for t in range(STRIP_FRAMES)]


def thumbnail(name: str) -> np.ndarray:
    """A SIZE x SIZE RGB picture: title, subject + lighting, and a strip over the clip."""
    canvas = np.empty((SIZE, SIZE, 3), np.uint8)
    canvas[:] = np.array(BACKDROP) * 255
    title, subtitle = TITLES[name]
    _text(canvas, title, (36, 62), 1.25, 2)
    _text(canvas, subtitle, (36, 98), 0.7, 1)
    frames, masks = subject(TILE, TILE)
    left, right = 36, SIZE - 36 - TILE
    canvas[128 : 128 + TILE, left : left + TILE] = _tile(composite_foreground(frames, masks)[0], TILE)
    canvas[128 : 128 + TILE, right : right + TILE] = _tile(lighting(name, 1, TILE, TILE)[0], TILE)
    _text(canvas, "+", (SIZE // 2 - 18, 128 + TILE // 2 + 18), 1.6, 3)
    x = 36
    for image in _strip(name, SIZE - 72):
        canvas[360 : 360 + image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1] + 6
    if name == "relightvid_long_video_windows":  # brackets: overlapping context windows over the strip
        for start, end, row in ((36, 300, 352), (212, SIZE - 36, 346)):
            cv2.line(canvas, (start, row), (end, row), TEXT, 2, cv2.LINE_AA)
    return canvas


def write_thumbnails() -> list[Path]:
    written = []
    for name in specs.WORKFLOWS:
        path = specs.UI_DIR / f"{name}.jpg"
        ok, data = cv2.imencode(".jpg", thumbnail(name)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {path.name}")
        path.write_bytes(data.tobytes())
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_thumbnails():
        print(written_path)
