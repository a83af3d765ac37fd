"""The animated progress preview: every frame of x̂₀, decoded by ComfyUI's previewer, sent in turn to the
running node's preview through ComfyUI's progress registry, from a thread that stops with the node."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest
import torch
from PIL import Image


def _host(pack):
    return sys.modules[pack.module.__name__ + ".nodes.host"]


class _FakePreviewer:
    """Like ComfyUI's Latent2RGB previewer: one image per call, from the first item of the batch."""

    def decode_latent_to_preview(self, x0):
        value = int(x0[0, 0, 0, 0].item())
        return Image.new("RGB", (x0.shape[-1], x0.shape[-2]), (value, 0, 0))


class _Registry:
    """ComfyUI's progress registry as the preview uses it: entries per node, and the images it was sent."""

    def __init__(self, frames_wanted: int):
        self.nodes = {"7": {"value": 3, "max": 10}}
        self.sent: list[tuple] = []
        self.thread_names: set[str] = set()
        self.enough = threading.Event()
        self.frames_wanted = frames_wanted

    def ensure_entry(self, node_id):
        return self.nodes.setdefault(node_id, {"value": 0, "max": 1})

    def update_progress(self, node_id, value, max_value, image=None):
        self.sent.append((node_id, value, max_value, image))
        self.thread_names.add(threading.current_thread().name)
        if len(self.sent) >= self.frames_wanted:
            self.enough.set()


@pytest.fixture
def comfy_preview(pack, monkeypatch):
    host = _host(pack)
    registry = _Registry(frames_wanted=6)
    comfy = types.SimpleNamespace(latent_formats=types.SimpleNamespace(SD15=object))
    previews = types.SimpleNamespace(get_previewer=lambda device, fmt: _FakePreviewer(), MAX_PREVIEW_RESOLUTION=512)
    monkeypatch.setattr(host, "HAS_COMFY", True)
    monkeypatch.setattr(host, "comfy", comfy, raising=False)
    monkeypatch.setattr(host, "latent_preview", previews, raising=False)
    monkeypatch.setattr(host, "get_progress_state", lambda: registry)
    monkeypatch.setattr(host, "get_executing_context", lambda: types.SimpleNamespace(node_id="7", prompt_id="p"))
    return host, registry


def test_clip_preview_plays_every_frame_in_turn(comfy_preview):
    host, registry = comfy_preview
    denoised = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 4, 2, 2) * 50  # frame k is 50k everywhere
    with host.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(denoised)
        assert registry.enough.wait(10)
    count = len(registry.sent)
    reds = [image[1].getpixel((0, 0))[0] for _node, _value, _max, image in registry.sent]
    assert reds[:6] == [0, 50, 100, 150, 0, 50]  # the frames in order, then around again
    assert all(node == "7" and (value, top) == (3, 10) for node, value, top, _ in registry.sent)  # the bar kept
    assert {image[0] for *_, image in registry.sent} == {"JPEG"} and registry.sent[0][3][2] == 512
    assert registry.thread_names == {"RelightVid preview"}  # never on the node's own thread
    time.sleep(0.1)  # 20 frame intervals
    assert len(registry.sent) == count  # nothing is sent once the node's work is over


def test_clip_preview_swaps_in_each_new_step(comfy_preview):
    host, registry = comfy_preview
    with host.ClipPreview(torch.device("cpu"), frame_rate=200.0) as preview:
        preview.show(torch.zeros(2, 4, 2, 2))
        assert registry.enough.wait(10)
        registry.enough.clear()
        registry.frames_wanted = len(registry.sent) + 4
        preview.show(torch.full((2, 4, 2, 2), 90.0))
        assert registry.enough.wait(10)
    assert registry.sent[-1][3][1].getpixel((0, 0))[0] == 90


def test_clip_preview_is_off_outside_comfyui_or_with_previews_off(pack, comfy_preview, monkeypatch):
    host, registry = comfy_preview
    monkeypatch.setattr(host.latent_preview, "get_previewer", lambda device, fmt: None)  # --preview-method none
    with host.ClipPreview(torch.device("cpu")) as preview:
        assert not preview.active
        preview.show(torch.zeros(2, 4, 2, 2))
    monkeypatch.setattr(host, "HAS_COMFY", False)
    with host.ClipPreview(torch.device("cpu")) as preview:
        assert not preview.active
        preview.show(torch.zeros(2, 4, 2, 2))
    assert registry.sent == []
