"""The sampler's progress preview: every frame of x̂₀ tiled into one image through ComfyUI's previewer."""

from __future__ import annotations

import sys
import types

import torch
from PIL import Image


def _host(pack):
    return sys.modules[pack.module.__name__ + ".nodes.host"]


class _FakePreviewer:
    """Like ComfyUI's Latent2RGB previewer: one image per call, from the first item of the batch."""

    def decode_latent_to_preview(self, x0):
        value = int(x0[0, 0, 0, 0].item())
        return Image.new("RGB", (x0.shape[-1], x0.shape[-2]), (value, 0, 0))


def test_frame_grid_tiles_frames_row_by_row(pack):
    host = _host(pack)
    frames = [Image.new("RGB", (8, 4), (10 * k, 0, 0)) for k in range(5)]
    grid = host.frame_grid(frames, columns=3)
    assert grid.size == (24, 8)
    assert [grid.getpixel((x, y))[0] for x, y in ((0, 0), (8, 0), (16, 0), (0, 4), (8, 4))] == [0, 10, 20, 30, 40]
    assert grid.getpixel((16, 4)) == (0, 0, 0)  # the unused cell stays black


def test_frame_grid_is_about_square(pack):
    host = _host(pack)
    assert host.frame_grid([Image.new("RGB", (8, 8))] * 16).size == (32, 32)
    assert host.frame_grid([Image.new("RGB", (8, 8))] * 3).size == (16, 16)


def test_latent_previewer_shows_every_frame(pack, monkeypatch):
    host = _host(pack)
    comfy = types.SimpleNamespace(latent_formats=types.SimpleNamespace(SD15=object))
    previews = types.SimpleNamespace(get_previewer=lambda device, fmt: _FakePreviewer(), MAX_PREVIEW_RESOLUTION=512)
    monkeypatch.setattr(host, "HAS_COMFY", True)
    monkeypatch.setattr(host, "comfy", comfy, raising=False)
    monkeypatch.setattr(host, "latent_preview", previews, raising=False)
    denoised = torch.arange(4.0).view(1, 4, 1, 1, 1).expand(1, 4, 4, 2, 2) * 50  # frame k is 50k everywhere
    kind, grid, size = host.latent_previewer(torch.device("cpu"))(denoised)
    assert (kind, size) == ("JPEG", 512)
    assert grid.size == (4, 4)
    assert [grid.getpixel(xy)[0] for xy in ((0, 0), (2, 0), (0, 2), (2, 2))] == [0, 50, 100, 150]
